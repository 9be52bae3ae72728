"""The hostile suite: attacks on the sandbox, each contained with its exact outcome.

Every attack runs in a plugin of its own under a strict policy: nothing granted
beyond what the attack needs to be tried at all, 64 MiB of linear memory, a 1 s
deadline. Each must end with the exact outcome asserted for it (a typed exception
naming the plugin and the limit, or the guest seeing a refusal it can handle), and
afterwards:

- a well-behaved plugin loaded beside it (the *neighbour*, sharing the engine)
  answers correctly and has kept its state;
- the host keeps its threads and file descriptors (nothing leaked by the attack).

The attacks are the Rust plugin ``tests/fixtures/attacks`` (one attack per export),
the ``hostile`` fixture's resource bombs, and WAT components in ``tests/wat/`` for
what Rust cannot express (start functions, many memories, raw table growth). They use
only the public API, and run on both backends: the components on the component path,
and on the fast path the same Rust sources built as core modules and the core module
inside each WAT component (:func:`core_twin`). Where the backends differ the attack
says so: WASI preview 1's ``poll_oneoff`` instead of WASI 0.2's subscriptions,
:class:`~wasmplug.InvalidGuestValue` from wasmplug's own lifting instead of
wasmtime's trap. Only ``many-core-instances`` is the component path's alone.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest
import wasmtime

import wasmplug
from conftest import REPO_ROOT, fixture_world
from http_servers import Handler, Server
from wasmplug._files import tree_bytes

WAT = REPO_ROOT / "tests" / "wat"
STRICT_LIMITS = wasmplug.Limits(memory_bytes=64 << 20, deadline_ms=1_000)
STRICT = wasmplug.Policy(limits=STRICT_LIMITS)


def fd_targets() -> list[str]:
    """What the host's open file descriptors point at, sorted."""
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the listing's own descriptor, closed by now
            continue
    return sorted(targets)


def python_threads() -> int:
    """The host's Python threads, but for the "dummy" entries Python makes for
    threads it did not start that call into it: wasmtime runs WASI stdio callbacks on
    its own runtime threads, and which of them serves a write varies from run to run
    (a pool of wasmtime's, not something an attack leaves behind)."""
    return sum(not isinstance(t, threading._DummyThread) for t in threading.enumerate())


def open_fds() -> int:
    """The host's open file descriptors, but for wasmtime's memfd images of compiled
    modules (they live as long as the engine caches the module, not the plugin)."""
    return sum(not target.startswith("/memfd:") for target in fd_targets())


@attrs.define
class Lab:
    """What an attack gets: loaders for the attack plugins and a scratch directory.
    Every plugin it loads is closed after the attack."""

    wasm_dir: Path
    engine: wasmplug.Engine
    tmp: Path
    loaded: list[wasmplug.Plugin] = attrs.field(factory=list)
    servers: list[Server] = attrs.field(factory=list)

    @property
    def core(self) -> bool:
        """Whether the attack plugins are core modules (the fast path, WASI preview 1)
        rather than components."""
        return self.wasm_dir.name == "wasm-core"

    def wasi_wait(self, component_function: str) -> str:
        """The WASI function a clock wait goes through on this backend."""
        return "wasi_snapshot_preview1#poll_oneoff" if self.core else component_function

    def load(
        self,
        source: str,
        *,
        world: wasmplug.World,
        name: str,
        grants: wasmplug.Grants | None = None,
        **kwargs: Any,
    ) -> wasmplug.Plugin:
        policy = attrs.evolve(STRICT, grants=grants or wasmplug.Grants())
        limits = kwargs.pop("limits", None)
        if limits is not None:
            policy = attrs.evolve(policy, limits=limits)
        plugin = wasmplug.load(
            self.wasm_dir / f"{source}.wasm",
            world=world,
            policy=policy,
            engine=self.engine,
            name=name,
            **kwargs,
        )
        self.loaded.append(plugin)
        return plugin

    def attacks(self, grants: wasmplug.Grants | None = None, **kwargs: Any) -> wasmplug.Plugin:
        return self.load("attacks", world=ATTACKS_WORLD, name="attacker", grants=grants, **kwargs)

    def hostile(self, **limits: Any) -> wasmplug.Plugin:
        return self.load(
            "hostile",
            world=HOSTILE_WORLD,
            name="attacker",
            limits=attrs.evolve(STRICT_LIMITS, **limits),
        )

    def wat(self, stem: str, world: str = "answer", **limits: Any) -> wasmplug.Plugin:
        """Loads ``tests/wat/<stem>.wat`` (the text format, turned into a binary here):
        the component, or on the fast path the core module it wraps (``$m``), which
        exports the same canonical-ABI names (see :func:`core_twin`)."""
        text = (WAT / f"{stem}.wat").read_text()
        binary = bytes(wasmtime.wat2wasm(core_twin(text) if self.core else text))
        plugin = wasmplug.load(
            binary,
            world=wasmplug.load_world(WAT / "wit", world),
            policy=attrs.evolve(STRICT, limits=attrs.evolve(STRICT_LIMITS, **limits)),
            engine=self.engine,
            name=stem,
        )
        self.loaded.append(plugin)
        return plugin

    def server(self) -> Server:
        """An HTTP server on 127.0.0.1 (``tests/http_servers.py``), closed (its threads
        joined) after the attack."""
        server = Server()
        self.servers.append(server)
        return server

    def data_dir(self) -> Path:
        """A host directory to preopen as ``/data``, holding ``ok.txt``, with a secret
        beside it and symlinks inside that point at the secret."""
        root = self.tmp
        data = root / "data"
        data.mkdir(parents=True)
        (data / "ok.txt").write_text("fine")
        (root / "secret.txt").write_text("s3cret")
        (data / "abs-link").symlink_to(root / "secret.txt")
        (data / "rel-link").symlink_to(Path("..") / "secret.txt")
        return data


def core_twin(component: str) -> str:
    """The core module ``$m`` of a WAT component, as a module of its own with the
    ``component-type`` section the fast path asks for (its content is not read: the
    host's WIT is the contract)."""
    start = component.index("(core module $m")
    depth = 0
    for end in range(start, len(component)):
        depth += {"(": 1, ")": -1}.get(component[end], 0)
        if depth == 0:
            break
    body = component[start + len("(core module $m") : end]
    return f'(module {body} (@custom "component-type:wat" ""))'


ATTACKS_WORLD = fixture_world("attacks")
HOSTILE_WORLD = fixture_world("hostile")
HTTP_WORLD = fixture_world("http")
Attack = Callable[[Lab], None]
ATTACKS: dict[str, Attack] = {}


