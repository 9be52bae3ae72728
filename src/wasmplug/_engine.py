"""The process-wide wasmtime engine: fuel, epoch ticker, compile cache."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import wasmtime
import wasmtime.component

from . import _memory
from ._audit import AuditCallback
from ._coremodule import CoreModuleError, custom_section_names, imports_from
from ._diskcache import cache_root, read_trusted, write_atomically
from ._exceptions import InvalidWasmError, PolicyError
from ._stack import HOST_STACK_MARGIN, StackGuard
from ._version import wasmtime_version

__all__ = ["Engine"]

logger = logging.getLogger("wasmplug")

_WASM_MAGIC = b"\0asm"
#: Names the engine configuration in compile-cache paths: code compiled under another
#: configuration cannot be loaded (change it with the configuration).
_CONFIG_TAG = "fuel-epoch-fixedmem"
_WASM_PAGE = 64 << 10
# Bytes 4..8 of a binary: version and layer (component-model binary format,
# Binary.md in WebAssembly/component-model): a core module has version 1, layer 0;
# a component has layer 1.
_CORE_MODULE_HEADER = b"\x01\x00\x00\x00"

#: wasmtime's own default ``max_wasm_stack`` (``Config::max_wasm_stack``), set
#: explicitly so that the native-stack check and the engine agree on it.
DEFAULT_MAX_WASM_STACK = 512 << 10
#: An epoch deadline this large means "no deadline" (about 146,000 years of 1 ms
#: epochs); :meth:`EpochClock.deadline` passes it through without waking the ticker.
UNBOUNDED_TICKS = 1 << 62
# The running ticker wakes every twentieth of the shortest pending deadline, at most
# every 10 ms and at least every epoch.
_STEP_FRACTION = 20
_MAX_STEP_S = 0.010


def _check_int(name: str, value: object, minimum: int, unit: str = "") -> None:
    """Raises :class:`PolicyError` unless ``value`` is an int (not a bool) of at least
    ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        what = f"{minimum}" + (f" ({unit})" if unit else "")
        raise PolicyError(f"{name} must be an int >= {what}, found {value!r}")


_T = TypeVar("_T")


class Evictable(Protocol):
    """What :meth:`Engine.used` evicts: a plugin that can drop its live instance."""

    def evict(self) -> bool:
        """Drops the live instance unless a call is running; returns whether it did
        (or there was none to drop)."""
        ...


