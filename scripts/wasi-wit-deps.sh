#!/usr/bin/env bash
# Puts the WASI 0.2 WIT packages that tools/wasi-forwarder builds against into
# tools/wasi-forwarder/wit/deps/ (not committed): they are the ones the `wasip2` crate
# publishes in its package (its wit/deps/), at the exact version the forwarder's
# Cargo.lock pins (a build-dependency there, for that reason only). Run by
# scripts/build-wit-module.sh and scripts/check-rust.sh before they build the crate.
#
# Usage: scripts/wasi-wit-deps.sh
# Needs cargo (and crates.io the first time, to fetch the pinned crate).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CRATE=$ROOT/tools/wasi-forwarder
manifest=$(
    cargo metadata --manifest-path "$CRATE/Cargo.toml" --format-version 1 --locked |
        python3 -c '
import json, sys
found = [p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "wasip2"]
if len(found) != 1:
    sys.exit(f"wasi-wit-deps: expected one wasip2 package in the dependency graph, found {len(found)}")
print(found[0])
'
)
source=$(dirname "$manifest")/wit/deps
if [[ ! -d $source ]]; then
    echo "wasi-wit-deps: $source is missing: the wasip2 package no longer carries its WIT" >&2
    exit 1
fi
rm -rf "$CRATE/wit/deps.tmp"
mkdir -p "$CRATE/wit/deps.tmp"
cp -R "$source"/. "$CRATE/wit/deps.tmp"/
rm -rf "$CRATE/wit/deps"
mv "$CRATE/wit/deps.tmp" "$CRATE/wit/deps"
