"""The Extism backend: an Extism plugin (``tests/fixtures/extism-guest``, built with
``extism-pdk``) runs under a wasmplug policy, with typed calls, per-plugin host
functions, and the same exceptions and audit records as the other backends for a
breach or a denial (the pytest plugin's ``assert_breach`` / ``assert_denied``, which
the other backends' tests use too)."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import wasmplug
from conftest import FIXTURES, REPO_ROOT
from http_servers import Server
from wasmplug import _extism, _extism_native, _jsonvalue, wit
from wasmplug._checks import Mismatch
from wasmplug._coremodule import (
    CoreExport,
    CoreModuleError,
    imports_from,
    read_exports,
    read_imports,
)
from wasmplug._extism import extism_name
from wasmplug.testing import assert_breach, assert_denied, assert_within

WORLD = wasmplug.load_world(FIXTURES / "extism-guest" / "wit", "guest")
T: Any = WORLD.types
HOOKS = "wasmplug-tests:extism-guest/hooks@0.1.0"
JOIN_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def wasm() -> Path:
    """Builds the Extism fixture (a core module, ``build-wasm.sh --core``)."""
    subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "build-wasm.sh"), "--core", "extism-guest"],
        check=True,
    )
    return REPO_ROOT / "build" / "wasm-core" / "extism_guest.wasm"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def shout(text: str) -> str:
    return text.upper() + "!"


@pytest.fixture
def load(wasm: Path, wasmplug_load: Any) -> Any:
    """Loads the Extism fixture under ``grants`` and ``limits`` (default ones), or
    ``policy``, with ``shout`` as its host function unless ``imports`` is given."""

    def load(
        grants: wasmplug.Grants | None = None,
        limits: wasmplug.Limits | None = None,
        policy: wasmplug.Policy | None = None,
        **kwargs: Any,
    ) -> wasmplug.Plugin:
        if policy is None:
            policy = wasmplug.Policy(
                grants=grants or wasmplug.Grants(), limits=limits or wasmplug.Limits()
            )
        kwargs.setdefault("imports", {"hooks": {"shout": shout}})
        kwargs.setdefault("name", "ext")
        return wasmplug_load(wasm, world=WORLD, policy=policy, **kwargs)  # type: ignore[no-any-return]

    return load


# -- loading and typed calls ------------------------------------------------------------


def test_an_extism_plugin_is_recognized_by_its_imports(load: Any) -> None:
    """A core module importing ``extism:host/env`` runs on the Extism backend; its
    imports are its host functions."""
    plugin = load()
    assert plugin.kind == "extism"
    assert plugin.imports == ("extism:host/user#shout",)


def test_without_the_extism_package_the_error_says_what_to_install(
    wasm: Path, wasmplug_load: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``extism`` is an optional extra: without it, loading an Extism plugin is a
    LoadError naming the plugin and the extra (wasmplug itself imports fine)."""
    monkeypatch.setitem(sys.modules, "wasmplug._extism", None)  # as if not importable
    with pytest.raises(wasmplug.LoadError, match=r"wasmplug\[extism\]") as info:
        wasmplug_load(wasm, world=WORLD, imports={"hooks": {"shout": shout}}, name="no-sdk")
    assert info.value.plugin == "no-sdk"


def test_typed_calls_round_trip(load: Any) -> None:
    """Arguments go in and results come back as the world's Python types: numbers,
    records, variants, enums, lists, options, bytes."""
    plugin = load(grants=wasmplug.Grants(config={"greeting": "hi"}))
    assert plugin.call("add", 2, 3) == 5
    assert plugin.call("add", 2**32 - 1, 2) == 1
    rect = plugin.call("describe", T.ShapeRect(T.Point(x=3, y=-4)), T.Color.GREEN)
    assert rect == T.Summary(
        kind="rect",
        area=12,
        color=T.Color.GREEN,
        corners=[T.Point(x=0, y=0), T.Point(x=3, y=-4)],
        note=None,
        raw=b"",
    )
    circle = plugin.call("describe", T.ShapeCircle(2), "blue")
    assert (circle.kind, circle.area, circle.color) == ("circle", 12, T.Color.BLUE)
    assert (circle.note, circle.raw) == ("radius 2", b"\x01\x02\x03")
    assert plugin.call("describe", T.ShapeEmpty(), T.Color.RED).raw == b"\xff"
    assert plugin.call("get-config", "greeting") == "hi"
    assert plugin.call("get-config", "missing") is None
    assert plugin.call("noop") is None
    assert plugin.call("divide", 7, 2) == 3
    assert plugin.last_call is not None
    assert plugin.last_call.function == "divide"


