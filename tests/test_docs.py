"""The bindgen tutorial (docs/bindgen.md) stays true: its WIT and Rust are the
``tests/fixtures/drawer`` plugin, and its Python runs against that plugin through
freshly generated bindings and passes ``mypy --strict``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import wasmplug

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC = REPO_ROOT / "docs" / "bindgen.md"
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "drawer"


def blocks(language: str) -> list[str]:
    """The doc's fenced code blocks in ``language``, in order."""
    text = DOC.read_text(encoding="utf-8")
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
