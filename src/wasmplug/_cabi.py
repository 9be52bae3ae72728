"""wasmplug's canonical ABI: Python values to and from a core module's linear memory.

The core-module fast path (:mod:`wasmplug._core`) calls the functions that
``wit-bindgen`` exports from a core module and serves the ones it imports. Values
cross as the Component Model's canonical ABI lays them out (``CanonicalABI.md`` in
``WebAssembly/component-model``, "Flattening", "Loading", "Storing"): each WIT type
has a size and an alignment in linear memory and a list of flat core types; a
function's parameters travel flat when they need at most :data:`MAX_FLAT_PARAMS`
core values (else in memory, behind one pointer), its result flat when it needs at
most :data:`MAX_FLAT_RESULTS` (else in memory). Strings and lists live in memory the
guest allocates with its ``cabi_realloc``.

Values are checked by :mod:`wasmplug._checks`, the checks every backend shares, so
both paths accept and refuse the same values with the same messages
(:class:`~wasmplug._checks.Mismatch`); the layouts encode what the checks return. One
:class:`Layout` per WIT type is built when a plugin is loaded (from the same Python
classes the component path uses: :class:`~wasmplug._bindings.TypeNamespace`), so both
backends map the same WIT value to the same Python value.

Lifting trusts nothing from the guest: every pointer and length is checked against the
memory's size, every pointer against its alignment, every discriminant against its
case count, every ``char`` against the Unicode scalar values and every string against
UTF-8; a bad one raises :class:`BadValue`, and no byte outside the guest's memory is
ever read.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Callable, Iterator, Sequence
from operator import attrgetter
from typing import Any, Protocol, cast

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
from ._codec import HostHandleCodec, _current_scope

__all__ = [
    "MAX_FLAT_PARAMS",
    "MAX_FLAT_RESULTS",
    "BadValue",
    "CoreHandleScope",
    "HandleLayouts",
    "Layout",
    "Memory",
    "Signature",
    "layout_of",
]

#: At most this many flat core values of parameters are passed as core parameters
#: (CanonicalABI.md, ``MAX_FLAT_PARAMS``); more go to memory behind one pointer.
MAX_FLAT_PARAMS = 16
#: At most this many flat core values of a result are returned as core results
#: (CanonicalABI.md, ``MAX_FLAT_RESULTS``); more go to memory behind one pointer.
MAX_FLAT_RESULTS = 1

_U32 = struct.Struct("<I")
_PAIR = struct.Struct("<II")


class BadValue(Exception):
    """The guest gave a value that breaks the canonical ABI (a pointer or length
    outside its memory, a misaligned pointer, a bad discriminant, ``char`` or
    UTF-8). ``path`` says where inside the value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = ""

    def at(self, part: str) -> BadValue:
        self.path = part + self.path
        return self

    def __str__(self) -> str:
        return f"{self.reason} (at value{self.path})" if self.path else self.reason


class Memory:
    """A view of one instance's linear memory, for one lowering or lifting.

    ``view`` is a writable ``memoryview`` of the whole memory (no copy); it is valid
    until guest code runs again (a guest call can grow, and so move, the memory), so
    :meth:`alloc` refreshes it after every ``cabi_realloc``.

    Args:
        refresh: Returns the memory's current view.
        realloc: Calls the guest's ``cabi_realloc(0, 0, align, size)`` and returns
            the pointer; ``None`` when the guest exports none (then lowering a string
            or list raises :class:`BadValue`).
    """

    __slots__ = ("_realloc", "_refresh", "view")

    def __init__(
        self,
        refresh: Callable[[], memoryview],
        realloc: Callable[[int, int], int] | None,
    ) -> None:
        self._refresh = refresh
        self._realloc = realloc
        self.view = refresh()

    def alloc(self, align: int, size: int) -> int:
        """Asks the guest for ``size`` bytes aligned to ``align``; returns the pointer,
        checked. A zero size gets a dangling, aligned pointer without a guest call.

        Raises:
            BadValue: the guest exports no ``cabi_realloc``, or it returned a pointer
                that is misaligned or whose block does not fit in its memory.
        """
        if size == 0:
            return align
        if self._realloc is None:
            raise BadValue("the guest exports no cabi_realloc to receive a string or list")
        ptr = self._realloc(align, size)
        view = self.view
        if ptr + size > len(view):
            # The memory may have grown; it never moves (the engine's
            # ``memory_may_move`` is off), so a view is refreshed only when too short.
            self.view = view = self._refresh()
        if ptr % align or ptr + size > len(view) or ptr <= 0:
            raise BadValue(
                f"cabi_realloc returned {ptr:#x} for {size} bytes aligned to {align}, "
                f"outside the guest's {len(view)}-byte memory or misaligned"
            )
        return ptr

    def check(self, ptr: int, size: int, align: int) -> None:
        """Checks that ``size`` bytes at ``ptr`` lie in memory, aligned to ``align``.

        Raises:
            BadValue: they do not.
        """
        if ptr % align:
            raise BadValue(f"pointer {ptr:#x} is not aligned to {align}")
        if ptr + size > len(self.view):
            raise BadValue(
                f"{size} bytes at {ptr:#x} reach past the end of the guest's "
                f"{len(self.view)}-byte memory"
            )


# -- layouts -------------------------------------------------------------------------------


