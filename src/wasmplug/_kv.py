"""Key-value storage behind the ``wasmplug:host/kv`` capability."""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

__all__ = ["KvStore", "MemoryKvStore", "QuotaExceeded"]


class QuotaExceeded(Exception):
    """A write would take a namespace past its quota."""


@runtime_checkable
class KvStore(Protocol):
    """Storage for plugin key-value namespaces. Implementations must be thread-safe.

    Sizes are in bytes: a key counts its UTF-8 length, a value its length.
    """

    def get(self, namespace: str, key: str) -> bytes | None:
        """Returns the value under ``key``, or ``None``."""
        ...

    def set(self, namespace: str, key: str, value: bytes, *, quota_bytes: int) -> None:
        """Stores ``value`` under ``key``.

        Raises:
            QuotaExceeded: the namespace would exceed ``quota_bytes``; nothing changed.
        """
        ...

    def delete(self, namespace: str, key: str) -> bool:
        """Removes ``key``; returns whether it existed."""
        ...

    def keys(self, namespace: str, prefix: str = "") -> list[str]:
        """Returns the keys starting with ``prefix``, sorted."""
        ...

    def size(self, namespace: str) -> int:
        """Returns the namespace's size in bytes (keys plus values)."""
        ...


class MemoryKvStore:
    """An in-process :class:`KvStore` (a dict per namespace, guarded by one lock).

    Data lives as long as the object: share one between plugins (each still sees only
    its own namespace) or give each plugin its own.
    """

    def __init__(self) -> None:
        self._data: dict[str, dict[str, bytes]] = {}
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, namespace: str, key: str) -> bytes | None:
        """Returns the value under ``key`` in ``namespace``, or ``None``."""
        with self._lock:
            return self._data.get(namespace, {}).get(key)

    def set(self, namespace: str, key: str, value: bytes, *, quota_bytes: int) -> None:
        """Stores ``value`` under ``key``; see :meth:`KvStore.set`.

        Raises:
            QuotaExceeded: the namespace would exceed ``quota_bytes``; nothing changed.
        """
        key_size = len(key.encode())
        with self._lock:
            ns = self._data.setdefault(namespace, {})
            size = self._sizes.get(namespace, 0)
            old = ns.get(key)
            if old is not None:
                size -= key_size + len(old)
            new_size = size + key_size + len(value)
            if new_size > quota_bytes:
                raise QuotaExceeded(
                    f"namespace {namespace!r} would hold {new_size} bytes, quota is {quota_bytes}"
                )
            ns[key] = bytes(value)
            self._sizes[namespace] = new_size

    def delete(self, namespace: str, key: str) -> bool:
        """Removes ``key`` from ``namespace``; returns whether it existed."""
        with self._lock:
            ns = self._data.get(namespace, {})
            old = ns.pop(key, None)
            if old is None:
                return False
            self._sizes[namespace] -= len(key.encode()) + len(old)
            return True

    def keys(self, namespace: str, prefix: str = "") -> list[str]:
        """Returns the keys of ``namespace`` starting with ``prefix``, sorted."""
        with self._lock:
            return sorted(k for k in self._data.get(namespace, {}) if k.startswith(prefix))

    def size(self, namespace: str) -> int:
        """Returns the size of ``namespace`` in bytes (keys plus values)."""
        with self._lock:
            return self._sizes.get(namespace, 0)
