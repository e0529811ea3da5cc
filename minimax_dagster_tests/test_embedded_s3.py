"""The embedded S3 server keeps HTTP/1.1 connections open, as S3 does, and every request on a kept connection is
answered whole: bodies the app read, bodies it left unread, chunked bodies, 100-continue, HEAD and errors."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def connection(s3_endpoint: str, bucket: str) -> Iterator[http.client.HTTPConnection]:
    host, port = s3_endpoint.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    yield conn
    conn.close()


def _signed(s3_client: Any, operation: str, **params: Any) -> str:
    """The path and query of a presigned request (moto checks the signature of reads)."""
    url: str = s3_client.generate_presigned_url(operation, Params=params, ExpiresIn=600)
    return "/" + url.split("/", 3)[3]


def _exchange(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, http.client.HTTPResponse]:
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.read(), response


def test_one_connection_serves_a_sequence_of_requests(
    connection: http.client.HTTPConnection, s3_client: Any, bucket: str
) -> None:
    a = {"Bucket": bucket, "Key": "kept/a"}
    status, _, first = _exchange(connection, "PUT", _signed(s3_client, "put_object", **a), body=b"x" * 5000)
    assert status == 200 and not first.will_close
    sock = connection.sock
    get_a = _signed(s3_client, "get_object", **a)
    steps = [
        ("GET", get_a, None, {}, 200, b"x" * 5000),
        ("HEAD", _signed(s3_client, "head_object", **a), None, {}, 200, b""),
        # A conditional PUT that fails: the 412 is answered, and the body it did not need is skipped.
        ("PUT", _signed(s3_client, "put_object", **a), b"y" * 70000, {"If-None-Match": "*"}, 412, None),
        ("GET", get_a, None, {}, 200, b"x" * 5000),
        ("GET", _signed(s3_client, "get_object", Bucket=bucket, Key="kept/missing"), None, {}, 404, None),
        ("DELETE", _signed(s3_client, "delete_object", **a), None, {}, 204, b""),
        ("GET", _signed(s3_client, "list_objects_v2", Bucket=bucket, Prefix="kept/"), None, {}, 200, None),
    ]
    for method, path, body, headers, want_status, want_body in steps:
        status, data, response = _exchange(connection, method, path, body, headers)
        assert status == want_status, (method, path, data[:200])
        if want_body is not None:
            assert data == want_body, (method, path)
        assert not response.will_close, (method, path)
        assert connection.sock is sock, f"{method} {path} opened a new connection"


def test_chunked_and_100_continue_bodies_leave_the_connection_usable(
    connection: http.client.HTTPConnection, s3_client: Any, bucket: str
) -> None:
    chunked = {"Bucket": bucket, "Key": "kept/chunked"}
    expect = {"Bucket": bucket, "Key": "kept/expect"}
    chunks = [b"a" * 1000, b"b" * 3000, b"c"]
    put_chunked = _signed(s3_client, "put_object", **chunked)
    status, _, _ = _exchange(connection, "PUT", put_chunked, body=iter(chunks))  # no length: sent chunked
    assert status == 200
    sock = connection.sock
    connection.putrequest("PUT", _signed(s3_client, "put_object", **expect))
    connection.putheader("Content-Length", "4")
    connection.putheader("Expect", "100-continue")
    connection.endheaders()
    connection.send(b"wxyz")
    response = connection.getresponse()
    assert response.status == 200 and not response.will_close
    response.read()
    assert _exchange(connection, "GET", _signed(s3_client, "get_object", **chunked))[1] == b"".join(chunks)
    assert _exchange(connection, "GET", _signed(s3_client, "get_object", **expect))[1] == b"wxyz"
    assert connection.sock is sock


def test_a_client_that_asks_to_close_is_answered_and_closed(
    connection: http.client.HTTPConnection, s3_client: Any, bucket: str
) -> None:
    missing = _signed(s3_client, "get_object", Bucket=bucket, Key="kept/none")
    status, _, response = _exchange(connection, "GET", missing, headers={"Connection": "close"})
    assert status == 404 and response.will_close


def test_stopping_the_server_drops_its_kept_connections_as_an_outage_would() -> None:
    # A stopped server that still answered on kept connections would hide an outage from a fault test: the
    # client's next request on its kept connection must fail, as a new connection's does.
    import boto3
    from botocore.config import Config

    from minimax_dagster.embedded.s3 import EmbeddedS3Server

    server = EmbeddedS3Server().start()
    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )
    client.create_bucket(Bucket="outage")
    client.put_object(Bucket="outage", Key="a", Body=b"a")  # the connection is now kept
    server.stop()
    with pytest.raises(Exception, match=r"(?i)connect|closed|reset|aborted"):
        client.head_object(Bucket="outage", Key="a")


def test_an_idle_kept_connection_closing_is_not_logged_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    # http.server logs "Request timed out" when a kept connection idles past the handler's timeout: normal for
    # a keep-alive server (S3 closes idle connections too), and hundreds of such lines hid real errors.
    from minimax_dagster.embedded.keepalive import KeepAliveHandler

    handler = object.__new__(KeepAliveHandler)
    handler.client_address = ("127.0.0.1", 1)
    handler.requestline = ""
    with caplog.at_level("INFO", logger="werkzeug"):
        handler.log_error("Request timed out: %r", TimeoutError("timed out"))
        handler.log_error("code %d, message %s", 400, "Bad request syntax")
    messages = [r.getMessage() for r in caplog.records]
    assert not any("timed out" in m for m in messages), messages
    assert any("Bad request syntax" in m for m in messages), messages
