"""The package's layout rules, checked on its source with :mod:`ast`.

wasmtime-py's private API (``wasmtime._ffi``, ``wasmtime._bindings``, underscore
attributes of its modules and objects) is used by ``_native.py`` only, so that a
wasmtime-py upgrade that moves it has one module to fix.
"""

from __future__ import annotations

import ast
import functools
import inspect
from pathlib import Path

import pytest
import wasmtime
import wasmtime.component

import wasmplug

PACKAGE = Path(wasmplug.__file__).resolve().parent
#: The one module allowed to use wasmtime-py's private API.
NATIVE = "_native.py"


def _wasmtime_private_names() -> set[str]:
    """Underscore names (not dunders) of wasmtime-py's modules and of the attributes
    of its public classes: ``_ffi``, ``_context``, ``_func``, ``_from_ptr``..."""
    names: set[str] = set()
    for module in (wasmtime, wasmtime.component):
        for name in dir(module):
            if name.startswith("_") and not name.startswith("__"):
                names.add(name)
            obj = getattr(module, name)
            if inspect.isclass(obj):
                names.update(a for a in dir(obj) if a.startswith("_") and not a.endswith("__"))
    return names


def _own_attribute_names(trees: dict[str, ast.Module]) -> set[str]:
    """Attribute names wasmplug defines itself (assigned on an object, declared in
    ``__slots__`` or in a class body, or a method): such names may coincide with
    wasmtime-py's (``_instance``, ``_engine``) and are wasmplug's own where used."""
    own: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                own.add(node.attr)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                own.add(node.name)
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    targets: list[ast.expr] = []
                    value: ast.expr | None = None
                    if isinstance(item, ast.Assign):
                        targets, value = item.targets, item.value
                    elif isinstance(item, ast.AnnAssign):
                        targets, value = [item.target], item.value
                    for target in targets:
                        if isinstance(target, ast.Name):
                            own.add(target.id)
                        if (
                            isinstance(target, ast.Name)
                            and target.id == "__slots__"
                            and isinstance(value, ast.Tuple | ast.List)
                        ):
                            own.update(
                                e.value
                                for e in value.elts
                                if isinstance(e, ast.Constant) and isinstance(e.value, str)
                            )
    return own


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def private_uses(tree: ast.Module, forbidden: set[str]) -> list[str]:
    """Where ``tree`` uses wasmtime-py's private API: an import of (or from) one of its
    underscore modules; an underscore attribute reached from a name bound to
    ``wasmtime`` or one of its modules; an attribute named in ``forbidden``.

    Returns:
        One ``"line N: <code>"`` per use, in source order.
    """
    found: list[tuple[int, str]] = []
    aliases: set[str] = set()  # names bound to wasmtime or a wasmtime module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] != "wasmtime":
                    continue
                if any(p.startswith("_") for p in parts[1:]):
                    found.append((node.lineno, f"import {alias.name}"))
                aliases.add(alias.asname or "wasmtime")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] != "wasmtime":
                continue
            for alias in node.names:
                if any(p.startswith("_") for p in parts[1:]) or alias.name.startswith("_"):
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
                elif alias.name == "component":
                    aliases.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        private = node.attr.startswith("_") and not node.attr.startswith("__")
        if (private and _root_name(node) in aliases) or node.attr in forbidden:
            found.append((node.lineno, ast.unparse(node)))
    return [f"line {line}: {code}" for line, code in sorted(set(found))]


