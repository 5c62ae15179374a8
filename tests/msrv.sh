#!/usr/bin/env bash
# The declared minimum Rust version (`rust-version` in Cargo.toml) builds the workspace.
#
# With a toolchain of exactly that version installed (`rustup toolchain install <version>`),
# the workspace is checked with it. Otherwise the toolchain that ran the build and tests
# before this script must be that version, so that the build just made is the MSRV build;
# any other toolchain fails the check, as the claim would then be unverified.
set -euo pipefail
cd "$(dirname "$0")/.."
msrv=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml)
[[ -n "$msrv" ]] || { echo "msrv: no rust-version in Cargo.toml" >&2; exit 1; }
full=$msrv
[[ "$full" =~ ^[0-9]+\.[0-9]+$ ]] && full="$full.0"
have=$(rustc --version | awk '{print $2}')
if [[ "$have" == "$full" ]]; then
    echo "msrv: rustc $have is the declared minimum ($msrv); the build above is the MSRV build"
elif RUSTUP_AUTO_INSTALL=0 rustup run "$full" rustc --version >/dev/null 2>&1; then
    echo "msrv: checking with rustc $full (the default toolchain is $have)"
    RUSTUP_AUTO_INSTALL=0 cargo "+$full" check --workspace --all-targets --all-features
else
    echo "msrv: rust-version is $msrv, but rustc is $have and no $full toolchain is installed" >&2
    exit 1
fi
