"""Loaded plugins: the public face of a sandboxed component."""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import wasmtime

from . import _host, _wit
from ._audit import AuditCallback, Auditor
from ._backend import Backend, Outcome
from ._bindings import TypeNamespace
from ._component import ComponentBackend
from ._core import CoreBackend
from ._coremodule import CoreModuleError, read_imports
from ._engine import Engine, is_extism_plugin, sha256_hex
from ._exceptions import (
    ArgumentError,
    CallError,
    IntegrityError,
    InvalidWasmError,
    LoadError,
    PluginBusy,
    PluginClosedError,
    PolicyError,
    ReentrantCallError,
)
from ._host import HostContext
from ._kv import KvNamespace, KvStore, MemoryKvStore
from ._manifest import CapabilityReport, Manifest, compare, enforce, read_manifest
from ._policy import Grants, KvGrant, Policy
from ._resources import ResourceHandle
from ._stack import StackGuard, call_chain
from ._stats import CallStats
from ._world import ExportFunc, PreparedCall, World

__all__ = ["Plugin", "load"]

logger = logging.getLogger("wasmplug")

_STDOUT_LINE_MAX = 16 * 1024


class Plugin:
    """A plugin loaded, compiled, checked against its world and bound to a policy.

    Create one with :func:`load`. Calls are serialized per plugin (one lock), so a
    plugin can be shared between threads; the GIL is released while guest code runs.
    A caller waits at most ``Limits.queue_ms`` for a call of another thread to end
    (:class:`~wasmplug.PluginBusy`). A call that traps or breaches a limit raises a
    :class:`~wasmplug.CallError` and the next call runs on a fresh instance.

    A call runs on the calling thread when it has enough native stack left for the
    guest (:attr:`Engine.native_stack_bytes <wasmplug.Engine.native_stack_bytes>`),
    else on a worker thread of the engine while the caller waits; host functions the
    guest calls then run on that worker (see "Native stack" in ``docs/security.md``).

    Use it as a context manager, or call :meth:`close`, to release the instance.

    Attributes:
        name: The plugin's name, used in errors, logs and as its default kv namespace.
        world: The world it implements.
        policy: Its grants and limits.
        sha256: The sha256 of its bytes, lowercase hex.
        kind: ``"component"``, or ``"core-module"`` for a core module that
            ``wit-bindgen`` built (``wasm32-wasip1``), which runs on the fast path:
            wasmplug's own canonical ABI over wasmtime's core API.
        imports: Every import of the component, by name (WASI included); for a core
            module, the interfaces it imports besides WASI.
        ungranted_imports: The ``wasmplug:host`` interfaces it imports but the policy
            does not grant; every call to them returns ``denied``.
        kv: The host's view of the plugin's kv namespace (CBOR helpers included),
            whether or not the policy grants ``kv`` to the plugin.
        manifest: What the plugin declares it needs (its ``wasmplug-manifest``
            section, written with the guest SDK's ``manifest!``), or ``None``.
        capabilities: The load-time comparison of :attr:`manifest` with the policy's
            grants: requested, granted, denied (with the plugin's reasons) and
            granted but unrequested, by name.
    """

    name: str
    world: World
    policy: Policy
    sha256: str
    imports: tuple[str, ...]
    ungranted_imports: tuple[str, ...]
    _last: CallStats | tuple[Any, ...] | None
    kv: KvNamespace
    manifest: Manifest | None
    capabilities: CapabilityReport
    kind: str
    _backend: Backend | None
    _free: Callable[[Any], None]
    _audit: Auditor
    _lock: threading.Lock
    _caller: int | None
    _running: str
    _queue_s: float
    _stack: StackGuard
    _pending: collections.deque[tuple[Any, object]]
    _used: Callable[[Plugin], None] | None
    _evictable: bool

    def __init__(self) -> None:
        raise TypeError("use wasmplug.load() to load a plugin")

    @classmethod
    def _create(
        cls,
        *,
        name: str,
        world: World,
        policy: Policy,
        sha256: str,
        backend: Backend,
        ungranted: tuple[str, ...],
        kv: KvNamespace,
        capabilities: CapabilityReport,
        engine: Engine,
    ) -> Plugin:
        self = cls.__new__(cls)
        self.name = name
        self.world = world
        self.policy = policy
        self.sha256 = sha256
        self.imports = backend.imports
        self.ungranted_imports = ungranted
        self._last = None
        self.kv = kv
        self.manifest = capabilities.manifest
        self.capabilities = capabilities
        self._backend = backend
        # Frees native resource handles collected after close (needs no backend).
        self._free = type(backend).free
        self.kind = backend.kind
        self._audit = backend.auditor
        self._lock = threading.Lock()
        self._caller = None  # the call chain running the guest, to detect re-entry
        self._running = ""  # the export running, for PluginBusy's message
        queue_ms = policy.limits.queue_ms
        # -1: no bound (Lock.acquire's timeout); at most what a lock accepts
        self._queue_s = -1.0 if queue_ms is None else min(queue_ms / 1000, threading.TIMEOUT_MAX)
        self._stack = engine._stack_guard
        self._pending = collections.deque()
        # The engine's LRU of live instances, when it bounds them (Engine.used).
        self._used = engine.used if engine.max_live_instances is not None else None
        # An instance holding resources the host can see is never dropped by the LRU.
        self._evictable = not world.passes_handles
        if self._used is not None:
            self._used(self)
        return self

    @classmethod
    def _over(
        cls,
        backend: Backend,
        *,
        world: World,
        name: str,
        policy: Policy | None = None,
        engine: Engine | None = None,
    ) -> Plugin:
        """A plugin over a backend made elsewhere rather than by :func:`load` (a test's
        mock backend): no file (``sha256`` of no bytes), no manifest, no kv store of
        its own beyond an empty in-memory one. Starts the backend (``start()``) on
        the engine's stack guard, as :func:`load` does.

        Args:
            backend: What runs the plugin's calls.
            world: The world it implements (:attr:`functions`, argument checks,
                :class:`GuestError` classes).
            name: The plugin's name.
            policy: Its policy (``Limits.queue_ms`` applies here; the backend enforces
                the rest); default ``Policy()``.
            engine: The engine whose stack guard runs calls; default
                :meth:`Engine.default`.

        Raises:
            Whatever ``backend.start()`` raises.
        """
        policy = policy if policy is not None else Policy()
        engine = engine or Engine.default()
        engine._stack_guard.run(backend.start)
        return cls._create(
            name=name,
            world=world,
            policy=policy,
            sha256=sha256_hex(b""),
            backend=backend,
            ungranted=(),
            kv=KvNamespace(MemoryKvStore(), name, quota_bytes=KvGrant().quota_bytes),
            capabilities=compare(None, policy.grants, plugin=name),
            engine=engine,
        )

    @property
    def last_call(self) -> CallStats | None:
        """The stats of the most recent call, failed or not (``None`` before the
        first call)."""
        last = self._last
        if isinstance(last, tuple):  # the fast path's fields, made into stats on demand
            self._last = last = CallStats(*last)
        return last

    @property
    def types(self) -> TypeNamespace:
        """The Python classes of the world's types (``plugin.types.Flight``)."""
        return self.world.types

    @property
    def audit_counts(self) -> Mapping[str, int]:
        """How many denials and breaches this plugin had since it was loaded, keyed
        ``"<kind>:<name>"``: ``"denial:kv"``, ``"denial:log"``, ``"denial:<WASI
        function>"``, ``"breach:fuel"``, ``"breach:output_bytes"``... (a copy; keys
        appear at their first event). Each is also an :class:`~wasmplug.AuditEvent`
        offered to the ``audit`` callback given to :func:`load`."""
        return self._audit.snapshot()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._backend is None

    @property
    def functions(self) -> list[str]:
        """The names :meth:`call` accepts, sorted."""
        return sorted(self.world.exports)

    def call(self, function: str, *args: Any) -> Any:
        """Calls an export of the plugin.

        Args:
            function: The export's name: ``"evaluate"`` for a world-level function,
                ``"<interface>.<function>"`` for a function of an exported interface.
            *args: One Python value per WIT parameter, mapped as described in
                :mod:`wasmplug` (records as the classes in :attr:`types`, or any object
                or mapping with the same snake_case fields).

        Returns:
            The lifted result: ``None`` for a function without a result; for a
            ``result<T, E>`` the ``ok`` value.

        Raises:
            ArgumentError: ``function`` is not an export, the number of arguments is
                wrong, or an argument does not match its WIT type, or is a resource
                handle of another plugin (nothing ran).
            GuestError: the function returned the ``err`` case of its ``result``; the
                payload is in ``.value``. For an error of a named WIT type ``E`` the
                subclass ``<E>Exception`` (``types.<E>Exception``).
            FuelExhausted: the call used more than ``Limits.fuel`` fuel units.
            DeadlineExceeded: the call ran longer than ``Limits.deadline_ms``.
            MemoryLimitExceeded: the guest aborted after hitting ``Limits.memory_bytes``.
            Trap: the guest trapped (panic, ``unreachable``, stack overflow ...).
            HostFunctionError: a host function given in ``imports`` raised, or
                returned a value that does not fit its WIT type.
            HandleLimitExceeded: the instance would hold more host resources than
                ``Limits.resource_handles``.
            OutputLimitExceeded: the result is larger than ``Limits.output_bytes``
                (nothing was lifted; the instance is kept), or larger than wasmtime
                copies in one call.
            LogLimitExceeded: the call logged more than ``Limits.log_records``
                records or ``Limits.log_bytes`` bytes.
            StdioLimitExceeded: the call wrote more than ``Limits.stdio_bytes`` bytes
                to WASI stdout and stderr.
            InstantiationError: a fresh instance was needed and could not be created.
            PluginClosedError: the plugin was closed.
            StaleHandleError: a resource handle argument was closed, moved into the
                plugin, or belongs to an instance that was replaced (nothing ran).
            ReentrantCallError: called from one of this plugin's own host functions
                during a call of this plugin.
            PluginBusy: the plugin ran another call for longer than
                ``Limits.queue_ms`` while this one waited (nothing ran).
        """
        self._refuse_reentry(function)
        export = self.world.export(function, len(args), plugin=self.name)
        return self._invoke(export, function, args, False)

    def _invoke(self, export: ExportFunc, function: str, payload: Any, prepared: bool) -> Any:
        """Runs a call through the backend under the call lock: the arguments as
        given (``payload`` a tuple), or prepared (``payload`` a :class:`PreparedCall`)."""
        lock = self._lock
        if not lock.acquire(blocking=False):
            self._wait_for_turn(function)
        try:
            backend = self._backend
            if backend is None:
                raise PluginClosedError(f"{function}: the plugin is closed", plugin=self.name)
            if self._pending:
                self._drop_pending(backend)
            self._running = function
            try:
                value, is_ok, stats = self._stack.run(
                    self._enter, backend, function, payload, prepared
                )
            except BaseException as e:
                self._last = getattr(e, "stats", None) or self._last
                raise
            finally:
                self._running = ""
            self._last = stats
        finally:
            lock.release()
            if self._used is not None:
                self._used(self)
        if not is_ok:
            raise export.error(value, plugin=self.name, function=function)
        return value

    def evict(self) -> bool:
        """Drops the live instance unless a call is running (for the engine's LRU,
        :attr:`Engine.max_live_instances <wasmplug.Engine.max_live_instances>`);
        returns whether the plugin holds no instance now. A plugin whose world passes
        resources keeps its instance (its handles would go stale)."""
        if not self._evictable or not self._lock.acquire(blocking=False):
            return False
        try:
            backend = self._backend
            if backend is not None:
                backend.evict()
            return True
        finally:
            self._lock.release()

    def _refuse_reentry(self, function: str) -> None:
        """Raises :class:`ReentrantCallError` when called from this plugin's own call
        chain (a host function calling back into the plugin running it)."""
        if self._caller == call_chain():
            raise ReentrantCallError(
                f"{function}: called from a host function while this plugin is running "
                "a call; a plugin runs one call at a time",
                plugin=self.name,
                function=function,
            )

    def _enter(self, backend: Backend, function: str, payload: Any, prepared: bool) -> Outcome:
        """Runs the call in the backend, on whichever thread :class:`StackGuard`
        chose. ``_caller`` records the call chain (:func:`call_chain`: the thread, or
        the thread a stack worker runs the call for), which a host function calling
        back into this plugin shares, on any thread of the chain."""
        self._caller = call_chain()
        try:
            if prepared:
                return backend.invoke_prepared(payload, self)
            return backend.invoke(function, payload, self)
        finally:
            self._caller = None

    def call_prepared(self, prepared: PreparedCall) -> Any:
        """Calls an export with arguments already lowered by :meth:`World.prepare`.

        Use it to send the same arguments to many plugins of one world: the arguments
        are checked and converted once.

        Args:
            prepared: From ``world.prepare(function, *args)`` on this plugin's world.

        Returns:
            As :meth:`call`.

        Raises:
            ArgumentError: ``prepared`` was made for another world.
            GuestError: as :meth:`call`.
            CallError: as :meth:`call` (``FuelExhausted``, ``DeadlineExceeded``,
                ``MemoryLimitExceeded``, ``Trap``, ``HostFunctionError``, ...).
            InstantiationError: as :meth:`call`.
            PluginClosedError: as :meth:`call`.
            ReentrantCallError: as :meth:`call`.
            PluginBusy: as :meth:`call`.
        """
        function = prepared.function
        self._refuse_reentry(function)
        if prepared.world is not self.world:
            raise ArgumentError(
                f"{function}: prepared for world {prepared.world.name} "
                f"(another World object), not this plugin's {self.world.name}",
                plugin=self.name,
                function=function,
            )
        return self._invoke(prepared.export, function, prepared, True)

    def _wait_for_turn(self, function: str) -> None:
        """Waits for the call lock, held by another call, for up to ``Limits.queue_ms``
        (or without bound when it is ``None``).

        Raises:
            PluginBusy: the wait timed out (audited as a breach of ``queue_ms``); the
                lock is not held.
        """
        if self._queue_s < 0:
            self._lock.acquire()
            return
        start = time.monotonic()
        if self._lock.acquire(timeout=self._queue_s):
            return
        error = PluginBusy(
            waited_ms=round((time.monotonic() - start) * 1000),
            allowed=self.policy.limits.queue_ms or 0,
            busy_with=self._running,
            plugin=self.name,
            function=function,
        )
        backend = self._backend
        if backend is not None:
            backend.audit(error)
        raise error

    def _release_handle(self, handle: ResourceHandle) -> None:
        """Drops the resource of a handle (:meth:`ResourceHandle.close`).

        Raises:
            CallError: the guest's destructor failed.
            ReentrantCallError: called from a host function during a call.
        """
        name = type(handle).__wit_type__.name
        if self._caller == call_chain():
            raise ReentrantCallError(
                f"closing a {name} handle from a host function while this plugin is running a call",
                plugin=self.name,
                function=f"[resource-drop]{name}",
            )
        with self._lock:
            native = handle._native
            if native is None:
                return
            handle._native = None
            backend = self._backend
            if backend is None:
                self._free(native)
                return
            instance = handle._instance
            self._stack.run(backend.release, native, instance, f"[resource-drop]{name}")

    def _release_later(self, native: Any, instance: object) -> None:
        """Queues a native handle of a garbage-collected open handle; it is dropped at
        the next call (any thread may collect it, even one inside a call)."""
        if self._backend is None:
            self._free(native)
        else:
            self._pending.append((native, instance))

    def _drop_pending(self, backend: Backend) -> None:
        while self._pending:
            native, instance = self._pending.popleft()
            try:
                self._stack.run(backend.release, native, instance, "[resource-drop]")
            except CallError as e:
                logger.warning(
                    "plugin %r: dropping a collected resource handle failed: %s",
                    self.name,
                    e,
                    extra={"plugin": self.name},
                )

    def interrupt(self) -> None:
        """Stops the call this plugin is running now; callable from any thread.

        The guest stops at the end of its current slice of execution (within
        :data:`~wasmplug._sandbox.SLICE_MS`, 50 ms of guest time, plus one epoch
        tick), through the same epoch mechanism as deadlines, and the call raises
        :class:`~wasmplug.CallInterrupted` to its caller; the instance is discarded
        and the next call runs on a fresh one. A host function running at that
        moment finishes first. Does nothing when no call is running, and does not
        affect a call that starts afterwards. :meth:`Pool.acall
        <wasmplug.Pool.acall>` calls it when its awaiting task is cancelled.
        """
        backend = self._backend
        if backend is not None:
            backend.interrupt()

    def close(self) -> None:
        """Releases the instance and the host functions. Idempotent; later calls raise
        :class:`~wasmplug.PluginClosedError`. Host resources the instance held are
        closed; handles to the plugin's resources become stale.

        A call running on another thread is stopped first (:meth:`interrupt`: it
        raises :class:`~wasmplug.CallInterrupted`), so closing takes at most about
        50 ms of guest time plus what a host function running at that moment takes,
        whatever the call's deadline."""
        if self._running:
            self.interrupt()
        with self._lock:
            if self._backend is not None:
                while self._pending:
                    self._free(self._pending.popleft()[0])
                self._backend.close()
                self._backend = None

    def __enter__(self) -> Plugin:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "loaded"
        return f"<Plugin {self.name!r} {self.world.name} {state}>"


