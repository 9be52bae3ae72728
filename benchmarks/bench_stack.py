"""What the native-stack check costs: a call with it, without it, and through a worker.

One process, one plugin (``tests/fixtures/typetest``, ``add(1, 2)``), the cases
measured in turn, round after round, so that machine noise hits them alike:

- *checked*: a call from the main thread, as every call runs (the stack is measured,
  there is room, the call runs inline);
- *unchecked*: the same call with the check replaced by a plain call (what a call
  cost before it);
- *worker*: the same call from a thread with a 160 KiB stack, which the check sends
  to a worker thread;
- *probe*: ``wasmplug._stack.stack_left()`` alone.

Reported: the median over the rounds of each case's mean time per call, in
microseconds, and the ratios to *unchecked*.

Usage: python benchmarks/bench_stack.py [--wasm-dir build/wasm] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasmplug
from wasmplug import _stack

ROOT = Path(__file__).resolve().parent.parent


def mean_us(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def on_small_thread(fn: Callable[[], float]) -> float:
    """Runs ``fn`` on a new thread with a 160 KiB stack and returns its result."""
    out: list[float] = []
    previous = threading.stack_size(160 << 10)
    try:
        thread = threading.Thread(target=lambda: out.append(fn()))
        thread.start()
    finally:
        threading.stack_size(previous)
    thread.join()
    return out[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wasm-dir", type=Path, default=ROOT / "build" / "wasm")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args(argv)
    world = wasmplug.load_world(ROOT / "tests" / "fixtures" / "typetest" / "wit", "typetest")
    engine = wasmplug.Engine(cache_dir=None)
    plugin = wasmplug.load(args.wasm_dir / "typetest.wasm", world=world, engine=engine)
    guard = engine._stack_guard
    n = args.calls

    def call() -> Any:
        return plugin.call("add", 1, 2)

    def checked() -> float:
        return mean_us(call, n)

    def unchecked() -> float:
        guard.run = lambda fn, *a: fn(*a)  # type: ignore[method-assign]
        try:
            return mean_us(call, n)
        finally:
            del guard.run

    def worker() -> float:
        return on_small_thread(lambda: mean_us(call, n // 10))

    def probe() -> float:
        return mean_us(_stack.stack_left, n)

    cases: dict[str, Callable[[], float]] = {
        "unchecked": unchecked,
        "checked": checked,
        "worker": worker,
        "probe": probe,
    }
    for fn in cases.values():  # warm up
        fn()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, fn in cases.items():
            samples[name].append(fn())
    base = statistics.median(samples["unchecked"])
    print(f"{'add(1, 2)':12s} {'µs/call':>9s} {'vs unchecked':>13s}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:12s} {median:9.2f} {median / base:12.2f}x")
    print(
        f"rounds {args.rounds}, {n} calls each ({n // 10} through the worker); "
        f"offloads {engine.stack_offloads}; python {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    main()
