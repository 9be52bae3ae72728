"""The one place that calls libextism's C API (through the ``extism`` SDK's cffi
library object, ``extism_sys``).

The Python SDK (``extism.Plugin``) has no fuel-limited constructor, registers host
functions in a process-wide list, and swallows exceptions raised by host functions.
The Extism backend (``_extism.py``) therefore calls the C API itself, through the
functions below. Every use of ``extism_sys`` and of the SDK's private names is in
this module (``tests/test_layout.py`` enforces it), so an SDK upgrade that moves
them has one module to fix.

C API used (``extism.h`` of libextism 1.x): ``extism_compiled_plugin_new`` and
``extism_compiled_plugin_new_with_fuel_limit`` (fuel per call, in fuel units),
``extism_plugin_new_from_compiled``, ``extism_plugin_call``, ``extism_plugin_error``,
``extism_plugin_output_length`` / ``_data``, ``extism_plugin_cancel_handle`` /
``extism_plugin_cancel``, ``extism_plugin_function_exists``, ``extism_function_new``
/ ``_set_namespace`` / ``_free``, and the ``extism_current_plugin_*`` memory
functions for host functions. libextism has no call that reports the fuel left, so
a call's fuel use is not known.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from extism_sys import ffi, lib

__all__ = [
    "I32",
    "I64",
    "ExtismFailure",
    "HostCallback",
    "call",
    "cancel",
    "cancel_handle",
    "compile_plugin",
    "free_compiled",
    "free_function",
    "free_plugin",
    "function_exists",
    "instantiate",
    "new_function",
    "output",
    "output_length",
    "read_block",
    "version",
    "write_block",
]

#: ``ExtismValType`` codes.
I32 = 0
I64 = 1

#: A host function body: ``(current plugin, inputs, outputs)``; inputs are the
#: arguments' raw values, ``outputs`` a list to fill with one value per result.
HostCallback = Callable[[Any, list[int], list[int]], None]

_CALLBACK_TYPE = (
    "void(ExtismCurrentPlugin*, const ExtismVal*, ExtismSize, ExtismVal*, ExtismSize, void*)"
)


class ExtismFailure(Exception):
    """libextism refused an operation; the message is its own."""


def version() -> str:
    """libextism's version, e.g. ``"1.13.0"``."""
    return str(ffi.string(lib.extism_version()).decode())


def _take_error(err: Any) -> str:
    if err[0] == ffi.NULL:
        return "unknown error"
    message = ffi.string(err[0]).decode(errors="replace")
    lib.extism_plugin_new_error_free(err[0])
    return str(message)


def compile_plugin(
    manifest: bytes, functions: Sequence[Any], *, wasi: bool, fuel: int | None
) -> Any:
    """Compiles a plugin from its JSON manifest, linking ``functions`` (made by
    :func:`new_function`; each can be linked into one compiled plugin only).

    Args:
        manifest: The Extism manifest, JSON.
        functions: Host functions.
        wasi: Whether to link WASI preview 1.
        fuel: Fuel units each call gets (``None``: no fuel limit).

    Returns:
        The ``ExtismCompiledPlugin*``; free it with :func:`free_compiled`.

    Raises:
        ExtismFailure: libextism refused it (invalid wasm, bad manifest...).
    """
    err = ffi.new("char**")
    array = ffi.new("ExtismFunction*[]", list(functions)) if functions else ffi.NULL
    if fuel is None:
        compiled = lib.extism_compiled_plugin_new(
            manifest, len(manifest), array, len(functions), wasi, err
        )
    else:
        compiled = lib.extism_compiled_plugin_new_with_fuel_limit(
            manifest, len(manifest), array, len(functions), wasi, fuel, err
        )
    if compiled == ffi.NULL:
        raise ExtismFailure(_take_error(err))
    return compiled


def free_compiled(compiled: Any) -> None:
    """Frees a compiled plugin."""
    lib.extism_compiled_plugin_free(compiled)


def instantiate(compiled: Any) -> Any:
    """A new instance (``ExtismPlugin*``) of a compiled plugin.

    Raises:
        ExtismFailure: it could not be instantiated (the message says why).
    """
    err = ffi.new("char**")
    plugin = lib.extism_plugin_new_from_compiled(compiled, err)
    if plugin == ffi.NULL:
        raise ExtismFailure(_take_error(err))
    return plugin


