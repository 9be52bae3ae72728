"""Host functions: the ``wasmplug:host`` capabilities and the host's own imports.

Each capability function receives the calling plugin's :class:`HostContext` and the
lifted arguments, checks the plugin's grants, and returns the WIT result as
:class:`~wasmplug.Ok` / :class:`~wasmplug.Err`. A denial is an ``error.denied`` value
for the guest, never a trap, and is counted and logged with the plugin's name.

The host's own interfaces (every other interface a world imports, WASI aside) are
implemented per plugin by the objects the host passes to :func:`wasmplug.load` as
``imports``; :func:`bind_imports` checks them against the world and adapts them to
the same calling convention as the capabilities.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _wit
from ._audit import AuditEvent, Auditor, excerpt
from ._bindings import Err, Ok, class_name, field_name
from ._exceptions import GuestError, KvQuotaExceeded, LinkError, WitError
from ._kv import KvStore
from ._policy import Grants

if TYPE_CHECKING:
    from ._world import World

__all__ = ["CAPABILITIES", "HOST_INTERFACES", "HostContext", "bind_imports"]

#: The ``wasmplug:host`` WIT package shipped with wasmplug: the one definition of the
#: capabilities, shared with the guest SDK (``guest-sdk-rust/wit/host.wit`` links to it).
HOST_WIT = Path(__file__).with_name("wit") / "host.wit"


def _host_package(path: Path) -> tuple[str, str]:
    """Reads ``(name, version)`` from the ``package`` line of the packaged host.wit."""
    match = re.search(
        r"^package\s+(wasmplug:host)@([0-9A-Za-z.+-]+)\s*;", path.read_text(), re.MULTILINE
    )
    if match is None:  # pragma: no cover - the file ships with the package
        raise RuntimeError(f"{path}: no 'package wasmplug:host@<version>;' line")
    return match[1], match[2]


_HOST_NAME, HOST_VERSION = _host_package(HOST_WIT)
#: The host package's qualified name, e.g. ``wasmplug:host@0.1.0``.
HOST_PACKAGE = f"{_HOST_NAME}@{HOST_VERSION}"


def host_interface(name: str) -> str:
    """Returns the qualified name of a ``wasmplug:host`` interface: ``log`` ->
    ``wasmplug:host/log@<version of the packaged host.wit>``."""
    return f"{_HOST_NAME}/{name}@{HOST_VERSION}"


def check_host_wit_copies(path: Path) -> None:
    """Checks every copy of the ``wasmplug:host`` package in a WIT tree against the
    packaged ``host.wit``, the definition the host implements.

    A host's ``wit/deps/`` carries a copy (or a link) of ``host.wit`` so that plugin
    builds can resolve it. A copy that differs (an older wasmplug's, or an edited one)
    would make the world's view of the capabilities disagree with what the host serves.

    Args:
        path: A ``.wit`` file or a WIT directory (its ``deps/`` are searched).

    Raises:
        WitError: a file declaring ``package wasmplug:host@<packaged version>`` differs
            from the packaged ``host.wit`` (line endings and trailing blanks aside);
            the message names both files.
    """
    root = path if path.is_dir() else path.parent
    expected = _packaged_host_wit()
    declares = re.compile(
        rf"^package\s+{re.escape(_HOST_NAME)}@{re.escape(HOST_VERSION)}\s*;", re.MULTILINE
    )
    candidates = [*root.glob("*.wit"), *root.glob("deps/*.wit"), *root.glob("deps/*/*.wit")]
    for file in sorted(candidates):
        try:
            text = file.read_text()
        except (OSError, UnicodeDecodeError):
            continue  # the WIT parser reports unreadable files
        if declares.search(text) and _normalized(text) != expected:
            raise WitError(
                f"this copy of {HOST_PACKAGE} differs from the one wasmplug serves "
                f"({HOST_WIT}); replace it with that file (or link to it)",
                path=str(file),
            )


@functools.cache
def _packaged_host_wit() -> list[str]:
    """The packaged host.wit, normalized; read once per process."""
    return _normalized(HOST_WIT.read_text())


def _normalized(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()]


LOG = host_interface("log")
CONFIG = host_interface("config")
KV = host_interface("kv")
HTTP = host_interface("http")
HOST_INTERFACES = (LOG, CONFIG, KV, HTTP)

#: Which grant each interface needs, for load-time reports.
GRANT_OF = {LOG: "log", CONFIG: "config", KV: "kv", HTTP: "http"}

#: Longest log message kept, in bytes of UTF-8; longer ones are cut and marked.
MAX_LOG_MESSAGE = 16 * 1024
#: Longest key accepted by the kv interface, in bytes of UTF-8.
MAX_KV_KEY = 1024
#: Longest guest-chosen text (a key) quoted in a denial, in characters.
MAX_QUOTED = 64
#: Denial records a plugin may log at once, and how many more per second after
#: that (a token bucket); the rest are counted and reported with the next record.
DENIAL_LOG_BURST = 20
DENIAL_LOG_PER_S = 10.0

TRACE = 5
_LEVELS = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}

policy_logger = logging.getLogger("wasmplug.policy")


class HostContext:
    """Per-plugin state that the capability functions see.

    Attributes:
        plugin: The plugin's name.
        grants: Its grants.
        logger: The logger its ``log`` records go to (``wasmplug.plugin.<name>``).
        host_calls: Host function calls (capabilities and the host's own imports)
            during the current call into the plugin.
        denials: Denied capability calls during the current call.
        host_time: Seconds spent in the host's own host functions during the call.
        deadline: The current call's deadline, a ``time.perf_counter()`` value
            (``math.inf`` without one).
        failure: What made a host function fail during the current call, as
            ``(host function name, exception)``; ``None`` while none failed.
        function: The export being called (``""`` between calls).
        log_records, log_bytes: Records and message bytes logged through the
            ``log`` capability during the current call.
        max_log_records, max_log_bytes: Their limits (``math.inf`` for none).
        audit: The plugin's audit trail (denials and breaches).
    """

    def __init__(
        self,
        *,
        plugin: str,
        grants: Grants,
        kv_store: KvStore,
        error_cases: dict[str, type],
    ) -> None:
        self.plugin = plugin
        self.grants = grants
        self.kv_store = kv_store
        self.kv_namespace = (grants.kv.namespace if grants.kv else None) or plugin
        self.logger = logging.getLogger(f"wasmplug.plugin.{plugin}")
        self._error_cases = error_cases
        self.host_calls = 0
        self.denials = 0
        self.host_time = 0.0
        self.deadline = math.inf
        self.max_host_calls: float = math.inf
        self.failure: tuple[str, BaseException] | None = None
        self.function = ""
        self.log_records = 0
        self.log_bytes = 0
        self.max_log_records: float = math.inf
        self.max_log_bytes: float = math.inf
        self.audit = Auditor(plugin)
        self._log_tokens = float(DENIAL_LOG_BURST)
        self._log_refilled = time.monotonic()
        self._suppressed = 0

    def add_error_cases(self, cases: Mapping[str, type]) -> None:
        """Adds error case classes (made with the message) for the cases the world
        does not define: a backend whose guests receive errors in another shape
        (Extism's)."""
        for case, make in cases.items():
            self._error_cases.setdefault(case, make)

    def error(self, case: str, message: str) -> Err[Any]:
        """Returns ``err(error.<case>(message))`` for the guest; ``http.<case>`` names
        a case of ``http.http-error``."""
        return Err(self._error_cases[case](message))

    def deny(self, capability: str, what: str, *, case: str = "denied") -> Err[Any]:
        """Counts, logs and returns a denial of ``what`` under ``capability``.

        Every denial is counted (``CallStats.denials``); the WARNING records on the
        ``wasmplug.policy`` logger are rate-limited per plugin (a burst of
        :data:`DENIAL_LOG_BURST`, then :data:`DENIAL_LOG_PER_S` per second), and the
        next record logged says how many were suppressed, so a plugin granted nothing
        cannot flood the host's logs. Every denial is also an audit event
        (:class:`~wasmplug.AuditEvent`, kind ``"denial"``). ``case`` names the error
        case returned (``"http.denied"`` for the ``http`` interface's own error
        variant).
        """
        self.denials += 1
        self.audit.record(
            AuditEvent(
                plugin=self.plugin,
                kind="denial",
                name=capability,
                function=self.function,
                argument=excerpt(what),
            )
        )
        now = time.monotonic()
        self._log_tokens = min(
            float(DENIAL_LOG_BURST),
            self._log_tokens + (now - self._log_refilled) * DENIAL_LOG_PER_S,
        )
        self._log_refilled = now
        if self._log_tokens >= 1.0:
            self._log_tokens -= 1.0
            suppressed, self._suppressed = self._suppressed, 0
            policy_logger.warning(
                "plugin %r denied: %s%s",
                self.plugin,
                what,
                f" ({suppressed} more denials of this plugin not logged)" if suppressed else "",
                extra={
                    "plugin": self.plugin,
                    "suppressed": suppressed,
                    "capability": capability,
                    "function": self.function,
                },
            )
        else:
            self._suppressed += 1
        return self.error(case, f"{capability}: {what}")


def quote(text: str) -> str:
    """Quotes guest-chosen text for a message, cut to :data:`MAX_QUOTED` characters:
    ``'abc'``, or ``'abc...' (16777216 bytes)`` for a long one."""
    if len(text) <= MAX_QUOTED:
        return repr(text)
    return f"{text[:MAX_QUOTED]!r}... ({len(text.encode(errors='replace'))} bytes)"


# -- log -------------------------------------------------------------------------------


class LogBreach(Exception):
    """A call logged past ``Limits.log_records`` or ``Limits.log_bytes``.

    Attributes:
        limit: ``"log_records"`` or ``"log_bytes"``.
        used: What the call would have reached with the refused record.
    """

    def __init__(self, limit: str, used: int) -> None:
        super().__init__(limit)
        self.limit = limit
        self.used = used


def _log(ctx: HostContext, level: Any, message: str) -> Ok[None] | Err[Any]:
    if not ctx.grants.log:
        return ctx.deny("log", "logging is not granted")
    data = message.encode()
    ctx.log_records += 1
    ctx.log_bytes += len(data)
    if ctx.log_records > ctx.max_log_records:
        raise LogBreach("log_records", ctx.log_records)
    if ctx.log_bytes > ctx.max_log_bytes:
        raise LogBreach("log_bytes", ctx.log_bytes)
    if len(data) > MAX_LOG_MESSAGE:
        message = data[:MAX_LOG_MESSAGE].decode(errors="ignore") + (
            f" [... cut: {len(data)} bytes in all]"
        )
    ctx.logger.log(_LEVELS[level.value], "%s", message, extra={"plugin": ctx.plugin})
    return Ok(None)


def _log_enabled(ctx: HostContext, level: Any) -> bool:
    return ctx.grants.log and ctx.logger.isEnabledFor(_LEVELS[level.value])


# -- config ----------------------------------------------------------------------------


def _config_get(ctx: HostContext, key: str) -> Ok[str | None] | Err[Any]:
    config = ctx.grants.config
    if config is None:
        return ctx.deny("config", f"configuration is not granted (key {quote(key)})")
    return Ok(config.get(key))


def _config_keys(ctx: HostContext) -> Ok[list[str]] | Err[Any]:
    config = ctx.grants.config
    if config is None:
        return ctx.deny("config", "configuration is not granted")
    return Ok(sorted(config))


# -- kv --------------------------------------------------------------------------------


def _kv_refusal(ctx: HostContext, op: str, key: str) -> Err[Any] | None:
    """The error for a kv operation on ``key`` that must not proceed, or ``None``: denied
    when kv is not granted, invalid for an empty or over-long key."""
    if ctx.grants.kv is None:
        return ctx.deny("kv", f"key-value storage is not granted ({op} {quote(key)})")
    if not key:
        return ctx.error("invalid", "kv: the key is empty")
    if len(key.encode()) > MAX_KV_KEY:
        return ctx.error("invalid", f"kv: the key is longer than {MAX_KV_KEY} bytes")
    return None


def _kv_get(ctx: HostContext, key: str) -> Ok[bytes | None] | Err[Any]:
    refusal = _kv_refusal(ctx, "get", key)
    if refusal is not None:
        return refusal
    return Ok(ctx.kv_store.get(ctx.kv_namespace, key))


def _kv_set(ctx: HostContext, key: str, value: bytes) -> Ok[None] | Err[Any]:
    refusal = _kv_refusal(ctx, "set", key)
    if refusal is not None:
        return refusal
    assert ctx.grants.kv is not None
    try:
        ctx.kv_store.set(ctx.kv_namespace, key, value, quota_bytes=ctx.grants.kv.quota_bytes)
    except KvQuotaExceeded as e:
        policy_logger.warning(
            "plugin %r: kv quota exceeded: %s", ctx.plugin, e, extra={"plugin": ctx.plugin}
        )
        return ctx.error("quota-exceeded", f"kv: {e}")
    return Ok(None)


def _kv_delete(ctx: HostContext, key: str) -> Ok[bool] | Err[Any]:
    refusal = _kv_refusal(ctx, "delete", key)
    if refusal is not None:
        return refusal
    return Ok(ctx.kv_store.delete(ctx.kv_namespace, key))


def _kv_list_keys(ctx: HostContext, prefix: str) -> Ok[list[str]] | Err[Any]:
    if ctx.grants.kv is None:
        return ctx.deny("kv", "key-value storage is not granted (list-keys)")
    return Ok(ctx.kv_store.keys(ctx.kv_namespace, prefix))


def _http_send(ctx: HostContext, req: Any) -> Ok[Any] | Err[Any]:
    from ._http import send

    return send(ctx, req)


HostImpl = Callable[..., Any]

#: interface -> function name -> implementation.
CAPABILITIES: dict[str, dict[str, HostImpl]] = {
    LOG: {"log": _log, "enabled": _log_enabled},
    CONFIG: {"get": _config_get, "keys": _config_keys},
    KV: {
        "get": _kv_get,
        "set": _kv_set,
        "delete": _kv_delete,
        "list-keys": _kv_list_keys,
    },
    HTTP: {"send": _http_send},
}


def is_granted(interface: str, grants: Grants) -> bool:
    """Whether ``grants`` allow any use of a ``wasmplug:host`` interface."""
    if interface == LOG:
        return grants.log
    if interface == CONFIG:
        return grants.config is not None
    if interface == KV:
        return grants.kv is not None
    if interface == HTTP:
        return grants.http is not None
    return False


# -- the host's own interfaces ------------------------------------------------------


def _adapt(fn: Callable[..., Any], func: _wit.Function) -> HostImpl:
    """Adapts a host implementation to the capabilities' convention: for a
    ``result<T, E>`` result, returning ``t`` becomes ``Ok(t)`` and raising
    :class:`~wasmplug.GuestError` becomes ``Err(e.value)``."""
    result = _wit.unalias(func.result) if func.result is not None else None
    if not isinstance(result, _wit.ResultType):
        return fn

    @functools.wraps(fn)
    def call(*args: Any) -> Ok[Any] | Err[Any]:
        try:
            value = fn(*args)
        except GuestError as e:
            return Err(e.value)
        return Ok(value)

    return call


def _member(impl: object, wit_name: str, pyname: str, attribute: str) -> tuple[Any, str]:
    """Looks a member up in a host implementation: in a mapping by WIT name or Python
    name, else as the object's attribute ``pyname``. Returns it (``None`` when absent)
    and how it was looked for, for error messages (``attribute`` formats the Python
    name, e.g. ``"method {}()"``)."""
    if isinstance(impl, Mapping):
        return impl.get(wit_name, impl.get(pyname)), f"key {wit_name!r}"
    return getattr(impl, pyname, None), attribute.format(pyname)


def _function_impl(impl: object, key: str, fname: str, plugin: str) -> Callable[..., Any]:
    """Finds the callable implementing WIT function ``fname`` of ``key`` in ``impl`` (an
    object with snake_case methods, or a mapping by WIT or snake_case name)."""
    fn, how = _member(impl, fname, field_name(fname), "method {}()")
    if not callable(fn):
        found = "missing" if fn is None else f"a {type(fn).__name__}, not callable"
        raise LinkError(
            f"the implementation of {key} has no function {fname} ({how}: {found})",
            [f"{key}#{fname}"],
            plugin=plugin,
        )
    return fn  # type: ignore[no-any-return]


def defined_resources(iface: _wit.Interface) -> list[_wit.TypeDef]:
    """The resources an interface defines itself (not those it ``use``\\s)."""
    return [
        td
        for td in iface.types.values()
        if isinstance(td.kind, _wit.ResourceKind) and td.owner == iface.qualified_name
    ]


def _host_interfaces(world: World) -> dict[str, _wit.Interface]:
    """The interfaces of a world that the host must implement itself: every import
    with functions or resources, except WASI and ``wasmplug:host``."""
    return {
        key: iface
        for key, iface in world.import_interfaces()
        if (iface.functions or defined_resources(iface))
        and key not in CAPABILITIES
        and not key.startswith("wasi:")
    }


def _resource_impls(impl: object, key: str, td: _wit.TypeDef, plugin: str) -> dict[str, HostImpl]:
    """Binds a host resource to the class implementing it: the class under the key
    ``[resource]<name>``, and one callable per constructor, method and static function
    (by their WIT names, ``[constructor]counter`` ...).

    Raises:
        LinkError: the implementation has no such class, or the class lacks a method.
    """
    assert isinstance(td.kind, _wit.ResourceKind)
    cls, how = _member(impl, td.name, class_name(td.name), "attribute {}")
    if not isinstance(cls, type):
        found = "missing" if cls is None else f"a {type(cls).__name__}, not a class"
        raise LinkError(
            f"the implementation of {key} has no class for resource {td.name} ({how}: {found})",
            [f"{key}#{td.name}"],
            plugin=plugin,
        )
    bound: dict[str, HostImpl] = {f"[resource]{td.name}": cls}
    for func in td.kind.methods:
        if func.name.startswith("[constructor]"):
            bound[func.name] = _adapt(cls, func)
            continue
        mname = field_name(func.name.rpartition(".")[2])
        if not callable(getattr(cls, mname, None)):
            raise LinkError(
                f"{cls.__name__}, the implementation of resource {key}#{td.name}, "
                f"has no method {mname}()",
                [f"{key}#{func.name}"],
                plugin=plugin,
            )
        if func.name.startswith("[method]"):
            bound[func.name] = _adapt(_bound_method(mname), func)
        else:
            bound[func.name] = _adapt(getattr(cls, mname), func)
    return bound


def _bound_method(name: str) -> Callable[..., Any]:
    """``f(obj, *args)`` calling ``obj.<name>(*args)``: a resource method."""

    def call(obj: Any, *args: Any) -> Any:
        return getattr(obj, name)(*args)

    call.__name__ = name
    return call


def bind_imports(
    world: World, imports: Mapping[str, object] | None, ctx: HostContext
) -> dict[str, dict[str, HostImpl]]:
    """Checks the host's implementations of a world's imports and binds every host
    function the plugin may import.

    Args:
        world: The plugin's world.
        imports: Per imported interface, keyed by its qualified name
            (``ns:pkg/iface@1.0.0``) or its short name (``iface``): an object with one
            snake_case method per WIT function (e.g. satisfying a generated
            ``Protocol``), or a mapping of WIT (or snake_case) function name to
            callable. A world-level imported function is keyed by its name and
            implemented by a callable. A resource the interface defines is a class,
            an attribute named like the class (``Counter``) or a mapping key with the
            WIT name (``counter``).
        ctx: The plugin's host context (binds the capabilities).

    Returns:
        Interface key -> WIT function name -> implementation, for the capabilities and
        the host's interfaces; world-level functions under the key ``""``. For each
        resource an interface defines: its constructor, methods and static functions
        by their WIT names (``[method]counter.add``), and the host's class under
        ``[resource]<name>``.

    Raises:
        LinkError: an interface or world-level function the world imports has no
            implementation, an implementation lacks a function, a resource class or
            one of its methods, or ``imports`` names something the world does not
            import.
    """
    plugin = ctx.plugin
    bound: dict[str, dict[str, HostImpl]] = {
        key: {name: functools.partial(fn, ctx) for name, fn in funcs.items()}
        for key, funcs in CAPABILITIES.items()
    }
    wanted = _host_interfaces(world)
    root_funcs = {
        key: item for key, item in world.wit.imports.items() if isinstance(item, _wit.Function)
    }
    aliases: dict[str, str] = {}
    for key, iface in wanted.items():
        aliases[key] = key
        if iface.name is not None:
            aliases.setdefault(iface.name, key)
    given: dict[str, object] = {}
    for name, impl in (imports or {}).items():
        found = name if name in root_funcs else aliases.get(name)
        if found is None:
            known = sorted({*wanted, *root_funcs}) or ["nothing"]
            raise LinkError(
                f"imports= names {name!r}, which world {world.name} does not import "
                f"from the host (it imports: {', '.join(known)})",
                [name],
                plugin=plugin,
            )
        if found in given:
            raise LinkError(f"imports= implements {found} twice", [found], plugin=plugin)
        given[found] = impl
    missing = [k for k in (*wanted, *root_funcs) if k not in given]
    if missing:
        raise LinkError(
            f"world {world.name} imports {', '.join(missing)}, which the host must "
            "implement: pass imports={...} to load()",
            missing,
            plugin=plugin,
        )
    for key, iface in wanted.items():
        impl = given[key]
        bound[key] = {
            fname: _adapt(_function_impl(impl, key, fname, plugin), func)
            for fname, func in iface.functions.items()
        }
        for td in defined_resources(iface):
            bound[key].update(_resource_impls(impl, key, td, plugin))
    if root_funcs:
        bound[""] = {}
        for key, func in root_funcs.items():
            fn = given[key]
            if not callable(fn):
                raise LinkError(
                    f"imports[{key!r}] must be callable (world-level function), "
                    f"found {type(fn).__name__}",
                    [key],
                    plugin=plugin,
                )
            bound[""][key] = _adapt(fn, func)
    return bound
