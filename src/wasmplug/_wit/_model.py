"""The typed model of resolved WIT: packages, interfaces, worlds, functions and types.

Everything here is built from the JSON that the official ``wit-parser`` produces (see
:func:`~wasmplug._wit.resolve_from_json`), by :func:`~wasmplug._wit.load_wit`,
:func:`~wasmplug._wit.parse_wit_text` and :func:`~wasmplug.inspect`; nothing in it
refers back to WIT source text.

Type expressions are values (frozen, compared structurally), except :class:`TypeDef`, a
*named* type (record, variant, enum, flags, alias, resource), which is compared by
identity: a type brought into scope by ``use`` is the very same :class:`TypeDef` object
as in the interface that defines it, however long the chain of ``use`` and ``include``.

Resource functions are desugared as the Component Model does: a resource ``blob`` with a
constructor, a method ``read`` and a static function ``merge`` has the functions
``[constructor]blob`` (returning ``own<blob>`` unless a result is written),
``[method]blob.read`` (whose first parameter is ``self: borrow<blob>``) and
``[static]blob.merge``, in :attr:`ResourceKind.methods`.

The model is read-only: every class is frozen and every mapping in it is a read-only
view (a copy of what it was built from), so one model can be shared by worlds,
plugins and threads. It is public as :mod:`wasmplug.wit`. Computations over types are
:class:`TypeVisitor` (or :class:`KindVisitor`) subclasses: their ``visit`` is the one
place that tells kinds of types apart.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeAlias, TypeVar, assert_never

import attrs

from .._exceptions import WitError

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
    "unalias",
    "walk",
]

#: The names of WIT's primitive types.
PRIMITIVE_NAMES = frozenset(
    {
        "bool",
        "s8",
        "s16",
        "s32",
        "s64",
        "u8",
        "u16",
        "u32",
        "u64",
        "f32",
        "f64",
        "char",
        "string",
    }
)


@attrs.frozen
class PackageName:
    """The name of a WIT package, e.g. ``wasmplug:host@0.1.0``.

    Attributes:
        namespace: The namespace, e.g. ``wasmplug``.
        name: The package within the namespace, e.g. ``host``.
        version: The semantic version, e.g. ``0.1.0``, or ``None`` when unversioned.
    """

    namespace: str
    name: str
    version: str | None = None

    def __str__(self) -> str:
        base = f"{self.namespace}:{self.name}"
        return base if self.version is None else f"{base}@{self.version}"

    def qualify(self, item: str) -> str:
        """Returns the qualified name of an interface or world of this package.

        Args:
            item: The interface or world name, e.g. ``log``.

        Returns:
            For example ``wasmplug:host/log@0.1.0``.
        """
        base = f"{self.namespace}:{self.name}/{item}"
        return base if self.version is None else f"{base}@{self.version}"


# --- type expressions -------------------------------------------------------------------


def _check_primitive(_inst: object, _attr: object, value: str) -> None:
    if value not in PRIMITIVE_NAMES:
        raise ValueError(f"not a WIT primitive type: {value!r}")


@attrs.frozen
class Primitive:
    """A primitive type: ``bool``, ``s8`` ... ``u64``, ``f32``, ``f64``, ``char``, ``string``.

    Attributes:
        name: The canonical name (``float32`` in source is ``f32`` here).
    """

    name: str = attrs.field(validator=_check_primitive)


@attrs.frozen
class ListType:
    """``list<T>``.

    Attributes:
        element: The element type.
    """

    element: WitType


@attrs.frozen
class OptionType:
    """``option<T>``.

    Attributes:
        inner: The type of the ``some`` payload.
    """

    inner: WitType


@attrs.frozen
class ResultType:
    """``result<T, E>``, ``result<T>``, ``result<_, E>`` or bare ``result``.

    Attributes:
        ok: The ``ok`` payload type, or ``None`` (written ``_`` or omitted).
        err: The ``err`` payload type, or ``None`` when omitted.
    """

    ok: WitType | None
    err: WitType | None


@attrs.frozen
class TupleType:
    """``tuple<T1, T2, ...>``.

    Attributes:
        elements: The element types, at least one.
    """

    elements: tuple[WitType, ...]


@attrs.frozen
class HandleType:
    """A handle to a resource: ``own<r>`` (also written as the bare name ``r``) or ``borrow<r>``.

    Attributes:
        resource: The resource's :class:`TypeDef` (its kind is :class:`ResourceKind`).
        borrow: ``True`` for ``borrow<r>``, ``False`` for an owned handle.
    """

    resource: TypeDef
    borrow: bool


@attrs.frozen
class Unsupported:
    """A type that WIT has but wasmplug cannot pass at run time yet.

    Loading a package that contains one works; preparing a world whose functions use
    one for calls (:class:`wasmplug.World`) raises :class:`~wasmplug.WitError`.

    Attributes:
        construct: What it is: ``future``, ``stream``, ``error-context``, ``map`` or
            ``fixed-length-list``.
        text: WIT-like text of the type, e.g. ``stream<u8>``.
    """

    construct: str
    text: str


@attrs.frozen(eq=False, repr=False)
class TypeDef:
    """A named type: a record, variant, enum, flags, alias or resource.

    Compared by identity: two ``TypeDef`` objects are the same type exactly when they are
    the same object.

    Attributes:
        name: The name it is defined under, e.g. ``flight``.
        owner: The qualified name of the interface or world that defines it, e.g.
            ``wasmplug:host/types@0.1.0`` (for an interface declared inline in a world,
            its plain import or export name).
        kind: What the type is.
        docs: The ``///`` documentation, or ``""``.
    """

    name: str
    owner: str
    kind: TypeKind
    docs: str = ""

    def __repr__(self) -> str:
        kind = type(self.kind).__name__.removesuffix("Kind").lower()
        return f"<TypeDef {kind} {self.name!r} of {self.owner!r}>"


# --- kinds of named types ---------------------------------------------------------------


@attrs.frozen
class Field:
    """A field of a record.

    Attributes:
        name: The kebab-case field name.
        type: The field's type.
        docs: The ``///`` documentation, or ``""``.
    """

    name: str
    type: WitType
    docs: str = ""


@attrs.frozen
class RecordKind:
    """``record r { ... }``.

    Attributes:
        fields: The fields, in declaration order (at least one: ``wit-parser`` rejects
            an empty record).
    """

    fields: tuple[Field, ...]


@attrs.frozen
class Case:
    """A case of a variant.

    Attributes:
        name: The kebab-case case name.
        type: The payload type, or ``None`` for a case without payload.
        docs: The ``///`` documentation, or ``""``.
    """

    name: str
    type: WitType | None
    docs: str = ""


@attrs.frozen
class VariantKind:
    """``variant v { ... }``.

    Attributes:
        cases: The cases, in declaration order (at least one).
    """

    cases: tuple[Case, ...]


@attrs.frozen
class EnumCase:
    """A case of an enum, or a flag of a flags type.

    Attributes:
        name: The kebab-case name.
        docs: The ``///`` documentation, or ``""``.
    """

    name: str
    docs: str = ""


@attrs.frozen
class EnumKind:
    """``enum e { ... }``.

    Attributes:
        cases: The cases, in declaration order (at least one).
    """

    cases: tuple[EnumCase, ...]


@attrs.frozen
class FlagsKind:
    """``flags f { ... }``.

    Attributes:
        flags: The flags, in declaration order (bit 0 first).
    """

    flags: tuple[EnumCase, ...]


@attrs.frozen
class AliasKind:
    """``type a = t;``: the alias stays its own :class:`TypeDef`; see :func:`unalias`.

    Attributes:
        target: The aliased type.
    """

    target: WitType


@attrs.frozen
class ResourceKind:
    """``resource r;`` or ``resource r { ... }``.

    Attributes:
        methods: The constructor, methods and static functions, desugared (see the module
            documentation): ``[constructor]r``, ``[method]r.name``, ``[static]r.name``.
    """

    methods: tuple[Function, ...] = ()


# --- functions, interfaces, worlds, packages --------------------------------------------


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


def _readonly(items: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only view of a copy of ``items`` (the model cannot be changed in place)."""
    return items if isinstance(items, MappingProxyType) else MappingProxyType(dict(items))


