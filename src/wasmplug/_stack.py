"""Native-stack safety: a call into wasm runs only on a thread with room for it.

wasmtime runs guest code on the calling thread's native stack and lets it use up to
the engine's ``max_wasm_stack`` bytes below the point of entry; host functions the
guest calls run further down. A thread with less room than that left (a Python
thread started after ``threading.stack_size(512 * 1024)``, or a call made deep inside
a host function of another plugin) would overflow into its guard page, and the
process dies with SIGSEGV instead of the guest trapping.

:class:`StackGuard` prevents that. Before each entry into wasm it measures how much
native stack the calling thread has left (:func:`stack_left`); with enough it runs
the entry on the calling thread (the fast path: one foreign call, no thread switch),
otherwise on a wasmplug-owned worker thread created with a large stack, while the
calling thread waits. Where the room cannot be measured (platforms other than Linux
with glibc or musl), every entry takes the worker route.
"""

from __future__ import annotations

import contextvars
import ctypes
import functools
import itertools
import logging
import os
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["HOST_STACK_MARGIN", "WORKER_STACK_MIN", "StackGuard", "call_chain", "stack_left"]

logger = logging.getLogger("wasmplug")

T = TypeVar("T")

#: Native stack, in bytes, that a call needs beyond the engine's ``max_wasm_stack``:
#: the frames between Python and the guest (ctypes, wasmtime's entry trampolines)
#: and those of host functions the guest calls at its deepest (ctypes callback, the
#: Python interpreter, what the host function itself calls into).
HOST_STACK_MARGIN = 256 << 10

#: Smallest native stack of a worker thread, in bytes (a main thread's usual 8 MiB):
#: room for a call plus a few nested calls that host functions make into other
#: plugins, which then run on the worker too.
WORKER_STACK_MIN = 8 << 20

#: How long an idle worker thread waits for its next call before it exits, in seconds.
WORKER_IDLE_S = 30.0


# -- measuring the stack ---------------------------------------------------------------

_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)

_LOW32 = (1 << 32) - 1


class _Probe:
    """The Linux (glibc, musl) way to find the calling thread's stack.

    - Its bounds: ``pthread_getattr_np`` and ``pthread_attr_getstack`` (the usable
      stack, guard page excluded; for the main thread glibc derives it from
      ``RLIMIT_STACK`` and the process's mappings). Costs ~0.1 ms for the main
      thread (it reads ``/proc/self/maps``), so it is measured once per thread.
    - The stack pointer, approximately: ``dl_iterate_phdr`` hands its callback the
      address of a ``struct dl_phdr_info`` that is a local variable of its own frame
      (in glibc and musl), so an address on the stack a few hundred bytes below the
      caller's frame; a callback returning non-zero stops the iteration at the
      first object. (A ctypes object is no use here: its buffer is on the heap.)

    Two ways to read that address:

    - :meth:`stack_pointer`: a Python callback records it (~1.5 µs: the callback
      re-enters the interpreter). The reference.
    - :meth:`low32`: libc's ``memset`` is the callback. Called as
      ``memset(info, sizeof info, NULL)`` it writes nothing (length 0) and returns
      ``info``, which ``dl_iterate_phdr`` returns as an ``int``: the address's low
      32 bits, completed with the thread's known stack bounds (~0.5 µs, one foreign
      call). This relies on the C calling convention passing the first three
      integer arguments and the result in registers (every 64-bit ABI Linux and
      wasmtime support), so it is used only after :func:`_make_probe` saw it agree
      with :meth:`stack_pointer` on this machine.
    """

    def __init__(self, libc: ctypes.CDLL) -> None:
        self._self = libc.pthread_self
        self._self.restype = ctypes.c_void_p
        self._self.argtypes = []
        self._getattr = libc.pthread_getattr_np
        self._getattr.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self._getstack = libc.pthread_attr_getstack
        self._getstack.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(ctypes.c_size_t),
        ]
        self._destroy = libc.pthread_attr_destroy
        self._destroy.argtypes = [ctypes.c_void_p]
        address = ctypes.cast(libc.dl_iterate_phdr, ctypes.c_void_p).value or 0
        self._iterate = ctypes.CFUNCTYPE(ctypes.c_int, _Callback, ctypes.c_void_p)(address)
        self._iterate_raw = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_void_p, ctypes.c_void_p)(
            address
        )
        self._memset = ctypes.cast(libc.memset, ctypes.c_void_p)
        self._seen = threading.local()

        def first_object(info: int | None, size: int, data: int | None) -> int:
            self._seen.address = info or 0
            return 1  # stop at the first object

        # Kept referenced for as long as the probe lives (ctypes does not).
        self._callback = _Callback(first_object)

    def bounds(self) -> tuple[int, int] | None:
        """The calling thread's usable stack as ``(low, high)`` addresses, or ``None``."""
        attr = ctypes.create_string_buffer(512)  # pthread_attr_t is 36-64 bytes
        if self._getattr(self._self(), attr) != 0:
            return None
        try:
            address = ctypes.c_void_p()
            size = ctypes.c_size_t()
            if self._getstack(attr, ctypes.byref(address), ctypes.byref(size)) != 0:
                return None
        finally:
            self._destroy(attr)
        if not address.value or not size.value:
            return None
        return address.value, address.value + size.value

    def stack_pointer(self) -> int:
        """An address in the calling thread's current stack frame area (0 if none)."""
        self._seen.address = 0
        self._iterate(self._callback, None)
        address: int = self._seen.address
        return address

    def low32(self) -> int:
        """The low 32 bits of the address :meth:`stack_pointer` finds."""
        low: int = self._iterate_raw(self._memset, None)
        return low


