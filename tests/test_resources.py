"""WIT resources both ways.

The fixture plugin ``tests/fixtures/resources`` exports the interface ``text`` with a
resource ``buffer`` (handles on the host side: ``types.Buffer``) and imports the
interface ``host-store`` whose resource ``counter`` the host implements in Python.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import wasmplug
from conftest import FIXTURES, fixture_world
from wasmplug import _component, _sandbox

WORLD = fixture_world("resources")
Buffer = WORLD.types.Buffer
STORE = "wasmplug-tests:resources/host-store@0.1.0"
#: Stand-ins for the plain functions of host-store, for mapping implementations.
FUNCTIONS: dict[str, object] = dict.fromkeys(("describe", "absorb", "pair-sum", "copy-of"), print)


class HostCounter:
    """The host's implementation of the WIT resource ``counter``; records its life."""

    made: list[HostCounter]

    def __init__(self, start: int) -> None:
        self.value_ = start
        self.closed = 0
        HostCounter.made.append(self)

    def add(self, n: int) -> int:
        self.value_ += n
        return self.value_

    def value(self) -> int:
        return self.value_

    def close(self) -> None:
        self.closed += 1

    @staticmethod
    def doubled(c: HostCounter) -> HostCounter:
        return HostCounter(2 * c.value())


class HostStore:
    """The host's implementation of the interface ``host-store``."""

    Counter = HostCounter

    def __init__(self) -> None:
        self.described: list[Any] = []
        self.absorbed: list[Any] = []

    def describe(self, c: HostCounter) -> str:
        self.described.append(c)
        return f"counter at {c.value()}"

    def absorb(self, c: HostCounter) -> int:
        self.absorbed.append(c)
        return c.value()

    def pair_sum(self, a: HostCounter, b: HostCounter) -> int:
        return a.value() + b.value()

    def copy_of(self, c: HostCounter) -> HostCounter:
        return HostCounter(c.value())


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    HostCounter.made = []


@pytest.fixture
def load(wasm_dir: Path, engine: wasmplug.Engine) -> Iterator[Callable[..., wasmplug.Plugin]]:
    """Loads the resources plugin (default imports: a fresh HostStore); closes every
    plugin it loaded at teardown."""
    loaded: list[wasmplug.Plugin] = []

    def _load(
        imports: dict[str, object] | None = None,
        *,
        limits: wasmplug.Limits | None = None,
        name: str = "resources",
    ) -> wasmplug.Plugin:
        plugin = wasmplug.load(
            wasm_dir / "resources.wasm",
            world=WORLD,
            policy=wasmplug.Policy(limits=limits or wasmplug.Limits()),
            name=name,
            engine=engine,
            imports=imports if imports is not None else {"host-store": HostStore()},
        )
        loaded.append(plugin)
        return plugin

    yield _load
    for plugin in loaded:
        plugin.close()


def live(plugin: wasmplug.Plugin) -> int:
    """How many buffers the guest holds (its destructor decrements the count)."""
    count: int = plugin.call("text.live")
    return count


# -- guest-exported resources ----------------------------------------------------------


def test_handle_class_is_in_the_world_types() -> None:
    """Each exported resource gets a handle class in ``types`` with one method per WIT
    method and static function, and the resource's functions are callable exports."""
    assert issubclass(Buffer, wasmplug.ResourceHandle)
    assert Buffer.__name__ == "Buffer"
    for name in ("append", "read", "len", "concat", "close", "closed"):
        assert hasattr(Buffer, name)
    assert {
        "text.[constructor]buffer",
        "text.[method]buffer.append",
        "text.[static]buffer.concat",
        "text.measure",
        "text.consume",
    } <= set(WORLD.exports)


def test_construct_and_call_methods(load: Callable[..., wasmplug.Plugin]) -> None:
    """The constructor (by call name or through the class) returns a handle whose
    methods run on the guest's object."""
    plugin = load()
    made = plugin.call("text.[constructor]buffer", "hello")
    assert isinstance(made, Buffer)
    assert made.plugin is plugin
    made.append(", world")
    assert made.read() == "hello, world"
    assert made.len() == 12
    other = Buffer(plugin, "abc")
    assert other.read() == "abc"
    assert plugin.call("text.[method]buffer.len", other) == 3
    assert live(plugin) == 2


def test_static_function_and_borrow(load: Callable[..., wasmplug.Plugin]) -> None:
    """A static function takes the plugin first; passing handles as ``borrow`` lends
    them: they stay open and unchanged."""
    plugin = load()
    a, b = Buffer(plugin, "ab"), Buffer(plugin, "cd")
    joined = Buffer.concat(plugin, a, b)
    assert joined.read() == "abcd"
    assert plugin.call("text.measure", joined) == 4
    assert plugin.call("text.[static]buffer.concat", a, a).read() == "abab"
    assert not a.closed
    assert a.read() == "ab"
    assert not b.closed
    assert b.read() == "cd"


