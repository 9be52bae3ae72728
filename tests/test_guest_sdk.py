"""The Rust guest SDK end to end: plugins built with `wasmplug-guest` import only the
capabilities they use, and its typed helpers and errors behave as documented when
run against the real host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cbor2
import pytest

import wasmplug
from conftest import fixture_world
from wasmplug._host import host_interface

HOST = "wasmplug:host"


def host_imports(plugin: wasmplug.Plugin) -> set[str]:
    return {i for i in plugin.imports if i.startswith(HOST)}


def test_unused_capabilities_are_not_imported(wasm_dir: Path, engine: Any) -> None:
    """A world that includes every capability, implemented by a plugin that only logs,
    yields a component importing only log (and the shared types)."""
    plugin = wasmplug.load(
        wasm_dir / "log_only.wasm", world=fixture_world("log-only"), engine=engine
    )
    assert host_imports(plugin) == {host_interface("log"), host_interface("types")}
    assert plugin.ungranted_imports == (host_interface("log"),)
    smoke = wasmplug.load(wasm_dir / "smoke.wasm", world=fixture_world("smoke"), engine=engine)
    assert host_imports(smoke) == {
        host_interface("log"),
        host_interface("config"),
        host_interface("kv"),
        host_interface("types"),
    }


def test_sdk_helpers_against_the_host(wasm_dir: Path, engine: Any) -> None:
    """config::get_parsed, kv::get_cbor/set_cbor and the log macros work through the
    real host; the stored counter is CBOR that cbor2 reads."""
    store = wasmplug.MemoryKvStore()
    policy = wasmplug.Policy(
        grants=wasmplug.Grants(
            log=True, config={"greeting": "hej", "step": "5"}, kv=wasmplug.KvGrant()
        )
    )
    plugin = wasmplug.load(
        wasm_dir / "smoke.wasm",
        world=fixture_world("smoke"),
        policy=policy,
        engine=engine,
        kv_store=store,
    )
    assert plugin.call("run", "ada") == "hej, ada! (runs: 5)"
    assert plugin.call("run", "ada") == "hej, ada! (runs: 10)"
    assert cbor2.loads(store.get("smoke", "runs") or b"") == 10
    assert plugin.last_call is not None
    assert plugin.last_call.host_calls == 5


@pytest.mark.parametrize(
    ("grants", "message"),
    [
        (
            wasmplug.Grants(config={"step": "lots"}, kv=wasmplug.KvGrant()),
            "config key `step` is malformed: invalid digit found in string",
        ),
        (
            wasmplug.Grants(config={}),
            "denied by the host: kv: key-value storage is not granted (get 'runs')",
        ),
        (
            wasmplug.Grants(),
            "denied by the host: config: configuration is not granted (key 'greeting')",
        ),
        (
            wasmplug.Grants(config={}, kv=wasmplug.KvGrant(quota_bytes=4)),
            "quota exceeded: kv: namespace 'smoke' would hold 69 bytes, quota is 4",
        ),
    ],
)
def test_sdk_errors_reach_the_guest_as_values(
    wasm_dir: Path, engine: Any, grants: wasmplug.Grants, message: str
) -> None:
    """Denials, quota breaches and malformed config arrive in the guest as the SDK's
    Error values, which this plugin returns as its err string."""
    plugin = wasmplug.load(
        wasm_dir / "smoke.wasm",
        world=fixture_world("smoke"),
        policy=wasmplug.Policy(grants=grants),
        engine=engine,
    )
    with pytest.raises(wasmplug.GuestError) as info:
        plugin.call("run", "x")
    assert info.value.value == message
