"""Lifting and lowering between Python values and wasmtime's component values.

wasmtime's C API exchanges component-model values as trees of
``wasmtime_component_val_t`` (a one-byte kind tag and a union). wasmplug builds one
codec per WIT type when a plugin is loaded, from the host's WIT, and reuses it for
every call, instead of re-reading types through ctypes on each call.

Lowering writes the whole argument tree into one Python-owned ``bytearray`` (an
*arena*) with ``struct.pack_into`` and patches its internal pointers once the arena's
address is fixed. wasmtime copies arguments out of that memory
(``wasmtime_component_func_call`` takes them by ``const`` pointer), so nothing is
allocated on the Rust side and nothing needs freeing. Values handed *to* wasmtime as
host-function results are copied into wasmtime-owned memory with
``wasmtime_component_val_clone``.

Lifting reads wasmtime-owned result memory with ``ctypes.string_at`` and
``struct.unpack_from``; the caller frees the result tree once with
``wasmtime_component_val_delete``.

Every value is checked against its WIT type before any byte reaches wasmtime, by the
checks every backend shares (:mod:`wasmplug._checks`), and the codecs encode what the
checks return: wasmtime's own conversion panics (aborting the process) on an invalid
``char`` and traps on an unknown enum case, and wasmtime-py silently wraps out-of-
range integers.
"""

from __future__ import annotations

import ctypes
import enum
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from operator import attrgetter
from typing import Any, Protocol

from . import _wit
from ._bindings import (
    ConversionBuilder,
    Err,
    Ok,
    TypeNamespace,
    UnsupportedType,
    describe,
    field_name,
)
from ._checks import (
    CaseChoice,
    EnumChoice,
    FlagsChoice,
    Mismatch,
    char_code,
    check_bool,
    check_bytes,
    check_float,
    check_int,
    check_sequence,
    check_tuple,
    int_range,
    record_values,
    result_case,
    utf8,
)
from ._native import (
    COMPONENT_KINDS,
    COMPONENT_VAL_SIZE,
    COMPONENT_VAL_UNION,
    NAME_SIZE,
    RECORD_ENTRY_SIZE,
    RECORD_ENTRY_VAL,
)

__all__ = [
    "Arena",
    "Codec",
    "GuestHandleCodec",
    "HandleScope",
    "HostHandleCodec",
    "build_codec",
    "handle_scope",
    "swap_scope",
]

VAL_SIZE = COMPONENT_VAL_SIZE
OF = COMPONENT_VAL_UNION
ENTRY_SIZE = RECORD_ENTRY_SIZE
ENTRY_VAL = RECORD_ENTRY_VAL

K_BOOL = COMPONENT_KINDS["BOOL"]
K_S8 = COMPONENT_KINDS["S8"]
K_U8 = COMPONENT_KINDS["U8"]
K_S16 = COMPONENT_KINDS["S16"]
K_U16 = COMPONENT_KINDS["U16"]
K_S32 = COMPONENT_KINDS["S32"]
K_U32 = COMPONENT_KINDS["U32"]
K_S64 = COMPONENT_KINDS["S64"]
K_U64 = COMPONENT_KINDS["U64"]
K_F32 = COMPONENT_KINDS["F32"]
K_F64 = COMPONENT_KINDS["F64"]
K_CHAR = COMPONENT_KINDS["CHAR"]
K_STRING = COMPONENT_KINDS["STRING"]
K_LIST = COMPONENT_KINDS["LIST"]
K_RECORD = COMPONENT_KINDS["RECORD"]
K_TUPLE = COMPONENT_KINDS["TUPLE"]
K_VARIANT = COMPONENT_KINDS["VARIANT"]
K_ENUM = COMPONENT_KINDS["ENUM"]
K_OPTION = COMPONENT_KINDS["OPTION"]
K_RESULT = COMPONENT_KINDS["RESULT"]
K_FLAGS = COMPONENT_KINDS["FLAGS"]
K_RESOURCE = COMPONENT_KINDS["RESOURCE"]

_HEADER_SIZE_PTR = struct.Struct(f"<B{OF - 1}xQQ")  # kind, size, data pointer
_HEADER_PTR = struct.Struct(f"<B{OF - 1}xQ")  # kind, one pointer (option)
_NAME = struct.Struct("<QQ")  # wasm_name_t: size, data
_PTR = struct.Struct("<Q")
_U64 = _PTR
_VARIANT = struct.Struct(f"<B{OF - 1}xQQQ")  # kind, name size, name data, payload pointer
_RESULT = struct.Struct(f"<B{OF - 1}x?7xQ")  # kind, is_ok, payload pointer

_string_at = ctypes.string_at


