"""WIT, the WebAssembly Component Model's interface language: parsing and the typed model.

:func:`load_wit` reads a package (a ``.wit`` file, or a directory with its ``deps/``)
and :func:`parse_wit_text` reads source text; both return a :class:`Resolve` whose
packages hold :class:`Interface`\\s and :class:`World`\\s of typed :class:`Function`\\s.
Named types are :class:`TypeDef` objects, shared by identity wherever ``use`` or
``include`` brings them.

Parsing is the official ``wit-parser`` crate's, run in a sandboxed WebAssembly module
(see :mod:`._official`); its JSON becomes the model (:func:`resolve_from_json`), so
what is valid WIT, and every error message, is ``wit-parser``'s. Constructs wasmplug
cannot run yet (``future``, ``stream``, ``error-context``, ``map``, fixed-length lists)
load as :class:`Unsupported` types, ``async`` functions with
:attr:`Function.is_async`.
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
    KindVisitor,
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
    TypeVisitor,
    Unsupported,
    VariantKind,
    WitType,
    World,
    WorldItem,
    unalias,
    walk,
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
    "KindVisitor",
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
    "TypeVisitor",
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
    "walk",
]


def _publish() -> None:
    """Makes the model's classes and functions report ``wasmplug.wit``, the public
    module that re-exports them, as their module (in reprs, tracebacks and docs)."""
    namespace = globals()
    for name in __all__:
        obj = namespace[name]
        if name != "WitError" and (isinstance(obj, type) or callable(obj)):
            obj.__module__ = "wasmplug.wit"


_publish()
