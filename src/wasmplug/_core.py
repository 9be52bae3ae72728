"""The core-module fast path: wasmplug's canonical ABI over wasmtime's core API.

A plugin that ``wit-bindgen`` builds as a core module (``wasm32-wasip1``, the world
in its ``component-type`` custom section) exports one core function per WIT
function, named as the canonical ABI names them (``evaluate``, or
``ns:pkg/iface@1.0.0#evaluate``), plus ``memory``, ``cabi_realloc`` and a
``cabi_post_<name>`` per function whose result points into memory. It imports the
world's interfaces the same way, and WASI preview 1 (``wasi_snapshot_preview1``).

:class:`CoreBackend` checks every export's and import's core signature against the
host's world when it loads, serves the imports (the ``wasmplug:host``
capabilities and the host's own functions, from the same implementations as the
component path; WASI preview 1 from wasmtime under the same grants), and calls the
exports through wasmtime's unchecked call path with arguments lowered and results
lifted by :mod:`wasmplug._cabi`. Limits, failures and the audit trail are the
shared ones of :class:`~wasmplug._sandbox.Sandbox`.

Resources work as on the component path, with the instance's handle table kept
here (:class:`~wasmplug._resources.HandleTable`, as the canonical ABI keeps it): the
guest's ``[resource-new]``, ``[resource-rep]`` and ``[resource-drop]`` of the
resources it exports (module ``[export]<interface>``) and the ``[resource-drop]``,
constructors, methods and static functions of the host's resources are served by
:class:`CoreBackend`; its ``[dtor]<resource>`` exports run the guest's destructors.

With ``Policy.determinism``, WASI preview 1's clock and random functions are served
here from the same fixed clocks and seeded generator as the component path's
(:meth:`CoreBackend._deterministic_wasi`).
"""

from __future__ import annotations

import copy
import ctypes
import struct
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any, Literal

import wasmtime

from . import _cabi, _native, _wit
from ._backend import Backend, CheckCache, RawStats, check_uncached
from ._bindings import UnsupportedType
from ._cabi import BadValue, GuestHandle, HostHandle, Layout, Memory, Signature, layout_of
from ._checks import Mismatch
from ._codec import GuestHandleCodec, HostHandleCodec, swap_scope
from ._exceptions import (
    ArgumentError,
    CallError,
    HandleLimitExceeded,
    InvalidGuestValue,
    LinkError,
    OutputLimitExceeded,
    StaleHandleError,
    WorldMismatchError,
)
from ._files import TRAMPOLINE_NEEDS, InstanceFiles, WasiFiles
from ._host import CAPABILITIES, HTTP, HostContext, HostImpl, defined_resources
from ._policy import Determinism, Limits
from ._resources import (
    HandleTable,
    ResourceHandle,
    TableFull,
    check_handles,
    close_quietly,
)
from ._sandbox import (
    GuestFailure,
    Sandbox,
    _WasiWait,
    check_host_call,
    host_call_entry,
    run_host_function,
)
from ._stats import CallStats
from ._world import World, has_handle

__all__ = ["CoreBackend"]

#: WASI preview 1's module name.
WASI_P1 = "wasi_snapshot_preview1"
#: The module name of world-level imported functions.
ROOT_MODULE = "$root"
#: The prefix of the module names of the intrinsics of resources the guest exports.
EXPORT_PREFIX = "[export]"

_call_unchecked = _native.call_unchecked
_set_fuel = _native.set_fuel
_get_fuel = _native.get_fuel
_set_epoch_deadline = _native.set_epoch_deadline
_SLOT = 16  # bytes per wasmtime_val_raw_t
_PACK = {"i32": "I", "i64": "Q", "f32": "f", "f64": "d"}
_MASK = {"i32": 0xFFFF_FFFF, "i64": 0xFFFF_FFFF_FFFF_FFFF}
_U32 = struct.Struct("<I")
#: Four i32 raw slots (cabi_realloc's arguments, poll_oneoff's).
_FOUR_I32 = struct.Struct("<I12xI12xI12xI12x")
# poll_oneoff's subscription (48 bytes): userdata u64, tag u8, then for a clock:
# clock id u32 at 16, timeout u64 at 24, precision at 32, flags u16 at 40.
_SUBSCRIPTION = struct.Struct("<QB7xI4xQQH6x")
_EVENTTYPE_CLOCK = 0
_SUBCLOCK_ABSTIME = 1
_ERRNO_BADF = 8
_ERRNO_NOTSUP = 58
_U64 = struct.Struct("<Q")
#: Two i32 raw slots (clock_res_get's and random_get's arguments).
_TWO_I32 = struct.Struct("<I12xI12x")
#: clock_time_get's arguments: clock id i32, precision i64, result pointer i32.
_CLOCK_TIME_GET = struct.Struct("<I12xQ8xI12x")
# WASI preview 1 clock ids: realtime, monotonic, process and thread CPU time.
_CLOCK_MONOTONIC = 1
_CLOCK_THREAD_CPUTIME = 3


def _bad_wasi_argument(name: str, why: str) -> InvalidGuestValue:
    """What a WASI preview 1 function wasmplug serves raises for an argument that
    wasmtime's own would trap on (``why``: what was wrong)."""
    detail = f"it called {WASI_P1}#{name} with an invalid argument: {why}"
    return InvalidGuestValue(detail, detail=detail)


def _slots_struct(types: Sequence[str]) -> struct.Struct:
    """Packs flat values into consecutive ``wasmtime_val_raw_t`` slots."""
    return struct.Struct(
        "<" + "".join(f"{_PACK[t]}{_SLOT - struct.calcsize(_PACK[t])}x" for t in types)
    )


class _Export:
    """One export's call plan: its signature, core names and flat value packing."""

    __slots__ = (
        "buf",
        "buf_addr",
        "core_name",
        "error",
        "has_post",
        "needs_memory",
        "nslots",
        "pack",
        "post_name",
        "result_is_result",
        "scalar_lower",
        "scalar_result",
        "sig",
        "unpack",
    )

    def __init__(self, core_name: str, sig: Signature, error: Any) -> None:
        self.core_name = core_name
        self.post_name = f"cabi_post_{core_name}"
        self.has_post = False
        self.sig = sig
        self.error = error
        self.nslots = max(len(sig.params_flat), len(sig.results_flat), 1)
        # The raw slots of every call (calls of one plugin are serialized).
        self.buf = (_native.RAW * self.nslots)()
        self.buf_addr = ctypes.addressof(self.buf)
        # Whether a call touches linear memory (else no view is made).
        self.needs_memory = (
            sig.params_in_memory
            or sig.result_in_memory
            or any(p.dynamic for p in sig.params)
            or (sig.result is not None and sig.result.dynamic)
        )
        self.pack = _slots_struct(sig.params_flat)
        self.unpack = _slots_struct(sig.results_flat)
        self.result_is_result = isinstance(sig.result, _cabi._Result)
        self.scalar_lower = _scalar_lowering(sig)
        self.scalar_result = _scalar_result(sig)

    def for_plugin(self) -> _Export:
        """A copy with raw slots of its own (plans are shared by the plugins of one
        module and world; slots are not: plugins run calls concurrently)."""
        plan = copy.copy(self)
        plan.buf = (_native.RAW * self.nslots)()
        plan.buf_addr = ctypes.addressof(plan.buf)
        return plan