@attrs.frozen
class Param:
    """A named function parameter.

    Attributes:
        name: The kebab-case parameter name.
        type: The parameter's type.
    """

    name: str
    type: WitType


@attrs.frozen
class Function:
    """A function of an interface, a world or a resource.

    Attributes:
        name: The function's name (desugared for resource functions, e.g.
            ``[method]blob.read``).
        params: The parameters, in order.
        result: The result type, or ``None`` when the function returns nothing.
        docs: The ``///`` documentation, or ``""``.
        is_async: Whether it was declared ``async func``.
    """

    name: str
    params: tuple[Param, ...]
    result: WitType | None
    docs: str = ""
    is_async: bool = False


@attrs.frozen(eq=False, repr=False)
class Interface:
    """An interface: named types and functions.

    Attributes:
        name: The interface name, e.g. ``log``; ``None`` for an interface declared inline
            in a world (``import host: interface { ... }``).
        package: The package that defines it (for an inline interface, the world's).
        types: Every type in the interface's scope by its local name, in source order:
            those defined in it and those brought in by ``use`` (the same
            :class:`TypeDef` objects as in their defining interface).
        functions: The functions by name, in source order (resource functions are in
            their resource's :class:`ResourceKind`).
        docs: The ``///`` documentation, or ``""``.
        plain_name: For an inline interface, its plain import or export name; else
            ``None``.
    """

    name: str | None
    package: PackageName | None
    types: Mapping[str, TypeDef] = attrs.field(factory=_empty, converter=_readonly)
    functions: Mapping[str, Function] = attrs.field(factory=_empty, converter=_readonly)
    docs: str = ""
    plain_name: str | None = None

    @property
    def qualified_name(self) -> str:
        """The interface name as a component imports it: ``ns:pkg/name@ver``.

        For an anonymous inline interface, its plain name in the world (e.g. ``host``).
        """
        if self.name is None:
            return self.plain_name or "<anonymous interface>"
        if self.package is None:
            return self.name
        return self.package.qualify(self.name)

    def __repr__(self) -> str:
        return f"<Interface {self.qualified_name!r}>"


