"""Streaming a URL into S3: one ``PutObject`` for a body that fits in one part, else a multipart upload; no local
files, bounded memory, and nothing left at the key or open after a failure.

>>> from minimax_dagster.storage import UploadResult
>>> UploadResult("bkt", "p/videos/v1-x.mp4", 3, "etag", 0.1, b"abc", "ba7816bf").uri
's3://bkt/p/videos/v1-x.mp4'
"""

from __future__ import annotations

import builtins
import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any, cast

import boto3.s3.transfer
import requests
from botocore.exceptions import ClientError

from minimax_dagster.storage.config import DEFAULT_PART_SIZE, MAX_PARTS, check_part_size, transfer_config
from minimax_dagster.storage.download import FillingReader, open_download, response_reader
from minimax_dagster.storage.errors import StorageError, UploadFailed
from minimax_dagster.storage.keys import s3_uri
from minimax_dagster.storage.multipart import abort_uploads_for_key
from minimax_dagster.storage.objects import head_object, validate_metadata
from minimax_dagster.storage.policy import DownloadPolicy
from minimax_dagster.storage.redact import scrub_urls

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

__all__ = ["UploadResult", "upload_from_url"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class UploadResult:
    """What ``upload_from_url`` stored.

    >>> r = UploadResult("bkt", "k.mp4", 3, "etag", 0.1, b"abc", "ba7816bf")
    >>> r.uri
    's3://bkt/k.mp4'
    """

    bucket: str
    key: str
    bytes: int
    etag: str
    seconds: float
    first_bytes: builtins.bytes
    sha256: str
    #: The whole body, when ``keep_body`` asked for it and it was stored in one ``PutObject`` (else ``None``).
    body: builtins.bytes | None = None

    @property
    def uri(self) -> str:
        """``s3://bucket/key``.

        >>> UploadResult("b", "k", 0, "", 0.0, b"", "").uri
        's3://b/k'
        """
        return s3_uri(self.bucket, self.key)


def upload_from_url(
    s3_client: S3Client,
    bucket: str,
    key: str,
    url: str,
    *,
    policy: DownloadPolicy,
    session: requests.Session,
    content_type: str = "video/mp4",
    metadata: Mapping[str, str] | None = None,
    part_size: int = DEFAULT_PART_SIZE,
    max_concurrency: int = 2,
    keep_body: bool = False,
) -> UploadResult:
    """Stream ``url`` into ``s3://bucket/key`` without local files, in bounded memory.

    Memory stays near ``part_size * (max_concurrency + 1)`` whatever the size of the body. A body that fits in
    one part is stored with a single ``PutObject`` (S3 stores all of its Content-Length or nothing); a larger
    one as a multipart upload, whose size is checked with a ``HeadObject`` afterwards. With ``keep_body``, a
    body stored in one ``PutObject`` comes back in :attr:`UploadResult.body` (a poster, to make its thumbnail
    without reading it back).
    Raises ``DownloadRefused`` (policy), ``DownloadFailed`` / ``DownloadTooLarge`` (source) or
    ``UploadFailed`` (S3). After any failure no new object is at the key and no multipart
    upload is open for it (one writer per key is assumed: keys are content hashes).

    >>> import boto3, requests
    >>> from minimax_dagster.storage import s3_client_config
    >>> s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    >>> policy = DownloadPolicy(allowed_hosts=("cdn.example.com",))
    >>> upload_from_url(s3, "bkt", "v.mp4", "http://cdn.example.com/v.mp4", policy=policy,
    ...                 session=requests.Session())
    Traceback (most recent call last):
    ...
    minimax_dagster.storage.errors.DownloadRefused: download refused for http://cdn.example.com/v.mp4: plain http to 'cdn.example.com' is refused; list the origin 'http://cdn.example.com:80' in allowed_hosts to allow it
    """
    check_part_size(part_size)
    if part_size * MAX_PARTS < policy.max_bytes:
        raise ValueError(
            f"part_size {part_size} is too small for max_bytes {policy.max_bytes}: "
            f"S3 allows {MAX_PARTS} parts; raise part_size or lower max_bytes"
        )
    extra_args = {"ContentType": content_type, "Metadata": validate_metadata(metadata)}
    config = transfer_config(part_size, max_concurrency)
    started = time.monotonic()
    response = open_download(url, policy=policy, session=session, key=key)
    try:
        reader = response_reader(response, policy=policy, key=key)
        first = reader.read(part_size)  # exactly part_size bytes unless the body ends first
        more = reader.read(1) if len(first) == part_size else b""
        kept = None
        if not more:
            etag = _put_whole(s3_client, bucket, key, first, extra_args, url)
            kept = first if keep_body else None
        else:
            source = _Prepended([first, more], reader)
            del first, more  # from here only the transfer holds the first part, and only until it is sent
            _transfer(s3_client, bucket, key, source, reader, extra_args, config, url)
            etag = None
    finally:
        response.close()
    if etag is None:
        etag = str(_verify_landed(s3_client, bucket, key, reader, url).get("ETag", "")).strip('"')
    return UploadResult(
        bucket=bucket,
        key=key,
        bytes=reader.bytes_read,
        etag=etag,
        seconds=time.monotonic() - started,
        first_bytes=reader.first_bytes,
        sha256=reader.sha256,
        body=kept,
    )


class _Prepended:
    """Bytes already read (``pieces``), then the rest of ``reader``; like :class:`FillingReader`, ``read(n)``
    returns exactly ``n`` bytes unless at EOF.

    >>> import io
    >>> r = _Prepended([b"ab", b"c"], FillingReader(io.BytesIO(b"def"), max_bytes=9))
    >>> r.read(2), r.read(2), r.read(5), r.read(1)
    (b'ab', b'cd', b'ef', b'')
    """

    def __init__(self, pieces: list[bytes], reader: FillingReader) -> None:
        self._pieces = [p for p in pieces if p]
        self._reader = reader

    def read(self, n: int | None = -1) -> bytes:
        out: list[bytes] = []
        got = 0
        while self._pieces and (n is None or n < 0 or got < n):
            piece = self._pieces.pop(0)
            if n is not None and n >= 0 and got + len(piece) > n:
                piece, rest = piece[: n - got], piece[n - got :]
                self._pieces.insert(0, rest)
            out.append(piece)
            got += len(piece)
        if n is None or n < 0:
            out.append(self._reader.read())
        elif got < n:
            out.append(self._reader.read(n - got))
        return out[0] if len(out) == 1 else b"".join(out)

    def readable(self) -> bool:
        """Always ``True``."""
        return True

    def seekable(self) -> bool:
        """Always ``False``: the source is a network stream."""
        return False


def _put_whole(
    s3_client: S3Client, bucket: str, key: str, body: bytes, extra_args: dict[str, Any], url: str
) -> str:
    """Store a body already read whole in one ``PutObject``; its ETag."""
    try:
        response = s3_client.put_object(Bucket=bucket, Key=key, Body=body, **extra_args)
    except Exception as exc:
        raise UploadFailed(url, bucket, key, f"{type(exc).__name__}: {scrub_urls(str(exc))}") from exc
    return str(response.get("ETag", "")).strip('"')


def _transfer(
    s3_client: S3Client,
    bucket: str,
    key: str,
    source: _Prepended,
    reader: FillingReader,
    extra_args: dict[str, Any],
    config: boto3.s3.transfer.TransferConfig,
    url: str,
) -> None:
    """Multipart upload of ``source`` (which reads from ``reader``); nothing is left open on failure."""
    try:
        # s3transfer needs only read() and seekable() of a file object; the stubs ask for a whole IO.
        fileobj = cast("IO[bytes]", source)
        s3_client.upload_fileobj(fileobj, bucket, key, ExtraArgs=extra_args, Config=config)
    except Exception as exc:
        abort_uploads_for_key(s3_client, bucket, key)
        if reader.error is not None:
            raise reader.error from None
        if isinstance(exc, StorageError):
            raise
        raise UploadFailed(url, bucket, key, f"{type(exc).__name__}: {scrub_urls(str(exc))}") from exc


def _verify_landed(
    s3_client: S3Client, bucket: str, key: str, reader: FillingReader, url: str
) -> dict[str, Any]:
    try:
        head = head_object(s3_client, bucket, key)
    except ClientError as exc:
        raise UploadFailed(url, bucket, key, f"cannot HEAD the uploaded object: {exc}") from exc
    size = None if head is None else head.get("ContentLength")
    if size != reader.bytes_read:
        _delete_quietly(s3_client, bucket, key)
        raise UploadFailed(
            url, bucket, key, f"stored size {size} differs from the {reader.bytes_read} bytes read"
        )
    assert head is not None
    return head


def _delete_quietly(s3_client: S3Client, bucket: str, key: str) -> None:
    try:
        s3_client.delete_object(Bucket=bucket, Key=key)
    except Exception:
        log.exception("could not delete %s after a failed upload", s3_uri(bucket, key))
