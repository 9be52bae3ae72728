"""Linear memories that wasmplug allocates itself, so that it can see them.

wasmtime's component API shows no core memory of a component instance, so a
component's linear memory size (``CallStats.memory_bytes``) cannot be read after a
call the way the core-module fast path reads its exported memory. The engine that
runs components therefore asks this module for every linear memory
(:func:`wasmplug._native.set_memory_creator`): it reserves the address space wasmtime
asks for with ``mmap`` (inaccessible), makes the memory's bytes accessible with
``mprotect`` as wasmtime grows it, and unmaps it when its Store is freed. A memory never
moves, as the engine is configured (``memory_may_move = False``).

Each memory is charged to the :class:`MemoryMeter` in force on the thread that creates
it (:func:`metered`): a component backend makes one meter per instance and creates
the instance under it, so ``meter.bytes`` is the size of all the instance's linear
memories together. A linear memory never shrinks, so that is also their peak.

This module changes how memories are allocated, not how they are limited: the Store's
limits (``Limits.memory_bytes``, ``memories``) are checked by wasmtime before it asks
for a memory or for more of it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import threading
from typing import Any

from . import _native

__all__ = ["MemoryMeter", "available", "install", "live", "metered"]


class MemoryMeter:
    """The linear memories of one instance: ``bytes`` is their accessible size
    together, in bytes (their peak, as memories never shrink); ``count`` is how many
    there are."""

    __slots__ = ("bytes", "count")

    def __init__(self) -> None:
        self.bytes = 0
        self.count = 0


_owner = threading.local()


class metered:
    """Charges the linear memories created on this thread inside the ``with`` block
    (by an instantiation) to ``meter``."""

    __slots__ = ("_meter", "_previous")

    def __init__(self, meter: MemoryMeter) -> None:
        self._meter = meter

    def __enter__(self) -> MemoryMeter:
        self._previous = getattr(_owner, "meter", None)
        _owner.meter = self._meter
        return self._meter

    def __exit__(self, *exc: object) -> None:
        _owner.meter = self._previous


def _libc() -> Any:
    """libc's ``mmap``, ``mprotect`` and ``munmap`` with their prototypes, or None where
    they cannot be had (not a POSIX system)."""
    if os.name != "posix":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = (
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
        )
        libc.mprotect.restype = ctypes.c_int
        libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        libc.munmap.restype = ctypes.c_int
        libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    except (OSError, AttributeError):  # pragma: no cover - no usable libc
        return None
    return libc


_LIBC = _libc()
_MAP_FAILED = ctypes.c_void_p(-1).value
_PROT_NONE = 0
_PROT_RW = mmap.PROT_READ | mmap.PROT_WRITE
# Address space only: pages get memory when the guest touches them.
_MAP_FLAGS = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0)


class _Memories(_native.LinearMemoryHost):
    """The process's host-allocated linear memories, by token: ``[base address,
    accessible bytes, mapped bytes, maximum bytes, meter or None]``."""

    def __init__(self, libc: Any) -> None:
        self._libc = libc
        self._memories: dict[int, list[Any]] = {}
        self._next = 1
        self._lock = threading.Lock()

    def create(self, minimum: int, maximum: int, reserved: int, guard: int) -> int | str:
        mapped = max(reserved or maximum, minimum) + guard
        base = self._libc.mmap(None, mapped, _PROT_NONE, _MAP_FLAGS, -1, 0)
        if base is None or base == _MAP_FAILED:
            return f"cannot reserve {mapped:,} bytes of address space: {_errno()}"
        if minimum and self._libc.mprotect(base, minimum, _PROT_RW):
            why = _errno()
            self._libc.munmap(base, mapped)
            return f"cannot make {minimum:,} bytes of linear memory accessible: {why}"
        meter: MemoryMeter | None = getattr(_owner, "meter", None)
        if meter is not None:
            meter.bytes += minimum
            meter.count += 1
        with self._lock:
            token = self._next
            self._next += 1
            self._memories[token] = [base, minimum, mapped, maximum, meter]
        return token

    def __len__(self) -> int:
        return len(self._memories)

    def span(self, token: int) -> tuple[int, int, int]:
        memory = self._memories[token]
        return memory[0], memory[1], memory[3]

    def grow(self, token: int, new_size: int) -> str | None:
        memory = self._memories[token]
        base, size, mapped, _, meter = memory
        if new_size > mapped:  # pragma: no cover - wasmtime grows within the maximum
            return f"linear memory cannot grow to {new_size:,} bytes past its reservation"
        if new_size > size:
            if self._libc.mprotect(base + size, new_size - size, _PROT_RW):
                return f"cannot make {new_size:,} bytes of linear memory accessible: {_errno()}"
            if meter is not None:
                meter.bytes += new_size - size
            memory[1] = new_size
        return None

    def free(self, token: int) -> None:
        with self._lock:
            memory = self._memories.pop(token, None)
        if memory is not None:
            self._libc.munmap(memory[0], memory[2])


def _errno() -> str:
    code = ctypes.get_errno()
    return f"{os.strerror(code)} (errno {code})"


_memories = _Memories(_LIBC) if _LIBC is not None else None


def available() -> bool:
    """Whether linear memories can be allocated here (a POSIX libc with ``mmap``)."""
    return _memories is not None


def live() -> int:
    """How many linear memories allocated here are alive (their Stores not yet freed)."""
    return 0 if _memories is None else len(_memories)


def install(config: Any) -> bool:
    """Makes the engine built from ``config`` (a ``wasmtime.Config``) allocate its
    linear memories here. Returns False, changing nothing, where that is not
    :func:`available`."""
    if _memories is None:
        return False
    _native.set_memory_creator(config, _memories)
    return True