#: Attacks that exist only for components: a core module is one instance.
COMPONENT_ONLY = frozenset({"many-core-instances"})
BACKENDS = ("component", "core-module")


def attack(fn: Attack) -> Attack:
    """Registers an attack under its function name (``attack_`` dropped)."""
    ATTACKS[fn.__name__.removeprefix("attack_").replace("_", "-")] = fn
    return fn


def breach(
    cls: type[wasmplug.LimitExceeded], limit: str, call: Callable[[], object]
) -> wasmplug.LimitExceeded:
    """Runs ``call``, which must raise exactly ``cls`` for ``limit`` of the attacker."""
    with pytest.raises(cls) as info:
        call()
    e = info.value
    assert type(e) is cls
    assert e.plugin == "attacker"
    assert e.limit == limit
    return e


def guest_sees(call: Callable[[], object]) -> str:
    """Runs ``call``, whose guest must report a failure it handled (an ``err``)."""
    with pytest.raises(wasmplug.GuestError) as info:
        call()
    assert type(info.value) is wasmplug.GuestError
    assert isinstance(info.value.value, str)
    return info.value.value


def trap(call: Callable[[], object], cause: str) -> wasmplug.Trap:
    with pytest.raises(wasmplug.Trap) as info:
        call()
    e = info.value
    assert type(e) is wasmplug.Trap
    assert e.plugin == "attacker"
    assert cause in str(e)
    return e


def join_contained(threads: list[threading.Thread], engine: wasmplug.Engine) -> None:
    """Joins threads that run attacker calls, each of which must end by its deadline.

    A thread still alive after :data:`CONTAINED_WITHIN_S` means a guest was not stopped:
    the test fails with the epoch clock's state and the thread's stack, after ending
    every guest of the engine (its epoch is advanced past any deadline) so the run can
    go on instead of hanging."""
    give_up = time.monotonic() + CONTAINED_WITHIN_S
    for t in threads:
        t.join(max(0.0, give_up - time.monotonic()))
    stuck = [t for t in threads if t.is_alive()]
    if not stuck:
        return
    clock = engine.epoch_clock
    state = (
        f"epoch clock: parked={clock.parked} ticks={clock.ticks} lag={clock.lag()} "
        f"step={clock.step} parks={clock.parks}"
    )
    frames = sys._current_frames()
    stacks = "\n".join(
        "".join(traceback.format_stack(frames[t.ident])) for t in stuck if t.ident in frames
    )
    rescue = time.monotonic() + 30
    while any(t.is_alive() for t in stuck) and time.monotonic() < rescue:
        for _ in range(10_000):
            engine.increment_epoch()
    pytest.fail(
        f"{len(stuck)} attacker call(s) still running after {CONTAINED_WITHIN_S} s; "
        f"{state}\n{stacks}"
    )


#: Seconds within which every attacker call on a thread must have ended (deadlines in
#: the suite are 1 s at most; this is generous for a loaded machine).
CONTAINED_WITHIN_S = 30.0


# -- CPU, stack and memory ----------------------------------------------------------------


@attack
def attack_infinite_loop_with_fuel(lab: Lab) -> None:
    plugin = lab.hostile(fuel=5_000_000, deadline_ms=None)
    e = breach(wasmplug.FuelExhausted, "fuel", lambda: plugin.call("spin"))
    assert e.allowed == 5_000_000
    assert e.stats is not None
    assert e.stats.fuel_consumed == 5_000_000


@attack
def attack_infinite_loop_without_fuel(lab: Lab) -> None:
    plugin = lab.hostile(fuel=None, deadline_ms=200)
    e = breach(wasmplug.DeadlineExceeded, "deadline_ms", lambda: plugin.call("spin"))
    assert e.allowed == 200
    assert e.stats is not None
    assert e.stats.wall_time_us >= 200_000


@attack
def attack_deep_recursion_on_the_shadow_stack(lab: Lab) -> None:
    """Rust keeps its frames on a shadow stack in linear memory: unbounded recursion
    runs off its bottom (below address 0) and traps."""
    plugin = lab.hostile()
    e = trap(lambda: plugin.call("recurse", 0), "recurse trapped")
    assert "out of bounds memory access" in e.detail or "stack overflow" in e.detail


@attack
def attack_deep_recursion_on_the_wasm_stack(lab: Lab) -> None:
    plugin = lab.wat("recursion")
    with pytest.raises(wasmplug.Trap, match="call stack exhausted") as info:
        plugin.call("answer")
    assert type(info.value) is wasmplug.Trap


@attack
def attack_memory_growth_bomb(lab: Lab) -> None:
    plugin = lab.hostile()
    e = breach(wasmplug.MemoryLimitExceeded, "memory_bytes", lambda: plugin.call("grow", 0))
    assert e.allowed == 64 << 20
    assert e.used is not None
    assert e.allowed - (2 << 20) < e.used <= e.allowed


@attack
def attack_stuck_call_holds_up_the_next_caller(lab: Lab) -> None:
    """A call spinning until its deadline holds the plugin: another caller gets
    PluginBusy after Limits.queue_ms instead of waiting it out (nothing of its call
    runs), the spinning call ends with DeadlineExceeded, and the next call works."""
    plugin = lab.hostile(fuel=None, deadline_ms=1_000, queue_ms=100)
    spun: list[BaseException] = []

    def spin() -> None:
        try:
            plugin.call("spin")
        except wasmplug.WasmplugError as e:
            spun.append(e)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    busy: wasmplug.PluginBusy | None = None
    give_up = time.monotonic() + CONTAINED_WITHIN_S
    # Until the spinner holds the plugin. Between two calls that got the plugin this
    # thread leaves it free for a moment: a lock is not fair, and a thread calling in
    # a tight loop could keep it from the spinner for all of the spinner's queue_ms.
    while busy is None and spinner.is_alive() and time.monotonic() < give_up:
        try:
            plugin.call("bump")
        except wasmplug.PluginBusy as e:
            busy = e
        else:
            time.sleep(0.002)
    join_contained([spinner], lab.engine)
    assert busy is not None, f"never busy: the spinner ended with {spun!r}"
    assert type(busy) is wasmplug.PluginBusy
    assert (busy.plugin, busy.function, busy.limit, busy.allowed) == (
        "attacker",
        "bump",
        "queue_ms",
        100,
    )
    assert busy.used is not None
    assert 90 <= busy.used < 5_000
    assert busy.busy_with == "spin"
    assert len(spun) == 1
    assert type(spun[0]) is wasmplug.DeadlineExceeded
    assert plugin.audit_counts == {"breach:queue_ms": 1, "breach:deadline_ms": 1}
    assert plugin.call("bump") == 1  # a fresh instance after the deadline


