"""What ``wasmplug.load`` costs, in milliseconds (median of N runs), for a rule-engine
tenant: optionally against another wasmplug source tree in the same run (for example
the commit before two-party grants), since absolute times on shared machines are noisy.

Cases, each timing ``wasmplug.load`` alone (the world is loaded first, untimed):

* ``in-process``: the same plugin loaded again and again in one process (every cache
  warm: compiled component, WIT results, manifest);
* ``fresh process``: the first load of a new process, with the on-disk caches warm
  (what a restarted host pays per plugin);
* ``fresh process, results cache empty``: as above after deleting the on-disk WIT
  results (``$XDG_CACHE_HOME/wasmplug/wit``), so a manifest is read from the binary
  again (the parser module is instantiated once): what the first load of a new plugin
  binary on a machine pays.

Usage (from the repository root, with the tenants built)::

    python benchmarks/bench_load.py [--runs N] [--plugin mallory] [--baseline SRC]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CODE = """
import sys, time, statistics
import wasmplug
world = wasmplug.load_world({wit!r}, "tenant")
# mallory's policy, written out so that a baseline without policy files runs it too.
policy = wasmplug.Policy(
    grants=wasmplug.Grants(
        log=True,
        config={{"mode": "hostile"}},
        env={{"TENANT": "mallory"}},
        files=[wasmplug.Preopen(host_path={public!r}, guest_path="/public")],
    ),
    limits=wasmplug.Limits(fuel=20_000_000, memory_bytes=16 << 20, deadline_ms=50),
)
class Airports:
    def lookup(self, faa):
        return None
times = []
for _ in range({repeat}):
    t0 = time.perf_counter()
    p = wasmplug.load({wasm!r}, world=world, policy=policy, imports={{"airports": Airports()}})
    times.append((time.perf_counter() - t0) * 1000)
    p.close()
print(statistics.median(times[1:]) if len(times) > 1 else times[0])
"""


def measure(src: Path, plugin: str, *, repeat: int, cache: Path, clear: bool) -> float:
    if clear:
        shutil.rmtree(cache / "wasmplug" / "wit", ignore_errors=True)
    code = _CODE.format(
        public=str(ROOT / "examples" / "rule-engine" / "public"),
        wit=str(ROOT / "examples" / "rule-engine" / "wit"),
        wasm=str(ROOT / "build" / "wasm" / f"{plugin.replace('-', '_')}.wasm"),
        repeat=repeat,
    )
    env = {**os.environ, "PYTHONPATH": str(src), "XDG_CACHE_HOME": str(cache)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--plugin", default="mallory", help="a rule-engine tenant (loaded under mallory's grants)"
    )
    parser.add_argument("--baseline", type=Path, help="the src/ directory of another wasmplug")
    args = parser.parse_args()
    trees = [("this tree", ROOT / "src")]
    if args.baseline is not None:
        trees.insert(0, ("baseline", args.baseline.resolve()))
    print(f"wasmplug.load of {args.plugin}, median ms ({args.runs} runs)")
    for label, src in trees:
        with tempfile.TemporaryDirectory() as tmp:
            cache = Path(tmp)
            measure(src, args.plugin, repeat=1, cache=cache, clear=False)  # fill the caches
            cases = {
                "in-process (20 loads)": [
                    measure(src, args.plugin, repeat=21, cache=cache, clear=False)
                    for _ in range(args.runs)
                ],
                "fresh process": [
                    measure(src, args.plugin, repeat=1, cache=cache, clear=False)
                    for _ in range(args.runs)
                ],
                "fresh process, results cache empty": [
                    measure(src, args.plugin, repeat=1, cache=cache, clear=True)
                    for _ in range(args.runs)
                ],
            }
        for case, values in cases.items():
            print(f"  {label:<10} {case:<38} {statistics.median(values):8.2f}")


if __name__ == "__main__":
    main()
