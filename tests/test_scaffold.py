"""``wasmplug new``, the plugin scaffold: from nothing to a typed plugin called from
Python with one command and ten lines of Rust; stubs that compile and pass their native
tests for every kind of WIT type; and its errors.

The Rust builds share the repository's cargo target directory (``$CARGO_TARGET_DIR``,
default ``target/``), so the dependencies the workspace builds already are not
compiled again."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import wasmplug
from conftest import FIXTURES, REPO_ROOT
from wasmplug._cli import main

sys.path.insert(0, str(REPO_ROOT / "examples" / "rule-engine"))
import tenant_bindings as tenant

RULES_WIT = REPO_ROOT / "examples" / "rule-engine" / "wit"
HOST_WIT = REPO_ROOT / "src" / "wasmplug" / "wit" / "host.wit"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(REPO_ROOT / "target"))
    return env


def _run(command: list[str], cwd: Path) -> str:
    """Runs a build command; fails the test with its output if it fails."""
    done = subprocess.run(
        command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=560, check=False
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def _cargo_test(crate: Path) -> int:
    """``cargo test`` of a generated crate, natively; returns how many tests passed."""
    cargo = shutil.which("cargo")
    assert cargo is not None, "cargo is not on PATH"
    out = _run([cargo, "test", "--quiet"], crate)
    assert "warning" not in out, out
    return sum(int(n) for n in re.findall(r"test result: ok\. (\d+) passed", out))


def _build(crate: Path, *, core: bool = False) -> Path:
    """Builds a generated crate with the project's toolchain script; returns the .wasm."""
    script = str(REPO_ROOT / "scripts" / "build-wasm.sh")
    _run(["bash", script, *(["--core"] if core else []), str(crate)], REPO_ROOT)
    lib = crate.name.replace("-", "_")
    return crate / "build" / ("wasm-core" if core else "wasm") / f"{lib}.wasm"


def _replace_body(source: str, signature: str, body: str) -> str:
    """``source`` with the body of the function whose line starts with ``signature``
    replaced by ``body`` (indented for a method of an impl block)."""
    start = source.index(f"    {signature}")
    open_brace = source.index("{\n", start) + 2
    end = source.index("\n    }\n", open_brace)
    lines = "".join(f"        {line}\n" for line in body.strip().splitlines())
    return source[:open_brace] + lines.rstrip("\n") + source[end:]


def _flight(carrier: str, number: int, delay: int | None) -> tenant.Flight:
    return tenant.Flight(
        year=2013,
        month=1,
        day=1,
        dep_time=None,
        sched_dep_time=515,
        dep_delay=delay,
        arr_time=None,
        sched_arr_time=819,
        arr_delay=None,
        carrier=carrier,
        flight=number,
        tailnum=None,
        origin="EWR",
        dest="IAH",
        air_time=None,
        distance=1400,
        time_hour="2013-01-01T10:00:00Z",
        weather=None,
    )


# The plugin author's whole contribution: ten lines of Rust.
EVALUATE = """
let delay = flight.dep_delay.unwrap_or(0);
if delay < 60 {
    return Vec::new();
}
let severity = if delay >= 120 { Severity::Critical } else { Severity::Warning };
let message = format!("{}{} left {delay} min late", flight.carrier, flight.flight);
vec![Alert { rule: "late".into(), severity, message }]
"""
EVALUATE_BATCH = "flights.into_iter().map(Self::evaluate).collect()"
SETUP = 'Ok(TenantInfo { name: "late".into(), rules: vec!["late: 60+ min".into()] })'


