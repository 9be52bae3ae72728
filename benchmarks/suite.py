"""wasmplug against the alternatives, side by side: ``python -m benchmarks``.

Builds what it needs (``scripts/build-bench.sh``), then measures every case for every
alternative (:mod:`benchmarks.alternatives`) in this one process, rotating through
the alternatives sample by sample so that the machine's noise spreads over all of
them. Every alternative's answer is checked against plain Python's first: a wrong
answer stops the run. The start-up cases (a new process's import, load and first
call; ``import`` alone; many live plugins) run in fresh subprocesses, one per
alternative and run.

Prints a table of medians and ratios, writes ``build/bench/results.json`` (schema in
``docs/performance.md``) and draws ``build/bench/results.png``.

Usage::

    python -m benchmarks [--quick | --smoke] [--plugins N] [--out DIR] [--no-build]
                         [--only ALT,ALT]

``--quick`` takes under a minute (~20 s on a 2-core machine), ``--smoke`` ~10 s (tiny
counts: for the tests, not for reading numbers); the default run about two minutes.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from benchmarks.alternatives import (
    PAYLOAD_BYTES,
    ROOT,
    Alternative,
    Inputs,
    Prepared,
    all_alternatives,
)

SCHEMA_VERSION = 1

#: The reference column: ratios are each alternative's median over this one's.
REFERENCE = "wasmplug"


@dataclass(frozen=True)
class Case:
    key: str
    label: str


#: The per-call cases, timed in this process (microseconds per call).
CALL_CASES = [
    Case("add", "add(u32, u32) -> u32"),
    Case("noop", "no-op call"),
    Case("blob_stats", "64 KiB list<u8> in, (len, sum) out"),
    Case("echo_string", "64 KiB string echo"),
    Case("echo_bytes", "64 KiB bytes echo"),
    Case("evaluate", "rule engine evaluate(flight), 1 alert"),
    Case("fresh_instance", "fresh instance + add"),
]


@dataclass(frozen=True)
class Mode:
    """How hard to measure.

    Attributes:
        repeats: Samples per alternative and case (the median is over these).
        sample_s: Target duration of one sample, seconds (calls per sample are
            calibrated to reach it).
        process_runs: New processes per alternative for the start-up cases.
        plugins: Live plugins for the density case.
        sample_flights: Flights checked for rule-engine equivalence.
    """

    name: str
    repeats: int
    sample_s: float
    process_runs: int
    plugins: int
    sample_flights: int


MODES = {
    "full": Mode(
        "full", repeats=15, sample_s=0.05, process_runs=9, plugins=10_000, sample_flights=3_000
    ),
    "quick": Mode(
        "quick", repeats=5, sample_s=0.01, process_runs=3, plugins=500, sample_flights=300
    ),
    "smoke": Mode("smoke", repeats=3, sample_s=0.0, process_runs=1, plugins=5, sample_flights=40),
}


class WrongAnswer(AssertionError):
    """An alternative's answer differs from plain Python's."""


# ------------------------------------------------------------------------- timing


def _calibrate(fn: Callable[[], Any], target_s: float) -> int:
    """Calls per sample so that one sample takes about ``target_s``."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - start >= target_s or n >= 1 << 20:
            return n
        n *= 2


