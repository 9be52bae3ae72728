"""Cost of the deadline clock: CPU time a host process burns while it sleeps with an
engine alive and a plugin loaded, and time the epoch ticker adds to calls.

Each measurement runs in a fresh process: it loads the ``benchcalls`` component
(default limits, so a 1 s deadline), calls ``add`` once, lets that call's deadline
pass, then sleeps ``--seconds`` and reports the process's CPU time
(``time.process_time``, every thread) over that sleep as a percentage of one CPU. The
same is measured for a process that has only imported wasmplug (the floor).

The cost added to calls: in a fresh process, ``add(2, 3)`` and a 64 KiB string echo
are timed (median of 15 samples of ~20 ms) with the engine's ticker alive, then again
after ``Engine.close()`` has stopped it (the calls still set their deadlines); the
ratio live / stopped is the ticker's cost.

With ``--baseline-src DIR`` the same measurement also runs with ``DIR`` first on
``PYTHONPATH`` (for example a checkout of an older ``src/``), the variants taking
turns, so that before and after are compared side by side in one run.

Usage: python benchmarks/bench_idle.py [--seconds 3] [--rounds 3] [--baseline-src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, sys, time
from pathlib import Path
import wasmplug

root, seconds, mode = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
plugin = None
if mode == "plugin":
    world = wasmplug.load_world(root / "tests/fixtures/benchcalls/wit", "benchcalls")
    plugin = wasmplug.load(root / "build/wasm/benchcalls.wasm", world=world)
    assert plugin.call("add", 2, 3) == 5
    time.sleep(1.5)  # the call's deadline (1 s by default) passes
clock = wasmplug.Engine.default().epoch_clock if mode == "plugin" else None
ticks = clock.ticks if clock is not None else 0
cpu, wall = time.process_time(), time.monotonic()
time.sleep(seconds)
cpu, wall = time.process_time() - cpu, time.monotonic() - wall
epochs = (clock.ticks - ticks) if clock is not None else 0
parked = getattr(clock, "parked", None)
calls = {}
if mode == "plugin" and len(sys.argv) > 4:
    import statistics, threading
    text = "aé€" * (65536 // 6)
    cases = {"add": lambda: plugin.call("add", 2, 3),
             "echo": lambda: plugin.call("echo-string", text)}
    def sample(f):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < 0.02:
            f(); n += 1
        return (time.perf_counter() - start) / n * 1e6
    for name, f in cases.items():
        live = [sample(f) for _ in range(15)]
        calls[name] = live
    wasmplug.Engine.default().close()
    wasmplug.Engine.default()._ticker.join()
    for name, f in cases.items():
        stopped = [sample(f) for _ in range(15)]
        calls[name] = [statistics.median(calls[name]), statistics.median(stopped)]
print(json.dumps({
    "calls": calls,
    "cpu_percent": 100 * cpu / wall,
    "epochs": epochs,
    "parked": parked,
    "wasmplug": wasmplug.__file__,
}))
"""


def measure(seconds: float, mode: str, src: Path | None, calls: bool = False) -> dict[str, object]:
    """One fresh process; returns its report (``cpu_percent``: % of one CPU)."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(ROOT),
            str(seconds),
            mode,
            *(["calls"] if calls else []),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    report: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path, default=None)
    args = parser.parse_args(argv)
    variants: list[tuple[str, str, Path | None]] = [("import wasmplug only", "bare", None)]
    if args.baseline_src is not None:
        variants.append((f"engine + plugin, {args.baseline_src}", "plugin", args.baseline_src))
    variants.append(("engine + plugin, this tree", "plugin", ROOT / "src"))
    results: dict[str, list[dict[str, object]]] = {label: [] for label, _, _ in variants}
    for _ in range(args.rounds):
        for label, mode, src in variants:
            results[label].append(measure(args.seconds, mode, src, calls=mode == "plugin"))
    print(f"idle CPU over {args.seconds:g} s of sleep, % of one CPU ({args.rounds} processes each)")
    for label, runs in results.items():
        cpu = [float(str(r["cpu_percent"])) for r in runs]
        epochs = [int(str(r["epochs"])) for r in runs]
        print(
            f"  {label:<60} median {statistics.median(cpu):6.2f}%   max {max(cpu):6.2f}%"
            f"   epochs added {statistics.median(epochs):>6.0f}   parked {runs[-1]['parked']}"
        )
    print("time per call with the ticker alive / stopped (median of processes; µs live)")
    for label, runs in results.items():
        reports = [r["calls"] for r in runs if r["calls"]]
        for case in ("add", "echo"):
            pairs = [rep[case] for rep in reports]  # type: ignore[index]
            if pairs:
                ratio = statistics.median(live / stopped for live, stopped in pairs)
                live_us = statistics.median(live for live, _ in pairs)
                print(f"  {label:<52} {case:<5} {live_us:9.1f} µs   x{ratio:.3f}")


if __name__ == "__main__":
    main()
