"""Tests for the WIT parser, resolver and model (``wasmplug._wit``)."""

from __future__ import annotations

import os
import random
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from wasmplug._exceptions import WitError
from wasmplug._wit import (
    AliasKind,
    EnumKind,
    FlagsKind,
    Function,
    HandleType,
    Interface,
    KindVisitor,
    ListType,
    OptionType,
    PackageName,
    Param,
    Primitive,
    RecordKind,
    Resolve,
    ResourceKind,
    ResultType,
    TupleType,
    TypeDef,
    TypeVisitor,
    Unsupported,
    VariantKind,
    World,
    _official,
    load_wit,
    parse_wit_text,
    resolve_from_json,
    unalias,
)

REPO = Path(__file__).resolve().parent.parent
HOST_WIT = REPO / "src" / "wasmplug" / "wit" / "host.wit"
RULE_ENGINE_WIT = REPO / "examples" / "rule-engine" / "wit"

U32 = Primitive("u32")
STRING = Primitive("string")


def wit(text: str, *, deps: Sequence[str] = ()) -> Resolve:
    return parse_wit_text(textwrap.dedent(text), deps=[textwrap.dedent(d) for d in deps])


def wit_error(text: str, *, deps: Sequence[str] = ()) -> WitError:
    with pytest.raises(WitError) as info:
        parse_wit_text(
            textwrap.dedent(text), deps=[textwrap.dedent(d) for d in deps], filename="t.wit"
        )
    return info.value


def where(err: WitError) -> tuple[str | None, int | None, int | None]:
    return err.path, err.line, err.column


def typedef(t: object) -> TypeDef:
    assert isinstance(t, TypeDef), t
    return t


def function(item: object) -> Function:
    assert isinstance(item, Function), item
    return item


def interface(item: object) -> Interface:
    assert isinstance(item, Interface), item
    return item


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# --- the repository's own WIT -----------------------------------------------------------


def test_host_wit_loads_as_a_single_file() -> None:
    """The shipped host.wit loads: package, interfaces, world and docs are all there."""
    resolve = load_wit(HOST_WIT)
    assert resolve.main == PackageName("wasmplug", "host", "0.1.0")
    package = resolve.main_package
    assert list(package.interfaces) == ["types", "log", "config", "kv", "http"]
    assert package.docs.startswith("Host capabilities that wasmplug offers to plugins.\n\n")
    world = resolve.world()
    assert world.qualified_name == "wasmplug:host/capabilities@0.1.0"
    # wit-parser adds `types`, which log, config and kv use, to the world's imports.
    assert list(world.imports) == [
        "wasmplug:host/types@0.1.0",
        "wasmplug:host/log@0.1.0",
        "wasmplug:host/config@0.1.0",
        "wasmplug:host/kv@0.1.0",
        "wasmplug:host/http@0.1.0",
    ]
    kv = package.interfaces["kv"]
    assert list(kv.functions) == ["get", "set", "delete", "list-keys"]
    get = kv.functions["get"]
    error = package.interfaces["types"].types["error"]
    assert get.result == ResultType(OptionType(ListType(Primitive("u8"))), error)
    assert get.docs == "Returns the value stored under `key`, or `none`."


def test_host_wit_use_shares_the_error_typedef() -> None:
    """`use types.{error}` in log, config and kv yields the one TypeDef of `types`."""
    package = load_wit(HOST_WIT).main_package
    error = package.interfaces["types"].types["error"]
    assert error.owner == "wasmplug:host/types@0.1.0"
    assert isinstance(error.kind, VariantKind)
    assert [c.name for c in error.kind.cases] == ["denied", "quota-exceeded", "invalid"]
    assert error.kind.cases[0].docs.startswith("The host did not grant this capability")
    for name in ("log", "config", "kv"):
        assert package.interfaces[name].types["error"] is error
    level = package.interfaces["log"].types["level"]
    assert isinstance(level.kind, EnumKind)
    assert [c.name for c in level.kind.cases] == ["trace", "debug", "info", "warn", "error"]


def test_rule_engine_tenant_world() -> None:
    """The example world resolves through the symlinked dep: exports, included imports, types."""
    resolve = load_wit(RULE_ENGINE_WIT)
    assert str(resolve.main) == "wasmplug-examples:rule-engine@0.1.0"
    assert set(resolve.packages) == {
        "wasmplug-examples:rule-engine@0.1.0",
        "wasmplug:host@0.1.0",
    }
    world = resolve.world("tenant")
    assert resolve.world("wasmplug-examples:rule-engine/tenant@0.1.0") is world
    assert resolve.world() is world
    assert list(world.exports) == ["setup", "evaluate", "evaluate-batch"]
    assert all(isinstance(item, Function) for item in world.exports.values())
    assert set(world.imports) == {
        "wasmplug:host/types@0.1.0",
        "wasmplug:host/log@0.1.0",
        "wasmplug:host/config@0.1.0",
        "wasmplug:host/kv@0.1.0",
        "wasmplug:host/http@0.1.0",
        "wasmplug-examples:rule-engine/types@0.1.0",
        "wasmplug-examples:rule-engine/airports@0.1.0",
    }
    host = resolve.packages["wasmplug:host@0.1.0"]
    assert world.imports["wasmplug:host/log@0.1.0"] is host.interfaces["log"]

    types = resolve.main_package.interfaces["types"]
    evaluate = function(world.exports["evaluate"])
    assert [p.name for p in evaluate.params] == ["flight"]
    flight = typedef(evaluate.params[0].type)
    assert flight is types.types["flight"] is world.types["flight"]
    assert flight.owner == "wasmplug-examples:rule-engine/types@0.1.0"
    assert isinstance(flight.kind, RecordKind)
    fields = {f.name: f for f in flight.kind.fields}
    assert fields["flight"].type == U32  # declared as `%flight: u32`
    assert fields["weather"].type == OptionType(types.types["weather"])
    assert fields["dep-delay"].docs == "Departure delay in minutes (negative: early)."
    assert evaluate.result == ListType(types.types["alert"])
    batch = function(world.exports["evaluate-batch"])
    assert [p.name for p in batch.params] == ["flights"]
    assert batch.params[0].type == ListType(types.types["flight"])
    assert batch.result == ListType(ListType(types.types["alert"]))
    setup = function(world.exports["setup"])
    assert setup.result == ResultType(types.types["tenant-info"], types.types["setup-error"])
    bad_config = typedef(types.types["setup-error"]).kind
    assert isinstance(bad_config, VariantKind)
    assert bad_config.cases[0].type == TupleType((STRING, STRING))


