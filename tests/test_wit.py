"""Tests for the WIT parser, resolver and model (``wasmplug._wit``)."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

from wasmplug._exceptions import WasmplugError, WitError
from wasmplug._wit import (
    AliasKind,
    EnumKind,
    FlagsKind,
    Function,
    HandleType,
    Interface,
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
    VariantKind,
    World,
    load_wit,
    parse_wit_text,
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
    assert list(package.interfaces) == ["types", "log", "config", "kv"]
    assert package.docs.startswith("Host capabilities that wasmplug offers to plugins.\n\n")
    world = resolve.world()
    assert world.qualified_name == "wasmplug:host/capabilities@0.1.0"
    assert list(world.imports) == [
        "wasmplug:host/log@0.1.0",
        "wasmplug:host/config@0.1.0",
        "wasmplug:host/kv@0.1.0",
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
    assert list(world.exports) == ["setup", "evaluate"]
    assert all(isinstance(item, Function) for item in world.exports.values())
    assert set(world.imports) == {
        "wasmplug:host/log@0.1.0",
        "wasmplug:host/config@0.1.0",
        "wasmplug:host/kv@0.1.0",
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
        type floats = tuple<float32, float64, f32, f64>;
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
    """Every result form, tuples, float32/float64 aliases and deeply nested generics resolve."""
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
    assert target("floats") == TupleType((f32, f64, f32, f64))
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
    assert peek.result is iface.types["blob-alias"]
    assert unalias(iface.types["blob-alias"]) == HandleType(blob, borrow=False)
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
            /**/
            plain: func();
        }
        """
    )
    assert resolve.main_package.docs == "The package."
    iface = resolve.interface("interface")
    assert iface.docs == "An interface documented\nwith a block comment."
    record = iface.types["record"]
    assert record.docs == "First line.\n\n   indented line"
    assert isinstance(record.kind, RecordKind)
    assert [f.name for f in record.kind.fields] == ["type", "parse-XML-document", "ipv4-address"]
    assert iface.functions["variant"].params == (Param("enum", Primitive("s32")),)
    assert iface.functions["variant"].docs == "One-liner."
    assert iface.functions["plain"].docs == ""


def test_gates_are_parsed_and_ignored() -> None:
    """@since, @unstable, @deprecated and @external-id are accepted and every item is kept."""
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
            @since(version = 1.0.0)
            record r { x: u32 }
        }
        """
    ).interface("foo")
    assert list(iface.functions) == ["a", "b", "d", "e", "f"]
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
    assert list(world.imports) == [
        "local:demo/store@1.0.0",
        "wasi:clocks/wall-clock@0.2.0",
        "primary",
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
            include world-two with { x as x2 };
            include local:demo/world-one;
            import a;
        }
        """
    )
    union = resolve.world("union")
    one, two = resolve.world("world-one"), resolve.world("world-two")
    assert list(union.imports) == ["local:demo/a", "x", "x2"]
    assert union.imports["x"] is one.imports["x"]
    assert union.imports["x2"] is two.imports["x"]
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


