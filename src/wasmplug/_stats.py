"""Per-call accounting."""

from __future__ import annotations

import attrs

__all__ = ["CallStats"]


@attrs.frozen
class CallStats:
    """What one call into a plugin used. Every call records one, failed calls included
    (a :class:`~wasmplug.CallError` carries it as ``stats``).

    Attributes:
        function: The WIT name of the export called.
        fuel_consumed: Fuel units the call burned (about one per WebAssembly
            instruction), including any instantiation it triggered; 0 on the Extism
            backend, whose runtime enforces ``Limits.fuel`` but cannot tell what a
            call used.
        wall_time_us: Wall-clock time of the call in microseconds, from entering the
            backend to leaving it: on the core-module fast path lowering, the guest,
            host functions and lifting; on the component path the guest, host
            functions and wasmtime's own conversions (wasmplug's lowering happens in
            :meth:`~wasmplug.World.prepare` before, its lifting after).
        host_calls: How many host functions (capabilities and the host's own imports)
            the guest called.
        denials: How many capability calls the policy denied.
        fresh_instance: Whether the call ran on a newly created instance (the first
            call after load or after a failed call).
        host_time_us: Microseconds spent inside the host's own host functions (the
            ``imports`` given to :func:`~wasmplug.load`; capabilities are not timed),
            part of ``wall_time_us`` and of the call's deadline.
        memory_bytes: The size of the guest's linear memories together when the call
            returned, in bytes: their peak so far, as a linear memory never shrinks
            (a fresh instance starts over). Measured on the core-module fast path
            (its exported memory) and on the component path (wasmplug allocates a
            component's memories itself: ``Engine(measure_component_memory=...)``);
            ``None`` on the Extism backend and on engines that do not measure
            components.
    """

    function: str
    fuel_consumed: int
    wall_time_us: float
    host_calls: int = 0
    denials: int = 0
    fresh_instance: bool = False
    host_time_us: float = 0.0
    memory_bytes: int | None = None