# --- type definitions and type expressions ----------------------------------------------

ALL_TYPES = """
    package local:demo@1.0.0;

    interface kinds {
        record r {
            a: u32,
            b: string,
        }
        variant human {
            baby,
            child(u32),
            adult,
        }
        enum errno { too-big, too-small }
        flags permissions { read, write, exec }
        type t1 = u32;
        type t2 = tuple<u32, u64>;
        type t4 = option<u32>;
        type t5 = result<_, errno>;
        type t6 = result<string>;
        type t7 = result<char, errno>;
        type t8 = result;
        type t9 = list<string>;
        type t10 = t9;
        type t11 = t10;
        type nested = list<option<tuple<u8, list<result<s64, list<r>>>>>>;
        type floats = tuple<f32, f64>;
        type trailing = tuple<bool, s8, s16, s32, u16,>;
    }
"""


def test_records_variants_enums_flags() -> None:
    """Records, variants (with and without payloads), enums and flags keep names and order."""
    types = wit(ALL_TYPES).interface("kinds").types
    record = types["r"].kind
    assert isinstance(record, RecordKind)
    assert [(f.name, f.type) for f in record.fields] == [("a", U32), ("b", STRING)]
    variant = types["human"].kind
    assert isinstance(variant, VariantKind)
    assert [(c.name, c.type) for c in variant.cases] == [
        ("baby", None),
        ("child", U32),
        ("adult", None),
    ]
    enum = types["errno"].kind
    assert isinstance(enum, EnumKind)
    assert [c.name for c in enum.cases] == ["too-big", "too-small"]
    flags = types["permissions"].kind
    assert isinstance(flags, FlagsKind)
    assert [f.name for f in flags.flags] == ["read", "write", "exec"]


def test_results_tuples_and_nested_generics() -> None:
    """Every result form, tuples, floats and deeply nested generics resolve."""
    types = wit(ALL_TYPES).interface("kinds").types
    errno = types["errno"]

    def target(name: str) -> object:
        kind = types[name].kind
        assert isinstance(kind, AliasKind)
        return kind.target

    assert target("t2") == TupleType((U32, Primitive("u64")))
    assert target("t4") == OptionType(U32)
    assert target("t5") == ResultType(None, errno)
    assert target("t6") == ResultType(STRING, None)
    assert target("t7") == ResultType(Primitive("char"), errno)
    assert target("t8") == ResultType(None, None)
    assert target("nested") == ListType(
        OptionType(
            TupleType(
                (
                    Primitive("u8"),
                    ListType(ResultType(Primitive("s64"), ListType(types["r"]))),
                )
            )
        )
    )
    f32, f64 = Primitive("f32"), Primitive("f64")
    assert target("floats") == TupleType((f32, f64))
    assert target("trailing") == TupleType(
        tuple(Primitive(n) for n in ("bool", "s8", "s16", "s32", "u16"))
    )


def test_aliases_stay_typedefs_and_unalias_follows_chains() -> None:
    """`type t11 = t10; type t10 = t9;` are TypeDefs of their own; unalias reaches list<string>."""
    types = wit(ALL_TYPES).interface("kinds").types
    t11 = types["t11"]
    assert isinstance(t11.kind, AliasKind)
    assert t11.kind.target is types["t10"]
    assert unalias(t11) == ListType(STRING)
    assert unalias(types["r"]) is types["r"]
    assert unalias(U32) == U32


def test_types_may_be_used_before_they_are_defined() -> None:
    """A name may be referred to before its definition, in the same interface."""
    types = (
        wit(
            """
        package local:demo;
        interface i {
            type foo = bar;
            record bar { age: u32 }
        }
        """
        )
        .interface("i")
        .types
    )
    foo = types["foo"].kind
    assert isinstance(foo, AliasKind)
    assert foo.target is types["bar"]


def test_primitive_rejects_unknown_names() -> None:
    """Primitive validates its name, so the model cannot hold `Primitive("u128")`."""
    with pytest.raises(ValueError, match="u128"):
        Primitive("u128")


# --- resources and functions ------------------------------------------------------------

RESOURCES = """
    package local:demo;

    interface files {
        resource blob {
            /// Makes a blob.
            constructor(init: list<u8>);
            write: func(bytes: list<u8>);
            read: func(n: u32) -> list<u8>;
            merge: static func(lhs: borrow<blob>, rhs: borrow<blob>) -> blob;
            fetch: async func() -> own<blob>;
        }
        resource blob2 {
            constructor(init: list<u8>) -> result<blob2>;
        }
        resource token;
        type blob-alias = blob;
        transform: func(b: blob) -> blob;
        peek: func(b: borrow<blob-alias>) -> blob-alias;
        wait: async func();
    }
"""