def _align_to(n: int, align: int) -> int:
    return -(-n // align) * align


class Layout:
    """How one WIT type sits in linear memory and in flat core values.

    Attributes:
        wit: The WIT type.
        size: Bytes in memory.
        align: Alignment in memory, bytes.
        flat: The flat core value types (``"i32"``, ``"i64"``, ``"f32"``, ``"f64"``).
    """

    __slots__ = ("align", "dynamic", "fixed", "flat", "size", "wit")

    def __init__(
        self,
        wit: _wit.WitType,
        size: int,
        align: int,
        flat: tuple[str, ...],
        fixed: int | None,
    ) -> None:
        self.wit = wit
        self.size = size
        self.align = align
        self.flat = flat
        #: The measure (:meth:`measure`) of every value, or ``None`` when values hold a
        #: string or list.
        self.fixed = fixed
        #: Whether values point to more memory (hold a string or list).
        self.dynamic = fixed is None

    def measure(self, mem: Memory, ptr: int, budget: int) -> int:
        """The size of the value at ``ptr`` as ``Limits.output_bytes`` counts it, the
        same on every backend: each string's UTF-8 bytes and each list element, 8 more
        per string and list, scalars at their width (``bool`` 1, ``char`` 4), one
        byte per discriminant, 4 per flags value; no padding. Checked
        (:class:`BadValue`); stops early, with a size larger than ``budget``, once it
        passes ``budget``."""
        return self.fixed or 0

    def store(self, mem: Memory, ptr: int, value: Any) -> None:
        """Checks ``value`` and writes it at ``ptr`` (allocating what it points to).

        Raises:
            Mismatch: ``value`` does not fit the type.
            BadValue: the guest's allocator misbehaved.
        """
        raise NotImplementedError

    def load(self, mem: Memory, ptr: int) -> Any:
        """Reads the value at ``ptr`` (checked: :class:`BadValue`)."""
        raise NotImplementedError

    def lower(self, mem: Memory, value: Any, out: list[Any]) -> None:
        """Checks ``value`` and appends its flat core values to ``out``."""
        raise NotImplementedError

    def lift(self, mem: Memory, flat: Iterator[Any]) -> Any:
        """Reads a value from flat core values (checked: :class:`BadValue`)."""
        raise NotImplementedError


class _Int(Layout):
    __slots__ = ("_expected", "_fmt", "_mask", "_signed", "hi", "lo")

    def __init__(self, wit: _wit.WitType, bits: int, signed: bool) -> None:
        flat = ("i64",) if bits == 64 else ("i32",)
        super().__init__(wit, bits // 8, bits // 8, flat, bits // 8)
        code = {8: "b", 16: "h", 32: "i", 64: "q"}[bits]
        self._fmt = struct.Struct("<" + (code if signed else code.upper()))
        self._signed = signed
        self._mask = (1 << bits) - 1
        self.lo, self.hi = int_range(bits, signed)
        self._expected = f"int in [{self.lo}, {self.hi}] ({describe(wit)})"

    def _check(self, value: Any) -> int:
        return check_int(value, self.lo, self.hi, self._expected)

    def store(self, mem: Memory, ptr: int, value: Any) -> None:
        self._fmt.pack_into(mem.view, ptr, self._check(value))

    def load(self, mem: Memory, ptr: int) -> Any:
        return self._fmt.unpack_from(mem.view, ptr)[0]

    def lower(self, mem: Memory, value: Any, out: list[Any]) -> None:
        out.append(self._check(value) & (0xFFFF_FFFF_FFFF_FFFF if self.size == 8 else 0xFFFF_FFFF))

    def lift(self, mem: Memory, flat: Iterator[Any]) -> Any:
        v = next(flat) & self._mask
        if self._signed and v > self.hi:
            v -= self._mask + 1
        return v


class _Bool(Layout):
    __slots__ = ()

    def __init__(self, wit: _wit.WitType) -> None:
        super().__init__(wit, 1, 1, ("i32",), 1)

    def store(self, mem: Memory, ptr: int, value: Any) -> None:
        mem.view[ptr] = check_bool(value)

    def load(self, mem: Memory, ptr: int) -> Any:
        return mem.view[ptr] != 0

    def lower(self, mem: Memory, value: Any, out: list[Any]) -> None:
        out.append(int(check_bool(value)))

    def lift(self, mem: Memory, flat: Iterator[Any]) -> Any:
        return next(flat) != 0


class _Float(Layout):
    __slots__ = ("_fmt",)

    def __init__(self, wit: _wit.WitType, single: bool) -> None:
        width = 4 if single else 8
        super().__init__(wit, width, width, ("f32" if single else "f64",), width)
        self._fmt = struct.Struct("<f" if single else "<d")

    def _check(self, value: Any) -> float:
        return check_float(value, self.wit, self.size == 4)

    def store(self, mem: Memory, ptr: int, value: Any) -> None:
        self._fmt.pack_into(mem.view, ptr, self._check(value))

    def load(self, mem: Memory, ptr: int) -> Any:
        return self._fmt.unpack_from(mem.view, ptr)[0]

    def lower(self, mem: Memory, value: Any, out: list[Any]) -> None:
        out.append(self._check(value))

    def lift(self, mem: Memory, flat: Iterator[Any]) -> Any:
        return float(next(flat))


def _code_char(code: int) -> str:
    if code >= 0x110000 or 0xD800 <= code <= 0xDFFF:
        raise BadValue(f"{code:#x} is not a Unicode scalar value (char)")
    return chr(code)


class _Char(Layout):
    __slots__ = ()

    def __init__(self, wit: _wit.WitType) -> None:
        super().__init__(wit, 4, 4, ("i32",), 4)

    def store(self, mem: Memory, ptr: int, value: Any) -> None:
        _U32.pack_into(mem.view, ptr, char_code(value))

    def load(self, mem: Memory, ptr: int) -> Any:
        return _code_char(_U32.unpack_from(mem.view, ptr)[0])

    def lower(self, mem: Memory, value: Any, out: list[Any]) -> None:
        out.append(char_code(value))

    def lift(self, mem: Memory, flat: Iterator[Any]) -> Any:
        return _code_char(next(flat) & 0xFFFF_FFFF)


class _Span(Layout):
    """A string or list: ``(pointer, length)`` in memory and as flat values."""

    __slots__ = ()

    def __init__(self, wit: _wit.WitType) -> None:
        super().__init__(wit, 8, 4, ("i32", "i32"), None)

    def item_size(self) -> int:
        """Measured bytes per element (1 for a string's bytes)."""
        return 1

    def measure(self, mem: Memory, ptr: int, budget: int) -> int:
        p: int
        n: int
        p, n = _PAIR.unpack_from(mem.view, ptr)
        size = n * self.item_size()
        mem.check(p, size, 1)
        return 8 + size

    def put(self, mem: Memory, value: Any) -> tuple[int, int]:
        """Checks ``value``, copies it into guest memory; returns (pointer, length)."""
        raise NotImplementedError

    def get(self, mem: Memory, ptr: int, length: int) -> Any:
        """Reads the value of ``length`` (elements or bytes) at ``ptr``."""
        raise NotImplementedError

    def store(self, mem: Memory, ptr: int, value: Any) -> None:
        p, n = self.put(mem, value)
        _PAIR.pack_into(mem.view, ptr, p, n)

    def load(self, mem: Memory, ptr: int) -> Any:
        p, n = _PAIR.unpack_from(mem.view, ptr)
        return self.get(mem, p, n)

    def lower(self, mem: Memory, value: Any, out: list[Any]) -> None:
        out.extend(self.put(mem, value))

    def lift(self, mem: Memory, flat: Iterator[Any]) -> Any:
        p = next(flat) & 0xFFFF_FFFF
        n = next(flat) & 0xFFFF_FFFF
        return self.get(mem, p, n)


class _String(_Span):
    __slots__ = ()

    def put(self, mem: Memory, value: Any) -> tuple[int, int]:
        data = utf8(value)
        n = len(data)
        p = mem.alloc(1, n)
        if n:
            mem.view[p : p + n] = data
        return p, n

    def get(self, mem: Memory, ptr: int, length: int) -> Any:
        if not length:
            return ""
        mem.check(ptr, length, 1)
        try:
            return str(mem.view[ptr : ptr + length], "utf-8")
        except UnicodeDecodeError as e:
            raise BadValue(
                f"the string is not valid UTF-8 ({e.reason} at byte {e.start})"
            ) from None


class _Bytes(_Span):
    """``list<u8>`` as ``bytes``: one copy each way."""

    __slots__ = ()

    def put(self, mem: Memory, value: Any) -> tuple[int, int]:
        value = check_bytes(value)
        n = len(value) if not isinstance(value, memoryview) else value.nbytes
        p = mem.alloc(1, n)
        if n:
            mem.view[p : p + n] = value if not isinstance(value, memoryview) else value.cast("B")
        return p, n

    def get(self, mem: Memory, ptr: int, length: int) -> Any:
        if not length:
            return b""
        mem.check(ptr, length, 1)
        return bytes(mem.view[ptr : ptr + length])


class _NumberList(_Span):
    """A list of integers or floats: one ``struct`` call each way."""

    __slots__ = ("elem",)

    def __init__(self, wit: _wit.WitType, elem: _Int | _Float) -> None:
        super().__init__(wit)
        self.elem = elem

    def item_size(self) -> int:
        return self.elem.fixed or 0

    def put(self, mem: Memory, value: Any) -> tuple[int, int]:
        value = check_sequence(value, self.wit)
        elem = self.elem
        n = len(value)
        p = mem.alloc(elem.align, n * elem.size)
        if not n:
            return p, n
        if isinstance(elem, _Int):
            for i, v in enumerate(value):
                if v.__class__ is not int or not elem.lo <= v <= elem.hi:
                    try:
                        elem._check(v)
                    except Mismatch as e:
                        raise e.at(f"[{i}]") from None
            items = value
        else:
            items = []
            for i, v in enumerate(value):
                try:
                    items.append(elem._check(v))
                except Mismatch as e:
                    raise e.at(f"[{i}]") from None
        struct.pack_into(f"<{n}{elem._fmt.format[-1]}", mem.view, p, *items)
        return p, n

    def get(self, mem: Memory, ptr: int, length: int) -> Any:
        elem = self.elem
        if not length:
            return []
        mem.check(ptr, length * elem.size, elem.align)
        return list(struct.unpack_from(f"<{length}{elem._fmt.format[-1]}", mem.view, ptr))


class _List(_Span):
    __slots__ = ("elem",)

    def __init__(self, wit: _wit.WitType, elem: Layout) -> None:
        super().__init__(wit)
        self.elem = elem

    def measure(self, mem: Memory, ptr: int, budget: int) -> int:
        p: int
        n: int
        p, n = _PAIR.unpack_from(mem.view, ptr)
        elem = self.elem
        if elem.fixed is not None:
            return 8 + n * elem.fixed
        total = 8
        mem.check(p, n * elem.size, elem.align)
        for i in range(n):
            total += elem.measure(mem, p + i * elem.size, budget - total)
            if total > budget:
                break
        return total

    def put(self, mem: Memory, value: Any) -> tuple[int, int]:
        value = check_sequence(value, self.wit)
        elem = self.elem
        n = len(value)
        p = mem.alloc(elem.align, n * elem.size)
        size, store = elem.size, elem.store
        for i, item in enumerate(value):
            try:
                store(mem, p + i * size, item)
            except Mismatch as e:
                raise e.at(f"[{i}]") from None
        return p, n

    def get(self, mem: Memory, ptr: int, length: int) -> Any:
        if not length:
            return []
        elem = self.elem
        if length > len(mem.view):  # cheap bound before the multiplication
            raise BadValue(f"a list of {length} elements cannot fit in the guest's memory")
        mem.check(ptr, length * elem.size, elem.align)
        size, load = elem.size, elem.load
        out = []
        for i in range(length):
            try:
                out.append(load(mem, ptr + i * size))
            except BadValue as e:
                raise e.at(f"[{i}]") from None
        return out


class _Fields(Layout):
    """A record or tuple: fields at fixed offsets, flat values concatenated."""

    __slots__ = ("fields", "names", "offsets")

    def __init__(self, wit: _wit.WitType, fields: list[Layout], names: list[str]) -> None:
        offset, align = 0, 1
        offsets = []
        for f in fields:
            offset = _align_to(offset, f.align)
            offsets.append(offset)
            offset += f.size
            align = max(align, f.align)
        super().__init__(
            wit,
            _align_to(offset, align),
            align,
            tuple(t for f in fields for t in f.flat),
            None if any(f.fixed is None for f in fields) else sum(f.fixed or 0 for f in fields),
        )
        self.fields = fields
        self.offsets = offsets
        self.names = names

    def measure(self, mem: Memory, ptr: int, budget: int) -> int:
        if self.fixed is not None:
            return self.fixed
        total = 0
        for f, off in zip(self.fields, self.offsets, strict=True):
            total += f.measure(mem, ptr + off, budget - total)
            if total > budget:
                break
        return total

    def values(self, value: Any) -> Sequence[Any]:
        """The field values of ``value``, checked for shape (not for type)."""
        raise NotImplementedError

    def make(self, values: list[Any]) -> Any:
        raise NotImplementedError

    def store(self, mem: Memory, ptr: int, value: Any) -> None:
        for name, f, off, v in zip(
            self.names, self.fields, self.offsets, self.values(value), strict=True
        ):
            try:
                f.store(mem, ptr + off, v)
            except Mismatch as e:
                raise e.at(name) from None

    def load(self, mem: Memory, ptr: int) -> Any:
        out = []
        for name, f, off in zip(self.names, self.fields, self.offsets, strict=True):
            try:
                out.append(f.load(mem, ptr + off))
            except BadValue as e:
                raise e.at(name) from None
        return self.make(out)

    def lower(self, mem: Memory, value: Any, out: list[Any]) -> None:
        for name, f, v in zip(self.names, self.fields, self.values(value), strict=True):
            try:
                f.lower(mem, v, out)
            except Mismatch as e:
                raise e.at(name) from None

    def lift(self, mem: Memory, flat: Iterator[Any]) -> Any:
        return self.make([f.lift(mem, flat) for f in self.fields])


class _Record(_Fields):
    __slots__ = ("_attrs", "_cls", "_fast_load", "_fast_store", "_get")

    def __init__(self, wit: _wit.TypeDef, cls: type, fields: list[tuple[str, Layout]]) -> None:
        super().__init__(wit, [f[1] for f in fields], [f".{f[0]}" for f in fields])
        self._cls = cls
        self._attrs = attrs_ = [f[0] for f in fields]
        n = len(attrs_)
        self._get: Callable[[Any], Any] = (
            (attrgetter(*attrs_) if n > 1 else (lambda v: (getattr(v, attrs_[0]),)))
            if n
            else (lambda v: ())
        )
        self._fast_store: Callable[..., None] | None = None
        self._fast_load: Callable[..., Any] | None = None
        if n:
            self._fast_store, self._fast_load = _compile_record(self)

    def store(self, mem: Memory, ptr: int, value: Any) -> None:
        if self._fast_store is None:
            super().store(mem, ptr, value)
        else:
            self._fast_store(mem, ptr, value)

    def load(self, mem: Memory, ptr: int) -> Any:
        if self._fast_load is None:
            return super().load(mem, ptr)
        return self._fast_load(mem, ptr)

    def values(self, value: Any) -> Sequence[Any]:
        if value.__class__ is self._cls:
            return self._get(value)  # type: ignore[no-any-return]
        return record_values(value, self.wit, self._cls, self._attrs, self._get)

    def make(self, values: list[Any]) -> Any:
        return self._cls(*values)


_F32_MAX = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]


def _f32_ok(v: float) -> bool:
    """Whether a float fits in f32 without overflow (NaN and infinities do)."""
    return math.isnan(v) or math.isinf(v) or -_F32_MAX <= v <= _F32_MAX


def _option_value(disc: int, payload: Any) -> Any:
    """An ``option``'s value from its discriminant and payload (checked)."""
    if disc == 0:
        return None
    if disc == 1:
        return payload
    raise BadValue(f"discriminant {disc} of an option, which has 2 cases")


def _compile_record(rec: _Record) -> tuple[Callable[..., None], Callable[..., Any]]:
    """Generates a record's ``store`` and ``load`` at load time: one ``struct`` call
    for every scalar field and every (pointer, length) pair, inline checks for the
    scalars, calls for the rest. A value the inline checks do not accept goes to the
    generic :meth:`_Fields.store`, which raises the precise :class:`Mismatch` (or
    converts, e.g. an ``int`` for a ``float`` field), before anything is allocated.

    The layout (CanonicalABI.md, "Storing"/"Loading" of records) is the generic one:
    this only removes per-field Python calls.
    """
    env: dict[str, Any] = {
        "CLS": rec._cls,
        "GET": rec._get,
        "SLOW": super(_Record, rec).store,
        "SLOW_LOAD": super(_Record, rec).load,
        "Mismatch": Mismatch,
        "BadValue": BadValue,
        "code_char": _code_char,
        "char_code": char_code,
        "f32_ok": _f32_ok,
        "opt": _option_value,
    }
    fmt = ["<"]
    at = 0  # bytes covered by fmt so far
    packed: list[str] = []  # expressions packed, in fmt order
    unpacked: list[str] = []  # names unpacked, in fmt order
    checks: list[str] = []
    puts: list[str] = []
    compound: list[tuple[int, int]] = []  # (field index, offset): stored/loaded by call
    after_load: list[str] = []
    n = len(rec.fields)
    for i, (f, off) in enumerate(zip(rec.fields, rec.offsets, strict=True)):
        code = ""
        if isinstance(f, _Int):
            code = f._fmt.format[-1]
            checks.append(f"v{i}.__class__ is int and {f.lo} <= v{i} <= {f.hi}")
            packed.append(f"v{i}")
            unpacked.append(f"r{i}")
            after_load.append(f"r{i}")
        elif isinstance(f, _Float):
            code = f._fmt.format[-1]
            single = f" and f32_ok(v{i})" if f.size == 4 else ""
            checks.append(f"v{i}.__class__ is float{single}")
            packed.append(f"v{i}")
            unpacked.append(f"r{i}")
            after_load.append(f"r{i}")
        elif isinstance(f, _Bool):
            code = "B"
            checks.append(f"(v{i} is True or v{i} is False)")
            packed.append(f"v{i}")
            unpacked.append(f"r{i}")
            after_load.append(f"r{i} != 0")
        elif isinstance(f, _Char):
            code = "I"
            checks.append(
                f"v{i}.__class__ is str and len(v{i}) == 1 and not 0xD800 <= ord(v{i}) <= 0xDFFF"
            )
            packed.append(f"char_code(v{i})")
            unpacked.append(f"r{i}")
            after_load.append(f"code_char(r{i})")
        elif (
            isinstance(f, _Option)
            and isinstance(inner := f.payloads[1], _Int | _Float | _Bool)
            and f._disc_size == 1
        ):
            # option<scalar>: discriminant and payload in the one struct call.
            pad = f.payload_offset - 1
            code = (
                "B"
                + (f"{pad}x" if pad else "")
                + ("B" if isinstance(inner, _Bool) else inner._fmt.format[-1])
            )
            if isinstance(inner, _Int):
                check = f"v{i}.__class__ is int and {inner.lo} <= v{i} <= {inner.hi}"
                zero = "0"
            elif isinstance(inner, _Float):
                single = f" and f32_ok(v{i})" if inner.size == 4 else ""
                check = f"v{i}.__class__ is float{single}"
                zero = "0.0"
            else:
                check = f"(v{i} is True or v{i} is False)"
                zero = "False"
            checks.append(f"(v{i} is None or ({check}))")
            packed += [f"v{i} is not None", f"{zero} if v{i} is None else v{i}"]
            unpacked += [f"d{i}", f"r{i}"]
            after_load.append(
                f"opt(d{i}, r{i} != 0)" if isinstance(inner, _Bool) else f"opt(d{i}, r{i})"
            )
        elif isinstance(f, _Span):
            code = "II"
            env[f"PUT{i}"] = f.put
            env[f"GET{i}"] = f.get
            puts.append(f"p{i}, n{i} = PUT{i}(mem, v{i})")
            packed += [f"p{i}", f"n{i}"]
            unpacked += [f"p{i}", f"n{i}"]
            after_load.append(f"GET{i}(mem, p{i}, n{i})")
        else:
            compound.append((i, off))
            env[f"STORE{i}"] = f.store
            env[f"LOAD{i}"] = f.load
            after_load.append(f"LOAD{i}(mem, ptr + {off})")
            continue
        if off > at:
            fmt.append(f"{off - at}x")
        fmt.append(code)
        at = off + struct.calcsize("<" + code)
    env["BIG"] = struct.Struct("".join(fmt))
    vs = ", ".join(f"v{i}" for i in range(n))
    names = rec.names
    lines = [
        "def store(mem, ptr, value):",
        "    if value.__class__ is not CLS:",
        "        return SLOW(mem, ptr, value)",
        f"    {vs}{',' if n == 1 else ''} = GET(value)",
    ]
    if checks:
        lines.append(f"    if not ({' and '.join(checks)}):")
        lines.append("        return SLOW(mem, ptr, value)")
    if puts or compound:
        lines.append("    step = 0")
        lines.append("    try:")
        for put in puts:
            index = int(put.split(",", 1)[0][1:])
            lines.append(f"        step = {index}")
            lines.append(f"        {put}")
    if packed:
        indent = "        " if puts or compound else "    "
        lines.append(f"{indent}BIG.pack_into(mem.view, ptr, {', '.join(packed)})")
    if puts or compound:
        for i, off in compound:
            lines.append(f"        step = {i}")
            lines.append(f"        STORE{i}(mem, ptr + {off}, v{i})")
        lines.append("    except Mismatch as e:")
        lines.append("        raise e.at(NAMES[step]) from None")
        env["NAMES"] = names
    load_lines = ["def load(mem, ptr):"]
    if unpacked:
        load_lines.append(
            f"    {', '.join(unpacked)}{',' if len(unpacked) == 1 else ''} = "
            "BIG.unpack_from(mem.view, ptr)"
        )
    load_lines.append("    try:")
    load_lines.append(f"        return CLS({', '.join(after_load)})")
    load_lines.append("    except BadValue:")
    load_lines.append("        return SLOW_LOAD(mem, ptr)  # again, to say where")
    source = "\n".join(lines) + "\n\n" + "\n".join(load_lines) + "\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<wasmplug record {describe(rec.wit)}>", "exec"), env, namespace)
    return namespace["store"], namespace["load"]