def _slot_code(layout: _cabi._Int) -> str:
    """The ``struct`` code of an integer in a raw slot: its flat type's width (i32 or
    i64), signed as the WIT type is."""
    wide = layout.size == 8
    return ("q" if wide else "i") if layout._signed else ("Q" if wide else "I")


def _scalar_code(layout: Layout) -> tuple[str, str] | None:
    """For a parameter passed as one flat scalar: its ``struct`` code in a raw slot
    and the inline check of ``{v}``; ``None`` for other types."""
    if isinstance(layout, _cabi._Int):
        check = f"{{v}}.__class__ is int and {layout.lo} <= {{v}} <= {layout.hi}"
        return _slot_code(layout), check
    if isinstance(layout, _cabi._Float) and layout.size == 8:
        return "d", "{v}.__class__ is float"
    if isinstance(layout, _cabi._Bool):
        return "I", "({v} is True or {v} is False)"
    return None


def _scalar_lowering(sig: Signature) -> Callable[[Any, Sequence[Any]], bool] | None:
    """Generates, for a function whose parameters are all integers, ``f64`` or
    ``bool``, one function that checks them inline and packs them into the raw slots
    with one ``struct`` call; it returns ``False`` (having written nothing) for a value
    the inline checks do not accept, which then takes the generic path and its
    precise error. ``None`` for other signatures."""
    if sig.params_in_memory or not sig.params:
        return None
    codes = [_scalar_code(p) for p in sig.params]
    if any(c is None for c in codes):
        return None
    n = len(codes)
    fmt = "<" + "".join(f"{c[0]}{_SLOT - struct.calcsize(c[0])}x" for c in codes if c)
    names = [f"v{i}" for i in range(n)]
    checks = " and ".join(c[1].format(v=v) for c, v in zip(codes, names, strict=True) if c)
    source = (
        "def lower(buf, args):\n"
        f"    {', '.join(names)}{',' if n == 1 else ''} = args\n"
        f"    if not ({checks}):\n"
        "        return False\n"
        f"    PACK(buf, 0, {', '.join(names)})\n"
        "    return True\n"
    )
    namespace: dict[str, Any] = {}
    exec(
        compile(source, "<wasmplug scalar lowering>", "exec"),
        {"PACK": struct.Struct(fmt).pack_into},
        namespace,
    )
    return namespace["lower"]  # type: ignore[no-any-return]


def _scalar_result(sig: Signature) -> Callable[..., Any] | None:
    """For a result that is one 32- or 64-bit integer or a float, its reader from
    the raw slots (one ``struct`` call); ``None`` for other results."""
    result = sig.result
    code = None
    if isinstance(result, _cabi._Int) and result.size >= 4:
        code = _slot_code(result)
    elif isinstance(result, _cabi._Float):
        code = "f" if result.size == 4 else "d"
    if code is None:
        return None
    unpack = struct.Struct("<" + code).unpack_from

    def read(buf: Any) -> Any:
        return unpack(buf, 0)[0]

    return read


class _CoreInstance:
    """One Store with one instance of the module, and what calls need from it."""

    __slots__ = (
        "_keep",
        "_views",
        "context",
        "files",
        "funcs",
        "lowering",
        "memory",
        "realloc",
        "realloc_call",
        "store",
        "token",
    )

    def __init__(self, store: wasmtime.Store, instance: _native.Instance) -> None:
        self.store = store
        self.context = instance.context
        self._keep = instance  # owns the structs the addresses below point into
        # Functions are looked up on first use (a fresh instance per call uses one).
        self.funcs: dict[str, int] = {}
        self.realloc = instance.export("cabi_realloc", "func")
        self.memory = instance.export("memory", "memory")
        self._views: tuple[int, int, memoryview] | None = None
        self.token = object()
        self.lowering = Memory(self.last_view, None)
        self.realloc_call: Callable[[int, int], int] | None = None
        # What WasiFiles tracks of this instance's descriptors (made on first use).
        self.files: InstanceFiles | None = None

    def release(self) -> None:
        """Breaks the instance's reference cycle (its lowering view refers back to it),
        so that its Store, and the files WASI opened for it, go as soon as it does."""
        self.lowering = _NO_MEMORY
        self._views = None

    def func(self, name: str) -> int:
        """The address of exported function ``name`` (checked at load to exist)."""
        func = self._keep.export(name, "func")
        if func is None:  # pragma: no cover - the module's exports were checked at load
            raise BadValue(f"the instance has no exported function {name!r}")
        self.funcs[name] = func
        return func

    def export(self, name: str) -> int | None:
        """The address of exported function ``name``, or ``None`` without one."""
        func = self._keep.export(name, "func")
        if func is not None:
            self.funcs[name] = func
        return func

    def view(self) -> memoryview:
        """The memory's current view. Cached while the memory's size stays put (one
        foreign call to check): memories never move (the engine turns
        ``memory_may_move`` off)."""
        if self.memory is None:
            return memoryview(b"")
        size = _native.memory_size(self.context, self.memory)
        cached = self._views
        if cached is not None and cached[1] == size:
            return cached[2]
        base, size = _native.memory_span(self.context, self.memory)
        view = _native.memory_view(base, size)
        self._views = (base, size, view)
        return view

    def last_view(self) -> memoryview:
        """The view made last (no foreign call): valid, possibly shorter than the
        memory if the guest grew it since (for lowering, where :meth:`Memory.alloc`
        refreshes it when needed)."""
        cached = self._views
        return cached[2] if cached is not None else self.view()


