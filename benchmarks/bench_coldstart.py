"""Cold start side by side: the benchmark suite's two start-up cases (``new_process``:
import, load the cached plugin, first call; ``import_time``: the import alone), with
the suite's own scripts and environment (bytecode cached, private caches), but with
the alternatives taking turns process by process, optionally against another wasmplug
source tree (``--baseline SRC``, e.g. the ``src/`` of the commit before a change), and
with as many runs as asked: on a shared machine the suite's few runs per case are too
noisy to compare two versions of wasmplug.

Usage (from the repository root, after ``python -m benchmarks`` has built the
plugins once)::

    python benchmarks/bench_coldstart.py [--runs 9] [--baseline SRC] [--steps]

Prints one line per case and alternative: median, p25 and p75 in milliseconds over
``--runs`` processes, after one warm-up run each (which fills the caches). With
``--steps``, instead: where a new wasmplug process's time goes, each step timed in
order in one process (the imports of a step are what it adds to the steps before),
medians over ``--runs`` processes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import suite  # noqa: E402

ALTERNATIVES = ("wasmplug", "wasmtime_component", "raw_wasmtime", "extism")

#: The ``--steps`` script: (label, code) per step, run in order in one process.
STEPS = [
    (
        "standard library modules wasmplug uses",
        "import typing, re, pathlib, logging, json, hashlib",
    ),
    ("import wasmtime", "import wasmtime"),
    ("import wasmtime.component", "import wasmtime.component"),
    ("import attrs", "import attrs"),
    ("import cbor2", "import cbor2"),
    ("the WIT model and front end (wasmplug._wit)", "import wasmplug._wit"),
    ("the policy classes (wasmplug._policy)", "import wasmplug._policy"),
    ("codecs (wasmplug._bindings, _codec)", "import wasmplug._bindings, wasmplug._codec"),
    ("world, host capabilities (wasmplug._world)", "import wasmplug._world"),
    ("manifest (wasmplug._manifest)", "import wasmplug._manifest"),
    ("plugin, component backend, engine (wasmplug._plugin)", "import wasmplug._plugin"),
    ("load_world of the cached WIT", "world = wasmplug.load_world({wit!r}, 'benchcalls')"),
    ("Engine.default()", "wasmplug.Engine.default()"),
    ("load from the compile cache", "plugin = wasmplug.load({component!r}, world=world)"),
    ("first call", "assert plugin.call('add', 1, 2) == 3"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="timed processes per line")
    parser.add_argument("--baseline", type=Path, help="src/ of another wasmplug tree")
    parser.add_argument("--steps", action="store_true", help="where wasmplug's time goes")
    args = parser.parse_args(argv)
    if args.steps:
        return _steps(args.runs)
    import wasmtime
    import wasmtime.component as wc

    with tempfile.TemporaryDirectory(prefix="wasmplug-coldstart-") as tmp:
        work = Path(tmp)
        paths = {
            "wit": str(ROOT / "tests" / "fixtures" / "benchcalls" / "wit"),
            "component": str(ROOT / "build" / "wasm" / "benchcalls.wasm"),
            "core": str(ROOT / "build" / "bench" / "wasm" / "raw_core.wasm"),
            "extism_wasm": str(ROOT / "build" / "bench" / "wasm" / "extism_bench.wasm"),
            "component_cache": str(work / "benchcalls.cwasm"),
            "core_cache": str(work / "raw_core.cwasm"),
        }
        engine = wasmtime.Engine()
        Path(paths["component_cache"]).write_bytes(
            wc.Component.from_file(engine, paths["component"]).serialize()
        )
        Path(paths["core_cache"]).write_bytes(
            wasmtime.Module.from_file(engine, paths["core"]).serialize()
        )
        env = suite._python_env(work / "cache")
        runs: list[tuple[str, str, str, dict[str, str]]] = []
        for case, scripts in (("new_process", suite._NEW_PROCESS), ("import", suite._IMPORT)):
            for alt in ALTERNATIVES:
                if alt == "extism" and not _have("extism"):
                    continue
                code = suite._TIMED.format(body=scripts[alt].format(**paths))
                if alt == "wasmplug" and args.baseline is not None:
                    base = suite._python_env(work / "cache-baseline")
                    base["PYTHONPATH"] = str(args.baseline.resolve())
                    runs.append((case, "wasmplug (baseline)", code, base))
                runs.append((case, alt, code, env))
        times: dict[tuple[str, str], list[float]] = {}
        for round_ in range(args.runs + 1):
            for case, alt, code, run_env in runs:
                ms, answer = suite._run_script(code, run_env, 300)
                if answer != "3":
                    raise suite.WrongAnswer(f"{case}/{alt}: add(1, 2) returned {answer}")
                if round_:  # round 0 warms the caches
                    times.setdefault((case, alt), []).append(float(ms))
    for (case, alt), samples in times.items():
        s = suite._summary(samples, len(samples))
        print(
            f"{case:12} {alt:20} median {s['median']:8.1f} ms"
            f"   p25 {s['p25']:8.1f}   p75 {s['p75']:8.1f}   runs {s['n']}"
        )
    return 0


def _steps(runs: int) -> int:
    paths = {
        "wit": str(ROOT / "tests" / "fixtures" / "benchcalls" / "wit"),
        "component": str(ROOT / "build" / "wasm" / "benchcalls.wasm"),
    }
    lines = ["import time", "import wasmplug", "_t = [time.perf_counter()]"]
    for _, code in STEPS:
        lines += [code.format(**paths), "_t.append(time.perf_counter())"]
    lines.append("print(*(round((b - a) * 1000, 3) for a, b in zip(_t, _t[1:])))")
    script = "\n".join(lines)
    with tempfile.TemporaryDirectory(prefix="wasmplug-coldstart-") as tmp:
        env = suite._python_env(Path(tmp) / "cache")
        suite._run_script(script, env, 300)  # warms the caches
        rows = [[float(x) for x in suite._run_script(script, env, 300)] for _ in range(runs)]
    for i, (label, _) in enumerate(STEPS):
        print(f"{label:56} {statistics.median(r[i] for r in rows):8.1f} ms")
    total = statistics.median(sum(r) for r in rows)
    print(f"{'total (median of the per-process sums)':56} {total:8.1f} ms")
    return 0


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    sys.exit(main())
