"""What measuring a component's linear memory (``CallStats.memory_bytes``) costs.

One process, two engines: ``Engine(measure_component_memory=True)`` (the default:
components run on an engine whose linear memories wasmplug allocates and counts) and
``False`` (wasmtime allocates them, with its copy-on-write memory images, and
``memory_bytes`` is ``None``). Each case runs on both, round after round so that
machine noise hits them alike:

- *add*: ``add(1, 2)`` on the ``benchcalls`` component's live instance;
- *fresh add*: the same with ``instance_per_call=True`` (a new Store and instance
  for every call: where the memory is created and freed);
- *grow 1 MiB*: ``grow(1)`` on the ``hostile`` component with ``instance_per_call``
  (a fresh instance that grows its memory by 1 MiB, 16 pages, through the allocator).

Reported: the median over the rounds of each case's mean time per call, in
microseconds, measured and not, and the median of the per-round ratios.

Usage: python benchmarks/bench_memory.py [--rounds 15] [--calls 500]
(after ``scripts/build-wasm.sh``).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasmplug

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "wasm"


def mean_us(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def _cases(engine: wasmplug.Engine) -> dict[str, Callable[[], Any]]:
    fixtures = ROOT / "tests" / "fixtures"
    bench = wasmplug.load_world(fixtures / "benchcalls" / "wit", "benchcalls")
    hostile = wasmplug.load_world(fixtures / "hostile" / "wit", "hostile")
    fresh = wasmplug.Policy(instance_per_call=True)
    live = wasmplug.load(BUILD / "benchcalls.wasm", world=bench, engine=engine)
    each = wasmplug.load(BUILD / "benchcalls.wasm", world=bench, engine=engine, policy=fresh)
    grower = wasmplug.load(BUILD / "hostile.wasm", world=hostile, engine=engine, policy=fresh)
    return {
        "add": functools.partial(live.call, "add", 1, 2),
        "fresh add": functools.partial(each.call, "add", 1, 2),
        "grow 1 MiB": functools.partial(grower.call, "grow", 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args(argv)
    measured = _cases(wasmplug.Engine(cache_dir=None))
    plain = _cases(wasmplug.Engine(cache_dir=None, measure_component_memory=False))
    print(f"{'case':12} {'measured µs':>12} {'not µs':>10} {'ratio':>7}")
    for case, on in measured.items():
        off = plain[case]
        mean_us(on, args.calls)  # warm-up
        mean_us(off, args.calls)
        ons: list[float] = []
        offs: list[float] = []
        for i in range(args.rounds):
            first, second = (on, off) if i % 2 else (off, on)
            a = mean_us(first, args.calls)
            b = mean_us(second, args.calls)
            ons.append(a if first is on else b)
            offs.append(b if first is on else a)
        ratio = statistics.median(x / y for x, y in zip(ons, offs, strict=True))
        print(
            f"{case:12} {statistics.median(ons):12.1f} {statistics.median(offs):10.1f} "
            f"{ratio:7.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
