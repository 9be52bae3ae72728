#!/usr/bin/env bash
# The rule-engine command: sets everything up (scripts/setup.sh), then streams the
# 336,776 real 2013 New York flights through every tenant's plugin.
#
# Usage: scripts/rule-engine.sh [run.py options, e.g. --limit 20000 --without-hostile]
# Works from any directory.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=$("$ROOT/scripts/setup.sh" | tail -n 1)
exec "$PY" "$ROOT/examples/rule-engine/run.py" --wasm-dir "$ROOT/build/wasm" "$@"
