"""Native-stack safety (``wasmplug._stack``): a call runs on the calling thread when it
has room for the guest's stack plus host frames, else on a worker thread of the
engine, with the same outcome.

The calls here are shallow (or the engine's wasm stack small), so they fit the
threads they are made from even if the guard misjudged: nothing here can crash the
test runner. The deep recursion that would kill the host from a small-stack thread
runs in a child process (``tests/test_hostile.py``).
"""

from __future__ import annotations

import contextvars
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import wasmtime

import wasmplug
from conftest import REPO_ROOT, fixture_world
from wasmplug import _stack

T = TypeVar("T")
WORLD = fixture_world("hostfns")
WAT = REPO_ROOT / "tests" / "wat"
# A thread stack smaller than a call may need (768 KiB by default), even when glibc
# reuses a cached stack for it (up to four times the size asked for).
SMALL = 160 << 10
REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


def on_thread(fn: Callable[[], T], *, stack_size: int = 0) -> T:
    """Runs ``fn`` on a new thread with ``stack_size`` bytes of stack (0: the default)
    and returns its result or raises its exception."""
    box: list[Any] = []

    def main() -> None:
        try:
            box.append((True, fn()))
        except BaseException as e:
            box.append((False, e))

    previous = threading.stack_size(stack_size)
    try:
        thread = threading.Thread(target=main)
        thread.start()
    finally:
        threading.stack_size(previous)
    thread.join()
    ok, value = box[0]
    if not ok:
        raise value
    result: T = value
    return result


class Recorder:
    """An ``inventory`` implementation whose ``ping`` records where it ran."""

    def __init__(self, ping: Callable[[], int] | None = None) -> None:
        self.threads: list[str] = []
        self.requests: list[str] = []
        self.left: list[int | None] = []
        self._ping = ping

    def lookup(self, name: str) -> Any:
        return None

    def reserve(self, name: str, qty: int) -> int:
        return 0

    def emit(self, event: str) -> None:
        pass

    def ping(self) -> int:
        self.threads.append(threading.current_thread().name)
        self.requests.append(REQUEST.get())
        self.left.append(_stack.stack_left())
        return self._ping() if self._ping is not None else 41


@pytest.fixture
def engine() -> Iterator[wasmplug.Engine]:
    """An engine of its own, so that its offload count is this test's."""
    engine = wasmplug.Engine(cache_dir=None)
    yield engine
    engine.close()


def load_hostfns(
    wasm_dir: Path, engine: wasmplug.Engine, inventory: Any, name: str = "hostfns"
) -> wasmplug.Plugin:
    return wasmplug.load(
        wasm_dir / "hostfns.wasm",
        world=WORLD,
        engine=engine,
        name=name,
        imports={"inventory": inventory, "now-ms": lambda: 5},
    )


def test_stack_left_measures_the_calling_thread() -> None:
    """On Linux the room left is measured, and it is what the thread was given, less
    what is in use: the main thread has megabytes; a thread asked for 512 KiB has a
    little less than its stack (glibc may hand a new thread a cached stack up to four
    times the size asked for, so its size is read back, not assumed)."""
    main = _stack.stack_left()
    assert main is not None
    assert main > 1 << 20

    def measure() -> tuple[int | None, int]:
        assert _stack._PROBE is not None
        bounds = _stack._PROBE.bounds()
        assert bounds is not None
        return _stack.stack_left(), bounds[1] - bounds[0]

    left, size = on_thread(measure, stack_size=512 << 10)
    assert 500 << 10 <= size <= 2 << 20
    assert left is not None
    assert size - (64 << 10) < left < size


def test_the_fast_probe_agrees_with_the_reference() -> None:
    """The per-call probe (libc's memset as dl_iterate_phdr's callback, low 32 bits)
    is in use here and finds the same stack position as the Python-callback probe,
    on the main thread and on a small thread."""
    assert _stack._FAST
    assert _stack._STACK_LEFT is _stack._stack_left_fast

    def both() -> tuple[int | None, int | None]:
        return _stack._stack_left_fast(), _stack._stack_left_slow()

    for fast, slow in (both(), on_thread(both, stack_size=300 << 10)):
        assert fast is not None
        assert slow is not None
        assert abs(fast - slow) < 4096


