#!/usr/bin/env bash
# Builds what the benchmark suite (benchmarks/run.py) runs:
#
#   build/wasm/benchcalls.wasm, build/wasm/ops_thresholds.wasm
#       wasmplug's components, by scripts/build-wasm.sh (wasm32-wasip2), and
#       the same crates as core modules for the fast path (--core, wasm32-wasip1)
#   build/bench/wasm/extism_bench.wasm
#       the Extism plugin (benchmarks/plugins/extism-bench, extism-pdk)
#   build/bench/wasm/raw_core.wasm
#       the raw core module (benchmarks/plugins/raw-core, no imports)
#
# The two comparison plugins are core modules for wasm32-unknown-unknown in
# their own cargo workspace (benchmarks/plugins/), so scripts/build-wasm.sh
# never sees them. The target comes from the toolchain scripts/wasm-toolchain.sh
# recorded: on the rustup route `rustup target add wasm32-unknown-unknown`; on
# the Debian route (rustc-web, no prebuilt wasm std) std is rebuilt with the
# recorded -Zbuild-std flags, as for the components. If neither works, it
# stops and says what to install.
#
# Usage: scripts/build-bench.sh
#
# Idempotent; a second run takes seconds. Cargo's target directory is
# $CARGO_TARGET_DIR/bench-plugins (default target/bench-plugins).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR=$ROOT/build/bench/wasm
readonly TARGET=wasm32-unknown-unknown

die() {
    echo "build-bench: error: $*" >&2
    exit 1
}

"$ROOT/scripts/build-wasm.sh" benchcalls ops-thresholds
"$ROOT/scripts/build-wasm.sh" --core benchcalls ops-thresholds

# shellcheck source=/dev/null
source "$ROOT/build/toolchain.env"
cargo_env=(env -u RUSTC_BOOTSTRAP -u RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS "RUSTC=$RUSTC")
if [[ -n $RUSTC_BOOTSTRAP ]]; then
    cargo_env+=("RUSTC_BOOTSTRAP=$RUSTC_BOOTSTRAP")
fi
read -r -a build_std <<<"$WASM_BUILD_STD"

if [[ $WASM_TOOLCHAIN_ROUTE == rustup ]]; then
    sysroot=$("$RUSTC" --print sysroot)
    if [[ ! -d $sysroot/lib/rustlib/$TARGET ]]; then
        echo "build-bench: rustup target add $TARGET" >&2
        (cd "$ROOT" && timeout "${WASMPLUG_RUSTUP_TIMEOUT:-300}" rustup target add "$TARGET") >&2 \
            || die "'rustup target add $TARGET' failed. Without rustup's servers, use the" \
                "Debian route: WASMPLUG_WASM_ROUTE=debian scripts/wasm-toolchain.sh --refresh" \
                "(rustc-web rebuilds std for $TARGET; see docs/toolchain.md)"
    fi
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/bench-plugins
mkdir -p "$OUT_DIR"
for crate in extism-bench raw-core; do
    lib=${crate//-/_}
    echo "build-bench: building $crate -> build/bench/wasm/$lib.wasm" >&2
    (cd "$ROOT/benchmarks/plugins" \
        && "${cargo_env[@]}" "$CARGO" build --quiet --release --locked --target "$TARGET" \
            "${build_std[@]}" -p "$crate") \
        || die "building $crate for $TARGET failed (toolchain: $WASM_TOOLCHAIN_DESCRIPTION)"
    cp "$CARGO_TARGET_DIR/$TARGET/release/$lib.wasm" "$OUT_DIR/$lib.wasm"
done
echo "build-bench: built $(ls "$OUT_DIR" | tr '\n' ' ')into build/bench/wasm/" >&2
