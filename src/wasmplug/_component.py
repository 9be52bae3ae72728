"""The component backend: validate, link, instantiate and call through wasmtime.

Everything that touches ``wasmtime.component`` lives here, behind :class:`ComponentBackend`
(validate once, then ``instantiate`` and ``call``), so the core-module fast path and the
Extism backend can sit beside it later. wasmtime errors are translated into wasmplug
exceptions in exactly one place, :func:`classify_failure`.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any

import wasmtime
import wasmtime.component as wc

from . import _native, _wit
from ._backend import Backend, Outcome
from ._bindings import TypeNamespace, describe
from ._checks import Mismatch
from ._codec import (
    VAL_SIZE,
    Arena,
    Codec,
    HostHandleCodec,
    UnsupportedType,
    _Result,
    build_codec,
    handle_scope,
)
from ._exceptions import (
    HandleLimitExceeded,
    InstantiationError,
    LinkError,
    OutputLimitExceeded,
    StaleHandleError,
    WorldMismatchError,
)
from ._host import CAPABILITIES, HTTP, HostContext, HostImpl, defined_resources
from ._policy import Determinism, Limits
from ._resources import HandleTable, ResourceHandle, TableFull, check_handles, close_quietly
from ._sandbox import (
    FILES_BREACHED,
    Sandbox,
    _WasiWait,
    check_host_call,
    host_call_entry,
    run_host_function,
)
from ._stats import CallStats
from ._world import ExportFunc, PreparedCall, World, has_handle

__all__ = ["ComponentBackend", "compare_types"]

_logger = logging.getLogger("wasmplug")

# -- type comparison -------------------------------------------------------------------

_PRIMS: dict[str, type] = {
    "bool": wc.Bool,
    "s8": wc.S8,
    "s16": wc.S16,
    "s32": wc.S32,
    "s64": wc.S64,
    "u8": wc.U8,
    "u16": wc.U16,
    "u32": wc.U32,
    "u64": wc.U64,
    "f32": wc.F32,
    "f64": wc.F64,
    "char": wc.Char,
    "string": wc.String,
}


def _found(v: Any) -> str:
    """WIT-like text for a wasmtime value type."""
    for name, cls in _PRIMS.items():
        if isinstance(v, cls):
            return name
    if isinstance(v, wc.ListType):
        return f"list<{_found(v.element)}>"
    if isinstance(v, wc.OptionType):
        return f"option<{_found(v.payload)}>"
    if isinstance(v, wc.ResultType):
        ok = _found(v.ok) if v.ok is not None else "_"
        return f"result<{ok}, {_found(v.err)}>" if v.err is not None else f"result<{ok}>"
    if isinstance(v, wc.TupleType):
        return "tuple<" + ", ".join(_found(e) for e in v.elements) + ">"
    if isinstance(v, wc.RecordType):
        return "record {" + ", ".join(n for n, _ in v.fields) + "}"
    if isinstance(v, wc.VariantType):
        return "variant {" + ", ".join(n for n, _ in v.cases) + "}"
    if isinstance(v, wc.EnumType):
        return "enum {" + ", ".join(v.names) + "}"
    if isinstance(v, wc.FlagsType):
        return "flags {" + ", ".join(v.names) + "}"
    return type(v).__name__


def compare_types(expected: _wit.WitType, found: Any, path: str) -> list[str]:
    """Compares a WIT type with the type wasmtime reports for a component.

    Returns:
        One line per difference, each naming the path, the expected and the found type;
        empty when they match.
    """
    return _Comparer(expected, found, path).visit(_wit.unalias(expected))


class _Comparer(_wit.TypeVisitor[list[str]]):
    """Compares one WIT type (after aliases) with a wasmtime type (:func:`compare_types`)."""

    __slots__ = ("expected", "found", "path")

    def __init__(self, expected: _wit.WitType, found: Any, path: str) -> None:
        self.expected = expected
        self.found = found
        self.path = path

    def bad(self) -> list[str]:
        return [f"{self.path}: expected {describe(self.expected)}, found {_found(self.found)}"]

    def visit_primitive(self, t: _wit.Primitive) -> list[str]:
        return [] if isinstance(self.found, _PRIMS[t.name]) else self.bad()

    def visit_list(self, t: _wit.ListType) -> list[str]:
        if not isinstance(self.found, wc.ListType):
            return self.bad()
        return compare_types(t.element, self.found.element, f"{self.path}[]")

    def visit_option(self, t: _wit.OptionType) -> list[str]:
        if not isinstance(self.found, wc.OptionType):
            return self.bad()
        return compare_types(t.inner, self.found.payload, f"{self.path}?")

    def visit_result(self, t: _wit.ResultType) -> list[str]:
        found, path = self.found, self.path
        if not isinstance(found, wc.ResultType):
            return self.bad()
        out: list[str] = []
        for case, exp, got in (("ok", t.ok, found.ok), ("err", t.err, found.err)):
            if (exp is None) != (got is None):
                out.append(
                    f"{path}.{case}: expected {describe(exp) if exp else 'no payload'}, "
                    f"found {_found(got) if got is not None else 'no payload'}"
                )
            elif exp is not None:
                out += compare_types(exp, got, f"{path}.{case}")
        return out

    def visit_tuple(self, t: _wit.TupleType) -> list[str]:
        found = self.found
        if not isinstance(found, wc.TupleType) or len(found.elements) != len(t.elements):
            return self.bad()
        out: list[str] = []
        for i, (e, g) in enumerate(zip(t.elements, found.elements, strict=True)):
            out += compare_types(e, g, f"{self.path}[{i}]")
        return out

    def visit_handle(self, t: _wit.HandleType) -> list[str]:
        return [] if isinstance(self.found, wc.OwnType | wc.BorrowType) else self.bad()

    def visit_unsupported(self, t: _wit.Unsupported) -> list[str]:
        return self.bad()

    def visit_record(self, t: _wit.TypeDef, kind: _wit.RecordKind) -> list[str]:
        if not isinstance(self.found, wc.RecordType):
            return self.bad()
        fields = self.found.fields
        if [f.name for f in kind.fields] != [n for n, _ in fields]:
            return self.bad()
        out: list[str] = []
        for f, (_, g) in zip(kind.fields, fields, strict=True):
            out += compare_types(f.type, g, f"{self.path}.{f.name}")
        return out

    def visit_variant(self, t: _wit.TypeDef, kind: _wit.VariantKind) -> list[str]:
        if not isinstance(self.found, wc.VariantType):
            return self.bad()
        cases = self.found.cases
        if [c.name for c in kind.cases] != [n for n, _ in cases]:
            return self.bad()
        out: list[str] = []
        for c, (_, payload) in zip(kind.cases, cases, strict=True):
            if (c.type is None) != (payload is None):
                out += self.bad()
            elif c.type is not None:
                out += compare_types(c.type, payload, f"{self.path}.{c.name}")
        return out

    def visit_enum(self, t: _wit.TypeDef, kind: _wit.EnumKind) -> list[str]:
        found = self.found
        ok = isinstance(found, wc.EnumType) and found.names == [c.name for c in kind.cases]
        return [] if ok else self.bad()

    def visit_flags(self, t: _wit.TypeDef, kind: _wit.FlagsKind) -> list[str]:
        found = self.found
        ok = isinstance(found, wc.FlagsType) and found.names == [f.name for f in kind.flags]
        return [] if ok else self.bad()

    def visit_alias(self, t: _wit.TypeDef, kind: _wit.AliasKind) -> list[str]:
        return self.visit(_wit.unalias(t))  # pragma: no cover - compare_types unaliases

    def visit_resource(self, t: _wit.TypeDef, kind: _wit.ResourceKind) -> list[str]:
        return self.bad()


def compare_func(expected: _wit.Function, found: Any, name: str) -> list[str]:
    """Compares a WIT function with a component's function type (params by name and
    type, then the result)."""
    if not isinstance(found, wc.FuncType):
        return [f"{name}: expected a function, found {type(found).__name__}"]
    out: list[str] = []
    params = found.params
    exp_names = [p.name for p in expected.params]
    got_names = [n for n, _ in params]
    if exp_names != got_names:
        return [
            f"{name}: expected parameters ({', '.join(exp_names)}), found ({', '.join(got_names)})"
        ]
    for p, (_, g) in zip(expected.params, params, strict=True):
        out += compare_types(p.type, g, f"{name}({p.name})")
    result = found.result
    if (expected.result is None) != (result is None):
        out.append(
            f"{name}: expected {'no result' if expected.result is None else 'a result'}, "
            f"found {'none' if result is None else _found(result)}"
        )
    elif expected.result is not None:
        out += compare_types(expected.result, result, f"{name} result")
    return out


# -- host functions ----------------------------------------------------------------------

#: A raw host function: ``(context, args address, nargs, results address)``; a raw
#: resource destructor: ``(context, rep)``.
_HostCall = Callable[..., None]
_HOST_FUNCS: dict[int, _HostCall] = {}
_HOST_FUNCS_LOCK = threading.Lock()
_host_func_ids = itertools.count(1)


def _error_for(e: BaseException, what: str) -> int | None:
    message = f"{what} failed: {type(e).__name__}: {e}".encode(errors="replace")
    return _native.new_error(message)


@_native.HostFuncCallback
def _trampoline(data, context, ty, args, nargs, results, nresults):  # type: ignore[no-untyped-def]  # noqa: PLR0917
    """Entry point for every host function: looks up the Python callable by ``data``.

    A failure was recorded in the plugin's :class:`HostContext` by the callable (the
    backend reports it once control is back from wasm); here it only becomes a
    wasmtime error, which makes the guest trap: nothing may unwind into wasmtime.
    """
    try:
        fn = _HOST_FUNCS[data or 0]
        fn(
            context,
            ctypes.cast(args, ctypes.c_void_p).value or 0,
            nargs,
            ctypes.cast(results, ctypes.c_void_p).value or 0,
        )
        return 0
    except BaseException as e:
        return _error_for(e, "host function")


@_native.ResourceDestructor
def _destructor(data, context, rep):  # type: ignore[no-untyped-def]
    """Entry point for every host resource's destructor (the guest dropped a handle)."""
    try:
        _HOST_FUNCS[data or 0](context, rep)
        return 0
    except BaseException as e:
        return _error_for(e, "host resource destructor")


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _finalize(data, _funcs=_HOST_FUNCS):  # type: ignore[no-untyped-def]
    # The registry is bound as a default: linkers still alive at interpreter exit
    # are freed after module globals are gone.
    _funcs.pop(data or 0, None)