def test_new_then_ten_lines_of_rust_is_a_typed_plugin(tmp_path: Path) -> None:
    """One command makes a crate for the rule engine's world whose stubs pass their
    native tests, build with scripts/build-wasm.sh and answer from Python; ten lines
    of Rust in the stubs' place make a real plugin, called through the world's
    generated bindings on both backends."""
    crate = tmp_path / "late-rules"
    assert (
        main(["new", "late-rules", "--wit", str(RULES_WIT), "--world", "tenant", "-o", str(crate)])
        == 0
    )
    assert _cargo_test(crate) == 3  # one per export, against the fake host

    airports: dict[str, Callable[..., object]] = {"lookup": lambda faa: None}
    stub = _build(crate)
    with tenant.Tenant.load(stub, airports=airports) as plugin:
        assert plugin.setup() == tenant.TenantInfo(name="", rules=[])
        assert plugin.evaluate(_flight("UA", 1545, 200)) == []

    lib = crate / "src" / "lib.rs"
    source = lib.read_text()
    for signature, body in [
        ("fn setup()", SETUP),
        ("fn evaluate(flight", EVALUATE),
        ("fn evaluate_batch(", EVALUATE_BATCH),
    ]:
        source = _replace_body(source, signature, body)
    written = [SETUP, EVALUATE, EVALUATE_BATCH]
    assert sum(len(b.strip().splitlines()) for b in written) <= 10
    lib.write_text(source)

    late, on_time, later = (
        _flight("UA", 1545, 90),
        _flight("AA", 1141, 2),
        _flight("B6", 725, 150),
    )
    for wasm in (_build(crate), _build(crate, core=True)):
        with tenant.Tenant.load(wasm, airports=airports) as plugin:
            assert plugin.plugin.kind == (
                "core-module" if "wasm-core" in str(wasm) else "component"
            )
            assert plugin.setup() == tenant.TenantInfo(name="late", rules=["late: 60+ min"])
            assert plugin.evaluate(late) == [
                tenant.Alert(
                    rule="late",
                    severity=tenant.Severity.WARNING,
                    message="UA1545 left 90 min late",
                )
            ]
            assert plugin.evaluate(on_time) == []
            batch = plugin.evaluate_batch([late, on_time, later])
            assert [[(a.severity, a.message) for a in alerts] for alerts in batch] == [
                [(tenant.Severity.WARNING, "UA1545 left 90 min late")],
                [],
                [(tenant.Severity.CRITICAL, "B6725 left 150 min late")],
            ]


# Corners of the Rust naming: keywords as names, a type named `plugin`, world-defined
# types, an inline exported interface, one-element tuples, results without payloads,
# flags, an exported resource and a host resource.
EDGE_WIT = """
package edge:cases@0.1.0;

interface kinds {
    flags mode { read, write-all }
    variant shape { none, circle(f32), pair(tuple<u8, string>) }
    resource handle {
        constructor(name: string);
        name: func() -> string;
        merge: static func(a: borrow<handle>, b: borrow<handle>) -> handle;
    }
    open: func(%type: string, mode: mode) -> result<handle, string>;
}

interface host-things {
    resource token;
    mint: func() -> token;
}

world edge {
    include wasmplug:host/capabilities@0.1.0;
    import host-things;
    use host-things.{token};
    export kinds;
    record plugin { fn: u32, %type: option<tuple<s64>> }
    enum self-kind { match, loop }
    export %use: func(in: plugin, %as: self-kind) -> result;
    export shapes: func() -> list<kinds-shape>;
    export spend: func(t: token) -> result<_, u8>;
    export forge: func() -> token;
    export inline: interface {
        ping: func(x: list<list<u8>>) -> tuple<char, bool>;
    }
    type kinds-shape = u64;
}
"""


# Records that hold resource handles: no PartialEq for the world's types, so the tests
# cannot compare answers (and there is no export a native test can call).
HANDLES_WIT = """
package edge:handles@0.1.0;

interface kinds {
    resource handle { constructor(name: string); }
    record holder { h: handle, n: u32 }
    take: func(h: holder) -> u32;
}

interface host-things {
    resource token;
    record wrapped { t: token }
    mint: func() -> wrapped;
}

world handles {
    include wasmplug:host/capabilities@0.1.0;
    import host-things;
    use host-things.{wrapped};
    export kinds;
    export spend: func(t: wrapped) -> result<_, u8>;
}
"""


@pytest.mark.parametrize(
    ("wit", "world"),
    [
        (FIXTURES / "zoo" / "wit", "zoo"),
        (FIXTURES / "resources" / "wit", "resources"),
        (FIXTURES / "typetest" / "wit", "typetest"),
        (EDGE_WIT, "edge"),
        (HANDLES_WIT, "handles"),
    ],
)
def test_stubs_compile_and_pass_their_native_tests(
    tmp_path: Path, wit: Path | str, world: str
) -> None:
    """For worlds that use every WIT type (records, variants, enums, flags, aliases,
    options, results, tuples, lists, resources both ways) and Rust's awkward names, the
    generated crate compiles without a warning and its tests pass natively."""
    if isinstance(wit, str):
        source, wit = wit, tmp_path / "wit"
        (wit / "deps" / "wasmplug-host").mkdir(parents=True)
        (wit / f"{world}.wit").write_text(source)
        shutil.copy(HOST_WIT, wit / "deps" / "wasmplug-host" / "host.wit")
    crate = tmp_path / f"stub-{world}"
    assert main(["new", crate.name, "--wit", str(wit), "--world", world, "-o", str(crate)]) == 0
    source = (crate / "src" / "lib.rs").read_text()
    loaded = wasmplug.load_world(wit, world)
    names = [k for k, item in loaded.wit.exports.items() if not hasattr(item, "functions")]
    assert _cargo_test(crate) >= 1
    for name in names:  # a stub per world-level function
        assert re.search(rf"fn {name.replace('-', '_')}_?\(", source), name


