"""Loading: every kind of bad plugin input gets a clear, specific error that says what
was expected and what was found, and nothing is left half-loaded."""

from __future__ import annotations

import hashlib
import logging
import pickle
import stat
from pathlib import Path
from typing import Any

import pytest
import wasmtime

import wasmplug
from conftest import FIXTURES, fixture_world
from wasmplug import _wit
from wasmplug._host import host_interface

TYPETEST_WIT = (FIXTURES / "typetest" / "wit" / "typetest.wit").read_text()
HOST_WIT = (FIXTURES.parent.parent / "src" / "wasmplug" / "wit" / "host.wit").read_text()


def world_from_text(text: str, name: str) -> wasmplug.World:
    return wasmplug.World(_wit.parse_wit_text(text, deps=[HOST_WIT]).world(name))


@pytest.fixture(scope="module")
def typetest_world() -> wasmplug.World:
    return fixture_world("typetest")


@pytest.fixture(scope="module")
def typetest_wasm(wasm_dir: Path) -> bytes:
    return (wasm_dir / "typetest.wasm").read_bytes()


def test_load_from_path_and_bytes(
    wasm_dir: Path, typetest_world: wasmplug.World, typetest_wasm: bytes, engine: Any
) -> None:
    """A plugin loads from a path (named after the file) or from bytes (named after its
    hash), and reports its sha256 and imports."""
    from_path = wasmplug.load(wasm_dir / "typetest.wasm", world=typetest_world, engine=engine)
    digest = hashlib.sha256(typetest_wasm).hexdigest()
    assert from_path.name == "typetest"
    assert from_path.sha256 == digest
    assert any(i.startswith("wasi:") for i in from_path.imports)
    from_bytes = wasmplug.load(typetest_wasm, world=typetest_world, engine=engine)
    assert from_bytes.name == f"plugin-{digest[:12]}"
    assert from_bytes.call("add", 1, 2) == 3
    assert "roundtrip" in from_bytes.functions


def test_sha256_pin(typetest_world: wasmplug.World, typetest_wasm: bytes, engine: Any) -> None:
    """A matching pin (any case) loads; a wrong pin raises IntegrityError with both
    digests."""
    digest = hashlib.sha256(typetest_wasm).hexdigest()
    wasmplug.load(typetest_wasm, world=typetest_world, sha256=digest.upper(), engine=engine)
    wrong = "0" * 64
    with pytest.raises(wasmplug.IntegrityError) as info:
        wasmplug.load(
            typetest_wasm, world=typetest_world, sha256=wrong, name="pinned", engine=engine
        )
    assert info.value.expected == wrong
    assert info.value.found == digest
    assert f"expected {wrong}, found {digest}" in str(info.value)
    assert "plugin 'pinned'" in str(info.value)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "not WebAssembly: expected the magic bytes"),
        (b"hello world, not wasm", "found b'hello wo'"),
        (b"\x00asm\x0d\x00\x01\x00" + b"\xff" * 32, "not a valid WebAssembly component"),
    ],
)
def test_corrupt_bytes(
    typetest_world: wasmplug.World, engine: Any, data: bytes, fragment: str
) -> None:
    """Bytes that are not a component raise InvalidWasmError saying what was found."""
    with pytest.raises(wasmplug.InvalidWasmError) as info:
        wasmplug.load(data, world=typetest_world, name="junk", engine=engine)
    assert fragment in str(info.value)
    assert isinstance(info.value, wasmplug.LoadError)


