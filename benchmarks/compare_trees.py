"""Per-call cost of this tree's wasmplug against another git revision's, side by side.

Both versions run in one process: ``src/wasmplug`` of the revision (``git archive``)
and of the work tree are copied under other package names (their imports are
relative) and each loads ``benchcalls`` as a component (``build/wasm``) and as a core
module (``build/wasm-core``). For each case, blocks of ``--calls`` calls alternate
between the two versions for ``--rounds`` rounds (the order flips every round), so
load on a shared machine hits both alike. Reported per case: the fastest and the
median block (microseconds per call) of each, and the median of the per-round ratios
(work tree / revision; below 1 is faster).

Usage: python -m benchmarks.compare_trees [--base main] [--rounds 150] [--calls 1000]
    [--cases TEXT]
(after ``scripts/build-wasm.sh`` and ``scripts/build-wasm.sh --core``).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import io
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _packages(base: str, into: Path) -> tuple[str, str]:
    """Copies ``base``'s and the work tree's ``src/wasmplug`` into ``into`` as two
    packages; returns their names (revision, work tree)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", base, "src/wasmplug"],
        check=True,
        capture_output=True,
        timeout=120,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into / "rev", filter="data")
    shutil.move(into / "rev" / "src" / "wasmplug", into / "wasmplug_rev")
    shutil.copytree(
        ROOT / "src" / "wasmplug", into / "wasmplug_tree", ignore=shutil.ignore_patterns("*.pyc")
    )
    return "wasmplug_rev", "wasmplug_tree"


def _cases(wp: Any) -> dict[str, Callable[[], Any]]:
    world = wp.load_world(ROOT / "tests" / "fixtures" / "benchcalls" / "wit", "benchcalls")
    cases: dict[str, Callable[[], Any]] = {}
    for kind, folder in (("component", "wasm"), ("core-module", "wasm-core")):
        plugin = wp.load(ROOT / "build" / folder / "benchcalls.wasm", world=world, name="bench")
        prepared = world.prepare("add", 1, 2)
        cases[f"{kind} add"] = functools.partial(plugin.call, "add", 1, 2)
        cases[f"{kind} noop"] = functools.partial(plugin.call, "noop")
        cases[f"{kind} add prepared"] = functools.partial(plugin.call_prepared, prepared)
        cases[f"{kind} echo-string"] = functools.partial(plugin.call, "echo-string", "héllo")
        cases[f"{kind} blob-stats"] = functools.partial(plugin.call, "blob-stats", b"x" * 64)
        fresh = wp.load(
            ROOT / "build" / folder / "benchcalls.wasm",
            world=world,
            name="bench-fresh",
            policy=wp.Policy(instance_per_call=True),
        )
        cases[f"{kind} fresh add"] = functools.partial(fresh.call, "add", 1, 2)
    return cases


def _block(fn: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="main", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--calls", type=int, default=1000, help="calls per block")
    parser.add_argument(
        "--cases", default="", help="run only the cases whose name contains this text"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rev_name, tree_name = _packages(args.base, Path(tmp))
        sys.path.insert(0, tmp)
        rev = _cases(importlib.import_module(rev_name))
        tree = _cases(importlib.import_module(tree_name))
        print(f"{'case':24} {args.base + ' min/median':>20} {'tree min/median':>20} ratio")
        for case, rev_fn in rev.items():
            if args.cases not in case:
                continue
            tree_fn = tree[case]
            for _ in range(3):  # warm-up
                _block(rev_fn, args.calls)
                _block(tree_fn, args.calls)
            revs: list[float] = []
            trees: list[float] = []
            ratios: list[float] = []
            for i in range(args.rounds):
                if i % 2:
                    t = _block(tree_fn, args.calls)
                    r = _block(rev_fn, args.calls)
                else:
                    r = _block(rev_fn, args.calls)
                    t = _block(tree_fn, args.calls)
                revs.append(r)
                trees.append(t)
                ratios.append(t / r)
            print(
                f"{case:24} {min(revs):9.2f}/{statistics.median(revs):<9.2f} "
                f"{min(trees):10.2f}/{statistics.median(trees):<9.2f} "
                f"{statistics.median(ratios):.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
