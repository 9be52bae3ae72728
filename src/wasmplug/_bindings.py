"""Python classes for WIT types, built from the WIT model at load time.

The mapping (which ``wasmplug bindgen`` emits as source, see :mod:`wasmplug._bindgen`):

=====================  =============================================================
WIT                    Python
=====================  =============================================================
``bool``               ``bool``
``s8`` ... ``u64``     ``int`` (range-checked when lowered)
``f32``, ``f64``       ``float`` (an ``int`` is accepted when lowered)
``char``               ``str`` of length 1
``string``             ``str``
``list<u8>``           ``bytes`` (``bytearray``/``memoryview`` accepted when lowered)
``list<T>``            ``list`` (any non-string sequence accepted when lowered)
``tuple<...>``         ``tuple``
``option<T>``          ``None`` or the value
``result<T, E>``       nested: :class:`Ok` / :class:`Err`; as a function's result: the
                       ``ok`` value is returned, the ``err`` value is raised as
                       ``<E>Exception``, a :class:`~wasmplug.GuestError` subclass,
                       for a named type ``E``, else as :class:`~wasmplug.GuestError`
``record r``           a frozen ``attrs`` class ``R`` with snake_case fields
``variant v``          one frozen ``attrs`` class per case, ``VCase``, a case with a
                       payload has a ``value`` field; ``V`` is the union of the cases
``enum e``             an ``enum.Enum`` ``E`` whose members are the UPPER_SNAKE case
                       names, valued by the WIT case names
``flags f``            an ``enum.Flag`` ``F``, one member per flag
``type a = t``         whatever ``t`` maps to
=====================  =============================================================

WIT names are kebab-case; Python names are derived as in wit-bindgen: ``dep-delay``
becomes ``dep_delay``, ``setup-error`` becomes ``SetupError``; a Python keyword gets a
trailing underscore.
"""

from __future__ import annotations

import enum
import functools
import keyword
import operator
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

import attrs

from . import _wit
from ._exceptions import GuestError, WitError
from ._resources import ResourceHandle

__all__ = [
    "ConversionBuilder",
    "Err",
    "Ok",
    "TypeNamespace",
    "UnsupportedType",
    "class_name",
    "field_name",
    "member_name",
]

T = TypeVar("T")
E = TypeVar("E")


@attrs.frozen
class Ok(Generic[T]):
    """The ``ok`` case of a WIT ``result`` nested inside another value.

    Attributes:
        value: The payload (``None`` for ``result<_, E>``).
    """

    value: T


@attrs.frozen
class Err(Generic[E]):
    """The ``err`` case of a WIT ``result`` nested inside another value.

    Attributes:
        value: The payload (``None`` for ``result<T>``).
    """

    value: E


def _words(name: str) -> list[str]:
    return [w for w in name.split("-") if w]


def _safe(name: str) -> str:
    return name + "_" if keyword.iskeyword(name) or keyword.issoftkeyword(name) else name


def class_name(wit_name: str) -> str:
    """Returns the Python class name for a WIT type name: ``setup-error`` -> ``SetupError``."""
    return _safe("".join(w[:1].upper() + w[1:].lower() for w in _words(wit_name)))


@functools.lru_cache(maxsize=4096)
def field_name(wit_name: str) -> str:
    """Returns the Python attribute name for a WIT field or function name: ``dep-delay`` ->
    ``dep_delay``."""
    return _safe("_".join(w.lower() for w in _words(wit_name)))


def member_name(wit_name: str) -> str:
    """Returns the Python enum member name for a WIT case: ``quota-exceeded`` ->
    ``QUOTA_EXCEEDED``."""
    return _safe("_".join(w.upper() for w in _words(wit_name)))


