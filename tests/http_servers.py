"""HTTP and HTTPS servers on 127.0.0.1 for the outbound HTTP tests (``test_http.py``)
and the hostile suite's HTTP attacks (``test_hostile.py``).

Every server runs its handlers on threads it joins when closed (each with a
timeout), and its slow routes wait on the server's ``closing`` event rather than
sleeping, so closing a server leaves no thread behind."""

from __future__ import annotations

import gzip
import http.server
import socket
import ssl
import threading
from typing import Any, ClassVar

#: How long :meth:`Server.close` waits for each of the server's threads, in seconds.
JOIN_TIMEOUT_S = 10.0


class Handler(http.server.BaseHTTPRequestHandler):
    """Routes: ``/echo`` (method, headers and body back as text), ``/big/<n>`` (n bytes),
    ``/flood/<n>`` (n bytes, no declared length), ``/gzip`` (a gzip body whatever
    was asked), ``/redirect?to=<url>`` (302),
    ``/see-other`` (303 to /echo), ``/loop`` (302 to itself), ``/slow/<s>`` (answers
    after s seconds), ``/trickle`` (64 bytes every 0.1 s for a minute, no length).

    ``received`` lists ``(method, path)`` of every request any server got."""

    protocol_version = "HTTP/1.1"
    #: A connection idle this long (seconds) is dropped, so no handler outlives a test.
    timeout = JOIN_TIMEOUT_S / 2
    received: ClassVar[list[tuple[str, str]]] = []
    server: _HTTPServer

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
        closing = self.server.closing
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
            if not closing.wait(float(path[6:])):
                self._reply(200, b"late")
        elif path.startswith("/flood/"):  # n bytes with no declared length
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            left = int(path[7:])
            try:
                while left > 0 and not closing.is_set():
                    chunk = min(left, 1 << 16)
                    self.wfile.write(b"f" * chunk)
                    left -= chunk
            except OSError:
                pass
        elif path == "/trickle":
            self.send_response(200)
            self.send_header("Connection", "close")  # no length: read until close
            self.end_headers()
            try:
                for _ in range(600):
                    self.wfile.write(b"." * 64)
                    self.wfile.flush()
                    if closing.wait(0.1):
                        break
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


class _HTTPServer(http.server.HTTPServer):
    """Serves each connection on a thread of its own, which :meth:`Server.close` joins;
    with ``tls``, the TLS handshake runs on that thread (a client refusing the
    certificate fails only its own connection)."""

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.tls = tls
        self.closing = threading.Event()
        self.handlers: list[threading.Thread] = []

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(target=self._serve, args=(request, client_address))
        self.handlers = [t for t in self.handlers if t.is_alive()]
        self.handlers.append(thread)
        thread.start()

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            if isinstance(request, ssl.SSLSocket):
                request.settimeout(JOIN_TIMEOUT_S)
                request.do_handshake()
                request.settimeout(None)
            self.finish_request(request, client_address)
        except (OSError, ssl.SSLError):
            pass  # the client went away or refused the certificate
        finally:
            self.shutdown_request(request)


class Server:
    """An HTTP server on 127.0.0.1 and a free port, serving :class:`Handler`'s routes;
    HTTPS with ``tls`` (a server-side ``ssl.SSLContext``)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.httpd = _HTTPServer(tls)
        self.scheme = "http" if tls is None else "https"
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        """Stops serving, ends the slow routes at once and joins every thread."""
        self.httpd.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(JOIN_TIMEOUT_S)
        for thread in self.httpd.handlers:
            thread.join(JOIN_TIMEOUT_S)
        assert not self.thread.is_alive()
        assert not any(t.is_alive() for t in self.httpd.handlers)
