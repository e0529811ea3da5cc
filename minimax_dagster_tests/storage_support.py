"""Helpers the storage tests share: an upload to the one key they use, and what S3 holds afterwards."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import requests

from minimax_dagster.storage import DownloadPolicy, UploadResult, head_object, upload_from_url
from minimax_dagster_tests.http_source import MiB

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client
    from types_boto3_s3.type_defs import MultipartUploadTypeDef

PART = 5 * MiB  # S3's minimum part size: the smallest part_size that makes real multipart uploads
KEY = "p/videos/v1-test.mp4"


def open_uploads(s3_client: S3Client, bucket: str) -> list[MultipartUploadTypeDef]:
    """The multipart uploads open in ``bucket``."""
    return s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def object_sha256(s3_client: S3Client, bucket: str, key: str) -> str:
    """Hex sha256 of the object's bytes, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    body = s3_client.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(MiB), b""):
        digest.update(chunk)
    return digest.hexdigest()


def upload(
    s3_client: S3Client,
    bucket: str,
    url: str,
    policy: DownloadPolicy,
    session: requests.Session,
    **kw: Any,
) -> UploadResult:
    """``upload_from_url`` of ``url`` to :data:`KEY`."""
    return upload_from_url(s3_client, bucket, KEY, url, policy=policy, session=session, **kw)


def assert_nothing_left(s3_client: S3Client, bucket: str, key: str = KEY) -> None:
    """No object at ``key`` and no multipart upload open in ``bucket``."""
    assert head_object(s3_client, bucket, key) is None
    assert open_uploads(s3_client, bucket) == []
