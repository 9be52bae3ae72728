"""The benchmark suite (``python -m benchmarks``) in its smoke mode: tiny iteration
counts, so nothing here is a speed claim and nothing is timed against a bound.

One run of the whole harness (its build script included) checks that it writes a
``results.json`` of the documented shape with every case for every alternative that
can express it, that each answer was checked (the harness stops on a wrong answer,
so a finished run means every alternative agreed with plain Python), and that the
chart was drawn. The Extism columns (the SDK, and wasmplug's Extism backend on the same
plugin) need the ``extism`` package, which
``scripts/setup.sh`` installs (the ``bench`` extra): where it is installed, Extism
must have every result; where it is not, the run must say so in
``alternatives.extism.reason`` and have no Extism results. Nothing is skipped.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

CALL_CASES = [
    "add",
    "noop",
    "blob_stats",
    "echo_string",
    "echo_bytes",
    "evaluate",
    "fresh_instance",
]
PROCESS_CASES = ["new_process", "import_time"]
ALTERNATIVES = [
    "wasmplug",
    "wasmplug_fast",
    "wasmtime_component",
    "raw_wasmtime",
    "floor",
    "extism",
    "wasmplug_extism",
    "python",
]
#: The alternatives that need the ``extism`` package.
EXTISM_ALTERNATIVES = {"extism", "wasmplug_extism"}
#: Which alternative can express which per-call case (the rest say why not).
NOT_EXPRESSIBLE = {
    ("wasmtime_component", "evaluate"),
    ("raw_wasmtime", "evaluate"),
    ("floor", "evaluate"),
    ("floor", "fresh_instance"),
    ("python", "fresh_instance"),
}
HAVE_EXTISM = importlib.util.find_spec("extism") is not None
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """Runs the suite once in smoke mode and returns its results and output directory."""
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "targets" in proc.stdout  # the table was printed
    doc: dict[str, Any] = json.loads((out / "results.json").read_text())
    return doc, out


def _stats_ok(entry: dict[str, Any]) -> bool:
    return (
        entry["n"] >= 1
        and 0 < entry["p25"] <= entry["median"] <= entry["p75"]
        and len(entry["samples"]) >= 1
    )


def test_every_alternative_is_listed_and_extism_matches_the_environment(
    results: tuple[dict[str, Any], Path],
) -> None:
    """Every alternative appears; only the Extism ones (the SDK, wasmplug's Extism
    backend) may be unavailable, and only when the package is missing."""
    doc, _ = results
    assert list(doc["alternatives"]) == ALTERNATIVES
    for key, alt in doc["alternatives"].items():
        expected = HAVE_EXTISM or key not in EXTISM_ALTERNATIVES
        assert alt["available"] is expected, (key, alt)
        assert (alt["reason"] is None) is expected


def test_every_call_case_has_every_available_alternative(
    results: tuple[dict[str, Any], Path],
) -> None:
    """Each per-call case has median/p25/p75/n for every available alternative that
    can express it, the others listed as skipped, and ratios against wasmplug."""
    doc, _ = results
    available = [k for k, a in doc["alternatives"].items() if a["available"]]
    assert list(doc["cases"]) == CALL_CASES + PROCESS_CASES
    for case in CALL_CASES:
        entry = doc["cases"][case]
        assert entry["unit"] == "us"
        for alt in available:
            if (alt, case) in NOT_EXPRESSIBLE:
                assert alt in entry["skipped"], (case, alt)
                assert alt not in entry["results"]
            else:
                assert _stats_ok(entry["results"][alt]), (case, alt)
                ratio = entry["results"][alt]["median"] / entry["results"]["wasmplug"]["median"]
                assert entry["ratios"][alt] == pytest.approx(ratio)
        assert entry["ratios"]["wasmplug"] == pytest.approx(1.0)
        if not HAVE_EXTISM:
            assert not EXTISM_ALTERNATIVES & set(entry["results"])


def test_process_cases_and_density(results: tuple[dict[str, Any], Path]) -> None:
    """The start-up cases ran in new processes for each wasm alternative, and the
    density case counted live plugins for each."""
    doc, _ = results
    wasm_alts = ["wasmplug", "wasmtime_component", "raw_wasmtime"] + (
        ["extism"] if HAVE_EXTISM else []
    )
    # Importing is the same on both of wasmplug's paths; the rest runs on each.
    expected = {
        "import_time": wasm_alts,
        "new_process": [*wasm_alts, "wasmplug_fast"],
    }
    for case in PROCESS_CASES:
        assert doc["cases"][case]["unit"] == "ms"
        assert sorted(doc["cases"][case]["results"]) == sorted(expected[case])
        for alt in expected[case]:
            assert _stats_ok(doc["cases"][case]["results"][alt]), (case, alt)
    assert sorted(doc["density"]) == sorted([*wasm_alts, "wasmplug_fast"])
    for alt, d in doc["density"].items():
        assert d["plugins"] == 5, alt
        assert d["load_ms_per_plugin"] > 0
        # Every instance reserves address space for its linear memory.
        assert d["address_space_kib_per_plugin"] > 0, alt


def test_rule_engine_answers_were_compared(results: tuple[dict[str, Any], Path]) -> None:
    """The rule-engine check compared wasmplug (and Extism, when installed) with plain
    Python on flights that raise alerts."""
    doc, _ = results
    check = doc["rule_engine_check"]
    assert check["flights"] == 40
    assert check["alerts"] >= 20  # half the sample raises at least one alert
    assert "wasmplug" in check["alternatives"]
    assert "wasmplug_fast" in check["alternatives"]
    assert ("extism" in check["alternatives"]) is HAVE_EXTISM
    assert ("wasmplug_extism" in check["alternatives"]) is HAVE_EXTISM


def test_targets_and_metadata(results: tuple[dict[str, Any], Path]) -> None:
    """Each target names its case and carries a ratio and a verdict when both of its
    alternatives ran; the document records the machine, versions and mode."""
    doc, _ = results
    assert doc["schema"] == 1
    assert doc["mode"]["name"] == "smoke"
    assert doc["versions"]["wasmtime"] == "50.0.1"
    assert doc["machine"]["cpu_count"] >= 1
    ids = [t["id"] for t in doc["targets"]]
    assert len(ids) == len(set(ids)) == 13
    for target in doc["targets"]:
        needs_extism = "extism" in (target["numerator"], target["denominator"])
        if needs_extism and not HAVE_EXTISM:
            assert target["ratio"] is None
            assert target["met"] is None
        else:
            assert target["ratio"] > 0, target
            assert isinstance(target["met"], bool)


def test_chart_is_a_png(results: tuple[dict[str, Any], Path]) -> None:
    """The chart is written when matplotlib is installed, and not otherwise."""
    _, out = results
    png = out / "results.png"
    if HAVE_MATPLOTLIB:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert not png.exists()
