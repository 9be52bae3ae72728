"""The component path's host functions: the raw trampolines wasmtime calls, the
scopes that lend host objects to the guest, the host resources, and the WASI clocks and
randomness wasmplug serves itself (``Policy.determinism``)."""

from __future__ import annotations

import ctypes
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any

from . import _native, _wit
from ._bindings import TypeNamespace
from ._checks import Mismatch
from ._codec import (
    VAL_SIZE,
    Arena,
    Codec,
    HostHandleCodec,
    build_codec,
    handle_scope,
)
from ._exceptions import (
    StaleHandleError,
)
from ._host import HostContext, HostImpl
from ._policy import Determinism
from ._resources import HandleTable
from ._sandbox import (
    Seeded,
    _WasiWait,
    check_host_call,
    host_call_entry,
    run_host_function,
)

__all__ = [
    "MONOTONIC_CLOCK",
    "HostCall",
    "HostResources",
    "Scope",
    "destructor",
    "deterministic_wasi",
    "finalize",
    "host_call",
    "host_destructor",
    "monotonic_clock",
    "register",
    "trampoline",
    "with_room",
]


# -- host functions ----------------------------------------------------------------------

#: A raw host function: ``(context, args address, nargs, results address)``; a raw
#: resource destructor: ``(context, rep)``.
HostCall = Callable[..., None]
_HOST_FUNCS: dict[int, HostCall] = {}
_HOST_FUNCS_LOCK = threading.Lock()
_host_func_ids = itertools.count(1)


def _error_for(e: BaseException, what: str) -> int | None:
    message = f"{what} failed: {type(e).__name__}: {e}".encode(errors="replace")
    return _native.new_error(message)


@_native.HostFuncCallback
def trampoline(data, context, ty, args, nargs, results, nresults):  # type: ignore[no-untyped-def]  # noqa: PLR0917
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
def destructor(data, context, rep):  # type: ignore[no-untyped-def]
    """Entry point for every host resource's destructor (the guest dropped a handle)."""
    try:
        _HOST_FUNCS[data or 0](context, rep)
        return 0
    except BaseException as e:
        return _error_for(e, "host resource destructor")


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def finalize(data, _funcs=_HOST_FUNCS):  # type: ignore[no-untyped-def]
    # The registry is bound as a default: linkers still alive at interpreter exit
    # are freed after module globals are gone.
    _funcs.pop(data or 0, None)


def register(fn: HostCall) -> int:
    with _HOST_FUNCS_LOCK:
        key = next(_host_func_ids)
        _HOST_FUNCS[key] = fn
    return key


class HostResources:
    """A plugin's host resources: the host's class per resource type number and the
    current instance's table. Host functions refer to this, not to the backend (the
    global registry of host functions must not keep a backend and its linker alive)."""

    __slots__ = ("classes", "table")

    def __init__(self, classes: dict[int, type], limit: int) -> None:
        self.classes = classes
        self.table = HandleTable(limit)


class Scope:
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
        resources: HostResources,
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


def host_call(
    qualified: str,
    impl: Callable[..., Any],
    ctx: HostContext,
    params: Sequence[Codec],
    result: Codec | None,
    *,
    timed: bool,
    resources: HostResources,
    handles: bool,
) -> HostCall:
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
        scope = Scope(resources, context)
        try:
            with handle_scope(scope):
                run(context, args, nargs, results)
        finally:
            scope.close()

    return host_call_entry(ctx, qualified, run_with_handles if handles else run)


#: The prefix of the WASI interface whose waits wasmplug serves itself.
MONOTONIC_CLOCK = "wasi:clocks/monotonic-clock@"


def _u64_answer(value: Callable[[], int]) -> HostCall:
    """A raw WASI function of no arguments whose ``u64`` result is ``value()``."""

    def answer(context: Any, args: int, nargs: int, results: int) -> None:
        _native.val_set_u64(results, value())

    return answer


def monotonic_clock(interface: str, ctx: HostContext) -> dict[str, HostCall]:
    """wasmplug's ``wasi:clocks/monotonic-clock``: ``now`` and ``resolution`` as the
    host's monotonic clock gives them (nanoseconds from an arbitrary origin), and the
    two subscriptions refused (they are what ``sleep`` and timed polls are made of,
    and wasmtime's implementation blocks where the deadline cannot interrupt it).
    A refusal records a :class:`_WasiWait` in ``ctx.failure`` and traps the guest."""

    def subscription(name: str, *, absolute: bool) -> HostCall:
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


def deterministic_wasi(determinism: Determinism, seeded: Seeded) -> dict[str, dict[str, HostCall]]:
    """wasmplug's clock and random interfaces for a deterministic plugin: interface
    name (without its version) -> function name -> raw host function. The monotonic
    clock's waits come from :func:`monotonic_clock` and are replaced here only for
    ``now`` and ``resolution``."""
    seconds, nanos = divmod(determinism.wall_clock_ns, 1_000_000_000)

    def fixed(codec: Codec, value: Any) -> HostCall:
        def answer(context: Any, args: int, nargs: int, results: int) -> None:
            _lower_result(codec, value, results)

        return answer

    def random_bytes(context: Any, args: int, nargs: int, results: int) -> None:
        _lower_result(_BYTES_CODEC, seeded.random_bytes(_native.val_u64(args)), results)

    def random_u64() -> int:
        return seeded.random_u64()

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


def with_room(constructor: HostImpl, resources: HostResources) -> HostImpl:
    """A host resource's constructor that is not called when the instance's table is
    full (the object would be refused anyway)."""

    def construct(*args: Any) -> Any:
        resources.table.check_room()
        return constructor(*args)

    return construct


def host_destructor(
    qualified: str, type_id: int, name: str, ctx: HostContext, resources: HostResources
) -> HostCall:
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
