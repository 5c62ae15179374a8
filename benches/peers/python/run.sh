#!/usr/bin/env bash
# Starts the Python SDK peer (installed by benches/peers/install.sh); exec, so the pid is the server's.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
venv="$root/target/peers/venv"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "python peer: $venv is missing; run: bash benches/peers/install.sh" >&2
  exit 1
fi
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" "$root/benches/peers/python/server.py"
