"""What a plugin may do (:class:`Grants`) and how much it may use (:class:`Limits`).

Both are frozen, keyword-only ``attrs`` classes: hashable, comparable, picklable, and
convertible to and from plain JSON-compatible dicts (:meth:`Policy.to_dict`,
:meth:`Policy.from_dict`) so a policy can be stored next to a tenant's plugin.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs

from ._exceptions import PolicyError

__all__ = [
    "Determinism",
    "FrozenMap",
    "Grants",
    "HttpGrant",
    "HttpRule",
    "KvGrant",
    "Limits",
    "Policy",
    "Preopen",
    "policy_from_mapping",
]


class FrozenMap(Mapping[str, str]):
    """An immutable, hashable, picklable ``str -> str`` mapping (config values, env vars)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        data = dict(items or {})
        for k, v in data.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise PolicyError(
                    f"expected str keys and values, found {type(k).__name__} {k!r}: "
                    f"{type(v).__name__} {v!r}"
                )
        self._items = tuple(sorted(data.items()))

    def __getitem__(self, key: str) -> str:
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._items == other._items
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({dict(self._items)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenMap, (dict(self._items),))


def _frozen_map(value: Mapping[str, str] | None) -> FrozenMap:
    return value if isinstance(value, FrozenMap) else FrozenMap(value)


def _preopens(value: Iterable[Preopen]) -> tuple[Preopen, ...]:
    return tuple(value)


def _optional_frozen_map(value: Mapping[str, str] | None) -> FrozenMap | None:
    return None if value is None else _frozen_map(value)


def _path_text(path: str | os.PathLike[str]) -> str:
    """A path as text (``Path`` objects accepted)."""
    return os.fspath(path)


@attrs.frozen(kw_only=True)
class Preopen:
    """A host directory made visible to the guest through WASI.

    Attributes:
        host_path: The directory on the host (absolute, or relative to the current
            directory when the plugin is loaded). Must exist when the plugin loads.
        guest_path: Where the guest sees it; an absolute path such as ``"/data"``.
        writable: ``False`` (the default) gives read-only access to the directory and
            its files; ``True`` lets the guest create, write and delete inside it.
            The guest can never reach outside ``host_path`` (WASI path resolution
            refuses ``..`` escapes and absolute symlinks).
        max_bytes: For a writable preopen, the most the directory tree may hold, in
            bytes: the sizes of its regular files plus 4,096 bytes for each entry
            (file, directory, symbolic link; ``wasmplug._files.ENTRY_BYTES``), so
            many small files count too. What is there already when the plugin
            loads counts: grant a directory of the plugin's own. ``None`` disables
            it; ignored for read-only preopens. Default 64 MiB. Breach: the guest's
            write is refused with ``EDQUOT`` on the fast path, the call fails with
            :class:`~wasmplug.DiskLimitExceeded` on the component path (checked
            after every call and every 50 ms slice of one); see "Open files and
            disk space" in ``docs/security.md``.

    .. versionchanged:: Unreleased
        ``max_bytes`` added.
    """

    host_path: str = attrs.field(converter=_path_text)
    guest_path: str = attrs.field()
    writable: bool = False
    max_bytes: int | None = attrs.field(default=64 << 20)

    @max_bytes.validator
    def _check_max_bytes(self, _: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            raise PolicyError(f"Preopen.max_bytes must be an int >= 0 or None, found {value!r}")

    @guest_path.validator
    def _check_guest_path(self, _: attrs.Attribute[str], value: str) -> None:
        if not isinstance(value, str) or not value.startswith("/"):
            raise PolicyError(f"Preopen.guest_path must be an absolute path, found {value!r}")


@attrs.frozen(kw_only=True)
class KvGrant:
    """Access to a key-value namespace of bytes (the ``wasmplug:host/kv`` interface).

    Attributes:
        quota_bytes: Largest total size of the namespace in bytes: keys plus values,
            plus 64 bytes per entry for the host's bookkeeping (so the quota also
            bounds the number of entries; ``wasmplug._kv.ENTRY_OVERHEAD``).
            A ``set`` that would exceed it fails with ``quota-exceeded`` and changes
            nothing. Default 1 MiB.
        namespace: The namespace in the host's key-value store; ``None`` (default) uses
            the plugin's name, so two plugins share data only when the host says so.
    """

    quota_bytes: int = attrs.field(default=1 << 20)
    namespace: str | None = None

    @quota_bytes.validator
    def _check_quota(self, _: attrs.Attribute[int], value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise PolicyError(f"KvGrant.quota_bytes must be an int >= 0, found {value!r}")


_HOST_PATTERN = re.compile(
    r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$"
)
_METHOD = re.compile(r"^[A-Z][A-Z0-9-]*$")


def _methods(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    return tuple(sorted({str(m).upper() for m in value}))


def _host_pattern(value: str) -> str:
    return value.lower() if isinstance(value, str) else value


@attrs.frozen(kw_only=True)
class HttpRule:
    """One entry of the outbound HTTP allow-list (:attr:`HttpGrant.allow`).

    A request matches a rule when its scheme, host, port and method all match.

    Attributes:
        host: A host name (``"api.example.com"``, matched exactly, case-insensitive),
            a wildcard ``"*.example.com"`` (any name ending in ``.example.com``, at any
            depth, but not ``example.com`` itself), or an IP address literal
            (``"127.0.0.1"``, ``"::1"``).
        scheme: ``"https"`` (default) or ``"http"``.
        port: The TCP port; ``None`` (default) means the scheme's default port only
            (443 for https, 80 for http).
        methods: Methods allowed, upper case. Default ``("GET",)``.
    """

    host: str = attrs.field(converter=_host_pattern)
    scheme: str = attrs.field(default="https")
    port: int | None = attrs.field(default=None)
    methods: tuple[str, ...] = attrs.field(default=("GET",), converter=_methods)

    @host.validator
    def _check_host(self, _: attrs.Attribute[str], value: str) -> None:
        if not isinstance(value, str) or not (_HOST_PATTERN.match(value) or _is_ip(value)):
            raise PolicyError(
                f"HttpRule.host must be a host name, '*.<domain>' or an IP address, found {value!r}"
            )

    @scheme.validator
    def _check_scheme(self, _: attrs.Attribute[str], value: str) -> None:
        if value not in ("http", "https"):
            raise PolicyError(f"HttpRule.scheme must be 'http' or 'https', found {value!r}")

    @port.validator
    def _check_port(self, _: attrs.Attribute[int | None], value: int | None) -> None:
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536
        ):
            raise PolicyError(f"HttpRule.port must be None or 1..65535, found {value!r}")

    @methods.validator
    def _check_methods(self, _: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
        if not value or not all(_METHOD.match(m) for m in value):
            raise PolicyError(f"HttpRule.methods must be non-empty method names, found {value!r}")

    @property
    def effective_port(self) -> int:
        """The port matched: :attr:`port`, or the scheme's default."""
        return self.port if self.port is not None else (443 if self.scheme == "https" else 80)

    def matches_host(self, host: str) -> bool:
        """Whether ``host`` (lower case, no brackets) matches :attr:`host`."""
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and len(host) > len(self.host) - 1
        if _is_ip(self.host) and _is_ip(host):
            import ipaddress

            return ipaddress.ip_address(self.host) == ipaddress.ip_address(host)
        return host == self.host


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _rules(value: Iterable[HttpRule]) -> tuple[HttpRule, ...]:
    return tuple(value)


def _nonneg(name: str) -> Any:
    def check(_: Any, __: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise PolicyError(f"HttpGrant.{name} must be an int >= 0, found {value!r}")

    return check


@attrs.frozen(kw_only=True)
class HttpGrant:
    """Outbound HTTP (the ``wasmplug:host/http`` interface); see ``docs/http.md``.

    Attributes:
        allow: The allow-list: a request (and every redirect it leads to) must match
            one :class:`HttpRule`. Empty denies every request.
        allow_private: Allow addresses in the loopback (127.0.0.0/8, ::1), private
            (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16,
            fe80::/10), shared (100.64/10) and other non-global ranges. ``False``
            (default) refuses a request whose host resolves to any of them, so a
            public name cannot be pointed at the host's own network. Unspecified and
            multicast addresses are refused always.
        max_request_bytes: Largest request body, in bytes. Default 1 MiB. Breach:
            ``http-error.too-large``.
        max_response_bytes: Largest response (header fields plus the body as
            received, never decompressed), in bytes. Reading stops at the cap.
            Default 4 MiB. Breach:
            ``http-error.too-large``.
        timeout_ms: Longest time for one request including redirects, in
            milliseconds; never longer than what is left of the call's deadline.
            Default 10,000 ms. Breach: ``http-error.timeout`` (or
            :class:`~wasmplug.DeadlineExceeded` when the call's deadline passed).
        max_redirects: Redirects followed per request, each checked against
            :attr:`allow` and the address ranges. Default 5. One more is denied.
        ca_file: A PEM file of CA certificates that ``https`` servers' certificates
            are verified against, instead of the default trust store (``certifi``'s
            bundle); a ``Path`` is accepted and kept as text. Read on the first
            request that needs it (a file that cannot be read fails that request
            with ``http-error.connection``). Certificate verification, host name
            included, is always on: there is no setting to turn it off.

    .. versionchanged:: Unreleased
        ``ca_file`` added.
    """

    allow: tuple[HttpRule, ...] = attrs.field(default=(), converter=_rules)
    allow_private: bool = False
    max_request_bytes: int = attrs.field(default=1 << 20, validator=_nonneg("max_request_bytes"))
    max_response_bytes: int = attrs.field(default=4 << 20, validator=_nonneg("max_response_bytes"))
    timeout_ms: int = attrs.field(default=10_000, validator=_nonneg("timeout_ms"))
    max_redirects: int = attrs.field(default=5, validator=_nonneg("max_redirects"))
    ca_file: str | None = attrs.field(default=None, converter=attrs.converters.optional(_path_text))

    @allow.validator
    def _check_allow(
        self, _: attrs.Attribute[tuple[HttpRule, ...]], value: tuple[Any, ...]
    ) -> None:
        for rule in value:
            if not isinstance(rule, HttpRule):
                raise PolicyError(f"HttpGrant.allow must hold HttpRule values, found {rule!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict; :meth:`from_dict` reverses it."""
        data = attrs.asdict(self, recurse=False)
        data["allow"] = [{**attrs.asdict(r), "methods": list(r.methods)} for r in self.allow]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HttpGrant:
        """Builds a grant from :meth:`to_dict` output (``TypeError`` on unknown keys)."""
        data = dict(data)
        allow = tuple(HttpRule(**r) for r in data.pop("allow", ()))
        return cls(allow=allow, **data)


_ENV_NAME = re.compile(r"^[^=\0]+$")


@attrs.frozen(kw_only=True)
class Grants:
    """The capabilities a plugin gets. Nothing is granted by default.

    A request for something not granted reaches the guest as a typed ``denied`` error
    (``wasmplug:host`` interfaces) or as a missing file or variable (WASI), is counted
    in :attr:`CallStats.denials <wasmplug.CallStats.denials>` where the host sees it,
    and is logged on the ``wasmplug`` logger with the plugin's name.

    Attributes:
        log: Allow ``wasmplug:host/log``; records go to the Python logger
            ``wasmplug.plugin.<name>``.
        config: Values for ``wasmplug:host/config``; ``None`` (default) denies the
            interface, ``{}`` grants it with no keys.
        kv: Access to ``wasmplug:host/kv``; ``None`` denies it.
        files: WASI filesystem preopens. Empty by default: the guest sees no files.
        env: Environment variables the guest sees through WASI. Empty by default;
            the host's own environment is never inherited.
        stdio: Forward the guest's stdout/stderr lines to its logger (INFO/WARNING).
            Otherwise stdout is discarded; the last 4 KiB of stderr are kept for
            trap reports either way.
        http: Outbound HTTP (``wasmplug:host/http``); ``None`` denies it.
    """

    log: bool = False
    config: FrozenMap | None = attrs.field(default=None, converter=_optional_frozen_map)
    kv: KvGrant | None = None
    files: tuple[Preopen, ...] = attrs.field(default=(), converter=_preopens)
    env: FrozenMap = attrs.field(factory=FrozenMap, converter=_frozen_map)
    stdio: bool = False
    http: HttpGrant | None = None

    @files.validator
    def _check_files(self, _: attrs.Attribute[tuple[Preopen, ...]], value: tuple[Any, ...]) -> None:
        for p in value:
            if not isinstance(p, Preopen):
                raise PolicyError(f"Grants.files must hold Preopen values, found {p!r}")
        guests = [p.guest_path for p in value]
        if len(set(guests)) != len(guests):
            raise PolicyError(f"Grants.files maps one guest path twice: {guests}")

    @env.validator
    def _check_env(self, _: attrs.Attribute[FrozenMap], value: FrozenMap) -> None:
        for name in value:
            if not _ENV_NAME.match(name):
                raise PolicyError(f"invalid environment variable name {name!r}")


def _positive(name: str) -> Any:
    def check(_: Any, __: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise PolicyError(f"Limits.{name} must be a positive int or None, found {value!r}")

    return check


def _wait(name: str) -> Any:
    def check(_: Any, __: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise PolicyError(f"Limits.{name} must be an int >= 0 or None, found {value!r}")

    return check


def _count(name: str) -> Any:
    def check(_: Any, __: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise PolicyError(f"Limits.{name} must be a positive int, found {value!r}")

    return check


@attrs.frozen(kw_only=True)
class Limits:
    """Resource limits, enforced on every call. ``None`` disables a limit.

    The defaults are finite so that a plugin loaded without thinking about limits
    still cannot hang or exhaust the host.

    Attributes:
        fuel: Fuel units per call (about one per WebAssembly instruction; wasmtime
            ``consume_fuel``). Default 1,000,000,000. Breach:
            :class:`~wasmplug.FuelExhausted`.
        memory_bytes: Ceiling on all of the plugin's linear memories together, in
            bytes (wasmtime ``StoreLimits``: each of the at most ``memories`` memories
            may hold ``memory_bytes // memories``). ``memory.grow`` past it fails
            inside the guest. Default 64 MiB. Breach:
            :class:`~wasmplug.MemoryLimitExceeded` when the guest aborts because of
            it; :class:`~wasmplug.InstantiationError` when the plugin's initial memory
            is already larger.
        deadline_ms: Wall-clock time per call, in milliseconds, enforced by epoch
            interruption with the engine's tick as granularity (a late ticker catches
            up). Host functions count: each host call checks the deadline first, and
            one that ends past it fails the call. WASI clock waits (sleeps) are
            refused: past the deadline as a breach, shorter ones with
            :class:`~wasmplug.WasiRefusedError`. Default 1,000 ms. Breach:
            :class:`~wasmplug.DeadlineExceeded`. Margins measured under load: the
            "Deadlines" section of ``docs/policy.md``.
        memories: Linear memories the plugin may have (over all its core instances).
            Default 1, which a Rust ``wasm32-wasip2`` component needs; a core module
            componentized with the WASI preview-1 adapter may need 2. Breach at
            load: :class:`~wasmplug.InstantiationError`.
        tables: Tables the plugin may have. Default 10. Breach at load:
            :class:`~wasmplug.InstantiationError`.
        instances: Core instances the plugin may create (a component holds several:
            its modules and the glue between them). Default 10. Breach at load:
            :class:`~wasmplug.InstantiationError`.
        table_elements: Elements one table may hold. ``table.grow`` past it fails
            inside the guest. Default 20,000 (a Rust plugin's function table holds a
            few hundred). Breach at load: :class:`~wasmplug.InstantiationError`.
        resource_handles: Handles to host-defined resources (objects of the host's
            resource classes) that one instance may hold at once: the size of its
            handle table. A handle is released when the guest drops it; all are
            released when the instance is replaced. On the core-module fast path
            the table also holds the guest's handles to the resources it exports
            (wasmtime keeps those on the component path), and they count too.
            Default 10,000. Breach: :class:`~wasmplug.HandleLimitExceeded`, and the
            plugin continues on a fresh instance.
        host_calls: Host function calls (capabilities and the host's own imports)
            one call may make. Default 10,000. Breach:
            :class:`~wasmplug.HostCallsExceeded`, and the plugin continues on a fresh
            instance.
        output_bytes: Size of a call's result, in bytes of its data (strings and
            ``list<u8>`` their length, other values their canonical-ABI width; see
            :class:`~wasmplug.OutputLimitExceeded`), measured before any Python
            value is built. Default 16 MiB. Breach:
            :class:`~wasmplug.OutputLimitExceeded`.
        log_records: Records one call may log through the granted ``log``
            capability. Default 1,000. Breach: :class:`~wasmplug.LogLimitExceeded`.
        log_bytes: Bytes of messages (UTF-8, before the 16 KiB cut of each record)
            one call may log through the granted ``log`` capability. Default 1 MiB.
            Breach: :class:`~wasmplug.LogLimitExceeded`.
        stdio_bytes: Bytes one call may write to WASI stdout and stderr together
            (counted whether or not ``Grants.stdio`` forwards them to the host's
            logs). Default 1 MiB. Breach: :class:`~wasmplug.StdioLimitExceeded`.
        open_files: Files and directories the guest may hold open at once through
            WASI (what it opened in its preopens; the preopens themselves and stdio
            do not count), over all the calls of one instance. Default 64. Breach:
            the open is refused with ``EMFILE`` on the fast path, exactly; on the
            component path the call fails with :class:`~wasmplug.FileLimitExceeded`
            (checked after every call and every 50 ms slice of one) and the
            instance, with every file it held, is replaced. See "Open files and disk
            space" in ``docs/security.md``.
        queue_ms: Longest time, in milliseconds, a call waits for the plugin while it
            runs another call (a plugin runs one call at a time; waiting callers are
            not served first come, first served). ``0`` never waits; ``None`` waits
            without bound. Default 10,000 ms: ten calls that each run to the default
            deadline. It does not follow ``deadline_ms``: a host that raises the
            deadline and shares a plugin between threads raises this too. Breach:
            :class:`~wasmplug.PluginBusy`, and nothing of the call runs.
    """

    fuel: int | None = attrs.field(default=1_000_000_000, validator=_positive("fuel"))
    memory_bytes: int | None = attrs.field(default=64 << 20, validator=_positive("memory_bytes"))
    deadline_ms: int | None = attrs.field(default=1_000, validator=_positive("deadline_ms"))
    memories: int = attrs.field(default=1, validator=_count("memories"))
    tables: int = attrs.field(default=10, validator=_count("tables"))
    instances: int = attrs.field(default=10, validator=_count("instances"))
    table_elements: int = attrs.field(default=20_000, validator=_count("table_elements"))
    resource_handles: int = attrs.field(default=10_000, validator=_count("resource_handles"))
    host_calls: int | None = attrs.field(default=10_000, validator=_positive("host_calls"))
    output_bytes: int | None = attrs.field(default=16 << 20, validator=_positive("output_bytes"))
    log_records: int | None = attrs.field(default=1_000, validator=_positive("log_records"))
    log_bytes: int | None = attrs.field(default=1 << 20, validator=_positive("log_bytes"))
    stdio_bytes: int | None = attrs.field(default=1 << 20, validator=_positive("stdio_bytes"))
    queue_ms: int | None = attrs.field(default=10_000, validator=_wait("queue_ms"))
    open_files: int | None = attrs.field(default=64, validator=_positive("open_files"))

    @property
    def memory_bytes_each(self) -> int | None:
        """The ceiling of each linear memory: ``memory_bytes // memories`` bytes."""
        return None if self.memory_bytes is None else self.memory_bytes // self.memories


@attrs.frozen(kw_only=True)
class Determinism:
    """Deterministic clocks and randomness for a plugin: wasmplug serves the WASI
    clock and random interfaces itself, so the same calls on a fresh instance see the
    same values on every run and every machine.

    - ``wasi:clocks/wall-clock`` ``now`` is always ``wall_clock_ns``; its resolution
      is 1 ns.
    - ``wasi:clocks/monotonic-clock`` ``now`` is always 0 (time does not pass; a guest
      waiting for it to pass runs into its deadline). Waits are refused as without
      determinism.
    - ``wasi:random/random``, ``wasi:random/insecure`` and ``insecure-seed`` draw from
      one generator seeded with ``seed`` when the instance is created (Python's
      ``random.Random``, whose integer seeding and ``getrandbits`` are stable across
      Python versions). A request for more than 1 MiB of random bytes traps.

    Not covered: the order and timing of host calls (the host's own functions are
    the host's to make deterministic), and anything a grant gives (files, kv).

    Attributes:
        seed: Seeds the random interfaces. Default 0.
        wall_clock_ns: The time of day the guest sees, in nanoseconds since the Unix
            epoch. Default 0 (1970-01-01T00:00:00Z).
    """

    seed: int = attrs.field(default=0)
    wall_clock_ns: int = attrs.field(default=0)

    @seed.validator
    def _check_seed(self, _: attrs.Attribute[int], value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise PolicyError(f"Determinism.seed must be an int, found {value!r}")

    @wall_clock_ns.validator
    def _check_wall_clock(self, _: attrs.Attribute[int], value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
            raise PolicyError(
                f"Determinism.wall_clock_ns must be an int in [0, 2**64), found {value!r}"
            )


#: The values of :attr:`Policy.mode`.
MODES = ("permissive", "strict")


def _check_mode(_: Any, __: attrs.Attribute[str], value: str) -> None:
    if value not in MODES:
        raise PolicyError(f"Policy.mode must be 'permissive' or 'strict', found {value!r}")


@attrs.frozen(kw_only=True)
class Policy:
    """Grants plus limits: everything the host decides about one plugin.

    Attributes:
        grants: What the plugin may access (nothing by default).
        limits: How much it may use per call.
        mode: How :func:`~wasmplug.load` treats a plugin whose capability manifest
            asks for more than ``grants`` give. ``"permissive"`` (default) loads it,
            reports the difference (:attr:`Plugin.capabilities
            <wasmplug.Plugin.capabilities>`, a WARNING log record) and denies the rest
            at run time; ``"strict"`` refuses it with
            :class:`~wasmplug.CapabilityError`. A plugin without a manifest requests
            nothing and loads in either mode.
        determinism: Fixed clocks and seeded randomness (:class:`Determinism`);
            ``None`` (default) gives the guest the host's real clocks and the
            operating system's randomness.
        instance_per_call: Run every call on a new instance, dropped after the call:
            nothing a call leaves in guest memory (or in guest resources) reaches the
            next one. For untrusted tenants; each call then pays an instantiation
            (tens of µs on the fast path, see ``docs/performance.md``), counted in
            its stats (``fresh_instance`` is always true). Default ``False``: an
            instance serves calls until one fails.
    """

    grants: Grants = attrs.field(factory=Grants)
    limits: Limits = attrs.field(factory=Limits)
    mode: str = attrs.field(default="permissive", validator=_check_mode)
    determinism: Determinism | None = attrs.field(default=None)
    instance_per_call: bool = attrs.field(default=False)

    @instance_per_call.validator
    def _check_per_call(self, _: attrs.Attribute[bool], value: object) -> None:
        if not isinstance(value, bool):
            raise PolicyError(f"Policy.instance_per_call must be a bool, found {value!r}")

    @determinism.validator
    def _check_determinism(self, _: attrs.Attribute[Determinism | None], value: object) -> None:
        if value is not None and not isinstance(value, Determinism):
            raise PolicyError(f"Policy.determinism must be a Determinism or None, found {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-compatible dict; :meth:`from_dict` reverses it."""
        g = self.grants
        return {
            "grants": {
                "log": g.log,
                "config": dict(g.config) if g.config is not None else None,
                "kv": attrs.asdict(g.kv) if g.kv is not None else None,
                "files": [attrs.asdict(p) for p in g.files],
                "env": dict(g.env),
                "stdio": g.stdio,
                "http": g.http.to_dict() if g.http is not None else None,
            },
            "limits": attrs.asdict(self.limits),
            "mode": self.mode,
            "determinism": attrs.asdict(self.determinism) if self.determinism else None,
            "instance_per_call": self.instance_per_call,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """Builds a policy from a dict: :meth:`to_dict` output, or the same shape
        written by hand with keys left out (they take their defaults). Policy files
        (:func:`~wasmplug.load_policies`) go through the same mapping.

        Raises:
            PolicyError: a key is unknown, a value has the wrong type, or is invalid;
                the message names the key (``grants.files[0].writable``), what was
                expected and what was found.
        """
        return policy_from_mapping(data, where="policy")


# -- the dict form ----------------------------------------------------------------------


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _fail(where: str, expected: str, value: object) -> PolicyError:
    return PolicyError(f"{where}: expected {expected}, found {_type_name(value)} {value!r:.80}")


def _table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, "a table (mapping)", value)
    return value


def _no_unknown(data: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    allowed = list(allowed)
    for key in data:
        if key not in allowed:
            raise PolicyError(
                f"{where}: unknown key {key!r} (expected one of: {', '.join(allowed)})"
            )


def _bool(value: object, where: str, _: str | None) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, "true or false", value)
    return value


def _strings(value: object, where: str) -> dict[str, str]:
    table = _table(value, where)
    for k, v in table.items():
        if not isinstance(v, str):
            raise _fail(f"{where}.{k}", "a string", v)
    return dict(table)


def _int(value: object, where: str, *, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(where, "an integer" + (" or null" if optional else ""), value)
    return value


def _config(value: object, where: str, _: str | None) -> FrozenMap | None:
    return None if value is None else FrozenMap(_strings(value, where))


def _env(value: object, where: str, _: str | None) -> FrozenMap:
    return FrozenMap(_strings(value, where))


def _kv(value: object, where: str, _: str | None) -> KvGrant | None:
    if value is None:
        return None
    table = _table(value, where)
    _no_unknown(table, ("quota_bytes", "namespace"), where)
    options: dict[str, Any] = {}
    if "quota_bytes" in table:
        options["quota_bytes"] = _int(table["quota_bytes"], f"{where}.quota_bytes", optional=False)
    if table.get("namespace") is not None:
        if not isinstance(table["namespace"], str):
            raise _fail(f"{where}.namespace", "a string", table["namespace"])
        options["namespace"] = table["namespace"]
    try:
        return KvGrant(**options)
    except PolicyError as e:
        raise PolicyError(f"{where}: {e}") from None


def _files(value: object, where: str, base: str | None) -> tuple[Preopen, ...]:
    if not isinstance(value, list | tuple):
        raise _fail(where, "an array of tables", value)
    preopens = []
    for i, raw in enumerate(value):
        at = f"{where}[{i}]"
        table = _table(raw, at)
        _no_unknown(table, ("host_path", "guest_path", "writable", "max_bytes"), at)
        for key in ("host_path", "guest_path"):
            if not isinstance(table.get(key), str):
                raise _fail(f"{at}.{key}", "a string (a path)", table.get(key))
        host = table["host_path"]
        if base is not None and not os.path.isabs(host):
            host = os.path.normpath(os.path.join(base, host))
        writable = _bool(table.get("writable", False), f"{at}.writable", None)
        options: dict[str, Any] = {}
        if "max_bytes" in table:
            options["max_bytes"] = _int(table["max_bytes"], f"{at}.max_bytes", optional=True)
        try:
            preopens.append(
                Preopen(
                    host_path=host, guest_path=table["guest_path"], writable=writable, **options
                )
            )
        except PolicyError as e:
            raise PolicyError(f"{at}: {e}") from None
    return tuple(preopens)


def _http(value: object, where: str, _: str | None) -> HttpGrant | None:
    if value is None:
        return None
    table = _table(value, where)
    _no_unknown(table, [f.name for f in attrs.fields(HttpGrant)], where)
    try:
        return HttpGrant.from_dict(table)
    except TypeError as e:
        raise PolicyError(f"{where}: {e}") from None
    except PolicyError as e:
        raise PolicyError(f"{where}: {e}") from None


#: How each key of a policy's ``grants`` table becomes a :class:`Grants` field:
#: ``convert(value, where, base_dir)``. A new grant adds one entry here and one line to
#: :meth:`Policy.to_dict`.
GRANT_FIELDS: dict[str, Callable[[Any, str, str | None], Any]] = {
    "log": _bool,
    "config": _config,
    "kv": _kv,
    "files": _files,
    "env": _env,
    "stdio": _bool,
    "http": _http,
}

#: The limits that may be ``None`` (disabled).
_OPTIONAL_LIMITS = (
    "fuel",
    "memory_bytes",
    "deadline_ms",
    "host_calls",
    "output_bytes",
    "log_records",
    "log_bytes",
    "stdio_bytes",
    "queue_ms",
    "open_files",
)


def policy_from_mapping(
    data: Mapping[str, Any], *, where: str, base_dir: str | None = None
) -> Policy:
    """Builds a :class:`Policy` from its dict form, checking every key and value.

    Args:
        data: ``{"grants": {...}, "limits": {...}, "mode": "strict"}``; every key
            optional.
        where: How errors name ``data`` (``"policy"``, ``"policies.toml:
            plugins.acme"``).
        base_dir: The directory relative ``files`` host paths are resolved against
            (a policy file's directory); ``None`` keeps them as given.

    Raises:
        PolicyError: a key is unknown, a value has the wrong type or is invalid.
    """
    data = _table(data, where)
    _no_unknown(data, ("grants", "limits", "mode", "determinism", "instance_per_call"), where)
    grants_in = _table(data.get("grants") or {}, f"{where}.grants")
    _no_unknown(grants_in, GRANT_FIELDS, f"{where}.grants")
    limits_in = _table(data.get("limits") or {}, f"{where}.limits")
    limit_names = [f.name for f in attrs.fields(Limits)]
    _no_unknown(limits_in, limit_names, f"{where}.limits")
    grants = {
        key: GRANT_FIELDS[key](value, f"{where}.grants.{key}", base_dir)
        for key, value in grants_in.items()
    }
    limits: dict[str, Any] = {
        key: _int(value, f"{where}.limits.{key}", optional=key in _OPTIONAL_LIMITS)
        for key, value in limits_in.items()
    }
    mode = data.get("mode", "permissive")
    if mode not in MODES:
        raise _fail(f"{where}.mode", "'permissive' or 'strict'", mode)
    determinism = None
    if data.get("determinism") is not None:
        table = _table(data["determinism"], f"{where}.determinism")
        _no_unknown(table, ("seed", "wall_clock_ns"), f"{where}.determinism")
        numbers: dict[str, Any] = {
            key: _int(value, f"{where}.determinism.{key}", optional=False)
            for key, value in table.items()
        }
        determinism = Determinism(**numbers)
    per_call = data.get("instance_per_call", False)
    if not isinstance(per_call, bool):
        raise _fail(f"{where}.instance_per_call", "true or false", per_call)
    try:
        return Policy(
            grants=Grants(**grants),
            limits=Limits(**limits),
            mode=mode,
            determinism=determinism,
            instance_per_call=per_call,
        )
    except PolicyError as e:
        raise PolicyError(f"{where}: {e}") from None
