"""Typed calls: every WIT type crosses the boundary both ways with the documented
Python mapping, results agree with independent Python computations, and bad
arguments are refused before anything reaches the plugin."""

from __future__ import annotations

import enum
import math
from pathlib import Path
from typing import Any

import attrs
import pytest

import wasmplug
from conftest import fixture_world


@pytest.fixture(scope="module")
def world() -> wasmplug.World:
    return fixture_world("typetest")


@pytest.fixture(scope="module")
def plugin(plugin_dir: Path, world: wasmplug.World, engine: wasmplug.Engine) -> wasmplug.Plugin:
    return wasmplug.load(plugin_dir / "typetest.wasm", world=world, engine=engine)


def everything(world: wasmplug.World, **changes: Any) -> Any:
    t = world.types
    value = t.Everything(
        flag=True,
        tiny=-128,
        short=-32768,
        medium=-(2**31),
        long=-(2**63),
        byte=255,
        ushort=65535,
        umedium=2**32 - 1,
        ulong=2**64 - 1,
        single=1.5,
        double=math.pi,
        letter="ß",
        text="héllo, wörld \U0001f600",
        blob=bytes(range(256)),
        numbers=[1, -2, 3, 2**31 - 1],
        maybe="present",
        pair=(7, "seven"),
        color=t.Color.GREEN,
        perms=t.Perms.READ | t.Perms.EXEC,
        shape=t.ShapeRect((2.0, 3.5)),
        points=[t.Point(x=1, y=2), t.Point(x=-3, y=4)],
        nested=[t.Point(x=0, y=0), None, t.Point(x=5, y=-5)],
        outcome=wasmplug.Ok(42),
    )
    return attrs.evolve(value, **changes)


def test_generated_classes_follow_the_mapping(world: wasmplug.World) -> None:
    """Records are frozen attrs classes with snake_case fields, enums are Enum, flags are
    Flag, a variant is the union of its case classes; a function's named error type
    gets a GuestError subclass."""
    t = world.types
    assert attrs.has(t.Everything)
    assert [f.name for f in attrs.fields(t.Point)] == ["x", "y"]
    assert issubclass(t.Color, enum.Enum)
    assert [m.value for m in t.Color] == ["red", "green", "blue"]
    assert issubclass(t.Perms, enum.Flag)
    assert issubclass(t.ShapeCircle, t.Shape)
    assert issubclass(t.MathErrorDivideByZero, t.MathError)
    assert t.Shape == t.ShapeCircle | t.ShapeRect | t.ShapeDot
    assert isinstance(t.ShapeDot(), t.Shape)
    assert not isinstance(t.Point(x=1, y=2), t.Shape)
    assert issubclass(t.MathErrorException, wasmplug.GuestError)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        t.Point(x=1, y=2).x = 3
    assert t["math-error"] is t.MathError


def test_roundtrip_of_every_type(world: wasmplug.World, plugin: wasmplug.Plugin) -> None:
    """A record holding one of every WIT type comes back equal, with the Python types
    the mapping documents."""
    value = everything(world)
    back = plugin.call("roundtrip", value)
    assert back == value
    assert type(back) is world.types.Everything
    assert isinstance(back.blob, bytes)
    assert isinstance(back.pair, tuple)
    assert back.color is world.types.Color.GREEN
    assert back.perms == world.types.Perms.READ | world.types.Perms.EXEC
    assert type(back.shape) is world.types.ShapeRect
    assert back.outcome == wasmplug.Ok(42)


@pytest.mark.parametrize(
    "changes",
    [
        {"maybe": None},
        {"maybe": ""},
        {"blob": b""},
        {"numbers": []},
        {"points": [], "nested": []},
        {"outcome": wasmplug.Err("bad")},
        {"shape": "circle"},
        {"shape": "dot"},
        {"perms": "none"},
        {"perms": "all"},
        {"text": ""},
        {"letter": "\U0010ffff"},
        {"double": math.inf},
        {"single": -0.0},
    ],
)
def test_roundtrip_edge_values(
    world: wasmplug.World, plugin: wasmplug.Plugin, changes: dict[str, Any]
) -> None:
    """Empty lists and strings, none, err, payload-less cases, empty and full flags,
    the largest code point and IEEE special values survive a round trip."""
    t = world.types
    special = {
        "circle": t.ShapeCircle(0.25),
        "dot": t.ShapeDot(),
        "none": t.Perms(0),
        "all": t.Perms.READ | t.Perms.WRITE | t.Perms.EXEC,
    }
    changes = {
        k: special.get(v, v) if isinstance(v, str) and k not in {"text", "maybe"} else v
        for k, v in changes.items()
    }
    value = everything(world, **changes)
    assert plugin.call("roundtrip", value) == value


