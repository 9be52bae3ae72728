"""The engine's deadline clock: the epoch ticker parks when no deadline is pending,
wakes for the next one and still stops a runaway guest on time, pays back epochs it
missed while it was starved of the GIL, and stops with the engine."""

from __future__ import annotations

import gc
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import wasmplug
from conftest import fixture_world
from wasmplug._engine import UNBOUNDED_TICKS, EpochClock


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Polls ``condition`` until it holds or ``timeout_s`` passes (generous: the
    machine may be loaded)."""
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


def ticker_of(engine: wasmplug.Engine) -> threading.Thread:
    thread = engine._ticker
    assert thread.name == "wasmplug-epoch"
    return thread


@pytest.fixture
def engine() -> Iterator[wasmplug.Engine]:
    """A private engine, so that no other test's calls keep its ticker running."""
    engine = wasmplug.Engine(cache_dir=None)
    yield engine
    engine.close()


@pytest.fixture
def hostile(wasm_dir: Path, engine: wasmplug.Engine) -> Callable[..., wasmplug.Plugin]:
    def load(**limits: object) -> wasmplug.Plugin:
        policy = wasmplug.Policy(limits=wasmplug.Limits(**limits))  # type: ignore[arg-type]
        return wasmplug.load(
            wasm_dir / "hostile.wasm",
            world=fixture_world("hostile"),
            policy=policy,
            engine=engine,
            name="hostile",
        )

    return load


def test_ticker_parks_until_a_deadline_is_requested(
    engine: wasmplug.Engine, hostile: Callable[..., wasmplug.Plugin]
) -> None:
    """A new engine's ticker is parked and adds no epochs; a call wakes it, and once
    the call's deadline has passed it parks again and stops adding epochs."""
    clock = engine.epoch_clock
    assert clock.parked
    time.sleep(0.05)
    assert clock.parked
    assert clock.ticks == 0
    assert clock.parks == 0
    plugin = hostile(deadline_ms=50)  # instantiation runs under the deadline too
    assert wait_for(lambda: clock.parked)
    idle_ticks, parks = clock.ticks, clock.parks
    time.sleep(0.1)
    assert clock.ticks == idle_ticks
    assert clock.lag() == 0
    assert plugin.call("bump") == 1
    assert wait_for(lambda: clock.ticks > idle_ticks)  # woken by the call's deadline
    assert wait_for(lambda: clock.parked and clock.parks > parks)  # parked again after it
    ticks = clock.ticks
    assert ticks >= idle_ticks + 50  # it ran at least until the 50 ms deadline passed
    time.sleep(0.1)
    assert clock.parked
    assert clock.ticks == ticks


def test_no_deadline_does_not_wake_the_ticker(engine: wasmplug.Engine) -> None:
    """A call without a deadline (Limits(deadline_ms=None)) needs no epochs: the
    relative deadline is passed through and the ticker stays parked."""
    clock = engine.epoch_clock
    assert clock.deadline(UNBOUNDED_TICKS) == UNBOUNDED_TICKS
    time.sleep(0.05)
    assert clock.parked
    assert clock.ticks == 0


def test_parked_ticker_wakes_and_stops_an_endless_loop(
    engine: wasmplug.Engine, hostile: Callable[..., wasmplug.Plugin]
) -> None:
    """After the ticker has parked, a runaway guest is still stopped by its deadline,
    no earlier than the deadline and well before a generous bound."""
    clock = engine.epoch_clock
    plugin = hostile(fuel=None, deadline_ms=50)
    assert plugin.call("bump") == 1
    assert wait_for(lambda: clock.parks >= 1 and clock.parked)
    for _ in range(3):
        start = time.perf_counter()
        with pytest.raises(wasmplug.DeadlineExceeded):
            plugin.call("spin")
        elapsed_ms = (time.perf_counter() - start) * 1000
        assert 45 <= elapsed_ms < 5_000
        assert wait_for(lambda: clock.parked)  # parks again between the calls
    assert clock.parks >= 4


def test_short_deadline_shortens_the_step(engine: wasmplug.Engine) -> None:
    """The running ticker wakes every twentieth of the shortest deadline requested,
    between one epoch and 10 ms."""
    clock = engine.epoch_clock
    clock.deadline(60_000)
    assert clock.step == 10
    clock.deadline(100)
    assert clock.step == 5
    clock.deadline(10)
    assert clock.step == 1
    clock.deadline(60_000)
    assert clock.step == 1  # until it parks again