@attrs.frozen
class VariantInfo:
    """How one variant type maps to Python: one class per case and their union.

    Attributes:
        name: The Python name of the variant (of its union alias), e.g. ``Shape``.
        alias: The union of the case classes (the one case class of a single-case
            variant), usable with ``isinstance``.
        cases: The case class per WIT case name, in declaration order.
        by_class: The WIT case name per case class.
    """

    name: str
    alias: Any
    cases: dict[str, type]
    by_class: dict[type, str]


def _union(classes: list[type]) -> Any:
    return functools.reduce(operator.or_, classes)


class TypeNamespace:
    """The Python classes of the named types of a WIT world.

    Classes are reachable as attributes by their Python name (``types.Flight``), by WIT
    name (``types["flight"]``), and by model definition (:meth:`for_typedef`). When two
    interfaces define the same name, the later one is prefixed with its interface name
    (``TypesError`` and ``HostError``); :meth:`for_typedef` is unambiguous.

    The classes are either made at run time (:meth:`add`) or supplied by a module that
    ``wasmplug bindgen`` generated (:meth:`register`); both have the same shape. A
    variant is a union alias of its case classes (``types.Shape`` is
    ``ShapeCircle | ShapeDot``). The exception raised for a function's ``err`` value
    of a named type ``E`` is ``<E>Exception`` (:meth:`error_class`).
    """

    def __init__(self) -> None:
        self._by_def: dict[int, Any] = {}
        self._defs: dict[int, _wit.TypeDef] = {}
        self._names: dict[int, str] = {}
        self._by_name: dict[str, Any] = {}
        self._by_wit_name: dict[str, Any] = {}
        self._variants: dict[int, VariantInfo] = {}
        self._errors: dict[int, type[GuestError]] = {}

    # -- building -----------------------------------------------------------------

    def add(self, typedef: _wit.TypeDef) -> Any:
        """Creates (once) and returns the Python type for ``typedef``.

        Args:
            typedef: A named type of the world.

        Returns:
            The class (for a variant, the union of its case classes); ``None`` for
            aliases of unnamed types and for resources.
        """
        key = id(typedef)
        if key in self._by_def:
            return self._by_def[key]
        return _ClassMaker(self).visit_named(typedef)

    def register(self, typedef: _wit.TypeDef, python_type: Any) -> None:
        """Uses an existing Python type for ``typedef`` instead of making one.

        This is how a module generated by ``wasmplug bindgen`` brings its classes: the
        codecs then lift values into those very classes.

        Args:
            typedef: A record, variant, enum, flags or exported resource type of the
                world, not yet in this namespace.
            python_type: For a record, a frozen ``attrs`` class whose fields are the
                record's fields (snake_case, in order); for an enum, an
                ``enum.Enum`` whose member values are the WIT case names, in order;
                for flags, an ``enum.Flag`` with one member per flag, bit ``i`` for
                the ``i``-th flag; for a variant, the union of its case classes in
                case order (the class itself for one case), each an ``attrs`` class
                with one field ``value`` when the case has a payload and none
                otherwise; for a resource, a :class:`~wasmplug.ResourceHandle`
                subclass. Class names must be the names this namespace gives.

        Raises:
            WitError: ``python_type`` does not have the shape of ``typedef``, or
                ``typedef`` is already in the namespace or cannot be registered
                (an alias, or a resource the world does not export).

        A resource's handle class (a subclass of
        :class:`~wasmplug.ResourceHandle` with the namespace's name for it) is only
        checked for its name and base here; :meth:`add_resource` checks its methods.
        """
        if id(typedef) in self._by_def:
            raise WitError(f"WIT type {typedef.name!r} already has a Python type")
        name = self._unique_name(typedef)
        where = f"WIT {_describe_def(typedef)} of {typedef.owner}"
        _ClassChecker(self, python_type, name, where).visit_named(typedef)
        self._store(typedef, name, python_type)

    def add_resource(
        self,
        typedef: _wit.TypeDef,
        make: Callable[[str], type],
        check: Callable[[type], None] | None = None,
    ) -> type:
        """Adds (once) the handle class of a resource that the world exports.

        Args:
            typedef: A resource type defined in an exported interface.
            make: Makes the class, given its Python name (see
                :func:`~wasmplug._resources.make_handle_class`).
            check: Checks a class that was registered for ``typedef``
                (:meth:`register`) instead of making one, raising
                :class:`~wasmplug.WitError` when it does not fit (see
                :func:`~wasmplug._resources.check_handle_class`).

        Returns:
            The class, reachable as ``types.<Name>`` like any other.

        Raises:
            WitError: a registered class does not pass ``check``.
        """
        key = id(typedef)
        if key not in self._by_def:
            self._store(typedef, (name := self._unique_name(typedef)), make(name))
        elif check is not None:
            check(self._by_def[key])
        return self._by_def[key]  # type: ignore[no-any-return]

    def _store(self, typedef: _wit.TypeDef, name: str, python_type: Any) -> None:
        key = id(typedef)
        self._by_def[key] = python_type
        self._defs[key] = typedef
        self._names[key] = name
        self._by_name[name] = python_type
        self._by_wit_name.setdefault(typedef.name, python_type)

    def register_error(self, typedef: _wit.TypeDef, cls: type[GuestError]) -> None:
        """Uses an existing exception class for ``err`` values of ``typedef``.

        Args:
            typedef: A named type already in this namespace.
            cls: A subclass of :class:`~wasmplug.GuestError` named
                ``<name of typedef>Exception``.

        Raises:
            WitError: ``cls`` is not such a class, or ``typedef`` already has one.
        """
        name = self.name_of(typedef) + "Exception"
        if id(typedef) in self._errors:
            raise WitError(f"WIT type {typedef.name!r} already has an exception class")
        if not (isinstance(cls, type) and issubclass(cls, GuestError)) or cls.__name__ != name:
            raise WitError(
                f"the exception class for {_describe_def(typedef)} must be a "
                f"wasmplug.GuestError subclass named {name}, not {cls!r}"
            )
        self._errors[id(typedef)] = cls
        self._by_name[name] = cls

    def error_class(self, t: _wit.WitType | None) -> type[GuestError]:
        """Returns the exception raised when a function returns ``err`` of type ``t``.

        Args:
            t: The ``err`` type of a function's ``result``, or ``None``.

        Returns:
            For a named type (through aliases) ``E``, the subclass
            ``<E>Exception`` of :class:`~wasmplug.GuestError`, made once; for any
            other type, :class:`~wasmplug.GuestError` itself.
        """
        target = _wit.unalias(t) if t is not None else None
        if not isinstance(target, _wit.TypeDef) or self.add(target) is None:
            return GuestError
        key = id(target)
        cls = self._errors.get(key)
        if cls is None:
            name = self.name_of(target) + "Exception"
            cls = type(
                name,
                (GuestError,),
                {
                    "__doc__": f"Raised when a function returns the ``err`` case with a "
                    f"``{name.removesuffix('Exception')}`` payload (in ``value``).",
                    "__module__": __name__,
                },
            )
            self._errors[key] = cls
            self._by_name[name] = cls
        return cls

    def name_of(self, typedef: _wit.TypeDef) -> str:
        """Returns the Python name of a named type of this namespace (of its union alias
        for a variant).

        Raises:
            KeyError: ``typedef`` is an alias of an unnamed type or a resource.
        """
        target = _wit.unalias(typedef)
        if not isinstance(target, _wit.TypeDef) or self.add(target) is None:
            raise KeyError(f"no Python class for WIT type {typedef.name!r}")
        return self._names[id(target)]

    def _unique_name(self, typedef: _wit.TypeDef) -> str:
        name = class_name(typedef.name)
        if name not in self._by_name:
            return name
        owner = typedef.owner.split("/")[-1].split("@")[0]
        prefixed = class_name(owner) + name
        n = 2
        candidate = prefixed
        while candidate in self._by_name:
            candidate = f"{prefixed}{n}"
            n += 1
        return candidate

    def _make_record(self, name: str, typedef: _wit.TypeDef, kind: _wit.RecordKind) -> type:
        these = {field_name(f.name): attrs.field() for f in kind.fields}
        cls = attrs.make_class(name, these, frozen=True, slots=True)
        cls.__doc__ = _doc(typedef, f"WIT record ``{typedef.name}`` from ``{typedef.owner}``.")
        return cls

    def _make_variant(self, name: str, typedef: _wit.TypeDef, kind: _wit.VariantKind) -> Any:
        classes: list[type] = []
        for case in kind.cases:
            these = {"value": attrs.field()} if case.type is not None else {}
            case_cls = attrs.make_class(
                name + class_name(case.name), these, frozen=True, slots=True
            )
            case_cls.__doc__ = case.docs or f"The ``{case.name}`` case of ``{typedef.name}``."
            classes.append(case_cls)
        self._add_variant(name, typedef, kind, classes)
        return _union(classes)

    def _add_variant(
        self, name: str, typedef: _wit.TypeDef, kind: _wit.VariantKind, classes: list[type]
    ) -> None:
        cases = {case.name: cls for case, cls in zip(kind.cases, classes, strict=True)}
        self._variants[id(typedef)] = VariantInfo(
            name=name,
            alias=_union(classes),
            cases=cases,
            by_class={c: n for n, c in cases.items()},
        )
        for case_cls in classes:
            self._by_name.setdefault(case_cls.__name__, case_cls)

    def _make_enum(self, name: str, typedef: _wit.TypeDef, kind: _wit.EnumKind) -> type:
        cls = enum.Enum(name, [(member_name(c.name), c.name) for c in kind.cases])  # type: ignore[misc]
        cls.__doc__ = _doc(typedef, f"WIT enum ``{typedef.name}`` from ``{typedef.owner}``.")
        return cls

    def _make_flags(self, name: str, typedef: _wit.TypeDef, kind: _wit.FlagsKind) -> type:
        members = [(member_name(f.name), 1 << i) for i, f in enumerate(kind.flags)]
        cls = enum.Flag(name, members)  # type: ignore[misc]
        cls.__doc__ = _doc(typedef, f"WIT flags ``{typedef.name}`` from ``{typedef.owner}``.")
        return cls

    # -- lookup ---------------------------------------------------------------------

    def for_typedef(self, typedef: _wit.TypeDef) -> Any:
        """Returns the class for ``typedef`` (for a variant, the union of its case
        classes).

        Raises:
            KeyError: ``typedef`` is not part of this namespace.
        """
        cls = self.add(typedef)
        if cls is None:
            raise KeyError(f"no Python class for WIT type {typedef.name!r}")
        return cls

    def variant_info(self, typedef: _wit.TypeDef) -> VariantInfo:
        """Returns the name, union alias and case classes of the variant ``typedef``."""
        self.add(typedef)
        return self._variants[id(typedef)]

    def variant_case(self, cls: type) -> str | None:
        """The WIT case name of a variant case class of this namespace
        (``ShapeRect`` -> ``"rect"``), or ``None`` for any other class."""
        for info in self._variants.values():
            case = info.by_class.get(cls)
            if case is not None:
                return case
        return None

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_by_name"][name]
        except KeyError:
            known = ", ".join(sorted(self.__dict__["_by_name"])) or "none"
            raise AttributeError(f"no WIT type maps to {name!r}; known: {known}") from None

    def __getitem__(self, wit_name: str) -> Any:
        try:
            return self._by_wit_name[wit_name]
        except KeyError:
            known = ", ".join(sorted(self._by_wit_name)) or "none"
            raise KeyError(f"no WIT type named {wit_name!r}; known: {known}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._by_name))

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self._by_name]

    def __repr__(self) -> str:
        return f"<TypeNamespace {', '.join(sorted(self._by_name))}>"


