"""The core-module fast path's own guarantees: its canonical-ABI lifting trusts
nothing from the guest (fuzzed with hypothesis through ``tests/wat/forged-core.wat``),
a lying ``cabi_realloc`` is caught, and a core module that does not match the world
fails to load with the reason. (The calls, limits, capabilities, host functions and
the rule engine run on both backends in their own test modules, through the
``plugin_dir`` fixture.)"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import strategies
import wasmplug
from wasmplug import _cabi, _wit
from wasmplug._checks import Mismatch
from wasmplug._codec import VAL_SIZE, Arena

WAT = Path(__file__).resolve().parent / "wat"
GETTERS = ("get-text", "get-items", "get-result")


@pytest.fixture(scope="module")
def world() -> wasmplug.World:
    return wasmplug.load_world(WAT / "wit", "forged-core")


@pytest.fixture(scope="module")
def forged_core() -> bytes:
    return bytes(wasmtime.wat2wasm((WAT / "forged-core.wat").read_text()))


@pytest.fixture(scope="module")
def sunk() -> list[str]:
    return []


@pytest.fixture(scope="module")
def plugin(
    world: wasmplug.World, forged_core: bytes, engine: wasmplug.Engine, sunk: list[str]
) -> wasmplug.Plugin:
    return wasmplug.load(
        forged_core, world=world, engine=engine, name="forged-core", imports={"sink": sunk.append}
    )


def conforms(world: wasmplug.World, function: str, value: Any) -> None:
    """Checks a lifted value against its WIT type with the component path's own
    lowering (an independent implementation): raises Mismatch if it does not fit."""
    func = world.wit.exports[function]
    assert isinstance(func, _wit.Function)
    assert func.result is not None
    result = func.result
    if isinstance(result, _wit.ResultType):
        value = wasmplug.Ok(value)
    arena = Arena()
    world._codec(result).lower(arena, arena.alloc(VAL_SIZE), value)


def assert_recovers(plugin: wasmplug.Plugin) -> None:
    assert plugin.call("answer") == 42
    assert plugin.last_call is not None
    assert plugin.last_call.fresh_instance is True


#: Words the fuzzer writes at address 0: mostly small (pointers into the first
#: kilobyte, short lengths, low discriminants), sometimes anything.
WORDS = st.one_of(
    st.integers(0, 8),
    st.integers(0, 1024),
    st.sampled_from([0xD800, 0x10FFFF, 0x110000, 0xFFFF_FFFF, 65_532, 65_536]),
    st.integers(0, 0xFFFF_FFFF),
)


FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def outcome(plugin: wasmplug.Plugin, world: wasmplug.World, getter: str) -> tuple[str, Any]:
    """Calls ``getter`` and sorts what happened: ``("lifted", value)`` for a value of
    the WIT type (checked by the component path's lowering, an independent
    implementation), ``("err", payload)`` for a ``result``'s err case, or
    ``("refused", error)`` / ``("too large", error)`` for the typed errors. Any other
    exception propagates (the failure the fuzz tests exist to find)."""
    try:
        value = plugin.call(getter)
    except wasmplug.GuestError as e:
        kind, found = "err", e.value
    except wasmplug.InvalidGuestValue as e:
        kind, found = "refused", e
    except wasmplug.OutputLimitExceeded as e:
        kind, found = "too large", e
    else:
        try:
            conforms(world, getter, value)
        except Mismatch as e:  # pragma: no cover - what the fuzz tests exist to find
            pytest.fail(f"{getter} lifted {value!r}, not of its WIT type: {e.expected}")
        kind, found = "lifted", value
    event(f"{getter}: {kind}")
    return kind, found


@FUZZ
@given(
    words=st.lists(WORDS, min_size=2, max_size=64),
    tail=st.binary(max_size=256),
    getter=st.sampled_from(GETTERS),
)
def test_fuzzed_results_lift_or_raise_the_typed_error(
    plugin: wasmplug.Plugin, world: wasmplug.World, words: list[int], tail: bytes, getter: str
) -> None:
    """Whatever bytes a result points into, lifting returns a value of the WIT type or
    raises InvalidGuestValue (or OutputLimitExceeded: lists whose elements all point
    at the same bytes amplify, and are measured before a byte is lifted); nothing
    else escapes, and the plugin serves the next call."""
    plugin.call("poke", 0, struct.pack(f"<{len(words)}I", *words) + tail)
    kind, found = outcome(plugin, world, getter)
    if kind == "err":
        assert isinstance(found, str)
    elif kind == "refused":
        assert found.function == getter
        assert "canonical ABI" in str(found)
        assert_recovers(plugin)
    elif kind == "too large":
        assert found.used is not None
        assert found.used > found.allowed


def image_of(world: wasmplug.World, function: str, value: Any) -> bytes:
    """The memory image of ``value`` as ``function``'s result at address 0, laid out
    by the fast path's canonical ABI with a bump allocator from address 1024."""
    func = world.wit.exports[function]
    assert isinstance(func, _wit.Function)
    assert func.result is not None
    buf = bytearray(8192)
    bump = [1024]

    def realloc(align: int, size: int) -> int:
        at = -(-bump[0] // align) * align
        bump[0] = at + size
        assert bump[0] <= len(buf), "the value does not fit the test's 8 KiB"
        return at

    layout = _cabi.layout_of(func.result, world.types)
    layout.store(_cabi.Memory(lambda: memoryview(buf), realloc), 0, value)
    return bytes(buf[: bump[0]])


@FUZZ
@given(data=st.data())
def test_corrupted_records_lift_or_raise_the_typed_error(
    plugin: wasmplug.Plugin, world: wasmplug.World, data: st.DataObject
) -> None:
    """A valid list of records (every WIT kind inside) laid out in guest memory, then
    a few bytes overwritten: unchanged, it lifts to the same value; corrupted, it
    lifts to a value of the type or raises InvalidGuestValue."""
    items = world.wit.exports["get-items"]
    assert isinstance(items, _wit.Function)
    value = data.draw(strategies.values(world, items.result), label="value")
    image = bytearray(image_of(world, "get-items", value))
    changes = data.draw(
        st.lists(st.tuples(st.integers(0, len(image) - 1), st.integers(0, 255)), max_size=3),
        label="changes",
    )
    for at, byte in changes:
        image[at] = byte
    plugin.call("poke", 0, bytes(image))
    kind, found = outcome(plugin, world, "get-items")
    if kind == "refused":
        assert_recovers(plugin)
    else:
        assert kind == "lifted"
        if not changes:
            assert found == value


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(word=st.integers(0, 0xFFFF_FFFF))
def test_fuzzed_scalars(plugin: wasmplug.Plugin, word: int) -> None:
    """A char or enum discriminant is a valid one or InvalidGuestValue."""
    plugin.call("poke", 0, struct.pack("<I", word))
    is_char = word < 0x110000 and not 0xD800 <= word <= 0xDFFF
    if is_char:
        assert plugin.call("get-char") == chr(word)
    else:
        with pytest.raises(wasmplug.InvalidGuestValue, match="not a Unicode scalar value"):
            plugin.call("get-char")
        assert_recovers(plugin)
    plugin.call("poke", 0, struct.pack("<I", word))
    if word < 3:
        assert plugin.call("get-enum") == list(plugin.types.Choice)[word]
    else:
        with pytest.raises(wasmplug.InvalidGuestValue, match=f"discriminant {word} of enum"):
            plugin.call("get-enum")


@pytest.mark.parametrize(
    ("pointer", "length", "reason"),
    [
        (100, 2, None),
        (100, 3, "not valid UTF-8"),
        (65_530, 10, "reach past the end"),
        (0xFFFF_FFF0, 0x20, "reach past the end"),
    ],
)
def test_strings_the_guest_passes_to_a_host_function(
    plugin: wasmplug.Plugin, sunk: list[str], pointer: int, length: int, reason: str | None
) -> None:
    """A host function's arguments are lifted as defensively as results: a bad one
    fails the call with InvalidGuestValue (the host function never runs)."""
    image = struct.pack("<II", pointer, length) + bytes(92) + b"ab\xff"
    plugin.call("poke", 0, image)
    sunk.clear()
    if reason is None:
        plugin.call("send")
        assert sunk == ["ab"]
        return
    with pytest.raises(wasmplug.InvalidGuestValue, match=reason) as info:
        plugin.call("send")
    assert sunk == []
    assert "sink" in info.value.detail
    assert_recovers(plugin)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [(0xFFFF_FFF0, "outside the guest's"), (65_535, "outside the guest's")],
)
def test_a_lying_cabi_realloc_is_caught(plugin: wasmplug.Plugin, answer: int, reason: str) -> None:
    """cabi_realloc's answer is checked before the host writes a byte: outside memory,
    or too close to its end, is InvalidGuestValue; the instance is replaced (its
    allocator is sound again)."""
    plugin.call("set-realloc", answer)
    with pytest.raises(wasmplug.InvalidGuestValue, match=reason) as info:
        plugin.call("take-string", "hello")
    assert "cabi_realloc" in str(info.value)
    assert_recovers(plugin)
    assert plugin.call("take-string", "hello") == 5