@attrs.frozen(eq=False, repr=False)
class World:
    """A world: the imports and exports of a component.

    Keys of :attr:`imports` and :attr:`exports`: an interface referred to by name
    (``import log;`` or ``import wasmplug:host/log@0.1.0;``) is keyed by its qualified
    name (``wasmplug:host/log@0.1.0``); an inline function or interface
    (``export run: func();``, ``import host: interface { ... }``) and a named interface
    under a plain name (``import primary: store;``) are keyed by the plain name.
    Imports and exports copied from ``include``\\d worlds are merged in at the position
    of the ``include``. As ``wit-parser`` elaborates a world, its imports also list the
    interfaces that its items need through ``use`` (e.g. a ``types`` interface that an
    imported or exported interface uses), before the first item that needs them.

    Attributes:
        name: The world name, e.g. ``tenant``.
        package: The package that defines it.
        imports: What the world imports, in source order.
        exports: What the world exports, in source order.
        types: The types in the world's scope: defined in it, brought in by ``use``, and
            those of included worlds.
        docs: The ``///`` documentation, or ``""``.
    """

    name: str
    package: PackageName
    imports: Mapping[str, WorldItem] = attrs.field(factory=_empty, converter=_readonly)
    exports: Mapping[str, WorldItem] = attrs.field(factory=_empty, converter=_readonly)
    types: Mapping[str, TypeDef] = attrs.field(factory=_empty, converter=_readonly)
    docs: str = ""

    @property
    def qualified_name(self) -> str:
        """The world's qualified name, ``ns:pkg/world@ver``."""
        return self.package.qualify(self.name)

    def __repr__(self) -> str:
        return f"<World {self.qualified_name!r}>"


