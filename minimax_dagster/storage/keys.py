"""Deterministic S3 keys: the content key of a video request and the object keys derived from it.

Inputs (prompts, ids) never appear in a key, and prefixes are validated, so nothing can steer a write outside
the configured prefix.

>>> keys = VideoKeys("minimax", video_key("392747428568649728", "a cat surfing", None))
>>> keys.video.startswith("minimax/videos/v1-") and keys.video.endswith(".mp4")
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import unicodedata

__all__ = [
    "KEY_VERSION",
    "VideoKeys",
    "normalize_prefix",
    "prompt_sha256",
    "s3_uri",
    "safe_key_part",
    "video_key",
]

KEY_VERSION = "v1"
_MAX_PREFIX_CHARS = 512
_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_PREFIX_SEGMENT_RE = re.compile(r"[A-Za-z0-9._=-]+")
_UNSAFE_RUN_RE = re.compile(r"[^A-Za-z0-9._-]+")


def s3_uri(bucket: str, key: str) -> str:
    """``s3://bucket/key``.

    >>> s3_uri("media", "minimax/videos/v1-abc.mp4")
    's3://media/minimax/videos/v1-abc.mp4'
    """
    return f"s3://{bucket}/{key}"


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
