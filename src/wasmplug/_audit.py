"""The audit trail: every denial and every breached limit, in one place per plugin.

A *denial* is a capability call the policy refused (the guest got ``error.denied``)
or a WASI function wasmplug refuses to serve; a *breach* is a call stopped by one of
the plugin's :class:`~wasmplug.Limits`. Each becomes one :class:`AuditEvent`: it is
counted per plugin (:attr:`wasmplug.Plugin.audit_counts`), logged on the
``wasmplug.policy`` logger (denials rate-limited per plugin), and offered to the
``audit`` callback given to :func:`wasmplug.load`, if any.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping

import attrs

__all__ = ["MAX_ARGUMENT", "AuditEvent", "Auditor"]

#: Longest refused argument kept in an event, in characters (longer ones are cut
#: and marked).
MAX_ARGUMENT = 200

_logger = logging.getLogger("wasmplug.policy")


def excerpt(text: str) -> str:
    """``text`` cut to :data:`MAX_ARGUMENT` characters, marked when cut."""
    if len(text) <= MAX_ARGUMENT:
        return text
    return f"{text[:MAX_ARGUMENT]}... [cut: {len(text)} characters in all]"


@attrs.frozen(kw_only=True)
class AuditEvent:
    """One denial or breach.

    Attributes:
        plugin: The plugin's name.
        kind: ``"denial"`` (a capability call or WASI function refused) or
            ``"breach"`` (a limit stopped the call).
        name: For a denial the capability (``"log"``, ``"config"``, ``"kv"``, or the
            refused WASI function as ``<interface>#<function>``); for a breach the
            ``Limits`` field (``"fuel"``, ``"output_bytes"``, ...).
        function: The export the host called when it happened (``""`` when none
            was running, e.g. during instantiation).
        argument: What was refused, as text cut to :data:`MAX_ARGUMENT`
            characters: the denial's reason with the guest's argument (a kv key is
            quoted), or the breach's message (limit, amount used).
        used: For a breach, the amount of the limit used (``LimitExceeded.used``);
            ``None`` for a denial or when unknown.
        timestamp: When it happened, in seconds since the epoch (``time.time()``).
    """

    plugin: str
    kind: str
    name: str
    function: str
    argument: str
    used: int | None = None
    timestamp: float = attrs.field(factory=time.time)

    @property
    def key(self) -> str:
        """The counter key: ``"<kind>:<name>"``, e.g. ``"denial:kv"``, ``"breach:fuel"``."""
        return f"{self.kind}:{self.name}"


#: The type of an ``audit`` callback.
AuditCallback = Callable[[AuditEvent], object]


class Auditor:
    """One plugin's audit trail: counts and the optional callback.

    Thread-safety: most events are recorded under the plugin's call lock (a call runs
    one at a time per plugin), but a :class:`~wasmplug.PluginBusy` is recorded by the
    waiting caller without it, so the counter has a lock of its own.
    """

    __slots__ = ("_lock", "callback", "counts", "plugin")

    def __init__(self, plugin: str, callback: AuditCallback | None = None) -> None:
        self.plugin = plugin
        self.callback = callback
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, event: AuditEvent) -> None:
        """Counts ``event`` and offers it to the callback. A callback that raises is
        logged (``wasmplug.policy``, ERROR, with the traceback) and otherwise
        ignored: it never changes the call's outcome."""
        with self._lock:
            self.counts[event.key] += 1
        callback = self.callback
        if callback is None:
            return
        try:
            callback(event)
        except Exception:
            _logger.exception(
                "plugin %r: the audit callback failed on %s",
                self.plugin,
                event.key,
                extra={"plugin": self.plugin},
            )

    def snapshot(self) -> Mapping[str, int]:
        """A copy of the counts, keyed ``"<kind>:<name>"``."""
        with self._lock:
            return dict(self.counts)
