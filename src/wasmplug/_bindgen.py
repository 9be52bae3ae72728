"""``wasmplug bindgen``: typed Python source generated from a WIT world.

The generated module holds, for one world:

- the Python types of its named types, exactly as :class:`~wasmplug.TypeNamespace`
  makes them at run time (frozen ``attrs`` records, ``enum.Enum``, ``enum.Flag``, one
  ``attrs`` class per variant case and a union alias per variant, aliases as
  ``TypeAlias``);
- one :class:`~wasmplug.GuestError` subclass per named error type of a function's
  ``result`` (``<E>Exception``, with a typed ``value``);
- ``WORLD``, the :class:`~wasmplug.World` built at import time from the resolved WIT
  embedded as JSON (no WIT parsing) with the module's own classes registered, so the
  runtime's codecs lift values straight into them;
- a handle class per resource the world exports (a :class:`~wasmplug.ResourceHandle`
  subclass with a typed constructor, methods and static functions), registered so the
  runtime makes and takes exactly that class;
- a :class:`typing.Protocol` per interface the world imports from the host's own
  packages (every import except ``wasmplug:host/*`` and ``wasi:*``), and a typed
  ``Callable`` argument of ``load`` per function it imports outside an interface. For
  each resource such an interface defines, a Protocol of the host class's instances
  and one of the class (constructor and static functions); the interface's Protocol
  is generic in the host's class (``HostStoreProtocol[_CounterT]``), so mypy checks
  that the functions take and return instances of the class the host supplies;
- a class per exported interface and a class for the world, with one typed method per
  export, wrapping a :class:`~wasmplug.Plugin`.

The module contains no lifting or lowering of its own. Its text is deterministic and
already in ``ruff format`` style (line length 100).
"""

from __future__ import annotations

import keyword
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path, PurePath

import attrs

from . import _wit
from ._bindings import (
    TypeNamespace,
    class_name,
    describe,
    field_name,
    iter_typedefs,
    member_name,
    world_typedefs,
)
from ._exceptions import WitError
from ._host import check_host_wit_copies, defined_resources
from ._resources import RESERVED
from ._version import __version__
from ._world import World

__all__ = ["generate_bindings", "generate_bindings_for"]

_WIDTH = 100
#: Interfaces whose imports the runtime implements itself: no Protocol for them.
_RUNTIME_PREFIXES = ("wasmplug:host/", "wasi:")
_WORLD_MEMBERS = frozenset({"load", "close", "plugin", "last_call"})
_LOAD_PARAMETERS = frozenset({"cls", "source", "policy", "name", "sha256", "engine", "kv_store"})


def generate_bindings(wit_path: str | os.PathLike[str], world: str) -> str:
    """Generates the typed Python module for one WIT world.

    Args:
        wit_path: A ``.wit`` file, or a directory of them with dependencies in
            ``deps/``. It is named in the module's header as given.
        world: The world's name in the main package (``"tenant"``) or its qualified
            name (``"ns:pkg/tenant@1.0.0"``).

    Returns:
        The module's source text: deterministic, ``ruff format``-clean, and passing
        ``mypy --strict``.

    Raises:
        WitError: the WIT cannot be read or resolved, names no such world, or the
            world uses what bindings cannot express yet (``async`` functions).
    """
    resolve = _wit.load_wit(wit_path)
    check_host_wit_copies(Path(os.fspath(wit_path)))
    source = PurePath(os.fspath(wit_path)).as_posix()
    return generate_bindings_for(resolve, resolve.world(world), source=source)


def generate_bindings_for(resolve: _wit.Resolve, world: _wit.World, *, source: str) -> str:
    """Generates the typed Python module for a world of an already loaded WIT.

    Args:
        resolve: The resolved WIT that ``world`` belongs to.
        world: The world.
        source: Where the WIT came from, for the module's header.

    Returns:
        As :func:`generate_bindings`.

    Raises:
        WitError: as :func:`generate_bindings`.
    """
    return _Generator(resolve, world, source).render()


# --- text helpers ---------------------------------------------------------------------


def _docstring(text: str, indent: str) -> list[str]:
    """A docstring as source lines, its paragraphs wrapped to the line length."""
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').strip()
    width = _WIDTH - len(indent)
    lines: list[str] = []
    for number, raw in enumerate(text.splitlines()):
        stripped = raw.rstrip()
        lead = stripped[: len(stripped) - len(stripped.lstrip())]
        quotes = 6 if number == 0 else 0
        if len(stripped) + quotes <= width:
            lines.append(stripped)
        else:
            lines.extend(
                textwrap.wrap(
                    stripped.lstrip(),
                    width=width - quotes,
                    initial_indent=lead,
                    subsequent_indent=lead,
                    break_long_words=False,
                    break_on_hyphens=False,
                )
            )
    if text.endswith('"'):
        lines[-1] += " "
    if len(lines) == 1 and len(indent) + len(lines[0]) + 6 <= _WIDTH:
        return [f'{indent}"""{lines[0]}"""']
    out = [f'{indent}"""{lines[0]}']
    out += [f"{indent}{line}" if line else "" for line in lines[1:]]
    out.append(f'{indent}"""')
    return out


def _bracketed(head: str, items: list[str], tail: str, indent: str) -> list[str]:
    """``head`` + comma-separated ``items`` + ``tail`` split as ``ruff format`` does."""
    multiline = any("\n" in item for item in items)
    one = f"{indent}{head}{', '.join(items)}{tail}"
    if len(one) <= _WIDTH and not multiline:
        return [one]
    inner = indent + "    "
    hugged = inner + ", ".join(items)
    if len(hugged) <= _WIDTH and "*" not in items and not multiline:
        return [f"{indent}{head}", hugged, f"{indent}{tail}"]
    return [f"{indent}{head}", *(f"{inner}{item}," for item in items), f"{indent}{tail}"]