def test_truncated_component(
    typetest_world: wasmplug.World, typetest_wasm: bytes, engine: Any
) -> None:
    """A component cut short fails to compile with InvalidWasmError."""
    with pytest.raises(wasmplug.InvalidWasmError, match="not a valid WebAssembly component"):
        wasmplug.load(typetest_wasm[: len(typetest_wasm) // 2], world=typetest_world, engine=engine)


def test_core_module_without_world(typetest_world: wasmplug.World, engine: Any) -> None:
    """A core module without wit-bindgen's component-type section (here the smallest
    one, from WAT) is named as such, with the fix."""
    core = wasmtime.wat2wasm(
        '(module (func (export "add") (param i32 i32) (result i32) local.get 0))'
    )
    with pytest.raises(wasmplug.InvalidWasmError) as info:
        wasmplug.load(core, world=typetest_world, engine=engine)
    assert "core WebAssembly module without a component-type custom section" in str(info.value)
    assert "wasm32-wasip1" in str(info.value)


def test_missing_file(typetest_world: wasmplug.World, tmp_path: Path) -> None:
    """A path that does not exist raises the OSError of reading it."""
    with pytest.raises(FileNotFoundError):
        wasmplug.load(tmp_path / "absent.wasm", world=typetest_world)


def test_wrong_world_lists_missing_exports(wasm_dir: Path, engine: Any) -> None:
    """A plugin for another world raises WorldMismatchError listing every missing
    export."""
    caps_world = fixture_world("caps")
    with pytest.raises(wasmplug.WorldMismatchError) as info:
        wasmplug.load(wasm_dir / "typetest.wasm", world=caps_world, engine=engine)
    problems = info.value.problems
    assert "missing export kv-get: func" in problems
    assert "missing export read-file: func" in problems
    assert len(problems) == len(caps_world.exports)
    assert "does not implement world wasmplug-tests:caps/caps@0.1.0" in str(info.value)


def test_signature_mismatch_shows_expected_and_found(wasm_dir: Path, engine: Any) -> None:
    """An export whose WIT type differs from the host's is reported with the path,
    the expected type and the found type."""
    text = TYPETEST_WIT.replace(
        "export add: func(a: u32, b: u32) -> u32;", "export add: func(a: u32, b: u32) -> u64;"
    ).replace("x: s32,\n        y: s32,", "x: s32,\n        y: s64,")
    world = world_from_text(text, "typetest")
    with pytest.raises(wasmplug.WorldMismatchError) as info:
        wasmplug.load(wasm_dir / "typetest.wasm", world=world, engine=engine)
    problems = info.value.problems
    assert "export add result: expected u64, found u32" in problems
    assert "export farthest(points)[].y: expected s64, found s32" in problems
    assert "export farthest result?.y: expected s64, found s32" in problems
    assert "export roundtrip(x).nested[]?.y: expected s64, found s32" in problems
    assert len(problems) == 7


def test_import_outside_the_world_is_a_link_error(wasm_dir: Path, engine: Any) -> None:
    """A component importing host capabilities that the host's world does not include
    is refused with LinkError naming the imports."""
    text = (FIXTURES / "caps" / "wit" / "caps.wit").read_text()
    text = text.replace(f"include {host_interface('capabilities')};", "")
    world = world_from_text(text, "caps")
    with pytest.raises(wasmplug.LinkError) as info:
        wasmplug.load(wasm_dir / "caps.wasm", world=world, engine=engine)
    assert set(info.value.imports) == {
        host_interface("log"),
        host_interface("config"),
        host_interface("kv"),
    }
    assert "which world wasmplug-tests:caps/caps@0.1.0 does not import" in str(info.value)


def test_closed_plugin(typetest_world: wasmplug.World, typetest_wasm: bytes, engine: Any) -> None:
    """close() is idempotent; a closed plugin refuses calls with PluginClosedError; the
    context manager closes."""
    with wasmplug.load(typetest_wasm, world=typetest_world, engine=engine) as plugin:
        assert plugin.call("add", 1, 1) == 2
    assert plugin.closed
    plugin.close()
    with pytest.raises(wasmplug.PluginClosedError):
        plugin.call("add", 1, 1)
    assert "closed" in repr(plugin)


def test_plugin_cannot_be_constructed_directly() -> None:
    """Plugins come from wasmplug.load only."""
    with pytest.raises(TypeError, match=r"wasmplug\.load"):
        wasmplug.Plugin()


def test_compile_cache_is_reused(
    typetest_world: wasmplug.World, typetest_wasm: bytes, tmp_path: Path
) -> None:
    """A compiled component is written to the disk cache (keyed by sha256) and a new
    engine loads it from there instead of compiling again."""
    digest = hashlib.sha256(typetest_wasm).hexdigest()
    first = wasmplug.Engine(cache_dir=tmp_path)
    wasmplug.load(typetest_wasm, world=typetest_world, engine=first)
    cached = list(tmp_path.glob(f"wasmtime-*/{digest}.cwasm"))
    assert len(cached) == 1
    second = wasmplug.Engine(cache_dir=tmp_path)
    before = cached[0].stat().st_mtime_ns
    plugin = wasmplug.load(typetest_wasm, world=typetest_world, engine=second)
    assert plugin.call("add", 20, 22) == 42
    assert cached[0].stat().st_mtime_ns == before
    cached[0].write_bytes(b"garbage")
    third = wasmplug.Engine(cache_dir=tmp_path)
    assert wasmplug.load(typetest_wasm, world=typetest_world, engine=third).call("add", 1, 1) == 2


def test_engines_measuring_component_memory_or_not_share_a_cache_directory(
    typetest_world: wasmplug.World,
    typetest_wasm: bytes,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Components compiled for host-allocated memories (no copy-on-write images,
    which wasmtime refuses to mix) are cached apart: each kind of engine reuses its
    own entry and never logs the other's as unusable."""
    digest = hashlib.sha256(typetest_wasm).hexdigest()
    for measure in (True, False, True, False):
        engine = wasmplug.Engine(cache_dir=tmp_path, measure_component_memory=measure)
        plugin = wasmplug.load(typetest_wasm, world=typetest_world, engine=engine)
        assert plugin.call("add", 2, 3) == 5
    assert len(list(tmp_path.glob(f"wasmtime-*/{digest}.cwasm"))) == 2
    assert "unusable" not in caplog.text


@pytest.mark.parametrize("writable", ["entry", "directory"])
def test_compile_cache_entries_others_could_write_are_not_trusted(
    typetest_world: wasmplug.World,
    typetest_wasm: bytes,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    writable: str,
) -> None:
    """Compiled code is loaded without re-validation, so a cache entry that another
    user could have written (the entry or its directory writable by others) is ignored
    with a warning and the plugin compiled again; directories the cache creates are
    private."""
    digest = hashlib.sha256(typetest_wasm).hexdigest()
    root = tmp_path / "cache"
    wasmplug.load(typetest_wasm, world=typetest_world, engine=wasmplug.Engine(cache_dir=root))
    (entry,) = root.glob(f"wasmtime-*/{digest}.cwasm")
    assert stat.S_IMODE(entry.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    target = entry if writable == "entry" else entry.parent
    target.chmod(0o777)
    planted = entry.read_bytes()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="wasmplug"):
        plugin = wasmplug.load(
            typetest_wasm, world=typetest_world, engine=wasmplug.Engine(cache_dir=root)
        )
    assert plugin.call("add", 2, 3) == 5
    messages = [r.getMessage() for r in caplog.records if "cache entry" in r.getMessage()]
    problem = ("" if writable == "entry" else f"{target}: ") + "others can write it (mode 777)"
    assert messages[0] == f"ignoring cache entry {entry}: {problem}"
    if writable == "entry":
        # Compiled again and written afresh into the (private) directory.
        assert messages[1:] == []
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    else:
        # Nothing is written where others could replace it.
        assert messages[1:] == [f"not writing cache entry {entry}: {problem}"]
        assert entry.read_bytes() == planted


def test_unknown_world_name() -> None:
    """Asking for a world the WIT does not define is a WitError naming what exists."""
    with pytest.raises(wasmplug.WitError) as info:
        wasmplug.load_world(FIXTURES / "typetest" / "wit", "nope")
    assert "nope" in str(info.value)


def test_policy_is_immutable_comparable_picklable(tmp_path: Path) -> None:
    """Policies are frozen values: equal when equal, hashable, picklable, and round-trip
    through plain dicts."""
    policy = wasmplug.Policy(
        grants=wasmplug.Grants(
            log=True,
            config={"b": "2", "a": "1"},
            kv=wasmplug.KvGrant(quota_bytes=10, namespace="ns"),
            files=[wasmplug.Preopen(host_path=tmp_path, guest_path="/d", writable=True)],
            env={"X": "y"},
        ),
        limits=wasmplug.Limits(fuel=5, memory_bytes=1 << 20, deadline_ms=None),
    )
    same = wasmplug.Policy.from_dict(policy.to_dict())
    assert same == policy
    assert hash(same) == hash(policy)
    assert pickle.loads(pickle.dumps(policy)) == policy
    assert policy.grants.config == {"a": "1", "b": "2"}
    with pytest.raises(AttributeError):
        policy.grants.log = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.grants.config["c"] = "3"  # type: ignore[index]
    assert wasmplug.Policy() == wasmplug.Policy(grants=wasmplug.Grants())
    assert wasmplug.Grants().config is None
    assert wasmplug.Grants().kv is None


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: wasmplug.Preopen(host_path="/tmp", guest_path="relative"), "absolute path"),
        (
            lambda: wasmplug.Grants(config={"k": 1}),  # type: ignore[dict-item]
            "expected str keys and values",
        ),
        (lambda: wasmplug.Grants(env={"A=B": "c"}), "invalid environment variable name"),
        (lambda: wasmplug.KvGrant(quota_bytes=-1), "quota_bytes must be an int >= 0"),
        (
            lambda: wasmplug.Grants(files=["/tmp"]),  # type: ignore[list-item]
            "must hold Preopen values",
        ),
        (
            lambda: wasmplug.Grants(
                files=[
                    wasmplug.Preopen(host_path="/a", guest_path="/x"),
                    wasmplug.Preopen(host_path="/b", guest_path="/x"),
                ]
            ),
            "maps one guest path twice",
        ),
        (
            lambda: wasmplug.Policy.from_dict({"grants": {"net": True}}),
            "policy.grants: unknown key 'net'",
        ),
    ],
)
def test_policy_validation(build: Any, fragment: str) -> None:
    """Invalid grants are refused when built, with PolicyError saying why."""
    with pytest.raises(wasmplug.PolicyError) as info:
        build()
    assert fragment in str(info.value)


