"""Tests for minimax_dagster.simulator.media (card, png, h264, mp4): the MP4/H.264 title card and PNG poster."""

from __future__ import annotations

import doctest
import io
import json
import math
import random
import shutil
import struct
import subprocess
import time
import zlib

import pytest

from minimax_dagster.simulator import media
from minimax_dagster.simulator.media import (
    MAX_READ_ALL_BYTES,
    VideoSpec,
    card,
    h264,
    mp4,
    png,
    read_mp4_info,
    render_poster_png,
    render_title_card_rgb,
    render_video,
    title_card_background,
)

TITLE = "A corgi astronaut floating above Earth, cinematic lighting"

SPECS = [
    VideoSpec(320, 240, 2.0, 24, TITLE),
    VideoSpec(1280, 720, 6.0, 30, TITLE),
    VideoSpec(1920, 1088, 10.0, 25, TITLE),
    VideoSpec(1920, 1080, 5.0, 30, TITLE),  # not a multiple of 16: SPS cropping
    VideoSpec(640, 360, 2.5, 24, TITLE),  # fractional seconds, whole frames
    VideoSpec(100, 50, 0.35, 30, TITLE),  # 10.5 frames: the last one is shorter
    VideoSpec(2, 2, 1.0, 10, ""),  # smallest possible picture, empty prompt
]


def expected_frames(spec: VideoSpec) -> int:
    return math.ceil(round(spec.duration_s * spec.fps * 1000) / 1000)


def _ids(spec: VideoSpec) -> str:
    return f"{spec.width}x{spec.height}-{spec.duration_s}s-{spec.fps}fps"


