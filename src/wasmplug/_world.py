"""The host's view of a WIT world: its exports as callable signatures, its Python types."""

from __future__ import annotations

import os
from collections.abc import Iterator

import attrs

from . import _wit
from ._bindings import TypeNamespace, describe, namespace_for_world
from ._codec import Codec, UnsupportedType, build_codec
from ._exceptions import WitError

__all__ = ["ExportFunc", "World", "load_world"]


@attrs.frozen
class ExportFunc:
    """One function a plugin of the world exports, with its codecs.

    Attributes:
        name: The name the host calls it by: the WIT name for a world-level function
            (``evaluate``), ``<interface>.<function>`` for a function of an exported
            interface (``rules.evaluate``).
        interface: The exported interface's world key, or ``None`` at world level.
        wit: The WIT function.
        params: ``(WIT name, codec)`` per parameter.
        result: The result's codec, or ``None`` when the function returns nothing.
    """

    name: str
    interface: str | None
    wit: _wit.Function
    params: tuple[tuple[str, Codec], ...]
    result: Codec | None

    @property
    def signature(self) -> str:
        """WIT-like text of the signature, for messages."""
        params = ", ".join(f"{p.name}: {describe(p.type)}" for p in self.wit.params)
        result = f" -> {describe(self.wit.result)}" if self.wit.result is not None else ""
        return f"{self.name}: func({params}){result}"


class World:
    """A WIT world that plugins implement, prepared for calls from Python.

    Build one with :func:`load_world` and share it between every plugin of that world:
    the Python classes and the codecs are built once.

    Attributes:
        wit: The parsed WIT world.
        name: Its qualified name, e.g. ``wasmplug-examples:rule-engine/tenant@0.1.0``.
        types: The Python classes for the world's named types (``types.Flight``).
        exports: The callable exports by call name.

    Raises:
        WitError: the world uses a type that cannot cross the boundary yet (a resource,
            an ``async`` function) in an export.
    """

    def __init__(self, wit: _wit.World) -> None:
        self.wit = wit
        self.name = wit.qualified_name
        self.types: TypeNamespace = namespace_for_world(wit)
        self._codecs: dict[int, Codec] = {}
        self.exports: dict[str, ExportFunc] = {}
        for key, item in wit.exports.items():
            if isinstance(item, _wit.Function):
                self._add_export(item.name, None, item)
            else:
                short = item.name or key
                for func in item.functions.values():
                    self._add_export(f"{short}.{func.name}", key, func)

    def _add_export(self, name: str, interface: str | None, func: _wit.Function) -> None:
        if func.is_async:
            raise WitError(f"export {name}: async functions are not supported by wasmplug yet")
        try:
            params = tuple((p.name, self.codec(p.type)) for p in func.params)
            result = self.codec(func.result) if func.result is not None else None
        except UnsupportedType as e:
            raise WitError(f"export {name}: {e}") from None
        self.exports[name] = ExportFunc(name, interface, func, params, result)

    def codec(self, t: _wit.WitType) -> Codec:
        """Returns the (memoized) codec for a WIT type of this world.

        Raises:
            UnsupportedType: ``t`` involves a resource handle.
        """
        return build_codec(t, self.types, self._codecs)

    def import_interfaces(self) -> Iterator[tuple[str, _wit.Interface]]:
        """Yields ``(key, interface)`` for each interface the world imports."""
        for key, item in self.wit.imports.items():
            if isinstance(item, _wit.Interface):
                yield key, item

    def __repr__(self) -> str:
        return f"<World {self.name} exports={sorted(self.exports)}>"


def load_world(path: str | os.PathLike[str], world: str) -> World:
    """Parses WIT and prepares one of its worlds for hosting plugins.

    Args:
        path: A ``.wit`` file, or a directory of them with dependencies in ``deps/``.
        world: The world's name in the main package (``"tenant"``) or its qualified
            name (``"ns:pkg/tenant@1.0.0"``).

    Returns:
        The world, with its Python classes in :attr:`World.types`.

    Raises:
        WitError: the WIT cannot be read, parsed or resolved, names no such world, or
            uses types wasmplug cannot pass yet.
    """
    resolve = _wit.load_wit(path)
    return World(resolve.world(world))
