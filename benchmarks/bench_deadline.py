"""Deadline overshoot: how long after its deadline a runaway guest is stopped.

A guest loops forever (``spin`` of the ``hostile`` fixture, no fuel limit) under a
deadline of 100 ms and of 1 s; the time from the call's start to the
``DeadlineExceeded`` minus the deadline is the overshoot. Under the 100 ms deadline
also a guest that grows its memory one page at a time up to the 64 MiB limit and then
loops (``grow-pages(0)``): on the component path each growth runs wasmplug's memory
callback, which needs the GIL. Measured with the host's
other threads idle, and with four threads busy in pure Python (the epoch ticker must
win the GIL from them). Also: eight plugins flooding host calls from eight threads
under a 100 ms deadline. Reported in milliseconds: median, 90th percentile and
maximum over the repeats.

The floor beside each: how late a Python thread wakes from ``time.sleep(deadline)``
under the same load. A call cannot return before its thread has the GIL back, so no
Python API can do better than that floor; the guest itself stops at the ticker's
next wake-up after the deadline (the ticker, a Python thread too, catches up on the
epochs it missed).

Usage: python benchmarks/bench_deadline.py [--repeats 20] [--wasm-dir build/wasm]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import wasmplug

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def busy_threads(n: int) -> Iterator[None]:
    """``n`` threads spinning in Python for the duration of the block."""
    stop = threading.Event()

    def spin() -> None:
        x = 0
        while not stop.is_set():
            x += 1

    threads = [threading.Thread(target=spin, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join()


def overshoot_ms(
    call: Callable[[], object], deadline_ms: int, warm: Callable[[], object] | None = None
) -> float:
    """Milliseconds from the start of ``call`` to its DeadlineExceeded, less the
    deadline. ``warm`` runs first, untimed (a breach replaces the instance, and the
    next call creates the new one: that is not the deadline's cost)."""
    if warm is not None:
        warm()
    start = time.perf_counter()
    try:
        call()
    except wasmplug.DeadlineExceeded:
        pass
    else:  # pragma: no cover - the guest never returns
        raise AssertionError("the call returned")
    return (time.perf_counter() - start) * 1000 - deadline_ms


def sleep_overshoot_ms(ms: int) -> float:
    start = time.perf_counter()
    time.sleep(ms / 1000)
    return (time.perf_counter() - start) * 1000 - ms


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"median {statistics.median(ordered):7.1f}   p90 {p90:7.1f}   max {ordered[-1]:7.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--wasm-dir", type=Path, default=ROOT / "build" / "wasm")
    args = parser.parse_args(argv)
    world = wasmplug.load_world(ROOT / "tests" / "fixtures" / "hostile" / "wit", "hostile")
    print(f"overshoot past the deadline, ms ({args.repeats} calls each)")
    for deadline_ms in (100, 1000):
        limits = wasmplug.Limits(fuel=None, deadline_ms=deadline_ms)
        plugin = wasmplug.load(
            args.wasm_dir / "hostile.wasm", world=world, policy=wasmplug.Policy(limits=limits)
        )
        repeats = args.repeats if deadline_ms < 1000 else max(3, args.repeats // 4)
        for busy in (0, 4):
            with busy_threads(busy):
                samples = [
                    overshoot_ms(
                        lambda p=plugin: p.call("spin"),
                        deadline_ms,
                        warm=lambda p=plugin: p.call("bump"),
                    )
                    for _ in range(repeats)
                ]
                floor = [sleep_overshoot_ms(deadline_ms) for _ in range(repeats)]
            label = f"spin, {deadline_ms} ms deadline, {busy} busy threads"
            print(f"  {label:<42} {summary(samples)}")
            print(f"  {'  floor: time.sleep, same load':<42} {summary(floor)}")
            if deadline_ms == 100:
                with busy_threads(busy):
                    grows = [
                        overshoot_ms(
                            lambda p=plugin: p.call("grow-pages", 0),
                            deadline_ms,
                            warm=lambda p=plugin: p.call("bump"),
                        )
                        for _ in range(repeats)
                    ]
                label = f"  page-by-page growth, then a loop, {busy} busy"
                print(f"  {label:<42} {summary(grows)}")
        plugin.close()

    limits = wasmplug.Limits(fuel=None, deadline_ms=100, host_calls=None)
    plugins = [
        wasmplug.load(
            args.wasm_dir / "hostile.wasm",
            world=world,
            policy=wasmplug.Policy(grants=wasmplug.Grants(log=True), limits=limits),
            name=f"storm-{i}",
        )
        for i in range(8)
    ]
    samples: list[float] = []
    lock = threading.Lock()

    def storm(plugin: wasmplug.Plugin) -> None:
        # spam-log's messages go to the plugin's logger, which drops INFO by default.
        over = overshoot_ms(lambda: plugin.call("spam-log", 4_000_000_000, 1), 100)
        with lock:
            samples.append(over)

    for _ in range(max(1, args.repeats // 4)):
        threads = [threading.Thread(target=storm, args=(p,)) for p in plugins]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    print(f"  {'host-call storms, 8 threads, 100 ms':<42} {summary(samples)}")


if __name__ == "__main__":
    main()