def test_the_engine_states_its_wasm_stack() -> None:
    """The engine sets wasmtime's max_wasm_stack explicitly, and a call needs it plus
    the host margin; nonsense is refused."""
    engine = wasmplug.Engine(cache_dir=None)
    assert engine.max_wasm_stack_bytes == 512 << 10
    assert engine.native_stack_bytes == (512 << 10) + _stack.HOST_STACK_MARGIN
    engine.close()
    for bad in (0, 1024, 1.5, True, None):
        with pytest.raises(wasmplug.PolicyError, match="max_wasm_stack_bytes"):
            wasmplug.Engine(cache_dir=None, max_wasm_stack_bytes=bad)  # type: ignore[arg-type]


def test_ordinary_calls_run_on_the_calling_thread(wasm_dir: Path, engine: wasmplug.Engine) -> None:
    """From the main thread and from a thread of the default size, a call (and the
    host functions it makes) runs where it was made: no worker is involved."""
    inventory = Recorder()
    plugin = load_hostfns(wasm_dir, engine, inventory)
    assert plugin.call("call-ping") == 42
    assert on_thread(lambda: plugin.call("call-ping")) == 42
    assert engine.stack_offloads == 0
    assert inventory.threads[0] == threading.current_thread().name
    assert not any(name.startswith("wasmplug-stack") for name in inventory.threads)
    plugin.close()


def test_calls_from_a_small_stack_thread_run_on_a_worker(
    wasm_dir: Path, engine: wasmplug.Engine
) -> None:
    """Loading and calling from a 160 KiB thread: start-up code and the call run on a
    worker thread with a large stack; host functions run there, see the caller's
    context variables, and the result and stats come back as from an inline call."""
    inventory = Recorder()

    def work() -> tuple[wasmplug.Plugin, int]:
        plugin = load_hostfns(wasm_dir, engine, inventory)
        REQUEST.set("r-17")
        return plugin, plugin.call("call-ping")

    plugin, answer = on_thread(work, stack_size=SMALL)
    assert answer == 42
    assert engine.stack_offloads == 2  # instantiation at load, then the call
    assert inventory.threads[0].startswith("wasmplug-stack-")
    assert inventory.requests == ["r-17"]
    left = inventory.left[0]
    assert left is not None
    assert left > engine.native_stack_bytes
    stats = plugin.last_call
    assert stats is not None
    assert (stats.function, stats.host_calls, stats.fresh_instance) == ("call-ping", 1, False)
    # Worker threads are kept for the next slow-path call.
    assert on_thread(lambda: plugin.call("call-ping"), stack_size=SMALL) == 42
    assert inventory.threads[1] == inventory.threads[0]
    assert engine.stack_offloads == 3
    plugin.close()


def test_failures_on_a_worker_are_the_same_exceptions(
    wasm_dir: Path, engine: wasmplug.Engine
) -> None:
    """A host function failing during an offloaded call gives the HostFunctionError
    (its cause the host's exception) and stats an inline call gives; the plugin then
    continues on a fresh instance."""

    def boom() -> int:
        raise KeyError("gone")

    plugin = load_hostfns(wasm_dir, engine, Recorder(boom))
    with pytest.raises(wasmplug.HostFunctionError) as info:
        on_thread(lambda: plugin.call("call-ping"), stack_size=SMALL)
    e = info.value
    assert isinstance(e.__cause__, KeyError)
    assert e.stats is not None
    assert plugin.last_call is e.stats
    assert e.plugin == "hostfns"
    assert on_thread(lambda: plugin.call("pong"), stack_size=SMALL) == 7
    assert plugin.last_call is not None
    assert plugin.last_call.fresh_instance is True
    plugin.close()


def test_reentry_is_detected_on_the_worker(wasm_dir: Path, engine: wasmplug.Engine) -> None:
    """A host function running on the worker that calls back into its own plugin gets
    ReentrantCallError (not a deadlock); another plugin it calls runs inline on the
    worker, which has room for it."""
    plugin: wasmplug.Plugin | None = None
    other = load_hostfns(wasm_dir, engine, Recorder(), name="other")
    caught: list[wasmplug.ReentrantCallError] = []

    def reenter() -> int:
        assert plugin is not None
        try:
            plugin.call("pong")
        except wasmplug.ReentrantCallError as e:
            caught.append(e)
        return int(other.call("pong")) * 10

    inventory = Recorder(reenter)
    plugin = load_hostfns(wasm_dir, engine, inventory)
    assert on_thread(lambda: plugin.call("call-ping"), stack_size=SMALL) == 71
    assert len(caught) == 1
    assert caught[0].plugin == "hostfns"
    assert inventory.threads[0].startswith("wasmplug-stack-")
    assert engine.stack_offloads == 1  # the nested call to `other` ran on the worker
    plugin.close()
    other.close()