@attrs.frozen(eq=False, repr=False)
class Package:
    """A WIT package: its interfaces and worlds.

    Attributes:
        name: The package name.
        interfaces: The named interfaces by name, in source order (files by name).
        worlds: The worlds by name, in source order (files by name).
        docs: The ``///`` documentation of the ``package`` declaration(s), or ``""``.
    """

    name: PackageName
    interfaces: Mapping[str, Interface] = attrs.field(factory=_empty, converter=_readonly)
    worlds: Mapping[str, World] = attrs.field(factory=_empty, converter=_readonly)
    docs: str = ""

    def __repr__(self) -> str:
        return f"<Package {str(self.name)!r}>"


_QUALIFIED = re.compile(r"^([^:/@]+):([^:/@]+)/([^:/@]+)(?:@(.+))?$")


@attrs.frozen(eq=False, repr=False)
class Resolve:
    """A set of resolved WIT packages: the one loaded, plus its dependencies.

    Attributes:
        packages: Every package by ``str(PackageName)``, e.g. ``wasmplug:host@0.1.0``.
        main: The name of the package that was loaded (the others are its dependencies).
        source_json: The JSON document this model was built from (see
            :func:`~wasmplug._wit.resolve_from_json`): the same WIT always gives the
            same string, so it can be stored and turned back into an equal model.
    """

    packages: Mapping[str, Package] = attrs.field(converter=_readonly)
    main: PackageName
    source_json: str = ""

    @property
    def main_package(self) -> Package:
        """The :class:`Package` that was loaded."""
        return self.packages[str(self.main)]

    def world(self, spec: str | None = None) -> World:
        """Selects a world.

        Args:
            spec: A world of the main package by name (``tenant``), or any world by
                qualified name (``ns:pkg/tenant@1.0.0``; the version may be left out
                when only one version of the package is loaded). ``None`` selects the
                main package's only world.

        Returns:
            The world.

        Raises:
            WitError: No such world, or ``spec`` is ``None`` and the main package does
                not have exactly one world.
        """
        if spec is None:
            worlds = self.main_package.worlds
            if len(worlds) != 1:
                raise _lookup_error(
                    f"package {self.main} has {len(worlds)} worlds, name one of: "
                    + _listing(worlds)
                )
            return next(iter(worlds.values()))
        package, item = self._split(spec, "world")
        try:
            return package.worlds[item]
        except KeyError:
            raise _lookup_error(
                f"no world {item!r} in package {package.name}; worlds: {_listing(package.worlds)}"
            ) from None

    def interface(self, spec: str) -> Interface:
        """Selects a named interface.

        Args:
            spec: An interface of the main package by name (``log``), or any interface
                by qualified name (``wasmplug:host/log@0.1.0``).

        Returns:
            The interface.

        Raises:
            WitError: No such interface.
        """
        package, item = self._split(spec, "interface")
        try:
            return package.interfaces[item]
        except KeyError:
            raise _lookup_error(
                f"no interface {item!r} in package {package.name}; "
                f"interfaces: {_listing(package.interfaces)}"
            ) from None

    def _split(self, spec: str, what: str) -> tuple[Package, str]:
        if ":" not in spec and "/" not in spec and "@" not in spec:
            return self.main_package, spec
        match = _QUALIFIED.match(spec)
        if match is None:
            raise _lookup_error(
                f"not a {what} name: {spec!r} (expected e.g. 'ns:pkg/{what}@1.0.0')"
            )
        namespace, name, item, version = match.groups()
        wanted = PackageName(namespace, name, version)
        package = self.packages.get(str(wanted))
        if package is None and version is None:
            same = [
                p
                for p in self.packages.values()
                if p.name.namespace == namespace and p.name.name == name
            ]
            if len(same) == 1:
                package = same[0]
        if package is None:
            raise _lookup_error(
                f"no package {wanted} is loaded; packages: {_listing(self.packages)}"
            )
        return package, item

    def __repr__(self) -> str:
        return f"<Resolve main={str(self.main)!r} packages={sorted(self.packages)!r}>"


def _listing(names: Mapping[str, object]) -> str:
    return ", ".join(sorted(names)) or "none"