def test_public_api_is_pinned() -> None:
    """The public namespace is exactly this list: changes to it are deliberate."""
    assert wasmplug.__all__ == [
        "ArgumentError",
        "AuditEvent",
        "CallError",
        "CallInterrupted",
        "CallStats",
        "CapabilityError",
        "CapabilityReport",
        "DeadlineExceeded",
        "Denial",
        "Determinism",
        "DiskLimitExceeded",
        "Engine",
        "Err",
        "ExportFunc",
        "FileLimitExceeded",
        "FrozenMap",
        "FuelExhausted",
        "Grants",
        "GuestError",
        "HandleLimitExceeded",
        "HostCallsExceeded",
        "HostFunctionError",
        "HttpGrant",
        "HttpRule",
        "InstantiationError",
        "IntegrityError",
        "InvalidGuestValue",
        "InvalidWasmError",
        "KvGrant",
        "KvNamespace",
        "KvQuotaExceeded",
        "KvStore",
        "LimitExceeded",
        "Limits",
        "LinkError",
        "LoadError",
        "LogLimitExceeded",
        "Manifest",
        "ManifestError",
        "MemoryKvStore",
        "MemoryLimitExceeded",
        "Need",
        "NeedItem",
        "Ok",
        "OutputLimitExceeded",
        "Plugin",
        "PluginBusy",
        "PluginClosedError",
        "PluginInfo",
        "Policy",
        "PolicyError",
        "Pool",
        "Preopen",
        "PreparedCall",
        "ReentrantCallError",
        "ResourceHandle",
        "StaleHandleError",
        "StdioLimitExceeded",
        "Trap",
        "TypeNamespace",
        "WasiRefusedError",
        "WasmplugError",
        "WitError",
        "World",
        "WorldMismatchError",
        "generate_bindings",
        "inspect",
        "load",
        "load_policies",
        "load_pool",
        "load_world",
    ]
    assert wasmplug.__all__ == sorted(wasmplug.__all__)
    for name in wasmplug.__all__:
        assert getattr(wasmplug, name) is not None


