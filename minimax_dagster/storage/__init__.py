"""S3 storage layer: deterministic keys, safe streaming downloads into S3, small JSON objects, job records.

This module knows S3 (through a boto3 client passed in) and HTTP downloads (through a
``requests.Session`` passed in). It knows nothing about Dagster or the MiniMax API client.

>>> keys = VideoKeys("minimax", video_key("392747428568649728", "a cat surfing", None))
>>> keys.video.startswith("minimax/videos/v1-") and keys.video.endswith(".mp4")
True
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
import functools
import hashlib
import ipaddress
import json
import logging
import os
import random
import re
import secrets
import socket
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, Protocol
from urllib.parse import SplitResult, urljoin, urlsplit

import boto3.s3.transfer
import botocore.config
import requests
import urllib3.util
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_PART_SIZE",
    "KEY_VERSION",
    "MIN_PART_SIZE",
    "Claim",
    "ClaimHandle",
    "ClaimKeeper",
    "CorruptObject",
    "DownloadFailed",
    "DownloadPolicy",
    "DownloadRefused",
    "DownloadTooLarge",
    "FillingReader",
    "JobRecord",
    "StorageError",
    "UploadFailed",
    "UploadResult",
    "VideoKeys",
    "abort_stale_multipart_uploads",
    "get_json",
    "head_object",
    "host_identity",
    "normalize_prefix",
    "open_download",
    "pid_alive",
    "prompt_sha256",
    "put_bytes",
    "put_json",
    "read_claim",
    "read_head_bytes",
    "read_job_record",
    "redact_url",
    "release_claim",
    "replace_claim",
    "s3_client_config",
    "s3_uri",
    "safe_key_part",
    "transfer_config",
    "try_claim",
    "upload_from_url",
    "video_key",
    "write_job_record",
]

log = logging.getLogger(__name__)

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

DEFAULT_MAX_BYTES = 8 * GiB
DEFAULT_PART_SIZE = 16 * MiB
MIN_PART_SIZE = 5 * MiB  # S3's minimum size of every part but the last
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000
KEY_VERSION = "v1"

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_READ_CHUNK = 1 * MiB  # read size when reading to EOF; read(n) asks the source for all n bytes at once
_MAX_URL_CHARS = 8192
_MAX_PREFIX_CHARS = 512
_MAX_METADATA_BYTES = 2 * KiB  # S3's limit on user-defined metadata


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class StorageError(Exception):
    """Base class of every error this module raises on purpose.

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


# --------------------------------------------------------------------------------------------------
# Client configuration
# --------------------------------------------------------------------------------------------------


def s3_client_config(*, max_attempts: int = 5, max_pool_connections: int = 64) -> botocore.config.Config:
    """botocore config for S3 and S3-compatible servers.

    Checksums only when an operation requires them (botocore >= 1.36 otherwise adds
    CRC checksums that several S3-compatible servers reject), standard retries, and a connection
    pool larger than botocore's 10, which a producer's worker and upload threads would overflow.

    >>> cfg = s3_client_config()
    >>> cfg.request_checksum_calculation, cfg.retries["mode"], cfg.max_pool_connections
    ('when_required', 'standard', 64)
    """
    return botocore.config.Config(
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": max_attempts, "mode": "standard"},
        max_pool_connections=max_pool_connections,
    )


def transfer_config(
    part_size: int = DEFAULT_PART_SIZE, max_concurrency: int = 2
) -> boto3.s3.transfer.TransferConfig:
    """Transfer config whose memory use is bounded by about ``part_size * (max_concurrency + 1)``.

    ``max_in_memory_upload_chunks`` (default 10 in s3transfer) is lowered to ``max_concurrency``
    so that a fast source cannot queue up parts in memory faster than S3 takes them.

    >>> cfg = transfer_config(8 * 1024 * 1024, 2)
    >>> cfg.multipart_chunksize, cfg.max_in_memory_upload_chunks
    (8388608, 2)
    """
    _check_part_size(part_size)
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
    cfg = boto3.s3.transfer.TransferConfig(
        multipart_threshold=part_size,
        multipart_chunksize=part_size,
        max_concurrency=max_concurrency,
        use_threads=True,
        preferred_transfer_client="classic",  # the CRT client has its own (unbounded here) buffering
    )
    cfg.max_in_memory_upload_chunks = max_concurrency
    return cfg


def _check_part_size(part_size: int) -> None:
    if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
        raise ValueError(
            f"part_size must be between {MIN_PART_SIZE} (5 MiB, S3's minimum part size) and "
            f"{MAX_PART_SIZE} bytes, got {part_size}"
        )


def s3_uri(bucket: str, key: str) -> str:
    """``s3://bucket/key``.

    >>> s3_uri("media", "minimax/videos/v1-abc.mp4")
    's3://media/minimax/videos/v1-abc.mp4'
    """
    return f"s3://{bucket}/{key}"


# --------------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------------

_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_PREFIX_SEGMENT_RE = re.compile(r"[A-Za-z0-9._=-]+")
_UNSAFE_RUN_RE = re.compile(r"[^A-Za-z0-9._-]+")