def test_own_parameter_moves_the_handle(load: Callable[..., wasmplug.Plugin]) -> None:
    """Passing a handle as ``own<buffer>`` moves it into the guest: the Python handle
    is closed afterwards, and using it again raises StaleHandleError."""
    plugin = load()
    made = Buffer(plugin, "gone")
    assert live(plugin) == 1
    assert plugin.call("text.consume", made) == "gone"
    assert made.closed
    assert live(plugin) == 0  # the guest dropped it
    with pytest.raises(wasmplug.StaleHandleError) as info:
        made.read()
    assert info.value.resource == "buffer"
    with pytest.raises(wasmplug.StaleHandleError):
        plugin.call("text.consume", made)
    made.close()  # nothing left to drop: no error


def test_close_runs_the_guest_destructor_once(load: Callable[..., wasmplug.Plugin]) -> None:
    """``close()`` drops the resource in the guest (its destructor runs); a second
    ``close()`` does nothing; use after close is a StaleHandleError, before anything
    reaches the plugin."""
    plugin = load()
    made = Buffer(plugin, "x")
    keep = Buffer(plugin, "y")
    assert live(plugin) == 2
    made.close()
    assert made.closed
    assert made.plugin is None
    assert live(plugin) == 1
    made.close()
    assert live(plugin) == 1
    calls_before = plugin.last_call
    with pytest.raises(wasmplug.StaleHandleError, match="closed"):
        plugin.call("text.measure", made)
    with pytest.raises(wasmplug.StaleHandleError):
        made.append("z")
    assert plugin.last_call is calls_before  # nothing ran
    assert keep.read() == "y"


def test_destructor_trap_fails_close(load: Callable[..., wasmplug.Plugin]) -> None:
    """A guest destructor that traps makes ``close()`` raise Trap; the handle is closed
    anyway and the plugin continues on a fresh instance."""
    plugin = load()
    doomed = Buffer(plugin, "panic on drop")
    bystander = Buffer(plugin, "fine")
    with pytest.raises(wasmplug.Trap, match="destructor panicked") as info:
        doomed.close()
    assert info.value.function == "[resource-drop]buffer"
    assert doomed.closed
    with pytest.raises(wasmplug.StaleHandleError):
        bystander.read()  # went with the trapped instance
    assert live(plugin) == 0


def test_context_manager_closes(load: Callable[..., wasmplug.Plugin]) -> None:
    """A handle used as a context manager is dropped at the end of the block."""
    plugin = load()
    with Buffer(plugin, "scoped") as made:
        assert made.read() == "scoped"
        assert live(plugin) == 1
    assert made.closed
    assert live(plugin) == 0


def test_collected_handle_is_dropped_at_the_next_call(
    load: Callable[..., wasmplug.Plugin],
) -> None:
    """A handle garbage-collected while open is dropped in the guest at the plugin's
    next call (never from the collector itself)."""
    plugin = load()
    Buffer(plugin, "lost")  # no reference kept
    gc.collect()
    assert live(plugin) == 0


def test_wrong_handles_are_refused_before_wasm(load: Callable[..., wasmplug.Plugin]) -> None:
    """A handle of another plugin, a value of another type, or one handle both moved
    and lent in one call raises ArgumentError; nothing reaches either plugin."""
    first, second = load(name="first"), load(name="second")
    theirs = Buffer(first, "theirs")
    calls_before = second.last_call
    with pytest.raises(wasmplug.ArgumentError, match="another plugin"):
        second.call("text.measure", theirs)
    with pytest.raises(wasmplug.ArgumentError, match="Buffer handle"):
        second.call("text.measure", HostCounter(1))
    with pytest.raises(wasmplug.ArgumentError, match="Buffer handle"):
        second.call("text.measure", "text")
    assert second.last_call is calls_before
    with pytest.raises(wasmplug.ArgumentError, match="moved"):
        first.call("text.consume-lending", theirs, theirs)
    assert theirs.read() == "theirs"  # still open: nothing moved
    assert live(first) == 1
    assert live(second) == 0
    other = Buffer(first, "other")
    assert first.call("text.consume-lending", theirs, other) == "theirs+other"
    assert theirs.closed
    assert not other.closed


def test_handles_die_with_their_instance(load: Callable[..., wasmplug.Plugin]) -> None:
    """After a breach the plugin continues on a fresh instance; a handle from the old
    instance raises StaleHandleError and its close() leaves the new instance alone."""
    plugin = load(limits=wasmplug.Limits(fuel=50_000_000))
    old = Buffer(plugin, "old")
    with pytest.raises(wasmplug.FuelExhausted):
        plugin.call("burn", 10**12)
    with pytest.raises(wasmplug.StaleHandleError, match="replaced"):
        old.read()
    with pytest.raises(wasmplug.StaleHandleError):
        plugin.call("text.measure", old)
    fresh = Buffer(plugin, "new")
    assert live(plugin) == 1
    old.close()  # only forgets it
    assert old.closed
    assert live(plugin) == 1
    assert fresh.read() == "new"


