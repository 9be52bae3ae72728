"""Resolution of parsed WIT into the model, and loading WIT from files and text.

Resolution runs in phases over all packages at once, so that files and dependencies
may come in any order:

1. Group units into packages and create an empty :class:`Interface` or :class:`World`
   for each name (duplicate names are reported here).
2. Resolve each file's top-level ``use`` to interfaces.
3. Build each interface's scope: ``use`` statements are followed depth first (a cycle
   is reported at the ``use`` that closes it) and each type definition gets its
   :class:`TypeDef` object, whose kind is filled in by phase 4. That is what makes a
   type reached through ``use`` the *same* object as where it is defined.
4. Resolve the kinds of named types and the functions.
5. Resolve worlds (``include`` depth first, reporting cycles).
6. Reject recursive types.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import attrs

from .._exceptions import WitError
from ._lexer import Span, describe
from ._model import (
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
    VariantKind,
    WitType,
    World,
    WorldItem,
)
from ._parser import (
    AliasAst,
    EnumAst,
    ExternAst,
    FlagsAst,
    FuncAst,
    Ident,
    IncludeAst,
    InterfaceAst,
    RecordAst,
    ResourceAst,
    TList,
    TNamed,
    TOption,
    TPrim,
    TResult,
    TTuple,
    TypeDefAst,
    TypeExpr,
    UnitAst,
    UseAst,
    UsePath,
    VariantAst,
    WorldAst,
    parse_source,
)

__all__ = ["load_wit", "parse_wit_text"]

_TYPEDEF_ASTS = (RecordAst, VariantAst, EnumAst, FlagsAst, AliasAst, ResourceAst)
_FLOAT_ALIASES = {"float32": "f32", "float64": "f64"}
# Stands in for the kind of a TypeDef between phases 3 and 4.
_PENDING_KIND = AliasKind(Primitive("bool"))


def load_wit(path: str | os.PathLike[str]) -> Resolve:
    """Loads and resolves a WIT package and its dependencies from the filesystem.

    A directory holds one package: all its ``*.wit`` files, merged. Its dependencies
    are in its ``deps/`` directory, each entry either a directory (one package, its
    ``*.wit`` files) or a single ``.wit`` file; symbolic links are followed.
    Dependencies may also be given inline as nested ``package ns:name { ... }`` blocks.
    A single ``.wit`` file has no ``deps/``.

    Args:
        path: A ``.wit`` file or a directory.

    Returns:
        The resolved packages; :attr:`Resolve.main` names the package at ``path``.

    Raises:
        WitError: The path cannot be read, or the WIT is invalid: a syntax error, an
            unknown name, a duplicate name, a missing package declaration, a
            dependency package that was not found, a cycle of ``use`` or
            ``include``, a recursive type. The error names the file, line and
            column.
    """
    root = Path(os.fspath(path))
    if root.is_dir():
        files = _wit_files(root)
        if not files:
            raise WitError("expected .wit files in the directory, found none", path=str(root))
        sources = [_parse_files(files)]
        deps = root / "deps"
        if deps.is_dir():
            names: list[str] = []
            for entry in sorted(deps.iterdir()):
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    dep_files = _wit_files(entry)
                    if dep_files:
                        sources.append(_parse_files(dep_files))
                        names.append(entry.name + "/")
                elif entry.is_file() and entry.suffix == ".wit":
                    sources.append(_parse_files([entry]))
                    names.append(entry.name)
                elif entry.is_symlink() and not entry.exists():
                    raise WitError("broken symbolic link in the deps directory", path=str(entry))
            searched = f"{root} and its deps directory {deps} ({', '.join(names) or 'empty'})"
        else:
            searched = f"{root} (it has no deps directory {deps})"
    elif root.is_file():
        sources = [_parse_files([root])]
        searched = (
            f"only {root}: a single file has no deps directory (load a directory with a "
            "deps/ folder, or declare dependencies inline as 'package ns:name { ... }')"
        )
    else:
        raise WitError("no such file or directory", path=str(root))
    return _Resolver(sources, searched).run()


def parse_wit_text(text: str, *, deps: Sequence[str] = (), filename: str = "<string>") -> Resolve:
    """Parses and resolves WIT source text.

    Args:
        text: The main package's source; it must start with ``package ns:name;``.
        deps: Sources of dependency packages, one package each (plus any nested
            ``package ns:name { ... }`` blocks). In errors they are named
            ``<deps[0]>``, ``<deps[1]>``, ...
        filename: The name of ``text`` in errors.

    Returns:
        The resolved packages; :attr:`Resolve.main` names the package of ``text``.

    Raises:
        TypeError: ``deps`` is a single string rather than a sequence of strings.
        WitError: The WIT is invalid (see :func:`load_wit`).
    """
    if isinstance(deps, str):
        raise TypeError("deps must be a sequence of WIT sources, not a single string")
    sources = [parse_source(text, filename)]
    sources += [parse_source(dep, f"<deps[{i}]>") for i, dep in enumerate(deps)]
    searched = f"the {len(deps)} source(s) passed as deps"
    return _Resolver(sources, searched).run()


def _wit_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix == ".wit" and not p.name.startswith(".") and p.is_file()
    )


def _parse_files(files: Iterable[Path]) -> list[UnitAst]:
    units: list[UnitAst] = []
    for file in files:
        units += parse_source(_read(file), str(file))
    return units


def _read(file: Path) -> str:
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise WitError(f"cannot read the file: {exc.strerror}", path=str(file)) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        raise WitError(
            "expected UTF-8 text, found an invalid byte", path=str(file), line=line, column=column
        ) from exc
    return text.removeprefix("\ufeff")


# --- resolver state ---------------------------------------------------------------------


@attrs.define(eq=False)
class _PackageBuild:
    package: Package
    span: Span
    units: list[UnitAst]
    # lowercased name of every interface and world -> (what, where), for duplicates
    names: dict[str, tuple[str, Span]] = attrs.field(factory=dict)


@attrs.define(eq=False)
class _UnitCtx:
    unit: UnitAst
    build: _PackageBuild
    aliases: dict[str, Interface] = attrs.field(factory=dict)


@attrs.define(eq=False)
class _Scope:
    """The names of an interface or a world, with case-insensitive duplicate checks."""

    where: str
    ctx: _UnitCtx
    types: dict[str, TypeDef] = attrs.field(factory=dict)
    names: dict[str, tuple[str, Span]] = attrs.field(factory=dict)

    def claim(self, ident: Ident, what: str) -> None:
        key = ident.name.lower()
        previous = self.names.get(key)
        if previous is not None:
            raise ident.span.error(
                f"duplicate name '{ident.name}' in {self.where}: "
                f"{previous[0]} of that name already defined at {previous[1]}"
            )
        self.names[key] = (what, ident.span)


@attrs.define(eq=False)
class _IfaceInfo:
    interface: Interface
    ast: InterfaceAst
    ctx: _UnitCtx
    state: str = "new"  # "new" -> "visiting" -> "scoped" -> "done"
    scope: _Scope | None = None


@attrs.define(eq=False)
class _WorldInfo:
    world: World
    ast: WorldAst
    ctx: _UnitCtx
    state: str = "new"  # "new" -> "visiting" -> "done"


@attrs.define(eq=False)
class _TypeInfo:
    typedef: TypeDef
    ast: TypeDefAst
    scope: _Scope


class _Resolver:
    def __init__(self, sources: list[list[UnitAst]], searched: str) -> None:
        self._sources = sources
        self._searched = searched
        self._builds: dict[str, _PackageBuild] = {}
        self._main: PackageName | None = None
        self._ifaces: dict[int, _IfaceInfo] = {}
        self._worlds: dict[int, _WorldInfo] = {}
        self._types: dict[int, _TypeInfo] = {}
        self._pending: list[_TypeInfo] = []

    def run(self) -> Resolve:
        self._collect_packages()
        contexts = self._declare_items()
        for ctx in contexts:
            self._resolve_top_level_uses(ctx)
        for info in self._ifaces.values():
            self._scope_interface(info, [])
        self._resolve_pending_types()
        for info in self._ifaces.values():
            self._resolve_functions(info)
        for world_info in self._worlds.values():
            self._resolve_world(world_info, [])
        self._check_recursion()
        assert self._main is not None
        packages = {key: build.package for key, build in self._builds.items()}
        return Resolve(packages, self._main)

    # --- phase 1: packages and their items ----------------------------------------------

    def _collect_packages(self) -> None:
        for index, units in enumerate(self._sources):
            roots = [u for u in units if not u.nested]
            decls = [u.package for u in roots if u.package is not None]
            if decls:
                first = decls[0]
                for decl in decls[1:]:
                    if decl.name != first.name:
                        raise decl.span.error(
                            f"expected 'package {first.name}', found 'package {decl.name}': "
                            f"all files of a package must declare the same name (the first "
                            f"declaration is at {first.span})"
                        )
                docs = "\n".join(d.docs for d in decls if d.docs)
                self._add_package(first.name, first.span, roots, docs)
                if index == 0:
                    self._main = first.name
            else:
                bare = [u for u in roots if not u.is_empty] or (roots if index == 0 else [])
                if bare:
                    token = bare[0].first
                    raise token.span.error(
                        "missing package declaration: expected 'package namespace:name;' "
                        f"(e.g. 'package my:plugin@0.1.0;') before the first item, found "
                        f"{describe(token)}"
                    )
            for unit in units:
                if unit.nested:
                    assert unit.package is not None
                    self._add_package(
                        unit.package.name, unit.package.span, [unit], unit.package.docs
                    )

    def _add_package(self, name: PackageName, span: Span, units: list[UnitAst], docs: str) -> None:
        previous = self._builds.get(str(name))
        if previous is not None:
            raise span.error(
                f"duplicate package '{name}': it is already defined at {previous.span}"
            )
        self._builds[str(name)] = _PackageBuild(Package(name, docs=docs), span, units)

    def _declare_items(self) -> list[_UnitCtx]:
        contexts: list[_UnitCtx] = []
        for build in self._builds.values():
            package = build.package
            for unit in build.units:
                ctx = _UnitCtx(unit, build)
                contexts.append(ctx)
                for iface_ast in unit.interfaces:
                    self._claim_package_name(build, iface_ast.name, "an interface")
                    iface = Interface(iface_ast.name.name, package.name, docs=iface_ast.docs)
                    package.interfaces[iface.name or ""] = iface
                    self._ifaces[id(iface)] = _IfaceInfo(iface, iface_ast, ctx)
                for world_ast in unit.worlds:
                    self._claim_package_name(build, world_ast.name, "a world")
                    world = World(world_ast.name.name, package.name, docs=world_ast.docs)
                    package.worlds[world.name] = world
                    self._worlds[id(world)] = _WorldInfo(world, world_ast, ctx)
        return contexts

    @staticmethod
    def _claim_package_name(build: _PackageBuild, ident: Ident, what: str) -> None:
        previous = build.names.get(ident.name.lower())
        if previous is not None:
            raise ident.span.error(
                f"duplicate name '{ident.name}' in package '{build.package.name}': "
                f"{previous[0]} of that name is already defined at {previous[1]}"
            )
        build.names[ident.name.lower()] = (what, ident.span)

    # --- phase 2: lookups -----------------------------------------------------------------

    def _resolve_top_level_uses(self, ctx: _UnitCtx) -> None:
        package = ctx.build.package
        for use in ctx.unit.uses:
            target = self._find_interface(use.path, ctx, file_scope=False)
            ident = use.alias or Ident(use.path.name, use.path.span)
            local = package.interfaces.get(ident.name)
            clash = ctx.aliases.get(ident.name) or local
            if clash is not None and clash is not target:
                where = "a top-level 'use' in this file" if local is None else "this package"
                raise ident.span.error(
                    f"duplicate name '{ident.name}': it already names interface "
                    f"'{clash.qualified_name}' in {where}; rename it with 'as'"
                )
            if ident.name in package.worlds:
                raise ident.span.error(
                    f"duplicate name '{ident.name}': it already names a world of this package; "
                    "rename it with 'as'"
                )
            ctx.aliases[ident.name] = target

    def _find_package(self, name: PackageName, span: Span, user: str) -> Package:
        build = self._builds.get(str(name))
        same = [
            b.package
            for b in self._builds.values()
            if (b.package.name.namespace, b.package.name.name) == (name.namespace, name.name)
        ]
        if build is not None:
            return build.package
        if name.version is None and len(same) == 1:
            return same[0]
        found = ", ".join(sorted(self._builds)) or "none"
        versions = ""
        if same:
            versions = f"; versions available: {', '.join(str(p.name) for p in same)}"
        raise span.error(
            f"unresolved dependency package '{name}' (used by {user}): searched {self._searched}; "
            f"packages found: {found}{versions}"
        )

    def _find_interface(
        self, path: UsePath, ctx: _UnitCtx, *, file_scope: bool = True
    ) -> Interface:
        if path.package is None:
            package = ctx.build.package
            found = ctx.aliases.get(path.name) if file_scope else None
            found = found or package.interfaces.get(path.name)
            if found is not None:
                return found
            if path.name in package.worlds:
                raise path.span.error(
                    f"expected an interface, found world '{path.name}' of package '{package.name}'"
                )
        else:
            package = self._find_package(path.package, path.span, f"'{path}' in {ctx.unit.path}")
            found = package.interfaces.get(path.name)
            if found is not None:
                return found
        known = sorted(package.interfaces)
        if path.package is None and file_scope:
            known = sorted({*known, *ctx.aliases})
        raise path.span.error(
            f"unknown interface '{path.name}' in package '{package.name}' "
            f"(known interfaces: {', '.join(known) or 'none'})"
        )

    def _find_world(self, path: UsePath, ctx: _UnitCtx) -> World:
        if path.package is None:
            package = ctx.build.package
        else:
            package = self._find_package(path.package, path.span, f"'{path}' in {ctx.unit.path}")
        world = package.worlds.get(path.name)
        if world is not None:
            return world
        what = (
            "an interface, not a world"
            if path.name in package.interfaces
            else f"not a world of package '{package.name}'"
        )
        raise path.span.error(
            f"unknown world '{path.name}': it is {what} "
            f"(worlds: {', '.join(sorted(package.worlds)) or 'none'})"
        )

    # --- phase 3: scopes --------------------------------------------------------------------

    def _scope_interface(self, info: _IfaceInfo, chain: list[tuple[str, Span]]) -> _Scope:
        if info.state == "visiting":
            names = [name for name, _ in chain]
            start = names.index(info.interface.qualified_name)
            cycle = " -> ".join([*names[start:], info.interface.qualified_name])
            raise chain[-1][1].error(f"cycle in 'use' between interfaces: {cycle}")
        if info.scope is not None:
            return info.scope
        info.state = "visiting"
        iface = info.interface
        scope = _Scope(f"interface '{iface.qualified_name}'", info.ctx)
        self._fill_scope(scope, info.ast.items, iface.qualified_name, chain, iface.qualified_name)
        iface.types = scope.types
        info.scope = scope
        info.state = "scoped"
        return scope

    def _fill_scope(
        self,
        scope: _Scope,
        items: Iterable[object],
        owner: str,
        chain: list[tuple[str, Span]],
        me: str,
    ) -> None:
        """Adds the ``use``d and defined types of ``items`` to ``scope``, in order."""
        for item in items:
            if isinstance(item, UseAst):
                self._apply_use(item, scope, [*chain, (me, item.path.span)])
            elif isinstance(item, _TYPEDEF_ASTS):
                self._declare_type(item, scope, owner)
            elif isinstance(item, FuncAst):
                scope.claim(item.name, "a function")

    def _apply_use(self, use: UseAst, scope: _Scope, chain: list[tuple[str, Span]]) -> None:
        target = self._find_interface(use.path, scope.ctx)
        target_info = self._ifaces[id(target)]
        target_scope = self._scope_interface(target_info, chain)
        for name in use.names:
            typedef = target_scope.types.get(name.name.name)
            if typedef is None:
                what = "a function" if name.name.name in _function_names(target_info) else None
                known = ", ".join(target_scope.types) or "none"
                raise name.name.span.error(
                    f"unknown type '{name.name.name}' in interface '{target.qualified_name}': "
                    + (f"it is {what}, only types can be used" if what else f"types: {known}")
                )
            local = name.alias or name.name
            scope.claim(local, f"a type used from '{target.qualified_name}'")
            scope.types[local.name] = typedef

    def _declare_type(self, ast: TypeDefAst, scope: _Scope, owner: str) -> None:
        kind = type(ast).__name__.removesuffix("Ast").lower()
        scope.claim(ast.name, f"a {kind}")
        typedef = TypeDef(ast.name.name, owner, _PENDING_KIND, ast.docs)
        info = _TypeInfo(typedef, ast, scope)
        self._types[id(typedef)] = info
        self._pending.append(info)
        scope.types[ast.name.name] = typedef

    # --- phase 4: kinds and functions ---------------------------------------------------

    def _resolve_pending_types(self) -> None:
        while self._pending:
            info = self._pending.pop(0)
            info.typedef.kind = self._kind(info)

    def _kind(self, info: _TypeInfo) -> TypeKind:
        ast, scope = info.ast, info.scope
        if isinstance(ast, RecordAst):
            _check_unique((f.name for f in ast.fields), f"record '{ast.name.name}'", "field")
            return RecordKind(
                tuple(Field(f.name.name, self._type(f.type, scope), f.docs) for f in ast.fields)
            )
        if isinstance(ast, VariantAst):
            _check_unique((c.name for c in ast.cases), f"variant '{ast.name.name}'", "case")
            return VariantKind(
                tuple(
                    Case(c.name.name, None if c.type is None else self._type(c.type, scope), c.docs)
                    for c in ast.cases
                )
            )
        if isinstance(ast, EnumAst):
            _check_unique((c.name for c in ast.cases), f"enum '{ast.name.name}'", "case")
            return EnumKind(tuple(EnumCase(c.name.name, c.docs) for c in ast.cases))
        if isinstance(ast, FlagsAst):
            _check_unique((c.name for c in ast.flags), f"flags '{ast.name.name}'", "flag")
            return FlagsKind(tuple(EnumCase(c.name.name, c.docs) for c in ast.flags))
        if isinstance(ast, AliasAst):
            return AliasKind(self._type(ast.target, scope))
        return ResourceKind(self._resource_functions(info.typedef, ast, scope))

    def _resource_functions(
        self, resource: TypeDef, ast: ResourceAst, scope: _Scope
    ) -> tuple[Function, ...]:
        functions: list[Function] = []
        names = _Scope(f"resource '{resource.name}'", scope.ctx)
        for method in ast.methods:
            func = method.func
            if method.kind == "constructor":
                names.claim(func.name, "a constructor")
                name = f"[constructor]{resource.name}"
                params = self._params(func, scope)
                result = (
                    HandleType(resource, borrow=False)
                    if func.result is None
                    else self._type(func.result, scope)
                )
                functions.append(Function(name, params, result, func.docs, func.is_async))
                continue
            names.claim(func.name, f"a {method.kind} function")
            resolved = self._function(func, scope)
            params = resolved.params
            if method.kind == "method":
                self_param = Ident("self", func.name.span)
                _check_unique(
                    [self_param, *(p.name for p in func.params)],
                    f"method '{func.name.name}' (which has an implicit 'self')",
                    "parameter",
                )
                params = (Param("self", HandleType(resource, borrow=True)), *params)
            name = f"[{method.kind}]{resource.name}.{func.name.name}"
            functions.append(attrs.evolve(resolved, name=name, params=params))
        return tuple(functions)

    def _resolve_functions(self, info: _IfaceInfo) -> None:
        if info.state == "done":
            return
        assert info.scope is not None
        for item in info.ast.items:
            if isinstance(item, FuncAst):
                info.interface.functions[item.name.name] = self._function(item, info.scope)
        info.state = "done"

    def _function(self, ast: FuncAst, scope: _Scope) -> Function:
        result = None if ast.result is None else self._type(ast.result, scope)
        return Function(ast.name.name, self._params(ast, scope), result, ast.docs, ast.is_async)

    def _params(self, ast: FuncAst, scope: _Scope) -> tuple[Param, ...]:
        _check_unique((p.name for p in ast.params), f"function '{ast.name.name}'", "parameter")
        return tuple(Param(p.name.name, self._type(p.type, scope)) for p in ast.params)

    def _type(self, expr: TypeExpr, scope: _Scope) -> WitType:
        if isinstance(expr, TPrim):
            return Primitive(expr.name)
        if isinstance(expr, TList):
            return ListType(self._type(expr.element, scope))
        if isinstance(expr, TOption):
            return OptionType(self._type(expr.inner, scope))
        if isinstance(expr, TResult):
            ok = None if expr.ok is None else self._type(expr.ok, scope)
            err = None if expr.err is None else self._type(expr.err, scope)
            return ResultType(ok, err)
        if isinstance(expr, TTuple):
            return TupleType(tuple(self._type(e, scope) for e in expr.elements))
        if isinstance(expr, TNamed):
            if expr.name.name in _FLOAT_ALIASES and expr.name.name not in scope.types:
                return Primitive(_FLOAT_ALIASES[expr.name.name])
            typedef = self._lookup_type(expr.name, scope)
            if isinstance(self._types[id(typedef)].ast, ResourceAst):
                return HandleType(typedef, borrow=False)
            return typedef
        typedef = self._lookup_type(expr.name, scope)
        return HandleType(self._resource_of(typedef, expr.name), borrow=expr.borrow)

    @staticmethod
    def _lookup_type(name: Ident, scope: _Scope) -> TypeDef:
        found = scope.types.get(name.name)
        if found is None:
            raise name.span.error(
                f"unknown type '{name.name}' in {scope.where}: expected a type defined there "
                f"or brought in with 'use some-interface.{{{name.name}}};'"
            )
        return found

    def _resource_of(self, typedef: TypeDef, name: Ident) -> TypeDef:
        """Follows aliases from ``typedef`` to a resource, for ``own<>`` and ``borrow<>``."""
        seen: set[int] = set()
        current = typedef
        while id(current) not in seen:
            seen.add(id(current))
            info = self._types[id(current)]
            if isinstance(info.ast, ResourceAst):
                return current
            if not (isinstance(info.ast, AliasAst) and isinstance(info.ast.target, TNamed)):
                break
            current = self._lookup_type(info.ast.target.name, info.scope)
        raise name.span.error(
            f"expected a resource inside own<...> or borrow<...>, found '{name.name}', "
            "which is not a resource"
        )

    # --- phase 5: worlds --------------------------------------------------------------------

    def _resolve_world(self, info: _WorldInfo, chain: list[tuple[str, Span]]) -> None:
        world = info.world
        if info.state == "done":
            return
        if info.state == "visiting":
            names = [name for name, _ in chain]
            start = names.index(world.qualified_name)
            cycle = " -> ".join([*names[start:], world.qualified_name])
            raise chain[-1][1].error(f"cycle in 'include' between worlds: {cycle}")
        info.state = "visiting"
        where = f"world '{world.qualified_name}'"
        imports = _Scope(where, info.ctx)
        exports = _Scope(f"the exports of {where}", info.ctx)
        self._fill_scope(imports, info.ast.items, world.qualified_name, chain, world.qualified_name)
        self._resolve_pending_types()
        world.types = dict(imports.types)
        explicit: set[tuple[str, str]] = set()
        for item in info.ast.items:
            if isinstance(item, ExternAst):
                scope = imports if item.direction == "import" else exports
                self._extern(item, world, scope, imports, explicit)
            elif isinstance(item, IncludeAst):
                self._include(item, info, imports, exports, chain)
        info.state = "done"

    def _extern(
        self,
        item: ExternAst,
        world: World,
        names: _Scope,
        types: _Scope,
        explicit: set[tuple[str, str]],
    ) -> None:
        dest = world.imports if item.direction == "import" else world.exports
        target = item.target
        resolved: WorldItem
        if isinstance(target, UsePath):
            iface = self._find_interface(target, types.ctx)
            if item.name is None:
                key = iface.qualified_name
                if (item.direction, key) in explicit:
                    raise target.span.error(
                        f"duplicate {item.direction} of interface '{key}' in "
                        f"world '{world.qualified_name}'"
                    )
                explicit.add((item.direction, key))
                dest.setdefault(key, iface)
                return
            resolved = iface
        elif isinstance(target, FuncAst):
            resolved = self._function(target, types)
        else:
            resolved = self._inline_interface(target, world, types.ctx)
        assert item.name is not None
        names.claim(item.name, f"an {item.direction}")
        dest[item.name.name] = resolved

    def _inline_interface(self, ast: InterfaceAst, world: World, ctx: _UnitCtx) -> Interface:
        name = ast.name.name
        iface = Interface(None, world.package, docs=ast.docs, plain_name=name)
        scope = _Scope(f"interface '{name}' of world '{world.qualified_name}'", ctx)
        self._fill_scope(scope, ast.items, name, [], name)
        iface.types = scope.types
        self._resolve_pending_types()
        for item in ast.items:
            if isinstance(item, FuncAst):
                iface.functions[item.name.name] = self._function(item, scope)
        return iface

    def _include(
        self,
        item: IncludeAst,
        info: _WorldInfo,
        imports: _Scope,
        exports: _Scope,
        chain: list[tuple[str, Span]],
    ) -> None:
        world = info.world
        included = self._find_world(item.path, info.ctx)
        self._resolve_world(
            self._worlds[id(included)], [*chain, (world.qualified_name, item.path.span)]
        )
        renames: dict[str, Ident] = {}
        for old, new in item.renames:
            if old.name in renames:
                raise old.span.error(f"duplicate name '{old.name}' in 'with'")
            renames[old.name] = new
        used: set[str] = set()
        for direction, source, dest, names in (
            ("import", included.imports, world.imports, imports),
            ("export", included.exports, world.exports, exports),
        ):
            for key, value in source.items():
                is_interface_name = (
                    isinstance(value, Interface)
                    and value.name is not None
                    and key == value.qualified_name
                )
                new_key = key
                if key in renames and not is_interface_name:
                    used.add(key)
                    new_key = renames[key].name
                if is_interface_name or dest.get(new_key) is value:
                    # the same interface, or the same item reached through two includes
                    dest.setdefault(new_key, value)
                    continue
                if new_key.lower() in names.names:
                    raise item.path.span.error(
                        f"{direction} '{new_key}' of included world '{included.qualified_name}' "
                        f"conflicts with an {direction} or type of the same name in world "
                        f"'{world.qualified_name}'; rename it with "
                        f"'include {item.path} with {{ {new_key} as another-name }}'"
                    )
                names.claim(Ident(new_key, item.path.span), f"an {direction} from an include")
                dest[new_key] = value
        interface_names = {
            value.name: key
            for key, value in [*included.imports.items(), *included.exports.items()]
            if isinstance(value, Interface)
            and value.name is not None
            and key == value.qualified_name
        }
        for old, _ in item.renames:
            if old.name in used:
                continue
            if old.name in interface_names:
                raise old.span.error(
                    f"cannot rename '{old.name}': it is the interface name "
                    f"'{interface_names[old.name]}', and only plain names can be renamed"
                )
            raise old.span.error(
                f"expected the name of an import or export of world "
                f"'{included.qualified_name}', found '{old.name}'"
            )
        for name, typedef in included.types.items():
            existing = world.types.setdefault(name, typedef)
            if existing is not typedef:
                raise item.path.span.error(
                    f"type '{name}' of included world '{included.qualified_name}' conflicts "
                    f"with a different type '{name}' in world '{world.qualified_name}'"
                )

    # --- phase 6: recursive types -----------------------------------------------------------

    def _check_recursion(self) -> None:
        state: dict[int, str] = {}

        def visit(typedef: TypeDef, path: list[TypeDef]) -> None:
            state[id(typedef)] = "visiting"
            for child in _contained_typedefs(typedef.kind):
                if state.get(id(child)) == "visiting":
                    names = [t.name for t in path[path.index(child) :]] + [child.name]
                    span = self._types[id(child)].ast.name.span
                    raise span.error(
                        f"recursive type '{child.name}' ({' -> '.join(names)}): WIT types "
                        "cannot contain themselves"
                    )
                if id(child) not in state:
                    visit(child, [*path, child])
            state[id(typedef)] = "done"

        for info in self._types.values():
            if id(info.typedef) not in state:
                visit(info.typedef, [info.typedef])


def _contained_typedefs(kind: TypeKind) -> Iterator[TypeDef]:
    """Yields the named types that ``kind`` contains by value (not through handles)."""
    types: list[WitType | None] = []
    if isinstance(kind, RecordKind):
        types = [f.type for f in kind.fields]
    elif isinstance(kind, VariantKind):
        types = [c.type for c in kind.cases]
    elif isinstance(kind, AliasKind):
        types = [kind.target]
    while types:
        t = types.pop()
        if isinstance(t, TypeDef):
            yield t
        elif isinstance(t, ListType):
            types.append(t.element)
        elif isinstance(t, OptionType):
            types.append(t.inner)
        elif isinstance(t, ResultType):
            types += [t.ok, t.err]
        elif isinstance(t, TupleType):
            types += t.elements


def _check_unique(idents: Iterable[Ident], where: str, what: str) -> None:
    seen: dict[str, Ident] = {}
    for ident in idents:
        previous = seen.setdefault(ident.name.lower(), ident)
        if previous is not ident:
            raise ident.span.error(
                f"duplicate {what} '{ident.name}' in {where}: already defined at {previous.span}"
            )


def _function_names(info: _IfaceInfo) -> set[str]:
    return {item.name.name for item in info.ast.items if isinstance(item, FuncAst)}