@attack
def attack_wasi_sleep_past_the_deadline(lab: Lab) -> None:
    """A 10 s sleep under a 1 s deadline: DeadlineExceeded at once, not after 10 s."""
    plugin = lab.hostile(fuel=None)
    start = time.perf_counter()
    e = breach(wasmplug.DeadlineExceeded, "deadline_ms", lambda: plugin.call("nap", 10_000))
    assert time.perf_counter() - start < 1.0
    assert "asked WASI to wait 10,000.0 ms" in str(e)


@attack
def attack_wasi_sleep_within_the_deadline(lab: Lab) -> None:
    plugin = lab.hostile(fuel=None)
    with pytest.raises(wasmplug.WasiRefusedError) as info:
        plugin.call("nap", 5)
    assert type(info.value) is wasmplug.WasiRefusedError
    assert info.value.wasi_function.endswith(lab.wasi_wait("#subscribe-duration"))


@attack
def attack_wasi_poll_past_the_deadline(lab: Lab) -> None:
    plugin = lab.attacks()
    start = time.perf_counter()
    e = breach(wasmplug.DeadlineExceeded, "deadline_ms", lambda: plugin.call("poll-clock", 3_000))
    assert time.perf_counter() - start < 1.0
    assert f"{lab.wasi_wait('#subscribe-duration')}), past its deadline (1000 ms)" in str(e)
    assert plugin.call("clock-reads") >= 1  # reading the clock is fine


@attack
def attack_wasi_wait_until_an_instant(lab: Lab) -> None:
    plugin = lab.attacks()
    e = breach(wasmplug.DeadlineExceeded, "deadline_ms", lambda: plugin.call("wait-until", 60_000))
    assert f"{lab.wasi_wait('#subscribe-instant')}), past its deadline" in str(e)


def seconds_to_deadline_with_busy_threads(call: Callable[[], object]) -> float:
    """Runs ``call``, which must breach its deadline, while four host threads spin in
    Python (the epoch ticker, and any callback the guest needs, must win the GIL from
    them); returns the seconds it took."""
    stop = threading.Event()

    def busy() -> None:
        x = 0
        while not stop.is_set():
            x += 1

    threads = [threading.Thread(target=busy) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        start = time.perf_counter()
        breach(wasmplug.DeadlineExceeded, "deadline_ms", call)
        return time.perf_counter() - start
    finally:
        stop.set()
        for t in threads:
            t.join(CONTAINED_WITHIN_S)


@attack
def attack_deadline_under_gil_contention(lab: Lab) -> None:
    """An endless guest loop stops at its deadline, within a margin, while four host
    threads spin in Python."""
    plugin = lab.hostile(fuel=None, deadline_ms=200)
    elapsed = seconds_to_deadline_with_busy_threads(lambda: plugin.call("spin"))
    assert 0.2 <= elapsed < 2.0, elapsed


@attack
def attack_memory_growth_storm_under_gil_contention(lab: Lab) -> None:
    """A guest growing its memory a page at a time (on the component path every
    growth runs wasmplug's memory callback, which needs the GIL) and then looping
    still stops at its deadline, within the same margin, while four host threads
    spin in Python; its memory stays within the limit."""
    plugin = lab.hostile(fuel=None, deadline_ms=200, memory_bytes=64 << 20)
    elapsed = seconds_to_deadline_with_busy_threads(lambda: plugin.call("grow-pages", 0))
    assert 0.2 <= elapsed < 2.0, elapsed
    stats = plugin.last_call
    assert stats is not None
    assert stats.memory_bytes is not None
    assert stats.memory_bytes <= 64 << 20


@attack
def attack_host_call_storms_from_eight_threads(lab: Lab) -> None:
    """Eight tenants flood host calls from eight threads: each call ends at its
    deadline (every host call checks it), none holds the others."""
    limits = attrs.evolve(STRICT_LIMITS, fuel=None, deadline_ms=200, host_calls=None)
    plugins = [
        lab.load("attacks", world=ATTACKS_WORLD, name="attacker", limits=limits) for _ in range(8)
    ]
    errors: list[BaseException] = []

    def storm(plugin: wasmplug.Plugin) -> None:
        try:
            plugin.call("host-call-storm", 4_000_000_000)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=storm, args=(p,), daemon=True) for p in plugins]
    start = time.perf_counter()
    for t in threads:
        t.start()
    join_contained(threads, lab.engine)
    assert time.perf_counter() - start < 5.0
    assert len(errors) == 8
    assert all(type(e) is wasmplug.DeadlineExceeded for e in errors), errors


@attack
def attack_start_function_loops(lab: Lab) -> None:
    """A start function that never returns: the load fails at the deadline, caused by
    the typed breach; with fuel as the only limit, at the fuel limit."""
    with pytest.raises(wasmplug.InstantiationError) as info:
        lab.wat("start-loop", fuel=None, deadline_ms=300)
    assert type(info.value.__cause__) is wasmplug.DeadlineExceeded
    assert "start-up code ran past its deadline (300 ms)" in str(info.value)
    with pytest.raises(wasmplug.InstantiationError) as info:
        lab.wat("start-loop", fuel=3_000_000, deadline_ms=None)
    assert type(info.value.__cause__) is wasmplug.FuelExhausted
    assert "start-up code ran out of fuel" in str(info.value)


@attack
def attack_many_linear_memories(lab: Lab) -> None:
    with pytest.raises(wasmplug.InstantiationError, match=r"memory count too high at 32"):
        lab.wat("many-memories")


@attack
def attack_huge_initial_memory(lab: Lab) -> None:
    with pytest.raises(wasmplug.InstantiationError, match=r"memory minimum size of 16384 pages"):
        lab.wat("huge-memory")


@attack
def attack_huge_initial_table(lab: Lab) -> None:
    with pytest.raises(wasmplug.InstantiationError, match=r"Limits.table_elements is 20000"):
        lab.wat("huge-table")


@attack
def attack_many_tables(lab: Lab) -> None:
    with pytest.raises(wasmplug.InstantiationError, match=r"table count too high at 11"):
        lab.wat("many-tables")


@attack
def attack_many_core_instances(lab: Lab) -> None:
    with pytest.raises(wasmplug.InstantiationError, match=r"instance count too high at 11"):
        lab.wat("many-instances")


@attack
def attack_table_growth(lab: Lab) -> None:
    """table.grow past ``Limits.table_elements`` fails inside the guest (it sees -1)."""
    plugin = lab.wat("table-bomb", world="table-bomb", table_elements=5_000)
    size = plugin.call("grow-table", 1_000)
    assert size == 1 + 4 * 1_000  # one more step of 1,000 would pass 5,000
    assert plugin.call("answer") == 42


