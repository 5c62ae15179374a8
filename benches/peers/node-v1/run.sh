#!/usr/bin/env bash
# Starts the node-v1 peer (installed by benches/peers/install.sh); exec, so the pid is the server's.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
dir="$root/target/peers/node-v1"
if [[ ! -d "$dir/node_modules" ]]; then
  echo "node-v1 peer: $dir/node_modules is missing; run: bash benches/peers/install.sh" >&2
  exit 1
fi
# The server module must sit beside its node_modules for ES module resolution.
cp "$root/benches/peers/node-v1/server.mjs" "$dir/server.mjs"
export NODE_ENV=production
exec node "$dir/server.mjs"
