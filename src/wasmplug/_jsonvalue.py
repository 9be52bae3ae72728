"""WIT values as JSON data, and back: the one JSON mapping of wasmplug's values.

Used where typed values cross as JSON: the CLI reads arguments with :func:`from_json`
and prints results with :func:`to_json`, and the Extism backend (``_extism.py``) encodes an export's
arguments with :func:`to_json` and decodes its JSON result with :func:`from_json`.

The mapping (``docs/extism.md`` shows it next to the Rust types that read it):

============================  ==============================================
WIT                           JSON
============================  ==============================================
``bool``, integers, floats    booleans, numbers
``char``, ``string``          strings
``list<u8>``                  an array of numbers (``bytes`` in Python)
``list<T>``, ``tuple<...>``   arrays
``option<T>``                 ``null`` or the value
``result<T, E>``              ``{"Ok": t}`` or ``{"Err": e}`` (as serde writes
                              Rust's ``Result``; read also as ``{"ok": t}``)
``record``                    an object keyed by the Python field names
                              (``dep_delay``)
``variant``                   ``{"case": payload}`` (``{"case": null}`` without
                              one; decoding also takes the bare ``"case"``)
``enum``                      the case name
``flags``                     an array of the names of the flags set
============================  ==============================================
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from typing import Any

import attrs

from . import _wit
from ._bindings import Err, Ok, TypeNamespace, describe, field_name
from ._checks import INT_RANGES, Mismatch, char_code, check_float, check_int

__all__ = ["from_json", "json_reader", "json_writer", "to_json"]


#: Python types whose values are their own JSON (checked first: the common case).
_PLAIN = frozenset({int, str, float, bool, type(None)})


def to_json(value: Any, types: TypeNamespace) -> Any:
    """A Python value of a WIT type (as :meth:`Plugin.call <wasmplug.Plugin.call>`
    takes and returns them) as JSON data, by its Python type: records as objects,
    a variant case as ``{"case": payload}`` (``{"case": null}`` without one), enums
    by case name, flags as the list of those set, bytes as a list of numbers,
    ``Ok``/``Err`` as ``{"Ok": ...}``/``{"Err": ...}`` (serde's ``Result``).

    Args:
        value: The value; a mapping stands for a record (keyed by field name).
        types: The world's Python classes (to know a variant case's WIT name).

    Returns:
        Data :func:`json.dumps` can write.
    """
    cls = type(value)
    if cls in _PLAIN:
        return value
    case = types.variant_case(cls)
    if case is not None:
        return {case: to_json(getattr(value, "value", None), types)}
    if isinstance(value, Ok | Err):
        return {"Ok" if isinstance(value, Ok) else "Err": to_json(value.value, types)}
    if attrs.has(cls):
        return {f.name: to_json(getattr(value, f.name), types) for f in attrs.fields(cls)}
    if isinstance(value, enum.Flag):  # flags: the WIT names of the flags set
        return [str(m.name).lower().replace("_", "-") for m in type(value) if m in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes | bytearray | memoryview):
        return list(bytes(value))
    if isinstance(value, list | tuple):
        return [to_json(v, types) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v, types) for k, v in value.items()}
    return value


def from_json(data: Any, t: _wit.WitType, types: TypeNamespace) -> Any:
    """JSON data (as :func:`json.loads` returns it) as the Python value of WIT type
    ``t``, the value every backend returns for it: records and variant cases as the
    world's ``attrs`` classes, enums and flags as its ``enum`` classes, ``list<u8>``
    as ``bytes``, tuples as tuples, ``result`` as ``Ok``/``Err``. The reverse of
    :func:`to_json`; a result is also taken as ``{"ok": ...}``/``{"err": ...}`` (the
    WIT spelling), a variant case without payload as its bare name.

    Args:
        data: The JSON data.
        t: Its WIT type.
        types: The world's Python classes.

    Returns:
        The Python value.

    Raises:
        Mismatch: ``data`` does not fit ``t``; its :meth:`~Mismatch.describe` says
            where, what was expected and what was found.
    """
    return _FromJson(data, types).visit(t)


#: The keys a result's JSON object may have, and whether each is the ``ok`` case.
_RESULT_CASES = {"Ok": True, "Err": False, "ok": True, "err": False}


class _FromJson(_wit.TypeVisitor[Any]):
    """:func:`from_json` as a walk over the WIT type: ``data`` is the JSON value of
    the type being visited (each step down sets it, and puts it back after)."""

    __slots__ = ("data", "types")

    def __init__(self, data: Any, types: TypeNamespace) -> None:
        self.data = data
        self.types = types

    def at(self, data: Any, t: _wit.WitType, part: str) -> Any:
        """The value of ``data`` of type ``t``, one step (``part``) down."""
        outer = self.data
        self.data = data
        try:
            return self.visit(t)
        except Mismatch as e:
            raise e.at(part) from None
        finally:
            self.data = outer

    def visit_primitive(self, t: _wit.Primitive) -> Any:
        return _primitive(self.data, t)

    def visit_list(self, t: _wit.ListType) -> Any:
        elem = _wit.unalias(t.element)
        items = _expect(self.data, list, f"an array ({describe(t)})")
        if elem == _U8:
            # Whole-list check first (JSON numbers only: no bool, float or str), the
            # element-wise walk only to say which element is wrong.
            if items and set(map(type, items)) == {int}:
                try:
                    return bytes(items)
                except ValueError:
                    pass
            return bytes(self.at(b, _U8, f"[{i}]") for i, b in enumerate(items))
        return [self.at(v, t.element, f"[{i}]") for i, v in enumerate(items)]

    def visit_option(self, t: _wit.OptionType) -> Any:
        return None if self.data is None else self.visit(t.inner)

    def visit_result(self, t: _wit.ResultType) -> Any:
        data = self.data
        shape = f'{{"Ok": ...}} or {{"Err": ...}} ({describe(t)})'
        obj = _expect(data, dict, shape)
        if len(obj) != 1 or next(iter(obj)) not in _RESULT_CASES:
            raise Mismatch(shape, data)
        case, payload = next(iter(obj.items()))
        ok = _RESULT_CASES[case]
        inner = t.ok if ok else t.err
        value = None if inner is None else self.at(payload, inner, f".{case}")
        return Ok(value) if ok else Err(value)

    def visit_tuple(self, t: _wit.TupleType) -> Any:
        data = self.data
        expected = f"an array of {len(t.elements)} ({describe(t)})"
        items = _expect(data, list, expected)
        if len(items) != len(t.elements):
            raise Mismatch(expected, data)
        return tuple(
            self.at(v, e, f"[{i}]") for i, (v, e) in enumerate(zip(items, t.elements, strict=True))
        )

    def visit_handle(self, t: _wit.HandleType) -> Any:
        raise Mismatch(f"a type JSON can carry, not {describe(t)}", self.data)

    def visit_unsupported(self, t: _wit.Unsupported) -> Any:
        raise Mismatch(f"a type JSON can carry, not {describe(t)}", self.data)

    def visit_resource(self, t: _wit.TypeDef, kind: _wit.ResourceKind) -> Any:
        raise Mismatch(f"a type JSON can carry, not {describe(t)}", self.data)

    def visit_alias(self, t: _wit.TypeDef, kind: _wit.AliasKind) -> Any:
        return self.visit(kind.target)

    def visit_record(self, t: _wit.TypeDef, kind: _wit.RecordKind) -> Any:
        obj = _expect(self.data, dict, f"an object ({describe(t)})")
        names = [field_name(f.name) for f in kind.fields]
        if len(obj) != len(names) or not all(n in obj for n in names):
            missing = [n for n in names if n not in obj]
            extra = sorted(set(obj) - set(names))
            raise Mismatch(
                f"an object with keys {names} ({describe(t)}; missing {missing}, "
                f"unexpected {extra})",
                obj,
            )
        values = {
            n: self.at(obj[n], f.type, f".{n}") for n, f in zip(names, kind.fields, strict=True)
        }
        return self.types.for_typedef(t)(**values)

    def visit_variant(self, t: _wit.TypeDef, kind: _wit.VariantKind) -> Any:
        data = self.data
        info = self.types.variant_info(t)
        wit_cases = {c.name: c for c in kind.cases}
        if isinstance(data, str):
            name, payload, given = data, None, False
        elif isinstance(data, dict) and len(data) == 1:
            name, payload = next(iter(data.items()))
            given = True
        else:
            raise Mismatch(f'{{"<case>": payload}} of {describe(t)} ({list(wit_cases)})', data)
        case = wit_cases.get(name)
        if case is None:
            raise Mismatch(f"a case of {describe(t)} ({list(wit_cases)})", data)
        cls = info.cases[name]
        if case.type is None:
            if given and payload is not None:
                raise Mismatch(f"no payload for case {name!r} (null)", payload)
            return cls()
        if not given:
            raise Mismatch(f"a payload for case {name!r}: {{{name!r}: ...}}", data)
        return cls(self.at(payload, case.type, f".{name}"))

    def visit_enum(self, t: _wit.TypeDef, kind: _wit.EnumKind) -> Any:
        data = self.data
        names = [c.name for c in kind.cases]
        if not isinstance(data, str) or data not in names:
            raise Mismatch(f"one of {names} ({describe(t)})", data)
        return self.types.for_typedef(t)(data)

    def visit_flags(self, t: _wit.TypeDef, kind: _wit.FlagsKind) -> Any:
        cls = self.types.for_typedef(t)
        wit_names = [f.name for f in kind.flags]
        items = _expect(self.data, list, f"an array of flag names of {describe(t)} ({wit_names})")
        result = cls(0)
        members = dict(zip(wit_names, cls, strict=True))
        for item in items:
            if item not in members:
                raise Mismatch(f"a flag of {describe(t)} ({wit_names})", item)
            result |= members[item]
        return result


_U8 = _wit.Primitive("u8")


def _primitive(data: Any, t: _wit.Primitive) -> Any:
    name = t.name
    if name in INT_RANGES:
        if isinstance(data, bool):
            raise Mismatch(name, data)
        return check_int(data, *INT_RANGES[name], name)
    if name == "bool":
        return _expect(data, bool, "bool")
    if name in ("f32", "f64"):
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise Mismatch(name, data)
        return check_float(float(data), t, name == "f32")
    if name == "char":
        char_code(data)
        return data
    if name == "string":
        return _expect(data, str, "string")
    raise Mismatch(f"a type JSON can carry, not {name}", data)


def _expect(data: Any, kind: type, expected: str) -> Any:
    if not isinstance(data, kind):
        raise Mismatch(expected, data)
    return data


# ------------------------------------------------------------- per-type readers and writers

#: Compact JSON text (no spaces), non-ASCII characters as they are (the caller encodes
#: the text as UTF-8).
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.JSONDecoder().decode
#: The JSON text of each byte value (bytes are written by table: 4x json.dumps's speed).
_BYTE_TEXT = tuple(str(b) for b in range(256))


def _write_any(value: Any, t: _wit.WitType, types: TypeNamespace) -> str:
    data = to_json(value, types)
    from_json(data, t, types)  # the check: raises Mismatch
    return _dumps(data)


def json_writer(t: _wit.WitType, types: TypeNamespace) -> Callable[[Any], str]:
    """A function from a Python value of WIT type ``t`` to its JSON text (compact,
    non-ASCII characters unescaped): :func:`to_json` and ``json.dumps``, with the
    value checked against ``t`` first. Made once per type; integers, strings and
    ``bytes`` for ``list<u8>`` take a shortcut (the same text and the same checks).

    The returned function raises :class:`~wasmplug._checks.Mismatch` when the value
    does not fit ``t``.
    """
    target = _wit.unalias(t)
    if isinstance(target, _wit.Primitive):
        bounds = INT_RANGES.get(target.name)
        if bounds is not None:
            lo, hi = bounds

            def write_int(value: Any) -> str:
                if type(value) is int and lo <= value <= hi:
                    return str(value)
                return _write_any(value, t, types)

            return write_int
        if target.name == "string":

            def write_str(value: Any) -> str:
                if type(value) is str:
                    return _dumps(value)
                return _write_any(value, t, types)

            return write_str
    if isinstance(target, _wit.ListType) and _wit.unalias(target.element) == _U8:

        def write_bytes(value: Any) -> str:
            if type(value) is bytes or type(value) is bytearray:
                return "[" + ",".join(map(_BYTE_TEXT.__getitem__, value)) + "]"
            return _write_any(value, t, types)

        return write_bytes
    return lambda value: _write_any(value, t, types)


def json_reader(t: _wit.WitType, types: TypeNamespace) -> Callable[[bytes], Any]:
    """A function from JSON text (UTF-8 bytes) to the Python value of WIT type ``t``:
    ``json.loads`` and :func:`from_json`, made once per type; integer and string
    results take a shortcut (the same checks).

    The returned function raises ``ValueError`` when the bytes are not UTF-8 JSON,
    :class:`~wasmplug._checks.Mismatch` when the JSON does not fit ``t``.
    """
    target = _wit.unalias(t)
    if isinstance(target, _wit.Primitive):
        bounds = INT_RANGES.get(target.name)
        if bounds is not None:
            lo, hi = bounds

            def read_int(raw: bytes) -> Any:
                data = _loads(raw.decode())
                if type(data) is int and lo <= data <= hi:
                    return data
                return from_json(data, t, types)

            return read_int
        if target.name == "string":

            def read_str(raw: bytes) -> Any:
                data = _loads(raw.decode())
                return data if type(data) is str else from_json(data, t, types)

            return read_str
    return lambda raw: from_json(_loads(raw.decode()), t, types)
