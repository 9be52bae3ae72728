"""The Extism backend: runs Extism plugins (core modules built with ``extism-pdk``)
under a wasmplug :class:`~wasmplug.Policy`, behind :class:`~wasmplug._backend.Backend`.

``wasmplug.load`` picks it for a core module that imports ``extism:host/env`` (every
plugin ``extism-pdk`` builds does; ``_engine.is_extism_plugin``), and imports this
module only then: the ``extism`` package is an optional extra. libextism is called
through ``_extism_native`` (the only module that touches the SDK's cffi library
object), not through ``extism.Plugin``: that class has no fuel-limited constructor,
gives every plugin the host functions of a process-wide registry, and ignores
exceptions raised in host functions.

Calling convention (``docs/extism.md``): the world's WIT describes the exports. An
export ``read-file`` (``rules.evaluate`` in an exported interface) is the Extism
function ``read_file`` (``rules_evaluate``). Its arguments go in as JSON
(:mod:`wasmplug._jsonvalue`): nothing for none, the value for one, an array for
several. Its output is the JSON of its result (of ``T`` for a ``result<T, E>``); an
error the plugin returns is the ``err`` case of a ``result`` (the message as is for
a ``string`` ``E``, else JSON of ``E``). A host function the world imports
(``imports=`` of :func:`wasmplug.load`, per plugin) is the import ``shout`` of
module ``extism:host/user`` for WIT function ``shout``: one ``i64`` memory block of
JSON per parameter, one for the result (a ``result<T, E>`` as serde writes it:
``{"Ok": t}`` or ``{"Err": e}``).

The policy maps onto Extism as follows; what cannot be expressed is refused at load
with a :class:`~wasmplug.PolicyError` (:func:`refusals`):

- ``Limits.fuel``: libextism's fuel-limited constructor (fuel per call).
- ``Limits.memory_bytes``: the manifest's ``memory.max_pages`` (whole 64 KiB pages).
- ``Limits.deadline_ms``: the manifest's ``timeout_ms``.
- ``Grants.files``: the manifest's ``allowed_paths`` (``ro:`` when not writable).
- ``Grants.config``: the manifest's ``config``, served by wasmplug's ``config``
  capability in place of Extism's ``config_get`` (a read without the grant is a
  counted denial, as on the other backends).
- ``Grants.http``: served by wasmplug's own HTTP capability (``_http.py``) in place
  of Extism's ``http_request``, so every field of the grant applies as on the other
  backends; the manifest's ``allowed_hosts`` lists the granted hosts as well.
- ``Grants.log``: Extism's ``log_*`` functions are served by wasmplug's ``log``
  capability (the plugin's logger, ``Limits.log_records`` / ``log_bytes``).
- ``Limits.host_calls``, ``Limits.output_bytes``: checked by wasmplug.
- ``Limits.open_files``, ``Preopen.max_bytes``: measured by wasmplug as on the
  component path (:class:`~wasmplug._files.FileLimits`), after every call and, while
  a call runs, every :data:`~wasmplug._sandbox.SLICE_MS` by a watcher thread
  (:class:`_FileWatch`) that cancels a call found past a limit.
"""

from __future__ import annotations

import base64
import enum
import json
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any

from . import _extism_native as native
from . import _host, _wit
from ._backend import Backend, Outcome
from ._bindings import describe
from ._checks import Mismatch
from ._coremodule import CoreImport
from ._engine import EXTISM_KERNEL
from ._exceptions import (
    ArgumentError,
    CallError,
    InstantiationError,
    InvalidGuestValue,
    InvalidWasmError,
    LinkError,
    OutputLimitExceeded,
    PolicyError,
    Trap,
    WorldMismatchError,
)
from ._jsonvalue import from_json, json_reader, json_writer, to_json
from ._policy import Limits, Policy
from ._sandbox import (
    SLICE_MS,
    Sandbox,
    call_interrupted,
    check_host_call,
    deadline_exceeded,
    fuel_exhausted,
    memory_exceeded,
    run_host_function,
)
from ._stats import CallStats

if TYPE_CHECKING:
    from ._host import HostContext
    from ._world import ExportFunc, World

__all__ = ["EXTISM_USER", "ExtismBackend", "refusals"]

#: The import module of the host's own functions (``#[host_fn]``'s default).
EXTISM_USER = "extism:host/user"
_WASI_P1 = "wasi_snapshot_preview1"
_PAGE = 65536

