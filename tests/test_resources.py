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
from wasmplug import _resources, _sandbox

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
def load(plugin_dir: Path, engine: wasmplug.Engine) -> Iterator[Callable[..., wasmplug.Plugin]]:
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
            plugin_dir / "resources.wasm",
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
    fails, wasmtime has fixed it: drop the note in docs/types.md. The fast path keeps
    the handle table itself and lends both."""
    plugin = load()
    if plugin.kind == "core-module":
        assert plugin.call("pair-new", 2, 3) == 5
    else:
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


def test_fast_path_table_counts_the_guests_own_handles(
    load: Callable[..., wasmplug.Plugin],
) -> None:
    """On the fast path the instance's one handle table also holds the guest's
    handles to its own resources (``[resource-new]``), so a guest that fills it with
    host counters cannot make a buffer either; on the component path wasmtime keeps
    those handles apart. A buffer handed to the host leaves the table."""
    plugin = load(limits=wasmplug.Limits(resource_handles=2))
    with Buffer(plugin, "a") as a, Buffer(plugin, "b") as b:  # held by the host only
        assert plugin.call("hold-counters", 2) == 2
        assert a.read() + b.read() == "ab"
        if plugin.kind == "core-module":
            with pytest.raises(wasmplug.HandleLimitExceeded, match="resource-new"):
                Buffer(plugin, "c")
            with pytest.raises(wasmplug.StaleHandleError, match="replaced"):
                a.read()  # the instance went with the failed call
            assert plugin.call("hold-counters", 2) == 2  # a fresh, empty table
        else:
            with Buffer(plugin, "c") as c:
                assert c.read() == "c"


def test_unknown_rep_is_a_typed_error() -> None:
    """A handle whose rep is not in the instance's table (forged, or stale) is a
    StaleHandleError, not a crash; the table refuses entries past its limit."""
    table = _resources.HandleTable(1)
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


# -- host resources passed into exports (interface ledger) -------------------------------


def test_host_resource_lent_to_an_export(load: Callable[..., wasmplug.Plugin]) -> None:
    """A host object passed to a ``borrow<counter>`` parameter of an export is lent for
    the call: the guest's methods run on it, it stays the host's (never closed), and
    it leaves the instance's handle table when the call returns (a table of two
    entries takes any number of such calls)."""
    plugin = load(limits=wasmplug.Limits(resource_handles=2))
    counter = HostCounter(3)
    for _ in range(3):
        assert plugin.call("ledger.peek", counter) == 3
    forked = plugin.call("ledger.fork", counter, 4)
    assert counter.value_ == 7  # the guest's add ran on the host's object
    assert isinstance(forked, HostCounter)
    assert forked is not counter
    assert forked.value_ == 7
    assert [c.closed for c in HostCounter.made] == [0, 0]
    plugin.close()
    assert [c.closed for c in HostCounter.made] == [0, 0]  # neither was the guest's


def test_host_resource_given_to_an_export(load: Callable[..., wasmplug.Plugin]) -> None:
    """A host object passed to an ``own<counter>`` parameter is given to the guest:
    when the guest drops it, its ``close()`` runs; when the guest returns it, the host
    gets the very same object back, open, and the table no longer holds it."""
    plugin = load(limits=wasmplug.Limits(resource_handles=1))
    spent = HostCounter(3)
    assert plugin.call("ledger.spend", spent, 2) == 5
    assert spent.closed == 1
    kept = HostCounter(10)
    back = plugin.call("ledger.bump", kept, 5)
    assert back is kept
    assert kept.value_ == 15
    assert kept.closed == 0
    assert plugin.call("ledger.peek", HostCounter(1)) == 1  # the table is empty again
    assert plugin.call("ledger.make", 0) is None
    made = plugin.call("ledger.make", 6)
    assert isinstance(made, HostCounter)
    assert (made.value_, made.closed) == (6, 0)
    assert plugin.call("ledger.spend", made, 1) == 7  # a guest-made object goes back in
    assert made.closed == 1


def test_host_resource_arguments_with_an_instance_per_call(
    plugin_dir: Path, engine: wasmplug.Engine
) -> None:
    """With ``Policy.instance_per_call`` the host objects go to the call's own fresh
    instance (its instantiation counted in the call's stats), and what the guest
    returns comes back from it."""
    with wasmplug.load(
        plugin_dir / "resources.wasm",
        world=WORLD,
        policy=wasmplug.Policy(instance_per_call=True),
        engine=engine,
        imports={"host-store": HostStore()},
    ) as plugin:
        counter = HostCounter(1)
        assert plugin.call("ledger.peek", counter) == 1  # on the instance made at load
        first = plugin.last_call
        assert first is not None
        for _ in range(2):
            assert plugin.call("ledger.peek", counter) == 1
            stats = plugin.last_call
            assert stats is not None
            assert stats.fresh_instance
            if plugin.kind == "component":  # its start-up code burns fuel
                assert stats.fuel_consumed > first.fuel_consumed  # instantiation included
            else:
                assert stats.fuel_consumed >= first.fuel_consumed
        assert plugin.call("ledger.bump", counter, 2) is counter
        assert counter.value_ == 3
        assert counter.closed == 0
        given = HostCounter(5)
        plugin.call("ledger.keep", given)
        assert plugin.call("bump-kept", 1) is None  # that instance is gone
        assert given.closed == 1  # closed with it


def test_several_host_resources_in_one_call(load: Callable[..., wasmplug.Plugin]) -> None:
    """Unlike host functions, an export takes several lent host objects (even one
    object lent twice) and lists of given ones (each closed when the guest drops it);
    an object given (own) and passed again in the same call is an ArgumentError, and
    nothing stays in the table."""
    plugin = load(limits=wasmplug.Limits(resource_handles=3))
    a, b = HostCounter(2), HostCounter(3)
    assert plugin.call("ledger.sum", a, b) == 5
    assert plugin.call("ledger.sum", a, a) == 4
    assert plugin.call("ledger.total", [a, b, HostCounter(4)]) == 9
    assert [c.closed for c in HostCounter.made] == [1, 1, 1]
    assert plugin.call("ledger.total", []) == 0
    again = HostCounter(5)
    with pytest.raises(wasmplug.ArgumentError, match=r"ledger\.total\(cs\)\[1\]: .* passed once"):
        plugin.call("ledger.total", [again, again])
    assert again.closed == 0
    assert plugin.call("ledger.total", [again, HostCounter(1), HostCounter(1)]) == 7


def test_host_resource_given_and_kept_by_the_guest(load: Callable[..., wasmplug.Plugin]) -> None:
    """A host object the guest keeps across calls stays open while the guest holds it
    and is closed when the guest drops it, or when the plugin closes."""
    plugin = load()
    first, second = HostCounter(1), HostCounter(2)
    plugin.call("ledger.keep", first)
    assert plugin.call("bump-kept", 4) == 5
    assert first.value_ == 5
    assert first.closed == 0
    plugin.call("ledger.keep", second)  # the guest drops the first one
    assert (first.closed, second.closed) == (1, 0)
    plugin.close()
    assert second.closed == 1


def test_lent_host_resource_survives_a_failed_call(load: Callable[..., wasmplug.Plugin]) -> None:
    """When a call that borrowed a host object fails (here a host method returns a
    value past ``u32``), the instance is replaced and what the guest held is closed,
    but the lent object is not: it is still the host's."""
    plugin = load()
    given, lent = HostCounter(1), HostCounter(1)
    plugin.call("ledger.keep", given)
    with pytest.raises(wasmplug.HostFunctionError, match=r"\[method\]counter\.add"):
        plugin.call("ledger.fork", lent, 2**32 - 1)
    assert (given.closed, lent.closed) == (1, 0)
    assert lent.value_ == 2**32  # the add ran; its result did not fit
    lent.value_ = 9
    assert plugin.call("ledger.peek", lent) == 9  # still usable, on the fresh instance


def test_bad_host_resource_arguments_leave_nothing_behind(
    load: Callable[..., wasmplug.Plugin],
) -> None:
    """An argument that is not the host's class, or a bad argument after a host object,
    is an ArgumentError before anything runs: the host object is neither closed nor
    left in the table; a prepared call checks at each call."""
    plugin = load(limits=wasmplug.Limits(resource_handles=1))
    with pytest.raises(wasmplug.ArgumentError, match=r"ledger\.peek\(c\): expected a HostCounter"):
        plugin.call("ledger.peek", "counter")
    counter = HostCounter(3)
    with pytest.raises(wasmplug.ArgumentError, match=r"ledger\.spend\(n\)"):
        plugin.call("ledger.spend", counter, -1)
    assert counter.closed == 0
    assert plugin.call("ledger.peek", HostCounter(2)) == 2  # the table is empty
    prepared = plugin.world.prepare("ledger.peek", counter)
    assert plugin.call_prepared(prepared) == 3
    assert plugin.call_prepared(prepared) == 3
    with pytest.raises(wasmplug.ArgumentError):
        plugin.call_prepared(plugin.world.prepare("ledger.peek", 3))


def test_host_resource_arguments_count_against_the_table(
    load: Callable[..., wasmplug.Plugin],
) -> None:
    """A host object passed in when the instance's table is full is refused with
    HandleLimitExceeded before the call runs; the instance and what it holds stay."""
    plugin = load(limits=wasmplug.Limits(resource_handles=1))
    kept, refused = HostCounter(1), HostCounter(2)
    plugin.call("ledger.keep", kept)
    with pytest.raises(wasmplug.HandleLimitExceeded) as info:
        plugin.call("ledger.peek", refused)
    assert (info.value.limit, info.value.allowed) == ("resource_handles", 1)
    assert info.value.function == "ledger.peek"
    assert (kept.closed, refused.closed) == (0, 0)
    assert plugin.call("bump-kept", 1) == 2  # the same instance, still holding it
    assert plugin.audit_counts["breach:resource_handles"] == 1


def test_host_resource_of_another_class_or_plugin(load: Callable[..., wasmplug.Plugin]) -> None:
    """Each plugin checks host objects against its own class for the resource; an
    object of the class works with any plugin that has that class."""

    class OtherCounter(HostCounter):
        pass

    store = HostStore()
    store.Counter = OtherCounter
    first, second = load(), load({"host-store": store}, name="second")
    shared = OtherCounter(4)  # also a HostCounter
    assert first.call("ledger.peek", shared) == 4
    assert second.call("ledger.peek", shared) == 4
    with pytest.raises(wasmplug.ArgumentError, match="expected a OtherCounter"):
        second.call("ledger.peek", HostCounter(1))


# -- a guest resource made only by a factory function (no constructor) -------------------

Cursor = WORLD.types.Cursor


def test_factory_made_resource(load: Callable[..., wasmplug.Plugin]) -> None:
    """A resource without a constructor gets a handle class whose handles come only from
    the functions returning one; its methods work, and close() runs the destructor."""
    plugin = load()
    assert issubclass(Cursor, wasmplug.ResourceHandle)
    assert "text.[constructor]cursor" not in plugin.world.exports
    with pytest.raises(TypeError, match=r"resource cursor of .* has no constructor"):
        Cursor(plugin)
    cursor = plugin.call("text.words", "one two  three")
    assert type(cursor) is Cursor
    assert cursor.remaining() == 3
    assert [cursor.next(), cursor.next()] == ["one", "two"]
    other = plugin.call("text.words", "x")
    assert plugin.call("text.live-cursors") == 2
    assert cursor.next() == "three"
    assert cursor.next() is None
    cursor.close()
    assert plugin.call("text.live-cursors") == 1
    with pytest.raises(wasmplug.StaleHandleError, match=r"Cursor handle .* cannot call next"):
        cursor.next()
    with other:
        assert other.next() == "x"
    assert plugin.call("text.live-cursors") == 0


def test_factory_made_resource_goes_with_its_instance(
    load: Callable[..., wasmplug.Plugin],
) -> None:
    """A factory-made handle of a replaced instance is stale; one of a closed plugin
    raises PluginClosedError; close() on either is harmless."""
    plugin = load(limits=wasmplug.Limits(fuel=50_000_000))
    cursor = plugin.call("text.words", "a b")
    with pytest.raises(wasmplug.FuelExhausted):
        plugin.call("burn", 10**12)
    with pytest.raises(wasmplug.StaleHandleError, match="replaced"):
        cursor.remaining()
    cursor.close()
    fresh = plugin.call("text.words", "c")
    assert plugin.call("text.live-cursors") == 1
    plugin.close()
    with pytest.raises(wasmplug.PluginClosedError):
        fresh.next()
    fresh.close()
    assert fresh.closed


# -- worlds and policy ---------------------------------------------------------------------


class HostMath:
    """The host's side of ``wasmplug-tests:mirror/math``."""

    def inc(self, x: int) -> int:
        return x + 1

    def total(self, xs: list[int]) -> int:
        return sum(xs)


def test_one_interface_imported_and_exported(plugin_dir: Path, engine: wasmplug.Engine) -> None:
    """A world may import and export the same interface (``tests/fixtures/mirror``):
    ``imports={"math": ...}`` is the host's side, ``plugin.call("math.inc")`` the
    plugin's, which calls the host's and adds 100 (1000 for ``total``)."""
    world = fixture_world("mirror")
    key = "wasmplug-tests:mirror/math@0.1.0"
    assert key in world.wit.imports
    assert key in world.wit.exports
    assert sorted(world.exports) == ["math.inc", "math.total"]
    with wasmplug.load(
        plugin_dir / "mirror.wasm", world=world, engine=engine, imports={"math": HostMath()}
    ) as plugin:
        assert plugin.call("math.inc", 1) == 102
        assert plugin.call("math.total", [1, 2, 3]) == 1006
        assert plugin.last_call is not None
        assert plugin.last_call.host_calls == 1
    with pytest.raises(wasmplug.LinkError, match="math"):
        wasmplug.load(plugin_dir / "mirror.wasm", world=world, engine=engine)


BOTH_SIDES = """
package t:both@0.1.0;

interface text {
    resource buffer {
        constructor(s: string);
        read: func() -> string;
    }
    measure: func(b: borrow<buffer>) -> u32;
}

world both {
    import text;
    export text;
}
"""


def test_resource_interface_on_both_sides_is_refused(tmp_path: Path) -> None:
    """A resource whose interface the world both imports and exports would have a host
    side and a plugin side under one name: loading the world, and generating bindings
    for it, fail with a WitError that names the resource, the world and what to do."""
    wit = tmp_path / "both.wit"
    wit.write_text(BOTH_SIDES, encoding="utf-8")
    expected = (
        r"resource buffer of t:both/text@0\.1\.0 is both imported .* and exported .* by "
        r"world t:both/both@0\.1\.0; .* only imports or only exports"
    )
    with pytest.raises(wasmplug.WitError, match=expected):
        wasmplug.load_world(wit, "both")
    with pytest.raises(wasmplug.WitError, match=expected):
        wasmplug.generate_bindings(wit, "both")


def test_unrelated_world_is_unaffected() -> None:
    """A world of the same package that uses no resource loads as before: no handle
    classes, no host resources."""
    plain = wasmplug.load_world(FIXTURES / "resources" / "wit", "plain")
    assert list(plain.exports) == ["inc"]
    assert plain.host_resources == []
    assert list(plain.types) == []


def test_fast_path_passes_resources(core_dir: Path, engine: wasmplug.Engine) -> None:
    """The core module built from the same sources loads on the fast path, and handles
    go both ways there (the tests above run on both backends)."""
    with wasmplug.load(
        core_dir / "resources.wasm",
        world=WORLD,
        engine=engine,
        imports={"host-store": HostStore()},
    ) as plugin:
        assert plugin.kind == "core-module"
        assert "[export]" not in " ".join(plugin.imports)
        with Buffer(plugin, "fast") as buf:
            assert buf.read() == "fast"
        assert plugin.call("count-with-host", 1, [2, 3]) == 6


class _Token:
    """The host's ``vault.token`` of the forger fixture."""

    def __init__(self, n: int) -> None:
        self.n = n

    def value(self) -> int:
        return self.n


class _Vault:
    Token = _Token


@pytest.mark.parametrize(
    ("function", "handle"),
    [
        ("token-value", 0),  # a host resource's method, handle 0 (never valid)
        ("token-value", 7),  # one the instance never had
        ("made.read", 9),  # [resource-rep] of an exported resource
        ("made.give", 3),  # an own<thing> result the guest does not hold
    ],
)
def test_forged_handles_are_typed_errors(
    plugin_dir: Path, engine: wasmplug.Engine, function: str, handle: int
) -> None:
    """A guest that uses a handle it does not hold (``tests/fixtures/forger``) fails
    the call with a Trap before anything uses the handle: on the fast path an
    InvalidGuestValue naming the handle, on the component path wasmtime's check.
    No host object is touched and the plugin continues on a fresh instance."""
    world = fixture_world("forger")
    with wasmplug.load(
        plugin_dir / "forger.wasm", world=world, engine=engine, imports={"vault": _Vault()}
    ) as plugin:
        assert plugin.call("token-round-trip", 4) == 4
        with pytest.raises(wasmplug.Trap) as info:
            plugin.call(function, handle)
        if plugin.kind == "core-module":
            assert isinstance(info.value, wasmplug.InvalidGuestValue)
            assert f"(handle {handle}) that is not in its instance's handle table" in str(
                info.value
            )
        else:
            assert f"unknown handle index {handle}" in str(info.value)
        assert plugin.call("token-round-trip", 5) == 5
        with world.types.Thing(plugin, 3) as thing:
            assert thing.value() == 3


def test_resource_handles_limit_is_validated() -> None:
    """``Limits.resource_handles`` is a positive int, kept by the policy's dict form."""
    with pytest.raises(wasmplug.PolicyError):
        wasmplug.Limits(resource_handles=0)
    policy = wasmplug.Policy(limits=wasmplug.Limits(resource_handles=7))
    assert wasmplug.Policy.from_dict(policy.to_dict()) == policy
