#!/usr/bin/env bash
# Builds the wasm that wasmplug ships inside its Python package, each with a stamp
# next to it (<file>.stamp: the sha256 of its crate's sources, Cargo.toml,
# Cargo.lock, WIT files and this script, then the sha256 of the built file):
#
#   src/wasmplug/_wit/wit.wasm          the WIT parser module: tools/wit-wasm (the
#                                       official wit-parser and wit-component crates)
#                                       as a wasm32-wasip1 core module
#   src/wasmplug/wasi_forwarder.wasm    the WASI forwarder: tools/wasi-forwarder as a
#                                       wasm32-wasip2 component (see
#                                       src/wasmplug/_wasiforward.py); its WASI WIT
#                                       comes from the pinned `wasip2` crate
#                                       (scripts/wasi-wit-deps.sh), so the stamp
#                                       covers it through Cargo.lock
#
# Usage: scripts/build-wit-module.sh [--check]
#
#   (none)    rebuild both (pinned: Cargo.lock, --locked) and their stamps
#   --check   recompute the stamps and fail if a shipped file is stale or missing;
#             builds nothing (cheap, for CI and scripts/test.sh)
#
# Toolchain: rustup's wasm32-wasip1 and wasm32-wasip2 targets (`rustup target add`).
# Uses $CARGO_TARGET_DIR when set, else each crate's target/. Works from any
# directory.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# crate directory (relative to the repository), target, built file name, shipped path
ARTIFACTS=(
    "tools/wit-wasm wasm32-wasip1 wasmplug_wit_wasm.wasm src/wasmplug/_wit/wit.wasm"
    "tools/wasi-forwarder wasm32-wasip2 wasmplug_wasi_forwarder.wasm src/wasmplug/wasi_forwarder.wasm"
)

# stamp CRATE: sha256 over each input's path (relative to the repository) and bytes.
# (wit.wasm's stamp predates build.rs and wit/ inputs: tools/wit-wasm has neither.)
stamp() {
    (
        cd "$ROOT"
        {
            echo "$1/Cargo.toml" "$1/Cargo.lock" scripts/build-wit-module.sh
            if [[ -f $1/build.rs ]]; then echo "$1/build.rs"; fi
            find "$1/src" -type f -name '*.rs' | LC_ALL=C sort
            if [[ -d $1/wit ]]; then
                find "$1/wit" -type f -name '*.wit' -not -path "$1/wit/deps/*" | LC_ALL=C sort
            fi
        } | tr ' ' '\n' | while read -r f; do
            printf '%s %s\n' "$f" "$(sha256sum <"$f" | cut -d' ' -f1)"
        done | sha256sum | cut -d' ' -f1
    )
}

if [[ ${1:-} == --check ]]; then
    status=0
    for artifact in "${ARTIFACTS[@]}"; do
        read -r crate _ _ out <<<"$artifact"
        out=$ROOT/$out
        if [[ ! -f $out || ! -f $out.stamp ]]; then
            echo "build-wit-module: $out or its stamp is missing: run scripts/build-wit-module.sh" >&2
            status=1
            continue
        fi
        read -r have module_sha <"$out.stamp"
        if [[ $have != "$(stamp "$crate")" ]]; then
            echo "build-wit-module: $out is stale ($crate or this script changed):" \
                "run scripts/build-wit-module.sh and commit the result" >&2
            status=1
        elif [[ $(sha256sum <"$out" | cut -d' ' -f1) != "$module_sha" ]]; then
            echo "build-wit-module: $out does not match its stamp: rebuild it" >&2
            status=1
        fi
    done
    if ((status == 0)); then
        echo "build-wit-module: the shipped modules are current"
    fi
    exit "$status"
elif (($#)); then
    echo "build-wit-module: unknown argument: $1 (usage: build-wit-module.sh [--check])" >&2
    exit 2
fi

# The wasm toolchain settings of scripts/wasm-toolchain.sh must not leak in.
unset RUSTC RUSTC_BOOTSTRAP RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET
for artifact in "${ARTIFACTS[@]}"; do
    read -r crate target built out <<<"$artifact"
    if ! rustc --print sysroot >/dev/null 2>&1 \
        || [[ ! -d $(rustc --print sysroot)/lib/rustlib/$target/lib ]]; then
        echo "build-wit-module: adding the $target target (rustup target add $target)" >&2
        rustup target add "$target" >&2
    fi
    target_dir=${CARGO_TARGET_DIR:-$ROOT/$crate/target}
    if [[ $crate == tools/wasi-forwarder ]]; then
        bash "$ROOT/scripts/wasi-wit-deps.sh"
    fi
    cargo build --manifest-path "$ROOT/$crate/Cargo.toml" --release --locked --target "$target" \
        --target-dir "$target_dir" >&2
    cp "$target_dir/$target/release/$built" "$ROOT/$out.tmp"
    mv "$ROOT/$out.tmp" "$ROOT/$out"
    printf '%s %s\n' "$(stamp "$crate")" "$(sha256sum <"$ROOT/$out" | cut -d' ' -f1)" >"$ROOT/$out.stamp"
    echo "build-wit-module: $out ($(stat -c %s "$ROOT/$out") bytes)"
done