def test_errors_are_wit_errors_with_location_in_the_message() -> None:
    """A syntax error says file:line:column, what was expected and what was found."""
    err = wit_error(
        """
        package local:demo;
        interface i {
            record a {
                x: u32
            record b { y: u32 }
        }
        """
    )
    assert where(err) == ("t.wit", 6, 5)
    assert err.reason == "expected ',' or '}', found 'record'"
    assert str(err) == "t.wit:6:5: expected ',' or '}', found 'record'"
    assert isinstance(err, WasmplugError)
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("source", "location", "reason"),
    [
        pytest.param(
            "package local:demo;\ninterface i {\n    f: func() -> wether;\n}\n",
            (3, 18),
            "unknown type 'wether' in interface 'local:demo/i'",
            id="unknown-type",
        ),
        pytest.param(
            "package local:demo;\ninterface i {\n    use typez.{a};\n}\n",
            (3, 9),
            "unknown interface 'typez' in package 'local:demo' (known interfaces: i)",
            id="unknown-interface",
        ),
        pytest.param(
            "package local:demo;\ninterface t { type a = u8; }\ninterface i { use t.{b}; }\n",
            (3, 22),
            "unknown type 'b' in interface 'local:demo/t': types: a",
            id="unknown-used-type",
        ),
        pytest.param(
            "package local:demo;\ninterface t { f: func(); }\ninterface i { use t.{f}; }\n",
            (3, 22),
            "it is a function, only types can be used",
            id="use-of-a-function",
        ),
        pytest.param(
            "package local:demo;\nworld w { include nope; }\n",
            (2, 19),
            "unknown world 'nope'",
            id="unknown-world",
        ),
        pytest.param(
            "package local:demo;\ninterface i {}\nworld w { include i; }\n",
            (3, 19),
            "unknown world 'i': it is an interface, not a world",
            id="include-of-an-interface",
        ),
        pytest.param(
            "package local:demo;\nworld v {}\nworld w { import v; }\n",
            (3, 18),
            "expected an interface, found world 'v'",
            id="import-of-a-world",
        ),
        pytest.param(
            "package local:demo;\ninterface i {\n    type a = u8;\n    record A { x: u8 }\n}\n",
            (4, 12),
            "duplicate name 'A' in interface 'local:demo/i': a alias of that name already "
            "defined at t.wit:3:10",
            id="duplicate-type-case-insensitive",
        ),
        pytest.param(
            "package local:demo;\ninterface i {\n    type a = u8;\n    a: func();\n}\n",
            (4, 5),
            "duplicate name 'a' in interface 'local:demo/i'",
            id="duplicate-type-and-function",
        ),
        pytest.param(
            "package local:demo;\ninterface t { type a = u8; }\n"
            "interface i { type a = u8; use t.{a}; }\n",
            (3, 35),
            "duplicate name 'a'",
            id="duplicate-from-use",
        ),
        pytest.param(
            "package local:demo;\ninterface x {}\nworld x {}\n",
            (3, 7),
            "duplicate name 'x' in package 'local:demo': an interface of that name is "
            "already defined at t.wit:2:11",
            id="duplicate-interface-and-world",
        ),
        pytest.param(
            "package local:demo;\ninterface i { f: func(a: u8, a: u8); }\n",
            (2, 30),
            "duplicate parameter 'a' in function 'f'",
            id="duplicate-parameter",
        ),
        pytest.param(
            "package local:demo;\ninterface i { record r { a: u8, a: u8 } }\n",
            (2, 33),
            "duplicate field 'a' in record 'r'",
            id="duplicate-field",
        ),
        pytest.param(
            "package local:demo;\ninterface i { enum e { a, b, a } }\n",
            (2, 30),
            "duplicate case 'a' in enum 'e'",
            id="duplicate-enum-case",
        ),
        pytest.param(
            "package local:demo;\ninterface i { resource r { read: func(self: u8); } }\n",
            (2, 39),
            "duplicate parameter 'self' in method 'read' (which has an implicit 'self')",
            id="duplicate-self",
        ),
        pytest.param(
            "package local:demo;\ninterface i {}\nworld w {\n    import i;\n    import i;\n}\n",
            (5, 12),
            "duplicate import of interface 'local:demo/i' in world 'local:demo/w'",
            id="duplicate-import",
        ),
        pytest.param(
            "package local:demo;\nworld w {\n    import f: func();\n    import f: func();\n}\n",
            (4, 12),
            "duplicate name 'f' in world 'local:demo/w'",
            id="duplicate-plain-import",
        ),
        pytest.param(
            "interface i {}\n",
            (1, 1),
            "missing package declaration: expected 'package namespace:name;' "
            "(e.g. 'package my:plugin@0.1.0;') before the first item, found 'interface'",
            id="missing-package",
        ),
        pytest.param(
            "",
            (1, 1),
            "missing package declaration",
            id="empty-source",
        ),
        pytest.param(
            "package local:demo;\n"
            "interface a { use b.{t}; type s = u8; }\n"
            "interface b { use c.{t}; }\n"
            "interface c { use a.{s}; type t = u8; }\n",
            (4, 19),
            "cycle in 'use' between interfaces: local:demo/a -> local:demo/b -> local:demo/c "
            "-> local:demo/a",
            id="use-cycle",
        ),
        pytest.param(
            "package local:demo;\ninterface a { use a.{t}; type t = u8; }\n",
            (2, 19),
            "cycle in 'use' between interfaces: local:demo/a -> local:demo/a",
            id="use-of-itself",
        ),
        pytest.param(
            "package local:demo;\nworld a { include b; }\nworld b { include a; }\n",
            (3, 19),
            "cycle in 'include' between worlds: local:demo/a -> local:demo/b -> local:demo/a",
            id="include-cycle",
        ),
        pytest.param(
            "package local:demo;\ninterface i { record foo_bar { x: u8 } }\n",
            (2, 22),
            "invalid identifier 'foo_bar'",
            id="identifier-with-underscore",
        ),
        pytest.param(
            "package local:demo;\ninterface i { camelCase: func(); }\n",
            (2, 15),
            "invalid identifier 'camelCase'",
            id="identifier-mixed-case",
        ),
        pytest.param(
            "package local:demo;\ninterface i { trailing-: func(); }\n",
            (2, 15),
            "invalid identifier 'trailing-'",
            id="identifier-trailing-dash",
        ),
        pytest.param(
            "package local:demo;\ninterface i { a-1b: func(); }\n",
            (2, 15),
            "invalid identifier 'a-1b'",
            id="identifier-word-starting-with-digit",
        ),
        pytest.param(
            "package local:demo;\ninterface i { record type { x: u8 } }\n",
            (2, 22),
            "expected a name for the record (a keyword; write '%type' to use it as a name), "
            "found 'type'",
            id="keyword-as-identifier",
        ),
        pytest.param(
            "package local:demo;\ninterface i {\n"
            "    record a { b: b }\n    record b { a: option<a> }\n}\n",
            (3, 12),
            "recursive type 'a' (a -> b -> a): WIT types cannot contain themselves",
            id="recursive-records",
        ),
        pytest.param(
            "package local:demo;\ninterface i { type t = list<t>; }\n",
            (2, 20),
            "recursive type 't' (t -> t)",
            id="recursive-alias",
        ),
        pytest.param(
            "package local:demo;\ninterface i { record r { x: u8 } f: func(x: borrow<r>); }\n",
            (2, 52),
            "expected a resource inside own<...> or borrow<...>, found 'r', which is not a "
            "resource",
            id="borrow-of-a-record",
        ),
        pytest.param(
            "package local:demo;\ninterface i { type m = map<string, u8>; }\n",
            (2, 24),
            "'map' types are not supported",
            id="map-unsupported",
        ),
        pytest.param(
            "package local:demo;\ninterface i { type f = future<u8>; }\n",
            (2, 24),
            "'future' types are not supported",
            id="future-unsupported",
        ),
        pytest.param(
            "package local:demo;\ninterface i { type l = list<u8, 4>; }\n",
            (2, 31),
            "fixed-length lists ('list<T, N>') are not supported",
            id="fixed-list-unsupported",
        ),
        pytest.param(
            "package local:demo;\ninterface i { record r {} }\n",
            (2, 22),
            "record 'r' must have at least one field",
            id="empty-record",
        ),
        pytest.param(
            "package local:demo;\ninterface i { type t = result<_>; }\n",
            (2, 32),
            "expected ',' and an error type after 'result<_', found '>'",
            id="result-of-nothing",
        ),
        pytest.param(
            "package local:demo;\n/* never closed\ninterface i {}\n",
            (2, 1),
            "unterminated block comment: expected '*/'",
            id="unterminated-comment",
        ),
        pytest.param(
            "package local:demo;\ninterface i {\u202e}\n",
            (2, 14),
            "forbidden character U+202E",
            id="bidi-override",
        ),
        pytest.param(
            "package local:demo;\ninterface i { f: func() -> u32 }\n",
            (2, 32),
            "expected ';' after the function, found '}'",
            id="missing-semicolon",
        ),
        pytest.param(
            "package local:demo;\ninterface i {\n",
            (3, 1),
            "expected 'use', a type definition, a function or '}', found end of file",
            id="unexpected-eof",
        ),
        pytest.param(
            "package local:demo;\ninterface i { @since(version = 1.0) f: func(); }\n",
            (2, 32),
            "expected a semantic version such as 1.2.3, found integer '1'",
            id="bad-gate-version",
        ),
        pytest.param(
            "package local:demo;\ninterface i { @later(version = 1.0.0) f: func(); }\n",
            (2, 16),
            "expected 'since', 'unstable', 'deprecated' or 'external-id' after '@', "
            "found identifier 'later'",
            id="unknown-gate",
        ),
        pytest.param(
            "package local:demo;\nworld one { import a: func(); }\n"
            "world two { import a: func(); }\n"
            "world both {\n    include one;\n    include two;\n}\n",
            (6, 13),
            "import 'a' of included world 'local:demo/two' conflicts with an import or type "
            "of the same name in world 'local:demo/both'; rename it with "
            "'include two with { a as another-name }'",
            id="include-plain-name-conflict",
        ),
        pytest.param(
            "package local:demo;\nworld one { import a: func(); }\n"
            "world w { include one with { b as c }; }\n",
            (3, 30),
            "expected the name of an import or export of world 'local:demo/one', found 'b'",
            id="include-rename-of-unknown-name",
        ),
        pytest.param(
            "package local:demo;\ninterface i {}\nworld one { import i; }\n"
            "world w { include one with { i as j }; }\n",
            (4, 30),
            "cannot rename 'i': it is the interface name 'local:demo/i', and only plain names "
            "can be renamed",
            id="include-rename-of-interface-name",
        ),
        pytest.param(
            "package local:demo;\npackage local:demo { interface i {} }\n",
            (2, 1),
            "duplicate package 'local:demo': it is already defined at t.wit:1:1",
            id="duplicate-package",
        ),
    ],
)
def test_error_locations_and_reasons(source: str, location: tuple[int, int], reason: str) -> None:
    """Each kind of invalid WIT raises WitError at the right line:column with a clear reason."""
    with pytest.raises(WitError) as info:
        parse_wit_text(source, filename="t.wit")
    err = info.value
    assert reason in err.reason
    assert (err.path, err.line, err.column) == ("t.wit", *location), err