def _doc(typedef: _wit.TypeDef, fallback: str) -> str:
    return typedef.docs or fallback


class _ClassMaker(_wit.KindVisitor[Any]):
    """Makes and stores the Python type of a named type (:meth:`TypeNamespace.add`)."""

    __slots__ = ("_ns",)

    def __init__(self, ns: TypeNamespace) -> None:
        self._ns = ns

    def _made(self, t: _wit.TypeDef, make: Callable[[str], Any]) -> Any:
        name = self._ns._unique_name(t)
        made = make(name)
        self._ns._store(t, name, made)
        return made

    def visit_record(self, t: _wit.TypeDef, kind: _wit.RecordKind) -> Any:
        return self._made(t, lambda name: self._ns._make_record(name, t, kind))

    def visit_variant(self, t: _wit.TypeDef, kind: _wit.VariantKind) -> Any:
        return self._made(t, lambda name: self._ns._make_variant(name, t, kind))

    def visit_enum(self, t: _wit.TypeDef, kind: _wit.EnumKind) -> Any:
        return self._made(t, lambda name: self._ns._make_enum(name, t, kind))

    def visit_flags(self, t: _wit.TypeDef, kind: _wit.FlagsKind) -> Any:
        return self._made(t, lambda name: self._ns._make_flags(name, t, kind))

    def visit_alias(self, t: _wit.TypeDef, kind: _wit.AliasKind) -> Any:
        target = kind.target
        return self._ns.add(target) if isinstance(target, _wit.TypeDef) else None

    def visit_resource(self, t: _wit.TypeDef, kind: _wit.ResourceKind) -> Any:
        return None


