"""Per-call accounting."""

from __future__ import annotations

import attrs

__all__ = ["CallStats"]


@attrs.frozen(kw_only=True)
class CallStats:
    """What one call into a plugin used. Every call records one, failed calls included
    (a :class:`~wasmplug.CallError` carries it as ``stats``).

    Attributes:
        function: The WIT name of the export called.
        fuel_consumed: Fuel units the call burned (about one per WebAssembly
            instruction), including any instantiation it triggered.
        wall_time_us: Wall-clock time of the call in microseconds, measured around the
            whole call: lowering, the guest, host functions and lifting.
        host_calls: How many host functions (capabilities) the guest called.
        denials: How many of those were denied by the policy.
        fresh_instance: Whether the call ran on a newly created instance (the first
            call after load or after a failed call).
    """

    function: str
    fuel_consumed: int
    wall_time_us: float
    host_calls: int = 0
    denials: int = 0
    fresh_instance: bool = False
