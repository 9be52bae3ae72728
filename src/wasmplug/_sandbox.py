"""Policy enforcement shared by every backend: per-call limits, failure
classification, the audit trail.

A backend on wasmtime (the component path in :mod:`wasmplug._component`, the
core-module fast path in :mod:`wasmplug._core`) implements
:class:`~wasmplug._backend.Backend` and subclasses :class:`Sandbox`. It starts each call with
:meth:`Sandbox.begin` (which resets the per-call counters of the host context and
sets the call's wall-clock deadline) and turns a failed entry into wasm into the
right wasmplug exception with :meth:`Sandbox.fail`, so fuel, deadlines, host-call,
log and stdio limits, breaches and denials mean the same on every backend.
wasmtime errors are translated into wasmplug exceptions in exactly one place,
:func:`classify_failure`.
"""

from __future__ import annotations

import errno
import logging
import math
import random
import re
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any

import wasmtime

from . import _native
from ._audit import AuditEvent, Auditor, excerpt
from ._engine import UNBOUNDED_TICKS
from ._exceptions import (
    CallError,
    CallInterrupted,
    DeadlineExceeded,
    DiskLimitExceeded,
    FileLimitExceeded,
    FuelExhausted,
    HandleLimitExceeded,
    HostCallsExceeded,
    HostFunctionError,
    InstantiationError,
    InvalidGuestValue,
    LimitExceeded,
    LinkError,
    LoadError,
    LogLimitExceeded,
    MemoryLimitExceeded,
    OutputLimitExceeded,
    StdioLimitExceeded,
    Trap,
    WasiRefusedError,
)
from ._files import FileBreach, FileLimits
from ._host import HostContext, LogBreach
from ._policy import Determinism, Limits
from ._resources import TableFull
from ._stats import CallStats

__all__ = ["Sandbox", "classify_failure"]

_logger = logging.getLogger("wasmplug")

# A budget so large that it means "no fuel limit" (wasmtime needs some amount set).
UNLIMITED_FUEL = 1 << 62
# An epoch deadline meaning none: the engine's, which the ticker never waits for.
UNLIMITED_TICKS = UNBOUNDED_TICKS
#: Milliseconds of guest execution between two checks of a running call (its Store's
#: epoch-deadline callback): how soon :meth:`Sandbox.interrupt` takes effect. A call
#: shorter than this is never checked.
SLICE_MS = 50.0
#: The messages the epoch-deadline callback stops a guest with.
INTERRUPTED = "wasmplug: the call was interrupted"
DEADLINE_REACHED = "wasmplug: the call reached its deadline"
#: What a call fails with when its open files or a preopen's bytes were found past
#: their limit (the component path measures them after the call and per slice).
FILES_BREACHED = "wasmplug: the plugin's files are past a limit"
STDERR_TAIL = 4096
#: wasmtime's message when a call copies more values between guest and host than its
#: host-call fuel allows (not configurable through the C API).
COPY_BUDGET = "too much data is being copied between the host and the guest"
#: What to add to wasmtime's message when instantiation breaches a store limit.
_LIMIT_HINTS = {
    "memory count too high": " (Limits.memories is {limits.memories})",
    "table count too high": " (Limits.tables is {limits.tables})",
    "instance count too high": " (Limits.instances is {limits.instances})",
    "table minimum size": " (Limits.table_elements is {limits.table_elements})",
    "memory minimum size": " (Limits.memory_bytes is {limits.memory_bytes} in all)",
}


class _HostDeadline(Exception):
    """The call's deadline passed while a host function ran."""


class _HostCallLimit(Exception):
    """The call tried more host calls than ``Limits.host_calls``."""


_TableFull = TableFull  # an instance's handle table is full (``Limits.resource_handles``)