class _ClassChecker(_wit.KindVisitor[None]):
    """Checks that a given Python type has the shape of a named type
    (:meth:`TypeNamespace.register`), raising :class:`WitError` when it does not."""

    __slots__ = ("_name", "_ns", "_python_type", "_where")

    def __init__(self, ns: TypeNamespace, python_type: Any, name: str, where: str) -> None:
        self._ns = ns
        self._python_type = python_type
        self._name = name
        self._where = where

    def visit_record(self, t: _wit.TypeDef, kind: _wit.RecordKind) -> None:
        fields = [field_name(f.name) for f in kind.fields]
        _check_attrs_class(self._python_type, self._name, fields, self._where)

    def visit_enum(self, t: _wit.TypeDef, kind: _wit.EnumKind) -> None:
        cls, name, where = self._python_type, self._name, self._where
        _check_class(cls, name, where)
        if not issubclass(cls, enum.Enum) or issubclass(cls, enum.Flag):
            raise WitError(f"{where}: {name} must be an enum.Enum")
        values = [m.value for m in cls]
        wanted = [c.name for c in kind.cases]
        if values != wanted:
            raise WitError(f"{where}: {name} has member values {values}, expected {wanted}")

    def visit_flags(self, t: _wit.TypeDef, kind: _wit.FlagsKind) -> None:
        cls, name, where = self._python_type, self._name, self._where
        _check_class(cls, name, where)
        if not issubclass(cls, enum.Flag):
            raise WitError(f"{where}: {name} must be an enum.Flag")
        members = [(m.name, m.value) for m in cls]
        wanted = [(member_name(f.name), 1 << i) for i, f in enumerate(kind.flags)]
        if members != wanted:
            raise WitError(f"{where}: {name} has members {members}, expected {wanted}")

    def visit_variant(self, t: _wit.TypeDef, kind: _wit.VariantKind) -> None:
        name, where = self._name, self._where
        classes = list(typing.get_args(self._python_type)) or [self._python_type]
        if len(classes) != len(kind.cases):
            raise WitError(
                f"{where}: {len(classes)} case class(es) given for {len(kind.cases)} cases"
            )
        for case, cls in zip(kind.cases, classes, strict=True):
            fields = ["value"] if case.type is not None else []
            _check_attrs_class(cls, name + class_name(case.name), fields, where)
        self._ns._add_variant(name, t, kind, classes)

    def visit_resource(self, t: _wit.TypeDef, kind: _wit.ResourceKind) -> None:
        _check_class(self._python_type, self._name, self._where)
        if not issubclass(self._python_type, ResourceHandle):
            raise WitError(
                f"{self._where}: {self._name} must be a wasmplug.ResourceHandle subclass"
            )

    def visit_alias(self, t: _wit.TypeDef, kind: _wit.AliasKind) -> None:
        raise WitError(
            f"{self._where}: only records, variants, enums, flags and resources can be registered"
        )


