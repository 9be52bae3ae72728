"""Python handles to resources that a plugin exports.

A WIT resource defined in an interface the world *exports* lives in the guest; the host
holds handles to it. Each such resource gets a handle class in the world's
:class:`~wasmplug.TypeNamespace` (``types.Buffer`` for ``resource buffer``), a subclass
of :class:`ResourceHandle`, made by :func:`make_handle_class`:

- the constructor, ``Buffer(plugin, "initial")``, calls ``[constructor]buffer``;
- one method per WIT method (``buf.append("more")`` calls ``[method]buffer.append``);
- one static function per WIT static function, taking the plugin first
  (``Buffer.concat(plugin, a, b)`` calls ``[static]buffer.concat``);
- :meth:`ResourceHandle.close` drops the resource (the guest's destructor runs).

The handle is only the host's side of the bookkeeping: the owning plugin does the work
(:meth:`Plugin._release_handle <wasmplug.Plugin>`), and the backend owns the native
handle (a wasmtime resource on the component path, the resource's ``rep`` on the
core-module fast path).

Both backends share the rest of the machinery here: :class:`HandleTable` (an
instance's handles, with ``Limits.resource_handles``), :func:`check_handles` (the
checks of handle arguments before a call) and :func:`close_quietly` (host objects of
a discarded instance). Nothing here touches wasmtime.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self

from ._exceptions import ArgumentError, StaleHandleError, WitError

if TYPE_CHECKING:
    from ._plugin import Plugin
    from ._wit import TypeDef

__all__ = [
    "RESERVED",
    "HandleTable",
    "ResourceHandle",
    "TableFull",
    "check_handle_class",
    "check_handles",
    "close_quietly",
    "make_handle_class",
]

_logger = logging.getLogger("wasmplug")

#: Names a handle class keeps for itself; a WIT method of one of these names gets a
#: trailing underscore (``close_``).
RESERVED = frozenset({"close", "closed", "plugin"})


class ResourceHandle:
    """A handle to a resource that lives in a plugin (base of ``types.<Resource>``).

    Handles are returned by the plugin's functions (an ``own<r>`` result) or made with
    the resource's constructor, ``types.Buffer(plugin, ...)``. Passing a handle to a
    ``borrow<r>`` parameter lends it; passing it to an ``own<r>`` parameter moves it
    into the guest and closes it here. A handle belongs to one plugin and one instance
    of it: another plugin refuses it (:class:`~wasmplug.ArgumentError`), and after a
    :class:`~wasmplug.CallError` replaced the instance it is stale.

    Use it as a context manager, or call :meth:`close`, to drop the resource. A handle
    that is garbage-collected while open is dropped at the plugin's next call.

    Raises:
        StaleHandleError: from any method once the handle is closed, moved or stale.
    """

    __slots__ = ("__weakref__", "_address", "_instance", "_native", "_plugin")

    #: The WIT resource type.
    __wit_type__: ClassVar[TypeDef]
    #: The export's call name of the constructor, or ``None`` when it has none.
    _constructor: ClassVar[str | None] = None

    _plugin: Plugin | None
    _native: Any  # the backend's native handle (owned), None once released
    _address: int  # its address, for lowering
    _instance: object  # the token of the backend instance it belongs to

    def __init__(self, plugin: Plugin, *args: Any) -> None:
        """Creates a resource in ``plugin`` with the WIT constructor.

        Args:
            plugin: The plugin to create it in.
            *args: The constructor's arguments.

        Raises:
            TypeError: the resource has no constructor (handles of such a resource
                come only from the plugin's functions that return one).
            ArgumentError, CallError: as :meth:`Plugin.call <wasmplug.Plugin.call>`.
        """
        cls = type(self)
        if cls._constructor is None:
            wit = cls.__wit_type__
            raise TypeError(
                f"resource {wit.name} of {wit.owner} has no constructor: a {cls.__name__} "
                "handle comes only from the plugin's functions that return one"
            )
        made = plugin.call(cls._constructor, *args)
        if not isinstance(made, cls):  # pragma: no cover - checked against the WIT type
            raise TypeError(f"{cls._constructor} returned {type(made).__name__}")
        self._plugin = made._plugin
        self._native = made._native
        self._address = made._address
        self._instance = made._instance
        made._native = None
        made._plugin = None

    @classmethod
    def _adopt(cls, plugin: Plugin, instance: object, native: Any, address: int) -> Any:
        """Wraps a native handle the backend lifted (no constructor call)."""
        self = cls.__new__(cls)
        self._plugin = plugin
        self._native = native
        self._address = address
        self._instance = instance
        return self

    def _stale(self, why: str) -> StaleHandleError:
        name = type(self).__wit_type__.name
        return StaleHandleError(
            f"{type(self).__name__} handle (resource {name}) {why}",
            resource=name,
            plugin=self._plugin.name if self._plugin is not None else None,
        )

    def _lower_address(self) -> int:
        """The native handle's address for lowering.

        Raises:
            StaleHandleError: the handle is closed or moved.
        """
        if self._native is None:
            raise self._stale("is closed (closed, or moved into the plugin)")
        return self._address

    def _call_method(self, call_name: str, *args: Any) -> Any:
        """Calls the WIT method ``call_name`` (``text.[method]buffer.append``) of this
        resource: ``plugin.call(call_name, self, *args)``.

        Raises:
            StaleHandleError: the handle is closed or moved.
            ArgumentError, CallError: as :meth:`Plugin.call <wasmplug.Plugin.call>`.
        """
        plugin = self._plugin
        if self._native is None or plugin is None:
            method = call_name.rpartition(".")[2]
            raise self._stale(f"is closed; cannot call {method}()")
        return plugin.call(call_name, self, *args)

    @property
    def plugin(self) -> Plugin | None:
        """The plugin the resource lives in; ``None`` once the handle is closed."""
        return self._plugin if self._native is not None else None

    @property
    def closed(self) -> bool:
        """Whether the handle was closed or moved into the plugin."""
        return self._native is None

    def close(self) -> None:
        """Drops the resource: the guest's destructor runs. Idempotent.

        A handle whose instance was replaced only forgets the resource (it went with
        the instance).

        Raises:
            CallError: the guest's destructor trapped or breached a limit (the handle
                is closed anyway; the plugin continues on a fresh instance).
            ReentrantCallError: called from a host function during a call of the
                plugin.
        """
        plugin = self._plugin
        if self._native is None or plugin is None:
            return
        plugin._release_handle(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        plugin = getattr(self, "_plugin", None)
        if getattr(self, "_native", None) is not None and plugin is not None:
            plugin._release_later(self._native, self._instance)
            self._native = None

    def __repr__(self) -> str:
        state = "closed" if self._native is None else f"in {self._plugin!r}"
        return f"<{type(self).__name__} {state}>"


def _method(call_name: str, pyname: str, doc: str) -> Callable[..., Any]:
    def method(self: ResourceHandle, *args: Any) -> Any:
        return self._call_method(call_name, *args)

    method.__name__ = method.__qualname__ = pyname
    method.__doc__ = doc
    return method


def _static(call_name: str, pyname: str, doc: str) -> Callable[..., Any]:
    def function(plugin: Plugin, *args: Any) -> Any:
        return plugin.call(call_name, *args)

    function.__name__ = function.__qualname__ = pyname
    function.__doc__ = doc
    return staticmethod(function)


def make_handle_class(
    name: str,
    typedef: TypeDef,
    *,
    constructor: str | None,
    methods: dict[str, tuple[str, str]],
    statics: dict[str, tuple[str, str]],
) -> type[ResourceHandle]:
    """Makes the handle class of one exported resource.

    Args:
        name: The Python class name, e.g. ``Buffer``.
        typedef: The WIT resource.
        constructor: The constructor's export call name, or ``None``.
        methods: Python name -> (export call name, docs) per method.
        statics: Python name -> (export call name, docs) per static function; each
            takes the plugin as its first argument.

    Returns:
        The subclass of :class:`ResourceHandle`.
    """
    owner = typedef.owner
    body: dict[str, Any] = {
        "__slots__": (),
        "__doc__": typedef.docs
        or f"Handle to WIT resource ``{typedef.name}`` of ``{owner}``, exported by plugins.",
        "__wit_type__": typedef,
        "_constructor": constructor,
    }
    for pyname, (call_name, doc) in methods.items():
        body[pyname] = _method(call_name, pyname, doc or f"Calls ``{call_name}``.")
    for pyname, (call_name, doc) in statics.items():
        body[pyname] = _static(
            call_name, pyname, doc or f"Calls ``{call_name}``; takes the plugin first."
        )
    return type(name, (ResourceHandle,), body)


def check_handle_class(
    cls: type,
    typedef: TypeDef,
    *,
    constructor: str | None,
    methods: dict[str, tuple[str, str]],
    statics: dict[str, tuple[str, str]],
) -> None:
    """Checks that a handle class written elsewhere (by ``wasmplug bindgen``) fits one
    exported resource, then binds it to the resource.

    The class must be a :class:`ResourceHandle` subclass whose ``_constructor`` is the
    constructor's export call name (``None`` without one), with a function of its own
    per WIT method and a ``staticmethod`` per static function, named as
    :func:`make_handle_class` names them. On success its ``__wit_type__`` is set to
    ``typedef``.

    Args:
        cls: The class.
        typedef: The WIT resource.
        constructor: As :func:`make_handle_class`.
        methods: As :func:`make_handle_class`.
        statics: As :func:`make_handle_class`.

    Raises:
        WitError: the class does not fit, or is bound to another resource already.
    """
    where = f"WIT resource {typedef.name} of {typedef.owner}"
    if not (isinstance(cls, type) and issubclass(cls, ResourceHandle)):
        raise WitError(f"{where}: {cls!r} is not a wasmplug.ResourceHandle subclass")
    if cls._constructor != constructor:
        raise WitError(
            f"{where}: {cls.__name__}._constructor is {cls._constructor!r}, expected "
            f"{constructor!r}"
        )
    for pyname in methods:
        if not callable(cls.__dict__.get(pyname)):
            raise WitError(f"{where}: {cls.__name__} has no method {pyname}")
    for pyname in statics:
        if not isinstance(cls.__dict__.get(pyname), staticmethod):
            raise WitError(f"{where}: {cls.__name__} has no static method {pyname}")
    bound = cls.__dict__.get("__wit_type__")
    if bound is not None and (bound.owner, bound.name) != (typedef.owner, typedef.name):
        raise WitError(f"{where}: {cls.__name__} is the handle class of {bound.name} already")
    cls.__wit_type__ = typedef


# -- shared by the backends ----------------------------------------------------------------


class TableFull(Exception):
    """An instance's handle table is full (``Limits.resource_handles``)."""


