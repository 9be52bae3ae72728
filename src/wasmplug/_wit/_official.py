"""WIT parsing by the official implementation, run in wasmplug's own sandbox.

``wit.wasm`` (next to this file) is the ``wit-parser`` and ``wit-component`` crates built
to a wasm32-wasip1 core module (source: ``tools/wit-wasm``; rebuild with
``scripts/build-wit-module.sh``). Each request runs in a fresh ``wasmtime.Store`` with a
fuel budget and a memory ceiling; the module sees one read-only preopened directory (a
snapshot of the WIT files being parsed) and nothing else: no environment, no stdio.

Two caches keep this cheap:

* the module compiled by Cranelift, serialized to
  ``$XDG_CACHE_HOME/wasmplug/wasmtime-<version>/wit-parser-<sha256>.cwasm``;
* parse results, as JSON, keyed by a sha256 over the module's identity
  (:func:`parser_identity`) and every input file's relative path and bytes: on disk in
  ``$XDG_CACHE_HOME/wasmplug/wit/`` and in a bounded in-memory LRU. A process that
  loads WIT it has seen before never reads, compiles or instantiates the parser
  module.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import struct
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import attrs
import wasmtime

from .._diskcache import cache_root, prune, read_trusted, touch, write_atomically
from .._exceptions import WitError
from .._version import __version__, wasmtime_version
from ._json import resolve_from_json
from ._model import Resolve, World

__all__ = [
    "Decoded",
    "ParserError",
    "custom_sections",
    "decode_wasm",
    "load_wit",
    "parse_wit_text",
    "stats",
]

logger = logging.getLogger("wasmplug")

_MODULE_PATH = Path(__file__).with_name("wit.wasm")
#: Where the module sees the WIT files it parses.
_GUEST_ROOT = "/wasmplug-wit"
#: Fuel for one request: generous (a large WIT package takes tens of millions).
FUEL = 20_000_000_000
#: Linear memory ceiling for one request, in bytes.
MEMORY_BYTES = 512 << 20
#: Entries kept in the in-memory result cache.
LRU_SIZE = 64
#: Results kept in the on-disk cache (least recently used dropped first).
DISK_ENTRIES = 1024
#: Compiled parser modules kept on disk per wasmtime version (one per wasmplug
#: version that ran on the machine; the least recently used dropped first).
DISK_MODULES = 4

_LOCATION = re.compile(r"^\s*--> (.+):(\d+):(\d+)\s*$", re.MULTILINE)
# The form wit-parser uses when the source line is too long to quote.
_SHORT_LOCATION = re.compile(r"^(.+?):(\d+):(\d+): (.*)$", re.DOTALL)


class ParserError(Exception):
    """The parser module reported an error (its message), or trapped."""


@attrs.define
class _Stats:
    """Counters, for tests and benchmarks.

    Attributes:
        instantiations: Parser instances created (one per request that missed the cache).
        compiles: Times the module was compiled by Cranelift (not loaded from disk).
        disk_hits: Results read from the on-disk cache.
        memory_hits: Results found in the in-memory cache.
    """

    instantiations: int = 0
    compiles: int = 0
    disk_hits: int = 0
    memory_hits: int = 0


#: This process's counters.
stats = _Stats()


@attrs.define
class _Loaded:
    """The process's parser: its engine, compiled module and hash, once loaded."""

    engine: wasmtime.Engine | None = None
    module: wasmtime.Module | None = None
    sha256: str | None = None
    identity: str | None = None


_lock = threading.Lock()
_loaded = _Loaded()
_results: OrderedDict[str, str] = OrderedDict()


def module_sha256() -> str:
    """The sha256 of the shipped parser module, lowercase hex (reads the module)."""
    if _loaded.sha256 is None:
        _loaded.sha256 = hashlib.sha256(_MODULE_PATH.read_bytes()).hexdigest()
    return _loaded.sha256


def parser_identity() -> str:
    """What names the shipped parser module in the result cache's keys: wasmplug's
    version with the module file's size and modification time (nanoseconds), the
    way Python's own bytecode cache names a source file (PEP 552). Rebuilding or
    reinstalling the module changes it. Unlike :func:`module_sha256` it does not
    read the 1.4 MB module, so a process whose WIT is cached never opens it.

    Raises:
        OSError: the module file is missing (a broken installation).
    """
    if _loaded.identity is None:
        st = os.stat(_MODULE_PATH)
        _loaded.identity = f"{__version__}:{st.st_size}:{st.st_mtime_ns}"
    return _loaded.identity


