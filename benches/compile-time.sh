#!/usr/bin/env bash
# Compile-time cost of the macros: a crate with 100 `#[protected]` tools against the same
# crate with 100 plain `#[tool]`s. Reports the median of RUNS clean builds of the crate (its
# dependencies already built) and of RUNS incremental rebuilds after touching one tool.
#
#   bash benches/compile-time.sh            # RUNS=3 by default
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
runs=${RUNS:-3}
work="$root/target/compile-bench"
mkdir -p "$work"
export CARGO_TARGET_DIR="$work/target"

generate() { # name, protected(0/1)
  local dir="$work/$1" protected=$2
  mkdir -p "$dir/src"
  cat > "$dir/Cargo.toml" <<TOML
[package]
name = "$1"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
mcp-guard = { path = "$root/mcp-guard" }
rmcp = { version = "3.11", features = ["server", "macros"] }
schemars = "1"
serde = { version = "1", features = ["derive"] }

[workspace]
TOML
  {
    echo 'use rmcp::{tool, tool_router, handler::server::{router::tool::ToolRouter, wrapper::Parameters}};'
    echo 'mcp_guard::scopes! { pub Scopes { #[baseline] READ = "bench:read", WRITE = "bench:write" } }'
    echo '#[derive(serde::Deserialize, schemars::JsonSchema)] pub struct Args { pub path: String }'
    echo '#[derive(Clone)] pub struct Server { pub tool_router: ToolRouter<Self> }'
    echo '#[tool_router] impl Server {'
    for i in $(seq 1 100); do
      echo "    /// Tool $i."
      if [ "$protected" = 1 ]; then
        if [ $((i % 2)) = 0 ]; then
          echo "    #[mcp_guard::protected(scopes = WRITE, when(path.starts_with(\"/shared\"), scopes = READ))]"
        else
          echo "    #[mcp_guard::protected(scopes = READ)]"
        fi
      fi
      echo "    #[tool] async fn tool_$i(&self, Parameters(a): Parameters<Args>) -> String { a.path }"
    done
    echo '}'
  } > "$dir/src/lib.rs"
}

now() { date +%s.%N; }

measure() { # name -> "clean incremental"
  local dir="$work/$1"
  (cd "$dir" && cargo build -q) # dependencies, once
  local clean=() incr=()
  for _ in $(seq 1 "$runs"); do
    (cd "$dir" && cargo clean -q -p "$1")
    local t0; t0=$(now)
    (cd "$dir" && cargo build -q)
    clean+=("$(awk "BEGIN{printf \"%.2f\", $(now) - $t0}")")
    sed -i 's/\/\/\/ Tool 50\./\/\/\/ Tool 50 (touched)./; t; s/\/\/\/ Tool 50 (touched)\./\/\/\/ Tool 50./' "$dir/src/lib.rs"
    t0=$(now)
    (cd "$dir" && cargo build -q)
    incr+=("$(awk "BEGIN{printf \"%.2f\", $(now) - $t0}")")
  done
  printf '%s %s\n' "$(printf '%s\n' "${clean[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")" \
                   "$(printf '%s\n' "${incr[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")"
}

generate plain_tools 0
generate protected_tools 1
read -r plain_clean plain_incr < <(measure plain_tools)
read -r prot_clean prot_incr < <(measure protected_tools)
echo "| crate | clean build (s) | incremental rebuild (s) |"
echo "|---|---:|---:|"
echo "| 100 plain #[tool] | $plain_clean | $plain_incr |"
echo "| 100 #[protected] + #[tool] | $prot_clean | $prot_incr |"
echo "| ratio | $(awk "BEGIN{printf \"%.3f\", $prot_clean / $plain_clean}") | $(awk "BEGIN{printf \"%.3f\", $prot_incr / $plain_incr}") |"
