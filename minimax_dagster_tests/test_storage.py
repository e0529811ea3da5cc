"""Tests of minimax_dagster.storage against a real moto S3 server and a real local HTTP server."""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import io
import random
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from minimax_dagster.storage import (
    CorruptObject,
    DownloadFailed,
    DownloadPolicy,
    DownloadRefused,
    DownloadTooLarge,
    FillingReader,
    JobRecord,
    StorageError,
    UploadFailed,
    VideoKeys,
    abort_stale_multipart_uploads,
    get_json,
    head_object,
    open_download,
    prompt_sha256,
    put_bytes,
    put_json,
    read_head_bytes,
    read_job_record,
    redact_url,
    s3_client_config,
    s3_uri,
    safe_key_part,
    transfer_config,
    upload_from_url,
    video_key,
    write_job_record,
)

MiB = 1024 * 1024
PART = 5 * MiB  # S3's minimum part size: the smallest part_size that makes real multipart uploads


# --------------------------------------------------------------------------------------------------
# Fixtures: moto S3 server
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_client(moto_s3_endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=moto_s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=s3_client_config(),
    )


@pytest.fixture
def bucket(s3_client: Any) -> str:
    name = f"test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    return name


def open_uploads(s3_client: Any, bucket: str) -> list[dict[str, Any]]:
    return s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def object_sha256(s3_client: Any, bucket: str, key: str) -> str:
    digest = hashlib.sha256()
    body = s3_client.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(MiB), b""):
        digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------
# Fixtures: a real HTTP source
# --------------------------------------------------------------------------------------------------

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
    /gzip/N, /slow/N?delay=S, /stall/N?after=K&sleep=S, /status/CODE, /redirect?to=URL,
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


def _serve() -> tuple[_Server, str]:
    server = _Server(("127.0.0.1", 0), SourceHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="session")
def source() -> Iterator[str]:
    server, origin = _serve()
    try:
        yield origin
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def second_source() -> Iterator[str]:
    server, origin = _serve()
    try:
        yield origin
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def policy(source: str) -> DownloadPolicy:
    return DownloadPolicy(allowed_hosts=(source,), read_timeout=5)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def upload(
    s3_client: Any, bucket: str, url: str, policy: DownloadPolicy, session: requests.Session, **kw: Any
):
    return upload_from_url(
        s3_client, bucket, "p/videos/v1-test.mp4", url, policy=policy, session=session, **kw
    )


def assert_nothing_left(s3_client: Any, bucket: str, key: str = "p/videos/v1-test.mp4") -> None:
    assert head_object(s3_client, bucket, key) is None
    assert open_uploads(s3_client, bucket) == []


# --------------------------------------------------------------------------------------------------
# Client config
# --------------------------------------------------------------------------------------------------


def test_s3_client_config() -> None:
    cfg = s3_client_config()
    assert cfg.request_checksum_calculation == "when_required"
    assert cfg.response_checksum_validation == "when_required"
    assert cfg.retries == {"max_attempts": 5, "mode": "standard"}


def test_transfer_config_bounds_memory() -> None:
    cfg = transfer_config(PART, 3)
    assert (cfg.multipart_threshold, cfg.multipart_chunksize) == (PART, PART)
    assert cfg.max_request_concurrency == 3
    assert cfg.max_in_memory_upload_chunks == 3
    with pytest.raises(ValueError, match="part_size"):
        transfer_config(MiB)


# --------------------------------------------------------------------------------------------------
# Streaming uploads
# --------------------------------------------------------------------------------------------------


def test_40_mib_lands_intact_as_multipart(s3_client, bucket, source, policy, session) -> None:
    n = 40 * MiB
    result = upload(
        s3_client,
        bucket,
        f"{source}/bytes/{n}",
        policy,
        session,
        part_size=PART,
        metadata={"template-id": "392747428568649728", "prompt_sha256": "ab" * 32},
    )
    expected = hashlib.sha256(body_of(n)).hexdigest()
    assert result.bytes == n
    assert result.sha256 == expected
    assert result.first_bytes == body_of(n)[:64]
    assert result.etag.endswith("-8")  # 40 MiB / 5 MiB parts: a multipart ETag
    assert result.seconds > 0
    assert result.uri == f"s3://{bucket}/p/videos/v1-test.mp4"
    assert object_sha256(s3_client, bucket, result.key) == expected
    head = head_object(s3_client, bucket, result.key)
    assert head is not None
    assert head["ContentType"] == "video/mp4"
    assert head["Metadata"] == {"template-id": "392747428568649728", "prompt_sha256": "ab" * 32}
    assert head["ETag"].strip('"') == result.etag
    assert open_uploads(s3_client, bucket) == []