class _Tuple(_Fields):
    __slots__ = ()

    def __init__(self, wit: _wit.WitType, fields: list[Layout]) -> None:
        super().__init__(wit, fields, [f"[{i}]" for i in range(len(fields))])

    def values(self, value: Any) -> Sequence[Any]:
        return check_tuple(value, len(self.fields), self.wit)

    def make(self, values: list[Any]) -> Any:
        return tuple(values)


def _join(a: str, b: str) -> str:
    if a == b:
        return a
    if {a, b} == {"i32", "f32"}:
        return "i32"
    return "i64"


_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")
_I32 = struct.Struct("<I")
_I64 = struct.Struct("<Q")


def _to_joined(value: Any, have: str, want: str) -> Any:
    """A case's flat value in the variant's joined flat type (CanonicalABI.md,
    "lower_flat_variant")."""
    if have == want:
        return value
    if have == "f32":
        value = _I32.unpack(_F32.pack(value))[0]
    elif have == "f64":
        value = _I64.unpack(_F64.pack(value))[0]
    return value  # an i32 in an i64 slot: zero-extended as is


def _from_joined(value: Any, have: str, want: str) -> Any:
    """A case's flat value back from the variant's joined flat type
    ("lift_flat_variant"): ``want`` is the case's own type."""
    if have == want:
        return value
    if want == "i32":
        return value & 0xFFFF_FFFF
    if want == "f32":
        return _F32.unpack(_I32.pack(value & 0xFFFF_FFFF))[0]
    if want == "f64":
        return _F64.unpack(_I64.pack(value & 0xFFFF_FFFF_FFFF_FFFF))[0]
    return value


