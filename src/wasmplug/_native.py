"""wasmtime's C API below wasmtime-py, for both backends.

wasmtime-py wraps every call in Python frames that rebuild types and convert values
(about 12-16 µs for a call, against 1.5 µs through ``wasmtime_func_call_unchecked``,
``docs/performance.md``). Both backends call the C functions they need on their hot
paths directly, through foreign-function objects of this module whose prototypes
take plain integers for pointers: no ctypes pointer objects, no wasmtime-py frames.

This is the only module of wasmplug that uses wasmtime-py's private API: its loaded
library (``wasmtime._ffi.dll``), its ctypes bindings and struct types
(``wasmtime._ffi``), and private attributes of its objects (``Store._context``,
``component.Func._func``, ``Trap._from_ptr``, ``WasmtimeError._from_ptr``).
``tests/test_layout.py`` enforces that, so a wasmtime-py upgrade that moves them
has one module to fix. The core-module fast path (:mod:`wasmplug._core`) uses the
first part of this module, the component path (:mod:`wasmplug._component`, and the
value layout in :mod:`wasmplug._codec`) the part under "the component model".
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from typing import Any

import wasmtime
import wasmtime.component
from wasmtime import _ffi

__all__ = [
    "COMPONENT_KINDS",
    "COMPONENT_VAL_SIZE",
    "COMPONENT_VAL_UNION",
    "NAME_SIZE",
    "RAW",
    "RECORD_ENTRY_SIZE",
    "RECORD_ENTRY_VAL",
    "ComponentFuncs",
    "HostFuncCallback",
    "Instance",
    "LinearMemoryHost",
    "ResourceDestructor",
    "TrapSlot",
    "call",
    "call_unchecked",
    "component_call",
    "context_of",
    "define_unchecked",
    "epoch_callback",
    "error_message",
    "failure",
    "func_address",
    "func_type_names",
    "get_fuel",
    "instantiate",
    "linker_add_func",
    "linker_add_resource",
    "memory_object",
    "memory_size",
    "memory_span",
    "memory_view",
    "monotonic_ns",
    "new_error",
    "raw_view",
    "resource_any_address",
    "resource_any_at",
    "resource_any_clone",
    "resource_any_delete",
    "resource_any_drop",
    "resource_host_rep",
    "resource_to_guest",
    "set_epoch_callback",
    "set_epoch_deadline",
    "set_fuel",
    "set_memory_creator",
    "store_context",
    "val_clone",
    "val_delete",
    "val_set_u64",
    "val_u64",
]

_dll = _ffi.dll
_P = ctypes.c_void_p
_SIZE = ctypes.c_size_t
_U64 = ctypes.c_uint64


def _proto(name: str, restype: Any, *argtypes: Any) -> Any:
    return ctypes.CFUNCTYPE(restype, *argtypes)((name, _dll))


#: One ``wasmtime_val_raw_t`` (16 bytes): the unchecked call path's value slot.
RAW = ctypes.c_ubyte * 16
if ctypes.sizeof(_ffi.wasmtime_val_raw_t) != ctypes.sizeof(RAW):  # pragma: no cover
    raise ImportError(
        f"wasmtime_val_raw_t is {ctypes.sizeof(_ffi.wasmtime_val_raw_t)} bytes in this "
        "wasmtime-py, wasmplug's fast path expects 16"
    )

#: ``wasmtime_func_call_unchecked(context, func, slots, n, trap_out) -> error``, all
#: pointers as addresses (the hot path calls it directly; :func:`failure` reads an
#: error or trap it reports).
call_unchecked = _proto("wasmtime_func_call_unchecked", _P, _P, _P, _P, _SIZE, _P)
#: ``wasmtime_context_set_fuel(context, fuel)`` (cannot fail: fuel is configured).
set_fuel = _proto("wasmtime_context_set_fuel", _P, _P, _U64)
#: ``wasmtime_context_get_fuel(context, out_address)``.
get_fuel = _proto("wasmtime_context_get_fuel", _P, _P, _P)
#: ``wasmtime_context_set_epoch_deadline(context, ticks_from_now)``.
set_epoch_deadline = _proto("wasmtime_context_set_epoch_deadline", None, _P, _U64)
_memory_data = _proto("wasmtime_memory_data", _P, _P, _P)
_memory_data_size = _proto("wasmtime_memory_data_size", _SIZE, _P, _P)
_trap_new = _proto("wasmtime_trap_new", _P, ctypes.c_char_p, _SIZE)
_pre_instantiate = _proto("wasmtime_instance_pre_instantiate", _P, _P, _P, _P, _P)
_export_get = _proto("wasmtime_instance_export_get", ctypes.c_bool, _P, _P, _P, _SIZE, _P)
_EXTERN_OF = _ffi.wasmtime_extern_t.of.offset
_EXTERN_FUNC = _ffi.WASMTIME_EXTERN_FUNC.value
_EXTERN_MEMORY = _ffi.WASMTIME_EXTERN_MEMORY.value
_CALLBACK = ctypes.CFUNCTYPE(_SIZE, _P, _P, _P, _SIZE)
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()
# wasmtime_store_epoch_deadline_callback's callback: (context, env, *delta, *kind) ->
# wasmtime_error_t* (NULL: go on for *delta more epochs).
_EPOCH_CALLBACK = ctypes.CFUNCTYPE(
    _SIZE, _P, _P, ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_uint8)
)
_store_epoch_callback = _proto(
    "wasmtime_store_epoch_deadline_callback", None, _P, _EPOCH_CALLBACK, _P, _P
)
#: ``wasmtime_update_deadline_kind_t``: keep running (not yield: no async here).
_UPDATE_DEADLINE_CONTINUE = 0


def epoch_callback(decide: Callable[[], int | str]) -> Any:
    """Wraps ``decide`` as an epoch-deadline callback for :func:`set_epoch_callback`:
    wasmtime calls it, on the thread running the guest, when a Store's epoch deadline
    is reached. It returns the epochs to run on for (the new deadline, that many
    epochs from now), or a message: the guest is stopped and the call fails with that
    message. An exception in ``decide`` stops the guest too.

    Returns:
        The ctypes callback: keep it referenced for as long as any Store using it.
    """

    def callback(context: int, env: int, delta: Any, kind: Any) -> int:
        try:
            verdict = decide()
        except BaseException as e:  # nothing may unwind into wasmtime
            verdict = f"wasmplug: the epoch-deadline check failed: {e!r}"
        if isinstance(verdict, str):
            return new_error(verdict.encode()) or 0
        delta[0] = verdict
        kind[0] = _UPDATE_DEADLINE_CONTINUE
        return 0

    return _EPOCH_CALLBACK(callback)


def set_epoch_callback(store: wasmtime.Store, callback: Any) -> None:
    """Installs a callback made by :func:`epoch_callback` on a Store."""
    _store_epoch_callback(ctypes.cast(store.ptr(), _P).value, callback, None, None)


def context_of(store: wasmtime.Store) -> int:
    """The address of a Store's ``wasmtime_context_t``."""
    return ctypes.cast(store._context(), _P).value or 0