def _lookup_error(reason: str) -> WitError:
    return WitError(reason)


#: What a named type is.
TypeKind: TypeAlias = RecordKind | VariantKind | EnumKind | FlagsKind | AliasKind | ResourceKind
#: A WIT type expression.
WitType: TypeAlias = (
    Primitive | ListType | OptionType | ResultType | TupleType | HandleType | TypeDef | Unsupported
)
#: What a world imports or exports: an interface, or a bare function.
WorldItem: TypeAlias = Interface | Function


def unalias(t: WitType) -> WitType:
    """Follows ``type a = b;`` aliases to the type they stand for.

    Args:
        t: Any type.

    Returns:
        ``t`` itself unless it is a :class:`TypeDef` of kind :class:`AliasKind`; then the
        end of the alias chain (which may be another named type, e.g. a record).

    Raises:
        ValueError: The aliases form a cycle (impossible for a resolved model).
    """
    seen: set[int] = set()
    while isinstance(t, TypeDef) and isinstance(t.kind, AliasKind):
        if id(t) in seen:
            raise ValueError(f"alias cycle through {t.name!r}")
        seen.add(id(t))
        t = t.kind.target
    return t


def walk(t: WitType | None) -> Iterator[WitType]:
    """Yields ``t`` and every type it contains, depth first in declaration order.

    The one traversal of type expressions that the rest of wasmplug filters: a list's
    element, an option's payload, a result's ``ok`` then ``err``, a tuple's elements, a
    handle's resource, a record's fields, a variant's payloads, an alias's target. A
    named type is yielded (and entered) once per walk; a resource's methods are not
    entered.

    Args:
        t: Any type, or ``None`` (nothing is yielded).

    Returns:
        An iterator of type nodes: :class:`TypeDef`, :class:`HandleType`,
        :class:`Unsupported` and the other type expressions.
    """
    seen: set[int] = set()
    stack: list[WitType | None] = [t]
    children = _CHILDREN.visit
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if isinstance(node, TypeDef):
            if id(node) in seen:
                continue
            seen.add(id(node))
        yield node
        stack.extend(reversed(children(node)))


# --- the one dispatch over kinds of types ------------------------------------------------

R = TypeVar("R")


class KindVisitor(abc.ABC, Generic[R]):
    """A computation over named types with one method per kind of :class:`TypeDef`.

    Subclass it and implement every ``visit_*`` method; :meth:`visit_named` picks the
    one for a type's kind. A kind of named type added to WIT means one more abstract
    method here, so a type checker (and instantiation, which raises :class:`TypeError`
    for a subclass that lacks a method) points at every computation to extend.
    Each method receives the :class:`TypeDef` and its kind (already narrowed).
    """

    __slots__ = ()

    def visit_named(self, t: TypeDef) -> R:
        """Calls the ``visit_*`` method for the kind of ``t`` and returns its result.

        Args:
            t: A named type.

        Returns:
            What that method returns.
        """
        kind = t.kind
        match kind:
            case RecordKind():
                return self.visit_record(t, kind)
            case VariantKind():
                return self.visit_variant(t, kind)
            case EnumKind():
                return self.visit_enum(t, kind)
            case FlagsKind():
                return self.visit_flags(t, kind)
            case AliasKind():
                return self.visit_alias(t, kind)
            case ResourceKind():
                return self.visit_resource(t, kind)
            case _:
                assert_never(kind)

    @abc.abstractmethod
    def visit_record(self, t: TypeDef, kind: RecordKind) -> R:
        """``record r { ... }``."""

    @abc.abstractmethod
    def visit_variant(self, t: TypeDef, kind: VariantKind) -> R:
        """``variant v { ... }``."""

    @abc.abstractmethod
    def visit_enum(self, t: TypeDef, kind: EnumKind) -> R:
        """``enum e { ... }``."""

    @abc.abstractmethod
    def visit_flags(self, t: TypeDef, kind: FlagsKind) -> R:
        """``flags f { ... }``."""

    @abc.abstractmethod
    def visit_alias(self, t: TypeDef, kind: AliasKind) -> R:
        """``type a = t;`` (:func:`unalias` follows a chain of them)."""

    @abc.abstractmethod
    def visit_resource(self, t: TypeDef, kind: ResourceKind) -> R:
        """``resource r;`` (the type itself; a handle to it is :meth:`TypeVisitor.visit_handle`)."""


