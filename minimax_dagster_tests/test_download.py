"""Fetching under the policy (minimax_dagster.storage.download): redirects checked hop by hop against a real
local HTTP source, and the FillingReader's exact, counted, size-capped reads."""

from __future__ import annotations

import hashlib
import io

import pytest

from minimax_dagster.storage import (
    DownloadFailed,
    DownloadPolicy,
    DownloadRefused,
    DownloadTooLarge,
    FillingReader,
    open_download,
)
from minimax_dagster_tests.http_source import SourceHandler, body_of
from minimax_dagster_tests.storage_support import assert_nothing_left, upload

# ---------------------------------------------------------------------------------------------------- redirects


def test_redirect_to_allowed_host(s3_client, bucket, http_source, second_http_source, http_session) -> None:
    policy = DownloadPolicy(allowed_hosts=(http_source, second_http_source))
    result = upload(
        s3_client, bucket, f"{http_source}/redirect?to={second_http_source}/bytes/5000", policy, http_session
    )
    assert result.bytes == 5000


def test_relative_redirect_chain(s3_client, bucket, http_source, download_policy, http_session) -> None:
    assert upload(s3_client, bucket, f"{http_source}/chain/5", download_policy, http_session).bytes == 1000
    with pytest.raises(DownloadFailed, match="more than 5 redirects"):
        upload(s3_client, bucket, f"{http_source}/chain/6", download_policy, http_session)


@pytest.mark.parametrize(
    "target",
    [
        "http://evil.example/x.mp4",
        "ftp://127.0.0.1/x.mp4",
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_redirect_to_disallowed_target(
    s3_client, bucket, http_source, download_policy, http_session, target
) -> None:
    before = len(SourceHandler.requests_seen)
    with pytest.raises(DownloadRefused):
        upload(s3_client, bucket, f"{http_source}/redirect?to={target}", download_policy, http_session)
    assert len(SourceHandler.requests_seen) == before + 1
    assert_nothing_left(s3_client, bucket)


def test_redirect_to_unlisted_port_of_same_host(
    s3_client, bucket, http_source, second_http_source, download_policy, http_session
) -> None:
    with pytest.raises(DownloadRefused, match="not in allowed_hosts"):
        upload(
            s3_client,
            bucket,
            f"{http_source}/redirect?to={second_http_source}/bytes/10",
            download_policy,
            http_session,
        )


def test_open_download_returns_a_stream(http_source, download_policy, http_session) -> None:
    response = open_download(f"{http_source}/bytes/4096", policy=download_policy, session=http_session)
    try:
        assert response.status_code == 200
        assert response.raw.read(10) == body_of(4096)[:10]
    finally:
        response.close()


# ---------------------------------------------------------------------------------------------------- FillingReader


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
