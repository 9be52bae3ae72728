"""Per-call cost: wasmplug's typed call path against wasmtime-py's own component API.

Both call the same component (``tests/fixtures/typetest``, built by
``scripts/build-wasm.sh``) in the same process, one after the other, with the same
arguments. wasmplug also enforces its limits on every call (it sets fuel and an epoch
deadline and reads fuel back); the wasmtime-py side runs without limits. Reported:
the median of 5 repeats, in microseconds per call, and the ratio. Absolute times on
shared machines are noisy; the ratios are what to compare.

Usage: python benchmarks/bench_calls.py [--wasm-dir build/wasm]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasmtime
import wasmtime.component as wc

import wasmplug

ROOT = Path(__file__).resolve().parent.parent


def per_call_us(fn: Callable[[], Any], budget_s: float = 0.3) -> float:
    """Median over 5 repeats of the mean time of one call, in microseconds."""
    fn()
    n = 1
    while True:  # find a loop count that takes about budget_s / 5
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed > budget_s / 5 or n > 1_000_000:
            break
        n *= 2
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wasm-dir", type=Path, default=ROOT / "build" / "wasm")
    args = parser.parse_args(argv)
    wasm = args.wasm_dir / "typetest.wasm"

    world = wasmplug.load_world(ROOT / "tests" / "fixtures" / "typetest" / "wit", "typetest")
    plugin = wasmplug.load(wasm, world=world, name="bench")
    t = world.types

    engine = wasmtime.Engine()
    component = wc.Component.from_file(engine, str(wasm))
    linker = wc.Linker(engine)
    linker.add_wasip2()
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    instance = linker.instantiate(store, component)

    def raw(name: str) -> Callable[..., Any]:
        func = instance.get_func(store, name)
        assert func is not None
        return lambda *a: func(store, *a)

    class Point:  # wasmtime-py takes any object with the WIT field names
        def __init__(self, x: int, y: int) -> None:
            self.x, self.y = x, y

    points = [t.Point(x=i, y=-i) for i in range(100)]
    raw_points = [Point(i, -i) for i in range(100)]
    blob = bytes(range(256)) * 16  # 4 KiB
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        ("add(u32, u32) -> u32", lambda: plugin.call("add", 1, 2), lambda: raw("add")(1, 2)),
        (
            "upper(string) -> string",
            lambda: plugin.call("upper", "hello, world"),
            lambda: raw("upper")("hello, world"),
        ),
        (
            "farthest(list<point> x100)",
            lambda: plugin.call("farthest", points),
            lambda: raw("farthest")(raw_points),
        ),
        (
            "blob-stats(list<u8> 4 KiB)",
            lambda: plugin.call("blob-stats", blob),
            lambda: raw("blob-stats")(blob),
        ),
    ]
    print(f"{'call':32s} {'wasmplug µs':>12s} {'wasmtime-py µs':>15s} {'ratio':>7s}")
    for label, ours, theirs in cases:
        assert_same = ours(), theirs()
        del assert_same
        a = per_call_us(ours)
        b = per_call_us(theirs)
        print(f"{label:32s} {a:12.1f} {b:15.1f} {b / a:6.1f}x")
    prepared = world.prepare("farthest", points)
    a = per_call_us(lambda: plugin.call_prepared(prepared))
    b = per_call_us(lambda: plugin.call("farthest", points))
    print(f"\n{'call':32s} {'prepared µs':>12s} {'plain call µs':>15s} {'ratio':>7s}")
    print(f"{'farthest(list<point> x100)':32s} {a:12.1f} {b:15.1f} {b / a:6.1f}x")
    print(f"python {sys.version.split()[0]}, wasmtime-py {wasmtime_version()}")


def wasmtime_version() -> str:
    from importlib.metadata import version

    return version("wasmtime")


if __name__ == "__main__":
    main()
