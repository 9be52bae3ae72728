"""Plugin over the backend interface (``wasmplug._backend.Backend``), with a mock.

``MockBackend`` is pure Python: it computes each export's result in Python and raises
wasmplug's typed errors the way a real backend does. The tests prove that what
:class:`~wasmplug.Plugin` itself owns (the call lock and ``Limits.queue_ms``,
re-entry refusal, ``last_call``, ``close()``, ``result`` errors and failures carried
to the caller) works over any backend through the interface alone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import wasmplug
from wasmplug import (
    ArgumentError,
    AuditEvent,
    CallError,
    CallStats,
    FuelExhausted,
    GuestError,
    LimitExceeded,
    Limits,
    Plugin,
    PluginBusy,
    PluginClosedError,
    Policy,
    ReentrantCallError,
)
from wasmplug._audit import Auditor
from wasmplug._backend import Backend, Outcome
from wasmplug._component import ComponentBackend
from wasmplug._core import CoreBackend

#: Bound on every wait in these tests, in seconds (none should come near it).
WAIT_S = 30.0

WIT = """\
package mock:calc@0.1.0;

world calc {
    /// Wrapping u32 addition.
    export add: func(a: u32, b: u32) -> u32;
    /// a / b, or an error for b = 0.
    export divide: func(a: u32, b: u32) -> result<u32, string>;
    /// Does nothing.
    export noop: func();
    /// Blocks until the test lets it go.
    export slow: func();
    /// Calls back into the plugin, as a host function of the plugin would.
    export reenter: func();
    /// Fails as a guest out of fuel does.
    export burn: func();
}
"""


class MockBackend(Backend):
    """A backend without wasm: exports computed in Python, failures raised as a real
    backend raises them, every interface call recorded."""

    kind = "mock"

    def __init__(self, name: str) -> None:
        self.name = name
        self.imports = ("mock:calc/nothing",)
        self._auditor = Auditor(name)
        self.started = 0
        self.closed = 0
        self.interrupted = 0
        self.evicted = 0
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.active = 0
        self.max_active = 0
        self.entered = threading.Event()
        self.go = threading.Event()
        self.reentry: BaseException | None = None
        self.audited: list[CallError] = []

    def start(self) -> None:
        self.started += 1

    def invoke(self, function: str, args: Sequence[Any], owner: object) -> Outcome:
        assert self.closed == 0, "called after close()"
        self.calls.append((function, tuple(args)))
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            return self._run(function, tuple(args), owner)
        finally:
            self.active -= 1

    def _run(self, function: str, args: tuple[Any, ...], owner: object) -> Outcome:
        stats = CallStats(function=function, fuel_consumed=7 * len(args), wall_time_us=1.5)
        if function == "add":
            a, b = args
            return (a + b) & 0xFFFF_FFFF, True, stats
        if function == "divide":
            a, b = args
            if b == 0:
                return "division by zero", False, stats
            return a // b, True, stats
        if function == "noop":
            # The fields of a CallStats, as the fast path reports them.
            return None, True, (function, 3, 2.5, 0, 0, False, 0.0, 65536)
        if function == "slow":
            self.entered.set()
            assert self.go.wait(WAIT_S), "the test never let the slow call go"
            return None, True, stats
        if function == "reenter":
            assert isinstance(owner, Plugin)
            try:
                owner.call("add", 1, 2)
            except BaseException as e:
                self.reentry = e
            return None, True, stats
        if function == "burn":
            error = FuelExhausted(
                "burn used more than 10 fuel units",
                limit="fuel",
                allowed=10,
                used=11,
                plugin=self.name,
                function=function,
                stats=CallStats(function=function, fuel_consumed=11, wall_time_us=3.0),
            )
            self.audit(error)
            raise error
        raise AssertionError(f"unexpected export {function}")

    def audit(self, error: CallError) -> None:
        self.audited.append(error)
        if isinstance(error, LimitExceeded):
            self._auditor.record(
                AuditEvent(
                    plugin=self.name,
                    kind="breach",
                    name=error.limit,
                    function=error.function,
                    argument=str(error),
                    used=error.used,
                )
            )

    @property
    def auditor(self) -> Auditor:
        return self._auditor

    def interrupt(self) -> None:
        self.interrupted += 1

    def evict(self) -> None:
        self.evicted += 1

    def close(self) -> None:
        self.closed += 1


@pytest.fixture(scope="module")
def calc_world(tmp_path_factory: pytest.TempPathFactory) -> wasmplug.World:
    path: Path = tmp_path_factory.mktemp("mock-wit") / "calc.wit"
    path.write_text(WIT)
    return wasmplug.load_world(path, "calc")


def _plugin(world: wasmplug.World, policy: Policy | None = None) -> tuple[Plugin, MockBackend]:
    backend = MockBackend("mocky")
    return Plugin._over(backend, world=world, name="mocky", policy=policy), backend


@pytest.fixture
def mock(calc_world: wasmplug.World) -> Iterator[tuple[Plugin, MockBackend]]:
    plugin, backend = _plugin(calc_world)
    yield plugin, backend
    plugin.close()


def test_both_wasmtime_backends_implement_the_interface() -> None:
    """The component path and the fast path are backends of the one interface, each
    with its kind; the interface's own methods are abstract."""
    assert issubclass(ComponentBackend, Backend)
    assert issubclass(CoreBackend, Backend)
    assert (ComponentBackend.kind, CoreBackend.kind) == ("component", "core-module")
    assert {"start", "invoke", "audit", "auditor", "close"} <= Backend.__abstractmethods__
    with pytest.raises(TypeError):
        Backend()  # type: ignore[abstract]


