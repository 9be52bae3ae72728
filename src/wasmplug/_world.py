"""The host's view of a WIT world: its exports as callable signatures, its Python types."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from . import _wit
from ._bindings import (
    TypeNamespace,
    UnsupportedType,
    describe,
    field_name,
    namespace_for_world,
    world_typedefs,
)
from ._checks import Mismatch
from ._codec import (
    VAL_SIZE,
    Arena,
    Codec,
    GuestHandleCodec,
    HostHandleCodec,
    build_codec,
)
from ._exceptions import ArgumentError, GuestError, WitError
from ._host import check_host_wit_copies, defined_resources
from ._resources import RESERVED, ResourceHandle, check_handle_class, make_handle_class

__all__ = ["ExportFunc", "PreparedCall", "World", "defined_resources", "has_handle", "load_world"]


class ExportFunc:
    """One function a plugin of the world exports.

    Attributes:
        name: The name the host calls it by: the WIT name for a world-level function
            (``evaluate``), ``<interface>.<function>`` for a function of an exported
            interface (``rules.evaluate``).
        interface: The exported interface's world key, or ``None`` at world level.
        wit: The WIT function (:class:`wasmplug.wit.Function`).
        error: The exception raised when the function returns the ``err`` case of its
            ``result`` (see :meth:`TypeNamespace.error_class`).
    """

    __slots__ = ("_host_args", "_params", "_result", "error", "interface", "name", "wit")

    def __init__(
        self,
        name: str,
        interface: str | None,
        wit: _wit.Function,
        *,
        params: tuple[tuple[str, Codec], ...],
        result: Codec | None,
        error: type[GuestError] = GuestError,
        host_args: bool = False,
    ) -> None:
        self.name = name
        self.interface = interface
        self.wit = wit
        self.error = error
        self._params = params  # (WIT name, codec) per parameter
        self._result = result  # the result's codec, None without a result
        # Whether an argument can hold a host resource: such arguments are lowered on
        # the instance that runs the call, not by World.prepare.
        self._host_args = host_args

    @property
    def signature(self) -> str:
        """WIT-like text of the signature, for messages."""
        params = ", ".join(f"{p.name}: {describe(p.type)}" for p in self.wit.params)
        result = f" -> {describe(self.wit.result)}" if self.wit.result is not None else ""
        return f"{self.name}: func({params}){result}"

    def __repr__(self) -> str:
        return f"<ExportFunc {self.signature}>"


class PreparedCall:
    """Arguments checked and lowered once, ready to call any plugin of the same world.

    Made by :meth:`World.prepare`. Sending one event to many tenants' plugins then
    costs one conversion instead of one per plugin. Immutable and safe to share
    between threads. Arguments holding resource handles are the exception: such a
    call only suits the plugin instance the handles belong to, and is checked
    against it at every call. A function whose parameters can hold a resource the
    host defines (a ``borrow<r>`` or ``own<r>`` of an imported interface's resource)
    is not lowered here: its arguments are checked and lowered at each call, on the
    instance that runs it.

    Attributes:
        world: The world whose export it calls.
        function: The export's call name.
        export: The export's signature.
    """

    __slots__ = (
        "_address",
        "_arena",
        "_args",
        "_count",
        "_handles",
        "export",
        "function",
        "world",
    )

    def __init__(
        self,
        world: World,
        export: ExportFunc,
        arena: Arena | None,
        slots: int,
        args: tuple[Any, ...],
    ) -> None:
        self.world = world
        self._args = args  # as given, for a backend that lowers on its own
        self.export = export
        self.function = export.name
        self._arena = arena  # owns the memory that ``_address`` points into
        # The lowered arguments, for the backend; 0 when they are lowered at the call
        # (``arena`` is None: they can hold host resources).
        self._address = arena.base + slots if arena is not None else 0
        self._count = len(export._params)
        # Resource handles among the arguments, with whether each moves (own<r>).
        self._handles: tuple[tuple[ResourceHandle, bool], ...] = (
            tuple(arena.handles) if arena is not None else ()
        )

    def __repr__(self) -> str:
        return f"<PreparedCall {self.function} of {self.world.name}>"


class World:
    """A WIT world that plugins implement, prepared for calls from Python.

    Build one with :func:`load_world` and share it between every plugin of that world:
    the Python classes and the codecs are built once.

    Attributes:
        wit: The resolved WIT world (:class:`wasmplug.wit.World`, read-only).
        name: Its qualified name, e.g. ``wasmplug-examples:rule-engine/tenant@0.1.0``.
        types: The Python classes for the world's named types (``types.Flight``),
            including a handle class per resource the plugins export
            (``types.Buffer``, see :class:`~wasmplug.ResourceHandle`).
        exports: The callable exports by call name; a resource's functions of an
            exported interface by their WIT names (``text.[constructor]buffer``,
            ``text.[method]buffer.append``, ``text.[static]buffer.concat``).
        host_resources: The resources defined by interfaces the world imports, which
            the host implements with Python classes (see :func:`~wasmplug.load`).

    Args:
        wit: The resolved WIT world.
        types: Its Python types; default: made from ``wit``.

    Raises:
        WitError: the world uses a type that cannot cross the boundary yet (a handle
            of a resource the world neither imports nor exports) in an export, or a
            construct wasmplug cannot run
            (``future``, ``stream``, ``error-context``, ``map``, fixed-length lists,
            ``async`` functions) anywhere in its imports or exports; the message names
            the construct and where it is used.
    """

    def __init__(self, wit: _wit.World, *, types: TypeNamespace | None = None) -> None:
        _check_supported(wit)
        self.wit = wit
        self.name = wit.qualified_name
        self.types: TypeNamespace = types if types is not None else namespace_for_world(wit)
        self._codecs: dict[int, Codec] = {}
        # The fast path's canonical-ABI layouts of this world's types (by ``id`` of
        # their definition; a record's compiles code, once per world).
        self._core_layouts: dict[int, Any] = {}
        # Resources the plugin exports: id of the TypeDef -> handle class.
        self._guest_resources: dict[int, type[ResourceHandle]] = {}
        #: Resources the host defines (in imported interfaces), in order: the index
        #: plus one is the resource's host type number.
        self.host_resources: list[_wit.TypeDef] = []
        self._host_resource_ids: dict[int, int] = {}
        for item in wit.imports.values():
            if isinstance(item, _wit.Interface):
                for td in defined_resources(item):
                    self.host_resources.append(td)
                    self._host_resource_ids[id(td)] = len(self.host_resources)
        for key, item in wit.exports.items():
            if isinstance(item, _wit.Interface):
                for td in defined_resources(item):
                    self._add_handle_class(item.name or key, td)
        self.exports: dict[str, ExportFunc] = {}
        #: Call names of the exports whose results hold resource handles.
        self.handle_results: frozenset[str] = frozenset()
        for key, item in wit.exports.items():
            if isinstance(item, _wit.Function):
                self._add_export(item.name, None, item)
            else:
                short = item.name or key
                for func in item.functions.values():
                    self._add_export(f"{short}.{func.name}", key, func)
                for td in defined_resources(item):
                    for func in td.kind.methods:  # type: ignore[union-attr]
                        self._add_export(f"{short}.{func.name}", key, func)
        self.handle_results = frozenset(
            name for name, e in self.exports.items() if _has_handle(e.wit.result)
        )
        #: Whether a call can hand resources across: the world imports host
        #: resources, or an export's parameters or result can hold a handle (an
        #: instance of such a world is never dropped between calls by the engine's LRU).
        self.passes_handles: bool = bool(self.host_resources) or any(
            has_handle(e.wit) for e in self.exports.values()
        )

    def _add_handle_class(self, short: str, td: _wit.TypeDef) -> None:
        """Makes the handle class of a resource the plugin exports (``types.Buffer``)."""
        constructor: str | None = None
        methods: dict[str, tuple[str, str]] = {}
        statics: dict[str, tuple[str, str]] = {}
        assert isinstance(td.kind, _wit.ResourceKind)
        for func in td.kind.methods:
            call_name = f"{short}.{func.name}"
            if func.name.startswith("[constructor]"):
                constructor = call_name
                continue
            pyname = field_name(func.name.rpartition(".")[2])
            if pyname in RESERVED:
                pyname += "_"
            if func.name.startswith("[method]"):
                methods[pyname] = (call_name, func.docs)
            else:
                statics[pyname] = (call_name, func.docs)
        cls = self.types.add_resource(
            td,
            lambda name: make_handle_class(
                name, td, constructor=constructor, methods=methods, statics=statics
            ),
            lambda cls: check_handle_class(
                cls, td, constructor=constructor, methods=methods, statics=statics
            ),
        )
        self._guest_resources[id(td)] = cls

    def _handle_codec(self, t: _wit.HandleType) -> Codec:
        """The codec of a resource handle: a handle object for a resource the plugin
        exports, the host's object for one the host defines."""
        key = id(t.resource)
        guest = self._guest_resources.get(key)
        host = self._host_resource_ids.get(key)
        if guest is not None and host is not None:
            raise UnsupportedType(
                f"resource {t.resource.name} of {t.resource.owner} is both imported (the "
                "host would define it) and exported (the plugin would define it) by world "
                f"{self.wit.qualified_name}; wasmplug cannot pass the handles of a resource "
                "on both sides yet: define it in an interface that the world only imports "
                "or only exports"
            )
        if guest is not None:
            return GuestHandleCodec(t, guest)
        if host is not None:
            return HostHandleCodec(t, host)
        raise UnsupportedType(
            f"resource {t.resource.name} of {t.resource.owner}: the world neither imports "
            "nor exports the interface that defines it"
        )

    def _add_export(self, name: str, interface: str | None, func: _wit.Function) -> None:
        if func.is_async:
            raise WitError(f"export {name}: async functions are not supported by wasmplug yet")
        try:
            params = tuple((p.name, self._codec(p.type)) for p in func.params)
            result = self._codec(func.result) if func.result is not None else None
        except UnsupportedType as e:
            raise WitError(f"export {name}: {e}") from None
        error = GuestError
        if isinstance(func.result, _wit.ResultType):
            error = self.types.error_class(func.result.err)
        host_args = any(
            isinstance(node, _wit.HandleType) and id(node.resource) in self._host_resource_ids
            for p in func.params
            for node in _wit.walk(p.type)
        )
        self.exports[name] = ExportFunc(
            name, interface, func, params=params, result=result, error=error, host_args=host_args
        )

    @classmethod
    def _from_bindings(
        cls,
        source_json: str,
        world: str,
        *,
        types: Mapping[tuple[str, str], Any],
        errors: Mapping[tuple[str, str], type[GuestError]],
    ) -> World:
        """Builds the world of a module generated by ``wasmplug bindgen``, without
        parsing WIT.

        Args:
            source_json: The resolved WIT (:attr:`Resolve.source_json`).
            world: The world's qualified name.
            types: The module's classes (union aliases for variants) by ``(owner, WIT
                name)`` of their type definition.
            errors: The module's exception classes, by the same key of their ``err``
                type.

        Returns:
            The world, using the module's classes.

        Raises:
            WitError: the classes do not fit the WIT (the module is stale).
        """
        wit = _wit.resolve_from_json(source_json).world(world)
        ns = namespace_for_world(wit, types)
        by_key = {(td.owner, td.name): td for td in world_typedefs(wit)}
        for key, error in errors.items():
            if key not in by_key:
                raise WitError(f"world {world} has no type {key[1]!r} of {key[0]}")
            ns.register_error(by_key[key], error)
        return cls(wit, types=ns)

    def prepare(self, function: str, *args: Any, plugin: str | None = None) -> PreparedCall:
        """Checks and lowers the arguments of a call once, for
        :meth:`Plugin.call_prepared <wasmplug.Plugin.call_prepared>` on any number of
        plugins of this world.

        Args:
            function: The export's call name (see :attr:`exports`).
            *args: One Python value per WIT parameter.
            plugin: A plugin name to put in error messages.

        Returns:
            The prepared call.

        Raises:
            ArgumentError: ``function`` is not an export, the number of arguments is
                wrong, or an argument does not match its WIT type (for a function
                whose parameters can hold a host resource, only the number of
                arguments is checked here: the rest at the call).
            StaleHandleError: a resource handle argument is closed.
        """
        return self._prepare(self.export(function, len(args), plugin=plugin), args, plugin)

    def _prepare(
        self, export: ExportFunc, args: tuple[Any, ...], plugin: str | None
    ) -> PreparedCall:
        """:meth:`prepare` for an export already checked to take ``len(args)``
        arguments.

        Raises:
            ArgumentError, StaleHandleError: as :meth:`prepare`.
        """
        if export._host_args:
            return PreparedCall(self, export, None, 0, args)
        arena, slots = self._lower(export, args, plugin)
        return PreparedCall(self, export, arena, slots, args)

    @staticmethod
    def _lower(export: ExportFunc, args: tuple[Any, ...], plugin: str | None) -> tuple[Arena, int]:
        """Checks and lowers the arguments of a call; returns the arena and the offset
        of the first argument's slot in it.

        Raises:
            ArgumentError: an argument does not match its WIT type.
            StaleHandleError: a resource handle argument is closed.
        """
        function = export.name
        params = export._params
        arena = Arena()
        slots = arena.alloc(len(params) * VAL_SIZE)
        for i, ((pname, codec), value) in enumerate(zip(params, args, strict=True)):
            try:
                codec.lower(arena, slots + i * VAL_SIZE, value)
            except Mismatch as e:
                raise ArgumentError(
                    e.describe(f"{function}({pname})"), plugin=plugin, function=function
                ) from None
        arena.finalize()
        return arena, slots

    def export(self, function: str, nargs: int, *, plugin: str | None = None) -> ExportFunc:
        """The export called ``function``, checked to take ``nargs`` arguments.

        Raises:
            ArgumentError: there is no such export, or it takes another number of
                arguments.
        """
        export = self.exports.get(function)
        if export is None:
            raise ArgumentError(
                f"no export named {function!r}; exports: {', '.join(sorted(self.exports))}",
                plugin=plugin,
                function=function,
            )
        expected = len(export.wit.params)
        if nargs != expected:
            raise ArgumentError(
                f"{export.signature} takes {expected} argument(s), {nargs} given",
                plugin=plugin,
                function=function,
            )
        return export

    def _codec(self, t: _wit.WitType) -> Codec:
        """Returns the (memoized) codec for a WIT type of this world.

        Raises:
            UnsupportedType: ``t`` cannot cross the boundary yet, e.g. a handle of a
                resource the world neither imports nor exports (wasmplug-internal:
                callers turn it into a :class:`WitError` or :class:`LinkError`).
        """
        return build_codec(t, self.types, self._codecs, self._handle_codec)

    def import_interfaces(self) -> Iterator[tuple[str, _wit.Interface]]:
        """Yields ``(key, interface)`` for each interface the world imports."""
        for key, item in self.wit.imports.items():
            if isinstance(item, _wit.Interface):
                yield key, item

    def __repr__(self) -> str:
        return f"<World {self.name} exports={sorted(self.exports)}>"


def has_handle(func: _wit.Function) -> bool:
    """Whether a function's parameters or result can hold a resource handle."""
    return any(_has_handle(p.type) for p in func.params) or _has_handle(func.result)


def _has_handle(t: _wit.WitType | None) -> bool:
    """Whether a value of type ``t`` can hold a resource handle."""
    return any(isinstance(node, _wit.HandleType) for node in _wit.walk(t))


def _check_supported(world: _wit.World) -> None:
    """Raises :class:`WitError` at the first construct of the world wasmplug cannot run."""
    for side, items in (("import", world.imports), ("export", world.exports)):
        for key, item in items.items():
            if isinstance(item, _wit.Function):
                funcs = [(f"{side} {key}", item)]
            else:
                funcs = [(f"{side} {key}, function {f.name}", f) for f in item.functions.values()]
                for td in item.types.values():
                    if isinstance(td.kind, _wit.ResourceKind):
                        funcs += [(f"{side} {key}, {m.name}", m) for m in td.kind.methods]
            for where, func in funcs:
                if func.is_async:
                    raise WitError(
                        f"world {world.qualified_name}: {where}: async functions are "
                        "not supported by wasmplug yet"
                    )
                slots = [(f"parameter {p.name}", p.type) for p in func.params]
                slots += [("result", func.result)] if func.result is not None else []
                for slot, t in slots:
                    found = _find_unsupported(t)
                    if found is not None:
                        raise WitError(
                            f"world {world.qualified_name}: {where}, {slot}: {found.text} "
                            f"({found.construct}) is not supported by wasmplug yet"
                        )


def _find_unsupported(t: _wit.WitType | None) -> _wit.Unsupported | None:
    """The first construct in ``t`` that wasmplug cannot run, or ``None``."""
    return next((n for n in _wit.walk(t) if isinstance(n, _wit.Unsupported)), None)


def load_world(path: str | os.PathLike[str], world: str) -> World:
    """Parses WIT and prepares one of its worlds for hosting plugins.

    Args:
        path: A ``.wit`` file, or a directory of them with dependencies in ``deps/``.
        world: The world's name in the main package (``"tenant"``) or its qualified
            name (``"ns:pkg/tenant@1.0.0"``).

    Returns:
        The world, with its Python classes in :attr:`World.types`.

    Raises:
        WitError: the WIT cannot be read, parsed or resolved, names no such world, uses
            types wasmplug cannot pass yet, or holds a copy of ``wasmplug:host`` that
            differs from the one wasmplug serves.
    """
    resolve = _wit.load_wit(path)
    check_host_wit_copies(Path(path))
    return World(resolve.world(world))
