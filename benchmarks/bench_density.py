"""Live plugins per process: what each costs in resident memory, address space and
kernel memory mappings, under wasmtime's default memory reservation and smaller ones.

Each variant runs in a fresh process: it loads ``--plugins`` plugins of the
``benchcalls`` fixture (each with its own live instance and Store; the compiled
artifact shared), after one uncounted load, and reports per plugin the growth of
``VmRSS`` and ``VmSize`` (``/proc/self/status``), of the process's memory mappings
(lines of ``/proc/self/maps``) and the load time. The mappings matter because the
kernel caps them per process (``vm.max_map_count``, 65,530 by default): the ceiling
on live plugins is about that cap divided by the mappings per plugin.

Variants: ``component`` and ``core`` (the fast path) at the default reservation (4 GiB
per linear memory on 64-bit hosts), ``core`` under each ``--reservation-mib``
(``Engine(memory_reservation_bytes=...)``), and both paths with at most ``--live``
live instances (``Engine(max_live_instances=...)``: the plugins stay loaded, each with
its own policy, and the least recently used drop their instances).

Usage: python benchmarks/bench_density.py [--plugins 10000] [--reservation-mib 64 16]
                                          [--live 1000]
Needs ``bash scripts/build-wasm.sh benchcalls`` and ``--core benchcalls`` first.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, sys, time
from pathlib import Path
import wasmplug

root, kind, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
reservation, live = int(sys.argv[4]), int(sys.argv[5])

def status():
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmSize"):
            fields[key] = int(value.split()[0]) * 1024
    fields["maps"] = len(Path("/proc/self/maps").read_text().splitlines())
    return fields

engine = wasmplug.Engine(
    cache_dir=None,
    memory_reservation_bytes=(reservation << 20) if reservation else None,
    max_live_instances=live or None,
)
world = wasmplug.load_world(root / "tests" / "fixtures" / "benchcalls" / "wit", "benchcalls")
build = root / "build" / ("wasm" if kind == "component" else "wasm-core")
wasm = (build / "benchcalls.wasm").read_bytes()
limits = wasmplug.Limits(memory_bytes=min(reservation << 20, 64 << 20) if reservation else 64 << 20)
policy = wasmplug.Policy(limits=limits)
first = wasmplug.load(wasm, world=world, policy=policy, engine=engine, name="warm-up")
assert first.call("add", 1, 2) == 3
before = status()
start = time.perf_counter()
plugins = [
    wasmplug.load(wasm, world=world, policy=policy, engine=engine, name=f"t{i}")
    for i in range(n)
]
elapsed = time.perf_counter() - start
after = status()
assert all(p.call("add", 1, 2) == 3 for p in plugins[:: max(1, n // 100)])
print(json.dumps({
    "rss_kib": (after["VmRSS"] - before["VmRSS"]) / n / 1024,
    "address_space_mib": (after["VmSize"] - before["VmSize"]) / n / 2**20,
    "maps": (after["maps"] - before["maps"]) / n,
    "load_ms": elapsed / n * 1000,
}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plugins", type=int, default=10_000, help="live plugins per variant")
    parser.add_argument(
        "--reservation-mib",
        type=int,
        nargs="*",
        default=[64, 16],
        help="memory reservations to try on the fast path, MiB (default 64 16)",
    )
    parser.add_argument(
        "--live", type=int, default=1000, help="live instances in the LRU variants (0: none)"
    )
    args = parser.parse_args(argv)
    variants = [("component", 0, 0), ("core", 0, 0)]
    variants += [("core", r, 0) for r in args.reservation_mib]
    if args.live:
        variants += [("component", 0, args.live), ("core", 0, args.live)]
    max_map_count = int(Path("/proc/sys/vm/max_map_count").read_text())
    print(f"{args.plugins:,} live plugins per variant; vm.max_map_count = {max_map_count:,}")
    print(
        f"{'variant':<28}{'RSS KiB':>10}{'addr MiB':>12}{'maps':>7}{'load ms':>9}"
        f"{'ceiling (maps)':>16}"
    )
    for kind, reservation, live in variants:
        argv_child = [str(ROOT), kind, str(args.plugins), str(reservation), str(live)]
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, *argv_child],
            capture_output=True,
            text=True,
            check=False,
        )
        name = f"{kind}, " + (
            f"{reservation} MiB reserved"
            if reservation
            else f"{live:,} live (LRU)"
            if live
            else "default"
        )
        if out.returncode:
            print(f"{name:<28}failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        ceiling = max_map_count / r["maps"] if r["maps"] else float("inf")
        print(
            f"{name:<28}{r['rss_kib']:>10.1f}{r['address_space_mib']:>12,.0f}"
            f"{r['maps']:>7.1f}{r['load_ms']:>9.2f}{ceiling:>16,.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
