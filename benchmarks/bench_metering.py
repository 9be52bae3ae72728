"""What fuel metering and epoch interruption cost a guest's own work.

wasmplug's engine always meters fuel and checks epochs (its limits need both); the
benchmark suite's ``floor`` and the Extism plugin run without either. For a
compute-heavy case such as ``blob-stats`` (a byte sum over 64 KiB) that instrumentation,
not the boundary, is what separates wasmplug's fast path from them. This script runs
the same function of the same module (``build/bench/wasm/raw_core.wasm``, built by
``scripts/build-bench.sh``) through ``wasmtime.Func`` on four engines, side by side:

    python benchmarks/bench_metering.py [--rounds 20] [--calls 50]

and prints the median and best time per call for each configuration, and each one's
ratio to the engine with neither.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import wasmtime

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "build" / "bench" / "wasm" / "raw_core.wasm"
PAYLOAD = 64 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    data = os.urandom(PAYLOAD)
    calls = {}
    for fuel in (False, True):
        for epoch in (False, True):
            config = wasmtime.Config()
            config.consume_fuel = fuel
            config.epoch_interruption = epoch
            engine = wasmtime.Engine(config)
            store = wasmtime.Store(engine)
            if fuel:
                store.set_fuel(1 << 60)
            if epoch:
                store.set_epoch_deadline(1 << 40)
            module = wasmtime.Module.from_file(engine, str(MODULE))
            exports = wasmtime.Instance(store, module, []).exports(store)
            memory = exports["memory"]
            assert isinstance(memory, wasmtime.Memory)
            input_buffer = exports["input_buffer"]
            assert isinstance(input_buffer, wasmtime.Func)
            memory.write(store, data, input_buffer(store))
            func = exports["blob_sum"]
            assert isinstance(func, wasmtime.Func)
            assert func(store, PAYLOAD) == sum(data)
            label = f"fuel {'on ' if fuel else 'off'}, epochs {'on ' if epoch else 'off'}"
            calls[label] = (func, store)
    times: dict[str, list[float]] = {label: [] for label in calls}
    for _ in range(args.rounds):  # the configurations take turns
        for label, (func, store) in calls.items():
            start = time.perf_counter()
            for _ in range(args.calls):
                func(store, PAYLOAD)
            times[label].append((time.perf_counter() - start) / args.calls * 1e6)
    base = statistics.median(next(iter(times.values())))
    print(f"blob_sum over {PAYLOAD // 1024} KiB through wasmtime.Func, µs per call:")
    for label, samples in times.items():
        median = statistics.median(samples)
        print(f"  {label}: median {median:8.1f}  best {min(samples):8.1f}  ({median / base:.2f}x)")


if __name__ == "__main__":
    main()