def test_a_returned_error_is_the_worlds_guest_error(load: Any) -> None:
    """An error the plugin returns is the ``err`` of the export's ``result``: the
    world's ``GuestError``, carrying the plugin's message; the plugin keeps going."""
    plugin = load()
    with pytest.raises(wasmplug.GuestError) as info:
        plugin.call("divide", 1, 0)
    assert info.value.value == "cannot divide 1 by 0"
    assert info.value.plugin == "ext"
    assert plugin.call("divide", 9, 3) == 3


def test_a_wrong_argument_is_refused_before_the_call(load: Any) -> None:
    """An argument that does not fit its WIT type is an ArgumentError naming the
    plugin, the parameter and what was expected; nothing ran."""
    plugin = load()
    with pytest.raises(wasmplug.ArgumentError) as info:
        plugin.call("add", 1, "two")
    assert info.value.plugin == "ext"
    assert "b: expected u32" in str(info.value)
    with pytest.raises(wasmplug.ArgumentError, match=r"s\.rect\.x: expected s32"):
        plugin.call("describe", T.ShapeRect(T.Point(x=2**40, y=0)), T.Color.RED)
    assert plugin.last_call is None


def test_a_result_that_does_not_fit_its_type_is_an_invalid_guest_value(
    wasm: Path, wasmplug_load: Any, tmp_path: Path
) -> None:
    """Output that does not decode as the export's WIT result is the guest's fault:
    InvalidGuestValue (a Trap) naming the plugin, what was expected and found."""
    (tmp_path / "w.wit").write_text(
        "package t:t;\n"
        "interface hooks { shout: func(text: string) -> string; }\n"
        "world w { import hooks; export add: func(a: u32, b: u32) -> string; }\n"
    )
    world = wasmplug.load_world(tmp_path, "w")
    plugin = wasmplug_load(wasm, world=world, imports={"hooks": {"shout": shout}}, name="liar")
    with pytest.raises(wasmplug.InvalidGuestValue) as info:
        plugin.call("add", 1, 2)
    assert info.value.plugin == "liar"
    assert "result: expected string, found int 3" in str(info.value)


def test_instance_per_call(load: Any) -> None:
    """The first call after load runs on a fresh instance, the next ones on the same;
    with ``Policy.instance_per_call`` every call runs on a fresh instance."""
    plugin = load()
    for fresh_instance in (True, False, False):
        plugin.call("add", 1, 1)
        assert plugin.last_call is not None
        assert plugin.last_call.fresh_instance is fresh_instance
    fresh = load(policy=wasmplug.Policy(instance_per_call=True), name="fresh")
    for _ in range(2):
        assert fresh.call("add", 1, 1) == 2
        assert fresh.last_call is not None
        assert fresh.last_call.fresh_instance


def test_json_mapping_round_trips_and_names_the_mismatch() -> None:
    """The one JSON mapping (``_jsonvalue``): ``from_json(to_json(v))`` gives ``v``
    back for each kind of WIT type, and a mismatch says where and what."""
    export = WORLD.exports["describe"]
    shape_t, color_t = (p.type for p in export.wit.params)
    summary_t = export.wit.result
    assert summary_t is not None
    summary = T.Summary(
        kind="k", area=1, color=T.Color.BLUE, corners=[T.Point(x=1, y=2)], note="n", raw=b"\x00"
    )
    for value, t in [
        (T.ShapeRect(T.Point(x=1, y=2)), shape_t),
        (T.ShapeEmpty(), shape_t),
        (T.Color.RED, color_t),
        (summary, summary_t),
    ]:
        assert _jsonvalue.from_json(_jsonvalue.to_json(value, T), t, T) == value
    assert _jsonvalue.from_json("empty", shape_t, T) == T.ShapeEmpty()
    with pytest.raises(Mismatch) as info:
        _jsonvalue.from_json({"kind": "k"}, summary_t, T)
    assert "missing ['area'" in info.value.describe("result")
    with pytest.raises(Mismatch) as info:
        _jsonvalue.from_json({"rect": {"x": 1, "y": "2"}}, shape_t, T)
    assert info.value.describe("s") == "s.rect.y: expected s32, found str '2'"


