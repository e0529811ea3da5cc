"""Small S3 objects (minimax_dagster.storage.objects) against moto's S3 server."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from minimax_dagster.storage import (
    CorruptObject,
    condition_failed,
    delete_if,
    get_json,
    head_object,
    put_bytes,
    put_bytes_if,
    put_json,
    read_head_bytes,
    read_object,
)


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


def test_conditional_writes_create_once_and_replace_only_what_was_read(s3_client, bucket) -> None:
    first = put_bytes_if(s3_client, bucket, "c.json", b"1", if_match=None)
    assert first is not None
    assert put_bytes_if(s3_client, bucket, "c.json", b"2", if_match=None) is None, "If-None-Match: one create"
    second = put_bytes_if(s3_client, bucket, "c.json", b"3", if_match=first)
    assert second is not None and second != first
    assert put_bytes_if(s3_client, bucket, "c.json", b"4", if_match=first) is None, (
        "If-Match: an old ETag loses"
    )
    assert read_object(s3_client, bucket, "c.json") == (b"3", second)
    assert put_bytes_if(s3_client, bucket, "gone.json", b"5", if_match=first) is None, "If-Match on no object"
    assert not delete_if(s3_client, bucket, "c.json", first)
    assert delete_if(s3_client, bucket, "c.json", second) and read_object(s3_client, bucket, "c.json") is None


def test_a_conditional_write_to_a_missing_bucket_is_an_error_not_a_lost_race(s3_client) -> None:
    with pytest.raises(ClientError) as caught:
        put_bytes_if(s3_client, "no-such-bucket-here", "c.json", b"1", if_match=None)
    assert not condition_failed(caught.value)