def test_kind(plugin: wasmplug.Plugin) -> None:
    assert plugin.kind == "core-module"


def core_module(body: str, imports: str = "") -> bytes:
    return bytes(
        wasmtime.wat2wasm(
            f'(module {imports} (memory (export "memory") 1) {body}'
            ' (@custom "component-type:x" ""))'
        )
    )


def test_wrong_core_signature_is_a_world_mismatch(engine: wasmplug.Engine) -> None:
    """An export whose core type is not the canonical ABI's for its WIT type fails to
    load, with what was expected and found."""
    world = wasmplug.load_world(WAT / "wit", "answer")
    wasm = core_module('(func (export "answer") (result i64) i64.const 42)')
    with pytest.raises(wasmplug.WorldMismatchError) as info:
        wasmplug.load(wasm, world=world, engine=engine)
    assert "expected the canonical ABI's (func (param -) (result i32))" in str(info.value)
    assert "found (func (param -) (result i64))" in str(info.value)


def test_unknown_import_is_a_link_error(engine: wasmplug.Engine) -> None:
    world = wasmplug.load_world(WAT / "wit", "answer")
    wasm = core_module(
        '(func (export "answer") (result i32) i32.const 1)',
        imports='(import "evil:net/socket" "open" (func))',
    )
    with pytest.raises(wasmplug.LinkError, match="evil:net/socket#open"):
        wasmplug.load(wasm, world=world, engine=engine)