Output = Callable[[bytes], int | None]


def _wasi_factory(plugin: str, grants: Grants) -> Callable[[Output, Output], Any]:
    """Returns a function building the WASI configuration of one new Store."""
    out_logger = logging.getLogger(f"wasmplug.plugin.{plugin}")
    for p in grants.files:
        if not os.path.isdir(p.host_path):
            raise PolicyError(
                f"Preopen.host_path {p.host_path!r} is not an existing directory", plugin=plugin
            )
    files = [(os.path.abspath(p.host_path), p.guest_path, p.writable) for p in grants.files]
    env = [[k, v] for k, v in grants.env.items()]

    def line_logger(level: int) -> Callable[[bytes], None]:
        pending = bytearray()

        def write(data: bytes) -> None:
            pending.extend(data)
            while b"\n" in pending:
                line, _, rest = bytes(pending).partition(b"\n")
                pending[:] = rest
                out_logger.log(level, "%s", line[:_STDOUT_LINE_MAX].decode(errors="replace"))
            if len(pending) > _STDOUT_LINE_MAX:
                out_logger.log(level, "%s", bytes(pending).decode(errors="replace"))
                pending.clear()

        return write

    def forward(count: Output, to_log: Callable[[bytes], None]) -> Output:
        def write(data: bytes) -> int | None:
            refused = count(data)
            if refused is None:
                to_log(data)
            return refused

        return write

    def make(on_stdout: Output, on_stderr: Output) -> wasmtime.WasiConfig:
        """``on_stdout``/``on_stderr`` count the guest's writes (``Limits.stdio_bytes``)
        and return ``None`` to accept one, or a negative errno to fail it."""
        wasi = wasmtime.WasiConfig()
        if env:
            wasi.env = env
        for host_path, guest_path, writable in files:
            wasi.preopen_dir(host_path, guest_path, fs_mutable=writable)
        if grants.stdio:
            wasi.stdout_custom = forward(on_stdout, line_logger(logging.INFO))
            wasi.stderr_custom = forward(on_stderr, line_logger(logging.WARNING))
        else:
            wasi.stdout_custom = on_stdout
            wasi.stderr_custom = on_stderr
        return wasi

    return make