def _new(tmp_path: Path, *args: str) -> int:
    return main(["new", "my-plugin", "-o", str(tmp_path / "my-plugin"), *args])


def test_new_refuses_an_unknown_world_and_bad_wit_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Errors in the WIT are exit status 1 with the parser's location, and no crate."""
    assert _new(tmp_path, "--wit", str(RULES_WIT), "--world", "nope") == 1
    err = capsys.readouterr().err
    assert err.startswith("wasmplug new: error: ")
    assert "no world 'nope'" in err
    assert "tenant" in err

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "bad.wit").write_text("package a:b;\n\nworld w {\n    export f: func() -> nope;\n}\n")
    assert _new(tmp_path, "--wit", str(bad), "--world", "w") == 1
    err = capsys.readouterr().err
    assert re.search(r"bad\.wit:4:\d+", err), err
    assert "nope" in err

    bare = tmp_path / "bare.wit"
    bare.write_text("package a:b;\n\nworld w {\n    export f: func() -> u32;\n}\n")
    assert _new(tmp_path, "--wit", str(bare), "--world", "w") == 1
    err = capsys.readouterr().err
    assert "include wasmplug:host/capabilities@0.1.0;" in err

    streams = tmp_path / "streams"
    (streams / "deps" / "wasmplug-host").mkdir(parents=True)
    shutil.copy(HOST_WIT, streams / "deps" / "wasmplug-host" / "host.wit")
    (streams / "s.wit").write_text(
        "package a:b;\n\nworld w {\n    include wasmplug:host/capabilities@0.1.0;\n"
        "    export f: func(s: stream<u8>) -> u32;\n}\n"
    )
    assert _new(tmp_path, "--wit", str(streams), "--world", "w") == 1
    assert "uses stream<u8>, which wasmplug cannot run yet" in capsys.readouterr().err
    assert not (tmp_path / "my-plugin").exists()


def test_new_refuses_a_non_empty_directory_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing non-empty directory is exit status 1 and left alone; with --force
    the generated files are written and the others kept."""
    target = tmp_path / "my-plugin"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    args = ["--wit", str(FIXTURES / "typetest" / "wit"), "--world", "typetest"]
    assert _new(tmp_path, *args) == 1
    assert "not empty; pass --force" in capsys.readouterr().err
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
    assert _new(tmp_path, *args, "--force") == 0
    assert (target / "notes.txt").read_text() == "mine"
    assert "impl Guest for Plugin" in (target / "src" / "lib.rs").read_text()
    assert (target / "wit" / "deps" / "wasmplug-host" / "host.wit").read_text() == (
        HOST_WIT.read_text()
    )
    # An empty directory needs no --force.
    (tmp_path / "empty").mkdir()
    assert main(["new", "x", "-o", str(tmp_path / "empty"), *args]) == 0


def test_new_says_where_the_sdk_is_expected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The SDK is not on crates.io: a wrong --sdk is exit status 1 saying what to pass;
    the default is the SDK of this checkout, written into Cargo.toml."""
    args = ["--wit", str(FIXTURES / "typetest" / "wit"), "--world", "typetest"]
    assert _new(tmp_path, *args, "--sdk", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "no Rust guest SDK at" in err
    assert "--sdk" in err
    assert _new(tmp_path, *args) == 0
    manifest = (tmp_path / "my-plugin" / "Cargo.toml").read_text()
    assert f'path = "{(REPO_ROOT / "guest-sdk-rust").as_posix()}"' in manifest
    assert "[workspace]" in manifest


def test_new_usage_errors_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad crate name or a missing --world is a usage error (status 2); --help works."""
    with pytest.raises(SystemExit) as exit_:
        main(["new", "9lives", "--wit", str(RULES_WIT), "--world", "tenant"])
    assert exit_.value.code == 2
    assert "not a crate name: '9lives'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["new", "x", "--wit", str(RULES_WIT)])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        main(["new", "--help"])
    assert exit_.value.code == 0
    assert "--world NAME" in capsys.readouterr().out
