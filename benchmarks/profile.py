"""Runs one case of one alternative in a loop, for a profiler to watch.

Usage::

    python -m benchmarks.profile ALTERNATIVE CASE [CALLS]

ALTERNATIVE is a key of :func:`benchmarks.alternatives.all_alternatives`
(``wasmplug``, ``wasmtime_component``, ``raw_wasmtime``, ``floor``, ``extism``,
``wasmplug_extism``,
``python``), CASE one of the per-call cases (``add``, ``noop``, ``blob_stats``,
``echo_string``, ``echo_bytes``, ``evaluate``, ``fresh_instance``), CALLS how many
calls (default 10,000). The answer is checked once before the loop. Prints the mean
time per call in microseconds. Profiling recipes: docs/performance.md.
"""

from __future__ import annotations

import sys
import time

from benchmarks.alternatives import all_alternatives
from benchmarks.suite import MODES, expected_answer, make_inputs


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    alt_key, case = argv[0], argv[1]
    calls = int(argv[2]) if len(argv) == 3 else 10_000
    classes = {cls.key: cls for cls in all_alternatives()}
    if alt_key not in classes:
        print(f"profile: unknown alternative {alt_key!r}; one of {sorted(classes)}")
        return 2
    inputs = make_inputs(MODES["smoke"])
    alt = classes[alt_key]()
    prepared = alt.prepare(case, inputs)
    if prepared is None:
        print(f"profile: {alt_key} cannot express the case {case!r}", file=sys.stderr)
        return 2
    expected = expected_answer(case, inputs, classes["python"]())
    if prepared.lift(prepared.call()) != expected:
        print(f"profile: {alt_key}/{case} gave a wrong answer", file=sys.stderr)
        return 1
    call = prepared.call
    start = time.perf_counter()
    for _ in range(calls):
        call()
    elapsed = time.perf_counter() - start
    print(f"{alt_key}/{case}: {elapsed / calls * 1e6:.2f} µs per call over {calls:,} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
