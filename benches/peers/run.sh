#!/usr/bin/env bash
# The load benchmark with the peer servers: installs the peers at their pinned versions,
# builds the release binaries, and runs loadbench with every server pinned to core 0 and the
# load generator on core 1 (at most 30 minutes). Prints the table BENCHMARKS.md §2 quotes.
#   bash benches/peers/run.sh [SECONDS_PER_PHASE] [RUNS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
seconds="${1:-5}"
runs="${2:-3}"
if [[ "$(nproc)" -lt 2 ]]; then
  echo "peers benchmark: needs 2 cores (servers on one, the load generator on the other)" >&2
  exit 1
fi
bash benches/peers/install.sh
cargo build --release -p mcp-guard-examples --bin files --bin loadbench
exec timeout 1800 taskset -c 1 target/release/loadbench \
  --seconds "$seconds" --concurrency 16 --runs "$runs" --server-cpu 0 \
  --peer "Python SDK mcp 2.3.0 + PyJWT=benches/peers/python/run.sh" \
  --peer "TypeScript SDK 1.32.2 requireBearerAuth=benches/peers/node-v1/run.sh" \
  --peer "TypeScript SDK 2.4.0 @modelcontextprotocol/server=benches/peers/node-v2/run.sh"