@functools.cache
def _trees() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(PACKAGE)): ast.parse(path.read_text(), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _forbidden(trees: dict[str, ast.Module]) -> set[str]:
    """wasmtime-py's private names that wasmplug does not define itself."""
    return _wasmtime_private_names() - _own_attribute_names(trees)


def test_only_native_uses_wasmtime_private_api() -> None:
    """No module of wasmplug but ``_native.py`` imports ``wasmtime._ffi`` or
    ``wasmtime._bindings`` or touches an underscore attribute of wasmtime-py."""
    trees = _trees()
    forbidden = _forbidden(trees)
    offenders = {
        name: uses
        for name, tree in trees.items()
        if name != NATIVE and (uses := private_uses(tree, forbidden))
    }
    assert offenders == {}


def test_native_is_where_the_private_api_is() -> None:
    """The rule has teeth: ``_native.py`` itself is flagged by the same check (it
    imports ``wasmtime._ffi`` and calls ``Store._context``), and the attributes
    wasmplug needs from wasmtime-py are among those the check forbids elsewhere."""
    trees = _trees()
    forbidden = _forbidden(trees)
    assert {"_context", "_func", "_from_ptr", "_ffi", "_bindings"} <= forbidden
    uses = "\n".join(private_uses(trees[NATIVE], forbidden))
    assert "from wasmtime import _ffi" in uses
    assert "store._context" in uses
    assert "func._func" in uses


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("from wasmtime import _ffi as ffi", "from wasmtime import _ffi"),
        ("from wasmtime import _bindings", "from wasmtime import _bindings"),
        ("import wasmtime._ffi", "import wasmtime._ffi"),
        ("from wasmtime._ffi import dll", "from wasmtime._ffi import dll"),
        ("import wasmtime\nx = wasmtime._ffi.dll", "wasmtime._ffi"),
        ("import wasmtime\nwasmtime.Trap._from_ptr(p)", "wasmtime.Trap._from_ptr"),
        ("import wasmtime as wt\nwt.WasmtimeError._from_ptr(p)", "wt.WasmtimeError._from_ptr"),
        ("def f(store):\n    return store._context()", "store._context"),
        ("def f(func):\n    return func._func", "func._func"),
    ],
)
def test_the_check_finds_private_uses(source: str, flagged: str) -> None:
    """Each way of reaching wasmtime-py's private API is caught by the check."""
    uses = private_uses(ast.parse(source), _forbidden(_trees()))
    assert any(flagged in use for use in uses), uses


def test_the_check_allows_public_and_own_names() -> None:
    """Public wasmtime API and wasmplug's own underscore attributes pass."""
    source = (
        "import wasmtime\n"
        "import wasmtime.component as wc\n"
        "from . import _native\n"
        "from ._bindings import describe\n"
        "store = wasmtime.Store(wasmtime.Engine())\n"
        "self._instance = None\n"
        "x = wc.Linker\n"
        "_native.context_of(store)\n"
    )
    assert private_uses(ast.parse(source), _forbidden(_trees())) == []


def test_plugin_does_not_branch_on_its_backend() -> None:
    """``Plugin`` reaches its backend through the ``Backend`` interface only: its
    class body names no concrete backend (only ``load`` picks one)."""
    tree = _trees()["_plugin.py"]
    plugin = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Plugin")
    named = {n.id for n in ast.walk(plugin) if isinstance(n, ast.Name)}
    named |= {n.attr for n in ast.walk(plugin) if isinstance(n, ast.Attribute)}
    assert "Backend" in named
    assert not named & {"ComponentBackend", "CoreBackend", "ExtismBackend", "_fast"}


#: The classes that tell kinds of WIT types apart (type expressions and kinds of
#: named types).
WIT_KINDS = frozenset(
    {
        "Primitive",
        "ListType",
        "OptionType",
        "ResultType",
        "TupleType",
        "HandleType",
        "TypeDef",
        "Unsupported",
        "RecordKind",
        "VariantKind",
        "EnumKind",
        "FlagsKind",
        "AliasKind",
        "ResourceKind",
    }
)
#: The one module allowed to dispatch on kinds of WIT types: the model's visitors.
MODEL = "_wit/_model.py"


def _kind_names(node: ast.expr) -> set[str]:
    """The WIT kind classes a class expression names: ``_wit.RecordKind``,
    ``RecordKind`` or a union of them (``_wit.EnumKind | _wit.FlagsKind``)."""
    names: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name):
            if sub.value.id in ("_wit", "wit") and sub.attr in WIT_KINDS:
                names.add(sub.attr)
        elif isinstance(sub, ast.Name) and sub.id in WIT_KINDS:
            names.add(sub.id)
    return names


def kind_ladders(tree: ast.Module) -> list[str]:
    """The functions of ``tree`` that tell more than two kinds of WIT types apart, by
    ``isinstance`` or by ``match`` class patterns: dispatch ladders, which belong in
    the model's visitors.

    Returns:
        One ``"name (line N): kinds"`` per such function, in source order.
    """
    found: list[str] = []
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        kinds: set[str] = set()
        for node in ast.walk(func):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "isinstance"
                and len(node.args) == 2
            ):
                kinds |= _kind_names(node.args[1])
            elif isinstance(node, ast.MatchClass):
                kinds |= _kind_names(node.cls)
        if len(kinds) > 2:
            found.append(f"{func.name} (line {func.lineno}): {', '.join(sorted(kinds))}")
    return found


