"""Fetching a URL under a :class:`~minimax_dagster.storage.DownloadPolicy`: redirects checked hop by hop, and a
reader that hands the body on in exact, counted, size-capped pieces.

>>> import io
>>> FillingReader(io.BytesIO(b"abc"), max_bytes=10).read(2)
b'ab'
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urljoin

import requests

from minimax_dagster.storage.config import MiB
from minimax_dagster.storage.errors import DownloadFailed, DownloadTooLarge, StorageError
from minimax_dagster.storage.policy import DownloadPolicy
from minimax_dagster.storage.redact import scrub_urls

__all__ = ["FillingReader", "open_download"]

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Names the setting in errors (DownloadPolicy.max_bytes is the resource's max_download_bytes).
_CAP = " (DownloadPolicy.max_bytes, set by max_download_bytes)"
_READ_CHUNK = 1 * MiB  # read size when reading to EOF; read(n) asks the source for all n bytes at once


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
    minimax_dagster.storage.errors.DownloadRefused: download refused for ftp://cdn.example.com/x: scheme 'ftp' is not allowed; only https (or http to a listed origin)
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
        raise DownloadFailed(url, key, f"{type(exc).__name__}: {scrub_urls(str(exc))}") from None


def _checked_final(
    response: requests.Response, url: str, policy: DownloadPolicy, key: str | None
) -> requests.Response:
    if response.status_code != 200:
        response.close()
        raise DownloadFailed(url, key, f"HTTP {response.status_code}", status=response.status_code)
    length = _content_length(response, url, key)
    if length is not None and length > policy.max_bytes:
        response.close()
        raise DownloadTooLarge(
            url, key, f"Content-Length {length} exceeds max_bytes {policy.max_bytes}{_CAP}"
        )
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
            self.error = DownloadFailed(self._url, self._key, f"{type(exc).__name__}: {scrub_urls(str(exc))}")
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
            raise DownloadTooLarge(
                self._url,
                self._key,
                f"body exceeds max_bytes {self._max_bytes}{_CAP}: it was not read further",
            )
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


def response_reader(response: requests.Response, *, policy: DownloadPolicy, key: str) -> FillingReader:
    """The :class:`FillingReader` over the decoded body of a response from :func:`open_download`.

    The body's length is checked against ``Content-Length`` when the body is not content-encoded. A body that is
    (although ``identity`` was asked) is decoded as it is read and its decoded bytes count against ``max_bytes``;
    each read decodes at most what it returns (urllib3 >= 2.6), so it cannot expand in memory.

    >>> import io, requests, urllib3
    >>> response = requests.Response()
    >>> response.raw = urllib3.HTTPResponse(io.BytesIO(b"abcdef"), preload_content=False)
    >>> response.url, response.headers["Content-Length"] = "https://cdn.example.com/v.mp4", "6"
    >>> reader = response_reader(response, policy=DownloadPolicy(allowed_hosts=("cdn.example.com",)), key="k")
    >>> reader.read(4), reader.read(), reader.bytes_read
    (b'abcd', b'ef', 6)
    """
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