def test_small_body_single_put(s3_client, bucket, source, policy, session, s3_calls) -> None:
    result = upload(s3_client, bucket, f"{source}/bytes/1000", policy, session, content_type="image/png")
    assert s3_calls == ["PutObject"]  # no multipart upload, no HEAD afterwards
    assert result.bytes == 1000
    assert "-" not in result.etag  # a plain PUT
    head = head_object(s3_client, bucket, result.key)
    assert head["ContentType"] == "image/png"
    assert head["ETag"].strip('"') == result.etag
    assert object_sha256(s3_client, bucket, result.key) == hashlib.sha256(body_of(1000)).hexdigest()


def test_empty_body(s3_client, bucket, source, policy, session) -> None:
    result = upload(s3_client, bucket, f"{source}/bytes/0", policy, session)
    assert (result.bytes, result.first_bytes) == (0, b"")
    assert read_head_bytes(s3_client, bucket, result.key) == b""


def test_exactly_one_part(s3_client, bucket, source, policy, session, s3_calls) -> None:
    result = upload(s3_client, bucket, f"{source}/bytes/{PART}", policy, session, part_size=PART)
    assert s3_calls == ["PutObject"]
    assert result.bytes == PART
    assert "-" not in result.etag
    assert object_sha256(s3_client, bucket, result.key) == hashlib.sha256(body_of(PART)).hexdigest()


def test_one_byte_over_one_part_is_multipart(s3_client, bucket, source, policy, session, s3_calls) -> None:
    n = PART + 1
    result = upload(s3_client, bucket, f"{source}/bytes/{n}", policy, session, part_size=PART)
    assert result.bytes == n
    assert result.etag.endswith("-2")
    # The assembled object's size is checked with a HEAD.
    assert s3_calls == [
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPart",
        "CompleteMultipartUpload",
        "HeadObject",
    ]
    assert object_sha256(s3_client, bucket, result.key) == hashlib.sha256(body_of(n)).hexdigest()
    assert open_uploads(s3_client, bucket) == []


@pytest.mark.parametrize("route", ["chunked", "close"])
def test_bodies_without_content_length(s3_client, bucket, source, policy, session, route) -> None:
    n = 12 * MiB + 12345
    result = upload(s3_client, bucket, f"{source}/{route}/{n}", policy, session, part_size=PART)
    assert result.bytes == n
    assert result.etag.endswith("-3")
    assert object_sha256(s3_client, bucket, result.key) == hashlib.sha256(body_of(n)).hexdigest()


def test_gzip_body_is_stored_decoded(s3_client, bucket, source, policy, session) -> None:
    n = 3 * MiB
    result = upload(s3_client, bucket, f"{source}/gzip/{n}", policy, session)
    assert result.bytes == n
    assert object_sha256(s3_client, bucket, result.key) == hashlib.sha256(body_of(n)).hexdigest()


def test_sends_identity_and_no_session_credentials(s3_client, bucket, source, policy, session) -> None:
    session.headers["Authorization"] = "Bearer api-token"
    session.auth = ("user", "secret")
    upload(s3_client, bucket, f"{source}/bytes/100?probe=identity", policy, session)
    seen = [r for r in SourceHandler.requests_seen if r["path"].endswith("probe=identity")][-1]
    assert seen["accept-encoding"] == "identity"
    assert "authorization" not in seen


@pytest.fixture
def s3_calls(s3_client: Any) -> Iterator[list[str]]:
    """Names of the S3 operations the client makes during the test."""
    calls: list[str] = []
    events = s3_client.meta.events
    ops = (
        "PutObject",
        "HeadObject",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
    )
    for op in ops:
        events.register(
            f"before-call.s3.{op}", lambda op=op, **_: calls.append(op), unique_id=f"s3-calls-{op}"
        )
    try:
        yield calls
    finally:
        for op in ops:
            events.unregister(f"before-call.s3.{op}", unique_id=f"s3-calls-{op}")


