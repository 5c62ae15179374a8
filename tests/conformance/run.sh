#!/usr/bin/env bash
# Runs the official MCP conformance suite's server scenarios that apply to a protected server
# against the mcp-guard quickstart, on 127.0.0.1 only, and checks the result against
# expected-failures.yml. The README's test command (and .ci/run) runs it after `cargo test`.
#
#   tests/conformance/run.sh            # build, install the pinned suite, run, summarise
#
# Environment:
#   CONFORMANCE_NODE   a Node.js >= 22 binary (default: `node` on PATH if >= 22, otherwise
#                      node@$NODE_VERSION is installed from npm into the work directory)
#   CONFORMANCE_WORK   work directory (default: tests/conformance/.work, git-ignored)
#   MCP_PORT, AUTH_PORT  ports of the quickstart's MCP and authorization servers (default: free
#                      ports picked at random)
#   SKIP_BUILD=1       use the existing target/debug/quickstart
#   SCENARIO_TIMEOUT   seconds per scenario (default 120)
#   CONFORMANCE_BASELINE  another expected-failures file (default: expected-failures.yml)
#
# Exit status: 0 when every failure is listed in expected-failures.yml and no listed entry
# passes (stale); 1 otherwise; 2 on a setup error.

set -euo pipefail

CONFORMANCE_VERSION="0.2.0-alpha.12" # exact; its dist uses fs.globSync, hence Node >= 22
NODE_VERSION="22.23.3"               # only used when no Node >= 22 is available

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WORK="${CONFORMANCE_WORK:-$HERE/.work}"
BASELINE="${CONFORMANCE_BASELINE:-$HERE/expected-failures.yml}"
SCENARIO_TIMEOUT="${SCENARIO_TIMEOUT:-120}"

# Scenarios whose probes need no token (plus two that show the 401 of protected operations),
# per protocol revision, run against the quickstart in the anonymous access posture
# (`--allow-anonymous`), the one the suite can drive without tokens. Everything else in the suite exercises the suite's own "everything"
# server fixtures (test_simple_text, test://static-text, logging, completion, ...), which a
# file store does not have: see README.md for a full run.
SCENARIOS_2025_11_25=(
  server-initialize
  server-session-lifecycle
  ping
  tools-list
  resources-list
  prompts-list
  server-sse-multiple-streams
  dns-rebinding-protection
)
SCENARIOS_2026_07_28=(
  server-stateless
  tools-list
  resources-list
  prompts-list
  caching
  http-header-validation
  server-sse-multiple-streams
  dns-rebinding-protection
  resources-read-text
  sep-2164-resource-not-found
)

log() { printf '[conformance] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 2
}

mkdir -p "$WORK"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
RESULTS="$WORK/results/$STAMP"
mkdir -p "$RESULTS"

# --- Node.js >= 22 -----------------------------------------------------------------------------
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
NODE="${CONFORMANCE_NODE:-}"
if [[ -z "$NODE" ]]; then
  if command -v node >/dev/null && (($(node_major node) >= 22)); then
    NODE="$(command -v node)"
  else
    NODE="$WORK/node$NODE_VERSION/node_modules/.bin/node"
    if [[ ! -x "$NODE" ]]; then
      command -v npm >/dev/null || die "npm not found; install Node.js >= 22 or set CONFORMANCE_NODE"
      log "installing node@$NODE_VERSION from npm into $WORK (system node is older than 22)"
      mkdir -p "$WORK/node$NODE_VERSION"
      timeout 300 npm install --prefix "$WORK/node$NODE_VERSION" --no-audit --no-fund \
        --loglevel=error "node@$NODE_VERSION" >&2 || die "installing node@$NODE_VERSION failed"
    fi
  fi
fi
(($(node_major "$NODE") >= 22)) || die "$NODE is not Node.js >= 22"
log "node: $NODE ($("$NODE" --version))"

# --- The pinned suite --------------------------------------------------------------------------
SUITE_DIR="$WORK/suite-$CONFORMANCE_VERSION"
SUITE="$SUITE_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
if [[ ! -f "$SUITE" ]]; then
  command -v npm >/dev/null || die "npm not found"
  log "installing @modelcontextprotocol/conformance@$CONFORMANCE_VERSION into $SUITE_DIR"
  mkdir -p "$SUITE_DIR"
  timeout 300 npm install --prefix "$SUITE_DIR" --no-audit --no-fund --loglevel=error \
    "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION" >&2 || die "npm install failed"
