"""Parser from WIT tokens to an unresolved syntax tree.

The tree keeps every name as written, with its :class:`~._lexer.Span`; the resolver
(:mod:`._resolver`) turns it into the model. One source file gives one or more
:class:`UnitAst`: the file's top-level items, then one per nested ``package a:b { ... }``
block.

Gates (``@since``, ``@unstable``, ``@deprecated``) and ``@external-id`` are parsed and
dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias, TypeVar

import attrs

from .._exceptions import WitError
from ._lexer import KEYWORDS, Span, Token, describe, tokenize
from ._model import PackageName

__all__ = [
    "AliasAst",
    "CaseAst",
    "EnumAst",
    "EnumCaseAst",
    "ExternAst",
    "FieldAst",
    "FlagsAst",
    "FuncAst",
    "Ident",
    "IncludeAst",
    "InterfaceAst",
    "PackageDeclAst",
    "ParamAst",
    "RecordAst",
    "ResourceAst",
    "ResourceFuncAst",
    "THandle",
    "TList",
    "TNamed",
    "TOption",
    "TPrim",
    "TResult",
    "TTuple",
    "TopUseAst",
    "TypeDefAst",
    "TypeExpr",
    "UnitAst",
    "UseAst",
    "UseNameAst",
    "UsePath",
    "VariantAst",
    "WorldAst",
    "parse_source",
]


@attrs.frozen
class Ident:
    """An identifier as written (without ``%``) and where."""

    name: str
    span: Span


@attrs.frozen
class UsePath:
    """A reference to an interface or world: ``name`` or ``ns:pkg/name@ver``.

    ``package`` is ``None`` for a bare name, which is looked up in the file's scope and
    then in the current package.
    """

    span: Span
    name: str
    package: PackageName | None

    def __str__(self) -> str:
        return self.name if self.package is None else self.package.qualify(self.name)


@attrs.frozen
class TPrim:
    """A primitive type."""

    name: str


@attrs.frozen
class TList:
    """``list<T>``."""

    element: TypeExpr


@attrs.frozen
class TOption:
    """``option<T>``."""

    inner: TypeExpr


@attrs.frozen
class TResult:
    """``result<...>``."""

    ok: TypeExpr | None
    err: TypeExpr | None


@attrs.frozen
class TTuple:
    """``tuple<...>``."""

    elements: tuple[TypeExpr, ...]


@attrs.frozen
class TNamed:
    """A type referred to by name."""

    name: Ident


@attrs.frozen
class THandle:
    """``own<r>`` or ``borrow<r>``."""

    name: Ident
    borrow: bool


TypeExpr: TypeAlias = TPrim | TList | TOption | TResult | TTuple | TNamed | THandle


@attrs.frozen
class ParamAst:
    """A function parameter."""

    name: Ident
    type: TypeExpr


@attrs.frozen
class FuncAst:
    """A function (its name is the item name, or the plain name in a world)."""

    name: Ident
    params: tuple[ParamAst, ...]
    result: TypeExpr | None
    docs: str
    is_async: bool


@attrs.frozen
class FieldAst:
    """A record field."""

    name: Ident
    type: TypeExpr
    docs: str


@attrs.frozen
class RecordAst:
    """``record``."""

    name: Ident
    fields: tuple[FieldAst, ...]
    docs: str


@attrs.frozen
class CaseAst:
    """A variant case."""

    name: Ident
    type: TypeExpr | None
    docs: str


@attrs.frozen
class VariantAst:
    """``variant``."""

    name: Ident
    cases: tuple[CaseAst, ...]
    docs: str


@attrs.frozen
class EnumCaseAst:
    """An enum case or a flag."""

    name: Ident
    docs: str


@attrs.frozen
class EnumAst:
    """``enum``."""

    name: Ident
    cases: tuple[EnumCaseAst, ...]
    docs: str


@attrs.frozen
class FlagsAst:
    """``flags``."""

    name: Ident
    flags: tuple[EnumCaseAst, ...]
    docs: str


@attrs.frozen
class AliasAst:
    """``type a = T;``."""

    name: Ident
    target: TypeExpr
    docs: str


@attrs.frozen
class ResourceFuncAst:
    """A constructor (``kind="constructor"``), method or static function of a resource."""

    kind: str
    func: FuncAst


@attrs.frozen
class ResourceAst:
    """``resource``."""

    name: Ident
    methods: tuple[ResourceFuncAst, ...]
    docs: str


TypeDefAst: TypeAlias = RecordAst | VariantAst | EnumAst | FlagsAst | AliasAst | ResourceAst


@attrs.frozen
class UseNameAst:
    """One name of ``use iface.{name as alias}``."""

    name: Ident
    alias: Ident | None


@attrs.frozen
class UseAst:
    """``use iface.{...};`` inside an interface or world."""

    path: UsePath
    names: tuple[UseNameAst, ...]


InterfaceItemAst: TypeAlias = UseAst | TypeDefAst | FuncAst


@attrs.frozen
class InterfaceAst:
    """An interface; for one declared inline in a world, ``name`` is its plain name."""

    name: Ident
    items: tuple[InterfaceItemAst, ...]
    docs: str


@attrs.frozen
class ExternAst:
    """A world ``import`` or ``export``.

    ``name`` is the plain name (``None`` for ``import path;``); ``target`` is the
    interface referred to, an inline function or an inline interface.
    """

    direction: str
    span: Span
    name: Ident | None
    target: UsePath | FuncAst | InterfaceAst
    docs: str


@attrs.frozen
class IncludeAst:
    """``include world with { a as b };``."""

    path: UsePath
    renames: tuple[tuple[Ident, Ident], ...]


WorldItemAst: TypeAlias = UseAst | TypeDefAst | ExternAst | IncludeAst


@attrs.frozen
class WorldAst:
    """A world."""

    name: Ident
    items: tuple[WorldItemAst, ...]
    docs: str


@attrs.frozen
class TopUseAst:
    """``use ns:pkg/iface@ver as alias;`` at the top level of a file."""

    path: UsePath
    alias: Ident | None


@attrs.frozen
class PackageDeclAst:
    """``package ns:name@ver``."""

    name: PackageName
    span: Span
    docs: str


@attrs.frozen
class UnitAst:
    """The items of one file that belong to one package.

    ``nested`` is ``True`` for a ``package a:b { ... }`` block, whose package is always
    declared; for the file's top level, ``package`` is ``None`` when the file has no
    ``package ...;`` declaration. ``first`` is the unit's first token, for the error
    when the package declaration is missing.
    """

    path: str
    package: PackageDeclAst | None
    uses: tuple[TopUseAst, ...]
    interfaces: tuple[InterfaceAst, ...]
    worlds: tuple[WorldAst, ...]
    nested: bool
    first: Token

    @property
    def is_empty(self) -> bool:
        """Whether the unit has no items at all."""
        return not (self.uses or self.interfaces or self.worlds)


_PRIMITIVE_KEYWORDS = frozenset(
    {"bool", "s8", "s16", "s32", "s64", "u8", "u16", "u32", "u64", "f32", "f64", "char", "string"}
)
_TYPEDEF_KEYWORDS = frozenset({"type", "record", "variant", "enum", "flags", "resource"})
_UNSUPPORTED_TYPES = frozenset({"map", "future", "stream"})
_T = TypeVar("_T")


def parse_source(text: str, path: str) -> list[UnitAst]:
    """Parses one WIT source file.

    Args:
        text: The source text.
        path: The file name for error messages.

    Returns:
        The file's top-level unit first, then one unit per nested package block.

    Raises:
        WitError: The text is not valid WIT syntax.
    """
    return _Parser(tokenize(text, path), path).file()


class _Parser:
    def __init__(self, tokens: list[Token], path: str) -> None:
        self._tokens = tokens
        self._pos = 0
        self._path = path

    # --- token helpers -------------------------------------------------------------

    def _peek(self, ahead: int = 0) -> Token:
        return self._tokens[min(self._pos + ahead, len(self._tokens) - 1)]

    def _next(self) -> Token:
        token = self._peek()
        if token.kind != "eof":
            self._pos += 1
        return token

    def _at(self, *kinds: str) -> bool:
        return self._peek().kind in kinds

    def _accept(self, kind: str) -> Token | None:
        return self._next() if self._at(kind) else None

    def _error(self, expected: str, token: Token | None = None) -> WitError:
        token = token or self._peek()
        return token.span.error(f"expected {expected}, found {describe(token)}")

    def _expect(self, kind: str, expected: str | None = None) -> Token:
        if not self._at(kind):
            raise self._error(expected or f"'{kind}'")
        return self._next()

    def _ident(self, what: str = "an identifier") -> Ident:
        token = self._peek()
        if token.kind != "id":
            hint = ""
            if token.kind in KEYWORDS:
                hint = f" (a keyword; write '%{token.value}' to use it as a name)"
            raise self._error(what + hint)
        self._next()
        return Ident(token.value, token.span)

    def _docs_and_gates(self) -> str:
        """Consumes gates before an item; returns the item's doc comments."""
        docs = [self._peek().docs]
        while self._at("@"):
            self._gate()
            docs.append(self._peek().docs)
        return "\n".join(d for d in docs if d)

    def _gate(self) -> None:
        self._expect("@")
        token = self._peek()
        name = self._ident("an annotation name ('since', 'unstable' or 'deprecated')")
        self._expect("(")
        if name.name in ("since", "deprecated"):
            self._field_name("version")
            self._expect("=")
            self._expect("version", "a semantic version such as 1.2.3")
        elif name.name == "unstable":
            self._field_name("feature")
            self._expect("=")
            self._ident("a feature name")
        elif name.name == "external-id":
            self._expect("string", "a string literal")
        else:
            raise token.span.error(
                f"expected 'since', 'unstable', 'deprecated' or 'external-id' after '@', "
                f"found {describe(token)}"
            )
        self._expect(")")

    def _field_name(self, name: str) -> None:
        token = self._peek()
        if token.kind != "id" or token.value != name:
            raise self._error(f"'{name}'")
        self._next()

    # --- files and packages ----------------------------------------------------------

    def file(self) -> list[UnitAst]:
        units: list[UnitAst] = []
        decl: PackageDeclAst | None = None
        if self._at("package") and self._declares_root_package():
            decl = self._package_decl()
            self._expect(";", "';' after the package declaration")
        uses: list[TopUseAst] = []
        interfaces: list[InterfaceAst] = []
        worlds: list[WorldAst] = []
        while not self._at("eof"):
            if self._at("package"):
                units.append(self._nested_package())
            else:
                self._package_item(uses, interfaces, worlds)
        root = UnitAst(
            self._path,
            decl,
            tuple(uses),
            tuple(interfaces),
            tuple(worlds),
            nested=False,
            first=self._tokens[0],
        )
        return [root, *units]

    def _declares_root_package(self) -> bool:
        # `package a:b@1.0.0;` rather than `package a:b { ... }`
        ahead = 1
        while self._peek(ahead).kind not in (";", "{", "eof"):
            ahead += 1
        return self._peek(ahead).kind == ";"

    def _package_decl(self) -> PackageDeclAst:
        docs = self._peek().docs
        keyword = self._expect("package")
        namespace = self._ident("a package namespace")
        self._expect(":", "':' between the namespace and the package name (as in 'ns:pkg')")
        name = self._ident("a package name")
        if self._at(":", "/"):
            raise self._peek().span.error(
                "nested namespaces and packages ('a:b:c', 'a:b/c') are not supported"
            )
        version = None
        if self._accept("@"):
            version = self._expect("version", "a semantic version such as 1.2.3").value
        return PackageDeclAst(PackageName(namespace.name, name.name, version), keyword.span, docs)

    def _nested_package(self) -> UnitAst:
        first = self._peek()
        decl = self._package_decl()
        self._expect(
            "{",
            "'{' to open a nested package (only the first package "
            "declaration of a file may end with ';')",
        )
        uses: list[TopUseAst] = []
        interfaces: list[InterfaceAst] = []
        worlds: list[WorldAst] = []
        while not self._accept("}"):
            if self._at("package"):
                raise self._error("an interface, a world or 'use'")
            self._package_item(uses, interfaces, worlds)
        return UnitAst(
            self._path,
            decl,
            tuple(uses),
            tuple(interfaces),
            tuple(worlds),
            nested=True,
            first=first,
        )

    def _package_item(
        self, uses: list[TopUseAst], interfaces: list[InterfaceAst], worlds: list[WorldAst]
    ) -> None:
        docs = self._docs_and_gates()
        if self._accept("use"):
            path = self._use_path()
            alias = self._ident("an alias") if self._accept("as") else None
            self._expect(";", "';' after the 'use' item" if alias else "'as' or ';'")
            uses.append(TopUseAst(path, alias))
        elif self._accept("interface"):
            name = self._ident("an interface name")
            interfaces.append(InterfaceAst(name, self._interface_body(), docs))
        elif self._accept("world"):
            name = self._ident("a world name")
            worlds.append(WorldAst(name, self._world_body(), docs))
        else:
            if self._at("eof", "}"):
                raise self._error("an interface, a world or 'use' after doc comments or gates")
            raise self._error("'interface', 'world', 'use' or 'package'")

    def _use_path(self) -> UsePath:
        first = self._peek()
        self._ident("an interface name or 'ns:pkg/name'")
        return self._use_path_after(first)

    def _use_path_after(self, first: Token) -> UsePath:
        """Parses the rest of a use-path whose first identifier was consumed."""
        if not self._accept(":"):
            return UsePath(first.span, first.value, None)
        return self._qualified_rest(first, self._ident("a package name"))

    def _qualified_rest(self, first: Token, package: Ident) -> UsePath:
        """Parses the rest of ``ns:pkg/name@ver`` after ``ns:pkg``."""
        if self._at(":"):
            raise self._peek().span.error("nested namespaces ('a:b:c/d') are not supported")
        self._expect("/", "'/' and an interface name (as in 'ns:pkg/name')")
        name = self._ident("an interface or world name")
        if self._at("/"):
            raise self._peek().span.error("nested packages ('a:b/c/d') are not supported")
        version = None
        if self._accept("@"):
            version = self._expect("version", "a semantic version such as 1.2.3").value
        return UsePath(first.span, name.name, PackageName(first.value, package.name, version))

    # --- interfaces ------------------------------------------------------------------

    def _interface_body(self) -> tuple[InterfaceItemAst, ...]:
        self._expect("{")
        items: list[InterfaceItemAst] = []
        while not self._accept("}"):
            docs = self._docs_and_gates()
            if self._at("use"):
                items.append(self._use_item())
            elif self._at(*_TYPEDEF_KEYWORDS):
                items.append(self._typedef(docs))
            elif self._at("id"):
                items.append(self._func_item(docs))
            else:
                raise self._error("'use', a type definition, a function or '}'")
        return tuple(items)

    def _use_item(self) -> UseAst:
        self._expect("use")
        path = self._use_path()
        self._expect(".", "'.' and '{' after the interface of a 'use' (as in 'use a.{b}')")
        self._expect("{")
        names: list[UseNameAst] = []
        while True:
            name = self._ident("a type name")
            alias = self._ident("an alias") if self._accept("as") else None
            names.append(UseNameAst(name, alias))
            if not self._accept(","):
                self._expect("}", "',' or '}'")
                break
            if self._accept("}"):
                break
        self._expect(";", "';' after the 'use' item")
        return UseAst(path, tuple(names))

    def _func_item(self, docs: str) -> FuncAst:
        name = self._ident("a function name")
        self._expect(":", "':' and 'func' after the function name")
        func = self._func_type(name, docs)
        self._expect(";", "';' after the function")
        return func

    def _func_type(self, name: Ident, docs: str) -> FuncAst:
        is_async = self._accept("async") is not None
        self._expect("func", "'func'")
        params = self._params()
        result = self._type() if self._accept("->") else None
        return FuncAst(name, params, result, docs, is_async)

    def _params(self) -> tuple[ParamAst, ...]:
        self._expect("(", "'(' to open the parameter list")
        params: list[ParamAst] = []
        while not self._accept(")"):
            name = self._ident("a parameter name or ')'")
            self._expect(":", "':' and a type after the parameter name")
            params.append(ParamAst(name, self._type()))
            if not self._accept(","):
                self._expect(")", "',' or ')'")
                break
        return tuple(params)

    # --- type definitions ------------------------------------------------------------

    def _typedef(self, docs: str) -> TypeDefAst:
        keyword = self._next()
        name = self._ident(f"a name for the {keyword.kind}")
        if keyword.kind == "type":
            self._expect("=", "'=' after the type name")
            target = self._type()
            self._expect(";", "';' after the type alias")
            return AliasAst(name, target, docs)
        if keyword.kind == "resource":
            return ResourceAst(name, self._resource_body(name), docs)
        self._expect("{", f"'{{' to open the {keyword.kind}")
        if keyword.kind == "record":
            return RecordAst(name, self._list_body(self._field, keyword.kind, name), docs)
        if keyword.kind == "variant":
            return VariantAst(name, self._list_body(self._case, keyword.kind, name), docs)
        cases = self._list_body(self._enum_case, keyword.kind, name)
        if keyword.kind == "enum":
            return EnumAst(name, cases, docs)
        return FlagsAst(name, cases, docs)

    def _list_body(self, item: Callable[[], _T], keyword: str, name: Ident) -> tuple[_T, ...]:
        """Parses comma-separated items up to '}' (the '{' was consumed)."""
        items: list[_T] = []
        while not self._accept("}"):
            items.append(item())
            if not self._accept(","):
                self._expect("}", "',' or '}'")
                break
        if not items:
            what = {"record": "field", "variant": "case", "enum": "case"}.get(keyword, "flag")
            raise name.span.error(f"{keyword} '{name.name}' must have at least one {what}")
        return tuple(items)

    def _field(self) -> FieldAst:
        docs = self._peek().docs
        name = self._ident("a field name")
        self._expect(":", "':' and a type after the field name")
        return FieldAst(name, self._type(), docs)

    def _case(self) -> CaseAst:
        docs = self._peek().docs
        name = self._ident("a case name")
        payload = None
        if self._accept("("):
            payload = self._type()
            self._expect(")", "')' after the case's payload type")
        return CaseAst(name, payload, docs)

    def _enum_case(self) -> EnumCaseAst:
        docs = self._peek().docs
        return EnumCaseAst(self._ident("a name"), docs)

    def _resource_body(self, resource: Ident) -> tuple[ResourceFuncAst, ...]:
        if self._accept(";"):
            return ()
        self._expect("{", "';' or '{' after the resource name")
        methods: list[ResourceFuncAst] = []
        while not self._accept("}"):
            docs = self._docs_and_gates()
            token = self._peek()
            if self._accept("constructor"):
                name = Ident("constructor", token.span)
                params = self._params()
                result = self._type() if self._accept("->") else None
                methods.append(
                    ResourceFuncAst("constructor", FuncAst(name, params, result, docs, False))
                )
            else:
                name = self._ident(
                    f"'constructor', a method name or '}}' in resource '{resource.name}'"
                )
                self._expect(":", "':' after the method name")
                kind = "static" if self._accept("static") else "method"
                methods.append(ResourceFuncAst(kind, self._func_type(name, docs)))
            self._expect(";", "';' after the resource function")
        return tuple(methods)

    # --- type expressions ------------------------------------------------------------

    def _type(self) -> TypeExpr:
        token = self._next()
        kind = token.kind
        if kind in _PRIMITIVE_KEYWORDS:
            return TPrim(kind)
        if kind == "id":
            return TNamed(Ident(token.value, token.span))
        if kind == "list":
            self._expect("<", "'<' after 'list'")
            element = self._type()
            if self._at(","):
                raise self._peek().span.error("fixed-length lists ('list<T, N>') are not supported")
            self._expect(">", "'>' to close 'list<'")
            return TList(element)
        if kind == "option":
            self._expect("<", "'<' after 'option'")
            inner = self._type()
            self._expect(">", "'>' to close 'option<'")
            return TOption(inner)
        if kind == "result":
            return self._result_type()
        if kind == "tuple":
            self._expect("<", "'<' after 'tuple'")
            elements = [self._type()]
            while self._accept(","):
                if self._at(">"):
                    break
                elements.append(self._type())
            self._expect(">", "',' or '>' in 'tuple<'")
            return TTuple(tuple(elements))
        if kind in ("borrow", "own"):
            self._expect("<", f"'<' after '{kind}'")
            name = self._ident("a resource name")
            self._expect(">", f"'>' to close '{kind}<'")
            return THandle(name, borrow=kind == "borrow")
        if kind in _UNSUPPORTED_TYPES:
            raise token.span.error(f"'{kind}' types are not supported")
        raise self._error("a type", token)

    def _result_type(self) -> TResult:
        if not self._accept("<"):
            return TResult(None, None)
        if self._accept("_"):
            self._expect(",", "',' and an error type after 'result<_'")
            err_only = self._type()
            self._expect(">", "'>' to close 'result<'")
            return TResult(None, err_only)
        ok = self._type()
        err = self._type() if self._accept(",") else None
        self._expect(">", "',' or '>' in 'result<'" if err is None else "'>' to close 'result<'")
        return TResult(ok, err)

    # --- worlds ----------------------------------------------------------------------

    def _world_body(self) -> tuple[WorldItemAst, ...]:
        self._expect("{")
        items: list[WorldItemAst] = []
        while not self._accept("}"):
            docs = self._docs_and_gates()
            if self._at("use"):
                items.append(self._use_item())
            elif self._at(*_TYPEDEF_KEYWORDS):
                items.append(self._typedef(docs))
            elif self._at("import", "export"):
                items.append(self._extern(docs))
            elif self._at("include"):
                items.append(self._include())
            else:
                raise self._error("'import', 'export', 'include', 'use', a type definition or '}'")
        return tuple(items)

    def _extern(self, docs: str) -> ExternAst:
        keyword = self._next()
        first = self._peek()
        self._ident("an interface or a plain name")
        if not self._accept(":"):
            self._expect(";", f"';' or ':' after the {keyword.kind}")
            return ExternAst(keyword.kind, keyword.span, None, self._local(first), docs)
        if self._at("async", "func"):
            name = Ident(first.value, first.span)
            func = self._func_type(name, docs)
            self._expect(";", f"';' after the {keyword.kind}ed function")
            return ExternAst(keyword.kind, keyword.span, name, func, docs)
        if self._accept("interface"):
            name = Ident(first.value, first.span)
            iface = InterfaceAst(name, self._interface_body(), docs)
            return ExternAst(keyword.kind, keyword.span, name, iface, docs)
        second = self._peek()
        if second.kind != "id":
            raise self._error("'func', 'interface', an interface name or 'ns:pkg/name'")
        if self._peek(1).kind == "/":
            # `import ns:pkg/iface;`: `first` was the namespace
            self._next()
            path = self._qualified_rest(first, Ident(second.value, second.span))
            self._expect(";", f"';' after the {keyword.kind}")
            return ExternAst(keyword.kind, keyword.span, None, path, docs)
        # `import plain-name: iface;` or `import plain-name: ns:pkg/iface;`
        self._next()
        path = self._use_path_after(second)
        self._expect(";", f"';' after the {keyword.kind}")
        return ExternAst(keyword.kind, keyword.span, Ident(first.value, first.span), path, docs)

    @staticmethod
    def _local(token: Token) -> UsePath:
        return UsePath(token.span, token.value, None)

    def _include(self) -> IncludeAst:
        self._expect("include")
        path = self._use_path()
        renames: list[tuple[Ident, Ident]] = []
        if self._accept("with"):
            self._expect("{", "'{' after 'with'")
            while not self._accept("}"):
                old = self._ident("the name to rename")
                self._expect("as", "'as' and the new name")
                renames.append((old, self._ident("the new name")))
                if not self._accept(","):
                    self._expect("}", "',' or '}'")
                    break
            self._accept(";")
        else:
            self._expect(";", "';' or 'with' after the included world")
        return IncludeAst(path, tuple(renames))
