"""WIT, the WebAssembly Component Model's interface language: parser, resolver and model.

:func:`load_wit` reads a package (a ``.wit`` file, or a directory with its ``deps/``)
and :func:`parse_wit_text` reads source text; both return a :class:`Resolve` whose
packages hold :class:`Interface`\\s and :class:`World`\\s of typed :class:`Function`\\s.
Named types are :class:`TypeDef` objects, shared by identity wherever ``use`` or
``include`` brings them.

Not supported (reported as a :class:`~wasmplug.WitError` at the place it is written):
``map``, ``future``, ``stream`` and fixed-length ``list<T, N>`` types, and nested
namespaces or packages in names (``a:b:c/d``). Gates (``@since``, ``@unstable``,
``@deprecated``) and ``@external-id`` are parsed and ignored: every gated item is kept.
A world's :attr:`World.imports` lists what the world declares (and what its includes
declare), not the interfaces it needs implicitly because a ``use`` refers to them; those
are reachable through :attr:`TypeDef.owner`. The rules on which of an imported or
exported interface a ``use`` in a world refers to are not checked.
"""

from .._exceptions import WitError
from ._json import resolve_from_json
from ._model import (
    PRIMITIVE_NAMES,
    AliasKind,
    Case,
    EnumCase,
    EnumKind,
    Field,
    FlagsKind,
    Function,
    HandleType,
    Interface,
    ListType,
    OptionType,
    Package,
    PackageName,
    Param,
    Primitive,
    RecordKind,
    Resolve,
    ResourceKind,
    ResultType,
    TupleType,
    TypeDef,
    TypeKind,
    Unsupported,
    VariantKind,
    WitType,
    World,
    WorldItem,
    unalias,
)
from ._official import load_wit, parse_wit_text

__all__ = [
    "PRIMITIVE_NAMES",
    "AliasKind",
    "Case",
    "EnumCase",
    "EnumKind",
    "Field",
    "FlagsKind",
    "Function",
    "HandleType",
    "Interface",
    "ListType",
    "OptionType",
    "Package",
    "PackageName",
    "Param",
    "Primitive",
    "RecordKind",
    "Resolve",
    "ResourceKind",
    "ResultType",
    "TupleType",
    "TypeDef",
    "TypeKind",
    "Unsupported",
    "VariantKind",
    "WitError",
    "WitType",
    "World",
    "WorldItem",
    "load_wit",
    "parse_wit_text",
    "resolve_from_json",
    "unalias",
]