_WASI_CLOCK_RANDOM = """
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get"
    (func $random_get (param i32 i32) (result i32)))
"""


def _wasi_answer(engine: wasmplug.Engine, body: str, *, seed: int | None) -> wasmplug.Plugin:
    """A core module whose ``answer`` runs ``body`` with WASI preview 1's clock and
    random functions imported, loaded with ``Determinism(seed)`` or without."""
    policy = wasmplug.Policy(determinism=None if seed is None else wasmplug.Determinism(seed=seed))
    return wasmplug.load(
        core_module(f'(func (export "answer") (result i32) {body})', _WASI_CLOCK_RANDOM),
        world=wasmplug.load_world(WAT / "wit", "answer"),
        engine=engine,
        policy=policy,
    )


@pytest.mark.parametrize("seed", [None, 1])
def test_preview_1_clocks_answer_as_wasmtime_does(
    engine: wasmplug.Engine, seed: int | None
) -> None:
    """The clock functions wasmplug serves with Policy.determinism answer what
    wasmtime's own answer without it (run side by side): EBADF for the CPU-time
    clocks, a trap for an unknown clock id or a result pointer outside memory. The
    deterministic monotonic clock reads 0 (written over a filled slot)."""
    cpu = _wasi_answer(
        engine,
        """(i32.add
             (call $clock_time_get (i32.const 2) (i64.const 0) (i32.const 16))
             (i32.mul (i32.const 100)
               (call $clock_time_get (i32.const 3) (i64.const 0) (i32.const 16))))""",
        seed=seed,
    )
    assert cpu.call("answer") == 8 + 100 * 8  # EBADF, EBADF
    for bad in (
        "(i32.const 9) (i64.const 0) (i32.const 16)",
        "(i32.const 0) (i64.const 0) (i32.const 65532)",
    ):
        plugin = _wasi_answer(engine, f"(call $clock_time_get {bad})", seed=seed)
        with pytest.raises(wasmplug.Trap):
            plugin.call("answer")
    if seed is not None:
        monotonic = _wasi_answer(
            engine,
            """(i64.store (i32.const 16) (i64.const -1))
               (drop (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 16)))
               (i64.eqz (i64.load (i32.const 16)))""",
            seed=seed,
        )
        assert monotonic.call("answer") == 1


