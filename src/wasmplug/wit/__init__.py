"""The resolved WIT model, read-only: packages, interfaces, worlds, functions and types.

This is the model wasmplug itself works from (its Python classes, value conversion,
type checks against a plugin and ``wasmplug bindgen`` all read it), published so that
a host can look at a world the way wasmplug does::

    import wasmplug
    from wasmplug import wit

    world = wasmplug.load_world("wit", "tenant").wit      # a wasmplug.wit.World
    resolve = wit.load_wit("wit")                          # every package, deps included
    for name, item in world.exports.items():
        if isinstance(item, wit.Function):
            print(name, [p.type for p in item.params], item.result)

Every object is read-only: the classes are frozen ``attrs`` classes and their mappings
(:attr:`Interface.types`, :attr:`World.exports`, ...) are read-only views, so a model
can be shared between plugins, threads and worlds. Type expressions
(:class:`Primitive`, :class:`ListType`, ...) compare by value; a named type
(:class:`TypeDef`) is compared by identity and is the same object wherever ``use`` or
``include`` brings it.

To compute something over types, subclass :class:`TypeVisitor` (every kind of type)
or :class:`KindVisitor` (named types only) and implement one ``visit_*`` method per
kind; :func:`walk` yields a type and everything it contains, :func:`unalias` follows
``type a = b;`` aliases. See the documentation's WIT page for a worked example.

The file ``host.wit`` in this package's directory is the ``wasmplug:host`` WIT
package of host capabilities that wasmplug serves (copy or link it into a host's
``wit/deps/``).
"""

from .._wit import (
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
    load_wit,
    parse_wit_text,
    resolve_from_json,
    unalias,
    walk,
)

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
    "WitType",
    "World",
    "WorldItem",
    "load_wit",
    "parse_wit_text",
    "resolve_from_json",
    "unalias",
    "walk",
]
