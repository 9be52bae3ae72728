"""Outbound HTTP (``wasmplug:host/http``): the allow-list, the address checks, the
size caps, redirects and the deadline, through the guest SDK's ``http`` module of the
``http`` fixture, against HTTP servers started here on 127.0.0.1.

Each refusal must reach the guest as the exact typed error (the fixture reports which
SDK ``Error`` variant it matched), be counted as a denial where it is one, and leave
both the host and a well-behaved plugin beside the hostile one working."""

from __future__ import annotations

import gzip
import http.server
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import wasmplug
from conftest import fixture_world
from wasmplug import HttpGrant, HttpRule

# -- servers --------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    """Routes: ``/echo`` (method, headers and body back as text), ``/big/<n>`` (n bytes),
    ``/gzip`` (a gzip body whatever was asked), ``/redirect?to=<url>`` (302),
    ``/see-other`` (303 to /echo), ``/loop`` (302 to itself), ``/slow/<s>`` (answers
    after s seconds), ``/trickle`` (64 bytes every 0.1 s for a minute, no length)."""

    protocol_version = "HTTP/1.1"
    received: ClassVar[list[tuple[str, str]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.received.append((self.command, self.path))
        path, _, query = self.path.partition("?")
        if path == "/echo":
            lines = [f"{self.command} {self.path}", f"host={self.headers['Host']}"]
            lines += [f"x-test={v}" for v in self.headers.get_all("X-Test") or []]
            lines.append(f"body={body.decode()}")
            self._reply(200, "\n".join(lines).encode(), {"X-Reply": "yes"})
        elif path.startswith("/big/"):
            self._reply(200, b"x" * int(path[5:]))
        elif path == "/gzip":  # compressed whatever the client asked for
            asked = self.headers.get("Accept-Encoding", "")
            packed = gzip.compress(b"z" * 1_000_000)
            self._reply(200, packed, {"Content-Encoding": "gzip", "X-Asked": asked})
        elif path == "/redirect":
            self._reply(302, b"", {"Location": query.removeprefix("to=")})
        elif path == "/see-other":
            self._reply(303, b"", {"Location": "/echo"})
        elif path == "/loop":
            self._reply(302, b"", {"Location": "/loop"})
        elif path.startswith("/slow/"):
            time.sleep(float(path[6:]))
            self._reply(200, b"late")
        elif path == "/trickle":
            self.send_response(200)
            self.send_header("Connection", "close")  # no length: read until close
            self.end_headers()
            try:
                for _ in range(600):
                    self.wfile.write(b"." * 64)
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
        else:
            self._reply(404, b"no such route")

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def do_HEAD(self) -> None:
        """Headers only, declaring a body far larger than any cap here."""
        self.send_response(200)
        self.send_header("Content-Length", str(10**9))
        self.end_headers()


class Server:
    def __init__(self) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


@pytest.fixture(scope="module")
def other() -> Iterator[Server]:
    """A second server, on another port: off the list unless granted."""
    s = Server()
    yield s
    s.close()


# -- plugins --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> wasmplug.World:
    return fixture_world("http")


@pytest.fixture
def load(wasm_dir: Path, world: wasmplug.World, engine: wasmplug.Engine) -> Any:
    def load(
        http: HttpGrant | None, *, name: str = "fetcher", deadline_ms: int | None = 1_000
    ) -> wasmplug.Plugin:
        policy = wasmplug.Policy(
            grants=wasmplug.Grants(http=http),
            limits=wasmplug.Limits(deadline_ms=deadline_ms),
        )
        return wasmplug.load(
            wasm_dir / "http.wasm", world=world, policy=policy, engine=engine, name=name
        )

    return load


def local(server: Server, **kwargs: Any) -> HttpGrant:
    """A grant for ``server``: http://127.0.0.1:<port>, loopback allowed."""
    methods = kwargs.pop("methods", ("GET", "POST"))
    return HttpGrant(
        allow=[HttpRule(host="127.0.0.1", scheme="http", port=server.port, methods=methods)],
        allow_private=True,
        **kwargs,
    )