class Arena:
    """A growable buffer of ``wasmtime_component_val_t`` trees with deferred pointers."""

    __slots__ = ("_c", "base", "buf", "handles", "relocs")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.relocs: list[tuple[int, int]] = []
        # Resource handles lowered into the arena, with whether each is moved (own).
        self.handles: list[tuple[Any, bool]] = []
        self._c: Any = None
        self.base = 0

    def alloc(self, size: int) -> int:
        """Reserves ``size`` zeroed bytes, 8-aligned; returns their offset."""
        buf = self.buf
        off = len(buf)
        pad = -off & 7
        buf.extend(bytes(pad + size))
        return off + pad

    def add_bytes(self, data: bytes) -> int:
        """Appends ``data`` (8-aligned); returns its offset."""
        buf = self.buf
        off = len(buf)
        pad = -off & 7
        if pad:
            buf.extend(bytes(pad))
        buf.extend(data)
        return off + pad

    def pointer(self, at: int, target: int) -> None:
        """Records that the 8 bytes at ``at`` must hold the address of offset ``target``."""
        self.relocs.append((at, target))

    def finalize(self) -> int:
        """Fixes the arena in memory, writes every pointer; returns the base address."""
        buf = self.buf
        if not buf:
            buf.extend(bytes(8))
        c = (ctypes.c_char * len(buf)).from_buffer(buf)
        base = ctypes.addressof(c)
        pack = _PTR.pack_into
        for at, target in self.relocs:
            pack(buf, at, base + target)
        self._c = c
        self.base = base
        return base


class _Names:
    """WIT names kept at a fixed address for the codec's lifetime (enum cases, field
    names, variant discriminants)."""

    def __init__(self, names: Sequence[str]) -> None:
        encoded = [n.encode() for n in names]
        self._buf = ctypes.create_string_buffer(b"".join(encoded) or b"\0")
        base = ctypes.addressof(self._buf)
        self.entries: list[tuple[int, int]] = []
        off = 0
        for e in encoded:
            self.entries.append((len(e), base + off))
            off += len(e)


class Codec:
    """Converts one WIT type between Python values and ``wasmtime_component_val_t``.

    Attributes:
        fixed: The size of every value of the type, in bytes of data (see
            :meth:`measure`), or ``None`` when values differ in size (they hold a
            string or a list).
    """

    __slots__ = ("fixed", "wit")

    kind = -1

    def __init__(self, wit: _wit.WitType, fixed: int | None = 0) -> None:
        self.wit = wit
        self.fixed = fixed

    def measure(self, raw: bytes, off: int, budget: int) -> int:
        """The size in bytes of the value at ``raw[off:]``, read from wasmtime's value
        headers without building a Python value: each string's UTF-8 bytes, each
        list element's size, 8 more per string and list (their pointer and length in
        the canonical ABI), scalars at their width (``bool`` 1, ``char`` 4), one
        byte per discriminant, 4 per flags value and per handle.

        Stops early once the size passes ``budget`` (then returns a size larger
        than ``budget``, not necessarily the whole size).
        """
        return self.fixed or 0

    def lower(self, arena: Arena, slot: int, value: Any) -> None:
        """Checks ``value`` and writes it as a ``wasmtime_component_val_t`` at ``slot``.

        Raises:
            Mismatch: ``value`` does not fit the type.
        """
        raise NotImplementedError

    def lift(self, raw: bytes, off: int) -> Any:
        """Reads the ``wasmtime_component_val_t`` at ``raw[off:]`` as a Python value."""
        raise NotImplementedError