def test_handles_of_a_closed_plugin(load: Callable[..., wasmplug.Plugin]) -> None:
    """Closing the plugin makes its handles unusable; closing them afterwards is a
    harmless no-op."""
    plugin = load()
    made = Buffer(plugin, "x")
    plugin.close()
    with pytest.raises(wasmplug.PluginClosedError):
        made.read()
    made.close()
    assert made.closed


# -- host-defined resources --------------------------------------------------------------


def test_host_resource_constructor_methods_and_destructor(
    load: Callable[..., wasmplug.Plugin],
) -> None:
    """The guest's ``[constructor]counter`` makes a host ``HostCounter``, its methods run
    on that object, and when the guest drops it ``close()`` runs once."""
    plugin = load()
    assert plugin.call("count-with-host", 5, [1, 2, 3]) == 11
    (counter,) = HostCounter.made
    assert counter.value_ == 11
    assert counter.closed == 1
    assert plugin.last_call is not None
    assert plugin.last_call.host_calls == 5


def test_host_resource_static_function(load: Callable[..., wasmplug.Plugin]) -> None:
    """A static function of a host resource calls the class's function; the object
    lent to it arrives as itself, the one it returns joins the table and is closed
    when the guest drops it. A host function may return a new object too."""
    plugin = load()
    assert plugin.call("double-new", 4) == 8
    lent, made = HostCounter.made
    assert (lent.value_, made.value_) == (4, 8)
    assert [c.closed for c in HostCounter.made] == [1, 1]
    assert plugin.call("copy-new", 5) == 5
    assert [c.closed for c in HostCounter.made] == [1, 1, 1, 1]


def test_two_lent_host_handles_trap_cleanly(load: Callable[..., wasmplug.Plugin]) -> None:
    """wasmtime 50 cannot lend two host handles to one host function (it traps with
    an internal error before the host is called): the call fails with a Trap that
    says so, every host object is closed, and the plugin continues. When this test
    fails, wasmtime has fixed it: drop the note in docs/types.md."""
    plugin = load()
    with pytest.raises(wasmplug.Trap, match="more than one handle") as info:
        plugin.call("pair-new", 2, 3)
    assert "deferred host scope" in info.value.detail
    assert [c.closed for c in HostCounter.made] == [1, 1]
    assert plugin.call("count-with-host", 1, [1]) == 2


def test_host_resource_kept_across_calls(load: Callable[..., wasmplug.Plugin]) -> None:
    """A host resource the guest keeps survives between calls, and is closed when the
    guest drops it."""
    plugin = load()
    assert plugin.call("bump-kept", 1) is None
    plugin.call("keep-counter", 10)
    assert plugin.call("bump-kept", 5) == 15
    assert plugin.call("bump-kept", 5) == 20
    (counter,) = HostCounter.made
    assert counter.closed == 0
    assert plugin.call("drop-kept") is True
    assert counter.closed == 1
    assert plugin.call("drop-kept") is False


def test_host_resources_closed_with_their_instance(
    load: Callable[..., wasmplug.Plugin],
) -> None:
    """When the instance is replaced (a breach) or the plugin closed, every host
    resource it held is closed; the fresh instance starts without them."""
    plugin = load(limits=wasmplug.Limits(fuel=50_000_000))
    plugin.call("keep-counter", 1)
    with pytest.raises(wasmplug.FuelExhausted):
        plugin.call("burn", 10**12)
    assert [c.closed for c in HostCounter.made] == [1]
    assert plugin.call("bump-kept", 1) is None  # the fresh instance has none
    plugin.call("keep-counter", 2)
    plugin.close()
    assert [c.closed for c in HostCounter.made] == [1, 1]


def test_host_resource_lent_or_given_to_the_host(load: Callable[..., wasmplug.Plugin]) -> None:
    """A host resource passed back to a host function arrives as the Python object:
    lent (``borrow``) it stays the guest's; given (``own``) it leaves the table and
    wasmplug does not close it (the host owns it again)."""
    store = HostStore()
    plugin = load({"host-store": store})
    assert plugin.call("describe-new", 7) == "counter at 7"
    assert store.described == [HostCounter.made[0]]
    assert HostCounter.made[0].closed == 1  # the guest dropped it after lending it
    assert plugin.call("absorb-new", 8) == 8
    assert store.absorbed == [HostCounter.made[1]]
    assert HostCounter.made[1].closed == 0
    plugin.close()
    assert HostCounter.made[1].closed == 0


