"""The ``wasmplug:host/http`` capability: outbound HTTP checked against an allow-list.

A request goes through these steps, each refusing with a typed ``http-error``:

1. Parse and validate the request (absolute ``http``/``https`` URL, method token,
   no header the host sets itself, body within ``max_request_bytes``).
2. Match it against :attr:`HttpGrant.allow <wasmplug.HttpGrant.allow>` (scheme, host
   with ``*.`` wildcards, port, method).
3. Resolve the host name here (``getaddrinfo`` on a worker thread, waited for no
   longer than the request's time) and check *every* address against the refused
   ranges (loopback, private, link-local ... unless ``allow_private``).
4. Connect to a checked address itself (the next checked one when connecting
   fails), with the name kept in the ``Host`` header and as the TLS server name and
   the name the certificate is verified against, so a second resolution cannot
   rebind the name.
5. Stream the response, stopping at ``max_response_bytes``; follow redirects here,
   each hop going through steps 2-4 again.

The whole request, redirects and resolution included, gets ``min(timeout_ms, time
left before the call's deadline)``; the read timeout is shortened before every read
so that no request outlives it. ``httpx`` is imported on the first request.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import socket
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from ._bindings import Err, Ok
from ._policy import HttpGrant, _is_ip

if TYPE_CHECKING:
    import httpx

    from ._host import HostContext

__all__ = ["send"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Header fields the host sets itself; a guest setting one is ``invalid``.
_HOST_SET = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te"}
)
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


#: Resolutions waiting for the host's resolver, in the process and per plugin name.
#: A resolution the request stopped waiting for keeps its worker thread until the
#: resolver answers or gives up (``getaddrinfo`` cannot be cancelled): these bound the
#: threads a slow resolver can hold, and keep one plugin from holding them all.
MAX_RESOLVING = 32
MAX_RESOLVING_PER_PLUGIN = 4
_resolving_lock = threading.Lock()
_resolving: dict[str, int] = {}


@functools.cache
def _get_client(ca_file: str | None) -> httpx.Client:
    """The process's client for one trust setting: no redirects, no proxies or netrc
    from the environment (a proxy would bypass the address checks), certificates
    verified against ``ca_file`` or the default trust store."""
    import ssl

    import httpx

    verify: ssl.SSLContext | bool = True
    if ca_file is not None:
        verify = ssl.create_default_context(cafile=ca_file)
    # No keep-alive: every request connects afresh to the address just checked, and
    # the deadline watchdog owns that connection's socket.
    return httpx.Client(
        follow_redirects=False,
        trust_env=False,
        verify=verify,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


def _client(grant: HttpGrant) -> httpx.Client:
    try:
        return _get_client(grant.ca_file)
    except OSError as e:  # ssl.SSLError is an OSError too
        raise _Refused(
            "connection",
            f"cannot load HttpGrant.ca_file {grant.ca_file!r}: {type(e).__name__}: {e}",
        ) from None


class _Refused(Exception):
    """A request refused with ``http-error.<case>``."""

    def __init__(self, case: str, message: str, *, denial: bool = False) -> None:
        super().__init__(message)
        self.case = case
        self.denial = denial


class _Target:
    """A checked URL: its parts and the address to connect to."""

    __slots__ = ("addresses", "host", "port", "rest", "scheme", "url")

    def __init__(self, url: str, scheme: str, host: str, port: int, rest: str) -> None:
        self.url = url
        self.scheme = scheme
        self.host = host
        self.port = port
        self.rest = rest
        #: The checked addresses, in the resolver's order: the only ones connected to.
        self.addresses: list[str] = []


def _quote(text: str) -> str:
    from ._host import quote

    return quote(text)


def _parse(url: str) -> _Target:
    """Splits an absolute http(s) URL; ``_Refused('invalid')`` when it is not one."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise _Refused("invalid", f"malformed URL {_quote(url)}: {e}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        if not scheme:
            raise _Refused("invalid", f"expected an absolute http(s) URL, found {_quote(url)}")
        raise _Refused(
            "denied",
            f"scheme {scheme!r} is not allowed (only http and https can be granted)",
            denial=True,
        )
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _Refused("invalid", f"the URL {_quote(url)} has no host")
    if parts.username is not None or parts.password is not None:
        raise _Refused("invalid", f"the URL {_quote(url)} carries credentials; use a header")
    if port is None:
        port = 443 if scheme == "https" else 80
    rest = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    return _Target(url, scheme, host, port, rest)


