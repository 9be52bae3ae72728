"""Checking a component's types against the world: does each export and import the
component has match, by structure, the WIT the host wrote? (:func:`compare_types`, a
:class:`wasmplug.wit.TypeVisitor` over the expected type.)"""

from __future__ import annotations

from typing import Any

import wasmtime.component as wc

from . import _wit
from ._bindings import describe

__all__ = ["compare_func", "compare_types"]

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
