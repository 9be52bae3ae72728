"""The wasmplug exception tree.

Every exception wasmplug raises derives from :class:`WasmplugError`. Misuse by the
host (a bad policy, a wrong argument) is a different branch from failures of the
plugin (a trap, a breached limit), and both differ from a plugin that *returns* an
error value (:class:`GuestError`)::

    WasmplugError
    ├── WitError (ValueError)              WIT source cannot be parsed or resolved
    ├── PolicyError (ValueError)           a Grants/Limits value is invalid
    ├── KvQuotaExceeded                    a kv write would pass its namespace's quota
    ├── ArgumentError (TypeError)          call arguments do not match the WIT types
    ├── PluginClosedError (RuntimeError)   the plugin was used after close()
    ├── ReentrantCallError (RuntimeError)  a host function called back into its own plugin
    ├── StaleHandleError (RuntimeError)    a resource handle used after close, move or restart
    ├── LoadError                          a plugin could not be loaded
    │   ├── InvalidWasmError               not WebAssembly, not a component, does not compile
    │   ├── IntegrityError                 the bytes do not have the pinned sha256
    │   ├── WorldMismatchError             exports missing or of the wrong type for the world
    │   ├── LinkError                      imports the host cannot or will not provide
    │   ├── InstantiationError             instantiation failed (e.g. memory limit too low)
    │   ├── ManifestError                  the plugin's capability manifest is malformed
    │   └── CapabilityError                strict policy: the manifest asks for more than granted
    ├── CallError                          a call into the plugin did not return
    │   ├── Trap                           the guest trapped (panic, unreachable, stack overflow)
    │   ├── HostFunctionError              a host function raised or returned a wrong value
    │   ├── WasiRefusedError               a WASI function wasmplug refuses to serve
    │   └── LimitExceeded                  a limit of the policy was breached
    │       ├── FuelExhausted
    │       ├── DeadlineExceeded
    │       ├── MemoryLimitExceeded
    │       ├── HandleLimitExceeded
    │       ├── HostCallsExceeded
    │       ├── OutputLimitExceeded
    │       ├── LogLimitExceeded
    │       ├── StdioLimitExceeded
    │       ├── FileLimitExceeded
    │       ├── DiskLimitExceeded
    │       └── PluginBusy                 a caller waited queue_ms behind another call
    └── GuestError                         the guest returned the `err` case of a `result`

Exceptions that resemble a builtin also subclass it, so ``except TypeError`` catches a
bad argument too. A :class:`CallError` never leaves the host in a bad state: the plugin
continues on a fresh instance at its next call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._manifest import CapabilityReport, Denial
    from ._stats import CallStats

__all__ = [
    "ArgumentError",
    "CallError",
    "CapabilityError",
    "DeadlineExceeded",
    "DiskLimitExceeded",
    "FileLimitExceeded",
    "FuelExhausted",
    "GuestError",
    "HandleLimitExceeded",
    "HostCallsExceeded",
    "HostFunctionError",
    "InstantiationError",
    "IntegrityError",
    "InvalidWasmError",
    "KvQuotaExceeded",
    "LimitExceeded",
    "LinkError",
    "LoadError",
    "LogLimitExceeded",
    "ManifestError",
    "MemoryLimitExceeded",
    "OutputLimitExceeded",
    "PluginBusy",
    "PluginClosedError",
    "PolicyError",
    "ReentrantCallError",
    "StaleHandleError",
    "StdioLimitExceeded",
    "Trap",
    "WasiRefusedError",
    "WasmplugError",
    "WitError",
    "WorldMismatchError",
]


def _prefix(plugin: str | None) -> str:
    return f"plugin {plugin!r}: " if plugin else ""


class WasmplugError(Exception):
    """Root of every exception raised by wasmplug.

    Attributes:
        plugin: The name of the plugin involved, or ``None`` when no plugin is (for
            example a WIT syntax error).
    """

    plugin: str | None

    def __init__(self, message: str, *, plugin: str | None = None) -> None:
        super().__init__(_prefix(plugin) + message)
        self.plugin = plugin


class WitError(WasmplugError, ValueError):
    """Raised when WIT source cannot be parsed or resolved.

    Attributes:
        path: The file the error is in, or ``None`` for text given directly.
        line: 1-based line of the error, when known.
        column: 1-based column of the error, when known.
        reason: What was expected and what was found.
    """

    path: str | None
    line: int | None
    column: int | None
    reason: str

    def __init__(
        self,
        reason: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        where = path or "<wit>"
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.column = column
        self.reason = reason


class PolicyError(WasmplugError, ValueError):
    """Raised when a :class:`~wasmplug.Grants` or :class:`~wasmplug.Limits` value is invalid.

    For example a negative fuel budget, a preopen whose host directory does not exist,
    or a guest path that is not absolute. Raised at construction or at load time,
    never during a call.
    """


class KvQuotaExceeded(WasmplugError):
    """Raised by a :class:`~wasmplug.KvStore` whose namespace would grow past its quota.

    A custom store raises it from ``set``; wasmplug catches it and gives the guest the
    ``quota-exceeded`` error value (the guest's call goes on). Raised to the host by
    :meth:`KvNamespace.set <wasmplug.KvNamespace.set>`.

    Attributes:
        namespace: The namespace written to.
        size_bytes: The size the namespace would have had (keys plus values plus the
            per-entry overhead).
        quota_bytes: Its quota.
    """

    namespace: str
    size_bytes: int
    quota_bytes: int

    def __init__(self, *, namespace: str, size_bytes: int, quota_bytes: int) -> None:
        super().__init__(
            f"namespace {namespace!r} would hold {size_bytes} bytes, quota is {quota_bytes}"
        )
        self.namespace = namespace
        self.size_bytes = size_bytes
        self.quota_bytes = quota_bytes


class ArgumentError(WasmplugError, TypeError):
    """Raised when call arguments do not match the function's WIT signature.

    The message names the function, the argument, the path inside it (e.g.
    ``flight.weather.visib``), what was expected and what was found. Nothing reaches
    the plugin: the instance and its state are untouched.

    Attributes:
        function: The WIT name of the function called.
    """

    function: str

    def __init__(self, message: str, *, plugin: str | None = None, function: str = "") -> None:
        super().__init__(message, plugin=plugin)
        self.function = function


class PluginClosedError(WasmplugError, RuntimeError):
    """Raised when a plugin is called after :meth:`~wasmplug.Plugin.close`."""


class ReentrantCallError(WasmplugError, RuntimeError):
    """Raised inside a host function that calls back into the plugin that is calling it.

    A plugin runs one call at a time; a host function runs *during* a call of its
    plugin, so calling the same plugin from it could only deadlock. Call another
    plugin, or return the data the guest needs instead. Unless the host function
    catches it, the guest's call then fails with :class:`HostFunctionError` whose
    ``__cause__`` is this exception.

    Attributes:
        function: The export the host function tried to call.
    """

    function: str

    def __init__(self, message: str, *, plugin: str | None = None, function: str = "") -> None:
        super().__init__(message, plugin=plugin)
        self.function = function


class StaleHandleError(WasmplugError, RuntimeError):
    """Raised when a resource handle is used after it stopped being valid.

    A handle to a resource the plugin exports (``types.Buffer``) is valid from the
    call that returned it until :meth:`close` is called on it, until it is passed to
    a parameter that takes ownership (``own<r>``: the guest has it now), or until
    the plugin's instance is replaced (a :class:`CallError` discards the instance
    and every resource in it). Raised before anything reaches the plugin.

    Inside the host it is also the cause of a :class:`HostFunctionError` when the
    guest refers to a host resource that is not in its instance's handle table.

    Attributes:
        resource: The WIT name of the resource, e.g. ``buffer``.
    """

    resource: str

    def __init__(self, message: str, *, resource: str, plugin: str | None = None) -> None:
        super().__init__(message, plugin=plugin)
        self.resource = resource


class LoadError(WasmplugError):
    """Base class for failures while loading a plugin. Nothing is left running."""


class InvalidWasmError(LoadError):
    """Raised when the bytes are not a WebAssembly component that wasmtime can compile.

    The message says what was found instead: not WebAssembly at all, a core module
    rather than a component, or the compiler's own error.
    """


class IntegrityError(LoadError):
    """Raised when the plugin's bytes do not have the sha256 the host pinned.

    Attributes:
        expected: The pinned sha256, lowercase hex.
        found: The sha256 of the bytes given, lowercase hex.
    """

    expected: str
    found: str

    def __init__(self, *, expected: str, found: str, plugin: str | None = None) -> None:
        super().__init__(f"sha256 mismatch: expected {expected}, found {found}", plugin=plugin)
        self.expected = expected
        self.found = found


class WorldMismatchError(LoadError):
    """Raised when a component does not implement the world the host expects.

    Attributes:
        problems: One line per problem: a missing export, an export whose type differs
            (with the expected and the found type), an import outside the world.
    """

    problems: tuple[str, ...]

    def __init__(self, world: str, problems: list[str], *, plugin: str | None = None) -> None:
        lines = "\n  ".join(problems)
        super().__init__(f"does not implement world {world}:\n  {lines}", plugin=plugin)
        self.problems = tuple(problems)


class LinkError(LoadError):
    """Raised when a component imports something the host cannot or will not provide.

    Attributes:
        imports: The names of the offending imports.
    """

    imports: tuple[str, ...]

    def __init__(self, message: str, imports: list[str], *, plugin: str | None = None) -> None:
        super().__init__(message, plugin=plugin)
        self.imports = tuple(imports)


class InstantiationError(LoadError):
    """Raised when a compiled, linked component fails to instantiate.

    Typically its initial linear memory, tables or instances exceed the plugin's
    :class:`~wasmplug.Limits`, or its start-up code (a core module's start function,
    static constructors) trapped. Start-up code runs under the call limits: when it
    runs out of fuel or past the deadline, the exception's ``__cause__`` is the
    :class:`FuelExhausted` or :class:`DeadlineExceeded` for it.
    """


class ManifestError(LoadError):
    """Raised when a plugin's capability manifest (its ``wasmplug-manifest`` custom
    section) is malformed: not UTF-8 JSON, another format version, an unknown key, a
    need without a reason, items or access words that do not fit the capability, or
    more than one manifest in the binary.

    The message says where in the manifest (``needs[2].items[0].access``), what was
    expected and what was found. Raised by :func:`~wasmplug.load` and
    :func:`~wasmplug.inspect`.
    """


class CapabilityError(LoadError):
    """Raised by :func:`~wasmplug.load` when the policy is strict
    (``Policy.mode == "strict"``) and the plugin's manifest asks for capabilities the
    policy does not grant. The message names each missing item, the reason the plugin
    gave for it and what the policy lacks.

    Attributes:
        report: The full load-time :class:`~wasmplug.CapabilityReport`.
        denied: The requests not granted (``report.denied``), each a
            :class:`~wasmplug.Denial` with ``request``, ``reason`` and ``missing``.
    """

    report: CapabilityReport
    denied: tuple[Denial, ...]

    def __init__(self, report: CapabilityReport) -> None:
        lines = "\n  ".join(str(d) for d in report.denied)
        super().__init__(
            "refused by its strict policy: the manifest requests "
            f"{len(report.denied)} capability item(s) the policy does not grant:\n  {lines}",
            plugin=report.plugin,
        )
        self.report = report
        self.denied = report.denied


class CallError(WasmplugError):
    """Base class for calls that did not return: the guest trapped or breached a limit.

    The host is unaffected and the plugin stays usable: its next call runs on a fresh
    instance (guest memory is reset; state kept through capabilities such as ``kv``
    survives).

    Attributes:
        function: The WIT name of the function that was called.
        stats: What the failed call used (:class:`~wasmplug.CallStats`).
        detail: The runtime's own message (wasmtime's trap text).
    """

    function: str
    stats: CallStats | None
    detail: str

    def __init__(
        self,
        message: str,
        *,
        plugin: str | None = None,
        function: str = "",
        stats: CallStats | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message, plugin=plugin)
        self.function = function
        self.stats = stats
        self.detail = detail


class CallInterrupted(CallError):
    """Raised when a running call was stopped on request: by
    :meth:`Plugin.interrupt <wasmplug.Plugin.interrupt>`, or by cancelling the task
    awaiting :meth:`Pool.acall <wasmplug.Pool.acall>`.

    The guest is stopped at the end of its current slice of execution (within 50 ms
    of guest time, plus one epoch tick), through the same epoch mechanism as
    deadlines. Like after a breach, the instance is discarded and the plugin's next
    call runs on a fresh one. Not audited: nothing was breached.
    """


class Trap(CallError):
    """Raised when the guest traps: a Rust panic, ``unreachable``, a stack overflow, an
    out-of-bounds access, or an exception escaping a host function.

    ``detail`` holds wasmtime's message including the guest backtrace when available;
    ``guest_stderr`` holds the last bytes the guest wrote to stderr (a Rust panic
    message lands there).

    Attributes:
        guest_stderr: Up to the last 4096 bytes of the guest's stderr, decoded.
    """

    guest_stderr: str

    def __init__(
        self,
        message: str,
        *,
        plugin: str | None = None,
        function: str = "",
        stats: CallStats | None = None,
        detail: str = "",
        guest_stderr: str = "",
    ) -> None:
        super().__init__(message, plugin=plugin, function=function, stats=stats, detail=detail)
        self.guest_stderr = guest_stderr


class InvalidGuestValue(Trap):
    """Raised on the core-module fast path when the guest hands the host a value that
    breaks the canonical ABI: a pointer or length outside its memory, a misaligned
    pointer, a discriminant past its type's cases, a ``char`` that is not a Unicode
    scalar value, a string that is not UTF-8, or a ``cabi_realloc`` that returned
    such a pointer. Nothing outside the guest's memory was read; the instance is
    replaced. (On the component path wasmtime checks the same and traps.) Also
    raised on both paths when a guest asks a WASI function that wasmplug serves for
    more than it gives: over 1 MiB of deterministic random bytes at once.

    ``detail`` says what was wrong and where in the value.
    """


class HostFunctionError(CallError):
    """Raised when a host function that the host gave the plugin failed during a call.

    It failed when it raised an exception other than the documented way of returning
    an error value (raising a :class:`GuestError` whose ``value`` fits the ``E`` of a
    ``result<T, E>`` result), or when it returned a value that does not fit its WIT
    result type. The original exception is the ``__cause__``; it is also logged on the
    ``wasmplug`` logger with the plugin's name. The guest's instance is replaced: its
    next call runs on a fresh one.

    Attributes:
        host_function: The failing function as ``<interface>#<function>`` (for
            example ``wasmplug-examples:rule-engine/airports@0.1.0#lookup``).
    """

    host_function: str

    def __init__(
        self,
        message: str,
        *,
        host_function: str,
        plugin: str | None = None,
        function: str = "",
        stats: CallStats | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message, plugin=plugin, function=function, stats=stats, detail=detail)
        self.host_function = host_function


class WasiRefusedError(CallError):
    """Raised when the guest called a WASI function that wasmplug refuses to serve.

    wasmplug refuses WASI clock waits (``wasi:clocks/monotonic-clock``
    ``subscribe-duration`` and ``subscribe-instant``: what a guest's ``sleep``, timed
    ``poll`` and clock waits are made of) because wasmtime's implementation blocks
    the calling thread where the deadline cannot interrupt it. A wait that would end
    past the call's deadline raises :class:`DeadlineExceeded` instead, at once. The
    guest's instance is replaced: its next call runs on a fresh one.

    Attributes:
        wasi_function: The refused function as ``<interface>#<function>`` (for
            example ``wasi:clocks/monotonic-clock@0.2.6#subscribe-duration``).
    """

    wasi_function: str

    def __init__(
        self,
        message: str,
        *,
        wasi_function: str,
        plugin: str | None = None,
        function: str = "",
        stats: CallStats | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message, plugin=plugin, function=function, stats=stats, detail=detail)
        self.wasi_function = wasi_function


class LimitExceeded(CallError):
    """Base class for a breached limit of the plugin's :class:`~wasmplug.Limits`.

    Attributes:
        limit: The name of the ``Limits`` field that was breached (``"fuel"``,
            ``"deadline_ms"``, ``"memory_bytes"``).
        allowed: The configured value of that limit, in its unit (fuel units,
            milliseconds, bytes, calls, records).
        used: How much of it the call had used when it was stopped, in the same unit
            (for a limit checked before the use, the amount the refused use would
            have reached); ``None`` where it is not known (``memory_bytes``: the
            guest's allocator failed, not wasmplug's check).
    """

    limit: str
    allowed: int
    used: int | None

    def __init__(
        self,
        message: str,
        *,
        limit: str,
        allowed: int,
        used: int | None = None,
        plugin: str | None = None,
        function: str = "",
        stats: CallStats | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message, plugin=plugin, function=function, stats=stats, detail=detail)
        self.limit = limit
        self.allowed = allowed
        self.used = used


class FuelExhausted(LimitExceeded):
    """Raised when a call used up its fuel budget (``Limits.fuel``, in fuel units).

    One fuel unit is roughly one WebAssembly instruction (wasmtime's
    ``Config::consume_fuel``).
    """


class HostCallsExceeded(LimitExceeded):
    """Raised when a call made more host function calls than ``Limits.host_calls``.

    The host function that would have exceeded the limit is not called; the guest's
    call fails and the plugin continues on a fresh instance.
    """


class DeadlineExceeded(LimitExceeded):
    """Raised when a call ran past its wall-clock deadline (``Limits.deadline_ms``).

    Enforced by wasmtime epoch interruption; the granularity is the engine's epoch
    tick (:attr:`wasmplug.Engine.epoch_tick_ms`), or a twentieth of the shortest
    pending deadline if that is longer, up to 10 ms (see :class:`wasmplug.Engine`).
    """


class MemoryLimitExceeded(LimitExceeded):
    """Raised when the guest failed because its linear memory hit ``Limits.memory_bytes``.

    Detected when a guest aborts after ``memory.grow`` was refused (a Rust guest prints
    ``memory allocation of N bytes failed`` and aborts).
    """


class HandleLimitExceeded(LimitExceeded):
    """Raised when an instance would hold more host resources than
    ``Limits.resource_handles`` (handles the guest created through the host's
    resource constructors, or received from host functions, and has not dropped).

    ``limit`` is ``"resource_handles"`` and ``allowed`` the table's size. The instance
    is replaced and every host resource it held is closed.
    """


class OutputLimitExceeded(LimitExceeded):
    """Raised when a call's result is larger than ``Limits.output_bytes``.

    ``used`` is the result's size as far as it was measured (measuring stops past the
    limit), in bytes of its data: each string's UTF-8 bytes, each list element's
    size, 8 per string and list (pointer and length, as the canonical ABI stores
    them), integers and floats at their width, ``bool`` 1, ``char`` 4, one byte per
    discriminant (option, result, variant, enum), 4 per flags value and per resource
    handle; a value of a type without strings or lists counts the type's largest
    value. It is measured on wasmtime's copy of the result before any Python value
    is built; the guest's instance is kept (the guest did nothing wrong but answer
    too much).
    """


class LogLimitExceeded(LimitExceeded):
    """Raised when a call logged more than ``Limits.log_records`` records or
    ``Limits.log_bytes`` bytes through the granted ``log`` capability.

    ``limit`` is ``"log_records"`` or ``"log_bytes"``. The record that would pass the
    limit is not logged; the guest's call fails and the plugin continues on a fresh
    instance.
    """


class StdioLimitExceeded(LimitExceeded):
    """Raised when a call wrote more than ``Limits.stdio_bytes`` bytes to its WASI
    stdout and stderr together.

    The write that passes the limit and every later one fail inside the guest (an I/O
    error; a Rust ``println!`` panics on it), nothing past the limit reaches the
    host's logs, and the call raises this whatever the guest did next. The plugin
    continues on a fresh instance.
    """


class FileLimitExceeded(LimitExceeded):
    """Raised when a plugin held more files open through WASI than
    ``Limits.open_files``.

    ``limit`` is ``"open_files"``, ``allowed`` the limit and ``used`` the descriptors
    counted. An open past the limit is refused inside the guest, which can handle it
    (fast path: ``EMFILE``; component path: ``error-code.quota``, ``EDQUOT`` under
    wasi-libc), and this is raised only when the call then fails. A component that
    imports ``wasi:sockets/tcp`` has its files counted after every call and every
    50 ms slice of a running one instead, and a count past the limit fails the call
    with this. Either way the instance is replaced, which closes every file it held.
    """


class DiskLimitExceeded(LimitExceeded):
    """Raised when a writable preopen holds more than its ``Preopen.max_bytes``.

    ``limit`` is ``"max_bytes"`` (a field of :class:`~wasmplug.Preopen`),
    ``allowed`` its value, ``used`` the bytes counted (file sizes plus 4,096 per
    entry) and :attr:`preopen` the preopen's guest path. On the fast path a write
    past the budget is refused inside the guest (``EDQUOT``, which it can handle),
    and this is raised only when the call then fails. On the component path usage
    is measured after every call and every 50 ms slice of a running one, and usage
    past the budget fails the call with this. The files stay on disk: writes go on
    failing until the guest or the host deletes some.

    Attributes:
        preopen: The guest path of the preopen over its budget (``"/data"``).
    """

    preopen: str

    def __init__(self, message: str, *, preopen: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.preopen = preopen


class PluginBusy(LimitExceeded):
    """Raised when a call waited ``Limits.queue_ms`` for the plugin, busy with another
    call, without getting its turn.

    A plugin runs one call at a time; callers from other threads wait for it. Nothing
    of this call ran: no instance was touched, ``Plugin.last_call`` is unchanged and
    ``stats`` is ``None``. The call that held the plugin goes on, unaffected; later
    calls work as soon as it ends. ``limit`` is ``"queue_ms"``, ``allowed`` the
    limit and ``used`` how long the call waited, in milliseconds.

    Attributes:
        busy_with: The export that was running when the wait ended, or ``""`` when
            it had just ended.
    """

    busy_with: str

    def __init__(
        self,
        *,
        waited_ms: int,
        allowed: int,
        busy_with: str = "",
        plugin: str | None = None,
        function: str = "",
    ) -> None:
        running = f"a call of {busy_with}" if busy_with else "another call"
        super().__init__(
            f"{function} waited {waited_ms:,} ms for the plugin, busy with {running}, "
            f"and gave up (Limits.queue_ms = {allowed:,}); nothing ran",
            limit="queue_ms",
            allowed=allowed,
            used=waited_ms,
            plugin=plugin,
            function=function,
        )
        self.busy_with = busy_with


class GuestError(WasmplugError):
    """The ``err`` case of a WIT ``result``, as an exception.

    Raised by a call when an exported function returns the ``err`` case of its
    ``result``: the guest's answer, not a failure of the sandbox; the instance is
    intact. Generated bindings raise a subclass per error type.

    Host functions use it the other way round: a host function whose WIT result is
    ``result<T, E>`` returns a ``T`` for ``ok``, and raises ``GuestError(e)`` (or a
    generated subclass) with an ``E`` as ``value`` to return ``err(e)`` to the guest.

    Attributes:
        function: The WIT name of the function that was called.
        value: The error payload, lifted to Python like any other value (``None`` for
            ``result<T>`` without an error type).
    """

    function: str
    value: Any

    def __init__(self, value: Any, *, plugin: str | None = None, function: str = "") -> None:
        text = f"{function} returned an error" if function else "error result"
        super().__init__(f"{text}: {value!r}", plugin=plugin)
        self.function = function
        self.value = value