def test_unresolved_dependency_names_package_and_searched_sources() -> None:
    """A missing dependency names the package, where it was used and what was searched."""
    err = wit_error(
        """
        package local:demo;
        interface i {
            use wasi:clocks/wall-clock@0.3.0.{datetime};
        }
        """,
        deps=[CLOCKS],
    )
    assert where(err) == ("t.wit", 4, 9)
    assert err.reason.startswith("unresolved dependency package 'wasi:clocks@0.3.0'")
    assert "searched the 1 source(s) passed as deps" in err.reason
    assert "versions available: wasi:clocks@0.2.0" in err.reason


def test_unresolved_dependency_in_a_directory_lists_the_deps_directory(tmp_path: Path) -> None:
    """With load_wit, the error names the root and deps directories that were searched."""
    write(
        tmp_path / "wit" / "main.wit",
        """
        package local:app;
        world app { include wasmplug:host/capabilities@0.1.0; }
        """,
    )
    write(tmp_path / "wit" / "deps" / "other.wit", "package local:other;\n")
    with pytest.raises(WitError) as info:
        load_wit(tmp_path / "wit")
    err = info.value
    assert (err.path, err.line, err.column) == (str(tmp_path / "wit" / "main.wit"), 3, 21)
    assert "unresolved dependency package 'wasmplug:host@0.1.0'" in err.reason
    assert f"searched {tmp_path / 'wit'} and its deps directory {tmp_path / 'wit' / 'deps'}" in (
        err.reason
    )
    assert "other.wit" in err.reason
    assert "packages found: local:app, local:other" in err.reason