def load(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    world: World,
    policy: Policy | None = None,
    name: str | None = None,
    sha256: str | None = None,
    engine: Engine | None = None,
    kv_store: KvStore | None = None,
    imports: Mapping[str, object] | None = None,
    audit: AuditCallback | None = None,
) -> Plugin:
    """Loads a plugin: reads, verifies, compiles, checks and links it, and creates its
    first instance.

    Args:
        source: Path to a component (``.wasm``, built for ``wasm32-wasip2`` or
            componentized), a core module ``wit-bindgen`` built, or an Extism plugin
            (a core module importing ``extism:host/env``, see ``docs/extism.md``), or
            its bytes.
        world: The world the plugin must implement (:func:`load_world`).
        policy: Grants and limits; default: nothing granted, default limits.
        name: The plugin's name for errors, logs and its default kv namespace; default
            the file's stem, or ``"plugin-<sha256 prefix>"`` for bytes.
        sha256: Pin the plugin: the bytes must have this sha256 (hex, any case).
        engine: The engine to use; default :meth:`Engine.default`.
        kv_store: Storage for the ``kv`` capability; default a new
            :class:`MemoryKvStore` per plugin.
        imports: This plugin's implementations of the host's own interfaces that the
            world imports (every imported interface but ``wasmplug:host`` and WASI),
            keyed by qualified name (``ns:pkg/iface@1.0.0``) or short name
            (``iface``): an object with one snake_case method per WIT function (a
            generated ``Protocol``), or a mapping of WIT function name to callable.
            A world-level imported function is keyed by its name, with a callable.
            Arguments arrive as :meth:`call` returns values; the result is checked
            against the WIT type. For a ``result<T, E>`` result return a ``T``, or
            raise :class:`GuestError` with an ``E`` to return ``err`` to the guest.
            A resource the interface defines (``resource counter``) is a class
            that the implementation exposes by its Python name (attribute
            ``Counter``) or, in a mapping, by its WIT name (key ``counter``): the
            guest's constructor calls the class, its methods call the object's
            snake_case methods, its static functions the class's. The guest's handles
            map to objects in a per-instance table (at most
            ``Limits.resource_handles``); when the guest drops its handle, or the
            instance is replaced or closed, the object's ``close()`` is called if it
            has one. An object the guest passes back arrives as itself; one it gives
            away (``own<counter>`` parameter) leaves the table and is not closed.
            Nothing is shared with other plugins.
        audit: Called with an :class:`AuditEvent` for every denial and every breached
            limit of this plugin, synchronously, on the thread running the call (the
            caller's, or the stack worker's when the call runs on one), while the
            plugin's call lock is held (so it must not call this plugin); for
            :class:`PluginBusy`, on the waiting caller's thread without the lock. An
            exception it raises is logged and never changes the call's outcome.
            Default: the engine's (``Engine(audit=...)``), if any.

    Returns:
        The plugin, ready to :meth:`~Plugin.call`.

    Raises:
        OSError: ``source`` is a path that cannot be read.
        IntegrityError: the bytes do not have the pinned sha256.
        InvalidWasmError: not WebAssembly, a core module instead of a component, or it
            does not compile.
        WorldMismatchError: an export of the world is missing or has another type.
        LinkError: it imports something its world does not; the world imports a host
            interface or function that ``imports`` does not implement (or an
            implementation lacks one of its functions); ``imports`` names something
            the world does not import.
        ManifestError: the plugin's capability manifest is malformed, or there are two.
        CapabilityError: the policy is strict (``Policy.mode``) and the manifest asks
            for something its grants do not give.
        LoadError: an Extism plugin, and the ``extism`` package is not installed.
        PolicyError: a preopened host directory does not exist; for an Extism
            plugin, the policy asks for something Extism cannot enforce (named).
        InstantiationError: the first instance cannot be created (for example its
            initial memory exceeds ``Limits.memory_bytes``).

    Start-up code runs on the calling thread, or on a worker thread of the engine
    when the calling thread has too little native stack left
    (:attr:`Engine.native_stack_bytes`).
    """
    if isinstance(source, bytes | bytearray | memoryview):
        wasm = bytes(source)
        default_name = None
    else:
        path = Path(source)
        wasm = path.read_bytes()
        default_name = path.stem
    digest = sha256_hex(wasm)
    name = name or default_name or f"plugin-{digest[:12]}"
    if sha256 is not None and sha256.lower() != digest:
        raise IntegrityError(expected=sha256.lower(), found=digest, plugin=name)
    policy = policy if policy is not None else Policy()
    engine = engine or Engine.default()
    _check_reservation(engine, policy, name)
    # An Extism plugin is compiled by libextism (with its host functions), not here.
    extism = is_extism_plugin(wasm)
    compiled = None if extism else engine.compile(wasm, sha256=digest, plugin=name)
    grants = policy.grants
    report = compare(read_manifest(wasm, sha256=digest, plugin=name), grants, plugin=name)
    enforce(report, strict=policy.mode == "strict")
    error_cases = _host_error_cases(world)
    ctx = HostContext(
        plugin=name,
        grants=grants,
        kv_store=kv_store if kv_store is not None else MemoryKvStore(),
        error_cases=error_cases,
    )
    ctx.audit.callback = audit if audit is not None else engine.audit
    host_impls = _host.bind_imports(world, imports, ctx)
    backend: Backend
    common: dict[str, Any] = {
        "engine": engine.wasmtime_engine,
        "world": world,
        "limits": policy.limits,
        "ctx": ctx,
        "host_impls": host_impls,
        "wasi": _wasi_factory(name, grants),
        "epoch_tick_ms": engine.epoch_tick_ms,
        "epoch_deadline": engine.epoch_clock.deadline,
        "instance_per_call": policy.instance_per_call,
        "checks": engine.checked,
    }
    if compiled is None:
        try:
            from ._extism import ExtismBackend
        except ImportError as e:
            raise LoadError(
                f"this is an Extism plugin, which needs the extism package ({e}): "
                "pip install 'wasmplug[extism]'",
                plugin=name,
            ) from e
        try:
            imported = read_imports(wasm)
        except CoreModuleError as e:
            raise InvalidWasmError(f"cannot read its imports: {e}", plugin=name) from None
        backend = ExtismBackend(
            wasm=wasm,
            imports=imported,
            world=world,
            policy=policy,
            ctx=ctx,
            host_impls=host_impls,
            epoch_tick_ms=engine.epoch_tick_ms,
            epoch_deadline=engine.epoch_clock.deadline,
        )
    elif isinstance(compiled, wasmtime.Module):
        backend = CoreBackend(module=compiled, determinism=policy.determinism, **common)
    else:
        common["engine"] = engine.component_wasmtime_engine
        backend = ComponentBackend(
            component=compiled,
            determinism=policy.determinism,
            forwarder=engine._forwarder_component,
            **common,
        )
    ungranted = tuple(
        i for i in _host.HOST_INTERFACES if i in backend.imports and not _host.is_granted(i, grants)
    )
    if ungranted:
        logger.warning(
            "plugin %r imports %s but the policy does not grant %s: those calls will be denied",
            name,
            ", ".join(ungranted),
            ", ".join(_host.GRANT_OF[i] for i in ungranted),
        )
    engine._stack_guard.run(backend.start)  # start-up code runs guest code too
    return Plugin._create(
        name=name,
        world=world,
        policy=policy,
        sha256=digest,
        backend=backend,
        ungranted=ungranted,
        kv=KvNamespace(
            ctx.kv_store,
            ctx.kv_namespace,
            quota_bytes=(grants.kv or KvGrant()).quota_bytes,
        ),
        capabilities=report,
        engine=engine,
    )