def test_epochs_missed_while_starved_are_paid_and_owed_epochs_extend_a_deadline(
    engine: wasmplug.Engine,
) -> None:
    """While this thread holds the GIL the ticker cannot run; a deadline set then
    adds the epochs owed (it is not shortened when they are paid), and the ticker pays
    them all at its next wake-up (catch-up), so epochs track wall-clock time."""
    clock = engine.epoch_clock
    clock.deadline(10_000)  # keeps the ticker running for 10 s
    assert wait_for(lambda: not clock.parked and clock.ticks > 0)
    before = clock.ticks
    switch = sys.getswitchinterval()
    sys.setswitchinterval(5.0)  # nothing takes the GIL from this thread for 5 s
    try:
        start = time.monotonic()
        while time.monotonic() - start < 0.3:  # busy in Python, holding the GIL
            pass
        owed = clock.lag()
        relative = clock.deadline(100)
    finally:
        sys.setswitchinterval(switch)
    # Starved for most of the 300 ms (one wake-up may have slipped in at the start).
    assert owed >= 100
    assert relative >= 100 + owed
    assert wait_for(lambda: clock.ticks >= before + 300)  # caught up with wall time


def test_close_stops_the_ticker(engine: wasmplug.Engine) -> None:
    """close() ends the ticker thread, parked or running; close() is idempotent."""
    thread = ticker_of(engine)
    assert engine.epoch_clock.parked
    engine.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    engine.close()

    running = wasmplug.Engine(cache_dir=None)
    running.epoch_clock.deadline(10_000)
    assert wait_for(lambda: running.epoch_clock.ticks > 0)
    thread = ticker_of(running)
    running.close()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_dropping_the_engine_stops_the_ticker() -> None:
    """A parked ticker holds no reference to its engine, and ends when the engine is
    garbage collected."""
    engine = wasmplug.Engine(cache_dir=None)
    thread, ref = ticker_of(engine), weakref.ref(engine)
    del engine
    gc.collect()
    assert ref() is None
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_clock_unit_without_ticker() -> None:
    """An EpochClock nobody ticks: a deadline request leaves it unparked, returns the
    requested epochs (nothing owed right after waking), and stop() is idempotent."""
    clock = EpochClock(0.001)
    assert clock.parked
    assert clock.lag() == 0
    assert clock.deadline(100) in (100, 101)
    assert not clock.parked
    clock.stop()
    clock.stop()


# -- the memory reservation ----------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, 1000, 65536 + 1, -65536, True, 1.5])
def test_memory_reservation_must_be_whole_pages(bad: object) -> None:
    with pytest.raises(wasmplug.PolicyError, match="memory_reservation_bytes must be"):
        wasmplug.Engine(cache_dir=None, memory_reservation_bytes=bad)  # type: ignore[arg-type]