def _describe_def(typedef: _wit.TypeDef) -> str:
    return describe(typedef)


def _check_class(cls: Any, name: str, where: str) -> None:
    if not isinstance(cls, type):
        raise WitError(f"{where}: expected a class named {name}, got {cls!r}")
    if cls.__name__ != name:
        raise WitError(f"{where}: the class must be named {name}, not {cls.__name__}")


def _check_attrs_class(cls: Any, name: str, fields: list[str], where: str) -> None:
    _check_class(cls, name, where)
    if not attrs.has(cls):
        raise WitError(f"{where}: {name} must be an attrs class")
    found = [f.name for f in attrs.fields(cls)]
    if found != fields:
        raise WitError(f"{where}: {name} has fields {found}, expected {fields}")


def iter_typedefs(t: _wit.WitType | None) -> Iterator[_wit.TypeDef]:
    """Yields every named type that ``t`` is or refers to, depth first, each once (a
    handle's resource included)."""
    return (node for node in _wit.walk(t) if isinstance(node, _wit.TypeDef))


def _iter_functions(item: _wit.Interface | _wit.Function) -> Iterator[_wit.Function]:
    if isinstance(item, _wit.Function):
        yield item
    else:
        yield from item.functions.values()


def world_typedefs(world: _wit.World) -> list[_wit.TypeDef]:
    """Returns every named type a world's functions and types use, each once, in the
    order the namespace names them.

    Exports come first so that, on a name clash, the host-facing types keep the plain
    names.
    """
    found: dict[int, _wit.TypeDef] = {}

    def visit(t: _wit.WitType | None) -> None:
        for td in iter_typedefs(t):
            found.setdefault(id(td), td)

    for items in (world.exports, world.imports):
        for item in items.values():
            for func in _iter_functions(item):
                for p in func.params:
                    visit(p.type)
                visit(func.result)
            if isinstance(item, _wit.Interface):
                for td in item.types.values():
                    visit(td)
    for td in world.types.values():
        visit(td)
    return list(found.values())


