"""``wasmplug new``: a Rust plugin crate for a host's WIT world.

:func:`new_plugin` writes a crate that builds as is: ``Cargo.toml`` (the guest SDK as a
path dependency, the SDK's fake host for native tests), the world's WIT with its
``deps/``, ``src/lib.rs`` with a stub for every export of the world and a native unit
test per export a test can call (it compares the answer with the stub's), and a
``README.md`` saying how to build, test and call it.

The Rust text comes from one function over the WIT model, :func:`_rust`, which gives
for a type both its Rust type (as ``wasmplug_guest::generate!``, i.e. wit-bindgen,
names it in export signatures) and a stub value of that type. Stubs return a valid
value (zero, empty, ``None``, ``Ok`` of a stub, a variant's first case) wherever one
exists, so the crate loads and answers at once; only a function that must return a
handle to a resource the host owns gets ``todo!()``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import attrs

from . import _wit
from ._bindings import world_typedefs
from ._exceptions import WitError
from ._host import check_host_wit_copies, host_interface

__all__ = ["find_sdk", "new_plugin"]

#: The ``wasmplug:host`` interfaces that ``wasmplug_guest::generate!`` remaps: a world
#: must import all of them (``include wasmplug:host/capabilities``).
_REMAPPED = ("types", "log", "config", "kv", "http")

#: Environment variable naming the guest SDK directory (``guest-sdk-rust/``).
SDK_ENV = "WASMPLUG_GUEST_SDK"

_CRATE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")

# Rust keywords (strict and reserved) that wit-bindgen escapes with a trailing `_`.
_KEYWORDS = frozenset(
    [
        "as",
        "async",
        "await",
        "break",
        "const",
        "continue",
        "crate",
        "dyn",
        "else",
        "enum",
        "extern",
        "false",
        "fn",
        "for",
        "if",
        "impl",
        "in",
        "let",
        "loop",
        "match",
        "mod",
        "move",
        "mut",
        "pub",
        "ref",
        "return",
        "self",
        "static",
        "struct",
        "super",
        "trait",
        "true",
        "type",
        "unsafe",
        "use",
        "where",
        "while",
        "abstract",
        "become",
        "box",
        "do",
        "final",
        "gen",
        "macro",
        "override",
        "priv",
        "try",
        "typeof",
        "unsized",
        "virtual",
        "yield",
    ]
)

_PRIMITIVES = {
    "bool": ("bool", "false"),
    "s8": ("i8", "0"),
    "s16": ("i16", "0"),
    "s32": ("i32", "0"),
    "s64": ("i64", "0"),
    "u8": ("u8", "0"),
    "u16": ("u16", "0"),
    "u32": ("u32", "0"),
    "u64": ("u64", "0"),
    "f32": ("f32", "0.0"),
    "f64": ("f64", "0.0"),
    "char": ("char", "' '"),
    "string": ("String", "String::new()"),
}


def _snake(name: str) -> str:
    """A WIT (kebab-case) name as wit-bindgen writes a Rust function, field or module."""
    ident = name.lstrip("%").replace("-", "_").lower()
    return f"{ident}_" if ident in _KEYWORDS else ident


def _camel(name: str) -> str:
    """A WIT name as wit-bindgen writes a Rust type or case (``ultra-violet`` ->
    ``UltraViolet``)."""
    return "".join(word[:1].upper() + word[1:].lower() for word in name.lstrip("%").split("-"))


@attrs.frozen
class _Rust:
    """A WIT type in Rust: its type text and a stub value (``None``: none can be made
    without the host)."""

    type: str
    value: str | None


class _Crate:
    """What the Rust text of one world needs: where each named type lives, the ``use``
    lines that make short names work, and the stub structs of exported resources."""

    def __init__(self, world: _wit.World) -> None:
        self.world = world
        # The module of every interface the world imports or exports, by qualified name.
        self.modules: dict[str, str] = {}
        self.exported: set[str] = set()
        for key, item in world.imports.items():
            if isinstance(item, _wit.Interface):
                self.modules[item.qualified_name] = self._module(item, key)
        for key, item in world.exports.items():
            if isinstance(item, _wit.Interface):
                self.modules[item.qualified_name] = "exports::" + self._module(item, key)
                self.exported.add(item.qualified_name)
        # Named types wit-bindgen defines at the crate root: the world's own and those it
        # `use`s, by local name.
        self.root: dict[int, str] = {id(t): _camel(k) for k, t in world.types.items()}
        roots = set(self.root.values())
        #: The struct that implements the exports.
        self.plugin = "Plugin" if "Plugin" not in roots else "ThePlugin"
        self.taken: set[str] = roots | {"Guest", self.plugin}
        self.uses: dict[str, str] = {}  # short name -> full path
        self.impls: dict[int, str] = {}  # exported resource -> its stub struct
        # Whether generate! can derive PartialEq for the world's records and variants
        # (so tests can compare answers): not when one holds a resource handle.
        self.derives = not any(_is_compound(t) and _has_handles([t]) for t in world_typedefs(world))

    def comparable(self, t: _wit.WitType | None) -> bool:
        """Whether values of ``t`` implement ``PartialEq`` in the generated crate."""
        for node in _wit.walk(t):
            if isinstance(node, _wit.TypeDef):
                if node.owner.startswith("wasmplug:host/"):
                    return False  # the SDK's own bindings
                if _is_compound(node) and not self.derives:
                    return False
        return True

    @staticmethod
    def _module(iface: _wit.Interface, key: str) -> str:
        if iface.name is None or iface.package is None:
            return _snake(iface.plain_name or key)
        pkg = iface.package
        if str(pkg).startswith("wasmplug:host@"):
            return f"::wasmplug_guest::bindings::wasmplug::host::{_snake(iface.name)}"
        return f"{_snake(pkg.namespace)}::{_snake(pkg.name)}::{_snake(iface.name)}"

    def short(self, module: str, name: str) -> str:
        """``name`` of ``module`` as the code writes it: bare, with a ``use`` line, unless
        that would clash with another name."""
        if not module:
            return name
        full = f"{module}::{name}"
        if self.uses.get(name) == full:
            return name
        if name in self.taken:
            return full if full.startswith("::") else f"crate::{full}"
        self.taken.add(name)
        self.uses[name] = full
        return name

    def named(self, t: _wit.TypeDef, suffix: str = "") -> str:
        """The Rust name of a named type (``suffix`` ``Borrow``: its borrow wrapper)."""
        if id(t) in self.root and not suffix:
            return self.root[id(t)]
        if t.owner == self.world.qualified_name:
            return _camel(t.name) + suffix
        module = self.modules.get(t.owner)
        if module is None:
            raise WitError(
                f"world {self.world.qualified_name}: cannot place type {t.name!r} of "
                f"{t.owner} in the generated crate"
            )
        return self.short(module, _camel(t.name) + suffix)

    def exports_resource(self, t: _wit.TypeDef) -> bool:
        return t.owner in self.exported

    def impl_name(self, t: _wit.TypeDef) -> str:
        """The stub struct implementing an exported resource."""
        if id(t) not in self.impls:
            name = f"My{_camel(t.name)}"
            while name in self.taken:
                name += "Impl"
            self.taken.add(name)
            self.impls[id(t)] = name
        return self.impls[id(t)]


def _rust(t: _wit.WitType, crate: _Crate) -> _Rust:
    """The Rust type of a WIT type in an exported function's signature (as
    ``wasmplug_guest::generate!`` names it) and a stub value of that type.

    Raises:
        WitError: The type is one wasmplug cannot run yet (``future``, ``stream``,
            ``error-context``, ``map``, fixed-length lists).
    """
    return _RustOf(crate).visit(t)


class _RustOf(_wit.TypeVisitor[_Rust]):
    """:func:`_rust` as a walk over the WIT model: one method per kind of type."""

    __slots__ = ("crate",)

    def __init__(self, crate: _Crate) -> None:
        self.crate = crate

    def visit_primitive(self, t: _wit.Primitive) -> _Rust:
        return _Rust(*_PRIMITIVES[t.name])

    def visit_list(self, t: _wit.ListType) -> _Rust:
        return _Rust(f"Vec<{self.visit(t.element).type}>", "Vec::new()")

    def visit_option(self, t: _wit.OptionType) -> _Rust:
        return _Rust(f"Option<{self.visit(t.inner).type}>", "None")

    def visit_result(self, t: _wit.ResultType) -> _Rust:
        ok = self.visit(t.ok) if t.ok is not None else _Rust("()", "()")
        err = self.visit(t.err) if t.err is not None else _Rust("()", "()")
        value = (
            f"Ok({ok.value})"
            if ok.value is not None
            else (f"Err({err.value})" if err.value is not None else None)
        )
        return _Rust(f"Result<{ok.type}, {err.type}>", value)

    def visit_tuple(self, t: _wit.TupleType) -> _Rust:
        parts = [self.visit(e) for e in t.elements]
        comma = "," if len(parts) == 1 else ""
        values = [p.value for p in parts]
        value = None if None in values else f"({', '.join(map(str, values))}{comma})"
        return _Rust(f"({', '.join(p.type for p in parts)}{comma})", value)

    def visit_handle(self, t: _wit.HandleType) -> _Rust:
        crate, resource = self.crate, t.resource
        if crate.exports_resource(resource):
            if t.borrow:
                return _Rust(f"{crate.named(resource, 'Borrow')}<'_>", None)
            name = crate.named(resource)
            return _Rust(name, f"{name}::new({crate.impl_name(resource)})")
        name = crate.named(resource)
        return _Rust(f"&{name}" if t.borrow else name, None)

    def visit_unsupported(self, t: _wit.Unsupported) -> _Rust:
        raise WitError(
            f"world {self.crate.world.qualified_name} uses {t.text}, which wasmplug "
            "cannot run yet: the scaffold has no Rust for it"
        )

    # Named types: records, variants, enums and flags by name; aliases by name with
    # the stub of what they stand for.

    def visit_alias(self, t: _wit.TypeDef, kind: _wit.AliasKind) -> _Rust:
        return _Rust(self.crate.named(t), self.visit(kind.target).value)

    def visit_resource(self, t: _wit.TypeDef, kind: _wit.ResourceKind) -> _Rust:
        return self.visit_handle(_wit.HandleType(t, borrow=False))

    def visit_record(self, t: _wit.TypeDef, kind: _wit.RecordKind) -> _Rust:
        name = self.crate.named(t)
        fields = [(f.name, self.visit(f.type).value) for f in kind.fields]
        if any(v is None for _, v in fields):
            return _Rust(name, None)
        inner = ", ".join(f"{_snake(n)}: {v}" for n, v in fields)
        return _Rust(name, f"{name} {{ {inner} }}")

    def visit_variant(self, t: _wit.TypeDef, kind: _wit.VariantKind) -> _Rust:
        name = self.crate.named(t)
        for case in kind.cases:
            if case.type is None:
                return _Rust(name, f"{name}::{_camel(case.name)}")
            payload = self.visit(case.type).value
            if payload is not None:
                return _Rust(name, f"{name}::{_camel(case.name)}({payload})")
        return _Rust(name, None)

    def visit_enum(self, t: _wit.TypeDef, kind: _wit.EnumKind) -> _Rust:
        name = self.crate.named(t)
        return _Rust(name, f"{name}::{_camel(kind.cases[0].name)}")

    def visit_flags(self, t: _wit.TypeDef, kind: _wit.FlagsKind) -> _Rust:
        name = self.crate.named(t)
        return _Rust(name, f"{name}::empty()")


# --- the crate's files -------------------------------------------------------------------


def _doc(text: str, indent: str) -> list[str]:
    return [f"{indent}///{' ' if line else ''}{line}".rstrip() for line in text.splitlines()]


def _is_compound(t: _wit.TypeDef) -> bool:
    """Whether ``t`` is a record or variant (what ``generate!`` derives traits for)."""
    return isinstance(t.kind, _wit.RecordKind | _wit.VariantKind)


def _is_resource(t: _wit.WitType) -> bool:
    return isinstance(t, _wit.TypeDef) and isinstance(t.kind, _wit.ResourceKind)


def _has_handles(types: Iterable[_wit.WitType | None]) -> bool:
    return any(
        isinstance(node, _wit.HandleType) or _is_resource(node)
        for t in types
        for node in _wit.walk(t)
    )


@attrs.frozen
class _Stub:
    """One exported function: its Rust text and, when it can run natively, a test."""

    lines: list[str]
    test: list[str] | None


def _function(
    f: _wit.Function,
    crate: _Crate,
    *,
    rust_name: str,
    call: str,
    test_name: str = "",
    self_param: bool = False,
    returns_self: str | None = None,
) -> _Stub:
    """The stub of an exported function (``call``: how a test calls it, e.g.
    ``Plugin::evaluate``)."""
    if f.is_async:
        raise WitError(
            f"world {crate.world.qualified_name}: {f.name} is an async func, which "
            "wasmplug cannot run yet"
        )
    params = f.params[1:] if self_param else f.params
    rendered = [(_snake(p.name), _rust(p.type, crate)) for p in params]
    signature = ", ".join(
        ([] if not self_param else ["&self"]) + [f"{n}: {r.type}" for n, r in rendered]
    )
    result = _rust(f.result, crate) if f.result is not None else None
    value: str | None
    if returns_self is not None:
        ret, value = " -> Self", returns_self
    elif result is None:
        ret, value = "", ""
    else:
        ret, value = f" -> {result.type}", result.value
    lines = [*_doc(f.docs, "    "), f"    fn {rust_name}({signature}){ret} {{"]
    if value is None:
        lines.append(f'        todo!("{f.name}: return a resource handle")')
    else:
        lines.append("        // TODO: implement.")
        if value:
            lines.append(f"        {value}")
    lines.append("    }")
    test = None
    callable_natively = not self_param and returns_self is None and value is not None
    if callable_natively and not _has_handles([f.result, *(p.type for p in f.params)]):
        args = ", ".join(str(r.value) for _, r in rendered)
        test = [
            "    #[test]",
            f"    fn {(test_name or rust_name).rstrip('_')}_answers() {{",
            "        testing::reset();",
        ]
        if result is None:
            test.append(f"        {call}({args});")
            test.append("        // Check what it logged: `testing::logged()`.")
        elif crate.comparable(f.result):
            test += [
                f"        let answer = {call}({args});",
                "        // The stub's answer: change it to what your implementation must",
                "        // return, and check what it logged with `testing::logged()`.",
                f"        let expected: {result.type} = {value};",
                "        assert_eq!(answer, expected);",
            ]
        else:
            test += [
                f"        let answer = {call}({args});",
                "        // Check what your implementation returns (its type has no",
                "        // `PartialEq`) and what it logged: `testing::logged()`.",
                "        let _ = answer;",
            ]
        test.append("    }")
    return _Stub(lines, test)


def _lib_rs(world: _wit.World, crate: _Crate, world_spec: str) -> str:
    """``src/lib.rs``: the bindings, the stubs, the ``export!`` and the native tests."""
    blocks: list[list[str]] = []
    tests: list[list[str]] = []
    world_fns = [f for f in world.exports.values() if isinstance(f, _wit.Function)]
    if world_fns:
        body: list[str] = []
        for f in world_fns:
            stub = _function(
                f, crate, rust_name=_snake(f.name), call=f"{crate.plugin}::{_snake(f.name)}"
            )
            body += [*stub.lines, ""]
            if stub.test:
                tests.append(stub.test)
        blocks.append([f"impl Guest for {crate.plugin} {{", *body[:-1], "}"])
    resource_blocks: list[list[str]] = []
    for item in world.exports.values():
        if not isinstance(item, _wit.Interface):
            continue
        module = crate.modules[item.qualified_name]
        trait = f"{module}::Guest"
        body = []
        for res in item.types.values():
            if res.owner != item.qualified_name or not isinstance(res.kind, _wit.ResourceKind):
                continue
            impl = crate.impl_name(res)
            body += [f"    type {_camel(res.name)} = {impl};", ""]
            methods: list[str] = []
            for m in res.kind.methods:
                if m.name.startswith("[constructor]"):
                    stub = _function(m, crate, rust_name="new", call="", returns_self=impl)
                elif m.name.startswith("[method]"):
                    stub = _function(
                        m,
                        crate,
                        rust_name=_snake(m.name.split(".", 1)[1]),
                        call="",
                        self_param=True,
                    )
                else:
                    stub = _function(m, crate, rust_name=_snake(m.name.split(".", 1)[1]), call="")
                methods += [*stub.lines, ""]
            docs = _doc(res.docs, "")
            resource_blocks.append(
                [
                    *docs,
                    f"/// The plugin's `{res.name}` resource (`{item.qualified_name}`).",
                    f"pub struct {impl};",
                    "",
                    f"impl {module}::Guest{_camel(res.name)} for {impl} {{",
                    *methods[:-1],
                    "}",
                ]
            )
        for f in item.functions.values():
            stub = _function(
                f,
                crate,
                rust_name=_snake(f.name),
                call=f"<{crate.plugin} as {trait}>::{_snake(f.name)}",
                test_name=f"{module.rsplit('::', 1)[-1]}_{_snake(f.name)}",
            )
            body += [*stub.lines, ""]
            if stub.test:
                tests.append(stub.test)
        if body:
            blocks.append([f"impl {trait} for {crate.plugin} {{", *body[:-1], "}"])

    out = [
        f"//! The `{world.name}` plugin: implements world `{world.qualified_name}`.",
        "//!",
        "//! Every export starts as a stub that returns an empty or zero value (see",
        "//! README.md). Replace the bodies marked `TODO` with the plugin's logic.",
        "",
        "// Stubs ignore their arguments: remove this once every function is implemented.",
        "#![allow(unused_variables)]",
        "",
        *(
            [
                "// PartialEq lets the tests compare answers.",
                "wasmplug_guest::generate!({",
                '    path: "wit",',
                f'    world: "{world_spec}",',
                "    additional_derives: [PartialEq],",
                "});",
            ]
            if crate.derives
            else [f'wasmplug_guest::generate!({{ path: "wit", world: "{world_spec}" }});']
        ),
        "",
    ]
    header = out
    # Every named type of the exports' signatures by its short name (stubs and tests
    # use some; the implementation will want the others).
    for f in _exported_functions(world):
        for t in [f.result, *(p.type for p in f.params)]:
            for node in _wit.walk(t):
                if isinstance(node, _wit.TypeDef):
                    crate.named(node)
    out = [
        "/// The plugin: one implementation of every export of the world.",
        f"pub struct {crate.plugin};",
        "",
    ]
    for block in [*blocks, *resource_blocks]:
        out += [*block, ""]
    out += [f"export!({crate.plugin});", ""]
    out += [
        "/// Native unit tests (`cargo test`): the capability wrappers of `wasmplug_guest`",
        "/// (log, config, kv, http) run against the SDK's in-memory fake host,",
        "/// `wasmplug_guest::testing`.",
        "#[cfg(test)]",
        "mod tests {",
        *(["    use super::*;"] if tests else []),
        "    use wasmplug_guest::testing;",
        "",
    ]
    if not tests:
        out += [
            "    #[test]",
            "    fn fake_host_starts_empty() {",
            "        testing::reset();",
            "        assert!(testing::logged().is_empty());",
            "    }",
            "",
        ]
    for test in tests:
        out += [*test, ""]
    out[-1] = "}"
    text = "\n".join(out)
    groups: dict[str, list[str]] = {}
    for name, path in crate.uses.items():
        groups.setdefault(path.rsplit("::", 1)[0], []).append(name)
    uses = []
    if groups:
        uses.append("// The types of the world's exports, by their short names.")
    for module, names in sorted(groups.items()):
        listed = ", ".join(sorted(names))
        uses += ["#[allow(unused_imports)]", f"use {module}::{{{listed}}};"]
    return "\n".join([*header, *uses, *([""] if uses else []), text]) + "\n"


def _exported_functions(world: _wit.World) -> list[_wit.Function]:
    """Every function the plugin implements: world exports, exported interfaces'
    functions and their resources' methods."""
    found: list[_wit.Function] = []
    for item in world.exports.values():
        if isinstance(item, _wit.Function):
            found.append(item)
            continue
        found += item.functions.values()
        for t in item.types.values():
            if t.owner == item.qualified_name and isinstance(t.kind, _wit.ResourceKind):
                found += t.kind.methods
    return found


