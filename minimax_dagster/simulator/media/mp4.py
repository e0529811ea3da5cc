"""The MP4 (ISO-BMFF) container: writing the title-card movie and padding it lazily (reading it back:
:mod:`~minimax_dagster.simulator.media.mp4_info`).

Layout of a rendered file::

    ftyp | moov (mvhd, trak ... stco) | mdat (length-prefixed NAL units) | free (optional padding)

``moov`` comes before ``mdat`` ("fast start"), so the first few kilobytes describe the whole movie and
:func:`~minimax_dagster.simulator.media.mp4_info.read_mp4_info` never needs more than that prefix. ``total_bytes`` pads the file with a trailing
``free`` box, which players skip. The padding is zeros produced lazily by :meth:`RenderedVideo.iter_bytes`,
so a multi-GiB file never exists in memory; pads of 4 GiB or more use the 64-bit ``largesize`` box
header. A pad too small for a box header (1 to 7 bytes) is appended inside ``mdat`` instead, as
unreferenced zero bytes, which the format allows.

Limits: width and height are even, 2 to 8192 pixels, and the picture must fit H.264 level 6.2; fps is an
integer from 1 to 240; duration_s is at most 3600 s.

>>> from minimax_dagster.simulator.media.mp4_info import read_mp4_info
>>> read_mp4_info(render_video(VideoSpec(64, 48, 1.0, 10, "x")).read_all())["frames"]
10
"""

from __future__ import annotations

import functools
import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from numbers import Real
from typing import BinaryIO, NamedTuple

from .card import LABEL, _card_indices, _check_size, _palette
from .h264 import (
    _MAX_FRAME_NUM,
    _choose_level,
    _Geometry,
    _geometry,
    _idr_nal,
    _nal,
    _p_skip_samples,
    _pps_rbsp,
    _sps_rbsp,
)

__all__ = ["MAX_READ_ALL_BYTES", "RenderedVideo", "VideoSpec", "render_video"]


#: :meth:`RenderedVideo.read_all` refuses files larger than this (64 MiB); stream bigger ones.
MAX_READ_ALL_BYTES = 64 * 1024 * 1024


MAX_FPS = 240


MAX_DURATION_S = 3600.0


# Media and movie timescale = fps * _TICKS_PER_FRAME, so every whole frame lasts exactly
# _TICKS_PER_FRAME ticks and a fractional duration_s is honoured by shortening the last frame.
_TICKS_PER_FRAME = 1000


_U32_MAX = 0xFFFFFFFF


_MATRIX = struct.pack(">9i", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def _mvhd(timescale: int, duration: int) -> bytes:
    if duration > _U32_MAX:
        times = struct.pack(">QQIQ", 0, 0, timescale, duration)
        version = 1
    else:
        times = struct.pack(">IIII", 0, 0, timescale, duration)
        version = 0
    rest = struct.pack(">IH10x", 0x10000, 0x100) + _MATRIX + bytes(24) + struct.pack(">I", 2)
    return _full_box(b"mvhd", version, 0, times, rest)


def _tkhd(duration: int, width: int, height: int) -> bytes:
    if duration > _U32_MAX:
        head = struct.pack(">QQIIQ", 0, 0, 1, 0, duration)
        version = 1
    else:
        head = struct.pack(">IIIII", 0, 0, 1, 0, duration)
        version = 0
    rest = struct.pack(">8xhhhH", 0, 0, 0, 0) + _MATRIX + struct.pack(">II", width << 16, height << 16)
    return _full_box(b"tkhd", version, 0x3, head, rest)  # enabled | in movie


def _mdhd(timescale: int, duration: int) -> bytes:
    language = ((ord("u") - 0x60) << 10) | ((ord("n") - 0x60) << 5) | (ord("d") - 0x60)
    if duration > _U32_MAX:
        return _full_box(b"mdhd", 1, 0, struct.pack(">QQIQHH", 0, 0, timescale, duration, language, 0))
    return _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, duration, language, 0))


