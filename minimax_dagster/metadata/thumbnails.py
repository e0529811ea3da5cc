"""Poster thumbnails for the materialization's table: small inline JPEGs (``data:`` URIs, made with Pillow when
it is installed), made on a small thread pool while the run's other videos generate.

>>> poster_thumbnail(b"not an image") is None
True
"""

from __future__ import annotations

import base64
import io
import logging
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from minimax_dagster.production.manifest import ManifestEntry
from minimax_dagster.storage import read_head_bytes

logger = logging.getLogger("minimax_dagster.metadata")


#: Rows that get an inline poster thumbnail (each adds 1.5 to 4 kB to the stored event).
THUMBNAIL_ROWS = 20


#: Thumbnails fit in this box (pixels): 160 x 90 for 16:9, 90 x 90 for a square, 51 x 90 for 9:16.
THUMBNAIL_BOX = (160, 90)


#: Picture modes Pillow resizes with a proper filter (others are converted to RGB first).
_RESIZABLE = frozenset({"RGB", "RGBA", "RGBX", "L", "LA", "CMYK", "YCbCr"})


#: Posters larger than this are not read for a thumbnail.
MAX_POSTER_BYTES = 8 * 1024 * 1024


def poster_thumbnail(image: bytes, box: tuple[int, int] = THUMBNAIL_BOX) -> str | None:
    """A small JPEG of a poster as a ``data:`` URI, or ``None`` (no Pillow, or not an image it can read).

    >>> from PIL import Image
    >>> buf = io.BytesIO(); Image.new("RGB", (1280, 720), "teal").save(buf, "PNG")
    >>> uri = poster_thumbnail(buf.getvalue())
    >>> uri.startswith("data:image/jpeg;base64,"), Image.open(io.BytesIO(base64.b64decode(uri[23:]))).size
    (True, (160, 90))
    >>> poster_thumbnail(b"not an image") is None
    True
    """
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(io.BytesIO(image)) as picture:
            picture.draft("RGB", (box[0] * 2, box[1] * 2))  # JPEG: decode at a fraction of the size
            if picture.mode in _RESIZABLE:
                # Shrunk first, converted after: converting the full-size picture costs more than the rest.
                picture.thumbnail(box)
                small = picture.convert("RGB")
            else:  # palette and bilevel pictures would be resized by nearest neighbour
                small = picture.convert("RGB")
                small.thumbnail(box)
            out = io.BytesIO()
            small.save(out, "JPEG", quality=70, optimize=True)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _has_s3_poster(entry: ManifestEntry) -> bool:
    return entry.ok and bool(entry.poster_uri) and (entry.poster_uri or "").startswith("s3://")


def _thumbnail_of(s3_client: Any, poster_uri: str) -> str | None:
    bucket, _, key = poster_uri.removeprefix("s3://").partition("/")
    data = read_head_bytes(s3_client, bucket, key, MAX_POSTER_BYTES)
    return poster_thumbnail(data) if data else None


class PosterThumbnails:
    """Thumbnails of the posters in S3 of the first ``rows`` entries that have one, made in the background while
    the other videos of a run are still generating: :meth:`add` each entry as it is stored, and :meth:`for_entries` at the end has them ready
    (it makes the ones still missing, several at once), so the step's end does not wait on them.

    ``workers`` threads read the posters (each once, whichever prompts share it) and shrink them. A poster
    that cannot be read, or an S3 error, only leaves its row without a thumbnail. Use it as a context manager
    (or call :meth:`close`).

    >>> import boto3
    >>> from moto import mock_aws
    >>> from PIL import Image
    >>> from minimax_dagster.storage import put_bytes, s3_client_config
    >>> buf = io.BytesIO(); Image.new("RGB", (1280, 720), "teal").save(buf, "PNG")
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     _ = put_bytes(s3, "bkt", "p/v.png", buf.getvalue())
    ...     fox = ManifestEntry(id="fox", prompt="A fox", template_id="1", status="generated",
    ...                         poster_uri="s3://bkt/p/v.png")
    ...     with PosterThumbnails(s3) as thumbnails:
    ...         thumbnails.add(fox)
    ...         made = thumbnails.for_entries([fox])
    >>> list(made), made["fox"].startswith("data:image/jpeg;base64,")
    (['fox'], True)
    """

    def __init__(self, s3_client: Any, *, rows: int = THUMBNAIL_ROWS, workers: int = 2) -> None:
        self.s3 = s3_client
        self.rows = rows
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="minimax-thumbnails")
        self._by_poster: dict[str, Future[str | None]] = {}
        self._lock = threading.Lock()

    def add(self, entry: ManifestEntry) -> None:
        """Start making ``entry``'s thumbnail (nothing when it has no poster in S3, or it is made already)."""
        if _has_s3_poster(entry):
            self._start(entry.poster_uri or "")

    def offer(self, poster_uri: str, image: bytes) -> None:
        """Start making the thumbnail of the poster at ``poster_uri`` from its bytes, already in hand (the
        producer just stored them): :meth:`add` and :meth:`for_entries` then use it, with no read from S3.
        Thread-safe; nothing when that poster's thumbnail is started already or the poster is too large."""
        if len(image) <= MAX_POSTER_BYTES:
            self._start(poster_uri, image)

    def _start(self, poster_uri: str, image: bytes | None = None) -> Future[str | None]:
        with self._lock:
            future = self._by_poster.get(poster_uri)
            if future is None:
                future = self._pool.submit(self._make, poster_uri, image)
                self._by_poster[poster_uri] = future
            return future

    def _make(self, poster_uri: str, image: bytes | None) -> str | None:
        try:
            return poster_thumbnail(image) if image is not None else _thumbnail_of(self.s3, poster_uri)
        except Exception:  # a thumbnail is an illustration: its row goes without
            logger.debug("no thumbnail for %s", poster_uri, exc_info=True)
            return None

    def for_entries(self, entries: Iterable[ManifestEntry]) -> dict[str, str]:
        """The thumbnails of the first ``rows`` entries that have one: ``{entry id: data URI}``. Each poster is
        read once from S3 (at most :data:`MAX_POSTER_BYTES`); a missing or unreadable one is skipped."""
        candidates = [e for e in entries if _has_s3_poster(e)]
        out: dict[str, str] = {}
        taken = 0
        while len(out) < self.rows and taken < len(candidates):
            batch = candidates[taken : taken + self.rows - len(out)]
            taken += len(batch)
            started = [(e, self._start(e.poster_uri or "")) for e in batch]
            for entry, future in started:
                thumb = future.result()
                if thumb:
                    out[entry.id] = thumb
        return out

    def wait(self) -> None:
        """Wait until every thumbnail started so far is made (or given up)."""
        with self._lock:
            futures = list(self._by_poster.values())
        for future in futures:
            future.exception()

    def close(self) -> None:
        """Stop the threads (thumbnails not started yet are dropped)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> PosterThumbnails:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