def _section(title: str, entries: list[tuple[str, str]]) -> str:
    """A Google-style docstring section (``Args:``, ``Attributes:``...)."""
    if not entries:
        return ""
    body = []
    for name, text in entries:
        first = textwrap.wrap(
            f"{name}: {' '.join(text.split())}",
            width=_WIDTH - 16,
            subsequent_indent="    ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        body += [f"    {line}".rstrip() for line in first]
    return "\n\n" + title + ":\n" + "\n".join(body)


def _string_chunks(text: str, indent: str) -> list[str]:
    """A long string as implicitly concatenated literals, one per line, each line
    within the line length."""
    room = _WIDTH - len(indent) - 2
    chunks: list[str] = []
    start, used = 0, 0
    for i, ch in enumerate(text):
        # Its length between double quotes: ``_literal`` picks single quotes only when
        # that needs fewer escapes, so this bounds the literal's length.
        cost = 2 if ch == '"' else len(_literal(ch)) - 2
        if used + cost > room:
            chunks.append(text[start:i])
            start, used = i, 0
        used += cost
    chunks.append(text[start:])
    return [indent + _literal(c) for c in chunks]


def _literal(text: str) -> str:
    """A string literal as ``ruff format`` writes it: double quotes unless the text
    holds more double quotes than single ones."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == quote:
            out.append("\\" + ch)
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])
    return quote + "".join(out) + quote


def _safe_name(name: str) -> str:
    return name + "_" if keyword.iskeyword(name) or keyword.issoftkeyword(name) else name


# --- the generator --------------------------------------------------------------------


@attrs.define
class _Export:
    call_name: str
    method: str
    func: _wit.Function


@attrs.define
class _ExportedInterface:
    attribute: str
    class_name: str
    interface: _wit.Interface
    functions: list[_Export]


@attrs.define
class _HostResource:
    """A resource the host defines: the Protocols of its instances and of its class,
    and the type variable standing for the host's class in generic Protocols."""

    typedef: _wit.TypeDef
    attribute: str
    protocol: str
    class_protocol: str
    #: The type variable of the class Protocol.
    class_typevar: str = ""
    #: The type variable of the interface's Protocol (and of ``load``).
    typevar: str = ""

    @property
    def has_class_protocol(self) -> bool:
        return any(not f.name.startswith("[method]") for f in _kind(self.typedef).methods)


@attrs.define
class _Imported:
    key: str
    argument: str
    class_name: str
    interface: _wit.Interface
    resources: list[_HostResource] = attrs.Factory(list)
    #: The type variables of the Protocol (invariant ones or covariant ``_co`` ones).
    typevars: list[str] = attrs.Factory(list)


def _kind(td: _wit.TypeDef) -> _wit.ResourceKind:
    assert isinstance(td.kind, _wit.ResourceKind)
    return td.kind


def _own_params(func: _wit.Function) -> list[_wit.Param]:
    """A resource function's parameters without ``self`` for a method."""
    return list(func.params[1:] if func.name.startswith("[method]") else func.params)


class _Generator:
    def __init__(self, resolve: _wit.Resolve, world: _wit.World, source: str) -> None:
        self.resolve = resolve
        self.world = world
        self.source = source
        self._check_supported()
        # The runtime's own view of the world: it refuses what cannot be run, and its
        # namespace gives the Python names (so both paths name every class alike).
        self.ns: TypeNamespace = World(world).types
        self._annotation = _Annotation(self)
        self.typedefs = [td for td in world_typedefs(world) if self._has_class(td)]
        self.used_names = set(self.ns)
        self.alias_names: dict[int, str] = {}
        for td in world_typedefs(world):
            if isinstance(td.kind, _wit.AliasKind):
                self.alias_names[id(td)] = self._claim(td)
        self.imports_needed: set[str] = set()
        self.error_types: dict[int, _wit.TypeDef] = {}
        self.world_exports: list[_Export] = []
        self.exported_interfaces: list[_ExportedInterface] = []
        self.imported: list[_Imported] = []
        self.imported_functions: list[tuple[str, str, _wit.Function]] = []
        #: The exported resources with the short name of their interface, for call names.
        self.guest_resources: list[tuple[str, _wit.TypeDef]] = []
        self.host_resources: dict[int, _HostResource] = {}
        #: How host resources are spelled in the signature being rendered (by id).
        self.scope: dict[int, str] = {}
        #: The type variables to define: name -> the Protocol bounding it.
        self.typevars: dict[str, str] = {}
        self._collect_functions()
        self.world_class = self._claim_plain(class_name(world.name), "World")

    # -- analysis ------------------------------------------------------------------

    def _check_supported(self) -> None:
        for func, where in self._all_functions():
            if func.is_async:
                raise WitError(
                    f"{where}: async functions are not supported by bindgen yet", path=self.source
                )

    def _host_interfaces(self) -> Iterator[tuple[str, _wit.Interface]]:
        for key, item in self.world.imports.items():
            if isinstance(item, _wit.Interface) and self._is_host_interface(key):
                yield key, item

    def _all_functions(self) -> Iterator[tuple[_wit.Function, str]]:
        for key, item in self.world.exports.items():
            if isinstance(item, _wit.Function):
                yield item, f"export {item.name}"
            else:
                for func in item.functions.values():
                    yield func, f"export {key}.{func.name}"
                for td in defined_resources(item):
                    for func in _kind(td).methods:
                        yield func, f"export {key}.{func.name}"
        for key, item in self.world.imports.items():
            if isinstance(item, _wit.Interface) and self._is_host_interface(key):
                for func in item.functions.values():
                    yield func, f"import {key}.{func.name}"
                for td in defined_resources(item):
                    for func in _kind(td).methods:
                        yield func, f"import {key}.{func.name}"
            elif isinstance(item, _wit.Function):
                yield item, f"import {item.name}"

    @staticmethod
    def _is_host_interface(key: str) -> bool:
        return not key.startswith(_RUNTIME_PREFIXES)

    def _has_class(self, td: _wit.TypeDef) -> bool:
        return _HAS_CLASS.visit_named(td)

    def _claim(self, td: _wit.TypeDef) -> str:
        name = class_name(td.name)
        if name in self.used_names:
            owner = td.owner.split("/")[-1].split("@")[0]
            name = class_name(owner) + name
        return self._claim_plain(name, "Alias")

    def _claim_plain(self, name: str, suffix: str) -> str:
        candidate = name
        n = 2
        while candidate in self.used_names:
            candidate = f"{name}{suffix}" if n == 2 else f"{name}{suffix}{n - 1}"
            n += 1
        self.used_names.add(candidate)
        return candidate

    def _collect_functions(self) -> None:
        for key, item in self.world.exports.items():
            if isinstance(item, _wit.Function):
                method = self._method_name(item.name, _WORLD_MEMBERS)
                self.world_exports.append(_Export(item.name, method, item))
                self._note_error(item)
            else:
                short = item.name or key
                attribute = self._method_name(short, _WORLD_MEMBERS)
                cls = self._claim_plain(class_name(short) + "Exports", "_")
                funcs = []
                for func in item.functions.values():
                    funcs.append(
                        _Export(f"{short}.{func.name}", self._method_name(func.name, ()), func)
                    )
                    self._note_error(func)
                self.exported_interfaces.append(_ExportedInterface(attribute, cls, item, funcs))
                for td in defined_resources(item):
                    self.guest_resources.append((short, td))
                    for func in _kind(td).methods:
                        self._note_error(func)
        for key, item in self.world.imports.items():
            if isinstance(item, _wit.Function):
                argument = self._method_name(item.name, _LOAD_PARAMETERS)
                self.imported_functions.append((key, argument, item))
                self._note_error(item)
                continue
            resources = defined_resources(item)
            if not self._is_host_interface(key) or not (item.functions or resources):
                # The runtime's own capabilities and WASI; or an interface imported only
                # for its types (e.g. through a world's ``use``): nothing to implement.
                continue
            short = item.name or item.plain_name or key
            cls = self._claim_plain(class_name(short) + "Protocol", "_")
            imported = _Imported(key, self._method_name(short, ()), cls, item)
            self.imported.append(imported)
            for func in item.functions.values():
                self._note_error(func)
            for td in resources:
                name = class_name(td.name)
                host = _HostResource(
                    td,
                    name,
                    self._claim_plain(name + "Protocol", "_"),
                    self._claim_plain(name + "ClassProtocol", "_"),
                )
                self.host_resources[id(td)] = host
                imported.resources.append(host)
                for func in _kind(td).methods:
                    self._note_error(func)
        for imported in self.imported:
            self._set_variances(imported)

    def _set_variances(self, imported: _Imported) -> None:
        """Picks each type variable of a host interface's Protocol: invariant where the
        host's class is taken as a parameter, else covariant (``_co``), as mypy wants."""

        def taken(func: _wit.Function, td: _wit.TypeDef) -> bool:
            return any(x is td for p in _own_params(func) for x in iter_typedefs(p.type))

        for host in imported.resources:
            td = host.typedef
            name = f"_{class_name(td.name)}T"
            invariant = any(
                taken(f, td) for f in _kind(td).methods if not f.name.startswith("[method]")
            )
            host.class_typevar = name if invariant else name + "_co"
            functions = imported.interface.functions.values()
            host.typevar = (
                name if invariant or any(taken(f, td) for f in functions) else name + "_co"
            )
            imported.typevars.append(host.typevar)
            for typevar in (host.class_typevar, host.typevar):
                self.typevars.setdefault(typevar, host.protocol)

    @staticmethod
    def _method_name(wit_name: str, reserved: frozenset[str] | tuple[()]) -> str:
        name = field_name(wit_name)
        return name + "_" if name in reserved else name

    def _note_error(self, func: _wit.Function) -> None:
        if isinstance(func.result, _wit.ResultType) and func.result.err is not None:
            target = _wit.unalias(func.result.err)
            if isinstance(target, _wit.TypeDef):
                self.error_types.setdefault(id(target), target)

    def error_name(self, func: _wit.Function) -> str | None:
        """The exception class raised for ``func``'s err, ``None`` without a result."""
        if not isinstance(func.result, _wit.ResultType):
            return None
        err = func.result.err
        target = _wit.unalias(err) if err is not None else None
        if isinstance(target, _wit.TypeDef):
            return self.ns.name_of(target) + "Exception"
        return "wasmplug.GuestError"

    # -- type expressions ----------------------------------------------------------

    def py(self, t: _wit.WitType | None) -> str:
        """The Python annotation for a WIT type (``None`` for no type)."""
        return "None" if t is None else self._annotation.visit(t)

    def returns(self, func: _wit.Function) -> str:
        """The Python return type of a call: the ok type for a ``result``."""
        if isinstance(func.result, _wit.ResultType):
            return self.py(func.result.ok)
        return self.py(func.result)

    # -- rendering -----------------------------------------------------------------

    def render(self) -> str:
        body: list[list[str]] = []
        for td in self.typedefs:
            body.extend(self.render_typedef(td))
        body.extend(self.render_aliases())
        for td in self.error_types.values():
            body.append(self.render_error(td))
        for short, td in self.guest_resources:
            body.append(self.render_handle_class(short, td))
        body.append(self.render_world_value())
        for imported in self.imported:
            for host in imported.resources:
                body.extend(self.render_host_resource(host))
            body.append(self.render_protocol(imported))
        for exported in self.exported_interfaces:
            body.append(self.render_exports_class(exported))
        body.append(self.render_world_class())
        head = self.render_head()
        blocks = ["\n".join(head)] + ["\n".join(b) for b in body]
        return "\n\n\n".join(blocks) + "\n"

    def render_head(self) -> list[str]:
        world = self.world
        lines = [
            f"# Generated by wasmplug {__version__} (`wasmplug bindgen`) from the WIT in",
            f"# {self.source}, world {world.qualified_name}.",
            "# Do not edit: regenerate with",
            f"#     wasmplug bindgen {self.source} --world {world.name} -o <this file>",
        ]
        doc = world.docs or f"Typed bindings for the WIT world ``{world.qualified_name}``."
        doc += (
            f"\n\nLoad a plugin with ``{self.world_class}.load(...)``; the classes below are"
            "\nthe Python types of the world's WIT types."
        )
        lines += _docstring(doc, "")
        lines += ["", "from __future__ import annotations", ""]
        std = []
        if "enum" in self.imports_needed:
            std.append("import enum")
        std.append("import os")
        if self.imported:
            std.append("from collections.abc import Callable, Mapping")
        elif self.imported_functions:
            std.append("from collections.abc import Callable")
        std.append("from types import TracebackType")
        typing_names = ["cast"]
        for extra in ("Protocol", "Self", "TypeVar"):
            if extra in self.imports_needed:
                typing_names.append(extra)
        if "TypeAlias" in self.imports_needed:
            typing_names.append("TypeAlias")
        std.append(f"from typing import {', '.join(sorted(typing_names, key=_isort_key))}")
        lines += std
        lines.append("")
        if "attrs" in self.imports_needed:
            lines.append("import attrs")
        lines.append("import wasmplug")
        return lines

    def render_typedef(self, td: _wit.TypeDef) -> list[list[str]]:
        """The class (or, for a variant, case classes and union alias) of a named type."""
        return _ClassSource(self).visit_named(td)

    def render_aliases(self) -> list[list[str]]:
        aliases = [td for td in world_typedefs(self.world) if isinstance(td.kind, _wit.AliasKind)]
        if not aliases:
            return []
        self.imports_needed.add("TypeAlias")
        done: set[int] = set()
        lines: list[str] = []

        def emit(td: _wit.TypeDef) -> None:
            if id(td) in done:
                return
            done.add(id(td))
            assert isinstance(td.kind, _wit.AliasKind)
            target = td.kind.target
            for dep in iter_typedefs(target):
                if isinstance(dep.kind, _wit.AliasKind):
                    emit(dep)
            if lines:
                lines.append("")
            doc = td.docs or f"WIT ``type {td.name}`` from ``{td.owner}``."
            lines.extend(f"#: {line}".rstrip() for line in doc.strip().splitlines())
            lines.append(f"{self.alias_names[id(td)]}: TypeAlias = {self.py(target)}")

        for td in aliases:
            emit(td)
        return [lines]

    def render_error(self, td: _wit.TypeDef) -> list[str]:
        name = self.ns.name_of(td)
        doc = (
            f"Raised when a function returns the ``err`` case with a ``{name}`` payload.\n\n"
            "Attributes:\n"
            f"    value: The ``{name}`` the plugin returned."
        )
        return [
            f"class {name}Exception(wasmplug.GuestError):",
            *_docstring(doc, "    "),
            "",
            f"    value: {name}",
        ]

    def render_world_value(self) -> list[str]:
        chunks = _string_chunks(self.resolve.source_json, "    ")
        if len(chunks) == 1 and len(chunks[0]) + 8 <= _WIDTH:
            lines = [f"_WIT_JSON = {chunks[0].strip()}"]
        else:
            lines = ["_WIT_JSON = (", *chunks, ")"]
        lines += [
            "",
            "#: The world, built from the embedded resolved WIT with this module's classes.",
            "WORLD: wasmplug.World = wasmplug.World._from_bindings(",
            "    _WIT_JSON,",
            f"    {_literal(self.world.qualified_name)},",
        ]
        classes = self.typedefs + [td for _, td in self.guest_resources]
        if classes:
            lines.append("    types={")
            for td in classes:
                key = f"({_literal(td.owner)}, {_literal(td.name)})"
                lines += _dict_entry(key, self.ns.name_of(td), "        ")
            lines.append("    },")
        else:
            lines.append("    types={},")
        if self.error_types:
            lines.append("    errors={")
            for td in self.error_types.values():
                key = f"({_literal(td.owner)}, {_literal(td.name)})"
                lines += _dict_entry(key, self.ns.name_of(td) + "Exception", "        ")
            lines.append("    },")
        else:
            lines.append("    errors={},")
        lines.append(")")
        return lines

    def _params(self, func: _wit.Function) -> list[tuple[str, str]]:
        return [(_safe_name(field_name(p.name)), self.py(p.type)) for p in _own_params(func)]

    def _method_doc(
        self, func: _wit.Function, *, call: bool, first: list[tuple[str, str]] | None = None
    ) -> str:
        doc = func.docs or f"Calls the WIT function ``{func.name}``."
        doc += _section(
            "Args",
            [
                *(first or []),
                *(
                    (name, f"``{describe(p.type)}``.")
                    for (name, _), p in zip(self._params(func), _own_params(func), strict=True)
                ),
            ],
        )
        if func.result is not None and not func.name.startswith("[constructor]"):
            result = func.result
            shown = result.ok if isinstance(result, _wit.ResultType) else result
            if shown is not None:
                doc += _section("Returns", [("", f"``{describe(shown)}``.")]).replace(
                    "    : ", "    "
                )
        raises: list[tuple[str, str]] = []
        error = self.error_name(func)
        if error is not None and call:
            raises.append((error, "the function returned the ``err`` case (in ``value``)."))
        elif error is not None:
            raises.append((error, "raise it with the error value to return ``err`` to the plugin."))
        if call:
            raises.append(
                ("wasmplug.CallError", "the call trapped or exceeded a limit of the policy.")
            )
        return doc + _section("Raises", raises)

    def render_method(self, method: str, func: _wit.Function, indent: str, body: str) -> list[str]:
        params = [f"{n}: {t}" for n, t in self._params(func)]
        ret = self.returns(func)
        lines = _bracketed(f"def {method}(", ["self", *params], f") -> {ret}:", indent)
        inner = indent + "    "
        lines += _docstring(self._method_doc(func, call=bool(body)), inner)
        if body:
            args = [_literal(body)] + [n for n, _ in self._params(func)]
            if ret == "None":
                lines += _bracketed("self._plugin.call(", args, ")", inner)
            else:
                head = f"return cast({_literal(ret)}, self._plugin.call("
                lines += _bracketed(head, args, "))", inner)
        return lines

    def render_protocol(self, imported: _Imported) -> list[str]:
        self.imports_needed.add("Protocol")
        iface = imported.interface
        doc = iface.docs or f"WIT interface ``{iface.qualified_name}``."
        doc += (
            f"\n\nThe host implements it for the import\n``{imported.key}``:"
            f"\npass an object of this shape as ``{imported.argument}=`` to"
            f" ``{self.world_class}.load``."
        )
        if imported.resources:
            doc += (
                "\nIt is generic in the host's class for each resource of the interface,"
                "\nwhich it exposes as an attribute (a class attribute will do)."
            )
        base = "Protocol"
        if imported.typevars:
            base = f"Protocol[{', '.join(imported.typevars)}]"
        lines = [f"class {imported.class_name}({base}):", *_docstring(doc, "    ")]
        self.scope = {id(h.typedef): h.typevar for h in imported.resources}
        for host in imported.resources:
            kind = host.class_protocol if host.has_class_protocol else "type"
            lines += [
                "",
                "    @property",
                f"    def {host.attribute}(self) -> {kind}[{host.typevar}]:",
                *_docstring(
                    f"The host's class implementing WIT resource ``{host.typedef.name}``.",
                    "        ",
                ),
            ]
        for func in iface.functions.values():
            lines.append("")
            lines += self.render_method(self._method_name(func.name, ()), func, "    ", "")
        self.scope = {}
        return lines

    def render_host_resource(self, host: _HostResource) -> list[list[str]]:
        """The Protocol of a host resource's instances, its type variables, and the
        Protocol of its class (constructor and static functions)."""
        self.imports_needed.update(("Protocol", "TypeVar"))
        td = host.typedef
        blocks: list[list[str]] = []
        doc = td.docs or f"WIT resource ``{td.name}``."
        doc += (
            f"\n\nThe instances of the host's class for resource ``{td.name}`` of"
            f"\n``{td.owner}``: one method per WIT method."
        )
        lines = [f"class {host.protocol}(Protocol):", *_docstring(doc, "    ")]
        self.scope = {id(td): "Self"}
        methods = [f for f in _kind(td).methods if f.name.startswith("[method]")]
        for func in methods:
            if any(x is td for p in _own_params(func) for x in iter_typedefs(p.type)) or any(
                x is td for x in iter_typedefs(func.result)
            ):
                self.imports_needed.add("Self")
            lines.append("")
            lines += self.render_method(self._resource_member(func), func, "    ", "")
        self.scope = {}
        blocks.append(lines)
        typevars = [
            f'{name} = TypeVar("{name}", bound={bound}'
            + (", covariant=True)" if name.endswith("_co") else ")")
            for name, bound in self.typevars.items()
            if bound == host.protocol
        ]
        blocks.append(typevars)
        if host.has_class_protocol:
            typevar = host.class_typevar
            doc = (
                f"The host's class for WIT resource ``{td.name}``: its constructor and"
                " static functions."
            )
            lines = [f"class {host.class_protocol}(Protocol[{typevar}]):", *_docstring(doc, "    ")]
            self.scope = {id(td): typevar}
            for func in _kind(td).methods:
                if func.name.startswith("[method]"):
                    continue
                lines.append("")
                if func.name.startswith("[constructor]"):
                    params = [f"{n}: {t}" for n, t in self._params(func)]
                    lines += _bracketed(
                        "def __call__(", ["self", *params], f") -> {typevar}:", "    "
                    )
                    lines += _docstring(self._method_doc(func, call=False), "        ")
                else:
                    lines += self.render_method(self._resource_member(func), func, "    ", "")
            self.scope = {}
            blocks.append(lines)
        return blocks

    @staticmethod
    def _resource_member(func: _wit.Function) -> str:
        """The Python name of a resource's method or static function."""
        return field_name(func.name.rpartition(".")[2])

    def _makers(self, td: _wit.TypeDef) -> list[str]:
        """The call names of the exports whose results can hold an ``own`` of ``td``."""
        found: list[str] = []
        for key, item in self.world.exports.items():
            if isinstance(item, _wit.Function):
                funcs = [(item.name, item)]
            else:
                short = item.name or key
                funcs = [(f"{short}.{f.name}", f) for f in item.functions.values()]
                for res in defined_resources(item):
                    funcs += [(f"{short}.{f.name}", f) for f in _kind(res).methods]
            for call_name, func in funcs:
                if any(
                    isinstance(n, _wit.HandleType) and not n.borrow and n.resource is td
                    for n in _wit.walk(func.result)
                ):
                    found.append(call_name)
        return found

    def render_handle_class(self, short: str, td: _wit.TypeDef) -> list[str]:
        """The handle class of a resource the plugin exports."""
        name = self.ns.name_of(td)
        doc = td.docs or f"WIT resource ``{td.name}``."
        doc += (
            f"\n\nA handle to a ``{td.name}`` of ``{td.owner}`` that lives in the plugin."
            "\nClose it (or use it as a context manager) to drop the resource."
        )
        funcs = _kind(td).methods
        constructor = next((f for f in funcs if f.name.startswith("[constructor]")), None)
        ctor = _literal(f"{short}.{constructor.name}") if constructor is not None else "None"
        if constructor is None:
            makers = ", ".join(f"``{n}``" for n in self._makers(td)) or "none"
            doc += (
                "\nIt has no constructor: only the plugin's functions returning one make"
                f" a handle (here: {makers})."
            )
        lines = [
            f"class {name}(wasmplug.ResourceHandle):",
            *_docstring(doc, "    "),
            "",
            "    __slots__ = ()",
            f"    _constructor = {ctor}",
        ]
        for func in funcs:
            call_name = f"{short}.{func.name}"
            params = [f"{n}: {t}" for n, t in self._params(func)]
            args = [_literal(call_name)] + [n for n, _ in self._params(func)]
            ret = self.returns(func)
            lines.append("")
            if func.name.startswith("[constructor]"):
                lines += _bracketed(
                    "def __init__(",
                    ["self", "plugin: wasmplug.Plugin", *params],
                    ") -> None:",
                    "    ",
                )
                first = [("plugin", "The plugin to create the resource in.")]
                lines += _docstring(self._method_doc(func, call=True, first=first), "        ")
                lines += _bracketed("super().__init__(", ["plugin", *args[1:]], ")", "        ")
                continue
            method = self._resource_member(func)
            if method in RESERVED:
                method += "_"
            if func.name.startswith("[method]"):
                head, call, first = ["self"], "self._call_method(", []
            else:
                lines.append("    @staticmethod")
                head = ["plugin: wasmplug.Plugin"]
                call = "plugin.call("
                first = [("plugin", "The plugin to call.")]
            lines += _bracketed(f"def {method}(", [*head, *params], f") -> {ret}:", "    ")
            lines += _docstring(self._method_doc(func, call=True, first=first), "        ")
            if ret == "None":
                lines += _bracketed(call, args, ")", "        ")
            else:
                lines += _bracketed(f"return cast({_literal(ret)}, {call}", args, "))", "        ")
        return lines

    def render_exports_class(self, exported: _ExportedInterface) -> list[str]:
        iface = exported.interface
        doc = iface.docs or f"WIT interface ``{iface.qualified_name}``."
        doc += f"\n\nThe functions the plugin exports as ``{iface.qualified_name}``."
        lines = [
            f"class {exported.class_name}:",
            *_docstring(doc, "    "),
            "",
            "    def __init__(self, plugin: wasmplug.Plugin) -> None:",
            "        self._plugin = plugin",
        ]
        for export in exported.functions:
            lines.append("")
            lines += self.render_method(export.method, export.func, "    ", export.call_name)
        return lines

    def render_world_class(self) -> list[str]:
        world = self.world
        name = self.world_class
        doc = world.docs or f"A plugin of the WIT world ``{world.qualified_name}``."
        doc += (
            "\n\nWraps a :class:`wasmplug.Plugin` loaded with :data:`WORLD`; create one with"
            "\n:meth:`load`. Close it (or use it as a context manager) to release it."
        )
        if self.exported_interfaces:
            doc += _section(
                "Attributes",
                [
                    (e.attribute, f"The exports of ``{e.interface.qualified_name}``.")
                    for e in self.exported_interfaces
                ],
            )
        lines = [f"class {name}:", *_docstring(doc, "    "), ""]
        lines += [
            "    def __init__(self, plugin: wasmplug.Plugin) -> None:",
            *_docstring(
                "Wraps a loaded plugin.\n\n"
                "Args:\n    plugin: A plugin loaded with ``world=WORLD``.\n\n"
                "Raises:\n    ValueError: ``plugin`` was loaded with another world.",
                "        ",
            ),
            "        if plugin.world is not WORLD:",
            '            raise ValueError(f"{plugin!r} was loaded with another world than WORLD")',
            "        self._plugin = plugin",
        ]
        lines += [
            f"        self.{e.attribute} = {e.class_name}(plugin)" for e in self.exported_interfaces
        ]
        lines.append("")
        lines += self._render_load()
        lines += [
            "",
            "    @property",
            "    def plugin(self) -> wasmplug.Plugin:",
            '        """The wrapped plugin (for :meth:`wasmplug.Plugin.call` and its stats)."""',
            "        return self._plugin",
            "",
            "    @property",
            "    def last_call(self) -> wasmplug.CallStats | None:",
            '        """The stats of the most recent call (``None`` before the first call)."""',
            "        return self._plugin.last_call",
            "",
            "    def close(self) -> None:",
            '        """Releases the plugin. Idempotent; later calls raise'
            ' ``PluginClosedError``."""',
            "        self._plugin.close()",
            "",
            f"    def __enter__(self) -> {name}:",
            "        return self",
            "",
            "    def __exit__(",
            "        self,",
            "        exc_type: type[BaseException] | None,",
            "        exc: BaseException | None,",
            "        tb: TracebackType | None,",
            "    ) -> None:",
            "        self.close()",
        ]
        for export in self.world_exports:
            lines.append("")
            lines += self.render_method(export.method, export.func, "    ", export.call_name)
        return lines

    def _render_load(self) -> list[str]:
        name = self.world_class
        params = [
            "cls",
            "source: str | os.PathLike[str] | bytes",
            "*",
            "policy: wasmplug.Policy | None = None",
            "name: str | None = None",
            "sha256: str | None = None",
            "engine: wasmplug.Engine | None = None",
            "kv_store: wasmplug.KvStore | None = None",
        ]
        params += [
            f"{i.argument}: {i.class_name}"
            + (f"[{', '.join(i.typevars)}]" if i.typevars else "")
            + " | Mapping[str, Callable[..., object]]"
            for i in self.imported
        ]
        for _, argument, func in self.imported_functions:
            signature = ", ".join(t for _, t in self._params(func))
            params.append(f"{argument}: Callable[[{signature}], {self.returns(func)}]")
        lines = ["    @classmethod"]
        lines += _bracketed("def load(", params, f") -> {name}:", "    ")
        args = [
            ("source", "Path to the plugin's component (``.wasm``), or its bytes."),
            ("policy", "Grants and limits; default: nothing granted, default limits."),
            ("name", "The plugin's name for errors and logs; default: from ``source``."),
            ("sha256", "Pin the plugin: its bytes must have this sha256 (hex)."),
            ("engine", "The engine to use; default: ``wasmplug.Engine.default()``."),
            ("kv_store", "Storage for the ``kv`` capability; default: in memory."),
        ]
        args += [
            (
                i.argument,
                f"The host's implementation of ``{i.key}``: an object with one method per"
                f"\nWIT function (:class:`{i.class_name}`), or a mapping of WIT function"
                "\nname to callable."
                + "".join(
                    f" Its class for resource ``{h.typedef.name}`` is attribute"
                    f" ``{h.attribute}`` (key ``{h.typedef.name}``)."
                    for h in i.resources
                ),
            )
            for i in self.imported
        ]
        args += [
            (
                argument,
                f"The host's implementation of the imported function ``{key}``"
                + (f": {' '.join(func.docs.split())}" if func.docs else ".")
                + (
                    f" Raise :class:`{self.error_name(func)}` to return ``err``."
                    if self.error_name(func)
                    else ""
                ),
            )
            for key, argument, func in self.imported_functions
        ]
        doc = (
            "Loads a plugin of this world (see :func:`wasmplug.load`)."
            + _section("Args", args)
            + "\n\nReturns:\n    The loaded plugin, ready to call."
            + "\n\nRaises:\n    wasmplug.LoadError: the plugin cannot be loaded, does not"
            " implement\n        the world, or imports what the host does not provide."
        )
        lines += _docstring(doc, "        ")
        call = [
            "source",
            "world=WORLD",
            "policy=policy",
            "name=name",
            "sha256=sha256",
            "engine=engine",
            "kv_store=kv_store",
        ]
        entries = [f"{_literal(i.key)}: {i.argument}" for i in self.imported]
        entries += [f"{_literal(key)}: {argument}" for key, argument, _ in self.imported_functions]
        if entries:
            item = "imports={" + ", ".join(entries) + "}"
            if len(item) + 17 > _WIDTH:
                inner_indent = " " * 20
                item = (
                    "imports={\n"
                    + "".join(f"{inner_indent}{e},\n" for e in entries)
                    + " " * 16
                    + "}"
                )
            call.append(item)
        inner = _bracketed("wasmplug.load(", call, ")", "            ")
        lines += ["        return cls(", *inner, "        )"]
        return lines


def _dict_entry(key: str, value: str, indent: str) -> list[str]:
    line = f"{indent}{key}: {value},"
    if len(line) <= _WIDTH:
        return [line]
    return [f"{indent}{key}: (", f"{indent}    {value}", f"{indent}),"]


def _isort_key(name: str) -> tuple[int, str]:
    """isort's (and ruff's) order within one import: CONSTANTS, Classes, functions."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def _union_lines(names: list[str]) -> list[str]:
    """The lines of a parenthesized union, as ruff formats it: on one line when that
    fits in the parentheses (indented by 4), else one member per line."""
    joined = " | ".join(names)
    if len(joined) + 4 <= _WIDTH:
        return [joined]
    return [names[0], *(f"| {n}" for n in names[1:])]


class _Annotation(_wit.TypeVisitor[str]):
    """The Python annotation a generated module writes for a WIT type."""

    __slots__ = ("_gen",)

    def __init__(self, gen: _Generator) -> None:
        self._gen = gen

    def visit_primitive(self, t: _wit.Primitive) -> str:
        if t.name == "bool":
            return "bool"
        if t.name in ("f32", "f64"):
            return "float"
        if t.name in ("char", "string"):
            return "str"
        return "int"

    def visit_list(self, t: _wit.ListType) -> str:
        elem = _wit.unalias(t.element)
        if isinstance(elem, _wit.Primitive) and elem.name == "u8":
            return "bytes"
        return f"list[{self.visit(t.element)}]"

    def visit_option(self, t: _wit.OptionType) -> str:
        inner = self.visit(t.inner)
        return inner if inner.endswith("| None") or inner == "None" else f"{inner} | None"

    def visit_result(self, t: _wit.ResultType) -> str:
        py = self._gen.py
        return f"wasmplug.Ok[{py(t.ok)}] | wasmplug.Err[{py(t.err)}]"

    def visit_tuple(self, t: _wit.TupleType) -> str:
        return "tuple[" + ", ".join(self.visit(e) for e in t.elements) + "]"

    def visit_handle(self, t: _wit.HandleType) -> str:
        gen = self._gen
        key = id(t.resource)
        if key in gen.scope:
            return gen.scope[key]
        if key in gen.host_resources:
            return gen.host_resources[key].protocol
        return gen.ns.name_of(t.resource)

    def visit_unsupported(self, t: _wit.Unsupported) -> str:  # pragma: no cover
        # World() refuses these before bindgen gets here.
        raise WitError(f"{t.text} ({t.construct}) is not supported by bindgen yet")

    def visit_alias(self, t: _wit.TypeDef, kind: _wit.AliasKind) -> str:
        return self._gen.alias_names[id(t)]

    def _named(self, t: _wit.TypeDef) -> str:
        return self._gen.ns.name_of(t)

    def visit_record(self, t: _wit.TypeDef, kind: _wit.RecordKind) -> str:
        return self._named(t)

    def visit_variant(self, t: _wit.TypeDef, kind: _wit.VariantKind) -> str:
        return self._named(t)

    def visit_enum(self, t: _wit.TypeDef, kind: _wit.EnumKind) -> str:
        return self._named(t)

    def visit_flags(self, t: _wit.TypeDef, kind: _wit.FlagsKind) -> str:
        return self._named(t)

    def visit_resource(self, t: _wit.TypeDef, kind: _wit.ResourceKind) -> str:
        return self._named(t)


class _HasClass(_wit.KindVisitor[bool]):
    """Whether a generated module defines a class for a named type (an alias becomes a
    type alias; a resource gets a handle class or a Protocol of its own)."""

    __slots__ = ()

    def visit_record(self, t: _wit.TypeDef, kind: _wit.RecordKind) -> bool:
        return True

    def visit_variant(self, t: _wit.TypeDef, kind: _wit.VariantKind) -> bool:
        return True

    def visit_enum(self, t: _wit.TypeDef, kind: _wit.EnumKind) -> bool:
        return True

    def visit_flags(self, t: _wit.TypeDef, kind: _wit.FlagsKind) -> bool:
        return True

    def visit_alias(self, t: _wit.TypeDef, kind: _wit.AliasKind) -> bool:
        return False

    def visit_resource(self, t: _wit.TypeDef, kind: _wit.ResourceKind) -> bool:
        return False


_HAS_CLASS = _HasClass()


class _ClassSource(_wit.KindVisitor[list[list[str]]]):
    """The source blocks of the class(es) of a named type (for which :class:`_HasClass`
    is true)."""

    __slots__ = ("_gen",)

    def __init__(self, gen: _Generator) -> None:
        self._gen = gen

    def _origin(self, t: _wit.TypeDef) -> str:
        return f"WIT {describe(t)} from ``{t.owner}``."

    def visit_record(self, t: _wit.TypeDef, kind: _wit.RecordKind) -> list[list[str]]:
        gen = self._gen
        gen.imports_needed.add("attrs")
        doc = (t.docs or self._origin(t)) + _section(
            "Attributes",
            [
                (field_name(f.name), f"``{describe(f.type)}``. {f.docs}".strip())
                for f in kind.fields
            ],
        )
        lines = ["@attrs.frozen", f"class {gen.ns.name_of(t)}:", *_docstring(doc, "    "), ""]
        lines += [f"    {field_name(f.name)}: {gen.py(f.type)}" for f in kind.fields]
        return [lines]

    def _enum(
        self, t: _wit.TypeDef, cases: tuple[_wit.EnumCase, ...], base: str, flags: bool
    ) -> list[list[str]]:
        self._gen.imports_needed.add("enum")
        entries = [(member_name(c.name), c.docs) for c in cases if c.docs]
        doc = (t.docs or self._origin(t)) + _section("Members", entries)
        lines = [f"class {self._gen.ns.name_of(t)}({base}):", *_docstring(doc, "    "), ""]
        for i, c in enumerate(cases):
            value = str(1 << i) if flags else _literal(c.name)
            lines.append(f"    {member_name(c.name)} = {value}")
        return [lines]

    def visit_enum(self, t: _wit.TypeDef, kind: _wit.EnumKind) -> list[list[str]]:
        return self._enum(t, kind.cases, "enum.Enum", flags=False)

    def visit_flags(self, t: _wit.TypeDef, kind: _wit.FlagsKind) -> list[list[str]]:
        return self._enum(t, kind.flags, "enum.Flag", flags=True)

    def visit_variant(self, t: _wit.TypeDef, kind: _wit.VariantKind) -> list[list[str]]:
        gen = self._gen
        name = gen.ns.name_of(t)
        gen.imports_needed.update(("attrs", "TypeAlias"))
        blocks = []
        case_names = []
        for case in kind.cases:
            case_name = name + class_name(case.name)
            case_names.append(case_name)
            doc = case.docs or f"The ``{case.name}`` case of ``{name}``."
            if case.type is not None:
                doc += _section("Attributes", [("value", f"``{describe(case.type)}``.")])
            lines = ["@attrs.frozen", f"class {case_name}:", *_docstring(doc, "    ")]
            if case.type is not None:
                lines += ["", f"    value: {gen.py(case.type)}"]
            blocks.append(lines)
        doc_lines = (t.docs or self._origin(t)).strip().splitlines()
        comment = [f"#: {line}".rstrip() for line in doc_lines]
        alias = [f"{name}: TypeAlias = {' | '.join(case_names)}"]
        if len(alias[0]) > _WIDTH:
            alias = [f"{name}: TypeAlias = (", *(f"    {c}" for c in _union_lines(case_names)), ")"]
        blocks[-1] = [*blocks[-1], "", "", *comment, *alias]
        return blocks

    def visit_alias(self, t: _wit.TypeDef, kind: _wit.AliasKind) -> list[list[str]]:
        raise AssertionError("an alias is rendered by render_aliases")  # pragma: no cover

    def visit_resource(self, t: _wit.TypeDef, kind: _wit.ResourceKind) -> list[list[str]]:
        raise AssertionError("a resource is rendered by its handle class")  # pragma: no cover