def test_nan_roundtrips(world: wasmplug.World, plugin: wasmplug.Plugin) -> None:
    """NaN is a legal f64 and comes back as NaN."""
    back = plugin.call("roundtrip", everything(world, double=math.nan))
    assert math.isnan(back.double)


def test_f32_is_rounded_to_single_precision(world: wasmplug.World, plugin: wasmplug.Plugin) -> None:
    """An f32 field holds the nearest single-precision value, as struct's 'f' computes."""
    import struct

    back = plugin.call("roundtrip", everything(world, single=0.1))
    assert back.single == struct.unpack("<f", struct.pack("<f", 0.1))[0]
    assert back.single != 0.1


def test_results_match_independent_computation(
    world: wasmplug.World, plugin: wasmplug.Plugin
) -> None:
    """Functions computed in the guest agree with the same computation in Python."""
    t = world.types
    assert plugin.call("add", 2**32 - 1, 2) == 1
    xs = [2**62, 2**62, -5, 17]
    expected_sum = (sum(xs) + 2**63) % 2**64 - 2**63
    assert plugin.call("sum", xs) == expected_sum
    blob = bytes((i * 7) % 256 for i in range(10_000))
    assert plugin.call("blob-stats", blob) == (len(blob), sum(blob))
    assert plugin.call("upper", "straße ǆ abc") == "straße ǆ abc".upper()
    assert plugin.call("maybe-double", 21) == 42
    assert plugin.call("maybe-double", None) is None
    assert plugin.call("area", t.ShapeCircle(2.0)) == pytest.approx(math.pi * 4)
    assert plugin.call("area", t.ShapeRect((2.0, 3.0))) == 6.0
    assert plugin.call("area", t.ShapeDot()) == 0.0
    assert plugin.call("toggle", t.Perms.READ) == t.Perms.WRITE | t.Perms.EXEC
    assert plugin.call("toggle", {"read", "write"}) == t.Perms.EXEC
    points = [t.Point(x=3, y=4), t.Point(x=-5, y=0), t.Point(x=1, y=1)]
    norm = [p.x * p.x + p.y * p.y for p in points]
    last_max = max(i for i, n in enumerate(norm) if n == max(norm))
    assert plugin.call("farthest", points) == points[last_max]
    assert plugin.call("farthest", []) is None
    assert plugin.call("nothing") is None
    assert plugin.call("next-char", "a") == (ord("a"), "b")
    assert plugin.call("next-char", "\u00e9") == (0xE9, "\u00ea")


def test_result_err_raises_guest_error_with_payload(
    world: wasmplug.World, plugin: wasmplug.Plugin
) -> None:
    """A function's `result` is unwrapped: ok returns the value, err raises GuestError
    carrying the lifted payload (a variant case, a string, or None); for a named error
    type the exception is that type's GuestError subclass."""
    t = world.types
    assert plugin.call("divide", 7, -2) == -3  # Rust's truncating division
    with pytest.raises(t.MathErrorException) as info:
        plugin.call("divide", 1, 0)
    assert info.value.value == t.MathErrorDivideByZero()
    assert info.value.function == "divide"
    with pytest.raises(wasmplug.GuestError) as info:
        plugin.call("divide", -(2**31), -1)
    assert info.value.value == t.MathErrorOverflow(f"{-(2**31)} / -1")
    assert plugin.call("parse-color", "blue") is t.Color.BLUE
    with pytest.raises(wasmplug.GuestError) as info:
        plugin.call("parse-color", "mauve")
    assert type(info.value) is wasmplug.GuestError
    assert info.value.value == 'unknown color "mauve"'
    assert plugin.call("check", False) is None
    with pytest.raises(wasmplug.GuestError) as info:
        plugin.call("check", True)
    assert info.value.value is None


def test_records_accept_mappings_and_objects(
    world: wasmplug.World, plugin: wasmplug.Plugin
) -> None:
    """A record argument may be the generated class, a mapping with snake_case keys, or
    any object with those attributes."""
    t = world.types

    class Duck:
        x = 5
        y = 12

    got = plugin.call("farthest", [{"x": 1, "y": 1}, Duck(), t.Point(x=0, y=2)])
    assert got == t.Point(x=5, y=12)


