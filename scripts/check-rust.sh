#!/usr/bin/env bash
# Checks the Rust workspace natively (x86_64, the rustup toolchain): format,
# clippy with warnings as errors, tests (unit and doc tests), and docs with
# warnings as errors.
#
# Usage: scripts/check-rust.sh
#
# Runs every check even after a failure, then exits non-zero naming the
# failed ones.
#
# Covers every member: the guest SDK and the plugin crates, the WIT parser
# module's crate (tools/wit-wasm, a workspace of its own) and the WASI
# forwarder's (tools/wasi-forwarder, likewise). Plugins build
# natively too (wit-bindgen stubs the host imports off wasm32), so clippy and
# `cargo test` check them; their wasm builds are scripts/build-wasm.sh's job.
# Works from any directory.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# The wasm toolchain's settings (build/toolchain.env, when sourced into the
# caller's shell) must not reach native builds: rustup's cargo and rustc.
unset RUSTC RUSTC_BOOTSTRAP RUSTFLAGS RUSTDOCFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET

failed=()
step() {
    echo "check-rust: $*"
    "$@" || failed+=("$*")
}

step cargo fmt --all --check
step cargo clippy --workspace --all-targets -- -D warnings
step cargo test --workspace
# The SDK's fake host for plugins' native tests (feature fake-host).
step cargo clippy -p wasmplug-guest --features fake-host -- -D warnings
step cargo test -p wasmplug-guest --features fake-host --doc testing
# The SDK: its public API, as users see it.
step env RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps -p wasmplug-guest --features fake-host
# Plugins have no public API: check the docs of their private items, which
# may link to each other.
step env RUSTDOCFLAGS="-Dwarnings -Arustdoc::private-intra-doc-links" \
    cargo doc --no-deps --workspace --exclude wasmplug-guest --document-private-items

# The WIT parser module's crate (tools/wit-wasm): its own workspace, checked
# natively; its wasm build is scripts/build-wit-module.sh's job.
WIT=(--manifest-path "$ROOT/tools/wit-wasm/Cargo.toml")
step cargo fmt "${WIT[@]}" --check
step cargo clippy "${WIT[@]}" --locked --all-targets -- -D warnings
step env RUSTDOCFLAGS=-Dwarnings cargo doc "${WIT[@]}" --locked --no-deps --document-private-items

# The WASI forwarder's crate (tools/wasi-forwarder): the same, natively; its
# component is scripts/build-wit-module.sh's job too.
FORWARDER=(--manifest-path "$ROOT/tools/wasi-forwarder/Cargo.toml")
step bash "$ROOT/scripts/wasi-wit-deps.sh"
step cargo fmt "${FORWARDER[@]}" --check
step cargo clippy "${FORWARDER[@]}" --locked --all-targets -- -D warnings
step env RUSTDOCFLAGS=-Dwarnings cargo doc "${FORWARDER[@]}" --locked --no-deps --document-private-items

# The benchmark suite's comparison plugins: a workspace of their own (core modules,
# not components; see benchmarks/plugins/Cargo.toml). Checked natively like the rest.
BENCH=(--manifest-path "$ROOT/benchmarks/plugins/Cargo.toml")
step cargo fmt --all "${BENCH[@]}" --check
step cargo clippy "${BENCH[@]}" --locked --all-targets -- -D warnings
step env RUSTDOCFLAGS=-Dwarnings cargo doc "${BENCH[@]}" --locked --no-deps --document-private-items

if ((${#failed[@]})); then
    printf 'check-rust: FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "check-rust: all checks passed"