def fetch(
    plugin: wasmplug.Plugin,
    url: str,
    method: str = "GET",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> tuple[int, list[tuple[str, str]], bytes]:
    result = plugin.call("fetch", method, url, headers or [], body)
    assert isinstance(result, tuple)
    return result


def refused(plugin: wasmplug.Plugin, url: str, kind: str, method: str = "GET", **kw: Any) -> str:
    """Calls ``fetch`` that must fail with the typed error ``kind``; returns its text."""
    with pytest.raises(wasmplug.GuestError) as info:
        plugin.call("fetch", method, url, kw.get("headers", []), kw.get("body", b""))
    message = info.value.value
    assert isinstance(message, str)
    assert message.startswith(f"{kind}: http: "), message
    assert plugin.last_call is not None
    assert plugin.last_call.denials == (1 if kind == "denied" else 0)
    return message


def still_fine(*plugins: wasmplug.Plugin) -> None:
    """Each plugin still answers a plain call."""
    for plugin in plugins:
        assert plugin.call("ping", 41) == 42


# -- allowed requests -------------------------------------------------------------------


def test_get_returns_status_headers_and_body(load: Any, server: Server) -> None:
    plugin = load(local(server))
    status, headers, body = fetch(plugin, server.url("/echo?a=1"), headers=[("X-Test", "one")])
    assert status == 200
    assert ("x-reply", "yes") in headers
    assert body.decode().splitlines() == [
        "GET /echo?a=1",
        f"host=127.0.0.1:{server.port}",
        "x-test=one",
        "body=",
    ]
    assert plugin.last_call is not None
    assert plugin.last_call.denials == 0
    assert plugin.call("get-text", server.url("/big/5")) == "xxxxx"


def test_post_sends_body_and_repeated_headers(load: Any, server: Server) -> None:
    plugin = load(local(server))
    status, _, body = fetch(
        plugin,
        server.url("/echo"),
        "POST",
        headers=[("X-Test", "a"), ("X-Test", "b")],
        body=b"payload",
    )
    assert status == 200
    assert body.decode().splitlines()[2:] == ["x-test=a", "x-test=b", "body=payload"]


def test_non_2xx_statuses_are_responses(load: Any, server: Server) -> None:
    status, _, body = fetch(load(local(server)), server.url("/nowhere"))
    assert (status, body) == (404, b"no such route")


def test_redirects_inside_the_list_are_followed(load: Any, server: Server) -> None:
    plugin = load(local(server))
    status, _, body = fetch(plugin, server.url(f"/redirect?to={server.url('/echo')}"))
    assert (status, body.decode().splitlines()[0]) == (200, "GET /echo")
    # 303 turns a POST into a GET without its body.
    status, _, body = fetch(plugin, server.url("/see-other"), "POST", body=b"gone")
    assert body.decode().splitlines()[0] == "GET /echo"
    assert body.decode().splitlines()[-1] == "body="


def test_wildcard_host_matches_subdomains_only() -> None:
    rule = HttpRule(host="*.example.com")
    assert rule.matches_host("api.example.com")
    assert rule.matches_host("a.b.example.com")
    assert not rule.matches_host("example.com")
    assert not rule.matches_host("evilexample.com")
    assert not rule.matches_host("example.com.evil.net")


# -- denials ------------------------------------------------------------------------------


def test_not_granted_names_the_grant(load: Any, server: Server) -> None:
    plugin = load(None)
    message = refused(plugin, server.url("/echo"), "denied")
    assert "outbound HTTP is not granted" in message
    assert "HttpGrant" in message
    still_fine(plugin)


def test_unlisted_host_is_denied_naming_what_to_grant(
    load: Any, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    plugin = load(local(server))
    neighbour = load(local(server), name="neighbour")
    before = len(_Handler.received)
    with caplog.at_level(logging.WARNING, logger="wasmplug.policy"):
        message = refused(plugin, server.url("/echo", host="localhost"), "denied")
    assert "'localhost'" in message
    assert "not in the allow-list" in message
    assert f"HttpRule(host='localhost', scheme='http', port={server.port}" in message
    assert len(_Handler.received) == before  # nothing was sent
    assert any("fetcher" in r.getMessage() for r in caplog.records)
    still_fine(plugin, neighbour)
    assert fetch(neighbour, server.url("/big/1"))[2] == b"x"


@pytest.mark.parametrize(
    ("make_rule", "method", "why"),
    [
        (lambda port: HttpRule(host="127.0.0.1", scheme="https", port=port), "GET", "scheme"),
        (lambda port: HttpRule(host="*.example.com", scheme="http"), "GET", "allow-list"),
        (lambda port: HttpRule(host="127.0.0.1", scheme="http", port=1), "GET", "port"),
        (lambda port: HttpRule(host="127.0.0.1", scheme="http", port=port), "PUT", "method"),
    ],
    ids=["scheme", "wildcard-mismatch", "port", "method"],
)
def test_each_rule_field_is_checked(
    load: Any, server: Server, make_rule: Any, method: str, why: str
) -> None:
    """A request outside a rule in any one field is denied, the message naming the field
    and the rule that would allow it; nothing reaches the server."""
    plugin = load(HttpGrant(allow=[make_rule(server.port)], allow_private=True))
    before = len(_Handler.received)
    message = refused(plugin, server.url("/echo"), "denied", method)
    assert why in message
    assert f"HttpRule(host='127.0.0.1', scheme='http', port={server.port}, " in message
    assert f"methods=('{method}',))" in message
    assert len(_Handler.received) == before
    still_fine(plugin)


def test_other_schemes_are_denied(load: Any, server: Server) -> None:
    message = refused(load(local(server)), "ftp://127.0.0.1/x", "denied")
    assert "scheme 'ftp'" in message


def test_name_resolving_to_loopback_is_denied_without_the_grant(load: Any, server: Server) -> None:
    """A listed name that resolves to 127.0.0.1 is refused before any connection: the
    host resolves names itself, so a public-looking name cannot reach the host's own
    network."""
    grant = HttpGrant(allow=[HttpRule(host="localhost", scheme="http", port=server.port)])
    plugin = load(grant)
    before = len(_Handler.received)
    message = refused(plugin, server.url("/echo", host="localhost"), "denied")
    assert "resolves to 127.0.0.1, a loopback address" in message
    assert "allow_private=True" in message
    assert len(_Handler.received) == before
    # Literal addresses are checked the same way.
    literal = HttpGrant(allow=[HttpRule(host="127.0.0.1", scheme="http", port=server.port)])
    message = refused(load(literal), server.url("/echo"), "denied")
    assert "a loopback address" in message
    still_fine(plugin)


def test_redirect_off_the_list_is_denied(load: Any, server: Server, other: Server) -> None:
    plugin = load(local(server))
    before = len(_Handler.received)
    message = refused(plugin, server.url(f"/redirect?to={other.url('/echo')}"), "denied")
    assert f"port {other.port} is not allowed" in message
    # The redirect was fetched; its target never was.
    assert _Handler.received[before:] == [("GET", f"/redirect?to={other.url('/echo')}")]
    still_fine(plugin)


def test_too_many_redirects_are_denied(load: Any, server: Server) -> None:
    plugin = load(local(server, max_redirects=3))
    before = len(_Handler.received)
    message = refused(plugin, server.url("/loop"), "denied")
    assert "more than 3 redirects" in message
    assert "max_redirects" in message
    assert len(_Handler.received) - before == 4


@pytest.mark.parametrize(
    ("url", "headers", "why"),
    [
        ("/echo", [("Host", "evil")], "set by the host"),
        ("/echo", [("Proxy-Authorization", "x")], "set by the host"),
        ("/echo", [("X-Bad", "a\r\nInjected: 1")], "line break"),
        ("no-scheme", [], "absolute http(s) URL"),
        ("http://user:pw@127.0.0.1/", [], "credentials"),
    ],
)
def test_malformed_requests_are_invalid(
    load: Any, server: Server, url: str, headers: list[tuple[str, str]], why: str
) -> None:
    target = server.url(url) if url.startswith("/") else url
    message = refused(load(local(server)), target, "invalid", headers=headers)
    assert why in message


# -- caps and time --------------------------------------------------------------------------


def test_request_body_cap(load: Any, server: Server) -> None:
    plugin = load(local(server, max_request_bytes=100))
    assert fetch(plugin, server.url("/echo"), "POST", body=b"y" * 100)[0] == 200
    message = refused(plugin, server.url("/echo"), "too-large", "POST", body=b"y" * 101)
    assert "101 bytes; the cap is 100 bytes" in message


def test_response_cap_stops_reading(load: Any, server: Server) -> None:
    plugin = load(local(server, max_response_bytes=10_000))
    assert len(fetch(plugin, server.url("/big/5000"))[2]) == 5000
    message = refused(plugin, server.url("/big/20000"), "too-large")
    assert "10000 bytes" in message
    # A body with no declared length is cut at the cap too.
    plugin = load(local(server, max_response_bytes=400))
    t0 = time.perf_counter()
    refused(plugin, server.url("/trickle"), "too-large")
    assert time.perf_counter() - t0 < 5


def test_bodies_are_never_decompressed(load: Any, server: Server) -> None:
    """A compression bomb cannot expand past the cap: the host asks for no encoding and
    returns the body as received."""
    plugin = load(local(server, max_response_bytes=100_000))
    _, headers, body = fetch(plugin, server.url("/gzip"))
    assert ("x-asked", "identity") in headers
    assert ("content-encoding", "gzip") in headers
    assert gzip.decompress(body) == b"z" * 1_000_000
    # The guest may ask for an encoding itself; it still gets the bytes as sent.
    _, headers, _ = fetch(plugin, server.url("/gzip"), headers=[("Accept-Encoding", "gzip")])
    assert ("x-asked", "gzip") in headers


def test_head_declaring_a_large_body_is_not_too_large(load: Any, server: Server) -> None:
    plugin = load(local(server, methods=("HEAD",), max_response_bytes=1_000))
    status, headers, body = fetch(plugin, server.url("/anything"), "HEAD")
    assert (status, body) == (200, b"")
    assert ("content-length", str(10**9)) in headers


def test_grant_timeout_is_a_typed_error(load: Any, server: Server) -> None:
    plugin = load(local(server, timeout_ms=200), deadline_ms=5_000)
    t0 = time.perf_counter()
    message = refused(plugin, server.url("/slow/2"), "timeout")
    assert "ran out" in message
    assert time.perf_counter() - t0 < 1.5
    still_fine(plugin)


def test_slow_server_past_the_deadline_fails_the_call(load: Any, server: Server) -> None:
    """The call's deadline bounds the request: the call fails with DeadlineExceeded
    naming the host function, promptly, and the plugin (and one beside it) go on."""
    plugin = load(local(server), deadline_ms=300)
    neighbour = load(local(server), name="neighbour", deadline_ms=300)
    for path in ("/slow/3", "/trickle"):
        t0 = time.perf_counter()
        with pytest.raises(wasmplug.DeadlineExceeded) as info:
            fetch(plugin, server.url(path))
        assert time.perf_counter() - t0 < 2.0
        assert "wasmplug:host/http" in str(info.value)
        assert "send" in str(info.value)
    still_fine(plugin, neighbour)
    assert fetch(neighbour, server.url("/big/3"))[2] == b"xxx"


def test_connection_failure_is_typed(load: Any, server: Server) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused
        grant = HttpGrant(
            allow=[HttpRule(host="127.0.0.1", scheme="http", port=port)], allow_private=True
        )
        message = refused(load(grant), f"http://127.0.0.1:{port}/", "connection")
    assert "ConnectError" in message


# -- policy -----------------------------------------------------------------------------


def test_http_grant_round_trips_through_dicts() -> None:
    policy = wasmplug.Policy(
        grants=wasmplug.Grants(
            http=HttpGrant(
                allow=[
                    HttpRule(host="*.Example.com", methods=["post", "GET"]),
                    HttpRule(host="10.0.0.1", scheme="http", port=8080),
                ],
                allow_private=True,
                max_response_bytes=99,
            )
        )
    )
    data = policy.to_dict()
    assert data["grants"]["http"]["allow"][0] == {
        "host": "*.example.com",
        "scheme": "https",
        "port": None,
        "methods": ["GET", "POST"],
    }
    assert wasmplug.Policy.from_dict(data) == policy


@pytest.mark.parametrize(
    "make",
    [
        lambda: HttpRule(host="exa mple.com"),
        lambda: HttpRule(host="*"),
        lambda: HttpRule(host="a.com", scheme="ftp"),
        lambda: HttpRule(host="a.com", port=70000),
        lambda: HttpRule(host="a.com", methods=()),
        lambda: HttpGrant(max_response_bytes=-1),
        lambda: HttpGrant(allow=["a.com"]),  # type: ignore[list-item]
    ],
)
def test_bad_grants_are_refused(make: Any) -> None:
    with pytest.raises(wasmplug.PolicyError):
        make()
