"""Resource handles: what passing them adds to a call, on both backends side by side.

Calls the ``resources`` fixture (``tests/fixtures/resources``, built by
``scripts/build-wasm.sh`` and ``scripts/build-wasm.sh --core``) as a component and as
a core module in one process: ``text.live`` passes no handle; ``buf.len()`` lends a
guest ``buffer`` (``borrow``); ``Buffer(...)`` + ``close()`` makes one (``own`` result)
and runs its destructor; ``ledger.peek`` lends a host ``counter``;
``count-with-host`` makes a host counter in the guest, calls three of its methods and
drops it. Medians of 5 repeats, microseconds per call; absolute times on shared
machines are noisy, compare within one run.

Usage: python benchmarks/bench_resources.py [--wasm-dir build/wasm]
    [--core-dir build/wasm-core]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_calls import ROOT, per_call_us

import wasmplug


class HostCounter:
    """The host's ``counter``."""

    def __init__(self, start: int) -> None:
        self.n = start

    def add(self, n: int) -> int:
        self.n += n
        return self.n

    def value(self) -> int:
        return self.n

    @staticmethod
    def doubled(c: HostCounter) -> HostCounter:
        return HostCounter(2 * c.n)


class Store:
    """The host's ``host-store``."""

    Counter = HostCounter

    def describe(self, c: HostCounter) -> str:
        return str(c.n)

    def absorb(self, c: HostCounter) -> int:
        return c.n

    def pair_sum(self, a: HostCounter, b: HostCounter) -> int:
        return a.n + b.n

    def copy_of(self, c: HostCounter) -> HostCounter:
        return HostCounter(c.n)


def cases(plugin: wasmplug.Plugin, buffer: Any) -> dict[str, Callable[[], Any]]:
    """The timed calls on one plugin."""
    counter = HostCounter(1)

    def make_and_close() -> None:
        buffer(plugin, "x").close()

    buf = buffer(plugin, "hello")
    return {
        "text.live (no handle)": lambda: plugin.call("text.live"),
        "buf.len() (lends a guest buffer)": buf.len,
        "Buffer() + close() (own result, dtor)": make_and_close,
        "ledger.peek (lends a host counter)": lambda: plugin.call("ledger.peek", counter),
        "count-with-host (host counter, 3 methods)": lambda: plugin.call(
            "count-with-host", 1, [1, 2, 3]
        ),
    }


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints one line per case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wasm-dir", type=Path, default=ROOT / "build" / "wasm")
    parser.add_argument("--core-dir", type=Path, default=ROOT / "build" / "wasm-core")
    args = parser.parse_args(argv)
    world = wasmplug.load_world(ROOT / "tests" / "fixtures" / "resources" / "wit", "resources")
    times: dict[str, dict[str, float]] = {}
    for directory in (args.wasm_dir, args.core_dir):
        with wasmplug.load(
            directory / "resources.wasm", world=world, imports={"host-store": Store()}
        ) as plugin:
            for name, fn in cases(plugin, world.types.Buffer).items():
                times.setdefault(name, {})[plugin.kind] = per_call_us(fn)
    print(f"{'case':<44} {'component':>10} {'core-module':>12} {'ratio':>6}")
    for name, by_kind in times.items():
        component, core = by_kind["component"], by_kind["core-module"]
        print(f"{name:<44} {component:8.1f} us {core:9.1f} us {component / core:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