def _register(fn: _HostCall) -> int:
    with _HOST_FUNCS_LOCK:
        key = next(_host_func_ids)
        _HOST_FUNCS[key] = fn
    return key


class _HostResources:
    """A plugin's host resources: the host's class per resource type number and the
    current instance's table. Host functions refer to this, not to the backend (the
    global registry of host functions must not keep a backend and its linker alive)."""

    __slots__ = ("classes", "table")

    def __init__(self, classes: dict[int, type], limit: int) -> None:
        self.classes = classes
        self.table = HandleTable(limit)


class _Scope:
    """The :class:`~wasmplug._codec.HandleScope` of one call or host function call.

    With ``arguments`` it lowers the arguments of a call of an export: host objects
    go into the instance's table, lent ones (``borrow<r>``) only until
    :meth:`close`, and :meth:`abort` takes them all out again when the call does not
    happen.
    """

    __slots__ = (
        "_added",
        "_keep",
        "address",
        "arena",
        "arguments",
        "context",
        "handles",
        "instance",
        "owner",
        "resources",
    )

    def __init__(
        self,
        resources: _HostResources,
        context: Any,
        instance: Any = None,
        owner: Any = None,
        *,
        arguments: bool = False,
    ) -> None:
        self.resources = resources
        self.context = context
        self.instance = instance
        self.owner = owner
        self.arguments = arguments
        self._keep: list[Any] = []
        # With ``arguments``: (table, rep, object, lent) per host object lowered.
        self._added: list[tuple[HandleTable, int, Any, bool]] = []
        # With ``arguments``: the lowered arguments (the arena owns their memory),
        # their address, and the guest resource handles among them.
        self.arena: Arena | None = None
        self.address = 0
        self.handles: tuple[Any, ...] = ()

    def adopt(self, cls: type, address: int) -> Any:
        native, addr = _native.resource_any_clone(address)
        return cls._adopt(self.owner, self.instance, native, addr)  # type: ignore[attr-defined]

    def host_lift(self, codec: HostHandleCodec, address: int) -> Any:
        rep = _native.resource_host_rep(self.context, address)
        name = codec.resource.name
        if isinstance(rep, str):
            raise StaleHandleError(
                f"the guest passed a handle that is not a host {name}: {rep}", resource=name
            )
        return self.resources.table.get(rep, codec.type_id, name, remove=not codec.borrow)

    def host_lower(self, codec: HostHandleCodec, value: Any) -> int:
        cls = self.resources.classes.get(codec.type_id)
        if cls is None or not isinstance(value, cls):
            expected = cls.__name__ if cls is not None else "host object"
            raise Mismatch(f"a {expected} (host resource {codec.resource.name})", value)
        table = self.resources.table
        lent = self.arguments and codec.borrow
        if self.arguments:
            for _, _, other, other_lent in self._added:
                if other is value and not (lent and other_lent):
                    raise Mismatch(
                        f"a {cls.__name__} passed once (an object given to the plugin, "
                        f"own<{codec.resource.name}>, cannot be passed again in the same call)",
                        value,
                    )
        rep = table.add(codec.type_id, value, lent=lent)
        if self.arguments:
            self._added.append((table, rep, value, lent))
        native = _native.resource_to_guest(
            self.context, own=not codec.borrow, rep=rep, type_id=codec.type_id
        )
        if isinstance(native, str):
            table.get(rep, codec.type_id, codec.resource.name, remove=True)
            raise RuntimeError(f"cannot pass host resource: {native}")
        self._keep.append(native)
        return _native.resource_any_address(native)

    def close(self) -> None:
        """Frees the native handles made for lowering (wasmtime has copied them) and
        forgets the host objects lent to the call (the guest's borrows ended with
        it)."""
        for native in self._keep:
            _native.resource_any_delete(native)
        self._keep.clear()
        for table, rep, _, lent in self._added:
            if lent:
                table.forget(rep)
        self._added.clear()
        self.arena = None

    def abort(self) -> None:
        """Forgets every host object lowered (the call did not happen), then
        :meth:`close`."""
        for table, rep, _, _ in self._added:
            table.forget(rep)
        self._added.clear()
        self.close()