class CoreBackend(Sandbox, Backend):
    """Runs one plugin's core module on the fast path: checked against the world,
    linked against the host capabilities, the host's functions and WASI preview 1
    under the plugin's grants, instantiated on demand from a pre-linked module.

    The :class:`~wasmplug._backend.Backend` of ``kind`` ``"core-module"``.

    Not thread-safe: :class:`~wasmplug.Plugin` serializes calls.

    Raises:
        WorldMismatchError: an export of the world is missing, or its core signature
            is not the canonical ABI's for its WIT type.
        LinkError: the module imports something the world or the host does not
            provide, or with another core signature.
    """

    def __init__(
        self,
        *,
        engine: wasmtime.Engine,
        module: wasmtime.Module,
        world: World,
        limits: Limits,
        ctx: HostContext,
        host_impls: dict[str, dict[str, HostImpl]],
        wasi: Callable[
            [Callable[[bytes], int | None], Callable[[bytes], int | None]], wasmtime.WasiConfig
        ],
        epoch_tick_ms: float,
        epoch_deadline: Callable[[int], int],
        determinism: Determinism | None = None,
        instance_per_call: bool = False,
        checks: CheckCache = check_uncached,
    ) -> None:
        super().__init__(
            limits=limits,
            ctx=ctx,
            epoch_tick_ms=epoch_tick_ms,
            epoch_deadline=epoch_deadline,
            instance_per_call=instance_per_call,
            determinism=determinism,
        )
        self._engine = engine
        self._module = module
        self._world = world
        self._wasi = wasi
        self._host_impls = host_impls
        # Layouts are the world's (records compile code once per world), kept on it.
        self._layouts: dict[int, Layout] = world._core_layouts
        self._instance: _CoreInstance | None = None
        # Resources: the handle layouts, the host's class per host resource type
        # number, the live instance's handle table, and the exports that pass handles.
        self._handles = _handle_layouts(world)
        self._host_classes: dict[int, type] = {}
        for i, td in enumerate(world.host_resources):
            cls = host_impls.get(td.owner, {}).get(f"[resource]{td.name}")
            if isinstance(cls, type):
                self._host_classes[i + 1] = cls
        self._table = HandleTable(limits.resource_handles)
        self._handle_exports = frozenset(
            name for name, export in world.exports.items() if has_handle(export.wit)
        )
        self._fuel_out = ctypes.c_uint64()
        self._fuel_addr = ctypes.addressof(self._fuel_out)
        self._trap = _native.TrapSlot()
        self._inner_trap = _native.TrapSlot()  # destructors run inside a guest call

        # What checking the module against the world found depends on the two only:
        # done once per compiled module and world (keyed by the module itself,
        # weakly). Each plugin copies the plans and gives them their own slots.
        def check() -> tuple[dict[str, _Export], set[str], dict[tuple[str, str], Any]]:
            plans = self._check_exports()
            names = {e.name for e in module.exports}
            for plan in plans.values():
                plan.has_post = plan.post_name in names
            imports = {(i.module, i.name or ""): i.type for i in module.imports}
            return plans, names, imports

        shared, names, imports = checks(module, world, check)
        self._exports = {name: plan.for_plugin() for name, plan in shared.items()}
        self._has_init = "_initialize" in names
        self._no_args = (_native.RAW * 1)()
        # Every scalar result (at most 8 bytes) fits in Limits.output_bytes.
        self._fixed_fits = limits.output_bytes is None or limits.output_bytes >= 8
        self.imports: tuple[str, ...] = tuple(
            dict.fromkeys(
                m
                for m, _ in imports
                if m not in (WASI_P1, ROOT_MODULE) and not m.startswith(EXPORT_PREFIX)
            )
        )
        self._callbacks: list[Any] = []
        linker = self._link(imports)
        try:
            self._pre = linker.instantiate_pre(module)
        except wasmtime.WasmtimeError as e:
            raise LinkError(f"cannot link: {str(e).strip()}", [], plugin=ctx.plugin) from None

    # -- load-time checks ----------------------------------------------------------------

    def _signature(self, func: _wit.Function) -> Signature:
        types, layouts, handles = self._world.types, self._layouts, self._handles
        params = [layout_of(p.type, types, layouts, handles) for p in func.params]
        result = (
            layout_of(func.result, types, layouts, handles) if func.result is not None else None
        )
        return Signature(params, result)

    def _checked_signature(
        self,
        func: _wit.Function,
        ty: Any,
        what: str,
        problems: list[str],
        *,
        imported: bool = False,
    ) -> Signature | None:
        """The canonical-ABI signature of ``func`` if the core function type ``ty`` is
        the one it gives (as an export, or as an import with ``imported``); else
        ``None``, with the problem appended to ``problems``."""
        try:
            sig = self._signature(func)
        except UnsupportedType as e:
            problems.append(f"{what}: {e}")
            return None
        want = (
            (sig.import_params_flat, sig.import_results_flat)
            if imported
            else (sig.params_flat, sig.results_flat)
        )
        have = _native.func_type_names(ty)
        if have != want:
            problems.append(
                f"{what}: expected the canonical ABI's {_show(want)}, found {_show(have)}"
            )
            return None
        return sig

    def _check_exports(self) -> dict[str, _Export]:
        found = {e.name: e.type for e in self._module.exports}
        problems: list[str] = []
        plans: dict[str, _Export] = {}
        for name, export in self._world.exports.items():
            core = name if export.interface is None else f"{export.interface}#{export.wit.name}"
            ty = found.get(core)
            if ty is None:
                problems.append(f"missing core export {core!r} (for {export.signature})")
                continue
            sig = self._checked_signature(
                export.wit, ty, f"core export {core!r} ({export.signature})", problems
            )
            if sig is None:
                continue
            plans[name] = _Export(core, sig, export.error)
        for key, item in self._world.wit.exports.items():
            if not isinstance(item, _wit.Interface):
                continue
            for td in defined_resources(item):
                # A destructor is called through the unchecked path: its type must be
                # exactly the canonical ABI's.
                dtor = found.get(f"{key}#[dtor]{td.name}")
                want: tuple[tuple[str, ...], tuple[str, ...]] = (("i32",), ())
                if dtor is None:
                    continue
                have = (
                    _native.func_type_names(dtor) if isinstance(dtor, wasmtime.FuncType) else None
                )
                if have != want:
                    problems.append(
                        f"core export {key}#[dtor]{td.name}: expected the canonical ABI's "
                        f"{_show(want)}, found {_show(have) if have else 'another kind'}"
                    )
        memory = found.get("memory")
        if any(p.needs_memory for p in plans.values()) and not isinstance(
            memory, wasmtime.MemoryType
        ):
            problems.append("no exported memory named 'memory' (strings and lists need it)")
        realloc = found.get("cabi_realloc")
        if realloc is not None and _native.func_type_names(realloc) != (("i32",) * 4, ("i32",)):
            problems.append(
                f"cabi_realloc: expected {_show((('i32',) * 4, ('i32',)))}, "
                f"found {_show(_native.func_type_names(realloc))}"
            )
        if problems:
            raise WorldMismatchError(self._world.name, problems, plugin=self._ctx.plugin)
        return plans

    def _link(self, imports: dict[tuple[str, str], Any]) -> wasmtime.Linker:
        """A linker with WASI preview 1 and every non-WASI import the module has,
        each checked against the world.

        Raises:
            LinkError: an import the world does not have, or with another signature.
        """
        plugin = self._ctx.plugin
        linker = wasmtime.Linker(self._engine)
        linker.define_wasi()
        linker.allow_shadowing = True
        problems: list[str] = []
        unknown: list[str] = []
        items = self._world.wit.imports
        self._wasi_files = WasiFiles(
            self.files, self._engine, self._live_files, self._view_now, GuestFailure
        )
        served = self._wasi_files.serves({name for module, name in imports if module == WASI_P1})
        fixed = self._deterministic_wasi()
        # The trampoline WasiFiles makes in a Store is wasmplug's: not the plugin's.
        self._store_extra = TRAMPOLINE_NEEDS if served else (0, 0, 0)
        for (module, name), ty in imports.items():
            if module == WASI_P1:
                if name == "poll_oneoff":
                    self._define(linker, module, name, ty, self._poll_oneoff())
                elif name in fixed:
                    self._define(linker, module, name, ty, fixed[name])
                elif name in served:
                    run = self._wasi_files.function(name)
                    self._define(linker, module, name, ty, self._wasi_entry(name, run))
                continue
            if module.startswith(EXPORT_PREFIX):
                intrinsic = self._guest_intrinsic(module, name, ty, problems)
                if intrinsic is False:
                    unknown.append(f"{module}#{name}")
                elif intrinsic is not None:
                    self._define(linker, module, name, ty, intrinsic)
                continue
            if module == ROOT_MODULE:
                item = items.get(name)
                func = item if isinstance(item, _wit.Function) else None
                impls = self._host_impls.get("", {})
                qualified = name
            else:
                iface = items.get(module)
                func = iface.functions.get(name) if isinstance(iface, _wit.Interface) else None
                impls = self._host_impls.get(module, {})
                qualified = f"{module}#{name}"
                if func is None and isinstance(iface, _wit.Interface) and name.startswith("["):
                    resource = self._host_resource_import(iface, module, name, ty, problems)
                    if resource is False:
                        unknown.append(qualified)
                    elif isinstance(resource, _wit.Function):
                        func = resource
                    else:
                        if resource is not None:
                            self._define(linker, module, name, ty, resource)
                        continue
            if func is None:
                unknown.append(qualified)
                continue
            sig = self._checked_signature(func, ty, qualified, problems, imported=True)
            if sig is None:
                continue
            impl = impls.get(func.name)
            if impl is None:  # pragma: no cover - bind_imports checks every import
                unknown.append(qualified)
                continue
            timed = module not in CAPABILITIES or module == HTTP
            if func.name.startswith("[constructor]"):
                impl = _with_room(impl, self)
            run = self._host_call(qualified, sig, impl, timed, handles=has_handle(func))
            self._define(linker, module, name, ty, run)
        if unknown:
            raise LinkError(
                f"imports {', '.join(unknown)}, which world {self._world.name} does not import",
                unknown,
                plugin=plugin,
            )
        if problems:
            raise LinkError("; ".join(problems), problems, plugin=plugin)
        return linker

    def _define(
        self,
        linker: wasmtime.Linker,
        module: str,
        name: str,
        ty: Any,
        call: Callable[[int, int], None],
    ) -> None:
        callback = _native.define_unchecked(linker, module=module, name=name, ty=ty, run=call)
        self._callbacks.append(callback)

    # -- resources -------------------------------------------------------------------------

    def _guest_intrinsic(
        self, module: str, name: str, ty: Any, problems: list[str]
    ) -> Callable[[int, int], None] | Literal[False] | None:
        """The ``[resource-new]``, ``[resource-rep]`` or ``[resource-drop]`` import of a
        resource the guest exports (module ``[export]<interface>``): ``False`` when the
        world has no such resource, ``None`` (with a problem) for another core type."""
        iface_name = module.removeprefix(EXPORT_PREFIX)
        iface = self._world.wit.exports.get(iface_name)
        kind, _, rname = name.removeprefix("[").partition("]")
        td = None
        if isinstance(iface, _wit.Interface):
            td = next((t for t in defined_resources(iface) if t.name == rname), None)
        if td is None or kind not in ("resource-new", "resource-rep", "resource-drop"):
            return False
        want = (("i32",), ()) if kind == "resource-drop" else (("i32",), ("i32",))
        have = _native.func_type_names(ty)
        qualified = f"{module}#{name}"
        if have != want:
            problems.append(
                f"{qualified}: expected the canonical ABI's {_show(want)}, found {_show(have)}"
            )
            return None
        type_id = _guest_type_id(self._world, td)
        dtor = f"{iface_name}#[dtor]{rname}"
        ctx = self._ctx

        def run(raw: int, nraw: int) -> None:
            buf = _native.raw_view(raw, nraw)
            handle = _U32.unpack_from(buf, 0)[0]
            table = self._table
            if kind == "resource-new":  # handle is the guest's rep
                _U32.pack_into(buf, 0, table.add(type_id, handle))
                return
            try:
                rep = table.get(handle, type_id, rname, remove=kind == "resource-drop")
            except StaleHandleError as e:
                raise self._forged(qualified, e) from None
            if kind == "resource-rep":
                _U32.pack_into(buf, 0, rep)
                return
            message = self._destroy(dtor, rep, self._inner_trap)
            if message is not None:
                raise GuestFailure(message)

        return _recording(ctx, qualified, run)

    def _host_resource_import(
        self, iface: _wit.Interface, module: str, name: str, ty: Any, problems: list[str]
    ) -> Callable[[int, int], None] | _wit.Function | Literal[False] | None:
        """An import of a host resource: its ``[resource-drop]`` (returned as the raw
        function; ``None`` with a problem for another core type), or its constructor,
        method or static function (returned as the WIT function, linked as any host
        function). ``False`` when the interface has no such resource function."""
        for td in defined_resources(iface):
            assert isinstance(td.kind, _wit.ResourceKind)
            for func in td.kind.methods:
                if func.name == name:
                    return func
            if name != f"[resource-drop]{td.name}":
                continue
            qualified = f"{module}#{name}"
            want: tuple[tuple[str, ...], tuple[str, ...]] = (("i32",), ())
            have = _native.func_type_names(ty)
            if have != want:
                problems.append(
                    f"{qualified}: expected the canonical ABI's {_show(want)}, found {_show(have)}"
                )
                return None
            return self._host_drop(qualified, self._world.host_resources.index(td) + 1, td.name)
        return False

    def _host_drop(self, qualified: str, type_id: int, name: str) -> Callable[[int, int], None]:
        """The guest dropped its handle to a host object: it leaves the table, and its
        ``close()`` (if any) is called unless the host only lent it to the call."""

        def run(raw: int, nraw: int) -> None:
            handle = _U32.unpack_from(_native.raw_view(raw, nraw), 0)[0]
            table = self._table
            lent = handle in table.lent
            try:
                obj = table.get(handle, type_id, name, remove=True)
            except StaleHandleError as e:
                raise self._forged(qualified, e) from None
            close = getattr(obj, "close", None)
            if not lent and callable(close):
                close()

        return _recording(self._ctx, qualified, run)

    def _forged(self, qualified: str, e: StaleHandleError) -> InvalidGuestValue:
        """The error for a handle the guest forged or used after dropping it."""
        ctx = self._ctx
        return InvalidGuestValue(
            f"{qualified}: the guest used a handle it does not hold",
            plugin=ctx.plugin,
            function=ctx.function,
            detail=f"it called {qualified} with a handle that breaks the canonical ABI: "
            f"{e.args[0] if e.args else e}",
        )

    def _destroy(self, dtor: str, rep: int, trap: _native.TrapSlot) -> str | None:
        """Runs the guest's destructor export ``dtor`` (``<interface>#[dtor]<r>``) on
        ``rep`` in the live instance; returns wasmtime's message if it failed. A guest
        without that export has no destructor to run."""
        inst = self._instance
        if inst is None:
            return None
        func = inst.funcs.get(dtor) or inst.export(dtor)
        if func is None:
            return None
        buf = (_native.RAW * 1)()
        _U32.pack_into(buf, 0, rep)
        return _native.call(inst.context, func, buf, 1, trap)

    # -- imports ---------------------------------------------------------------------------

    def _memory(self) -> Memory:
        inst = self._instance
        if inst is None:
            raise BadValue("no live instance")
        return Memory(inst.view, inst.realloc_call)

    def _live_files(self) -> tuple[wasmtime.Store, int, int, InstanceFiles] | None:
        """For :class:`WasiFiles`: the live instance's Store, context, memory (the
        address of its ``wasmtime_memory_t``) and descriptor table (made on first
        use)."""
        inst = self._instance
        if inst is None or inst.memory is None:
            return None
        if inst.files is None:
            inst.files = InstanceFiles(len(self.files.roots))
        return inst.store, inst.context, inst.memory, inst.files

    def _view_now(self) -> memoryview:
        inst = self._instance
        return inst.view() if inst is not None else memoryview(b"")

    def _wasi_entry(self, name: str, run: Callable[[int, int], None]) -> Callable[[int, int], None]:
        """Wraps a WASI function served by :class:`WasiFiles`: a failure is recorded
        in the context (not a host call: WASI functions do not count against
        ``Limits.host_calls``)."""
        ctx = self._ctx
        qualified = f"{WASI_P1}#{name}"

        def call(raw: int, n: int) -> None:
            try:
                run(raw, n)
            except BaseException as e:
                if ctx.failure is None:
                    ctx.failure = (qualified, e)
                raise

        return call

    def _realloc_for(self, inst: _CoreInstance) -> Callable[[int, int], int] | None:
        func = inst.realloc
        if func is None:
            return None
        buf = (_native.RAW * 4)()
        address = ctypes.addressof(buf)
        trap = self._trap
        context = inst.context
        pack = _FOUR_I32.pack_into
        unpack = _U32.unpack_from

        def realloc(align: int, size: int) -> int:
            pack(buf, 0, 0, 0, align, size)
            err = _call_unchecked(context, func, address, 4, trap.address)
            if err or trap.ptr.value:
                raise GuestFailure(_native.failure(err, trap))
            return int(unpack(buf, 0)[0])

        return realloc

    def _host_call(
        self, qualified: str, sig: Signature, impl: HostImpl, timed: bool, *, handles: bool
    ) -> Callable[[int, int], None]:
        """Wraps a host function as a raw unchecked one: lift the arguments from the
        raw slots (or from memory), call ``impl``, check and lower its result.
        Failures are recorded in the context, as on the component path. With
        ``handles`` (the signature holds resource handles) the conversions run in a
        handle scope of the calling instance."""
        ctx = self._ctx
        params_in = _slots_struct(sig.import_params_flat)
        ptypes = sig.import_params_flat
        result = sig.result
        results_out = _slots_struct(sig.import_results_flat)
        tuple_layout = sig.params_tuple

        def run(raw: int, nraw: int) -> None:
            check_host_call(ctx, qualified)
            buf = _native.raw_view(raw, nraw)
            flat = list(params_in.unpack_from(buf, 0)) if ptypes else []
            mem = self._memory()
            try:
                if sig.params_in_memory:
                    ptr = flat[0]
                    mem.check(ptr, tuple_layout.size, tuple_layout.align)
                    args = tuple_layout.load(mem, ptr)
                else:
                    it = iter(_unsigned(flat, ptypes))
                    args = [p.lift(mem, it) for p in sig.params]
            except BadValue as e:
                raise InvalidGuestValue(
                    f"{qualified}: the guest passed an invalid argument",
                    plugin=ctx.plugin,
                    function=ctx.function,
                    detail=f"it called {qualified} with an argument that breaks the "
                    f"canonical ABI: {e}",
                ) from None
            value = run_host_function(ctx, qualified, impl, args, timed=timed)
            if result is None:
                return
            mem = self._memory()  # a fresh view: the guest may have grown its memory
            try:
                if sig.result_in_memory:
                    retptr = flat[-1] & 0xFFFF_FFFF
                    mem.check(retptr, result.size, result.align)
                    result.store(mem, retptr, value)
                else:
                    out: list[Any] = []
                    result.lower(mem, value, out)
                    results_out.pack_into(buf, 0, *out)
            except Mismatch as e:
                raise TypeError(e.describe(f"{qualified} result")) from None
            except BadValue as e:
                raise InvalidGuestValue(
                    f"{qualified}: the guest gave an invalid place for the result",
                    plugin=ctx.plugin,
                    function=ctx.function,
                    detail=f"it called {qualified} with a return pointer that breaks the "
                    f"canonical ABI: {e}",
                ) from None

        def run_with_handles(raw: int, nraw: int) -> None:
            previous = swap_scope(_CoreScope(self, None))
            try:
                run(raw, nraw)
            finally:
                swap_scope(previous)

        return host_call_entry(ctx, qualified, run_with_handles if handles else run)

    def _poll_oneoff(self) -> Callable[[int, int], None]:
        """WASI preview 1's ``poll_oneoff``, refusing clock waits as the component
        path refuses ``subscribe-duration``: at once with :class:`DeadlineExceeded`
        when the wait would end past the deadline, else with ``WasiRefusedError``.
        wasmtime's own would block where no epoch can interrupt it. Waits on file
        descriptors only get ``ENOTSUP``; subscriptions outside memory fail the call
        with :class:`~wasmplug.InvalidGuestValue`."""
        ctx = self._ctx
        qualified = f"{WASI_P1}#poll_oneoff"

        def run(raw: int, nraw: int) -> None:
            buf = _native.raw_view(raw, nraw)
            in_ptr, _out, nsubs, _nevents = _FOUR_I32.unpack_from(buf, 0)
            mem = self._memory()
            longest = 0
            for i in range(min(nsubs, 64)):
                try:
                    mem.check(in_ptr + 48 * i, 48, 8)
                except BadValue as e:  # wasmtime's own traps too
                    raise _bad_wasi_argument("poll_oneoff", str(e)) from None
                _, tag, _clock, timeout, _, flags = _SUBSCRIPTION.unpack_from(
                    mem.view, in_ptr + 48 * i
                )
                if tag == _EVENTTYPE_CLOCK:
                    wait = timeout
                    if flags & _SUBCLOCK_ABSTIME:
                        wait = max(0, timeout - _native.monotonic_ns())
                    longest = max(longest, wait)
            if longest == 0 and nsubs:
                _U32.pack_into(buf, 0, _ERRNO_NOTSUP)
                return
            past = perf_counter() + longest / 1e9 > ctx.deadline
            raise _WasiWait(qualified, longest, past)

        return host_call_entry(ctx, qualified, run)

    def _deterministic_wasi(self) -> dict[str, Callable[[int, int], None]]:
        """WASI preview 1's clock and random functions for a plugin run with
        :class:`~wasmplug.Determinism` (none without): what the component path's
        ``wasi:clocks`` and ``wasi:random`` give, in preview 1's terms.

        - ``clock_time_get``: the realtime clock is always ``wall_clock_ns``, the
          monotonic clock always 0; the CPU-time clocks are ``EBADF``.
        - ``clock_res_get``: 1 ns for both clocks.
        - ``random_get``: the next bytes of the plugin's seeded generator.

        What wasmtime's own functions trap on fails the call with
        :class:`~wasmplug.InvalidGuestValue` (a ``Trap``): a clock id past 3, a
        pointer to where the answer does not fit; so does asking for more than
        1 MiB of random bytes at once.
        """
        determinism, seeded = self.determinism, self.seeded
        if determinism is None or seeded is None:
            return {}
        ctx = self._ctx
        wall = determinism.wall_clock_ns

        def write(name: str, ptr: int, data: bytes, align: int) -> None:
            """Writes ``data`` at ``ptr`` in guest memory.

            Raises:
                InvalidGuestValue: it does not fit there.
            """
            mem = self._memory()
            try:
                mem.check(ptr, len(data), align)
            except BadValue as e:
                raise _bad_wasi_argument(name, str(e)) from None
            mem.view[ptr : ptr + len(data)] = data

        def clock(name: str, clock_id: int, answers: tuple[int, int], out: int, buf: Any) -> None:
            if clock_id > _CLOCK_THREAD_CPUTIME:
                raise _bad_wasi_argument(name, f"clock id {clock_id} is none of 0-3")
            if clock_id > _CLOCK_MONOTONIC:
                _U32.pack_into(buf, 0, _ERRNO_BADF)
                return
            write(name, out, _U64.pack(answers[clock_id]), 8)
            _U32.pack_into(buf, 0, 0)

        def clock_time_get(raw: int, nraw: int) -> None:
            buf = _native.raw_view(raw, nraw)
            clock_id, _precision, out = _CLOCK_TIME_GET.unpack_from(buf, 0)
            clock("clock_time_get", clock_id, (wall, 0), out, buf)

        def clock_res_get(raw: int, nraw: int) -> None:
            buf = _native.raw_view(raw, nraw)
            clock_id, out = _TWO_I32.unpack_from(buf, 0)
            clock("clock_res_get", clock_id, (1, 1), out, buf)

        def random_get(raw: int, nraw: int) -> None:
            buf = _native.raw_view(raw, nraw)
            ptr, n = _TWO_I32.unpack_from(buf, 0)
            write("random_get", ptr, seeded.random_bytes(n), 1)
            _U32.pack_into(buf, 0, 0)

        functions = {
            "clock_time_get": clock_time_get,
            "clock_res_get": clock_res_get,
            "random_get": random_get,
        }
        return {
            name: host_call_entry(ctx, f"{WASI_P1}#{name}", run) for name, run in functions.items()
        }

    # -- instances -----------------------------------------------------------------------

    def instantiate(self) -> tuple[_CoreInstance, int]:
        """Creates a fresh Store and instance from the pre-linked module; returns it
        and the fuel its start-up consumed.

        Raises:
            InstantiationError: instantiation or start-up failed.
            LinkError: an import could not be satisfied.
        """
        store = self.new_store(self._engine, self._wasi, self._store_extra)
        context = _native.context_of(store)
        # The new instance's handle table (start-up code may already make handles).
        close_quietly(self._table.drain(), self._ctx.plugin)
        self._table = HandleTable(self._limits.resource_handles)
        instance = _native.instantiate(self._pre, context, self._trap)
        message = instance if isinstance(instance, str) else None
        if isinstance(instance, _native.Instance):
            inst = _CoreInstance(store, instance)
            inst.realloc_call = self._realloc_for(inst)
            inst.lowering = Memory(inst.view, inst.realloc_call)
            init = instance.export("_initialize", "func") if self._has_init else None
            if init is not None:
                self._instance = inst  # host functions called by start-up code need it
                message = _native.call(context, init, self._no_args, 1, self._trap)
                self._instance = None
        if message is not None:
            error = self.instantiation_error(message)
            raise error from error.__cause__
        _get_fuel(context, self._fuel_addr)
        return inst, self.fuel_budget - self._fuel_out.value

    def start(self) -> None:
        """Creates the first instance now, so that link and instantiation errors surface
        at load time rather than at the first call.

        Raises:
            InstantiationError, LinkError: as :meth:`instantiate`.
        """
        if self._instance is None:
            self._instance, _ = self.instantiate()

    # -- calls ---------------------------------------------------------------------------

    kind = "core-module"

    def invoke(
        self, name: str, args: Sequence[Any], owner: object = None
    ) -> tuple[Any, bool, RawStats]:
        """Calls export ``name``: lowers ``args``, calls, lifts the result. Resource
        handles lifted from the result belong to ``owner`` (the plugin) and the
        live instance; handle arguments must.

        Returns:
            As :meth:`_call`.

        Raises:
            ArgumentError: an argument does not match its WIT type, or is a handle of
                another plugin or one moved and passed again (nothing ran in the
                guest but ``cabi_realloc``; the instance is kept).
            StaleHandleError: a handle argument is closed, moved, or of a replaced
                instance (likewise).
            HandleLimitExceeded: the arguments would overfill the instance's handle
                table (``Limits.resource_handles``; likewise).
            CallError, OutputLimitExceeded, InstantiationError: as :meth:`_call`.
        """
        if name not in self._handle_exports:
            return self._call(name, args)
        scope = _CoreScope(self, owner, arguments=True)
        previous = swap_scope(scope)
        try:
            return self._call(name, args, scope)
        except TableFull as e:
            scope.abort()
            limit = self._limits.resource_handles
            error = HandleLimitExceeded(
                f"{name}: the arguments would make the instance hold more than "
                f"{limit} resource handles (Limits.resource_handles)",
                limit="resource_handles",
                allowed=limit,
                used=limit + 1,
                plugin=self._ctx.plugin,
                function=name,
            )
            self.audit(error)
            raise error from e
        except BaseException:
            scope.abort()
            raise
        finally:
            swap_scope(previous)
            scope.close()

    def _call(
        self, name: str, args: Sequence[Any], scope: _CoreScope | None = None
    ) -> tuple[Any, bool, RawStats]:
        """Calls export ``name``: lowers ``args``, calls, lifts the result (within
        ``scope``, the call's handle scope, when the export passes handles).

        Returns:
            ``(value, is_ok, stats)``: the lifted result (``None`` without one; the
            payload of a ``result``), whether it is not a ``result``'s ``err`` case,
            and the stats as the fields of a :class:`CallStats` (made only when
            someone reads them).

        Raises:
            ArgumentError: an argument does not match its WIT type (nothing ran in
                the guest but ``cabi_realloc``; the instance is kept).
            CallError: the guest trapped, breached a limit, or gave an invalid value
                (:class:`InvalidGuestValue`); the instance is discarded.
            OutputLimitExceeded: the result is larger than ``Limits.output_bytes``.
            InstantiationError: a fresh instance was needed and could not be created.
        """
        start = perf_counter()
        plan = self._exports[name]
        sig = plan.sig
        inst = self._instance
        fresh = inst is None
        inst_fuel = 0
        if inst is None:
            inst, inst_fuel = self.instantiate()
            self._instance = inst
        context = inst.context
        _set_fuel(context, self.fuel_budget)
        _set_epoch_deadline(context, self._deadline_of(self.slice_ticks))
        self.begin(name)
        ctx = self._ctx
        buf = plan.buf
        message: str | None = None
        value: Any = None
        is_ok = True
        too_large: int | None = None
        phase = "its cabi_realloc broke the canonical ABI while the host lowered the arguments"
        try:
            if plan.needs_memory:
                mem = inst.lowering
                mem.view = inst.last_view()
            else:
                mem = _NO_MEMORY
            scalar = plan.scalar_lower
            if (scalar is None or not scalar(buf, args)) and plan.pack.size:
                self._lower_args(name, plan, mem, args, buf)
            if scope is not None:
                scope.lowered()
            phase = "it returned a value that breaks the canonical ABI"
            trap = self._trap
            func = inst.funcs.get(plan.core_name) or inst.func(plan.core_name)
            err = _call_unchecked(context, func, plan.buf_addr, plan.nslots, trap.address)
            if err or trap.ptr.value:
                message = _native.failure(err, trap)
            elif plan.scalar_result is not None and self._fixed_fits and not self._output.breached:
                value = plan.scalar_result(buf)
            elif sig.result is not None and not self._output.breached:
                if plan.needs_memory:
                    mem.view = inst.view()
                try:
                    value = self._lift(plan, mem, buf)
                except _OutputTooLarge as e:
                    too_large = e.used
                if plan.has_post:
                    post = inst.funcs.get(plan.post_name) or inst.func(plan.post_name)
                    message = _native.call(context, post, buf, plan.nslots, trap)
        except GuestFailure as e:
            message = e.message
        except BadValue as e:
            raw = self._stats(name, inst, start, inst_fuel, fresh)
            error = self._bad_value(name, f"{phase}: {e}", CallStats(*raw))
            raise error from None
        raw = self._stats(name, inst, start, inst_fuel, fresh)
        if self.per_call:
            self._discard()
        if message is not None or self._output.breached:
            raise self.fail(name, message or "", CallStats(*raw))
        if too_large is not None:
            limit = self._limits.output_bytes or 0
            error = OutputLimitExceeded(
                f"{name} returned more than {limit} bytes (Limits.output_bytes; "
                f"{too_large:,} bytes measured before stopping)",
                limit="output_bytes",
                allowed=limit,
                used=too_large,
                plugin=ctx.plugin,
                function=name,
                stats=CallStats(*raw),
            )
            self.audit(error)
            raise error
        if plan.result_is_result:
            is_ok, value = sig.result.parts(value)  # type: ignore[union-attr]
        return value, is_ok, raw

    def _lower_args(
        self, name: str, plan: _Export, mem: Memory, args: Sequence[Any], buf: Any
    ) -> None:
        """Checks and lowers the arguments into ``buf`` (flat) or into guest memory.

        Raises:
            ArgumentError: an argument does not match its WIT type.
        """
        sig = plan.sig
        params = self._world.exports[name].wit.params
        i = 0
        try:
            if sig.params_in_memory:
                tup = sig.params_tuple
                ptr = mem.alloc(tup.align, tup.size)
                for i, (p, off, v) in enumerate(  # noqa: B007 (i names the bad argument)
                    zip(sig.params, tup.offsets, args, strict=True)
                ):
                    p.store(mem, ptr + off, v)
                _U32.pack_into(buf, 0, ptr)
            else:
                flat: list[Any] = []
                for i, (p, v) in enumerate(zip(sig.params, args, strict=True)):  # noqa: B007
                    p.lower(mem, v, flat)
                plan.pack.pack_into(buf, 0, *flat)
        except Mismatch as e:
            raise ArgumentError(
                e.describe(f"{name}({params[i].name})"), plugin=self._ctx.plugin, function=name
            ) from None

    def _lift(self, plan: _Export, mem: Memory, buf: Any) -> Any:
        """Lifts the result from the raw slots in ``buf`` (or from memory, measured
        against ``Limits.output_bytes`` first).

        Raises:
            BadValue: the guest's result breaks the canonical ABI.
            _OutputTooLarge: it is larger than ``Limits.output_bytes``.
        """
        sig = plan.sig
        result = sig.result
        assert result is not None
        if sig.result_in_memory:
            ptr = _U32.unpack_from(buf, 0)[0]
            mem.check(ptr, result.size, result.align)
            limit = self._limits.output_bytes
            if limit is not None and result.dynamic:
                used = result.measure(mem, ptr, limit)
                if used > limit:
                    raise _OutputTooLarge(used)
            return result.load(mem, ptr)
        limit = self._limits.output_bytes
        if limit is not None and (result.fixed or 0) > limit:
            raise _OutputTooLarge(result.fixed or 0)
        flat = plan.unpack.unpack_from(buf, 0)
        return result.lift(mem, iter(_unsigned(flat, sig.results_flat)))

    def _stats(
        self, name: str, inst: _CoreInstance, start: float, inst_fuel: int, fresh: bool
    ) -> RawStats:
        """The fields of the :class:`CallStats` of a call that started at ``start``
        (``perf_counter``) with the fuel budget set, on ``inst``."""
        ctx = self._ctx
        _get_fuel(inst.context, self._fuel_addr)
        return (
            name,
            inst_fuel + self.fuel_budget - self._fuel_out.value,
            (perf_counter() - start) * 1e6,
            ctx.host_calls,
            ctx.denials,
            fresh,
            ctx.host_time * 1e6,
            _native.memory_size(inst.context, inst.memory) if inst.memory is not None else None,
        )

    def _bad_value(self, name: str, reason: str, stats: CallStats) -> CallError:
        self._discard()
        error = InvalidGuestValue(
            f"{name}: {reason}",
            plugin=self._ctx.plugin,
            function=name,
            stats=stats,
            detail=reason,
        )
        self.audit(error)
        return error

    def close(self) -> None:
        """Drops the instance and the pre-linked module. Idempotent."""
        self._discard()
        self._pre = None  # type: ignore[assignment]

    def _discard(self) -> None:
        """Drops the current instance: every resource handle into it becomes stale and
        every host resource it held is closed."""
        inst = self._instance
        if inst is not None:
            inst.release()
        self._instance = None
        close_quietly(self._table.drain(), self._ctx.plugin)

    @property
    def current_instance(self) -> object | None:
        """The live instance's token (``None`` until the next call creates one);
        handles of guest resources remember the token of their instance."""
        inst = self._instance
        return inst.token if inst is not None else None

    def release(self, native: Any, instance: object, what: str) -> None:
        """Drops a guest resource the host held (:meth:`ResourceHandle.close
        <wasmplug.ResourceHandle.close>`): when ``instance`` is the live instance's
        token, the guest's destructor runs under the call limits; a handle of a
        discarded instance is only forgotten.

        Args:
            native: ``(destructor export, rep)``, as :meth:`_CoreScope.guest_lift`
                made it.
            instance: The token of the instance it belongs to.
            what: The drop's name in errors, e.g. ``[resource-drop]buffer``.

        Raises:
            CallError: the destructor trapped or breached a limit; the instance is
                discarded.
        """
        inst = self._instance
        if inst is None or instance is not inst.token:
            return
        dtor, rep = native
        start = perf_counter()
        _set_fuel(inst.context, self.fuel_budget)
        _set_epoch_deadline(inst.context, self._deadline_of(self.slice_ticks))
        self.begin(what)
        message = self._destroy(dtor, rep, self._trap)
        if message is not None or self._output.breached:
            stats = CallStats(*self._stats(what, inst, start, 0, False))
            raise self.fail(what, message or "", stats)

    @staticmethod
    def free(native: Any) -> None:
        """Forgets a guest resource without dropping it (it was moved into the guest,
        or its instance is gone): the fast path holds nothing native for it."""


