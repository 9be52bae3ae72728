"""A pool of ready instances of one plugin, for concurrent calls: :class:`Pool`."""

from __future__ import annotations

import asyncio
import os
import queue
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from ._exceptions import PluginBusy, PluginClosedError, PolicyError
from ._kv import KvStore, MemoryKvStore
from ._plugin import Plugin, load
from ._policy import Policy
from ._world import World

__all__ = ["Pool", "load_pool"]


class Pool:
    """``size`` instances of one plugin, each a :class:`~wasmplug.Plugin` with its own
    Store, serving calls from many threads or asyncio tasks at once.

    A call takes an idle instance, runs on it, and gives it back; a Store is never used
    by two threads at once. Instances share nothing but the plugin's kv store (one
    namespace, as for a single plugin); guest memory is each instance's own. A call
    that fails (a trap, a breached limit) replaces only its own instance: the others
    keep serving. The GIL is released while guest code runs, so calls of different
    instances run in parallel. Made by :func:`load_pool`.

    Attributes:
        name: The plugin's name (every instance has it, in errors and logs).
        world: The world it implements.
        size: The number of instances.
    """

    def __init__(self, plugins: list[Plugin], wait_s: float | None) -> None:
        if not plugins:
            raise PolicyError("a pool needs at least one instance")
        self.name = plugins[0].name
        self.world = plugins[0].world
        self.size = len(plugins)
        self._plugins = plugins
        self._idle: queue.SimpleQueue[Plugin] = queue.SimpleQueue()
        for plugin in plugins:
            self._idle.put(plugin)
        self._wait_s = wait_s
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    @property
    def plugins(self) -> tuple[Plugin, ...]:
        """The pooled instances (for their stats and audit counts)."""
        return tuple(self._plugins)

    def call(self, function: str, *args: Any) -> Any:
        """Calls an export on an idle instance, waiting for one if all are busy.

        Args and returns: as :meth:`Plugin.call <wasmplug.Plugin.call>`.

        Raises:
            PluginBusy: no instance became idle within the pool's wait
                (``Limits.queue_ms`` of its policy; nothing ran).
            PluginClosedError: the pool was closed.
            ArgumentError, GuestError, CallError...: as :meth:`Plugin.call
                <wasmplug.Plugin.call>`.
        """
        return self._call_on(function, args, [])

    async def acall(self, function: str, *args: Any) -> Any:
        """:meth:`call` off the event loop, on one of ``size`` worker threads (so at
        most ``size`` calls of this pool run at once, the rest wait their turn).

        Cancelling the awaiting task stops a call already running in the guest
        (:meth:`Plugin.interrupt <wasmplug.Plugin.interrupt>`: within 50 ms of guest
        time), so its worker and instance are free again soon; that instance is
        replaced by a fresh one. A call still waiting for a worker does not run.

        Raises:
            asyncio.CancelledError: the awaiting task was cancelled.
            As :meth:`call`.
        """
        if self._closed:
            raise PluginClosedError(f"{function}: the pool is closed", plugin=self.name)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.size, thread_name_prefix=f"wasmplug-pool-{self.name}"
            )
        loop = asyncio.get_running_loop()
        running: list[Plugin] = []  # the instance the call runs on, once it has one
        future = loop.run_in_executor(self._executor, self._call_on, function, args, running)
        try:
            return await future
        except asyncio.CancelledError:
            for plugin in running:
                plugin.interrupt()
            raise

    def _call_on(self, function: str, args: tuple[Any, ...], running: list[Plugin]) -> Any:
        """:meth:`call`, telling ``running`` which instance runs it."""
        if self._closed:
            raise PluginClosedError(f"{function}: the pool is closed", plugin=self.name)
        plugin = self._take(function)
        running.append(plugin)
        try:
            return plugin.call(function, *args)
        finally:
            running.clear()
            self._idle.put(plugin)

    def _take(self, function: str) -> Plugin:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        start = time.monotonic()
        try:
            return self._idle.get(timeout=self._wait_s)
        except queue.Empty:
            raise PluginBusy(
                waited_ms=round((time.monotonic() - start) * 1000),
                allowed=round((self._wait_s or 0) * 1000),
                busy_with=f"each of its {self.size} instances",
                plugin=self.name,
                function=function,
            ) from None

    def close(self) -> None:
        """Closes every instance and the worker threads; idempotent. Calls running at
        that moment are stopped (:meth:`Plugin.interrupt
        <wasmplug.Plugin.interrupt>`: they raise :class:`~wasmplug.CallInterrupted`),
        calls still waiting for a worker do not run."""
        self._closed = True
        for plugin in self._plugins:
            plugin.interrupt()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        for plugin in self._plugins:
            plugin.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self._idle.qsize()} idle"
        return f"<Pool {self.name!r} of {self.size}, {state}>"


def load_pool(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    world: World,
    size: int,
    policy: Policy | None = None,
    name: str | None = None,
    kv_store: KvStore | None = None,
    imports: Mapping[str, object] | None = None,
    **options: Any,
) -> Pool:
    """Loads ``size`` instances of one plugin into a :class:`Pool`.

    ``source``, ``world``, ``policy``, ``name`` and ``imports`` are as for
    :func:`~wasmplug.load`; the plugin is compiled and checked once, then instantiated
    ``size`` times (an Extism plugin is compiled by libextism for each instance, with
    that instance's host functions: ``docs/extism.md``). The host implementations in
    ``imports`` are shared by the instances, so they must be thread-safe.

    Args:
        size: How many instances (at least 1): the most calls that run at once.
        kv_store: One store for all the instances (default: a new
            :class:`~wasmplug.MemoryKvStore` shared by them).
        **options: Other keyword arguments of :func:`~wasmplug.load` (``engine``,
            ``sha256``, ``audit``).

    Returns:
        The pool. A caller waits for an idle instance up to the policy's
        ``Limits.queue_ms`` (without bound when it is ``None``).

    Raises:
        PolicyError: ``size`` is not a positive int.
        Everything :func:`~wasmplug.load` raises.
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise PolicyError(f"Pool size must be an int >= 1, found {size!r}")
    policy = policy if policy is not None else Policy()
    if isinstance(source, str | os.PathLike):
        # Read (and hashed by load) once, not once per instance.
        path = Path(source)
        name = name or path.stem
        source = path.read_bytes()
    store = kv_store if kv_store is not None else MemoryKvStore()
    plugins = [
        load(
            source,
            world=world,
            policy=policy,
            name=name,
            kv_store=store,
            imports=imports,
            **options,
        )
        for _ in range(size)
    ]
    queue_ms = policy.limits.queue_ms
    return Pool(plugins, None if queue_ms is None else queue_ms / 1000)