class Engine:
    """A wasmtime engine configured for sandboxing, shared by many plugins.

    Fuel metering and epoch interruption are always on. A daemon thread advances the
    epoch, one per ``epoch_tick_ms`` of wall-clock time, while some call's deadline is
    pending (a late wake-up adds the epochs it missed), which is what enforces
    deadlines; when no deadline is pending it parks and costs nothing
    (:class:`EpochClock`, the attribute ``epoch_clock``). Compiled
    components are cached in memory by sha256 and, when ``cache_dir`` is set, on disk
    keyed by sha256 and wasmtime version, so loading the same plugin again costs a
    deserialization (about 1 ms) instead of a compilation.

    Calls never overflow the host's native stack: before entering wasm, a call checks
    that its thread has ``max_wasm_stack_bytes`` plus a margin for host frames
    (:data:`~wasmplug._stack.HOST_STACK_MARGIN`, 256 KiB) of native stack left, and
    otherwise runs on one of the engine's worker threads, which have 8 MiB stacks
    (see "Native stack" in ``docs/security.md``).

    Most hosts use one engine per process: :meth:`default` returns a shared one.

    Args:
        epoch_tick_ms: Deadline granularity in milliseconds (default 1). A deadline of
            ``d`` ms fires after ``d`` to ``d + max(epoch_tick_ms, min(d / 20, 10))``
            ms of guest execution (the ticker wakes every twentieth of the shortest
            pending deadline, at most every 10 ms), plus the ticker's wake-up latency.
        cache_dir: Directory for compiled components. The default ``"auto"`` uses
            ``$XDG_CACHE_HOME/wasmplug`` (``~/.cache/wasmplug``); ``None`` disables the
            disk cache. Compiled code in it is loaded without re-validation
            (wasmtime's ``Component::deserialize`` checks only its version and
            configuration), so an entry is used only when it and its directories
            belong to the user running the host and nobody else can write them;
            directories wasmplug creates there are private (mode 0700). An entry
            failing that check is logged and ignored (the plugin is compiled again).
        max_cached_components: How many compiled components the in-memory cache keeps
            (least recently used dropped first; a loaded plugin keeps its own
            component alive regardless). Default 256.
        audit: The audit callback of every plugin loaded on this engine without an
            ``audit=`` of its own (:func:`~wasmplug.load`): called with an
            :class:`~wasmplug.AuditEvent` for each denial and breach. Also the
            attribute ``audit``, which may be changed; a plugin keeps the callback it
            was loaded with.
        max_wasm_stack_bytes: Native stack guest code may use per call, in bytes
            (wasmtime's ``Config.max_wasm_stack``; default 512 KiB, wasmtime's own
            default). Deeper recursion traps (:class:`~wasmplug.Trap`, "call stack
            exhausted"). A call needs this plus 256 KiB of native stack left on its
            thread to run there; a larger value sends more calls from small-stack
            threads to worker threads. At least 64 KiB.
        memory_reservation_bytes: Virtual address space reserved for each linear
            memory, in bytes (wasmtime's ``Config.memory_reservation``), or ``None``
            for wasmtime's default: 4 GiB on 64-bit hosts, which lets any 32-bit
            memory grow in place and spares the compiled code its bounds checks. A
            memory never moves (the fast path keeps views of it), so it cannot grow
            past this: loading a plugin whose ``Limits.memory_bytes`` is larger, or
            unbounded, raises :class:`~wasmplug.PolicyError`. Lower it to fit more
            live instances in the address space (x86-64 user space is 128 TiB: about
            30,000 memories at the default; see "Density" in
            ``docs/performance.md``); guest memory accesses then cost an explicit
            bounds check. A multiple of 64 KiB (one wasm page), at least 64 KiB.
        max_live_instances: How many plugins of this engine may hold a live instance
            at once, or ``None`` (the default) for no bound. Past it, the instances of
            the plugins used least recently are dropped (a plugin whose call is running
            keeps its own); their next call creates a fresh instance. A positive int.
        measure_component_memory: Whether components report their linear memory
            (:attr:`CallStats.memory_bytes <wasmplug.CallStats.memory_bytes>`; the
            fast path always does). wasmtime's component API shows no memory of a
            component instance, so components run on a second wasmtime engine whose
            linear memories wasmplug allocates itself (``mmap``/``mprotect``) and
            counts; that engine gives up wasmtime's copy-on-write memory images, and
            a fresh component instance costs more: a call on a fresh instance took
            1.09x as long, about 12 µs more (``python benchmarks/bench_memory.py``,
            measured against ``False`` in the same run); calls on a live instance
            cost the same. Default ``True``; ``False`` runs components on the core
            engine, and their ``memory_bytes`` is ``None`` (as it is where the host
            has no POSIX ``mmap``).

    Attributes:
        max_wasm_stack_bytes: As given.
        native_stack_bytes: Native stack, in bytes, a call must find left on the
            calling thread to run on it: ``max_wasm_stack_bytes`` + 256 KiB.
        memory_reservation_bytes: As given.

    Raises:
        PolicyError: ``epoch_tick_ms`` or ``max_cached_components`` is not positive,
            ``max_wasm_stack_bytes`` is not an int of at least 64 KiB, or
            ``memory_reservation_bytes`` is not a positive multiple of 64 KiB, or
            ``max_live_instances`` is not a positive int.
    """

    _default: ClassVar[Engine | None] = None
    _default_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        *,
        epoch_tick_ms: float = 1.0,
        cache_dir: str | os.PathLike[str] | None = "auto",
        max_cached_components: int = 256,
        audit: AuditCallback | None = None,
        max_wasm_stack_bytes: int = DEFAULT_MAX_WASM_STACK,
        memory_reservation_bytes: int | None = None,
        max_live_instances: int | None = None,
        measure_component_memory: bool = True,
    ) -> None:
        if not epoch_tick_ms > 0:
            raise PolicyError(f"epoch_tick_ms must be > 0, found {epoch_tick_ms!r}")
        _check_int("max_cached_components", max_cached_components, 1)
        _check_int("max_wasm_stack_bytes", max_wasm_stack_bytes, 64 << 10, "64 KiB")
        if memory_reservation_bytes is not None:
            _check_int(
                "memory_reservation_bytes", memory_reservation_bytes, _WASM_PAGE, "one wasm page"
            )
            if memory_reservation_bytes % _WASM_PAGE:
                raise PolicyError(
                    "memory_reservation_bytes must be a multiple of 65536 (one wasm page), "
                    f"found {memory_reservation_bytes!r}"
                )
        if max_live_instances is not None:
            _check_int("max_live_instances", max_live_instances, 1)
        self._wasmtime = wasmtime.Engine(
            self._config(max_wasm_stack_bytes, memory_reservation_bytes)
        )
        # Components run on an engine of their own whose linear memories wasmplug
        # allocates (_memory), to see them; core modules keep wasmtime's own
        # copy-on-write memories.
        self._component_wasmtime = self._wasmtime
        if measure_component_memory:
            config = self._config(max_wasm_stack_bytes, memory_reservation_bytes)
            if _memory.install(config):
                self._component_wasmtime = wasmtime.Engine(config)
        self._engines = (
            (self._wasmtime,)
            if self._component_wasmtime is self._wasmtime
            else (self._wasmtime, self._component_wasmtime)
        )
        self.epoch_tick_ms = float(epoch_tick_ms)
        self.audit = audit
        self.max_wasm_stack_bytes = max_wasm_stack_bytes
        self.native_stack_bytes = max_wasm_stack_bytes + HOST_STACK_MARGIN
        self.memory_reservation_bytes = memory_reservation_bytes
        # Compiled code depends on the reservation (bounds checks): cached apart.
        self._config_tag = _CONFIG_TAG + (
            "" if memory_reservation_bytes is None else f"-res{memory_reservation_bytes}"
        )
        self._stack_guard = StackGuard(max_wasm_stack_bytes)
        self.cache_dir: Path | None = (
            cache_root() if cache_dir == "auto" else Path(cache_dir) if cache_dir else None
        )
        self._components: OrderedDict[str, wasmtime.component.Component | wasmtime.Module] = (
            OrderedDict()
        )
        self._max_components = max_cached_components
        self._wasi_forwarder: wasmtime.component.Component | None = None
        self.max_live_instances = max_live_instances
        # Plugins that may hold a live instance, least recently used first.
        self._live: OrderedDict[int, weakref.ref[Evictable]] = OrderedDict()
        self._live_lock = threading.Lock()
        self._lock = threading.Lock()
        # compiled artifact -> world -> what checking the one against the other found
        # (:meth:`checked`); weak both ways, so an entry goes with either.
        self._checked: weakref.WeakKeyDictionary[Any, weakref.WeakKeyDictionary[Any, Any]]
        self._checked = weakref.WeakKeyDictionary()
        self.epoch_clock = EpochClock(epoch_tick_ms / 1000.0)
        self._ticker = threading.Thread(
            target=_tick,
            args=(weakref.ref(self), self.epoch_clock),
            name="wasmplug-epoch",
            daemon=True,
        )
        self._ticker.start()
        self._finalizer = weakref.finalize(self, self.epoch_clock.stop)

    @staticmethod
    def _config(max_wasm_stack_bytes: int, memory_reservation_bytes: int | None) -> wasmtime.Config:
        config = wasmtime.Config()
        config.max_wasm_stack = max_wasm_stack_bytes
        if memory_reservation_bytes is not None:
            config.memory_reservation = memory_reservation_bytes
            # Growth past the reservation would need the memory to move: never.
            config.memory_reservation_for_growth = 0
        config.consume_fuel = True
        config.epoch_interruption = True
        config.wasm_component_model = True
        # Linear memories never move when they grow (wasmtime reserves the whole
        # 32-bit range up front by default, so growth is not limited by this): the
        # fast path keeps views of guest memory across guest calls that may grow it.
        config.memory_may_move = False
        return config

    @classmethod
    def default(cls) -> Engine:
        """Returns the process-wide shared engine, creating it on first use."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    @property
    def wasmtime_engine(self) -> wasmtime.Engine:
        """The ``wasmtime.Engine`` that compiles and runs core modules (and components
        too when ``measure_component_memory`` is off)."""
        return self._wasmtime

    @property
    def component_wasmtime_engine(self) -> wasmtime.Engine:
        """The ``wasmtime.Engine`` that compiles and runs components: a second engine
        whose linear memories wasmplug allocates (``measure_component_memory``), or
        :attr:`wasmtime_engine`."""
        return self._component_wasmtime

    def increment_epoch(self) -> None:
        """Advances the epoch of every wasmtime engine this engine runs guests on by
        one (what the ticker does per ``epoch_tick_ms``)."""
        for engine in self._engines:
            engine.increment_epoch()

    @property
    def stack_offloads(self) -> int:
        """How many entries into wasm (calls, instantiations, guest destructors) of
        this engine's plugins ran on a worker thread so far, because the calling
        thread had less than :attr:`native_stack_bytes` of native stack left (or it
        could not be measured on this platform)."""
        return self._stack_guard.offloads

    def _forwarder_component(self) -> wasmtime.component.Component:
        """wasmplug's WASI forwarder component (:mod:`wasmplug._wasiforward`) compiled
        for this engine: at first use, from the disk cache like a plugin's component
        (or compiled, about 0.3 s), then kept.

        Raises:
            InvalidWasmError: the shipped forwarder is missing or does not compile.
        """
        forwarder = self._wasi_forwarder
        if forwarder is None:
            wasm = _forwarder_wasm()
            compiled = self.compile(wasm, sha256=sha256_hex(wasm), plugin=None)
            if not isinstance(compiled, wasmtime.component.Component):  # pragma: no cover
                raise InvalidWasmError("the WASI forwarder is not a component", plugin=None)
            forwarder = self._wasi_forwarder = compiled
        return forwarder

    def checked(self, artifact: Any, world: Any, check: Callable[[], _T]) -> _T:
        """What a backend's load-time check of a compiled component or module against a
        world found, which depends on the two only: ``check()`` runs the first time
        the pair is seen; later loads of the same compilation for the same world reuse
        its result. Kept while both live (weakly keyed by the compiled object itself,
        whose export indices belong to that compilation, and by the world).

        Args:
            artifact: The compiled component or module (from :meth:`compile`).
            world: The :class:`~wasmplug.World`.
            check: Computes the result; its exceptions propagate and nothing is kept.

        Returns:
            What ``check`` returned for this pair.
        """
        with self._lock:
            per_world = self._checked.get(artifact)
            if per_world is None:
                per_world = self._checked[artifact] = weakref.WeakKeyDictionary()
            found = per_world.get(world)
        if found is None:
            found = check()
            with self._lock:
                per_world[world] = found
        return found

    def used(self, plugin: Evictable) -> None:
        """Records that ``plugin`` just used its instance (a call, or the first
        instance at load) and, past :attr:`max_live_instances`, drops the instances
        of the plugins least recently used. Called by the plugin; a no-op without a
        bound."""
        limit = self.max_live_instances
        if limit is None:
            return
        key = id(plugin)
        with self._live_lock:
            live = self._live
            if key in live:
                live.move_to_end(key)
            else:
                live[key] = weakref.ref(plugin, functools.partial(self._forget, key))
            excess = len(live) - limit
            if excess <= 0:
                return
            candidates = [ref for k, ref in live.items() if k != key][: excess + 8]
        for ref in candidates:
            if excess <= 0:
                break
            other = ref()
            if other is not None and other.evict():
                excess -= 1
                with self._live_lock:
                    self._live.pop(id(other), None)

    def _forget(self, key: int, _: object = None) -> None:
        with self._live_lock:
            self._live.pop(key, None)

    def close(self) -> None:
        """Stops the epoch ticker thread. Plugins of this engine can no longer time out
        correctly afterwards; idempotent."""
        self.epoch_clock.stop()

    def compile(
        self, wasm: bytes, *, sha256: str, plugin: str | None
    ) -> wasmtime.component.Component | wasmtime.Module:
        """Compiles a component, or a core module that carries its world in a
        ``component-type`` custom section (as ``wit-bindgen`` builds them for the fast
        path), or returns it from the memory or disk cache.

        Args:
            wasm: The component's bytes.
            sha256: Their sha256, lowercase hex (computed by the caller, who checks pins).
            plugin: The plugin's name, for error messages.

        Returns:
            The compiled component, or the compiled core module.

        Raises:
            InvalidWasmError: the bytes are not WebAssembly, are a core module without a
                ``component-type`` section, or fail to compile.
        """
        with self._lock:
            cached = self._components.get(sha256)
            if cached is not None:
                self._components.move_to_end(sha256)
        if cached is not None:
            return cached
        core = _check_header(wasm, plugin)
        component = self._load_cached(sha256, core)
        if component is None:
            try:
                component = (
                    wasmtime.Module(self._wasmtime, wasm)
                    if core
                    else wasmtime.component.Component(self._component_wasmtime, wasm)
                )
            except wasmtime.WasmtimeError as e:
                what = "core module" if core else "component"
                raise InvalidWasmError(
                    f"not a valid WebAssembly {what}: {_first_line(str(e))}", plugin=plugin
                ) from e
            self._store_cached(sha256, component)
        with self._lock:
            self._components[sha256] = component
            while len(self._components) > self._max_components:
                self._components.popitem(last=False)
        return component

    def _cache_path(self, sha256: str, core: bool) -> Path | None:
        if self.cache_dir is None:
            return None
        suffix = ".core.cwasm" if core else ".cwasm"
        tag = self._config_tag
        if not core and self._component_wasmtime is not self._wasmtime:
            tag += "-hostmem"  # no copy-on-write images: wasmtime refuses the others
        return self.cache_dir / f"wasmtime-{wasmtime_version()}-{tag}" / f"{sha256}{suffix}"

    def _load_cached(
        self, sha256: str, core: bool
    ) -> wasmtime.component.Component | wasmtime.Module | None:
        path = self._cache_path(sha256, core)
        if path is None:
            return None
        data = read_trusted(path)
        if data is None:
            return None
        try:
            if core:
                return wasmtime.Module.deserialize(self._wasmtime, data)
            return wasmtime.component.Component.deserialize(self._component_wasmtime, data)
        except wasmtime.WasmtimeError as e:
            logger.warning("ignoring unusable compile cache entry %s: %s", path, e)
            return None

    def _store_cached(
        self, sha256: str, component: wasmtime.component.Component | wasmtime.Module
    ) -> None:
        path = self._cache_path(sha256, isinstance(component, wasmtime.Module))
        if path is not None:
            write_atomically(path, bytes(component.serialize()))


class EpochClock:
    """The engine's deadline clock: epochs of wall-clock time, counted only while a
    deadline is pending.

    Each call tells the clock its deadline (:meth:`deadline`), which returns the
    relative epoch deadline to give wasmtime. The ticker thread advances the epoch
    while some requested deadline is still ahead, and parks (waits, costing nothing)
    once the epoch has passed them all; the next :meth:`deadline` wakes it. While it
    runs, epochs are wall-clock time: a late wake-up adds every epoch it missed, and a
    deadline set while the ticker owes epochs adds them, so it is neither shortened
    nor stretched. While parked nothing is owed: waking restarts the count at the
    epoch reached, so a long idle time never has to be paid back.

    The ticker wakes once every ``step`` epochs, where ``step`` is a twentieth of the
    shortest deadline requested since it last parked, at least 1 epoch and at most
    10 ms: a guest is stopped at the first wake-up after its deadline, so a deadline
    of ``d`` ms is late by at most ``max(epoch_tick_ms, min(d / 20, 10))`` ms plus
    the wake-up's own latency, and a long deadline costs the calling threads one GIL
    hand-over per step instead of one per epoch.

    Attributes:
        interval: Seconds per epoch.
        ticks: Epochs added so far (only the ticker thread writes it).
        parks: How many times the ticker has parked (a counter for tests and
            monitoring).
    """

    __slots__ = (
        "_horizon",
        "_lock",
        "_max_step",
        "_origin",
        "_parked",
        "_step",
        "_stopped",
        "_wake",
        "interval",
        "parks",
        "ticks",
    )

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.ticks = 0
        self.parks = 0
        # (monotonic seconds, epoch) from which wall-clock epochs are counted.
        self._origin = (time.monotonic(), 0)
        # The ticker keeps running until the epoch reaches this.
        self._horizon = 0
        self._max_step = max(1, int(_MAX_STEP_S / interval))
        self._step = self._max_step
        self._parked = True
        self._stopped = False
        self._wake = threading.Event()
        self._lock = threading.Lock()

    @property
    def parked(self) -> bool:
        """True while the ticker waits for a deadline to be requested (no deadline is
        pending, or the engine is closed)."""
        return self._parked

    @property
    def step(self) -> int:
        """Epochs between two wake-ups of the running ticker."""
        return self._step

    def lag(self) -> int:
        """Epochs the running ticker owes right now (it is waiting for the GIL or its
        next wake-up); 0 while it is parked."""
        if self._parked:
            return 0
        t0, k0 = self._origin
        return max(0, k0 + int((time.monotonic() - t0) / self.interval) - self.ticks)

    def deadline(self, ticks: int) -> int:
        """Requests a deadline ``ticks`` epochs from now and returns the epoch
        deadline to set on the store (``Store.set_epoch_deadline``, relative to the
        engine's current epoch): ``ticks`` plus the epochs the ticker owes. Wakes the
        ticker if it is parked.

        Args:
            ticks: The deadline in epochs; :data:`UNBOUNDED_TICKS` or more means none
                (returned as is, and the ticker is not woken).

        Returns:
            The relative epoch deadline, in epochs.
        """
        if ticks >= UNBOUNDED_TICKS:
            return ticks
        if self._parked:
            self._unpark()
        t0, k0 = self._origin
        now = self.ticks
        lag = k0 + int((time.monotonic() - t0) / self.interval) - now
        relative = ticks + lag if lag > 0 else ticks
        end = now + relative + 1
        if end > self._horizon:
            # With slack, so that a stream of calls takes the lock once per quarter
            # deadline, not once per call.
            with self._lock:
                if end > self._horizon:
                    self._horizon = end + (ticks >> 2)
        # The ticker writes _parked and then reads _horizon; this reads _parked after
        # writing _horizon, so either it sees the new horizon or this sees it parked.
        if self._parked:
            self._unpark()
        step = ticks // _STEP_FRACTION
        step = 1 if step < 1 else self._max_step if step > self._max_step else step
        if step < self._step:
            self._step = step
            self._wake.set()  # it may be asleep for a longer step
        return relative

    def _unpark(self) -> None:
        with self._lock:
            if self._parked:
                # Nothing was owed while parked: count from the epoch reached, now.
                self._origin = (time.monotonic(), self.ticks)
                self._step = self._max_step
                self._parked = False
                self._wake.set()

    def stop(self) -> None:
        """Stops the ticker thread for good (it returns at its next wake-up, at once
        if parked); idempotent."""
        self._stopped = True
        self._wake.set()


def _tick(engine_ref: weakref.ref[Engine], clock: EpochClock) -> None:
    """The ticker thread's loop (see :class:`EpochClock`).

    A wake-up can come late (the thread waits for the GIL while other threads run
    Python, or the machine is loaded); the ticker then adds every epoch it missed, so
    that a deadline of ``n`` epochs means ``n`` intervals of time, not ``n``
    wake-ups.
    """
    interval, wake = clock.interval, clock._wake
    while True:
        wake.clear()
        if clock._stopped:
            return
        if clock._parked:
            wake.wait()
            continue
        engine = engine_ref()
        if engine is None:
            return
        t0, k0 = clock._origin
        due = k0 + int((time.monotonic() - t0) / interval)
        if clock.ticks < due:
            increment = engine.increment_epoch
            while clock.ticks < due:
                increment()
                clock.ticks += 1
            del increment
        del engine
        if clock.ticks >= clock._horizon:
            clock._parked = True
            if clock.ticks >= clock._horizon:
                clock.parks += 1
                continue  # parked: waits at the top of the loop
            with clock._lock:  # a deadline was requested meanwhile
                clock._parked = False
        wake.wait(max(0.0, t0 + (clock.ticks - k0 + clock._step) * interval - time.monotonic()))


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _check_header(wasm: bytes, plugin: str | None) -> bool:
    """Checks the magic bytes; returns whether it is a core module (one with a
    ``component-type`` custom section: a component otherwise).

    Raises:
        InvalidWasmError: not WebAssembly, or a core module without a world.
    """
    if len(wasm) < 8 or wasm[:4] != _WASM_MAGIC:
        head = wasm[:8]
        raise InvalidWasmError(
            f"not WebAssembly: expected the magic bytes b'\\x00asm', found {head!r} "
            f"({len(wasm)} bytes in all)",
            plugin=plugin,
        )
    if wasm[4:8] == _CORE_MODULE_HEADER:
        if not _has_component_type(wasm) and not imports_extism(wasm):
            raise InvalidWasmError(
                "this is a core WebAssembly module without a component-type custom "
                "section (the world wit-bindgen embeds) and not an Extism plugin (no "
                "extism:host/env imports): build it with wit-bindgen (wasm32-wasip1 for "
                "the fast path, wasm32-wasip2 for a component) or with extism-pdk",
                plugin=plugin,
            )
        return True
    return False


def _has_component_type(wasm: bytes) -> bool:
    """Whether a core module has a custom section named ``component-type...``
    (wit-bindgen names it ``component-type:<world>``); ``False`` for bytes that are
    not a well-formed module (compiling them says what is wrong)."""
    try:
        return any(n.startswith("component-type") for n in custom_section_names(wasm))
    except CoreModuleError:
        return False


#: The import module of Extism's kernel.
EXTISM_KERNEL = "extism:host/env"


def is_extism_plugin(wasm: bytes) -> bool:
    """Whether ``wasm`` is a core module (magic bytes, version 1) that imports from
    ``extism:host/env``: an Extism plugin, run by ``wasmplug._extism``."""
    return wasm[:4] == _WASM_MAGIC and wasm[4:8] == _CORE_MODULE_HEADER and imports_extism(wasm)


def imports_extism(wasm: bytes) -> bool:
    """Whether a core module imports from ``extism:host/env`` (an Extism plugin:
    ``wasmplug._extism``); ``False`` for bytes that are not a well-formed module."""
    try:
        return imports_from(wasm, EXTISM_KERNEL)
    except CoreModuleError:
        return False


@functools.cache
def _forwarder_wasm() -> bytes:
    """The shipped WASI forwarder's bytes (read once).

    Raises:
        InvalidWasmError: the file is missing.
    """
    from ._wasiforward import FORWARDER_WASM

    try:
        return FORWARDER_WASM.read_bytes()
    except OSError as e:
        raise InvalidWasmError(
            f"wasmplug's WASI forwarder cannot be read ({e}): reinstall wasmplug", plugin=None
        ) from None


def sha256_hex(data: bytes) -> str:
    """Returns the lowercase hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
