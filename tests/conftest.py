"""Shared fixtures: the plugins under test are built from Rust sources in this
repository (``tests/fixtures/*``, ``examples/rule-engine/tenants/*``) by
``scripts/build-wasm.sh``, once per test session."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import wasmplug

#: pytest's own fixture for testing pytest plugins (tests/test_testing.py runs
#: wasmplug's through it).
pytest_plugins = ["pytester"]

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def wasm_dir() -> Path:
    """Builds every plugin crate of the workspace and returns ``build/wasm``."""
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "build-wasm.sh")], check=True)
    return REPO_ROOT / "build" / "wasm"


@pytest.fixture(scope="session")
def engine(wasmplug_engine: wasmplug.Engine) -> wasmplug.Engine:
    """One engine for the session, with a compile cache private to the session: the
    pytest plugin's (``wasmplug.testing``)."""
    return wasmplug_engine


def fixture_world(name: str) -> wasmplug.World:
    """Loads the world a test fixture crate implements."""
    return wasmplug.load_world(FIXTURES / name / "wit", name)


@pytest.fixture(scope="session")
def core_dir() -> Path:
    """Builds every plugin crate that has a core build (``build-wasm.sh --core``:
    ``wasm32-wasip1`` core modules for the fast path) and returns ``build/wasm-core``."""
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "build-wasm.sh"), "--core"], check=True)
    return REPO_ROOT / "build" / "wasm-core"


@pytest.fixture(scope="session", params=["component", "core-module"])
def plugin_dir(request: pytest.FixtureRequest) -> Path:
    """The plugins of one backend, each test that uses it running once per backend:
    ``build/wasm`` (components, the component path) and ``build/wasm-core`` (core
    modules from the same sources, the fast path)."""
    name = "wasm_dir" if request.param == "component" else "core_dir"
    return Path(request.getfixturevalue(name))