def _lower_result(codec: Codec, value: Any, results: int) -> None:
    """Lowers a host function's result into wasmtime-owned memory at ``results``.

    Raises:
        Mismatch: ``value`` does not fit the codec's WIT type.
    """
    arena = Arena()
    slot = arena.alloc(VAL_SIZE)
    codec.lower(arena, slot, value)
    base = arena.finalize()
    _native.val_clone(base + slot, results)


def _host_call(
    qualified: str,
    impl: Callable[..., Any],
    ctx: HostContext,
    params: Sequence[Codec],
    result: Codec | None,
    *,
    timed: bool,
    resources: _HostResources,
    handles: bool,
) -> _HostCall:
    """Wraps a host function as a raw one: lift the arguments, call ``impl``, check and
    lower its result into wasmtime-owned memory.

    Any failure (an exception from ``impl``, a result that does not fit its WIT type,
    the call's deadline passing) is recorded in ``ctx.failure`` before it propagates,
    so that the backend raises the right exception once wasm has unwound. With
    ``handles`` (the signature holds resource handles) the conversions run in a
    handle scope of the calling instance.
    """

    def run(context: Any, args: int, nargs: int, results: int) -> None:
        check_host_call(ctx, qualified)
        raw = ctypes.string_at(args, nargs * VAL_SIZE) if nargs else b""
        values = [codec.lift(raw, i * VAL_SIZE) for i, codec in enumerate(params)]
        value = run_host_function(ctx, qualified, impl, values, timed=timed)
        if result is not None:
            try:
                _lower_result(result, value, results)
            except Mismatch as e:
                raise TypeError(e.describe(f"{qualified} result")) from None

    def run_with_handles(context: Any, args: int, nargs: int, results: int) -> None:
        scope = _Scope(resources, context)
        try:
            with handle_scope(scope):
                run(context, args, nargs, results)
        finally:
            scope.close()

    return host_call_entry(ctx, qualified, run_with_handles if handles else run)