def namespace_for_world(
    world: _wit.World, provided: Mapping[tuple[str, str], Any] | None = None
) -> TypeNamespace:
    """Builds the Python types for every named type of a world (see
    :func:`world_typedefs`).

    Args:
        world: The world.
        provided: Existing Python types to use (:meth:`TypeNamespace.register`), by
            ``(owner, WIT name)`` of their type definition; the others are made.

    Returns:
        The namespace.

    Raises:
        WitError: a provided type does not fit, or names no type of the world.
    """
    ns = TypeNamespace()
    remaining = dict(provided or {})
    for td in world_typedefs(world):
        key = (td.owner, td.name)
        if key in remaining:
            ns.register(td, remaining.pop(key))
        else:
            ns.add(td)
    if remaining:
        raise WitError(
            f"world {world.qualified_name} has no types "
            + ", ".join(f"{name!r} of {owner}" for owner, name in sorted(remaining))
        )
    return ns


def describe(t: _wit.WitType | None) -> str:
    """Returns WIT-like text for a type, for error messages: ``option<record flight>``."""
    return "nothing" if t is None else _DESCRIBE.visit(t)


class _Describer(_wit.TypeVisitor[str]):
    """WIT-like text of a type (:func:`describe`)."""

    __slots__ = ()

    def visit_primitive(self, t: _wit.Primitive) -> str:
        return t.name

    def visit_list(self, t: _wit.ListType) -> str:
        return f"list<{self.visit(t.element)}>"

    def visit_option(self, t: _wit.OptionType) -> str:
        return f"option<{self.visit(t.inner)}>"

    def visit_result(self, t: _wit.ResultType) -> str:
        ok = self.visit(t.ok) if t.ok is not None else "_"
        return f"result<{ok}, {self.visit(t.err)}>" if t.err is not None else f"result<{ok}>"

    def visit_tuple(self, t: _wit.TupleType) -> str:
        return "tuple<" + ", ".join(self.visit(e) for e in t.elements) + ">"

    def visit_handle(self, t: _wit.HandleType) -> str:
        return f"{'borrow' if t.borrow else 'own'}<{t.resource.name}>"

    def visit_unsupported(self, t: _wit.Unsupported) -> str:
        return t.text

    def visit_record(self, t: _wit.TypeDef, kind: _wit.RecordKind) -> str:
        return f"record {t.name}"

    def visit_variant(self, t: _wit.TypeDef, kind: _wit.VariantKind) -> str:
        return f"variant {t.name}"

    def visit_enum(self, t: _wit.TypeDef, kind: _wit.EnumKind) -> str:
        return f"enum {t.name}"

    def visit_flags(self, t: _wit.TypeDef, kind: _wit.FlagsKind) -> str:
        return f"flags {t.name}"

    def visit_alias(self, t: _wit.TypeDef, kind: _wit.AliasKind) -> str:
        return self.visit(_wit.unalias(t))

    def visit_resource(self, t: _wit.TypeDef, kind: _wit.ResourceKind) -> str:
        return f"resource {t.name}"


