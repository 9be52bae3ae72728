"""wasmtime's C API below wasmtime-py, for the core-module fast path.

wasmtime-py wraps every call in Python frames that rebuild types and convert values
(about 12-16 µs for a call, against 1.5 µs through ``wasmtime_func_call_unchecked``,
``docs/performance.md``). The fast path calls the C functions it needs directly,
through foreign-function objects of its own whose prototypes take plain integers
for pointers: no ctypes pointer objects on the hot path.

What of wasmtime-py's private API the fast path needs (its loaded library
``wasmtime._ffi.dll`` and its struct types, ``Store._context``,
``Trap._from_ptr``, ``WasmtimeError._from_ptr``) is reached only from here.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import _ffi

__all__ = [
    "RAW",
    "Instance",
    "TrapSlot",
    "call",
    "call_unchecked",
    "context_of",
    "define_unchecked",
    "epoch_callback",
    "failure",
    "func_type_names",
    "get_fuel",
    "instantiate",
    "memory_size",
    "memory_span",
    "memory_view",
    "monotonic_ns",
    "raw_view",
    "set_epoch_callback",
    "set_epoch_deadline",
    "set_fuel",
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
_error_new = _proto("wasmtime_error_new", _P, ctypes.c_char_p)
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
            return int(_error_new(verdict.encode()) or 0)
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
