"""Idle cost of the deadline clock: CPU time a host process burns while it sleeps
with an engine alive and a plugin loaded.

Each measurement runs in a fresh process: it loads the ``benchcalls`` component
(default limits, so a 1 s deadline), calls ``add`` once, lets that call's deadline
pass, then sleeps ``--seconds`` and reports the process's CPU time
(``time.process_time``, every thread) over that sleep as a percentage of one CPU. The
same is measured for a process that has only imported wasmplug (the floor).

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
print(json.dumps({
    "cpu_percent": 100 * cpu / wall,
    "epochs": (clock.ticks - ticks) if clock is not None else 0,
    "parked": getattr(clock, "parked", None),
    "wasmplug": wasmplug.__file__,
}))
"""


def measure(seconds: float, mode: str, src: Path | None) -> dict[str, object]:
    """One fresh process; returns its report (``cpu_percent``: % of one CPU)."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(ROOT), str(seconds), mode],
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
            results[label].append(measure(args.seconds, mode, src))
    print(f"idle CPU over {args.seconds:g} s of sleep, % of one CPU ({args.rounds} processes each)")
    for label, runs in results.items():
        cpu = [float(str(r["cpu_percent"])) for r in runs]
        epochs = [int(str(r["epochs"])) for r in runs]
        print(
            f"  {label:<60} median {statistics.median(cpu):6.2f}%   max {max(cpu):6.2f}%"
            f"   epochs added {statistics.median(epochs):>6.0f}   parked {runs[-1]['parked']}"
        )


if __name__ == "__main__":
    main()
