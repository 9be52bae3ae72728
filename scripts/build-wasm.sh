#!/usr/bin/env bash
# Builds the repository's plugin crates to wasm32-wasip2 components.
#
# Every workspace member that is a `cdylib` is a plugin: the rule-engine
# tenants (examples/rule-engine/tenants/*) and the test fixtures
# (tests/fixtures/*). Each is built in release mode and copied to
# build/wasm/<crate_name_with_underscores>.wasm.
#
# Usage: scripts/build-wasm.sh [--list] [--core] [CRATE ...]
#
#   CRATE   build only these plugins (package names; `-` or `_` both work).
#           A path instead (it contains a `/`, e.g. `.` is written `./`, or
#           names a directory) is a plugin crate outside the workspace, such
#           as one made by `wasmplug new`: it is built with its own
#           Cargo.toml into <path>/build/wasm/ (or build/wasm-core/).
#   --list  print the plugin crates and exit
#   --core  build core modules instead, into build/wasm-core/: the same
#           sources for wasm32-wasip1 (WASI preview 1), with the world
#           wit-bindgen embedded in a component-type custom section. wasmplug
#           runs these on its fast path (its own canonical ABI over wasmtime's
#           core API). A crate that uses WASI preview 2 directly (the
#           `wasip2` crate) has no core build: it says so in its Cargo.toml
#           with `[package.metadata.wasmplug] core = false` and is skipped.
#
# An Extism plugin crate (extism-pdk; `[package.metadata.wasmplug] extism = true`)
# is built by --core only: a wasm32-wasip1 core module importing
# `extism:host/env`, which has no WIT to make a component of. The component
# build skips it.
#
# Runs scripts/wasm-toolchain.sh first (fast once the toolchain is set up)
# and uses the toolchain it records in build/toolchain.env. Cargo's target
# directory is shared ($CARGO_TARGET_DIR, default target/), so the standard
# library (rebuilt on the Debian route) is compiled once and later runs take
# seconds. Exits non-zero, naming the crates, if any build fails. Works from
# any directory.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR=$ROOT/build/wasm