def _avc1(geo: _Geometry, sps: bytes, pps: bytes) -> bytes:
    avcc = _box(
        b"avcC",
        bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]),  # version, profile, compat, level, 4-byte lengths
        struct.pack(">H", len(sps)),
        sps,
        bytes([1]),
        struct.pack(">H", len(pps)),
        pps,
    )
    name = LABEL.encode("ascii")
    return _box(
        b"avc1",
        bytes(6),
        struct.pack(">H", 1),  # data_reference_index
        bytes(16),  # pre_defined / reserved
        struct.pack(">HHIII", geo.width, geo.height, 0x480000, 0x480000, 0),
        struct.pack(">H", 1),  # frame_count
        bytes([len(name)]) + name + bytes(31 - len(name)),  # compressorname
        struct.pack(">Hh", 0x18, -1),  # depth, pre_defined
        avcc,
    )


class _Movie(NamedTuple):
    data: bytes  # ftyp + moov + mdat, the whole unpadded file
    mdat_offset: int  # where the mdat box header starts


def _ticks(duration_s: float, fps: int) -> int:
    return round(duration_s * fps * _TICKS_PER_FRAME)


@functools.lru_cache(maxsize=16)
def _encode_movie(width: int, height: int, duration_s: float, fps: int, title: str) -> _Movie:
    """Encode the unpadded MP4. Pure function of its arguments, so it is cached (bounded: a cached
    1080p movie is ~3.2 MB, so 16 entries stay around 50 MB)."""
    geo = _geometry(width, height)
    level = _choose_level(geo.mb_w, geo.mb_h, fps)
    timescale = fps * _TICKS_PER_FRAME
    total_ticks = _ticks(duration_s, fps)
    frames = -(-total_ticks // _TICKS_PER_FRAME)
    last_delta = total_ticks - (frames - 1) * _TICKS_PER_FRAME

    sps = _nal(3, 7, _sps_rbsp(geo, fps, level))
    pps = _nal(3, 8, _pps_rbsp())
    idr = _idr_nal(geo, _card_indices(width, height, title), _palette(title))
    # Frame n >= 1 is the P picture with frame_num n % MaxFrameNum.
    p_samples = _p_skip_samples(geo.mbs)
    cycle = p_samples[1:] + p_samples[:1]
    repeats, rest = divmod(frames - 1, _MAX_FRAME_NUM)
    p_frames = cycle * repeats + cycle[:rest]
    sizes = [4 + len(idr)] + [len(s) for s in p_frames]

    if last_delta == _TICKS_PER_FRAME:
        stts_entries = [(frames, _TICKS_PER_FRAME)]
    elif frames == 1:
        stts_entries = [(1, last_delta)]
    else:
        stts_entries = [(frames - 1, _TICKS_PER_FRAME), (1, last_delta)]

    def moov(chunk_offset: int) -> bytes:
        stbl = _box(
            b"stbl",
            _full_box(b"stsd", 0, 0, struct.pack(">I", 1), _avc1(geo, sps, pps)),
            _full_box(
                b"stts",
                0,
                0,
                struct.pack(">I", len(stts_entries)),
                *(struct.pack(">II", n, d) for n, d in stts_entries),
            ),
            _full_box(b"stss", 0, 0, struct.pack(">II", 1, 1)),  # only sample 1 is a sync sample
            _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, frames, 1)),  # one chunk holds all
            _full_box(b"stsz", 0, 0, struct.pack(f">II{frames}I", 0, frames, *sizes)),
            _full_box(b"stco", 0, 0, struct.pack(">II", 1, chunk_offset)),
        )
        minf = _box(
            b"minf",
            _full_box(b"vmhd", 0, 1, struct.pack(">HHHH", 0, 0, 0, 0)),
            _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1))),
            stbl,
        )
        mdia = _box(
            b"mdia",
            _mdhd(timescale, total_ticks),
            _full_box(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, b"vide"), b"VideoHandler\x00"),
            minf,
        )
        trak = _box(b"trak", _tkhd(total_ticks, width, height), mdia)
        return _box(b"moov", _mvhd(timescale, total_ticks), trak)

    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isom", b"iso2", b"avc1", b"mp41")
    mdat_offset = len(ftyp) + len(moov(0))
    # stco is 32-bit; the chunk sits right after ftyp + moov, which are a few MB at most.
    moov_box = moov(mdat_offset + 8)
    mdat_head = struct.pack(">I4sI", 8 + sum(sizes), b"mdat", len(idr))  # + the IDR sample's length
    return _Movie(b"".join((ftyp, moov_box, mdat_head, idr, *p_frames)), mdat_offset)


