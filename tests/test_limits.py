"""Limits: fuel, memory and wall-clock deadlines hold against a hostile plugin; each
breach raises the matching exception naming the plugin and the limit; the host and
other plugins are unaffected and the next call runs on a clean instance."""

from __future__ import annotations

import gc
import re
import threading
import time
from pathlib import Path
from typing import Any

import attrs
import pytest

import wasmplug
from conftest import fixture_world
from wasmplug import _memory


@pytest.fixture(scope="module")
def world() -> wasmplug.World:
    return fixture_world("hostile")


@pytest.fixture
def load(plugin_dir: Path, world: wasmplug.World, engine: wasmplug.Engine) -> Any:
    def load(name: str = "hostile", **limits: Any) -> wasmplug.Plugin:
        policy = wasmplug.Policy(limits=wasmplug.Limits(**limits))
        return wasmplug.load(
            plugin_dir / "hostile.wasm", world=world, policy=policy, engine=engine, name=name
        )

    return load


def assert_fresh_instance_next(plugin: wasmplug.Plugin) -> None:
    """The call after a breach runs on a new instance: guest memory starts over."""
    assert plugin.call("bump") == 1
    assert plugin.last_call is not None
    assert plugin.last_call.fresh_instance is True
    assert plugin.call("bump") == 2


def test_fuel_exhaustion(load: Any) -> None:
    """An endless loop stops at the fuel limit with FuelExhausted; stats show the whole
    budget used; the plugin recovers on a fresh instance."""
    plugin = load(fuel=2_000_000, deadline_ms=None)
    assert plugin.call("bump") == 1
    with pytest.raises(wasmplug.FuelExhausted) as info:
        plugin.call("spin")
    e = info.value
    assert e.plugin == "hostile"
    assert e.limit == "fuel"
    assert e.allowed == 2_000_000
    assert e.function == "spin"
    assert e.stats is not None
    assert e.stats.fuel_consumed == 2_000_000
    assert "plugin 'hostile'" in str(e)
    assert "2000000 fuel units" in str(e)
    assert isinstance(e, wasmplug.LimitExceeded)
    assert isinstance(e, wasmplug.CallError)
    assert plugin.last_call is e.stats
    assert_fresh_instance_next(plugin)


def test_fuel_is_deterministic_and_reported(load: Any) -> None:
    """The same work from the same guest state costs the same fuel on every call, and
    more work costs more. (The very first call may differ: guest runtime set-up.)"""
    plugin = load()
    plugin.call("burn", 10_000)
    costs = []
    for _ in range(3):
        plugin.call("burn", 10_000)
        assert plugin.last_call is not None
        costs.append(plugin.last_call.fuel_consumed)
    assert len(set(costs)) == 1
    plugin.call("burn", 20_000)
    assert plugin.last_call is not None
    bigger = plugin.last_call.fuel_consumed
    assert 1.8 * costs[0] < bigger < 2.2 * costs[0]


