"""Outbound HTTP (``wasmplug:host/http``): the allow-list, the address checks, the
size caps, redirects and the deadline, through the guest SDK's ``http`` module of the
``http`` fixture, against HTTP servers started here on 127.0.0.1.

Each refusal must reach the guest as the exact typed error (the fixture reports which
SDK ``Error`` variant it matched), be counted as a denial where it is one, and leave
both the host and a well-behaved plugin beside the hostile one working."""

from __future__ import annotations

import gzip
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

import wasmplug
from conftest import fixture_world
from http_servers import Handler, Server
from wasmplug import HttpGrant, HttpRule, _http

# -- servers --------------------------------------------------------------------------


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
def load(plugin_dir: Path, world: wasmplug.World, engine: wasmplug.Engine) -> Any:
    def load(
        http: HttpGrant | None, *, name: str = "fetcher", deadline_ms: int | None = 1_000
    ) -> wasmplug.Plugin:
        policy = wasmplug.Policy(
            grants=wasmplug.Grants(http=http),
            limits=wasmplug.Limits(deadline_ms=deadline_ms),
        )
        return wasmplug.load(
            plugin_dir / "http.wasm", world=world, policy=policy, engine=engine, name=name
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
    before = len(Handler.received)
    with caplog.at_level(logging.WARNING, logger="wasmplug.policy"):
        message = refused(plugin, server.url("/echo", host="localhost"), "denied")
    assert "'localhost'" in message
    assert "not in the allow-list" in message
    assert f"HttpRule(host='localhost', scheme='http', port={server.port}" in message
    assert len(Handler.received) == before  # nothing was sent
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
    before = len(Handler.received)
    message = refused(plugin, server.url("/echo"), "denied", method)
    assert why in message
    assert f"HttpRule(host='127.0.0.1', scheme='http', port={server.port}, " in message
    assert f"methods=('{method}',))" in message
    assert len(Handler.received) == before
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
    before = len(Handler.received)
    message = refused(plugin, server.url("/echo", host="localhost"), "denied")
    assert "resolves to 127.0.0.1, a loopback address" in message
    assert "allow_private=True" in message
    assert len(Handler.received) == before
    # Literal addresses are checked the same way.
    literal = HttpGrant(allow=[HttpRule(host="127.0.0.1", scheme="http", port=server.port)])
    message = refused(load(literal), server.url("/echo"), "denied")
    assert "a loopback address" in message
    still_fine(plugin)


def test_redirect_off_the_list_is_denied(load: Any, server: Server, other: Server) -> None:
    plugin = load(local(server))
    before = len(Handler.received)
    message = refused(plugin, server.url(f"/redirect?to={other.url('/echo')}"), "denied")
    assert f"port {other.port} is not allowed" in message
    # The redirect was fetched; its target never was.
    assert Handler.received[before:] == [("GET", f"/redirect?to={other.url('/echo')}")]
    still_fine(plugin)


def test_too_many_redirects_are_denied(load: Any, server: Server) -> None:
    plugin = load(local(server, max_redirects=3))
    before = len(Handler.received)
    message = refused(plugin, server.url("/loop"), "denied")
    assert "more than 3 redirects" in message
    assert "max_redirects" in message
    assert len(Handler.received) - before == 4


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


# -- resolution: every address checked, the checked one pinned, bounded in time ------------


class FakeResolver:
    """Stands in for the host's resolver (``socket.getaddrinfo``) for names under
    ``.test``: ``answers`` maps a name to the addresses it resolves to, one list per
    resolution (the last repeated), or to ``None`` for a resolver that does not answer
    until :attr:`release` is set. Any other name (and every IP literal, which
    ``socket.create_connection`` passes through ``getaddrinfo`` too) goes to the real
    resolver. ``asked`` counts the resolutions of each fake name."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.real = socket.getaddrinfo
        self.answers: dict[str, list[list[str]] | None] = {}
        self.asked: dict[str, int] = {}
        self.release = threading.Event()
        monkeypatch.setattr(socket, "getaddrinfo", self)

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if not (isinstance(host, str) and host.endswith(".test")):
            return self.real(host, port, *args, **kwargs)
        self.asked[host] = self.asked.get(host, 0) + 1
        answers = self.answers[host]
        if answers is None:
            self.release.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        addresses = answers[min(self.asked[host], len(answers)) - 1]
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, int(port), 0, 0) if ":" in a else (a, int(port)),
            )
            for a in addresses
        ]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeResolver]:
    fake = FakeResolver(monkeypatch)
    yield fake
    fake.release.set()  # a resolution still waiting ends now


def named(server: Server, host: str, **kwargs: Any) -> HttpGrant:
    """A grant for ``server`` under the name ``host``, loopback allowed or not."""
    return HttpGrant(
        allow=[HttpRule(host=host, scheme=server.scheme, port=server.port)],
        **{"allow_private": True, **kwargs},
    )


def test_every_resolved_address_is_checked(
    load: Any, server: Server, resolver: FakeResolver
) -> None:
    """A name with one public and one internal address is refused whatever their
    order: the host checks every address, not just the one it would connect to."""
    resolver.answers["mixed.test"] = [["93.184.216.34", "127.0.0.1"]]
    resolver.answers["metadata.test"] = [["169.254.169.254", "93.184.216.34"]]
    resolver.answers["private6.test"] = [["2606:2800:220:1::1", "fd00::1"]]
    before = len(Handler.received)
    for host, address, kind in [
        ("mixed.test", "127.0.0.1", "a loopback address"),
        ("metadata.test", "169.254.169.254", "a link-local address"),
        ("private6.test", "fd00::1", "a private address"),
    ]:
        plugin = load(named(server, host, allow_private=False))
        message = refused(plugin, server.url("/echo", host=host), "denied")
        assert f"'{host}' resolves to {address}, {kind}" in message
        assert resolver.asked[host] == 1
    assert len(Handler.received) == before


def test_the_checked_address_is_pinned(load: Any, server: Server, resolver: FakeResolver) -> None:
    """The name is resolved once per request and the connection goes to the address
    that was checked, the name kept in the Host header: a resolver that answers
    differently the second time (a DNS rebinding attack) is never asked again."""
    resolver.answers["rebind.test"] = [["127.0.0.1"], ["10.255.255.1"]]
    plugin = load(named(server, "rebind.test"))
    status, _, body = fetch(plugin, server.url("/echo", host="rebind.test"))
    assert status == 200
    assert body.decode().splitlines()[1] == f"host=rebind.test:{server.port}"
    assert resolver.asked["rebind.test"] == 1
    # The next request resolves afresh, and its checks see the new answer.
    message = refused(
        load(named(server, "rebind.test", allow_private=False)),
        server.url("/echo", host="rebind.test"),
        "denied",
    )
    assert "resolves to 10.255.255.1, a private address" in message


def test_the_next_checked_address_when_one_refuses(
    load: Any, server: Server, resolver: FakeResolver
) -> None:
    """When connecting to the first address fails, the host tries the next one it
    checked (never an address it did not check); when all fail, each is named."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        dead = s.getsockname()[0]
        resolver.answers["two.test"] = [["::1", "127.0.0.1"]]
        plugin = load(named(server, "two.test"))
        assert fetch(plugin, server.url("/big/2", host="two.test"))[2] == b"xx"
        port = s.getsockname()[1]
        resolver.answers["none.test"] = [["::1", dead]]
        grant = HttpGrant(
            allow=[HttpRule(host="none.test", scheme="http", port=port)], allow_private=True
        )
        message = refused(load(grant), f"http://none.test:{port}/", "connection")
    assert "(address ::1): ConnectError" in message
    assert f"(address {dead}): ConnectError" in message


def test_a_slow_resolver_is_bounded_by_the_deadline(
    load: Any, server: Server, other: Server, resolver: FakeResolver
) -> None:
    """A resolver that never answers holds the request no longer than its time: the
    grant's timeout is a typed ``timeout``, the call's deadline DeadlineExceeded
    naming the host function. Each plugin may leave only a few resolutions waiting
    (they hold a thread each until the resolver gives up); one more is refused at
    once, and another plugin still resolves."""
    resolver.answers["slow.test"] = None
    plugin = load(named(server, "slow.test", timeout_ms=100), deadline_ms=5_000)
    t0 = time.perf_counter()
    message = refused(plugin, server.url("/echo", host="slow.test"), "timeout")
    assert "ran out resolving 'slow.test'" in message
    assert time.perf_counter() - t0 < 2.0
    # Both plugins are named "fetcher": the first resolution still waits, so three
    # more fill the plugin's share.
    strict = load(named(server, "slow.test"), deadline_ms=300)
    for _ in range(_http.MAX_RESOLVING_PER_PLUGIN - 1):
        t0 = time.perf_counter()
        with pytest.raises(wasmplug.DeadlineExceeded) as info:
            fetch(strict, server.url("/echo", host="slow.test"))
        assert time.perf_counter() - t0 < 2.0
        assert "wasmplug:host/http@0.1.0#send" in str(info.value)
    message = refused(strict, server.url("/echo", host="slow.test"), "connection")
    assert "4 earlier resolutions of this plugin are still waiting" in message
    still_fine(plugin, strict)
    neighbour = load(local(other), name="neighbour")
    assert fetch(neighbour, other.url("/big/1"))[2] == b"x"
    resolver.answers["fast.test"] = [["127.0.0.1"]]
    other_name = load(named(server, "fast.test"), name="n2")
    assert fetch(other_name, server.url("/big/1", "fast.test"))[2] == b"x"


def test_connection_failure_is_typed(load: Any, server: Server) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused
        grant = HttpGrant(
            allow=[HttpRule(host="127.0.0.1", scheme="http", port=port)], allow_private=True
        )
        message = refused(load(grant), f"http://127.0.0.1:{port}/", "connection")
    assert "ConnectError" in message


# -- https -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_server(ca: trustme.CA) -> Iterator[Server]:
    """HTTPS on 127.0.0.1 with a certificate for ``localhost`` and ``api.test`` (not
    for the address itself) from the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "api.test").configure_cert(context)
    s = Server(tls=context)
    yield s
    s.close()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def test_https_verifies_against_the_grants_ca_file(
    load: Any, tls_server: Server, ca_file: Path, resolver: FakeResolver
) -> None:
    """With the test CA as ``HttpGrant.ca_file`` the request succeeds; the connection
    goes to the checked address while the certificate is verified against the name
    (the certificate does not cover 127.0.0.1), which is also the TLS server name."""
    plugin = load(named(tls_server, "localhost", ca_file=ca_file))
    status, _, body = fetch(plugin, tls_server.url("/echo", host="localhost"))
    assert (status, body.decode().splitlines()[1]) == (200, f"host=localhost:{tls_server.port}")
    resolver.answers["api.test"] = [["127.0.0.1"]]
    plugin = load(named(tls_server, "api.test", ca_file=str(ca_file)))
    status, _, body = fetch(plugin, tls_server.url("/echo", host="api.test"))
    assert (status, body.decode().splitlines()[1]) == (200, f"host=api.test:{tls_server.port}")
    assert resolver.asked["api.test"] == 1


@pytest.mark.parametrize(
    ("host", "use_ca", "why"),
    [
        ("localhost", False, "certificate verify failed: unable to get local issuer"),
        ("127.0.0.1", True, "certificate verify failed: IP address mismatch"),
    ],
    ids=["unknown-issuer", "name-mismatch"],
)
def test_a_bad_certificate_is_a_typed_error(  # noqa: PLR0917 - pytest fixtures
    load: Any, tls_server: Server, ca_file: Path, host: str, use_ca: bool, why: str
) -> None:
    """A certificate from an issuer the grant does not trust (the default trust store
    here), or one that does not name the host, fails the request with ``connection``
    before anything is sent; the plugin goes on."""
    plugin = load(named(tls_server, host, ca_file=ca_file if use_ca else None))
    before = len(Handler.received)
    message = refused(plugin, tls_server.url("/echo", host=host), "connection")
    assert why in message
    assert "ConnectError" in message
    assert len(Handler.received) == before
    still_fine(plugin)


def test_an_unreadable_ca_file_is_a_typed_error(
    load: Any, tls_server: Server, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.pem"
    plugin = load(named(tls_server, "localhost", ca_file=missing))
    message = refused(plugin, tls_server.url("/echo", host="localhost"), "connection")
    assert f"cannot load HttpGrant.ca_file {str(missing)!r}: FileNotFoundError" in message


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
                ca_file=Path("/etc/wasmplug/ca.pem"),
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
    assert data["grants"]["http"]["ca_file"] == "/etc/wasmplug/ca.pem"
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