def _rustfmt(path: Path) -> None:
    """Formats a generated Rust file with ``rustfmt`` when it is installed (the text
    is valid Rust either way)."""
    rustfmt = shutil.which("rustfmt")
    if rustfmt is None:
        return
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(
            [rustfmt, "--edition", "2021", str(path)],
            capture_output=True,
            timeout=60,
            check=False,
        )


def _cargo_toml(name: str, sdk: Path) -> str:
    path = sdk.as_posix().replace("\\", "\\\\").replace('"', '\\"')
    return f"""[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
# The wasmplug guest SDK. It is not on crates.io: this is the guest-sdk-rust/
# directory of a wasmplug checkout.
wasmplug-guest = {{ path = "{path}" }}

[dev-dependencies]
# Native tests (`cargo test`) run against the SDK's in-memory fake host.
wasmplug-guest = {{ path = "{path}", features = ["fake-host"] }}

# A crate of its own, even when created inside another Cargo workspace.
[workspace]

# Plugins are small, single-threaded and must never unwind across the
# component boundary: optimise for size, one codegen unit, abort on panic.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "abort"
strip = "debuginfo"
"""


def _readme(name: str, world: _wit.World, sdk: Path) -> str:
    lib = name.replace("-", "_")
    script = sdk.parent / "scripts" / "build-wasm.sh"
    example = next((f for f in world.exports.values() if isinstance(f, _wit.Function)), None)
    if example is not None:
        args = "".join(f" '<{p.name} as JSON>'" for p in example.params)
        call = (
            f"wasmplug call build/wasm/{lib}.wasm {example.name}{args} "
            f"--wit wit --world {world.name}"
        )
    else:
        call = f"wasmplug inspect build/wasm/{lib}.wasm"
    own = [
        key
        for key, item in world.imports.items()
        if isinstance(item, _wit.Interface)
        and not key.startswith(("wasmplug:host/", "wasi:"))
        and item.functions
    ]
    needs = (
        ""
        if not own
        else (
            "\nThe world imports the host's own "
            + ("interface " if len(own) == 1 else "interfaces ")
            + ", ".join(f"`{k}`" for k in own)
            + ":\n`wasmplug call` cannot provide it: load the plugin from Python with an\n"
            "implementation (`imports=` of `wasmplug.load`, or the keyword argument of\n"
            "the generated class's `load`).\n"
        )
    )
    return f"""# {name}

A wasmplug plugin implementing the WIT world `{world.qualified_name}`
(`wit/`, with its dependencies in `wit/deps/`). Created by `wasmplug new`.

`src/lib.rs` has one stub per export of the world: each returns an empty or
zero value (`todo!()` where only the host could make one). Replace the bodies
marked `TODO`.

## Test natively

    cargo test

The tests in `src/lib.rs` call the exports directly and compare each answer
with the stub's: change the expected values as you implement the functions.
The SDK's capability wrappers (`wasmplug_guest::log`, `config`, `kv`, `http`)
run against its in-memory fake host, `wasmplug_guest::testing` (feature
`fake-host`, enabled for tests only in `Cargo.toml`): set configuration and
denials there, and read back what the plugin logged and stored.

## Build the component

With wasmplug's toolchain script (it sets up a `wasm32-wasip2` Rust toolchain
first, on machines without rustup's wasm targets too):

    {script} .

writes `build/wasm/{lib}.wasm` (with `--core`, the core module for wasmplug's
fast path, `build/wasm-core/{lib}.wasm`). With rustup's target installed, plain
cargo works too: `cargo build --release --target wasm32-wasip2` writes
`target/wasm32-wasip2/release/{lib}.wasm`.

## Call it from Python

    {call}

or generate typed bindings for the host,
`wasmplug bindgen wit --world {world.name} -o {lib}_bindings.py`, and load the
plugin with the generated class's `load`.
{needs}"""


