"""Reading a plugin's WIT world out of its binary (an Extism plugin's imports and
exports: it has no WIT): :func:`inspect`."""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from . import _wit
from ._coremodule import CoreModuleError, read_exports, read_imports
from ._engine import EXTISM_KERNEL, is_extism_plugin
from ._exceptions import InvalidWasmError
from ._manifest import Manifest, read_manifest
from ._wit._official import ParserError, decode_wasm

__all__ = ["PluginInfo", "inspect"]

_KINDS = {
    "component": "component",
    "core-module": "core module with a component-type section",
    "extism": "Extism plugin (core module)",
}
_EXTISM_USER = "extism:host/user"


@attrs.frozen
class PluginInfo:
    """What a plugin binary declares, as decoded by :func:`inspect`.

    Attributes:
        kind: ``"component"``, ``"core-module"`` (a core module carrying a
            ``component-type`` custom section, as wit-bindgen produces) or
            ``"extism"`` (a core module importing ``extism:host/env``, as
            ``extism-pdk`` produces; it carries no WIT, see ``docs/extism.md``).
        world: The decoded world (for a component, ``wit-component`` names it
            ``root:component/root``); ``None`` for an Extism plugin.
        imports: The world's import names, in order (interfaces by qualified name,
            functions by their plain name); for an Extism plugin its core imports
            as ``module#name`` (``extism:host/env#config_get``, the kernel;
            ``extism:host/user#shout``, a host function the host gives).
        exports: The world's export names, in order; for an Extism plugin its
            exported functions (the Extism functions a host can call).
        wit: The WIT text of the world's package (empty for an Extism plugin).
        size_bytes: The size of the binary, in bytes.
        manifest: The capabilities the plugin declares it needs, each with a reason
            (its ``wasmplug-manifest`` section), or ``None`` when it has none.
        host_functions: For an Extism plugin, its ``extism:host/user`` imports with
            their core types (``shout(i64) -> i64``: one JSON memory block per
            parameter and for the result, under wasmplug's convention); empty
            otherwise.
    """

    kind: str
    world: _wit.World | None = attrs.field(eq=False)
    imports: tuple[str, ...]
    exports: tuple[str, ...]
    wit: str
    size_bytes: int
    manifest: Manifest | None = None
    host_functions: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.world is None:
            return self._extism_summary()
        lines = [
            f"{_KINDS.get(self.kind, self.kind)}, {self.size_bytes:,} bytes, "
            f"world {self.world.qualified_name}",
            "imports:",
            *(f"  {name}" for name in self.imports or ("(none)",)),
            "exports:",
            *(f"  {name}" for name in self.exports or ("(none)",)),
            "manifest:",
            *(
                f"  {line}"
                for line in (str(self.manifest) if self.manifest else "(none)").splitlines()
            ),
            "WIT:",
            *(f"  {line}" if line else "" for line in self.wit.rstrip().splitlines()),
        ]
        return "\n".join(lines)

    def _extism_summary(self) -> str:
        by_module: dict[str, list[str]] = {}
        for qualified in self.imports:
            module, _, name = qualified.partition("#")
            by_module.setdefault(module, []).append(name)
        kernel = by_module.pop(EXTISM_KERNEL, [])
        by_module.pop(_EXTISM_USER, None)
        lines = [
            f"{_KINDS['extism']}, {self.size_bytes:,} bytes, no WIT (describe its exports "
            "in a WIT world to call it: docs/extism.md)",
            "imports:",
            f"  {EXTISM_KERNEL} (Extism's kernel): {', '.join(kernel) or '(none)'}",
            f"  {_EXTISM_USER} (host functions, given with imports=):",
            *(f"    {sig}" for sig in self.host_functions or ("(none)",)),
            *(f"  {module}: {', '.join(names)}" for module, names in by_module.items()),
            "exports:",
            *(f"  {name}" for name in self.exports or ("(none)",)),
            "manifest:",
            *(
                f"  {line}"
                for line in (str(self.manifest) if self.manifest else "(none)").splitlines()
            ),
        ]
        return "\n".join(lines)


def _inspect_extism(wasm: bytes, name: str | None) -> PluginInfo:
    try:
        imports, exports = read_imports(wasm), read_exports(wasm)
    except CoreModuleError as e:
        raise InvalidWasmError(f"cannot read this Extism plugin: {e}", plugin=name) from None
    return PluginInfo(
        kind="extism",
        world=None,
        imports=tuple(f"{i.module}#{i.name}" for i in imports),
        exports=tuple(e.name for e in exports if e.kind == "func"),
        wit="",
        size_bytes=len(wasm),
        manifest=read_manifest(wasm, plugin=name),
        host_functions=tuple(
            f"{i.name}({', '.join(i.params)}) -> {', '.join(i.results) or '()'}"
            for i in imports
            if i.module == _EXTISM_USER and i.kind == "func"
        ),
    )


def inspect(plugin: str | os.PathLike[str] | bytes) -> PluginInfo:
    """Decodes the WIT world a plugin binary declares, without instantiating it. An
    Extism plugin declares none: for it, its core imports and exported functions.

    Decoding is ``wit-component``'s (``decode`` for a component,
    ``metadata::decode`` for a core module's ``component-type`` section), run in
    wasmplug's sandboxed WIT module; results are cached by the binary's sha256.

    Args:
        plugin: The path of a ``.wasm`` file, or its bytes.

    Returns:
        What the binary declares; ``str()`` of it is a readable summary.

    Raises:
        InvalidWasmError: the bytes are not WebAssembly, are a core module without a
            ``component-type`` section, or cannot be decoded.
        ManifestError: the plugin's capability manifest is malformed.
        OSError: the file cannot be read.
    """
    name = None
    if isinstance(plugin, bytes | bytearray | memoryview):
        wasm = bytes(plugin)
    else:
        name = os.fspath(plugin)
        wasm = Path(name).read_bytes()
    if len(wasm) < 8 or wasm[:4] != b"\0asm":
        raise InvalidWasmError(
            f"not WebAssembly: expected the magic bytes b'\\x00asm', found {wasm[:8]!r} "
            f"({len(wasm)} bytes in all)",
            plugin=name,
        )
    if is_extism_plugin(wasm):
        return _inspect_extism(wasm, name)
    try:
        decoded = decode_wasm(wasm)
    except ParserError as e:
        raise InvalidWasmError(f"cannot decode its WIT: {e}", plugin=name) from None
    if decoded.world is None:
        raise InvalidWasmError(
            "this is a WIT package encoded as WebAssembly, not a plugin", plugin=name
        )
    world = decoded.world
    manifest = read_manifest(wasm, plugin=name)
    return PluginInfo(
        kind=decoded.kind,
        world=world,
        imports=tuple(world.imports),
        exports=tuple(world.exports),
        wit=decoded.wit,
        size_bytes=len(wasm),
        manifest=manifest,
    )
