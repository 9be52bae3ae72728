"""The host side of the ``wasmplug:host@0.1.0`` capability interfaces.

Each capability function receives the calling plugin's :class:`HostContext` and the
lifted arguments, checks the plugin's grants, and returns the WIT result as
:class:`~wasmplug.Ok` / :class:`~wasmplug.Err`. A denial is an ``error.denied`` value
for the guest, never a trap, and is counted and logged with the plugin's name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ._bindings import Err, Ok
from ._kv import KvStore, QuotaExceeded
from ._policy import Grants

__all__ = ["CAPABILITIES", "HOST_INTERFACES", "HostContext"]

LOG = "wasmplug:host/log@0.1.0"
CONFIG = "wasmplug:host/config@0.1.0"
KV = "wasmplug:host/kv@0.1.0"
HOST_INTERFACES = (LOG, CONFIG, KV)

#: Which grant each interface needs, for load-time reports.
GRANT_OF = {LOG: "log", CONFIG: "config", KV: "kv"}

#: Longest log message kept, in bytes of UTF-8; longer ones are cut and marked.
MAX_LOG_MESSAGE = 16 * 1024
#: Longest key accepted by the kv interface, in bytes of UTF-8.
MAX_KV_KEY = 1024

TRACE = 5
_LEVELS = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}

policy_logger = logging.getLogger("wasmplug.policy")


class HostContext:
    """Per-plugin state that the capability functions see.

    Attributes:
        plugin: The plugin's name.
        grants: Its grants.
        logger: The logger its ``log`` records go to (``wasmplug.plugin.<name>``).
        host_calls: Capability calls during the current call into the plugin.
        denials: Denied capability calls during the current call.
    """

    def __init__(
        self,
        *,
        plugin: str,
        grants: Grants,
        kv_store: KvStore,
        error_cases: dict[str, type],
    ) -> None:
        self.plugin = plugin
        self.grants = grants
        self.kv_store = kv_store
        self.kv_namespace = (grants.kv.namespace if grants.kv else None) or plugin
        self.logger = logging.getLogger(f"wasmplug.plugin.{plugin}")
        self._error_cases = error_cases
        self.host_calls = 0
        self.denials = 0

    def error(self, case: str, message: str) -> Err[Any]:
        """Returns ``err(error.<case>(message))`` for the guest."""
        return Err(self._error_cases[case](message))

    def deny(self, capability: str, what: str) -> Err[Any]:
        """Counts, logs and returns a denial of ``what`` under ``capability``."""
        self.denials += 1
        policy_logger.warning(
            "plugin %r denied: %s", self.plugin, what, extra={"plugin": self.plugin}
        )
        return self.error("denied", f"{capability}: {what}")


# -- log -------------------------------------------------------------------------------


def _log(ctx: HostContext, level: Any, message: str) -> Ok[None] | Err[Any]:
    if not ctx.grants.log:
        return ctx.deny("log", "logging is not granted")
    data = message.encode()
    if len(data) > MAX_LOG_MESSAGE:
        message = data[:MAX_LOG_MESSAGE].decode(errors="ignore") + (
            f" [... cut: {len(data)} bytes in all]"
        )
    ctx.logger.log(_LEVELS[level.value], "%s", message, extra={"plugin": ctx.plugin})
    return Ok(None)


# -- config ----------------------------------------------------------------------------


def _config_get(ctx: HostContext, key: str) -> Ok[str | None] | Err[Any]:
    config = ctx.grants.config
    if config is None:
        return ctx.deny("config", f"configuration is not granted (key {key!r})")
    return Ok(config.get(key))


def _config_keys(ctx: HostContext) -> Ok[list[str]] | Err[Any]:
    config = ctx.grants.config
    if config is None:
        return ctx.deny("config", "configuration is not granted")
    return Ok(sorted(config))


# -- kv --------------------------------------------------------------------------------


def _kv_refusal(ctx: HostContext, op: str, key: str) -> Err[Any] | None:
    """The error for a kv operation on ``key`` that must not proceed, or ``None``: denied
    when kv is not granted, invalid for an empty or over-long key."""
    if ctx.grants.kv is None:
        return ctx.deny("kv", f"key-value storage is not granted ({op} {key!r})")
    if not key:
        return ctx.error("invalid", "kv: the key is empty")
    if len(key.encode()) > MAX_KV_KEY:
        return ctx.error("invalid", f"kv: the key is longer than {MAX_KV_KEY} bytes")
    return None


def _kv_get(ctx: HostContext, key: str) -> Ok[bytes | None] | Err[Any]:
    refusal = _kv_refusal(ctx, "get", key)
    if refusal is not None:
        return refusal
    return Ok(ctx.kv_store.get(ctx.kv_namespace, key))


def _kv_set(ctx: HostContext, key: str, value: bytes) -> Ok[None] | Err[Any]:
    refusal = _kv_refusal(ctx, "set", key)
    if refusal is not None:
        return refusal
    assert ctx.grants.kv is not None
    try:
        ctx.kv_store.set(ctx.kv_namespace, key, value, quota_bytes=ctx.grants.kv.quota_bytes)
    except QuotaExceeded as e:
        policy_logger.warning(
            "plugin %r: kv quota exceeded: %s", ctx.plugin, e, extra={"plugin": ctx.plugin}
        )
        return ctx.error("quota-exceeded", f"kv: {e}")
    return Ok(None)


def _kv_delete(ctx: HostContext, key: str) -> Ok[bool] | Err[Any]:
    refusal = _kv_refusal(ctx, "delete", key)
    if refusal is not None:
        return refusal
    return Ok(ctx.kv_store.delete(ctx.kv_namespace, key))


def _kv_list_keys(ctx: HostContext, prefix: str) -> Ok[list[str]] | Err[Any]:
    if ctx.grants.kv is None:
        return ctx.deny("kv", "key-value storage is not granted (list-keys)")
    return Ok(ctx.kv_store.keys(ctx.kv_namespace, prefix))


HostImpl = Callable[..., Any]

#: interface -> function name -> implementation.
CAPABILITIES: dict[str, dict[str, HostImpl]] = {
    LOG: {"log": _log},
    CONFIG: {"get": _config_get, "keys": _config_keys},
    KV: {
        "get": _kv_get,
        "set": _kv_set,
        "delete": _kv_delete,
        "list-keys": _kv_list_keys,
    },
}


def is_granted(interface: str, grants: Grants) -> bool:
    """Whether ``grants`` allow any use of a ``wasmplug:host`` interface."""
    if interface == LOG:
        return grants.log
    if interface == CONFIG:
        return grants.config is not None
    if interface == KV:
        return grants.kv is not None
    return False