def _grant_hint(target: _Target, method: str) -> str:
    port = (
        "" if target.port == (443 if target.scheme == "https" else 80) else f", port={target.port}"
    )
    return (
        f"grant HttpRule(host={target.host!r}, scheme={target.scheme!r}{port}, "
        f"methods=({method!r},))"
    )


def _check_rules(grant: HttpGrant, target: _Target, method: str) -> None:
    """Refuses (``denied``) a target no rule allows, saying what is missing."""
    hosts = [r for r in grant.allow if r.matches_host(target.host)]
    schemes = [r for r in hosts if r.scheme == target.scheme]
    ports = [r for r in schemes if r.effective_port == target.port]
    if any(method in r.methods for r in ports):
        return
    what = f"{method} {target.scheme}://{_quote(target.host)[1:-1]}:{target.port}"
    if not hosts:
        why = "the host is not in the allow-list"
    elif not schemes:
        why = f"scheme {target.scheme!r} is not allowed for this host"
    elif not ports:
        why = f"port {target.port} is not allowed for this host"
    else:
        why = f"method {method} is not allowed for this host"
    raise _Refused("denied", f"{what}: {why}; {_grant_hint(target, method)}", denial=True)


def _address_refusal(address: str, allow_private: bool) -> str | None:
    """Why ``address`` may not be connected to, or ``None``."""
    bare = address.split("%", maxsplit=1)[0]  # an IPv6 zone index is not part of it
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(bare)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast:
        return "an unspecified or multicast address, never allowed"
    if ip.is_global or allow_private:
        return None
    if ip.is_loopback:
        kind = "a loopback address"
    elif ip.is_link_local:
        kind = "a link-local address"
    elif ip.is_private:
        kind = "a private address"
    else:
        kind = "a non-global address"
    return f"{kind}; grant HttpGrant(allow_private=True) to allow it"


def _getaddrinfo(plugin: str, host: str, port: int, end: float) -> list[str]:
    """The addresses ``host`` resolves to, asked of the host's resolver on a worker
    thread and waited for until ``end`` (a ``perf_counter`` value) at most.

    Raises:
        _Refused: ``timeout`` when the resolver has not answered by ``end``;
            ``connection`` when it failed, or when :data:`MAX_RESOLVING` (or, for this
            plugin, :data:`MAX_RESOLVING_PER_PLUGIN`) resolutions are still pending.
    """
    with _resolving_lock:
        mine = _resolving.get(plugin, 0)
        if mine >= MAX_RESOLVING_PER_PLUGIN or sum(_resolving.values()) >= MAX_RESOLVING:
            pending = mine if mine >= MAX_RESOLVING_PER_PLUGIN else sum(_resolving.values())
            whose = "of this plugin " if mine >= MAX_RESOLVING_PER_PLUGIN else ""
            raise _Refused(
                "connection",
                f"cannot resolve {_quote(host)}: {pending} earlier resolutions {whose}"
                "are still waiting for the host's resolver",
            )
        _resolving[plugin] = mine + 1
    done = threading.Event()
    answer: list[Any] = []

    def release() -> None:
        with _resolving_lock:
            left = _resolving[plugin] - 1
            if left:
                _resolving[plugin] = left
            else:
                del _resolving[plugin]

    def work() -> None:
        try:
            answer.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as e:  # handed to the waiting request
            answer.append(e)
        finally:
            release()
            done.set()

    # A daemon thread: one the resolver holds must not keep the host from exiting.
    try:
        threading.Thread(target=work, name="wasmplug-resolve", daemon=True).start()
    except RuntimeError as e:  # the host cannot start another thread
        release()
        raise _Refused("connection", f"cannot resolve {_quote(host)}: {e}") from None
    if not done.wait(max(0.0, end - time.perf_counter())):
        raise _Refused("timeout", f"the request's time ran out resolving {_quote(host)}")
    result = answer[0]
    if isinstance(result, (OSError, UnicodeError)):
        raise _Refused("connection", f"cannot resolve {_quote(host)}: {result}")
    if isinstance(result, BaseException):
        raise result
    return list(dict.fromkeys(str(info[4][0]) for info in result))


