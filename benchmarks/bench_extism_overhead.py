"""What wasmplug's Extism backend adds to a call, on the benchmark Extism plugin.

Usage::

    python benchmarks/bench_extism_overhead.py [--rounds N]

Two measures, on ``build/bench/wasm/extism_bench.wasm`` (``scripts/build-bench.sh``)
and its JSON exports (``benchmarks/plugins/extism-bench/wit``):

1. Side by side, rotating sample by sample: ``Plugin.call`` through the Extism backend
   (default policy: fuel, memory and deadline limits) against ``extism.Plugin.call``
   of the same Extism function with the same JSON bytes (no limits), for ``add`` and
   the no-op. Medians in µs per call.
2. wasmplug's own share: ``Plugin.call`` with libextism's call replaced by a stub that
   returns at once (the output of the last real call stays readable), so what is
   timed is only wasmplug's Python work (arguments to JSON and checked, the call's
   bookkeeping, the output read and decoded), per case. Best of the rounds, in µs.

The second measure is the one to compare across versions of wasmplug: it does not
depend on the guest or on libextism, and it is far less noisy than the first.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WASM = ROOT / "build" / "bench" / "wasm" / "extism_bench.wasm"
WIT = ROOT / "benchmarks" / "plugins" / "extism-bench" / "wit"


def _side_by_side(rounds: int) -> None:
    import extism

    import wasmplug

    world = wasmplug.load_world(WIT, "extism-bench")
    plugin = wasmplug.load(WASM, world=world, name="extism-bench")
    sdk = extism.Plugin({"wasm": [{"path": str(WASM)}]}, wasi=False, functions=[])
    calls: dict[str, Callable[[], Any]] = {
        "add: wasmplug": lambda: plugin.call("json.add", 1, 2),
        "add: extism SDK": lambda: sdk.call("json_add", b"[1,2]"),
        "noop: wasmplug": lambda: plugin.call("json.noop"),
        "noop: extism SDK": lambda: sdk.call("json_noop", b""),
    }
    samples: dict[str, list[float]] = {key: [] for key in calls}
    for _ in range(rounds):
        for key, fn in calls.items():
            start = time.perf_counter()
            for _ in range(1000):
                fn()
            samples[key].append((time.perf_counter() - start) / 1000 * 1e6)
    print("side by side, median µs per call:")
    for key, values in samples.items():
        print(f"  {key:18} {statistics.median(values):8.1f}")
    plugin.close()


def _python_share(rounds: int) -> None:
    import wasmplug
    from wasmplug import _extism_native as native

    world = wasmplug.load_world(WIT, "extism-bench")
    blob = bytes((i * 7 + 3) % 256 for i in range(64 * 1024))
    unit = "wasmplug héllo wörld ✓ "
    text = (unit * (64 * 1024 // len(unit.encode()) + 1)).encode()[: 64 * 1024]
    cases: list[tuple[str, str, tuple[Any, ...], int]] = [
        ("add", "json.add", (1, 2), 20_000),
        ("noop", "json.noop", (), 20_000),
        ("blob-stats 64 KiB", "json.blob-stats", (blob,), 20),
        ("echo-bytes 64 KiB", "json.echo-bytes", (blob,), 10),
        ("echo-string 64 KiB", "json.echo-string", (text.decode(errors="ignore"),), 50),
    ]
    print("wasmplug's own work per call (libextism's call stubbed), best µs:")
    real = native.call
    for label, function, args, number in cases:
        plugin = wasmplug.load(WASM, world=world, name="extism-bench")
        plugin.call(function, *args)  # a real call: its output stays readable
        native.call = lambda *_: (0, None)
        try:
            call = functools.partial(plugin.call, function, *args)
            best = min(timeit.repeat(call, number=number, repeat=rounds))
        finally:
            native.call = real
        plugin.close()
        print(f"  {label:18} {best / number * 1e6:10.1f}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="samples per measure")
    args = parser.parse_args(argv)
    if not WASM.exists():
        print(f"{WASM} is missing: run scripts/build-bench.sh", file=sys.stderr)
        return 1
    _side_by_side(args.rounds)
    _python_share(args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