def clear_memory_cache() -> None:
    """Forgets the in-memory results (the state of a fresh process; the compiled
    module stays loaded)."""
    with _lock:
        _results.clear()


def _load_module() -> tuple[wasmtime.Engine, wasmtime.Module]:
    with _lock:
        if _loaded.engine is not None and _loaded.module is not None:
            return _loaded.engine, _loaded.module
        config = wasmtime.Config()
        config.consume_fuel = True
        engine = wasmtime.Engine(config)
        sha = module_sha256()
        cached = cache_root() / f"wasmtime-{wasmtime_version()}" / f"wit-parser-{sha}.cwasm"
        module = None
        data = read_trusted(cached)
        if data is not None:
            try:
                module = wasmtime.Module.deserialize(engine, data)
            except wasmtime.WasmtimeError as e:
                logger.warning("ignoring unusable compile cache entry %s: %s", cached, e)
        if module is None:
            module = wasmtime.Module(engine, _MODULE_PATH.read_bytes())
            stats.compiles += 1
            write_atomically(cached, bytes(module.serialize()))
            prune(cached.parent, "wit-parser-*.cwasm", DISK_MODULES)
        _loaded.engine, _loaded.module = engine, module
        return engine, module


def _run(export: str, request: bytes, preopen: Path | None) -> str:
    """Runs one request in a fresh instance and returns the JSON response.

    Raises:
        ParserError: the module reported an error, trapped, or ran out of fuel or memory.
    """
    engine, module = _load_module()
    store = wasmtime.Store(engine)
    store.set_fuel(FUEL)
    store.set_limits(memory_size=MEMORY_BYTES)
    wasi = wasmtime.WasiConfig()
    if preopen is not None:
        wasi.preopen_dir(str(preopen), _GUEST_ROOT, fs_mutable=False)
    store.set_wasi(wasi)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    stats.instantiations += 1
    try:
        instance = linker.instantiate(store, module)
    except (wasmtime.WasmtimeError, wasmtime.Trap) as e:
        raise ParserError(f"the WIT parser cannot start: {_first_line(str(e))}") from None
    try:
        exports = instance.exports(store)
        init = exports.get("_initialize")
        if isinstance(init, wasmtime.Func):
            init(store)
        memory = exports["memory"]
        alloc, func = exports["alloc"], exports[export]
        assert isinstance(memory, wasmtime.Memory)
        assert isinstance(alloc, wasmtime.Func)
        assert isinstance(func, wasmtime.Func)
        ptr = alloc(store, len(request))
        memory.write(store, request, ptr)
        slot = func(store, ptr, len(request))
        status, out, size = struct.unpack("<III", memory.read(store, slot, slot + 12))
        text = memory.read(store, out, out + size).decode("utf-8")
    except wasmtime.Trap as e:
        if e.trap_code == wasmtime.TrapCode.OUT_OF_FUEL:
            raise ParserError(f"the WIT parser ran out of fuel (budget {FUEL:,})") from None
        raise ParserError(_trap_message(store, instance, e)) from None
    except wasmtime.WasmtimeError as e:
        raise ParserError(f"the WIT parser failed: {_first_line(str(e))}") from None
    if status != 0:
        raise ParserError(text)
    return text


def _trap_message(store: wasmtime.Store, instance: wasmtime.Instance, trap: wasmtime.Trap) -> str:
    """Why the parser trapped: its panic message, else the memory limit, else the trap."""
    exports = instance.exports(store)
    memory, panic = exports["memory"], exports.get("panic_message")
    assert isinstance(memory, wasmtime.Memory)
    if isinstance(panic, wasmtime.Func):
        # A core instance stays usable after a trap: ask it for the panic's message.
        store.set_fuel(1_000_000)
        try:
            slot = panic(store)
            status, out, size = struct.unpack("<III", memory.read(store, slot, slot + 12))
            if status == 1:
                message = memory.read(store, out, out + size).decode("utf-8", "replace")
                if "memory allocation" in message or "capacity overflow" in message:
                    return f"the WIT parser hit its memory limit ({MEMORY_BYTES >> 20} MiB)"
                return message
        except (wasmtime.WasmtimeError, wasmtime.Trap):
            pass
    if memory.data_len(store) * 2 > MEMORY_BYTES:
        return f"the WIT parser hit its memory limit ({MEMORY_BYTES >> 20} MiB)"
    return f"the WIT parser trapped: {_first_line(str(trap))}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