def test_fuel_limit_allows_work_under_it(load: Any) -> None:
    """A call that fits its budget succeeds; the same call with half the budget fails.
    (wasmtime checks fuel per basic block, so the cut-off is not exact to one unit.)"""
    roomy = load(fuel=10_000_000)
    roomy.call("burn", 50_000)
    assert roomy.last_call is not None
    need = roomy.last_call.fuel_consumed
    exact = load(name="exact", fuel=need)
    exact.call("burn", 50_000)
    tight = load(name="tight", fuel=need // 2)
    with pytest.raises(wasmplug.FuelExhausted):
        tight.call("burn", 50_000)


def test_deadline(load: Any) -> None:
    """An endless loop without a fuel limit is stopped by the wall-clock deadline with
    DeadlineExceeded, roughly on time, and the plugin recovers."""
    plugin = load(fuel=None, deadline_ms=50)
    start = time.perf_counter()
    with pytest.raises(wasmplug.DeadlineExceeded) as info:
        plugin.call("spin")
    elapsed_ms = (time.perf_counter() - start) * 1000
    e = info.value
    assert e.limit == "deadline_ms"
    assert e.allowed == 50
    assert e.plugin == "hostile"
    assert "50 ms" in str(e)
    assert elapsed_ms >= 45
    assert elapsed_ms < 5_000  # stopped, not left running (generous for loaded machines)
    assert_fresh_instance_next(plugin)


def test_memory_limit(load: Any) -> None:
    """A memory bomb stops at the memory ceiling with MemoryLimitExceeded; allocations
    under the ceiling succeed; the plugin recovers with its memory reset."""
    plugin = load(memory_bytes=32 << 20)
    assert plugin.call("grow", 8) == 8
    with pytest.raises(wasmplug.MemoryLimitExceeded) as info:
        plugin.call("grow", 0)
    e = info.value
    assert e.limit == "memory_bytes"
    assert e.allowed == 32 << 20
    assert "33554432 bytes" in str(e)
    # used: the memory it had when the next 1 MiB chunk did not fit.
    assert e.used is not None
    assert e.allowed - (2 << 20) < e.used <= e.allowed
    assert e.stats is not None
    assert e.stats.memory_bytes == e.used
    assert_fresh_instance_next(plugin)
    assert plugin.call("grow", 8) == 8


def test_memory_limit_below_initial_memory_fails_at_load(load: Any) -> None:
    """A ceiling smaller than the plugin's initial memory is refused at load time."""
    with pytest.raises(wasmplug.InstantiationError):
        load(memory_bytes=64 * 1024)


def test_memory_bytes_bounds_all_memories_together(load: Any) -> None:
    """memory_bytes is shared among the allowed memories: allowing two memories halves
    what one may grow to, so the total stays under memory_bytes."""
    one = load(memory_bytes=32 << 20)
    assert one.call("grow", 20) == 20
    two = load(memory_bytes=32 << 20, memories=2)
    with pytest.raises(wasmplug.MemoryLimitExceeded):
        two.call("grow", 20)
    assert two.call("grow", 8) == 8
    assert wasmplug.Limits(memory_bytes=32 << 20, memories=2).memory_bytes_each == 16 << 20


@pytest.mark.parametrize(
    ("limit", "fragment"),
    [
        ({"tables": 1}, "table count too high at 2 (Limits.tables is 1)"),
        ({"instances": 2}, "instance count too high at 3 (Limits.instances is 2)"),
        ({"table_elements": 1}, "(Limits.table_elements is 1)"),
    ],
)
def test_table_and_instance_limits_refuse_the_load(
    wasm_dir: Path, world: wasmplug.World, engine: Any, limit: dict[str, int], fragment: str
) -> None:
    """A plugin needing more tables, core instances or table elements than its limits
    allow fails to load with InstantiationError naming the limit. (A component: it
    holds several core instances and tables, where a core module has one of each.)"""
    with pytest.raises(wasmplug.InstantiationError) as info:
        wasmplug.load(
            wasm_dir / "hostile.wasm",
            world=world,
            engine=engine,
            policy=wasmplug.Policy(limits=wasmplug.Limits(**limit)),
        )
    assert fragment in str(info.value)


def test_host_calls_per_call_are_bounded(load: Any) -> None:
    """A call may make at most Limits.host_calls host calls: the next one is not made,
    the call fails with HostCallsExceeded carrying the limit and the count, and the
    plugin continues on a fresh instance; a call under the limit is unaffected."""
    plugin = load(host_calls=5)
    assert plugin.call("spam-log", 5, 1) == 0  # five denied log calls
    assert plugin.last_call is not None
    assert plugin.last_call.host_calls == 5
    with pytest.raises(wasmplug.HostCallsExceeded) as info:
        plugin.call("spam-log", 50, 1)
    error = info.value
    assert (error.limit, error.allowed) == ("host_calls", 5)
    assert error.stats is not None
    assert error.stats.host_calls == 6  # the sixth was refused before it ran
    assert isinstance(error, wasmplug.LimitExceeded)
    assert "more than 5 host calls" in str(error)
    assert_fresh_instance_next(plugin)
    assert wasmplug.Limits().host_calls == 10_000
    assert wasmplug.Limits(host_calls=None).host_calls is None


def test_stack_overflow_is_a_trap(load: Any) -> None:
    """Unbounded recursion traps and the plugin recovers. Rust on wasm32 keeps its
    frames on a shadow stack in linear memory, so overflowing it shows up as an
    out-of-bounds access below address 0 (or as wasm stack exhaustion)."""
    plugin = load(fuel=None, deadline_ms=5_000)
    assert plugin.call("recurse", 100) == 100
    with pytest.raises(wasmplug.Trap) as info:
        plugin.call("recurse", 0)
    detail = info.value.detail
    assert "out of bounds memory access" in detail or "stack overflow" in detail
    # The guest backtrace is kept (symbol mangling differs between toolchains:
    # `hostile::deep::h…` with legacy mangling, `hostile[…]::deep` with v0).
    assert re.search(r"hostile(\[[0-9a-f]+\])?::deep", detail), detail
    assert_fresh_instance_next(plugin)


def test_panic_is_a_trap_with_the_message(load: Any) -> None:
    """A Rust panic becomes a Trap whose message carries the panic text from the
    guest's stderr."""
    plugin = load()
    with pytest.raises(wasmplug.Trap) as info:
        plugin.call("panic", "the sky is falling")
    e = info.value
    assert "unreachable" in str(e)
    assert "the sky is falling" in str(e)
    assert "the sky is falling" in e.guest_stderr
    assert not isinstance(e, wasmplug.LimitExceeded)
    assert_fresh_instance_next(plugin)


def test_breaches_do_not_affect_other_plugins(load: Any) -> None:
    """While one plugin is stopped again and again, another plugin of the same component
    keeps its state and answers."""
    victim = load(name="victim")
    attacker = load(name="attacker", fuel=1_000_000)
    assert victim.call("bump") == 1
    for _ in range(5):
        with pytest.raises(wasmplug.FuelExhausted):
            attacker.call("spin")
        with pytest.raises(wasmplug.Trap):
            attacker.call("panic", "again")
    assert victim.call("bump") == 2
    assert victim.last_call is not None
    assert victim.last_call.fresh_instance is False


def test_concurrent_calls_in_threads(load: Any) -> None:
    """Plugins can be called from several threads at once; each plugin serializes its
    own calls and results stay correct."""
    plugins = [load(name=f"worker-{i}") for i in range(4)]
    results: dict[int, list[int]] = {}

    def work(i: int) -> None:
        results[i] = [plugins[i].call("bump") for _ in range(50)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: list(range(1, 51)) for i in range(4)}
    shared = plugins[0]
    counts: list[int] = []
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(100):
            n = shared.call("bump")
            with lock:
                counts.append(n)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(counts) == list(range(51, 451))


def test_log_flood_is_bounded(
    plugin_dir: Path, world: wasmplug.World, engine: wasmplug.Engine, caplog: Any
) -> None:
    """A plugin logging huge messages cannot make the host store them whole: each
    record is cut to 16 KiB."""
    plugin = wasmplug.load(
        plugin_dir / "hostile.wasm",
        world=world,
        engine=engine,
        name="flood",
        policy=wasmplug.Policy(
            grants=wasmplug.Grants(log=True), limits=wasmplug.Limits(log_bytes=4 << 20)
        ),
    )
    with caplog.at_level("INFO", logger="wasmplug.plugin.flood"):
        assert plugin.call("spam-log", 3, 1 << 20) == 3
    records = [r for r in caplog.records if r.name == "wasmplug.plugin.flood"]
    assert len(records) == 3
    for r in records:
        text = r.getMessage()
        assert len(text) < 17 * 1024
        assert text.endswith("[... cut: 1048576 bytes in all]")


def test_limits_validation() -> None:
    """Limits refuse nonsense values with PolicyError (also a ValueError)."""
    for bad in (
        {"fuel": 0},
        {"fuel": -5},
        {"memory_bytes": 1.5},
        {"deadline_ms": True},
        {"memories": 0},
        {"tables": None},
        {"table_elements": -1},
        {"host_calls": 0},
        {"queue_ms": -1},
        {"queue_ms": 0.5},
    ):
        with pytest.raises(wasmplug.PolicyError):
            wasmplug.Limits(**bad)
    assert wasmplug.Limits(fuel=None).fuel is None
    assert (wasmplug.Limits(queue_ms=0).queue_ms, wasmplug.Limits().queue_ms) == (0, 10_000)


def test_large_output_is_lifted_whole(load: Any) -> None:
    """A multi-megabyte string result crosses the boundary intact."""
    plugin = load(memory_bytes=64 << 20)
    out = plugin.call("big-output", 3 << 20)
    assert out == "x" * (3 << 20)


def test_wasi_sleeps_are_refused_and_never_outlast_the_deadline(load: Any) -> None:
    """wasmtime's WASI sleep blocks where no epoch can stop it, so wasmplug serves the
    monotonic clock itself: a sleep that would end past the deadline is a
    DeadlineExceeded at once (not after the sleep), a shorter one is refused with
    WasiRefusedError naming the WASI function; the plugin goes on."""
    plugin = load(fuel=None, deadline_ms=100)
    start = time.perf_counter()
    with pytest.raises(wasmplug.DeadlineExceeded) as info:
        plugin.call("nap", 10_000)
    assert time.perf_counter() - start < 1.0
    e = info.value
    assert e.limit == "deadline_ms"
    assert e.allowed == 100
    # The component path serves WASI 0.2's clock, the fast path WASI preview 1.
    core = plugin.kind == "core-module"
    waited = (
        r"wasi_snapshot_preview1#poll_oneoff"
        if core
        else r"wasi:clocks/monotonic-clock@[0-9.]+#subscribe-duration"
    )
    assert re.search(
        rf"nap asked WASI to wait 10,000\.0 ms \({waited}\), past its deadline \(100 ms\)",
        str(e),
    ), str(e)
    with pytest.raises(wasmplug.WasiRefusedError) as refused:
        plugin.call("nap", 10)
    assert refused.value.wasi_function.endswith("#poll_oneoff" if core else "#subscribe-duration")
    assert "refuses WASI clock waits" in str(refused.value)
    assert_fresh_instance_next(plugin)


def test_host_call_storms_end_at_the_deadline(load: Any) -> None:
    """Quick host calls cannot keep a call alive past its deadline: every host call
    checks it first, and the epoch stops the guest between two of them (which one
    fires first varies: either ends the storm, as a DeadlineExceeded)."""
    plugin = load(fuel=None, deadline_ms=100, host_calls=None)
    start = time.perf_counter()
    with pytest.raises(wasmplug.DeadlineExceeded) as info:
        plugin.call("spam-log", 4_000_000_000, 1)
    assert time.perf_counter() - start < 2.0
    assert info.value.limit == "deadline_ms"
    assert info.value.stats is not None
    # The storm ran (how far depends on how much CPU the machine gave it in 100 ms).
    assert info.value.stats.host_calls >= 1


# -- output, logs, stdio, and what each breach reports --------------------------------------


def test_breaches_report_what_was_used(load: Any) -> None:
    """Every breach carries ``used`` in the limit's unit: fuel consumed, milliseconds
    elapsed, host calls made."""
    plugin = load(fuel=3_000_000, deadline_ms=None)
    with pytest.raises(wasmplug.FuelExhausted) as fuel:
        plugin.call("spin")
    assert fuel.value.used == 3_000_000
    plugin = load(fuel=None, deadline_ms=100)
    with pytest.raises(wasmplug.DeadlineExceeded) as late:
        plugin.call("spin")
    assert late.value.used is not None
    assert 90 <= late.value.used < 5_000  # milliseconds, about the deadline
    plugin = load(host_calls=50, deadline_ms=None)
    with pytest.raises(wasmplug.HostCallsExceeded) as calls:
        plugin.call("spam-log", 1_000, 1)
    assert calls.value.used == 51


@pytest.mark.parametrize(
    ("export", "args", "size"),
    [
        ("big-output", (5_000,), 8 + 5_000),
        ("big-bytes", (5_000,), 8 + 5_000),
        ("big-records", (1_000,), 8 + 1_000 * (4 + 8 + 1)),
        ("big-strings", (10, 300), 8 + 10 * (8 + 300)),
    ],
)
def test_output_limit_measures_each_kind(
    load: Any, export: str, args: tuple[int, ...], size: int
) -> None:
    """The output measure is the result's data in canonical-ABI terms: at exactly the
    limit the result is lifted whole, one byte less and it is refused with the size
    measured, the instance kept."""
    plugin = load(output_bytes=size)
    out = plugin.call(export, *args)
    assert len(out) == (args[0])
    tight = load(output_bytes=size - 1)
    with pytest.raises(wasmplug.OutputLimitExceeded) as info:
        tight.call(export, *args)
    e = info.value
    assert (e.limit, e.allowed, e.used) == ("output_bytes", size - 1, size)
    assert f"{export} returned more than {size - 1} bytes" in str(e)
    assert tight.call("bump") == 1
    assert tight.last_call is not None
    assert tight.last_call.fresh_instance is False


def test_fixed_size_results_are_not_measured(load: Any) -> None:
    """A result without strings or lists has a size known at load; a limit above it
    never walks the value."""
    plugin = load(output_bytes=4)
    assert plugin.call("bump") == 1  # u32: 4 bytes
    tiny = load(output_bytes=3)
    with pytest.raises(wasmplug.OutputLimitExceeded) as info:
        tiny.call("bump")
    assert info.value.used == 4


def test_log_limits_are_per_call(plugin_dir: Path, world: wasmplug.World, engine: Any) -> None:
    """log_records counts the records of one call: the next call starts from zero."""
    plugin = wasmplug.load(
        plugin_dir / "hostile.wasm",
        world=world,
        engine=engine,
        name="logger",
        policy=wasmplug.Policy(
            grants=wasmplug.Grants(log=True), limits=wasmplug.Limits(log_records=10)
        ),
    )
    assert plugin.call("spam-log", 10, 5) == 10
    assert plugin.call("spam-log", 10, 5) == 10
    with pytest.raises(wasmplug.LogLimitExceeded) as info:
        plugin.call("spam-log", 11, 5)
    assert (info.value.limit, info.value.allowed, info.value.used) == ("log_records", 10, 11)
    assert_fresh_instance_next(plugin)


def test_stdio_within_the_limit_is_forwarded(
    plugin_dir: Path, world: wasmplug.World, engine: Any, caplog: Any
) -> None:
    """Granted stdout below Limits.stdio_bytes reaches the plugin's logger line by line;
    the count restarts with every call."""
    plugin = wasmplug.load(
        plugin_dir / "hostile.wasm",
        world=world,
        engine=engine,
        name="printer",
        policy=wasmplug.Policy(
            grants=wasmplug.Grants(stdio=True), limits=wasmplug.Limits(stdio_bytes=1_000)
        ),
    )
    with caplog.at_level("INFO", logger="wasmplug.plugin.printer"):
        assert plugin.call("flood-stdout", 10, 100) == 10
        assert plugin.call("flood-stdout", 10, 100) == 10
    lines = [r.getMessage() for r in caplog.records if r.name == "wasmplug.plugin.printer"]
    assert lines == ["z" * 99] * 20
    with pytest.raises(wasmplug.StdioLimitExceeded) as info:
        plugin.call("flood-stdout", 11, 100)
    assert (info.value.allowed, info.value.used) == (1_000, 1_100)


# -- audit -----------------------------------------------------------------------------------


def test_audit_events_for_denials_and_breaches(
    plugin_dir: Path, world: wasmplug.World, engine: Any, caplog: Any
) -> None:
    """Each denial and each breach reaches the audit callback as an AuditEvent, is
    counted per plugin, and a breach is logged with the plugin and the limit."""
    events: list[wasmplug.AuditEvent] = []
    plugin = wasmplug.load(
        plugin_dir / "hostile.wasm",
        world=world,
        engine=engine,
        name="audited",
        policy=wasmplug.Policy(limits=wasmplug.Limits(fuel=1_000_000, output_bytes=100)),
        audit=events.append,
    )
    assert plugin.audit_counts == {}
    assert plugin.call("spam-log", 3, 1) == 0  # three denied log calls
    with caplog.at_level("WARNING", logger="wasmplug"):
        with pytest.raises(wasmplug.FuelExhausted):
            plugin.call("spin")
        with pytest.raises(wasmplug.OutputLimitExceeded):
            plugin.call("big-output", 1_000)
    assert plugin.audit_counts == {"denial:log": 3, "breach:fuel": 1, "breach:output_bytes": 1}
    assert [(e.kind, e.name, e.function) for e in events] == [
        ("denial", "log", "spam-log"),
        ("denial", "log", "spam-log"),
        ("denial", "log", "spam-log"),
        ("breach", "fuel", "spin"),
        ("breach", "output_bytes", "big-output"),
    ]
    fuel = events[3]
    assert fuel.plugin == "audited"
    assert fuel.used == 1_000_000
    assert "ran out of fuel" in fuel.argument
    assert events[0].argument == "logging is not granted"
    assert events[4].used == 1_008
    assert abs(fuel.timestamp - time.time()) < 60
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fuel.kind = "denial"  # type: ignore[misc]
    breaches = [r for r in caplog.records if "breached" in r.getMessage()]
    assert [getattr(r, "limit", None) for r in breaches] == ["fuel", "output_bytes"]
    assert all(getattr(r, "plugin", None) == "audited" for r in breaches)


def test_a_failing_audit_callback_never_breaks_the_call(
    plugin_dir: Path, world: wasmplug.World, engine: Any, caplog: Any
) -> None:
    """An audit callback that raises is logged with its traceback; the call's outcome
    (a denial answered to the guest, a breach raised) is unchanged."""

    def broken(event: wasmplug.AuditEvent) -> None:
        raise RuntimeError(f"audit sink down ({event.key})")

    plugin = wasmplug.load(
        plugin_dir / "hostile.wasm",
        world=world,
        engine=engine,
        name="sinkless",
        policy=wasmplug.Policy(limits=wasmplug.Limits(output_bytes=10)),
        audit=broken,
    )
    with caplog.at_level("ERROR", logger="wasmplug.policy"):
        assert plugin.call("spam-log", 2, 1) == 0
        with pytest.raises(wasmplug.OutputLimitExceeded):
            plugin.call("big-output", 100)
    failures = [r for r in caplog.records if "audit callback failed" in r.getMessage()]
    assert len(failures) == 3
    assert failures[0].exc_info is not None
    assert plugin.audit_counts == {"denial:log": 2, "breach:output_bytes": 1}
    assert plugin.call("bump") == 1


def test_refused_wasi_waits_are_audited_as_denials(load: Any) -> None:
    plugin = load(fuel=None)
    with pytest.raises(wasmplug.WasiRefusedError) as info:
        plugin.call("nap", 5)
    assert plugin.audit_counts == {f"denial:{info.value.wasi_function}": 1}


def test_new_limits_in_policy_dicts() -> None:
    """The new limits go through the dict/TOML mapping like the others; None disables
    them, nonsense is refused."""
    policy = wasmplug.Policy.from_dict(
        {"limits": {"output_bytes": 1024, "log_records": None, "log_bytes": 10, "stdio_bytes": 5}}
    )
    limits = policy.limits
    assert (limits.output_bytes, limits.log_records, limits.log_bytes, limits.stdio_bytes) == (
        1024,
        None,
        10,
        5,
    )
    assert wasmplug.Policy.from_dict(policy.to_dict()) == policy
    for bad in ({"output_bytes": 0}, {"log_records": -1}, {"stdio_bytes": 1.5}):
        with pytest.raises(wasmplug.PolicyError):
            wasmplug.Limits(**bad)


def test_queue_ms_in_policy_dicts_and_files(tmp_path: Path) -> None:
    """Limits.queue_ms goes through the dict form and policy files like the other
    limits: an int of milliseconds (0 allowed), null for no bound; other values are
    refused naming the key."""
    policy = wasmplug.Policy.from_dict({"limits": {"queue_ms": 250}})
    assert policy.limits.queue_ms == 250
    assert wasmplug.Policy.from_dict(policy.to_dict()) == policy
    assert wasmplug.Policy.from_dict({"limits": {"queue_ms": None}}).limits.queue_ms is None
    for bad in ("soon", 1.5, -1, True):
        with pytest.raises(wasmplug.PolicyError, match=r"queue_ms"):
            wasmplug.Policy.from_dict({"limits": {"queue_ms": bad}})
    path = tmp_path / "policies.toml"
    path.write_text(
        "[defaults]\nlimits = { queue_ms = 0 }\n"
        "[plugins.a]\n"
        "[plugins.b]\nlimits = { queue_ms = 5000 }\n",
        encoding="utf-8",
    )
    policies = wasmplug.load_policies(path)
    assert (policies["a"].limits.queue_ms, policies["b"].limits.queue_ms) == (0, 5_000)


def test_an_engine_wide_audit_callback(plugin_dir: Path, world: wasmplug.World) -> None:
    """Engine(audit=...) audits every plugin loaded on it that has no audit= of its own;
    a plugin's own callback takes precedence."""
    seen: list[tuple[str, str]] = []
    own: list[str] = []
    engine = wasmplug.Engine(cache_dir=None, audit=lambda e: seen.append((e.plugin, e.key)))
    try:
        first = wasmplug.load(plugin_dir / "hostile.wasm", world=world, engine=engine, name="a")
        second = wasmplug.load(
            plugin_dir / "hostile.wasm",
            world=world,
            engine=engine,
            name="b",
            audit=lambda e: own.append(e.key),
        )
        assert first.call("spam-log", 1, 1) == 0
        assert second.call("spam-log", 2, 1) == 0
        assert seen == [("a", "denial:log")]
        assert own == ["denial:log", "denial:log"]
    finally:
        engine.close()


def test_instance_per_call(plugin_dir: Path, world: wasmplug.World, engine: Any) -> None:
    """Policy.instance_per_call runs every call on a new instance: guest state never
    survives a call (``bump`` counts in guest memory); without it, it does."""
    per_call = wasmplug.load(
        plugin_dir / "hostile.wasm",
        world=world,
        engine=engine,
        policy=wasmplug.Policy(instance_per_call=True),
    )
    assert [per_call.call("bump") for _ in range(3)] == [1, 1, 1]
    assert per_call.last_call is not None
    assert per_call.last_call.fresh_instance is True
    reused = wasmplug.load(plugin_dir / "hostile.wasm", world=world, engine=engine)
    assert [reused.call("bump") for _ in range(3)] == [1, 2, 3]
    assert reused.last_call is not None
    assert reused.last_call.fresh_instance is False


def test_instance_per_call_in_policy_dicts() -> None:
    """The option round-trips through the dict form and is type-checked there."""
    policy = wasmplug.Policy(instance_per_call=True)
    assert wasmplug.Policy.from_dict(policy.to_dict()) == policy
    with pytest.raises(wasmplug.PolicyError, match=r"policy\.instance_per_call: expected true or"):
        wasmplug.Policy.from_dict({"instance_per_call": "yes"})
    with pytest.raises(wasmplug.PolicyError, match="must be a bool"):
        wasmplug.Policy(instance_per_call=1)  # type: ignore[arg-type]


def test_stats_report_linear_memory(load: Any) -> None:
    """CallStats.memory_bytes is the linear memory's size after the call (its peak:
    memories never shrink), on both backends."""
    plugin = load(memory_bytes=64 << 20)
    plugin.call("bump")
    before = plugin.last_call
    assert before is not None
    assert before.memory_bytes is not None
    assert before.memory_bytes % 65_536 == 0
    assert plugin.call("grow", 8) == 8
    after = plugin.last_call
    assert after is not None
    assert after.memory_bytes is not None
    assert after.memory_bytes >= before.memory_bytes + (8 << 20)


def test_reported_memory_is_what_the_guest_sees(load: Any) -> None:
    """memory_bytes equals the size the guest's own ``memory.size`` instruction reads
    (the plugin has one linear memory), after growing and on a fresh instance."""
    plugin = load(memory_bytes=64 << 20)
    for mib in (0, 3, 5):
        assert plugin.call("grow", mib) == mib if mib else plugin.call("bump") == 1
        grown = plugin.last_call
        assert grown is not None
        assert grown.memory_bytes is not None
        assert plugin.call("memory-size") == grown.memory_bytes
    fresh = load(memory_bytes=64 << 20, name="fresh")
    assert fresh.call("memory-size") == fresh.last_call.memory_bytes
    assert fresh.last_call.memory_bytes < grown.memory_bytes


def test_memory_is_reported_per_instance(load: Any) -> None:
    """A fresh instance per call starts its memory over: the size reported is that
    instance's, not a sum over the instances before it."""
    plugin = load(memory_bytes=64 << 20, name="per-call")
    sizes = []
    for _ in range(3):
        plugin.call("grow", 4)
        assert plugin.last_call is not None
        sizes.append(plugin.last_call.memory_bytes)
        plugin.evict()
    assert sizes[0] is not None
    assert sizes == [sizes[0]] * 3


def test_component_memory_can_go_unmeasured(plugin_dir: Path, world: wasmplug.World) -> None:
    """Engine(measure_component_memory=False) runs components on the core engine
    (wasmtime's own memories): their memory_bytes is None; the fast path still
    measures."""
    engine = wasmplug.Engine(measure_component_memory=False, cache_dir=None)
    assert engine.component_wasmtime_engine is engine.wasmtime_engine
    plugin = wasmplug.load(plugin_dir / "hostile.wasm", world=world, engine=engine)
    assert plugin.call("grow", 2) == 2
    assert plugin.last_call is not None
    if plugin.kind == "component":
        assert plugin.last_call.memory_bytes is None
    else:
        assert plugin.last_call.memory_bytes == plugin.call("memory-size")
    measured = wasmplug.Engine(cache_dir=None)
    assert measured.component_wasmtime_engine is not measured.wasmtime_engine


def test_component_memories_are_released(plugin_dir: Path, world: wasmplug.World) -> None:
    """The linear memories wasmplug allocates for components are unmapped with their
    Store: loading, calling and closing plugins leaves no memory behind."""
    engine = wasmplug.Engine(cache_dir=None)
    gc.collect()
    before = _memory.live()
    for i in range(20):
        plugin = wasmplug.load(
            plugin_dir / "hostile.wasm", world=world, engine=engine, name=f"p{i}"
        )
        plugin.call("grow", 1)
        plugin.close()
        del plugin
    gc.collect()
    assert _memory.live() == before