def test_resources_are_parsed_and_desugared() -> None:
    """Constructors, methods and static functions get component-model names and handle types."""
    types = wit(RESOURCES).interface("files").types
    blob = types["blob"]
    kind = blob.kind
    assert isinstance(kind, ResourceKind)
    own, borrow = HandleType(blob, borrow=False), HandleType(blob, borrow=True)
    methods = {m.name: m for m in kind.methods}
    assert list(methods) == [
        "[constructor]blob",
        "[method]blob.write",
        "[method]blob.read",
        "[static]blob.merge",
        "[method]blob.fetch",
    ]
    ctor = methods["[constructor]blob"]
    assert ctor.params == (Param("init", ListType(Primitive("u8"))),)
    assert ctor.result == own
    assert ctor.docs == "Makes a blob."
    assert methods["[method]blob.read"].params == (Param("self", borrow), Param("n", U32))
    assert methods["[static]blob.merge"].params == (Param("lhs", borrow), Param("rhs", borrow))
    assert methods["[static]blob.merge"].result == own
    assert methods["[method]blob.fetch"].is_async
    assert methods["[method]blob.fetch"].result == own
    blob2_ctor = typedef(types["blob2"])
    assert isinstance(blob2_ctor.kind, ResourceKind)
    assert blob2_ctor.kind.methods[0].result == ResultType(HandleType(blob2_ctor, False), None)
    token = types["token"].kind
    assert token == ResourceKind(())


def test_resource_names_are_owned_handles_and_aliases_reach_the_resource() -> None:
    """A bare resource name means own<r>; borrow<alias> borrows the aliased resource."""
    iface = wit(RESOURCES).interface("files")
    blob = iface.types["blob"]
    transform = iface.functions["transform"]
    assert transform.params[0].type == HandleType(blob, borrow=False)
    assert transform.result == HandleType(blob, borrow=False)
    peek = iface.functions["peek"]
    assert peek.params[0].type == HandleType(blob, borrow=True)
    # wit-parser reads a resource's name (even through an alias) as own<resource>.
    assert peek.result == HandleType(blob, borrow=False)
    assert unalias(iface.types["blob-alias"]) is blob
    assert iface.functions["wait"].is_async
    assert iface.functions["wait"].result is None


# --- lexical structure ------------------------------------------------------------------


def test_comments_docs_and_escaped_identifiers() -> None:
    """Line, nested block and doc comments; %-escaped keywords; upper-case kebab segments."""
    resolve = wit(
        """
        // a line comment
        /* a block /* nested */ comment */
        /// The package.
        package local:demo;

        /**
         * An interface documented
         * with a block comment.
         */
        interface %interface {
            //// not a doc comment
            /// First line.
            ///
            ///    indented line
            record %record {
                %type: u32,
                parse-XML-document: string,
                ipv4-address: u8, // trailing comment
            }
            /** One-liner. */
            %variant: func(%enum: s32);
            /** */
            plain: func();
        }
        """
    )
    # wit-parser keeps the comments before `package` in the package's docs.
    assert resolve.main_package.docs.endswith(" The package.")
    iface = resolve.interface("interface")
    # wit-parser keeps a block comment's text as written.
    assert iface.docs == "\n * An interface documented\n * with a block comment."
    record = iface.types["record"]
    # wit-parser reads `////` as a doc comment too.
    assert record.docs == "not a doc comment\nFirst line.\n\n   indented line"
    assert isinstance(record.kind, RecordKind)
    assert [f.name for f in record.kind.fields] == ["type", "parse-XML-document", "ipv4-address"]
    assert iface.functions["variant"].params == (Param("enum", Primitive("s32")),)
    assert iface.functions["variant"].docs == "One-liner."
    assert iface.functions["plain"].docs == ""


def test_gates_are_parsed_and_ignored() -> None:
    """@since, @unstable, @deprecated, @external-id are accepted; unstable items are left out."""
    iface = wit(
        """
        package local:demo@0.2.2;

        @since(version = 0.2.0)
        interface foo {
            a: func();
            /// Docs before the gate.
            @since(version = 0.2.1)
            b: func();
            @unstable(feature = fancier-foo)
            d: func();
            @since(version = 0.2.0)
            @deprecated(version = 0.2.2-rc.1+build.5)
            e: func();
            @external-id("foo/0")
            f: func();
            @since(version = 0.2.1)
            record r { x: u32 }
        }
        """
    ).interface("foo")
    # wit-parser enables no unstable feature: `d` is not part of the interface.
    assert list(iface.functions) == ["a", "b", "e", "f"]
    assert iface.functions["b"].docs == "Docs before the gate."
    assert "r" in iface.types


# --- packages, use and worlds -----------------------------------------------------------

CLOCKS = """
    package wasi:clocks@0.2.0;

    interface wall-clock {
        record datetime { seconds: u64, nanoseconds: u32 }
        now: func() -> datetime;
    }
    interface aliases {
        use wall-clock.{datetime as instant};
    }
    world clocks {
        import wall-clock;
    }
"""


def test_use_across_packages_chains_and_renames_keep_identity() -> None:
    """`use` in every form (qualified, top-level alias, chained, renamed) yields one TypeDef."""
    resolve = wit(
        """
        package local:demo;

        use wasi:clocks/aliases@0.2.0 as clock-aliases;

        interface direct {
            use wasi:clocks/wall-clock@0.2.0.{datetime};
            stamp: func() -> datetime;
        }
        interface via-alias {
            use clock-aliases.{instant};
        }
        interface chained {
            use via-alias.{instant as when};
            at: func(t: when);
        }
        """,
        deps=[CLOCKS],
    )
    datetime = resolve.interface("wasi:clocks/wall-clock@0.2.0").types["datetime"]
    assert datetime.owner == "wasi:clocks/wall-clock@0.2.0"
    assert resolve.interface("direct").functions["stamp"].result is datetime
    assert resolve.interface("via-alias").types["instant"] is datetime
    chained = resolve.interface("chained")
    assert chained.types["when"] is datetime
    assert chained.functions["at"].params[0].type is datetime
    # a version-less reference works when only one version is loaded
    assert (
        resolve.interface("wasi:clocks/wall-clock")
        is resolve.packages["wasi:clocks@0.2.0"].interfaces["wall-clock"]
    )