fi
installed="$("$NODE" "$SUITE" --version)"
[[ "$installed" == "$CONFORMANCE_VERSION" ]] || die "suite version $installed, expected $CONFORMANCE_VERSION"
log "suite: @modelcontextprotocol/conformance@$installed"

# --- The quickstart server ---------------------------------------------------------------------
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/quickstart"
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  log "building the quickstart"
  (cd "$ROOT" && timeout 900 cargo build -q -p mcp-guard-examples --bin quickstart) ||
    die "cargo build failed"
fi
[[ -x "$BIN" ]] || die "$BIN not found (build it or unset SKIP_BUILD)"

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 20000))
    if ! port_in_use "$p"; then
      echo "$p"
      return
    fi
  done
}
MCP_PORT="${MCP_PORT:-$(free_port)}"
AUTH_PORT="${AUTH_PORT:-$(free_port)}"
[[ -n "$MCP_PORT" && -n "$AUTH_PORT" ]] || die "no free port found"
[[ "$MCP_PORT" != "$AUTH_PORT" ]] || die "MCP_PORT and AUTH_PORT must differ"
URL="http://127.0.0.1:$MCP_PORT/mcp"

SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

log "starting the quickstart on 127.0.0.1:$MCP_PORT (authorization server 127.0.0.1:$AUTH_PORT)"
"$BIN" --listen "127.0.0.1:$MCP_PORT" --auth-listen "127.0.0.1:$AUTH_PORT" --allow-anonymous \
  >"$RESULTS/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 150); do
  port_in_use "$MCP_PORT" && break
  kill -0 "$SERVER_PID" 2>/dev/null || die "the quickstart exited: $(tail -5 "$RESULTS/server.log")"
  sleep 0.2
done
port_in_use "$MCP_PORT" || die "the quickstart did not start listening within 30 s"

# --- Scenarios ---------------------------------------------------------------------------------
declare -a SUMMARY=()
unexpected=0
run_scenario() {
  local version="$1" scenario="$2" out rc verdict counts
  out="$RESULTS/$version-$scenario.txt"
  set +e
  timeout "$SCENARIO_TIMEOUT" "$NODE" "$SUITE" server --url "$URL" --scenario "$scenario" \
    --spec-version "$version" --expected-failures "$BASELINE" -o "$RESULTS/$version" \
    >"$out" 2>&1
  rc=$?
  set -e
  # Plain text for the summary (the suite colours its output).
  sed -i 's/\x1b\[[0-9;]*m//g' "$out"
  counts="$(grep -Eo 'Passed: [0-9]+/[0-9]+, [0-9]+ failed, [0-9]+ warnings' "$out" | tail -1 || true)"
  case "$rc" in
    0)
      if grep -q '^Expected failures (in baseline):' "$out"; then
        verdict="expected failures only"
      else
        verdict="pass"
      fi
      ;;
    124) verdict="TIMEOUT after ${SCENARIO_TIMEOUT}s" ;;
    *) verdict="UNEXPECTED (exit $rc)" ;;
  esac
  [[ "$rc" == 0 ]] || unexpected=$((unexpected + 1))
  SUMMARY+=("$(printf '%-10s  %-30s  %-42s  %s' "$version" "$scenario" "${counts:-no checks}" "$verdict")")
  if [[ "$rc" != 0 ]]; then
    log "$version $scenario: $verdict; output:"
    grep -E '\] (FAILURE|WARNING) ' "$out" | cut -c1-200 >&2 || true
    sed -n '/^\(Expected failures\|Stale baseline\|Unexpected failures\)/,$p' "$out" >&2
  fi
}

for s in "${SCENARIOS_2025_11_25[@]}"; do run_scenario 2025-11-25 "$s"; done
for s in "${SCENARIOS_2026_07_28[@]}"; do run_scenario 2026-07-28 "$s"; done

# --- Summary -----------------------------------------------------------------------------------
echo
echo "MCP conformance $CONFORMANCE_VERSION against the mcp-guard quickstart ($URL)"
printf '%-10s  %-30s  %-42s  %s\n' "revision" "scenario" "checks" "verdict"
printf '%s\n' "${SUMMARY[@]}"
echo
echo "Expected failures (baseline $BASELINE):"
grep -h '^  ~ ' "$RESULTS"/*.txt | sort -u || echo "  (none)"
echo
echo "Results: $RESULTS"
if ((unexpected > 0)); then
  echo "FAILED: $unexpected scenario(s) with unexpected failures, stale baseline entries or timeouts"
  exit 1
fi
echo "OK: every failure is an expected one"
