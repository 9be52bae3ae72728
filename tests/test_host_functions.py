"""Host functions: world imports of the host's own interfaces, implemented per plugin.

The fixture plugin ``tests/fixtures/hostfns`` imports the host's ``inventory``
interface and a world-level function ``now-ms``, and exports functions that call them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import wasmplug
from conftest import fixture_world

WORLD = fixture_world("hostfns")
Item = WORLD.types.Item
INVENTORY = "wasmplug-tests:hostfns/inventory@0.1.0"


class Inventory:
    """An inventory kept in Python, implementing the WIT interface ``inventory``."""

    def __init__(self, stock: dict[str, int]) -> None:
        self.stock = dict(stock)
        self.events: list[str] = []
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def lookup(self, name: str) -> Any:
        self.calls.append(("lookup", (name,)))
        qty = self.stock.get(name)
        return None if qty is None else Item(name=name, qty=qty)

    def reserve(self, name: str, qty: int) -> int:
        self.calls.append(("reserve", (name, qty)))
        if name not in self.stock:
            raise wasmplug.GuestError(WORLD.types.StockErrorUnknown(name))
        left = self.stock[name]
        if qty > left:
            raise wasmplug.GuestError(WORLD.types.StockErrorShort(left))
        self.stock[name] = left - qty
        return left - qty

    def emit(self, event: str) -> None:
        self.events.append(event)

    def ping(self) -> int:
        return 41


@pytest.fixture
def load(plugin_dir: Path, wasmplug_load: Any) -> Any:
    """Loads the hostfns plugin with the given imports (default: a fresh Inventory and
    a clock), through the pytest plugin's loader (closed at teardown)."""

    def _load(
        imports: dict[str, object] | None = None,
        *,
        limits: wasmplug.Limits | None = None,
        name: str = "hostfns",
    ) -> wasmplug.Plugin:
        if imports is None:
            imports = {"inventory": Inventory({"apple": 3}), "now-ms": lambda: 1234}
        plugin: wasmplug.Plugin = wasmplug_load(
            plugin_dir / "hostfns.wasm",
            world=WORLD,
            policy=wasmplug.Policy(limits=limits or wasmplug.Limits()),
            name=name,
            imports=imports,
        )
        return plugin

    return _load


def test_object_implementation_is_called_with_typed_values(load: Any) -> None:
    """The guest's calls reach the object's snake_case methods with lifted Python values,
    and the object's answers reach the guest: an attrs record, then None."""
    inventory = Inventory({"apple": 3})
    plugin = load({"inventory": inventory, "now-ms": lambda: 99})
    assert plugin.call("lookup", "apple") == Item(name="apple", qty=3)
    assert inventory.calls == [("lookup", ("apple",)), ("lookup", ("apple",))]
    assert plugin.last_call.host_calls == 2
    assert plugin.last_call.host_time_us > 0
    assert plugin.call("lookup", "pear") is None
    assert plugin.call("now") == 99
    assert plugin.call("emit-all", ["a", "b", "c"]) == 3
    assert inventory.events == ["a", "b", "c"]


def test_mapping_of_callables_by_wit_or_snake_case_name(load: Any) -> None:
    """A mapping of callables implements an interface too, keyed by WIT or snake_case
    function name, and the interface may be named by its qualified name."""
    calls: list[str] = []
    impl: dict[str, Callable[..., Any]] = {
        "lookup": lambda name: Item(name=name.upper(), qty=len(name)),
        "reserve": lambda name, qty: 0,
        "emit": calls.append,
        "ping": lambda: 1,
    }
    plugin = load({INVENTORY: impl, "now-ms": lambda: 0})
    assert plugin.call("lookup", "fig") == Item(name="FIG", qty=3)
    assert plugin.call("call-ping") == 2
    assert plugin.call("emit-all", ["x"]) == 1
    assert calls == ["x"]


def test_raising_guest_error_returns_err_to_the_guest(load: Any) -> None:
    """For a result<T, E> host function, returning T is ok and raising GuestError with
    an E gives the guest err(E): the guest maps each case to its own error text."""
    inventory = Inventory({"apple": 3})
    plugin = load({"inventory": inventory, "now-ms": lambda: 0})
    assert plugin.call("reserve", "apple", 2) == 1
    with pytest.raises(wasmplug.GuestError) as info:
        plugin.call("reserve", "apple", 5)
    assert info.value.value == "short:1"
    with pytest.raises(wasmplug.GuestError) as info:
        plugin.call("reserve", "kiwi", 1)
    assert info.value.value == "unknown:kiwi"
    # The guest handled the error: the instance was not replaced.
    assert plugin.call("reserve", "apple", 1) == 0
    assert plugin.last_call.fresh_instance is False


