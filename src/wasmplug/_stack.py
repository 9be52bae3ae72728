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
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["HOST_STACK_MARGIN", "WORKER_STACK_MIN", "StackGuard", "stack_left"]

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


class _Probe:
    """The Linux (glibc, musl) way to find the calling thread's stack.

    - Its bounds: ``pthread_getattr_np`` and ``pthread_attr_getstack`` (the usable
      stack, guard page excluded; for the main thread glibc derives it from
      ``RLIMIT_STACK`` and the process's mappings). Costs ~0.1 ms for the main
      thread (it reads ``/proc/self/maps``), so it is measured once per thread.
    - The stack pointer, approximately: ``dl_iterate_phdr`` hands its callback the
      address of a ``struct dl_phdr_info`` that is a local variable of its own frame
      (so on the stack, a few hundred bytes below the caller's frame); the callback
      stops the iteration at the first object. A ctypes object is no use here:
      its buffer lives on the heap.
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
        iterate = libc.dl_iterate_phdr
        iterate.argtypes = [_Callback, ctypes.c_void_p]
        iterate.restype = ctypes.c_int
        self._iterate = iterate
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


def _make_probe() -> _Probe | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        probe = _Probe(ctypes.CDLL(None))
        if probe.bounds() is None or probe.stack_pointer() == 0:
            return None
    except (OSError, AttributeError) as e:  # a libc without these functions
        logger.debug("native stack cannot be measured here (%s): calls use a worker", e)
        return None
    return probe


_PROBE = _make_probe()


class _ThreadStack(threading.local):
    """Per thread: its stack's bounds, measured at the thread's first call."""

    bounds: tuple[int, int] | None = None
    measured: bool = False


_thread_stack = _ThreadStack()


def stack_left() -> int | None:
    """Bytes of native stack left below the calling point on the calling thread, or
    ``None`` when it cannot be measured (not Linux, or an address outside the
    thread's known stack, e.g. on an alternate signal stack)."""
    probe = _PROBE
    if probe is None:
        return None
    mine = _thread_stack
    if not mine.measured:
        mine.bounds = probe.bounds()
        mine.measured = True
    bounds = mine.bounds
    if bounds is None:
        return None
    low, high = bounds
    sp = probe.stack_pointer()
    if not low < sp <= high:
        return None
    return sp - low  # every Linux target wasmtime supports grows its stack down


# -- the worker threads ----------------------------------------------------------------

# threading.stack_size() is process-wide: workers are started under this lock and the
# previous size is restored at once (a thread another thread starts in that moment
# gets the workers' size, which is larger than the default, never smaller).
_SPAWN_LOCK = threading.Lock()
_worker_numbers = itertools.count(1)  # thread-safe under the GIL (a C iterator)


class _Job:
    __slots__ = ("context", "done", "error", "fn", "result")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn  # no arguments: the caller binds them (functools.partial)
        self.context = contextvars.copy_context()
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.context.run(self.fn)
        except BaseException as e:  # handed to the waiting caller, who re-raises it
            self.error = e
        finally:
            self.done.set()

    def wait(self) -> Any:
        """Waits for the worker; re-raises what the call raised. An interrupt (Ctrl-C)
        while waiting is raised only once the call is over: the caller holds the
        plugin's lock, which must not be released while the guest still runs."""
        interrupted: BaseException | None = None
        while True:
            try:
                self.done.wait()
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
    :data:`WORKER_IDLE_S` seconds without one."""

    def __init__(self, guard: StackGuard, name: str) -> None:
        self._guard = guard
        self._jobs: list[_Job] = []
        self._wake = threading.Condition(threading.Lock())
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def give(self, job: _Job) -> None:
        with self._wake:
            self._jobs.append(job)
            self._wake.notify()

    def _loop(self) -> None:
        while True:
            with self._wake:
                if not self._jobs:
                    self._wake.wait(WORKER_IDLE_S)
                if not self._jobs:
                    if self._guard._retire(self):
                        return
                    continue  # handed a job just now: it is on its way
                job = self._jobs.pop()
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
        left = stack_left()
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
