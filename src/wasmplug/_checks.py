"""The checks of Python values against WIT types, shared by every backend.

Lowering a value is two steps: check it (is it a value of the type? which case,
which flags, what bytes?) and encode it (into wasmtime's component values on the
component path, into guest memory on the fast path, into JSON on the Extism
backend). The checks live here, once, so that every backend accepts the same values
and refuses the rest with the same :class:`Mismatch` message; the encoders take what
a check returns (a normal form: UTF-8 bytes for a string, a case index and payload
for a variant or result, the members set for flags) and assume it is valid.

The record compilers (``_codec._inline``, ``_cabi._compile_record``) generate inline
code for the scalar fields of a record's own class; what they cannot inline falls
back to these functions.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import _wit
from ._bindings import Err, Ok, any_value, describe

__all__ = [
    "INT_RANGES",
    "CaseChoice",
    "EnumChoice",
    "FlagsChoice",
    "Mismatch",
    "char_code",
    "check_bool",
    "check_bytes",
    "check_float",
    "check_int",
    "check_sequence",
    "check_tuple",
    "int_range",
    "record_values",
    "result_case",
    "utf8",
]


class Mismatch(Exception):
    """A Python value does not fit a WIT type. ``path`` grows as the error propagates."""

    def __init__(self, expected: str, found: Any) -> None:
        super().__init__(expected)
        self.expected = expected
        self.found = any_value(found)
        self.path: list[str] = []

    def at(self, part: str) -> Mismatch:
        """Prepends one step (``.field``, ``[3]``) to the path; returns ``self``."""
        self.path.insert(0, part)
        return self

    def describe(self, root: str) -> str:
        """The message: ``root`` and the path, what was expected, what was found."""
        where = root + "".join(self.path)
        return f"{where}: expected {self.expected}, found {self.found}"


# -- scalars -------------------------------------------------------------------------------


def check_bool(value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (not an int).

    Raises:
        Mismatch: it is not a bool.
    """
    if value is not True and value is not False:
        raise Mismatch("bool", value)
    return value


