#!/usr/bin/env bash
# Fresh-process cost: `import wasmplug` plus the first world, each in a new Python
# process, one case after another; the median of N runs, in milliseconds.
#
#   import wasmplug
#   import + load_world, first ever   (empty cache: the WIT parser module is compiled)
#   import + load_world, parser cached, result not
#   import + load_world, result cached (no WebAssembly runs at all)
#   import the generated tenant_bindings (embeds the resolved WIT: no parsing)
#
# With --baseline SRC (the src/ directory of another wasmplug checkout, e.g. a
# `git worktree` of 0.1) the first and a cached load_world are measured with it too,
# in the same run. Absolute times on shared machines are noisy: compare within a run.
#
# Usage: benchmarks/bench_startup.sh [--runs N] [--baseline SRC]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
runs=7
baseline=
while (($#)); do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --baseline) baseline=$(cd "$2" && pwd); shift 2 ;;
        *) echo "bench_startup: unknown option $1" >&2; exit 2 ;;
    esac
done
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT

measure() {  # label, command run before each run, python code, PYTHONPATH
    local label=$1 prep=$2 code=$3 path=$4 times=()
    for _ in $(seq "$runs"); do
        eval "$prep"
        times+=("$(cd "$ROOT" && XDG_CACHE_HOME=$cache PYTHONPATH=$path "$PY" -c "
import time
t0 = time.perf_counter()
$code
print(f'{(time.perf_counter() - t0) * 1000:.1f}')")")
    done
    median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p")
    printf '%-52s %8s ms   (runs: %s)\n' "$label" "$median" "${times[*]}"
}

load='import wasmplug; wasmplug.load_world("examples/rule-engine/wit", "tenant")'
if [[ -n $baseline ]]; then
    measure "baseline: import wasmplug" ":" "import wasmplug" "$baseline"
    measure "baseline: import + load_world" ":" "$load" "$baseline"
fi
measure "import wasmplug" ":" "import wasmplug" ""
measure "import + load_world, first ever (compile parser)" "rm -rf $cache/*" "$load" ""
measure "import + load_world, parser cached, result not" "rm -rf $cache/wasmplug/wit" "$load" ""
measure "import + load_world, result cached" ":" "$load" ""
measure "import generated tenant_bindings" ":" "import tenant_bindings" \
    "$ROOT/examples/rule-engine"
