"""Reading an MP4's top-level boxes back: what the tests check every rendered video by.

>>> read_mp4_info(b"")
Traceback (most recent call last):
...
ValueError: no 'moov' box found (not an MP4, or a prefix that ends before moov)
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

_MAX_MOOV_BYTES = 64 * 1024 * 1024


def _child_boxes(buf: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload_start, payload_end) of the boxes laid end to end in buf[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise ValueError(f"truncated {kind!r} box header")
            (size,) = struct.unpack_from(">Q", buf, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError(f"malformed {kind!r} box (size {size}) at offset {pos}")
        yield kind, pos + header, pos + size
        pos += size


def _find(buf: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for k, s, e in _child_boxes(buf, start, end):
        if k == kind:
            return s, e
    return None


def _need(buf: bytes, start: int, end: int, *path: bytes) -> tuple[int, int]:
    for kind in path:
        found = _find(buf, start, end, kind)
        if found is None:
            raise ValueError(f"MP4 has no {kind.decode('latin-1')!r} box")
        start, end = found
    return start, end


def _time_header(buf: bytes, start: int) -> tuple[int, int]:
    """(timescale, duration) of an mvhd or mdhd payload."""
    if buf[start] == 1:
        timescale, duration = struct.unpack_from(">IQ", buf, start + 20)
    else:
        timescale, duration = struct.unpack_from(">II", buf, start + 12)
    return timescale, duration


def _read_top_level(f: BinaryIO) -> tuple[bytes, bytes]:
    """Return (ftyp payload, moov box bytes), reading no further than the end of moov."""
    ftyp = b""
    seekable = bool(getattr(f, "seekable", lambda: False)())
    while True:
        header = f.read(8)
        if len(header) < 8:
            raise ValueError("no 'moov' box found (not an MP4, or a prefix that ends before moov)")
        size, kind = struct.unpack(">I4s", header)
        header_len = 8
        if size == 1:
            ext = f.read(8)
            if len(ext) < 8:
                raise ValueError("truncated box header")
            (size,) = struct.unpack(">Q", ext)
            header_len = 16
        elif size == 0:
            size = None  # box runs to the end of the file
        if size is not None and size < header_len:
            raise ValueError(f"malformed {kind!r} box (size {size})")
        if kind in (b"ftyp", b"moov"):
            payload_len = None if size is None else size - header_len
            if payload_len is not None and payload_len > _MAX_MOOV_BYTES:
                raise ValueError(f"{kind!r} box of {payload_len} bytes is too large")
            payload = f.read() if payload_len is None else f.read(payload_len)
            if payload_len is not None and len(payload) < payload_len:
                raise ValueError(f"truncated {kind!r} box: {len(payload)} of {payload_len} bytes")
            if kind == b"ftyp":
                ftyp = payload
                continue
            return ftyp, struct.pack(">I4s", 8 + len(payload), b"moov") + payload
        if size is None:
            raise ValueError("no 'moov' box found")
        if kind == b"mdat" and not seekable:
            raise ValueError("'moov' is not before 'mdat' and the stream cannot seek past mdat")
        skip = size - header_len
        if seekable:
            f.seek(skip, io.SEEK_CUR)
        else:
            while skip:
                got = f.read(min(skip, 1 << 16))
                if not got:
                    raise ValueError("no 'moov' box found")
                skip -= len(got)


def read_mp4_info(data_or_path: bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO) -> dict:
    """Describe an MP4's first video track by parsing its boxes.

    Accepts the file's bytes (or just a prefix that contains ``moov``), a path, or a binary file
    object (read from its current position). Only the head is read: parsing stops at the end of
    ``moov``, so the ``mdat`` and any padding after it are never touched. Boxes before ``moov`` are
    skipped (seeking where possible). Raises ValueError for anything that is not a readable MP4.

    Returns ``{"major_brand", "width", "height", "duration_s", "fps", "frames", "codec"}``: display
    size from ``tkhd``, duration from ``mvhd``, fps as media timescale over the most common sample
    duration (an int when whole), frames from ``stsz`` and codec from the sample entry's fourcc.

    >>> from minimax_dagster.simulator.media.mp4 import VideoSpec, render_video
    >>> info = read_mp4_info(render_video(VideoSpec(1280, 720, 6.0, 30, "hello")).read_all())
    >>> sorted(info.items())  # doctest: +NORMALIZE_WHITESPACE
    [('codec', 'avc1'), ('duration_s', 6.0), ('fps', 30), ('frames', 180), ('height', 720),
     ('major_brand', 'isom'), ('width', 1280)]
    """
    if isinstance(data_or_path, (bytes, bytearray, memoryview)):
        ftyp, moov = _read_top_level(io.BytesIO(data_or_path))
    elif isinstance(data_or_path, (str, os.PathLike)):
        with open(data_or_path, "rb") as f:
            ftyp, moov = _read_top_level(f)
    elif hasattr(data_or_path, "read"):
        ftyp, moov = _read_top_level(data_or_path)
    else:
        raise TypeError(f"expected bytes, a path or a binary file object, got {type(data_or_path).__name__}")
    try:
        return _parse_moov(ftyp, moov)
    except struct.error as exc:
        raise ValueError(f"malformed MP4 header: {exc}") from exc


def _parse_moov(ftyp: bytes, moov: bytes) -> dict:
    mvhd = _need(moov, 8, len(moov), b"mvhd")
    movie_timescale, movie_duration = _time_header(moov, mvhd[0])
    for kind, start, end in _child_boxes(moov, 8, len(moov)):
        if kind != b"trak":
            continue
        mdia = _need(moov, start, end, b"mdia")
        hdlr = _need(moov, *mdia, b"hdlr")
        if moov[hdlr[0] + 8 : hdlr[0] + 12] != b"vide":
            continue
        tkhd = _need(moov, start, end, b"tkhd")
        wh_at = tkhd[0] + (88 if moov[tkhd[0]] == 1 else 76)
        width, height = (v >> 16 for v in struct.unpack_from(">II", moov, wh_at))
        media_timescale, media_duration = _time_header(moov, _need(moov, *mdia, b"mdhd")[0])
        stbl = _need(moov, *mdia, b"minf", b"stbl")
        stsd = _need(moov, *stbl, b"stsd")
        codec = moov[stsd[0] + 12 : stsd[0] + 16].decode("latin-1")
        stts = _need(moov, *stbl, b"stts")
        (n_entries,) = struct.unpack_from(">I", moov, stts[0] + 4)
        entries = [struct.unpack_from(">II", moov, stts[0] + 8 + 8 * i) for i in range(n_entries)]
        stsz = _find(moov, *stbl, b"stsz")
        if stsz is not None:
            (frames,) = struct.unpack_from(">I", moov, stsz[0] + 8)
        else:
            frames = sum(count for count, _ in entries)
        fps: int | float = 0
        if entries and media_timescale:
            delta = max(entries, key=lambda e: e[0])[1]
            rate = media_timescale / delta if delta else 0.0
            fps = round(rate) if abs(rate - round(rate)) < 1e-6 else round(rate, 3)
        if movie_timescale and movie_duration:
            duration_s = movie_duration / movie_timescale
        else:
            duration_s = media_duration / media_timescale if media_timescale else 0.0
        return {
            "major_brand": ftyp[:4].decode("latin-1"),
            "width": width,
            "height": height,
            "duration_s": duration_s,
            "fps": fps,
            "frames": frames,
            "codec": codec,
        }
    raise ValueError("MP4 has no video track")