class _Cases(Layout):
    """A variant, option, result or enum: a discriminant, then the case's payload at
    a common offset; flat values are the discriminant and the joined payloads."""

    __slots__ = ("_disc", "_disc_size", "payload_offset", "payloads")

    def __init__(self, wit: _wit.WitType, payloads: list[Layout | None]) -> None:
        n = len(payloads)
        disc_size = 1 if n <= 1 << 8 else 2 if n <= 1 << 16 else 4
        align = max([disc_size, *(p.align for p in payloads if p is not None)])
        payload_offset = _align_to(disc_size, max((p.align for p in payloads if p), default=1))
        size = payload_offset + max((p.size for p in payloads if p), default=0)
        flat: list[str] = []
        for p in payloads:
            if p is None:
                continue
            for i, t in enumerate(p.flat):
                if i < len(flat):
                    flat[i] = _join(flat[i], t)
                else:
                    flat.append(t)
        super().__init__(
            wit,
            _align_to(size, align),
            align,
            ("i32", *flat),
            None
            if any(p.fixed is None for p in payloads if p is not None)
            else 1 + max((p.fixed or 0 for p in payloads if p is not None), default=0),
        )
        self.payloads = payloads
        self.payload_offset = payload_offset
        self._disc_size = disc_size
        self._disc = struct.Struct({1: "<B", 2: "<H", 4: "<I"}[disc_size])

    def choose(self, value: Any) -> tuple[int, Any]:
        """Checks ``value``'s case: returns (case index, payload)."""
        raise NotImplementedError

    def make(self, case: int, payload: Any) -> Any:
        raise NotImplementedError

    def case_name(self, case: int) -> str:
        raise NotImplementedError

    def _case(self, disc: int) -> Layout | None:
        if disc >= len(self.payloads):
            raise BadValue(
                f"discriminant {disc} of {describe(self.wit)}, which has {len(self.payloads)} cases"
            )
        return self.payloads[disc]

    def measure(self, mem: Memory, ptr: int, budget: int) -> int:
        if self.fixed is not None:
            return self.fixed
        p = self._case(self._disc.unpack_from(mem.view, ptr)[0])
        if p is None:
            return 1
        return 1 + p.measure(mem, ptr + self.payload_offset, budget - 1)

    def store(self, mem: Memory, ptr: int, value: Any) -> None:
        case, payload = self.choose(value)
        self._disc.pack_into(mem.view, ptr, case)
        p = self.payloads[case]
        if p is not None:
            try:
                p.store(mem, ptr + self.payload_offset, payload)
            except Mismatch as e:
                raise e.at(self.case_name(case)) from None

    def load(self, mem: Memory, ptr: int) -> Any:
        disc = self._disc.unpack_from(mem.view, ptr)[0]
        p = self._case(disc)
        if p is None:
            return self.make(disc, None)
        try:
            return self.make(disc, p.load(mem, ptr + self.payload_offset))
        except BadValue as e:
            raise e.at(self.case_name(disc)) from None

    def lower(self, mem: Memory, value: Any, out: list[Any]) -> None:
        case, payload = self.choose(value)
        out.append(case)
        joined = self.flat[1:]
        p = self.payloads[case]
        if p is not None:
            mine: list[Any] = []
            try:
                p.lower(mem, payload, mine)
            except Mismatch as e:
                raise e.at(self.case_name(case)) from None
            out.extend(
                _to_joined(v, t, joined[i])
                for i, (v, t) in enumerate(zip(mine, p.flat, strict=False))
            )
            rest = len(joined) - len(mine)
        else:
            rest = len(joined)
        out.extend(0.0 if t[0] == "f" else 0 for t in joined[len(joined) - rest :])

    def lift(self, mem: Memory, flat: Iterator[Any]) -> Any:
        disc = next(flat) & 0xFFFF_FFFF
        joined = self.flat[1:]
        values = [next(flat) for _ in joined]
        p = self._case(disc)
        if p is None:
            return self.make(disc, None)
        mine = iter(
            [
                _from_joined(v, joined[i], t)
                for i, (v, t) in enumerate(zip(values, p.flat, strict=False))
            ]
        )
        try:
            return self.make(disc, p.lift(mem, mine))
        except BadValue as e:
            raise e.at(self.case_name(disc)) from None