def test_only_the_model_dispatches_on_kinds_of_wit_types() -> None:
    """Naming, describing, comparing, class building, value conversion, layouts and
    code generation are visitors of the WIT model: no function outside the model tells
    more than two kinds of types apart, so a new kind of type is a model class and
    one method per visitor (which a type checker lists)."""
    offenders = {
        name: ladders
        for name, tree in _trees().items()
        if name != MODEL and (ladders := kind_ladders(tree))
    }
    assert offenders == {}


def test_the_kind_check_finds_ladders() -> None:
    """The rule has teeth: the model's own dispatch is flagged, and so is an
    ``isinstance`` ladder of the shape the visitors replaced; single checks pass."""
    ladders = "\n".join(kind_ladders(_trees()[MODEL]))
    assert "visit (line" in ladders
    assert "visit_named (line" in ladders
    ladder = (
        "def describe(t):\n"
        "    if isinstance(t, _wit.Primitive):\n        return t.name\n"
        "    if isinstance(t, _wit.ListType):\n        return 'list'\n"
        "    if isinstance(t.kind, _wit.EnumKind | _wit.FlagsKind):\n        return 'enum'\n"
    )
    assert kind_ladders(ast.parse(ladder)) == [
        "describe (line 1): EnumKind, FlagsKind, ListType, Primitive"
    ]
    single = "def f(t):\n    return isinstance(t, _wit.TypeDef) and isinstance(t.kind, AliasKind)\n"
    assert kind_ladders(ast.parse(single)) == []


# -- the Extism SDK's private API ------------------------------------------------------

#: The one module allowed to call libextism through the SDK's cffi library object.
EXTISM_NATIVE = "_extism_native.py"


def extism_private_uses(tree: ast.Module) -> list[str]:
    """Where ``tree`` uses the Extism SDK's private API: its cffi library package
    ``extism_sys`` (imported in any form), an underscore name imported from
    ``extism`` or its modules (``_lib``, ``_ffi``), or an underscore attribute reached
    from a name bound to ``extism``.

    Returns:
        One ``"line N: <code>"`` per use, in source order.
    """
    found: list[tuple[int, str]] = []
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root == "extism_sys":
                    found.append((node.lineno, f"import {alias.name}"))
                elif root == "extism":
                    aliases.add(alias.asname or "extism")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            root = node.module.split(".")[0]
            for alias in node.names:
                if root == "extism_sys" or (root == "extism" and alias.name.startswith("_")):
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
                elif root == "extism":
                    aliases.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and _root_name(node) in aliases
        ):
            found.append((node.lineno, ast.unparse(node)))
    return [f"line {line}: {code}" for line, code in sorted(set(found))]


def test_only_extism_native_uses_the_extism_sdks_private_api() -> None:
    """No module of wasmplug but ``_extism_native.py`` reaches libextism through the
    SDK's cffi library object or touches the SDK's underscore names; that module does
    (the check has teeth)."""
    trees = _trees()
    offenders = {
        name: uses
        for name, tree in trees.items()
        if name != EXTISM_NATIVE and (uses := extism_private_uses(tree))
    }
    assert offenders == {}
    assert "from extism_sys import lib" in "\n".join(extism_private_uses(trees[EXTISM_NATIVE]))


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("import extism_sys", "import extism_sys"),
        ("from extism_sys import ffi", "from extism_sys import ffi"),
        ("from extism.extism import _lib", "from extism.extism import _lib"),
        ("import extism\nextism.extism._ffi", "extism.extism._ffi"),
        ("import extism.extism as ex\nex._lib.extism_version()", "ex._lib"),
    ],
)
def test_the_extism_check_finds_private_uses(source: str, flagged: str) -> None:
    """Each way of reaching the Extism SDK's private API is caught."""
    uses = extism_private_uses(ast.parse(source))
    assert any(flagged in use for use in uses), uses


def test_the_extism_check_allows_public_names() -> None:
    """The SDK's public API and wasmplug's own native module pass."""
    source = "import extism\nextism.Plugin\nfrom . import _extism_native as native\nnative.call\n"
    assert extism_private_uses(ast.parse(source)) == []