def test_world_imports_exports_inline_items_and_types() -> None:
    """World items: interface paths, inline funcs, inline interfaces, `name: iface`, typedefs."""
    resolve = wit(
        """
        package local:demo@1.0.0;

        interface shared {
            record metadata { size: u64 }
        }
        interface store {
            get: func(key: string) -> option<string>;
        }

        world my-world {
            use shared.{metadata};
            type meta-list = list<metadata>;

            import store;
            import wasi:clocks/wall-clock@0.2.0;
            import primary: store;
            /// The host.
            import host: interface {
                use shared.{metadata};
                record info { meta: metadata }
                get: func() -> info;
            }
            /// Runs.
            export run: func(items: meta-list) -> u32;
            export store;
            import run: func();
        }
        """,
        deps=[CLOCKS],
    )
    world = resolve.world("my-world")
    store = resolve.interface("store")
    metadata = resolve.interface("shared").types["metadata"]
    # wit-parser elaborates the world: `shared`, used by `host`, is imported before it.
    assert list(world.imports) == [
        "local:demo/store@1.0.0",
        "wasi:clocks/wall-clock@0.2.0",
        "primary",
        "local:demo/shared@1.0.0",
        "host",
        "run",
    ]
    assert world.imports["local:demo/store@1.0.0"] is store
    assert world.imports["primary"] is store
    host = interface(world.imports["host"])
    assert host.name is None
    assert host.qualified_name == "host"
    assert host.docs == "The host."
    assert host.types["metadata"] is metadata
    info = host.types["info"]
    assert info.owner == "host"
    assert host.functions["get"].result is info
    assert list(world.exports) == ["run", "local:demo/store@1.0.0"]
    run = function(world.exports["run"])
    assert run.docs == "Runs."
    meta_list = typedef(run.params[0].type)
    assert meta_list is world.types["meta-list"]
    assert meta_list.owner == "local:demo/my-world@1.0.0"
    assert unalias(meta_list) == ListType(metadata)
    assert world.types["metadata"] is metadata


def test_include_merges_dedupes_and_renames() -> None:
    """`include` copies imports/exports, de-duplicates interface names, renames with `with`."""
    resolve = wit(
        """
        package local:demo;

        interface a { f: func(); }
        interface b { g: func(); }
        interface types { record point { x: s32, y: s32 } }

        world world-one {
            use types.{point};
            import a;
            import x: func(p: point);
            export b;
        }
        world world-two {
            import a;
            import x: func();
        }
        world union {
            include world-one;
            include world-two with { x as x2 }
            import a;
        }
        """
    )
    union = resolve.world("union")
    one, two = resolve.world("world-one"), resolve.world("world-two")
    # `x` uses `point`, so wit-parser imports `types` too.
    assert list(union.imports) == ["local:demo/a", "local:demo/types", "x", "x2"]
    assert union.imports["x"] == one.imports["x"]
    assert function(union.imports["x2"]).params == function(two.imports["x"]).params
    assert list(union.exports) == ["local:demo/b"]
    point = resolve.interface("types").types["point"]
    assert union.types["point"] is point
    assert function(union.imports["x"]).params[0].type is point


def test_directory_package_with_file_and_directory_deps(tmp_path: Path) -> None:
    """A directory merges its .wit files; deps/ holds a .wit file and a (symlinked) directory."""
    root = tmp_path / "wit"
    write(
        root / "a.wit",
        """
        /// Part one.
        package local:app@0.1.0;
        world app {
            import local:lib/api@1.0.0;
            import wasi:clocks/wall-clock@0.2.0;
            export types;
        }
        """,
    )
    write(
        root / "b.wit",
        """
        interface types {
            use local:lib/api@1.0.0.{thing};
            record wrapper { inner: thing }
        }
        """,
    )
    write(root / "notes.txt", "not wit")
    write(
        tmp_path / "elsewhere" / "lib" / "api.wit",
        """
        package local:lib@1.0.0;
        interface api { record thing { id: u64 } }
        """,
    )
    (root / "deps").mkdir()
    os.symlink(tmp_path / "elsewhere" / "lib", root / "deps" / "lib")
    write(root / "deps" / "clocks.wit", CLOCKS)
    resolve = load_wit(root)
    assert str(resolve.main) == "local:app@0.1.0"
    assert resolve.main_package.docs == "Part one."
    assert set(resolve.packages) == {"local:app@0.1.0", "local:lib@1.0.0", "wasi:clocks@0.2.0"}
    thing = resolve.interface("local:lib/api@1.0.0").types["thing"]
    wrapper = resolve.interface("types").types["wrapper"]
    assert isinstance(wrapper.kind, RecordKind)
    assert wrapper.kind.fields[0].type is thing
    assert list(resolve.world("app").imports) == [
        "local:lib/api@1.0.0",
        "wasi:clocks/wall-clock@0.2.0",
    ]


def test_nested_package_blocks_provide_dependencies() -> None:
    """`package a:b { ... }` blocks define extra packages inline, usable by the main package."""
    resolve = wit(
        """
        package local:main;

        interface uses-both {
            use local:a/foo.{x};
            use local:b/bar.{y};
        }

        package local:a {
            interface foo { type x = u8; }
        }
        package local:b {
            interface bar { type y = string; }
        }
        """
    )
    assert set(resolve.packages) == {"local:main", "local:a", "local:b"}
    uses = resolve.interface("uses-both")
    assert uses.types["x"] is resolve.interface("local:a/foo").types["x"]
    assert uses.types["y"] is resolve.interface("local:b/bar").types["y"]


