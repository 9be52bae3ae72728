"""Hypothesis strategies for Python values of WIT types, in one place.

:func:`values` derives a strategy from a WIT type of a :class:`wasmplug.World`, so it
draws instances of that world's own classes: the runtime-made ones of a world from
``load_world``, or a generated module's when the world is the module's ``WORLD``.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

from hypothesis import strategies as st

import wasmplug
from wasmplug import wit
from wasmplug._bindings import field_name

#: Lists are kept short: the values are nested, and each example is a plugin call.
MAX_LIST = 4

_INT_BITS = {
    "s8": (8, True),
    "u8": (8, False),
    "s16": (16, True),
    "u16": (16, False),
    "s32": (32, True),
    "u32": (32, False),
    "s64": (64, True),
    "u64": (64, False),
}


def _ints(name: str) -> st.SearchStrategy[int]:
    bits, signed = _INT_BITS[name]
    if signed:
        return st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return st.integers(0, (1 << bits) - 1)


def _primitive(name: str) -> st.SearchStrategy[Any]:
    if name in _INT_BITS:
        return _ints(name)
    if name == "bool":
        return st.booleans()
    if name == "f32":
        # NaN is never equal to itself; every other f32 survives the round trip exactly.
        return st.floats(width=32, allow_nan=False)
    if name == "f64":
        return st.floats(allow_nan=False)
    if name == "char":
        return st.characters(exclude_categories=["Cs"])  # Unicode scalar values
    assert name == "string"
    return st.text(max_size=20)


def values(world: wasmplug.World, t: wit.WitType | None) -> st.SearchStrategy[Any]:
    """Returns a strategy for the Python values of WIT type ``t`` in ``world``.

    Args:
        world: The world whose classes (``world.types``) the values use.
        t: A WIT type of that world; ``None`` (a missing ``result`` payload) gives
            ``None``.

    Returns:
        The strategy. Options never nest (``option<option<T>>`` has no Python form).
    """
    return st.none() if t is None else _Values(world).visit(t)


class _Values(wit.TypeVisitor[st.SearchStrategy[Any]]):
    """The strategy of each kind of type (:func:`values`)."""

    def __init__(self, world: wasmplug.World) -> None:
        self.world = world
        self.types = world.types

    def visit_primitive(self, t: wit.Primitive) -> st.SearchStrategy[Any]:
        return _primitive(t.name)

    def visit_list(self, t: wit.ListType) -> st.SearchStrategy[Any]:
        element = wit.unalias(t.element)
        if isinstance(element, wit.Primitive) and element.name == "u8":
            return st.binary(max_size=64)
        return st.lists(self.visit(t.element), max_size=MAX_LIST)

    def visit_option(self, t: wit.OptionType) -> st.SearchStrategy[Any]:
        return st.none() | self.visit(t.inner)

    def visit_result(self, t: wit.ResultType) -> st.SearchStrategy[Any]:
        ok, err = values(self.world, t.ok), values(self.world, t.err)
        return st.builds(wasmplug.Ok, ok) | st.builds(wasmplug.Err, err)

    def visit_tuple(self, t: wit.TupleType) -> st.SearchStrategy[Any]:
        return st.tuples(*(self.visit(e) for e in t.elements))

    def visit_handle(self, t: wit.HandleType) -> st.SearchStrategy[Any]:
        raise AssertionError(f"no strategy for {t!r}: handles need a live plugin")

    def visit_unsupported(self, t: wit.Unsupported) -> st.SearchStrategy[Any]:
        raise AssertionError(f"no strategy for {t!r}")

    def visit_alias(self, t: wit.TypeDef, kind: wit.AliasKind) -> st.SearchStrategy[Any]:
        return self.visit(kind.target)

    def visit_record(self, t: wit.TypeDef, kind: wit.RecordKind) -> st.SearchStrategy[Any]:
        fields = {field_name(f.name): self.visit(f.type) for f in kind.fields}
        return st.builds(self.types.for_typedef(t), **fields)

    def visit_enum(self, t: wit.TypeDef, kind: wit.EnumKind) -> st.SearchStrategy[Any]:
        return st.sampled_from(list(self.types.for_typedef(t)))

    def visit_flags(self, t: wit.TypeDef, kind: wit.FlagsKind) -> st.SearchStrategy[Any]:
        cls = self.types.for_typedef(t)
        return st.sets(st.sampled_from(list(cls))).map(
            lambda members: functools.reduce(operator.or_, members, cls(0))
        )

    def visit_variant(self, t: wit.TypeDef, kind: wit.VariantKind) -> st.SearchStrategy[Any]:
        info = self.types.variant_info(t)
        return st.one_of(
            [
                st.builds(info.cases[c.name], self.visit(c.type))
                if c.type is not None
                else st.builds(info.cases[c.name])
                for c in kind.cases
            ]
        )

    def visit_resource(self, t: wit.TypeDef, kind: wit.ResourceKind) -> st.SearchStrategy[Any]:
        raise AssertionError(f"no strategy for {t!r}")


def arguments(world: wasmplug.World, function: str) -> st.SearchStrategy[tuple[Any, ...]]:
    """Returns a strategy for the argument tuples of an export of ``world``.

    Args:
        world: The world.
        function: The export's call name (``"echo"``, ``"geometry.area"``).

    Returns:
        Tuples with one value per WIT parameter.
    """
    wit = world.exports[function].wit
    return st.tuples(*(values(world, p.type) for p in wit.params))