@pytest.mark.parametrize(
    ("path", "multipart"),
    [
        (f"cut/{12 * MiB}/{7 * MiB}", True),  # Content-Length, cut after the first part was read
        (f"cut/{12 * MiB}/{2 * MiB}", False),  # Content-Length, cut inside the first part
        (f"cut-chunked/{12 * MiB}/{7 * MiB}", True),  # chunked, no terminating chunk
        (f"cut/{3 * MiB}/{MiB}", False),  # below the multipart threshold
    ],
)
def test_cut_body_fails_and_leaves_nothing(
    s3_client, bucket, source, policy, session, s3_calls, path, multipart
) -> None:
    with pytest.raises(DownloadFailed, match=r"IncompleteRead|bytes \(Content-Length\)") as info:
        upload(s3_client, bucket, f"{source}/{path}", policy, session, part_size=PART)
    assert "p/videos/v1-test.mp4" in str(info.value)
    assert "CompleteMultipartUpload" not in s3_calls and "PutObject" not in s3_calls
    if multipart:  # the abort path was really exercised
        assert "CreateMultipartUpload" in s3_calls and "AbortMultipartUpload" in s3_calls
    assert_nothing_left(s3_client, bucket)


def test_cut_close_delimited_body_is_indistinguishable_from_a_normal_end(
    s3_client, bucket, source, policy, session
) -> None:
    # Known limitation (HTTP/1.1 itself): without Content-Length or chunking, a cut is an EOF.
    # The caller must check the size / first bytes against what the API reported.
    result = upload(s3_client, bucket, f"{source}/cut-close/{3 * MiB}/{MiB}", policy, session)
    assert result.bytes == MiB


def test_existing_object_survives_a_failed_upload(s3_client, bucket, source, policy, session) -> None:
    put_bytes(s3_client, bucket, "p/videos/v1-test.mp4", b"good video")
    with pytest.raises(DownloadFailed):
        upload(s3_client, bucket, f"{source}/cut/{12 * MiB}/{7 * MiB}", policy, session, part_size=PART)
    assert read_head_bytes(s3_client, bucket, "p/videos/v1-test.mp4") == b"good video"
    assert open_uploads(s3_client, bucket) == []


def test_max_bytes_from_content_length(s3_client, bucket, source, session) -> None:
    policy = DownloadPolicy(allowed_hosts=(source,), max_bytes=10 * MiB)
    with pytest.raises(DownloadTooLarge, match="Content-Length"):
        upload(s3_client, bucket, f"{source}/bytes/{12 * MiB}", policy, session, part_size=PART)
    assert_nothing_left(s3_client, bucket)


@pytest.mark.parametrize("route", ["chunked", "close"])
def test_max_bytes_while_streaming(s3_client, bucket, source, session, s3_calls, route) -> None:
    policy = DownloadPolicy(allowed_hosts=(source,), max_bytes=7 * MiB)
    with pytest.raises(DownloadTooLarge, match="max_bytes"):
        upload(s3_client, bucket, f"{source}/{route}/{12 * MiB}", policy, session, part_size=PART)
    assert "AbortMultipartUpload" in s3_calls
    assert_nothing_left(s3_client, bucket)


def test_max_bytes_exact_limit_is_allowed(s3_client, bucket, source, session) -> None:
    policy = DownloadPolicy(allowed_hosts=(source,), max_bytes=100_000)
    assert upload(s3_client, bucket, f"{source}/chunked/100000", policy, session).bytes == 100_000


def test_slow_body_within_read_timeout(s3_client, bucket, source, session) -> None:
    policy = DownloadPolicy(allowed_hosts=(source,), read_timeout=2)
    result = upload(s3_client, bucket, f"{source}/slow/200000?delay=0.05", policy, session)
    assert result.bytes == 200_000


