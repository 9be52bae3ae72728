#!/usr/bin/env bash
# Builds wasmplug's WIT parser module: tools/wit-wasm (the official wit-parser
# and wit-component crates) to a wasm32-wasip1 core module, shipped in the
# Python package as src/wasmplug/_wit/wit.wasm, with a stamp next to it
# (wit.wasm.stamp: the sha256 of the crate's sources, Cargo.toml, Cargo.lock
# and this script).
#
# Usage: scripts/build-wit-module.sh [--check]
#
#   (none)    rebuild the module (pinned: Cargo.lock, --locked) and its stamp
#   --check   recompute the stamp and fail if the shipped module is stale or
#             missing; builds nothing (cheap, for CI and scripts/test.sh)
#
# Toolchain: rustup's wasm32-wasip1 target (`rustup target add wasm32-wasip1`).
# Uses $CARGO_TARGET_DIR when set, else tools/wit-wasm/target. Works from any
# directory.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CRATE=$ROOT/tools/wit-wasm
OUT=$ROOT/src/wasmplug/_wit/wit.wasm
STAMP=$OUT.stamp
TARGET=wasm32-wasip1

# stamp: sha256 over each input's path (relative to the repository) and bytes.
stamp() {
    (
        cd "$ROOT"
        {
            echo tools/wit-wasm/Cargo.toml tools/wit-wasm/Cargo.lock scripts/build-wit-module.sh
            find tools/wit-wasm/src -type f -name '*.rs' | LC_ALL=C sort
        } | tr ' ' '\n' | while read -r f; do
            printf '%s %s\n' "$f" "$(sha256sum <"$f" | cut -d' ' -f1)"
        done | sha256sum | cut -d' ' -f1
    )
}

if [[ ${1:-} == --check ]]; then
    want=$(stamp)
    if [[ ! -f $OUT || ! -f $STAMP ]]; then
        echo "build-wit-module: $OUT or its stamp is missing: run scripts/build-wit-module.sh" >&2
        exit 1
    fi
    read -r have module_sha <"$STAMP"
    if [[ $have != "$want" ]]; then
        echo "build-wit-module: the shipped module is stale (tools/wit-wasm or this script" \
            "changed): run scripts/build-wit-module.sh and commit the result" >&2
        exit 1
    fi
    if [[ $(sha256sum <"$OUT" | cut -d' ' -f1) != "$module_sha" ]]; then
        echo "build-wit-module: $OUT does not match its stamp: rebuild it" >&2
        exit 1
    fi
    echo "build-wit-module: the shipped module is current"
    exit 0
elif (($#)); then
    echo "build-wit-module: unknown argument: $1 (usage: build-wit-module.sh [--check])" >&2
    exit 2
fi

# The wasm toolchain settings of scripts/wasm-toolchain.sh must not leak in.
unset RUSTC RUSTC_BOOTSTRAP RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET
if ! rustc --print sysroot >/dev/null 2>&1 \
    || [[ ! -d $(rustc --print sysroot)/lib/rustlib/$TARGET/lib ]]; then
    echo "build-wit-module: adding the $TARGET target (rustup target add $TARGET)" >&2
    rustup target add "$TARGET" >&2
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$CRATE/target}
cargo build --manifest-path "$CRATE/Cargo.toml" --release --locked --target "$TARGET" \
    --target-dir "$TARGET_DIR" >&2
cp "$TARGET_DIR/$TARGET/release/wasmplug_wit_wasm.wasm" "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
printf '%s %s\n' "$(stamp)" "$(sha256sum <"$OUT" | cut -d' ' -f1)" >"$STAMP"
echo "build-wit-module: $OUT ($(stat -c %s "$OUT") bytes)"