def top_level_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of each top-level box; asserts they tile the data exactly."""
    boxes = []
    pos = 0
    while pos < len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
        assert size >= 8, (kind, size)
        boxes.append((kind, pos, size))
        pos += size
    assert pos == len(data), "top-level boxes must tile the file exactly"
    return boxes


def nal_units(data: bytes) -> list[bytes]:
    """The length-prefixed NAL units in the mdat of one of our files."""
    (_, off, size) = next(b for b in top_level_boxes(data) if b[0] == b"mdat")
    nals, pos, end = [], off + 8, off + size
    while pos + 4 <= end:
        (n,) = struct.unpack_from(">I", data, pos)
        if n == 0 or pos + 4 + n > end:  # unreferenced padding grown into mdat
            break
        nals.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return nals


# ------------------------------------------------------------------------------------ MP4 structure


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_round_trip_through_read_mp4_info(spec: VideoSpec) -> None:
    video = render_video(spec)
    data = video.read_all()
    assert len(data) == video.size == video.natural_size
    info = read_mp4_info(data)
    assert info == {
        "major_brand": "isom",
        "width": spec.width,
        "height": spec.height,
        "duration_s": pytest.approx(spec.duration_s, abs=1e-9),
        "fps": spec.fps,
        "frames": expected_frames(spec),  # ceil
        "codec": "avc1",
    }
    assert isinstance(info["fps"], int)
    assert [b[0] for b in top_level_boxes(data)] == [b"ftyp", b"moov", b"mdat"]


def test_nal_units_are_well_formed() -> None:
    spec = VideoSpec(1920, 1080, 2.0, 30, TITLE)
    data = render_video(spec).read_all()
    nals = nal_units(data)
    assert len(nals) == 60
    assert nals[0][0] == 0x65  # IDR, nal_ref_idc 3
    assert {n[0] for n in nals[1:]} == {0x41}  # non-IDR reference slices
    for nal in nals:
        # No start-code emulation anywhere: every 00 00 is followed by 03 (or a byte > 3).
        for i in range(len(nal) - 2):
            if nal[i] == 0 and nal[i + 1] == 0:
                assert nal[i + 2] > 2, f"start code emulation at {i}"
        assert nal[-1] != 0
    # I_PCM: 384 sample bytes + 2 bytes mb_type/alignment per macroblock, plus a few header bytes.
    assert 120 * 68 * 386 <= len(nals[0]) <= 120 * 68 * 386 + 16
    assert all(len(n) < 16 for n in nals[1:])


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        (b"\x00\x00\x00", b"\x00\x00\x03\x00"),
        (b"\x00\x00\x01", b"\x00\x00\x03\x01"),
        (b"\x00\x00\x02\x00\x00\x03", b"\x00\x00\x03\x02\x00\x00\x03\x03"),
        (b"\x00\x00\x04", b"\x00\x00\x04"),
        (b"\x00\x00\x00\x00", b"\x00\x00\x03\x00\x00\x03"),
        (b"\x01\x00\x00", b"\x01\x00\x00\x03"),
        (b"\x12\x34", b"\x12\x34"),
    ],
)
def test_emulation_prevention(raw: bytes, escaped: bytes) -> None:
    assert h264._emulation_prevent(raw) == escaped


def test_bit_writer_exp_golomb() -> None:
    w = h264._BitWriter()
    for v in (0, 1, 2, 3, 25):
        w.ue(v)
    w.se(-1)
    w.se(2)
    w.rbsp_trailing_bits()
    bits = "1 010 011 00100 000011010 011 00100 1".replace(" ", "")
    bits += "0" * (-len(bits) % 8)
    assert w.getvalue() == int(bits, 2).to_bytes(len(bits) // 8, "big")


def test_rendering_720p_uncached() -> None:
    # Speed is a benchmark's business (no timed assertions here): this checks an uncached 720p render's size.
    spec = VideoSpec(1280, 720, 6.0, 30, f"{TITLE} (uncached {time.time_ns()})")  # defeat the cache
    video = render_video(spec)
    assert 1_300_000 < video.size < 1_500_000


def test_same_spec_reuses_cached_head() -> None:
    spec = VideoSpec(320, 240, 2.0, 24, "cache me")
    first, second = render_video(spec), render_video(spec)
    assert first._head[0] is second._head[0]
    padded = render_video(VideoSpec(320, 240, 2.0, 24, "cache me", total_bytes=10**6))
    assert padded._head[0] is first._head[0]
    assert mp4._encode_movie.cache_info().maxsize is not None


# ------------------------------------------------------------------------------------------ padding


@pytest.mark.parametrize("extra", [0, 1, 5, 7, 8, 9, 15, 16, 4096, 3_000_000])
def test_total_bytes_pads_exactly_and_still_parses(extra: int) -> None:
    natural = render_video(VideoSpec(320, 240, 2.0, 24, TITLE)).size
    spec = VideoSpec(320, 240, 2.0, 24, TITLE, total_bytes=natural + extra)
    video = render_video(spec)
    data = video.read_all()
    assert len(data) == video.size == natural + extra
    assert video.natural_size == natural
    info = read_mp4_info(data)
    assert (info["width"], info["height"], info["frames"], info["duration_s"]) == (320, 240, 48, 2.0)
    kinds = [b[0] for b in top_level_boxes(data)]
    if extra >= 8:
        assert kinds == [b"ftyp", b"moov", b"mdat", b"free"]
        assert data[natural + 8 :] == bytes(extra - 8)
    else:
        assert kinds == [b"ftyp", b"moov", b"mdat"]  # tiny pads live inside mdat
    assert len(nal_units(data)) == 48


def test_total_bytes_smaller_than_natural_is_ignored() -> None:
    video = render_video(VideoSpec(320, 240, 2.0, 24, TITLE, total_bytes=100))
    assert video.size == video.natural_size > 100


def test_five_gib_file_is_never_materialised() -> None:
    size = 5 * 1024**3
    start = time.perf_counter()
    video = render_video(VideoSpec(1280, 720, 6.0, 30, TITLE, total_bytes=size))
    assert video.size == size
    assert b"".join(video.iter_bytes(start=size - 10)) == bytes(10)
    assert list(video.iter_bytes(start=size)) == []
    # The free box after mdat uses the 64-bit largesize header.
    header = next(video.iter_bytes(chunk_size=16, start=video.natural_size))
    assert struct.unpack(">I4sQ", header) == (1, b"free", size - video.natural_size)
    # The first chunk alone is enough to describe the movie.
    prefix = next(video.iter_bytes(chunk_size=64 * 1024))
    info = read_mp4_info(prefix)
    assert (info["width"], info["height"], info["duration_s"], info["frames"]) == (1280, 720, 6.0, 180)
    with pytest.raises(ValueError, match="iter_bytes"):
        video.read_all()
    assert time.perf_counter() - start < 2.0


def test_padding_just_under_and_over_4_gib_uses_the_right_header() -> None:
    natural = render_video(VideoSpec(64, 64, 1.0, 10, "x")).size
    for pad, header in ((0xFFFFFFFF, ">I4s"), (0x100000000, ">I4sQ")):
        video = render_video(VideoSpec(64, 64, 1.0, 10, "x", total_bytes=natural + pad))
        got = next(video.iter_bytes(chunk_size=struct.calcsize(header), start=natural))
        fields = struct.unpack(header, got)
        assert fields[1] == b"free"
        assert (fields[2] if len(fields) == 3 else fields[0]) == pad


# -------------------------------------------------------------------------------------- iter_bytes


def test_iter_bytes_matches_read_all_for_any_start_and_chunk() -> None:
    natural = render_video(VideoSpec(160, 96, 1.0, 12, TITLE)).size
    video = render_video(VideoSpec(160, 96, 1.0, 12, TITLE, total_bytes=natural + 5000))
    full = video.read_all()
    assert b"".join(video.iter_bytes()) == full
    starts = [0, 1, 7, 4095, natural - 1, natural, natural + 3, natural + 8, video.size - 1, video.size]
    for chunk_size in (1 << 20, 4096, 1000, 7):
        for start in starts:
            chunks = list(video.iter_bytes(chunk_size=chunk_size, start=start))
            assert all(0 < len(c) <= chunk_size for c in chunks)
            assert b"".join(chunks) == full[start:], (chunk_size, start)


def test_iter_bytes_with_tiny_pad_parts() -> None:
    natural = render_video(VideoSpec(48, 32, 1.0, 5, "tiny")).size
    video = render_video(VideoSpec(48, 32, 1.0, 5, "tiny", total_bytes=natural + 3))
    full = video.read_all()
    for start in range(0, video.size + 1, 97):
        assert b"".join(video.iter_bytes(chunk_size=50, start=start)) == full[start:]


def test_iter_bytes_and_read_all_reject_bad_arguments() -> None:
    video = render_video(VideoSpec(32, 32, 1.0, 5, "x"))
    for kwargs in ({"chunk_size": 0}, {"start": -1}, {"start": video.size + 1}):
        with pytest.raises(ValueError):
            video.iter_bytes(**kwargs)
    big = render_video(VideoSpec(32, 32, 1.0, 5, "x", total_bytes=MAX_READ_ALL_BYTES + 1))
    with pytest.raises(ValueError):
        big.read_all()


def test_write_to_path_and_read_back(tmp_path) -> None:
    video = render_video(VideoSpec(320, 240, 2.0, 24, TITLE, total_bytes=500_000))
    path = tmp_path / "clip.mp4"
    assert video.write_to(path, chunk_size=3333) == 500_000
    assert path.read_bytes() == video.read_all()
    assert read_mp4_info(path)["frames"] == 48
    assert read_mp4_info(str(path))["frames"] == 48
    with open(path, "rb") as f:
        assert read_mp4_info(f)["width"] == 320


# ------------------------------------------------------------------------------------ read_mp4_info


class _NonSeekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        chunk = self._buf.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def test_read_mp4_info_reads_only_the_head() -> None:
    data = render_video(VideoSpec(640, 360, 3.0, 24, TITLE)).read_all()
    mdat_at = next(off for kind, off, _ in top_level_boxes(data) if kind == b"mdat")
    assert read_mp4_info(data[:mdat_at])["frames"] == 72  # prefix ending right at mdat
    assert read_mp4_info(memoryview(data)[: mdat_at + 100])["fps"] == 24
    raw = _NonSeekable(data)
    assert read_mp4_info(io.BufferedReader(raw))["duration_s"] == 3.0
    assert raw._buf.tell() <= mdat_at + io.DEFAULT_BUFFER_SIZE  # stopped before the picture data


def test_read_mp4_info_skips_boxes_before_moov_and_finds_moov_after_mdat() -> None:
    data = render_video(VideoSpec(64, 64, 1.0, 10, "x")).read_all()
    boxes = {kind: data[off : off + size] for kind, off, size in top_level_boxes(data)}
    # moov at the end (not fast start): still readable from a seekable source; stco is wrong but
    # read_mp4_info does not look at it.
    reordered = boxes[b"ftyp"] + struct.pack(">I4s", 16, b"skip") + bytes(8) + boxes[b"mdat"] + boxes[b"moov"]
    assert read_mp4_info(reordered)["frames"] == 10
    with pytest.raises(ValueError, match="moov"):
        read_mp4_info(io.BufferedReader(_NonSeekable(reordered)))


@pytest.mark.parametrize(
    "junk",
    [b"", b"hello world, not an mp4", b"\x00\x00\x00\x04ftyp", b"\x00\x00\x01\x00moov" + bytes(20)],
)
def test_read_mp4_info_rejects_junk(junk: bytes) -> None:
    with pytest.raises(ValueError):
        read_mp4_info(junk)


def test_read_mp4_info_rejects_truncated_moov() -> None:
    data = render_video(VideoSpec(64, 64, 1.0, 10, "x")).read_all()
    with pytest.raises(ValueError, match="truncated"):
        read_mp4_info(data[:100])


# --------------------------------------------------------------------------------------- VideoSpec


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"width": 321}, ValueError),
        ({"height": 0}, ValueError),
        ({"width": 8194}, ValueError),
        ({"width": 8192, "height": 8192}, ValueError),  # beyond H.264 level 6.2
        ({"width": 320.0}, TypeError),
        ({"fps": 0}, ValueError),
        ({"fps": 24.0}, TypeError),
        ({"fps": True}, TypeError),
        ({"duration_s": 0}, ValueError),
        ({"duration_s": -1.0}, ValueError),
        ({"duration_s": float("nan")}, ValueError),
        ({"duration_s": 4000.0}, ValueError),
        ({"duration_s": "6"}, TypeError),
        ({"title": None}, TypeError),
        ({"total_bytes": -1}, ValueError),
        ({"total_bytes": 1.5}, TypeError),
    ],
)
def test_video_spec_validation(kwargs: dict, error: type[Exception]) -> None:
    fields = {"width": 320, "height": 240, "duration_s": 2.0, "fps": 24, "title": "t", **kwargs}
    with pytest.raises(error):
        VideoSpec(**fields)


def test_level_is_chosen_to_fit() -> None:
    assert h264._choose_level(20, 15, 24) == 13  # 320x240
    assert h264._choose_level(80, 45, 30) == 31  # 1280x720
    assert h264._choose_level(120, 68, 30) == 41  # 1920x1088
    assert h264._choose_level(240, 135, 30) == 51  # 3840x2160


# ---------------------------------------------------------------------------------- the title card


def test_title_card_draws_text_and_label() -> None:
    w, h = 320, 240
    rgb = render_title_card_rgb(w, h, "Hello")
    pixels = {tuple(rgb[i : i + 3]) for i in range(0, len(rgb), 3)}
    assert pixels == {title_card_background("Hello"), card._INK_RGB, card._LABEL_RGB}
    empty = render_title_card_rgb(w, h, "")
    assert {tuple(empty[i : i + 3]) for i in range(0, len(empty), 3)} == {
        title_card_background(""),
        card._LABEL_RGB,
    }


def test_title_card_handles_unicode_and_huge_prompts() -> None:
    assert card._normalise_text("  café\n\tñ 日本 ") == "caf? ? ??"
    long_prompt = "word " * 2000
    rgb = render_title_card_rgb(320, 240, long_prompt)
    assert len(rgb) == 320 * 240 * 3
    lines, scale = card._fit_text(card._normalise_text(long_prompt), 300, 200, 4)
    assert scale == 1 and lines[-1].endswith("...")
    for w, h in ((1, 1), (2, 2), (17, 9), (8192, 16)):
        assert len(render_title_card_rgb(w, h, TITLE)) == w * h * 3


# ------------------------------------------------------------------------------------------- PNG


def _png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack_from(">I", png, pos)
        kind = png[pos + 4 : pos + 8]
        body = png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack_from(">I", png, pos + 8 + length)
        assert crc == zlib.crc32(kind + body), f"bad CRC on {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert pos == len(png)
    return chunks


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (321, 187), (1, 1)])
def test_poster_png_is_valid(width: int, height: int) -> None:
    png = render_poster_png(width, height, TITLE + " ✨")
    chunks = _png_chunks(png)
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    assert struct.unpack(">IIBBBBB", chunks[0][1]) == (width, height, 8, 2, 0, 0, 0)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(raw) == height * (1 + 3 * width)
    stride = 1 + 3 * width
    assert all(raw[y * stride] == 0 for y in range(height))  # filter type None
    pixels = b"".join(raw[y * stride + 1 : (y + 1) * stride] for y in range(height))
    assert pixels == render_title_card_rgb(width, height, TITLE + " ✨")
    itxt = dict(chunks)[b"iTXt"]
    assert itxt.split(b"\x00", 5)[-1].decode("utf-8") == TITLE + " ✨"


def test_poster_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError):
        render_poster_png(0, 10, "x")
    with pytest.raises(TypeError):
        render_poster_png(10.0, 10, "x")


# ------------------------------------------------------------- fast paths vs. slow reference code
# The references below are the straightforward versions of the renderer's optimised internals (what the
# renderer used to run); the fast code must produce exactly the same bytes.


def _reference_idr_nal(geo, idx, palette) -> bytes:
    """The IDR picture built by slicing every macroblock out of the raster planes, as I_PCM reads."""
    cw, ch = geo.coded_width, geo.coded_height
    if cw != geo.width or ch != geo.height:
        pad = bytes([card._BG]) * (cw - geo.width)
        rows = [idx[y * geo.width : (y + 1) * geo.width] + pad for y in range(geo.height)]
        rows.append(bytes([card._BG]) * (cw * (ch - geo.height)))
        idx = b"".join(rows)
    ycc = [h264._rgb_to_ycbcr(c) for c in palette]
    luma = bytes(idx).translate(card._lookup_table([c[0] for c in ycc], 16))
    sub = b"".join(idx[y * cw : (y + 1) * cw : 2] for y in range(0, ch, 2))
    cb = sub.translate(card._lookup_table([c[1] for c in ycc], 128))
    cr = sub.translate(card._lookup_table([c[2] for c in ycc], 128))
    half = cw // 2
    parts = [h264._idr_slice_header()]
    for mby in range(geo.mb_h):
        for mbx in range(geo.mb_w):
            if len(parts) > 1:
                parts.append(h264._PCM_MB_PREFIX)
            for r in range(16):
                start = (mby * 16 + r) * cw + mbx * 16
                parts.append(luma[start : start + 16])
            for plane in (cb, cr):
                for r in range(8):
                    start = (mby * 8 + r) * half + mbx * 8
                    parts.append(plane[start : start + 8])
    parts.append(b"\x80")
    return h264._nal(3, 5, b"".join(parts))


def _reference_card_rgb(width: int, height: int, title: str) -> bytes:
    idx = card._card_indices(width, height, title)
    palette = card._palette(title)
    rgb = bytearray(3 * width * height)
    for channel in range(3):
        rgb[channel::3] = idx.translate(card._lookup_table([c[channel] for c in palette], 0))
    return bytes(rgb)


def _reference_fit_text(text: str, area_w: int, area_h: int, max_scale: int) -> tuple[list[str], int]:
    """_fit_text without the shortcut that skips scales at which the text is too long to fit."""
    for scale in range(max_scale, 0, -1):
        cols = (area_w + scale) // (card._ADVANCE * scale)
        rows = (area_h + 3 * scale) // (card._LINE_PITCH * scale)
        if cols < 1 or rows < 1:
            continue
        lines = card._wrap(text, cols)
        if len(lines) <= rows:
            return lines, scale
    cols = (area_w + 1) // card._ADVANCE
    rows = (area_h + 3) // card._LINE_PITCH
    if cols < 1 or rows < 1:
        return [], 1
    lines = card._wrap(text, cols, max_lines=rows)
    return [line[:cols] for line in lines], 1


def _reference_draw_text_line(img, width, height, x, y, text, scale, ink) -> None:
    """_draw_text_line scaling every glyph pixel as it goes, without the scaled-glyph cache."""
    if not text:
        return
    seg = {0: bytes([card._BG]) * scale, 1: bytes([ink]) * scale}
    glyphs = [card._GLYPH_ROWS.get(ch, card._GLYPH_ROWS["?"]) for ch in text]
    line_w = (len(text) * card._ADVANCE - 1) * scale
    x0, x1 = max(x, 0), min(x + line_w, width)
    if x0 >= x1:
        return
    for r in range(card._GLYPH_H):
        pixels = b"".join([seg[b] for b in b"".join(g[r] for g in glyphs)])[x0 - x : x1 - x]
        for k in range(scale):
            yy = y + r * scale + k
            if 0 <= yy < height:
                img[yy * width + x0 : yy * width + x1] = pixels


REFERENCE_SIZES = [(2, 2), (16, 16), (34, 18), (100, 50), (320, 180), (1280, 720), (720, 1280), (1920, 1080)]
REFERENCE_TITLES = ["", TITLE, "  café\n\tñ 日本 ✨", "word " * 300, "Supercalifragilisticexpialidocious" * 8]


def _random_titles(count: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    words = ["a", "fox", "in", "the", "snow,", "Supercalifragilistic", "日本", "—", "x" * 70, "astronaut"]
    return [" ".join(rnd.choices(words, k=rnd.choice([1, 3, 8, 20, 60, 150]))) for _ in range(count)]


@pytest.mark.parametrize(("width", "height"), [*REFERENCE_SIZES, (8192, 16), (16, 1024), (33, 17)])
def test_idr_nal_matches_reference(width: int, height: int) -> None:
    geo = h264._geometry(width, height)
    for title in (TITLE, "word " * 300):
        idx = card._card_indices(width, height, title)
        palette = card._palette(title)
        assert h264._idr_nal(geo, idx, palette) == _reference_idr_nal(geo, idx, palette), title
    # Noise over a 256-colour palette gives (nearly) every sample its own value, so any sample out of
    # place shows, which a mostly flat card might hide.
    rnd = random.Random(width * 10_000 + height)
    noise = rnd.randbytes(width * height)
    palette = tuple(tuple(rnd.randbytes(3)) for _ in range(256))
    assert h264._idr_nal(geo, noise, palette) == _reference_idr_nal(geo, noise, palette)


@pytest.mark.parametrize("mbs", [1, 99, 3600, 8160, 139264])
def test_p_skip_samples_match_the_bit_writer(mbs: int) -> None:
    samples = h264._p_skip_samples(mbs)
    assert len(samples) == h264._MAX_FRAME_NUM
    for frame_num, sample in enumerate(samples):
        nal = h264._nal(2, 1, h264._p_skip_rbsp(mbs, frame_num))
        assert sample == struct.pack(">I", len(nal)) + nal, frame_num


@pytest.mark.parametrize(
    "spec",
    [
        VideoSpec(64, 48, 20.0, 30, "frame_num wraps"),
        VideoSpec(100, 50, 0.35, 30, TITLE),
        VideoSpec(32, 32, 0.1, 10, ""),
    ],
    ids=_ids,
)
def test_movie_frames_match_reference(spec: VideoSpec) -> None:
    data = render_video(spec).read_all()
    geo = h264._geometry(spec.width, spec.height)
    idr = _reference_idr_nal(
        geo, card._card_indices(spec.width, spec.height, spec.title), card._palette(spec.title)
    )
    frames = expected_frames(spec)
    p_nals = [h264._nal(2, 1, h264._p_skip_rbsp(geo.mbs, n % h264._MAX_FRAME_NUM)) for n in range(1, frames)]
    assert nal_units(data) == [idr, *p_nals]


@pytest.mark.parametrize(("width", "height"), [*REFERENCE_SIZES, (1, 1), (17, 9), (321, 187)])
def test_title_card_and_poster_match_reference(width: int, height: int) -> None:
    for title in REFERENCE_TITLES:
        rgb = _reference_card_rgb(width, height, title)
        assert render_title_card_rgb(width, height, title) == rgb, title
        stride = 3 * width
        raw = b"".join(b"\x00" + rgb[y * stride : (y + 1) * stride] for y in range(height))
        assert dict(_png_chunks(render_poster_png(width, height, title)))[b"IDAT"] == zlib.compress(raw, 6)


def test_fit_text_matches_reference() -> None:
    areas = [(300, 200, 4), (1160, 600, 12), (640, 980, 12), (60, 30, 2), (5, 7, 1), (4, 100, 3), (100, 6, 5)]
    for i, title in enumerate(_random_titles(300, seed=1)):
        text = card._normalise_text(title)
        area_w, area_h, max_scale = areas[i % len(areas)]
        assert card._fit_text(text, area_w, area_h, max_scale) == _reference_fit_text(
            text, area_w, area_h, max_scale
        ), (text, area_w, area_h)


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_fit_text_keeps_text_that_fills_every_line(scale: int) -> None:
    # rows words of exactly cols letters: rows * (cols + 1) - 1 characters, which just fit.
    for cols in range(1, 12):
        for rows in range(1, 5):
            area_w = card._ADVANCE * scale * cols - scale
            area_h = card._LINE_PITCH * scale * rows - 3 * scale
            text = " ".join(chr(ord("a") + i) * cols for i in range(rows))
            assert card._fit_text(text, area_w, area_h, scale) == (text.split(), scale)
            longer = text + "z"
            assert card._fit_text(longer, area_w, area_h, scale) == _reference_fit_text(
                longer, area_w, area_h, scale
            )


def test_card_indices_match_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = [(1280, 720), (720, 1280), (960, 960), (320, 180), (64, 48), (17, 9), (200, 30), (3000, 2000)]
    cases = [
        (*sizes[i % len(sizes)], title)
        for i, title in enumerate(_random_titles(120, seed=2) + REFERENCE_TITLES)
    ]
    fast = [bytes(card._card_indices(w, h, title)) for w, h, title in cases]
    monkeypatch.setattr(card, "_fit_text", _reference_fit_text)
    monkeypatch.setattr(card, "_draw_text_line", _reference_draw_text_line)
    assert fast == [bytes(card._card_indices(w, h, title)) for w, h, title in cases]


# ---------------------------------------------------------------------------- docstring examples


@pytest.mark.parametrize("module", [media, card, png, h264, mp4], ids=lambda m: m.__name__)
def test_docstring_examples_run(module) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 1
    assert result.failed == 0


# ---------------------------------------------------------------------------- real decoders


def _pyav_rgb(frame) -> bytes:
    """Packed RGB of a PyAV frame without numpy (planes can have row padding)."""
    frame = frame.reformat(format="rgb24")
    plane = frame.planes[0]
    data, stride = bytes(plane), plane.line_size
    return b"".join(data[y * stride : y * stride + 3 * frame.width] for y in range(frame.height))


@pytest.mark.parametrize(
    "spec",
    [
        VideoSpec(320, 240, 2.0, 24, TITLE),
        VideoSpec(1920, 1080, 1.0, 30, TITLE),
        VideoSpec(100, 50, 0.35, 30, ""),
        VideoSpec(64, 48, 20.0, 30, "frame_num wraps"),  # 600 frames > MaxFrameNum (256)
    ],
    ids=_ids,
)
def test_pyav_decodes_every_frame(spec: VideoSpec, tmp_path) -> None:
    av = pytest.importorskip("av")
    path = tmp_path / "clip.mp4"
    render_video(spec).write_to(path)
    expected = render_title_card_rgb(spec.width, spec.height, spec.title)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (spec.width, spec.height)
        frames = [_pyav_rgb(f) for f in container.decode(video=0)]
    assert len(frames) == expected_frames(spec)
    first = frames[0]
    assert len(first) == spec.width * spec.height * 3
    # Corners are background, within BT.601 round-trip error.
    bg = title_card_background(spec.title)
    for offset in (0, 3 * (spec.width - 1), 3 * spec.width * (spec.height - 1)):
        assert all(abs(a - b) <= 6 for a, b in zip(first[offset : offset + 3], bg, strict=True)), offset
    # The whole picture matches the card (glyph edges differ a little through 4:2:0 chroma).
    mean_error = sum(abs(a - b) for a, b in zip(first, expected, strict=True)) / len(first)
    assert mean_error < 4, mean_error
    # P_Skip frames reproduce the IDR picture exactly.
    assert all(f == first for f in frames)


def test_ffprobe_and_ffmpeg_accept_the_file(tmp_path) -> None:
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        pytest.skip("ffprobe not on PATH")
    spec = VideoSpec(1280, 720, 6.0, 30, TITLE, total_bytes=2_000_000)
    path = tmp_path / "clip.mp4"
    render_video(spec).write_to(path)
    out = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,profile,width,height,r_frame_rate,duration,nb_frames,nb_read_frames",
            "-show_entries",
            "format=duration,size",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stderr == ""
    probe = json.loads(out.stdout)
    stream = probe["streams"][0]
    assert stream["codec_name"] == "h264"
    assert stream["profile"] == "Constrained Baseline"
    assert (stream["width"], stream["height"]) == (1280, 720)
    assert stream["r_frame_rate"] == "30/1"
    assert float(stream["duration"]) == 6.0
    assert int(stream["nb_frames"]) == int(stream["nb_read_frames"]) == 180
    assert float(probe["format"]["duration"]) == 6.0
    assert int(probe["format"]["size"]) == 2_000_000

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is not None:
        decoded = subprocess.run(
            [ffmpeg, "-nostdin", "-v", "warning", "-i", str(path), "-f", "null", "-"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert decoded.returncode == 0
        assert decoded.stderr == "", decoded.stderr
