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
(:meth:`Plugin._release_handle <wasmplug.Plugin>`), and the component backend owns the
native handle. Nothing here touches wasmtime.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self

from ._exceptions import StaleHandleError, WitError

if TYPE_CHECKING:
    from ._plugin import Plugin
    from ._wit import TypeDef

__all__ = ["RESERVED", "ResourceHandle", "check_handle_class", "make_handle_class"]

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