class _Output:
    """What the guest writes to WASI stdout and stderr during one call: counted
    against ``Limits.stdio_bytes``, and the last ``STDERR_TAIL`` bytes of stderr kept
    for trap reports.

    WASI output callbacks live in a process-wide registry until their Store is
    dropped, so the callbacks are bound to this small object only: a bound method of
    the backend would keep the backend, its Store and its linker alive for ever (a
    plugin that is never closed would leak them all).

    Attributes:
        tail: The last bytes of stderr.
        used: Bytes written to stdout and stderr together during the call (the
            refused writes included).
        limit: ``Limits.stdio_bytes`` (``math.inf`` for none).
    """

    __slots__ = ("limit", "tail", "used")

    def __init__(self, limit: float) -> None:
        self.tail = bytearray()
        self.used = 0
        self.limit = limit

    @property
    def breached(self) -> bool:
        return self.used > self.limit

    def reset(self) -> None:
        self.used = 0
        if self.tail:
            self.tail.clear()

    def stdout(self, data: bytes) -> int | None:
        """Counts a stdout write; returns ``-EIO`` (the write fails in the guest) past
        the limit, else ``None`` (accepted whole)."""
        self.used += len(data)
        return -errno.EIO if self.used > self.limit else None

    def stderr(self, data: bytes) -> int | None:
        """Counts a stderr write and keeps its tail; ``-EIO`` past the limit."""
        self.used += len(data)
        if self.used > self.limit:
            return -errno.EIO
        buf = self.tail
        buf += data
        if len(buf) > STDERR_TAIL:
            del buf[: len(buf) - STDERR_TAIL]
        return None


class _WasiWait(Exception):
    """The guest asked WASI to wait on the monotonic clock (refused).

    Attributes:
        wait_ns: How long the wait would have lasted, in nanoseconds.
        past_deadline: Whether it would have ended after the call's deadline.
    """

    def __init__(self, function: str, wait_ns: int, past_deadline: bool) -> None:
        super().__init__(function)
        self.wait_ns = wait_ns
        self.past_deadline = past_deadline


def host_call_entry(
    ctx: HostContext, qualified: str, run: Callable[..., None], *, counted: bool = True
) -> Callable[..., None]:
    """Wraps the body of a raw host function (either backend's calling convention:
    ``run`` takes the same arguments): with ``counted`` it counts as a host call
    (``Limits.host_calls``; WASI functions wasmplug serves do not), and a failure is
    recorded in ``ctx.failure`` (the first one of the call) before it propagates, so
    that the backend raises the right exception once wasm has unwound."""

    def call(*args: Any) -> None:
        if counted:
            ctx.host_calls += 1
        try:
            run(*args)
        except BaseException as e:
            if ctx.failure is None:
                ctx.failure = (qualified, e)
            raise

    return call


def check_host_call(ctx: HostContext, qualified: str) -> None:
    """What every host call checks before it does anything: ``Limits.host_calls``
    and the call's deadline (so a storm of quick host calls ends at it).

    Raises:
        _HostCallLimit, _HostDeadline: past either.
    """
    if ctx.host_calls > ctx.max_host_calls:
        raise _HostCallLimit(qualified)
    if perf_counter() > ctx.deadline:
        raise _HostDeadline(qualified)


def run_host_function(
    ctx: HostContext, qualified: str, impl: Callable[..., Any], args: Sequence[Any], *, timed: bool
) -> Any:
    """Runs a host function's Python implementation for the guest. With ``timed``
    (the host's own functions and HTTP, not the quick capabilities) its time is added
    to ``ctx.host_time``, and a deadline that passed while it ran fails the call.

    Raises:
        _HostDeadline: as above; whatever ``impl`` raises.
    """
    if not timed:
        return impl(*args)
    t0 = perf_counter()
    try:
        value = impl(*args)
    finally:
        now = perf_counter()
        ctx.host_time += now - t0
    if now > ctx.deadline:
        raise _HostDeadline(qualified)
    return value


def fuel_exhausted(
    function: str,
    *,
    plugin: str,
    limits: Limits,
    stats: CallStats | None,
    detail: str,
    used: int | None,
) -> FuelExhausted:
    """The :class:`~wasmplug.FuelExhausted` of a call that burned ``Limits.fuel`` (every
    backend words it alike); ``used`` is the fuel consumed, when the runtime tells."""
    return FuelExhausted(
        f"{function} ran out of fuel (limit {limits.fuel} fuel units)",
        limit="fuel",
        allowed=limits.fuel or UNLIMITED_FUEL,
        used=used,
        plugin=plugin,
        function=function,
        stats=stats,
        detail=detail,
    )


