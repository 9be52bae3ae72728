"""wasmplug: run untrusted code as sandboxed WebAssembly plugins from Python.

A host defines the plugin interface in WIT, loads plugins (WebAssembly components)
under a :class:`Policy` of capability :class:`Grants` and resource :class:`Limits`, and
calls them with typed Python values::

    import wasmplug

    world = wasmplug.load_world("wit", "tenant")
    policy = wasmplug.Policy(
        grants=wasmplug.Grants(log=True, config={"min-dep-delay": "120"}),
        limits=wasmplug.Limits(fuel=5_000_000, memory_bytes=16 << 20, deadline_ms=100),
    )
    with wasmplug.load("rules.wasm", world=world, policy=policy, name="acme") as plugin:
        alerts = plugin.call("evaluate", world.types.Flight(...))
        print(plugin.last_call.fuel_consumed)
"""

from typing import TYPE_CHECKING, Any

from ._audit import AuditEvent
from ._bindings import Err, Ok, TypeNamespace
from ._engine import Engine
from ._exceptions import (
    ArgumentError,
    CallError,
    CapabilityError,
    DeadlineExceeded,
    FuelExhausted,
    GuestError,
    HandleLimitExceeded,
    HostCallsExceeded,
    HostFunctionError,
    InstantiationError,
    IntegrityError,
    InvalidWasmError,
    KvQuotaExceeded,
    LimitExceeded,
    LinkError,
    LoadError,
    LogLimitExceeded,
    ManifestError,
    MemoryLimitExceeded,
    OutputLimitExceeded,
    PluginBusy,
    PluginClosedError,
    PolicyError,
    ReentrantCallError,
    StaleHandleError,
    StdioLimitExceeded,
    Trap,
    WasiRefusedError,
    WasmplugError,
    WitError,
    WorldMismatchError,
)
from ._inspect import PluginInfo, inspect
from ._kv import KvNamespace, KvStore, MemoryKvStore
from ._manifest import CapabilityReport, Denial, Manifest, Need, NeedItem
from ._plugin import Plugin, load
from ._policy import (
    Determinism,
    FrozenMap,
    Grants,
    HttpGrant,
    HttpRule,
    KvGrant,
    Limits,
    Policy,
    Preopen,
)
from ._policyfile import load_policies
from ._resources import ResourceHandle
from ._stats import CallStats
from ._version import __version__ as __version__
from ._world import ExportFunc, PreparedCall, World, load_world

__all__ = [
    "ArgumentError",
    "AuditEvent",
    "CallError",
    "CallStats",
    "CapabilityError",
    "CapabilityReport",
    "DeadlineExceeded",
    "Denial",
    "Determinism",
    "Engine",
    "Err",
    "ExportFunc",
    "FrozenMap",
    "FuelExhausted",
    "Grants",
    "GuestError",
    "HandleLimitExceeded",
    "HostCallsExceeded",
    "HostFunctionError",
    "HttpGrant",
    "HttpRule",
    "InstantiationError",
    "IntegrityError",
    "InvalidWasmError",
    "KvGrant",
    "KvNamespace",
    "KvQuotaExceeded",
    "KvStore",
    "LimitExceeded",
    "Limits",
    "LinkError",
    "LoadError",
    "LogLimitExceeded",
    "Manifest",
    "ManifestError",
    "MemoryKvStore",
    "MemoryLimitExceeded",
    "Need",
    "NeedItem",
    "Ok",
    "OutputLimitExceeded",
    "Plugin",
    "PluginBusy",
    "PluginClosedError",
    "PluginInfo",
    "Policy",
    "PolicyError",
    "Preopen",
    "PreparedCall",
    "ReentrantCallError",
    "ResourceHandle",
    "StaleHandleError",
    "StdioLimitExceeded",
    "Trap",
    "TypeNamespace",
    "WasiRefusedError",
    "WasmplugError",
    "WitError",
    "World",
    "WorldMismatchError",
    "generate_bindings",
    "inspect",
    "load",
    "load_policies",
    "load_world",
]


if TYPE_CHECKING:
    from ._bindgen import generate_bindings


def __getattr__(name: str) -> Any:
    """Imports the bindings generator on first use: hosts that only load plugins never
    pay for it at ``import wasmplug``."""
    if name == "generate_bindings":
        from ._bindgen import generate_bindings

        generate_bindings.__module__ = __name__
        globals()[name] = generate_bindings
        return generate_bindings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _publish() -> None:
    """Makes every public class and function report ``wasmplug`` as its module, so
    tracebacks, reprs and docs show ``wasmplug.Plugin``, not a private module; pickle
    finds them there too."""
    for name in __all__:
        obj = globals().get(name)  # None for the lazily imported generate_bindings
        if isinstance(obj, type) or callable(obj):
            obj.__module__ = __name__


_publish()