class _Option(_Cases):
    __slots__ = ()

    def __init__(self, wit: _wit.WitType, inner: Layout) -> None:
        super().__init__(wit, [None, inner])

    def choose(self, value: Any) -> tuple[int, Any]:
        return (0, None) if value is None else (1, value)

    def make(self, case: int, payload: Any) -> Any:
        return payload if case else None

    def case_name(self, case: int) -> str:
        return ""


class _Result(_Cases):
    __slots__ = ()

    def __init__(self, wit: _wit.WitType, ok: Layout | None, err: Layout | None) -> None:
        super().__init__(wit, [ok, err])

    def choose(self, value: Any) -> tuple[int, Any]:
        ok, err = self.payloads
        return result_case(value, ok is not None, err is not None, self.wit)

    def make(self, case: int, payload: Any) -> Any:
        return Err(payload) if case else Ok(payload)

    def parts(self, value: Any) -> tuple[bool, Any]:
        """A lifted result as ``(is_ok, payload)``."""
        return isinstance(value, Ok), value.value

    def case_name(self, case: int) -> str:
        return (".ok", ".err")[case]


class _Variant(_Cases):
    __slots__ = ("_choose", "_classes", "_names")

    def __init__(
        self, wit: _wit.TypeDef, python_name: str, cases: list[tuple[str, type, Layout | None]]
    ) -> None:
        super().__init__(wit, [c[2] for c in cases])
        self._classes = [c[1] for c in cases]
        self._names = [c[0] for c in cases]
        self._choose = CaseChoice(python_name, self._classes, [c[2] is not None for c in cases])

    def choose(self, value: Any) -> tuple[int, Any]:
        return self._choose(value)

    def make(self, case: int, payload: Any) -> Any:
        cls = self._classes[case]
        return cls() if self.payloads[case] is None else cls(payload)

    def case_name(self, case: int) -> str:
        return ".value"


