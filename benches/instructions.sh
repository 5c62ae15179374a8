#!/usr/bin/env bash
# Instructions per request of each stack of `mcp-guard/benches/stack.rs`, counted by
# callgrind: unlike wall-clock time, the count is the same on a busy machine as on an idle
# one, so a change to the request path shows as a change of the count. Each stack serves 100
# requests uncounted (one-time set-up), then N counted ones (default 1000).
#
#   bash benches/instructions.sh            # needs valgrind (apt-get install valgrind)
#   N=2000 bash benches/instructions.sh
#
# Callgrind does not model the CPU's SHA extensions: the SHA-256 of the verified-token cache
# key counts several times what it costs on hardware that has them. Large copies (`rep movsb`)
# count as one instruction. Read the counts as the work done, and the criterion figures of
# the same benchmark as its time.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-1000}
command -v valgrind >/dev/null || {
  echo "valgrind is needed: apt-get install valgrind" >&2
  exit 2
}
cargo bench -p mcp-guard --bench stack --no-run 2>&1 | grep -v '^ *Compiling' >&2
bin=$(cargo bench -p mcp-guard --bench stack --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "stack" and m.get("executable"):
        print(m["executable"])')
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() { # stack name (as the benchmark spells it)
  MCP_GUARD_STACK_RUN="$1:$n" timeout 600 valgrind --tool=callgrind \
    --toggle-collect='stack::measured*' --callgrind-out-file="$out/cg" "$bin" --bench 2>&1 |
    sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' | tail -1
}
row() { # label, instructions, baseline
  printf '%-36s %14d %9.3fx\n' "$1" $(($2 / n)) "$(python3 -c "print($2 / $3)")"
}
printf '%-36s %14s %10s\n' stack 'instr/request' 'vs bare'
for wire in '' /2026; do
  bare=$(count "bare$wire")
  [ -z "$wire" ] && bare2025=$bare
  row "bare${wire:+ (2026-07-28)}" "$bare" "$bare"
  for stack in 'layer only' guarded; do
    row "$stack${wire:+ (2026-07-28)}" "$(count "$stack$wire")" "$bare"
  done
done
new=$(count 'guarded, every token new')
row 'guarded, every token new' "$new" "$bare2025"
decode=$(count 'jsonwebtoken::decode')
printf '%-36s %14d\n' 'jsonwebtoken::decode (the unit)' $((decode / n))
guarded=$(count guarded)
printf 'a new token costs %d instructions over a reused one: %.2fx one decode\n' \
  $(((new - guarded) / n)) "$(python3 -c "print(($new - $guarded) / $decode)")"
