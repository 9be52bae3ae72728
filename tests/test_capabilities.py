"""Capability grants: each capability works when granted and is denied otherwise, as a
value the guest handles (never a trap), counted in the call's stats and logged with
the plugin's name."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import cbor2
import pytest

import wasmplug
from conftest import fixture_world
from wasmplug._host import host_interface
from wasmplug.testing import assert_denied


@pytest.fixture(scope="module")
def world() -> wasmplug.World:
    return fixture_world("caps")


@pytest.fixture
def load(plugin_dir: Path, world: wasmplug.World, engine: wasmplug.Engine) -> Any:
    def load(grants: wasmplug.Grants | None = None, **kwargs: Any) -> wasmplug.Plugin:
        policy = wasmplug.Policy(grants=grants or wasmplug.Grants())
        kwargs.setdefault("name", "caps")
        return wasmplug.load(
            plugin_dir / "caps.wasm", world=world, policy=policy, engine=engine, **kwargs
        )

    return load


def denied(plugin: wasmplug.Plugin, function: str, *args: Any) -> str:
    """Calls a capability that must be denied (the pytest plugin's ``assert_denied``,
    the capability named by the export's prefix: ``kv-get`` -> ``kv``); returns the
    guest's error text."""
    capability = function.split("-", maxsplit=1)[0]
    error = assert_denied(plugin, capability, function, *args)
    assert isinstance(error, wasmplug.GuestError)
    assert plugin.last_call is not None
    assert plugin.last_call.denials == 1
    assert plugin.last_call.host_calls >= 1
    message = error.value
    assert isinstance(message, str)
    assert message.startswith("denied by the host: ")
    return message


def test_nothing_is_granted_by_default(load: Any, caplog: pytest.LogCaptureFixture) -> None:
    """With the default policy every capability is denied, and the plugin keeps running
    after each denial."""
    plugin = load()
    assert set(plugin.ungranted_imports) == {
        host_interface("log"),
        host_interface("config"),
        host_interface("kv"),
    }
    with caplog.at_level(logging.WARNING, logger="wasmplug.policy"):
        assert "logging is not granted" in denied(plugin, "log-message", "info", "hi")
        assert "configuration is not granted" in denied(plugin, "config-get", "k")
        assert "configuration is not granted" in denied(plugin, "config-keys")
        assert "key-value storage is not granted" in denied(plugin, "kv-get", "k")
        assert "key-value storage is not granted" in denied(plugin, "kv-set", "k", b"v")
        assert "key-value storage is not granted" in denied(plugin, "kv-delete", "k")
        assert "key-value storage is not granted" in denied(plugin, "kv-keys", "")
    records = [r for r in caplog.records if r.name == "wasmplug.policy"]
    assert len(records) == 7
    assert all(getattr(r, "plugin", None) == "caps" for r in records)
    assert plugin.call("get-env", "HOME") is None
    assert plugin.call("env-vars") == []


def test_ungranted_imports_are_reported_at_load(
    load: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Loading a plugin that imports capabilities its policy does not grant logs a
    warning naming them, and lists them on the plugin."""
    with caplog.at_level(logging.WARNING, logger="wasmplug"):
        plugin = load(wasmplug.Grants(log=True), name="partly")
    assert plugin.ungranted_imports == (host_interface("config"), host_interface("kv"))
    warning = next(r.getMessage() for r in caplog.records if "does not grant" in r.getMessage())
    assert "'partly'" in warning
    assert "config, kv" in warning


def test_denial_records_are_bounded_in_size_and_rate(
    load: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A plugin granted nothing cannot flood the host's logs: a 16 MiB key is quoted in
    at most a few hundred characters, denials are logged at most at the token bucket's
    rate (a burst of DENIAL_LOG_BURST, then DENIAL_LOG_PER_S per second, whatever the
    machine's speed), and every denial is either logged or counted in the next record
    logged; every denial is still counted in the call's stats."""
    from wasmplug._host import DENIAL_LOG_BURST, DENIAL_LOG_PER_S

    plugin = load(name="flood")
    with caplog.at_level(logging.WARNING, logger="wasmplug.policy"):
        start = time.monotonic()
        text = denied(plugin, "kv-get", "k" * (16 << 20))
        assert len(text) < 300
        assert "(16777216 bytes)" in text
        for _ in range(200):
            denied(plugin, "config-get", "x")
        elapsed = time.monotonic() - start
        records = [r for r in caplog.records if r.name == "wasmplug.policy"]
    assert all(len(r.getMessage()) < 400 for r in records)
    assert len(records) <= DENIAL_LOG_BURST + DENIAL_LOG_PER_S * elapsed + 1
    assert plugin.last_call.denials == 1
    caplog.clear()
    time.sleep(0.2)  # refills two tokens
    with caplog.at_level(logging.WARNING, logger="wasmplug.policy"):
        denied(plugin, "config-get", "y")
    (record,) = [r for r in caplog.records if r.name == "wasmplug.policy"]
    suppressed = [r.suppressed for r in [*records, record]]  # type: ignore[attr-defined]
    assert len(records) + 1 + sum(suppressed) == 1 + 200 + 1  # nothing unaccounted for
    if record.suppressed:  # type: ignore[attr-defined]
        assert "more denials of this plugin not logged" in record.getMessage()


def test_log_macros_ask_the_host_level_first(load: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The SDK's macros ask log.enabled first: at a level the plugin's logger drops, or
    without the log grant, the message is never formatted nor sent (one cheap host
    call, no denial); at a kept level it is formatted once and logged."""
    plugin = load(wasmplug.Grants(log=True), name="quiet")
    with caplog.at_level(logging.WARNING, logger="wasmplug.plugin.quiet"):
        assert plugin.call("log-info-macro", "dropped") == 0
        assert (plugin.last_call.host_calls, plugin.last_call.denials) == (1, 0)
    with caplog.at_level(logging.INFO, logger="wasmplug.plugin.quiet"):
        assert plugin.call("log-info-macro", "kept") == 1
        assert plugin.last_call.host_calls == 2
    assert [r.getMessage() for r in caplog.records if r.name == "wasmplug.plugin.quiet"] == ["kept"]
    denied = load(wasmplug.Grants(), name="mute")
    assert denied.call("log-info-macro", "x") == 0
    assert (denied.last_call.host_calls, denied.last_call.denials) == (1, 0)


def test_log_goes_to_the_plugin_logger(load: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Granted log records reach logger wasmplug.plugin.<name> at the mapped level."""
    plugin = load(wasmplug.Grants(log=True), name="chatty")
    with caplog.at_level(1, logger="wasmplug.plugin.chatty"):
        for level in ("trace", "debug", "info", "warn", "error"):
            assert plugin.call("log-message", level, f"{level} message") is None
    got = [
        (r.levelno, r.getMessage()) for r in caplog.records if r.name == "wasmplug.plugin.chatty"
    ]
    assert got == [
        (5, "trace message"),
        (logging.DEBUG, "debug message"),
        (logging.INFO, "info message"),
        (logging.WARNING, "warn message"),
        (logging.ERROR, "error message"),
    ]
    assert plugin.last_call is not None
    assert plugin.last_call.denials == 0
    assert plugin.last_call.host_calls == 1


def test_config_values_are_read_only_strings(load: Any) -> None:
    """Granted config returns exactly the host's values; unknown keys are none."""
    plugin = load(wasmplug.Grants(config={"b": "2", "a": "one"}))
    assert plugin.call("config-get", "a") == "one"
    assert plugin.call("config-get", "missing") is None
    assert plugin.call("config-keys") == ["a", "b"]
    empty = load(wasmplug.Grants(config={}), name="empty-config")
    assert empty.call("config-keys") == []


def test_kv_roundtrip_quota_and_isolation(load: Any) -> None:
    """kv stores bytes per namespace, enforces the byte quota without changing data,
    and two plugins see separate namespaces unless the host shares one."""
    store = wasmplug.MemoryKvStore()
    overhead = wasmplug.MemoryKvStore.ENTRY_OVERHEAD
    grants = wasmplug.Grants(kv=wasmplug.KvGrant(quota_bytes=100 + overhead))
    a = load(grants, name="tenant-a", kv_store=store)
    b = load(grants, name="tenant-b", kv_store=store)
    assert a.call("kv-get", "k") is None
    assert a.call("kv-set", "k", b"\x00\xffvalue") is None
    assert a.call("kv-get", "k") == b"\x00\xffvalue"
    assert b.call("kv-get", "k") is None
    assert store.get("tenant-a", "k") == b"\x00\xffvalue"
    assert a.call("kv-keys", "") == ["k"]
    with pytest.raises(wasmplug.GuestError) as info:
        a.call("kv-set", "big", b"x" * 100)
    assert info.value.value.startswith("quota exceeded: ")
    assert a.call("kv-get", "big") is None
    assert store.size("tenant-a") == overhead + len("k") + len(b"\x00\xffvalue")
    assert a.call("kv-delete", "k") is True
    assert a.call("kv-delete", "k") is False
    # 64 + 3 + 97 = the quota exactly: fits.
    assert a.call("kv-set", "big", b"x" * 97) is None
    with pytest.raises(wasmplug.GuestError) as info:
        a.call("kv-set", "", b"v")
    assert info.value.value == "rejected by the host as invalid: kv: the key is empty"
    with pytest.raises(wasmplug.GuestError) as info:
        a.call("kv-get", "k" * 1025)
    assert "the key is longer than 1024 bytes" in info.value.value


def test_kv_shared_namespace(load: Any) -> None:
    """Two plugins given the same namespace share data."""
    store = wasmplug.MemoryKvStore()
    grants = wasmplug.Grants(kv=wasmplug.KvGrant(namespace="shared"))
    a = load(grants, name="writer", kv_store=store)
    b = load(grants, name="reader", kv_store=store)
    a.call("kv-set", "greeting", b"hi")
    assert b.call("kv-get", "greeting") == b"hi"


def test_kv_cbor_helpers_write_rfc8949(load: Any) -> None:
    """The guest SDK's typed kv helpers store CBOR that cbor2 (an independent RFC 8949
    implementation) decodes, and read back what they wrote."""
    store = wasmplug.MemoryKvStore()
    plugin = load(wasmplug.Grants(kv=wasmplug.KvGrant()), name="cbor", kv_store=store)
    assert [plugin.call("kv-counter", "n") for _ in range(3)] == [1, 2, 3]
    assert cbor2.loads(store.get("cbor", "n") or b"") == 3
    plugin.call("kv-put-doc", "doc", "series", [1, -2, 2**40])
    assert cbor2.loads(store.get("cbor", "doc") or b"") == {
        "name": "series",
        "values": [1, -2, 2**40],
    }
    store.set("cbor", "n", cbor2.dumps("not a number"), quota_bytes=1 << 20)
    with pytest.raises(wasmplug.GuestError) as info:
        plugin.call("kv-counter", "n")
    assert info.value.value.startswith("cannot decode CBOR")


def test_plugin_kv_is_the_hosts_typed_view_of_the_namespace(load: Any) -> None:
    """plugin.kv reads what the guest stored as CBOR, seeds values the guest's CBOR
    helpers read, and enforces the grant's quota with KvQuotaExceeded."""
    plugin = load(wasmplug.Grants(kv=wasmplug.KvGrant(quota_bytes=200)), name="counter")
    assert plugin.kv.namespace == "counter"
    plugin.call("kv-counter", "n")
    assert plugin.kv.get_cbor("n") == 1
    assert plugin.kv.get_cbor("absent") is None
    plugin.kv.set_cbor("n", 41)
    assert plugin.call("kv-counter", "n") == 42
    assert plugin.kv.keys() == ["n"]
    with pytest.raises(wasmplug.KvQuotaExceeded) as info:
        plugin.kv.set("big", bytes(100))
    assert (info.value.namespace, info.value.quota_bytes) == ("counter", 200)
    overhead = wasmplug.MemoryKvStore.ENTRY_OVERHEAD
    held = overhead + len("n") + len(cbor2.dumps(42))
    assert info.value.size_bytes == held + overhead + len("big") + 100
    assert plugin.kv.get("big") is None
    plugin.kv.set("raw", b"\x82\x01")  # an array of two items, cut after one
    with pytest.raises(ValueError, match="not a CBOR item"):
        plugin.kv.get_cbor("raw")
    with pytest.raises(TypeError, match="cannot encode as CBOR"):
        plugin.kv.set_cbor("obj", object())


def test_files_are_invisible_without_a_preopen(load: Any, tmp_path: Path) -> None:
    """Without a preopen the guest cannot read host files, even by absolute path."""
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    plugin = load()
    for path in (str(secret), "/etc/passwd", "secret.txt"):
        with pytest.raises(wasmplug.GuestError):
            plugin.call("read-file", path)


def test_read_only_preopen(load: Any, tmp_path: Path) -> None:
    """A read-only preopen allows reads and listing inside it, refuses writes, and does
    not let `..` or absolute paths escape it."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "a.txt").write_text("alpha")
    (tmp_path / "outside.txt").write_text("outside")
    plugin = load(wasmplug.Grants(files=[wasmplug.Preopen(host_path=shared, guest_path="/data")]))
    assert plugin.call("read-file", "/data/a.txt") == "alpha"
    assert plugin.call("list-dir", "/data") == ["a.txt"]
    with pytest.raises(wasmplug.GuestError):
        plugin.call("write-file", "/data/new.txt", "x")
    assert not (shared / "new.txt").exists()
    with pytest.raises(wasmplug.GuestError):
        plugin.call("write-file", "/data/a.txt", "overwritten")
    assert (shared / "a.txt").read_text() == "alpha"
    for escape in ("/data/../outside.txt", "/outside.txt", str(tmp_path / "outside.txt")):
        with pytest.raises(wasmplug.GuestError):
            plugin.call("read-file", escape)


def test_writable_preopen(load: Any, tmp_path: Path) -> None:
    """A writable preopen lets the guest create files there, and only there."""
    out = tmp_path / "out"
    out.mkdir()
    plugin = load(
        wasmplug.Grants(
            files=[wasmplug.Preopen(host_path=str(out), guest_path="/out", writable=True)]
        )
    )
    assert plugin.call("write-file", "/out/result.txt", "written by the guest") is None
    assert (out / "result.txt").read_text() == "written by the guest"
    with pytest.raises(wasmplug.GuestError):
        plugin.call("write-file", "/out/../escaped.txt", "x")
    assert not (tmp_path / "escaped.txt").exists()


def test_env_holds_exactly_the_granted_variables(
    load: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guest sees the granted variables and nothing of the host's environment."""
    monkeypatch.setenv("HOST_SECRET", "do-not-leak")
    plugin = load(wasmplug.Grants(env={"TENANT": "acme", "MODE": "test"}))
    assert plugin.call("env-vars") == [("MODE", "test"), ("TENANT", "acme")]
    assert plugin.call("get-env", "TENANT") == "acme"
    assert plugin.call("get-env", "HOST_SECRET") is None
    assert os.environ["HOST_SECRET"] == "do-not-leak"


def test_stdio_is_captured_only_when_granted(
    load: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """With stdio granted the guest's stdout/stderr lines go to its logger; without it
    they go nowhere (and never to the host's own stdout)."""
    quiet = load(name="quiet")
    loud = load(wasmplug.Grants(stdio=True), name="loud")
    with caplog.at_level(logging.INFO):
        quiet.call("print", "quiet out\n", "quiet err\n")
        loud.call("print", "line one\nline two\n", "oops\n")
    got = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert ("wasmplug.plugin.loud", logging.INFO, "line one") in got
    assert ("wasmplug.plugin.loud", logging.INFO, "line two") in got
    assert ("wasmplug.plugin.loud", logging.WARNING, "oops") in got
    assert not [g for g in got if g[0] == "wasmplug.plugin.quiet"]
    out, err = capfd.readouterr()
    assert "quiet" not in out
    assert "quiet" not in err
    assert "line one" not in out


def test_missing_preopen_directory_is_a_policy_error(load: Any, tmp_path: Path) -> None:
    """A preopen of a directory that does not exist fails the load with PolicyError."""
    missing = tmp_path / "nope"
    with pytest.raises(wasmplug.PolicyError, match="is not an existing directory"):
        load(wasmplug.Grants(files=[wasmplug.Preopen(host_path=missing, guest_path="/x")]))


def test_failing_kv_backend_traps_the_call_not_the_host(
    load: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """When the host's own KvStore raises, the guest's call fails with a
    HostFunctionError naming the capability, caused by the host's exception (logged with
    its traceback and the plugin's name); the plugin keeps working afterwards."""

    class BrokenStore(wasmplug.MemoryKvStore):
        def get(self, namespace: str, key: str) -> bytes | None:
            raise RuntimeError("storage backend is down")

    plugin = load(wasmplug.Grants(kv=wasmplug.KvGrant()), kv_store=BrokenStore())
    with (
        caplog.at_level(logging.ERROR, logger="wasmplug"),
        pytest.raises(wasmplug.HostFunctionError) as info,
    ):
        plugin.call("kv-get", "k")
    assert info.value.host_function == host_interface("kv") + "#get"
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "host function failed: RuntimeError: storage backend is down" in info.value.detail
    assert any(
        r.exc_info and getattr(r, "plugin", None) == plugin.name
        for r in caplog.records
        if r.name == "wasmplug"
    )
    assert plugin.call("kv-set", "k", b"v") is None
    assert plugin.last_call is not None
    assert plugin.last_call.fresh_instance is True