def find_sdk(sdk: str | os.PathLike[str] | None = None) -> Path:
    """Finds the Rust guest SDK (the ``wasmplug-guest`` crate, not on crates.io).

    Args:
        sdk: Its directory; default ``$WASMPLUG_GUEST_SDK``, else the
            ``guest-sdk-rust/`` of the wasmplug checkout this package runs from.

    Returns:
        The SDK directory, absolute.

    Raises:
        FileNotFoundError: The directory has no ``Cargo.toml`` of ``wasmplug-guest``,
            or none was given and none is next to this package.
    """
    given = sdk if sdk is not None else os.environ.get(SDK_ENV)
    if given is not None:
        candidate = Path(os.fspath(given)).expanduser().resolve()
    else:
        candidate = Path(__file__).resolve().parents[2] / "guest-sdk-rust"
    manifest = candidate / "Cargo.toml"
    try:
        ok = re.search(r'^name\s*=\s*"wasmplug-guest"', manifest.read_text(), re.MULTILINE)
    except OSError:
        ok = None
    if ok:
        return candidate
    where = "given" if given is not None else "next to this wasmplug installation"
    raise FileNotFoundError(
        f"no Rust guest SDK at {candidate} ({where}): expected the guest-sdk-rust/ "
        f"directory of a wasmplug checkout, with the Cargo.toml of wasmplug-guest (the "
        f"SDK is not on crates.io); pass --sdk PATH or set {SDK_ENV}"
    )