# What libextism says when it stops a call (its messages, not the guest's).
_TIMEOUT = "timeout"
#: How long a call must have run before libextism is asked to cancel it, in seconds.
#: libextism 1.x registers a call with its timer thread *before* it sets the call's
#: epoch deadline (``Plugin::raw_call``); a cancel the timer handles in between bumps
#: the epoch too early and unregisters the call, so that cancel and the call's
#: timeout are both lost and the call runs on. Sending the wake-up that registers
#: the call can itself hand the CPU to the timer thread, so the gap is not only
#: theoretical on a loaded machine; waiting this long closes it in practice.
_CANCEL_AFTER_S = 0.010
_OUT_OF_FUEL = "out of fuel"
_OOM = "oom"
#: libextism's return code for a call that failed in the runtime (a trap), as
#: opposed to an error the plugin returned with its own code.
_RUNTIME_FAILURE = -1

#: The guest functions of Extism's kernel that wasmplug serves itself.
_LOG_LEVELS = {
    "log_trace": "trace",
    "log_debug": "debug",
    "log_info": "info",
    "log_warn": "warn",
    "log_error": "error",
}
#: HTTP status codes of the response a refused request gets (Extism's HTTP has no
#: error channel but a trap), per ``http-error`` case; the body is the refusal's
#: message. A ``connection`` failure gets 502.
_REFUSAL_STATUS = {"denied": 403, "invalid": 400, "too-large": 413, "timeout": 504}
_REFUSAL_OTHER = 502


def extism_name(call_name: str) -> str:
    """The Extism function for an export's call name: ``read-file`` ->
    ``read_file``, ``rules.evaluate`` -> ``rules_evaluate``."""
    return call_name.replace("-", "_").replace(".", "_")


def refusals(policy: Policy) -> list[str]:
    """What of ``policy`` the Extism backend cannot enforce, one sentence each (empty
    when it can enforce all of it)."""
    grants, limits = policy.grants, policy.limits
    found: list[str] = []
    if grants.kv is not None:
        found.append("Grants.kv: Extism has no key-value capability (its vars are per instance)")
    if grants.env:
        found.append("Grants.env: Extism gives its plugins' WASI no environment variables")
    if grants.stdio:
        found.append("Grants.stdio: Extism gives its plugins' WASI no stdout or stderr")
    if policy.determinism is not None:
        found.append("Policy.determinism: Extism's WASI clocks and randomness are the real ones")
    defaults = Limits()
    for name in ("memories", "tables", "instances", "table_elements"):
        if getattr(limits, name) != getattr(defaults, name):
            found.append(f"Limits.{name}: Extism has no setting for it")
    if limits.memory_bytes is not None and limits.memory_bytes < _PAGE:
        found.append(
            f"Limits.memory_bytes: Extism limits memory in whole 64 KiB pages; "
            f"{limits.memory_bytes} bytes is less than one"
        )
    return found


class _FileWatch:
    """Measures the files of the Extism plugins whose calls are running, every
    :data:`SLICE_MS`, on one daemon thread for the process (started with the first
    call to watch): libextism runs WASI itself, with no hook into its file
    functions, so this is how a call that opens or writes past a limit is stopped
    before it ends (:meth:`ExtismBackend.check_files`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: weakref.WeakSet[ExtismBackend] = weakref.WeakSet()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, backend: ExtismBackend) -> None:
        """Watches ``backend`` until :meth:`remove`."""
        with self._lock:
            self._running.add(backend)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="wasmplug-extism-files", daemon=True
                )
                self._thread.start()
            self._wake.set()

    def remove(self, backend: ExtismBackend) -> None:
        with self._lock:
            self._running.discard(backend)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(SLICE_MS / 1000)
            with self._lock:
                running = list(self._running)
                if not running:
                    self._wake.clear()  # parked until the next add
            for backend in running:
                backend.check_files()


_FILE_WATCH = _FileWatch()


class _Preopens:
    """Stands for one instance's WASI preopens (:meth:`FileLimits.preopened_by`)."""


class _Refusal:
    """An error value for the guest in Extism's shape (the capabilities' ``err``: a
    refused HTTP request becomes a response, a refused log record nothing); one
    subclass per error case."""

    case = ""

    def __init__(self, message: str) -> None:
        self.value = message


def _refusal(case: str) -> type:
    return type(f"_Refusal_{case.replace('-', '_')}", (_Refusal,), {"case": case})


_ERROR_CASES: dict[str, type] = {
    "denied": _refusal("denied"),
    **{
        f"http.{case}": _refusal(case)
        for case in ("denied", "invalid", "too-large", "timeout", "connection")
    },
}