class HandleTable:
    """The resource handles one instance holds: handle -> (resource type number, value).

    On the component path it holds the host resources the guest has: wasmtime maps the
    guest's handle to a ``rep`` (a u32 chosen here) and the host object lives here
    while any handle to it is alive. On the core-module fast path it is the instance's
    whole handle table, as the canonical ABI keeps it: the keys are the handles the
    guest sees, the values are host objects (for host resources) or the ``rep`` the
    guest gave ``[resource-new]`` (for the resources it exports).

    A value the host lends to one call of an export (a ``borrow<r>`` argument) is here
    for that call only, and is never closed by wasmplug (the host keeps it).

    Attributes:
        limit: The most entries it holds (``Limits.resource_handles``).
        objects: handle -> (type number, value).
        lent: The handles of values lent by the host to the current call.
    """

    __slots__ = ("_next", "lent", "limit", "objects")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.objects: dict[int, tuple[int, Any]] = {}
        self.lent: set[int] = set()
        self._next = 1

    def add(self, type_id: int, obj: Any, *, lent: bool = False) -> int:
        """Stores ``obj``; returns its new handle (a u32 other than 0).

        Args:
            type_id: The resource's type number.
            obj: The value.
            lent: The host lends it to the current call (it is not closed with the
                instance).

        Raises:
            TableFull: the table holds ``limit`` entries.
        """
        self.check_room()
        objects = self.objects
        rep = self._next
        while rep in objects:  # only after 2**32 - 1 handles
            rep = rep % 0xFFFF_FFFF + 1
        self._next = rep % 0xFFFF_FFFF + 1
        objects[rep] = (type_id, obj)
        if lent:
            self.lent.add(rep)
        return rep

    def forget(self, rep: int) -> None:
        """Removes ``rep`` if it is there, without closing its object."""
        self.objects.pop(rep, None)
        self.lent.discard(rep)

    def get(self, rep: int, type_id: int, name: str, *, remove: bool = False) -> Any:
        """The value of handle ``rep`` (removed from the table with ``remove``).

        Raises:
            StaleHandleError: no value of that resource has this handle (the guest
                forged it, or used it after dropping or giving it away).
        """
        entry = self.objects.get(rep)
        if entry is None or entry[0] != type_id:
            raise StaleHandleError(
                f"the guest used a handle to resource {name} (handle {rep}) "
                "that is not in its instance's handle table",
                resource=name,
            )
        if remove:
            del self.objects[rep]
            self.lent.discard(rep)
        return entry[1]

    def check_room(self) -> None:
        """Raises :class:`TableFull` when the table cannot take one more entry."""
        if len(self.objects) >= self.limit:
            raise TableFull(f"the instance holds {len(self.objects)} resource handles already")

    def drain(self) -> list[Any]:
        """Empties the table; returns the values it held for the guest (not those the
        host lent to a call: those stay the host's)."""
        lent = self.lent
        objects = [obj for rep, (_, obj) in self.objects.items() if rep not in lent]
        self.objects.clear()
        lent.clear()
        return objects