def test_unresolved_dependency_without_deps_directory(tmp_path: Path) -> None:
    """With no deps/ directory, the error says which directory would have held it."""
    write(tmp_path / "main.wit", "package local:app;\nworld app { import a:b/c; }\n")
    with pytest.raises(WitError, match=r"has no deps directory .*deps"):
        load_wit(tmp_path)
    with pytest.raises(WitError, match="a single file has no deps directory"):
        load_wit(tmp_path / "main.wit")


def test_files_of_one_package_must_agree_on_its_name(tmp_path: Path) -> None:
    """Two files of one directory declaring different packages is an error in the second."""
    write(tmp_path / "a.wit", "package local:one;\n")
    write(tmp_path / "b.wit", "\npackage local:two;\n")
    with pytest.raises(WitError) as info:
        load_wit(tmp_path)
    err = info.value
    assert (err.path, err.line, err.column) == (str(tmp_path / "b.wit"), 2, 1)
    assert "expected 'package local:one', found 'package local:two'" in err.reason


def test_a_dependency_without_package_declaration_is_an_error(tmp_path: Path) -> None:
    """A deps entry with items but no `package` declaration is reported at its first token."""
    write(tmp_path / "main.wit", "package local:app;\n")
    write(tmp_path / "deps" / "bad" / "x.wit", "// nothing\nworld w {}\n")
    with pytest.raises(WitError) as info:
        load_wit(tmp_path)
    err = info.value
    assert (err.path, err.line, err.column) == (str(tmp_path / "deps" / "bad" / "x.wit"), 2, 1)
    assert "missing package declaration" in err.reason