def test_where_the_stack_cannot_be_measured_calls_use_a_worker(
    wasm_dir: Path, engine: wasmplug.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a platform where the room left is unknown, every call takes the safe route
    (a worker thread), with the same result."""
    inventory = Recorder()
    plugin = load_hostfns(wasm_dir, engine, inventory)
    monkeypatch.setattr(_stack, "_STACK_LEFT", _stack._stack_left_unknown)
    assert plugin.call("call-ping") == 42
    assert engine.stack_offloads == 1
    assert inventory.threads[0].startswith("wasmplug-stack-")
    plugin.close()


def test_reentry_is_detected_across_workers(
    wasm_dir: Path, engine: wasmplug.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When every call takes a worker (as where the stack cannot be measured), a chain
    of calls spreads over several workers: A runs on one, the host function it calls
    calls B, which runs on another, whose host function calls A again. That is still
    re-entry (ReentrantCallError at once), not a wait for A's lock."""
    monkeypatch.setattr(_stack, "_STACK_LEFT", _stack._stack_left_unknown)
    plugins: dict[str, wasmplug.Plugin] = {}
    caught: list[wasmplug.ReentrantCallError] = []

    def a_ping() -> int:
        return int(plugins["b"].call("call-ping"))

    def b_ping() -> int:
        try:
            plugins["a"].call("pong")
        except wasmplug.ReentrantCallError as e:
            caught.append(e)
        return 1

    a = Recorder(a_ping)
    b = Recorder(b_ping)
    plugins["a"] = load_hostfns(wasm_dir, engine, a, name="a")
    plugins["b"] = load_hostfns(wasm_dir, engine, b, name="b")
    assert plugins["a"].call("call-ping") == 3  # b's call-ping (1 + 1), plus 1
    assert len(caught) == 1
    assert caught[0].plugin == "a"
    assert a.threads[0] != b.threads[0]
    assert all(name.startswith("wasmplug-stack-") for name in a.threads + b.threads)
    for plugin in plugins.values():
        plugin.close()


def test_workers_are_forgotten_in_a_forked_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """After fork() the child has none of the parent's worker threads: an offloaded
    call there starts a new worker instead of waiting for a thread that is not
    there."""
    monkeypatch.setattr(_stack, "_STACK_LEFT", _stack._stack_left_unknown)
    guard = _stack.StackGuard(512 << 10)
    assert guard.run(threading.current_thread) is not threading.current_thread()
    assert guard._idle  # a worker waits for the next call
    with warnings.catch_warnings():  # Python 3.12+ warns about fork() with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: exit 0 if the call came back
        ok = guard.run(lambda: 6 * 7) == 42
        os._exit(0 if ok else 1)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung on a worker it does not have")
        time.sleep(0.01)
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_wasm_stack_and_the_check_are_tied() -> None:
    """With a 64 KiB wasm stack a call needs 320 KiB: deep recursion from a 512 KiB
    thread then runs on that thread and traps on the wasm stack limit."""
    engine = wasmplug.Engine(cache_dir=None, max_wasm_stack_bytes=64 << 10)
    binary = bytes(wasmtime.wat2wasm((WAT / "recursion.wat").read_text()))
    plugin = wasmplug.load(
        binary, world=wasmplug.load_world(WAT / "wit", "answer"), engine=engine, name="deep"
    )

    def call() -> str:
        with pytest.raises(wasmplug.Trap, match="call stack exhausted") as info:
            plugin.call("answer")
        return type(info.value).__name__

    assert on_thread(call, stack_size=512 << 10) == "Trap"
    assert engine.stack_offloads == 0
    plugin.close()
    engine.close()


def test_idle_workers_exit(
    wasm_dir: Path, engine: wasmplug.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker thread without work for WORKER_IDLE_S seconds exits."""
    monkeypatch.setattr(_stack, "WORKER_IDLE_S", 0.05)
    inventory = Recorder()
    plugin = load_hostfns(wasm_dir, engine, inventory)
    assert on_thread(lambda: plugin.call("call-ping"), stack_size=SMALL) == 42
    name = inventory.threads[0]
    worker = next(t for t in threading.enumerate() if t.name == name)
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert on_thread(lambda: plugin.call("call-ping"), stack_size=SMALL) == 42
    assert inventory.threads[1] != name  # a new worker
    plugin.close()
