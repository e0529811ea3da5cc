"""A real HTTP server to download from: a route for every body shape and failure a video CDN can show.

Used by the storage tests through the ``http_source`` and ``second_http_source`` fixtures of ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import gzip
import random
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

MiB = 1024 * 1024

_BODIES: dict[int, bytes] = {}
_BODIES_LOCK = threading.Lock()


def body_of(n: int) -> bytes:
    """Deterministic pseudo-random body of n bytes (random, so swapped or repeated parts show)."""
    with _BODIES_LOCK:
        if n not in _BODIES:
            block = 16 * MiB  # Random.randbytes is limited to < 256 MiB per call
            rng = random.Random(n)
            _BODIES[n] = b"".join(rng.randbytes(min(block, n - i)) for i in range(0, n, block))
        return _BODIES[n]


class SourceHandler(BaseHTTPRequestHandler):
    """Routes: /bytes/N, /chunked/N, /close/N, /cut/N/SENT, /cut-chunked/N/SENT, /cut-close/N/SENT,
    /gzip/N, /gzip-zeros/N, /slow/N?delay=S, /stall/N?after=K&sleep=S, /status/CODE, /redirect?to=URL,
    /chain/K (K redirects, then /bytes/1000)."""

    protocol_version = "HTTP/1.1"
    requests_seen: ClassVar[list[dict[str, str]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        route, *args = parts.path.strip("/").split("/")
        SourceHandler.requests_seen.append(
            {"path": self.path, **{k.lower(): v for k, v in self.headers.items()}}
        )
        handler = getattr(self, "route_" + route.replace("-", "_"), None)
        if handler is None:
            self.send_error(404)
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            handler(*args, **query)

    def _head(self, status: int = 200, **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()

    def route_bytes(self, n: str, **_: str) -> None:
        body = body_of(int(n))
        self._head(Content_Length=str(len(body)), Content_Type="video/mp4")
        self.wfile.write(body)

    def _chunks(self, body: bytes, sizes: tuple[int, ...] = (7919, 65536, 1, 300_007)) -> Iterator[bytes]:
        pos, i = 0, 0
        while pos < len(body):
            size = sizes[i % len(sizes)]
            yield body[pos : pos + size]
            pos, i = pos + size, i + 1

    def route_chunked(self, n: str, **_: str) -> None:
        self._head(Transfer_Encoding="chunked")
        for chunk in self._chunks(body_of(int(n))):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def route_close(self, n: str, **_: str) -> None:
        self.close_connection = True
        self._head(Connection="close")
        for chunk in self._chunks(body_of(int(n))):
            self.wfile.write(chunk)

    def route_cut(self, n: str, sent: str, **_: str) -> None:
        self.close_connection = True
        self._head(Content_Length=n)
        self.wfile.write(body_of(int(n))[: int(sent)])

    def route_cut_chunked(self, n: str, sent: str, **_: str) -> None:
        self.close_connection = True
        self._head(Transfer_Encoding="chunked")
        for chunk in self._chunks(body_of(int(n))[: int(sent)]):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    def route_cut_close(self, n: str, sent: str, **_: str) -> None:
        self.close_connection = True
        self._head(Connection="close")
        self.wfile.write(body_of(int(n))[: int(sent)])

    def route_gzip(self, n: str, **_: str) -> None:
        packed = gzip.compress(body_of(int(n)))
        self._head(Content_Length=str(len(packed)), Content_Encoding="gzip")
        self.wfile.write(packed)

    def route_gzip_zeros(self, n: str, **_: str) -> None:
        """N zero bytes gzip-compressed on the fly, close-delimited: about N / 1000 bytes on the wire."""
        self.close_connection = True
        self._head(Content_Encoding="gzip", Connection="close", Content_Type="video/mp4")
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
        block = bytes(MiB)
        for start in range(0, int(n), MiB):
            self.wfile.write(packer.compress(block[: min(MiB, int(n) - start)]))
        self.wfile.write(packer.flush())

    def route_slow(self, n: str, delay: str = "0.05", **_: str) -> None:
        body = body_of(int(n))
        self._head(Content_Length=str(len(body)))
        for chunk in self._chunks(body, (len(body) // 8 + 1,)):
            self.wfile.write(chunk)
            self.wfile.flush()
            time.sleep(float(delay))

    def route_stall(self, n: str, after: str = "1000", sleep: str = "3", **_: str) -> None:
        body = body_of(int(n))
        self._head(Content_Length=str(len(body)))
        self.wfile.write(body[: int(after)])
        self.wfile.flush()
        time.sleep(float(sleep))
        self.wfile.write(body[int(after) :])

    def route_status(self, code: str, **_: str) -> None:
        self._head(int(code), Content_Length="0")

    def route_redirect(self, to: str, **_: str) -> None:
        self._head(302, Location=to, Content_Length="0")

    def route_chain(self, k: str, **_: str) -> None:
        left = int(k)
        self._head(302, Location=f"/chain/{left - 1}" if left > 1 else "/bytes/1000", Content_Length="0")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up (timeouts, refused redirects) are expected here


@contextlib.contextmanager
def serving_http_source() -> Iterator[str]:
    """Serve :class:`SourceHandler` on a free loopback port; yields its origin (``http://127.0.0.1:PORT``)."""
    server = _Server(("127.0.0.1", 0), SourceHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