# --- result cache -----------------------------------------------------------------------


def _cached(key: str) -> str | None:
    with _lock:
        text = _results.get(key)
        if text is not None:
            _results.move_to_end(key)
            stats.memory_hits += 1
            return text
    path = cache_root() / "wit" / f"{key}.json"
    data = read_trusted(path)
    if data is None:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    stats.disk_hits += 1
    touch(path)
    _remember(key, text, disk=False)
    return text


def _remember(key: str, text: str, *, disk: bool = True) -> None:
    with _lock:
        _results[key] = text
        _results.move_to_end(key)
        while len(_results) > LRU_SIZE:
            _results.popitem(last=False)
    if disk:
        directory = cache_root() / "wit"
        write_atomically(directory / f"{key}.json", text.encode("utf-8"))
        prune(directory, "*.json", DISK_ENTRIES)


def _key(what: str, files: Sequence[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    h.update(f"{parser_identity()}\0{what}\0".encode())
    for rel, data in files:
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


# --- entry points -----------------------------------------------------------------------


def _collect(root: Path) -> tuple[list[tuple[str, bytes]], str]:
    """The files ``Resolve::push_path`` reads for ``root``, as (relative path, bytes),
    and the guest path to parse."""
    if root.is_file():
        return [(root.name, root.read_bytes())], f"{_GUEST_ROOT}/{root.name}"
    files = [(p.name, p.read_bytes()) for p in sorted(root.glob("*.wit")) if p.is_file()]
    deps = root / "deps"
    if deps.is_dir():
        for entry in sorted(deps.iterdir()):
            if entry.is_dir():
                files += [
                    (f"deps/{entry.name}/{p.name}", p.read_bytes())
                    for p in sorted(entry.glob("*.wit"))
                    if p.is_file()
                ]
            elif entry.suffix in (".wit", ".wasm", ".wat"):
                files.append((f"deps/{entry.name}", entry.read_bytes()))
    return files, _GUEST_ROOT


def _parse(files: list[tuple[str, bytes]], guest: str, names: dict[str, str]) -> str:
    key = _key("path:" + guest, files)
    text = _cached(key)
    if text is not None:
        return text
    import tempfile  # only on a cache miss: it costs milliseconds to import

    with tempfile.TemporaryDirectory(prefix="wasmplug-wit-") as tmp:
        for rel, data in files:
            dest = Path(tmp, rel)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        try:
            text = _run("parse_path", guest.encode(), Path(tmp))
        except ParserError as e:
            raise _located(str(e), names) from None
    _remember(key, text)
    return text


def _located(message: str, names: dict[str, str]) -> WitError:
    """A :class:`WitError` from the parser's message, with guest paths mapped back."""
    for guest, host in sorted(names.items(), key=lambda kv: -len(kv[0])):
        message = message.replace(guest, host)
    layers = [layer.strip("\n") for layer in message.split("\n\n") if layer.strip()]
    for layer in reversed(layers):
        match = _LOCATION.search(layer)
        if match is not None:
            reason = layer[: match.start()].strip()
            return WitError(
                reason, path=match.group(1), line=int(match.group(2)), column=int(match.group(3))
            )
        match = _SHORT_LOCATION.match(layer)
        if match is not None and match.group(1) in names.values():
            path, line, column, reason = match.groups()
            return WitError(reason, path=path, line=int(line), column=int(column))
    return WitError(": ".join(layers), path=names.get(_GUEST_ROOT))


def load_wit(path: str | os.PathLike[str]) -> Resolve:
    """Loads and resolves a WIT package and its dependencies from the filesystem.

    Parsing is ``wit-parser``'s ``Resolve::push_path``: a directory holds one package
    (all its ``*.wit`` files) with its dependencies in ``deps/`` (each a directory of
    ``*.wit`` files, or a single ``.wit`` file, or a ``.wasm`` encoded package); a
    single ``.wit`` file is a package on its own. Symbolic links are followed: the
    files are copied to a private snapshot that the parser reads.

    Args:
        path: A ``.wit`` file or a directory.

    Returns:
        The resolved packages; :attr:`Resolve.main` names the package at ``path``.

    Raises:
        WitError: The path cannot be read, or the WIT is invalid. When the parser
            locates the error, :attr:`WitError.path`, ``line`` and ``column`` say
            where and :attr:`WitError.reason` is the parser's message. Also raised
            when the parser exhausts its fuel (:data:`FUEL`) or memory
            (:data:`MEMORY_BYTES`, bytes).
    """
    root = Path(os.fspath(path))
    if not root.exists():
        raise WitError("no such file or directory", path=str(root))
    try:
        files, guest = _collect(root)
    except OSError as e:
        raise WitError(f"cannot read the WIT: {e}", path=str(root)) from None
    host = str(root.parent if root.is_file() else root)
    return resolve_from_json(_parse(files, guest, {_GUEST_ROOT: host}))


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
    files = [("main.wit", text.encode("utf-8"))]
    names = {f"{_GUEST_ROOT}/main.wit": filename, _GUEST_ROOT: filename}
    for i, dep in enumerate(deps):
        files.append((f"deps/dep{i:04}.wit", dep.encode("utf-8")))
        names[f"{_GUEST_ROOT}/deps/dep{i:04}.wit"] = f"<deps[{i}]>"
    return resolve_from_json(_parse(files, _GUEST_ROOT, names))


@attrs.frozen
class Decoded:
    """What :func:`decode_wasm` found.

    Attributes:
        kind: ``"component"``, ``"core-module"`` or ``"wit-package"``.
        resolve: The decoded packages.
        world: The decoded world, or ``None`` for an encoded WIT package.
        wit: The WIT text of the world's package.
    """

    kind: str
    resolve: Resolve
    world: World | None
    wit: str


def decode_wasm(wasm: bytes) -> Decoded:
    """Decodes the WIT of a component, or of a core module's ``component-type`` section.

    Args:
        wasm: The binary.

    Returns:
        What was decoded.

    Raises:
        ParserError: the bytes cannot be decoded (the decoder's message).
    """
    import json

    key = _key("decode", [("", wasm)])
    text = _cached(key)
    if text is None:
        text = _run("decode", wasm, None)
        _remember(key, text)
    doc = json.loads(text)
    resolve = resolve_from_json(text)
    world = None
    if doc["world"] is not None:
        raw = doc["resolve"]["worlds"][doc["world"]]
        package = doc["resolve"]["packages"][raw["package"]]["name"]
        world = resolve.packages[package].worlds[raw["name"]]
    return Decoded(doc["kind"], resolve, world, doc["wit"])


def custom_sections(
    wasm: bytes, name: str, *, sha256: str | None = None
) -> list[tuple[int, bytes]]:
    """Finds the custom sections called ``name`` in a binary, at any depth.

    ``wasmparser`` walks the binary (a component's nested core modules and
    components included) in the sandboxed module. Results are cached like parse
    results, keyed by the module's hash, ``name`` and the binary's sha256: a binary
    is walked once per machine.

    Args:
        wasm: The binary.
        name: The section name.
        sha256: The binary's sha256 (lowercase hex) when the caller already has it.

    Returns:
        ``(depth, contents)`` per section found, in binary order; depth 0 is the
        outermost binary, 1 a module or component nested in it, and so on.

    Raises:
        ParserError: the bytes are not a well-formed binary (the parser's message).
    """
    import json

    digest = sha256 or hashlib.sha256(wasm).hexdigest()
    key = hashlib.sha256(f"{parser_identity()}\0sections\0{name}\0{digest}".encode()).hexdigest()
    text = _cached(key)
    if text is None:
        text = _run("custom_sections", name.encode() + b"\0" + wasm, None)
        _remember(key, text)
    doc = json.loads(text)
    return [(int(s["depth"]), bytes.fromhex(s["hex"])) for s in doc["sections"]]