def test_resolve_world_and_interface_lookup_errors() -> None:
    """Resolve.world/interface raise WitError naming what exists when the name is wrong."""
    resolve = load_wit(RULE_ENGINE_WIT)
    with pytest.raises(WitError, match=r"no world 'nope'.*worlds: tenant"):
        resolve.world("nope")
    with pytest.raises(WitError, match=r"no package other:pkg@1\.0\.0 is loaded"):
        resolve.world("other:pkg/w@1.0.0")
    with pytest.raises(WitError, match="no interface 'logs'"):
        resolve.interface("wasmplug:host/logs@0.1.0")
    with pytest.raises(WitError, match="has 0 worlds"):
        parse_wit_text("package a:b;").world()


def test_package_name_str_and_model_identity() -> None:
    """PackageName prints as ns:name@ver; TypeDefs compare by identity, not by value."""
    assert str(PackageName("wasmplug", "host", "0.1.0")) == "wasmplug:host@0.1.0"
    assert str(PackageName("wasmplug", "host", None)) == "wasmplug:host"
    assert PackageName("a", "b").qualify("c") == "a:b/c"
    one = TypeDef("t", "a:b/i", AliasKind(U32))
    two = TypeDef("t", "a:b/i", AliasKind(U32))
    assert one != two
    assert one == one  # noqa: PLR0124
    resource = TypeDef("r", "a:b/i", ResourceKind())
    assert HandleType(resource, borrow=True) == HandleType(resource, borrow=True)
    assert HandleType(resource, borrow=True) != HandleType(resource, borrow=False)
    assert repr(resource) == "<TypeDef resource 'r' of 'a:b/i'>"
    assert isinstance(load_wit(RULE_ENGINE_WIT).world("tenant"), World)


# --- errors -------------------------------------------------------------------------------


# --- errors: located, from the parser ---------------------------------------------------


@pytest.mark.parametrize(
    ("source", "location", "reason"),
    [
        pytest.param(
            "package a:b;\ninterface i {\n    f: func() -> nope;\n}\n",
            (3, 18),
            "name `nope` does not exist",
            id="unknown-type",
        ),
        pytest.param(
            "package a:b;\ninterface i {\n    record r { x: u32 y: u32 }\n}\n",
            (3, 23),
            "expected '}', found an identifier",
            id="syntax",
        ),
        pytest.param(
            "package a:b;\ninterface i {\n    record r {}\n}\n",
            (3, 12),
            "empty record",
            id="empty-record",
        ),
        pytest.param(
            "package a:b;\nworld w {\n    import i;\n}\n",
            (3, 12),
            "interface or world `i` does not exist",
            id="unknown-interface",
        ),
        pytest.param(
            "package a:b;\ninterface i {\n    f: func(x: u32, x: u32);\n}\n",
            (3, 21),
            "param `x` is defined more than once",
            id="duplicate-parameter",
        ),
    ],
)
def test_error_locations_and_reasons(source: str, location: tuple[int, int], reason: str) -> None:
    """A malformed file raises WitError with its path, line and column and the parser's message."""
    err = wit_error(source)
    assert where(err) == ("t.wit", *location)
    assert reason in err.reason
    assert str(err).startswith(f"t.wit:{location[0]}:{location[1]}: ")


def test_errors_in_files_name_the_host_path(tmp_path: Path) -> None:
    """In a directory, the error names the real file (not the parser's sandbox path)."""
    write(tmp_path / "wit" / "main.wit", "package a:b;\nworld w { import c:d/e; }\n")
    write(tmp_path / "wit" / "deps" / "c.wit", "package c:d;\ninterface e { f: func() -> x; }\n")
    with pytest.raises(WitError) as info:
        load_wit(tmp_path / "wit")
    assert where(info.value) == (str(tmp_path / "wit" / "deps" / "c.wit"), 2, 28)
    assert "name `x` does not exist" in info.value.reason


