"""Streaming a URL into S3 (minimax_dagster.storage.upload) against moto's S3 server and a real local HTTP
source: single PUT or multipart, bodies of every shape, and nothing left behind by any failure."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from minimax_dagster.storage import (
    DownloadFailed,
    DownloadPolicy,
    DownloadTooLarge,
    StorageError,
    UploadFailed,
    head_object,
    put_bytes,
    read_head_bytes,
)
from minimax_dagster_tests.http_source import MiB, SourceHandler, body_of
from minimax_dagster_tests.storage_support import (
    PART,
    assert_nothing_left,
    object_sha256,
    open_uploads,
    upload,
)


def test_40_mib_lands_intact_as_multipart(
    s3_client, bucket, http_source, download_policy, http_session
) -> None:
    n = 40 * MiB
    result = upload(
        s3_client,
        bucket,
        f"{http_source}/bytes/{n}",
        download_policy,
        http_session,
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


def test_small_body_single_put(
    s3_client, bucket, http_source, download_policy, http_session, s3_calls
) -> None:
    result = upload(
        s3_client,
        bucket,
        f"{http_source}/bytes/1000",
        download_policy,
        http_session,
        content_type="image/png",
    )
    assert s3_calls == ["PutObject"]  # no multipart upload, no HEAD afterwards
    assert result.bytes == 1000
    assert "-" not in result.etag  # a plain PUT
    head = head_object(s3_client, bucket, result.key)
    assert head["ContentType"] == "image/png"
    assert head["ETag"].strip('"') == result.etag
    assert object_sha256(s3_client, bucket, result.key) == hashlib.sha256(body_of(1000)).hexdigest()


def test_keep_body_gives_back_a_body_stored_in_one_put_only(
    s3_client, bucket, http_source, download_policy, http_session
) -> None:
    small = upload(
        s3_client, bucket, f"{http_source}/bytes/1000", download_policy, http_session, keep_body=True
    )
    assert small.body == body_of(1000)
    assert upload(s3_client, bucket, f"{http_source}/bytes/1000", download_policy, http_session).body is None
    large = upload(
        s3_client,
        bucket,
        f"{http_source}/bytes/{PART + 1}",
        download_policy,
        http_session,
        part_size=PART,
        keep_body=True,
    )
    assert large.etag.endswith("-2") and large.body is None  # multipart: never held whole in memory


def test_empty_body(s3_client, bucket, http_source, download_policy, http_session) -> None:
    result = upload(s3_client, bucket, f"{http_source}/bytes/0", download_policy, http_session)
    assert (result.bytes, result.first_bytes) == (0, b"")
    assert read_head_bytes(s3_client, bucket, result.key) == b""


def test_exactly_one_part(s3_client, bucket, http_source, download_policy, http_session, s3_calls) -> None:
    result = upload(
        s3_client, bucket, f"{http_source}/bytes/{PART}", download_policy, http_session, part_size=PART
    )
    assert s3_calls == ["PutObject"]
    assert result.bytes == PART
    assert "-" not in result.etag
    assert object_sha256(s3_client, bucket, result.key) == hashlib.sha256(body_of(PART)).hexdigest()


def test_one_byte_over_one_part_is_multipart(
    s3_client, bucket, http_source, download_policy, http_session, s3_calls
) -> None:
    n = PART + 1
    result = upload(
        s3_client, bucket, f"{http_source}/bytes/{n}", download_policy, http_session, part_size=PART
    )
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
def test_bodies_without_content_length(
    s3_client, bucket, http_source, download_policy, http_session, route
) -> None:
    n = 12 * MiB + 12345
    result = upload(
        s3_client, bucket, f"{http_source}/{route}/{n}", download_policy, http_session, part_size=PART
    )
    assert result.bytes == n
    assert result.etag.endswith("-3")
    assert object_sha256(s3_client, bucket, result.key) == hashlib.sha256(body_of(n)).hexdigest()


def test_gzip_body_is_stored_decoded(s3_client, bucket, http_source, download_policy, http_session) -> None:
    n = 3 * MiB
    result = upload(s3_client, bucket, f"{http_source}/gzip/{n}", download_policy, http_session)
    assert result.bytes == n
    assert object_sha256(s3_client, bucket, result.key) == hashlib.sha256(body_of(n)).hexdigest()


def test_sends_identity_and_no_session_credentials(
    s3_client, bucket, http_source, download_policy, http_session
) -> None:
    http_session.headers["Authorization"] = "Bearer api-token"
    http_session.auth = ("user", "secret")
    upload(s3_client, bucket, f"{http_source}/bytes/100?probe=identity", download_policy, http_session)
    seen = [r for r in SourceHandler.requests_seen if r["path"].endswith("probe=identity")][-1]
    assert seen["accept-encoding"] == "identity"
    assert "authorization" not in seen


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
    s3_client, bucket, http_source, download_policy, http_session, s3_calls, path, multipart
) -> None:
    with pytest.raises(DownloadFailed, match=r"IncompleteRead|bytes \(Content-Length\)") as info:
        upload(s3_client, bucket, f"{http_source}/{path}", download_policy, http_session, part_size=PART)
    assert "p/videos/v1-test.mp4" in str(info.value)
    assert "CompleteMultipartUpload" not in s3_calls and "PutObject" not in s3_calls
    if multipart:  # the abort path was really exercised
        assert "CreateMultipartUpload" in s3_calls and "AbortMultipartUpload" in s3_calls
    assert_nothing_left(s3_client, bucket)


def test_cut_close_delimited_body_is_indistinguishable_from_a_normal_end(
    s3_client, bucket, http_source, download_policy, http_session
) -> None:
    # Known limitation (HTTP/1.1 itself): without Content-Length or chunking, a cut is an EOF.
    # The caller must check the size / first bytes against what the API reported.
    result = upload(
        s3_client, bucket, f"{http_source}/cut-close/{3 * MiB}/{MiB}", download_policy, http_session
    )
    assert result.bytes == MiB


def test_existing_object_survives_a_failed_upload(
    s3_client, bucket, http_source, download_policy, http_session
) -> None:
    put_bytes(s3_client, bucket, "p/videos/v1-test.mp4", b"good video")
    with pytest.raises(DownloadFailed):
        upload(
            s3_client,
            bucket,
            f"{http_source}/cut/{12 * MiB}/{7 * MiB}",
            download_policy,
            http_session,
            part_size=PART,
        )
    assert read_head_bytes(s3_client, bucket, "p/videos/v1-test.mp4") == b"good video"
    assert open_uploads(s3_client, bucket) == []


def test_max_bytes_from_content_length(s3_client, bucket, http_source, http_session) -> None:
    policy = DownloadPolicy(allowed_hosts=(http_source,), max_bytes=10 * MiB)
    with pytest.raises(DownloadTooLarge, match="Content-Length"):
        upload(s3_client, bucket, f"{http_source}/bytes/{12 * MiB}", policy, http_session, part_size=PART)
    assert_nothing_left(s3_client, bucket)


@pytest.mark.parametrize("route", ["chunked", "close"])
def test_max_bytes_while_streaming(s3_client, bucket, http_source, http_session, s3_calls, route) -> None:
    policy = DownloadPolicy(allowed_hosts=(http_source,), max_bytes=7 * MiB)
    with pytest.raises(DownloadTooLarge, match="max_bytes"):
        upload(s3_client, bucket, f"{http_source}/{route}/{12 * MiB}", policy, http_session, part_size=PART)
    assert "AbortMultipartUpload" in s3_calls
    assert_nothing_left(s3_client, bucket)


def test_max_bytes_exact_limit_is_allowed(s3_client, bucket, http_source, http_session) -> None:
    policy = DownloadPolicy(allowed_hosts=(http_source,), max_bytes=100_000)
    assert upload(s3_client, bucket, f"{http_source}/chunked/100000", policy, http_session).bytes == 100_000


def test_slow_body_within_read_timeout(s3_client, bucket, http_source, http_session) -> None:
    policy = DownloadPolicy(allowed_hosts=(http_source,), read_timeout=2)
    result = upload(s3_client, bucket, f"{http_source}/slow/200000?delay=0.05", policy, http_session)
    assert result.bytes == 200_000


def test_stalled_body_times_out(s3_client, bucket, http_source, http_session) -> None:
    policy = DownloadPolicy(allowed_hosts=(http_source,), read_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(DownloadFailed, match=r"(?i)timed out|timeout"):
        upload(s3_client, bucket, f"{http_source}/stall/100000?after=1000&sleep=3", policy, http_session)
    assert time.monotonic() - started < 2.5
    assert_nothing_left(s3_client, bucket)


def test_http_error_status(s3_client, bucket, http_source, download_policy, http_session) -> None:
    with pytest.raises(DownloadFailed) as info:
        upload(
            s3_client,
            bucket,
            f"{http_source}/status/403?X-Amz-Signature=topsecret",
            download_policy,
            http_session,
        )
    assert info.value.status == 403
    assert "topsecret" not in str(info.value)
    assert "?…" in str(info.value)
    assert_nothing_left(s3_client, bucket)


def test_connection_error_message_has_no_query_string(s3_client, bucket, http_session) -> None:
    policy = DownloadPolicy(allowed_hosts=("http://127.0.0.1:1",), connect_timeout=1)
    url = "http://127.0.0.1:1/v.mp4?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=topsecret"
    with pytest.raises(DownloadFailed) as info:
        upload(s3_client, bucket, url, policy, http_session)
    message = str(info.value)
    assert "ConnectionError" in message
    assert "topsecret" not in message and "AKIAEXAMPLE" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_s3_failure_is_upload_failed(s3_client, http_source, download_policy, http_session) -> None:
    with pytest.raises(UploadFailed) as info:
        upload(s3_client, "no-such-bucket-here", f"{http_source}/bytes/1000", download_policy, http_session)
    assert "s3://no-such-bucket-here/p/videos/v1-test.mp4" in str(info.value)
    assert isinstance(info.value, StorageError)


def test_s3_failure_mid_multipart_leaves_nothing(
    s3_client, bucket, http_source, download_policy, http_session
) -> None:
    calls = {"n": 0}

    def fail_second_part(params: dict[str, Any], **_: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "UploadPart")

    events = s3_client.meta.events
    events.register("before-call.s3.UploadPart", fail_second_part, unique_id="fail-second-part")
    try:
        with pytest.raises(UploadFailed, match="injected"):
            upload(
                s3_client,
                bucket,
                f"{http_source}/bytes/{16 * MiB}",
                download_policy,
                http_session,
                part_size=PART,
            )
    finally:
        events.unregister("before-call.s3.UploadPart", unique_id="fail-second-part")
    assert_nothing_left(s3_client, bucket)


def test_part_size_limits(s3_client, bucket, http_source, http_session) -> None:
    with pytest.raises(ValueError, match="part_size"):
        upload(
            s3_client,
            bucket,
            f"{http_source}/bytes/10",
            DownloadPolicy(allowed_hosts=(http_source,)),
            http_session,
            part_size=MiB,
        )
    huge = DownloadPolicy(allowed_hosts=(http_source,), max_bytes=10_000 * PART + 1)
    with pytest.raises(ValueError, match="too small for max_bytes"):
        upload(s3_client, bucket, f"{http_source}/bytes/10", huge, http_session, part_size=PART)


def test_metadata_must_be_header_safe(s3_client, bucket, http_source, download_policy, http_session) -> None:
    url = f"{http_source}/bytes/10"
    with pytest.raises(ValueError, match="printable ASCII"):
        upload(s3_client, bucket, url, download_policy, http_session, metadata={"prompt": "café"})
    with pytest.raises(ValueError, match="metadata key"):
        upload(s3_client, bucket, url, download_policy, http_session, metadata={"bad key": "x"})