class _Enum(_Cases):
    __slots__ = ("_choose", "_cls", "_members")

    def __init__(self, wit: _wit.TypeDef, cls: type[enum.Enum]) -> None:
        members = list(cls)
        super().__init__(wit, [None] * len(members))
        self._cls = cls
        self._members = members
        self._choose = EnumChoice(cls)

    def choose(self, value: Any) -> tuple[int, Any]:
        return self._choose(value), None

    def make(self, case: int, payload: Any) -> Any:
        return self._members[case]

    def case_name(self, case: int) -> str:
        return ""


class _Flags(Layout):
    __slots__ = ("_bits", "_choose", "_cls", "_fmt", "_from_name", "_members", "_words")

    def __init__(self, wit: _wit.TypeDef, cls: type[enum.Flag], wit_names: list[str]) -> None:
        n = len(wit_names)
        if n <= 8:
            size, fmt = 1, "<B"
        elif n <= 16:
            size, fmt = 2, "<H"
        else:
            size, fmt = 4 * -(-n // 32), f"<{-(-n // 32)}I"
        self._words = max(1, -(-n // 32))
        super().__init__(wit, size, min(size, 4), ("i32",) * self._words, 4)
        self._fmt = struct.Struct(fmt)
        self._cls = cls
        self._members = list(cls)
        self._from_name = dict(zip(wit_names, self._members, strict=True))
        self._choose = FlagsChoice(cls, wit_names)

    def _bits_of(self, value: Any) -> int:
        bits = 0
        for i in self._choose(value):
            bits |= 1 << i
        return bits

    def _value(self, bits: int) -> Any:
        result = self._cls(0)
        for i, m in enumerate(self._members):
            if bits >> i & 1:
                result |= m
        return result

    def _split(self, bits: int) -> list[int]:
        return [bits >> (32 * i) & 0xFFFF_FFFF for i in range(self._words)]

    def store(self, mem: Memory, ptr: int, value: Any) -> None:
        bits = self._bits_of(value)
        if self.size <= 2:
            self._fmt.pack_into(mem.view, ptr, bits)
        else:
            self._fmt.pack_into(mem.view, ptr, *self._split(bits))

    def load(self, mem: Memory, ptr: int) -> Any:
        words = self._fmt.unpack_from(mem.view, ptr)
        return self._value(sum(w << (32 * i) for i, w in enumerate(words)))

    def lower(self, mem: Memory, value: Any, out: list[Any]) -> None:
        out.extend(self._split(self._bits_of(value)))

    def lift(self, mem: Memory, flat: Iterator[Any]) -> Any:
        return self._value(sum((next(flat) & 0xFFFF_FFFF) << (32 * i) for i in range(self._words)))


_INT_BITS = {
    "u8": (8, False),
    "s8": (8, True),
    "u16": (16, False),
    "s16": (16, True),
    "u32": (32, False),
    "s32": (32, True),
    "u64": (64, False),
    "s64": (64, True),
}


def layout_of(
    t: _wit.WitType,
    ns: TypeNamespace,
    cache: dict[int, Layout] | None = None,
    handles: HandleLayouts | None = None,
) -> Layout:
    """Builds (and memoizes per named type) the layout of a WIT type.

    Args:
        t: The type.
        ns: The world's Python classes (shared with the component path).
        cache: Layouts of named types already built, by ``id`` of their definition.
        handles: Makes the layout of a resource handle (:func:`guest_handle` or
            :func:`host_handle`, by the side that defines the resource); ``None``
            refuses handles.

    Raises:
        UnsupportedType: the type is or holds an async type, or a resource handle
            without ``handles`` (or one ``handles`` refuses).
    """
    return _LayoutBuilder(ns, {} if cache is None else cache, handles).visit(t)


#: Makes the layout of a resource handle type.
HandleLayouts = Callable[[_wit.HandleType], "Layout"]


class CoreHandleScope(Protocol):
    """Where the fast path's handle layouts lift and lower: the core backend's scope
    of one call or host function call, made current with
    :func:`wasmplug._codec.swap_scope` (the component path's thread-local scope)."""

    def guest_lower(self, layout: GuestHandle, value: Any) -> int:
        """The flat ``i32`` for handle ``value`` of a resource the plugin exports: a
        new handle in the instance's table for ``own<r>``, its ``rep`` for
        ``borrow<r>`` (the canonical ABI's ``lower_borrow`` when the callee defines
        the resource).

        Raises:
            ArgumentError, StaleHandleError: a handle of another plugin or instance,
                closed, or moved and passed again.
            TableFull: the instance's handle table is full.
        """

    def guest_lift(self, layout: GuestHandle, handle: int) -> Any:
        """A new handle object for the ``own<r>`` the guest gave at ``handle``
        (removed from the instance's table).

        Raises:
            BadValue: ``handle`` is not an ``r`` in the table.
        """

    def host_lower(self, codec: HostHandleCodec, value: Any) -> int:
        """The guest's handle for host object ``value`` (added to the table).

        Raises:
            Mismatch: ``value`` is not an object of the resource's host class.
            TableFull: the instance's handle table is full.
        """

    def host_lift(self, codec: HostHandleCodec, address: int) -> Any:
        """The host object of the guest's handle ``address``.

        Raises:
            BadValue: it is not a handle to that resource in the table.
        """


def _scope(what: str, value: Any = None) -> CoreHandleScope:
    return cast(CoreHandleScope, _current_scope(what, value))


class GuestHandle(Layout):
    """``own<r>``/``borrow<r>`` of a resource the plugin exports (a handle object on
    the host's side, a flat ``i32`` in the guest).

    Attributes:
        cls: The handle class (``types.Buffer``).
        type_id: The resource's type number in the instance's handle table.
        borrow: Whether this is ``borrow<r>``.
    """

    __slots__ = ("borrow", "cls", "type_id")

    def __init__(self, wit: _wit.HandleType, cls: type, type_id: int) -> None:
        super().__init__(wit, 4, 4, ("i32",), 4)
        self.cls: Any = cls
        self.type_id = type_id
        self.borrow = wit.borrow

    def _lower(self, value: Any) -> int:
        if not isinstance(value, self.cls):
            raise Mismatch(f"a {self.cls.__name__} handle ({describe(self.wit)})", value)
        return _scope(f"{self.cls.__name__} handles are passed", value).guest_lower(self, value)

    def store(self, mem: Memory, ptr: int, value: Any) -> None:
        _U32.pack_into(mem.view, ptr, self._lower(value))

    def load(self, mem: Memory, ptr: int) -> Any:
        return self._lift(_U32.unpack_from(mem.view, ptr)[0])

    def lower(self, mem: Memory, value: Any, out: list[Any]) -> None:
        out.append(self._lower(value))

    def lift(self, mem: Memory, flat: Iterator[Any]) -> Any:
        return self._lift(next(flat) & 0xFFFF_FFFF)

    def _lift(self, handle: int) -> Any:
        return _scope(f"{self.cls.__name__} handles are made").guest_lift(self, handle)


class HostHandle(Layout):
    """``own<r>``/``borrow<r>`` of a resource the host defines (the host's object,
    kept in the instance's handle table while the guest holds it).

    Attributes:
        codec: What the handle scope needs of it (the component path's codec: the
            type number, the WIT resource, ``borrow``).
    """

    __slots__ = ("codec",)

    def __init__(self, wit: _wit.HandleType, type_id: int) -> None:
        super().__init__(wit, 4, 4, ("i32",), 4)
        self.codec = HostHandleCodec(wit, type_id)

    def _lower(self, value: Any) -> int:
        scope = _scope(
            f"no host resource here: a {self.codec.resource.name} is passed to the plugin "
            "by host functions",
            value,
        )
        return scope.host_lower(self.codec, value)

    def store(self, mem: Memory, ptr: int, value: Any) -> None:
        _U32.pack_into(mem.view, ptr, self._lower(value))

    def load(self, mem: Memory, ptr: int) -> Any:
        return _scope("host resources are lifted").host_lift(
            self.codec, _U32.unpack_from(mem.view, ptr)[0]
        )

    def lower(self, mem: Memory, value: Any, out: list[Any]) -> None:
        out.append(self._lower(value))

    def lift(self, mem: Memory, flat: Iterator[Any]) -> Any:
        return _scope("host resources are lifted").host_lift(self.codec, next(flat) & 0xFFFF_FFFF)


class _LayoutBuilder(ConversionBuilder[Layout]):
    """Builds the layout of a type (:func:`layout_of`), memoizing named types."""

    __slots__ = ()

    def visit_primitive(self, t: _wit.Primitive) -> Layout:
        name = t.name
        if name in _INT_BITS:
            return _Int(t, *_INT_BITS[name])
        if name == "bool":
            return _Bool(t)
        if name in ("f32", "f64"):
            return _Float(t, name == "f32")
        if name == "char":
            return _Char(t)
        if name == "string":
            return _String(t)
        raise UnsupportedType(f"unknown primitive type {name!r}")

    def visit_list(self, t: _wit.ListType) -> Layout:
        elem = self.visit(t.element)
        if isinstance(elem, _Int) and elem.size == 1 and not elem._signed:
            return _Bytes(t)
        if isinstance(elem, _Int | _Float):
            return _NumberList(t, elem)
        return _List(t, elem)

    def visit_option(self, t: _wit.OptionType) -> Layout:
        return _Option(t, self.visit(t.inner))

    def visit_result(self, t: _wit.ResultType) -> Layout:
        return _Result(
            t,
            self.visit(t.ok) if t.ok is not None else None,
            self.visit(t.err) if t.err is not None else None,
        )

    def visit_tuple(self, t: _wit.TupleType) -> Layout:
        return _Tuple(t, [self.visit(e) for e in t.elements])

    def visit_handle(self, t: _wit.HandleType) -> Layout:
        if self._handles is None:
            raise UnsupportedType(f"resource handle {describe(t)}: no resources here")
        return self._handles(t)

    def visit_record(self, t: _wit.TypeDef, kind: _wit.RecordKind) -> Layout:
        cls = self._ns.for_typedef(t)
        return _Record(t, cls, [(field_name(f.name), self.visit(f.type)) for f in kind.fields])

    def visit_variant(self, t: _wit.TypeDef, kind: _wit.VariantKind) -> Layout:
        return _Variant(t, *self.variant_cases(t, kind))

    def visit_enum(self, t: _wit.TypeDef, kind: _wit.EnumKind) -> Layout:
        return _Enum(t, self._ns.for_typedef(t))

    def visit_flags(self, t: _wit.TypeDef, kind: _wit.FlagsKind) -> Layout:
        return _Flags(t, self._ns.for_typedef(t), [f.name for f in kind.flags])

    def visit_resource(self, t: _wit.TypeDef, kind: _wit.ResourceKind) -> Layout:
        raise UnsupportedType(f"{describe(t)}: a resource is passed by a handle (own or borrow)")


# -- functions -----------------------------------------------------------------------------


class Signature:
    """A WIT function's canonical-ABI calling convention.

    Attributes:
        params: The parameters' layouts.
        result: The result's layout, or ``None``.
        params_flat: The core parameter types an export takes (one ``i32`` pointer
            when the parameters do not fit in :data:`MAX_FLAT_PARAMS`).
        results_flat: The core result types an export returns (one ``i32`` pointer
            when the result does not fit in :data:`MAX_FLAT_RESULTS`).
        params_tuple: The parameters as one tuple layout (for passing in memory).
        import_params_flat: The core parameters of the same function imported by
            the guest (a trailing ``i32`` return pointer when the result does not fit
            in :data:`MAX_FLAT_RESULTS`).
        import_results_flat: The core results of the imported function.
    """

    __slots__ = (
        "import_params_flat",
        "import_results_flat",
        "params",
        "params_flat",
        "params_in_memory",
        "params_tuple",
        "result",
        "result_in_memory",
        "results_flat",
    )

    def __init__(self, params: list[Layout], result: Layout | None) -> None:
        self.params = params
        self.result = result
        self.params_tuple = _Tuple(_wit.TupleType(tuple(p.wit for p in params)), params)
        flat = self.params_tuple.flat
        self.params_in_memory = len(flat) > MAX_FLAT_PARAMS
        self.params_flat: tuple[str, ...] = ("i32",) if self.params_in_memory else flat
        rflat = result.flat if result is not None else ()
        self.result_in_memory = len(rflat) > MAX_FLAT_RESULTS
        self.results_flat: tuple[str, ...] = ("i32",) if self.result_in_memory else rflat
        self.import_params_flat = self.params_flat + (("i32",) if self.result_in_memory else ())
        self.import_results_flat: tuple[str, ...] = () if self.result_in_memory else rflat