INVALID = {
    "since-unreleased-version": """
        package a:b@0.1.0;
        interface i {
            @since(version = 0.2.0)
            f: func();
        }
    """,
    "since-without-version": """
        package a:b;
        interface i {
            @since(version = 0.1.0)
            f: func();
        }
    """,
    "unstable-without-feature": """
        package a:b@1.0.0;
        interface i {
            @unstable
            f: func();
        }
    """,
    "borrow-in-result": """
        package a:b;
        interface i {
            resource r;
            f: func() -> borrow<r>;
        }
    """,
    "imported-twice": """
        package a:b;
        world w {
            import x: func();
            import x: func();
        }
    """,
    "nesting-past-the-limit": "package a:b;\ninterface i {\n    type t = "
    + "list<" * 120
    + "u8"
    + ">" * 120
    + ";\n}\n",
    "use-cycle": """
        package a:b;
        interface x { use y.{t}; type u = u32; }
        interface y { use x.{u}; type t = u32; }
    """,
    "duplicate-type": """
        package a:b;
        interface i { type t = u32; type t = u8; }
    """,
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_wit_is_rejected_with_a_located_wit_error(name: str) -> None:
    """What the hand-written parser let through (or mis-handled) is an error for wit-parser."""
    err = wit_error(INVALID[name])
    assert err.path == "t.wit"
    assert err.line is not None
    assert err.column is not None
    assert err.reason


def test_one_name_imported_and_exported_is_valid_for_wit_parser() -> None:
    """Imports and exports are separate namespaces for wit-parser: `import i; export i;`
    and a plain name on both sides load (the hand-written parser rejected them)."""
    world = wit(
        """
        package a:b;
        interface i { f: func(); }
        world w {
            import i;
            export i;
            import x: func();
            export x: func();
        }
        """
    ).world("w")
    assert list(world.imports) == ["a:b/i", "x"]
    assert list(world.exports) == ["x", "a:b/i"]


def test_unresolved_dependency_names_the_package() -> None:
    """A `use` of a package that is not loaded names it and the packages that are."""
    err = wit_error("package local:demo;\ninterface i {\n    use wasi:clocks/x@0.3.0.{t};\n}\n")
    assert where(err)[0] == "t.wit"
    assert "package 'wasi:clocks@0.3.0' not found" in err.reason


def test_load_wit_path_errors(tmp_path: Path) -> None:
    """A missing path, and a directory without a package, are WitErrors naming the path."""
    with pytest.raises(WitError, match="no such file or directory") as info:
        load_wit(tmp_path / "missing")
    assert info.value.path == str(tmp_path / "missing")
    with pytest.raises(WitError, match="no `package` header") as info:
        load_wit(tmp_path)
    assert info.value.path == str(tmp_path)


def test_parse_wit_text_rejects_a_single_string_as_deps() -> None:
    """deps="..." is a TypeError, not a string split into characters."""
    with pytest.raises(TypeError, match="sequence of WIT sources"):
        parse_wit_text("package a:b;", deps="package c:d;")


def test_dependency_sources_are_named_in_errors() -> None:
    """An error in deps[1] is reported at <deps[1]>."""
    err = wit_error(
        "package a:b;\ninterface i { use c:d/e.{t}; }\n",
        deps=["package x:y;\n", "package c:d;\ninterface e { type t = nope; }\n"],
    )
    assert where(err) == ("<deps[1]>", 2, 24)


def test_a_parser_panic_is_a_wit_error() -> None:
    """wit-parser 0.263 panics on an empty block comment `/**/`; that is a WitError too."""
    err = wit_error("package a:b;\ninterface i {\n    /**/\n    f: func();\n}\n")
    assert "panicked" in err.reason


# --- what the hand-written parser got wrong ---------------------------------------------


def test_trailing_comma_in_use_list() -> None:
    """`use x.{a, b,}` is valid."""
    iface = wit(
        """
        package a:b;
        interface x { type a = u8; type b = u16; }
        interface y { use x.{a, b,}; }
        """
    ).interface("y")
    assert list(iface.types) == ["a", "b"]


def test_resources_renamed_by_include_with() -> None:
    """`include w with { r as r2 }` renames a world-level resource; its functions follow."""
    resolve = wit(
        """
        package a:b;
        world base {
            resource r { constructor(); get: func() -> u32; }
            import use-r: func(x: borrow<r>);
        }
        world top {
            include base with { r as r2 }
        }
        """
    )
    top = resolve.world("top")
    r2 = top.types["r2"]
    assert isinstance(r2.kind, ResourceKind)
    assert "use-r" in top.imports


def test_file_based_deps(tmp_path: Path) -> None:
    """deps/foo.wit (a single file) is a dependency package."""
    write(tmp_path / "main.wit", "package a:b;\ninterface i { use c:d/e.{t}; f: func() -> t; }\n")
    write(tmp_path / "deps" / "foo.wit", "package c:d;\ninterface e { type t = u32; }\n")
    resolve = load_wit(tmp_path)
    t = resolve.interface("c:d/e").types["t"]
    assert resolve.interface("i").functions["f"].result is t


def test_malformed_inputs_only_ever_raise_wit_error() -> None:
    """Seeded mutations of a valid file (deleted, duplicated, swapped characters) either
    parse or raise WitError: never another exception."""
    source = textwrap.dedent(ALL_TYPES)
    rng = random.Random(1234)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(40):
        chars = list(source)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(chars))
            op = rng.randrange(3)
            if op == 0:
                del chars[i]
            elif op == 1:
                chars.insert(i, rng.choice("{}<>(),;:.@/%= \nabz0"))
            else:
                j = rng.randrange(len(chars))
                chars[i], chars[j] = chars[j], chars[i]
        try:
            parse_wit_text("".join(chars))
            outcomes["ok"] += 1
        except WitError:
            outcomes["error"] += 1
    assert outcomes["error"] > 0
    assert sum(outcomes.values()) == 40


# --- unsupported constructs -------------------------------------------------------------

UNSUPPORTED = """
    package a:b;
    interface streams {
        record chunk { data: stream<u8> }
        read: func(s: stream<u8>) -> future<string>;
        wait: async func();
        plain: func(x: u32) -> u32;
    }
    world uses-streams {
        export streams;
    }
    world plain {
        export plain: func(x: u32) -> u32;
    }
"""


def test_unsupported_constructs_load_and_are_marked() -> None:
    """future, stream and async load; the model marks them as Unsupported / is_async."""
    resolve = wit(UNSUPPORTED)
    iface = resolve.interface("streams")
    read = iface.functions["read"]
    assert read.params[0].type == Unsupported("stream", "stream<u8>")
    assert read.result == Unsupported("future", "future<string>")
    assert iface.functions["wait"].is_async
    chunk = iface.types["chunk"]
    assert isinstance(chunk.kind, RecordKind)
    assert chunk.kind.fields[0].type == Unsupported("stream", "stream<u8>")


def test_a_world_using_unsupported_constructs_is_refused_when_prepared() -> None:
    """wasmplug.World names the construct and where it is used; other worlds are fine."""
    import wasmplug

    resolve = wit(UNSUPPORTED)
    assert "plain" in wasmplug.World(resolve.world("plain")).exports
    with pytest.raises(WitError) as info:
        wasmplug.World(resolve.world("uses-streams"))
    message = str(info.value)
    assert "export a:b/streams, function read, parameter s" in message
    assert "stream<u8> (stream)" in message


# --- JSON, caches ------------------------------------------------------------------------