def test_plugin_over_a_mock_backend(mock: tuple[Plugin, MockBackend]) -> None:
    """A plugin over the mock starts it once, reports its kind and imports, and calls
    reach it with the arguments as given; results come back as it computed them."""
    plugin, backend = mock
    assert backend.started == 1
    assert plugin.kind == "mock"
    assert plugin.imports == ("mock:calc/nothing",)
    assert plugin.call("add", 2, 40) == 42
    assert plugin.call("add", 0xFFFF_FFFF, 2) == 1
    assert plugin.call("divide", 9, 2) == 4
    assert plugin.call("noop") is None
    assert backend.calls == [
        ("add", (2, 40)),
        ("add", (0xFFFF_FFFF, 2)),
        ("divide", (9, 2)),
        ("noop", ()),
    ]


def test_last_call_from_either_stats_form(mock: tuple[Plugin, MockBackend]) -> None:
    """``last_call`` is the backend's CallStats, or one made from its raw fields."""
    plugin, _ = mock
    assert plugin.last_call is None
    plugin.call("add", 1, 2)
    assert plugin.last_call == CallStats(function="add", fuel_consumed=14, wall_time_us=1.5)
    plugin.call("noop")
    assert plugin.last_call == CallStats(
        function="noop", fuel_consumed=3, wall_time_us=2.5, memory_bytes=65536
    )


def test_err_case_becomes_guest_error(mock: tuple[Plugin, MockBackend]) -> None:
    """A backend's ``is_ok=False`` becomes the world's GuestError with the payload,
    naming the plugin and function; its stats are still recorded."""
    plugin, _ = mock
    with pytest.raises(GuestError) as info:
        plugin.call("divide", 1, 0)
    assert info.value.value == "division by zero"
    assert info.value.function == "divide"
    assert info.value.plugin == "mocky"
    assert plugin.last_call is not None
    assert plugin.last_call.function == "divide"


def test_backend_failure_reaches_the_caller_with_its_stats(
    mock: tuple[Plugin, MockBackend],
) -> None:
    """A typed failure the backend raises reaches the caller as it is; ``last_call``
    takes its stats, the audit trail its breach, and the next call works."""
    plugin, backend = mock
    with pytest.raises(FuelExhausted) as info:
        plugin.call("burn")
    assert info.value.plugin == "mocky"
    assert plugin.last_call == CallStats(function="burn", fuel_consumed=11, wall_time_us=3.0)
    assert plugin.audit_counts == {"breach:fuel": 1}
    assert plugin.call("add", 3, 4) == 7
    assert backend.calls[-1] == ("add", (3, 4))


def test_arguments_checked_before_the_backend(mock: tuple[Plugin, MockBackend]) -> None:
    """An unknown export or a wrong number of arguments is refused by the plugin;
    the backend never sees the call."""
    plugin, backend = mock
    with pytest.raises(ArgumentError, match="no export named 'nope'"):
        plugin.call("nope")
    with pytest.raises(ArgumentError, match="takes 2 argument"):
        plugin.call("add", 1)
    assert backend.calls == []


def test_prepared_call_goes_through_the_interface(
    calc_world: wasmplug.World, mock: tuple[Plugin, MockBackend]
) -> None:
    """``call_prepared`` on a backend without its own prepared path calls ``invoke``
    with the original arguments."""
    plugin, backend = mock
    prepared = calc_world.prepare("add", 20, 22)
    assert plugin.call_prepared(prepared) == 42
    assert backend.calls == [("add", (20, 22))]