def address_space() -> int:
    """The process's virtual memory size, bytes (``VmSize`` of ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize in /proc/self/status")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_a_smaller_reservation_holds_the_limits_and_saves_address_space(
    plugin_dir: Path,
) -> None:
    """Under a 16 MiB reservation a plugin still runs, and its memory bomb still ends
    as the breach of its 8 MiB limit; each live instance reserves far less address
    space than under wasmtime's default of 4 GiB; a limit the reservation cannot hold
    is refused at load, naming the plugin."""
    world = fixture_world("hostile")
    small = wasmplug.Engine(cache_dir=None, memory_reservation_bytes=16 << 20)
    default = wasmplug.Engine(cache_dir=None)
    limits = wasmplug.Limits(memory_bytes=8 << 20)

    def load_many(engine: wasmplug.Engine, n: int) -> tuple[list[wasmplug.Plugin], int]:
        gc.collect()
        before = address_space()
        plugins = [
            wasmplug.load(
                plugin_dir / "hostile.wasm",
                world=world,
                policy=wasmplug.Policy(limits=limits),
                engine=engine,
                name=f"tenant-{i}",
            )
            for i in range(n)
        ]
        for p in plugins:
            assert p.call("bump") == 1  # a live instance
        return plugins, (address_space() - before) // n

    try:
        plugins, per_small = load_many(small, 20)
        e = plugins[0]
        with pytest.raises(wasmplug.MemoryLimitExceeded) as info:
            e.call("grow", 0)
        assert info.value.allowed == 8 << 20
        assert e.call("bump") == 1  # a fresh instance after the breach
        for p in plugins:
            p.close()
        plugins, per_default = load_many(default, 20)
        for p in plugins:
            p.close()
        # 4 GiB and 16 MiB reserved per memory (plus guard pages); the process's other
        # mappings come and go meanwhile (freed plugins, the allocator), hence margins.
        assert per_default > 2 << 30, per_default
        assert per_small < 256 << 20, per_small
        for memory_bytes in (None, 32 << 20):
            with pytest.raises(wasmplug.PolicyError, match="memory_reservation_bytes") as refused:
                wasmplug.load(
                    plugin_dir / "hostile.wasm",
                    world=world,
                    policy=wasmplug.Policy(limits=wasmplug.Limits(memory_bytes=memory_bytes)),
                    engine=small,
                    name="too-big",
                )
            assert refused.value.plugin == "too-big"
    finally:
        small.close()
        default.close()


# -- live instances bounded by the engine's LRU -------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, True, 2.0])
def test_max_live_instances_must_be_positive(bad: object) -> None:
    with pytest.raises(wasmplug.PolicyError, match="max_live_instances must be"):
        wasmplug.Engine(cache_dir=None, max_live_instances=bad)  # type: ignore[arg-type]


def test_least_recently_used_instances_are_dropped(plugin_dir: Path) -> None:
    """With room for 3 live instances, 5 tenants keep working: the 3 used last keep
    their guest memory (``bump`` counts on), the others get a fresh instance at their
    next call (the count starts over), and the memory comes back when they are used."""
    engine = wasmplug.Engine(cache_dir=None, max_live_instances=3)
    world = fixture_world("hostile")
    try:
        tenants = [
            wasmplug.load(plugin_dir / "hostile.wasm", world=world, engine=engine, name=f"t{i}")
            for i in range(5)
        ]
        assert [t.call("bump") for t in tenants] == [1, 1, 1, 1, 1]
        # t2, t3, t4 were used last: live; t0 and t1 lost their instances.
        assert [t.call("bump") for t in tenants[2:]] == [2, 2, 2]
        assert tenants[4].last_call is not None
        assert not tenants[4].last_call.fresh_instance
        assert tenants[0].call("bump") == 1
        assert tenants[0].last_call is not None
        assert tenants[0].last_call.fresh_instance
        # Using t0 evicted the least recently used of t2..t4: t2.
        assert tenants[3].call("bump") == 3
        assert tenants[4].call("bump") == 3
        assert tenants[2].call("bump") == 1
        for t in tenants:
            t.close()
    finally:
        engine.close()


def test_checks_are_kept_per_compilation_and_world(engine: wasmplug.Engine) -> None:
    """A backend's check of a compiled artifact against a world runs once per pair,
    and its result goes with either of them (weakly kept, never found by a reused id)."""

    class Thing:
        pass

    artifact, world, other_world = Thing(), Thing(), Thing()
    runs: list[object] = []

    def check() -> tuple[int]:
        runs.append(None)
        return (len(runs),)

    assert engine.checked(artifact, world, check) == (1,)
    assert engine.checked(artifact, world, check) == (1,)
    assert engine.checked(artifact, other_world, check) == (2,)
    gone = weakref.ref(artifact)
    del artifact
    gc.collect()
    assert gone() is None
    fresh = Thing()
    assert engine.checked(fresh, world, check) == (3,)


def test_loading_again_reuses_the_check(
    plugin_dir: Path, engine: wasmplug.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second plugin of one compiled artifact and world is not checked again."""
    world = wasmplug.load_world(Path(__file__).parent / "fixtures" / "typetest" / "wit", "typetest")
    seen: list[object] = []
    real = engine.checked

    def counting(artifact: object, w: object, check: Callable[[], object]) -> object:
        def counted() -> object:
            seen.append(artifact)
            return check()

        return real(artifact, w, counted)

    monkeypatch.setattr(engine, "checked", counting)
    first = wasmplug.load(plugin_dir / "typetest.wasm", world=world, engine=engine)
    second = wasmplug.load(plugin_dir / "typetest.wasm", world=world, engine=engine)
    try:
        assert len(seen) == 1
        assert second.call("add", 2, 3) == first.call("add", 2, 3) == 5
    finally:
        first.close()
        second.close()