def test_load_wit_path_errors(tmp_path: Path) -> None:
    """A missing path, an empty directory and invalid UTF-8 are WitErrors naming the path."""
    with pytest.raises(WitError, match="no such file or directory") as info:
        load_wit(tmp_path / "missing")
    assert info.value.path == str(tmp_path / "missing")
    with pytest.raises(WitError, match=r"expected \.wit files in the directory, found none"):
        load_wit(tmp_path)
    bad = tmp_path / "bad.wit"
    bad.write_bytes(b"package a:b;\n// caf\xe9\n")
    with pytest.raises(WitError) as info:
        load_wit(bad)
    assert (info.value.line, info.value.column) == (2, 7)
    assert "expected UTF-8 text" in info.value.reason


def test_parse_wit_text_rejects_a_single_string_as_deps() -> None:
    """Passing deps="..." (a str, iterable by character) is a TypeError, not silent nonsense."""
    with pytest.raises(TypeError, match="sequence of WIT sources"):
        parse_wit_text("package a:b;", deps="package c:d;")


def test_dependency_sources_are_named_in_errors() -> None:
    """An error inside a dependency source is located in `<deps[i]>`."""
    err = wit_error("package local:demo;\n", deps=["package a:b;\n", "package c:d;\ninterface {"])
    assert where(err) == ("<deps[1]>", 2, 11)
    assert err.reason == "expected an interface name, found '{'"


def test_top_level_use_may_not_shadow_a_package_interface() -> None:
    """A top-level `use` whose name is already an interface of the package is a duplicate."""
    err = wit_error(
        "package local:demo;\nuse wasi:clocks/wall-clock@0.2.0;\ninterface wall-clock {}\n",
        deps=[CLOCKS],
    )
    assert where(err) == ("t.wit", 2, 5)
    assert err.reason == (
        "duplicate name 'wall-clock': it already names interface 'local:demo/wall-clock' in "
        "this package; rename it with 'as'"
    )


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
        "VariantKind",
        "WitError",
        "WitType",
        "World",
        "WorldItem",
        "load_wit",
        "parse_wit_text",
        "unalias",
    ]
    for name in wit_package.__all__:
        assert hasattr(wit_package, name), name