def test_exception_tree() -> None:
    """Every exception derives from WasmplugError; the ones resembling builtins also
    derive from them."""
    for name in wasmplug.__all__:
        obj = getattr(wasmplug, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, wasmplug.WasmplugError), name
    assert issubclass(wasmplug.ArgumentError, TypeError)
    assert issubclass(wasmplug.PolicyError, ValueError)
    assert issubclass(wasmplug.WitError, ValueError)
    assert issubclass(wasmplug.PluginClosedError, RuntimeError)
    for limit in (
        wasmplug.FuelExhausted,
        wasmplug.DeadlineExceeded,
        wasmplug.MemoryLimitExceeded,
        wasmplug.PluginBusy,
    ):
        assert issubclass(limit, wasmplug.LimitExceeded)
        assert issubclass(limit, wasmplug.CallError)
    assert not issubclass(wasmplug.GuestError, wasmplug.CallError)


def test_in_memory_compile_cache_is_bounded(typetest_wasm: bytes, wasm_dir: Path) -> None:
    """The engine's in-memory cache keeps at most max_cached_components compiled
    components, least recently used dropped first; a bad bound is a PolicyError."""
    smoke = (wasm_dir / "smoke.wasm").read_bytes()
    digests = [wasmplug._engine.sha256_hex(w) for w in (typetest_wasm, smoke)]
    for size, same in ((1, False), (2, True)):
        engine = wasmplug.Engine(cache_dir=None, max_cached_components=size)
        first = engine.compile(typetest_wasm, sha256=digests[0], plugin=None)
        engine.compile(smoke, sha256=digests[1], plugin=None)
        again = engine.compile(typetest_wasm, sha256=digests[0], plugin=None)
        assert (again is first) is same
        engine.close()
    with pytest.raises(wasmplug.PolicyError, match="max_cached_components"):
        wasmplug.Engine(max_cached_components=0)


