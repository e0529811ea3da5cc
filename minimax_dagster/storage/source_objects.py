"""Source objects: images (or other small inputs) another asset left in S3, looked up and read with a cap.

An input given as ``s3://bucket/key`` is identified by :func:`head_source_object` (one HeadObject: its ETag and
size) and read by :func:`read_source_object` (one GetObject conditioned on that ETag, so the bytes read are the
version that was identified). The read is capped: an object over the limit is refused from its announced size
(HeadObject, then GetObject's Content-Length) before its body is read, and a body that runs past the limit anyway
is cut off one byte after it.

This module knows S3 only (through a boto3 client passed in).

>>> parse_s3_uri("s3://upstream-images/faces/ada.png")
('upstream-images', 'faces/ada.png')
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from minimax_dagster.storage import StorageError

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

#: A bucket name as S3 allows it for new buckets: 3-63 characters, lowercase letters, digits, dots and hyphens,
#: beginning and ending with a letter or digit.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_MAX_KEY_BYTES = 1024  # S3's limit on an object key
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_READ_CHUNK = 1024 * 1024


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``s3://bucket/key`` URI; ``ValueError`` saying what to fix when it is not one.

    >>> parse_s3_uri("s3://b")
    Traceback (most recent call last):
    ...
    ValueError: 's3://b' is not an S3 object URI: the bucket name 'b' is not valid (3-63 lowercase letters, digits, dots or hyphens); give s3://bucket/key
    """
    shown = _shown(uri)
    if not uri[:5].lower() == "s3://":
        raise ValueError(f"{shown!r} is not an S3 object URI; give s3://bucket/key")
    bucket, slash, key = uri[5:].partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ValueError(
            f"{shown!r} is not an S3 object URI: the bucket name {_shown(bucket)!r} is not valid "
            "(3-63 lowercase letters, digits, dots or hyphens); give s3://bucket/key"
        )
    if not slash or not key:
        raise ValueError(f"{shown!r} names no object key; give s3://{bucket}/key")
    if _CONTROL.search(key):
        raise ValueError(f"{shown!r} has control characters in its key; rename the object")
    if len(key.encode("utf-8")) > _MAX_KEY_BYTES:
        raise ValueError(f"{shown!r} has a key over {_MAX_KEY_BYTES} bytes, more than S3 allows")
    return bucket, key


def _shown(text: str) -> str:
    """``text`` for a message: printable, and at most 200 characters."""
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= 200 else text[:200] + "…"