class TypeVisitor(KindVisitor[R]):
    """A computation over WIT types with one method per kind of type.

    The one place where wasmplug tells kinds of types apart: naming, describing,
    comparing, class building, value conversion and code generation are each a
    subclass. Implement every ``visit_*`` method (those of :class:`KindVisitor` for
    named types too); :meth:`visit` picks the one for a type. A method recurses into
    the types a type holds by calling :meth:`visit` on them, so the subclass decides
    the order, what to memoize (e.g. per :class:`TypeDef`, by ``id``) and whether to
    follow aliases. The documentation's WIT page has a worked example.
    """

    __slots__ = ()

    def visit(self, t: WitType) -> R:
        """Calls the ``visit_*`` method for the kind of ``t`` and returns its result.

        Args:
            t: Any type.

        Returns:
            What that method returns.
        """
        match t:
            case Primitive():
                return self.visit_primitive(t)
            case ListType():
                return self.visit_list(t)
            case OptionType():
                return self.visit_option(t)
            case ResultType():
                return self.visit_result(t)
            case TupleType():
                return self.visit_tuple(t)
            case HandleType():
                return self.visit_handle(t)
            case TypeDef():
                return self.visit_named(t)
            case Unsupported():
                return self.visit_unsupported(t)
            case _:
                assert_never(t)

    @abc.abstractmethod
    def visit_primitive(self, t: Primitive) -> R:
        """``bool``, the integers, ``f32``, ``f64``, ``char``, ``string``."""

    @abc.abstractmethod
    def visit_list(self, t: ListType) -> R:
        """``list<T>``."""

    @abc.abstractmethod
    def visit_option(self, t: OptionType) -> R:
        """``option<T>``."""

    @abc.abstractmethod
    def visit_result(self, t: ResultType) -> R:
        """``result<T, E>`` and its shorter forms."""

    @abc.abstractmethod
    def visit_tuple(self, t: TupleType) -> R:
        """``tuple<...>``."""

    @abc.abstractmethod
    def visit_handle(self, t: HandleType) -> R:
        """``own<r>`` or ``borrow<r>``."""

    @abc.abstractmethod
    def visit_unsupported(self, t: Unsupported) -> R:
        """A construct wasmplug cannot run yet (``stream``, ``future``, ...)."""


_Children: TypeAlias = tuple[WitType | None, ...]


class _ChildrenOf(TypeVisitor[_Children]):
    """The types a type holds directly, in declaration order (what :func:`walk` enters)."""

    __slots__ = ()

    def visit_primitive(self, t: Primitive) -> _Children:
        return ()

    def visit_list(self, t: ListType) -> _Children:
        return (t.element,)

    def visit_option(self, t: OptionType) -> _Children:
        return (t.inner,)

    def visit_result(self, t: ResultType) -> _Children:
        return (t.ok, t.err)

    def visit_tuple(self, t: TupleType) -> _Children:
        return t.elements

    def visit_handle(self, t: HandleType) -> _Children:
        return (t.resource,)

    def visit_unsupported(self, t: Unsupported) -> _Children:
        return ()

    def visit_record(self, t: TypeDef, kind: RecordKind) -> _Children:
        return tuple(f.type for f in kind.fields)

    def visit_variant(self, t: TypeDef, kind: VariantKind) -> _Children:
        return tuple(c.type for c in kind.cases)

    def visit_enum(self, t: TypeDef, kind: EnumKind) -> _Children:
        return ()

    def visit_flags(self, t: TypeDef, kind: FlagsKind) -> _Children:
        return ()

    def visit_alias(self, t: TypeDef, kind: AliasKind) -> _Children:
        return (kind.target,)

    def visit_resource(self, t: TypeDef, kind: ResourceKind) -> _Children:
        return ()


_CHILDREN = _ChildrenOf()