def test_source_json_is_deterministic_and_round_trips() -> None:
    """The same WIT gives the same JSON; resolve_from_json rebuilds an equal model."""
    one = load_wit(RULE_ENGINE_WIT)
    _official.clear_memory_cache()
    two = load_wit(RULE_ENGINE_WIT)
    assert one.source_json == two.source_json
    again = resolve_from_json(one.source_json)
    assert again.source_json == one.source_json
    flight = again.interface("types").types["flight"]
    assert again.world("tenant").types["flight"] is flight
    assert [f.name for f in one.interface("types").types["flight"].kind.fields] == [  # type: ignore[union-attr]
        f.name
        for f in flight.kind.fields  # type: ignore[union-attr]
    ]
    with pytest.raises(WitError, match="not a wasmplug WIT document"):
        resolve_from_json('{"format": 99}')
    with pytest.raises(WitError, match="malformed WIT document"):
        resolve_from_json('{"format": 1, "package": 0}')


def test_results_are_cached_on_disk_and_invalidated_by_a_dep_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second load of unchanged WIT, with a fresh in-memory cache, does not run the
    parser; changing a file in deps/ does."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "wit"
    write(root / "main.wit", "package a:b;\ninterface i { use c:d/e.{t}; f: func() -> t; }\n")
    write(root / "deps" / "c" / "e.wit", "package c:d;\ninterface e { type t = u32; }\n")
    _official.clear_memory_cache()
    before = _official.stats.instantiations
    first = load_wit(root)
    assert _official.stats.instantiations == before + 1
    assert list((tmp_path / "cache" / "wasmplug" / "wit").glob("*.json"))

    _official.clear_memory_cache()
    hits = _official.stats.disk_hits
    second = load_wit(root)
    assert _official.stats.instantiations == before + 1
    assert _official.stats.disk_hits == hits + 1
    assert second.source_json == first.source_json

    write(root / "deps" / "c" / "e.wit", "package c:d;\ninterface e { type t = string; }\n")
    third = load_wit(root)
    assert _official.stats.instantiations == before + 2
    t = third.interface("c:d/e").types["t"]
    assert isinstance(t.kind, AliasKind)
    assert t.kind.target == STRING