class TrapSlot:
    """Where a call's ``wasm_trap_t*`` lands (one per backend: calls are serialized)."""

    __slots__ = ("address", "ptr")

    def __init__(self) -> None:
        self.ptr = _P()
        self.address = ctypes.addressof(self.ptr)


class Instance:
    """A core instance made by :func:`instantiate`, with what it exports looked up by
    name (the structs live here, so their addresses stay valid while it does)."""

    __slots__ = ("_externs", "_struct", "context")

    def __init__(self, context: int) -> None:
        self.context = context
        self._struct = _ffi.wasmtime_instance_t()
        self._externs: list[Any] = []

    def export(self, name: str, kind: str) -> int | None:
        """The address of export ``name``'s ``wasmtime_func_t`` (``kind`` ``"func"``)
        or ``wasmtime_memory_t`` (``"memory"``), or ``None`` if there is no such
        export of that kind."""
        item = _ffi.wasmtime_extern_t()
        encoded = name.encode()
        found = _export_get(
            self.context,
            ctypes.addressof(self._struct),
            encoded,
            len(encoded),
            ctypes.addressof(item),
        )
        want = _EXTERN_FUNC if kind == "func" else _EXTERN_MEMORY
        found_kind: int = item.kind  # type: ignore[assignment]  # ctypes reads an int
        if not found or found_kind != want:
            return None
        self._externs.append(item)
        return int(ctypes.addressof(item) + _EXTERN_OF)