def test_enum_accepts_its_wit_name(world: wasmplug.World, plugin: wasmplug.Plugin) -> None:
    """An enum argument may also be given as the WIT case name."""
    value = everything(world, color="blue")
    assert plugin.call("roundtrip", value).color is world.types.Color.BLUE


# -- bad arguments ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "args", "fragment"),
    [
        ("add", (1,), "takes 2 argument(s), 1 given"),
        ("add", (1, 2, 3), "takes 2 argument(s), 3 given"),
        ("add", (-1, 0), "add(a): expected int in [0, 4294967295] (u32), found int -1"),
        ("add", (2**32, 0), "add(a): expected int in [0, 4294967295] (u32), found int 4294967296"),
        ("add", (True, 0), "found bool True"),
        ("add", (1.0, 0), "found float 1.0"),
        ("add", ("1", 0), "found str '1'"),
        ("sum", ([1, "2"],), "sum(xs)[1]: expected int"),
        ("sum", ("12",), "sum(xs): expected a sequence"),
        ("blob-stats", ([1, 2],), "blob-stats(blob): expected bytes (list<u8>), found list"),
        ("upper", (b"abc",), "upper(s): expected str, found bytes"),
        ("upper", ("\ud800",), "expected str encodable as UTF-8"),
        ("next-char", ("ab",), "next-char(c): expected str of length 1"),
        ("next-char", ("\udfff",), "not a surrogate"),
        ("area", ("circle",), "area(s): expected one of Shape's cases"),
        ("maybe-double", (-1,), "maybe-double(x): expected int in [0, 4294967295]"),
        ("toggle", ({"read", "fly"},), "toggle(p): expected a Perms value or a set of"),
        ("farthest", ([{"x": 1}],), "farthest(points)[0]: expected record point with keys"),
        ("farthest", ([object()],), "missing ['x', 'y']"),
        (
            "farthest",
            ([{"x": 1, "z": 2}],),
            "with keys ['x', 'y'] (missing ['y']; unexpected keys ['z']), found dict",
        ),
        (
            "farthest",
            ([object()],),
            "expected Point (or an object/mapping with ['x', 'y']; missing ['x', 'y'])",
        ),
        ("no-such-export", (), "no export named 'no-such-export'"),
    ],
)
def test_bad_arguments_are_refused(
    plugin: wasmplug.Plugin, function: str, args: tuple[Any, ...], fragment: str
) -> None:
    """A wrong argument count, type, range or shape raises ArgumentError naming the
    plugin, the function, the path, what was expected and what was found."""
    with pytest.raises(wasmplug.ArgumentError) as info:
        plugin.call(function, *args)
    message = str(info.value)
    assert fragment in message
    assert message.startswith("plugin 'typetest': ")
    assert isinstance(info.value, TypeError)


def test_bad_nested_field_names_its_path(world: wasmplug.World, plugin: wasmplug.Plugin) -> None:
    """A bad value deep inside a record is reported with its full path; an int too large
    for any float is an ArgumentError like any other misfit, never an OverflowError."""
    t = world.types
    bad = [
        (everything(world, pair=(256, "x")), "roundtrip(x).pair[0]: expected int in [0, 255]"),
        (everything(world, nested=[None, t.Point(x=1, y=2**31)]), "roundtrip(x).nested[1].y"),
        (everything(world, outcome=wasmplug.Ok("x")), "roundtrip(x).outcome.ok: expected int"),
        (everything(world, outcome=42), "expected wasmplug.Ok or wasmplug.Err"),
        (everything(world, shape=t.ShapeCircle("big")), "roundtrip(x).shape.value: expected float"),
        (everything(world, color="purple"), "roundtrip(x).color: expected a Color member"),
        (everything(world, single=1e300), "roundtrip(x).single: expected float within f32 range"),
        (everything(world, single=10**400), "roundtrip(x).single: expected a number within f32"),
        (everything(world, double=10**400), "roundtrip(x).double: expected a number within f64"),
        (t.ShapeCircle(-(10**400)), "area(s).value: expected a number within f64 range"),
    ]
    for value, fragment in bad:
        function = fragment.partition("(")[0] if fragment.startswith("area") else "roundtrip"
        with pytest.raises(wasmplug.ArgumentError) as info:
            plugin.call(function, value)
        assert fragment in str(info.value)