def test_public_names_are_pinned() -> None:
    """The names the runtime codec is written against stay exported from wasmplug._wit."""
    import wasmplug._wit as wit_package

    assert wit_package.__all__ == [
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
    for name in wit_package.__all__:
        assert hasattr(wit_package, name), name


def test_fuel_and_memory_exhaustion_are_wit_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parser runs under a fuel budget and a memory ceiling; running out of either
    is a WitError that says so (nothing cached, the next parse works)."""
    source = "package a:b;\ninterface i {\n" + "".join(
        f"    record r{i} {{ a: list<option<tuple<u8, string>>>, b: u64 }}\n" for i in range(3000)
    )
    source += "}\n"
    monkeypatch.setattr(_official, "FUEL", 100_000)
    with pytest.raises(WitError, match="ran out of fuel"):
        parse_wit_text(source + "// fuel\n")
    monkeypatch.undo()
    monkeypatch.setattr(_official, "MEMORY_BYTES", 3 << 20)
    with pytest.raises(WitError, match=r"hit its memory limit \(3 MiB\)"):
        parse_wit_text(source + "// memory\n")
    monkeypatch.undo()
    assert len(parse_wit_text(source).interface("i").types) == 3000


def test_walk_visits_every_contained_type_once_in_declaration_order() -> None:
    """_wit.walk, the one traversal of type expressions: depth first in declaration
    order, each named type once even when used twice, a handle's resource included
    but not its methods."""
    from wasmplug._wit import HandleType, ListType, OptionType, ResultType, TupleType, walk

    resolve = wit(
        """
        package a:b;
        interface i {
            resource blob { size: func() -> u32; }
            record point { x: u32, y: u32 }
            variant shape { dot(point), line(tuple<point, point>), none }
            type points = list<point>;
            f: func(s: shape, b: borrow<blob>, p: points) -> result<option<string>, u32>;
        }
        """
    )
    iface = resolve.interface("i")
    f = iface.functions["f"]
    kinds = [
        n.name if isinstance(n, TypeDef) else type(n).__name__
        for p in f.params
        for n in walk(p.type)
    ]
    assert kinds == [
        "shape",
        "point",
        "Primitive",
        "Primitive",
        "TupleType",  # its two points were already entered in this walk
        "HandleType",
        "blob",
        "points",
        "ListType",
        "point",
        "Primitive",
        "Primitive",
    ]
    # Within one walk a named type is entered once.
    shape_walk = list(walk(f.params[0].type))
    assert [n.name for n in shape_walk if isinstance(n, TypeDef)] == ["shape", "point"]
    result = list(walk(f.result))
    assert [type(n) for n in result] == [ResultType, OptionType, Primitive, Primitive]
    assert list(walk(None)) == []
    assert isinstance(f.params[1].type, HandleType)
    assert not [n for n in walk(f.params[2].type) if isinstance(n, TupleType | ListType)][1:]


def test_the_disk_cache_is_bounded_least_recently_used_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The on-disk result cache keeps at most DISK_ENTRIES results: writing one more
    drops the least recently used, and a disk hit counts as a use."""
    import os

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(_official, "DISK_ENTRIES", 2)
    cache = tmp_path / "cache" / "wasmplug" / "wit"
    texts = [f"package a:b{i};\ninterface i {{ f: func() -> u{8 << i}; }}\n" for i in range(3)]
    _official.clear_memory_cache()
    wit(texts[0])
    wit(texts[1])
    first, second = sorted(cache.glob("*.json"), key=lambda p: p.stat().st_mtime)
    os.utime(first, (1, 1))  # make the order certain: first is older...
    os.utime(second, (2, 2))
    _official.clear_memory_cache()
    hits = _official.stats.disk_hits
    wit(texts[0])  # ...then a disk hit makes it the most recently used
    assert _official.stats.disk_hits == hits + 1
    wit(texts[2])  # a third result: the least recently used (texts[1]) goes
    left = set(cache.glob("*.json"))
    assert len(left) == 2
    assert first in left
    assert second not in left


def test_the_public_model_module_is_pinned() -> None:
    """``wasmplug.wit`` publishes the model wasmplug works from, under its own name:
    the same classes and functions (not copies), each reporting ``wasmplug.wit`` as
    its module; ``import wasmplug`` reaches it as an attribute."""
    import wasmplug
    import wasmplug._wit as private
    import wasmplug.wit as public

    assert public.__all__ == [name for name in private.__all__ if name != "WitError"]
    for name in public.__all__:
        obj = getattr(public, name)
        assert obj is getattr(private, name)
        if isinstance(obj, type) or callable(obj):
            assert obj.__module__ == "wasmplug.wit", name
    assert wasmplug.wit is public
    assert public.KindVisitor in public.TypeVisitor.__mro__


def test_the_model_is_read_only() -> None:
    """No part of a resolved model can be changed in place: attributes of named types,
    interfaces, worlds, packages and the resolve are frozen, and their mappings are
    read-only views."""
    import attrs.exceptions

    resolve = wit(
        """
        package a:b;
        interface i { record r { x: u32 } f: func(a: r); }
        world w { export i; export g: func(); }
        """
    )
    iface = resolve.interface("i")
    world = resolve.world("w")
    r = iface.types["r"]
    frozen: list[tuple[object, str, object]] = [
        (r, "kind", ResourceKind()),
        (iface, "name", "j"),
        (world, "exports", {}),
        (resolve.main_package, "worlds", {}),
        (resolve, "main", PackageName("x", "y")),
    ]
    for obj, attribute, value in frozen:
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(obj, attribute, value)
    views: list[Any] = [
        iface.types,
        iface.functions,
        world.imports,
        world.exports,
        world.types,
        resolve.main_package.interfaces,
        resolve.main_package.worlds,
        resolve.packages,
    ]
    for view in views:
        with pytest.raises(TypeError):
            view["new"] = None
    assert set(world.exports) == {"a:b/i", "g"}
    assert isinstance(r.kind, RecordKind)
    assert r.kind.fields[0].type == U32


class _Labels(TypeVisitor[str]):
    """A visitor that names the kind it was called for, and recurses into one level."""

    def visit_primitive(self, t: Primitive) -> str:
        return t.name

    def visit_list(self, t: ListType) -> str:
        return f"list({self.visit(t.element)})"

    def visit_option(self, t: OptionType) -> str:
        return f"option({self.visit(t.inner)})"

    def visit_result(self, t: ResultType) -> str:
        return f"result({'-' if t.ok is None else self.visit(t.ok)})"

    def visit_tuple(self, t: TupleType) -> str:
        return f"tuple({len(t.elements)})"

    def visit_handle(self, t: HandleType) -> str:
        return f"handle({t.resource.name})"

    def visit_unsupported(self, t: Unsupported) -> str:
        return f"unsupported({t.construct})"

    def visit_record(self, t: TypeDef, kind: RecordKind) -> str:
        return f"record({len(kind.fields)})"

    def visit_variant(self, t: TypeDef, kind: VariantKind) -> str:
        return f"variant({len(kind.cases)})"

    def visit_enum(self, t: TypeDef, kind: EnumKind) -> str:
        return f"enum({len(kind.cases)})"

    def visit_flags(self, t: TypeDef, kind: FlagsKind) -> str:
        return f"flags({len(kind.flags)})"

    def visit_alias(self, t: TypeDef, kind: AliasKind) -> str:
        return f"alias({self.visit(kind.target)})"

    def visit_resource(self, t: TypeDef, kind: ResourceKind) -> str:
        return f"resource({len(kind.methods)})"


def test_a_type_visitor_calls_one_method_per_kind() -> None:
    """``TypeVisitor.visit`` calls the method of each kind of type with the type (and,
    for a named type, its kind); ``KindVisitor.visit_named`` does for named types."""
    resolve = wit(
        """
        package a:b;
        interface i {
          record r { x: u32, y: string }
          variant v { a, b(u8) }
          enum e { x, y, z }
          flags f { p }
          type al = list<option<s8>>;
          resource res { constructor(); }
          g: func(
            r: r, v: v, e: e, f: f, al: al, h: borrow<res>, t: tuple<u8, u16>,
            o: result<_, string>, s: stream<u8>,
          );
        }
        """
    )
    iface = resolve.interface("i")
    labels = [_Labels().visit(p.type) for p in iface.functions["g"].params]
    assert labels == [
        "record(2)",
        "variant(2)",
        "enum(3)",
        "flags(1)",
        "alias(list(option(s8)))",
        "handle(res)",
        "tuple(2)",
        "result(-)",
        "unsupported(stream)",
    ]
    assert _Labels().visit_named(iface.types["res"]) == "resource(1)"
    assert _Labels().visit(iface.types["res"]) == "resource(1)"


def test_a_visitor_missing_a_kind_cannot_be_made() -> None:
    """Every ``visit_*`` method is abstract: a visitor without one of them fails at
    instantiation (and under mypy), naming the method, so a new kind of type reaches
    every computation over types."""

    class NoFlags(KindVisitor[int]):
        def visit_record(self, t: TypeDef, kind: RecordKind) -> int:
            return 1

        def visit_variant(self, t: TypeDef, kind: VariantKind) -> int:
            return 2

        def visit_enum(self, t: TypeDef, kind: EnumKind) -> int:
            return 3

        def visit_alias(self, t: TypeDef, kind: AliasKind) -> int:
            return 4

        def visit_resource(self, t: TypeDef, kind: ResourceKind) -> int:
            return 5

    with pytest.raises(TypeError, match="visit_flags"):
        NoFlags()  # type: ignore[abstract]
    missing = {
        name
        for name in TypeVisitor.__abstractmethods__
        if not name.startswith("visit_") or name in KindVisitor.__abstractmethods__
    }
    assert missing == set(KindVisitor.__abstractmethods__)
    assert len(TypeVisitor.__abstractmethods__) == 13
