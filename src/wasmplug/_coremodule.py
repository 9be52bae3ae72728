"""A core module's imports and exports, read from its binary without compiling it.

Reads the type (1), import (2) and export (7) sections of the WebAssembly binary
format. The Extism backend links an Extism plugin's imports from them (libextism
compiles the module itself: wasmplug compiling it with wasmtime as well would be
work thrown away), and :func:`wasmplug.inspect` lists an Extism plugin's imports and
exports with them.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

__all__ = [
    "CoreExport",
    "CoreImport",
    "CoreModuleError",
    "custom_section_names",
    "imports_from",
    "read_exports",
    "read_imports",
]

_MAGIC = b"\0asm"
_CORE_VERSION = b"\x01\x00\x00\x00"
_TYPE, _IMPORT, _EXPORT = 1, 2, 7
_VALTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128"}
_REFTYPES = {0x70: "funcref", 0x6F: "externref"}
_KINDS = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}


class CoreModuleError(ValueError):
    """The bytes are not a core module this reader understands (the message says
    what was expected where, and what was found)."""


@attrs.frozen
class CoreImport:
    """One import of a core module.

    Attributes:
        module: The import's module (``extism:host/env``).
        name: The import's name (``config_get``).
        kind: ``"func"``, ``"table"``, ``"memory"``, ``"global"`` or ``"tag"``.
        params, results: A function's value types (``"i32"``, ``"i64"``...); empty
            for the other kinds.
    """

    module: str
    name: str
    kind: str
    params: tuple[str, ...] = ()
    results: tuple[str, ...] = ()


@attrs.frozen
class CoreExport:
    """One export of a core module: its name and kind (as :class:`CoreImport`'s)."""

    name: str
    kind: str


class _Reader:
    __slots__ = ("at", "data", "end")

    def __init__(self, data: bytes, at: int, end: int) -> None:
        self.data, self.at, self.end = data, at, end

    def fail(self, expected: str) -> CoreModuleError:
        found = (
            f"byte 0x{self.data[self.at]:02x}" if self.at < self.end else "the end of the section"
        )
        return CoreModuleError(f"at byte {self.at}: expected {expected}, found {found}")

    def byte(self) -> int:
        if self.at >= self.end:
            raise self.fail("a byte")
        b = self.data[self.at]
        self.at += 1
        return b

    def uleb(self) -> int:
        value = shift = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value
            if shift > 63:
                raise self.fail("a LEB128 number of at most 64 bits")

    def name(self) -> str:
        size = self.uleb()
        if self.at + size > self.end:
            raise self.fail(f"a name of {size} bytes")
        raw = self.data[self.at : self.at + size]
        self.at += size
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise CoreModuleError(f"at byte {self.at - size}: a name that is not UTF-8") from None

    def valtype(self) -> str:
        b = self.byte()
        found = _VALTYPES.get(b) or _REFTYPES.get(b)
        if found is None:
            self.at -= 1
            raise self.fail("a value type (i32, i64, f32, f64, v128, funcref, externref)")
        return found

    def limits(self) -> None:
        flags = self.byte()
        self.uleb()
        if flags & 1:
            self.uleb()


def _section_spans(wasm: bytes) -> Iterator[tuple[int, int, int]]:
    """``(section id, start, end)`` of every section, in order.

    Raises:
        CoreModuleError: not a core module, or a section runs past the end.
    """
    if len(wasm) < 8 or wasm[:4] != _MAGIC or wasm[4:8] != _CORE_VERSION:
        raise CoreModuleError(
            f"expected a core WebAssembly module (b'\\x00asm' version 1), found {wasm[:8]!r}"
        )
    r = _Reader(wasm, 8, len(wasm))
    while r.at < r.end:
        section = r.byte()
        size = r.uleb()
        if r.at + size > r.end:
            raise r.fail(f"section {section} of {size} bytes within the module")
        yield section, r.at, r.at + size
        r.at += size


def _sections(wasm: bytes) -> dict[int, tuple[int, int]]:
    """``{section id: (start, end)}`` of the sections this module reads."""
    return {
        section: (start, end)
        for section, start, end in _section_spans(wasm)
        if section in (_TYPE, _IMPORT, _EXPORT)
    }


def custom_section_names(wasm: bytes) -> list[str]:
    """The names of a core module's custom sections (id 0), in order (wit-bindgen's
    is ``component-type:<world>``).

    Raises:
        CoreModuleError: the bytes are not a well-formed core module.
    """
    names = []
    for section, start, end in _section_spans(wasm):
        if section == 0:
            names.append(_Reader(wasm, start, end).name())
    return names


def _types(wasm: bytes, span: tuple[int, int] | None) -> list[tuple[tuple[str, ...], ...]]:
    if span is None:
        return []
    r = _Reader(wasm, *span)
    types: list[tuple[tuple[str, ...], ...]] = []
    for _ in range(r.uleb()):
        if r.byte() != 0x60:
            r.at -= 1
            raise r.fail("a function type (0x60)")
        params = tuple(r.valtype() for _ in range(r.uleb()))
        results = tuple(r.valtype() for _ in range(r.uleb()))
        types.append((params, results))
    return types


def _import_entries(wasm: bytes, span: tuple[int, int]) -> Iterator[tuple[str, str, int, int]]:
    """Each import entry of the import section at ``span``: ``(module, name, kind,
    type index)``, the type index ``-1`` for an import that is not a function; the
    other kinds' descriptors are read past.

    Raises:
        CoreModuleError: an entry is malformed.
    """
    r = _Reader(wasm, *span)
    for _ in range(r.uleb()):
        module, name = r.name(), r.name()
        kind = r.byte()
        index = -1
        if kind == 0:
            index = r.uleb()
        elif kind == 1:
            r.valtype()
            r.limits()
        elif kind == 2:
            r.limits()
        elif kind == 3:
            r.valtype()
            r.byte()
        elif kind == 4:
            r.byte()
            r.uleb()
        else:
            r.at -= 1
            raise r.fail("an import kind (0 to 4)")
        yield module, name, kind, index


def read_imports(wasm: bytes) -> list[CoreImport]:
    """The imports of a core module, in order.

    Raises:
        CoreModuleError: the bytes are not a core module, or its type or import
            section is malformed (or uses types of proposals this reader does not
            know, such as GC types).
    """
    spans = _sections(wasm)
    span = spans.get(_IMPORT)
    if span is None:
        return []
    types = _types(wasm, spans.get(_TYPE))
    imports: list[CoreImport] = []
    for module, name, kind, index in _import_entries(wasm, span):
        if kind != 0:
            imports.append(CoreImport(module, name, _KINDS[kind]))
            continue
        if index >= len(types):
            raise CoreModuleError(
                f"import {module}#{name}: type {index} of {len(types)} function types"
            )
        params, results = types[index]
        imports.append(CoreImport(module, name, "func", params, results))
    return imports


def imports_from(wasm: bytes, module: str) -> bool:
    """Whether a core module imports anything from ``module``: :func:`read_imports`'s
    answer without reading the type section (the engine asks it of every core module
    it loads).

    Raises:
        CoreModuleError: the bytes are not a core module, or its import section is
            malformed.
    """
    span = _sections(wasm).get(_IMPORT)
    return span is not None and any(m == module for m, *_ in _import_entries(wasm, span))


def read_exports(wasm: bytes) -> list[CoreExport]:
    """The exports of a core module, in order.

    Raises:
        CoreModuleError: the bytes are not a core module, or its export section is
            malformed.
    """
    span = _sections(wasm).get(_EXPORT)
    if span is None:
        return []
    r = _Reader(wasm, *span)
    exports: list[CoreExport] = []
    for _ in range(r.uleb()):
        name = r.name()
        kind = r.byte()
        r.uleb()
        if kind not in _KINDS:
            raise CoreModuleError(f"export {name!r}: kind {kind}, expected 0 to 4")
        exports.append(CoreExport(name, _KINDS[kind]))
    return exports