# -- output, logs and stdio ------------------------------------------------------------------


def output_breach(plugin: wasmplug.Plugin, call: Callable[[], object]) -> None:
    """``call`` must raise OutputLimitExceeded (1 MiB) before anything is lifted; the
    instance is kept (the guest only answered too much) and the breach is audited."""
    e = breach(wasmplug.OutputLimitExceeded, "output_bytes", call)
    assert e.allowed == 1 << 20
    assert e.used is not None
    assert e.used > 1 << 20
    assert plugin.audit_counts == {"breach:output_bytes": 1}
    assert plugin.call("bump") == 1
    assert plugin.last_call is not None
    assert plugin.last_call.fresh_instance is False


@attack
def attack_giant_string_output(lab: Lab) -> None:
    plugin = lab.hostile(output_bytes=1 << 20)
    output_breach(plugin, lambda: plugin.call("big-output", 8 << 20))


@attack
def attack_giant_bytes_output(lab: Lab) -> None:
    plugin = lab.hostile(output_bytes=1 << 20)
    output_breach(plugin, lambda: plugin.call("big-bytes", 2 << 20))


@attack
def attack_giant_list_of_records(lab: Lab) -> None:
    """200,000 records of 13 bytes each (u32, a string header and one byte)."""
    plugin = lab.hostile(output_bytes=1 << 20)
    output_breach(plugin, lambda: plugin.call("big-records", 200_000))


@attack
def attack_giant_list_of_strings(lab: Lab) -> None:
    plugin = lab.hostile(output_bytes=1 << 20)
    output_breach(plugin, lambda: plugin.call("big-strings", 1_000, 2_048))


@attack
def attack_output_past_wasmtime_copy_budget(lab: Lab) -> None:
    """Without an output limit, wasmtime's own copy budget (about 2.7 million list
    elements per call) stops a huge list: the same typed breach, amount unknown. (The
    fast path copies bytes in one piece and has no such budget: the guest's memory
    limit bounds what it can return.)"""
    plugin = lab.hostile(output_bytes=None)
    if lab.core:
        assert plugin.call("big-bytes", 3 << 20) == b"\x07" * (3 << 20)
        return
    e = breach(
        wasmplug.OutputLimitExceeded, "output_bytes", lambda: plugin.call("big-bytes", 3 << 20)
    )
    assert e.used is None
    assert "copy budget" in str(e)


@attack
def attack_log_record_flood(lab: Lab) -> None:
    plugin = lab.load(
        "hostile",
        world=HOSTILE_WORLD,
        name="attacker",
        grants=wasmplug.Grants(log=True),
        limits=attrs.evolve(STRICT_LIMITS, log_records=100),
    )
    e = breach(wasmplug.LogLimitExceeded, "log_records", lambda: plugin.call("spam-log", 5_000, 1))
    assert (e.allowed, e.used) == (100, 101)
    assert plugin.audit_counts == {"breach:log_records": 1}


@attack
def attack_log_bytes_flood(lab: Lab) -> None:
    plugin = lab.load(
        "hostile",
        world=HOSTILE_WORLD,
        name="attacker",
        grants=wasmplug.Grants(log=True),
        limits=attrs.evolve(STRICT_LIMITS, log_bytes=1 << 20, log_records=None),
    )
    e = breach(
        wasmplug.LogLimitExceeded, "log_bytes", lambda: plugin.call("spam-log", 10_000, 2_048)
    )
    assert (e.allowed, e.used) == (1 << 20, 513 * 2_048)


def stdio_flood(lab: Lab, export: str, *, forwarded: bool) -> None:
    """Floods stdout or stderr with 64 MiB in lines of 1 KiB under a 64 KiB limit: the
    writes past it fail in the guest, the call raises StdioLimitExceeded."""
    plugin = lab.load(
        "hostile",
        world=HOSTILE_WORLD,
        name="attacker",
        grants=wasmplug.Grants(stdio=forwarded),
        limits=attrs.evolve(STRICT_LIMITS, stdio_bytes=64 << 10),
    )
    e = breach(
        wasmplug.StdioLimitExceeded, "stdio_bytes", lambda: plugin.call(export, 65_536, 1_024)
    )
    assert e.allowed == 64 << 10
    assert e.used is not None
    assert 64 << 10 < e.used < 1 << 20  # the guest stopped writing soon after
    assert plugin.call("bump") == 1  # a fresh instance
    assert plugin.audit_counts == {"breach:stdio_bytes": 1}


@attack
def attack_stdout_flood(lab: Lab) -> None:
    stdio_flood(lab, "flood-stdout", forwarded=False)


@attack
def attack_stderr_flood_forwarded_to_logs(lab: Lab) -> None:
    stdio_flood(lab, "flood-stderr", forwarded=True)


# -- forged values at the canonical-ABI boundary ----------------------------------------


def forged(lab: Lab, function: str, *args: object) -> str:
    """Calls a function of the ``forged`` plugin, which must trap while its result (or
    argument) crosses the boundary (wasmtime's Trap on the component path,
    InvalidGuestValue from wasmplug's own lifting on the fast path); returns the
    message. The next call runs."""
    plugin = lab.wat("forged", world="forged")
    with pytest.raises(wasmplug.Trap) as info:
        plugin.call(function, *args)
    assert type(info.value) is (wasmplug.InvalidGuestValue if lab.core else wasmplug.Trap)
    assert plugin.call("answer") == 42
    assert plugin.last_call is not None
    assert plugin.last_call.fresh_instance is True
    return str(info.value)


@attack
def attack_result_string_not_utf8(lab: Lab) -> None:
    message = forged(lab, "bad-string")
    assert ("not valid UTF-8" if lab.core else "invalid utf-8") in message


@attack
def attack_result_list_longer_than_memory(lab: Lab) -> None:
    message = forged(lab, "huge-list")
    assert ("reach past the end" if lab.core else "list pointer/length out of bounds") in message


@attack
def attack_result_enum_case_out_of_range(lab: Lab) -> None:
    message = forged(lab, "bad-enum")
    assert ("discriminant 7 of enum" if lab.core else "discriminant 7 out of range") in message


@attack
def attack_result_char_is_a_surrogate(lab: Lab) -> None:
    message = forged(lab, "bad-char")
    assert ("not a Unicode scalar" if lab.core else "out of range for `char`") in message


@attack
def attack_realloc_points_outside_memory(lab: Lab) -> None:
    message = forged(lab, "take-string", "hello")
    assert ("cabi_realloc returned" if lab.core else "realloc return: beyond end") in message


# -- files and environment -----------------------------------------------------------