def close_quietly(objects: list[Any], plugin: str) -> None:
    """Calls ``close()`` on each object that has one; failures are logged."""
    for obj in objects:
        close = getattr(obj, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                _logger.exception(
                    "plugin %r: closing host resource %r failed",
                    plugin,
                    obj,
                    extra={"plugin": plugin},
                )


def check_handles(
    function: str,
    handles: Sequence[tuple[ResourceHandle, bool]],
    owner: object,
    live: object,
    plugin: str,
) -> None:
    """Checks that every resource handle among a call's arguments is open, belongs
    to ``owner`` and the live instance, and is not moved while also used otherwise.

    Args:
        function: The export's call name, for errors.
        handles: (handle, moved) per guest resource handle among the arguments
            (``moved``: passed as ``own<r>``).
        owner: The plugin making the call.
        live: The token of the live instance.
        plugin: The plugin's name, for errors.

    Raises:
        ArgumentError: a handle of another plugin, or one handle both moved and
            passed again in the same call.
        StaleHandleError: a closed or moved handle, or one of a replaced instance.
    """
    for handle, _ in handles:
        if handle._plugin is not owner:
            other = handle._plugin.name if handle._plugin is not None else "none"
            raise ArgumentError(
                f"{function}: a {type(handle).__name__} handle of another plugin "
                f"({other!r}); a handle belongs to the plugin that made it",
                plugin=plugin,
                function=function,
            )
        if handle._native is None:
            raise handle._stale("is closed (closed, or moved into the plugin)")
        if handle._instance is not live:
            raise handle._stale(
                "belongs to an instance that was replaced after a failed call; "
                "the resource went with it"
            )
    for handle, own in handles:
        if own and sum(h is handle for h, _ in handles) > 1:
            raise ArgumentError(
                f"{function}: a {type(handle).__name__} handle is moved (own) and "
                "passed again in the same call",
                plugin=plugin,
                function=function,
            )
