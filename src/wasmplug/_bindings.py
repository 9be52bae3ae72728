"""Python classes for WIT types, built from the WIT model at load time.

The mapping (which the planned static bindings generator is to emit as source):

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
                       :class:`~wasmplug.GuestError`
``record r``           a frozen ``attrs`` class ``R`` with snake_case fields
``variant v``          one frozen ``attrs`` class per case, ``VCase``, each a subclass of
                       a base class ``V``; a case with a payload has a ``value`` field
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
import keyword
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import attrs

from . import _wit

__all__ = ["Err", "Ok", "TypeNamespace", "class_name", "field_name", "member_name"]

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
    """How one variant type maps to Python: its base class and one class per case."""

    base: type
    cases: dict[str, type]  # WIT case name -> case class
    by_class: dict[type, str]  # case class -> WIT case name


class TypeNamespace:
    """The Python classes generated for the named types of a WIT world.

    Classes are reachable as attributes by their Python name (``types.Flight``), by WIT
    name (``types["flight"]``), and by model definition (:meth:`for_typedef`). When two
    interfaces define the same name, the later one is prefixed with its interface name
    (``TypesError`` and ``HostError``); :meth:`for_typedef` is unambiguous.
    """

    def __init__(self) -> None:
        self._by_def: dict[int, type] = {}
        self._defs: dict[int, _wit.TypeDef] = {}
        self._by_name: dict[str, type] = {}
        self._by_wit_name: dict[str, type] = {}
        self._variants: dict[int, VariantInfo] = {}

    # -- building -----------------------------------------------------------------

    def add(self, typedef: _wit.TypeDef) -> type | None:
        """Creates (once) and returns the class for ``typedef``; ``None`` for aliases of
        unnamed types and for resources."""
        key = id(typedef)
        if key in self._by_def:
            return self._by_def[key]
        kind = typedef.kind
        if isinstance(kind, _wit.AliasKind):
            target = kind.target
            return self.add(target) if isinstance(target, _wit.TypeDef) else None
        if isinstance(kind, _wit.ResourceKind):
            return None
        name = self._unique_name(typedef)
        cls: type
        if isinstance(kind, _wit.RecordKind):
            cls = self._make_record(name, typedef, kind)
        elif isinstance(kind, _wit.VariantKind):
            cls = self._make_variant(name, typedef, kind)
        elif isinstance(kind, _wit.EnumKind):
            cls = self._make_enum(name, typedef, kind)
        elif isinstance(kind, _wit.FlagsKind):
            cls = self._make_flags(name, typedef, kind)
        else:  # pragma: no cover - the model has no other kinds
            raise AssertionError(f"unknown type kind {kind!r}")
        self._by_def[key] = cls
        self._defs[key] = typedef
        self._by_name[name] = cls
        self._by_wit_name.setdefault(typedef.name, cls)
        return cls

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
        cls.__wit_type__ = typedef  # type: ignore[attr-defined]
        return cls

    def _make_variant(self, name: str, typedef: _wit.TypeDef, kind: _wit.VariantKind) -> type:
        base = type(
            name,
            (),
            {
                "__slots__": (),
                "__doc__": _doc(
                    typedef,
                    f"WIT variant ``{typedef.name}`` from ``{typedef.owner}``; "
                    f"its cases are the subclasses "
                    + ", ".join(f"``{name}{class_name(c.name)}``" for c in kind.cases)
                    + ".",
                ),
                "__wit_type__": typedef,
            },
        )
        cases: dict[str, type] = {}
        for case in kind.cases:
            case_name = name + class_name(case.name)
            these = {"value": attrs.field()} if case.type is not None else {}
            case_cls = attrs.make_class(case_name, these, bases=(base,), frozen=True, slots=True)
            case_cls.__doc__ = case.docs or f"The ``{case.name}`` case of ``{typedef.name}``."
            case_cls.__wit_case__ = case.name  # type: ignore[attr-defined]
            cases[case.name] = case_cls
            setattr(base, class_name(case.name), case_cls)
        self._variants[id(typedef)] = VariantInfo(
            base=base, cases=cases, by_class={c: n for n, c in cases.items()}
        )
        for case_cls in cases.values():
            self._by_name.setdefault(case_cls.__name__, case_cls)
        return base

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

    def for_typedef(self, typedef: _wit.TypeDef) -> type:
        """Returns the class generated for ``typedef``.

        Raises:
            KeyError: ``typedef`` is not part of this namespace.
        """
        cls = self.add(typedef)
        if cls is None:
            raise KeyError(f"no Python class for WIT type {typedef.name!r}")
        return cls

    def variant_info(self, typedef: _wit.TypeDef) -> VariantInfo:
        """Returns the base and case classes of the variant ``typedef``."""
        self.add(typedef)
        return self._variants[id(typedef)]

    def __getattr__(self, name: str) -> type:
        try:
            return self.__dict__["_by_name"][name]  # type: ignore[no-any-return]
        except KeyError:
            known = ", ".join(sorted(self.__dict__["_by_name"])) or "none"
            raise AttributeError(f"no WIT type maps to {name!r}; known: {known}") from None

    def __getitem__(self, wit_name: str) -> type:
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


def iter_typedefs(t: _wit.WitType | None) -> Iterator[_wit.TypeDef]:
    """Yields every named type that ``t`` refers to, depth first, each once per path."""
    if t is None or isinstance(t, _wit.Primitive):
        return
    if isinstance(t, _wit.ListType):
        yield from iter_typedefs(t.element)
    elif isinstance(t, _wit.OptionType):
        yield from iter_typedefs(t.inner)
    elif isinstance(t, _wit.ResultType):
        yield from iter_typedefs(t.ok)
        yield from iter_typedefs(t.err)
    elif isinstance(t, _wit.TupleType):
        for e in t.elements:
            yield from iter_typedefs(e)
    elif isinstance(t, _wit.HandleType):
        yield t.resource
    elif isinstance(t, _wit.TypeDef):
        yield t
        kind = t.kind
        if isinstance(kind, _wit.RecordKind):
            for f in kind.fields:
                yield from iter_typedefs(f.type)
        elif isinstance(kind, _wit.VariantKind):
            for c in kind.cases:
                yield from iter_typedefs(c.type)
        elif isinstance(kind, _wit.AliasKind):
            yield from iter_typedefs(kind.target)


def _iter_functions(item: _wit.Interface | _wit.Function) -> Iterator[_wit.Function]:
    if isinstance(item, _wit.Function):
        yield item
    else:
        yield from item.functions.values()


def namespace_for_world(world: _wit.World) -> TypeNamespace:
    """Builds the classes for every named type a world's functions and types use.

    Exports come first so that, on a name clash, the host-facing types keep the plain
    names.
    """
    ns = TypeNamespace()
    seen: set[int] = set()

    def visit(t: _wit.WitType | None) -> None:
        for td in iter_typedefs(t):
            if id(td) not in seen:
                seen.add(id(td))
                ns.add(td)

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
    return ns


def describe(t: _wit.WitType | None) -> str:
    """Returns WIT-like text for a type, for error messages: ``option<record flight>``."""
    if t is None:
        return "nothing"
    if isinstance(t, _wit.Primitive):
        return t.name
    if isinstance(t, _wit.ListType):
        return f"list<{describe(t.element)}>"
    if isinstance(t, _wit.OptionType):
        return f"option<{describe(t.inner)}>"
    if isinstance(t, _wit.ResultType):
        ok = describe(t.ok) if t.ok is not None else "_"
        return f"result<{ok}, {describe(t.err)}>" if t.err is not None else f"result<{ok}>"
    if isinstance(t, _wit.TupleType):
        return "tuple<" + ", ".join(describe(e) for e in t.elements) + ">"
    if isinstance(t, _wit.HandleType):
        return f"{'borrow' if t.borrow else 'own'}<{t.resource.name}>"
    if isinstance(t, _wit.Unsupported):
        return t.text
    kind = t.kind
    label = {
        _wit.RecordKind: "record",
        _wit.VariantKind: "variant",
        _wit.EnumKind: "enum",
        _wit.FlagsKind: "flags",
        _wit.ResourceKind: "resource",
    }.get(type(kind))
    if label is None:
        return describe(_wit.unalias(t))
    return f"{label} {t.name}"


def any_value(value: Any) -> str:
    """Short description of a Python value for error messages: ``str 'abc'``."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"