def data_grant(lab: Lab) -> tuple[wasmplug.Grants, Path]:
    data = lab.data_dir()
    grants = wasmplug.Grants(files=[wasmplug.Preopen(host_path=data, guest_path="/data")])
    return grants, data


@attack
def attack_path_traversal(lab: Lab) -> None:
    grants, _ = data_grant(lab)
    plugin = lab.attacks(grants)
    assert plugin.call("read-file", "/data/ok.txt") == "fine"
    for path in ("/data/../secret.txt", "/data/./../data/../secret.txt", "/data/../../etc/passwd"):
        assert "Operation not permitted" in guest_sees(partial(plugin.call, "read-file", path))


@attack
def attack_symlink_escape(lab: Lab) -> None:
    grants, _ = data_grant(lab)
    plugin = lab.attacks(grants)
    for link in ("/data/abs-link", "/data/rel-link"):
        assert "Operation not permitted" in guest_sees(partial(plugin.call, "read-file", link))


@attack
def attack_write_to_read_only_preopen(lab: Lab) -> None:
    grants, data = data_grant(lab)
    plugin = lab.attacks(grants)
    for call in (
        lambda: plugin.call("write-file", "/data/new.txt", "x"),
        lambda: plugin.call("write-file", "/data/ok.txt", "overwritten"),
        lambda: plugin.call("remove-file", "/data/ok.txt"),
    ):
        assert "Operation not permitted" in guest_sees(call)
    assert sorted(p.name for p in data.iterdir()) == ["abs-link", "ok.txt", "rel-link"]
    assert (data / "ok.txt").read_text() == "fine"


@attack
def attack_files_outside_every_preopen(lab: Lab) -> None:
    plugin = lab.attacks()
    for path in ("/etc/passwd", "/proc/self/environ", str(REPO_ROOT / "README.md")):
        assert "No such file or directory" in guest_sees(partial(plugin.call, "read-file", path))
    assert "No such file or directory" in guest_sees(lambda: plugin.call("list-dir", "/"))


def writable_grant(lab: Lab, max_bytes: int | None = 64 << 20) -> tuple[wasmplug.Grants, Path]:
    """A writable preopen ``/data`` of its own, holding nothing yet."""
    data = lab.tmp / "rw"
    data.mkdir(parents=True)
    preopen = wasmplug.Preopen(
        host_path=data, guest_path="/data", writable=True, max_bytes=max_bytes
    )
    return wasmplug.Grants(files=[preopen]), data


def too_many_files(lab: Lab) -> str:
    """What the guest's refused open says: EMFILE on the fast path (WASI preview 1); on
    the component path error-code.quota (WASI 0.2 has no code for EMFILE), which
    wasi-libc turns into EDQUOT."""
    if lab.core:
        return "No file descriptors available (os error 33)"
    return "Quota exceeded (os error 19)"


def host_can_open_files_and_sockets(tmp: Path) -> None:
    """The host can still open a file and a socket (its descriptors are not exhausted)."""
    with (tmp / "host-file.txt").open("w") as f:
        f.write("host")
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))


def descriptors_under(path: Path) -> int:
    """The host's descriptors that point into ``path``."""
    root = str(path.resolve())
    return sum(t == root or t.startswith(root + "/") for t in fd_targets())


def holds_64_then_releases(lab: Lab, plugin: wasmplug.Plugin, data: Path) -> None:
    """After the guest's open past ``open_files=64`` was refused: it holds its 64 files
    (and its instance's preopen), the host can open files and sockets, the refusal
    was audited once, and releasing the files closes them."""
    assert 64 <= descriptors_under(data) <= 64 + 1
    host_can_open_files_and_sockets(lab.tmp)
    assert plugin.audit_counts == {"breach:open_files": 1}
    assert plugin.call("release-files") == 64
    assert descriptors_under(data) <= 1
    host_can_open_files_and_sockets(lab.tmp)


@attack
def attack_descriptor_exhaustion_across_calls(lab: Lab) -> None:
    """Files held open across calls stop at Limits.open_files (64 here): the 65th open
    is refused in the guest (EMFILE on the fast path; on the component path WASI 0.2's
    error-code.quota, EDQUOT in the guest), audited once; the host can still open
    files during the call and after it."""
    grants, data = writable_grant(lab)
    plugin = lab.attacks(grants, limits=attrs.evolve(STRICT_LIMITS, open_files=64))
    assert plugin.call("hold-files", "/data", 40) == (40, "")
    assert descriptors_under(data) >= 40  # the files are really held between calls
    held, refusal = plugin.call("hold-files", "/data", 40)
    assert (held, refusal) == (24, too_many_files(lab))
    holds_64_then_releases(lab, plugin, data)


@attack
def attack_descriptor_exhaustion_in_one_call(lab: Lab) -> None:
    """Thousands of files opened within one call: the open past the limit (64) is
    refused in the guest on both paths, before any descriptor is created; the guest
    handles the refusal and keeps its 64. The host can open files while the call
    runs (its audit callback does, at the refusal)."""
    grants, data = writable_grant(lab)
    during: list[str] = []

    def audited(event: wasmplug.AuditEvent) -> None:
        host_can_open_files_and_sockets(lab.tmp)
        during.append(event.name)

    plugin = lab.attacks(grants, audit=audited)
    assert plugin.call("hold-files", "/data", 5_000) == (64, too_many_files(lab))
    assert during == ["open_files"]
    holds_64_then_releases(lab, plugin, data)


@attack
def attack_files_held_by_their_streams(lab: Lab) -> None:
    """A file stays open while a stream made from it lives, after its descriptor is
    dropped (WASI 0.2): 100 files kept only through their write streams stop at
    Limits.open_files (64), the 65th open refused in the guest (error-code quota; on
    the fast path, which has no streams, the files themselves: EMFILE)."""
    grants, data = writable_grant(lab)
    plugin = lab.attacks(grants)
    refusal = too_many_files(lab) if lab.core else "quota"
    assert plugin.call("hold-streams", "/data", 100) == (64, refusal)
    holds_64_then_releases(lab, plugin, data)
    assert plugin.call("hold-streams", "/data", 10) == (10, "")


