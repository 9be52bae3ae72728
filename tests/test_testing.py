"""wasmplug's pytest plugin (``wasmplug.testing``), run the way a host's test suite
runs it: a test module written to a scratch directory and run by pytest in a new
process, where the plugin comes from its ``pytest11`` entry point. Its outcomes and
messages are checked, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FIXTURES

HOST_TESTS = """
import pytest
import wasmplug
from wasmplug.testing import assert_breach, assert_denied, assert_within

PLUGINS = {plugins!r}
FIXTURES = {fixtures!r}


@pytest.fixture(scope="module")
def caps_world():
    return wasmplug.load_world(FIXTURES + "/caps/wit", "caps")


@pytest.fixture(scope="module")
def hostile_world():
    return wasmplug.load_world(FIXTURES + "/hostile/wit", "hostile")


def test_fixtures_load_on_the_session_engine(wasmplug_load, wasmplug_engine, caps_world):
    plugin = wasmplug_load(PLUGINS + "/caps.wasm", world=caps_world)
    assert plugin.call("env-vars") == []
    assert wasmplug_engine.cache_dir is not None
    assert "wasmplug-compile-cache" in str(wasmplug_engine.cache_dir)
    pytest.loaded = plugin  # checked closed by the next test


def test_plugins_are_closed_after_their_test():
    assert pytest.loaded.closed


def test_a_denial_is_asserted_and_audited(wasmplug_load, wasmplug_audit, caps_world):
    plugin = wasmplug_load(PLUGINS + "/caps.wasm", world=caps_world, name="tenant")
    error = assert_denied(plugin, "kv", "kv-get", "k")
    assert isinstance(error, wasmplug.GuestError)
    assert [(e.plugin, e.kind, e.name) for e in wasmplug_audit] == [("tenant", "denial", "kv")]


def test_a_breach_is_asserted(wasmplug_load, wasmplug_audit, hostile_world):
    policy = wasmplug.Policy(limits=wasmplug.Limits(fuel=1_000_000))
    plugin = wasmplug_load(PLUGINS + "/hostile.wasm", world=hostile_world, policy=policy)
    error = assert_breach(plugin, "fuel", "spin")
    assert error.allowed == 1_000_000
    assert [(e.kind, e.name) for e in wasmplug_audit] == [("breach", "fuel")]
    assert plugin.call("bump") == 1
    stats = assert_within(plugin, fuel=1_000_000, host_calls=0)
    assert stats.function == "bump"


def test_FAILS_when_nothing_is_denied(wasmplug_load, caps_world):
    grants = wasmplug.Grants(kv=wasmplug.KvGrant())
    plugin = wasmplug_load(PLUGINS + "/caps.wasm", world=caps_world, name="granted",
                           policy=wasmplug.Policy(grants=grants))
    assert_denied(plugin, "kv", "kv-get", "k")


def test_FAILS_when_another_limit_is_breached(wasmplug_load, hostile_world):
    policy = wasmplug.Policy(limits=wasmplug.Limits(fuel=1_000_000))
    plugin = wasmplug_load(PLUGINS + "/hostile.wasm", world=hostile_world, policy=policy,
                           name="looper")
    assert_breach(plugin, "deadline_ms", "spin")


def test_FAILS_when_over_budget(wasmplug_load, hostile_world):
    plugin = wasmplug_load(PLUGINS + "/hostile.wasm", world=hostile_world, name="spender")
    plugin.call("bump")
    assert_within(plugin, fuel=1)
"""


def test_the_pytest_plugin_in_a_host_suite(pytester: pytest.Pytester, plugin_dir: Path) -> None:
    """The fixtures load plugins on a session engine with a private compile cache,
    close them after each test and collect their audit events; the assertions pass on
    a denial, a breach and a call within budget, and fail with a message naming the
    plugin and what was found otherwise."""
    pytester.makepyfile(
        test_host=HOST_TESTS.format(plugins=str(plugin_dir), fixtures=str(FIXTURES))
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=600)
    result.assert_outcomes(passed=4, failed=3)
    result.stdout.fnmatch_lines(
        [
            "*plugin 'granted': kv-get was expected to be denied 'kv'; it was not*",
            "*plugin 'looper': spin was expected to breach 'deadline_ms'; it breached 'fuel'*",
            "*plugin 'spender': bump went over its budget: fuel * > 1*",
        ],
        consecutive=False,
    )