def _sample_us(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def _summary(samples: list[float], n: int) -> dict[str, Any]:
    q = (
        statistics.quantiles(samples, n=4, method="inclusive")
        if len(samples) > 1
        else [samples[0]] * 3
    )
    return {
        "median": statistics.median(samples),
        "p25": q[0],
        "p75": q[2],
        "n": n,
        "samples": samples,
    }


def time_side_by_side(calls: Mapping[str, Callable[[], Any]], mode: Mode) -> dict[str, Any]:
    """Times each callable ``mode.repeats`` times, rotating through them."""
    per_sample = {key: _calibrate(fn, mode.sample_s) for key, fn in calls.items()}
    samples: dict[str, list[float]] = {key: [] for key in calls}
    for _ in range(mode.repeats):
        for key, fn in calls.items():
            gc.collect()
            samples[key].append(_sample_us(fn, per_sample[key]))
    return {key: _summary(s, per_sample[key] * mode.repeats) for key, s in samples.items()}


# ------------------------------------------------------------------------- inputs


def make_inputs(mode: Mode) -> Inputs:
    """The arguments of every case; the flight is the first that raises exactly one
    ops-thresholds alert, the sample the first ``mode.sample_flights`` flights."""
    from flightdata import iter_flights
    from reference_rules import OpsThresholds
    from run import OPS_CONFIG

    ops = OpsThresholds.from_config(OPS_CONFIG)
    # Half of the sample raises alerts (most flights raise none), in file order.
    alerting: list[Any] = []
    quiet: list[Any] = []
    for f in iter_flights(limit=200_000):
        group = alerting if ops.evaluate(f) else quiet
        if len(group) < (mode.sample_flights + 1) // 2:
            group.append(f)
        if len(alerting) + len(quiet) >= mode.sample_flights:
            break
    sample = alerting + quiet
    flight = next(f for f in alerting if len(ops.evaluate(f)) == 1)
    unit = "wasmplug héllo wörld ✓ "  # 1-, 2- and 3-byte UTF-8
    text = (unit * (PAYLOAD_BYTES // len(unit.encode()) + 1)).encode()[:PAYLOAD_BYTES]
    return Inputs(
        a=123_456_789,
        b=4_000_000_000,
        blob=bytes((i * 7 + 3) % 256 for i in range(PAYLOAD_BYTES)),
        text=text.decode("utf-8", errors="ignore"),
        flight=flight,
        sample=list(sample),
        ops_config=OPS_CONFIG,
    )


def expected_answer(case: str, inputs: Inputs, python: Alternative) -> Any:
    if case == "fresh_instance":
        return (inputs.a + inputs.b) & 0xFFFFFFFF
    prepared = python.prepare(case, inputs)
    assert prepared is not None
    return prepared.lift(prepared.call())


# ---------------------------------------------------------------- subprocess cases

_TIMED = """
import time
_t0 = time.perf_counter()
{body}
print(round((time.perf_counter() - _t0) * 1000, 3), repr(_answer))
"""

_NEW_PROCESS = {
    "wasmplug": """
import wasmplug
world = wasmplug.load_world({wit!r}, "benchcalls")
plugin = wasmplug.load({component!r}, world=world)
_answer = plugin.call("add", 1, 2)
""",
    "wasmtime_component": """
import wasmtime, wasmtime.component as wc
engine = wasmtime.Engine()
component = wc.Component.deserialize_file(engine, {component_cache!r})
linker = wc.Linker(engine)
linker.add_wasip2()
store = wasmtime.Store(engine)
store.set_wasi(wasmtime.WasiConfig())
instance = linker.instantiate(store, component)
_answer = instance.get_func(store, "add")(store, 1, 2)
""",
    "raw_wasmtime": """
import wasmtime
engine = wasmtime.Engine()
store = wasmtime.Store(engine)
module = wasmtime.Module.deserialize_file(engine, {core_cache!r})
instance = wasmtime.Instance(store, module, [])
_answer = instance.exports(store)["add"](store, 1, 2)
""",
    "extism": """
import extism, struct
plugin = extism.Plugin(open({extism_wasm!r}, "rb").read(), functions=[])
_answer = struct.unpack("<I", plugin.call("add", struct.pack("<II", 1, 2)))[0]
""",
}

_NEW_PROCESS["wasmplug_fast"] = _NEW_PROCESS["wasmplug"].replace("{component!r}", "{fast!r}")

_IMPORT = {
    "wasmplug": "import wasmplug\n_answer = 3",
    "wasmtime_component": "import wasmtime.component\n_answer = 3",
    "raw_wasmtime": "import wasmtime\n_answer = 3",
    "extism": "import extism\n_answer = 3",
}

_DENSITY = """
import time, struct
def status():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(fields["VmRSS"].split()[0]), int(fields["VmSize"].split()[0])
N = {plugins}
kept = []
{setup}
make()  # the first one pays for compiling and checking; not counted
rss0, vsz0 = status()
t0 = time.perf_counter()
for _ in range(N):
    kept.append(make())
elapsed = time.perf_counter() - t0
rss1, vsz1 = status()
_answer = call(kept[-1])
print((rss1 - rss0) / N, (vsz1 - vsz0) / N, elapsed / N * 1000, repr(_answer))
"""

_DENSITY_SETUP = {
    "wasmplug": """
import wasmplug
world = wasmplug.load_world({wit!r}, "benchcalls")
wasm = open({component!r}, "rb").read()
make = lambda: wasmplug.load(wasm, world=world)
call = lambda p: p.call("add", 1, 2)
""",
    "wasmtime_component": """
import wasmtime, wasmtime.component as wc
engine = wasmtime.Engine()
component = wc.Component.from_file(engine, {component!r})
linker = wc.Linker(engine)
linker.add_wasip2()
def make():
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    return store, linker.instantiate(store, component)
call = lambda p: p[1].get_func(p[0], "add")(p[0], 1, 2)
""",
    "raw_wasmtime": """
import wasmtime
engine = wasmtime.Engine()
module = wasmtime.Module.from_file(engine, {core!r})
def make():
    store = wasmtime.Store(engine)
    return store, wasmtime.Instance(store, module, [])
call = lambda p: p[1].exports(p[0])["add"](p[0], 1, 2)
""",
    "extism": """
import extism
from extism.extism import CompiledPlugin  # not re-exported by extism 1.1.1
compiled = CompiledPlugin(open({extism_wasm!r}, "rb").read(), functions=[])
make = lambda: extism.Plugin(compiled)
call = lambda p: struct.unpack("<I", p.call("add", struct.pack("<II", 1, 2)))[0]
""",
}


_DENSITY_SETUP["wasmplug_fast"] = _DENSITY_SETUP["wasmplug"].replace("{component!r}", "{fast!r}")

#: At most this many live plugins per alternative in the density case: each Extism
#: plugin reserves ~12 GiB of address space, so 10,000 would not fit in 47 bits.
DENSITY_CAP = {"extism": 1_000}


def _python_env(cache: Path) -> dict[str, str]:
    """The start-up cases' environment: wasmplug's caches in ``cache``, and bytecode
    cached for every alternative alike (in ``cache/pycache``, written by the warm-up
    run), whatever ``PYTHONDONTWRITEBYTECODE`` says: without it wasmplug's own
    modules, imported from the source tree, would be compiled in every timed run
    while the alternatives' installed packages load from their ``__pycache__``."""
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = str(cache)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache / "pycache")
    return env


def _run_script(code: str, env: Mapping[str, str], timeout_s: float) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=ROOT,
        timeout=timeout_s,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"subprocess failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc.stdout.split()


def process_cases(alts: list[str], mode: Mode, workdir: Path) -> dict[str, Any]:
    """The start-up cases, each run in fresh processes: ``new_process`` and
    ``import_time`` (milliseconds) and ``density`` (per live plugin)."""
    import wasmtime
    import wasmtime.component as wc

    engine = wasmtime.Engine()
    paths = {
        "wit": str(ROOT / "tests" / "fixtures" / "benchcalls" / "wit"),
        "component": str(ROOT / "build" / "wasm" / "benchcalls.wasm"),
        "fast": str(ROOT / "build" / "wasm-core" / "benchcalls.wasm"),
        "core": str(ROOT / "build" / "bench" / "wasm" / "raw_core.wasm"),
        "extism_wasm": str(ROOT / "build" / "bench" / "wasm" / "extism_bench.wasm"),
        "component_cache": str(workdir / "benchcalls.cwasm"),
        "core_cache": str(workdir / "raw_core.cwasm"),
    }
    # The "cached plugin" of the bare-wasmtime rows: compiled once, deserialized per run.
    Path(paths["component_cache"]).write_bytes(
        wc.Component.from_file(engine, paths["component"]).serialize()
    )
    Path(paths["core_cache"]).write_bytes(
        wasmtime.Module.from_file(engine, paths["core"]).serialize()
    )
    env = _python_env(workdir / "cache")
    results: dict[str, Any] = {"new_process": {}, "import_time": {}, "density": {}}
    for case, scripts in (("new_process", _NEW_PROCESS), ("import_time", _IMPORT)):
        for alt in alts:
            if alt not in scripts:
                continue
            code = _TIMED.format(body=scripts[alt].format(**paths))
            _run_script(code, env, 300)  # warms wasmplug's disk cache and the OS's
            times = []
            for _ in range(mode.process_runs):
                ms, answer = _run_script(code, env, 300)
                if answer != "3":
                    raise WrongAnswer(f"{case}/{alt}: add(1, 2) returned {answer}")
                times.append(float(ms))
            results[case][alt] = _summary(times, len(times))
    for alt in alts:
        if alt not in _DENSITY_SETUP:
            continue
        setup = _DENSITY_SETUP[alt].format(**paths)
        plugins = min(mode.plugins, DENSITY_CAP.get(alt, mode.plugins))
        code = _DENSITY.format(plugins=plugins, setup=setup)
        rss, vsz, load_ms, answer = _run_script(code, env, 1800)
        if answer != "3":
            raise WrongAnswer(f"density/{alt}: add(1, 2) returned {answer}")
        results["density"][alt] = {
            "plugins": plugins,
            "rss_kib_per_plugin": float(rss),
            "address_space_kib_per_plugin": float(vsz),
            "load_ms_per_plugin": float(load_ms),
        }
    return results


# ------------------------------------------------------------------------ targets

#: The issue's targets: (id, description, case, numerator, denominator, op, bound).
#: ``ratio = median[numerator] / median[denominator]``; met when ``ratio op bound``.
TARGETS: list[tuple[str, str, str, str, str, str, float]] = [
    (
        "blob-vs-extism",
        "64 KiB list<u8> in >= 5x faster than Extism",
        "blob_stats",
        "extism",
        "wasmplug_fast",
        ">=",
        5.0,
    ),
    (
        "blob-vs-floor",
        "64 KiB list<u8> in within 2x of the floor",
        "blob_stats",
        "wasmplug_fast",
        "floor",
        "<=",
        2.0,
    ),
    (
        "bytes-echo-vs-extism",
        "64 KiB bytes echo >= 5x faster than Extism",
        "echo_bytes",
        "extism",
        "wasmplug_fast",
        ">=",
        5.0,
    ),
    (
        "add-vs-component",
        "add >= 3x faster than wasmtime.component",
        "add",
        "wasmtime_component",
        "wasmplug_fast",
        ">=",
        3.0,
    ),
    (
        "noop-vs-component",
        "no-op >= 3x faster than wasmtime.component",
        "noop",
        "wasmtime_component",
        "wasmplug_fast",
        ">=",
        3.0,
    ),
    ("add-vs-extism", "add >= 5x faster than Extism", "add", "extism", "wasmplug_fast", ">=", 5.0),
    (
        "noop-vs-extism",
        "no-op >= 5x faster than Extism",
        "noop",
        "extism",
        "wasmplug_fast",
        ">=",
        5.0,
    ),
    (
        "add-vs-floor",
        "add within 3x of an unchecked call",
        "add",
        "wasmplug_fast",
        "floor",
        "<=",
        3.0,
    ),
    (
        "noop-vs-floor",
        "no-op within 3x of an unchecked no-op call",
        "noop",
        "wasmplug_fast",
        "floor",
        "<=",
        3.0,
    ),
    (
        "evaluate-vs-extism",
        "evaluate(flight) >= 2x faster than Extism with JSON",
        "evaluate",
        "extism",
        "wasmplug_fast",
        ">=",
        2.0,
    ),
    (
        "fresh-vs-wasmtime",
        "fresh instance + call within 1.5x of bare wasmtime-py "
        "instantiate + call of the same component",
        "fresh_instance",
        "wasmplug",
        "wasmtime_component",
        "<=",
        1.5,
    ),
    (
        "new-process-vs-extism",
        "new process (import, load cached, first call) within 1.5x of Extism",
        "new_process",
        "wasmplug_fast",
        "extism",
        "<=",
        1.5,
    ),
]

#: Absolute target: ``import wasmplug`` under this many milliseconds.
IMPORT_TARGET_MS = 30.0


def evaluate_targets(cases: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for tid, desc, case, num, den, op, bound in TARGETS:
        results = cases.get(case, {}).get("results", {})
        a, b = results.get(num), results.get(den)
        ratio = a["median"] / b["median"] if a and b else None
        met = None if ratio is None else (ratio >= bound if op == ">=" else ratio <= bound)
        out.append(
            {
                "id": tid,
                "description": desc,
                "case": case,
                "numerator": num,
                "denominator": den,
                "op": op,
                "bound": bound,
                "ratio": ratio,
                "met": met,
            }
        )
    imp = cases.get("import_time", {}).get("results", {}).get("wasmplug")
    out.append(
        {
            "id": "import-time",
            "description": "import wasmplug under 30 ms",
            "case": "import_time",
            "numerator": "wasmplug",
            "denominator": None,
            "op": "<=",
            "bound": IMPORT_TARGET_MS,
            "ratio": imp["median"] if imp else None,
            "met": None if imp is None else imp["median"] <= IMPORT_TARGET_MS,
        }
    )
    return out


# ----------------------------------------------------------------------- the run


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("wasmplug", "wasmtime", "extism", "extism-sys", "matplotlib"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def _machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
    }


def build() -> None:
    """Runs scripts/build-bench.sh (components, the Extism plugin, the raw module)."""
    subprocess.run(["bash", str(ROOT / "scripts" / "build-bench.sh")], check=True)


def run(mode: Mode, only: list[str] | None = None) -> dict[str, Any]:
    """Measures everything; returns the results document (see docs/performance.md)."""
    classes = all_alternatives()
    alternatives: dict[str, Any] = {}
    live: dict[str, Alternative] = {}
    for cls in classes:
        reason = cls.check()
        if reason is None and only is not None and cls.key not in only:
            reason = "not selected (--only)"
        alternatives[cls.key] = {
            "label": cls.label,
            "short": cls.short,
            "available": reason is None,
            "reason": reason,
        }
        if reason is None:
            live[cls.key] = cls()
    python = live.get("python") or next(c for c in classes if c.key == "python")()
    inputs = make_inputs(mode)

    # The rule engine: the same alerts for every sampled flight, or the run stops.
    reference = python.evaluate_many(inputs)
    assert reference is not None
    if not any(reference):
        raise WrongAnswer("the flight sample raises no alerts: the check would be empty")
    checked: list[str] = []
    for key, alt in live.items():
        got = alt.evaluate_many(inputs)
        if got is not None:
            checked.append(key)
        if got is not None and got != reference:
            bad = next(i for i, (g, r) in enumerate(zip(got, reference, strict=True)) if g != r)
            raise WrongAnswer(
                f"{key}: evaluate(flight #{bad}) = {got[bad]!r}, plain Python: {reference[bad]!r}"
            )

    cases: dict[str, Any] = {}
    for case in CALL_CASES:
        expected = expected_answer(case.key, inputs, python)
        calls: dict[str, Callable[[], Any]] = {}
        skipped: dict[str, str] = {}
        for key, alt in live.items():
            prepared: Prepared | None = alt.prepare(case.key, inputs)
            if prepared is None:
                skipped[key] = "not expressible with this alternative"
                continue
            answer = prepared.lift(prepared.call())
            if answer != expected:
                raise WrongAnswer(
                    f"{key}/{case.key}: got {str(answer)[:200]}, "
                    f"plain Python: {str(expected)[:200]}"
                )
            calls[key] = prepared.call
        print(f"bench: {case.label} ...", file=sys.stderr, flush=True)
        results = time_side_by_side(calls, mode)
        cases[case.key] = _case_doc(case.label, "us", results, skipped)

    with tempfile.TemporaryDirectory(prefix="wasmplug-bench-") as tmp:
        print("bench: new processes ...", file=sys.stderr, flush=True)
        proc = process_cases([k for k in live if k not in ("python", "floor")], mode, Path(tmp))
    cases["new_process"] = _case_doc(
        "new process: import, load cached plugin, first call", "ms", proc["new_process"], {}
    )
    cases["import_time"] = _case_doc("import alone", "ms", proc["import_time"], {})
    doc = {
        "schema": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks", *sys.argv[1:]]),
        "mode": {
            "name": mode.name,
            "repeats": mode.repeats,
            "sample_s": mode.sample_s,
            "process_runs": mode.process_runs,
            "plugins": mode.plugins,
            "sample_flights": mode.sample_flights,
        },
        "machine": _machine(),
        "versions": _versions(),
        "reference": REFERENCE,
        "alternatives": alternatives,
        "cases": cases,
        "density": proc["density"],
        "rule_engine_check": {
            "flights": len(inputs.sample),
            "alerts": sum(len(a) for a in reference),
            "alternatives": checked,
        },
    }
    doc["targets"] = evaluate_targets(cases)
    return doc


def _case_doc(
    label: str, unit: str, results: Mapping[str, Any], skipped: Mapping[str, str]
) -> dict[str, Any]:
    ref = results.get(REFERENCE)
    ratios = {k: (v["median"] / ref["median"] if ref else None) for k, v in results.items()}
    return {
        "label": label,
        "unit": unit,
        "results": dict(results),
        "skipped": dict(skipped),
        "ratios": ratios,
    }


# ----------------------------------------------------------------------- output


def format_table(doc: Mapping[str, Any]) -> str:
    keys = [k for k, a in doc["alternatives"].items() if a["available"]]
    labels = {k: doc["alternatives"][k]["label"] for k in keys}
    width = 12
    shorts = {k: doc["alternatives"][k]["short"] for k in keys}
    lines = [f"{'case':44s} " + " ".join(f"{shorts[k]:>{width}s}" for k in keys)]
    for case in doc["cases"].values():
        cells, ratios = [], []
        for k in keys:
            r = case["results"].get(k)
            cells.append(f"{r['median']:>{width},.2f}" if r else f"{'-':>{width}s}")
            ratio = case["ratios"].get(k)
            ratios.append(f"{ratio:>{width - 1}.2f}x" if ratio else f"{'':>{width}s}")
        lines.append(f"{case['label'] + ' (' + case['unit'] + ')':44s} " + " ".join(cells))
        lines.append(f"{'  time / wasmplug time':44s} " + " ".join(ratios))
    lines.append("")
    lines.append("live plugins: RSS KiB / address space KiB / load ms, per plugin")
    for k, d in doc["density"].items():
        lines.append(
            f"  {labels.get(k, k):30s} {d['rss_kib_per_plugin']:10,.1f} "
            f"{d['address_space_kib_per_plugin']:14,.0f} "
            f"{d['load_ms_per_plugin']:8.3f}   ({d['plugins']:,} plugins)"
        )
    lines.append("")
    lines.append("targets (ratio = numerator's median / denominator's):")
    for t in doc["targets"]:
        state = {True: "met", False: "NOT met", None: "n/a"}[t["met"]]
        ratio = "-" if t["ratio"] is None else f"{t['ratio']:.2f}"
        lines.append(
            f"  {t['description']:90s} {t['op']} {t['bound']:<5} measured {ratio:>8s}  {state}"
        )
    return "\n".join(lines)


def draw_chart(doc: Mapping[str, Any], path: Path) -> bool:
    """Draws the medians as one log-scale bar chart per case; ``False`` without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter
    except ImportError:
        return False
    alts = [k for k, a in doc["alternatives"].items() if a["available"]]
    cmap = plt.get_cmap("tab10")
    colors = {k: cmap(i) for i, k in enumerate(alts)}
    cases = list(doc["cases"].values())
    cols = 3
    rows = (len(cases) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(15, 3.2 * rows))
    for ax, case in zip(axes.flat, cases, strict=False):
        keys = [k for k in alts if k in case["results"]]
        med = [case["results"][k]["median"] for k in keys]
        ax.barh(range(len(keys)), med, color=[colors[k] for k in keys])
        ax.set_yticks(range(len(keys)), [doc["alternatives"][k]["label"] for k in keys], fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlim(min(med) / 3, max(med) * 12)
        ax.xaxis.set_minor_formatter(NullFormatter())
        unit = "µs" if case["unit"] == "us" else case["unit"]
        ax.set_title(f"{case['label']} ({unit}, median)", fontsize=9)
        for i, m in enumerate(med):
            ax.text(m, i, f" {m:,.0f}" if m >= 100 else f" {m:.3g}", va="center", fontsize=7)
    for ax in list(axes.flat)[len(cases) :]:
        ax.axis("off")
    fig.suptitle(
        f"wasmplug benchmark suite ({doc['mode']['name']} run, "
        f"{doc['created'][:10]}): lower is better",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--quick", action="store_true", help="under a minute")
    speed.add_argument("--smoke", action="store_true", help="seconds; numbers meaningless")
    parser.add_argument("--plugins", type=int, help="live plugins in the density case")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    parser.add_argument("--no-build", action="store_true", help="skip build-bench.sh")
    parser.add_argument("--only", help="comma-separated alternatives (keys) to run")
    args = parser.parse_args(argv)
    mode = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]
    if args.plugins is not None:
        mode = Mode(**{**mode.__dict__, "plugins": args.plugins})
    if not args.no_build:
        build()
    only = None if args.only is None else [*args.only.split(","), REFERENCE, "python"]
    doc = run(mode, only)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(format_table(doc))
    if draw_chart(doc, args.out / "results.png"):
        print(f"\nwrote {args.out / 'results.json'} and {args.out / 'results.png'}")
    else:
        print(f"\nwrote {args.out / 'results.json'} (no chart: matplotlib is not installed)")
    return 0