def deadline_exceeded(
    function: str,
    *,
    plugin: str,
    limits: Limits,
    stats: CallStats | None,
    detail: str,
    where: str = "",
) -> DeadlineExceeded:
    """The :class:`~wasmplug.DeadlineExceeded` of a call past ``Limits.deadline_ms``
    (``where``: e.g. " in host function f"); the time used is the call's wall time."""
    return DeadlineExceeded(
        f"{function} ran past its deadline ({limits.deadline_ms} ms){where}",
        limit="deadline_ms",
        allowed=limits.deadline_ms or 0,
        used=round(stats.wall_time_us / 1000) if stats is not None else None,
        plugin=plugin,
        function=function,
        stats=stats,
        detail=detail,
    )


def call_interrupted(
    function: str, *, plugin: str, stats: CallStats | None, detail: str
) -> CallInterrupted:
    """The :class:`~wasmplug.CallInterrupted` of a call stopped by
    :meth:`~wasmplug.Plugin.interrupt` (or by cancelling the task awaiting it)."""
    return CallInterrupted(
        f"{function} was interrupted (Plugin.interrupt, or its awaiting task was cancelled)",
        plugin=plugin,
        function=function,
        stats=stats,
        detail=detail,
    )


def memory_exceeded(
    function: str,
    *,
    plugin: str,
    limits: Limits,
    stats: CallStats | None,
    detail: str,
    why: str = "",
) -> MemoryLimitExceeded:
    """The :class:`~wasmplug.MemoryLimitExceeded` of a guest that could not grow its
    memory past ``Limits.memory_bytes`` (``why``: what it was doing, e.g. ": <cause>");
    ``used`` is the linear memory it had then (``stats.memory_bytes``), where measured."""
    return MemoryLimitExceeded(
        f"{function} ran out of memory (limit {limits.memory_bytes} bytes){why}",
        limit="memory_bytes",
        allowed=limits.memory_bytes or 0,
        used=None if stats is None else stats.memory_bytes,
        plugin=plugin,
        function=function,
        stats=stats,
        detail=detail,
    )


def classify_failure(
    message: str,
    *,
    plugin: str,
    function: str,
    limits: Limits,
    stats: CallStats | None,
    stderr: str,
) -> CallError:
    """Maps a failed call's wasmtime error to the wasmplug exception for it.

    Component-model traps arrive as a ``WasmtimeError`` with a message and no trap code;
    the messages recognized are wasmtime's ("all fuel consumed by WebAssembly",
    "wasm trap: interrupt"). A Rust guest that cannot grow its memory prints
    "memory allocation of N bytes failed" and aborts.
    """
    detail = message.strip()
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    # wasmtime puts the backtrace first and the cause ("wasm trap: ...") last.
    cause = re.sub(r"^\d+: ", "", lines[-1]) if lines else "unknown failure"
    if "all fuel consumed" in detail:
        used = stats.fuel_consumed if stats is not None else None
        return fuel_exhausted(
            function, limits=limits, used=used, plugin=plugin, stats=stats, detail=detail
        )
    if INTERRUPTED in detail:
        return call_interrupted(function, plugin=plugin, stats=stats, detail=detail)
    if DEADLINE_REACHED in detail or "wasm trap: interrupt" in detail:
        return deadline_exceeded(function, limits=limits, plugin=plugin, stats=stats, detail=detail)
    if COPY_BUDGET in detail:
        return OutputLimitExceeded(
            f"{function} tried to pass more data between guest and host than wasmtime "
            "copies in one call (its host-call copy budget: about 2.7 million list "
            f"elements); Limits.output_bytes is {limits.output_bytes}",
            limit="output_bytes",
            allowed=limits.output_bytes or 0,
            plugin=plugin,
            function=function,
            stats=stats,
            detail=detail,
        )
    if limits.memory_bytes is not None and "memory allocation of" in stderr:
        return memory_exceeded(function, limits=limits, plugin=plugin, stats=stats, detail=detail)
    if "deferred host scope has no call context" in detail:
        cause = (
            "wasmtime cannot lend more than one handle of a host resource to one host "
            "function (a wasmtime 50 limitation; pass one borrowed handle per call)"
        )
    panic = _panic_message(stderr)
    return Trap(
        f"{function} trapped: {cause}" + (f" ({panic})" if panic else ""),
        plugin=plugin,
        function=function,
        stats=stats,
        detail=detail,
        guest_stderr=stderr,
    )


