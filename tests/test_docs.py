"""The bindgen tutorial (docs/bindgen.md) stays true: its WIT and Rust are the
``tests/fixtures/drawer`` plugin, and its Python runs against that plugin through
freshly generated bindings and passes ``mypy --strict``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import wasmplug
import wasmplug.wit

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC = REPO_ROOT / "docs" / "bindgen.md"
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "drawer"


def blocks(language: str, doc: Path = DOC) -> list[str]:
    """A doc's fenced code blocks in ``language``, in order."""
    text = doc.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```\n", text, flags=re.S)


def test_tutorial_wit_and_rust_are_the_fixture() -> None:
    """The WIT and the Rust plugin the tutorial shows are, byte for byte, the fixture
    that CI builds (the Rust file adds only its first doc line)."""
    assert blocks("wit")[0] == (FIXTURE / "wit" / "shapes.wit").read_text(encoding="utf-8")
    rust = (FIXTURE / "src" / "lib.rs").read_text(encoding="utf-8").split("\n", 2)[2]
    assert blocks("rust")[0] == rust


def test_tutorial_python_runs_and_type_checks(wasm_dir: Path, tmp_path: Path) -> None:
    """The tutorial's host code, against the built plugin and bindings generated from
    the fixture's WIT: the polygon's area comes back through the host's Units (3 x 4 / 2
    cm^2 = 0.0006 m^2, one host call), and mypy --strict accepts the code."""
    bindings = wasmplug.generate_bindings(FIXTURE / "wit", "drawer")
    (tmp_path / "shapes_bindings.py").write_text(bindings, encoding="utf-8")
    code = blocks("python")[-1].replace('"drawer.wasm"', repr(str(wasm_dir / "drawer.wasm")))
    code += "    print(repr(area), drawer.last_call.host_calls if drawer.last_call else -1)\n"
    (tmp_path / "site.py").write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "site.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == f"{6 * 0.01 * 0.01!r} 1"
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "site.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr


def test_wit_page_visitor_runs_and_type_checks(tmp_path: Path) -> None:
    """The JSON Schema visitor of docs/wit.md runs (its own asserts pass), covers the
    other kinds of types as the page says, and mypy --strict accepts it."""
    code = blocks("python", REPO_ROOT / "docs" / "wit.md")[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "wit.md", "exec"), namespace)
    schema_of = namespace["JsonSchema"]().visit
    resolve = wasmplug.wit.parse_wit_text(
        "package a:b;\n"
        "interface i {\n"
        "  flags perms { read, write }\n"
        "  variant shape { dot, circle(f64) }\n"
        "  type pair = tuple<s8, option<char>>;\n"
        "  resource blob;\n"
        "  f: func(p: perms, s: shape, t: pair, r: result<_, bool>, b: borrow<blob>);\n"
        "}\n"
    )
    perms, shape, pair, result, blob = (
        p.type for p in resolve.interface("i").functions["f"].params
    )
    assert schema_of(perms)["items"] == {"enum": ["read", "write"]}
    assert [c["properties"]["case"]["const"] for c in schema_of(shape)["oneOf"]] == [
        "dot",
        "circle",
    ]
    assert schema_of(shape)["oneOf"][1]["properties"]["value"] == {"type": "number"}
    assert schema_of(pair)["prefixItems"] == [
        {"type": "integer", "minimum": -128, "maximum": 127},
        {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 1}, {"type": "null"}]},
    ]
    assert schema_of(result)["oneOf"][0]["required"] == ["case"]
    assert schema_of(result)["oneOf"][1]["properties"]["value"] == {"type": "boolean"}
    with pytest.raises(ValueError, match="resource blob is not data"):
        schema_of(blob)
    (tmp_path / "schema.py").write_text(code, encoding="utf-8")
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "schema.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