def _make_probe() -> tuple[_Probe | None, bool]:
    """The probe, and whether its fast :meth:`_Probe.low32` agrees with the reference
    here; ``(None, False)`` where the stack cannot be measured."""
    if not sys.platform.startswith("linux"):
        return None, False
    try:
        probe = _Probe(ctypes.CDLL(None))
        bounds = probe.bounds()
        sp = probe.stack_pointer()
        if bounds is None or not bounds[0] < sp <= bounds[1]:
            return None, False
        # The same call site one frame apart: the two addresses are within bytes.
        fast = abs((sp & _LOW32) - probe.low32()) < 4096
    except (OSError, AttributeError) as e:  # a libc without these functions
        logger.debug("native stack cannot be measured here (%s): calls use a worker", e)
        return None, False
    return probe, fast


_PROBE, _FAST = _make_probe()


class _ThreadStack(threading.local):
    """Per thread, from its first call on: ``bounds``, its stack as ``(low, high,
    base)`` (``base``: ``low`` with its low 32 bits cleared), or ``None`` when
    unknown. Unset until measured. On a worker running a call: ``chain``, the
    :func:`call_chain` of the thread that handed the call over (0 otherwise)."""

    bounds: tuple[int, int, int] | None
    chain: int = 0


_thread_stack = _ThreadStack()


def _measure() -> tuple[int, int, int] | None:
    """Measures the calling thread's stack bounds and remembers them."""
    found = None
    bounds = _PROBE.bounds() if _PROBE is not None else None
    if bounds is not None:
        low, high = bounds
        # A stack of 4 GiB or more (the main thread under `ulimit -s unlimited`)
        # counts as 4 GiB: low32() then names one address, and the room reported is
        # less than there is, never more.
        low = max(low, high - _LOW32)
        found = (low, high, low & ~_LOW32)
    _thread_stack.bounds = found
    return found


def _stack_left_fast(
    _thread: _ThreadStack = _thread_stack,
    _iterate: Any = _PROBE._iterate_raw if _PROBE is not None else None,
    _memset: Any = _PROBE._memset if _PROBE is not None else None,
) -> int | None:
    # The fast path of every call: ~0.6 µs, so the names it needs are bound as
    # defaults and _Probe.low32 is inlined.
    try:
        bounds = _thread.bounds
    except AttributeError:
        bounds = _measure()
    if bounds is None:
        return None
    low, high, base = bounds
    sp = base | _iterate(_memset, None)
    if sp < low:  # the stack spans a 4 GiB boundary and sp is above it
        sp += 1 << 32
    return sp - low if low < sp <= high else None


def _stack_left_slow() -> int | None:
    try:
        bounds = _thread_stack.bounds
    except AttributeError:
        bounds = _measure()
    if bounds is None or _PROBE is None:
        return None
    low, high, _ = bounds
    sp = _PROBE.stack_pointer()
    return sp - low if low < sp <= high else None


def _stack_left_unknown() -> int | None:
    return None


def call_chain() -> int:
    """Identifies the chain of nested calls the calling thread is part of: the
    thread's own ``threading.get_ident()``, but on a worker running a call for another
    thread, that thread's chain. Re-entry checks compare it, so a host function on a
    worker calling back into a plugin its caller's thread is inside is still seen."""
    return _thread_stack.chain or threading.get_ident()


def stack_left() -> int | None:
    """Bytes of native stack left below the calling point on the calling thread, or
    ``None`` when it cannot be measured (not Linux, or an address outside the
    thread's known stack, e.g. on an alternate signal stack). Linux targets all
    grow their stacks down, so the room left is the distance to the stack's low end.
    """
    return _STACK_LEFT()


_STACK_LEFT: Callable[[], int | None] = (
    _stack_left_unknown if _PROBE is None else _stack_left_fast if _FAST else _stack_left_slow
)


# -- the worker threads ----------------------------------------------------------------

# threading.stack_size() is process-wide: workers are started under this lock and the
# previous size is restored at once (a thread another thread starts in that moment
# gets the workers' size, which is larger than the default, never smaller).
_SPAWN_LOCK = threading.Lock()
_worker_numbers = itertools.count(1)  # thread-safe under the GIL (a C iterator)