def test_both_backends_refuse_alike(
    world: wasmplug.World, wasm_dir: Path, core_dir: Path, engine: wasmplug.Engine
) -> None:
    """The checks are shared (wasmplug._checks): every kind of misfit gets the very
    same message on the component path and on the fast path."""
    t = world.types
    plugins = [
        wasmplug.load(d / "typetest.wasm", world=world, engine=engine, name="typetest")
        for d in (wasm_dir, core_dir)
    ]
    bad: list[tuple[str, Any]] = [
        ("roundtrip", everything(world, flag=1)),
        ("roundtrip", everything(world, text=b"bytes")),
        ("roundtrip", everything(world, text="\ud800")),
        ("roundtrip", everything(world, blob="text")),
        ("roundtrip", everything(world, numbers="123")),
        ("roundtrip", everything(world, pair=(1, "x", 2))),
        ("roundtrip", everything(world, outcome="x")),
        ("roundtrip", everything(world, outcome=wasmplug.Err(7))),
        ("roundtrip", everything(world, shape=t.Point(x=1, y=2))),
        ("roundtrip", everything(world, color=3)),
        ("roundtrip", everything(world, perms=["read", "fly"])),
        ("roundtrip", everything(world, letter="ab")),
        ("roundtrip", {"flag": True}),
    ]
    try:
        for function, value in bad:
            messages = []
            for plugin in plugins:
                with pytest.raises(wasmplug.ArgumentError) as info:
                    plugin.call(function, value)
                messages.append(str(info.value))
            assert messages[0] == messages[1], value
    finally:
        for plugin in plugins:
            plugin.close()


def test_refused_call_leaves_the_instance_untouched(
    world: wasmplug.World, plugin: wasmplug.Plugin
) -> None:
    """After a refused argument the same instance keeps serving calls."""
    before = plugin.call("add", 1, 1)
    with pytest.raises(wasmplug.ArgumentError):
        plugin.call("add", -1, 1)
    assert plugin.call("add", 1, 1) == before
    assert plugin.last_call is not None
    assert plugin.last_call.fresh_instance is False


def test_many_calls_do_not_leak(world: wasmplug.World, plugin: wasmplug.Plugin) -> None:
    """Results that own memory (strings, lists, variants, options) are freed: resident
    memory stays flat over many calls."""
    import resource

    value = everything(world)
    for _ in range(2_000):
        plugin.call("roundtrip", value)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(20_000):
        plugin.call("roundtrip", value)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # 20,000 round trips of ~2 KiB each would leak ~40 MiB; allow allocator noise.
    assert after - before < 8 * 1024, f"max RSS grew by {after - before} KiB"


def test_specialized_record_lowering_matches_the_generic_path(world: wasmplug.World) -> None:
    """The generated per-record lowering builds the same value tree as the generic
    field-by-field path: lifting either tree (in host memory, no plugin involved)
    gives back the original value."""
    import ctypes

    from wasmplug._codec import VAL_SIZE, Arena, _Record

    codec = world.exports["roundtrip"]._params[0][1]
    assert isinstance(codec, _Record)
    values = [
        everything(world),
        everything(world, maybe=None, text="", blob=b"", numbers=[]),
        everything(world, double=-0.0, flag=False, letter="a", outcome=wasmplug.Err("e")),
    ]
    for value in values:
        for lower in (codec.lower, codec._lower_generic):
            arena = Arena()
            slot = arena.alloc(VAL_SIZE)
            lower(arena, slot, value)
            base = arena.finalize()
            assert codec.lift(ctypes.string_at(base + slot, VAL_SIZE), 0) == value


def test_prepared_call_serves_many_plugins(
    plugin_dir: Path, world: wasmplug.World, plugin: wasmplug.Plugin, engine: wasmplug.Engine
) -> None:
    """Arguments prepared once give the same results on several plugins of the world as
    ordinary calls, and are refused by a plugin of another World object."""
    other = wasmplug.load(plugin_dir / "typetest.wasm", world=world, engine=engine, name="other")
    value = everything(world)
    prepared = world.prepare("roundtrip", value)
    assert plugin.call_prepared(prepared) == value
    assert other.call_prepared(prepared) == value
    assert plugin.call_prepared(prepared) == plugin.call("roundtrip", value)
    with pytest.raises(wasmplug.ArgumentError, match="takes 2 argument"):
        world.prepare("add", 1)
    stranger = wasmplug.load(
        plugin_dir / "typetest.wasm", world=fixture_world("typetest"), engine=engine
    )
    with pytest.raises(wasmplug.ArgumentError, match="another World object"):
        stranger.call_prepared(prepared)