def test_json_writers_and_readers_agree_with_the_mapping() -> None:
    """``json_writer``/``json_reader`` (made once per WIT type, with shortcuts for
    integers, strings and bytes) write and read what ``to_json``/``from_json`` do,
    and refuse what they refuse."""
    u32, string = wit.Primitive("u32"), wit.Primitive("string")
    blob = wit.ListType(wit.Primitive("u8"))
    summary_t = WORLD.exports["describe"].wit.result
    assert summary_t is not None
    summary = T.Summary(
        kind="k", area=1, color=T.Color.BLUE, corners=[], note=None, raw=b"\x00\xff"
    )
    cases: list[tuple[Any, Any]] = [
        (0, u32),
        (2**32 - 1, u32),
        ('héllo ✓ "q"\n', string),
        (b"", blob),
        (bytes(range(256)), blob),
        (summary, summary_t),
    ]
    for value, t in cases:
        text = _jsonvalue.json_writer(t, T)(value)
        assert json.loads(text) == _jsonvalue.to_json(value, T)
        assert _jsonvalue.json_reader(t, T)(text.encode()) == value
    assert json.loads(_jsonvalue.json_writer(blob, T)(bytearray(b"\x01\x02"))) == [1, 2]
    for value, t in [(-1, u32), (2**32, u32), (True, u32), ("1", u32), (b"x", string)]:
        with pytest.raises(Mismatch):
            _jsonvalue.json_writer(t, T)(value)
    readers: list[tuple[bytes, Any]] = [
        (b"-1", u32),
        (b"true", u32),
        (b"1.0", u32),
        (b"1", string),
        (b"[1, 256]", blob),
        (b"[1, true]", blob),
        (b"[1.0]", blob),
        (b'["1"]', blob),
    ]
    for raw, t in readers:
        with pytest.raises(Mismatch):
            _jsonvalue.json_reader(t, T)(raw)
    with pytest.raises(Mismatch) as info:
        _jsonvalue.json_reader(blob, T)(b"[0, 1, 300]")
    assert info.value.describe("result") == "result[2]: expected u8, found int 300"
    for bad in (b"", b"[1,", b"\xff"):
        with pytest.raises(ValueError, match=r"Expecting value|decode"):
            _jsonvalue.json_reader(u32, T)(bad)


def test_a_lone_surrogate_is_an_argument_error(load: Any) -> None:
    """A string argument holding a lone surrogate (no Unicode scalar value, so no WIT
    string) is refused before the call."""
    plugin = load()
    with pytest.raises(wasmplug.ArgumentError, match="lone surrogate"):
        plugin.call("read-file", "a\ud800b")
    assert plugin.last_call is None
    assert plugin.call("call-hook", "ok ✓") == "OK ✓!"


def test_loading_does_not_compile_with_wasmtime(
    wasm: Path, wasmplug_load: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libextism compiles an Extism plugin; wasmplug reads its imports from the bytes
    and never compiles it with wasmtime as well."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an Extism plugin was compiled with wasmtime")

    monkeypatch.setattr(wasmplug.Engine, "compile", refuse)
    plugin = wasmplug_load(wasm, world=WORLD, imports={"hooks": {"shout": shout}}, name="once")
    assert plugin.kind == "extism"
    assert plugin.call("add", 2, 3) == 5
    assert plugin.call("call-hook", "hi") == "HI!"