#: The prefix of the WASI interface whose waits wasmplug serves itself.
MONOTONIC_CLOCK = "wasi:clocks/monotonic-clock@"


def _u64_answer(value: Callable[[], int]) -> _HostCall:
    """A raw WASI function of no arguments whose ``u64`` result is ``value()``."""

    def answer(context: Any, args: int, nargs: int, results: int) -> None:
        _native.val_set_u64(results, value())

    return answer


def _monotonic_clock(interface: str, ctx: HostContext) -> dict[str, _HostCall]:
    """wasmplug's ``wasi:clocks/monotonic-clock``: ``now`` and ``resolution`` as the
    host's monotonic clock gives them (nanoseconds from an arbitrary origin), and the
    two subscriptions refused (they are what ``sleep`` and timed polls are made of,
    and wasmtime's implementation blocks where the deadline cannot interrupt it).
    A refusal records a :class:`_WasiWait` in ``ctx.failure`` and traps the guest."""

    def subscription(name: str, *, absolute: bool) -> _HostCall:
        qualified = f"{interface}#{name}"

        def subscribe(context: Any, args: int, nargs: int, results: int) -> None:
            value = _native.val_u64(args)
            wait = max(0, value - time.monotonic_ns()) if absolute else value
            error = _WasiWait(qualified, wait, perf_counter() + wait / 1e9 > ctx.deadline)
            if ctx.failure is None:
                ctx.failure = (qualified, error)
            raise error

        return subscribe

    return {
        "now": _u64_answer(time.monotonic_ns),
        "resolution": _u64_answer(lambda: 1),
        "subscribe-duration": subscription("subscribe-duration", absolute=False),
        "subscribe-instant": subscription("subscribe-instant", absolute=True),
    }