def test_public_names_report_the_public_module() -> None:
    """Every public class and function says it lives in ``wasmplug`` (tracebacks show
    ``wasmplug.FuelExhausted``, not a private module), and pickling still works."""
    for name in wasmplug.__all__:
        obj = getattr(wasmplug, name)
        if isinstance(obj, type) or callable(obj):
            assert obj.__module__ == "wasmplug", name
    error = wasmplug.FuelExhausted("x", limit="fuel", allowed=1, plugin="p")
    assert repr(type(error)) == "<class 'wasmplug.FuelExhausted'>"
    policy = wasmplug.Policy(limits=wasmplug.Limits(fuel=5))
    assert pickle.loads(pickle.dumps(policy)) == policy


def test_a_stale_copy_of_host_wit_is_refused(tmp_path: Path) -> None:
    """A world whose wit/deps holds a copy of wasmplug:host that differs from the one
    wasmplug serves fails to load with a WitError naming the copy; an identical copy
    (not a link) loads."""
    import shutil

    from wasmplug._host import HOST_WIT

    wit = tmp_path / "wit"
    shutil.copytree(FIXTURES / "caps" / "wit", wit, symlinks=False)
    copy = wit / "deps" / "wasmplug-host" / "host.wit"
    assert not copy.is_symlink()
    assert wasmplug.load_world(wit, "caps").name == "wasmplug-tests:caps/caps@0.1.0"
    copy.write_text(HOST_WIT.read_text().replace("    enabled: func", "    is-enabled: func"))
    with pytest.raises(wasmplug.WitError) as info:
        wasmplug.load_world(wit, "caps")
    assert info.value.path == str(copy)
    assert "differs from the one wasmplug serves" in str(info.value)


def test_exports_and_prepared_calls_expose_no_internals(typetest_world: wasmplug.World) -> None:
    """ExportFunc and PreparedCall show the signature, not codec objects or a raw
    pointer; World has no public codec accessor (its exception would be private)."""
    export = typetest_world.exports["add"]
    assert export.signature == "add: func(a: u32, b: u32) -> u32"
    assert repr(export) == "<ExportFunc add: func(a: u32, b: u32) -> u32>"
    public = {n for n in dir(export) if not n.startswith("_")}
    assert public == {"error", "interface", "name", "signature", "wit"}
    prepared = typetest_world.prepare("add", 1, 2)
    assert {n for n in dir(prepared) if not n.startswith("_")} == {"export", "function", "world"}
    assert not hasattr(typetest_world, "codec")


def test_a_plugin_never_closed_is_freed_when_collected(wasm_dir: Path) -> None:
    """Dropping a plugin without close() frees it: its backend, Store and linker are
    collected and its host functions unregistered (nothing global keeps them alive)."""
    import gc
    import weakref

    from wasmplug import _component_host

    world = fixture_world("caps")
    gc.collect()
    before = len(_component_host._HOST_FUNCS)
    backends = []
    for i in range(5):
        plugin = wasmplug.load(wasm_dir / "caps.wasm", world=world, name=f"dropped-{i}")
        assert plugin.call("get-env", "X") is None  # an instance ran
        backends.append(weakref.ref(plugin._backend))
        assert len(_component_host._HOST_FUNCS) > before
        del plugin
    gc.collect()
    assert all(ref() is None for ref in backends)
    assert len(_component_host._HOST_FUNCS) == before


def test_every_exception_is_in_the_errors_doc() -> None:
    """docs/errors.md draws the whole exception tree: every public exception class is
    named in it."""
    from wasmplug import _exceptions

    doc = (Path(__file__).parent.parent / "docs" / "errors.md").read_text(encoding="utf-8")
    missing = [name for name in _exceptions.__all__ if name not in doc]
    assert missing == []
