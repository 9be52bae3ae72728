"""Key-value storage behind the ``wasmplug:host/kv`` capability."""

from __future__ import annotations

import threading
from typing import Any, Protocol, runtime_checkable

import cbor2

from ._exceptions import KvQuotaExceeded

__all__ = ["ENTRY_OVERHEAD", "KvNamespace", "KvStore", "MemoryKvStore"]

#: Bytes each entry counts against a namespace's quota besides its key and value: the
#: host's bookkeeping. Without it, a 1 MiB quota would admit a million one-byte keys
#: and cost the host about 150 MiB in :class:`MemoryKvStore` (a dict entry, a ``str``
#: and a ``bytes`` object each); with it, such a namespace holds at most 16,384
#: entries and the host memory stays within a few times the quota.
ENTRY_OVERHEAD = 64


@runtime_checkable
class KvStore(Protocol):
    """Storage for plugin key-value namespaces. Implementations must be thread-safe.

    Sizes are in bytes: a key counts its UTF-8 length, a value its length, and every
    entry :data:`ENTRY_OVERHEAD` bytes more for the host's bookkeeping, so that a quota
    also bounds the number of entries (and the host memory behind many tiny ones).
    """

    def get(self, namespace: str, key: str) -> bytes | None:
        """Returns the value under ``key``, or ``None``."""
        ...

    def set(self, namespace: str, key: str, value: bytes, *, quota_bytes: int) -> None:
        """Stores ``value`` under ``key``.

        Raises:
            KvQuotaExceeded: the namespace would exceed ``quota_bytes``; nothing
                changed.
        """
        ...

    def delete(self, namespace: str, key: str) -> bool:
        """Removes ``key``; returns whether it existed."""
        ...

    def keys(self, namespace: str, prefix: str = "") -> list[str]:
        """Returns the keys starting with ``prefix``, sorted."""
        ...

    def size(self, namespace: str) -> int:
        """Returns the namespace's size in bytes (keys plus values plus
        :data:`ENTRY_OVERHEAD` per entry)."""
        ...


class MemoryKvStore:
    """An in-process :class:`KvStore` (a dict per namespace, guarded by one lock).

    Data lives as long as the object: share one between plugins (each still sees only
    its own namespace) or give each plugin its own.
    """

    #: See :data:`ENTRY_OVERHEAD`.
    ENTRY_OVERHEAD = ENTRY_OVERHEAD

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
            KvQuotaExceeded: the namespace would exceed ``quota_bytes``; nothing
                changed.
        """
        key_size = len(key.encode()) + ENTRY_OVERHEAD
        with self._lock:
            ns = self._data.setdefault(namespace, {})
            size = self._sizes.get(namespace, 0)
            old = ns.get(key)
            if old is not None:
                size -= key_size + len(old)
            new_size = size + key_size + len(value)
            if new_size > quota_bytes:
                raise KvQuotaExceeded(
                    namespace=namespace, size_bytes=new_size, quota_bytes=quota_bytes
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
            self._sizes[namespace] -= len(key.encode()) + ENTRY_OVERHEAD + len(old)
            return True

    def keys(self, namespace: str, prefix: str = "") -> list[str]:
        """Returns the keys of ``namespace`` starting with ``prefix``, sorted."""
        with self._lock:
            return sorted(k for k in self._data.get(namespace, {}) if k.startswith(prefix))

    def size(self, namespace: str) -> int:
        """Returns the size of ``namespace`` in bytes (keys plus values plus
        :data:`ENTRY_OVERHEAD` per entry)."""
        with self._lock:
            return self._sizes.get(namespace, 0)


class KvNamespace:
    """The host's view of one plugin's kv namespace, with typed CBOR access.

    The guest SDK stores structured values as CBOR (RFC 8949; ``kv::set_cbor`` in
    ``wasmplug-guest``); :meth:`get_cbor` and :meth:`set_cbor` read and write them with
    ``cbor2`` on the host, so the host can inspect, seed or migrate a plugin's state.
    Get one from :attr:`Plugin.kv <wasmplug.Plugin.kv>`, or build one over any store.

    Args:
        store: The storage.
        namespace: The namespace (a plugin's is its ``KvGrant.namespace`` or its name).
        quota_bytes: The quota :meth:`set` enforces, in bytes (keys plus values plus
            :data:`ENTRY_OVERHEAD` per entry).
    """

    def __init__(self, store: KvStore, namespace: str, *, quota_bytes: int) -> None:
        self.store = store
        self.namespace = namespace
        self.quota_bytes = quota_bytes

    def get(self, key: str) -> bytes | None:
        """Returns the bytes under ``key``, or ``None``."""
        return self.store.get(self.namespace, key)

    def set(self, key: str, value: bytes) -> None:
        """Stores ``value`` under ``key``.

        Raises:
            KvQuotaExceeded: the namespace would exceed its quota; nothing changed.
        """
        self.store.set(self.namespace, key, bytes(value), quota_bytes=self.quota_bytes)

    def delete(self, key: str) -> bool:
        """Removes ``key``; returns whether it existed."""
        return self.store.delete(self.namespace, key)

    def keys(self, prefix: str = "") -> list[str]:
        """Returns the keys starting with ``prefix``, sorted."""
        return self.store.keys(self.namespace, prefix)

    def get_cbor(self, key: str) -> Any:
        """Returns the CBOR value under ``key`` decoded (maps as ``dict``, arrays as
        ``list``, byte strings as ``bytes``), or ``None`` when the key is absent.

        Raises:
            ValueError: the stored bytes are not one well-formed CBOR item (the
                ``cbor2`` error is the ``__cause__``).
        """
        data = self.get(key)
        if data is None:
            return None
        try:
            return cbor2.loads(data)
        except cbor2.CBORDecodeError as e:
            raise ValueError(
                f"kv {self.namespace!r}/{key!r}: not a CBOR item ({len(data)} bytes): {e}"
            ) from e

    def set_cbor(self, key: str, value: Any) -> None:
        """Stores ``value`` CBOR-encoded under ``key``, readable by the guest SDK's
        ``kv::get_cbor``.

        Raises:
            TypeError: ``value`` holds a type CBOR cannot encode (the ``cbor2`` error
                is the ``__cause__``).
            KvQuotaExceeded: the namespace would exceed its quota; nothing changed.
        """
        try:
            data = cbor2.dumps(value)
        except cbor2.CBOREncodeError as e:
            raise TypeError(f"kv {self.namespace!r}/{key!r}: cannot encode as CBOR: {e}") from e
        self.set(key, data)

    def __repr__(self) -> str:
        return f"<KvNamespace {self.namespace!r}>"
