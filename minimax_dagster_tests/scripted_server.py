"""A scripted HTTP server for client tests: each route answers from a queue of canned replies over a real socket.

It lets a test pin down exact bytes and timings (a stream cut after event k, a silent socket, a 429 with
Retry-After, a reset after the request arrived) independently of the simulator, so the client and the simulator
each test the other.

It also keeps, per account, the list GET videos/ answers (newest first, paged by ``limit`` and ``lastVideoId``)
and answers GET videos/{videoId} for the jobs on it. A reply can *queue* a job there while it answers 502/504 or
resets the connection: what the docs say MiniMax does when it is too busy ("responds with 502 or 504 while still
accepting jobs into the internal queue"). With ``accounts`` configured (more than one), the routes whose docs
make ``account`` required with several accounts answer 400 without it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

USER = "1234"

#: Routes whose pages say: "account is optional when only one account configured ... required" with several.
ACCOUNT_ROUTES = {("GET", "videos/"), ("GET", "videos/agent-templates"), ("GET", "files"), ("POST", "files")}


def processing(percent: float = 50) -> dict[str, Any]:
    """A GET videos/{videoId} state of a running job."""
    return {"status": 1, "statusLabel": "processing", "statusFinal": False, "percent": percent}


def completed(name: str = "v") -> dict[str, Any]:
    """A GET videos/{videoId} state of a finished job."""
    return {
        "status": 2,
        "statusLabel": "completed",
        "statusFinal": True,
        "percent": 100,
        "videoURL": f"https://cdn.hailuoai.video/{name}-w.mp4",
        "downloadURL": f"https://cdn.hailuoai.video/{name}-n.mp4",
        "coverURL": f"https://cdn.hailuoai.video/{name}.png",
        "width": 1280,
        "height": 720,
    }


@dataclass
class Queue:
    """What a reply queues on an account: a job whose ``desc`` is the create's prompt, that runs through
    ``states`` (one per GET videos/{videoId}; the last repeats).

    ``tracked``: useapi knows the job (it answered before the connection broke), so GET scheduler/available
    lists it with the create's replyRef until it is final; a 502/504 job is not tracked (doc). ``listed=False``
    keeps it out of GET videos/ (an account list that lags)."""

    account: str
    states: list[dict[str, Any]] = field(default_factory=lambda: [processing(), completed("queued")])
    tracked: bool = False
    listed: bool = True


@dataclass
class Reply:
    """One canned answer. ``chunks`` stream a body piece by piece (with ``delay`` between them); ``cut`` closes
    the socket after the chunks without ending the body; ``stall`` keeps the socket open silently for that long;
    ``reset`` reads the request and then resets the connection without answering; ``queue`` puts a job on an
    account's list before answering (or resetting); ``on_request`` runs when the request has arrived, before
    the answer (for example to change the account's list before the client looks at it again)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Iterable[bytes] | None = None
    delay: float = 0.0
    cut: bool = False
    stall: float = 0.0
    reset: bool = False
    queue: Queue | None = None
    on_request: Callable[[], None] | None = None


@dataclass
class Job:
    """A video on an account's list."""

    video_id: str
    item: dict[str, Any]
    states: list[dict[str, Any]]
    reply_ref: str | None = None
    tracked: bool = False
    listed: bool = True
    started: float = field(default_factory=time.time)

    def current(self) -> dict[str, Any]:
        return {**self.item, **self.states[0]}

    def advance(self) -> dict[str, Any]:
        state = self.current()
        if len(self.states) > 1:
            self.states.pop(0)
        return state


class ScriptedServer:
    """``routes[(method, path)]`` is a list of replies used in order; the last one repeats.

    ``accounts`` maps account ids to their GET accounts bodies; GET accounts answers them unless scripted.
    """

    def __init__(self, accounts: dict[str, dict[str, Any]] | None = None) -> None:
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.counts: dict[tuple[str, str], int] = defaultdict(int)
        self.accounts = dict(accounts or {})
        self.videos: dict[str, list[Job]] = defaultdict(list)  # account -> jobs, newest first
        self._next_video = 7000000
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

    def sent(self, method: str, path: str) -> list[tuple[str, dict[str, list[str]], bytes]]:
        """The requests to one route: (full path, query, body)."""
        out = []
        for m, full, _headers, body in self.requests:
            parts = urlsplit(full)
            if m == method and _route(parts.path) == path:
                out.append((full, parse_qs(parts.query), body))
        return out

    def add_video(
        self,
        account: str,
        desc: str | None,
        states: list[dict[str, Any]] | None = None,
        *,
        file_id: str | None = None,
        reply_ref: str | None = None,
        tracked: bool = False,
        listed: bool = True,
    ) -> str:
        """Put a job on the top of an account's list (as the newest); returns its videoId."""
        with self._lock:
            self._next_video += 1
            number = self._next_video
        video_id = f"user:{USER}-minimax:{account}-video:{number}"
        item: dict[str, Any] = {"id": str(number), "videoId": video_id, "desc": desc or "", "canRetry": False}
        if file_id:
            item["originFiles"] = [{"id": file_id, "url": "https://cdn.hailuoai.video/in.png", "type": "png"}]
        job = Job(
            video_id,
            item,
            list(states or [processing(), completed(str(number))]),
            reply_ref=reply_ref,
            tracked=tracked,
            listed=listed,
        )
        with self._lock:
            self.videos[account].insert(0, job)
        return video_id

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _next(self, method: str, path: str, query: dict[str, list[str]]) -> Reply:
        account = (query.get("account") or [None])[0]
        with self._lock:
            self.counts[(method, path)] += 1
            if (method, path) in ACCOUNT_ROUTES and len(self.accounts) > 1 and not account:
                # GUESS: the message; the pages say only that the parameter "becomes required".
                return Reply(
                    400,
                    {"error": "Parameter account is required (several accounts are configured)", "code": 400},
                )
            queue = self.routes.get((method, path))
            if queue:
                return queue.pop(0) if len(queue) > 1 else queue[0]
        if method == "GET" and path == "accounts" and self.accounts:
            return Reply(body=self.accounts)
        if method == "GET" and path == "videos/":
            return Reply(body=self._list(account, query))
        if method == "GET" and path == "scheduler/available":
            return Reply(body=self._scheduler())
        if method == "GET" and path.startswith("videos/"):
            job = self._job(path[len("videos/") :])
            if job is not None:
                with self._lock:
                    return Reply(body=job.advance())
        return Reply(404, {"error": "Not found.", "code": 404})

    def _list(self, account: str | None, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        if account is None and len(self.accounts) <= 1:
            account = next(iter(self.accounts), None) or next(iter(self.videos), None)
        limit = int((query.get("limit") or ["30"])[0])
        last = (query.get("lastVideoId") or [None])[0]
        with self._lock:
            jobs = [j for j in self.videos.get(account or "", []) if j.listed]
            if last is not None:
                keys = [(j.video_id, j.item["id"]) for j in jobs]
                start = next((i + 1 for i, k in enumerate(keys) if last in k), len(jobs))
                jobs = jobs[start:]
            return [j.current() for j in jobs[:limit]]

    def _scheduler(self) -> dict[str, Any]:
        """GET scheduler/available as documented: ISO 8601 ``started`` with milliseconds, ``"mm:ss"`` elapsed."""
        now = time.time()
        executing = []
        with self._lock:
            for jobs in self.videos.values():
                for job in jobs:
                    if job.tracked and not job.current().get("statusFinal"):
                        elapsed = int(now - job.started)
                        started = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(job.started))
                        executing.append(
                            {
                                "videoId": job.video_id,
                                "started": f"{started}.{int(job.started * 1000) % 1000:03d}Z",
                                "elapsed": f"{elapsed // 60:02d}:{elapsed % 60:02d}",
                                "replyRef": job.reply_ref,
                            }
                        )
        return {"executing": executing, "available": []}

    def _job(self, video_id: str) -> Job | None:
        with self._lock:
            for jobs in self.videos.values():
                for job in jobs:
                    if job.video_id == video_id:
                        return job
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def finish(self) -> None:
                with contextlib.suppress(OSError):
                    super().finish()

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                route = _route(parts.path)
                query = parse_qs(parts.query)
                with server._lock:
                    server.requests.append((method, self.path, dict(self.headers), body))
                reply = server._next(method, route, query)
                if reply.queue is not None:
                    fields = _form(body)
                    server.add_video(
                        reply.queue.account,
                        fields.get("prompt"),
                        [dict(s) for s in reply.queue.states],
                        file_id=fields.get("fileID"),
                        reply_ref=fields.get("replyRef"),
                        tracked=reply.queue.tracked,
                        listed=reply.queue.listed,
                    )
                if reply.on_request is not None:
                    reply.on_request()
                if reply.reset:
                    # SO_LINGER 0: close() sends a TCP reset, as a proxy that drops the connection does.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
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


def _route(path: str) -> str:
    prefix = "/v1/minimax/"
    route = path[len(prefix) :] if path.startswith(prefix) else path
    return "videos/" if route == "videos" else route


def _form(body: bytes) -> dict[str, str]:
    """The fields of a JSON or form-encoded create body."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {k: v[0] for k, v in parse_qs(body.decode()).items()}
    return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def sse(*payloads: dict[str, Any] | str) -> list[bytes]:
    """Events as SSE chunks, one chunk per event."""
    out = []
    for p in payloads:
        text = p if isinstance(p, str) else json.dumps(p)
        out.append(f"data: {text}\n\n".encode())
    return out