def _resolve(plugin: str, grant: HttpGrant, target: _Target, end: float) -> None:
    """Resolves the host (by ``end``) and checks every address; sets
    ``target.addresses`` only when all of them may be connected to."""
    target.addresses = []
    if _is_ip(target.host):
        addresses = [target.host]
    else:
        addresses = _getaddrinfo(plugin, target.host, target.port, end)
        if not addresses:
            raise _Refused("connection", f"{_quote(target.host)} resolves to no address")
    for address in addresses:
        why = _address_refusal(address, grant.allow_private)
        if why is not None:
            raise _Refused(
                "denied",
                f"{_quote(target.host)} resolves to {address}, {why}",
                denial=True,
            )
    target.addresses = addresses


def _check_headers(headers: list[tuple[str, str]]) -> None:
    for name, value in headers:
        lower = name.lower()
        if not name or not set(name) <= _TOKEN:
            raise _Refused("invalid", f"bad header name {_quote(name)}")
        if any(c in value for c in "\r\n\0"):
            raise _Refused("invalid", f"header {_quote(name)} has a line break or NUL")
        if lower in _HOST_SET or lower.startswith("proxy-"):
            raise _Refused("invalid", f"header {_quote(name)} is set by the host")


class _ConnectFailed(Exception):
    """Connecting to one address (TCP or the TLS handshake) failed: nothing was sent."""


def _one(
    grant: HttpGrant,
    target: _Target,
    address: str,
    *,
    method: str,
    headers: list[tuple[str, str]],
    body: bytes,
    end: float,
) -> tuple[int, list[tuple[str, str]], bytes, str | None]:
    """Sends one request to ``address`` (one of ``target.addresses``); returns
    status, headers, body and the ``Location`` of a redirect (else ``None``).

    Raises:
        _ConnectFailed: Connecting to ``address`` failed before its time ran out.
        _Refused: Any other failure.
    """
    import httpx

    client = _client(grant)
    literal = f"[{address}]" if ":" in address else address
    default = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default else f"{target.host}:{target.port}"
    if ":" in target.host and not target.host.startswith("["):
        host_header = f"[{target.host}]" + ("" if target.port == default else f":{target.port}")
    url = f"{target.scheme}://{literal}:{target.port}{target.rest}"
    left = end - time.perf_counter()
    if left <= 0:
        raise _Refused("timeout", "the request's time ran out")
    # The body is returned as received, never decompressed here (a small compressed
    # body could expand past the cap in one step): ask for none unless the guest did.
    wants = any(k.lower() == "accept-encoding" for k, _ in headers)
    identity = [] if wants else [("Accept-Encoding", "identity")]
    timers: list[threading.Timer] = []

    def trace(name: str, info: dict[str, Any]) -> None:
        # Once connected, a watchdog shuts the socket down at the end of the request's
        # time: a blocked read or write then fails at once, so no request outlives it.
        if name == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                timer = threading.Timer(max(0.0, end - time.perf_counter()), _shut, (sock,))
                timer.daemon = True
                timers.append(timer)
                timer.start()

    extensions: dict[str, Any] = {"trace": trace}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.host
    request = client.build_request(
        method,
        url,
        headers=[("Host", host_header), *headers, *identity],
        content=body if body or method not in ("GET", "HEAD") else None,
        timeout=httpx.Timeout(left),
        extensions=extensions,
    )
    cap = grant.max_response_bytes
    try:
        response = client.send(request, stream=True)
        try:
            status = response.status_code
            out_headers = [(k.lower(), v) for k, v in response.headers.multi_items()]
            size = sum(len(k) + len(v) + 4 for k, v in out_headers)
            if size > cap:
                raise _Refused("too-large", f"the response headers exceed {cap} bytes")
            declared = response.headers.get("content-length", "")
            has_body = method != "HEAD" and status not in (204, 304)
            if has_body and declared.isdigit() and size + int(declared) > cap:
                raise _Refused(
                    "too-large",
                    f"the response declares {declared} bytes of body; the cap is {cap} bytes",
                )
            location = response.headers.get("location") if status in _REDIRECTS else None
            chunks: list[bytes] = []
            for chunk in response.iter_raw():
                size += len(chunk)
                if size > cap:
                    raise _Refused("too-large", f"the response exceeds {cap} bytes")
                chunks.append(chunk)
        finally:
            response.close()
    except httpx.TimeoutException:
        raise _Refused("timeout", "the request's time ran out") from None
    except httpx.ConnectError as e:
        if time.perf_counter() >= end:
            raise _Refused("timeout", "the request's time ran out") from None
        raise _ConnectFailed(
            f"{target.scheme}://{_quote(target.host)[1:-1]}:{target.port} "
            f"(address {address}): {type(e).__name__}: {e}"
        ) from None
    except httpx.HTTPError as e:
        if time.perf_counter() >= end:
            raise _Refused("timeout", "the request's time ran out") from None
        raise _Refused(
            "connection", f"{target.scheme}://{target.host}:{target.port}: {type(e).__name__}: {e}"
        ) from None
    finally:
        for timer in timers:
            timer.cancel()
    return status, out_headers, b"".join(chunks), location