def _panic_message(stderr: str) -> str:
    """Finds a Rust panic report in the guest's stderr: ``panicked at src/lib.rs:3:5:
    boom``. Returns "" when there is none."""
    lines = stderr.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        at = line.find("panicked at ")
        if at >= 0:
            message = lines[i + 1].strip() if i + 1 < len(lines) else ""
            return f"{line[at:].rstrip(':')}: {message}" if message else line[at:]
    return ""


class GuestFailure(Exception):
    """A guest call the host made while lowering or lifting (``cabi_realloc``, a
    post-return) failed; ``message`` is wasmtime's. Inside a host function it is the
    guest's failure, classified like any other (a breach, an interruption, a trap)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


#: The largest random byte string a deterministic guest may ask for at once.
MAX_RANDOM_BYTES = 1 << 20


class Seeded:
    """The random generator of a plugin run with :class:`~wasmplug.Determinism`: one
    ``random.Random`` seeded with ``Determinism.seed``, re-seeded for every fresh
    instance (:meth:`Sandbox.new_store`), drawn by both backends' WASI random
    functions (host functions refer to this, not to the backend)."""

    __slots__ = ("rng", "seed")

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)

    def reset(self) -> None:
        """Starts the sequence over."""
        self.rng.seed(self.seed)

    def random_bytes(self, n: int) -> bytes:
        """The next ``n`` bytes (``Random.randbytes``).

        Raises:
            InvalidGuestValue: ``n`` is more than :data:`MAX_RANDOM_BYTES` (raised in a
                host function: the call fails with it, the guest's fault).
        """
        if n > MAX_RANDOM_BYTES:
            detail = f"the guest asked for {n:,} random bytes at once; at most {MAX_RANDOM_BYTES:,}"
            raise InvalidGuestValue(detail, detail=detail)
        return self.rng.randbytes(n)

    def random_u64(self) -> int:
        """The next 64 random bits."""
        return self.rng.getrandbits(64)


class Sandbox:
    """What every backend enforces the same way, from the plugin's limits and host
    context.

    Attributes:
        fuel_budget: Fuel units each call starts with (``Limits.fuel``, or a budget
            so large it means none).
        ticks: Epochs each call may run (the deadline, plus one for a tick that may
            come at once).
    """

    def __init__(
        self,
        *,
        limits: Limits,
        ctx: HostContext,
        epoch_tick_ms: float,
        epoch_deadline: Callable[[int], int],
        instance_per_call: bool = False,
        determinism: Determinism | None = None,
    ) -> None:
        self._limits = limits
        #: ``Policy.determinism``, and its generator (re-seeded for every new Store).
        self.determinism = determinism
        self.seeded = Seeded(determinism.seed) if determinism is not None else None
        #: ``Policy.instance_per_call``: every call on a new instance.
        self.per_call = instance_per_call
        self._ctx = ctx
        # The engine's EpochClock.deadline: the epoch deadline to set for a number of
        # ticks (it adds the epochs the ticker owes and wakes a parked ticker).
        self._deadline_of = epoch_deadline
        self._output = _Output(math.inf if limits.stdio_bytes is None else limits.stdio_bytes)
        self.fuel_budget = limits.fuel if limits.fuel is not None else UNLIMITED_FUEL
        self._deadline_s = math.inf if limits.deadline_ms is None else limits.deadline_ms / 1000
        ctx.max_host_calls = math.inf if limits.host_calls is None else limits.host_calls
        ctx.max_log_records = math.inf if limits.log_records is None else limits.log_records
        ctx.max_log_bytes = math.inf if limits.log_bytes is None else limits.log_bytes
        if limits.deadline_ms is None:
            self.ticks = UNLIMITED_TICKS
        else:
            # The first tick may come at once, so one more than the deadline needs.
            self.ticks = math.ceil(limits.deadline_ms / epoch_tick_ms) + 1
        self._tick_s = epoch_tick_ms / 1000
        # A call runs one slice of epochs at a time: at the end of each the Store's
        # epoch-deadline callback (_on_epoch_deadline) stops it if it was interrupted
        # or its deadline passed, and otherwise gives it the next slice.
        self._slice = math.ceil(SLICE_MS / epoch_tick_ms)
        self.slice_ticks = min(self.ticks, self._slice)
        self._interrupted = False
        self._epoch_check: Any = None
        #: The plugin's file limits (``Limits.open_files``, ``Preopen.max_bytes``).
        self.files = FileLimits(ctx.grants.files, limits)
        self.files.on_refusal = self._audit_file_refusal
        #: Whether the end of every slice measures the plugin's files (the component
        #: path, for what it cannot check before each request: preopen bytes).
        self.measure_files_per_slice = False

    def new_store(
        self,
        engine: wasmtime.Engine,
        wasi: Callable[
            [Callable[[bytes], int | None], Callable[[bytes], int | None]], wasmtime.WasiConfig
        ],
        extra: tuple[int, int, int] = (0, 0, 0),
    ) -> wasmtime.Store:
        """A Store for a new instance under the plugin's limits: memory, tables and
        instances capped, WASI configured by ``wasi`` (given the stdio counters: start-up
        code's writes count from zero too), fuel and the epoch deadline set for
        start-up code. ``extra`` raises the caps on core instances, tables and
        memories for wasmplug's own instances in the Store (the WASI forwarder)."""
        store = wasmtime.Store(engine)
        if self.seeded is not None:
            self.seeded.reset()
        limits = self._limits
        instances, tables, memories = extra
        store.set_limits(
            memory_size=-1 if (each := limits.memory_bytes_each) is None else each,
            table_elements=limits.table_elements,
            instances=limits.instances + instances,
            tables=limits.tables + tables,
            memories=limits.memories + memories,
        )
        self._output.reset()
        store.set_wasi(wasi(self._output.stdout, self._output.stderr))
        self.files.preopened_by(store)
        store.set_fuel(self.fuel_budget)
        if self._epoch_check is None:
            self._epoch_check = _native.epoch_callback(self._on_epoch_deadline)
        _native.set_epoch_callback(store, self._epoch_check)
        # Start-up code runs under the call's deadline, from now.
        self._interrupted = False
        self._ctx.deadline = perf_counter() + self._deadline_s
        store.set_epoch_deadline(self.epoch_deadline())
        return store

    def epoch_deadline(self) -> int:
        """The epoch deadline to set on a Store right before entering wasm: the
        first slice of the call's ticks plus the epochs the ticker owes now."""
        return self._deadline_of(self.slice_ticks)

    def evict(self) -> None:
        """Drops the live instance (the engine's LRU; the caller holds the plugin's
        call lock); the next call instantiates afresh."""
        self._discard()

    def interrupt(self) -> None:
        """Stops the guest code running now at the end of its current slice of epochs
        (within :data:`SLICE_MS`, plus a tick): the call fails with
        :class:`CallInterrupted`. Callable from any thread; does nothing to a call
        that starts later."""
        self._interrupted = True

    def _on_epoch_deadline(self) -> int | str:
        """The Stores' epoch-deadline callback (on the guest's thread, at the end of a
        slice): the epochs of the next slice, or the message that stops the guest."""
        if self._interrupted:
            return INTERRUPTED
        if self.measure_files_per_slice and self.measure_files():
            return FILES_BREACHED
        left = self._ctx.deadline - perf_counter()
        if left <= 0:
            return DEADLINE_REACHED
        ticks = (
            self._slice if left == math.inf else min(math.ceil(left / self._tick_s), self._slice)
        )
        return self._deadline_of(ticks)

    def begin(self, function: str) -> None:
        """Resets the host context's per-call counters for a call of ``function`` and
        starts its wall-clock deadline (host functions check it)."""
        ctx = self._ctx
        ctx.host_calls = 0
        ctx.denials = 0
        ctx.host_time = 0.0
        ctx.log_records = 0
        ctx.log_bytes = 0
        ctx.failure = None
        ctx.function = function
        self.files.breach = None
        self._interrupted = False
        ctx.deadline = perf_counter() + self._deadline_s
        self._output.reset()

    def measure_files(self) -> bool:
        """Measures the plugin's open files and preopen bytes now
        (:meth:`FileLimits.over`); a breach is recorded for :meth:`fail`. Returns
        whether there was one."""
        breach = self.files.over()
        if breach is None:
            return False
        self.files.breach = breach
        return True

    def file_error(
        self, breach: FileBreach, function: str, stats: CallStats | None, detail: str
    ) -> LimitExceeded:
        """The exception for a breach of ``Limits.open_files`` or a
        ``Preopen.max_bytes``."""
        plugin = self._ctx.plugin
        if breach.limit == "open_files":
            return FileLimitExceeded(
                f"{function} held more than {breach.allowed} files open "
                f"(Limits.open_files; {breach.used} counted)",
                limit="open_files",
                allowed=breach.allowed,
                used=breach.used,
                plugin=plugin,
                function=function,
                stats=stats,
                detail=detail,
            )
        return DiskLimitExceeded(
            f"{function} filled preopen {breach.preopen} past its {breach.allowed:,} bytes "
            f"(Preopen.max_bytes; {breach.used:,} bytes counted)",
            preopen=breach.preopen or "",
            limit="max_bytes",
            allowed=breach.allowed,
            used=breach.used,
            plugin=plugin,
            function=function,
            stats=stats,
            detail=detail,
        )

    def _audit_file_refusal(self, breach: FileBreach) -> None:
        """Audits a request the fast path refused inside the guest (the first of a
        call): the guest sees an errno, the host this record."""
        self.audit(self.file_error(breach, self._ctx.function or "start-up code", None, ""))

    def _discard(self) -> None:
        """Drops the current instance (each backend defines it)."""
        raise NotImplementedError

    def instantiation_error(self, text: str) -> LoadError:
        """The exception for a failed instantiation with wasmtime's message ``text``:
        a :class:`LinkError` for an unsatisfied import, else an
        :class:`InstantiationError`. Start-up code (a start function, static
        constructors) runs under the call limits: a breach there is the limit's
        exception, set as the ``__cause__``."""
        plugin = self._ctx.plugin
        limits = self._limits
        if "import" in text and ("not defined" in text or "type mismatch" in text):
            return LinkError(f"cannot link: {text.strip()}", [], plugin=plugin)
        cause = classify_failure(
            text,
            plugin=plugin,
            function="start-up code",
            limits=limits,
            stats=None,
            stderr=self._output.tail.decode(errors="replace"),
        )
        if isinstance(cause, LimitExceeded):
            told = str(cause).removeprefix(f"plugin {plugin!r}: ")
            error = InstantiationError(f"cannot instantiate: {told}", plugin=plugin)
            error.__cause__ = cause
            return error
        first = text.strip().splitlines()[0] if text.strip() else "unknown failure"
        hint = _LIMIT_HINTS.get(next((k for k in _LIMIT_HINTS if k in text), ""), "")
        return InstantiationError(
            f"cannot instantiate: {first}{hint.format(limits=limits)}", plugin=plugin
        )

    def fail(self, function: str, message: str, stats: CallStats) -> CallError:
        """Discards the instance after a failed entry into wasm and returns the
        exception for it: a breach of ``stdio_bytes`` (whatever the guest did after
        its writes failed), the host function's failure recorded in the context, else
        wasmtime's error classified. A breach or a refusal is audited."""
        self._discard()
        ctx = self._ctx
        output = self._output
        error: CallError
        if output.breached:
            limits = self._limits
            error = StdioLimitExceeded(
                f"{function} wrote more than {limits.stdio_bytes} bytes to stdout and "
                f"stderr (Limits.stdio_bytes; {output.used} bytes tried)",
                limit="stdio_bytes",
                allowed=limits.stdio_bytes or 0,
                used=output.used,
                plugin=ctx.plugin,
                function=function,
                stats=stats,
                detail=message,
            )
        elif ctx.failure is not None:
            error = self._host_failure(function, ctx.failure, stats, message)
        else:
            error = classify_failure(
                message,
                plugin=ctx.plugin,
                function=function,
                limits=self._limits,
                stats=stats,
                stderr=output.tail.decode(errors="replace"),
            )
        breach = self.files.breach
        if breach is not None and (type(error) is Trap or FILES_BREACHED in message):
            # Measured past a limit (component path), or the guest failed after a
            # request was refused (fast path: that refusal was audited already).
            error = self.file_error(breach, function, stats, message)
            if FILES_BREACHED not in message:
                return error
        self.audit(error)
        return error

    def audit(self, error: CallError) -> None:
        """Records ``error`` in the plugin's audit trail when it is a breach
        (:class:`LimitExceeded`) or a refused WASI function."""
        ctx = self._ctx
        event: AuditEvent | None = None
        message = str(error).removeprefix(f"plugin {ctx.plugin!r}: ")
        if isinstance(error, LimitExceeded):
            event = AuditEvent(
                plugin=ctx.plugin,
                kind="breach",
                name=error.limit,
                function=error.function,
                argument=excerpt(message),
                used=error.used,
            )
            _logger.warning(
                "plugin %r breached %s: %s",
                ctx.plugin,
                error.limit,
                event.argument,
                extra={"plugin": ctx.plugin, "limit": error.limit, "function": error.function},
            )
        elif isinstance(error, WasiRefusedError):
            event = AuditEvent(
                plugin=ctx.plugin,
                kind="denial",
                name=error.wasi_function,
                function=error.function,
                argument=excerpt(message),
            )
        if event is not None:
            ctx.audit.record(event)

    @property
    def auditor(self) -> Auditor:
        """The plugin's audit trail."""
        return self._ctx.audit

    def _host_failure(
        self, function: str, failure: tuple[str, BaseException], stats: CallStats, detail: str
    ) -> CallError:
        """The exception for a call that failed in a host function (already recorded
        in the context), with the original exception as its cause."""
        host_function, cause = failure
        plugin = self._ctx.plugin
        limits = self._limits
        breach: tuple[type[LimitExceeded], str, str] | None = None
        used: int | None = None
        if isinstance(cause, GuestFailure):  # cabi_realloc ran out of fuel, time...
            return classify_failure(
                cause.message,
                plugin=plugin,
                function=function,
                limits=limits,
                stats=stats,
                stderr=self._output.tail.decode(errors="replace"),
            )
        if isinstance(cause, InvalidGuestValue):  # the guest's fault, not the host's
            error: CallError = InvalidGuestValue(
                f"{function}: {cause.detail}",
                plugin=plugin,
                function=function,
                stats=stats,
                detail=cause.detail,
            )
            self.audit(error)
            return error
        if isinstance(cause, _TableFull):
            breach = (
                HandleLimitExceeded,
                "resource_handles",
                f"{function}: the instance would hold more than {limits.resource_handles} "
                f"resource handles (Limits.resource_handles); refused in {host_function}",
            )
            used = limits.resource_handles + 1
        elif isinstance(cause, _HostCallLimit):
            breach = (
                HostCallsExceeded,
                "host_calls",
                f"{function} made more than {limits.host_calls} host calls "
                f"(the next was {host_function})",
            )
            used = self._ctx.host_calls
        elif isinstance(cause, _HostDeadline):
            breach = (
                DeadlineExceeded,
                "deadline_ms",
                f"{function} ran past its deadline ({limits.deadline_ms} ms) "
                f"in host function {host_function}",
            )
            used = round(stats.wall_time_us / 1000)
        elif isinstance(cause, LogBreach):
            unit = "records" if cause.limit == "log_records" else "bytes"
            breach = (
                LogLimitExceeded,
                cause.limit,
                f"{function} logged more than {getattr(limits, cause.limit)} {unit} "
                f"(Limits.{cause.limit}; the refused record would have made {cause.used})",
            )
            used = cause.used
        elif isinstance(cause, _WasiWait):
            wait = f"{function} asked WASI to wait {cause.wait_ns / 1e6:,.1f} ms ({host_function})"
            if cause.past_deadline:
                breach = (
                    DeadlineExceeded,
                    "deadline_ms",
                    f"{wait}, past its deadline ({limits.deadline_ms} ms)",
                )
                used = round(stats.wall_time_us / 1000 + cause.wait_ns / 1e6)
            else:
                return WasiRefusedError(
                    f"{wait}; wasmplug refuses WASI clock waits: wasmtime would block "
                    "where the deadline cannot interrupt it",
                    wasi_function=host_function,
                    plugin=plugin,
                    function=function,
                    stats=stats,
                    detail=detail,
                )
        if breach is not None:
            cls, limit, message = breach
            error = cls(
                message,
                limit=limit,
                allowed=getattr(limits, limit) or 0,
                used=used,
                plugin=plugin,
                function=function,
                stats=stats,
                detail=detail,
            )
            if isinstance(cause, _TableFull):
                error.__cause__ = cause
            return error
        _logger.error(
            "plugin %r: host function %s failed during %s",
            plugin,
            host_function,
            function,
            exc_info=cause,
            extra={"plugin": plugin},
        )
        error = HostFunctionError(
            f"{function} failed in host function {host_function}: {type(cause).__name__}: {cause}",
            host_function=host_function,
            plugin=plugin,
            function=function,
            stats=stats,
            detail=detail,
        )
        error.__cause__ = cause
        return error
