"""Reading a plugin's WIT world out of its binary: :func:`inspect`."""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from . import _wit
from ._exceptions import InvalidWasmError
from ._manifest import Manifest, read_manifest
from ._wit._official import ParserError, decode_wasm

__all__ = ["PluginInfo", "inspect"]

_KINDS = {"component": "component", "core-module": "core module with a component-type section"}


@attrs.frozen
class PluginInfo:
    """What a plugin binary declares, as decoded by :func:`inspect`.

    Attributes:
        kind: ``"component"`` or ``"core-module"`` (a core module carrying a
            ``component-type`` custom section, as wit-bindgen produces).
        world: The decoded world (for a component, ``wit-component`` names it
            ``root:component/root``).
        imports: The world's import names, in order (interfaces by qualified name,
            functions by their plain name).
        exports: The world's export names, in order.
        wit: The WIT text of the world's package.
        size_bytes: The size of the binary, in bytes.
        manifest: The capabilities the plugin declares it needs, each with a reason
            (its ``wasmplug-manifest`` section), or ``None`` when it has none.
    """

    kind: str
    world: _wit.World = attrs.field(eq=False)
    imports: tuple[str, ...]
    exports: tuple[str, ...]
    wit: str
    size_bytes: int
    manifest: Manifest | None = None

    def __str__(self) -> str:
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


def inspect(plugin: str | os.PathLike[str] | bytes) -> PluginInfo:
    """Decodes the WIT world a plugin binary declares, without instantiating it.

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
