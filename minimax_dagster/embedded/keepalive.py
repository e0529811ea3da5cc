"""HTTP/1.1 keep-alive for the embedded S3 server, as S3 itself answers (needs moto, the ``simulator`` extra).

>>> KeepAliveHandler.protocol_version
'HTTP/1.1'
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

from moto.moto_server.werkzeug_app import MotoRequestHandler

__all__ = ["KeepAliveHandler", "drop_connections"]


def _lock_of(server: Any) -> threading.Lock:
    lock: threading.Lock = server.__dict__.setdefault("_keepalive_lock", threading.Lock())
    return lock


def _connections_of(server: Any) -> set[socket.socket]:
    connections: set[socket.socket] = server.__dict__.setdefault("_keepalive_connections", set())
    return connections


def drop_connections(server: Any) -> int:
    """Close every connection ``server`` still holds open (after its ``shutdown()``); answers how many.

    A stopped server then refuses its clients at once, on new and kept connections alike.
    """
    with _lock_of(server):
        connections = list(_connections_of(server))
    for connection in connections:
        with contextlib.suppress(OSError):  # already closed by its client
            connection.shutdown(socket.SHUT_RDWR)
    return len(connections)


class _CountingInput:
    """``wsgi.input`` that counts what the app read, so the rest of the body can be skipped exactly."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._stream.read(size)
        self.consumed += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data: bytes = self._stream.readline(size)
        self.consumed += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        count: int = self._stream.readinto(buffer)
        self.consumed += count or 0
        return count

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class KeepAliveHandler(MotoRequestHandler):
    """moto's request handler with HTTP/1.1 keep-alive, as S3 answers.

    werkzeug's own ``run_wsgi`` sends ``Connection: close`` on every answer: after the answer it discards
    whatever the socket holds for 10 ms, which on a kept connection could be the client's next request. This
    one instead skips exactly the unread rest of the request body (``Content-Length`` bytes, or to the last
    chunk), then answers with a ``Content-Length`` (the body joined when the app gave none), so the connection
    stays usable. A connection idle for ``timeout`` seconds is closed (S3 too closes idle connections; clients
    open a new one).

    >>> KeepAliveHandler.protocol_version, KeepAliveHandler.timeout
    ('HTTP/1.1', 60)
    """

    protocol_version = "HTTP/1.1"
    timeout = 60
    # One write per answer and no Nagle delay: with a kept connection, headers and body written apart would
    # wait for the client's delayed ACK (40 ms a request on Linux).
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        # Kept connections outlive ``shutdown()`` (each has its own thread): the server tracks them, so that
        # stopping it drops them as a real outage would, instead of still answering on them.
        with _lock_of(self.server):
            _connections_of(self.server).add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with _lock_of(self.server):
                _connections_of(self.server).discard(self.connection)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No line per request (errors are still logged)."""

    def log_error(self, format: str, *args: Any) -> None:
        """Errors are logged, except an idle kept connection closed after ``timeout`` (normal, as on S3)."""
        if format.startswith("Request timed out"):
            return
        super().log_error(format, *args)

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ = self.make_environ()
        self.environ = environ
        body = _CountingInput(environ["wsgi.input"])
        environ["wsgi.input"] = body
        answer: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer[:] = [status, headers]
            return None

        try:
            result = self.server.app(environ, start_response)
            try:
                data = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            self._skip_unread_body(environ, body)
        except Exception as exc:
            self.close_connection = True
            self.server.log("error", f"Error on request: {type(exc).__name__}: {exc}")
            answer, data = ["500 Internal Server Error", [("Content-Type", "text/plain")]], b"internal error"
        status, headers = answer
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        names = set()
        for name, value in headers:
            lowered = name.lower()
            if lowered in ("connection", "transfer-encoding", "keep-alive"):
                continue
            names.add(lowered)
            self.send_header(name, value)
        if self.close_connection:  # the client asked for it, or the body could not be skipped
            self.send_header("Connection", "close")
        if "content-length" not in names and environ["REQUEST_METHOD"] != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self._headers_buffer.append(b"\r\n")
        if environ["REQUEST_METHOD"] != "HEAD" and data:
            self._headers_buffer.append(data)
        self.flush_headers()

    def _skip_unread_body(self, environ: dict[str, Any], body: _CountingInput) -> None:
        """Read what the app left of the request body, so the next request starts at its first line."""
        if environ.get("wsgi.input_terminated"):  # chunked: werkzeug ends the stream at the last chunk
            while body.read(1 << 16):
                pass
            return
        length = environ.get("CONTENT_LENGTH") or ""
        left = int(length) - body.consumed if length.isdigit() else 0
        while left > 0:
            data = body.read(min(left, 1 << 16))
            if not data:
                self.close_connection = True
                return
            left -= len(data)
