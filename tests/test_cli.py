"""The ``wasmplug`` command line's ``inspect`` and ``call`` (``bindgen`` is tested in
test_bindgen.py): run as a user runs them, in a new process through the installed
``wasmplug`` script, on both backends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES

TYPETEST = ["--wit", str(FIXTURES / "typetest" / "wit"), "--world", "typetest"]
CAPS = ["--wit", str(FIXTURES / "caps" / "wit"), "--world", "caps"]


def wasmplug(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "wasmplug"
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_inspect_names_the_kind_imports_exports_and_needs(plugin_dir: Path) -> None:
    out = wasmplug("inspect", str(plugin_dir / "caps.wasm"))
    assert out.returncode == 0, out.stderr
    kind = "component" if plugin_dir.name == "wasm" else "core module"
    assert out.stdout.startswith(kind)
    assert "wasmplug:host/kv@0.1.0" in out.stdout
    assert "kv-get" in out.stdout
    wit = wasmplug("inspect", "--wit", str(plugin_dir / "caps.wasm"))
    assert wit.returncode == 0
    assert "kv-get: func(" in wit.stdout


def test_inspect_of_a_non_plugin_fails_clearly(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wasm"
    junk.write_bytes(b"hello world")
    out = wasmplug("inspect", str(junk))
    assert out.returncode == 1
    assert out.stderr.startswith("wasmplug inspect: error: ")
    assert "not WebAssembly" in out.stderr
    missing = wasmplug("inspect", str(tmp_path / "none.wasm"))
    assert missing.returncode == 1
    assert "No such file" in missing.stderr


def test_call_maps_json_through_the_wit_types(plugin_dir: Path) -> None:
    """Records, lists, options, enums, flags and tuples go in as JSON; the result comes
    out as JSON (a variant case as {case: payload}); the stats go to stderr."""
    wasm = str(plugin_dir / "typetest.wasm")
    cases = [
        (["add", "2", "40"], 42),
        (["farthest", '[{"x": 1, "y": 2}, {"x": 5, "y": -7}]'], {"x": 5, "y": -7}),
        (["maybe-double", "null"], None),
        (["maybe-double", "21"], 42),
        (["parse-color", '"green"'], "green"),
        (["toggle", '["read"]'], ["write", "exec"]),
        (["next-char", '"a"'], [97, "b"]),
    ]
    for args, expected in cases:
        out = wasmplug("call", wasm, *args, *TYPETEST)
        assert out.returncode == 0, (args, out.stderr)
        assert json.loads(out.stdout) == expected, args
        assert f"CallStats(function='{args[0]}'" in out.stderr


def test_call_reports_a_guest_error_and_bad_input(plugin_dir: Path) -> None:
    wasm = str(plugin_dir / "typetest.wasm")
    err = wasmplug("call", wasm, "divide", "1", "0", *TYPETEST)
    assert err.returncode == 1
    assert json.loads(err.stdout) == {"Err": {"divide-by-zero": None}}
    assert "divide returned an error" in err.stderr
    bad_json = wasmplug("call", wasm, "add", "2", "forty", *TYPETEST)
    assert bad_json.returncode == 2
    assert "argument 2 is not JSON" in bad_json.stderr
    wrong_type = wasmplug("call", wasm, "add", "2", '"x"', *TYPETEST)
    assert wrong_type.returncode == 1
    assert "argument 2 (b): expected u32, found str 'x'" in wrong_type.stderr
    no_such = wasmplug("call", wasm, "nope", *TYPETEST)
    assert no_such.returncode == 1
    assert "no export named 'nope'" in no_such.stderr


def test_call_takes_variant_arguments_as_json(plugin_dir: Path) -> None:
    """A variant argument is {"case": payload}, or "case" for a case without payload,
    the form results print in; a case the variant lacks is an error naming its cases."""
    wasm = str(plugin_dir / "typetest.wasm")
    cases = [
        ('{"circle": 2.0}', 4 * 3.141592653589793),
        ('{"rect": [2.5, 4]}', 10.0),
        ('"dot"', 0.0),
    ]
    for arg, expected in cases:
        out = wasmplug("call", wasm, "area", arg, *TYPETEST)
        assert out.returncode == 0, (arg, out.stderr)
        assert json.loads(out.stdout) == pytest.approx(expected), arg
    no_case = wasmplug("call", wasm, "area", '{"hexagon": 1}', *TYPETEST)
    assert no_case.returncode == 1
    assert "argument 1 (s): expected a case of variant shape" in no_case.stderr
    assert "['circle', 'rect', 'dot']" in no_case.stderr
    no_payload = wasmplug("call", wasm, "area", '"circle"', *TYPETEST)  # it has one
    assert no_payload.returncode == 1
    assert "argument 1 (s): expected a payload for case 'circle'" in no_payload.stderr
    # Nested in a record, with a nested result and bytes: back as they went in.
    everything = {
        "flag": True, "tiny": -1, "short": -2, "medium": 3, "long": 4, "byte": 5,
        "ushort": 6, "umedium": 7, "ulong": 8, "single": 1.5, "double": 2.5,
        "letter": "x", "text": "t", "blob": [1, 255], "numbers": [3], "maybe": None,
        "pair": [1, "p"], "color": "green", "perms": ["read"], "shape": {"rect": [1.0, 2.0]},
        "points": [{"x": 1, "y": 2}], "nested": [None, {"x": 3, "y": 4}],
        "outcome": {"Err": "bad"},
    }  # fmt: skip
    for shape, outcome in [({"rect": [1.0, 2.0]}, {"Err": "bad"}), ({"dot": None}, {"Ok": 7})]:
        value = everything | {"shape": shape, "outcome": outcome}
        out = wasmplug("call", wasm, "roundtrip", json.dumps(value), *TYPETEST)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == value
    # A result is taken in WIT's spelling too, and printed in serde's.
    lower = everything | {"outcome": {"ok": 7}}
    out = wasmplug("call", wasm, "roundtrip", json.dumps(lower), *TYPETEST)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == everything | {"outcome": {"Ok": 7}}
    wrong_payload = wasmplug("call", wasm, "area", '{"circle": "big"}', *TYPETEST)
    assert wrong_payload.returncode == 1
    assert "argument 1 (s).circle: expected f64" in wrong_payload.stderr, wrong_payload.stderr


def test_call_runs_under_a_policy_file(plugin_dir: Path, tmp_path: Path) -> None:
    """Without a policy nothing is granted (the guest sees the denial); a policy file's
    entry for the plugin grants what it says; a file without one is an error."""
    wasm = str(plugin_dir / "caps.wasm")
    denied = wasmplug("call", wasm, "config-get", '"greeting"', *CAPS)
    assert denied.returncode == 1
    assert "configuration is not granted" in denied.stdout
    policy = tmp_path / "policies.toml"
    policy.write_text('[plugins.caps.grants.config]\ngreeting = "hello"\n')
    granted = wasmplug("call", wasm, "config-get", '"greeting"', "--policy", str(policy), *CAPS)
    assert granted.returncode == 0, granted.stderr
    assert json.loads(granted.stdout) == "hello"
    other = wasmplug(
        "call", wasm, "config-get", '"greeting"', "--policy", str(policy), "--name", "x", *CAPS
    )
    assert other.returncode == 1
    assert "has no policy for plugin 'x' (plugins there: caps)" in other.stderr


@pytest.mark.parametrize("command", ["inspect", "call", "bench"])
def test_help(command: str) -> None:
    out = wasmplug(command, "--help")
    assert out.returncode == 0
    assert f"usage: wasmplug {command}" in out.stdout


def test_bench_times_calls(plugin_dir: Path) -> None:
    """``bench`` reports the calls made, the median and 99th percentile and the fuel
    per call; a function that fails is an error; --calls must be positive."""
    wasm = str(plugin_dir / "typetest.wasm")
    out = wasmplug("bench", wasm, "add", "2", "40", *TYPETEST, "--calls", "300")
    assert out.returncode == 0, out.stderr
    kind = "component" if plugin_dir.name == "wasm" else "core-module"
    line = out.stdout.strip()
    assert line.startswith(f"typetest add ({kind}): 300 calls, median ")
    median = float(line.split("median ")[1].split(" µs")[0])
    p99 = float(line.split("p99 ")[1].split(" µs")[0])
    assert 0 < median <= p99
    assert line.endswith("fuel units per call")
    failing = wasmplug("bench", wasm, "divide", "2", "0", *TYPETEST, "--calls", "5")
    assert failing.returncode == 1
    assert "divide returned an error" in failing.stderr
    zero = wasmplug("bench", wasm, "add", "2", "40", *TYPETEST, "--calls", "0")
    assert zero.returncode == 2
    assert "--calls must be >= 1" in zero.stderr