class _Int(Codec):
    __slots__ = ("_expected", "_fmt", "hi", "kind", "lo")

    def __init__(self, wit: _wit.WitType, kind: int, code: str, bits: int, signed: bool) -> None:
        super().__init__(wit, bits // 8)
        self.kind = kind
        self._fmt = struct.Struct(f"<B{OF - 1}x{code}")
        self.lo, self.hi = int_range(bits, signed)
        self._expected = f"int in [{self.lo}, {self.hi}] ({describe(wit)})"

    def lower(self, arena: Arena, slot: int, value: Any) -> None:
        check_int(value, self.lo, self.hi, self._expected)
        self._fmt.pack_into(arena.buf, slot, self.kind, value)

    def lift(self, raw: bytes, off: int) -> Any:
        return self._fmt.unpack_from(raw, off)[1]


class _Bool(Codec):
    __slots__ = ()
    kind = K_BOOL
    _fmt = struct.Struct(f"<B{OF - 1}x?")

    def __init__(self, wit: _wit.WitType) -> None:
        super().__init__(wit, 1)

    def lower(self, arena: Arena, slot: int, value: Any) -> None:
        self._fmt.pack_into(arena.buf, slot, K_BOOL, check_bool(value))

    def lift(self, raw: bytes, off: int) -> Any:
        return raw[off + OF] != 0


class _Float(Codec):
    __slots__ = ("_fmt", "_single", "kind")

    def __init__(self, wit: _wit.WitType, single: bool) -> None:
        super().__init__(wit, 4 if single else 8)
        self.kind = K_F32 if single else K_F64
        self._single = single
        self._fmt = struct.Struct(f"<B{OF - 1}x{'f' if single else 'd'}")

    def lower(self, arena: Arena, slot: int, value: Any) -> None:
        self._fmt.pack_into(arena.buf, slot, self.kind, check_float(value, self.wit, self._single))

    def lift(self, raw: bytes, off: int) -> Any:
        return self._fmt.unpack_from(raw, off)[1]


class _Char(Codec):
    __slots__ = ()
    kind = K_CHAR
    _fmt = struct.Struct(f"<B{OF - 1}xI")

    def __init__(self, wit: _wit.WitType) -> None:
        super().__init__(wit, 4)

    def lower(self, arena: Arena, slot: int, value: Any) -> None:
        self._fmt.pack_into(arena.buf, slot, K_CHAR, char_code(value))

    def lift(self, raw: bytes, off: int) -> Any:
        return chr(self._fmt.unpack_from(raw, off)[1])


class _String(Codec):
    __slots__ = ()
    kind = K_STRING

    def __init__(self, wit: _wit.WitType) -> None:
        super().__init__(wit, None)

    def measure(self, raw: bytes, off: int, budget: int) -> int:
        return 8 + _HEADER_SIZE_PTR.unpack_from(raw, off)[1]  # type: ignore[no-any-return]

    def lower(self, arena: Arena, slot: int, value: Any) -> None:
        data = utf8(value)
        _HEADER_SIZE_PTR.pack_into(arena.buf, slot, K_STRING, len(data), 0)
        arena.pointer(slot + OF + 8, arena.add_bytes(data))

    def lift(self, raw: bytes, off: int) -> Any:
        _, size, ptr = _HEADER_SIZE_PTR.unpack_from(raw, off)
        return _string_at(ptr, size).decode("utf-8") if size else ""


class _Bytes(Codec):
    """``list<u8>`` as ``bytes``: converted with slice assignment, not element by element."""

    __slots__ = ()
    kind = K_LIST

    def __init__(self, wit: _wit.WitType) -> None:
        super().__init__(wit, None)

    def measure(self, raw: bytes, off: int, budget: int) -> int:
        return 8 + _HEADER_SIZE_PTR.unpack_from(raw, off)[1]  # type: ignore[no-any-return]

    def lower(self, arena: Arena, slot: int, value: Any) -> None:
        data = bytes(check_bytes(value))
        n = len(data)
        _HEADER_SIZE_PTR.pack_into(arena.buf, slot, K_LIST, n, 0)
        if n:
            arr = arena.alloc(n * VAL_SIZE)
            end = arr + n * VAL_SIZE
            arena.buf[arr:end:VAL_SIZE] = bytes((K_U8,)) * n
            arena.buf[arr + OF : end : VAL_SIZE] = data
            arena.pointer(slot + OF + 8, arr)
        else:
            arena.pointer(slot + OF + 8, 0)

    def lift(self, raw: bytes, off: int) -> Any:
        _, size, ptr = _HEADER_SIZE_PTR.unpack_from(raw, off)
        if not size:
            return b""
        return _string_at(ptr, size * VAL_SIZE)[OF::VAL_SIZE]


class _List(Codec):
    __slots__ = ("elem",)
    kind = K_LIST

    def __init__(self, wit: _wit.WitType, elem: Codec) -> None:
        super().__init__(wit, None)
        self.elem = elem

    def measure(self, raw: bytes, off: int, budget: int) -> int:
        _, size, ptr = _HEADER_SIZE_PTR.unpack_from(raw, off)
        fixed = self.elem.fixed
        if fixed is not None:
            return 8 + size * fixed  # type: ignore[no-any-return]
        return 8 + _measure_all(self.elem, ptr, size, budget - 8)

    def lower(self, arena: Arena, slot: int, value: Any) -> None:
        value = check_sequence(value, self.wit)
        n = len(value)
        _HEADER_SIZE_PTR.pack_into(arena.buf, slot, K_LIST, n, 0)
        arr = arena.alloc(n * VAL_SIZE) if n else 0
        arena.pointer(slot + OF + 8, arr)
        lower = self.elem.lower
        for i, item in enumerate(value):
            try:
                lower(arena, arr + i * VAL_SIZE, item)
            except Mismatch as e:
                raise e.at(f"[{i}]") from None

    def lift(self, raw: bytes, off: int) -> Any:
        _, size, ptr = _HEADER_SIZE_PTR.unpack_from(raw, off)
        if not size:
            return []
        arr = _string_at(ptr, size * VAL_SIZE)
        lift = self.elem.lift
        return [lift(arr, i * VAL_SIZE) for i in range(size)]


class _Tuple(Codec):
    __slots__ = ("elems",)
    kind = K_TUPLE

    def __init__(self, wit: _wit.WitType, elems: list[Codec]) -> None:
        super().__init__(wit, _sum_fixed(elems))
        self.elems = elems

    def measure(self, raw: bytes, off: int, budget: int) -> int:
        if self.fixed is not None:
            return self.fixed
        ptr = _HEADER_SIZE_PTR.unpack_from(raw, off)[2]
        return _measure_fields(self.elems, ptr, VAL_SIZE, 0, budget)

    def lower(self, arena: Arena, slot: int, value: Any) -> None:
        n = len(self.elems)
        value = check_tuple(value, n, self.wit)
        _HEADER_SIZE_PTR.pack_into(arena.buf, slot, K_TUPLE, n, 0)
        arr = arena.alloc(n * VAL_SIZE) if n else 0
        arena.pointer(slot + OF + 8, arr)
        for i, (codec, item) in enumerate(zip(self.elems, value, strict=True)):
            try:
                codec.lower(arena, arr + i * VAL_SIZE, item)
            except Mismatch as e:
                raise e.at(f"[{i}]") from None

    def lift(self, raw: bytes, off: int) -> Any:
        _, size, ptr = _HEADER_SIZE_PTR.unpack_from(raw, off)
        if not size:
            return ()
        arr = _string_at(ptr, size * VAL_SIZE)
        return tuple(c.lift(arr, i * VAL_SIZE) for i, c in enumerate(self.elems))


class _Record(Codec):
    __slots__ = ("_cls", "_fast", "_get", "_names", "_var", "attrs", "codecs", "wit_fields")
    kind = K_RECORD

    def __init__(self, wit: _wit.TypeDef, cls: type, fields: list[tuple[str, str, Codec]]) -> None:
        super().__init__(wit, _sum_fixed([f[2] for f in fields]))
        self._cls = cls
        self.wit_fields = [f[0] for f in fields]
        self.attrs = [f[1] for f in fields]
        self.codecs = [f[2] for f in fields]
        # For measuring: the fixed fields' total and where each other field sits.
        # Strings and byte lists are measured by their length field alone (codec None).
        self._var = (
            sum(c.fixed for c in self.codecs if c.fixed is not None),
            [
                (i * ENTRY_SIZE + ENTRY_VAL, None if isinstance(c, _String | _Bytes) else c)
                for i, c in enumerate(self.codecs)
                if c.fixed is None
            ],
        )
        self._names = _Names(self.wit_fields)
        n = len(fields)
        self._get: Callable[[Any], Any] = (
            (attrgetter(*self.attrs) if n > 1 else (lambda v: (getattr(v, self.attrs[0]),)))
            if n
            else (lambda v: ())
        )
        self._fast = _compile_record_lowering(self) if n else self._lower_generic

    def _values(self, value: Any) -> Sequence[Any]:
        if value.__class__ is self._cls:
            return self._get(value)  # type: ignore[no-any-return]
        return record_values(value, self.wit, self._cls, self.attrs, self._get)

    def lower(self, arena: Arena, slot: int, value: Any) -> None:
        self._fast(arena, slot, value)

    def lower_field(self, i: int, arena: Arena, at: int, value: Any) -> None:
        """Writes field ``i`` (its name and value) into the record entry at ``at``."""
        size, addr = self._names.entries[i]
        _NAME.pack_into(arena.buf, at, size, addr)
        try:
            self.codecs[i].lower(arena, at + ENTRY_VAL, value)
        except Mismatch as e:
            raise e.at(f".{self.attrs[i]}") from None

    def _lower_generic(self, arena: Arena, slot: int, value: Any) -> None:
        values = self._values(value)
        n = len(self.codecs)
        buf = arena.buf
        _HEADER_SIZE_PTR.pack_into(buf, slot, K_RECORD, n, 0)
        entries = arena.alloc(n * ENTRY_SIZE) if n else 0
        arena.pointer(slot + OF + 8, entries)
        names = self._names.entries
        for i, codec in enumerate(self.codecs):
            at = entries + i * ENTRY_SIZE
            size, addr = names[i]
            _NAME.pack_into(arena.buf, at, size, addr)
            try:
                codec.lower(arena, at + ENTRY_VAL, values[i])
            except Mismatch as e:
                raise e.at(f".{self.attrs[i]}") from None

    def measure(self, raw: bytes, off: int, budget: int) -> int:
        if self.fixed is not None:
            return self.fixed
        size, ptr = _HEADER_SIZE_PTR.unpack_from(raw, off)[1:]
        total, var = self._var
        arr = _string_at(ptr, size * ENTRY_SIZE)
        for at, codec in var:
            if codec is None:
                total += 8 + _U64.unpack_from(arr, at + OF)[0]
            else:
                total += codec.measure(arr, at, budget - total)
        return total

    def lift(self, raw: bytes, off: int) -> Any:
        _, size, ptr = _HEADER_SIZE_PTR.unpack_from(raw, off)
        if not size:
            return self._cls()
        arr = _string_at(ptr, size * ENTRY_SIZE)
        return self._cls(
            *[c.lift(arr, i * ENTRY_SIZE + ENTRY_VAL) for i, c in enumerate(self.codecs)]
        )


def _encode_or_none(text: str) -> bytes | None:
    try:
        return text.encode()
    except UnicodeEncodeError:
        return None


_OPTION_ENTRY = struct.Struct(f"<QQB{OF - 1}xQ")  # record entry: name, option kind, payload


def _inline(codec: Codec, v: str) -> tuple[str, Any, Any] | None:
    """How to lower a value of ``codec``'s type inline: ``(check, entry_pack, bare_pack)``
    where ``check`` is a source expression true when ``v`` is valid, ``entry_pack``
    writes a record entry (name then value) and ``bare_pack`` a lone value. ``None``
    when the type is not inlined."""
    if isinstance(codec, _Int):
        code = codec._fmt.format[-1]
        return (
            f"({v}.__class__ is int or (isinstance({v}, int) and {v}.__class__ is not bool))"
            f" and {codec.lo} <= {v} <= {codec.hi}",
            struct.Struct(f"<QQB{OF - 1}x{code}").pack_into,
            codec._fmt.pack_into,
        )
    if isinstance(codec, _Float) and not codec._single:
        return (
            f"{v}.__class__ is float",
            struct.Struct(f"<QQB{OF - 1}xd").pack_into,
            codec._fmt.pack_into,
        )
    if isinstance(codec, _Bool):
        return (
            f"({v} is True or {v} is False)",
            struct.Struct(f"<QQB{OF - 1}x?").pack_into,
            codec._fmt.pack_into,
        )
    if isinstance(codec, _String):
        return (
            f"{v}.__class__ is str and (d := ENCODE({v})) is not None",
            struct.Struct(f"<QQB{OF - 1}xQQ").pack_into,
            _HEADER_SIZE_PTR.pack_into,
        )
    return None


def _write(codec: Codec, pack: str, args: str, val_at: str, v: str) -> list[str]:
    """Source lines writing an inline-checked value whose ``wasmtime_component_val_t``
    starts at ``val_at``."""
    if isinstance(codec, _String):
        return [
            f"{pack}({args}, {K_STRING}, len(d), 0)",
            f"relocs.append(({val_at} + {OF + 8}, arena.add_bytes(d)))",
        ]
    return [f"{pack}({args}, {codec.kind}, {v})"]


def _compile_record_lowering(rec: _Record) -> Callable[[Arena, int, Any], None]:
    """Generates a lowering function specialized to one record type.

    The generic path costs a Python call and several ``pack_into`` per field: a flight
    record of 19 fields took ~50 us. The generated function reads every field with one
    ``attrgetter``, checks primitive fields (and options of them) inline and writes
    each such field's name and value with one ``pack_into``. Fields of other types,
    and any value failing an inline check, go through :meth:`_Record.lower_field`,
    which gives the exact error; the result is byte-for-byte the generic path's.
    """
    n = len(rec.codecs)
    names = ", ".join(f"v{i}" for i in range(n)) + ("," if n == 1 else "")
    # Inlined options get their payload slot in the same allocation as the entries.
    inlined_options = [
        i
        for i, c in enumerate(rec.codecs)
        if isinstance(c, _Option) and _inline(c.inner, "v") is not None
    ]
    payload_at = {i: n * ENTRY_SIZE + k * VAL_SIZE for k, i in enumerate(inlined_options)}
    env: dict[str, Any] = {
        "CLS": rec._cls,
        "GET": rec._get,
        "VALUES": rec._values,
        "HEADER": _HEADER_SIZE_PTR.pack_into,
        "OPTION": _OPTION_ENTRY.pack_into,
        "SLOW": rec.lower_field,
        "ENCODE": _encode_or_none,
    }
    lines = [
        "def lower(arena, slot, value):",
        "    if value.__class__ is CLS:",
        f"        {names} = GET(value)",
        "    else:",
        f"        {names} = VALUES(value)",
        "    buf = arena.buf",
        f"    HEADER(buf, slot, {K_RECORD}, {n}, 0)",
        f"    e = arena.alloc({n * ENTRY_SIZE + len(inlined_options) * VAL_SIZE})",
        "    relocs = arena.relocs",
        f"    relocs.append((slot + {OF + 8}, e))",
    ]
    for i, codec in enumerate(rec.codecs):
        v = f"v{i}"
        at = f"e + {i * ENTRY_SIZE}"
        nsize, naddr = rec._names.entries[i]
        slow = f"SLOW({i}, arena, {at}, {v})"
        optional = isinstance(codec, _Option)
        target = codec.inner if isinstance(codec, _Option) else codec
        plan = _inline(target, v)
        if plan is None:
            lines.append(f"    {slow}")
            continue
        check, entry_pack, bare_pack = plan
        env[f"E{i}"] = entry_pack
        env[f"B{i}"] = bare_pack
        if not optional:
            body = _write(target, f"E{i}", f"buf, {at}, {nsize}, {naddr}", f"{at} + {ENTRY_VAL}", v)
            lines += [f"    if {check}:", *("        " + b for b in body)]
        else:
            body = [
                f"OPTION(buf, {at}, {nsize}, {naddr}, {K_OPTION}, 0)",
                f"p = e + {payload_at[i]}",
                f"relocs.append(({at} + {ENTRY_VAL + OF}, p))",
                *_write(target, f"B{i}", "buf, p", "p", v),
            ]
            lines += [
                f"    if {v} is None:",
                f"        OPTION(buf, {at}, {nsize}, {naddr}, {K_OPTION}, 0)",
                f"    elif {check}:",
                *("        " + b for b in body),
            ]
        lines += ["    else:", f"        {slow}"]
    namespace: dict[str, Any] = {}
    source = "\n".join(lines)
    exec(compile(source, f"<lowering of {describe(rec.wit)}>", "exec"), env, namespace)
    return namespace["lower"]  # type: ignore[no-any-return]


class _Option(Codec):
    __slots__ = ("inner",)
    kind = K_OPTION

    def __init__(self, wit: _wit.WitType, inner: Codec) -> None:
        super().__init__(wit, None if inner.fixed is None else 1 + inner.fixed)
        self.inner = inner

    def measure(self, raw: bytes, off: int, budget: int) -> int:
        if self.fixed is not None:
            return self.fixed
        ptr = _HEADER_PTR.unpack_from(raw, off)[1]
        return 1 + (self.inner.measure(_string_at(ptr, VAL_SIZE), 0, budget) if ptr else 0)

    def lower(self, arena: Arena, slot: int, value: Any) -> None:
        _HEADER_PTR.pack_into(arena.buf, slot, K_OPTION, 0)
        if value is None:
            return
        payload = arena.alloc(VAL_SIZE)
        self.inner.lower(arena, payload, value)
        arena.pointer(slot + OF, payload)

    def lift(self, raw: bytes, off: int) -> Any:
        ptr = _HEADER_PTR.unpack_from(raw, off)[1]
        if not ptr:
            return None
        return self.inner.lift(_string_at(ptr, VAL_SIZE), 0)


class _Result(Codec):
    __slots__ = ("err", "ok")
    kind = K_RESULT

    def __init__(self, wit: _wit.WitType, ok: Codec | None, err: Codec | None) -> None:
        super().__init__(wit, _case_fixed([ok, err]))
        self.ok = ok
        self.err = err

    def measure(self, raw: bytes, off: int, budget: int) -> int:
        if self.fixed is not None:
            return self.fixed
        _, is_ok, ptr = _RESULT.unpack_from(raw, off)
        codec = self.ok if is_ok else self.err
        if codec is None or not ptr:
            return 1
        return 1 + codec.measure(_string_at(ptr, VAL_SIZE), 0, budget)

    def lower(self, arena: Arena, slot: int, value: Any) -> None:
        case, payload_value = result_case(
            value, self.ok is not None, self.err is not None, self.wit
        )
        codec = self.err if case else self.ok
        _RESULT.pack_into(arena.buf, slot, K_RESULT, not case, 0)
        if codec is None:
            return
        payload = arena.alloc(VAL_SIZE)
        try:
            codec.lower(arena, payload, payload_value)
        except Mismatch as e:
            raise e.at((".ok", ".err")[case]) from None
        arena.pointer(slot + OF + 8, payload)

    def lift_parts(self, raw: bytes, off: int) -> tuple[bool, Any]:
        """Lifts a result as ``(is_ok, payload)`` rather than ``Ok``/``Err``."""
        _, is_ok, ptr = _RESULT.unpack_from(raw, off)
        codec = self.ok if is_ok else self.err
        value = codec.lift(_string_at(ptr, VAL_SIZE), 0) if codec is not None and ptr else None
        return bool(is_ok), value

    def lift(self, raw: bytes, off: int) -> Any:
        is_ok, value = self.lift_parts(raw, off)
        return Ok(value) if is_ok else Err(value)


class _Variant(Codec):
    __slots__ = ("_by_name", "_cases", "_choose", "_codecs", "_names")
    kind = K_VARIANT

    def __init__(
        self,
        wit: _wit.TypeDef,
        python_name: str,
        cases: list[tuple[str, type, Codec | None]],
    ) -> None:
        super().__init__(wit, _case_fixed([c[2] for c in cases]))
        self._names = _Names([c[0] for c in cases])
        self._choose = CaseChoice(
            python_name, [c[1] for c in cases], [c[2] is not None for c in cases]
        )
        self._codecs = [c[2] for c in cases]
        self._by_name = {name: (cls, codec) for name, cls, codec in cases}
        self._cases = [c[0] for c in cases]

    def lower(self, arena: Arena, slot: int, value: Any) -> None:
        case, payload_value = self._choose(value)
        size, addr = self._names.entries[case]
        _VARIANT.pack_into(arena.buf, slot, K_VARIANT, size, addr, 0)
        codec = self._codecs[case]
        if codec is not None:
            payload = arena.alloc(VAL_SIZE)
            try:
                codec.lower(arena, payload, payload_value)
            except Mismatch as e:
                raise e.at(".value") from None
            arena.pointer(slot + OF + NAME_SIZE, payload)

    def measure(self, raw: bytes, off: int, budget: int) -> int:
        if self.fixed is not None:
            return self.fixed
        _, size, name_ptr, ptr = _VARIANT.unpack_from(raw, off)
        codec = self._by_name[_string_at(name_ptr, size).decode()][1]
        if codec is None or not ptr:
            return 1
        return 1 + codec.measure(_string_at(ptr, VAL_SIZE), 0, budget)

    def lift(self, raw: bytes, off: int) -> Any:
        _, size, name_ptr, ptr = _VARIANT.unpack_from(raw, off)
        name = _string_at(name_ptr, size).decode()
        cls, codec = self._by_name[name]
        if codec is None:
            return cls()
        return cls(codec.lift(_string_at(ptr, VAL_SIZE), 0))


class _Enum(Codec):
    __slots__ = ("_choose", "_cls", "_from_name", "_names")
    kind = K_ENUM

    def __init__(self, wit: _wit.TypeDef, cls: type[enum.Enum]) -> None:
        super().__init__(wit, 1)
        self._cls = cls
        self._names = _Names([m.value for m in cls])
        self._choose = EnumChoice(cls)
        self._from_name = {m.value: m for m in cls}

    def lower(self, arena: Arena, slot: int, value: Any) -> None:
        size, addr = self._names.entries[self._choose(value)]
        _HEADER_SIZE_PTR.pack_into(arena.buf, slot, K_ENUM, size, addr)

    def lift(self, raw: bytes, off: int) -> Any:
        _, size, ptr = _HEADER_SIZE_PTR.unpack_from(raw, off)
        return self._from_name[_string_at(ptr, size).decode()]


class _Flags(Codec):
    __slots__ = ("_choose", "_cls", "_from_name", "_names")
    kind = K_FLAGS

    def __init__(self, wit: _wit.TypeDef, cls: type[enum.Flag], wit_names: list[str]) -> None:
        super().__init__(wit, 4)
        self._cls = cls
        self._names = _Names(wit_names)
        members = list(cls)
        self._choose = FlagsChoice(cls, wit_names)
        self._from_name = dict(zip(wit_names, members, strict=True))

    def lower(self, arena: Arena, slot: int, value: Any) -> None:
        chosen = self._choose(value)
        n = len(chosen)
        _HEADER_SIZE_PTR.pack_into(arena.buf, slot, K_FLAGS, n, 0)
        arr = arena.alloc(n * NAME_SIZE) if n else 0
        arena.pointer(slot + OF + 8, arr)
        entries = self._names.entries
        for i, index in enumerate(chosen):
            size, addr = entries[index]
            _NAME.pack_into(arena.buf, arr + i * NAME_SIZE, size, addr)

    def lift(self, raw: bytes, off: int) -> Any:
        _, size, ptr = _HEADER_SIZE_PTR.unpack_from(raw, off)
        result = self._cls(0)
        if size:
            arr = _string_at(ptr, size * NAME_SIZE)
            for i in range(size):
                nsize, nptr = _NAME.unpack_from(arr, i * NAME_SIZE)
                result |= self._from_name[_string_at(nptr, nsize).decode()]
        return result


def _sum_fixed(codecs: Sequence[Codec]) -> int | None:
    """The fixed size of a record or tuple of ``codecs``, or ``None``."""
    total = 0
    for c in codecs:
        if c.fixed is None:
            return None
        total += c.fixed
    return total


def _case_fixed(payloads: Sequence[Codec | None]) -> int | None:
    """The fixed size of a variant or result whose cases carry ``payloads``: one
    discriminant byte and the largest payload; ``None`` when any is not fixed."""
    sizes = [0 if c is None else c.fixed for c in payloads]
    if any(size is None for size in sizes):
        return None
    return 1 + max((size or 0 for size in sizes), default=0)


def _measure_all(elem: Codec, ptr: int, n: int, budget: int) -> int:
    """Sums the sizes of the ``n`` values of ``elem`` in a list's array at ``ptr``,
    stopping past ``budget``."""
    total = 0
    measure = elem.measure
    # Read the array in chunks, so that a huge one is never copied whole.
    chunk = (1 << 20) // VAL_SIZE
    sized = isinstance(elem, _String | _Bytes)
    for start in range(0, n, chunk):
        count = min(chunk, n - start)
        arr = _string_at(ptr + start * VAL_SIZE, count * VAL_SIZE)
        if sized:  # strings or byte lists: sum the length fields in one pass
            total += 8 * count + sum(memoryview(arr).cast("Q")[(OF // 8) :: (VAL_SIZE // 8)])
            if total > budget:
                return total
            continue
        for i in range(count):
            total += measure(arr, i * VAL_SIZE, budget - total)
            if total > budget:
                return total
    return total


def _measure_fields(codecs: Sequence[Codec], ptr: int, stride: int, at: int, budget: int) -> int:
    """Sums the sizes of the fields of a record or tuple whose values are at ``ptr``."""
    if not codecs:
        return 0
    arr = _string_at(ptr, len(codecs) * stride)
    total = 0
    for i, c in enumerate(codecs):
        total += c.measure(arr, i * stride + at, budget - total)
        if total > budget:
            break
    return total


_INTS = {
    "s8": (K_S8, "b", 8, True),
    "u8": (K_U8, "B", 8, False),
    "s16": (K_S16, "h", 16, True),
    "u16": (K_U16, "H", 16, False),
    "s32": (K_S32, "i", 32, True),
    "u32": (K_U32, "I", 32, False),
    "s64": (K_S64, "q", 64, True),
    "u64": (K_U64, "Q", 64, False),
}


class HandleScope(Protocol):
    """Where resource handles are lifted and lowered: set by the component backend
    (:func:`handle_scope`) around the conversions of a call or a host function."""

    def adopt(self, cls: type, address: int) -> Any:
        """Returns a new ``cls`` handle owning a copy of the native handle at ``address``."""

    def host_lift(self, codec: HostHandleCodec, address: int) -> Any:
        """Returns the host object that the native handle at ``address`` refers to."""

    def host_lower(self, codec: HostHandleCodec, value: Any) -> int:
        """Returns the address of a native handle for host object ``value``, valid
        until the scope ends.

        Raises:
            Mismatch: ``value`` is not an object of the resource's host class.
        """


_scope = threading.local()


@contextmanager
def handle_scope(scope: object) -> Iterator[None]:
    """Makes ``scope`` the current thread's handle scope while the block runs: a
    :class:`HandleScope` on the component path, a
    :class:`~wasmplug._cabi.CoreHandleScope` on the core-module fast path."""
    previous = getattr(_scope, "current", None)
    _scope.current = scope
    try:
        yield
    finally:
        _scope.current = previous


def swap_scope(scope: object) -> object:
    """Makes ``scope`` the current thread's handle scope and returns the one it
    replaces, to put back afterwards: :func:`handle_scope` without a generator, for
    the fast path's calls."""
    previous = getattr(_scope, "current", None)
    _scope.current = scope
    return previous


def _current_scope(what: str, value: Any = None) -> HandleScope:
    scope: HandleScope | None = getattr(_scope, "current", None)
    if scope is None:
        raise Mismatch(f"{what} only within a call of the plugin", value)
    return scope


class GuestHandleCodec(Codec):
    """``own<r>``/``borrow<r>`` of a resource the plugin exports: a handle object.

    Lowering writes the address of the handle's native value (wasmtime copies it and
    leaves it alone) and records the handle in the arena, so that the caller checks it
    belongs to the plugin's current instance, and closes it after an ``own`` move.
    """

    __slots__ = ("borrow", "cls")
    kind = K_RESOURCE

    def __init__(self, wit: _wit.HandleType, cls: type) -> None:
        super().__init__(wit, 4)
        self.cls: Any = cls
        self.borrow = wit.borrow

    def lower(self, arena: Arena, slot: int, value: Any) -> None:
        if not isinstance(value, self.cls):
            raise Mismatch(f"a {self.cls.__name__} handle ({describe(self.wit)})", value)
        address: int = value._lower_address()
        _HEADER_PTR.pack_into(arena.buf, slot, K_RESOURCE, address)
        arena.handles.append((value, not self.borrow))

    def lift(self, raw: bytes, off: int) -> Any:
        address = _HEADER_PTR.unpack_from(raw, off)[1]
        return _current_scope(f"{self.cls.__name__} handles are made").adopt(self.cls, address)


class HostHandleCodec(Codec):
    """``own<r>``/``borrow<r>`` of a resource the host defines: the host's object,
    kept in the instance's handle table while the guest holds it.

    Attributes:
        type_id: The resource's number among the world's host resources (its
            wasmtime host resource type).
        resource: The WIT resource.
        borrow: Whether this is ``borrow<r>``.
    """

    __slots__ = ("borrow", "resource", "type_id")
    kind = K_RESOURCE

    def __init__(self, wit: _wit.HandleType, type_id: int) -> None:
        super().__init__(wit, 4)
        self.type_id = type_id
        self.resource = wit.resource
        self.borrow = wit.borrow

    def lower(self, arena: Arena, slot: int, value: Any) -> None:
        scope = _current_scope(
            f"no host resource here: a {self.resource.name} is passed to the plugin "
            "by host functions",
            value,
        )
        _HEADER_PTR.pack_into(arena.buf, slot, K_RESOURCE, scope.host_lower(self, value))

    def lift(self, raw: bytes, off: int) -> Any:
        address = _HEADER_PTR.unpack_from(raw, off)[1]
        return _current_scope("host resources are lifted").host_lift(self, address)


HandleCodecs = Callable[[_wit.HandleType], Codec]


def build_codec(
    t: _wit.WitType,
    ns: TypeNamespace,
    cache: dict[int, Codec] | None = None,
    handles: HandleCodecs | None = None,
) -> Codec:
    """Builds (and memoizes per named type) the codec for a WIT type.

    Args:
        t: The type.
        ns: The world's Python classes.
        cache: Codecs of named types already built, by ``id`` of their definition.
        handles: Makes the codec of a resource handle; without it handles are
            unsupported.

    Raises:
        UnsupportedType: the type is or contains something wasmplug cannot pass.
    """
    return _CodecBuilder(ns, {} if cache is None else cache, handles).visit(t)


class _CodecBuilder(ConversionBuilder[Codec]):
    """Builds the codec of a type (:func:`build_codec`), memoizing named types."""

    __slots__ = ()

    def visit_primitive(self, t: _wit.Primitive) -> Codec:
        name = t.name
        if name in _INTS:
            return _Int(t, *_INTS[name])
        if name == "bool":
            return _Bool(t)
        if name in ("f32", "f64"):
            return _Float(t, name == "f32")
        if name == "char":
            return _Char(t)
        if name == "string":
            return _String(t)
        raise UnsupportedType(f"unknown primitive type {name!r}")

    def visit_list(self, t: _wit.ListType) -> Codec:
        elem = _wit.unalias(t.element)
        if isinstance(elem, _wit.Primitive) and elem.name == "u8":
            return _Bytes(t)
        return _List(t, self.visit(t.element))

    def visit_option(self, t: _wit.OptionType) -> Codec:
        return _Option(t, self.visit(t.inner))

    def visit_result(self, t: _wit.ResultType) -> Codec:
        return _Result(
            t,
            self.visit(t.ok) if t.ok is not None else None,
            self.visit(t.err) if t.err is not None else None,
        )

    def visit_tuple(self, t: _wit.TupleType) -> Codec:
        return _Tuple(t, [self.visit(e) for e in t.elements])

    def visit_handle(self, t: _wit.HandleType) -> Codec:
        if self._handles is not None:
            return self._handles(t)
        raise UnsupportedType(
            f"resource handle {describe(t)}: resources are not supported by wasmplug yet"
        )

    def visit_record(self, t: _wit.TypeDef, kind: _wit.RecordKind) -> Codec:
        cls = self._ns.for_typedef(t)
        fields = [(f.name, field_name(f.name), self.visit(f.type)) for f in kind.fields]
        return _Record(t, cls, fields)

    def visit_variant(self, t: _wit.TypeDef, kind: _wit.VariantKind) -> Codec:
        return _Variant(t, *self.variant_cases(t, kind))

    def visit_enum(self, t: _wit.TypeDef, kind: _wit.EnumKind) -> Codec:
        return _Enum(t, self._ns.for_typedef(t))

    def visit_flags(self, t: _wit.TypeDef, kind: _wit.FlagsKind) -> Codec:
        return _Flags(t, self._ns.for_typedef(t), [f.name for f in kind.flags])

    def visit_resource(self, t: _wit.TypeDef, kind: _wit.ResourceKind) -> Codec:
        raise UnsupportedType(f"{describe(t)}: resources are not supported by wasmplug yet")
