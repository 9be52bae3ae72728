"""Tests for :func:`wasmplug.inspect`: the WIT world a plugin binary declares."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import wasmplug
from wasmplug._wit import Function, World, _official

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def core_module(wasm_dir: Path) -> Path:
    """The log-only fixture as a core module: the linker's output before it becomes a
    component, with the world wit-bindgen embedded in its ``component-type`` custom
    section (``scripts/build-wasm.sh --core``, the same toolchain as the components)."""
    script = REPO_ROOT / "scripts" / "build-wasm.sh"
    subprocess.run(["bash", str(script), "--core", "log-only"], check=True)
    return REPO_ROOT / "build" / "wasm-core" / "log_only.wasm"


def test_inspect_a_component(wasm_dir: Path) -> None:
    """A component: its world's imports and exports, and the WIT text of the world."""
    info = wasmplug.inspect(wasm_dir / "log_only.wasm")
    assert info.kind == "component"
    assert isinstance(info.world, World)
    assert info.exports == ("hello",)
    hello = info.world.exports["hello"]
    assert isinstance(hello, Function)
    assert [p.name for p in hello.params] == ["name"]
    assert "wasmplug:host/log@0.1.0" in info.imports
    assert info.imports == tuple(info.world.imports)
    assert "export hello: func(name: string) -> string;" in info.wit
    text = str(info)
    assert text.startswith("component, ")
    assert "exports:\n  hello\n" in text
    assert info.size_bytes == (wasm_dir / "log_only.wasm").stat().st_size


def test_inspect_the_rule_engine_tenants(wasm_dir: Path) -> None:
    """Every tenant of the example exports the rule-engine world's two functions."""
    for name in ("night_owl", "ops_thresholds", "route_watch"):
        info = wasmplug.inspect((wasm_dir / f"{name}.wasm").read_bytes())
        assert info.exports == ("setup", "evaluate", "evaluate-batch"), name


def test_inspect_a_core_module_with_a_component_type_section(core_module: Path) -> None:
    """A wit-bindgen core module: the world comes from its component-type section."""
    info = wasmplug.inspect(core_module)
    assert info.kind == "core-module"
    assert info.exports == ("hello",)
    assert "wasmplug:host/log@0.1.0" in info.imports
    assert "core module with a component-type section" in str(info)


def test_inspect_rejects_what_is_not_a_plugin(tmp_path: Path) -> None:
    """Not wasm, and a core module without a component-type section, are InvalidWasmError."""
    with pytest.raises(wasmplug.InvalidWasmError, match="not WebAssembly"):
        wasmplug.inspect(b"hello world")
    no_section = _official._MODULE_PATH.read_bytes()  # the WIT parser itself: plain wasip1
    with pytest.raises(wasmplug.InvalidWasmError, match="no component-type custom section"):
        wasmplug.inspect(no_section)
    broken = tmp_path / "broken.wasm"
    broken.write_bytes(b"\0asm\x0d\x00\x01\x00garbage")
    with pytest.raises(wasmplug.InvalidWasmError, match="cannot decode its WIT"):
        wasmplug.inspect(broken)