@attack
def attack_filling_a_writable_preopen(lab: Lab) -> None:
    """Writing 32 MiB into a preopen with a 1 MiB budget stops at the budget, nothing
    written past it: on the fast path the write is refused in the guest (EDQUOT); on
    the component path a stream write has no error case for it, so the call fails
    with DiskLimitExceeded. A write that would pass the budget again is refused the
    same way; deleting files frees the budget."""
    grants, data = writable_grant(lab, max_bytes=1 << 20)
    plugin = lab.attacks(grants)
    fill = partial(plugin.call, "fill-file", "/data/big", 65_536, 32 << 20)
    if lab.core:
        written, refusal = fill()
        assert refusal == "Quota exceeded (os error 19)"
        assert written <= 1 << 20
        assert (data / "big").stat().st_size == written
    else:
        e = breach(wasmplug.DiskLimitExceeded, "max_bytes", fill)
        assert isinstance(e, wasmplug.DiskLimitExceeded)
        assert (e.preopen, e.allowed) == ("/data", 1 << 20)
        assert e.used is not None
        assert e.used > 1 << 20
        assert (data / "big").stat().st_size <= 1 << 20
    again = partial(plugin.call, "fill-file", "/data/b", 65_536, 65_536)
    if lab.core:
        assert again() == (0, "Quota exceeded (os error 19)")
    else:
        breach(wasmplug.DiskLimitExceeded, "max_bytes", again)
    assert tree_bytes(str(data)) <= 1 << 20
    assert plugin.audit_counts["breach:max_bytes"] >= 1
    plugin.call("remove-file", "/data/big")
    plugin.call("write-file", "/data/small", "fits")
    assert (data / "small").read_text() == "fits"
    host_can_open_files_and_sockets(lab.tmp)


@attack
def attack_filling_a_preopen_with_small_files(lab: Lab) -> None:
    """Empty files cost the budget too (4,096 bytes an entry): 100,000 of them stop at
    256 under 1 MiB, refused in the guest (EDQUOT), on both backends."""
    grants, data = writable_grant(lab, max_bytes=1 << 20)
    plugin = lab.attacks(grants)
    created, refusal = plugin.call("many-files", "/data", 100_000, 0)
    assert refusal.endswith("Quota exceeded (os error 19)")
    assert created == (1 << 20) // 4096
    assert len(list(data.iterdir())) == created
    assert plugin.audit_counts["breach:max_bytes"] == 1
    host_can_open_files_and_sockets(lab.tmp)


@attack
def attack_ungranted_env(lab: Lab) -> None:
    assert "PATH" in os.environ
    plugin = lab.attacks(wasmplug.Grants(env={"ALLOWED": "1"}))
    for name in ("PATH", "HOME", "USER", "PWD"):
        assert plugin.call("get-env", name) is None
    assert plugin.call("get-env", "ALLOWED") == "1"


# -- capabilities and imports ------------------------------------------------------------


@attack
def attack_ungranted_capabilities(lab: Lab) -> None:
    plugin = lab.attacks()
    answers = plugin.call("probe-capabilities")
    assert answers == [
        "denied by the host: log: logging is not granted",
        "denied by the host: config: configuration is not granted (key 'secret')",
        "denied by the host: kv: key-value storage is not granted (get 'secret')",
    ]
    assert plugin.last_call is not None
    assert plugin.last_call.denials == 3


@attack
def attack_unprovided_import(lab: Lab) -> None:
    # The component names the interface; its core module (the fast path) the module.
    name = r"secrets#read" if lab.core else r"acme:admin/secrets@1\.0\.0"
    with pytest.raises(wasmplug.LinkError, match=rf"imports {name}") as info:
        lab.wat("unprovided-import")
    assert type(info.value) is wasmplug.LinkError
    assert info.value.plugin == "unprovided-import"


@attack
def attack_kv_quota(lab: Lab) -> None:
    store = wasmplug.MemoryKvStore()
    plugin = lab.attacks(wasmplug.Grants(kv=wasmplug.KvGrant(quota_bytes=4096)), kv_store=store)
    stored, refusal = plugin.call("kv-fill", 100)
    assert refusal.startswith("quota exceeded: kv: namespace 'attacker' would hold ")
    assert stored > 0
    assert store.size("attacker") <= 4096
    assert len(store.keys("attacker")) == stored


@attack
def attack_kv_key_size(lab: Lab) -> None:
    plugin = lab.attacks(wasmplug.Grants(kv=wasmplug.KvGrant()))
    refusal = guest_sees(lambda: plugin.call("kv-big-key", 16 << 20))
    assert refusal == "rejected by the host as invalid: kv: the key is longer than 1024 bytes"


@attack
def attack_kv_key_count(lab: Lab) -> None:
    """Many tiny entries: the quota counts each entry's bookkeeping too, so the number of
    keys (and the host memory behind them) is bounded by the byte quota."""
    store = wasmplug.MemoryKvStore()
    grants = wasmplug.Grants(kv=wasmplug.KvGrant(quota_bytes=64 << 10))
    plugin = lab.attacks(grants, kv_store=store)
    stored, refusal = plugin.call("kv-many-keys", 100_000)
    assert refusal.startswith("quota exceeded: ")
    assert stored == len(store.keys("attacker"))
    assert stored <= (64 << 10) // wasmplug.MemoryKvStore.ENTRY_OVERHEAD


# -- outbound HTTP --------------------------------------------------------------------------


@attrs.define
class HttpAttack:
    """An HTTP attack's setup: a server on 127.0.0.1, the attacker (the ``http``
    fixture) under ``grant``, and a well-behaved ``fetcher`` beside it granted the same
    server, which must still fetch from it after the attack."""

    server: Server
    attacker: wasmplug.Plugin
    fetcher: wasmplug.Plugin

    def fetch(self, url: str) -> object:
        return self.attacker.call("fetch", "GET", url, [], b"")

    def refused(self, url: str) -> str:
        """The attacker's request, which the guest must see refused: what it saw."""
        before = len(Handler.received)
        seen = guest_sees(partial(self.fetch, url))
        assert self.attacker.last_call is not None
        assert self.attacker.last_call.denials == (1 if seen.startswith("denied: ") else 0)
        self.neighbour_fine()
        assert len(Handler.received) - before <= 2  # its own request, the neighbour's
        return seen

    def neighbour_fine(self) -> None:
        reply = self.fetcher.call("fetch", "GET", self.server.url("/big/3"), [], b"")
        assert isinstance(reply, tuple)
        assert reply[::2] == (200, b"xxx")
        assert self.attacker.call("ping", 1) == 2


def local_grant(server: Server, **kwargs: Any) -> wasmplug.HttpGrant:
    """``GET http://127.0.0.1:<port>`` of ``server``, loopback allowed."""
    return wasmplug.HttpGrant(
        allow=[wasmplug.HttpRule(host="127.0.0.1", scheme="http", port=server.port)],
        **{"allow_private": True, **kwargs},
    )