def test_stalled_body_times_out(s3_client, bucket, source, session) -> None:
    policy = DownloadPolicy(allowed_hosts=(source,), read_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(DownloadFailed, match=r"(?i)timed out|timeout"):
        upload(s3_client, bucket, f"{source}/stall/100000?after=1000&sleep=3", policy, session)
    assert time.monotonic() - started < 2.5
    assert_nothing_left(s3_client, bucket)


def test_http_error_status(s3_client, bucket, source, policy, session) -> None:
    with pytest.raises(DownloadFailed) as info:
        upload(s3_client, bucket, f"{source}/status/403?X-Amz-Signature=topsecret", policy, session)
    assert info.value.status == 403
    assert "topsecret" not in str(info.value)
    assert "?…" in str(info.value)
    assert_nothing_left(s3_client, bucket)


def test_connection_error_message_has_no_query_string(s3_client, bucket, session) -> None:
    policy = DownloadPolicy(allowed_hosts=("http://127.0.0.1:1",), connect_timeout=1)
    url = "http://127.0.0.1:1/v.mp4?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=topsecret"
    with pytest.raises(DownloadFailed) as info:
        upload(s3_client, bucket, url, policy, session)
    message = str(info.value)
    assert "ConnectionError" in message
    assert "topsecret" not in message and "AKIAEXAMPLE" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_s3_failure_is_upload_failed(s3_client, source, policy, session) -> None:
    with pytest.raises(UploadFailed) as info:
        upload(s3_client, "no-such-bucket-here", f"{source}/bytes/1000", policy, session)
    assert "s3://no-such-bucket-here/p/videos/v1-test.mp4" in str(info.value)
    assert isinstance(info.value, StorageError)


def test_s3_failure_mid_multipart_leaves_nothing(s3_client, bucket, source, policy, session) -> None:
    calls = {"n": 0}

    def fail_second_part(params: dict[str, Any], **_: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "UploadPart")

    events = s3_client.meta.events
    events.register("before-call.s3.UploadPart", fail_second_part, unique_id="fail-second-part")
    try:
        with pytest.raises(UploadFailed, match="injected"):
            upload(s3_client, bucket, f"{source}/bytes/{16 * MiB}", policy, session, part_size=PART)
    finally:
        events.unregister("before-call.s3.UploadPart", unique_id="fail-second-part")
    assert_nothing_left(s3_client, bucket)


def test_part_size_limits(s3_client, bucket, source, session) -> None:
    with pytest.raises(ValueError, match="part_size"):
        upload(
            s3_client,
            bucket,
            f"{source}/bytes/10",
            DownloadPolicy(allowed_hosts=(source,)),
            session,
            part_size=MiB,
        )
    huge = DownloadPolicy(allowed_hosts=(source,), max_bytes=10_000 * PART + 1)
    with pytest.raises(ValueError, match="too small for max_bytes"):
        upload(s3_client, bucket, f"{source}/bytes/10", huge, session, part_size=PART)


def test_metadata_must_be_header_safe(s3_client, bucket, source, policy, session) -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        upload(s3_client, bucket, f"{source}/bytes/10", policy, session, metadata={"prompt": "café"})
    with pytest.raises(ValueError, match="metadata key"):
        upload(s3_client, bucket, f"{source}/bytes/10", policy, session, metadata={"bad key": "x"})


# --------------------------------------------------------------------------------------------------
# Redirects
# --------------------------------------------------------------------------------------------------


def test_redirect_to_allowed_host(s3_client, bucket, source, second_source, session) -> None:
    policy = DownloadPolicy(allowed_hosts=(source, second_source))
    result = upload(s3_client, bucket, f"{source}/redirect?to={second_source}/bytes/5000", policy, session)
    assert result.bytes == 5000


def test_relative_redirect_chain(s3_client, bucket, source, policy, session) -> None:
    assert upload(s3_client, bucket, f"{source}/chain/5", policy, session).bytes == 1000
    with pytest.raises(DownloadFailed, match="more than 5 redirects"):
        upload(s3_client, bucket, f"{source}/chain/6", policy, session)


@pytest.mark.parametrize(
    "target",
    [
        "http://evil.example/x.mp4",
        "ftp://127.0.0.1/x.mp4",
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_redirect_to_disallowed_target(s3_client, bucket, source, policy, session, target) -> None:
    before = len(SourceHandler.requests_seen)
    with pytest.raises(DownloadRefused):
        upload(s3_client, bucket, f"{source}/redirect?to={target}", policy, session)
    assert len(SourceHandler.requests_seen) == before + 1
    assert_nothing_left(s3_client, bucket)


def test_redirect_to_unlisted_port_of_same_host(
    s3_client, bucket, source, second_source, policy, session
) -> None:
    with pytest.raises(DownloadRefused, match="not in allowed_hosts"):
        upload(s3_client, bucket, f"{source}/redirect?to={second_source}/bytes/10", policy, session)


def test_open_download_returns_a_stream(source, policy, session) -> None:
    response = open_download(f"{source}/bytes/4096", policy=policy, session=session)
    try:
        assert response.status_code == 200
        assert response.raw.read(10) == body_of(4096)[:10]
    finally:
        response.close()


# --------------------------------------------------------------------------------------------------
# Download policy
# --------------------------------------------------------------------------------------------------

POLICY = DownloadPolicy(allowed_hosts=("cdn.example.com", "*.oss.example.net", "http://127.0.0.1:8765"))


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example.com/v.mp4",
        "https://CDN.example.com./v.mp4?sig=1",
        "https://cdn.example.com:443/v.mp4",
        "https://a.oss.example.net/v.mp4",
        "https://a.b.oss.example.net/v.mp4",
        "http://127.0.0.1:8765/v.mp4",
    ],
)
def test_policy_allows(url: str) -> None:
    POLICY.check_url(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://cdn.example.com/v.mp4", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://cdn.example.com/", "scheme"),
        ("//cdn.example.com/v.mp4", "scheme ''"),
        ("http://evil.example/v.mp4", "not in allowed_hosts"),
        ("https://evil.example/v.mp4", "not in allowed_hosts"),
        ("https://user:pw@cdn.example.com/v.mp4", "userinfo"),
        ("https://cdn.example.com@evil.example/v.mp4", "userinfo"),
        ("http://cdn.example.com/v.mp4", "plain http"),
        ("http://a.oss.example.net/v.mp4", "plain http"),
        ("https://cdn.example.com:8443/v.mp4", "port 8443"),
        ("https://oss.example.net/v.mp4", "not in allowed_hosts"),
        ("https://evil-oss.example.net/v.mp4", "not in allowed_hosts"),
        ("https://cdn.example.com.evil.example/v.mp4", "not in allowed_hosts"),
        ("https://127.0.0.1:8765/v.mp4", "not in allowed_hosts"),
        ("http://127.0.0.1:8766/v.mp4", "not in allowed_hosts"),
        ("http://localhost:8765/v.mp4", "not in allowed_hosts"),
        ("https://cdn.example.com\\@evil.example/", "backslash"),
        ("https://cdn.example.com/v.mp4\r\nX: y", "control"),
        ("https://cdn.example.com:99999/v.mp4", "does not parse"),
        ("https:///v.mp4", "no host"),
        ("", "non-empty"),
    ],
)
def test_policy_refuses(url: str, reason: str) -> None:
    with pytest.raises(DownloadRefused, match=reason) as info:
        POLICY.check_url(url)
    assert isinstance(info.value, ValueError)
    assert "pw@" not in str(info.value)


