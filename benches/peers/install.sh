#!/usr/bin/env bash
# Installs the benchmark's peer MCP servers at their pinned versions under target/peers/:
#   target/peers/venv      Python venv from benches/peers/python/requirements.txt
#   target/peers/node-v1   npm ci of benches/peers/node-v1 (package.json + package-lock.json)
#   target/peers/node-v2   npm ci of benches/peers/node-v2 (package.json + package-lock.json)
# Idempotent: a part whose pins are unchanged since its last successful install is skipped.
# Usage (from anywhere): bash benches/peers/install.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
src="$root/benches/peers"
dest="$root/target/peers"
mkdir -p "$dest"

stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# --- Python: official MCP Python SDK + PyJWT[crypto] -------------------------------------
python="${PYTHON:-python3}"
venv="$dest/venv"
want="$(stamp_of "$src/python/requirements.txt"; "$python" -c 'import sys; print(sys.version)')"
if [[ -x "$venv/bin/python" && -f "$venv/.peers-installed" && "$(cat "$venv/.peers-installed")" == "$want" ]]; then
  echo "peers: python venv up to date ($venv)"
else
  echo "peers: installing python venv ($venv)"
  rm -rf "$venv"
  timeout 120 "$python" -m venv "$venv"
  timeout 600 "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$src/python/requirements.txt"
  printf '%s' "$want" > "$venv/.peers-installed"
fi

# --- Node: official MCP TypeScript SDK v1 and v2 ----------------------------------------
for peer in node-v1 node-v2; do
  dir="$dest/$peer"
  want="$(stamp_of "$src/$peer/package.json" "$src/$peer/package-lock.json"; node --version)"
  if [[ -d "$dir/node_modules" && -f "$dir/.peers-installed" && "$(cat "$dir/.peers-installed")" == "$want" ]]; then
    echo "peers: $peer up to date ($dir)"
    continue
  fi
  echo "peers: installing $peer ($dir)"
  mkdir -p "$dir"
  rm -f "$dir/.peers-installed"
  cp "$src/$peer/package.json" "$src/$peer/package-lock.json" "$dir/"
  (cd "$dir" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
  printf '%s' "$want" > "$dir/.peers-installed"
done

echo "peers: installed under $dest"