class _Level(enum.Enum):
    """A log level as the ``log`` capability reads it (``level.value``)."""

    TRACE = "trace"
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


class _NoGuestMemory(Exception):
    """Extism could not allocate a block for a host function's result: the guest's
    memory is at ``Limits.memory_bytes``."""


class _HttpRequest:
    """Extism's HTTP request (its JSON and the body block) in the shape the ``http``
    capability reads."""

    def __init__(self, data: Mapping[str, Any], body: bytes) -> None:
        self.method = str(data.get("method") or "GET")
        self.url = str(data.get("url", ""))
        headers = data.get("headers") or {}
        self.headers = [(str(k), str(v)) for k, v in dict(headers).items()]
        self.body = body


class ExtismBackend(Sandbox, Backend):
    """Runs an Extism plugin through libextism under the plugin's policy.

    One compiled plugin per :class:`~wasmplug.Plugin`, with this plugin's host
    functions; instances are made from it (the first by :meth:`start`, a fresh one
    after a failed call, or for every call with ``Policy.instance_per_call``).
    """

    kind = "extism"

    def __init__(
        self,
        *,
        wasm: bytes,
        imports: Sequence[CoreImport],
        world: World,
        policy: Policy,
        ctx: HostContext,
        host_impls: Mapping[str, Mapping[str, Callable[..., Any]]],
        epoch_tick_ms: float,
        epoch_deadline: Callable[[int], int],
    ) -> None:
        super().__init__(
            limits=policy.limits,
            ctx=ctx,
            epoch_tick_ms=epoch_tick_ms,
            epoch_deadline=epoch_deadline,
            instance_per_call=policy.instance_per_call,
        )
        plugin = ctx.plugin
        refused = refusals(policy)
        if refused:
            raise PolicyError(
                "the Extism backend cannot enforce " + "; ".join(refused) + " (see docs/extism.md)",
                plugin=plugin,
            )
        ctx.add_error_cases(_ERROR_CASES)
        self._world = world
        self._types = world.types
        self._policy = policy
        self.imports = tuple(
            dict.fromkeys(
                f"{i.module}#{i.name}" for i in imports if i.module not in (EXTISM_KERNEL, _WASI_P1)
            )
        )
        self._wasi = any(i.module == _WASI_P1 for i in imports) or bool(policy.grants.files)
        self._exports: dict[str, tuple[bytes, ExportFunc]] = {
            name: (extism_name(name).encode(), export) for name, export in world.exports.items()
        }
        # Per export, made once: a JSON writer per parameter, and the reader of the
        # output (of T for a result<T, E>; None when there is nothing to read).
        self._codecs: dict[str, tuple[tuple[Callable[[Any], str], ...], Any]] = {
            name: (
                tuple(json_writer(param.type, self._types) for param in export.wit.params),
                self._output_reader(export),
            )
            for name, export in world.exports.items()
        }
        # Host functions as (namespace, name, params, results, body); libextism links
        # a function into one compiled plugin only, so they are made per compile.
        self._specs: list[tuple[str, str, list[int], list[int], native.HostCallback]] = []
        self._keep: list[Any] = []
        self._functions: list[Any] = []
        # A cancel was sent to the running call (interrupt): libextism's cancel is
        # processed on its timer thread, maybe after the call ended, and stops
        # whatever runs on the compiled plugin's engine then. So after it the
        # instance is dropped and the plugin compiled afresh (a new engine).
        self._cancel_sent = False
        self._recompile = False
        self._fresh = False
        self._http_status = 0
        self._manifest = self._make_manifest(wasm)
        self._link(imports, world, host_impls)
        self._compiled: Any = None
        self._plugin: Any = None
        self._cancel: Any = None
        self._lock = threading.Lock()  # guards _plugin/_cancel against interrupt()
        self._running = False
        # The running call: when it entered libextism, its number, and a cancel
        # deferred until it has run _CANCEL_AFTER_S.
        self._call_started = 0.0
        self._call_seq = 0
        self._deferred: threading.Timer | None = None
        # libextism's WASI holds the preopens' descriptors; measured after every call
        # and by the watcher while one runs (one at a time: _files_lock).
        self._files_lock = threading.Lock()
        self._preopens: object = None  # lives as long as the instance's WASI context
        if self.files.watched:
            self.files.baseline()

    # -- load --------------------------------------------------------------------------

    def _make_manifest(self, wasm: bytes) -> bytes:
        grants, limits = self._policy.grants, self._policy.limits
        manifest: dict[str, Any] = {"wasm": [{"data": base64.b64encode(wasm).decode()}]}
        if limits.memory_bytes is not None:
            manifest["memory"] = {"max_pages": limits.memory_bytes // _PAGE}
        if limits.deadline_ms is not None:
            manifest["timeout_ms"] = limits.deadline_ms
        if grants.config is not None:
            manifest["config"] = dict(grants.config)
        if grants.http is not None:
            manifest["allowed_hosts"] = sorted({rule.host for rule in grants.http.allow})
        if grants.files:
            paths: dict[str, str] = {}
            for preopen in grants.files:
                if not os.path.isdir(preopen.host_path):
                    raise PolicyError(
                        f"Grants.files: {preopen.host_path!r} is not a directory",
                        plugin=self._ctx.plugin,
                    )
                prefix = "" if preopen.writable else "ro:"
                paths[prefix + preopen.host_path] = preopen.guest_path
            manifest["allowed_paths"] = paths
        return json.dumps(manifest).encode()

    def _link(
        self,
        imports: Sequence[CoreImport],
        world: World,
        host_impls: Mapping[str, Mapping[str, Callable[..., Any]]],
    ) -> None:
        """Makes this plugin's host functions: the host's own (``imports=``) and the
        kernel functions wasmplug serves (HTTP, log).

        Raises:
            LinkError: an import has no implementation or another type than the
                convention's.
        """
        plugin = self._ctx.plugin
        own: dict[str, tuple[str, _wit.Function, Callable[..., Any]]] = {}
        wanted = dict(_host._host_interfaces(world))
        for key, iface in wanted.items():
            for fname, func in iface.functions.items():
                own.setdefault(extism_name(fname), (f"{key}#{fname}", func, host_impls[key][fname]))
        for key, item in world.wit.imports.items():
            if isinstance(item, _wit.Function):
                own.setdefault(extism_name(key), (key, item, host_impls[""][key]))
        for imported in imports:
            module, name = imported.module, imported.name
            if module in (_WASI_P1,):
                continue
            if imported.kind != "func":
                raise LinkError(
                    f"imports {module}#{name}, which is not a function",
                    [f"{module}#{name}"],
                    plugin=plugin,
                )
            params, results = list(imported.params), list(imported.results)
            if module == EXTISM_KERNEL:
                self._link_kernel(name, params, results)
                continue
            if module != EXTISM_USER:
                raise LinkError(
                    f"imports {module}#{name}: an Extism plugin's host functions come from "
                    f"{EXTISM_USER}",
                    [f"{module}#{name}"],
                    plugin=plugin,
                )
            found = own.get(name)
            if found is None:
                known = ", ".join(sorted(own)) or "none"
                raise LinkError(
                    f"imports {module}#{name}, which world {world.name} does not import "
                    f"(its host functions here: {known})",
                    [f"{module}#{name}"],
                    plugin=plugin,
                )
            qualified, func, impl = found
            want_params = ["i64"] * len(func.params)
            want_results = [] if func.result is None else ["i64"]
            if params != want_params or results != want_results:
                raise LinkError(
                    f"imports {module}#{name} as ({', '.join(params)}) -> "
                    f"({', '.join(results)}); {qualified} needs ({', '.join(want_params)}) "
                    f"-> ({', '.join(want_results)}): one JSON memory block per parameter "
                    "and for the result",
                    [f"{module}#{name}"],
                    plugin=plugin,
                )
            self._add(
                EXTISM_USER, name, len(params), len(results), self._host_body(qualified, func, impl)
            )

    def _link_kernel(self, name: str, params: list[str], results: list[str]) -> None:
        """Serves the kernel functions that carry a capability (HTTP, log) with
        wasmplug's own, so that the policy applies to them."""
        signature = (params, results)
        if name == "http_request" and signature == (["i64", "i64"], ["i64"]):
            self._add(EXTISM_KERNEL, name, 2, 1, self._http_request)
        elif name == "http_status_code" and signature == ([], ["i32"]):
            self._add(EXTISM_KERNEL, name, 0, 1, self._http_status_code, results_type=native.I32)
        elif name == "http_headers" and signature == ([], ["i64"]):
            self._add(EXTISM_KERNEL, name, 0, 1, self._no_headers)
        elif name == "config_get" and signature == (["i64"], ["i64"]):
            self._add(EXTISM_KERNEL, name, 1, 1, self._config_get)
        elif name in _LOG_LEVELS and signature == (["i64"], []):
            self._add(EXTISM_KERNEL, name, 1, 0, self._log_body(_Level(_LOG_LEVELS[name])))
        elif name == "get_log_level" and signature == ([], ["i32"]):
            # Every record reaches the log capability, which applies Grants.log and
            # counts a denied one.
            self._add(
                EXTISM_KERNEL, name, 0, 1, lambda current, args, out: None, results_type=native.I32
            )

    def _add(
        self,
        namespace: str,
        name: str,
        n_params: int,
        n_results: int,
        body: native.HostCallback,
        *,
        results_type: int = native.I64,
    ) -> None:
        self._specs.append(
            (
                namespace,
                name,
                [native.I64] * n_params,
                [results_type] * n_results,
                self._guarded(f"{namespace}#{name}", body),
            )
        )

    def _guarded(self, qualified: str, body: native.HostCallback) -> native.HostCallback:
        """Wraps a host function body: it counts as a host call, and whatever it
        raises is recorded as the call's failure. libextism cannot fail a call from a
        host function: the guest gets no result (offset 0), its later host calls do
        nothing, and the call fails with the recorded failure when the guest returns
        (within its fuel and deadline)."""
        ctx = self._ctx

        def call(current: Any, args: list[int], out: list[int]) -> None:
            if ctx.failure is not None:
                return  # the call is being stopped: do nothing more for it
            ctx.host_calls += 1
            try:
                check_host_call(ctx, qualified)
                body(current, args, out)
            except BaseException as e:  # never into cffi, which would print and go on
                ctx.failure = (qualified, e)

        return call

    def _host_body(
        self, qualified: str, func: _wit.Function, impl: Callable[..., Any]
    ) -> native.HostCallback:
        ctx = self._ctx
        types = self._types

        def body(current: Any, args: list[int], out: list[int]) -> None:
            values = []
            for param, offset in zip(func.params, args, strict=True):
                raw = native.read_block(current, offset)
                try:
                    values.append(from_json(json.loads(raw), param.type, types))
                except (ValueError, Mismatch) as e:
                    text = e.describe(param.name) if isinstance(e, Mismatch) else str(e)
                    raise InvalidGuestValue(
                        f"argument {param.name} of {qualified} is not JSON of "
                        f"{describe(param.type)}: {text}",
                        detail=f"{qualified}: {text}",
                    ) from None
            value = run_host_function(ctx, qualified, impl, values, timed=True)
            if func.result is None:
                return
            data = to_json(value, types)
            try:
                from_json(data, func.result, types)
            except Mismatch as e:
                raise TypeError(
                    f"{qualified} returned a value that is not a {describe(func.result)}: "
                    f"{e.describe('result')}"
                ) from None
            out[0] = self._write(current, json.dumps(data).encode(), qualified)

        return body

    def _write(self, current: Any, data: bytes, qualified: str) -> int:
        offset = native.write_block(current, data)
        if offset == 0 and data:
            raise _NoGuestMemory(f"Extism could not allocate {len(data)} bytes for {qualified}")
        return offset

    def _http_request(self, current: Any, args: list[int], out: list[int]) -> None:
        """Extism's ``http_request`` over wasmplug's ``http`` capability. A refused
        request gets a response with a 4xx/5xx status and the refusal as its body
        (Extism's HTTP has no other way to tell the guest)."""
        from ._http import send

        raw = native.read_block(current, args[0])
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError as e:
            raise InvalidGuestValue(
                f"http_request: the request is not Extism's JSON: {e}",
                detail=f"http_request: {raw[:200]!r}",
            ) from None
        request = _HttpRequest(data, native.read_block(current, args[1]))
        result = run_host_function(self._ctx, "http", send, [self._ctx, request], timed=True)
        value = result.value
        if isinstance(value, _Refusal):
            self._http_status = _REFUSAL_STATUS.get(value.case, _REFUSAL_OTHER)
            body = str(value.value).encode()
        else:
            self._http_status = int(value["status"])
            body = bytes(value["body"])
        out[0] = self._write(current, body, "http_request")

    def _config_get(self, current: Any, args: list[int], out: list[int]) -> None:
        """Extism's ``config_get`` over wasmplug's ``config`` capability: a key of
        ``Grants.config`` (offset 0 for a missing one), or a counted denial (offset
        0) without the grant."""
        key = native.read_block(current, args[0]).decode(errors="replace")
        result = _host._config_get(self._ctx, key)
        value = result.value
        out[0] = 0 if not isinstance(value, str) else self._write(current, value.encode(), key)

    def _http_status_code(self, current: Any, args: list[int], out: list[int]) -> None:
        out[0] = self._http_status

    def _no_headers(self, current: Any, args: list[int], out: list[int]) -> None:
        out[0] = 0  # response headers are not passed to the plugin

    def _log_body(self, level: _Level) -> native.HostCallback:
        ctx = self._ctx

        def body(current: Any, args: list[int], out: list[int]) -> None:
            message = native.read_block(current, args[0]).decode(errors="replace")
            _host._log(ctx, level, message)

        return body

    def start(self) -> None:
        """Compiles the plugin with this plugin's host functions, checks that it
        exports every function of the world, and creates the first instance.

        Raises:
            InvalidWasmError: libextism cannot compile it.
            LinkError: an import cannot be satisfied.
            WorldMismatchError: an export of the world is missing.
            InstantiationError: the first instance cannot be created.
        """
        plugin = self._ctx.plugin
        try:
            self._compile()
        except native.ExtismFailure as e:
            text = str(e)
            if "import" in text:
                raise LinkError(f"cannot link: {text}", [], plugin=plugin) from None
            raise InvalidWasmError(f"Extism cannot load it: {text}", plugin=plugin) from None
        self._instantiate()
        missing = [
            f"export {name!r} ({export.signature}) as Extism function {ext.decode()!r}"
            for name, (ext, export) in self._exports.items()
            if not native.function_exists(self._plugin, ext.decode())
        ]
        if missing:
            raise WorldMismatchError(self._world.name, missing, plugin=plugin)

    def _compile(self) -> None:
        """(Re)compiles the plugin with new host functions, freeing the old ones.

        Raises:
            native.ExtismFailure: libextism refused it.
        """
        self._free_compiled()
        made = [native.new_function(*spec) for spec in self._specs]
        self._functions = [function for function, _ in made]
        self._keep = [keep for _, keep in made]
        self._compiled = native.compile_plugin(
            self._manifest, self._functions, wasi=self._wasi, fuel=self._policy.limits.fuel
        )

    def _free_compiled(self) -> None:
        if self._compiled is not None:
            native.free_compiled(self._compiled)
            self._compiled = None
        for function in self._functions:
            native.free_function(function)
        self._functions = []
        self._keep = []

    def _instantiate(self) -> None:
        if self._recompile:
            self._recompile = False
            try:
                self._compile()
            except native.ExtismFailure as e:
                raise InstantiationError(
                    f"cannot compile it again: {e}", plugin=self._ctx.plugin
                ) from None
        self._ctx.deadline = perf_counter() + (
            math.inf if self._limits.deadline_ms is None else self._limits.deadline_ms / 1000
        )
        try:
            instance = native.instantiate(self._compiled)
        except native.ExtismFailure as e:
            raise InstantiationError(f"cannot instantiate: {e}", plugin=self._ctx.plugin) from None
        with self._lock:
            self._plugin = instance
            self._cancel = native.cancel_handle(instance)
        # Its WASI context preopens each directory once: not the guest's to count.
        self._preopens = _Preopens()
        self.files.preopened_by(self._preopens)
        self._fresh = True  # no call has run on it yet

    # -- calls -------------------------------------------------------------------------

    def _output_reader(self, export: ExportFunc) -> Callable[[bytes], Any] | None:
        """The reader of an export's JSON output: of its result type, of ``T`` for a
        ``result<T, E>``; ``None`` when it returns nothing to read."""
        result = export.wit.result
        if result is None:
            return None
        target = _wit.unalias(result)
        if isinstance(target, _wit.ResultType):
            if target.ok is None:
                return None
            result = target.ok
        return json_reader(result, self._types)

    def _input(self, function: str, export: ExportFunc, args: Sequence[Any]) -> bytes:
        """The call's input: the arguments as JSON (nothing for none, the value for
        one, an array for several), each checked against its type.

        Raises:
            ArgumentError: an argument does not fit its WIT type.
        """
        writers = self._codecs[function][0]
        if len(writers) == 1 and len(args) == 1:
            parts = [self._write_arg(writers[0], args[0], export.wit.params[0], export, function)]
            text = parts[0]
        elif not writers and not args:
            return b""
        else:
            parts = [
                self._write_arg(write, arg, param, export, function)
                for write, arg, param in zip(writers, args, export.wit.params, strict=True)
            ]
            text = "[" + ",".join(parts) + "]"
        try:
            return text.encode()
        except UnicodeEncodeError as e:
            raise ArgumentError(
                f"{export.signature}: a string holds {text[e.start]!r}, a lone surrogate, "
                "which is not a Unicode scalar value (a WIT string holds only those)",
                plugin=self._ctx.plugin,
                function=function,
            ) from None

    def _write_arg(
        self,
        write: Callable[[Any], str],
        arg: Any,
        param: _wit.Param,
        export: ExportFunc,
        function: str,
    ) -> str:
        try:
            return write(arg)
        except Mismatch as e:
            raise ArgumentError(
                f"{export.signature}: {e.describe(param.name)}",
                plugin=self._ctx.plugin,
                function=function,
            ) from None

    def invoke(self, function: str, args: Sequence[Any], owner: object) -> Outcome:
        """Calls the export: arguments in as JSON, the result out as JSON, under the
        plugin's fuel, memory, deadline and host-call limits. See
        :meth:`Backend.invoke <wasmplug._backend.Backend.invoke>`."""
        name, export = self._exports[function]
        data = self._input(function, export, args)
        ctx = self._ctx
        if self._plugin is None:
            self._instantiate()
        fresh, self._fresh = self._fresh, False
        self.begin(function)
        start = perf_counter()
        watched = self.files.watched
        with self._lock:
            self._running = True
            self._call_seq += 1
            self._call_started = perf_counter()
        if watched:
            _FILE_WATCH.add(self)
        try:
            rc, error = native.call(self._plugin, name, data)
        finally:
            if watched:
                _FILE_WATCH.remove(self)
            with self._lock:
                self._running = False
                cancelled, self._cancel_sent = self._cancel_sent, False
                if self._deferred is not None:
                    self._deferred.cancel()
                    self._deferred = None
        if watched and self.files.breach is None:
            with self._files_lock:
                self.measure_files()
        if cancelled:
            self._recompile = True  # a cancel may still be on its way: a new engine
        stats = CallStats(
            function,
            0,  # libextism does not report the fuel a call used
            (perf_counter() - start) * 1e6,
            ctx.host_calls,
            ctx.denials,
            fresh,
            ctx.host_time * 1e6,
            None,
        )
        if (
            ctx.failure is not None
            or self._interrupted
            or self.files.breach is not None
            or (error is not None and self._is_runtime(rc, error))
        ):
            raise self._failed(function, error or "", stats)
        try:
            if error is not None:
                return self._guest_error(export, function, error, stats), False, stats
            return self._result(export, function, stats), True, stats
        finally:
            if self.per_call or cancelled:
                self._discard()

    @staticmethod
    def _is_runtime(rc: int, error: str) -> bool:
        """Whether a failed call failed in the runtime (a trap or a breached limit)
        rather than by an error the plugin returned."""
        return rc == _RUNTIME_FAILURE or error in (_TIMEOUT, _OOM) or _OUT_OF_FUEL in error

    def _output_limit(self, function: str, size: int, stats: CallStats) -> None:
        allowed = self._limits.output_bytes
        if allowed is not None and size > allowed:
            error = OutputLimitExceeded(
                f"{function} returned {size} bytes, more than Limits.output_bytes ({allowed})",
                limit="output_bytes",
                allowed=allowed,
                used=size,
                plugin=self._ctx.plugin,
                function=function,
                stats=stats,
            )
            self._discard()
            self.audit(error)
            raise error

    def _result(self, export: ExportFunc, function: str, stats: CallStats) -> Any:
        read = self._codecs[function][1]
        if read is None:
            return None
        plugin = self._plugin
        size = native.output_length(plugin)
        self._output_limit(function, size, stats)
        raw = native.output(plugin, size)
        try:
            return read(raw)
        except (ValueError, Mismatch) as e:
            result = export.wit.result
            assert result is not None  # there is a reader
            target = _wit.unalias(result)
            if isinstance(target, _wit.ResultType) and target.ok is not None:
                result = target.ok
            raise self._bad_output(raw, result, function, "result", stats, cause=e) from None

    def _guest_error(
        self, export: ExportFunc, function: str, message: str, stats: CallStats
    ) -> Any:
        """The ``err`` value of an error the plugin returned."""
        target = _wit.unalias(export.wit.result) if export.wit.result is not None else None
        if not isinstance(target, _wit.ResultType):
            error = Trap(
                f"{function} failed: {message} (it returns no result<T, E> to carry an error)",
                plugin=self._ctx.plugin,
                function=function,
                stats=stats,
                detail=message,
            )
            self._discard()
            raise error
        self._output_limit(function, len(message.encode()), stats)
        if target.err is None:
            return None
        err = _wit.unalias(target.err)
        if isinstance(err, _wit.Primitive) and err.name == "string":
            return message
        return self._decode(message.encode(), target.err, function, "error", stats)

    def _decode(
        self, raw: bytes, t: _wit.WitType, function: str, what: str, stats: CallStats
    ) -> Any:
        try:
            return from_json(json.loads(raw), t, self._types)
        except (ValueError, Mismatch) as e:
            raise self._bad_output(raw, t, function, what, stats, cause=e) from None

    def _bad_output(
        self,
        raw: bytes,
        t: _wit.WitType,
        function: str,
        what: str,
        stats: CallStats,
        *,
        cause: ValueError | Mismatch,
    ) -> InvalidGuestValue:
        """Discards the instance after an output that is not JSON of ``t``, audits it
        and returns its exception."""
        text = cause.describe(what) if isinstance(cause, Mismatch) else f"not JSON ({cause})"
        error = InvalidGuestValue(
            f"{function}: its {what} is not JSON of {describe(t)}: {text}",
            plugin=self._ctx.plugin,
            function=function,
            stats=stats,
            detail=raw[:200].decode(errors="replace"),
        )
        self._discard()
        self.audit(error)
        return error

    def _failed(self, function: str, message: str, stats: CallStats) -> CallError:
        """Discards the instance after a failed call and returns its exception: the
        host function's failure, an interruption, or libextism's error classified."""
        self._discard()
        ctx = self._ctx
        limits = self._limits
        plugin = ctx.plugin
        error: CallError
        if ctx.failure is not None and isinstance(ctx.failure[1], _NoGuestMemory):
            error = memory_exceeded(
                function,
                limits=limits,
                why=f": {ctx.failure[1]}",
                plugin=plugin,
                stats=stats,
                detail=message,
            )
        elif ctx.failure is not None:
            error = self._host_failure(function, ctx.failure, stats, message)
        elif self.files.breach is not None:
            error = self.file_error(self.files.breach, function, stats, message)
        elif self._interrupted:
            error = call_interrupted(function, plugin=plugin, stats=stats, detail=message)
        elif message == _TIMEOUT:
            error = deadline_exceeded(
                function, limits=limits, plugin=plugin, stats=stats, detail=message
            )
        elif _OUT_OF_FUEL in message:
            error = fuel_exhausted(
                function,
                limits=limits,
                used=limits.fuel,
                plugin=plugin,
                stats=stats,
                detail=message,
            )
        elif message == _OOM:
            error = memory_exceeded(
                function, limits=limits, plugin=plugin, stats=stats, detail=message
            )
        else:
            lines = [line.strip() for line in message.splitlines() if line.strip()]
            cause = lines[0] if lines else "unknown failure"
            error = Trap(
                f"{function} trapped: {cause}",
                plugin=plugin,
                function=function,
                stats=stats,
                detail=message,
            )
        self.audit(error)
        return error

    # -- lifecycle ---------------------------------------------------------------------

    def interrupt(self) -> None:
        """Stops the running call, if any: it fails with
        :class:`~wasmplug.CallInterrupted`. Callable from any thread."""
        self._cancel_call(interrupted=True)

    def _cancel_call(self, *, interrupted: bool, seq: int | None = None) -> None:
        """Asks libextism to cancel the running call (``seq``: only if it is still
        that call), once it has run :data:`_CANCEL_AFTER_S`; earlier, the cancel is
        deferred until then."""
        with self._lock:
            if self._cancel is None or not self._running:
                return
            if seq is not None and seq != self._call_seq:
                return
            self._interrupted = self._interrupted or interrupted
            wait = self._call_started + _CANCEL_AFTER_S - perf_counter()
            if wait > 0:
                if self._deferred is None:
                    self._deferred = threading.Timer(
                        wait,
                        self._cancel_call,
                        kwargs={"interrupted": False, "seq": self._call_seq},
                    )
                    self._deferred.daemon = True
                    self._deferred.start()
                return
            self._cancel_sent = True
            native.cancel(self._cancel)

    def check_files(self) -> None:
        """Measures the plugin's files while a call runs (the watcher thread); a
        breach is recorded and the call cancelled: it fails with
        :class:`~wasmplug.FileLimitExceeded` or :class:`~wasmplug.DiskLimitExceeded`
        and the instance, with every descriptor its WASI context holds, is freed."""
        with self._files_lock:
            if self.files.breach is not None or not self.measure_files():
                return
        self._cancel_call(interrupted=False)

    def _discard(self) -> None:
        with self._lock:
            instance, self._plugin, self._cancel = self._plugin, None, None
        if instance is not None:
            native.free_plugin(instance)
        self._preopens = None  # its descriptors are closed

    def close(self) -> None:
        """Frees the instance, the compiled plugin and the host functions."""
        self._discard()
        self._free_compiled()