@dataclass(frozen=True)
class VideoSpec:
    """What to render: picture size, clip length, frame rate, the prompt shown on the card, and an
    optional exact file size.

    ``width`` and ``height`` are even integers (2..8192); ``fps`` an integer (1..240); ``duration_s``
    a positive number of seconds (at most 3600). The movie has ``ceil(duration_s * fps)`` frames; if
    ``duration_s * fps`` is not whole, the last frame is shorter so the reported duration is exactly
    ``duration_s`` (to 1/(1000*fps) s). ``total_bytes``, when larger than the natural size, pads the
    file to exactly that many bytes; a smaller value is ignored.

    >>> VideoSpec(1280, 720, 6.0, 30, "A cat surfing").total_bytes is None
    True
    >>> VideoSpec(1281, 720, 6.0, 30, "odd width")
    Traceback (most recent call last):
    ...
    ValueError: width must be even, got 1281
    """

    width: int
    height: int
    duration_s: float
    fps: int
    title: str
    total_bytes: int | None = None

    def __post_init__(self) -> None:
        _check_size(self.width, self.height)
        for name, value in (("width", self.width), ("height", self.height)):
            if value % 2:
                raise ValueError(f"{name} must be even, got {value}")
        _choose_level((self.width + 15) // 16, (self.height + 15) // 16, 1)
        if not isinstance(self.fps, int) or isinstance(self.fps, bool):
            raise TypeError(f"fps must be an int, got {type(self.fps).__name__}")
        if not 1 <= self.fps <= MAX_FPS:
            raise ValueError(f"fps must be between 1 and {MAX_FPS}, got {self.fps}")
        if not isinstance(self.duration_s, Real) or isinstance(self.duration_s, bool):
            raise TypeError(f"duration_s must be a number, got {type(self.duration_s).__name__}")
        if not (math.isfinite(self.duration_s) and 0 < self.duration_s <= MAX_DURATION_S):
            raise ValueError(f"duration_s must be > 0 and <= {MAX_DURATION_S:g}, got {self.duration_s}")
        if _ticks(float(self.duration_s), self.fps) < 1:
            raise ValueError(f"duration_s {self.duration_s} is too short to hold a frame")
        if not isinstance(self.title, str):
            raise TypeError(f"title must be a str, got {type(self.title).__name__}")
        if self.total_bytes is not None:
            if not isinstance(self.total_bytes, int) or isinstance(self.total_bytes, bool):
                raise TypeError(f"total_bytes must be an int or None, got {type(self.total_bytes).__name__}")
            if not 0 <= self.total_bytes < 1 << 63:
                raise ValueError(f"total_bytes must be between 0 and 2**63-1, got {self.total_bytes}")


class RenderedVideo:
    """A rendered MP4: a small in-memory head plus (optionally) lazily generated zero padding.

    ``size`` is the exact file length; ``natural_size`` the length without padding. Stream it with
    :meth:`iter_bytes` (which supports a start offset for HTTP Range requests), or, for small files,
    take it whole with :meth:`read_all`.

    >>> video = render_video(VideoSpec(64, 48, 1.0, 10, "demo", total_bytes=1 << 33))
    >>> video.size
    8589934592
    >>> b"".join(video.iter_bytes(start=video.size - 4))
    b'\\x00\\x00\\x00\\x00'
    """

    content_type = "video/mp4"

    __slots__ = ("_head", "_head_size", "natural_size", "size", "spec")

    def __init__(self, spec: VideoSpec, head: tuple[bytes, ...], size: int, natural_size: int) -> None:
        self.spec = spec
        self._head = head
        self._head_size = sum(len(part) for part in head)
        self.size = size
        self.natural_size = natural_size

    def __repr__(self) -> str:
        return f"RenderedVideo(size={self.size}, natural_size={self.natural_size}, spec={self.spec!r})"

    def iter_bytes(self, chunk_size: int = 1 << 20, start: int = 0) -> Iterator[bytes]:
        """Yield the file from byte offset ``start`` to the end, in chunks of at most ``chunk_size``.

        Memory use is bounded by the head (a few MB) plus one chunk, whatever ``size`` is; skipping to
        ``start`` costs nothing. ``start == size`` yields nothing.

        >>> video = render_video(VideoSpec(32, 32, 0.5, 4, "x"))
        >>> b"".join(video.iter_bytes(chunk_size=100)) == video.read_all()
        True
        >>> b"".join(video.iter_bytes(start=4))[:4]
        b'ftyp'
        """
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        if not isinstance(start, int) or not 0 <= start <= self.size:
            raise ValueError(f"start must be between 0 and {self.size}, got {start!r}")
        return self._iter(chunk_size, start)

    def _iter(self, chunk_size: int, start: int) -> Iterator[bytes]:
        offset = 0
        for part in self._head:
            end = offset + len(part)
            if start < end:
                pos = max(start - offset, 0)
                while pos < len(part):
                    yield part[pos : pos + chunk_size]
                    pos += chunk_size
            offset = end
        remaining = self.size - max(start, self._head_size)
        if remaining > 0:
            zeros = bytes(min(chunk_size, remaining))
            while remaining >= len(zeros):
                yield zeros
                remaining -= len(zeros)
            if remaining:
                yield zeros[:remaining]

    def read_all(self) -> bytes:
        """The whole file as bytes; refuses (ValueError) files over 64 MiB, which should be streamed.

        >>> data = render_video(VideoSpec(32, 32, 1.0, 8, "x")).read_all()
        >>> data[4:8]
        b'ftyp'
        """
        if self.size > MAX_READ_ALL_BYTES:
            raise ValueError(
                f"refusing to build a {self.size}-byte video in memory (limit {MAX_READ_ALL_BYTES}); "
                "use iter_bytes()"
            )
        return b"".join(self.iter_bytes(chunk_size=max(self.size, 1)))

    def write_to(self, target: str | os.PathLike[str] | BinaryIO, chunk_size: int = 1 << 20) -> int:
        """Write the file to a path or binary file object in bounded memory; returns bytes written.

        >>> import io
        >>> buf = io.BytesIO()
        >>> video = render_video(VideoSpec(32, 32, 1.0, 8, "x", total_bytes=100_000))
        >>> video.write_to(buf) == len(buf.getvalue()) == 100_000
        True
        """
        if isinstance(target, (str, os.PathLike)):
            with open(target, "wb") as f:
                return self.write_to(f, chunk_size)
        written = 0
        for chunk in self.iter_bytes(chunk_size):
            target.write(chunk)
            written += len(chunk)
        return written


def render_video(spec: VideoSpec) -> RenderedVideo:
    """Render ``spec`` as a playable H.264 MP4 showing the title card for ``spec.duration_s`` seconds.

    The encoded head (ftyp + moov + mdat) is cached per (width, height, duration_s, fps, title), so
    rendering the same clip again, at any ``total_bytes``, is nearly free.

    >>> from minimax_dagster.simulator.media.mp4_info import read_mp4_info
    >>> video = render_video(VideoSpec(320, 240, 2.0, 24, "A red fox in the snow"))
    >>> info = read_mp4_info(video.read_all())
    >>> (info["width"], info["height"], info["duration_s"], info["fps"], info["frames"])
    (320, 240, 2.0, 24, 48)
    """
    if not isinstance(spec, VideoSpec):
        raise TypeError(f"spec must be a VideoSpec, got {type(spec).__name__}")
    movie = _encode_movie(spec.width, spec.height, float(spec.duration_s), spec.fps, spec.title)
    natural = len(movie.data)
    pad = 0 if spec.total_bytes is None else max(spec.total_bytes - natural, 0)
    head: tuple[bytes, ...]
    if pad == 0:
        head = (movie.data,)
    elif pad < 8:
        # Too small for a free box: grow mdat by `pad` unreferenced zero bytes instead.
        off = movie.mdat_offset
        (mdat_size,) = struct.unpack_from(">I", movie.data, off)
        head = (movie.data[:off], struct.pack(">I", mdat_size + pad), movie.data[off + 4 :], bytes(pad))
    elif pad <= _U32_MAX:
        head = (movie.data, struct.pack(">I4s", pad, b"free"))
    else:
        head = (movie.data, struct.pack(">I4sQ", 1, b"free", pad))  # 64-bit largesize
    return RenderedVideo(spec, head, natural + pad, natural)
