"""A scripted HTTP server for client tests: each route answers from a queue of canned replies over a real socket.

It lets a test pin down exact bytes and timings (a stream cut after event k, a silent socket, a 429 with
Retry-After) independently of the simulator, so the client and the simulator each test the other.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One canned answer. ``chunks`` stream a body piece by piece (with ``delay`` between them); ``cut`` closes
    the socket after the chunks without ending the body; ``stall`` keeps the socket open silently for that long."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] | None = None
    delay: float = 0.0
    cut: bool = False
    stall: float = 0.0


class ScriptedServer:
    """``routes[(method, path)]`` is a list of replies used in order; the last one repeats."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.counts: dict[tuple[str, str], int] = defaultdict(int)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        handler = self._handler_class()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1/minimax"

    def on(self, method: str, path: str, *replies: Reply) -> None:
        self.routes[(method, path)] = list(replies)

    def count(self, method: str, path: str) -> int:
        return self.counts[(method, path)]

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _next(self, method: str, path: str) -> Reply:
        with self._lock:
            self.counts[(method, path)] += 1
            queue = self.routes.get((method, path))
            if not queue:
                return Reply(404, {"error": "Not found."})
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                prefix = "/v1/minimax/"
                route = path[len(prefix) :] if path.startswith(prefix) else path
                with server._lock:
                    server.requests.append((method, self.path, dict(self.headers), body))
                reply = server._next(method, route)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.chunks is None:
                    payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                    self.send_header("Content-Type", reply.headers.get("Content-Type", "application/json"))
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                try:
                    for chunk in reply.chunks:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        if reply.delay:
                            time.sleep(reply.delay)
                    if reply.stall:
                        server._stop.wait(reply.stall)
                except OSError:
                    return

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        return Handler


def sse(*payloads: dict[str, Any] | str) -> list[bytes]:
    """Events as SSE chunks, one chunk per event."""
    out = []
    for p in payloads:
        text = p if isinstance(p, str) else json.dumps(p)
        out.append(f"data: {text}\n\n".encode())
    return out