def instantiate(pre: wasmtime.InstancePre, context: int, trap: TrapSlot) -> Instance | str:
    """Instantiates a pre-linked module in a Store (by its context); returns the
    instance, or wasmtime's message when instantiation or a start function failed."""
    instance = Instance(context)
    pre_address = ctypes.cast(pre.ptr(), _P).value
    err = _pre_instantiate(pre_address, context, ctypes.addressof(instance._struct), trap.address)
    if err or trap.ptr.value:
        return failure(err, trap)
    return instance


def call(context: int, func: int, buf: Any, n: int, trap: TrapSlot) -> str | None:
    """Calls ``func`` through the unchecked path with ``n`` raw slots at ``buf``
    (arguments in, results out). Returns ``None``, or wasmtime's message for a trap
    or error."""
    err = call_unchecked(context, func, ctypes.addressof(buf), n, trap.address)
    if err or trap.ptr.value:
        return failure(err, trap)
    return None


def failure(err: int | None, trap: TrapSlot) -> str:
    """wasmtime's message for what a call reported: the error at ``err``, else the
    trap in ``trap`` (which is cleared); both are freed."""
    if err:
        error = ctypes.cast(err, ctypes.POINTER(_ffi.wasmtime_error_t))
        return str(wasmtime.WasmtimeError._from_ptr(error))
    ptr = ctypes.cast(trap.ptr.value or 0, ctypes.POINTER(_ffi.wasm_trap_t))
    trap.ptr.value = None
    return str(wasmtime.Trap._from_ptr(ptr))


def memory_object(memory: int) -> wasmtime.Memory:
    """A wasmtime-py ``Memory`` for the ``wasmtime_memory_t`` at address ``memory``
    (from :meth:`Instance.export`), to pass where wasmtime-py takes one."""
    raw = _ffi.wasmtime_memory_t()
    ctypes.memmove(ctypes.addressof(raw), memory, ctypes.sizeof(raw))
    return wasmtime.Memory._from_raw(raw)


def memory_size(context: int, memory: int) -> int:
    """A memory's size in bytes, now."""
    return int(_memory_data_size(context, memory))


def memory_span(context: int, memory: int) -> tuple[int, int]:
    """A memory's base address and size in bytes, now."""
    return _memory_data(context, memory) or 0, _memory_data_size(context, memory)


_ARRAYS: dict[int, Any] = {}


def _array(size: int) -> Any:
    cls = _ARRAYS.get(size)
    if cls is None:
        cls = _ARRAYS[size] = ctypes.c_ubyte * size
        if len(_ARRAYS) > 256:
            _ARRAYS.pop(next(iter(_ARRAYS)))
    return cls


def memory_view(base: int, size: int) -> memoryview:
    """A writable view of ``size`` bytes at ``base`` (no copy)."""
    if not size:
        return memoryview(bytearray())
    return memoryview(_array(size).from_address(base)).cast("B")


def raw_view(address: int, n: int) -> Any:
    """A writable buffer over ``n`` raw slots at ``address``."""
    return _array(16 * max(n, 1)).from_address(address)


def func_address(func: wasmtime.Func) -> int:
    """The address of a core function's ``wasmtime_func_t`` (for :func:`call_unchecked`);
    valid while ``func`` is referenced."""
    return ctypes.addressof(func._func)


