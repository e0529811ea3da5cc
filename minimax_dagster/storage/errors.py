"""The errors storage raises on purpose; every URL in them is redacted.

>>> from minimax_dagster.storage import DownloadTooLarge, StorageError
>>> issubclass(DownloadTooLarge, StorageError)
True
"""

from __future__ import annotations

from minimax_dagster.storage.keys import s3_uri
from minimax_dagster.storage.redact import redact_url

__all__ = [
    "CorruptObject",
    "DownloadFailed",
    "DownloadRefused",
    "DownloadTooLarge",
    "StorageError",
    "UploadFailed",
]


class StorageError(Exception):
    """Base class of every error the storage layer raises on purpose.

    >>> issubclass(DownloadFailed, StorageError) and issubclass(UploadFailed, StorageError)
    True
    """


class DownloadRefused(StorageError, ValueError):
    """The download policy refuses a URL (before any connection is made to it).

    ``url`` is already redacted (no userinfo, no query string).

    >>> err = DownloadRefused("ftp://cdn.example.com/a.mp4?sig=secret", "scheme 'ftp' is not allowed")
    >>> err.url, "secret" in str(err)
    ('ftp://cdn.example.com/a.mp4?…', False)
    """

    def __init__(self, url: str, reason: str) -> None:
        self.url = redact_url(url)
        self.reason = reason
        super().__init__(f"download refused for {self.url}: {reason}")


class DownloadFailed(StorageError):
    """Fetching the source URL failed (connection, HTTP status, timeout, truncated body...).

    ``status`` is the HTTP status when the failure is a bad status, else ``None``.

    >>> str(DownloadFailed("https://cdn.example.com/v.mp4?X-Amz-Signature=s", "videos/k.mp4", "HTTP 403"))
    'download of https://cdn.example.com/v.mp4?… for key videos/k.mp4 failed: HTTP 403'
    """

    def __init__(self, url: str, key: str | None, reason: str, *, status: int | None = None) -> None:
        self.url = redact_url(url)
        self.key = key
        self.reason = reason
        self.status = status
        target = f" for key {key}" if key else ""
        super().__init__(f"download of {self.url}{target} failed: {reason}")


class DownloadTooLarge(DownloadFailed):
    """The body is (or announces to be) larger than ``DownloadPolicy.max_bytes``.

    >>> issubclass(DownloadTooLarge, DownloadFailed)
    True
    """


class UploadFailed(StorageError):
    """Writing to S3 failed; nothing was left at the key.

    >>> str(UploadFailed("https://cdn.example.com/v.mp4", "bkt", "videos/k.mp4", "AccessDenied"))
    'upload of https://cdn.example.com/v.mp4 to s3://bkt/videos/k.mp4 failed: AccessDenied'
    """

    def __init__(self, url: str | None, bucket: str, key: str, reason: str) -> None:
        self.url = redact_url(url) if url else None
        self.bucket = bucket
        self.key = key
        self.reason = reason
        source = f" of {self.url}" if self.url else ""
        super().__init__(f"upload{source} to {s3_uri(bucket, key)} failed: {reason}")


class CorruptObject(StorageError):
    """An S3 object exists but does not hold what it should (bad JSON, invalid record).

    >>> str(CorruptObject("bkt", "_jobs/k.json", "not JSON"))
    's3://bkt/_jobs/k.json is corrupt: not JSON'
    """

    def __init__(self, bucket: str, key: str, reason: str) -> None:
        self.bucket = bucket
        self.key = key
        self.reason = reason
        super().__init__(f"{s3_uri(bucket, key)} is corrupt: {reason}")


class ObjectTooLarge(StorageError):
    """An S3 object is larger than the caller's cap; it was refused by its announced size (or after reading one
    byte past the cap), never read whole.

    >>> str(ObjectTooLarge("bkt", "d/x.json", 3 * 2**30, 64 * 2**20, "max_dataset_bytes"))
    's3://bkt/d/x.json is 3221225472 bytes, over the limit of 67108864 bytes (max_dataset_bytes); it was not read'
    """

    def __init__(self, bucket: str, key: str, size: int | None, limit: int, setting: str) -> None:
        self.bucket = bucket
        self.key = key
        what = f"is {size} bytes" if size is not None else "runs on"
        super().__init__(
            f"{s3_uri(bucket, key)} {what}, over the limit of {limit} bytes ({setting}); it was not read"
        )