def test_reentry_is_refused(mock: tuple[Plugin, MockBackend]) -> None:
    """A call into the plugin from inside one of its calls (a host function calling
    back) is refused with ReentrantCallError, not a deadlock; the outer call ends."""
    plugin, backend = mock
    assert plugin.call("reenter") is None
    assert isinstance(backend.reentry, ReentrantCallError)
    assert backend.reentry.function == "add"
    assert [f for f, _ in backend.calls] == ["reenter"]
    assert plugin.call("add", 1, 1) == 2


def test_calls_are_serialized(mock: tuple[Plugin, MockBackend]) -> None:
    """Calls from several threads enter the backend one at a time."""
    plugin, backend = mock
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(200):
                assert plugin.call("add", i, 1) == i + 1
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=WAIT_S)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert len(backend.calls) == 800
    assert backend.max_active == 1


def test_plugin_busy_after_queue_ms(calc_world: wasmplug.World) -> None:
    """A caller waiting longer than ``Limits.queue_ms`` for another thread's call gets
    PluginBusy naming the running export; the breach is audited through the backend;
    the waiting call never reaches it."""
    plugin, backend = _plugin(calc_world, Policy(limits=Limits(queue_ms=50)))
    outcome: list[Any] = []
    runner = threading.Thread(target=lambda: outcome.append(plugin.call("slow")))
    runner.start()
    try:
        assert backend.entered.wait(WAIT_S)
        with pytest.raises(PluginBusy) as info:
            plugin.call("add", 1, 2)
        assert info.value.busy_with == "slow"
        assert info.value.used is not None
        assert info.value.used >= 40
        assert info.value.allowed == 50
        assert plugin.audit_counts == {"breach:queue_ms": 1}
        assert backend.audited == [info.value]
        assert [f for f, _ in backend.calls] == ["slow"]
    finally:
        backend.go.set()
        runner.join(timeout=WAIT_S)
    assert not runner.is_alive()
    assert outcome == [None]
    assert plugin.call("add", 1, 2) == 3
    plugin.close()


def test_close(calc_world: wasmplug.World) -> None:
    """``close()`` closes the backend once (idempotent); later calls raise
    PluginClosedError without reaching it."""
    plugin, backend = _plugin(calc_world)
    with plugin:
        assert plugin.call("add", 1, 2) == 3
    assert plugin.closed
    assert backend.closed == 1
    plugin.close()
    assert backend.closed == 1
    with pytest.raises(PluginClosedError):
        plugin.call("add", 1, 2)
    assert backend.calls == [("add", (1, 2))]
    assert "closed" in repr(plugin)


def test_close_waits_for_a_running_call(calc_world: wasmplug.World) -> None:
    """``close()`` from another thread waits for the running call to end before it
    closes the backend (the backend is never closed under a call)."""
    plugin, backend = _plugin(calc_world)
    runner = threading.Thread(target=plugin.call, args=("slow",))
    runner.start()
    assert backend.entered.wait(WAIT_S)
    closer = threading.Thread(target=plugin.close)
    closer.start()
    closer.join(timeout=0.1)
    assert closer.is_alive()
    assert backend.closed == 0
    backend.go.set()
    runner.join(timeout=WAIT_S)
    closer.join(timeout=WAIT_S)
    assert not runner.is_alive()
    assert not closer.is_alive()
    assert backend.closed == 1


def test_default_free_refuses() -> None:
    """A backend that makes no resource handles refuses to free one (by default)."""
    with pytest.raises(TypeError, match="makes no resource handles"):
        MockBackend.free(object())


def test_the_engine_lru_evicts_through_the_interface(calc_world: wasmplug.World) -> None:
    """With room for one live instance, each plugin's call makes the engine drop the
    other's (Backend.evict), never the caller's own; Plugin.interrupt reaches the
    backend."""
    engine = wasmplug.Engine(cache_dir=None, max_live_instances=1)
    try:
        a_backend, b_backend = MockBackend("a"), MockBackend("b")
        a = Plugin._over(a_backend, world=calc_world, name="a", engine=engine)
        b = Plugin._over(b_backend, world=calc_world, name="b", engine=engine)
        assert (a_backend.evicted, b_backend.evicted) == (1, 0)  # b's load evicted a
        a.call("add", 1, 2)
        assert (a_backend.evicted, b_backend.evicted) == (1, 1)
        b.call("add", 1, 2)
        assert (a_backend.evicted, b_backend.evicted) == (2, 1)
        a.interrupt()
        assert a_backend.interrupted == 1
    finally:
        engine.close()