def test_host_resource_by_mapping_key(load: Callable[..., wasmplug.Plugin]) -> None:
    """An implementation given as a mapping names the resource's class by its WIT
    name."""
    plugin = load({"host-store": {"counter": HostCounter, **FUNCTIONS}})
    assert plugin.call("count-with-host", 1, [1]) == 2


def test_missing_resource_class_is_a_link_error(load: Callable[..., wasmplug.Plugin]) -> None:
    """An implementation without the resource's class, or whose class lacks a method,
    fails at load with LinkError naming it."""

    class NoClass(HostStore):
        Counter = None  # type: ignore[assignment]

    with pytest.raises(wasmplug.LinkError, match="no class for resource counter"):
        load({"host-store": NoClass()})

    class Partial:
        def __init__(self, start: int) -> None:
            pass

        def add(self, n: int) -> int:
            return n

    with pytest.raises(wasmplug.LinkError, match=r"no method value\(\)"):
        load({"host-store": {"counter": Partial, **FUNCTIONS}})


def test_host_resource_exceptions(load: Callable[..., wasmplug.Plugin]) -> None:
    """An exception in a host resource's constructor, method or ``close()`` fails the
    call with HostFunctionError caused by it; the plugin continues."""

    class Failing(HostCounter):
        def __init__(self, start: int) -> None:
            if start == 66:
                raise KeyError(start)
            super().__init__(start)

        def add(self, n: int) -> int:
            if n == 13:
                raise ValueError("unlucky")
            return super().add(n)

        def close(self) -> None:
            super().close()
            if self.value_ == 99:
                raise OSError("cannot close")

    store = HostStore()
    store.Counter = Failing
    plugin = load({"host-store": store})
    with pytest.raises(wasmplug.HostFunctionError) as info:
        plugin.call("count-with-host", 0, [13])
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.host_function == f"{STORE}#[method]counter.add"
    with pytest.raises(wasmplug.HostFunctionError) as info:
        plugin.call("count-with-host", 99, [])
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.host_function == f"{STORE}#[resource-drop]counter"
    with pytest.raises(wasmplug.HostFunctionError) as info:
        plugin.call("count-with-host", 66, [])
    assert isinstance(info.value.__cause__, KeyError)
    assert info.value.host_function == f"{STORE}#[constructor]counter"
    assert plugin.call("count-with-host", 1, [2]) == 3


def test_handle_table_limit(load: Callable[..., wasmplug.Plugin]) -> None:
    """An instance holds at most ``Limits.resource_handles`` host resources; one more
    fails the call with HandleLimitExceeded, the instance is replaced and everything
    it held is closed."""
    plugin = load(limits=wasmplug.Limits(resource_handles=3))
    assert plugin.call("hold-counters", 2) == 2
    with pytest.raises(wasmplug.HandleLimitExceeded) as info:
        plugin.call("hold-counters", 2)
    error = info.value
    assert isinstance(error, wasmplug.LimitExceeded)
    assert error.limit == "resource_handles"
    assert error.allowed == 3
    assert [c.closed for c in HostCounter.made] == [1, 1, 1]  # the fourth was refused
    assert plugin.call("hold-counters", 3) == 3  # a fresh instance, an empty table


def test_unknown_rep_is_a_typed_error() -> None:
    """A handle whose rep is not in the instance's table (forged, or stale) is a
    StaleHandleError, not a crash; the table refuses entries past its limit."""
    table = _component._HostTable(1)
    rep = table.add(1, "obj")
    assert table.get(rep, 1, "counter") == "obj"
    with pytest.raises(wasmplug.StaleHandleError):
        table.get(rep + 1, 1, "counter")
    with pytest.raises(wasmplug.StaleHandleError):
        table.get(rep, 2, "other")  # right rep, another resource type
    with pytest.raises(_sandbox._TableFull):
        table.add(1, "more")
    assert table.get(rep, 1, "counter", remove=True) == "obj"
    with pytest.raises(wasmplug.StaleHandleError):
        table.get(rep, 1, "counter")


# -- worlds and policy ---------------------------------------------------------------------


def test_unrelated_world_is_unaffected() -> None:
    """A world of the same package that uses no resource loads as before: no handle
    classes, no host resources."""
    plain = wasmplug.load_world(FIXTURES / "resources" / "wit", "plain")
    assert list(plain.exports) == ["inc"]
    assert plain.host_resources == []
    assert list(plain.types) == []


def test_resource_handles_limit_is_validated() -> None:
    """``Limits.resource_handles`` is a positive int, kept by the policy's dict form."""
    with pytest.raises(wasmplug.PolicyError):
        wasmplug.Limits(resource_handles=0)
    policy = wasmplug.Policy(limits=wasmplug.Limits(resource_handles=7))
    assert wasmplug.Policy.from_dict(policy.to_dict()) == policy
