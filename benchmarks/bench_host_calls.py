"""Host-function cost: what a guest's call into the host's Python adds to a call.

Calls exports of the ``hostfns`` fixture (``tests/fixtures/hostfns``, built by
``scripts/build-wasm.sh``) side by side in one process: ``pong`` makes no host call,
``now`` one host call returning a ``u64``, ``call-ping`` one returning a ``u32``,
``lookup`` two returning an ``option<record>``. The differences to ``pong`` are the
host calls' cost. Medians of 5 repeats, microseconds per call; absolute times on
shared machines are noisy, compare within one run.

Usage: python benchmarks/bench_host_calls.py [--wasm-dir build/wasm]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench_calls import ROOT, per_call_us

import wasmplug


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints one line per case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wasm-dir", type=Path, default=ROOT / "build" / "wasm")
    args = parser.parse_args(argv)
    world = wasmplug.load_world(ROOT / "tests" / "fixtures" / "hostfns" / "wit", "hostfns")
    item = world.types.Item

    class Inventory:
        def lookup(self, name: str) -> Any:
            return item(name=name, qty=1)

        def reserve(self, name: str, qty: int) -> int:
            return 0

        def emit(self, event: str) -> None:
            pass

        def ping(self) -> int:
            return 1

    with wasmplug.load(
        args.wasm_dir / "hostfns.wasm",
        world=world,
        imports={"inventory": Inventory(), "now-ms": lambda: 5},
    ) as plugin:
        cases = {
            "pong (no host call)": lambda: plugin.call("pong"),
            "now (1 host call -> u64)": lambda: plugin.call("now"),
            "call-ping (1 host call -> u32)": lambda: plugin.call("call-ping"),
            "lookup (2 host calls -> option<record>)": lambda: plugin.call("lookup", "a"),
        }
        times = {name: per_call_us(fn) for name, fn in cases.items()}
    base = times["pong (no host call)"]
    for name, us in times.items():
        print(f"{name:<42} {us:8.1f} us   (+{us - base:6.1f} us over pong)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
