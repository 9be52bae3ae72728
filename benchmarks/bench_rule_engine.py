"""The rule engine end to end: the three well-behaved tenants over the flights, in
plain Python (``reference_rules.py``) and through wasmplug per flight and batched, on
the component path and the fast path, side by side in one process.

The flights are read once before timing. Each wasmplug variant's wall time is the
streaming loop of ``run.run`` (loading and ``setup`` excluded: :attr:`Report.wall_time_s`),
its alert digests checked against the reference's; the ratio is against the plain-Python
rules timed in the same process (``reference_digests``: the same rules, the same
flights, the same digests).

Usage: python benchmarks/bench_rule_engine.py [--limit N] [--batch 256] [--skip-per-flight]
Needs the tenants built for both paths: ``bash scripts/build-wasm.sh ops-thresholds
route-watch night-owl`` and the same with ``--core``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "rule-engine"))

import run as engine  # noqa: E402
from flightdata import iter_flights  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="flights (default: all)")
    parser.add_argument("--batch", type=int, default=256, help="flights per batch call")
    parser.add_argument(
        "--skip-per-flight", action="store_true", help="time only the batched variants"
    )
    args = parser.parse_args(argv)
    rows = list(iter_flights(args.limit))
    start = time.perf_counter()
    reference = engine.reference_digests(rows)
    plain = time.perf_counter() - start
    print(f"{len(rows):,} flights, 3 tenants; plain Python rules: {plain:.2f} s")
    print(f"{'variant':<34}{'wall s':>9}{'vs Python':>11}  digests")
    batches = [args.batch] if args.skip_per_flight else [1, args.batch]
    failed = False
    for path, label in (("wasm-core", "fast path"), ("wasm", "component path")):
        for batch in batches:
            report = engine.run(
                rows,
                engine.tenant_specs(include_hostile=False),
                wasm_dir=ROOT / "build" / path,
                batch=batch,
            )
            same = all(report.tenants[n].digest == d for n, d in reference.items())
            failed |= not same
            mode = "per flight" if batch == 1 else f"batches of {batch}"
            print(
                f"{label + ', ' + mode:<34}{report.wall_time_s:>9.2f}"
                f"{report.wall_time_s / plain:>10.1f}x  {'equal' if same else 'DIFFER'}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