@pytest.mark.parametrize(
    "entry",
    [
        "*.com",
        "*",
        "http://*.example.com",
        "https://cdn.example.com/path",
        "http://u@host:1",
        "a b",
        "",
        " x.com",
    ],
)
def test_policy_rejects_bad_entries(entry: str) -> None:
    with pytest.raises(ValueError, match="allowed_hosts"):
        DownloadPolicy(allowed_hosts=(entry,))


def test_policy_needs_hosts_and_is_frozen() -> None:
    with pytest.raises(ValueError):
        DownloadPolicy(allowed_hosts=())
    with pytest.raises(ValueError):
        POLICY.max_bytes = 1  # type: ignore[misc]
    assert POLICY.max_bytes == 8 * 1024**3
    assert POLICY.max_redirects == 5


def test_redact_url() -> None:
    assert redact_url("https://u:p@h.example/a?X-Amz-Signature=s#f") == "https://h.example/a?…"
    assert redact_url("http://[::1]:8080/x") == "http://[::1]:8080/x"
    assert redact_url("http://h:99999/") == "<unparseable URL>"


# --------------------------------------------------------------------------------------------------
# FillingReader
# --------------------------------------------------------------------------------------------------


class TrickleSource:
    """Returns at most `step` bytes per read, like a socket delivering packets."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self.data = io.BytesIO(data)
        self.step = step
        self.calls = 0

    def read(self, n: int) -> bytes:
        self.calls += 1
        return self.data.read(min(n, self.step))


class FailingSource:
    def __init__(self, data: bytes, exc: Exception) -> None:
        self.data = io.BytesIO(data)
        self.exc = exc

    def read(self, n: int) -> bytes:
        chunk = self.data.read(n)
        if not chunk:
            raise self.exc
        return chunk


def test_reader_fills_short_reads() -> None:
    data = bytes(range(256)) * 40
    source = TrickleSource(data, step=7)
    reader = FillingReader(source, max_bytes=len(data), expected_length=len(data))
    assert len(reader.read(1000)) == 1000
    assert source.calls > 100
    assert len(reader.read(5000)) == 5000
    rest = reader.read(10_000)
    assert len(rest) == len(data) - 6000
    assert reader.read(10) == b""
    assert reader.bytes_read == len(data)
    assert reader.first_bytes == data[:64]
    assert reader.sha256 == hashlib.sha256(data).hexdigest()


def test_reader_read_all_and_zero() -> None:
    reader = FillingReader(TrickleSource(b"x" * 100, 3), max_bytes=100, chunk_size=8)
    assert reader.read(0) == b""
    assert reader.read() == b"x" * 100
    assert reader.read(None) == b""
    assert reader.readable() and not reader.seekable()


def test_reader_short_body_against_content_length() -> None:
    reader = FillingReader(
        io.BytesIO(b"abc"), max_bytes=100, expected_length=10, url="https://h/x?s=1", key="k"
    )
    with pytest.raises(DownloadFailed, match="after 3 of 10 bytes") as info:
        reader.read(100)
    assert "?s=1" not in str(info.value)
    with pytest.raises(DownloadFailed):  # stays failed
        reader.read(1)


def test_reader_too_long_body_against_content_length() -> None:
    reader = FillingReader(io.BytesIO(b"abcdef"), max_bytes=100, expected_length=3)
    with pytest.raises(DownloadFailed, match="after 6 of 3"):
        reader.read()


def test_reader_max_bytes() -> None:
    source = TrickleSource(b"y" * 1000, 50)
    reader = FillingReader(source, max_bytes=100)
    assert len(reader.read(100)) == 100
    with pytest.raises(DownloadTooLarge):
        reader.read(100)
    assert reader.bytes_read == 101  # reads at most one byte past the limit


def test_reader_wraps_source_errors() -> None:
    import urllib3.exceptions

    exc = urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead(3 bytes read)")
    reader = FillingReader(FailingSource(b"abc", exc), max_bytes=100, url="https://h/x?sig=1", key="k")
    with pytest.raises(DownloadFailed, match="ProtocolError") as info:
        reader.read(10)
    assert reader.error is info.value


# --------------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------------


def test_video_key_is_deterministic_and_distinct() -> None:
    k = video_key("392747428568649728", "a cat surfing", None)
    assert k == video_key("392747428568649728", "a cat surfing", None)
    assert k.startswith("v1-") and len(k) == 35
    int(k[3:], 16)
    others = {
        video_key("392747428568649728", "a cat surfing ", None),
        video_key("392747428568649728", None, None),
        video_key("392747428568649728", "", None),
        video_key("392747428568649728", "a cat surfing", "file-1"),
        video_key("393769180141805569", "a cat surfing", None),
        # field boundaries are part of the hash: moving text between fields changes the key
        video_key("392747428568649728", None, "a cat surfing"),
    }
    assert k not in others and len(others) == 6


def test_video_key_pinned() -> None:
    # The key scheme must never change silently: stored videos are found by it.
    assert (
        video_key("t", "p", None)
        == "v1-"
        + hashlib.sha256(b'{"file_ref":null,"prompt":"p","template_id":"t","v":"v1"}').hexdigest()[:32]
    )


@pytest.mark.parametrize(
    "prompt",
    ["../../../etc/passwd", "/absolute/path", "a\x00b\r\nc", "x" * 100_000, "🎬 ñ \u202e", "a/b/../../.."],
)
def test_prompts_never_reach_the_key_path(prompt: str) -> None:
    keys = VideoKeys("minimax", video_key("../../t", prompt, "../f"))
    for path in (keys.video, keys.poster, keys.sidecar, keys.job):
        assert path.startswith("minimax/")
        assert ".." not in path and "\\" not in path and len(path) < 100
        assert path.split("/")[-1].startswith(keys.key)


def test_video_key_input_types() -> None:
    with pytest.raises(ValueError, match="template_id"):
        video_key("", "p", None)
    with pytest.raises(ValueError, match="prompt"):
        video_key("t", 5, None)  # type: ignore[arg-type]


def test_video_keys_paths() -> None:
    keys = VideoKeys("/".join(["minimax", "prod"]) + "//", "v1-abc")
    assert keys.prefix == "minimax/prod"
    assert keys.video == "minimax/prod/videos/v1-abc.mp4"
    assert keys.poster == "minimax/prod/videos/v1-abc.png"
    assert keys.sidecar == "minimax/prod/videos/v1-abc.json"
    assert keys.job == "minimax/prod/_jobs/v1-abc.json"
    assert VideoKeys("", "v1-abc").video == "videos/v1-abc.mp4"
    assert VideoKeys("date=2024-01-01", "v1-abc").video.startswith("date=2024-01-01/")


@pytest.mark.parametrize(
    "prefix",
    [
        "../x",
        "a/../b",
        "a/./b",
        "..",
        "/abs",
        "/",
        "//",
        "a//b",
        "a\\b",
        "C:/x",
        "s3://bucket/x",
        "a\x00b",
        "a\nb",
        "a\u200bb",
        "sp ace",
        "x" * 600,
    ],
)
def test_bad_prefixes(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix") as info:
        VideoKeys(prefix, "v1-abc")
    assert "such as" in str(info.value)  # says how to fix it


@pytest.mark.parametrize("key", ["../x", ".hidden", "a/b", "", "a..b", "x" * 201, "a b"])
def test_bad_keys(key: str) -> None:
    with pytest.raises(ValueError, match="key"):
        VideoKeys("p", key)


def test_video_keys_frozen() -> None:
    keys = VideoKeys("p", "v1-abc")
    with pytest.raises(AttributeError):
        keys.prefix = "q"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Run for Life!", "Run-for-Life"),
        ("../../etc/passwd", "etc-passwd"),
        ("..", None),
        ("Café", "Cafe"),
        ("a" * 100, "a" * 64),
        ("", None),
    ],
)
def test_safe_key_part(text: str, expected: str | None) -> None:
    part = safe_key_part(text)
    if expected is not None:
        assert part == expected
    else:
        assert part.startswith("h-")
    VideoKeys(part, "v1-x")  # always usable as a prefix segment
    VideoKeys("p", part)  # and as a key


# --------------------------------------------------------------------------------------------------
# Small objects
# --------------------------------------------------------------------------------------------------


def test_json_round_trip(s3_client, bucket) -> None:
    obj = {"prompt": "un chat qui surfe 🏄", "n": [1, 2.5, None, True], "nested": {"a": {}}}
    etag = put_json(s3_client, bucket, "p/videos/v1-x.json", obj)
    assert etag and '"' not in etag
    assert get_json(s3_client, bucket, "p/videos/v1-x.json") == obj
    assert head_object(s3_client, bucket, "p/videos/v1-x.json")["ContentType"] == "application/json"
    assert get_json(s3_client, bucket, "p/videos/missing.json") is None


def test_json_refuses_nan(s3_client, bucket) -> None:
    with pytest.raises(ValueError):
        put_json(s3_client, bucket, "k.json", {"x": float("nan")})


def test_get_json_corrupt(s3_client, bucket) -> None:
    put_bytes(s3_client, bucket, "bad.json", b"{not json")
    with pytest.raises(CorruptObject, match=r"bad\.json"):
        get_json(s3_client, bucket, "bad.json")


def test_missing_bucket_is_not_a_missing_key(s3_client) -> None:
    with pytest.raises(ClientError):
        get_json(s3_client, "no-such-bucket-here", "k.json")


def test_put_bytes_head_and_range(s3_client, bucket) -> None:
    data = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 10
    put_bytes(s3_client, bucket, "v.mp4", data, content_type="video/mp4", metadata={"a": "b"})
    head = head_object(s3_client, bucket, "v.mp4")
    assert head is not None
    assert head["ContentLength"] == len(data)
    assert head["Metadata"] == {"a": "b"}
    assert read_head_bytes(s3_client, bucket, "v.mp4") == data[:64]
    assert read_head_bytes(s3_client, bucket, "v.mp4", 8)[4:8] == b"ftyp"
    assert read_head_bytes(s3_client, bucket, "v.mp4", 10_000) == data
    assert read_head_bytes(s3_client, bucket, "missing") is None
    assert head_object(s3_client, bucket, "missing") is None
    put_bytes(s3_client, bucket, "empty", b"")
    assert read_head_bytes(s3_client, bucket, "empty") == b""


def test_s3_uri() -> None:
    assert s3_uri("b", "p/videos/v1-x.mp4") == "s3://b/p/videos/v1-x.mp4"


# --------------------------------------------------------------------------------------------------
# Job records
# --------------------------------------------------------------------------------------------------


def test_job_record_round_trip(s3_client, bucket) -> None:
    keys = VideoKeys("minimax", video_key("t", "a cat", None))
    assert read_job_record(s3_client, bucket, keys) is None
    record = JobRecord(
        key=keys.key,
        video_id="user:1-minimax:2-video:3",
        template_id="t",
        prompt_sha256=prompt_sha256("a cat"),
        account="acct-1",
        status="running",
        extra={"replyRef": "r", "attempt": 1},
    )
    write_job_record(s3_client, bucket, keys, record)
    loaded = read_job_record(s3_client, bucket, keys)
    assert loaded == record
    dt.datetime.fromisoformat(loaded.created_at)

    finished = record.model_copy(update={"status": "finished"})
    write_job_record(s3_client, bucket, keys, finished)
    assert read_job_record(s3_client, bucket, keys).status == "finished"
    assert get_json(s3_client, bucket, keys.job)["video_id"] == "user:1-minimax:2-video:3"


def test_job_record_validation(s3_client, bucket) -> None:
    keys = VideoKeys("minimax", "v1-abc")
    with pytest.raises(ValueError, match="status"):
        JobRecord(key="v1-abc", video_id="1", template_id="t", prompt_sha256="", status="done")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="created_at"):
        JobRecord(key="v1-abc", video_id="1", template_id="t", prompt_sha256="", created_at="yesterday")
    other = JobRecord(key="v1-other", video_id="1", template_id="t", prompt_sha256="")
    with pytest.raises(ValueError, match="does not match"):
        write_job_record(s3_client, bucket, keys, other)


def test_job_record_ignores_unknown_fields_but_refuses_invalid(s3_client, bucket) -> None:
    keys = VideoKeys("minimax", "v1-abc")
    base = {"key": "v1-abc", "video_id": "1", "template_id": "t", "prompt_sha256": "", "status": "failed"}
    put_json(s3_client, bucket, keys.job, {**base, "future_field": 1})
    assert read_job_record(s3_client, bucket, keys).status == "failed"
    put_json(s3_client, bucket, keys.job, {**base, "video_id": None})
    with pytest.raises(CorruptObject, match="invalid job record"):
        read_job_record(s3_client, bucket, keys)


# --------------------------------------------------------------------------------------------------
# Stale multipart uploads
# --------------------------------------------------------------------------------------------------


def test_abort_stale_multipart_uploads(s3_client, bucket) -> None:
    s3_client.create_multipart_upload(Bucket=bucket, Key="minimax/videos/v1-a.mp4")
    s3_client.create_multipart_upload(Bucket=bucket, Key="minimax/videos/v1-b.mp4")
    s3_client.create_multipart_upload(Bucket=bucket, Key="other/v1-c.mp4")
    s3_client.upload_part(
        Bucket=bucket,
        Key="minimax/videos/v1-a.mp4",
        UploadId=open_uploads(s3_client, bucket)[0]["UploadId"],
        PartNumber=1,
        Body=b"x" * 10,
    )
    # moto reports a fixed Initiated time (2010-11-10T20:48:33Z) for every upload, so the age
    # filter is checked against a clock placed relative to what the server reports.
    initiated = max(u["Initiated"] for u in open_uploads(s3_client, bucket))
    soon_after = lambda: initiated + dt.timedelta(minutes=30)  # noqa: E731
    later = lambda: initiated + dt.timedelta(hours=2)  # noqa: E731
    hour = dt.timedelta(hours=1)
    assert abort_stale_multipart_uploads(s3_client, bucket, "minimax/", older_than=hour, now=soon_after) == 0
    assert len(open_uploads(s3_client, bucket)) == 3
    assert abort_stale_multipart_uploads(s3_client, bucket, "minimax/", older_than=hour, now=later) == 2
    assert [u["Key"] for u in open_uploads(s3_client, bucket)] == ["other/v1-c.mp4"]
    assert abort_stale_multipart_uploads(s3_client, bucket, "minimax/") == 0
    assert abort_stale_multipart_uploads(s3_client, bucket, "") == 1
    assert open_uploads(s3_client, bucket) == []