def func_type_names(ty: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A core function type as ``(params, results)`` of ``"i32"``-style names; an
    empty pair of ``("?",)`` for something that is not a function."""
    if not isinstance(ty, wasmtime.FuncType):
        return (("?",), ("?",))
    return tuple(str(p) for p in ty.params), tuple(str(r) for r in ty.results)


def define_unchecked(
    linker: wasmtime.Linker,
    *,
    module: str,
    name: str,
    ty: wasmtime.FuncType,
    run: Callable[[int, int], None],
) -> Any:
    """Defines ``module.name`` in ``linker`` as a host function on the unchecked
    path: ``run(address, n)`` gets the raw slots (arguments in, results out). An
    exception from ``run`` becomes a trap (``run`` records it first). Returns the
    callback object, which the caller keeps alive as long as the linker.

    Raises:
        wasmtime.WasmtimeError: wasmtime refused the definition.
    """

    def entry(_env: int, _caller: int, args: int, n: int) -> int:
        try:
            run(args or 0, n)
            return 0
        except BaseException as e:
            message = f"host function failed: {type(e).__name__}: {e}".encode(errors="replace")
            return _trap_new(message, len(message)) or 0

    callback = _CALLBACK(entry)
    m, n = module.encode(), name.encode()
    err = _ffi.wasmtime_linker_define_func_unchecked(
        linker.ptr(),
        ctypes.create_string_buffer(m),
        len(m),
        ctypes.create_string_buffer(n),
        len(n),
        ty.ptr(),
        ctypes.cast(callback, _ffi.wasmtime_func_unchecked_callback_t),
        None,
        _NO_FINALIZER,
    )
    if err:
        raise wasmtime.WasmtimeError._from_ptr(err)
    return callback


def monotonic_ns() -> int:
    """The host's monotonic clock, in ns (what WASI's monotonic clock reads)."""
    return time.monotonic_ns()


# -- the component model -------------------------------------------------------------
#
# The component path lowers and lifts component values itself (:mod:`wasmplug._codec`)
# as trees of ``wasmtime_component_val_t`` and calls exports with
# ``wasmtime_component_func_call``; host functions and host resources are defined on
# a ``wasmtime.component.LinkerInstance`` with raw callbacks. Contexts reach host
# functions as ctypes pointers (``wasmtime_context_t*``, which is what
# :func:`store_context` returns too); the hot path passes addresses.

_ComponentVal = _ffi.wasmtime_component_val_t
_ANY_P = ctypes.POINTER(_ffi.wasmtime_component_resource_any_t)
_HOST_P = ctypes.POINTER(_ffi.wasmtime_component_resource_host_t)
_VAL_P = ctypes.POINTER(_ComponentVal)
_ERROR_P = ctypes.POINTER(_ffi.wasmtime_error_t)

#: Bytes of one ``wasmtime_component_val_t`` (a kind tag, then a union at
#: :data:`COMPONENT_VAL_UNION`).
COMPONENT_VAL_SIZE = ctypes.sizeof(_ComponentVal)
#: Offset of the union in a ``wasmtime_component_val_t``.
COMPONENT_VAL_UNION = _ComponentVal.of.offset
#: Bytes of one record entry (``wasmtime_component_valrecord_entry``: name, value).
RECORD_ENTRY_SIZE = ctypes.sizeof(_ffi.wasmtime_component_valrecord_entry)
#: Offset of the value in a record entry.
RECORD_ENTRY_VAL = _ffi.wasmtime_component_valrecord_entry.val.offset
#: Bytes of one ``wasm_name_t`` (size, then data pointer).
NAME_SIZE = ctypes.sizeof(_ffi.wasm_name_t)
#: The kind tag of each component value kind, by name (``"BOOL"``, ``"U32"``,
#: ``"LIST"``, ``"RESOURCE"``...).
_KIND_NAMES = [
    "BOOL",
    "S8",
    "U8",
    "S16",
    "U16",
    "S32",
    "U32",
    "S64",
    "U64",
    "F32",
    "F64",
    "CHAR",
    "STRING",
    "LIST",
    "RECORD",
    "TUPLE",
    "VARIANT",
    "ENUM",
    "OPTION",
    "RESULT",
    "FLAGS",
    "RESOURCE",
]
COMPONENT_KINDS: dict[str, int] = {
    kind: getattr(_ffi, f"WASMTIME_COMPONENT_{kind}").value for kind in _KIND_NAMES
}

#: ``wasmtime_component_func_call(func, context, args, nargs, results, nresults) ->
#: error``, all pointers as addresses (the component path's hot path calls it
#: directly; :func:`error_message` reads an error it reports).
component_call = _proto("wasmtime_component_func_call", _P, _P, _P, _P, _SIZE, _P, _SIZE)
#: The C type of a raw host function: decorate a Python function
#: ``(data, context, type, args, nargs, results, nresults) -> error address or 0``.
HostFuncCallback = _ffi.wasmtime_component_func_callback_t
#: The C type of a host resource's destructor: ``(data, context, rep) -> error
#: address or 0``.
ResourceDestructor = _ffi.wasmtime_component_resource_destructor_t


def store_context(store: wasmtime.Store) -> Any:
    """A Store's ``wasmtime_context_t*`` as a ctypes pointer (what host functions
    receive as their context); :func:`context_of` gives its address."""
    return store._context()


class ComponentFuncs:
    """The export functions of one component instance, resolved once: by call name,
    the address of each ``wasmtime_component_func_t`` (kept alive here) for
    :func:`component_call`."""

    __slots__ = ("_keep", "addresses")

    def __init__(self) -> None:
        self.addresses: dict[str, int] = {}
        self._keep: list[Any] = []

    def add(self, name: str, func: wasmtime.component.Func) -> None:
        """Records ``func`` (from ``Instance.get_func``) under ``name``."""
        raw = func._func
        self._keep.append(raw)
        self.addresses[name] = ctypes.addressof(raw)


def error_message(err: Any) -> str:
    """wasmtime's message for a ``wasmtime_error_t*`` (an address or a ctypes
    pointer), which is freed."""
    if isinstance(err, int):
        err = ctypes.cast(err, _ERROR_P)
    return str(wasmtime.WasmtimeError._from_ptr(err))


def new_error(message: bytes) -> int | None:
    """A new ``wasmtime_error_t*`` carrying ``message``, as an address (what a raw host
    function returns to make the guest trap)."""
    err = _ffi.wasmtime_error_new(message)
    return ctypes.cast(err, _P).value


def val_clone(source: int, target: int) -> None:
    """Deep-copies the component value at address ``source`` into wasmtime-owned
    memory at address ``target``."""
    _ffi.wasmtime_component_val_clone(ctypes.cast(source, _VAL_P), ctypes.cast(target, _VAL_P))


def val_delete(address: int) -> None:
    """Frees what the component value at ``address`` owns (its strings, lists...) and
    zeroes it (a valid ``bool``)."""
    _ffi.wasmtime_component_val_delete(ctypes.cast(address, _VAL_P))
    ctypes.memset(address, 0, COMPONENT_VAL_SIZE)


def val_u64(address: int) -> int:
    """The ``u64`` payload of the component value at ``address``."""
    value: int = _ComponentVal.from_address(address).of.u64
    return value


def val_set_u64(address: int, value: int) -> None:
    """Writes a ``u64`` component value at ``address``."""
    val = _ComponentVal.from_address(address)
    val.kind = _ffi.WASMTIME_COMPONENT_U64
    val.of.u64 = value


def resource_any_clone(address: int) -> tuple[Any, int]:
    """A new ``wasmtime_component_resource_any_t*`` copying the handle at ``address``
    (the host's own, to free with :func:`resource_any_delete`), and its address."""
    native = _ffi.wasmtime_component_resource_any_clone(ctypes.cast(address, _ANY_P))
    return native, resource_any_address(native)


def resource_any_address(native: Any) -> int:
    """The address of a ``wasmtime_component_resource_any_t*``."""
    return ctypes.cast(native, _P).value or 0


def resource_any_at(address: int) -> Any:
    """The ``wasmtime_component_resource_any_t*`` at ``address`` (as held in a component
    value), for :func:`resource_any_drop` and :func:`resource_any_delete`."""
    return ctypes.cast(address, _ANY_P)


def resource_any_delete(native: Any) -> None:
    """Frees a ``wasmtime_component_resource_any_t*`` the host holds (the resource
    itself is not dropped)."""
    _ffi.wasmtime_component_resource_any_delete(native)


def resource_any_drop(context: Any, native: Any) -> str | None:
    """Drops the resource behind a handle (a guest resource's destructor runs in
    wasm); returns ``None`` or wasmtime's message for a failure. ``native`` is not
    freed."""
    err = _ffi.wasmtime_component_resource_any_drop(context, native)
    return error_message(err) if err else None


def resource_host_rep(context: Any, address: int) -> int | str:
    """The ``rep`` of the host resource behind the handle at ``address``, or wasmtime's
    message when it is not a host resource."""
    host = _HOST_P()
    err = _ffi.wasmtime_component_resource_any_to_host(
        context, ctypes.cast(address, _ANY_P), ctypes.byref(host)
    )
    if err:
        return error_message(err)
    try:
        rep: int = _ffi.wasmtime_component_resource_host_rep(host)
    finally:
        _ffi.wasmtime_component_resource_host_delete(host)
    return rep


def resource_to_guest(context: Any, *, own: bool, rep: int, type_id: int) -> Any | str:
    """A new handle (``wasmtime_component_resource_any_t*``, to free with
    :func:`resource_any_delete` once wasmtime copied it) to host resource ``rep`` of
    host resource type ``type_id``, owned or borrowed; or wasmtime's message."""
    host = _ffi.wasmtime_component_resource_host_new(own, rep, type_id)
    native = _ANY_P()
    try:
        err = _ffi.wasmtime_component_resource_host_to_any(context, host, ctypes.byref(native))
    finally:
        _ffi.wasmtime_component_resource_host_delete(host)
    if err:
        return error_message(err)
    return native


def linker_add_func(
    inst: wasmtime.component.LinkerInstance,
    name: str,
    *,
    callback: Any,
    data: int,
    finalizer: Any,
) -> str | None:
    """Defines function ``name`` in a linker instance as the raw host function
    ``callback`` (a :data:`HostFuncCallback`) with ``data``; ``finalizer(data)``
    runs when the linker is freed. Returns ``None``, or wasmtime's message when it
    refused the definition."""
    encoded = name.encode()
    err = _ffi.wasmtime_component_linker_instance_add_func(
        inst.ptr(), ctypes.create_string_buffer(encoded), len(encoded), callback, data, finalizer
    )
    return error_message(err) if err else None


def linker_add_resource(
    inst: wasmtime.component.LinkerInstance,
    name: str,
    *,
    type_id: int,
    destructor: Any,
    data: int,
    finalizer: Any,
) -> str | None:
    """Defines resource ``name`` in a linker instance as host resource type number
    ``type_id`` whose handles' drops call ``destructor`` (a
    :data:`ResourceDestructor`) with ``data``; ``finalizer(data)`` runs when the
    linker is freed. Returns ``None``, or wasmtime's message when it refused the
    definition."""
    encoded = name.encode()
    rtype = _ffi.wasmtime_component_resource_type_new_host(type_id)
    try:
        err = _ffi.wasmtime_component_linker_instance_add_resource(
            inst.ptr(),
            ctypes.create_string_buffer(encoded),
            len(encoded),
            rtype,
            destructor,
            data,
            finalizer,
        )
    finally:
        _ffi.wasmtime_component_resource_type_delete(rtype)
    return error_message(err) if err else None


# -- linear memories allocated by the host --------------------------------------------
#
# ``wasmtime_config_host_memory_creator_set`` makes an engine ask the host for every
# linear memory it creates. wasmplug's component path uses it to see its guests'
# memories (:mod:`wasmplug._memory`), which wasmtime's component API does not show.
# The structs are mirrored here with plain pointers so that callbacks take and return
# addresses (wasm.h / wasmtime/memory.h, ``wasmtime_memory_creator_t`` and
# ``wasmtime_linear_memory_t``).

# new_memory(env, memorytype*, minimum, maximum, reserved, guard, linear_memory_out*)
_NEW_MEMORY = ctypes.CFUNCTYPE(_P, _P, _P, _SIZE, _SIZE, _SIZE, _SIZE, _P)
# get_memory(env, byte_size_out*, maximum_byte_size_out*) -> base
_GET_MEMORY = ctypes.CFUNCTYPE(_P, _P, _P, _P)
# grow_memory(env, new_byte_size) -> wasmtime_error_t*
_GROW_MEMORY = ctypes.CFUNCTYPE(_P, _P, _SIZE)
_FINALIZER = ctypes.CFUNCTYPE(None, _P)


class _LinearMemory(ctypes.Structure):
    _fields_ = (
        ("env", _P),
        ("get_memory", _GET_MEMORY),
        ("grow_memory", _GROW_MEMORY),
        ("finalizer", _FINALIZER),
    )


class _MemoryCreator(ctypes.Structure):
    _fields_ = (("env", _P), ("new_memory", _NEW_MEMORY), ("finalizer", _FINALIZER))


_config_memory_creator = _proto("wasmtime_config_host_memory_creator_set", None, _P, _P)
# Callbacks installed in an engine may be called until the last of its Stores is freed,
# which can be late in interpreter shutdown: they are never freed.
_forever: list[Any] = []


class LinearMemoryHost:
    """What an engine's host-allocated linear memories call (see
    :func:`set_memory_creator`). Each method runs on the thread that runs the guest,
    with the GIL; an exception is logged by ctypes and turned into a failure."""

    def create(self, minimum: int, maximum: int, reserved: int, guard: int) -> int | str:
        """A new memory of ``minimum`` accessible bytes that may grow to ``maximum``,
        never moving: ``reserved`` bytes of address space (0: ``maximum``) followed by
        ``guard`` inaccessible bytes. Returns a nonzero token naming it, or why not."""
        raise NotImplementedError

    def span(self, token: int) -> tuple[int, int, int]:
        """The memory's base address, accessible bytes and maximum bytes."""
        raise NotImplementedError

    def grow(self, token: int, new_size: int) -> str | None:
        """Makes ``new_size`` bytes accessible; None, or why not."""
        raise NotImplementedError

    def free(self, token: int) -> None:
        """The memory's Store is gone: release it."""
        raise NotImplementedError


def set_memory_creator(config: wasmtime.Config, host: LinearMemoryHost) -> None:
    """Makes the engine built from ``config`` allocate every linear memory through
    ``host``. wasmtime's copy-on-write memory images need memories it maps itself, so
    they are turned off (an instance copies its data segments in instead)."""
    size = ctypes.c_size_t

    def get_memory(env: int, size_out: int, maximum_out: int) -> int:
        try:
            base, now, maximum = host.span(env)
        except BaseException:  # nothing may unwind into wasmtime
            return 0
        size.from_address(size_out).value = now
        size.from_address(maximum_out).value = maximum
        return base

    def grow_memory(env: int, new_size: int) -> int:
        try:
            why = host.grow(env, new_size)
        except BaseException as e:
            why = f"wasmplug: growing a linear memory failed: {e!r}"
        return 0 if why is None else new_error(why.encode()) or 0

    def finalizer(env: int) -> None:
        try:  # noqa: SIM105 - no module global may be needed at interpreter shutdown
            host.free(env)
        except BaseException:  # at interpreter shutdown, say; the process is ending
            pass

    get_cb, grow_cb, fin_cb = (
        _GET_MEMORY(get_memory),
        _GROW_MEMORY(grow_memory),
        _FINALIZER(finalizer),
    )

    def new_memory(  # noqa: PLR0917 - wasmtime's callback signature
        env: int, ty: int, minimum: int, maximum: int, reserved: int, guard: int, out: int
    ) -> int:
        try:
            token = host.create(minimum, maximum, reserved, guard)
        except BaseException as e:
            token = f"wasmplug: creating a linear memory failed: {e!r}"
        if isinstance(token, str):
            return new_error(token.encode()) or 0
        memory = _LinearMemory.from_address(out)
        memory.env = token
        memory.get_memory = get_cb
        memory.grow_memory = grow_cb
        memory.finalizer = fin_cb
        return 0

    new_cb = _NEW_MEMORY(new_memory)
    _forever.extend((host, get_cb, grow_cb, fin_cb, new_cb))
    config.memory_init_cow = False
    creator = _MemoryCreator(None, new_cb, _FINALIZER())
    _config_memory_creator(ctypes.cast(config.ptr(), _P).value, ctypes.addressof(creator))