def _host_error_cases(world: World) -> dict[str, type]:
    """The case classes of ``wasmplug:host/types.error`` in this world, by case name,
    and those of ``wasmplug:host/http.http-error`` as ``http.<case>`` (empty when the
    world imports no host capability)."""
    cases: dict[str, type] = {}
    for key, iface in world.import_interfaces():
        if key not in _host.HOST_INTERFACES:
            continue
        for td in iface.types.values():
            target = _wit.unalias(td)
            if isinstance(target, _wit.TypeDef) and isinstance(target.kind, _wit.VariantKind):
                if target.name == "error":
                    cases.update(world.types.variant_info(target).cases)
                elif target.name == "http-error":
                    for case, cls in world.types.variant_info(target).cases.items():
                        cases[f"http.{case}"] = cls
    return cases


def _check_reservation(engine: Engine, policy: Policy, plugin: str) -> None:
    """Raises :class:`PolicyError` when the engine's memory reservation cannot hold
    what ``Limits.memory_bytes`` allows (a memory never moves, so it cannot grow past
    its reservation)."""
    reserved = engine.memory_reservation_bytes
    if reserved is None:
        return
    allowed = policy.limits.memory_bytes
    if allowed is None or allowed > reserved:
        found = "no limit" if allowed is None else f"{allowed:,} bytes"
        raise PolicyError(
            f"Limits.memory_bytes must be at most the engine's memory_reservation_bytes "
            f"({reserved:,} bytes: a linear memory cannot grow past its reservation), "
            f"found {found}",
            plugin=plugin,
        )
