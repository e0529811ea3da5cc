"""Open multipart uploads: finding and aborting them, for one key after a failed upload or under a prefix
after a killed process.

>>> import boto3
>>> from moto import mock_aws
>>> from minimax_dagster.storage import s3_client_config
>>> with mock_aws():
...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
...     _ = s3.create_bucket(Bucket="bkt")
...     _ = s3.create_multipart_upload(Bucket="bkt", Key="p/videos/v1-x.mp4")
...     abort_uploads_for_key(s3, "bkt", "p/videos/v1-x.mp4")
...     abort_stale_multipart_uploads(s3, "bkt", "")
0
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from minimax_dagster.storage.keys import s3_uri

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client
    from types_boto3_s3.type_defs import MultipartUploadTypeDef

__all__ = ["abort_stale_multipart_uploads"]

log = logging.getLogger(__name__)


def _iter_multipart_uploads(
    s3_client: S3Client, bucket: str, prefix: str
) -> Iterator[MultipartUploadTypeDef]:
    """The open multipart uploads whose keys start with ``prefix``, every page of them."""
    paginator = s3_client.get_paginator("list_multipart_uploads")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Uploads", [])


def _abort(s3_client: S3Client, bucket: str, upload: MultipartUploadTypeDef) -> bool:
    try:
        s3_client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchUpload", "404"):
            return False
        raise
    return True


def abort_uploads_for_key(s3_client: S3Client, bucket: str, key: str) -> None:
    """Abort every open multipart upload of exactly ``key`` (after a failed upload); never raises, logs instead."""
    try:
        for upload in list(_iter_multipart_uploads(s3_client, bucket, key)):
            if upload["Key"] == key and _abort(s3_client, bucket, upload):
                log.warning("aborted a multipart upload left open for %s", s3_uri(bucket, key))
    except Exception:
        log.exception("could not check %s for open multipart uploads", s3_uri(bucket, key))


def abort_stale_multipart_uploads(
    s3_client: S3Client,
    bucket: str,
    prefix: str,
    *,
    older_than: dt.timedelta | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
) -> int:
    """Abort open multipart uploads under ``prefix`` (left by a killed process); return how many.

    With ``older_than``, uploads started more recently than that are kept (they may be live).
    ``prefix`` is a raw S3 key prefix: ``""`` means the whole bucket.

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     _ = s3.create_multipart_upload(Bucket="bkt", Key="minimax/videos/v1-x.mp4")
    ...     abort_stale_multipart_uploads(s3, "bkt", "minimax/videos/")
    1
    """
    cutoff = now() - older_than if older_than is not None else None
    aborted = 0
    for upload in list(_iter_multipart_uploads(s3_client, bucket, prefix)):
        initiated = upload.get("Initiated")
        if cutoff is not None and isinstance(initiated, dt.datetime) and initiated > cutoff:
            continue
        if _abort(s3_client, bucket, upload):
            aborted += 1
    return aborted