list_only=0
core=0
requested=()
external=()
while (($#)); do
    case $1 in
        --list) list_only=1; shift ;;
        --core) core=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        -*) echo "build-wasm: unknown option: $1 (see --help)" >&2; exit 2 ;;
        *)
            if [[ $1 == */* || -d $1 ]]; then
                [[ -f $1/Cargo.toml ]] || { echo "build-wasm: no Cargo.toml in $1" >&2; exit 2; }
                external+=("$(cd "$1" && pwd)")
            else
                requested+=("$1")
            fi
            shift
            ;;
    esac
done

die() {
    echo "build-wasm: error: $*" >&2
    exit 1
}

"$ROOT/scripts/wasm-toolchain.sh"
# shellcheck source=/dev/null
source "$ROOT/build/toolchain.env"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
# A toolchain.env sourced into the caller's shell must not leak into ours
# through exported variables: pass exactly the recorded toolchain.
cargo_env=(env -u RUSTC_BOOTSTRAP -u RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS "RUSTC=$RUSTC")
if [[ -n $RUSTC_BOOTSTRAP ]]; then
    cargo_env+=("RUSTC_BOOTSTRAP=$RUSTC_BOOTSTRAP")
fi

# Plugin crates: "<package name> <lib target name>" per line, sorted.
metadata=$(cd "$ROOT" && "${cargo_env[@]}" "$CARGO" metadata --no-deps --format-version 1) \
    || die "cargo metadata failed (is the workspace Cargo.toml valid?)"
plugins=$(python3 -c '
import json, sys
meta = json.load(sys.stdin)
members = set(meta["workspace_members"])
for pkg in sorted(meta["packages"], key=lambda p: p["name"]):
    if pkg["id"] not in members:
        continue
    meta = (pkg.get("metadata") or {}).get("wasmplug") or {}
    kind = "extism" if meta.get("extism") else "core" if meta.get("core", True) else "component-only"
    for target in pkg["targets"]:
        if "cdylib" in target["crate_types"]:
            print(pkg["name"], target["name"], kind)
' <<<"$metadata")

if ((list_only)); then
    printf '%s\n' "$plugins" | cut -d' ' -f1
    exit 0
fi
[[ -n $plugins ]] || die "no cdylib crates in the workspace"

# Select the requested crates (all when none are named, none when only paths are).
selected=()
if ((${#external[@]})) && ((${#requested[@]} == 0)); then
    :
elif ((${#requested[@]})); then
    for want in "${requested[@]}"; do
        match=$(awk -v w="${want//-/_}" '{ n = $1; gsub("-", "_", n); if (n == w) print $1 }' <<<"$plugins")
        [[ -n $match ]] || die "'$want' is not a plugin crate; plugin crates are:" \
            "$(cut -d' ' -f1 <<<"$plugins" | tr '\n' ' ')"
        if ((!core)) && [[ $(awk -v n="$match" '$1 == n { print $3 }' <<<"$plugins") == extism ]]; then
            die "'$want' is an Extism plugin: it has no component build; use --core"
        fi
        selected+=("$match")
    done
else
    while read -r name _ only; do
        if ((core)) && [[ $only == component-only ]]; then
            echo "build-wasm: skipping $name (component-only: [package.metadata.wasmplug] core = false)"
            continue
        fi
        if ((!core)) && [[ $only == extism ]]; then
            continue # an Extism plugin: built by --core only
        fi
        selected+=("$name")
    done <<<"$plugins"
fi

read -r -a build_std <<<"$WASM_BUILD_STD"
read -r -a rustc_args <<<"$WASM_RUSTC_ARGS"
# A component starts with "\0asm" and layer 1 (0d 00 01 00); a core module has
# version 1 (01 00 00 00).
expected_header=0061736d0d000100
kind=component
target=$WASM_TARGET
if ((core)); then
    OUT_DIR=$ROOT/build/wasm-core
    target=$WASM_CORE_TARGET
    expected_header=0061736d01000000
    kind="core module"
    # wasm32-wasip1 links with wasm-ld itself, not wasm-component-ld: on the
    # Debian route the wasm-ld path becomes the linker.
    core_args=()
    for arg in "${rustc_args[@]}"; do
        case $arg in
            link-arg=--wasm-ld-path=*) core_args+=("linker=${arg#link-arg=--wasm-ld-path=}") ;;
            *) core_args+=("$arg") ;;
        esac
    done
    rustc_args=("${core_args[@]}")
fi
out_rel=${OUT_DIR#"$ROOT/"}
mkdir -p "$OUT_DIR"
failed=()

# build_one LABEL DIR LIB OUT [CARGO ARG...]: builds one plugin crate from DIR (with the
# extra cargo arguments) and copies its artifact to OUT/LIB.wasm once its header shows
# the right kind; on failure records LABEL in $failed and leaves no stale plugin behind.
build_one() {
    local label=$1 dir=$2 lib=$3 out=$4
    shift 4
    local shown=${out#"$ROOT"/}
    echo "build-wasm: building $label -> $shown/$lib.wasm"
    local start=$SECONDS
    if ! (cd "$dir" && "${cargo_env[@]}" "$CARGO" rustc --release --lib "$@" \
        --target "$target" "${build_std[@]}" -- "${rustc_args[@]}"); then
        echo "build-wasm: FAILED to build $label" >&2
        rm -f "$out/$lib.wasm"
        failed+=("$label")
        return
    fi
    local artifact=$CARGO_TARGET_DIR/$target/release/$lib.wasm header
    header=$(od -An -tx1 -N8 "$artifact" 2>/dev/null | tr -d ' \n')
    if [[ $header != "$expected_header" ]]; then
        echo "build-wasm: FAILED: $artifact is not a $kind (header $header)" >&2
        rm -f "$out/$lib.wasm"
        failed+=("$label")
        return
    fi
    cp "$artifact" "$out/$lib.wasm"
    echo "build-wasm: built $shown/$lib.wasm ($(wc -c <"$out/$lib.wasm") bytes, $((SECONDS - start)) s)"
}

for name in "${selected[@]}"; do
    lib=$(awk -v n="$name" '$1 == n { print $2 }' <<<"$plugins")
    build_one "$name" "$ROOT" "$lib" "$OUT_DIR" -p "$name"
done

# Crates outside the workspace: each with its own Cargo.toml (and Cargo.lock),
# the same toolchain and the same shared target directory.
for dir in "${external[@]}"; do
    lib=$(cd "$dir" && "${cargo_env[@]}" "$CARGO" metadata --no-deps --format-version 1 \
        | python3 -c '
import json, sys
meta = json.load(sys.stdin)
root = [p for p in meta["packages"] if p["manifest_path"] == sys.argv[1]]
for target in (root or meta["packages"])[0]["targets"]:
    if "cdylib" in target["crate_types"]:
        print(target["name"])
        break
' "$dir/Cargo.toml") || lib=
    if [[ -z $lib ]]; then
        echo "build-wasm: FAILED: $dir is not a plugin crate (no cdylib target)" >&2
        failed+=("$dir")
        continue
    fi
    ext_out=$dir/build/$(basename "$OUT_DIR")
    mkdir -p "$ext_out"
    build_one "$dir" "$dir" "$lib" "$ext_out"
done

total=$((${#selected[@]} + ${#external[@]}))
if ((${#failed[@]})); then
    die "${#failed[@]} of $total plugin(s) failed to build: ${failed[*]}"
fi
if ((${#external[@]})); then
    echo "build-wasm: $total plugin(s) built"
else
    echo "build-wasm: ${#selected[@]} plugin(s) built into $out_rel/"
fi