_DESCRIBE = _Describer()


def any_value(value: Any) -> str:
    """Short description of a Python value for error messages: ``str 'abc'``."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


R = TypeVar("R")


class UnsupportedType(Exception):
    """A WIT type wasmplug cannot pass across the boundary yet (resources, async)."""


class ConversionBuilder(_wit.TypeVisitor[R]):
    """The base of a backend's builder of per-type conversions (the component path's
    codecs, the fast path's layouts): a visitor of the WIT model that knows the world's
    Python classes (``ns``), memoizes what it built for each named type (by ``id``, in
    ``cache``, which callers may share across calls) and asks ``handles`` for what a
    resource handle becomes (``None``: the backend passes no handles here).
    """

    __slots__ = ("_cache", "_handles", "_ns")

    def __init__(
        self,
        ns: TypeNamespace,
        cache: dict[int, R],
        handles: Callable[[_wit.HandleType], R] | None,
    ) -> None:
        self._ns = ns
        self._cache = cache
        self._handles = handles

    def visit_named(self, t: _wit.TypeDef) -> R:
        key = id(t)
        built = self._cache.get(key)
        if built is None:
            built = self._cache[key] = super().visit_named(t)
        return built

    def visit_alias(self, t: _wit.TypeDef, kind: _wit.AliasKind) -> R:
        return self.visit(kind.target)

    def visit_unsupported(self, t: _wit.Unsupported) -> R:
        raise UnsupportedType(f"{t.text}: {t.construct} is not supported by wasmplug yet")

    def variant_cases(
        self, t: _wit.TypeDef, kind: _wit.VariantKind
    ) -> tuple[str, list[tuple[str, type, R | None]]]:
        """A variant's Python name and, per case in WIT order, its WIT name, its case
        class and what was built for its payload (``None`` without one)."""
        info = self._ns.variant_info(t)
        cases = [
            (c.name, info.cases[c.name], self.visit(c.type) if c.type is not None else None)
            for c in kind.cases
        ]
        return info.name, cases