def int_range(bits: int, signed: bool) -> tuple[int, int]:
    """The values of a WIT integer type of ``bits`` bits: ``(lowest, highest)``."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


#: Each WIT integer type's ``(lowest, highest)`` value.
INT_RANGES = {
    f"{'s' if signed else 'u'}{bits}": int_range(bits, signed)
    for bits in (8, 16, 32, 64)
    for signed in (False, True)
}


def check_int(value: Any, lo: int, hi: int, expected: str) -> int:
    """``value`` as an int of ``[lo, hi]`` (never a bool).

    Raises:
        Mismatch: it is not (``expected`` says what was).
    """
    if value.__class__ is not int and (not isinstance(value, int) or isinstance(value, bool)):
        raise Mismatch(expected, value)
    if not lo <= value <= hi:
        raise Mismatch(expected, value)
    return int(value)


_F32 = struct.Struct("<f")


def check_float(value: Any, wit: _wit.WitType, single: bool) -> float:
    """``value`` as a float of ``f32``/``f64`` range (ints accepted, bools not).

    Raises:
        Mismatch: it is not a number, or beyond the type's range.
    """
    if value.__class__ is not float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise Mismatch(f"float ({describe(wit)})", value)
        try:
            value = float(value)
        except OverflowError:  # an int beyond any float, e.g. 10**400
            raise Mismatch(f"a number within {describe(wit)} range", value) from None
    if single:
        try:
            _F32.pack(value)
        except (OverflowError, struct.error):
            raise Mismatch("float within f32 range", value) from None
    return float(value)


def char_code(value: Any) -> int:
    """The code point of a one-character ``str`` that is a Unicode scalar value.

    Raises:
        Mismatch: it is not.
    """
    if not isinstance(value, str) or len(value) != 1:
        raise Mismatch("str of length 1 (char)", value)
    code = ord(value)
    if 0xD800 <= code <= 0xDFFF:
        raise Mismatch("a Unicode scalar value (char), not a surrogate", value)
    return code


# -- strings and lists ---------------------------------------------------------------------


def utf8(value: Any) -> bytes:
    """A ``string`` value as its UTF-8 bytes.

    Raises:
        Mismatch: it is not a ``str``, or holds a lone surrogate (not encodable).
    """
    if not isinstance(value, str):
        raise Mismatch("str", value)
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise Mismatch("str encodable as UTF-8 (no lone surrogates)", value) from None


def check_bytes(value: Any) -> bytes | bytearray | memoryview:
    """``value`` if it can be a ``list<u8>``: ``bytes``, ``bytearray`` or ``memoryview``.

    Raises:
        Mismatch: it is none of them.
    """
    if not isinstance(value, bytes | bytearray | memoryview):
        raise Mismatch("bytes (list<u8>)", value)
    return value


def check_sequence(value: Any, wit: _wit.WitType) -> Sequence[Any]:
    """``value`` if it can be a ``list<T>`` (``wit``): a sequence, but not a string or
    bytes (its elements are checked by the element type's check).

    Raises:
        Mismatch: it is not.
    """
    if not isinstance(value, Sequence) or isinstance(value, str | bytes | bytearray):
        raise Mismatch(f"a sequence ({describe(wit)})", value)
    return value


def check_tuple(value: Any, n: int, wit: _wit.WitType) -> Sequence[Any]:
    """``value`` if it can be a ``tuple<...>`` of ``n`` elements (``wit``).

    Raises:
        Mismatch: it is not a sequence of ``n`` items (strings and bytes are not).
    """
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str | bytes | bytearray)
        or len(value) != n
    ):
        raise Mismatch(f"a sequence of {n} items ({describe(wit)})", value)
    return value


# -- records -------------------------------------------------------------------------------


def record_values(
    value: Any, wit: _wit.WitType, cls: type, attrs: list[str], get: Callable[[Any], Any]
) -> Sequence[Any]:
    """The field values of a record given as something other than its class: a mapping
    by snake_case field name, or any object with those attributes.

    Args:
        value: The value given for the record.
        wit: The record's type (for messages).
        cls: The record's Python class.
        attrs: The Python field names, in order.
        get: Reads the fields of an object, in order (an ``attrgetter``).

    Returns:
        The field values, in order.

    Raises:
        Mismatch: a mapping lacks a field, or an object an attribute.
    """
    if isinstance(value, Mapping):
        try:
            return [value[a] for a in attrs]
        except KeyError:
            missing = [a for a in attrs if a not in value]
            extra = sorted(set(value) - set(attrs))
            hint = f"; unexpected keys {extra}" if extra else ""
            raise Mismatch(
                f"{describe(wit)} with keys {attrs} (missing {missing}{hint})", value
            ) from None
    try:
        return get(value)  # type: ignore[no-any-return]
    except AttributeError:
        missing = [a for a in attrs if not hasattr(value, a)]
        raise Mismatch(
            f"{cls.__name__} (or an object/mapping with {attrs}; missing {missing})", value
        ) from None


# -- cases: results, variants, enums, flags ------------------------------------------------


def result_case(value: Any, has_ok: bool, has_err: bool, wit: _wit.WitType) -> tuple[int, Any]:
    """A ``result`` value as ``(case, payload)``: case 0 for :class:`~wasmplug.Ok`, 1
    for :class:`~wasmplug.Err`.

    Args:
        value: The value.
        has_ok: Whether the ``ok`` case has a payload type.
        has_err: Whether the ``err`` case has one.
        wit: The result type (for messages).

    Raises:
        Mismatch: it is neither ``Ok`` nor ``Err``, or carries a payload (not
            ``None``) for a case without one.
    """
    if isinstance(value, Ok):
        case, has = 0, has_ok
    elif isinstance(value, Err):
        case, has = 1, has_err
    else:
        raise Mismatch(f"wasmplug.Ok or wasmplug.Err ({describe(wit)})", value)
    if not has and value.value is not None:
        raise Mismatch(f"no payload for the {('ok', 'err')[case]} case (value None)", value.value)
    return case, value.value


class CaseChoice:
    """Which case of a variant a value is: one class per case (the world's).

    Args:
        python_name: The variant's name in Python (for messages).
        classes: Each case's class, in WIT order.
        payloads: Whether each case has a payload.
    """

    __slots__ = ("_by_class", "_expected", "_payloads")

    def __init__(self, python_name: str, classes: Sequence[type], payloads: Sequence[bool]):
        self._by_class = {cls: i for i, cls in enumerate(classes)}
        self._payloads = list(payloads)
        self._expected = f"one of {python_name}'s cases ({', '.join(c.__name__ for c in classes)})"

    def __call__(self, value: Any) -> tuple[int, Any]:
        """``value`` as ``(case index, payload)`` (``None`` for a case without one).

        Raises:
            Mismatch: ``value`` is not an instance of one of the case classes.
        """
        case = self._by_class.get(value.__class__)
        if case is None:
            raise Mismatch(self._expected, value)
        return case, (value.value if self._payloads[case] else None)


class EnumChoice:
    """Which case of an enum a value is: a member of the world's ``Enum`` class, or
    its WIT case name.

    Args:
        cls: The enum's class.
    """

    __slots__ = ("_expected", "_index")

    def __init__(self, cls: type[enum.Enum]) -> None:
        self._index: dict[Any, int] = {}
        for i, member in enumerate(cls):
            self._index[member] = i
            self._index[member.value] = i
        self._expected = f"a {cls.__name__} member or one of {[m.value for m in cls]}"

    def __call__(self, value: Any) -> int:
        """The case index of ``value``.

        Raises:
            Mismatch: ``value`` is neither a member nor a case name.
        """
        try:
            return self._index[value]
        except (KeyError, TypeError):
            raise Mismatch(self._expected, value) from None


class FlagsChoice:
    """Which flags a value sets: a value of the world's ``Flag`` class, or a set (list,
    tuple) of WIT flag names.

    Args:
        cls: The flags' class.
        wit_names: The WIT flag names, in order (one per member of ``cls``).
    """

    __slots__ = ("_cls", "_expected", "_from_name", "_members")

    def __init__(self, cls: type[enum.Flag], wit_names: Sequence[str]) -> None:
        self._cls = cls
        self._members = list(cls)
        self._from_name = dict(zip(wit_names, self._members, strict=True))
        self._expected = f"a {cls.__name__} value or a set of {list(self._from_name)}"

    def __call__(self, value: Any) -> list[int]:
        """The indices of the flags ``value`` sets, in declaration order.

        Raises:
            Mismatch: ``value`` is neither a value of the class nor a collection of
                flag names.
        """
        members = self._members
        if isinstance(value, self._cls):
            return [i for i, m in enumerate(members) if m in value]
        names = self._from_name
        if isinstance(value, set | frozenset | list | tuple) and all(v in names for v in value):
            return [i for i, name in enumerate(names) if name in value]
        raise Mismatch(self._expected, value)