def test_core_module_sections_are_read_as_wasmtime_reads_them(wasm: Path) -> None:
    """``_coremodule`` reads the imports (with function types) and exports that
    wasmtime reads, and refuses a malformed module with the place it stopped."""
    import wasmtime

    data = wasm.read_bytes()
    module = wasmtime.Module(wasmtime.Engine(), data)
    expected = []
    for imp in module.imports:
        ftype = imp.type
        assert isinstance(ftype, wasmtime.FuncType)
        params = tuple(str(p) for p in ftype.params)
        expected.append(
            (imp.module, imp.name, "func", params, tuple(str(r) for r in ftype.results))
        )
    got = [(i.module, i.name, i.kind, i.params, i.results) for i in read_imports(data)]
    assert got == expected
    assert ("extism:host/user", "shout", "func", ("i64",), ("i64",)) in got
    exports = read_exports(data)
    assert [e.name for e in exports] == [e.name for e in module.exports]
    assert CoreExport("add", "func") in exports
    assert CoreExport("memory", "memory") in exports
    with pytest.raises(CoreModuleError, match="expected a core WebAssembly module"):
        read_imports(b"\0asm\x0d\x00\x01\x00")
    with pytest.raises(CoreModuleError, match=r"at byte \d+: expected section"):
        read_exports(data[: len(data) // 2])
    # imports_from answers from the import section alone, as read_imports would.
    for source in {i.module for i in read_imports(data)} | {"nowhere", "wasi"}:
        assert imports_from(data, source) == any(i.module == source for i in read_imports(data))
    assert imports_from(data, "extism:host/env")


def test_a_truncated_extism_plugin_is_invalid_wasm(wasm: Path, wasmplug_load: Any) -> None:
    """An Extism plugin cut short is an InvalidWasmError naming the plugin, not a
    crash."""
    data = wasm.read_bytes()
    with pytest.raises(wasmplug.InvalidWasmError) as info:
        wasmplug_load(data[: len(data) // 2], world=WORLD, name="cut")
    assert info.value.plugin == "cut"


def test_inspect_lists_an_extism_plugins_imports_and_exports(wasm: Path) -> None:
    """``wasmplug.inspect`` on an Extism plugin: kind ``extism``, no world or WIT, its
    kernel and host-function imports, and its exported functions (the world's
    exports under their Extism names), without running it."""
    info = wasmplug.inspect(wasm)
    assert (info.kind, info.world, info.wit) == ("extism", None, "")
    assert info.size_bytes == wasm.stat().st_size
    assert "extism:host/env#config_get" in info.imports
    assert "extism:host/user#shout" in info.imports
    assert info.host_functions == ("shout(i64) -> i64",)
    assert sorted(info.exports) == sorted(extism_name(name) for name in WORLD.exports)
    text = str(info)
    assert text.startswith("Extism plugin (core module)")
    assert "    shout(i64) -> i64" in text
    assert "  read_file" in text


def test_cli_inspect_of_an_extism_plugin(wasm: Path) -> None:
    """``wasmplug inspect`` prints the summary; ``--wit`` says there is no WIT (exit
    status 1)."""
    script = str(Path(sys.executable).parent / "wasmplug")
    out = subprocess.run(
        [script, "inspect", str(wasm)], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Extism plugin (core module)")
    assert "extism:host/user (host functions, given with imports=):" in out.stdout
    wit = subprocess.run(
        [script, "inspect", "--wit", str(wasm)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert wit.returncode == 1
    assert "is an Extism plugin: it carries no WIT" in wit.stderr


# -- limits -----------------------------------------------------------------------------


def test_fuel_breach_is_fuel_exhausted(load: Any) -> None:
    """Fuel goes through libextism's fuel-limited constructor, per call: many small
    calls fit, one long one raises FuelExhausted, and the next call runs on a fresh
    instance."""
    plugin = load(limits=wasmplug.Limits(fuel=5_000_000))
    for _ in range(50):  # 5,000,000 loop rounds in all: far past one call's budget
        plugin.call("spin", 100_000)
    error = assert_breach(plugin, "fuel", "spin", 10**9)
    assert isinstance(error, wasmplug.FuelExhausted)
    assert error.allowed == 5_000_000
    assert plugin.audit_counts["breach:fuel"] == 1
    assert plugin.call("add", 1, 1) == 2
    assert plugin.last_call is not None
    assert plugin.last_call.fresh_instance


def test_fuel_use_is_not_claimed(load: Any) -> None:
    """libextism cannot tell the fuel a call used: the pytest plugin refuses to check
    a fuel budget rather than pass on a made-up number."""
    plugin = load()
    plugin.call("add", 1, 1)
    with pytest.raises(AssertionError, match="does not measure fuel_consumed"):
        assert_within(plugin, fuel=1_000_000)
    assert assert_within(plugin, host_calls=0).function == "add"


def test_deadline_breach_is_deadline_exceeded(load: Any) -> None:
    """A call past ``deadline_ms`` (Extism's ``timeout_ms``) raises DeadlineExceeded,
    within generous bounds of the deadline."""
    plugin = load(limits=wasmplug.Limits(fuel=None, deadline_ms=200))
    start = time.monotonic()
    error = assert_breach(plugin, "deadline_ms", "spin", 10**15)
    assert isinstance(error, wasmplug.DeadlineExceeded)
    assert 0.15 < time.monotonic() - start < 10
    assert plugin.call("add", 2, 2) == 4


def test_memory_breach_is_memory_limit_exceeded(load: Any) -> None:
    """Growing past ``memory_bytes`` (Extism's ``memory.max_pages``) raises
    MemoryLimitExceeded; within the limit the same call works."""
    plugin = load(limits=wasmplug.Limits(memory_bytes=8 << 20))
    assert plugin.call("grow", 2) == 2 << 20
    error = assert_breach(plugin, "memory_bytes", "grow", 32)
    assert isinstance(error, wasmplug.MemoryLimitExceeded)
    assert error.allowed == 8 << 20
    assert plugin.call("grow", 1) == 1 << 20


def test_a_host_result_past_the_memory_limit_is_memory_limit_exceeded(load: Any) -> None:
    """A host function's result that does not fit in the guest's memory limit is
    MemoryLimitExceeded too (not a host function failure)."""
    plugin = load(
        limits=wasmplug.Limits(memory_bytes=4 << 20),
        imports={"hooks": {"shout": lambda text: "x" * (16 << 20)}},
    )
    error = assert_breach(plugin, "memory_bytes", "call-hook", "a")
    assert isinstance(error, wasmplug.MemoryLimitExceeded)
    assert plugin.call("add", 1, 2) == 3


def test_output_limit(load: Any) -> None:
    """An output longer than ``output_bytes`` raises OutputLimitExceeded."""
    plugin = load(limits=wasmplug.Limits(output_bytes=40))
    assert plugin.call("add", 1, 2) == 3
    error = assert_breach(plugin, "output_bytes", "describe", T.ShapeCircle(1), T.Color.RED)
    assert error.used is not None
    assert error.used > 40


def _spin_in_thread(plugin: wasmplug.Plugin) -> tuple[threading.Thread, list[BaseException]]:
    """Starts a call spinning without bound on a thread; returns the thread and the
    list that receives what the call raised."""
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            plugin.call("spin", 10**15)
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_interrupt_stops_a_running_call(load: Any) -> None:
    """``Plugin.interrupt`` cancels the running call: CallInterrupted, then the
    plugin goes on."""
    plugin = load(limits=wasmplug.Limits(fuel=None, deadline_ms=60_000))
    thread, outcome = _spin_in_thread(plugin)
    deadline = time.monotonic() + 10
    while thread.is_alive() and time.monotonic() < deadline:
        plugin.interrupt()
        thread.join(0.05)
    thread.join(JOIN_TIMEOUT_S)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], wasmplug.CallInterrupted)
    assert plugin.call("add", 1, 1) == 2


def test_an_early_interrupt_waits_for_libextism(load: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """libextism 1.x loses a cancel its timer thread handles between registering a
    call and setting the call's epoch deadline (the call then runs on, its timeout
    lost too; 16 of 200 early cancels under CPU load before this). An interrupt
    that comes at once is still honoured, but the cancel is sent only once the
    call has run ``_CANCEL_AFTER_S``."""
    sent: list[float] = []
    real_cancel = _extism_native.cancel

    def cancel(handle: Any) -> None:
        sent.append(time.perf_counter())
        real_cancel(handle)

    monkeypatch.setattr(_extism_native, "cancel", cancel)
    plugin = load(limits=wasmplug.Limits(fuel=None, deadline_ms=60_000))
    backend = plugin._backend
    thread, outcome = _spin_in_thread(plugin)
    give_up = time.monotonic() + 10
    while not backend._running and time.monotonic() < give_up:
        time.sleep(0.0001)
    plugin.interrupt()  # once, as early as it can come
    thread.join(JOIN_TIMEOUT_S)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], wasmplug.CallInterrupted)
    assert sent
    assert sent[0] - backend._call_started >= _extism._CANCEL_AFTER_S


# -- pools ------------------------------------------------------------------------------


def _meeting_shout(parties: int) -> tuple[Any, threading.Barrier]:
    """A ``shout`` that returns only once ``parties`` calls are inside it at once (so
    ``parties`` instances ran guest code concurrently); a 10 s wait fails it."""
    barrier = threading.Barrier(parties, timeout=10)

    def shout(text: str) -> str:
        barrier.wait()
        return text.upper()

    return shout, barrier


def test_a_pool_of_extism_plugins_serves_threads(wasm: Path, wasmplug_engine: Any) -> None:
    """``load_pool`` on an Extism plugin: every instance is an Extism plugin with the
    host functions, calls from many threads all answered, and two instances run at
    once (both calls meet inside the host function)."""
    shout, barrier = _meeting_shout(2)
    with wasmplug.load_pool(
        wasm, world=WORLD, size=2, imports={"hooks": {"shout": shout}}, engine=wasmplug_engine
    ) as pool:
        assert [p.kind for p in pool.plugins] == ["extism", "extism"]
        met: list[str] = []
        errors: list[BaseException] = []
        sums: list[int] = []

        def work(i: int) -> None:
            try:
                met.append(pool.call("call-hook", f"t{i}"))
                sums.extend(pool.call("add", i, k) - i - k for k in range(50))
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(JOIN_TIMEOUT_S)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        assert sorted(met) == ["T0", "T1"]
        assert sums == [0] * 100
        assert not barrier.broken


def test_a_pool_of_extism_plugins_serves_asyncio(wasm: Path, wasmplug_engine: Any) -> None:
    """The same under asyncio (``Pool.acall``); cancelling a task whose call spins
    stops it, and the pool serves again."""
    shout, _ = _meeting_shout(2)
    policy = wasmplug.Policy(limits=wasmplug.Limits(fuel=None, deadline_ms=None))

    async def scenario(pool: wasmplug.Pool) -> None:
        met = await asyncio.wait_for(
            asyncio.gather(pool.acall("call-hook", "a"), pool.acall("call-hook", "b")), 30
        )
        assert sorted(met) == ["A", "B"]
        sums = await asyncio.wait_for(
            asyncio.gather(*(pool.acall("add", i, 1) for i in range(40))), 30
        )
        assert sums == [i + 1 for i in range(40)]
        task = asyncio.create_task(pool.acall("spin", 10**15))
        await asyncio.sleep(0.3)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.wait_for(pool.acall("add", 2, 2), timeout=10) == 4

    with wasmplug.load_pool(
        wasm,
        world=WORLD,
        size=2,
        policy=policy,
        imports={"hooks": {"shout": shout}},
        engine=wasmplug_engine,
    ) as pool:
        asyncio.run(scenario(pool))


# -- grants -----------------------------------------------------------------------------


def test_http_denied_host_is_a_denial(load: Any, server: Server) -> None:
    """A request the HTTP grant does not cover is denied as on the other backends:
    counted, audited (``denial:http``), and handed to the guest (as a 403 response,
    Extism's HTTP having no error value), which returns it as its ``err``."""
    plugin = load()
    error = assert_denied(plugin, "http", "fetch", server.url("/echo"))
    assert isinstance(error, wasmplug.GuestError)
    assert str(error.value).startswith("HTTP 403: http: outbound HTTP is not granted")
    assert plugin.last_call is not None
    assert plugin.last_call.denials == 1


def test_http_grant_applies_every_field(load: Any, server: Server) -> None:
    """wasmplug's own HTTP serves Extism's: a granted request goes through, and one
    outside the rule in a field Extism's host list cannot express (the port) is
    denied."""
    rule = wasmplug.HttpRule(host="127.0.0.1", scheme="http", port=server.port)
    grant = wasmplug.HttpGrant(allow=[rule], allow_private=True)
    plugin = load(grants=wasmplug.Grants(http=grant))
    assert plugin.call("fetch", server.url("/echo")) == 200
    other = wasmplug.HttpRule(host="127.0.0.1", scheme="http", port=server.port + 1)
    denied = load(
        grants=wasmplug.Grants(http=wasmplug.HttpGrant(allow=[other], allow_private=True)),
        name="other-port",
    )
    error = assert_denied(denied, "http", "fetch", server.url("/echo"))
    assert isinstance(error, wasmplug.GuestError)
    assert "HTTP 403" in str(error.value)


def test_config_without_the_grant_is_a_denial(load: Any) -> None:
    """Reading configuration without ``Grants.config`` is a counted denial (the
    plugin reads nothing), as on the other backends."""
    plugin = load()
    assert assert_denied(plugin, "config", "get-config", "greeting") is None


def test_files_are_the_preopens_only(load: Any, tmp_path: Path) -> None:
    """A granted directory is readable at its guest path; any other path is not
    there for the guest (its error comes back as its ``err``)."""
    (tmp_path / "a.txt").write_text("hello file")
    preopen = wasmplug.Preopen(host_path=tmp_path, guest_path="/data")
    plugin = load(grants=wasmplug.Grants(files=[preopen]))
    assert plugin.call("read-file", "/data/a.txt") == "hello file"
    with pytest.raises(wasmplug.GuestError) as info:
        plugin.call("read-file", "/etc/hostname")
    assert "/etc/hostname" in str(info.value.value)
    with pytest.raises(wasmplug.GuestError):
        load(name="no-files").call("read-file", "/data/a.txt")


def _open_under(directory: Path) -> int:
    """Descriptors of this process open on files under ``directory`` (not on the
    directory itself), counted from ``/proc/self/fd`` independently of wasmplug."""
    root = str(directory.resolve())
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = fd.readlink()
        except OSError:
            continue
        count += str(target).startswith(root + "/")
    return count


def _writable(tmp_path: Path, **preopen: Any) -> wasmplug.Grants:
    data = tmp_path / "data"
    data.mkdir()
    return wasmplug.Grants(
        files=[wasmplug.Preopen(host_path=data, guest_path="/data", writable=True, **preopen)]
    )


def test_open_files_are_limited(load: Any, tmp_path: Path) -> None:
    """Limits.open_files holds on the Extism backend: files kept open across calls
    count, and the call that takes the plugin past the limit fails with
    FileLimitExceeded; its instance is freed with every descriptor it held, and the
    plugin goes on. The preopen's own descriptor does not count."""
    plugin = load(grants=_writable(tmp_path), limits=wasmplug.Limits(open_files=10))
    assert plugin.call("hold-files", "/data", 6) == (6, "")
    assert plugin.call("hold-files", "/data", 4) == (4, "")
    assert _open_under(tmp_path / "data") == 10
    with pytest.raises(wasmplug.FileLimitExceeded) as info:
        plugin.call("hold-files", "/data", 3)
    assert (info.value.limit, info.value.allowed, info.value.used) == ("open_files", 10, 13)
    assert _open_under(tmp_path / "data") == 0
    assert plugin.call("hold-files", "/data", 2) == (2, "")
    assert plugin.call("release-files") == 2
    assert _open_under(tmp_path / "data") == 0


def test_a_call_filling_its_preopen_is_stopped_while_it_runs(load: Any, tmp_path: Path) -> None:
    """A call writing far past Preopen.max_bytes is stopped by the watcher within a
    slice or so, long before it could finish (or reach its deadline), with
    DiskLimitExceeded; nothing it held stays open."""
    budget = 1 << 20
    plugin = load(
        grants=_writable(tmp_path, max_bytes=budget),
        limits=wasmplug.Limits(deadline_ms=30_000),
    )
    with pytest.raises(wasmplug.DiskLimitExceeded) as info:
        plugin.call("fill-file", "/data/big", 8 << 30)
    e = info.value
    assert (e.limit, e.allowed) == ("max_bytes", budget)
    assert e.used is not None
    assert e.used > budget
    written = (tmp_path / "data" / "big").stat().st_size
    assert budget < written < 8 << 30
    assert e.stats is not None
    assert e.stats.wall_time_us < 10_000_000
    assert _open_under(tmp_path / "data") == 0
    (tmp_path / "data" / "big").unlink()
    assert plugin.call("fill-file", "/data/small", 1000) == (1000, "")


def test_log_goes_through_the_log_capability(load: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Extism's log functions are wasmplug's ``log`` capability: denied (and audited)
    without ``Grants.log``, recorded on the plugin's logger with it."""
    quiet = load(name="quiet")
    assert_denied(quiet, "log", "note", "not granted")
    talker = load(grants=wasmplug.Grants(log=True), name="talker")
    with caplog.at_level(logging.INFO, logger="wasmplug.plugin.talker"):
        talker.call("note", "hello from extism")
    assert any(r.getMessage() == "hello from extism" for r in caplog.records)


@pytest.mark.parametrize(
    ("policy", "named"),
    [
        (wasmplug.Policy(grants=wasmplug.Grants(kv=wasmplug.KvGrant())), "Grants.kv"),
        (wasmplug.Policy(grants=wasmplug.Grants(env={"A": "1"})), "Grants.env"),
        (wasmplug.Policy(grants=wasmplug.Grants(stdio=True)), "Grants.stdio"),
        (wasmplug.Policy(determinism=wasmplug.Determinism()), "Policy.determinism"),
        (wasmplug.Policy(limits=wasmplug.Limits(tables=3)), "Limits.tables"),
        (wasmplug.Policy(limits=wasmplug.Limits(memory_bytes=1000)), "Limits.memory_bytes"),
    ],
)
def test_what_extism_cannot_enforce_is_refused(
    wasm: Path, wasmplug_load: Any, policy: wasmplug.Policy, named: str
) -> None:
    """A policy asking for what Extism cannot enforce is refused at load with a
    PolicyError naming it, never silently dropped."""
    with pytest.raises(wasmplug.PolicyError, match=named) as info:
        wasmplug_load(wasm, world=WORLD, policy=policy, imports={"hooks": {"shout": shout}})
    assert info.value.plugin == "extism_guest"


# -- host functions ---------------------------------------------------------------------


def test_host_functions_are_per_plugin(load: Any) -> None:
    """Two plugins of the same module each call their own implementation."""
    seen: list[str] = []

    def record(text: str) -> str:
        seen.append(text)
        return f"<{text}>"

    first = load(name="first")
    second = load(name="second", imports={HOOKS: {"shout": record}})
    assert first.call("call-hook", "a") == "A!"
    assert second.call("call-hook", "b") == "<b>"
    assert first.call("call-hook", "c") == "C!"
    assert seen == ["b"]
    assert second.last_call is not None
    assert second.last_call.host_calls == 1


def test_a_raising_host_function_fails_the_call(
    load: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception in a host function is never swallowed: the call raises
    HostFunctionError with the exception as ``__cause__``, it is logged with the
    plugin's name, and the plugin goes on."""
    problem = ValueError("no shouting today")

    def refuse(text: str) -> str:
        raise problem

    plugin = load(name="grumpy", imports={"hooks": {"shout": refuse}})
    with (
        caplog.at_level(logging.ERROR, logger="wasmplug"),
        pytest.raises(wasmplug.HostFunctionError) as info,
    ):
        plugin.call("call-hook", "hi")
    assert info.value.__cause__ is problem
    assert info.value.plugin == "grumpy"
    assert info.value.host_function == "extism:host/user#shout"
    assert any("grumpy" in r.getMessage() and r.exc_info for r in caplog.records)
    assert plugin.call("add", 1, 2) == 3


def test_a_host_function_returning_the_wrong_type_fails_the_call(load: Any) -> None:
    """A host function's result is checked against its WIT type."""
    plugin = load(imports={"hooks": {"shout": lambda text: 42}})
    with pytest.raises(wasmplug.HostFunctionError, match="not a string"):
        plugin.call("call-hook", "hi")


def test_missing_host_function_is_a_link_error(wasm: Path, wasmplug_load: Any) -> None:
    """Without the world's imports the plugin does not load (LinkError)."""
    with pytest.raises(wasmplug.LinkError, match="imports="):
        wasmplug_load(wasm, world=WORLD)


def test_a_world_export_the_plugin_lacks_is_a_mismatch(
    wasm: Path, wasmplug_load: Any, tmp_path: Path
) -> None:
    """Loading against a world with an export the plugin does not have raises
    WorldMismatchError naming the plugin and the Extism function looked for."""
    (tmp_path / "w.wit").write_text(
        "package t:t;\n"
        "interface hooks { shout: func(text: string) -> string; }\n"
        "world w { import hooks; export absent-fn: func() -> u32; }\n"
    )
    world = wasmplug.load_world(tmp_path, "w")
    with pytest.raises(wasmplug.WorldMismatchError) as info:
        wasmplug_load(wasm, world=world, imports={"hooks": {"shout": shout}}, name="lacking")
    assert info.value.plugin == "lacking"
    assert "'absent_fn'" in str(info.value)