class _CoreScope:
    """The :class:`~wasmplug._cabi.CoreHandleScope` of one call of an export (with
    ``arguments``) or of one host function call, on the backend's live instance.

    With ``arguments`` it lowers the arguments of a call: guest resource handles are
    checked (:func:`~wasmplug._resources.check_handles`) as they are lowered, host
    objects go into the instance's table (lent ones, ``borrow<r>``, only until
    :meth:`close`), and :meth:`abort` takes out again whatever went in when the call
    does not happen.
    """

    __slots__ = ("_added", "_moved", "_ran", "_seen", "arguments", "backend", "handles", "owner")

    def __init__(self, backend: CoreBackend, owner: object, *, arguments: bool = False) -> None:
        self.backend = backend
        self.owner = owner
        self.arguments = arguments
        # Handles added to the table while lowering: (handle, lent).
        self._added: list[tuple[int, bool]] = []
        # Guest resource handles lowered: (handle object, moved).
        self.handles: list[tuple[ResourceHandle, bool]] = []
        # ids of the handle objects lowered, and of those moved (own).
        self._seen: set[int] = set()
        self._moved: set[int] = set()
        self._ran = False

    def lowered(self) -> None:
        """The arguments are lowered: the call is about to run (moved handles are
        the guest's from now on, even if it fails)."""
        self._ran = True

    def guest_lower(self, layout: GuestHandle, value: Any) -> int:
        backend = self.backend
        ctx = backend._ctx
        if not self.arguments:
            raise Mismatch("a host value (guest resource handles go only to the plugin)", value)
        moved = not layout.borrow
        check_handles(
            ctx.function, ((value, moved),), self.owner, backend.current_instance, ctx.plugin
        )
        key = id(value)
        if key in self._moved or (moved and key in self._seen):
            raise ArgumentError(
                f"{ctx.function}: a {type(value).__name__} handle is moved (own) and "
                "passed again in the same call",
                plugin=ctx.plugin,
                function=ctx.function,
            )
        self._seen.add(key)
        if moved:
            self._moved.add(key)
        self.handles.append((value, moved))
        rep = value._lower_address()
        if layout.borrow:  # lower_borrow: the callee defines the resource
            return int(rep)
        handle = backend._table.add(layout.type_id, rep)
        self._added.append((handle, False))
        return handle

    def guest_lift(self, layout: GuestHandle, handle: int) -> Any:
        backend = self.backend
        name = layout.cls.__wit_type__.name
        try:
            rep = backend._table.get(handle, layout.type_id, name, remove=True)
        except StaleHandleError as e:
            raise BadValue(e.args[0] if e.args else str(e)) from None
        resource = layout.cls.__wit_type__
        owner = resource.owner
        dtor = f"{_export_key(backend._world, owner)}#[dtor]{name}"
        return layout.cls._adopt(self.owner, backend.current_instance, (dtor, rep), rep)

    def host_lower(self, codec: HostHandleCodec, value: Any) -> int:
        backend = self.backend
        cls = backend._host_classes.get(codec.type_id)
        if cls is None or not isinstance(value, cls):
            expected = cls.__name__ if cls is not None else "host object"
            raise Mismatch(f"a {expected} (host resource {codec.resource.name})", value)
        table = backend._table
        lent = self.arguments and codec.borrow
        if self.arguments:
            for handle, other_lent in self._added:
                other = table.objects.get(handle, (0, None))[1]
                if other is value and not (lent and other_lent):
                    raise Mismatch(
                        f"a {cls.__name__} passed once (an object given to the plugin, "
                        f"own<{codec.resource.name}>, cannot be passed again in the same call)",
                        value,
                    )
        handle = table.add(codec.type_id, value, lent=lent)
        if self.arguments:
            self._added.append((handle, lent))
        return handle

    def host_lift(self, codec: HostHandleCodec, address: int) -> Any:
        """The host object of the guest's handle ``address``.

        Raises:
            BadValue: a handle the guest does not hold (forged, or used after it
                dropped or gave it away): the call fails with ``InvalidGuestValue``.
        """
        try:
            return self.backend._table.get(
                address, codec.type_id, codec.resource.name, remove=not codec.borrow
            )
        except StaleHandleError as e:
            raise BadValue(e.args[0] if e.args else str(e)) from None

    def close(self) -> None:
        """After the call: moved guest handles are closed here (the guest owns their
        resources), host objects lent to the call leave the table (the guest's
        borrows ended with it)."""
        if self._ran:
            for moved_handle, moved in self.handles:
                if moved:
                    moved_handle._native = None
        table = self.backend._table
        for handle, lent in self._added:
            if lent:
                table.forget(handle)
        self._added.clear()

    def abort(self) -> None:
        """The call did not run: whatever lowering added leaves the table again."""
        if self._ran:
            return
        table = self.backend._table
        for handle, _ in self._added:
            table.forget(handle)
        self._added.clear()