def http_attack(lab: Lab, grant: Callable[[Server], wasmplug.HttpGrant]) -> HttpAttack:
    server = lab.server()
    attacker = lab.load(
        "http", world=HTTP_WORLD, name="attacker", grants=wasmplug.Grants(http=grant(server))
    )
    fetcher = lab.load(
        "http", world=HTTP_WORLD, name="fetcher", grants=wasmplug.Grants(http=local_grant(server))
    )
    return HttpAttack(server, attacker, fetcher)


@attack
def attack_http_to_an_unlisted_host(lab: Lab) -> None:
    """The same server under a name the grant does not list: denied before anything is
    sent, the guest told what would allow it."""
    h = http_attack(lab, local_grant)
    before = len(Handler.received)
    seen = h.refused(h.server.url("/echo", host="localhost"))
    port = h.server.port
    assert seen == (
        f"denied: http: GET http://localhost:{port}: the host is not in the allow-list; "
        f"grant HttpRule(host='localhost', scheme='http', port={port}, methods=('GET',))"
    )
    assert Handler.received[before:] == [("GET", "/big/3")]  # the neighbour's only
    assert h.attacker.audit_counts == {"denial:http": 1}


@attack
def attack_http_redirect_off_the_list(lab: Lab) -> None:
    """A listed server redirects to one that is not: the redirect is fetched, its
    target never is."""
    h = http_attack(lab, local_grant)
    elsewhere = lab.server()
    before = len(Handler.received)
    path = f"/redirect?to={elsewhere.url('/echo')}"
    seen = h.refused(h.server.url(path))
    assert seen == (
        f"denied: http: GET http://127.0.0.1:{elsewhere.port}: port {elsewhere.port} is not "
        f"allowed for this host; grant HttpRule(host='127.0.0.1', scheme='http', "
        f"port={elsewhere.port}, methods=('GET',))"
    )
    assert Handler.received[before:] == [("GET", path), ("GET", "/big/3")]
    assert h.attacker.audit_counts == {"denial:http": 1}


@attack
def attack_http_name_resolving_to_loopback(lab: Lab) -> None:
    """A listed name (``localhost``) that resolves to 127.0.0.1, without
    ``allow_private``: the host resolves it itself and refuses before connecting."""

    def grant(server: Server) -> wasmplug.HttpGrant:
        rule = wasmplug.HttpRule(host="localhost", scheme="http", port=server.port)
        return wasmplug.HttpGrant(allow=[rule])

    h = http_attack(lab, grant)
    before = len(Handler.received)
    seen = h.refused(h.server.url("/echo", host="localhost"))
    assert seen == (
        "denied: http: 'localhost' resolves to 127.0.0.1, a loopback address; "
        "grant HttpGrant(allow_private=True) to allow it"
    )
    assert Handler.received[before:] == [("GET", "/big/3")]


@attack
def attack_http_slow_server_past_the_deadline(lab: Lab) -> None:
    """A server that answers after 30 s, under the 1 s deadline and a longer grant
    timeout: the call ends with DeadlineExceeded at the deadline, naming the host
    function; the plugin's next call works."""
    h = http_attack(lab, partial(local_grant, timeout_ms=60_000))
    start = time.perf_counter()
    e = breach(wasmplug.DeadlineExceeded, "deadline_ms", partial(h.fetch, h.server.url("/slow/30")))
    assert time.perf_counter() - start < 3.0
    assert e.allowed == 1_000
    assert "wasmplug:host/http@0.1.0#send" in str(e)
    assert h.attacker.audit_counts == {"breach:deadline_ms": 1}
    h.neighbour_fine()


@attack
def attack_http_oversized_response(lab: Lab) -> None:
    """Responses past ``max_response_bytes`` (64 KiB): one declaring 100 MB is refused
    before its body is read, 100 MB with no declared length is cut at the cap."""
    h = http_attack(lab, partial(local_grant, max_response_bytes=64 << 10))
    seen = h.refused(h.server.url(f"/big/{100_000_000}"))
    assert seen == (
        "too-large: http: the response declares 100000000 bytes of body; the cap is 65536 bytes"
    )
    assert h.refused(h.server.url(f"/flood/{100_000_000}")) == (
        "too-large: http: the response exceeds 65536 bytes"
    )
    assert h.attacker.audit_counts == {}


# -- host functions -----------------------------------------------------------------------


@attack
def attack_host_call_storm(lab: Lab) -> None:
    plugin = lab.attacks(wasmplug.Grants(log=True))
    storm = lambda: plugin.call("host-call-storm", 10**6)  # noqa: E731
    e = breach(wasmplug.HostCallsExceeded, "host_calls", storm)
    assert e.allowed == 10_000
    assert e.stats is not None
    assert e.stats.host_calls == 10_001


def bad_host_argument(lab: Lab, export: str, component: str, core: str) -> None:
    """The guest hands a host function an argument that breaks the canonical ABI:
    wasmtime traps on the component path, the fast path raises InvalidGuestValue
    (a Trap) before the host function runs."""
    plugin = lab.attacks(wasmplug.Grants(log=True))
    if not lab.core:
        trap(lambda: plugin.call(export), component)
        return
    with pytest.raises(wasmplug.InvalidGuestValue) as info:
        plugin.call(export)
    assert info.value.plugin == "attacker"
    assert core in str(info.value)
    assert "wasmplug:host/log@0.1.0#log" in str(info.value)


@attack
def attack_invalid_utf8_to_host_function(lab: Lab) -> None:
    bad_host_argument(lab, "bad-utf8-to-host", "invalid utf-8", "not valid UTF-8")


@attack
def attack_out_of_bounds_pointer_to_host_function(lab: Lab) -> None:
    bad_host_argument(lab, "oob-pointer-to-host", "out of bounds of memory", "reach past the end")


@attack
def attack_out_of_bounds_length_to_host_function(lab: Lab) -> None:
    bad_host_argument(lab, "oob-length-to-host", "out of bounds of memory", "reach past the end")


@attack
def attack_trap_inside_a_host_callback(lab: Lab) -> None:
    """The host's own function fails while the guest calls it: the call raises
    HostFunctionError caused by the host's exception; the guest is not told why."""

    class Broken:
        def lookup(self, name: str) -> None:
            raise RuntimeError(f"database down while looking up {name}")

        def reserve(self, name: str, qty: int) -> int:
            raise AssertionError("not called")

        def emit(self, event: str) -> None:
            raise AssertionError("not called")

        def ping(self) -> int:
            return 1

    plugin = lab.load(
        "hostfns",
        world=fixture_world("hostfns"),
        name="attacker",
        imports={"inventory": Broken(), "now-ms": lambda: 0},
    )
    with pytest.raises(wasmplug.HostFunctionError) as info:
        plugin.call("lookup", "widget")
    e = info.value
    assert type(e) is wasmplug.HostFunctionError
    assert e.host_function == "wasmplug-tests:hostfns/inventory@0.1.0#lookup"
    assert isinstance(e.__cause__, RuntimeError)
    assert plugin.call("call-ping") == 2  # the guest adds one to the host's answer
    assert plugin.last_call is not None
    assert plugin.last_call.fresh_instance is True