def _check_world(world: _wit.World, wit: Path) -> None:
    missing = [i for i in _REMAPPED if host_interface(i) not in world.imports]
    if missing:
        raise WitError(
            f"world {world.qualified_name} does not import "
            f"{', '.join(host_interface(i) for i in missing)}: the guest SDK's generate! "
            "needs every wasmplug:host interface; add "
            f"`include {host_interface('capabilities')};` to the world (a plugin "
            "imports only the capabilities it calls)",
            path=str(wit),
        )


def new_plugin(
    name: str,
    wit: str | os.PathLike[str],
    world: str,
    output: str | os.PathLike[str] | None = None,
    *,
    sdk: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> Path:
    """Creates a Rust plugin crate for a WIT world.

    Args:
        name: The crate name (letters, digits, ``-`` and ``_``, starting with a letter).
        wit: The host's WIT: a directory (with ``deps/``) or a ``.wit`` file. It is
            copied into the crate's ``wit/``, symbolic links resolved.
        world: The world the plugin implements: its name in the main package, or
            ``ns:pkg/name@version``.
        output: The crate directory; default ``./NAME``.
        sdk: The guest SDK directory (see :func:`find_sdk`).
        force: Write into an existing non-empty directory: ``wit/`` is replaced,
            ``Cargo.toml``, ``Cargo.lock``, ``README.md``, ``.gitignore`` and
            ``src/lib.rs`` are overwritten, other files are left alone.

    Returns:
        The crate directory.

    Raises:
        ValueError: ``name`` is not a valid crate name.
        WitError: The WIT cannot be loaded (with its file, line and column), the world
            does not exist, does not include ``wasmplug:host/capabilities``, or uses a
            type or an ``async`` function wasmplug cannot run yet.
        FileNotFoundError: No guest SDK (see :func:`find_sdk`).
        FileExistsError: ``output`` exists and is not an empty directory, and ``force``
            is false.
        OSError: A file cannot be written.
    """
    if not _CRATE_NAME.match(name):
        raise ValueError(
            f"not a crate name: {name!r} (expected letters, digits, '-' and '_', "
            "starting with a letter)"
        )
    wit_path = Path(os.fspath(wit))
    resolve = _wit.load_wit(wit_path)
    chosen = resolve.world(world)
    check_host_wit_copies(wit_path)
    _check_world(chosen, wit_path)
    crate = _Crate(chosen)
    # generate! selects a world of the main package by name, others by qualified name.
    in_main = resolve.main_package.worlds.get(chosen.name) is chosen
    lib_rs = _lib_rs(chosen, crate, chosen.name if in_main else chosen.qualified_name)
    sdk_dir = find_sdk(sdk)

    target = Path(os.fspath(output)) if output is not None else Path(name)
    if target.exists() and not force:
        if not target.is_dir():
            raise FileExistsError(f"{target} exists and is not a directory")
        if any(target.iterdir()):
            raise FileExistsError(
                f"{target} exists and is not empty; pass --force to write into it"
            )
    target.mkdir(parents=True, exist_ok=True)
    wit_dir = target / "wit"
    if wit_dir.exists():
        shutil.rmtree(wit_dir)
    if wit_path.is_dir():
        shutil.copytree(wit_path, wit_dir, symlinks=False)
    else:
        wit_dir.mkdir()
        shutil.copy2(wit_path, wit_dir / wit_path.name)
    (target / "src").mkdir(exist_ok=True)
    (target / "src" / "lib.rs").write_text(lib_rs, encoding="utf-8")
    _rustfmt(target / "src" / "lib.rs")
    (target / "Cargo.toml").write_text(_cargo_toml(name, sdk_dir), encoding="utf-8")
    (target / "README.md").write_text(_readme(name, chosen, sdk_dir), encoding="utf-8")
    (target / ".gitignore").write_text("/target\n/build\n", encoding="utf-8")
    # The versions the SDK is built and tested with (and, in a wasmplug checkout,
    # the ones its shared target/ directory has compiled already).
    lock = sdk_dir.parent / "Cargo.lock"
    if lock.is_file():
        shutil.copy2(lock, target / "Cargo.lock")
    return target