def _guest_type_id(world: World, td: _wit.TypeDef) -> int:
    """The type number of a resource the guest exports, in the fast path's handle
    tables (negative: host resources have 1, 2...)."""
    return -1 - list(world._guest_resources).index(id(td))


def _export_key(world: World, owner: str) -> str:
    """The world's export key (the core module's name) of the interface ``owner``."""
    for key, item in world.wit.exports.items():
        if isinstance(item, _wit.Interface) and owner in (key, item.name):
            return key
    return owner


def _handle_layouts(world: World) -> _cabi.HandleLayouts:
    """Makes the fast path's layout of a handle type of ``world``: the world decides
    which side defines the resource (and refuses one on both sides or neither)."""

    def make(t: _wit.HandleType) -> Layout:
        codec = world._handle_codec(t)
        if isinstance(codec, GuestHandleCodec):
            return GuestHandle(t, codec.cls, _guest_type_id(world, t.resource))
        assert isinstance(codec, HostHandleCodec)
        return HostHandle(t, codec.type_id)

    return make


def _recording(
    ctx: HostContext, qualified: str, run: Callable[[int, int], None]
) -> Callable[[int, int], None]:
    """Wraps a raw canonical built-in (a resource's ``new``, ``rep`` or ``drop``):
    unlike a host function it is not counted as a host call, but a failure is recorded
    in ``ctx.failure`` the same way."""

    def call(raw: int, nraw: int) -> None:
        try:
            run(raw, nraw)
        except BaseException as e:
            if ctx.failure is None:
                ctx.failure = (qualified, e)
            raise

    return call


def _with_room(constructor: HostImpl, backend: CoreBackend) -> HostImpl:
    """A host resource's constructor that is not called when the instance's table is
    full (the object would be refused anyway)."""

    def construct(*args: Any) -> Any:
        backend._table.check_room()
        return constructor(*args)

    return construct


class _NoMemory(Memory):
    """Stands in for a memory view in calls that pass only scalars."""

    def __init__(self) -> None:
        self.view = memoryview(b"")
        self._realloc = None


_NO_MEMORY = _NoMemory()


class _OutputTooLarge(BadValue):
    def __init__(self, used: int) -> None:
        super().__init__(f"{used} bytes")
        self.used = used


def _unsigned(values: Sequence[Any], types: Sequence[str]) -> list[Any]:
    """Raw slot values read as their flat types, integers as unsigned (floats as
    they are): what the layouts' ``lift`` expects."""
    return [v & _MASK[t] if t in _MASK else v for v, t in zip(values, types, strict=True)]


def _show(sig: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    params, results = sig
    return f"(func (param {' '.join(params) or '-'}) (result {' '.join(results) or '-'}))"