class _Job:
    """One call handed to a worker. ``done`` is a lock held until the call is over
    (a bare lock: the cheapest hand-over between two threads in CPython)."""

    __slots__ = ("chain", "context", "done", "error", "fn", "result")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn  # no arguments: the caller binds them (functools.partial)
        self.chain = call_chain()
        self.context = contextvars.copy_context()
        self.done = threading.Lock()
        self.done.acquire()
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        _thread_stack.chain = self.chain
        try:
            self.result = self.context.run(self.fn)
        except BaseException as e:  # handed to the waiting caller, who re-raises it
            self.error = e
        finally:
            _thread_stack.chain = 0
            self.done.release()

    def wait(self) -> Any:
        """Waits for the worker; re-raises what the call raised. An interrupt (Ctrl-C)
        while waiting is raised only once the call is over: the caller holds the
        plugin's lock, which must not be released while the guest still runs."""
        interrupted: BaseException | None = None
        while True:
            try:
                self.done.acquire()
                break
            except BaseException as e:
                interrupted = interrupted or e
        if interrupted is not None:
            raise interrupted
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return self.result


class _Worker:
    """One worker thread: runs the jobs handed to it, one at a time, and exits after
    :data:`WORKER_IDLE_S` seconds without one. It is handed a job only after the
    guard took it off its idle list, so it never has more than one."""

    def __init__(self, guard: StackGuard, name: str) -> None:
        self._guard = guard
        self._job: _Job | None = None
        self._ready = threading.Lock()  # released when a job is handed over
        self._ready.acquire()
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def give(self, job: _Job) -> None:
        self._job = job
        self._ready.release()

    def _loop(self) -> None:
        while True:
            if not self._ready.acquire(timeout=WORKER_IDLE_S):
                if self._guard._retire(self):
                    return
                self._ready.acquire()  # a caller took it meanwhile: its job is coming
            job, self._job = self._job, None
            assert job is not None
            job.run()
            del job
            self._guard._idle_again(self)


class StackGuard:
    """Runs entries into wasm on a thread with enough native stack.

    One per :class:`~wasmplug.Engine`. Thread-safe.

    Args:
        max_wasm_stack: The engine's ``max_wasm_stack``, in bytes.

    Attributes:
        need: Native stack, in bytes, a call must find left on its thread to run there:
            ``max_wasm_stack + HOST_STACK_MARGIN``.
        worker_stack: The stack size, in bytes, of the worker threads.
        offloads: How many entries ran on a worker thread so far.
    """

    def __init__(self, max_wasm_stack: int) -> None:
        self.need = max_wasm_stack + HOST_STACK_MARGIN
        self.worker_stack = max(WORKER_STACK_MIN, 2 * self.need)
        self.offloads = 0
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        _guards.add(self)

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Calls ``fn(*args)`` on the calling thread when it has at least :attr:`need` bytes
        of native stack left, else on a worker thread while the caller waits.

        Everything ``fn`` does, including the guest's host function calls, then runs
        on the worker, in a copy of the caller's ``contextvars`` context; its result
        is returned and its exception raised to the caller as they are.

        Raises:
            BaseException: whatever ``fn`` raised; ``RuntimeError`` when no worker
                thread can be started (the operating system refused a thread).
        """
        left = _STACK_LEFT()
        if left is not None and left >= self.need:
            return fn(*args)
        return self._offload(functools.partial(fn, *args))

    def _offload(self, fn: Callable[[], T]) -> T:
        job = _Job(fn)
        with self._lock:
            self.offloads += 1
            worker = self._idle.pop() if self._idle else None
        if worker is None:
            worker = self._start_worker()
        worker.give(job)
        result: T = job.wait()
        return result

    def _start_worker(self) -> _Worker:
        worker = _Worker(self, f"wasmplug-stack-{next(_worker_numbers)}")
        with _SPAWN_LOCK:
            previous = threading.stack_size(self.worker_stack)
            try:
                worker.thread.start()
            finally:
                threading.stack_size(previous)
        return worker

    def _idle_again(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)

    def _retire(self, worker: _Worker) -> bool:
        """Called by an idle worker whose wait timed out: removes it from the idle
        list and returns ``True``, or ``False`` when a caller took it meanwhile."""
        with self._lock:
            if worker in self._idle:
                self._idle.remove(worker)
                return True
            return False


_guards: weakref.WeakSet[StackGuard] = weakref.WeakSet()


def _forget_workers() -> None:
    """In a child process after ``fork()``: the workers' threads did not come along
    (only the forking thread does), and a lock may have been held by one of them."""
    global _SPAWN_LOCK  # noqa: PLW0603 - replaced in the child only
    _SPAWN_LOCK = threading.Lock()
    for guard in list(_guards):
        guard._lock = threading.Lock()
        guard._idle = []


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)
