"""The component backend: validate, link, instantiate and call through wasmtime.

:class:`ComponentBackend` runs a component behind the backend interface
(:mod:`wasmplug._backend`): it checks the component's types against the world
(:mod:`wasmplug._compare`), links the host's functions and WASI
(:mod:`wasmplug._component_host`), instantiates, calls, and turns wasmtime's failures
into wasmplug's exceptions (:func:`wasmplug._sandbox.classify_failure`).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any

import wasmtime
import wasmtime.component as wc

from . import _native, _wit
from ._backend import Backend, CheckCache, Outcome, check_uncached
from ._bindings import UnsupportedType
from ._codec import (
    VAL_SIZE,
    Codec,
    _Result,
    handle_scope,
)
from ._compare import compare_func
from ._component_host import (
    MONOTONIC_CLOCK,
    HostCall,
    HostResources,
    Scope,
    destructor,
    deterministic_wasi,
    finalize,
    host_call,
    host_destructor,
    monotonic_clock,
    register,
    trampoline,
    with_room,
)
from ._exceptions import (
    HandleLimitExceeded,
    InstantiationError,
    LinkError,
    OutputLimitExceeded,
    WorldMismatchError,
)
from ._host import CAPABILITIES, HTTP, HostContext, HostImpl, defined_resources
from ._memory import MemoryMeter, metered
from ._policy import Determinism, Limits
from ._resources import HandleTable, ResourceHandle, TableFull, check_handles, close_quietly
from ._sandbox import (
    FILES_BREACHED,
    Sandbox,
)
from ._stats import CallStats
from ._wasiforward import FORWARDER_NEEDS, ServedFiles, served_interfaces
from ._world import ExportFunc, PreparedCall, World, has_handle

__all__ = ["ComponentBackend"]


# -- the backend -------------------------------------------------------------------------


class _Instance:
    """One Store and one component instance in it, plus the resolved export funcs and
    the host resources the instance holds."""

    __slots__ = ("address", "context", "funcs", "memory", "store", "table", "token")

    def __init__(
        self,
        store: wasmtime.Store,
        funcs: _native.ComponentFuncs,
        table: HandleTable,
        memory: MemoryMeter,
    ) -> None:
        self.store = store
        # Its linear memories (none counted when the engine does not allocate them).
        self.memory = memory
        # The context as host functions see it (a ctypes pointer), and its address
        # for the hot path's prototypes.
        self.context = _native.store_context(store)
        self.address = _native.context_of(store)
        self.funcs = funcs
        self.table = table
        # What guest resource handles remember of their instance: a handle that
        # outlives the instance must not keep its Store (and memory) alive.
        self.token = object()


# The hot path calls the C API directly (wasmtime-py's methods add a Python frame and
# an error check each), through _native's prototypes, which take addresses: the same
# ones as the core-module fast path.
_set_fuel = _native.set_fuel
_get_fuel = _native.get_fuel
_set_epoch_deadline = _native.set_epoch_deadline
_component_call = _native.component_call
_wasmtime_message = _native.error_message
_string_at = ctypes.string_at


class ComponentBackend(Sandbox, Backend):
    """Runs one plugin's component: checked against the world, linked against the
    host capabilities and WASI under the plugin's grants, instantiated on demand.

    The :class:`~wasmplug._backend.Backend` of ``kind`` ``"component"``; it takes
    arguments lowered once by :meth:`World.prepare <wasmplug.World.prepare>`
    (:meth:`invoke_prepared`) and supports resource handles.

    Not thread-safe: :class:`~wasmplug.Plugin` serializes calls.

    Raises:
        WorldMismatchError: an export of the world is missing or has another type.
        LinkError: the component imports something the world or the host does not
            provide.
    """

    def __init__(
        self,
        *,
        engine: wasmtime.Engine,
        component: wc.Component,
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
        forwarder: Callable[[], wc.Component] | None = None,
    ) -> None:
        super().__init__(
            limits=limits,
            ctx=ctx,
            epoch_tick_ms=epoch_tick_ms,
            epoch_deadline=epoch_deadline,
            instance_per_call=instance_per_call,
            determinism=determinism,
        )
        # With instance_per_call, the instance a call used (its results' resources
        # belong to it until they are lifted; it is dropped at the next call).
        self._spent = False
        # The fuel used to create an instance for lowering the next call's arguments
        # (lower_arguments), reported by that call; None when there was none.
        self._early: int | None = None
        self._engine = engine
        self._host_impls = host_impls
        self._component = component
        self._world = world
        self._wasi = wasi
        self._instance: _Instance | None = None
        # One result slot per plugin, always holding a valid value (zeroed: a bool).
        self._results = (ctypes.c_uint64 * -(-VAL_SIZE // 8))()
        self._results_addr = ctypes.addressof(self._results)
        self._fuel_out = ctypes.c_uint64()
        self._fuel_addr = ctypes.addressof(self._fuel_out)
        classes: dict[int, type] = {}
        for i, td in enumerate(world.host_resources):
            cls = host_impls.get(td.owner, {}).get(f"[resource]{td.name}")
            if isinstance(cls, type):
                classes[i + 1] = cls
        self._resources = HostResources(classes, limits.resource_handles)

        # Checking a component against a world reads its types through ctypes (about
        # 70% of a load); the outcome depends only on the two, so it is done once per
        # compiled component and world. Keyed by the component object itself (weakly):
        # export indices belong to that compilation, and an entry goes with it (an id
        # or a sha256 could name another engine's compilation).
        def check() -> tuple[dict[str, Any], list[str], tuple[str, ...]]:
            ctype = component.type
            export_index = self._check_exports(ctype, ctx.plugin)
            return (export_index, *self._check_imports(ctype, ctx.plugin))

        checked = checks(component, world, check)
        self._export_index: dict[str, Any] = checked[0]
        host_imports = checked[1]
        self.imports: tuple[str, ...] = checked[2]
        # Open files are counted exactly when wasmplug can serve the plugin's
        # wasi:filesystem (and the streams made from it) through its forwarder; what
        # is left (preopen bytes; open files of a plugin it cannot serve) is
        # measured after every call and at the end of every slice of one.
        files = self.files
        self._files: ServedFiles | None = None
        interfaces = served_interfaces(self.imports) if forwarder is not None else None
        if forwarder is not None and interfaces is not None and files.watched:
            files.counted = files.bytes_counted = True
            self._files = ServedFiles(interfaces, files, ctx, forwarder)
        self.measure_files_per_slice = files.measured
        if files.measured:
            files.baseline()
        self._linker = self._link(host_imports)

    # -- load-time checks ----------------------------------------------------------------

    def _check_exports(self, ctype: wc.ComponentType, plugin: str) -> dict[str, Any]:
        found = ctype.exports(self._engine)
        problems: list[str] = []
        indexes: dict[str, Any] = {}
        for key, item in self._world.wit.exports.items():
            if isinstance(item, _wit.Function):
                ext = found.get(key)
                if ext is None:
                    problems.append(f"missing export {key}: func")
                    continue
                problems += compare_func(item, ext.ty, f"export {key}")
                indexes[key] = self._component.get_export_index(key)
                continue
            ext = found.get(key)
            if ext is None:
                problems.append(f"missing export of interface {key}")
                continue
            ity = ext.ty
            if not isinstance(ity, wc.ComponentInstanceType):
                problems.append(f"export {key}: expected an interface, found {type(ity).__name__}")
                continue
            inner = ity.exports(self._engine)
            parent = self._component.get_export_index(key)
            short = item.name or key
            funcs = list(item.functions.items())
            for td in defined_resources(item):
                funcs += [(m.name, m) for m in td.kind.methods]  # type: ignore[union-attr]
            for fname, func in funcs:
                fext = inner.get(fname)
                if fext is None:
                    problems.append(f"missing export {key}#{fname}: func")
                    continue
                problems += compare_func(func, fext.ty, f"export {key}#{fname}")
                indexes[f"{short}.{fname}"] = self._component.get_export_index(fname, parent)
        if problems:
            raise WorldMismatchError(self._world.name, problems, plugin=plugin)
        return indexes

    def _check_imports(
        self, ctype: wc.ComponentType, plugin: str
    ) -> tuple[list[str], tuple[str, ...]]:
        """Returns the component's imports to link (world imports with functions) and
        all its import names.

        Raises:
            LinkError: it imports something its world does not.
        """
        linked: list[str] = []
        unknown: list[str] = []
        imports = ctype.imports(self._engine)
        names = tuple(imports)
        for name, ext in imports.items():
            if name.startswith("wasi:"):
                continue
            ty = ext.ty
            if isinstance(ty, wc.ComponentInstanceType) and not any(
                isinstance(e.ty, wc.FuncType | wc.ResourceType)
                for e in ty.exports(self._engine).values()
            ):
                continue  # an interface that only defines types: nothing to provide
            if name not in self._world.wit.imports:
                unknown.append(name)
            else:
                linked.append(name)
        if unknown:
            raise LinkError(
                f"imports {', '.join(unknown)}, which world {self._world.name} does not import",
                unknown,
                plugin=plugin,
            )
        return linked, names

    def _link(self, imports: list[str]) -> wc.Linker:
        linker = wc.Linker(self._engine)
        linker.add_wasip2()
        items = self._world.wit.imports
        served = self._served_wasi()
        if served or self._files is not None:
            # Replaces wasmtime's instance of each interface (all its functions).
            linker.allow_shadowing = True
            with linker.root() as root:
                for name, functions in served.items():
                    with root.add_instance(name) as inst:
                        for fname, raw in functions.items():
                            self._add_raw(inst, f"{name}#{fname}", fname, raw)
                if self._files is not None:
                    self._files.link(root, self._ctx.plugin)
            linker.allow_shadowing = False
        with linker.root() as root:
            for name in imports:
                item = items[name]
                if isinstance(item, _wit.Function):
                    self._add_func(root, "", item, self._host_impls[""][name])
                    continue
                impls = self._host_impls[name]
                with root.add_instance(name) as inst:
                    for td in defined_resources(item):
                        self._add_resource(inst, name, td)
                        for func in td.kind.methods:  # type: ignore[union-attr]
                            impl = impls[func.name]
                            if func.name.startswith("[constructor]"):
                                impl = with_room(impl, self._resources)
                            self._add_func(inst, name, func, impl)
                    for fname, func in item.functions.items():
                        self._add_func(inst, name, func, impls[fname])
        return linker

    def _served_wasi(self) -> dict[str, dict[str, HostCall]]:
        """The WASI interfaces (exact versioned names the component imports) that
        wasmplug serves instead of wasmtime, with their raw functions: always the
        monotonic clock (its waits are refused), and with determinism the clocks and
        random interfaces."""
        served: dict[str, dict[str, HostCall]] = {}
        deterministic = (
            deterministic_wasi(self.determinism, self.seeded)
            if self.determinism is not None and self.seeded is not None
            else {}
        )
        for name in self.imports:
            unversioned = name.partition("@")[0]
            functions: dict[str, HostCall] = {}
            if name.startswith(MONOTONIC_CLOCK):
                functions.update(monotonic_clock(name, self._ctx))
            functions.update(deterministic.get(unversioned, {}))
            if functions:
                served[name] = functions
        return served

    def _add_resource(self, inst: wc.LinkerInstance, iface: str, td: _wit.TypeDef) -> None:
        """Defines a host resource: a wasmtime host resource type numbered as in
        :attr:`World.host_resources`, whose destructor releases the object."""
        plugin = self._ctx.plugin
        type_id = self._world.host_resources.index(td) + 1
        qualified = f"{iface}#[resource-drop]{td.name}"
        key = register(host_destructor(qualified, type_id, td.name, self._ctx, self._resources))
        err = _native.linker_add_resource(
            inst, td.name, type_id=type_id, destructor=destructor, data=key, finalizer=finalize
        )
        if err is not None:
            raise LinkError(
                f"cannot define resource {iface}#{td.name}: {err}",
                [qualified],
                plugin=plugin,
            )

    def _add_func(
        self, inst: wc.LinkerInstance, iface: str, func: _wit.Function, impl: HostImpl
    ) -> None:
        plugin = self._ctx.plugin
        qualified = f"{iface}#{func.name}" if iface else func.name
        try:
            params = [self._world._codec(p.type) for p in func.params]
            result = self._world._codec(func.result) if func.result is not None else None
        except UnsupportedType as e:
            raise LinkError(f"{qualified}: {e}", [qualified], plugin=plugin) from e
        # HTTP blocks on the network: timed like the host's own functions, so a
        # request still running at the deadline fails the call (DeadlineExceeded).
        timed = iface not in CAPABILITIES or iface == HTTP
        call = host_call(
            qualified,
            impl,
            self._ctx,
            params,
            result,
            timed=timed,
            resources=self._resources,
            handles=has_handle(func),
        )
        self._add_raw(inst, qualified, func.name, call)

    def _add_raw(self, inst: wc.LinkerInstance, qualified: str, name: str, call: HostCall) -> None:
        """Defines ``name`` in ``inst`` as the raw host function ``call``.

        Raises:
            LinkError: wasmtime refused the definition.
        """
        key = register(call)
        err = _native.linker_add_func(inst, name, callback=trampoline, data=key, finalizer=finalize)
        if err is not None:
            raise LinkError(
                f"cannot define {qualified}: {err}",
                [qualified],
                plugin=self._ctx.plugin,
            )

    # -- instances -----------------------------------------------------------------------

    def instantiate(self) -> tuple[_Instance, int]:
        """Creates a fresh Store and instance; returns it and the fuel it consumed.

        Raises:
            InstantiationError: instantiation failed (memory limit, start-up trap).
            LinkError: an import could not be satisfied.
        """
        self._resources.table = table = HandleTable(self._limits.resource_handles)
        files = self._files
        store = self.new_store(
            self._engine, self._wasi, FORWARDER_NEEDS if files is not None else (0, 0, 0)
        )
        meter = MemoryMeter()
        try:
            if files is not None:
                # Before the guest, outside its fuel and its memory meter: the
                # forwarder is wasmplug's own.
                files.instantiate(store)
                store.set_fuel(self.fuel_budget)
            with metered(meter):
                instance = self._linker.instantiate(store, self._component)
        except wasmtime.WasmtimeError as e:
            error = self.instantiation_error(str(e))
            raise error from error.__cause__
        used = self.fuel_budget - store.get_fuel()
        funcs = _native.ComponentFuncs()
        for name, index in self._export_index.items():
            func = instance.get_func(store, index)
            if func is None:  # pragma: no cover - checked against the type at load
                raise InstantiationError(
                    f"export {name} is not a function", plugin=self._ctx.plugin
                )
            funcs.add(name, func)
        return _Instance(store, funcs, table, meter), used

    def start(self) -> None:
        """Creates the first instance now, so that link and instantiation errors surface
        at load time rather than at the first call.

        Raises:
            InstantiationError, LinkError: as :meth:`instantiate`.
        """
        if self._instance is None:
            self._instance, _ = self.instantiate()

    # -- calls ---------------------------------------------------------------------------

    kind = "component"

    def invoke(self, function: str, args: Sequence[Any], owner: object) -> Outcome:
        """Lowers ``args`` (as :meth:`World.prepare <wasmplug.World.prepare>`), then
        :meth:`invoke_prepared`.

        Raises:
            ArgumentError, StaleHandleError, CallError, OutputLimitExceeded,
            InstantiationError: as :meth:`invoke_prepared`.
        """
        world = self._world
        prepared = world._prepare(world.exports[function], tuple(args), self._ctx.plugin)
        return self.invoke_prepared(prepared, owner)

    def invoke_prepared(self, prepared: PreparedCall, owner: object) -> Outcome:
        """Calls an export with arguments lowered by :meth:`World.prepare
        <wasmplug.World.prepare>` (for this plugin's world): checks the resource
        handles among them, calls, measures the result against
        ``Limits.output_bytes`` and lifts it (guest resource handles in it belong to
        ``owner`` and the live instance).

        Returns:
            ``(value, is_ok, stats)`` as :meth:`Backend.invoke
            <wasmplug._backend.Backend.invoke>`.

        Raises:
            ArgumentError: a handle of another owner, or one handle both moved and
                passed again in the same call (nothing ran).
            StaleHandleError: a closed or moved handle, or one of a replaced instance
                (nothing ran).
            CallError: as :meth:`call`.
            OutputLimitExceeded: the result is larger than ``Limits.output_bytes``
                (nothing was lifted; the instance is kept).
            InstantiationError: a fresh instance was needed and could not be created.
        """
        function = prepared.function
        handles = prepared._handles
        address = prepared._address
        lowered = None
        if prepared._arena is None:  # host objects among the arguments: lowered here
            lowered = self.lower_arguments(prepared.export, prepared._args, owner)
            address, handles = lowered.address, lowered.handles
        if handles or lowered is not None:
            try:
                self._check_handles(function, handles, owner)
            except BaseException:
                if lowered is not None:
                    lowered.abort()  # nothing runs: no host object stays lent
                raise
            try:
                raw, stats = self.call(function, address, prepared._count)
            finally:
                if lowered is not None:
                    lowered.close()
                for handle, moved in handles:
                    if moved and handle._native is not None:  # the guest owns it now
                        _native.resource_any_delete(handle._native)
                        handle._native = None
        else:
            raw, stats = self.call(function, address, prepared._count)
        result = prepared.export._result
        if raw is None or result is None:
            return None, True, stats
        self.check_output(function, result, raw, stats)
        if function in self._world.handle_results:
            scope = self.lift_scope(owner)
            try:
                with handle_scope(scope):
                    if not isinstance(result, _Result):
                        return result.lift(raw, 0), True, stats
                    is_ok, value = result.lift_parts(raw, 0)
            finally:
                scope.close()
        elif not isinstance(result, _Result):
            return result.lift(raw, 0), True, stats
        else:
            is_ok, value = result.lift_parts(raw, 0)
        return value, is_ok, stats

    def _check_handles(
        self,
        function: str,
        handles: tuple[tuple[ResourceHandle, bool], ...],
        owner: object,
    ) -> None:
        """:func:`~wasmplug._resources.check_handles` against the live instance.

        Raises:
            ArgumentError, StaleHandleError: as ``check_handles``.
        """
        check_handles(function, handles, owner, self.current_instance, self._ctx.plugin)

    def call(self, name: str, args_base: int, nargs: int) -> tuple[bytes | None, CallStats]:
        """Calls export ``name`` with already lowered arguments.

        Args:
            name: The export's call name.
            args_base: Address of ``nargs`` consecutive ``wasmtime_component_val_t``.
            nargs: Number of arguments.

        Returns:
            The raw result value (``VAL_SIZE`` bytes, to lift with the export's codec), or
            ``None`` for no result; and the stats. The result's wasmtime-owned memory
            stays in the result slot until the next call overwrites it (wasmtime drops
            the old value when it assigns the new one) or :meth:`close` frees it.

        Raises:
            CallError: the guest trapped or breached a limit; the instance is discarded.
            InstantiationError: a fresh instance was needed and could not be created.
        """
        start = perf_counter()
        if self._spent:
            self._discard()
            self._spent = False
        fresh = self._instance is None
        inst_fuel = 0
        if self._instance is None:
            self._instance, inst_fuel = self.instantiate()
        elif self._early is not None:  # made for lowering this call's arguments
            fresh, inst_fuel, self._early = True, self._early, None
        inst = self._instance
        context = inst.address
        budget = self.fuel_budget
        _set_fuel(context, budget)
        _set_epoch_deadline(context, self.epoch_deadline())
        self.begin(name)
        ctx = self._ctx
        output = self._output
        has_result = self._world.exports[name]._result is not None
        err = _component_call(
            inst.funcs.addresses[name],
            context,
            args_base,
            nargs,
            self._results_addr,
            1 if has_result else 0,
        )
        memory = inst.memory
        # No frame of a raised exception's traceback may keep the instance (its Store
        # and the files WASI holds for it) alive after it is discarded.
        del inst
        _get_fuel(context, self._fuel_addr)
        stats = CallStats(
            function=name,
            fuel_consumed=inst_fuel + budget - self._fuel_out.value,
            wall_time_us=(perf_counter() - start) * 1e6,
            host_calls=ctx.host_calls,
            denials=ctx.denials,
            fresh_instance=fresh,
            host_time_us=ctx.host_time * 1e6,
            memory_bytes=memory.bytes if memory.count else None,
        )
        if err or output.breached:
            raise self.fail(name, _wasmtime_message(err) if err else "", stats)
        if self.measure_files_per_slice and self.measure_files():
            raise self.fail(name, FILES_BREACHED, stats)
        self._spent = self.per_call
        if not has_result:
            return None, stats
        return _string_at(self._results_addr, VAL_SIZE), stats

    def check_output(self, function: str, codec: Codec, raw: bytes, stats: CallStats) -> None:
        """Measures a call's result (:meth:`Codec.measure`) against
        ``Limits.output_bytes`` before it is lifted.

        Raises:
            OutputLimitExceeded: the result is larger; the instance is kept.
        """
        limit = self._limits.output_bytes
        if limit is None or (codec.fixed is not None and codec.fixed <= limit):
            return
        used = codec.measure(raw, 0, limit)
        if used <= limit:
            return
        error = OutputLimitExceeded(
            f"{function} returned more than {limit} bytes (Limits.output_bytes; "
            f"{used:,} bytes measured before stopping)",
            limit="output_bytes",
            allowed=limit,
            used=used,
            plugin=self._ctx.plugin,
            function=function,
            stats=stats,
        )
        self.audit(error)
        raise error

    def close(self) -> None:
        """Frees the last result, drops the instance and the linker (which unregisters
        the host functions). Idempotent."""
        if self._results_addr:
            _native.val_delete(self._results_addr)
        self._discard()
        self._linker = None  # type: ignore[assignment]

    # -- resources -------------------------------------------------------------------------

    def _discard(self) -> None:
        """Drops the current instance: every resource handle into it becomes stale and
        every host resource it held is closed."""
        self._instance = None
        self._early = None
        if self._files is not None:
            self._files.discard()
        close_quietly(self._resources.table.drain(), self._ctx.plugin)

    @property
    def current_instance(self) -> object | None:
        """The live instance's token (``None`` until the next call creates one);
        handles of guest resources remember the token of their instance."""
        inst = self._instance
        return inst.token if inst is not None else None

    def lower_arguments(self, export: ExportFunc, args: tuple[Any, ...], owner: object) -> Scope:
        """Checks and lowers the arguments of a call that can hold host resources, on
        the instance that will run it (created now when there is none).

        Host objects passed as ``own<r>`` go into the instance's table (the guest owns
        them; they are closed when it drops them or the instance goes); those passed
        as ``borrow<r>`` are there until the returned scope is closed.

        Args:
            export: The export.
            args: One Python value per parameter.
            owner: The plugin (guest resource handles belong to it).

        Returns:
            The scope, holding the lowered arguments (``address``, kept alive by
            ``arena``) and the guest resource handles among them (``handles``). Close
            it once the call returned or failed.

        Raises:
            ArgumentError: an argument does not match its WIT type (nothing ran; no
                host object stays in the table).
            StaleHandleError: a guest resource handle argument is closed.
            HandleLimitExceeded: the host objects would not fit in the table
                (``Limits.resource_handles``).
            InstantiationError, LinkError: as :meth:`instantiate`.
        """
        if self._spent:
            self._discard()
            self._spent = False
        if self._instance is None:
            self._instance, self._early = self.instantiate()
        inst = self._instance
        scope = Scope(self._resources, inst.context, inst.token, owner, arguments=True)
        plugin = self._ctx.plugin
        try:
            with handle_scope(scope):
                arena, slots = World._lower(export, args, plugin)
        except TableFull as e:
            scope.abort()
            limit = self._limits.resource_handles
            error = HandleLimitExceeded(
                f"{export.name}: the arguments would make the instance hold more than "
                f"{limit} host resources (Limits.resource_handles)",
                limit="resource_handles",
                allowed=limit,
                used=limit + 1,
                plugin=plugin,
                function=export.name,
            )
            self.audit(error)
            raise error from e
        except BaseException:
            scope.abort()
            raise
        scope.arena = arena
        scope.address = arena.base + slots
        scope.handles = tuple(arena.handles)
        return scope

    def lift_scope(self, owner: object) -> Scope:
        """The handle scope for lifting a call's result on the current instance: guest
        resource handles made by it belong to ``owner`` (the plugin) and the instance."""
        inst = self._instance
        if inst is None:
            return Scope(self._resources, None, None, owner)
        return Scope(self._resources, inst.context, inst.token, owner)

    def release(self, native: Any, instance: object, what: str) -> None:
        """Releases a native guest resource handle the host held.

        When ``instance`` is the live instance's token the resource is dropped first,
        which runs the guest's destructor under the call limits; a handle of a
        discarded instance is only freed.

        Args:
            native: The handle (``wasmtime_component_resource_any_t*``), freed here.
            instance: The token of the instance it belongs to.
            what: The drop's name in errors, e.g. ``[resource-drop]buffer``.

        Raises:
            CallError: the destructor trapped or breached a limit; the instance is
                discarded.
        """
        try:
            inst = self._instance
            if inst is None or instance is not inst.token:
                return
            _set_fuel(inst.address, self.fuel_budget)
            _set_epoch_deadline(inst.address, self.epoch_deadline())
            self.begin(what)
            err = _native.resource_any_drop(inst.context, native)
            if err is not None:
                stats = CallStats(function=what, fuel_consumed=0, wall_time_us=0.0)
                raise self.fail(what, err, stats)
        finally:
            _native.resource_any_delete(native)

    @staticmethod
    def free(native: Any) -> None:
        """Frees a native guest resource handle without dropping the resource (it was
        moved into the guest, or its instance is gone)."""
        _native.resource_any_delete(native)