# -- the suite -------------------------------------------------------------------------------


@attrs.define
class Neighbour:
    """A well-behaved plugin beside the attacks: a kv counter that must go up by one on
    every check (its instance and its data survive) and a config value."""

    plugin: wasmplug.Plugin
    beats: int = 0

    def check(self) -> None:
        self.beats += 1
        assert self.plugin.call("kv-counter", "beats") == self.beats
        assert self.plugin.call("config-get", "greeting") == "hello"
        assert self.plugin.last_call is not None
        assert self.plugin.last_call.fresh_instance is False


@pytest.fixture(scope="module")
def neighbour(wasm_dir: Path, engine: wasmplug.Engine) -> Iterator[Neighbour]:
    plugin = wasmplug.load(
        wasm_dir / "caps.wasm",
        world=fixture_world("caps"),
        policy=wasmplug.Policy(
            grants=wasmplug.Grants(config={"greeting": "hello"}, kv=wasmplug.KvGrant()),
            limits=STRICT_LIMITS,
        ),
        engine=engine,
        name="neighbour",
    )
    n = Neighbour(plugin)
    n.check()
    yield n
    plugin.close()


def test_the_suite_is_complete() -> None:
    """The issue asks for at least 30 attacks; this counts what the suite holds, so a
    dropped attack shows."""
    assert len(ATTACKS) >= 57


@pytest.mark.parametrize(
    ("backend", "name"),
    [
        (backend, name)
        for backend in BACKENDS
        for name in sorted(ATTACKS)
        if not (backend == "core-module" and name in COMPONENT_ONLY)
    ],
)
def test_attack_is_contained(  # noqa: PLR0917 - pytest fixtures
    backend: str,
    name: str,
    request: pytest.FixtureRequest,
    engine: wasmplug.Engine,
    neighbour: Neighbour,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Runs the attack twice: the first run may set up what the host keeps for good
    (wasmtime's runtime threads and memory images), the second must leave the host's
    threads and file descriptors as the first left them."""
    plugin_dir = request.getfixturevalue("wasm_dir" if backend == "component" else "core_dir")
    seen: list[tuple[int, int]] = []
    for run in range(2):
        neighbour.check()
        lab = Lab(plugin_dir, engine, tmp_path / f"run{run}")
        with caplog.at_level(logging.INFO, logger="wasmplug"):
            try:
                ATTACKS[name](lab)
            finally:
                for plugin in lab.loaded:
                    plugin.close()
                for server in lab.servers:
                    server.close()
        neighbour.check()
        seen.append((python_threads(), open_fds()))
    # No log record the attack caused is large (denials and errors are cut short).
    assert all(len(r.getMessage()) < 4096 for r in caplog.records), "an oversized log record"
    (threads, fds), (threads_after, fds_after) = seen
    assert threads_after <= threads
    assert fds_after <= fds, "\n".join(fd_targets())


# -- attacks that need a process of their own ----------------------------------------------

# Calls the wasm-stack recursion (tests/wat/recursion.wat) from the main thread, then
# from a thread started after threading.stack_size(<argv[2]>), beside a neighbour, and
# prints what happened as JSON. With argv[3] == "unguarded" the native-stack check is
# replaced by a plain call: the host as it was before the check.
SMALL_STACK_CHILD = """
import json, resource, sys, threading
from pathlib import Path

import wasmtime

import wasmplug
from wasmplug import _stack

resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
wat, size, mode = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if mode == "unguarded":
    _stack.StackGuard.run = lambda self, fn, *args: fn(*args)
engine = wasmplug.Engine(cache_dir=None)
world = wasmplug.load_world(wat / "wit", "answer")
limits = wasmplug.Limits(memory_bytes=64 << 20, deadline_ms=1_000)
deep = wasmplug.load(
    bytes(wasmtime.wat2wasm((wat / "recursion.wat").read_text())),
    world=world, policy=wasmplug.Policy(limits=limits), engine=engine, name="attacker",
)
neighbour = wasmplug.load(
    bytes(wasmtime.wat2wasm(
        '(component (core module $m (func (export "answer") (result i32) i32.const 42))'
        ' (core instance $i (instantiate $m))'
        ' (func (export "answer") (result u32) (canon lift (core func $i "answer"))))'
    )),
    world=world, engine=engine, name="neighbour",
)
report = {}

def outcome():
    try:
        deep.call("answer")
    except wasmplug.WasmplugError as e:
        return [type(e).__name__, e.plugin, str(e)]
    return ["returned"]

report["main"] = outcome()
report["main_offloads"] = engine.stack_offloads
threading.stack_size(size)

def small():
    report["thread"] = outcome()
    report["neighbour"] = neighbour.call("answer")

thread = threading.Thread(target=small)
thread.start()
thread.join()
report["offloads"] = engine.stack_offloads
print(json.dumps(report))
"""


def run_small_stack_child(stack_size: int, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SMALL_STACK_CHILD, str(WAT), str(stack_size), mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("stack_kib", [256, 512])
def test_deep_recursion_from_a_small_stack_thread(stack_kib: int) -> None:
    """Deep wasm recursion called from a thread with a 256 or 512 KiB native stack (less
    than the 512 KiB wasm stack plus host frames) ends in a Trap naming the plugin,
    as from the main thread, instead of killing the host with SIGSEGV: the call runs
    on a worker thread with room for it. The main thread's call runs where it is
    made (no worker), and a neighbour plugin answers from the small thread after.
    In a child process, so that a failure cannot take the test runner down."""
    run = run_small_stack_child(stack_kib << 10, "guarded")
    assert run.returncode == 0, f"child ended with {run.returncode}:\n{run.stderr[-3000:]}"
    report = json.loads(run.stdout)
    for where in ("main", "thread"):
        kind, plugin, message = report[where]
        assert (kind, plugin) == ("Trap", "attacker")
        assert "call stack exhausted" in message
    assert report["main_offloads"] == 0
    assert report["offloads"] == 2  # the attack's call and the neighbour's
    assert report["neighbour"] == 42


def test_deep_recursion_from_a_small_stack_thread_kills_an_unguarded_host() -> None:
    """The attack is real: without the native-stack check, the same call from a
    256 KiB thread kills the (child) process with SIGSEGV."""
    run = run_small_stack_child(256 << 10, "unguarded")
    assert run.returncode == -signal.SIGSEGV, run.stderr[-3000:]