def free_plugin(plugin: Any) -> None:
    """Frees an instance."""
    lib.extism_plugin_free(plugin)


def function_exists(plugin: Any, name: str) -> bool:
    """Whether the instance exports function ``name``."""
    return bool(lib.extism_plugin_function_exists(plugin, name.encode()))


def call(plugin: Any, name: bytes, data: bytes) -> tuple[int, str | None]:
    """Calls export ``name`` with input ``data``.

    Returns:
        ``(rc, error)``: the call's return code and the error libextism or the guest
        set (``None`` when the call succeeded). Read the output with :func:`output`.
    """
    rc = lib.extism_plugin_call(plugin, name, data, len(data))
    error = lib.extism_plugin_error(plugin)
    if error != ffi.NULL:
        return int(rc), str(ffi.string(error).decode(errors="replace"))
    return int(rc), None


def output_length(plugin: Any) -> int:
    """The length in bytes of the last call's output."""
    return int(lib.extism_plugin_output_length(plugin))


def output(plugin: Any, length: int) -> bytes:
    """The last call's output (``length`` from :func:`output_length`)."""
    return bytes(ffi.buffer(lib.extism_plugin_output_data(plugin), length))


def cancel_handle(plugin: Any) -> Any:
    """The instance's cancel handle (valid while the instance lives)."""
    return lib.extism_plugin_cancel_handle(plugin)


def cancel(handle: Any) -> None:
    """Stops the call running on the handle's instance, from any thread."""
    lib.extism_plugin_cancel(handle)


def new_function(
    namespace: str, name: str, params: Sequence[int], results: Sequence[int], body: HostCallback
) -> tuple[Any, Any]:
    """A host function for :func:`compile_plugin`.

    Args:
        namespace: The import module (``extism:host/user``).
        name: The import name.
        params, results: Their value types (:data:`I32`, :data:`I64`).
        body: Called with the current plugin, the argument values and a list to
            fill with the result values. It must not raise (libextism has no way to
            fail a call from a host function): the caller catches everything.

    Returns:
        ``(function, keepalive)``: the ``ExtismFunction*`` and the cffi callback,
        which must be kept alive as long as the function can be called.
    """

    def trampoline(current: Any, inputs: Any, n_in: int, outputs: Any, n_out: int, _: Any) -> None:
        args = [
            int(inputs[i].v.i64) if inputs[i].t == I64 else int(inputs[i].v.i32)
            for i in range(n_in)
        ]
        values = [0] * n_out
        body(current, args, values)
        for i in range(n_out):
            if outputs[i].t == I64:
                outputs[i].v.i64 = values[i]
            else:
                outputs[i].v.i32 = values[i]

    callback = ffi.callback(_CALLBACK_TYPE, trampoline)
    param_types = ffi.new("ExtismValType[]", list(params) or [I64])
    result_types = ffi.new("ExtismValType[]", list(results) or [I64])
    function = lib.extism_function_new(
        name.encode(),
        param_types,
        len(params),
        result_types,
        len(results),
        callback,
        ffi.NULL,
        ffi.NULL,
    )
    lib.extism_function_set_namespace(function, namespace.encode())
    return function, (callback, param_types, result_types)


def free_function(function: Any) -> None:
    """Frees a host function."""
    lib.extism_function_free(function)


def read_block(current: Any, offset: int) -> bytes:
    """The bytes of the Extism memory block at ``offset`` (``b""`` for offset 0)."""
    if offset == 0:
        return b""
    length = lib.extism_current_plugin_memory_length(current, offset)
    base = lib.extism_current_plugin_memory(current)
    return bytes(ffi.buffer(base + offset, length))


def write_block(current: Any, data: bytes) -> int:
    """Copies ``data`` into a new Extism memory block; returns its offset (0 when the
    block could not be allocated)."""
    offset = int(lib.extism_current_plugin_memory_alloc(current, len(data)))
    if offset == 0:
        return 0
    base = lib.extism_current_plugin_memory(current)
    ffi.memmove(base + offset, data, len(data))
    return offset