class Seeded:
    """The random generator of a plugin run with :class:`~wasmplug.Determinism`,
    re-seeded for every fresh instance (host functions refer to this, not to the
    backend)."""

    __slots__ = ("rng", "seed")

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)

    def reset(self) -> None:
        self.rng.seed(self.seed)


#: The largest random byte string a deterministic guest may ask for at once.
MAX_RANDOM_BYTES = 1 << 20

_U64 = _wit.Primitive("u64")
_WASI_TYPES = TypeNamespace()
_DATETIME = _wit.TypeDef(
    name="datetime",
    owner="wasi:clocks/wall-clock",
    kind=_wit.RecordKind(
        fields=(_wit.Field("seconds", _U64), _wit.Field("nanoseconds", _wit.Primitive("u32")))
    ),
)
_Datetime = _WASI_TYPES.add(_DATETIME)
_DATETIME_CODEC = build_codec(_DATETIME, _WASI_TYPES)
_BYTES_CODEC = build_codec(_wit.ListType(_wit.Primitive("u8")), _WASI_TYPES)
_SEED_CODEC = build_codec(_wit.TupleType((_U64, _U64)), _WASI_TYPES)


def _deterministic_wasi(
    determinism: Determinism, seeded: Seeded
) -> dict[str, dict[str, _HostCall]]:
    """wasmplug's clock and random interfaces for a deterministic plugin: interface
    name (without its version) -> function name -> raw host function. The monotonic
    clock's waits come from :func:`_monotonic_clock` and are replaced here only for
    ``now`` and ``resolution``."""
    seconds, nanos = divmod(determinism.wall_clock_ns, 1_000_000_000)

    def fixed(codec: Codec, value: Any) -> _HostCall:
        def answer(context: Any, args: int, nargs: int, results: int) -> None:
            _lower_result(codec, value, results)

        return answer

    def random_bytes(context: Any, args: int, nargs: int, results: int) -> None:
        n = _native.val_u64(args)
        if n > MAX_RANDOM_BYTES:
            raise ValueError(
                f"the guest asked for {n} random bytes at once; at most {MAX_RANDOM_BYTES}"
            )
        _lower_result(_BYTES_CODEC, seeded.rng.randbytes(n), results)

    def random_u64() -> int:
        return seeded.rng.getrandbits(64)

    def seed_pair(context: Any, args: int, nargs: int, results: int) -> None:
        _lower_result(_SEED_CODEC, (random_u64(), random_u64()), results)

    return {
        "wasi:clocks/wall-clock": {
            "now": fixed(_DATETIME_CODEC, _Datetime(seconds=seconds, nanoseconds=nanos)),
            "resolution": fixed(_DATETIME_CODEC, _Datetime(seconds=0, nanoseconds=1)),
        },
        "wasi:clocks/monotonic-clock": {
            "now": _u64_answer(lambda: 0),
            "resolution": _u64_answer(lambda: 1),
        },
        "wasi:random/random": {
            "get-random-bytes": random_bytes,
            "get-random-u64": _u64_answer(random_u64),
        },
        "wasi:random/insecure": {
            "get-insecure-random-bytes": random_bytes,
            "get-insecure-random-u64": _u64_answer(random_u64),
        },
        "wasi:random/insecure-seed": {"insecure-seed": seed_pair},
    }