def _shut(sock: socket.socket) -> None:
    """Shuts a request's socket down (its time ran out); closed already is fine."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def send(ctx: HostContext, req: Any) -> Ok[Any] | Err[Any]:
    """``wasmplug:host/http.send``: checks and sends ``req``; see the module docstring."""
    grant = ctx.grants.http
    method = str(req.method)
    if grant is None:
        return ctx.deny(
            "http",
            f"outbound HTTP is not granted ({method[:16]} {_quote(str(req.url))}); "
            "grant Grants(http=HttpGrant(allow=[HttpRule(...)]))",
            case="http.denied",
        )
    try:
        return Ok(_send(ctx, grant, req, method))
    except _Refused as e:
        if e.denial:
            return ctx.deny("http", str(e), case="http.denied")
        return ctx.error(f"http.{e.case}", f"http: {e}")


def _send_checked(
    grant: HttpGrant,
    target: _Target,
    *,
    method: str,
    headers: list[tuple[str, str]],
    body: bytes,
    end: float,
) -> tuple[int, list[tuple[str, str]], bytes, str | None]:
    """Sends the request to the first of ``target.addresses`` that accepts a
    connection (every one of them was checked); see :func:`_one`."""
    failures: list[str] = []
    for address in target.addresses:
        try:
            return _one(grant, target, address, method=method, headers=headers, body=body, end=end)
        except _ConnectFailed as e:
            failures.append(str(e))
    shown = "; ".join(failures[:3])
    more = f"; and {len(failures) - 3} more addresses" if len(failures) > 3 else ""
    raise _Refused("connection", shown + more)


def _send(ctx: HostContext, grant: HttpGrant, req: Any, method: str) -> dict[str, Any]:
    if not method or not set(method) <= _TOKEN:
        raise _Refused("invalid", f"bad method {_quote(method)}")
    method = method.upper()
    headers = [(str(k), str(v)) for k, v in req.headers]
    _check_headers(headers)
    body = bytes(req.body)
    if len(body) > grant.max_request_bytes:
        raise _Refused(
            "too-large",
            f"the request body is {len(body)} bytes; the cap is {grant.max_request_bytes} "
            "bytes (HttpGrant.max_request_bytes)",
        )
    start = time.perf_counter()
    end = min(start + grant.timeout_ms / 1000, ctx.deadline)
    target = _parse(str(req.url))
    redirects = 0
    while True:
        _check_rules(grant, target, method)
        _resolve(ctx.plugin, grant, target, end)
        status, out_headers, data, location = _send_checked(
            grant, target, method=method, headers=headers, body=body, end=end
        )
        if location is None:
            return {"status": status, "headers": out_headers, "body": data}
        if redirects >= grant.max_redirects:
            raise _Refused(
                "denied",
                f"more than {grant.max_redirects} redirects (the next to "
                f"{_quote(location)}); grant a larger HttpGrant.max_redirects",
                denial=True,
            )
        redirects += 1
        old_host = target.host
        target = _parse(urllib.parse.urljoin(target.url, location))
        if status == 303 or (status in (301, 302) and method == "POST"):
            method, body = "GET", b""
            headers = [(k, v) for k, v in headers if not k.lower().startswith("content-")]
        if target.host != old_host:
            headers = [(k, v) for k, v in headers if k.lower() not in ("authorization", "cookie")]
