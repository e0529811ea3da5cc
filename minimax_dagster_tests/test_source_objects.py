"""Source objects (``s3://`` inputs) against moto's S3 server: lookup, the ETag-conditioned read and its cap."""

from __future__ import annotations

from typing import Any

import pytest

from minimax_dagster.storage.source_objects import (
    SourceObject,
    SourceObjectChanged,
    SourceObjectError,
    SourceObjectMissing,
    SourceObjectTooLarge,
    head_source_object,
    parse_s3_uri,
    read_source_object,
)
from minimax_dagster_tests.s3_support import recorded_s3_calls


@pytest.mark.parametrize(
    ("uri", "fix"),
    [
        ("s3://Upper_Case/a.png", "the bucket name 'Upper_Case' is not valid"),
        ("s3://ab/a.png", "the bucket name 'ab' is not valid"),
        ("s3://imgs", "names no object key; give s3://imgs/key"),
        ("s3://imgs/", "names no object key; give s3://imgs/key"),
        ("s3://imgs/a\x01b.png", "control characters in its key"),
        ("s3://imgs/" + "k" * 1025, "key over 1024 bytes"),
        ("https://imgs/a.png", "is not an S3 object URI; give s3://bucket/key"),
    ],
)
def test_a_bad_uri_is_refused_with_the_fix(uri: str, fix: str) -> None:
    with pytest.raises(ValueError, match=r"give s3://|control characters|over 1024") as caught:
        parse_s3_uri(uri)
    assert fix in str(caught.value)


def test_keys_keep_their_slashes_and_odd_characters() -> None:
    assert parse_s3_uri("s3://my.bucket-1/a/b c?d#e.png") == ("my.bucket-1", "a/b c?d#e.png")


def test_head_finds_etag_and_size(s3_client: Any, bucket: str) -> None:
    put = s3_client.put_object(Bucket=bucket, Key="in/a.png", Body=b"12345")
    found = head_source_object(s3_client, bucket, "in/a.png")
    assert found == SourceObject(bucket, "in/a.png", etag=put["ETag"].strip('"'), size=5)


def test_a_missing_object_or_bucket_is_named(s3_client: Any, bucket: str) -> None:
    with pytest.raises(SourceObjectMissing, match=rf"s3://{bucket}/nope.png: no such object"):
        head_source_object(s3_client, bucket, "nope.png")
    with pytest.raises(SourceObjectMissing, match="no such object"):
        head_source_object(s3_client, "no-such-bucket-here", "a.png")


def test_an_object_over_the_limit_is_refused_from_its_head_without_a_get(s3_client: Any, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="big.png", Body=b"x" * 2048)
    with recorded_s3_calls(s3_client) as calls, pytest.raises(SourceObjectTooLarge, match="2048 bytes"):
        head_source_object(s3_client, bucket, "big.png", max_bytes=1024)
    assert calls == ["HeadObject"]


def test_read_returns_the_identified_version(s3_client: Any, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="a.png", Body=b"first")
    found = head_source_object(s3_client, bucket, "a.png")
    assert read_source_object(s3_client, found, max_bytes=100) == b"first"
    s3_client.put_object(Bucket=bucket, Key="a.png", Body=b"second")
    with pytest.raises(SourceObjectChanged, match="replaced while it was being used"):
        read_source_object(s3_client, found, max_bytes=100)


def test_read_refuses_a_body_over_the_limit(s3_client: Any, bucket: str) -> None:
    """The cap holds even when the object grew past what it was identified as: GetObject's Content-Length is
    checked before the body is read."""
    s3_client.put_object(Bucket=bucket, Key="a.png", Body=b"y" * 4096)
    found = head_source_object(s3_client, bucket, "a.png")
    understated = SourceObject(found.bucket, found.key, found.etag, size=10)
    with pytest.raises(SourceObjectTooLarge, match="4096 bytes, over the limit of 100 bytes"):
        read_source_object(s3_client, understated, max_bytes=100)
    assert read_source_object(s3_client, found, max_bytes=4096) == b"y" * 4096


def test_errors_are_storage_errors_naming_the_object(s3_client: Any, bucket: str) -> None:
    with pytest.raises(SourceObjectError) as caught:
        head_source_object(s3_client, bucket, "gone.png")
    assert caught.value.uri == f"s3://{bucket}/gone.png"
