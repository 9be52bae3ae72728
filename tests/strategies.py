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
from wasmplug import _wit
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


def values(world: wasmplug.World, t: _wit.WitType | None) -> st.SearchStrategy[Any]:
    """Returns a strategy for the Python values of WIT type ``t`` in ``world``.

    Args:
        world: The world whose classes (``world.types``) the values use.
        t: A WIT type of that world; ``None`` (a missing ``result`` payload) gives
            ``None``.

    Returns:
        The strategy. Options never nest (``option<option<T>>`` has no Python form).
    """
    if t is None:
        return st.none()
    t = _wit.unalias(t)
    if isinstance(t, _wit.Primitive):
        return _primitive(t.name)
    if isinstance(t, _wit.ListType):
        element = _wit.unalias(t.element)
        if isinstance(element, _wit.Primitive) and element.name == "u8":
            return st.binary(max_size=64)
        return st.lists(values(world, t.element), max_size=MAX_LIST)
    if isinstance(t, _wit.OptionType):
        return st.none() | values(world, t.inner)
    if isinstance(t, _wit.ResultType):
        return st.builds(wasmplug.Ok, values(world, t.ok)) | st.builds(
            wasmplug.Err, values(world, t.err)
        )
    if isinstance(t, _wit.TupleType):
        return st.tuples(*(values(world, e) for e in t.elements))
    assert isinstance(t, _wit.TypeDef), t
    kind = t.kind
    types = world.types
    if isinstance(kind, _wit.RecordKind):
        fields = {field_name(f.name): values(world, f.type) for f in kind.fields}
        return st.builds(types.for_typedef(t), **fields)
    if isinstance(kind, _wit.EnumKind):
        return st.sampled_from(list(types.for_typedef(t)))
    if isinstance(kind, _wit.FlagsKind):
        cls = types.for_typedef(t)
        return st.sets(st.sampled_from(list(cls))).map(
            lambda members: functools.reduce(operator.or_, members, cls(0))
        )
    if isinstance(kind, _wit.VariantKind):
        info = types.variant_info(t)
        return st.one_of(
            [
                st.builds(info.cases[c.name], values(world, c.type))
                if c.type is not None
                else st.builds(info.cases[c.name])
                for c in kind.cases
            ]
        )
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
