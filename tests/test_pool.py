"""Pools of instances (``wasmplug.load_pool``): concurrent calls from threads and
asyncio tasks on both backends, never two calls on one Store, state never shared
between instances, and a breach in one instance leaving the others serving."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import wasmplug
from conftest import fixture_world


@pytest.fixture(scope="module")
def world() -> wasmplug.World:
    return fixture_world("hostile")


def assert_per_instance_counters(results: list[int], size: int) -> None:
    """``bump`` counts calls in each instance's own memory: the results must be the
    union of 1..k for at most ``size`` instances, so value v appears once per instance
    that reached it (never more often than there are instances, never more often than
    a smaller value): two threads in one Store, or state seen by another instance,
    would break that."""
    counts = Counter(results)
    assert max(counts.values()) <= size
    values = sorted(counts)
    assert values[0] == 1
    for smaller, larger in itertools.pairwise(values):
        assert larger == smaller + 1
        assert counts[larger] <= counts[smaller]


def test_threads_share_a_pool(plugin_dir: Path, world: wasmplug.World, engine: Any) -> None:
    """8 threads x 1,000 calls on a pool of 4: every call answered, no corruption."""
    with wasmplug.load_pool(
        plugin_dir / "hostile.wasm", world=world, engine=engine, size=4
    ) as pool:
        assert pool.name == "hostile"  # the file's stem, as load() names it
        results: list[int] = []
        lock = threading.Lock()

        def work() -> None:
            mine = [pool.call("bump") for _ in range(1_000)]
            with lock:
                results.extend(mine)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 8_000
        assert_per_instance_counters(results, 4)
        calls = [p.call("bump") - 1 for p in pool.plugins]
        assert sum(calls) == 8_000  # every call ran on exactly one instance


def test_asyncio_shares_a_pool(plugin_dir: Path, world: wasmplug.World, engine: Any) -> None:
    """The same under asyncio: acall runs off the event loop, at most `size` at once."""

    async def main() -> list[int]:
        with wasmplug.load_pool(
            plugin_dir / "hostile.wasm", world=world, engine=engine, size=3
        ) as pool:
            return list(await asyncio.gather(*(pool.acall("bump") for _ in range(600))))

    results = asyncio.run(main())
    assert len(results) == 600
    assert_per_instance_counters(results, 3)


def test_a_breach_leaves_the_other_instances_serving(
    plugin_dir: Path, world: wasmplug.World, engine: Any
) -> None:
    """One instance runs out of fuel; the others keep their state and answer."""
    policy = wasmplug.Policy(limits=wasmplug.Limits(fuel=2_000_000))
    with wasmplug.load_pool(
        plugin_dir / "hostile.wasm", world=world, engine=engine, size=2, policy=policy
    ) as pool:
        first, second = pool.plugins
        assert first.call("bump") == 1
        assert second.call("bump") == 1
        with pytest.raises(wasmplug.FuelExhausted):
            first.call("spin")
        assert second.call("bump") == 2  # untouched
        assert first.call("bump") == 1  # a fresh instance
        assert sorted(pool.call("bump") for _ in range(2)) == [2, 3]


def test_a_full_pool_refuses_after_queue_ms(
    plugin_dir: Path, world: wasmplug.World, engine: Any
) -> None:
    """With every instance busy, a caller waits Limits.queue_ms, then PluginBusy."""
    policy = wasmplug.Policy(limits=wasmplug.Limits(queue_ms=50, fuel=None, deadline_ms=1_000))
    with wasmplug.load_pool(
        plugin_dir / "hostile.wasm", world=world, engine=engine, size=1, policy=policy
    ) as pool:
        outcome: list[BaseException] = []

        def spin() -> None:
            try:
                pool.call("spin")
            except wasmplug.DeadlineExceeded as e:
                outcome.append(e)

        busy = threading.Thread(target=spin)
        busy.start()
        while pool._idle.qsize() and busy.is_alive():  # until the spin has the instance
            pass
        with pytest.raises(wasmplug.PluginBusy, match="each of its 1 instances"):
            pool.call("bump")
        busy.join()
        assert len(outcome) == 1  # the spinning call ended at its deadline
        assert pool.call("bump") == 1


def test_pool_size_is_checked(world: wasmplug.World) -> None:
    with pytest.raises(wasmplug.PolicyError, match="Pool size must be an int >= 1, found 0"):
        wasmplug.load_pool(b"", world=world, size=0)


def test_closed_pool(plugin_dir: Path, world: wasmplug.World, engine: Any) -> None:
    pool = wasmplug.load_pool(plugin_dir / "hostile.wasm", world=world, engine=engine, size=1)
    pool.close()
    with pytest.raises(wasmplug.PluginClosedError, match="the pool is closed"):
        pool.call("bump")


# -- stopping a running call ---------------------------------------------------------------


def test_interrupt_stops_a_running_call(
    plugin_dir: Path, world: wasmplug.World, engine: Any
) -> None:
    """Plugin.interrupt() from another thread stops an endless guest loop that has
    neither a fuel limit nor a deadline: the call raises CallInterrupted (no breach
    audited), and the next call runs on a fresh instance."""
    policy = wasmplug.Policy(limits=wasmplug.Limits(fuel=None, deadline_ms=None))
    plugin = wasmplug.load(
        plugin_dir / "hostile.wasm", world=world, policy=policy, engine=engine, name="spinner"
    )
    try:
        assert plugin.call("bump") == 1
        assert plugin.call("bump") == 2
        outcome: list[BaseException] = []

        def spin() -> None:
            try:
                plugin.call("spin")
            except BaseException as e:
                outcome.append(e)

        spinner = threading.Thread(target=spin, daemon=True)
        spinner.start()
        time.sleep(0.3)
        assert spinner.is_alive()  # nothing else would ever stop it
        asked = time.monotonic()
        plugin.interrupt()
        spinner.join(timeout=10)
        stopped_after = time.monotonic() - asked
        assert not spinner.is_alive()
        assert stopped_after < 2.0, stopped_after
        assert len(outcome) == 1
        e = outcome[0]
        assert type(e) is wasmplug.CallInterrupted
        assert (e.plugin, e.function) == ("spinner", "spin")
        assert e.stats is not None
        assert plugin.audit_counts == {}
        assert plugin.call("bump") == 1  # a fresh instance
        plugin.interrupt()  # nothing running: no effect on the next call
        assert plugin.call("bump") == 2
    finally:
        plugin.close()


def test_cancelling_acall_stops_the_guest(
    plugin_dir: Path, world: wasmplug.World, engine: Any
) -> None:
    """Cancelling the task awaiting Pool.acall stops the guest: the pool's only
    instance and worker serve the next call soon after, though the cancelled call
    had no deadline."""
    policy = wasmplug.Policy(limits=wasmplug.Limits(fuel=None, deadline_ms=None))

    async def scenario(pool: wasmplug.Pool) -> float:
        task = asyncio.create_task(pool.acall("spin"))
        await asyncio.sleep(0.3)
        assert not task.done()
        asked = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.wait_for(pool.acall("bump"), timeout=10) == 1
        return time.monotonic() - asked

    with wasmplug.load_pool(
        plugin_dir / "hostile.wasm", world=world, policy=policy, engine=engine, size=1
    ) as pool:
        served_after = asyncio.run(scenario(pool))
        assert served_after < 2.0, served_after
        assert pool.plugins[0].last_call is not None
        assert pool.plugins[0].last_call.fresh_instance
