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

from ._version import __version__ as __version__

# ``typing.TYPE_CHECKING`` without importing ``typing`` (a few milliseconds): type
# checkers treat any constant of this name as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    # What type checkers and IDEs see: the public names, statically. At run time each
    # is imported on first access instead (``__getattr__`` below).
    from ._audit import AuditEvent
    from ._bindgen import generate_bindings
    from ._bindings import Err, Ok, TypeNamespace
    from ._engine import Engine
    from ._exceptions import (
        ArgumentError,
        CallError,
        CallInterrupted,
        CapabilityError,
        DeadlineExceeded,
        DiskLimitExceeded,
        FileLimitExceeded,
        FuelExhausted,
        GuestError,
        HandleLimitExceeded,
        HostCallsExceeded,
        HostFunctionError,
        InstantiationError,
        IntegrityError,
        InvalidGuestValue,
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
    from ._pool import Pool, load_pool
    from ._resources import ResourceHandle
    from ._stats import CallStats
    from ._world import ExportFunc, PreparedCall, World, load_world

__all__ = [
    "ArgumentError",
    "AuditEvent",
    "CallError",
    "CallInterrupted",
    "CallStats",
    "CapabilityError",
    "CapabilityReport",
    "DeadlineExceeded",
    "Denial",
    "Determinism",
    "DiskLimitExceeded",
    "Engine",
    "Err",
    "ExportFunc",
    "FileLimitExceeded",
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
    "InvalidGuestValue",
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
    "Pool",
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
    "load_pool",
    "load_world",
]

#: Where each public name is defined, by private module. ``import wasmplug`` imports
#: none of them: a name's module is imported the first time the name is looked up
#: (PEP 562), so a host pays only for what it uses (``wasmtime``, ``attrs`` and the
#: WIT front end load with the first plugin or world, the bindings generator and the
#: policy-file reader only when used).
_SOURCES: dict[str, tuple[str, ...]] = {
    "_audit": ("AuditEvent",),
    "_bindgen": ("generate_bindings",),
    "_bindings": ("Err", "Ok", "TypeNamespace"),
    "_engine": ("Engine",),
    "_exceptions": (
        "ArgumentError",
        "CallError",
        "CallInterrupted",
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
        "InvalidGuestValue",
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
    ),
    "_inspect": ("PluginInfo", "inspect"),
    "_kv": ("KvNamespace", "KvStore", "MemoryKvStore"),
    "_manifest": ("CapabilityReport", "Denial", "Manifest", "Need", "NeedItem"),
    "_plugin": ("Plugin", "load"),
    "_pool": ("Pool", "load_pool"),
    "_policy": (
        "Determinism",
        "FrozenMap",
        "Grants",
        "HttpGrant",
        "HttpRule",
        "KvGrant",
        "Limits",
        "Policy",
        "Preopen",
    ),
    "_policyfile": ("load_policies",),
    "_resources": ("ResourceHandle",),
    "_stats": ("CallStats",),
    "_world": ("ExportFunc", "PreparedCall", "World", "load_world"),
}
_SOURCE_OF = {name: module for module, names in _SOURCES.items() for name in names}
#: Private submodules reachable as attributes (``wasmplug._engine``), as when
#: ``import wasmplug`` imported them all.
_SUBMODULES = frozenset(
    ("_codec", "_component", "_cli", "_diskcache", "_host", "_http", "_version", "_wit", "wit")
) | frozenset(_SOURCES)


if not TYPE_CHECKING:
    # Hidden from type checkers: they see the names imported above with their types,
    # and flag any other attribute (a module-level ``__getattr__`` would make every
    # misspelt name an ``object`` to them).

    def __getattr__(name: str) -> object:
        """Looks up a public name the first time it is used: imports its private module,
        then publishes every public name of the modules imported so far (see
        :func:`_publish`). Later lookups find the name in the module's globals and never
        come here.

        Raises:
            AttributeError: ``name`` is neither a public name nor a submodule.
        """
        source = _SOURCE_OF.get(name)
        if source is None and name not in _SUBMODULES:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        import importlib

        module = importlib.import_module(f"{__name__}.{source or name}")
        _publish()
        return module if source is None else getattr(module, name)


def __dir__() -> list[str]:
    """The module's attributes, lazily imported public names included."""
    return sorted(set(globals()) | set(__all__))


def _publish() -> None:
    """Binds the public names of every private module imported so far into this
    namespace and makes each public class and function report ``wasmplug`` as its
    module, so tracebacks, reprs and docs show ``wasmplug.Plugin``, not a private
    module; pickle finds them there too. Importing one module imports those it
    depends on (loading a plugin imports the exceptions it may raise), so a name is
    published before a host can meet it."""
    import sys

    namespace = globals()
    for source, names in _SOURCES.items():
        module = sys.modules.get(f"{__name__}.{source}")
        if module is None or names[0] in namespace:
            continue
        objects = [getattr(module, name, None) for name in names]
        if any(obj is None for obj in objects):
            continue  # still being imported (by another thread): published later
        for name, obj in zip(names, objects, strict=True):
            if isinstance(obj, type) or callable(obj):
                obj.__module__ = __name__
            namespace[name] = obj