def test_deterministic_wasi_refuses_bad_requests(engine: wasmplug.Engine) -> None:
    """What wasmtime's own WASI traps on fails the call with InvalidGuestValue (the
    guest's fault, audited, not the host's), saying what was wrong; so does asking
    for more than 1 MiB of random bytes at once. The plugin goes on."""
    cases = {
        "(call $random_get (i32.const 65532) (i32.const 8))": "reach past the end",
        "(call $random_get (i32.const 0) (i32.const 0x200000))": "2,097,152 random bytes",
        "(call $clock_time_get (i32.const 9) (i64.const 0) (i32.const 0))": "clock id 9",
    }
    for body, error in cases.items():
        plugin = _wasi_answer(engine, body, seed=1)
        for _ in range(2):  # and again on the fresh instance
            with pytest.raises(wasmplug.InvalidGuestValue, match=error):
                plugin.call("answer")
    fine = _wasi_answer(engine, "(call $random_get (i32.const 0) (i32.const 16))", seed=1)
    assert fine.call("answer") == 0


def resource_world(tmp_path: Path) -> wasmplug.World:
    """A world exporting an interface that defines a resource and nothing else."""
    (tmp_path / "w.wit").write_text(
        "package t:d@0.1.0;\ninterface i { resource r; }\nworld w { export i; }\n"
    )
    return wasmplug.load_world(tmp_path, "w")


def test_wrong_destructor_type_is_a_world_mismatch(engine: wasmplug.Engine, tmp_path: Path) -> None:
    """A resource destructor export (``[dtor]r``, called through the unchecked path)
    must have exactly the canonical ABI's type, ``(param i32)``."""
    world = resource_world(tmp_path)
    wasm = core_module('(func (export "t:d/i@0.1.0#[dtor]r") (param i32 i32))')
    with pytest.raises(wasmplug.WorldMismatchError) as info:
        wasmplug.load(wasm, world=world, engine=engine)
    assert "t:d/i@0.1.0#[dtor]r" in str(info.value)
    assert "found (func (param i32 i32) (result -))" in str(info.value)


@pytest.mark.parametrize(
    ("name", "ty", "fragment"),
    [
        ("[resource-new]r", "(param i64) (result i32)", "expected the canonical ABI's"),
        ("[resource-drop]r", "(param i32) (result i32)", "expected the canonical ABI's"),
        ("[resource-new]nope", "(param i32) (result i32)", "does not import"),
    ],
)
def test_resource_builtins_are_checked(
    engine: wasmplug.Engine, tmp_path: Path, name: str, ty: str, fragment: str
) -> None:
    """The guest's imports of the resource built-ins (``[export]<interface>``) must
    name a resource the world exports, with the canonical ABI's type."""
    world = resource_world(tmp_path)
    wasm = core_module("", imports=f'(import "[export]t:d/i@0.1.0" "{name}" (func {ty}))')
    with pytest.raises(wasmplug.LinkError) as info:
        wasmplug.load(wasm, world=world, engine=engine)
    assert name in str(info.value)
    assert fragment in str(info.value)


def test_resource_world_loads_with_a_correct_destructor(
    engine: wasmplug.Engine, tmp_path: Path
) -> None:
    """The same world with the canonical types loads on the fast path."""
    world = resource_world(tmp_path)
    wasm = core_module(
        '(func (export "t:d/i@0.1.0#[dtor]r") (param i32))',
        imports='(import "[export]t:d/i@0.1.0" "[resource-new]r" (func (param i32) (result i32)))',
    )
    with wasmplug.load(wasm, world=world, engine=engine) as plugin:
        assert plugin.kind == "core-module"
        assert plugin.imports == ()