def test_other_exception_fails_the_call_on_the_host(
    load: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Any other exception is never swallowed: the call raises HostFunctionError caused
    by it, it is logged with the plugin's name, and the next call gets a fresh
    instance."""

    class Broken(Inventory):
        def reserve(self, name: str, qty: int) -> int:
            raise ValueError("database is down")

    plugin = load({"inventory": Broken({}), "now-ms": lambda: 0}, name="shop")
    with (
        caplog.at_level(logging.ERROR, logger="wasmplug"),
        pytest.raises(wasmplug.HostFunctionError) as info,
    ):
        plugin.call("reserve", "apple", 1)
    error = info.value
    assert isinstance(error.__cause__, ValueError)
    assert error.host_function == f"{INVENTORY}#reserve"
    assert error.plugin == "shop"
    assert "database is down" in str(error)
    assert isinstance(error, wasmplug.CallError)
    assert [r for r in caplog.records if getattr(r, "plugin", None) == "shop" and r.exc_info]
    assert plugin.call("pong") == 7
    assert plugin.last_call.fresh_instance is True


def test_guest_error_where_the_result_is_not_a_result_fails_on_the_host(load: Any) -> None:
    """Raising GuestError from a host function without a result<_, E> result (emit) is
    a host-side failure, not an error value."""
    inventory = Inventory({})
    inventory.emit = lambda event: (_ for _ in ()).throw(wasmplug.GuestError("no"))  # type: ignore[method-assign]
    plugin = load({"inventory": inventory, "now-ms": lambda: 0})
    with pytest.raises(wasmplug.HostFunctionError) as info:
        plugin.call("emit-all", ["e"])
    assert isinstance(info.value.__cause__, wasmplug.GuestError)


@pytest.mark.parametrize(
    ("method", "value", "call", "expected"),
    [
        ("lookup", "apple", ("lookup", "apple"), "expected"),
        ("lookup", {"name": "a"}, ("lookup", "a"), "missing"),
        ("ping", -1, ("call-ping",), "int in [0, 4294967295]"),
        ("ping", 2**32, ("call-ping",), "int in [0, 4294967295]"),
        ("reserve", "1", ("reserve", "a", 1), "int in [0, 4294967295]"),
    ],
)
def test_results_are_checked_like_export_values(
    load: Any, method: str, value: Any, call: tuple[Any, ...], expected: str
) -> None:
    """A host function's result is checked against its WIT type exactly like an
    argument of an export; a mismatch fails the call naming the function."""
    inventory = Inventory({})
    setattr(inventory, method, lambda *args: value)
    plugin = load({"inventory": inventory, "now-ms": lambda: 0})
    with pytest.raises(wasmplug.HostFunctionError) as info:
        plugin.call(*call)
    assert isinstance(info.value.__cause__, TypeError)
    message = str(info.value.__cause__)
    assert f"{INVENTORY}#{method} result" in message
    assert expected in message


def test_guest_error_with_a_value_of_the_wrong_type_fails_on_the_host(load: Any) -> None:
    """A GuestError whose value is not an E of the function's result<T, E> is a
    host-side failure naming what was expected."""
    inventory = Inventory({})
    inventory.reserve = lambda name, qty: (_ for _ in ()).throw(wasmplug.GuestError("oops"))  # type: ignore[method-assign]
    plugin = load({"inventory": inventory, "now-ms": lambda: 0})
    with pytest.raises(wasmplug.HostFunctionError) as info:
        plugin.call("reserve", "a", 1)
    assert "StockError" in str(info.value.__cause__)


def test_missing_implementations_are_link_errors_at_load(load: Any) -> None:
    """Every host import of the world needs an implementation at load time; the
    LinkError names what is missing."""
    with pytest.raises(wasmplug.LinkError) as info:
        load({})
    assert INVENTORY in str(info.value)
    assert "now-ms" in str(info.value)
    assert set(info.value.imports) == {INVENTORY, "now-ms"}

    class NoEmit:
        def lookup(self, name: str) -> None:
            return None

        def reserve(self, name: str, qty: int) -> int:
            return 0

        def ping(self) -> int:
            return 0

    with pytest.raises(wasmplug.LinkError, match=r"no function emit \(method emit\(\): missing\)"):
        load({"inventory": NoEmit(), "now-ms": lambda: 0})
    with pytest.raises(wasmplug.LinkError, match="does not import"):
        load({"inventory": Inventory({}), "now-ms": lambda: 0, "billing": object()})
    with pytest.raises(wasmplug.LinkError, match="must be callable"):
        load({"inventory": Inventory({}), "now-ms": 5})


def test_reentering_the_same_plugin_is_a_clear_error(load: Any) -> None:
    """A host function that calls back into the plugin calling it gets
    ReentrantCallError; uncaught, it fails the call with HostFunctionError."""
    plugin: wasmplug.Plugin | None = None
    caught: list[BaseException] = []

    class Reenter(Inventory):
        def ping(self) -> int:
            assert plugin is not None
            try:
                return int(plugin.call("pong"))
            except wasmplug.ReentrantCallError as e:
                caught.append(e)
                if len(caught) > 1:
                    raise
                return 100

    plugin = load({"inventory": Reenter({}), "now-ms": lambda: 0})
    assert plugin.call("call-ping") == 101
    assert "called from a host function" in str(caught[0])
    with pytest.raises(wasmplug.HostFunctionError) as info:
        plugin.call("call-ping")
    assert isinstance(info.value.__cause__, wasmplug.ReentrantCallError)


def test_a_host_function_may_call_another_plugin(load: Any) -> None:
    """Calling a *different* plugin from a host function works."""
    other = load(name="other")

    class Relay(Inventory):
        def ping(self) -> int:
            return int(other.call("pong")) * 10

    plugin = load({"inventory": Relay({}), "now-ms": lambda: 0}, name="relay")
    assert plugin.call("call-ping") == 71


def test_implementations_are_per_plugin(load: Any) -> None:
    """Two plugins of one world, loaded with different implementations, each see their
    own: nothing is registered process-wide."""
    a = load({"inventory": Inventory({"apple": 1}), "now-ms": lambda: 1}, name="a")
    b = load({"inventory": Inventory({"apple": 9}), "now-ms": lambda: 2}, name="b")
    assert a.call("lookup", "apple") == Item(name="apple", qty=1)
    assert b.call("lookup", "apple") == Item(name="apple", qty=9)
    assert (a.call("now"), b.call("now")) == (1, 2)


def test_host_functions_count_against_the_deadline(load: Any) -> None:
    """Time spent in a host function is part of the call's deadline: a slow host
    function fails the call with DeadlineExceeded naming it."""

    class Slow(Inventory):
        def ping(self) -> int:
            time.sleep(0.15)
            return 1

    plugin = load(
        {"inventory": Slow({}), "now-ms": lambda: 0},
        limits=wasmplug.Limits(deadline_ms=50),
    )
    with pytest.raises(wasmplug.DeadlineExceeded) as info:
        plugin.call("call-ping")
    assert "in host function" in str(info.value)
    assert info.value.stats is not None
    assert info.value.stats.host_time_us >= 150_000
    assert plugin.call("pong") == 7


class Blocking(Inventory):
    """``ping`` blocks until ``release`` is set, after telling ``entered``."""

    def __init__(self) -> None:
        super().__init__({})
        self.entered = threading.Event()
        self.release = threading.Event()

    def ping(self) -> int:
        self.entered.set()
        assert self.release.wait(30)
        return 41


def start_call(plugin: wasmplug.Plugin, function: str) -> tuple[threading.Thread, list[Any]]:
    """Calls ``function`` on a thread of its own; the outcome lands in the list."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(plugin.call(function))
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_a_caller_behind_a_stuck_call_gets_plugin_busy(load: Any) -> None:
    """While a call is held in a blocking host function, a second caller waits
    Limits.queue_ms and gets PluginBusy naming the plugin, both functions, the wait
    and the limit; nothing of it ran (last_call unchanged) and it is audited. The
    held call then finishes normally and later calls work."""
    inventory = Blocking()
    plugin = load(
        {"inventory": inventory, "now-ms": lambda: 0},
        limits=wasmplug.Limits(deadline_ms=None, queue_ms=200),
        name="busy",
    )
    assert plugin.call("pong") == 7
    before = plugin.last_call
    holder, held = start_call(plugin, "call-ping")
    assert inventory.entered.wait(30)
    start = time.perf_counter()
    with pytest.raises(wasmplug.PluginBusy) as info:
        plugin.call("now")
    waited = time.perf_counter() - start
    e = info.value
    assert 0.15 <= waited < 10
    assert (e.plugin, e.function, e.limit, e.allowed) == ("busy", "now", "queue_ms", 200)
    assert e.used is not None
    assert 150 <= e.used < 10_000
    assert e.busy_with == "call-ping"
    assert e.stats is None
    assert "now waited" in str(e)
    assert "busy with a call of call-ping" in str(e)
    assert "Limits.queue_ms = 200" in str(e)
    assert plugin.last_call is before
    assert plugin.audit_counts == {"breach:queue_ms": 1}
    inventory.release.set()
    holder.join(30)
    assert held == [42]
    assert plugin.call("now") == 0
    assert plugin.last_call is not None
    assert plugin.last_call.fresh_instance is False


def test_queue_ms_zero_never_waits_and_none_waits_for_good(load: Any) -> None:
    """queue_ms=0 refuses at once while the plugin is busy; queue_ms=None waits as
    long as the call ahead takes."""
    inventory = Blocking()
    eager = load(
        {"inventory": inventory, "now-ms": lambda: 0},
        limits=wasmplug.Limits(deadline_ms=None, queue_ms=0),
        name="eager",
    )
    holder, held = start_call(eager, "call-ping")
    assert inventory.entered.wait(30)
    start = time.perf_counter()
    with pytest.raises(wasmplug.PluginBusy) as info:
        eager.call("pong")
    assert time.perf_counter() - start < 5
    assert info.value.allowed == 0
    inventory.release.set()
    holder.join(30)
    assert held == [42]

    inventory = Blocking()
    patient = load(
        {"inventory": inventory, "now-ms": lambda: 0},
        limits=wasmplug.Limits(deadline_ms=None, queue_ms=None),
        name="patient",
    )
    holder, held = start_call(patient, "call-ping")
    assert inventory.entered.wait(30)
    waiter, waited = start_call(patient, "pong")
    waiter.join(0.5)
    assert waiter.is_alive()  # still waiting, past any short bound
    inventory.release.set()
    holder.join(30)
    waiter.join(30)
    assert (held, waited) == ([42], [7])


def test_two_plugins_calling_each_other_end_in_plugin_busy_not_a_deadlock(load: Any) -> None:
    """A's host function calls B while B's calls A, from two threads: each waits for
    the other's lock. The wait for A (queue_ms 200) gives up first with PluginBusy
    inside B's host function, so B's call fails with HostFunctionError caused by it;
    that frees B, and A's call (queue_ms 10 s) completes. Both work afterwards."""
    both_inside = threading.Barrier(2, timeout=30)
    plugins: dict[str, wasmplug.Plugin] = {}

    def calling(other: str) -> Callable[[], int]:
        def ping() -> int:
            both_inside.wait()
            return int(plugins[other].call("pong"))

        return ping

    for name, other, queue_ms in (("a", "b", 200), ("b", "a", 10_000)):
        inventory = Inventory({})
        inventory.ping = calling(other)  # type: ignore[method-assign]
        plugins[name] = load(
            {"inventory": inventory, "now-ms": lambda: 0},
            limits=wasmplug.Limits(deadline_ms=None, queue_ms=queue_ms),
            name=name,
        )
    first, first_out = start_call(plugins["a"], "call-ping")
    second, second_out = start_call(plugins["b"], "call-ping")
    first.join(30)
    second.join(30)
    assert first_out == [8]
    (e,) = second_out
    assert isinstance(e, wasmplug.HostFunctionError)
    assert e.plugin == "b"
    cause = e.__cause__
    assert isinstance(cause, wasmplug.PluginBusy)
    assert (cause.plugin, cause.function, cause.busy_with) == ("a", "pong", "call-ping")
    assert (plugins["a"].call("pong"), plugins["b"].call("pong")) == (7, 7)
