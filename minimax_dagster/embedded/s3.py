"""An S3 server for the demo, the tests and the benchmarks: moto's S3 on a loopback port, in a thread.

Real S3 guarantees that of two concurrent conditional PUTs of a key (``If-None-Match: *``, ``If-Match``) only
one succeeds; moto checks the condition and stores the object in two steps, so two requests landing in the same
millisecond could both win, and a listing iterates a dict that a concurrent write changes (moto answers 500
then). The video producer's claims rely on S3's guarantee, so :class:`SerializedWrites` gives it back: it runs the
requests that change or list a bucket's keys one at a time, per server (no patch of moto, nothing global). Bodies
are read before the lock is taken, so large uploads still stream in parallel.

Real S3 keeps HTTP/1.1 connections open; werkzeug's server closes every one (``Connection: close``), so against
it each S3 request of a client paid a TCP connect, and the server a thread. The server here answers with
keep-alive connections (:class:`~minimax_dagster.embedded.keepalive.KeepAliveHandler`), so the per-request costs measured here are the ones a client pays
against S3.

moto keeps its buckets in process-wide memory: every server of one process serves the same buckets.

>>> import boto3
>>> from minimax_dagster.storage import s3_client_config
>>> with EmbeddedS3Server() as server:
...     s3 = boto3.client("s3", endpoint_url=server.endpoint_url, region_name="us-east-1",
...                       aws_access_key_id="k", aws_secret_access_key="s", config=s3_client_config())
...     _ = s3.create_bucket(Bucket="doc-bucket")
...     _ = s3.put_object(Bucket="doc-bucket", Key="a", Body=b"1", IfNoneMatch="*")
...     s3.list_objects_v2(Bucket="doc-bucket")["KeyCount"]
1
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SerializedWrites:
    """WSGI middleware: a bucket's key writes, deletes, multipart completions and listings, one at a time.

    Only path-style requests are told apart (``/<bucket>/<key>``), which is what boto3 sends to an IP
    endpoint such as ``http://127.0.0.1:<port>``. Part uploads and object reads are never held back.

    >>> SerializedWrites.needs_lock({"REQUEST_METHOD": "PUT", "PATH_INFO": "/b/k", "QUERY_STRING": ""})
    True
    >>> SerializedWrites.needs_lock({"REQUEST_METHOD": "PUT", "PATH_INFO": "/b/k", "QUERY_STRING": "partNumber=1&uploadId=u"})
    False
    >>> SerializedWrites.needs_lock({"REQUEST_METHOD": "GET", "PATH_INFO": "/b/k", "QUERY_STRING": ""})
    False
    >>> SerializedWrites.needs_lock({"REQUEST_METHOD": "GET", "PATH_INFO": "/b", "QUERY_STRING": "list-type=2"})
    True
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self._lock = threading.Lock()

    @staticmethod
    def needs_lock(environ: dict[str, Any]) -> bool:
        """Whether the request changes or lists the keys of a bucket."""
        method = environ.get("REQUEST_METHOD", "GET")
        _bucket, _, key = environ.get("PATH_INFO", "/").lstrip("/").partition("/")
        if method == "POST":  # complete/create a multipart upload, delete many objects
            return True
        if not key:
            return method == "GET"  # a listing
        if method == "PUT":
            return "partNumber" not in parse_qs(environ.get("QUERY_STRING", ""))
        return method == "DELETE"

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self.needs_lock(environ):
            return self.app(environ, start_response)
        body = _read_body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        with self._lock:
            result = self.app(environ, start_response)
            try:
                return [b"".join(result)]  # the answer is built inside the lock too
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit():
        return bytes(stream.read(int(length)))
    if environ.get("wsgi.input_terminated"):  # chunked: the server ends the stream at the last chunk
        return bytes(stream.read())
    return b""


class EmbeddedS3Server:
    """moto's S3 service behind :class:`SerializedWrites`, served by werkzeug in a daemon thread.

    ``port=0`` takes a free port; :attr:`endpoint_url` tells which. Use as a context manager or call
    :meth:`start` / :meth:`stop`. Needs the ``simulator`` extra (``moto[server]``).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        """``http://<host>:<port>`` of the running server."""
        if self._server is None:
            raise RuntimeError("the S3 server is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> EmbeddedS3Server:
        """Bind the port and serve in a daemon thread."""
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        from minimax_dagster.embedded.keepalive import KeepAliveHandler

        if self._server is not None:
            raise RuntimeError("the S3 server is already started")
        app = SerializedWrites(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self.host, self.port, app, threaded=True, request_handler=KeepAliveHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-s3", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the port and drop the connections still open (idempotent)."""
        if self._server is None:
            return
        from minimax_dagster.embedded.keepalive import drop_connections

        self._server.shutdown()
        self._server.server_close()
        drop_connections(self._server)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> EmbeddedS3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.endpoint_url if self._server is not None else "not started"
        return f"EmbeddedS3Server({where})"