_WIDTH = {"bool": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "s32": 4, "u32": 4, "char": 4}
_WIDTH |= {"f32": 4, "s64": 8, "u64": 8, "f64": 8}


def reference_size(t: Any, value: Any) -> int:
    """The documented output measure of ``value`` (``Limits.output_bytes``), computed
    from the WIT type and the lifted Python value, independently of the codecs: a type
    without strings or lists counts its largest value; strings and lists 8 plus their
    contents; every discriminant 1, flags 4."""
    from wasmplug import _wit
    from wasmplug._bindings import field_name

    t = _wit.unalias(t)
    fixed = fixed_size(t)
    if fixed is not None:
        return fixed
    if isinstance(t, _wit.Primitive):  # string
        return 8 + len(value.encode())
    if isinstance(t, _wit.ListType):
        if isinstance(value, bytes):
            return 8 + len(value)
        return 8 + sum(reference_size(t.element, v) for v in value)
    if isinstance(t, _wit.OptionType):
        return 1 + (0 if value is None else reference_size(t.inner, value))
    if isinstance(t, _wit.ResultType):
        payload = t.ok if isinstance(value, wasmplug.Ok) else t.err
        return 1 + (0 if payload is None else reference_size(payload, value.value))
    if isinstance(t, _wit.TupleType):
        return sum(reference_size(e, v) for e, v in zip(t.elements, value, strict=True))
    kind = t.kind
    if isinstance(kind, _wit.RecordKind):
        return sum(reference_size(f.type, getattr(value, field_name(f.name))) for f in kind.fields)
    assert isinstance(kind, _wit.VariantKind)
    case = next(
        c for c in kind.cases if type(value).__name__.lower().endswith(c.name.replace("-", ""))
    )
    return 1 + (0 if case.type is None else reference_size(case.type, value.value))


def fixed_size(t: Any) -> int | None:
    """The size of every value of ``t``, or None when it holds a string or a list."""
    from wasmplug import _wit

    t = _wit.unalias(t)
    if isinstance(t, _wit.Primitive):
        return _WIDTH.get(t.name)
    if isinstance(t, _wit.ListType):
        return None
    if isinstance(t, _wit.OptionType):
        inner = fixed_size(t.inner)
        return None if inner is None else 1 + inner
    if isinstance(t, _wit.ResultType | _wit.TypeDef) and not isinstance(
        getattr(t, "kind", None), _wit.RecordKind
    ):
        if isinstance(t, _wit.TypeDef):
            kind = t.kind
            if isinstance(kind, _wit.EnumKind):
                return 1
            if isinstance(kind, _wit.FlagsKind):
                return 4
            payloads = [c.type for c in kind.cases]  # type: ignore[union-attr]
        else:
            payloads = [t.ok, t.err]
        sizes = [0 if p is None else fixed_size(p) for p in payloads]
        if any(s is None for s in sizes):
            return None
        return 1 + max(s or 0 for s in sizes)
    fields = t.elements if isinstance(t, _wit.TupleType) else [f.type for f in t.kind.fields]
    sizes = [fixed_size(f) for f in fields]
    return None if any(s is None for s in sizes) else sum(s or 0 for s in sizes)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"maybe": None, "outcome": wasmplug.Err("no luck at all")},
        {"text": "", "blob": b"", "numbers": [], "points": [], "nested": []},
    ],
)
def test_output_measure_of_every_type(
    world: wasmplug.World, plugin_dir: Path, engine: wasmplug.Engine, changes: dict[str, Any]
) -> None:
    """Limits.output_bytes measures a result of every WIT type as documented (checked
    against an independent computation from the WIT type and the value): at exactly
    its size the result is returned, one byte less and OutputLimitExceeded reports
    the size."""
    value = everything(world, **changes)
    roundtrip = world.wit.exports["roundtrip"]
    assert isinstance(roundtrip, wasmplug._wit.Function)
    size = reference_size(roundtrip.result, value)

    def load(limit: int) -> wasmplug.Plugin:
        policy = wasmplug.Policy(limits=wasmplug.Limits(output_bytes=limit))
        return wasmplug.load(
            plugin_dir / "typetest.wasm", world=world, engine=engine, policy=policy
        )

    assert load(size).call("roundtrip", value) == value
    with pytest.raises(wasmplug.OutputLimitExceeded) as info:
        load(size - 1).call("roundtrip", value)
    assert info.value.used == size
