"""Large results: host memory per call, and the cost of measuring results.

Peak memory: each case runs in a fresh subprocess (``--peak EXPORT ARGS LIMIT``),
which loads the ``hostile`` fixture with 1 GiB of linear memory, warms it up, then
makes one call; the growth of the process's maximum RSS (``ru_maxrss``) over that
call is the peak the call cost: the guest's own memory, wasmtime's copy of the
result, and the Python value when one is built. Each case runs without
``Limits.output_bytes`` and with it.

Cost: the same calls on two plugins side by side, one with ``output_bytes=None`` and
one with the default 16 MiB limit, interleaved; median microseconds per call over
the repeats, and the ratio (with the limit / without).

Usage: python benchmarks/bench_output.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import wasmplug

ROOT = Path(__file__).resolve().parent.parent
WASM = ROOT / "build" / "wasm" / "hostile.wasm"

PEAK_CASES = [
    ("big-output", "62914560", "16777216"),
    ("big-bytes", "2600000", "1048576"),
    ("big-bytes", "2831155", "1048576"),
    ("big-records", "100000", "1000000"),
    ("big-strings", "1000,20000", "16777216"),
]
COST_CASES: list[tuple[str, tuple[int, ...], int]] = [
    ("bump", (), 20_000),
    ("big-output", (1_000,), 5_000),
    ("big-bytes", (100_000,), 300),
    ("big-strings", (1_000, 10), 300),
    ("big-records", (1_000,), 300),
]


def hostile_world() -> wasmplug.World:
    return wasmplug.load_world(ROOT / "tests" / "fixtures" / "hostile" / "wit", "hostile")


def peak(export: str, args: str, limit: str) -> None:
    """One call in this process; prints its outcome and the growth of the peak RSS."""
    output_bytes = None if limit == "none" else int(limit)
    limits = wasmplug.Limits(
        memory_bytes=1 << 30, fuel=None, deadline_ms=60_000, output_bytes=output_bytes
    )
    plugin = wasmplug.load(WASM, world=hostile_world(), policy=wasmplug.Policy(limits=limits))
    plugin.call("bump")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        outcome = f"returned {len(plugin.call(export, *map(int, args.split(','))))} items"
    except wasmplug.LimitExceeded as e:
        outcome = f"{type(e).__name__} (used={e.used})"
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(f"  {export}({args}), output_bytes={limit}: {grown:7.1f} MiB, {outcome}")


def cost(repeats: int) -> None:
    world = hostile_world()
    plugins = {
        name: wasmplug.load(
            WASM,
            world=world,
            name=f"cost-{name}",
            policy=wasmplug.Policy(limits=wasmplug.Limits(output_bytes=limit)),
        )
        for name, limit in (("none", None), ("16 MiB", 16 << 20))
    }
    for export, args, n in COST_CASES:
        times: dict[str, list[float]] = {name: [] for name in plugins}
        for _ in range(repeats):
            for name, plugin in plugins.items():
                start = time.perf_counter()
                for _ in range(n):
                    plugin.call(export, *args)
                times[name].append((time.perf_counter() - start) / n * 1e6)
        without, with_limit = (statistics.median(times[k]) for k in ("none", "16 MiB"))
        print(
            f"  {export}{args}: {without:9.1f} us without, {with_limit:9.1f} us with the "
            f"limit, ratio {with_limit / without:.2f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peak", nargs=3, metavar=("EXPORT", "ARGS", "LIMIT"))
    args = parser.parse_args(argv)
    if args.peak:
        peak(*args.peak)
        return
    print("peak RSS growth of one call (a subprocess per case)")
    for export, call_args, limit in PEAK_CASES:
        for chosen in ("none", limit):
            subprocess.run(
                [sys.executable, __file__, "--peak", export, call_args, chosen], check=True
            )
    print(f"cost per call, output_bytes None vs 16 MiB (median of {args.repeats})")
    cost(args.repeats)


if __name__ == "__main__":
    main()
