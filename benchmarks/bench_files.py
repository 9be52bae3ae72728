"""What the file limits (``Limits.open_files``, ``Preopen.max_bytes``) cost a call.

One process, the ``attacks`` test plugin on both backends, a writable preopen
``/data`` of its own. Each case is measured with the limits on (the defaults: 64
files, 64 MiB) and off (``open_files=None``, ``max_bytes=None``, which serves WASI
as before), round after round so that machine noise hits them alike:

- *no files*: ``host-call-storm(0)``, a call that touches no file;
- *write a file*: ``write-file("/data/x", "hello")`` (open, write, close);
- *write, 1,000 files*: the same with 1,000 other files in the preopen (the
  component path walks the tree after every call).

On the fast path the limits add host functions to WASI calls that open, close or
write; on the component path every file and stream operation goes through wasmplug's
WASI forwarder (``open_files``), and the preopen's bytes are measured after every
call (``max_bytes``).

Reported: the median over the rounds of each case's mean time per call, in
microseconds, on and off, and the ratio.

Usage: python benchmarks/bench_files.py [--rounds 7] [--calls 2000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasmplug

ROOT = Path(__file__).resolve().parent.parent
BUILDS = {"component": ROOT / "build" / "wasm", "core-module": ROOT / "build" / "wasm-core"}


def mean_us(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2_000)
    args = parser.parse_args(argv)
    world = wasmplug.load_world(ROOT / "tests" / "fixtures" / "attacks" / "wit", "attacks")
    engine = wasmplug.Engine(cache_dir=None)
    n = args.calls
    with tempfile.TemporaryDirectory() as tmp:
        plugins: dict[tuple[str, str, bool], wasmplug.Plugin] = {}
        for backend, build in BUILDS.items():
            for crowd in ("empty", "crowded"):
                for on in (True, False):
                    data = Path(tmp) / f"{backend}-{crowd}-{on}"
                    data.mkdir()
                    if crowd == "crowded":
                        for i in range(1_000):
                            (data / f"old{i}").write_bytes(b"x" * 100)
                    preopen = wasmplug.Preopen(
                        host_path=data,
                        guest_path="/data",
                        writable=True,
                        max_bytes=(64 << 20) if on else None,
                    )
                    limits = wasmplug.Limits(open_files=64 if on else None)
                    policy = wasmplug.Policy(grants=wasmplug.Grants(files=[preopen]), limits=limits)
                    plugins[backend, crowd, on] = wasmplug.load(
                        build / "attacks.wasm", world=world, policy=policy, engine=engine
                    )
        cases: dict[tuple[str, str, bool], list[float]] = {}

        def quiet(plugin: wasmplug.Plugin) -> Callable[[], Any]:
            return lambda: plugin.call("host-call-storm", 0)

        def write(plugin: wasmplug.Plugin) -> Callable[[], Any]:
            return lambda: plugin.call("write-file", "/data/x", "hello")

        for round_ in range(args.rounds):
            # Every other round in the reverse order, so that neither side of a pair
            # always runs first.
            order = list(plugins.items())
            for (backend, crowd, limited), plugin in order[:: -1 if round_ % 2 else 1]:
                if crowd == "empty":
                    cases.setdefault((backend, "no files", limited), []).append(
                        mean_us(quiet(plugin), n)
                    )
                    name = "write a file"
                else:
                    name = "write, 1,000 files"
                cases.setdefault((backend, name, limited), []).append(
                    mean_us(write(plugin), n // 4)
                )
        for plugin in plugins.values():
            plugin.close()
    print(f"{'backend':<12} {'case':<20} {'limits on':>10} {'off':>10} {'ratio':>7}  (µs/call)")
    for backend in BUILDS:
        for name in ("no files", "write a file", "write, 1,000 files"):
            with_limits = statistics.median(cases[backend, name, True])
            without = statistics.median(cases[backend, name, False])
            ratio = with_limits / without
            print(f"{backend:<12} {name:<20} {with_limits:>10.1f} {without:>10.1f} {ratio:>7.2f}")


if __name__ == "__main__":
    main()