@dataclass(frozen=True)
class SourceObject:
    """An S3 object as :func:`head_source_object` found it: where it is, its ETag (quotes removed) and size.

    >>> SourceObject("imgs", "a/b.png", etag="9b2cf535f27731c974343645a3985328", size=3).uri
    's3://imgs/a/b.png'
    """

    bucket: str
    key: str
    etag: str
    size: int

    @property
    def uri(self) -> str:
        """``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key}"


class SourceObjectError(StorageError):
    """A source object cannot be used; ``uri`` names it, ``reason`` says why and what to do.

    >>> str(SourceObjectError("s3://imgs/a.png", "access denied"))
    'cannot read s3://imgs/a.png: access denied'
    """

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = _shown(uri)
        self.reason = reason
        super().__init__(f"cannot read {self.uri}: {reason}")


class SourceObjectMissing(SourceObjectError):
    """There is no object at the URI (or no such bucket).

    >>> issubclass(SourceObjectMissing, SourceObjectError)
    True
    """


class SourceObjectChanged(SourceObjectError):
    """The object was replaced between being identified and being read: what was read would not be what the
    identity (its ETag) promised.

    >>> issubclass(SourceObjectChanged, StorageError)
    True
    """


class SourceObjectTooLarge(SourceObjectError):
    """The object is (or announces to be) larger than the limit; its body was not read past the limit.

    >>> issubclass(SourceObjectTooLarge, SourceObjectError)
    True
    """


def head_source_object(
    s3_client: S3Client, bucket: str, key: str, *, max_bytes: int | None = None
) -> SourceObject:
    """Look the object up (one HeadObject); with ``max_bytes``, refuse it when it is larger.

    >>> import boto3
    >>> from moto import mock_aws
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1")
    ...     _ = s3.create_bucket(Bucket="imgs")
    ...     _ = s3.put_object(Bucket="imgs", Key="a.png", Body=b"abc")
    ...     print(head_source_object(s3, "imgs", "a.png").size)
    ...     try:
    ...         head_source_object(s3, "imgs", "a.png", max_bytes=2)
    ...     except SourceObjectTooLarge as exc:
    ...         print(exc)
    3
    cannot read s3://imgs/a.png: it is 3 bytes, over the limit of 2 bytes; use a smaller object
    """
    uri = f"s3://{bucket}/{key}"
    with _named_errors(uri):
        head = s3_client.head_object(Bucket=bucket, Key=key)
    found = SourceObject(
        bucket, key, etag=str(head.get("ETag", "")).strip('"'), size=int(head["ContentLength"])
    )
    if max_bytes is not None and found.size > max_bytes:
        raise _too_large(uri, found.size, max_bytes)
    return found


def read_source_object(s3_client: S3Client, source: SourceObject, *, max_bytes: int) -> bytes:
    """Read the object's bytes (one GetObject with ``IfMatch`` on its ETag), at most ``max_bytes``.

    Raises :class:`SourceObjectChanged` when the object's ETag is no longer ``source.etag``, and
    :class:`SourceObjectTooLarge` without reading the body when the object is over the limit (or after reading
    one byte past the limit, when the server announced no or a wrong size).

    >>> import boto3
    >>> from moto import mock_aws
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1")
    ...     _ = s3.create_bucket(Bucket="imgs")
    ...     _ = s3.put_object(Bucket="imgs", Key="a.png", Body=b"abc")
    ...     found = head_source_object(s3, "imgs", "a.png")
    ...     read_source_object(s3, found, max_bytes=10)
    b'abc'
    """
    with _named_errors(source.uri):
        response = s3_client.get_object(Bucket=source.bucket, Key=source.key, IfMatch=f'"{source.etag}"')
    body = response["Body"]
    try:
        announced = response.get("ContentLength")
        if announced is not None and announced > max_bytes:
            raise _too_large(source.uri, announced, max_bytes)
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:
            chunk = body.read(min(_READ_CHUNK, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise _too_large(source.uri, None, max_bytes)
    except (BotoCoreError, OSError) as exc:
        raise SourceObjectError(
            source.uri, f"reading the body failed ({type(exc).__name__}: {exc})"
        ) from None
    finally:
        body.close()
    return b"".join(chunks)


def _too_large(uri: str, size: int | None, max_bytes: int) -> SourceObjectTooLarge:
    what = f"it is {size} bytes" if size is not None else "its body runs on"
    return SourceObjectTooLarge(uri, f"{what}, over the limit of {max_bytes} bytes; use a smaller object")


@contextlib.contextmanager
def _named_errors(uri: str) -> Iterator[None]:
    """Turn boto3's errors inside the block into :class:`SourceObjectError` s naming ``uri`` and the fix."""
    try:
        yield
    except ClientError as exc:
        raise _client_error(uri, exc) from None
    except BotoCoreError as exc:
        raise SourceObjectError(uri, f"{type(exc).__name__}: {exc}") from None


def _client_error(uri: str, exc: ClientError) -> SourceObjectError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in ("NoSuchKey", "NoSuchBucket", "NotFound", "404") or status == 404:
        return SourceObjectMissing(uri, "no such object (HTTP 404); check the bucket and key")
    if code in ("PreconditionFailed", "412") or status == 412:
        return SourceObjectChanged(uri, "the object was replaced while it was being used; run again")
    if code in ("AccessDenied", "Forbidden", "403") or status == 403:
        return SourceObjectError(uri, "access denied (HTTP 403); give the S3 client s3:GetObject on it")
    return SourceObjectError(uri, f"S3 answered {code or 'an error'} (HTTP {status})")