def _with_room(constructor: HostImpl, resources: _HostResources) -> HostImpl:
    """A host resource's constructor that is not called when the instance's table is
    full (the object would be refused anyway)."""

    def construct(*args: Any) -> Any:
        resources.table.check_room()
        return constructor(*args)

    return construct


def _host_destructor(
    qualified: str, type_id: int, name: str, ctx: HostContext, resources: _HostResources
) -> _HostCall:
    """Wraps the destructor of a host resource: the guest dropped its last handle to
    an object; it leaves the table and its ``close()`` (if any) is called."""

    def destroy(context: Any, rep: int) -> None:
        try:
            obj = resources.table.get(rep, type_id, name, remove=True)
            close = getattr(obj, "close", None)
            if callable(close):
                close()
        except BaseException as e:
            if ctx.failure is None:
                ctx.failure = (qualified, e)
            raise

    return destroy


# -- the backend -------------------------------------------------------------------------


class _Instance:
    """One Store and one component instance in it, plus the resolved export funcs and
    the host resources the instance holds."""

    __slots__ = ("address", "context", "funcs", "store", "table", "token")

    def __init__(
        self, store: wasmtime.Store, funcs: _native.ComponentFuncs, table: HandleTable
    ) -> None:
        self.store = store
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
    ) -> None:
        super().__init__(
            limits=limits,
            ctx=ctx,
            epoch_tick_ms=epoch_tick_ms,
            epoch_deadline=epoch_deadline,
            instance_per_call=instance_per_call,
        )
        # wasi:filesystem has no hook here: open files and preopen bytes are
        # measured after every call and at the end of every slice of one.
        self.measure_files_per_slice = self.files.watched
        if self.files.watched:
            self.files.baseline()
        # With instance_per_call, the instance a call used (its results' resources
        # belong to it until they are lifted; it is dropped at the next call).
        self._spent = False
        # The fuel used to create an instance for lowering the next call's arguments
        # (lower_arguments), reported by that call; None when there was none.
        self._early: int | None = None
        self._engine = engine
        self._determinism = determinism
        self._seeded = Seeded(determinism.seed) if determinism is not None else None
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
        self._resources = _HostResources(classes, limits.resource_handles)
        # Checking a component against a world reads its types through ctypes (about
        # 70% of a load); the outcome depends only on the two, so it is done once per
        # compiled component and world. Keyed by the component object itself (weakly):
        # export indices belong to that compilation, and an entry goes with it (an id
        # or a sha256 could name another engine's compilation).
        checked: tuple[dict[str, Any], list[str], tuple[str, ...]] | None
        checked = world._checked.get(component)
        if checked is None:
            ctype = component.type
            export_index = self._check_exports(ctype, ctx.plugin)
            host_imports, imports = self._check_imports(ctype, ctx.plugin)
            checked = world._checked[component] = (export_index, host_imports, imports)
        self._export_index: dict[str, Any] = checked[0]
        host_imports = checked[1]
        self.imports: tuple[str, ...] = checked[2]
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
        if served:
            # Replaces wasmtime's instance of each interface (all its functions).
            linker.allow_shadowing = True
            with linker.root() as root:
                for name, functions in served.items():
                    with root.add_instance(name) as inst:
                        for fname, raw in functions.items():
                            self._add_raw(inst, f"{name}#{fname}", fname, raw)
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
                                impl = _with_room(impl, self._resources)
                            self._add_func(inst, name, func, impl)
                    for fname, func in item.functions.items():
                        self._add_func(inst, name, func, impls[fname])
        return linker

    def _served_wasi(self) -> dict[str, dict[str, _HostCall]]:
        """The WASI interfaces (exact versioned names the component imports) that
        wasmplug serves instead of wasmtime, with their raw functions: always the
        monotonic clock (its waits are refused), and with determinism the clocks and
        random interfaces."""
        served: dict[str, dict[str, _HostCall]] = {}
        deterministic = (
            _deterministic_wasi(self._determinism, self._seeded)
            if self._determinism is not None and self._seeded is not None
            else {}
        )
        for name in self.imports:
            unversioned = name.partition("@")[0]
            functions: dict[str, _HostCall] = {}
            if name.startswith(MONOTONIC_CLOCK):
                functions.update(_monotonic_clock(name, self._ctx))
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
        key = _register(_host_destructor(qualified, type_id, td.name, self._ctx, self._resources))
        err = _native.linker_add_resource(
            inst, td.name, type_id=type_id, destructor=_destructor, data=key, finalizer=_finalize
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
        call = _host_call(
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

    def _add_raw(self, inst: wc.LinkerInstance, qualified: str, name: str, call: _HostCall) -> None:
        """Defines ``name`` in ``inst`` as the raw host function ``call``.

        Raises:
            LinkError: wasmtime refused the definition.
        """
        key = _register(call)
        err = _native.linker_add_func(
            inst, name, callback=_trampoline, data=key, finalizer=_finalize
        )
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
        if self._seeded is not None:
            self._seeded.reset()
        self._resources.table = table = HandleTable(self._limits.resource_handles)
        store = self.new_store(self._engine, self._wasi)
        try:
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
        return _Instance(store, funcs, table), used

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
        close_quietly(self._resources.table.drain(), self._ctx.plugin)

    @property
    def current_instance(self) -> object | None:
        """The live instance's token (``None`` until the next call creates one);
        handles of guest resources remember the token of their instance."""
        inst = self._instance
        return inst.token if inst is not None else None

    def lower_arguments(self, export: ExportFunc, args: tuple[Any, ...], owner: object) -> _Scope:
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
        scope = _Scope(self._resources, inst.context, inst.token, owner, arguments=True)
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

    def lift_scope(self, owner: object) -> _Scope:
        """The handle scope for lifting a call's result on the current instance: guest
        resource handles made by it belong to ``owner`` (the plugin) and the instance."""
        inst = self._instance
        if inst is None:
            return _Scope(self._resources, None, None, owner)
        return _Scope(self._resources, inst.context, inst.token, owner)

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
