"""The one interface between :class:`~wasmplug.Plugin` and what runs a plugin.

A :class:`Backend` runs one loaded plugin's guest code: it lowers the arguments of a
call, enters the guest under the plugin's limits, lifts the result, and reports what
the call used. :class:`~wasmplug.Plugin` holds everything that is the same whatever
the backend: the call lock and ``Limits.queue_ms`` (:class:`~wasmplug.PluginBusy`),
refusing re-entry from the plugin's own host functions, the native stack guard,
``last_call``, ``close()`` and turning a ``result``'s ``err`` case into a
:class:`~wasmplug.GuestError`. It never asks which backend it holds.

Backends today:

- :class:`~wasmplug._component.ComponentBackend`: a component, through wasmtime's
  component C API, with wasmplug's own value codecs (``kind`` ``"component"``).
- :class:`~wasmplug._core.CoreBackend`: a core module that ``wit-bindgen`` built,
  through wasmplug's canonical ABI over wasmtime's core API (``kind``
  ``"core-module"``).

Both also derive from :class:`~wasmplug._sandbox.Sandbox`, which enforces limits and
classifies failures the same way for every backend on wasmtime; a backend on another
runtime (Extism) implements this interface and raises the same exceptions.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ._audit import Auditor
from ._exceptions import CallError
from ._stats import CallStats

if TYPE_CHECKING:
    from ._world import PreparedCall

__all__ = ["Backend", "CheckCache", "Outcome", "RawStats", "check_uncached"]

#: A call's :class:`CallStats` fields, in order (a backend may report them so, and the
#: plugin makes the :class:`CallStats` only when someone reads ``last_call``).
RawStats = tuple[str, int, float, int, int, bool, float, int | None]
#: What :meth:`Backend.invoke` returns: ``(value, is_ok, stats)``.
Outcome = tuple[Any, bool, CallStats | RawStats]
_T = TypeVar("_T")


class CheckCache(Protocol):
    """Where a backend keeps what checking a compiled artifact against a world found:
    ``checks(artifact, world, check)`` returns ``check()``'s result, computed once per
    pair (:meth:`wasmplug.Engine.checked` keeps it while both live)."""

    def __call__(self, artifact: Any, world: Any, check: Callable[[], _T]) -> _T: ...


def check_uncached(artifact: Any, world: Any, check: Callable[[], _T]) -> _T:
    """A :class:`CheckCache` that keeps nothing: runs ``check`` every time."""
    return check()


class Backend(abc.ABC):
    """Runs one plugin's guest code; :class:`~wasmplug.Plugin` calls it.

    :class:`~wasmplug.Plugin` serializes every method but :meth:`free` (one call at a
    time, never after :meth:`close`), so a backend need not be thread-safe. Guest
    code may run on a worker thread of the engine (the native stack guard): a
    backend must not assume the thread that loaded it.

    Attributes:
        kind: What the backend runs, as :attr:`Plugin.kind <wasmplug.Plugin.kind>`
            reports it: ``"component"``, ``"core-module"``...
        imports: The plugin's imports, as :attr:`Plugin.imports
            <wasmplug.Plugin.imports>` reports them.
    """

    kind: str
    imports: tuple[str, ...]

    @abc.abstractmethod
    def start(self) -> None:
        """Creates the first instance, so that link and instantiation errors surface
        at load time. Called once, before any call.

        Raises:
            LinkError: an import cannot be satisfied.
            InstantiationError: the instance cannot be created.
        """

    @abc.abstractmethod
    def invoke(self, function: str, args: Sequence[Any], owner: object) -> Outcome:
        """Calls export ``function`` with Python values: lowers ``args``, enters the
        guest under the plugin's limits, lifts the result.

        Args:
            function: An export's call name; the plugin has checked that the world
                has it and that ``args`` has one value per parameter.
            args: One Python value per WIT parameter, unchecked.
            owner: The plugin: resource handles lifted from the result belong to it,
                and handle arguments must.

        Returns:
            ``(value, is_ok, stats)``: the lifted result (``None`` without one; for a
            ``result<T, E>`` the payload of either case), ``False`` when it is the
            ``err`` case of a ``result`` (the plugin raises the
            :class:`~wasmplug.GuestError`), and what the call used, as a
            :class:`CallStats` or its fields (:data:`RawStats`).

        Raises:
            ArgumentError: an argument does not match its WIT type (nothing ran).
            StaleHandleError: a resource handle argument is stale (nothing ran).
            CallError: the guest trapped or breached a limit; the exception's
                ``stats`` say what the call used. The next call runs on a fresh
                instance.
            InstantiationError: a fresh instance was needed and could not be created.
        """

    def invoke_prepared(self, prepared: PreparedCall, owner: object) -> Outcome:
        """:meth:`invoke` with arguments checked by :meth:`World.prepare
        <wasmplug.World.prepare>` (for this plugin's world). A backend that can use
        the prepared lowering overrides this; the default calls :meth:`invoke` with
        the original arguments.

        Raises:
            As :meth:`invoke`.
        """
        return self.invoke(prepared.function, prepared._args, owner)

    @abc.abstractmethod
    def audit(self, error: CallError) -> None:
        """Records ``error`` in the plugin's audit trail when it is a breach of a
        limit or a refusal (the plugin reports :class:`~wasmplug.PluginBusy` here)."""

    @property
    @abc.abstractmethod
    def auditor(self) -> Auditor:
        """The plugin's audit trail (:attr:`Plugin.audit_counts
        <wasmplug.Plugin.audit_counts>`)."""

    @abc.abstractmethod
    def interrupt(self) -> None:
        """Stops the guest code running now, from any thread: the call fails with
        :class:`~wasmplug.CallInterrupted` and the instance is discarded. Does
        nothing when nothing runs, and does not affect a call that starts later
        (:meth:`Plugin.interrupt <wasmplug.Plugin.interrupt>`)."""

    @abc.abstractmethod
    def evict(self) -> None:
        """Drops the live instance, if any, between calls (the engine's LRU of live
        instances); the next call instantiates afresh."""

    @abc.abstractmethod
    def close(self) -> None:
        """Releases the instance and everything native the backend holds. Called
        once; the plugin makes no call afterwards."""

    @property
    def current_instance(self) -> object | None:
        """A token of the live instance (``None`` before one exists): resource
        handles remember the token of the instance that made them. Default:
        ``None`` (a backend without resource handles)."""
        return None

    def release(self, native: Any, instance: object, what: str) -> None:
        """Drops the guest resource behind a native handle the host held and frees
        the handle (:meth:`ResourceHandle.close <wasmplug.ResourceHandle.close>`).

        Args:
            native: The handle, as the backend made it.
            instance: The token of the instance it belongs to; when that instance is
                gone the handle is only freed.
            what: The drop's name in errors, e.g. ``[resource-drop]buffer``.

        Raises:
            CallError: the guest's destructor trapped or breached a limit.

        Default: only frees it (:meth:`free`).
        """
        self.free(native)

    @staticmethod
    def free(native: Any) -> None:
        """Frees a native resource handle without dropping its resource. Called also
        after :meth:`close` (for handles collected later), so it must not need the
        backend: a ``staticmethod``.

        Raises:
            TypeError: by default: a backend that makes no resource handles is never
                given one to free.
        """
        raise TypeError(f"this backend makes no resource handles; cannot free {native!r}")
