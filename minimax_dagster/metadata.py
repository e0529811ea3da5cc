"""What a person reads in the Dagster UI about a video asset: counts, sizes, timings, a table of the videos.

Dagster renders ``MetadataValue.md`` with react-markdown (CommonMark + GFM through remark-gfm, no raw HTML,
rehype-sanitize's GitHub schema plus ``data:`` image sources), inline below 1,000 characters, otherwise behind
``[Show Markdown]`` in a dialog 80 % of the window wide (read in dagster-webserver 1.13.27's UI bundle,
``MarkdownWithPlugins`` and ``MetadataEntry``, and seen in Chromium with ``tools/screenshots.py``). So:

* everything that comes from a dataset or the API (prompt, id, error text) goes through :func:`escape_markdown`
  and shows literally: no image, link, emphasis, code, heading, HTML or table break can come from it;
* posters are small inline JPEG thumbnails (``data:`` URIs, made with Pillow when it is installed), never the
  full-size remote poster: nothing in the table makes a viewer's browser load a URL;
* links open in a browser (:class:`VideoLinks`: a CDN, the S3-compatible endpoint, or the AWS console), never a
  bare ``s3://``.

>>> from minimax_dagster.production.manifest import ManifestEntry
>>> entry = ManifestEntry(id="fox", prompt="A *fox*", template_id="1", status="generated", bytes=2_500_000,
...                       s3_uri="s3://media/minimax/videos/v1-abc.mp4")
>>> md = materialization_metadata([entry], links=VideoLinks(region="eu-west-1"))
>>> md["requested"], md["size_total"], md["first_video"].value.startswith("https://")
(1, '2.4 MiB', True)
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin
from urllib.parse import quote, urlencode, urlsplit

import dagster as dg

from minimax_dagster.production.manifest import ManifestEntry, VideoManifest
from minimax_dagster.storage import read_head_bytes

logger = logging.getLogger("minimax_dagster.metadata")

#: Problems, failures and paid prompts listed in a failure's text or a check's metadata; the rest are counted.
MAX_LISTED = 50
#: Rows shown in the materialization's table; the full list is in the manifest.
TABLE_ROWS = 50
#: Rows that get an inline poster thumbnail (each adds 1.5 to 4 kB to the stored event).
THUMBNAIL_ROWS = 20
#: Thumbnails fit in this box (pixels): 160 x 90 for 16:9, 90 x 90 for a square, 51 x 90 for 9:16.
THUMBNAIL_BOX = (160, 90)
#: Picture modes Pillow resizes with a proper filter (others are converted to RGB first).
_RESIZABLE = frozenset({"RGB", "RGBA", "RGBX", "L", "LA", "CMYK", "YCbCr"})
#: Posters larger than this are not read for a thumbnail.
MAX_POSTER_BYTES = 8 * 1024 * 1024
#: Prompt characters shown in the table (the manifest has the whole prompt).
PROMPT_CHARS = 120
#: Id and error characters shown in the table.
ID_CHARS = 40
ERROR_CHARS = 160
#: Longer runs without a space get a break opportunity (U+200B) this often, so no cell widens the table.
WORD_CHARS = 24
#: Templates listed in the recommended-templates table (the most recommended first).
TEMPLATE_ROWS = 10
#: The longest a presigned S3 URL can live (SigV4).
MAX_PRESIGN_SECONDS = 7 * 24 * 3600

# Every ASCII punctuation character: CommonMark renders each of them, backslash-escaped, as itself.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_LINE_BREAK = re.compile(r"\s*(?:\r\n|[\r\n\v\f\x85\u2028\u2029])\s*")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")  # and the bidi overrides
_SPACES = re.compile(r"[ \t]+")
# GFM turns www., http(s):// and e-mail addresses in plain text into links even when escaped (remark-gfm
# finds them in the text after the escapes are gone). A word joiner (U+2060, invisible) breaks each pattern.
_AUTOLINK = re.compile(r"(?i)(https?(?=:)|www(?=\.)|@)")
_NBSP = "\u00a0"  # keeps "1.3 MiB" on one line in a narrow column
#: Invisible; breaks a bare URL so that GFM does not make it a link.
WORD_JOINER = "\u2060"
#: Invisible; a place where a long word may wrap.
ZERO_WIDTH_SPACE = "\u200b"


def escape_markdown(text: str | None, max_chars: int | None = None, *, break_every: int | None = None) -> str:
    r"""``text`` as Markdown that renders as exactly that text, on one line, at most ``max_chars`` long.

    Line breaks and tabs become spaces, control and bidi-override characters become U+FFFD, every ASCII
    punctuation character is backslash-escaped (CommonMark renders an escaped punctuation character as itself,
    in any context), and GFM's bare-URL autolinks are broken with an invisible word joiner (U+2060).
    ``break_every``: runs of that many characters without a space get an invisible break opportunity
    (U+200B), so that a long id or URL wraps inside its table column instead of widening the table.

    >>> print(escape_markdown("![x](img.png) *hi* | <b> &lt;"))
    \!\[x\]\(img\.png\) \*hi\* \| \<b\> \&lt\;
    >>> escape_markdown("see https://x.example").replace(WORD_JOINER, "<WJ>")
    'see https<WJ>\\:\\/\\/x\\.example'
    >>> print(escape_markdown("line one\nline two", max_chars=12))
    line one li…
    >>> escape_markdown("abcdefgh", break_every=3).replace(ZERO_WIDTH_SPACE, "<ZWSP>")
    'abc<ZWSP>def<ZWSP>gh'
    """
    clean = _LINE_BREAK.sub(" ", text or "")
    clean = _SPACES.sub(" ", _CONTROL.sub("\ufffd", clean)).strip()
    if max_chars is not None and len(clean) > max_chars:
        clean = clean[: max(max_chars - 1, 0)].rstrip() + "…"
    if break_every:
        clean = re.sub(rf"\S{{{break_every}}}(?=\S)", lambda m: m.group(0) + ZERO_WIDTH_SPACE, clean)
    return _PUNCTUATION.sub(r"\\\1", _AUTOLINK.sub(lambda m: m.group(1) + WORD_JOINER, clean))


def human_bytes(n: int | None) -> str:
    """A byte count as a person reads it (binary units).

    >>> human_bytes(23_660_581), human_bytes(512), human_bytes(None)
    ('22.6 MiB', '512 bytes', '')
    """
    if n is None:
        return ""
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def human_seconds(seconds: float | None) -> str:
    """A duration with its unit: seconds below two minutes, then minutes and seconds.

    >>> human_seconds(1.0254), human_seconds(17.5), human_seconds(754), human_seconds(None)
    ('1.03 s', '17.5 s', '12 min 34 s', '')
    """
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


@dataclass(frozen=True)
class VideoLinks:
    """How an ``s3://bucket/key`` becomes a link a person can open in a browser.

    In order of preference:

    1. ``public_base_url``: a CDN (e.g. CloudFront) in front of the bucket; ``<base>/<key>``. Permanent and
       opens for whoever the CDN lets in. The best choice when there is one.
    2. ``presign_seconds`` with ``s3_client``: a presigned GET URL, valid that long (at most 7 days, said next
       to the table). Off by default: metadata stays in the event log for good, the link does not, and while it
       lives it is a bearer credential (it carries the access key id) readable by everyone who sees the run.
    3. ``endpoint_url`` of an S3-compatible server (MinIO, Ceph, moto): path-style ``<endpoint>/<bucket>/<key>``;
       it opens when the bucket allows the browser to read (the demo's moto server does).
    4. Otherwise (AWS, no CDN) the object's page in the S3 console: permanent, nothing in it grants access, and
       it opens for a person signed in to the account with read permission (where the video plays or downloads).

    >>> VideoLinks(region="eu-west-1").url("s3://media/minimax/videos/v1 a.mp4")
    'https://s3.console.aws.amazon.com/s3/object/media?region=eu-west-1&prefix=minimax%2Fvideos%2Fv1%20a.mp4'
    >>> VideoLinks(endpoint_url="http://127.0.0.1:9000").url("s3://media/v.mp4")
    'http://127.0.0.1:9000/media/v.mp4'
    >>> VideoLinks(public_base_url="https://cdn.example.com/").url("s3://media/minimax/v.mp4")
    'https://cdn.example.com/minimax/v.mp4'
    """

    public_base_url: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    presign_seconds: int = 0
    s3_client: Any = None

    def __post_init__(self) -> None:
        if not 0 <= self.presign_seconds <= MAX_PRESIGN_SECONDS:
            raise ValueError(
                f"presign_seconds must be between 0 and {MAX_PRESIGN_SECONDS} (7 days), got {self.presign_seconds}"
            )
        if self.presign_seconds and self.s3_client is None:
            raise ValueError("presign_seconds needs s3_client (the client that signs the URLs)")
        for name in ("public_base_url", "endpoint_url"):
            value = getattr(self, name)
            if value and urlsplit(value).scheme not in ("http", "https"):
                raise ValueError(f"{name} must be an http(s) URL, got {value!r}")

    @classmethod
    def from_s3_client(
        cls, s3_client: Any, *, public_base_url: str | None = None, presign_seconds: int = 0
    ) -> VideoLinks:
        """The links for a boto3 S3 client: its endpoint unless it is AWS's own, and its region.

        >>> import boto3
        >>> aws = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s")
        >>> VideoLinks.from_s3_client(aws).endpoint_url is None
        True
        >>> local = boto3.client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9000",
        ...                      aws_access_key_id="k", aws_secret_access_key="s")
        >>> VideoLinks.from_s3_client(local).endpoint_url
        'http://127.0.0.1:9000'
        """
        endpoint = getattr(s3_client.meta, "endpoint_url", None)
        host = urlsplit(endpoint or "").hostname or ""
        if host.endswith((".amazonaws.com", ".amazonaws.com.cn")):
            endpoint = None
        return cls(
            public_base_url=public_base_url,
            endpoint_url=endpoint,
            region=getattr(s3_client.meta, "region_name", None),
            presign_seconds=presign_seconds,
            s3_client=s3_client if presign_seconds else None,
        )

    def url(self, s3_uri: str | None) -> str | None:
        """The browser link of ``s3_uri`` (``None`` for none)."""
        if not s3_uri or not s3_uri.startswith("s3://"):
            return None
        bucket, _, key = s3_uri.removeprefix("s3://").partition("/")
        if self.public_base_url:
            return f"{self.public_base_url.rstrip('/')}/{quote(key)}"
        if self.presign_seconds:
            return str(
                self.s3_client.generate_presigned_url(
                    "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=self.presign_seconds
                )
            )
        if self.endpoint_url:
            return f"{self.endpoint_url.rstrip('/')}/{quote(bucket)}/{quote(key)}"
        # The console's object page (the form the console itself links to; not an API contract).
        query = urlencode({"region": self.region or "us-east-1", "prefix": key}, quote_via=quote)
        return f"https://s3.console.aws.amazon.com/s3/object/{quote(bucket)}?{query}"

    def describe(self, now: dt.datetime | None = None) -> str:
        """One sentence for the reader: where the links lead and for how long.

        >>> VideoLinks().describe()
        'Links open the object in the AWS S3 console (sign in to the account).'
        """
        if self.public_base_url:
            return f"Links open the videos through {urlsplit(self.public_base_url).netloc}."
        if self.presign_seconds:
            until = (now or dt.datetime.now(dt.timezone.utc)) + dt.timedelta(seconds=self.presign_seconds)
            return f"Links are presigned and stop working at {until:%Y-%m-%d %H:%M} UTC."
        if self.endpoint_url:
            return f"Links open the objects on {urlsplit(self.endpoint_url).netloc}."
        return "Links open the object in the AWS S3 console (sign in to the account)."


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


def _link(text: str, url: str | None) -> str:
    # The URLs are built here from percent-encoded parts, so they hold no space, '<' or '>'.
    return f"[{text}](<{url}>)" if url else ""


def video_table(
    entries: list[ManifestEntry],
    *,
    links: VideoLinks | None = None,
    thumbnails: Mapping[str, str] | None = None,
    rows: int = TABLE_ROWS,
) -> str:
    """A Markdown table, one row per video: poster thumbnail, id, prompt, status (with the error of a failed
    one), resolution, duration, file size and a link that opens the video; then a line saying where the links
    lead. Only ``thumbnails`` that are ``data:image/`` URIs are shown (nothing makes the browser load a URL).

    >>> entry = ManifestEntry(id="a|b", prompt="![x](x.png)", template_id="1", status="generated",
    ...                       width=1280, height=720, duration_s=6, bytes=1_500_000, s3_uri="s3://m/v.mp4")
    >>> print(video_table([entry], links=VideoLinks(endpoint_url="http://127.0.0.1:9000")))
    | poster | id | prompt | status | resolution | duration | size | video |
    |---|---|---|---|---|---|---|---|
    |  | a\\|b | \\!\\[x\\]\\(x\\.png\\) | generated | 1280x720 | 6\u00a0s | 1.4\u00a0MiB | [open](<http://127.0.0.1:9000/m/v.mp4>) |
    <BLANKLINE>
    Links open the objects on 127.0.0.1:9000.
    """
    links = links or VideoLinks()
    thumbnails = thumbnails or {}
    lines = [
        "| poster | id | prompt | status | resolution | duration | size | video |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in entries[:rows]:
        url = links.url(e.s3_uri) if e.ok else None
        thumb = thumbnails.get(e.id)
        poster = ""
        if thumb and thumb.startswith("data:image/"):
            poster = f"[![poster]({thumb})](<{url}>)" if url else f"![poster]({thumb})"
        error = escape_markdown(e.error, ERROR_CHARS, break_every=WORD_CHARS)
        cells = [
            poster,
            escape_markdown(e.id, ID_CHARS, break_every=WORD_CHARS),
            escape_markdown(e.prompt, PROMPT_CHARS, break_every=WORD_CHARS),
            e.status if e.ok else f"failed: {error}",
            f"{e.width}x{e.height}" if e.width and e.height else "",
            f"{e.duration_s:g}{_NBSP}s" if e.duration_s else "",
            human_bytes(e.bytes).replace(" ", _NBSP) if e.ok else "",
            _link("open", url),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = []
    if len(entries) > rows:
        notes.append(f"{len(entries) - rows} more in the manifest.")
    if any(e.ok and e.s3_uri for e in entries[:rows]):
        notes.append(links.describe())
    return "\n".join(lines) + ("\n\n" + " ".join(notes) if notes else "")


def recommended_templates(entries: Iterable[ManifestEntry]) -> Counter[tuple[str, str]]:
    """How many videos the agent recommended each template after: ``{(template id, name): videos}``.

    >>> e = ManifestEntry(id="a", template_id="1", status="generated",
    ...                   recommended_templates=[{"id": "42", "name": "Diving"}])
    >>> recommended_templates([e, e])
    Counter({('42', 'Diving'): 2})
    """
    out: Counter[tuple[str, str]] = Counter()
    for e in entries:
        if not e.ok:
            continue
        for t in {(str(t["id"]), str(t.get("name") or "")) for t in e.recommended_templates if t.get("id")}:
            out[t] += 1
    return out


def templates_table(templates: Mapping[tuple[str, str], int], rows: int = TEMPLATE_ROWS) -> str:
    """The recommended templates as a small Markdown table, most recommended first (names come from the API:
    escaped); past ``rows`` they are counted.

    >>> print(templates_table({("42", "Diving"): 2}))
    | template | name | videos |
    |---|---|---|
    | 42 | Diving | 2 |
    """
    lines = ["| template | name | videos |", "|---|---|---|"]
    ranked = sorted(templates.items(), key=lambda kv: (-kv[1], kv[0]))
    for (tid, name), count in ranked[:rows]:
        lines.append(f"| {escape_markdown(tid, ID_CHARS)} | {escape_markdown(name, ID_CHARS)} | {count} |")
    more = f"\n\nand {len(ranked) - rows} more." if len(ranked) > rows else ""
    return "\n".join(lines) + more


#: What the manifest's columns hold, where ManifestEntry does not say it itself.
_COLUMN_NOTES = {
    "id": "The prompt row's stable id.",
    "prompt": "The text prompt.",
    "template_id": "The MiniMax agent template.",
    "status": "generated (this run), reused (an earlier run's video) or failed.",
    "video_id": "MiniMax's video id.",
    "account": "The useapi.net account that made the video.",
    "s3_uri": "The video in S3.",
    "poster_uri": "The poster in S3.",
    "sidecar_uri": "The JSON sidecar (stream events, sizes) in S3.",
    "width": "Video width in pixels.",
    "height": "Video height in pixels.",
    "duration_s": "Video duration in seconds.",
    "fps": "Frames per second.",
    "bytes": "Video size in bytes.",
    "sha256": "SHA-256 of the video file.",
    "generation_seconds": "Seconds from create to the finished video.",
    "upload_seconds": "Seconds to store the video in S3.",
    "recommended_templates": "Templates the agent recommended after this video.",
    "error": "Why there is no video.",
    "metadata": "Extra fields of the prompt row.",
}


def _column_type(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return "string"
    args = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) else []
    base = args[0] if len(args) == 1 else annotation
    if get_origin(base) in (list, dict):
        return "json"
    return {str: "string", int: "int", float: "float", bool: "bool"}.get(base, "json")


def manifest_column_schema() -> dg.TableSchema:
    """The columns of a video manifest, for a definition-level ``dagster/column_schema``.

    >>> schema = manifest_column_schema()
    >>> [(c.name, c.type) for c in schema.columns][:5]
    [('id', 'string'), ('partition', 'string'), ('prompt', 'string'), ('template_id', 'string'), ('status', 'string')]
    >>> {c.name: c.type for c in schema.columns}["bytes"], {c.name: c.type for c in schema.columns}["metadata"]
    ('int', 'json')
    """
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=name,
                type=_column_type(field.annotation),
                description=field.description or _COLUMN_NOTES.get(name),
            )
            for name, field in ManifestEntry.model_fields.items()
        ]
    )


def materialization_metadata(
    entries: list[ManifestEntry],
    events: Mapping[str, int] | None = None,
    capacity: Mapping[str, int] | None = None,
    *,
    links: VideoLinks | None = None,
    thumbnails: Mapping[str, str] | None = None,
    manifest_uri: str | None = None,
    templates: bool = True,
    rows: int = TABLE_ROWS,
) -> dict[str, Any]:
    """The metadata of one materialization (one partition's entries): counts, sizes, timings, the table.

    ``events`` (stream events counted) and ``capacity`` (account → jobs) are shown when given; they describe a
    run, so pass them where the run is described, not to every partition. ``manifest_uri`` is the manifest's
    ``s3://`` object, shown as a link. ``templates=False`` leaves out the recommended-templates table.

    >>> md = materialization_metadata([ManifestEntry(id="a", template_id="1", status="failed", error="moderated")])
    >>> md["failed"], md["dagster/row_count"], md["failed_prompts"].value
    (1, 1, [{'id': 'a', 'error': 'moderated'}])
    """
    links = links or VideoLinks()
    manifest = VideoManifest(requested_ids=[e.id for e in entries], entries=entries)
    stats = manifest.generation_stats()
    ok = [e for e in entries if e.ok]
    generated = [e for e in entries if e.status == "generated" and e.generation_seconds]
    size = sum(e.bytes or 0 for e in ok)
    # What a person reads first (the UI keeps this order), then the raw values that plots and tools use.
    md: dict[str, Any] = {
        **manifest.counts(),
        "videos": dg.MetadataValue.md(video_table(entries, links=links, thumbnails=thumbnails, rows=rows)),
        "size_total": human_bytes(size),
        "generation_time": (
            f"median {human_seconds(stats['median'])}, longest {human_seconds(stats['max'])}, "
            f"{human_seconds(stats['total'])} in all ({len(generated)} generated)"
            if generated
            else "nothing generated in this run"
        ),
    }
    first = links.url(ok[0].s3_uri) if ok else None
    if first:
        md["first_video"] = dg.MetadataValue.url(first)
    manifest_link = links.url(manifest_uri)
    if manifest_link:
        md["manifest"] = dg.MetadataValue.url(manifest_link)
    recommended = recommended_templates(entries)
    if templates and recommended:
        md["recommended_templates"] = dg.MetadataValue.md(templates_table(recommended))
    md.update(
        {
            "dagster/row_count": len(entries),
            "bytes_total": size,
            "generation_seconds_total": stats["total"],
            "generation_seconds_median": stats["median"],
            "generation_seconds_max": stats["max"],
            "recovered_by_polling": sum(1 for e in entries if e.recovered),
            "reattached": sum(1 for e in entries if e.reattached),
            "video_ids": dg.MetadataValue.json([e.video_id for e in ok if e.video_id]),
        }
    )
    if events is not None:
        md["stream_events"] = dg.MetadataValue.json(dict(events))
    if capacity is not None:
        md["capacity"] = dg.MetadataValue.json(dict(capacity) or {"api-chosen": 0})
    failed = [e for e in entries if not e.ok]
    if failed:
        md["failed_prompts"] = dg.MetadataValue.json([{"id": e.id, "error": e.error} for e in failed])
    return md