def prompt_sha256(prompt: str | None) -> str:
    """Hex sha256 of the UTF-8 prompt (``""`` for no prompt), for records that must not hold the prompt.

    >>> prompt_sha256("a cat")[:12]
    '51e467415607'
    >>> prompt_sha256(None)
    ''
    """
    if prompt is None:
        return ""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def video_key(template_id: str, prompt: str | None, file_ref: str | None) -> str:
    """Deterministic content key of one video request: ``v1-`` + 32 hex chars of a sha256.

    The hash is taken over a canonical JSON of the exact inputs (no whitespace or Unicode
    normalisation: ``None`` and ``""`` are different inputs). Inputs never appear in the key,
    so no prompt or id can steer a key outside its prefix.

    >>> k = video_key("392747428568649728", "a cat surfing", None)
    >>> k == video_key("392747428568649728", "a cat surfing", None), k[:3], len(k)
    (True, 'v1-', 35)
    >>> k != video_key("392747428568649728", "a cat surfing ", None)
    True
    """
    if not isinstance(template_id, str) or not template_id:
        raise ValueError("template_id must be a non-empty string")
    for name, value in (("prompt", prompt), ("file_ref", file_ref)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a string or None, got {type(value).__name__}")
    canonical = json.dumps(
        {"v": KEY_VERSION, "template_id": template_id, "prompt": prompt, "file_ref": file_ref},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{KEY_VERSION}-{digest[:32]}"


def safe_key_part(text: str, *, max_len: int = 64) -> str:
    """Turn arbitrary text into one safe S3 key segment (``[A-Za-z0-9._-]``, no leading dot).

    Accents are folded to ASCII, other runs of unsafe characters become ``-``. Text with nothing
    usable left becomes ``h-`` plus a short hash of it, so the result is never empty.

    >>> safe_key_part("Run for Life!")
    'Run-for-Life'
    >>> safe_key_part("../../etc/passwd")
    'etc-passwd'
    >>> safe_key_part("Café déjà vu")
    'Cafe-deja-vu'
    >>> safe_key_part("???")
    'h-a03b221c6c6e'
    """
    if max_len < 16:
        raise ValueError(f"max_len must be >= 16, got {max_len}")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    part = _UNSAFE_RUN_RE.sub("-", ascii_text).strip("-._")[:max_len].rstrip("-._")
    if not part:
        return "h-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return part


def normalize_prefix(prefix: str) -> str:
    """Validate a key prefix and strip its trailing slashes (``""`` means the bucket root).

    Refuses absolute paths, ``..`` / ``.`` segments, empty segments, backslashes, URLs and control
    characters with a ``ValueError`` that names the field ``prefix``.

    >>> normalize_prefix("minimax/prod/")
    'minimax/prod'
    >>> normalize_prefix("../x")
    Traceback (most recent call last):
    ...
    ValueError: prefix '../x' is invalid: '..' segments are not allowed; use a plain relative path such as 'minimax/videos-prod'
    """
    hint = "use a plain relative path such as 'minimax/videos-prod'"

    def bad(why: str) -> ValueError:
        return ValueError(f"prefix {prefix!r} is invalid: {why}; {hint}")

    if not isinstance(prefix, str):
        raise ValueError(f"prefix must be a string, got {type(prefix).__name__}; {hint}")
    if any(unicodedata.category(c).startswith("C") for c in prefix):
        raise bad("control or invisible characters are not allowed")
    if "\\" in prefix:
        raise bad("backslashes are not allowed (use '/')")
    if "://" in prefix:
        raise bad("it looks like a URL; give only the path inside the bucket")
    if prefix.startswith("/") or re.match(r"[A-Za-z]:", prefix):
        raise bad("absolute paths are not allowed")
    if len(prefix) > _MAX_PREFIX_CHARS:
        raise bad(f"longer than {_MAX_PREFIX_CHARS} characters")
    stripped = prefix.rstrip("/")
    if not stripped:
        return ""
    for segment in stripped.split("/"):
        if segment == "":
            raise bad("empty segments ('//') are not allowed")
        if segment in (".", ".."):
            raise bad(f"{segment!r} segments are not allowed")
        if not _PREFIX_SEGMENT_RE.fullmatch(segment):
            raise bad(f"segment {segment!r} has characters outside [A-Za-z0-9._=-] (see safe_key_part)")
    return stripped


@dataclasses.dataclass(frozen=True)
class VideoKeys:
    """The S3 keys of one video, derived from a prefix and a content key (see ``video_key``).

    >>> keys = VideoKeys("minimax/", "v1-0123456789abcdef0123456789abcdef")
    >>> keys.video
    'minimax/videos/v1-0123456789abcdef0123456789abcdef.mp4'
    >>> keys.job
    'minimax/_jobs/v1-0123456789abcdef0123456789abcdef.json'
    >>> VideoKeys("minimax", "../etc")
    Traceback (most recent call last):
    ...
    ValueError: key '../etc' is invalid: use video_key(...) or safe_key_part(...) to build it ([A-Za-z0-9._-], no leading dot, at most 200 chars)
    """

    prefix: str
    key: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", normalize_prefix(self.prefix))
        if not isinstance(self.key, str) or not _KEY_RE.fullmatch(self.key) or ".." in self.key:
            raise ValueError(
                f"key {self.key!r} is invalid: use video_key(...) or safe_key_part(...) to build it "
                "([A-Za-z0-9._-], no leading dot, at most 200 chars)"
            )

    def _under(self, folder: str, suffix: str) -> str:
        base = f"{self.prefix}/{folder}" if self.prefix else folder
        return f"{base}/{self.key}{suffix}"

    @property
    def video(self) -> str:
        """``<prefix>/videos/<key>.mp4``.

        >>> VideoKeys("p", "v1-x").video
        'p/videos/v1-x.mp4'
        """
        return self._under("videos", ".mp4")

    @property
    def poster(self) -> str:
        """``<prefix>/videos/<key>.png``.

        >>> VideoKeys("p", "v1-x").poster
        'p/videos/v1-x.png'
        """
        return self._under("videos", ".png")

    @property
    def sidecar(self) -> str:
        """``<prefix>/videos/<key>.json``: the full event record of the video.

        >>> VideoKeys("p", "v1-x").sidecar
        'p/videos/v1-x.json'
        """
        return self._under("videos", ".json")

    @property
    def job(self) -> str:
        """``<prefix>/_jobs/<key>.json``: the crash-resume job record.

        >>> VideoKeys("", "v1-x").job
        '_jobs/v1-x.json'
        """
        return self._under("_jobs", ".json")

    @property
    def claim(self) -> str:
        """``<prefix>/_claims/<key>.json``: the claim of the worker producing this video (see ``ClaimKeeper``).

        >>> VideoKeys("p", "v1-x").claim
        'p/_claims/v1-x.json'
        """
        return self._under("_claims", ".json")


# --------------------------------------------------------------------------------------------------
# Download policy
# --------------------------------------------------------------------------------------------------

_HOSTNAME_RE = re.compile(
    r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def redact_url(url: str | None) -> str:
    """A URL safe for messages and logs: no userinfo, no query string, no fragment.

    A stripped query string is shown as ``?…``.

    >>> redact_url("https://user:pw@cdn.example.com:8443/a/b.mp4?X-Amz-Signature=abc#frag")
    'https://cdn.example.com:8443/a/b.mp4?…'
    """
    if url is None:
        return "<no URL>"
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    path = parts.path if len(parts.path) <= 200 else parts.path[:200] + "…"
    text = f"{parts.scheme}://{netloc}{path}" if parts.scheme else f"{netloc}{path}"
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text + ("?…" if parts.query else "")


def _scrub(text: str) -> str:
    """Remove query strings and userinfo from URLs inside an exception message."""
    text = re.sub(r"\?[^\s'\"()<>]*", "?…", text)
    return re.sub(r"(://)[^/@\s'\"]+@", r"\1", text)


@dataclasses.dataclass(frozen=True)
class _HostRule:
    kind: Literal["host", "suffix", "origin"]
    host: str
    scheme: str = "https"
    port: int | None = None

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if self.kind == "origin":
            return (scheme, host, port) == (self.scheme, self.host, self.port)
        if scheme != "https" or port != 443:
            return False
        return host == self.host if self.kind == "host" else host.endswith("." + self.host)

    def matches_host(self, host: str) -> bool:
        if self.kind == "suffix":
            return host.endswith("." + self.host)
        return host == self.host


def _parse_host_entry(entry: str) -> _HostRule:
    hint = (
        "entries are a hostname ('cdn.example.com'), a wildcard ('*.example.com') or an explicit "
        "origin ('http://127.0.0.1:8765')"
    )
    if not isinstance(entry, str) or not entry or entry != entry.strip():
        raise ValueError(f"allowed_hosts entry {entry!r} is invalid; {hint}")
    text = entry.lower()
    if "://" in text:
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"allowed_hosts entry {entry!r} is invalid ({exc}); {hint}") from None
        if (
            parts.scheme not in _DEFAULT_PORTS
            or not parts.hostname
            or "@" in parts.netloc
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or "*" in parts.netloc
        ):
            raise ValueError(f"allowed_hosts entry {entry!r} is not a plain http(s) origin; {hint}")
        return _HostRule(
            "origin",
            _normalize_host(parts.hostname),
            parts.scheme,
            port if port is not None else _DEFAULT_PORTS[parts.scheme],
        )
    if text.startswith("*."):
        suffix = text[2:].rstrip(".")
        if "." not in suffix or not _HOSTNAME_RE.fullmatch(suffix):
            raise ValueError(
                f"allowed_hosts entry {entry!r} is too broad or invalid: a wildcard needs at least "
                f"two labels after '*.' ('*.example.com'); {hint}"
            )
        return _HostRule("suffix", suffix)
    host = text.rstrip(".")
    if not _HOSTNAME_RE.fullmatch(host):
        raise ValueError(f"allowed_hosts entry {entry!r} is not a valid hostname; {hint}")
    return _HostRule("host", host)


def _normalize_host(host: str) -> str:
    host = host.lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return host


class DownloadPolicy(BaseModel):
    """Which URLs may be downloaded, how big the body may be, and the HTTP timeouts.

    ``allowed_hosts`` entries are a bare hostname or ``*.suffix`` wildcard (https on port 443
    only; the wildcard matches subdomains, not the suffix itself), or an explicit origin such as
    ``http://127.0.0.1:8765`` (exactly that scheme, host and port: the way to allow plain http).

    >>> policy = DownloadPolicy(allowed_hosts=("*.cdn.example.com", "http://127.0.0.1:8765"))
    >>> policy.check_url("https://eu.cdn.example.com/v.mp4?sig=1")
    >>> policy.check_url("http://127.0.0.1:8765/v.mp4")
    >>> policy.check_url("http://eu.cdn.example.com/v.mp4")
    Traceback (most recent call last):
    ...
    minimax_dagster.storage.DownloadRefused: download refused for http://eu.cdn.example.com/v.mp4: plain http to 'eu.cdn.example.com' is refused; list the origin 'http://eu.cdn.example.com:80' in allowed_hosts to allow it
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    allowed_hosts: tuple[str, ...] = Field(min_length=1)
    max_bytes: int = Field(default=DEFAULT_MAX_BYTES, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
    max_redirects: int = Field(default=5, ge=0, le=20)

    _rules: tuple[_HostRule, ...] = PrivateAttr(default=())

    @field_validator("allowed_hosts")
    @classmethod
    def _validate_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            _parse_host_entry(entry)
        return value

    def model_post_init(self, context: Any, /) -> None:
        self._rules = tuple(_parse_host_entry(e) for e in self.allowed_hosts)

    @property
    def timeout(self) -> tuple[float, float]:
        """``(connect_timeout, read_timeout)`` as ``requests`` takes it.

        >>> DownloadPolicy(allowed_hosts=("cdn.example.com",), read_timeout=5).timeout
        (10.0, 5.0)
        """
        return (self.connect_timeout, self.read_timeout)

    def check_url(self, url: str) -> None:
        """Raise ``DownloadRefused`` unless ``url`` may be fetched under this policy.

        >>> DownloadPolicy(allowed_hosts=("cdn.example.com",)).check_url("https://cdn.example.com/a")
        """
        if not isinstance(url, str) or not url:
            raise DownloadRefused(str(url), "URL must be a non-empty string")
        if len(url) > _MAX_URL_CHARS:
            raise DownloadRefused(url, f"URL longer than {_MAX_URL_CHARS} characters")
        if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url) or "\\" in url:
            raise DownloadRefused(url, "URL contains whitespace, control characters or backslashes")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise DownloadRefused(url, f"URL does not parse ({_scrub(str(exc))})") from None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise DownloadRefused(
                url, f"scheme {scheme!r} is not allowed; only https (or http to a listed origin)"
            )
        if "@" in parts.netloc:
            raise DownloadRefused(url, "credentials (userinfo) in the URL are not allowed")
        if not parts.hostname:
            raise DownloadRefused(url, "URL has no host")
        host = _normalize_host(parts.hostname)
        if not host.isascii():
            raise DownloadRefused(url, "non-ASCII host names are not allowed (use the punycode form)")
        self._check_parsers_agree(url, parts, host, port)
        effective_port = port if port is not None else _DEFAULT_PORTS[scheme]
        if any(rule.matches(scheme, host, effective_port) for rule in self._rules):
            return
        if any(rule.kind != "origin" and rule.matches_host(host) for rule in self._rules):
            if scheme == "http":
                raise DownloadRefused(
                    url,
                    f"plain http to {host!r} is refused; list the origin "
                    f"'http://{host}:{effective_port}' in allowed_hosts to allow it",
                )
            raise DownloadRefused(
                url, f"port {effective_port} on {host!r} is refused; list the origin explicitly to allow it"
            )
        raise DownloadRefused(
            url, f"host {host!r} (scheme {scheme}, port {effective_port}) is not in allowed_hosts"
        )

    @staticmethod
    def _check_parsers_agree(url: str, parts: SplitResult, host: str, port: int | None) -> None:
        """Refuse URLs that urllib.parse and urllib3 (which requests uses) read differently."""
        try:
            parsed = urllib3.util.parse_url(url)
        except Exception:
            raise DownloadRefused(url, "URL does not parse") from None
        other_host = _normalize_host(parsed.host or "")
        if other_host != host or parsed.port != port or (parsed.scheme or "").lower() != parts.scheme.lower():
            raise DownloadRefused(url, "URL parses ambiguously")


# --------------------------------------------------------------------------------------------------
# Streaming download -> S3
# --------------------------------------------------------------------------------------------------


class _Readable(Protocol):
    def read(self, amt: int, /) -> bytes: ...


def _strip_authorization(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """requests ``auth`` hook: never send session-level credentials to a download host."""
    request.headers.pop("Authorization", None)
    return request


def open_download(
    url: str, *, policy: DownloadPolicy, session: requests.Session, key: str | None = None
) -> requests.Response:
    """GET ``url`` as a stream, following up to ``policy.max_redirects`` redirects by hand.

    Every URL (the first and each ``Location``) is checked with ``policy.check_url``; the
    final response must be ``200``; a ``Content-Length`` above ``policy.max_bytes`` is refused
    before any byte is read. Session-level ``Authorization`` headers and ``session.auth``
    are not sent. ``key`` only names the destination in error messages. The caller must
    close the returned response.

    >>> import requests
    >>> policy = DownloadPolicy(allowed_hosts=("cdn.example.com",))
    >>> open_download("ftp://cdn.example.com/x", policy=policy, session=requests.Session())
    Traceback (most recent call last):
    ...
    minimax_dagster.storage.DownloadRefused: download refused for ftp://cdn.example.com/x: scheme 'ftp' is not allowed; only https (or http to a listed origin)
    """
    current = url
    for hop in range(policy.max_redirects + 1):
        policy.check_url(current)
        response = _get(current, policy=policy, session=session, key=key)
        if response.status_code not in _REDIRECT_STATUSES:
            return _checked_final(response, current, policy, key)
        status = response.status_code
        location = response.headers.get("Location")
        response.close()
        if not location:
            raise DownloadFailed(current, key, f"HTTP {status} without Location", status=status)
        if hop == policy.max_redirects:
            break
        current = urljoin(current, location)
    raise DownloadFailed(url, key, f"more than {policy.max_redirects} redirects")


def _get(
    url: str, *, policy: DownloadPolicy, session: requests.Session, key: str | None
) -> requests.Response:
    try:
        return session.get(
            url,
            stream=True,
            allow_redirects=False,
            timeout=policy.timeout,
            headers={"Accept-Encoding": "identity"},
            auth=_strip_authorization,
        )
    except requests.RequestException as exc:
        raise DownloadFailed(url, key, f"{type(exc).__name__}: {_scrub(str(exc))}") from None


def _checked_final(
    response: requests.Response, url: str, policy: DownloadPolicy, key: str | None
) -> requests.Response:
    if response.status_code != 200:
        response.close()
        raise DownloadFailed(url, key, f"HTTP {response.status_code}", status=response.status_code)
    length = _content_length(response, url, key)
    if length is not None and length > policy.max_bytes:
        response.close()
        raise DownloadTooLarge(url, key, f"Content-Length {length} exceeds max_bytes {policy.max_bytes}")
    return response


def _content_length(response: requests.Response, url: str, key: str | None) -> int | None:
    raw = response.headers.get("Content-Length")
    if raw is None:
        return None
    values = {v.strip() for v in raw.split(",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        response.close()
        raise DownloadFailed(url, key, f"invalid Content-Length {raw[:40]!r}")
    return int(values.pop())


def _is_identity_encoded(response: requests.Response) -> bool:
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    return encoding in ("", "identity")


class FillingReader:
    """File-like wrapper over a byte source whose ``read(n)`` returns exactly ``n`` bytes unless at EOF.

    ``upload_fileobj`` reads one part per ``read(n)`` and a short read before EOF would
    silently end the object, so reads are looped until full. It also counts bytes, keeps the
    first 64 bytes and a running sha256, raises ``DownloadTooLarge`` past ``max_bytes``, and at
    EOF raises ``DownloadFailed`` when ``expected_length`` is known and differs from the count. Any
    exception from the source becomes ``DownloadFailed`` (also stored in ``.error``).

    >>> import io
    >>> r = FillingReader(io.BytesIO(b"abcdef"), max_bytes=100, expected_length=6)
    >>> r.read(4), r.read(4), r.read(4), r.bytes_read
    (b'abcd', b'ef', b'', 6)
    """

    def __init__(
        self,
        source: _Readable,
        *,
        max_bytes: int,
        expected_length: int | None = None,
        url: str = "<stream>",
        key: str | None = None,
        chunk_size: int = _READ_CHUNK,
        read_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self._read_source: Callable[[int], bytes] = (
            functools.partial(source.read, **read_kwargs) if read_kwargs else source.read
        )
        self._max_bytes = max_bytes
        self._expected = expected_length
        self._url = url
        self._key = key
        self._chunk = chunk_size
        self._eof = False
        self._sha = hashlib.sha256()
        self.bytes_read = 0
        self.first_bytes = b""
        self.error: StorageError | None = None

    @property
    def sha256(self) -> str:
        """Hex sha256 of the bytes read so far.

        >>> import io
        >>> r = FillingReader(io.BytesIO(b""), max_bytes=1)
        >>> r.read(), r.sha256[:8]
        (b'', 'e3b0c442')
        """
        return self._sha.hexdigest()

    def readable(self) -> bool:
        """Always ``True``.

        >>> import io
        >>> FillingReader(io.BytesIO(), max_bytes=1).readable()
        True
        """
        return True

    def seekable(self) -> bool:
        """Always ``False``: the source is a network stream.

        >>> import io
        >>> FillingReader(io.BytesIO(), max_bytes=1).seekable()
        False
        """
        return False

    def read(self, n: int | None = -1) -> bytes:
        """Return ``n`` bytes, fewer only at EOF; ``n`` None or negative reads to EOF.

        >>> import io
        >>> FillingReader(io.BytesIO(b"xyz"), max_bytes=10).read()
        b'xyz'
        """
        if self.error is not None:
            raise self.error
        try:
            return self._read(n)
        except StorageError as exc:
            self.error = exc
            raise
        except Exception as exc:
            self.error = DownloadFailed(self._url, self._key, f"{type(exc).__name__}: {_scrub(str(exc))}")
            raise self.error from None

    def _read(self, n: int | None) -> bytes:
        want = None if n is None or n < 0 else n
        pieces: list[bytes] = []
        got = 0
        while not self._eof and (want is None or got < want):
            ask = self._chunk if want is None else want - got
            # Never read more than one byte past the limit: enough to detect an oversized body.
            ask = min(ask, self._max_bytes + 1 - self.bytes_read)
            piece = self._read_source(ask)
            if not piece:
                self._at_eof()
                break
            self._account(piece)
            pieces.append(piece)
            got += len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _account(self, piece: bytes) -> None:
        self.bytes_read += len(piece)
        if self.bytes_read > self._max_bytes:
            raise DownloadTooLarge(self._url, self._key, f"body exceeds max_bytes {self._max_bytes}")
        if len(self.first_bytes) < 64:
            self.first_bytes += piece[: 64 - len(self.first_bytes)]
        self._sha.update(piece)

    def _at_eof(self) -> None:
        self._eof = True
        if self._expected is not None and self.bytes_read != self._expected:
            raise DownloadFailed(
                self._url,
                self._key,
                f"body ended after {self.bytes_read} of {self._expected} bytes (Content-Length)",
            )

    def close(self) -> None:
        """Nothing to release here: the owner closes the HTTP response.

        >>> import io
        >>> FillingReader(io.BytesIO(), max_bytes=1).close()
        """


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

    @property
    def uri(self) -> str:
        """``s3://bucket/key``.

        >>> UploadResult("b", "k", 0, "", 0.0, b"", "").uri
        's3://b/k'
        """
        return s3_uri(self.bucket, self.key)


def _validate_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in (metadata or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValueError(
                f"metadata keys and values must be strings, got {name!r}: {type(value).__name__}"
            )
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
            raise ValueError(f"metadata key {name!r} must be [A-Za-z0-9_-] (it becomes an HTTP header name)")
        if not value.isascii() or not value.isprintable():
            raise ValueError(
                f"metadata value of {name!r} must be printable ASCII (S3 sends it as an HTTP header); "
                "hash or percent-encode other text"
            )
        result[name.lower()] = value
    size = sum(len(k) + len(v) for k, v in result.items())
    if size > _MAX_METADATA_BYTES:
        raise ValueError(f"metadata is {size} bytes; S3 allows {_MAX_METADATA_BYTES}")
    return result


def upload_from_url(
    s3_client: Any,
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
) -> UploadResult:
    """Stream ``url`` into ``s3://bucket/key`` without local files, in bounded memory.

    Memory stays near ``part_size * (max_concurrency + 1)`` whatever the size of the body. A body that fits in
    one part is stored with a single ``PutObject`` (S3 stores all of its Content-Length or nothing); a larger
    one as a multipart upload, whose size is checked with a ``HeadObject`` afterwards.
    Raises ``DownloadRefused`` (policy), ``DownloadFailed`` / ``DownloadTooLarge`` (source) or
    ``UploadFailed`` (S3). After any failure no new object is at the key and no multipart
    upload is open for it (one writer per key is assumed: keys are content hashes).

    >>> import boto3, requests
    >>> s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    >>> policy = DownloadPolicy(allowed_hosts=("cdn.example.com",))
    >>> upload_from_url(s3, "bkt", "v.mp4", "http://cdn.example.com/v.mp4", policy=policy,
    ...                 session=requests.Session())
    Traceback (most recent call last):
    ...
    minimax_dagster.storage.DownloadRefused: download refused for http://cdn.example.com/v.mp4: plain http to 'cdn.example.com' is refused; list the origin 'http://cdn.example.com:80' in allowed_hosts to allow it
    """
    _check_part_size(part_size)
    if part_size * MAX_PARTS < policy.max_bytes:
        raise ValueError(
            f"part_size {part_size} is too small for max_bytes {policy.max_bytes}: "
            f"S3 allows {MAX_PARTS} parts; raise part_size or lower max_bytes"
        )
    extra_args = {"ContentType": content_type, "Metadata": _validate_metadata(metadata)}
    config = transfer_config(part_size, max_concurrency)
    started = time.monotonic()
    response = open_download(url, policy=policy, session=session, key=key)
    try:
        reader = _reader_for(response, policy=policy, key=key)
        first = reader.read(part_size)  # exactly part_size bytes unless the body ends first
        more = reader.read(1) if len(first) == part_size else b""
        if not more:
            etag = _put_whole(s3_client, bucket, key, first, extra_args, url)
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
    s3_client: Any, bucket: str, key: str, body: bytes, extra_args: dict[str, Any], url: str
) -> str:
    """Store a body already read whole in one ``PutObject``; its ETag."""
    try:
        response = s3_client.put_object(Bucket=bucket, Key=key, Body=body, **extra_args)
    except Exception as exc:
        raise UploadFailed(url, bucket, key, f"{type(exc).__name__}: {_scrub(str(exc))}") from exc
    return str(response.get("ETag", "")).strip('"')


def _reader_for(response: requests.Response, *, policy: DownloadPolicy, key: str) -> FillingReader:
    raw = response.raw
    raw.decode_content = True
    identity = _is_identity_encoded(response)
    # With a Content-Encoding, Content-Length counts encoded bytes: urllib3 checks those itself.
    expected = _content_length(response, response.url, key) if identity else None
    return FillingReader(
        raw,
        max_bytes=policy.max_bytes,
        expected_length=expected,
        url=response.url,
        key=key,
        read_kwargs={"decode_content": True},
    )


def _transfer(
    s3_client: Any,
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
        s3_client.upload_fileobj(source, bucket, key, ExtraArgs=extra_args, Config=config)
    except Exception as exc:
        _abort_uploads_for_key(s3_client, bucket, key)
        if reader.error is not None:
            raise reader.error from None
        if isinstance(exc, StorageError):
            raise
        raise UploadFailed(url, bucket, key, f"{type(exc).__name__}: {_scrub(str(exc))}") from exc


def _verify_landed(s3_client: Any, bucket: str, key: str, reader: FillingReader, url: str) -> dict[str, Any]:
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


def _delete_quietly(s3_client: Any, bucket: str, key: str) -> None:
    try:
        s3_client.delete_object(Bucket=bucket, Key=key)
    except Exception:
        log.exception("could not delete %s after a failed upload", s3_uri(bucket, key))


def _iter_multipart_uploads(s3_client: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    paginator = s3_client.get_paginator("list_multipart_uploads")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Uploads", [])


def _abort(s3_client: Any, bucket: str, upload: Mapping[str, Any]) -> bool:
    try:
        s3_client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchUpload", "404"):
            return False
        raise
    return True


def _abort_uploads_for_key(s3_client: Any, bucket: str, key: str) -> None:
    try:
        for upload in list(_iter_multipart_uploads(s3_client, bucket, key)):
            if upload["Key"] == key and _abort(s3_client, bucket, upload):
                log.warning("aborted a multipart upload left open for %s", s3_uri(bucket, key))
    except Exception:
        log.exception("could not check %s for open multipart uploads", s3_uri(bucket, key))


def abort_stale_multipart_uploads(
    s3_client: Any,
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


# --------------------------------------------------------------------------------------------------
# Small objects
# --------------------------------------------------------------------------------------------------


def _is_missing(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    # Not "any 404": NoSuchBucket is a 404 too, and must not read as "no record yet".
    return error.get("Code") in ("NoSuchKey", "404", "NotFound") and status in (404, None)


def put_bytes(
    s3_client: Any,
    bucket: str,
    key: str,
    data: bytes,
    *,
    content_type: str = "application/octet-stream",
    metadata: Mapping[str, str] | None = None,
) -> str:
    """Store a small object in one PUT; return its ETag (without quotes).

    >>> import boto3
    >>> from moto import mock_aws
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     etag = put_bytes(s3, "bkt", "p/videos/v1-x.png", b"PNG", content_type="image/png")
    ...     read_head_bytes(s3, "bkt", "p/videos/v1-x.png")
    b'PNG'
    """
    response = s3_client.put_object(
        Bucket=bucket, Key=key, Body=data, ContentType=content_type, Metadata=_validate_metadata(metadata)
    )
    return str(response.get("ETag", "")).strip('"')


def put_json(s3_client: Any, bucket: str, key: str, obj: Any) -> str:
    """Store ``obj`` as UTF-8 JSON (pydantic models are dumped in JSON mode); return the ETag.

    >>> import boto3
    >>> from moto import mock_aws
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     etag = put_json(s3, "bkt", "p/videos/v1-x.json", {"status": "finished"})
    ...     get_json(s3, "bkt", "p/videos/v1-x.json")
    {'status': 'finished'}
    """
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return put_bytes(s3_client, bucket, key, body, content_type="application/json")


def get_json(s3_client: Any, bucket: str, key: str) -> Any | None:
    """Load a JSON object; ``None`` when there is no object at the key.

    Raises ``CorruptObject`` when the object is not UTF-8 JSON.

    >>> import boto3
    >>> from moto import mock_aws
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     get_json(s3, "bkt", "p/videos/missing.json") is None
    True
    """
    found = _read_object(s3_client, bucket, key)
    if found is None:
        return None
    data, _etag = found
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptObject(bucket, key, f"not UTF-8 JSON ({exc})") from None


def _read_object(s3_client: Any, bucket: str, key: str) -> tuple[bytes, str] | None:
    """``(body, etag)`` of a small object, ``None`` when there is no object at the key."""
    try:
        response = s3_client.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _is_missing(exc):
            return None
        raise
    with response["Body"] as body:
        return body.read(), str(response.get("ETag", "")).strip('"')


def head_object(s3_client: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """``HeadObject`` response, or ``None`` when there is no object at the key.

    >>> import boto3
    >>> from moto import mock_aws
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     _ = put_bytes(s3, "bkt", "k", b"abc")
    ...     head_object(s3, "bkt", "k")["ContentLength"], head_object(s3, "bkt", "nope")
    (3, None)
    """
    try:
        return dict(s3_client.head_object(Bucket=bucket, Key=key))
    except ClientError as exc:
        if _is_missing(exc):
            return None
        raise


def read_head_bytes(s3_client: Any, bucket: str, key: str, n: int = 64) -> bytes | None:
    """The first ``n`` bytes of an object (a Range GET); ``None`` when there is no object.

    >>> import boto3
    >>> from moto import mock_aws
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     _ = put_bytes(s3, "bkt", "v.mp4", b"\\x00\\x00\\x00\\x18ftypmp42" + bytes(100))
    ...     read_head_bytes(s3, "bkt", "v.mp4", 12)[4:8]
    b'ftyp'
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    try:
        response = s3_client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{n - 1}")
    except ClientError as exc:
        if _is_missing(exc):
            return None
        if exc.response.get("Error", {}).get("Code") == "InvalidRange":  # empty object
            return b""
        raise
    with response["Body"] as body:
        return body.read()[:n]


# --------------------------------------------------------------------------------------------------
# Job records
# --------------------------------------------------------------------------------------------------

JobStatus = Literal["running", "finished", "failed"]


def _utc_now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


class JobRecord(BaseModel):
    """Crash-resume record of one paid generation, stored at ``VideoKeys.job``.

    Written as soon as the API returns a video id, so that a restarted run resumes polling
    that id instead of paying for a second video.

    >>> rec = JobRecord(key="v1-x", video_id="123", template_id="392747428568649728",
    ...                 prompt_sha256=prompt_sha256("a cat"), status="running")
    >>> JobRecord.model_validate_json(rec.model_dump_json()) == rec
    True
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    key: str = Field(min_length=1)
    video_id: str = Field(min_length=1)
    template_id: str = Field(min_length=1)
    prompt_sha256: str
    account: str | None = None
    created_at: str = Field(default_factory=_utc_now_iso)
    status: JobStatus = "running"
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("created_at")
    @classmethod
    def _iso_timestamp(cls, value: str) -> str:
        try:
            dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"created_at must be an ISO 8601 timestamp, got {value!r}") from None
        return value


def write_job_record(s3_client: Any, bucket: str, keys: VideoKeys, record: JobRecord) -> str:
    """Store ``record`` at ``keys.job``; return the ETag. The record's key must be ``keys.key``.

    >>> import boto3
    >>> from moto import mock_aws
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     keys = VideoKeys("p", "v1-x")
    ...     rec = JobRecord(key="v1-x", video_id="42", template_id="t", prompt_sha256="")
    ...     _ = write_job_record(s3, "bkt", keys, rec)
    ...     read_job_record(s3, "bkt", keys) == rec
    True
    """
    if record.key != keys.key:
        raise ValueError(f"record.key {record.key!r} does not match keys.key {keys.key!r}")
    return put_json(s3_client, bucket, keys.job, record)


def read_job_record(s3_client: Any, bucket: str, keys: VideoKeys) -> JobRecord | None:
    """Load the job record at ``keys.job``; ``None`` when there is none.

    A record that exists but does not validate raises ``CorruptObject`` rather than returning
    ``None``: treating it as missing could pay for the same video twice.

    >>> import boto3
    >>> from moto import mock_aws
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     read_job_record(s3, "bkt", VideoKeys("p", "v1-x")) is None
    True
    """
    data = get_json(s3_client, bucket, keys.job)
    if data is None:
        return None
    try:
        return JobRecord.model_validate(data)
    except ValueError as exc:
        raise CorruptObject(bucket, keys.job, f"invalid job record ({exc})") from None


# --------------------------------------------------------------------------------------------------
# Claims: cross-process ownership of a key through S3 conditional writes
# --------------------------------------------------------------------------------------------------
#
# A claim is a small JSON object created with ``PutObject(IfNoneMatch="*")``: of several processes (Celery
# workers, Kubernetes pods, two racing runs) creating the same claim, S3 lets exactly one succeed. Its holder
# renews it (``IfMatch`` on its ETag) while it works; a claim not renewed within its TTL, or whose holder
# process is gone from this host, is stale and may be taken over (again ``IfMatch``, so only one taker wins).
# Needs an S3 that honours conditional writes: AWS S3 (since 2024), MinIO, R2; moto 5 for tests.


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a zombie counts as gone).

    >>> import os
    >>> pid_alive(os.getpid()), pid_alive(0)
    (True, False)
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def host_identity() -> str:
    """This host as far as pids are concerned: the hostname plus, on Linux, the PID namespace.

    Containers sharing a hostname (host networking, a fixed ``hostname:``) each have their own PID namespace, so
    a pid is only checked for liveness where it means the same process.

    >>> host_identity().startswith(socket.gethostname())
    True
    """
    try:
        return f"{socket.gethostname()}/pidns:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return socket.gethostname()


class Claim(BaseModel):
    """The body of a claim object: who holds the key, and until when the claim counts as live.

    ``owner`` is ``<hostname>:<pid>:<random>``; ``host`` is the holder's :func:`host_identity`; ``renewed_at`` is
    epoch seconds of the holder's clock, renewed every ``ttl / 4`` (clock skew must stay well below the TTL).

    >>> c = Claim(owner="w1:42:ab", host="w1", pid=42, acquired_at=100.0, renewed_at=100.0, ttl=60)
    >>> c.is_stale(now=150.0, hostname="w2"), c.is_stale(now=161.0, hostname="w2")
    (False, True)
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    owner: str = Field(min_length=1)
    host: str = ""
    pid: int = 0
    purpose: str = ""
    acquired_at: float
    renewed_at: float
    ttl: float = Field(gt=0)

    def is_stale(self, now: float | None = None, *, hostname: str | None = None) -> bool:
        """Not renewed within its TTL, or held by a process that no longer runs on this host."""
        now = time.time() if now is None else now
        if now > self.renewed_at + self.ttl:
            return True
        here = host_identity() if hostname is None else hostname
        return bool(self.host) and self.host == here and not pid_alive(self.pid)


@dataclasses.dataclass
class ClaimHandle:
    """A claim this process holds: its key, the ETag of the current body (updated on renewal), the body."""

    key: str
    etag: str
    claim: Claim


def _condition_failed(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    # 412: the condition does not hold; 409: a concurrent conditional write won; 404: IfMatch on a gone key.
    return code in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey") or status in (409, 412)


def _put_claim(s3_client: Any, bucket: str, key: str, claim: Claim, **condition: str) -> str | None:
    try:
        response = s3_client.put_object(
            Bucket=bucket,
            Key=key,
            Body=claim.model_dump_json().encode("utf-8"),
            ContentType="application/json",
            **condition,
        )
    except ClientError as exc:
        if _condition_failed(exc):
            return None
        raise
    return str(response.get("ETag", "")).strip('"')


def try_claim(s3_client: Any, bucket: str, key: str, claim: Claim) -> str | None:
    """Create the claim at ``key`` unless one exists (``IfNoneMatch="*"``); its ETag, or ``None`` if taken.

    >>> import boto3
    >>> from moto import mock_aws
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     c = Claim(owner="h:1:x", acquired_at=0, renewed_at=0, ttl=60)
    ...     try_claim(s3, "bkt", "p/_claims/k.json", c) is not None, try_claim(s3, "bkt", "p/_claims/k.json", c)
    (True, None)
    """
    return _put_claim(s3_client, bucket, key, claim, IfNoneMatch="*")


def replace_claim(s3_client: Any, bucket: str, key: str, claim: Claim, etag: str) -> str | None:
    """Overwrite the claim at ``key`` only if its ETag is still ``etag`` (renewal, or take-over of a stale
    claim); the new ETag, or ``None`` when someone else changed or removed it first."""
    return _put_claim(s3_client, bucket, key, claim, IfMatch=f'"{etag}"')


def read_claim(s3_client: Any, bucket: str, key: str) -> tuple[Claim | None, str] | None:
    """``(claim, etag)`` of the claim at ``key``, ``None`` when there is none.

    An unreadable body gives ``(None, etag)``: it protects nothing and may be taken over.
    """
    found = _read_object(s3_client, bucket, key)
    if found is None:
        return None
    data, etag = found
    try:
        return Claim.model_validate_json(data), etag
    except ValueError:
        return None, etag


def release_claim(s3_client: Any, bucket: str, key: str, etag: str) -> bool:
    """Delete the claim at ``key`` if its ETag is still ``etag``; ``False`` when it was not ours any more."""
    try:
        s3_client.delete_object(Bucket=bucket, Key=key, IfMatch=f'"{etag}"')
    except ClientError as exc:
        if _condition_failed(exc):
            return False
        raise
    return True


class ClaimKeeper:
    """Takes, renews and releases this process's claims in one bucket.

    A daemon thread renews every held claim each ``ttl / 4`` seconds, so a claim stays live exactly as long as
    its holder does: a killed holder's claims go stale after ``ttl`` (at once for a dead process on the same
    host). Thread-safe; ``close()`` stops the thread and releases whatever is still held.

    >>> # keeper = ClaimKeeper(s3, "bucket", ttl=60); handle = keeper.acquire("p/_claims/k.json", "produce")
    """

    def __init__(self, s3_client: Any, bucket: str, *, ttl: float = 60.0) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be > 0, got {ttl}")
        self.s3 = s3_client
        self.bucket = bucket
        self.ttl = ttl
        self.host = host_identity()
        self.pid = os.getpid()
        self.owner = f"{socket.gethostname()}:{self.pid}:{secrets.token_hex(4)}"
        self._held: dict[str, ClaimHandle] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._io = threading.Lock()  # a renewal and a release of the same claim never cross
        self.lost: list[str] = []

    def _claim(self, purpose: str, acquired_at: float | None = None) -> Claim:
        now = time.time()
        return Claim(
            owner=self.owner,
            host=self.host,
            pid=self.pid,
            purpose=purpose,
            acquired_at=now if acquired_at is None else acquired_at,
            renewed_at=now,
            ttl=self.ttl,
        )

    def _hold(self, key: str, etag: str | None, claim: Claim) -> ClaimHandle | None:
        if etag is None:
            return None
        handle = ClaimHandle(key, etag, claim)
        with self._lock:
            self._held[key] = handle
            if self._thread is None:
                self._thread = threading.Thread(target=self._renew_loop, name="claim-keeper", daemon=True)
                self._thread.start()
        return handle

    def acquire(self, key: str, purpose: str = "") -> ClaimHandle | None:
        """Create the claim at ``key``; ``None`` when someone holds it (see :meth:`inspect`)."""
        claim = self._claim(purpose)
        return self._hold(key, try_claim(self.s3, self.bucket, key, claim), claim)

    def take_over(self, key: str, etag: str, purpose: str = "") -> ClaimHandle | None:
        """Replace a stale claim whose ETag is ``etag``; ``None`` when another process was faster."""
        claim = self._claim(purpose)
        return self._hold(key, replace_claim(self.s3, self.bucket, key, claim, etag), claim)

    def inspect(self, key: str) -> tuple[Claim | None, str] | None:
        """The claim currently at ``key`` with its ETag (see :func:`read_claim`)."""
        return read_claim(self.s3, self.bucket, key)

    def acquire_slot(
        self, prefix: str, limit: int, purpose: str = "", *, scan_stale: bool = True
    ) -> ClaimHandle | None:
        """Take one of ``limit`` numbered claims ``<prefix>/<i>.json``: a counting semaphore shared by every
        process using the same bucket and prefix. With ``scan_stale``, stale slots are taken over too."""
        base = prefix.rstrip("/") + "/"
        taken: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
            taken.extend(obj["Key"] for obj in page.get("Contents", []))
        names = [f"{base}{i}.json" for i in range(limit)]
        free = [n for n in names if n not in taken]
        random.shuffle(free)
        for key in free:
            handle = self.acquire(key, purpose)
            if handle is not None:
                return handle
        if scan_stale:
            for key in (n for n in names if n in taken):
                found = self.inspect(key)
                if found is None:
                    handle = self.acquire(key, purpose)
                elif found[0] is None or found[0].is_stale():
                    handle = self.take_over(key, found[1], purpose)
                else:
                    continue
                if handle is not None:
                    return handle
        return None

    def release(self, handle: ClaimHandle) -> None:
        """Stop renewing ``handle`` and delete its claim (unless someone took it over meanwhile)."""
        try:
            with self._io:
                with self._lock:
                    current = self._held.pop(handle.key, handle)
                release_claim(self.s3, self.bucket, current.key, current.etag)
        except Exception:  # an unreleased claim only delays others until it goes stale
            log.warning("could not release the claim %s", s3_uri(self.bucket, handle.key), exc_info=True)

    def held(self) -> list[str]:
        """Keys of the claims held now."""
        with self._lock:
            return sorted(self._held)

    def renew_all(self) -> None:
        """Renew every held claim now (the background thread does this every ``ttl / 4``)."""
        with self._lock:
            handles = list(self._held.values())
        for handle in handles:
            claim = self._claim(handle.claim.purpose, handle.claim.acquired_at)
            with self._io:
                with self._lock:
                    if self._held.get(handle.key) is not handle:
                        continue  # released meanwhile
                try:
                    etag = replace_claim(self.s3, self.bucket, handle.key, claim, handle.etag)
                except Exception:
                    log.warning(
                        "could not renew the claim %s", s3_uri(self.bucket, handle.key), exc_info=True
                    )
                    continue
            with self._lock:
                if self._held.get(handle.key) is not handle:
                    continue
                if etag is None:
                    del self._held[handle.key]
                    self.lost.append(handle.key)
                    log.warning("lost the claim %s (taken over as stale)", s3_uri(self.bucket, handle.key))
                else:
                    handle.etag, handle.claim = etag, claim

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            self.renew_all()

    def close(self) -> None:
        """Stop renewing and release every claim still held."""
        self._stop.set()
        with self._lock:
            handles = list(self._held.values())
        for handle in handles:
            self.release(handle)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
