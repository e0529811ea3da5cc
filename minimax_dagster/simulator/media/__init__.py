"""Pure-Python media for the MiniMax simulator: a playable H.264 MP4 title card and a PNG poster.

Nothing here needs numpy, ffmpeg or any other non-stdlib package.

The video is a genuine H.264 (Constrained Baseline) elementary stream in an ISO-BMFF MP4:

* frame 0 is an IDR picture whose macroblocks are all ``I_PCM`` (raw 4:2:0 samples, no transform or
  prediction), so the encoder is a bit writer plus a sample copy;
* every later frame is a P picture made of one ``mb_skip_run`` covering every macroblock, which a
  decoder turns into an exact copy of the previous picture: the card stays still for the whole clip.

Any even width and height are supported: the coded picture is rounded up to whole 16x16 macroblocks and
the SPS frame-cropping window trims it back to the requested size.

Layout of the file::

    ftyp | moov (mvhd, trak ... stco) | mdat (length-prefixed NAL units) | free (optional padding)

``moov`` comes before ``mdat`` ("fast start"), so the first few kilobytes describe the whole movie and
:func:`read_mp4_info` never needs more than that prefix. ``total_bytes`` pads the file with a trailing
``free`` box, which players skip. The padding is zeros produced lazily by :meth:`RenderedVideo.iter_bytes`,
so a multi-GiB file never exists in memory; pads of 4 GiB or more use the 64-bit ``largesize`` box
header. A pad too small for a box header (1 to 7 bytes) is appended inside ``mdat`` instead, as
unreferenced zero bytes, which the format allows.

Limits: width and height are even, 2 to 8192 pixels, and the picture must fit H.264 level 6.2
(139,264 macroblocks, e.g. 8192x4320); fps is an integer from 1 to 240; duration_s is at most 3600 s.
The level_idc written is the smallest whose frame-size, macroblock-rate and CPB-size limits the stream
meets. (An all-I_PCM picture is necessarily larger than the "MinCR" compression ratio that the
levels ask for; decoders do not enforce that, and ffmpeg/PyAV decode these files without a warning.)
"""

from __future__ import annotations

import functools
import io
import math
import os
import struct
import textwrap
import unicodedata
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from numbers import Real
from typing import Any, BinaryIO, NamedTuple

__all__ = [
    "MAX_READ_ALL_BYTES",
    "RenderedVideo",
    "VideoSpec",
    "read_mp4_info",
    "render_poster_png",
    "render_title_card_rgb",
    "render_video",
    "title_card_background",
]

#: :meth:`RenderedVideo.read_all` refuses files larger than this (64 MiB); stream bigger ones.
MAX_READ_ALL_BYTES = 64 * 1024 * 1024

MAX_DIMENSION = 8192
MAX_FPS = 240
MAX_DURATION_S = 3600.0
LABEL = "MiniMax simulator"

# Media and movie timescale = fps * _TICKS_PER_FRAME, so every whole frame lasts exactly
# _TICKS_PER_FRAME ticks and a fractional duration_s is honoured by shortening the last frame.
_TICKS_PER_FRAME = 1000
_LOG2_MAX_FRAME_NUM = 8
_MAX_FRAME_NUM = 1 << _LOG2_MAX_FRAME_NUM
_U32_MAX = 0xFFFFFFFF

# --------------------------------------------------------------------------------------------------
# Title card
# --------------------------------------------------------------------------------------------------

# The classic 5x7 ASCII font, characters 0x20..0x7E. Five bytes per glyph, one per column from the
# left; bit 0 of each byte is the top row.
_FONT_5X7 = bytes.fromhex(
    """
    0000000000 00005f0000 0007000700 147f147f14 242a7f2a12 2313086462 3649552250 0005030000
    001c224100 0041221c00 14083e0814 08083e0808 0050300000 0808080808 0060600000 2010080402
    3e5149453e 00427f4000 4261514946 2141454b31 1814127f10 2745454539 3c4a494930 0171090503
    3649494936 064949291e 0036360000 0056360000 0814224100 1414141414 0041221408 0201510906
    324979413e 7e1111117e 7f49494936 3e41414122 7f4141221c 7f49494941 7f09090901 3e4149497a
    7f0808087f 00417f4100 2040413f01 7f08142241 7f40404040 7f020c027f 7f0408107f 3e4141413e
    7f09090906 3e4151215e 7f09192946 4649494931 01017f0101 3f4040403f 1f2040201f 3f4038403f
    6314081463 0708700807 6151494543 007f414100 0204081020 0041417f00 0402010204 4040404040
    0001020400 2054545478 7f48444438 3844444420 384444487f 3854545418 087e090102 0c5252523e
    7f08040478 00447d4000 2040443d00 7f10284400 00417f4000 7c04180478 7c08040478 3844444438
    7c14141408 081414187c 7c08040408 4854545420 043f444020 3c4040207c 1c2040201c 3c4030403c
    4428102844 0c5050503c 4464544c44 0008364100 00007f0000 0041360800 1008081008
    """
)

_GLYPH_W = 5
_GLYPH_H = 7
_ADVANCE = _GLYPH_W + 1  # one blank column between characters
_LINE_PITCH = _GLYPH_H + 3  # three blank rows between lines


def _build_glyph_rows() -> dict[str, tuple[bytes, ...]]:
    """Per character, seven row bitmaps of ``_ADVANCE`` bytes each (1 = ink, 0 = background)."""
    rows: dict[str, tuple[bytes, ...]] = {}
    for i in range(len(_FONT_5X7) // _GLYPH_W):
        cols = _FONT_5X7[i * _GLYPH_W : (i + 1) * _GLYPH_W]
        rows[chr(0x20 + i)] = tuple(bytes(((c >> r) & 1) for c in cols) + b"\x00" for r in range(_GLYPH_H))
    return rows


_GLYPH_ROWS = _build_glyph_rows()

# Palette indices of the card image (one byte per pixel before colour lookup).
_BG, _INK, _LABEL_INK = 0, 1, 2
_INK_RGB = (245, 245, 240)
_LABEL_RGB = (160, 172, 196)
_BACKGROUNDS = (
    (24, 32, 56),
    (44, 26, 60),
    (16, 50, 52),
    (52, 34, 24),
    (22, 50, 34),
    (60, 24, 34),
    (34, 36, 44),
    (20, 42, 68),
)


def title_card_background(title: str) -> tuple[int, int, int]:
    """The card's background colour for ``title``: a dark colour picked deterministically from it.

    >>> title_card_background("a red fox") == title_card_background("a red fox")
    True
    >>> all(0 <= c <= 255 for c in title_card_background(""))
    True
    """
    return _BACKGROUNDS[zlib.crc32(title.encode("utf-8", "surrogatepass")) % len(_BACKGROUNDS)]


def _palette(title: str) -> tuple[tuple[int, int, int], ...]:
    return (title_card_background(title), _INK_RGB, _LABEL_RGB)


def _normalise_text(title: str) -> str:
    """ASCII-only, single-spaced text: whitespace/control characters -> space, other non-ASCII -> '?'."""
    out = []
    for ch in unicodedata.normalize("NFC", title):
        if " " <= ch <= "~":
            out.append(ch)
        elif ch.isspace() or ord(ch) < 0x20 or ch == "\x7f":
            out.append(" ")
        else:
            out.append("?")
    return " ".join("".join(out).split())


def _wrap(text: str, cols: int, max_lines: int | None = None) -> list[str]:
    kwargs: dict[str, Any] = {}
    if max_lines is not None:
        kwargs = {"max_lines": max_lines, "placeholder": " ..." if cols >= 4 else ""}
    return textwrap.wrap(text, cols, break_long_words=True, break_on_hyphens=False, **kwargs)


def _fit_text(text: str, area_w: int, area_h: int, max_scale: int) -> tuple[list[str], int]:
    """Largest glyph scale (<= max_scale) at which the word-wrapped text fits; truncated at scale 1."""
    for scale in range(max_scale, 0, -1):
        cols = (area_w + scale) // (_ADVANCE * scale)
        rows = (area_h + 3 * scale) // (_LINE_PITCH * scale)
        if cols < 1 or rows < 1:
            continue
        # The text is single-spaced and wrapping drops at most the one space at each line break, so
        # it cannot fit in fewer characters than this: skip the (slow) wrap, which would fail anyway.
        if len(text) > rows * (cols + 1) - 1:
            continue
        lines = _wrap(text, cols)
        if len(lines) <= rows:
            return lines, scale
    cols = (area_w + 1) // _ADVANCE
    rows = (area_h + 3) // _LINE_PITCH
    if cols < 1 or rows < 1:
        return [], 1
    lines = _wrap(text, cols, max_lines=rows)
    return [line[:cols] for line in lines], 1


@functools.lru_cache(maxsize=1024)
def _scaled_glyph(ch: str, scale: int, ink: int) -> tuple[bytes, ...]:
    """The seven palette-index rows of ``ch`` (unknown characters: '?') drawn ``scale`` times wider,
    ``_ADVANCE * scale`` bytes each."""
    seg = {0: bytes([_BG]) * scale, 1: bytes([ink]) * scale}
    return tuple(b"".join([seg[b] for b in row]) for row in _GLYPH_ROWS.get(ch, _GLYPH_ROWS["?"]))


def _draw_text_line(
    img: bytearray, width: int, height: int, x: int, y: int, text: str, scale: int, ink: int
) -> None:
    """Draw one line of text (top-left at x, y) into the palette-index image, clipped to the image."""
    if not text:
        return
    glyphs = [_scaled_glyph(ch, scale, ink) for ch in text]
    line_w = (len(text) * _ADVANCE - 1) * scale  # no spacing column after the last glyph
    x0, x1 = max(x, 0), min(x + line_w, width)
    if x0 >= x1:
        return
    for r in range(_GLYPH_H):
        pixels = b"".join([g[r] for g in glyphs])[x0 - x : x1 - x]
        for k in range(scale):
            yy = y + r * scale + k
            if 0 <= yy < height:
                base = yy * width
                img[base + x0 : base + x1] = pixels


def _card_indices(width: int, height: int, title: str) -> bytearray:
    """The title card as a palette-index image (one byte per pixel, row-major)."""
    img = bytearray(width * height)  # all _BG
    short = min(width, height)
    margin = max(1, short // 24)

    text_bottom = height - margin
    label_scale = max(1, short // 240)
    label_h = _GLYPH_H * label_scale
    if label_h + 2 * margin <= height // 3:
        cols = (width - 2 * margin + label_scale) // (_ADVANCE * label_scale)
        label = LABEL[: max(cols, 0)]
        label_y = height - margin - label_h
        _draw_text_line(img, width, height, margin, label_y, label, label_scale, _LABEL_INK)
        text_bottom = label_y - max(margin // 2, 2 * label_scale)

    text = _normalise_text(title)
    area_w = width - 2 * margin
    area_h = text_bottom - margin
    if text and area_w >= _GLYPH_W and area_h >= _GLYPH_H:
        max_scale = max(1, min(height // 60, width // 80))
        lines, scale = _fit_text(text, area_w, area_h, max_scale)
        block_h = (len(lines) * _LINE_PITCH - 3) * scale
        y = margin + (area_h - block_h) // 2
        for line in lines:
            line_w = (len(line) * _ADVANCE - 1) * scale
            _draw_text_line(img, width, height, margin + (area_w - line_w) // 2, y, line, scale, _INK)
            y += _LINE_PITCH * scale
    return img


def _lookup_table(values: list[int], default: int) -> bytes:
    return bytes(values + [default] * (256 - len(values)))


def _check_size(width: int, height: int) -> None:
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if not 1 <= value <= MAX_DIMENSION:
            raise ValueError(f"{name} must be between 1 and {MAX_DIMENSION}, got {value}")


def render_title_card_rgb(width: int, height: int, title: str) -> bytes:
    """The title card as packed 8-bit RGB (``width * height * 3`` bytes, rows top to bottom).

    The card is a solid background (see :func:`title_card_background`) with ``title`` word-wrapped
    and centred in a scaled-up 5x7 bitmap font, and a small "MiniMax simulator" label at the bottom
    left. Non-ASCII characters are drawn as '?'.

    >>> rgb = render_title_card_rgb(64, 48, "Hi")
    >>> len(rgb) == 64 * 48 * 3
    True
    >>> tuple(rgb[:3]) == title_card_background("Hi")
    True
    """
    _check_size(width, height)
    return b"".join(_card_rgb_rows(width, height, title))


def _card_rgb_rows(width: int, height: int, title: str, prefix: bytes = b"") -> list[bytes]:
    """The title card's rows, top to bottom, as packed RGB, each preceded by ``prefix``.

    A card is mostly repeated rows (background, and every glyph row drawn ``scale`` times), so each
    distinct row is converted once and shared.
    """
    idx = bytes(_card_indices(width, height, title))
    pal = _palette(title)
    tables = [_lookup_table([c[channel] for c in pal], 0) for channel in range(3)]
    converted: dict[bytes, bytes] = {}
    rows = []
    rgb = bytearray(3 * width)
    for start in range(0, width * height, width):
        row = idx[start : start + width]
        out = converted.get(row)
        if out is None:
            for channel in range(3):
                rgb[channel::3] = row.translate(tables[channel])
            out = converted[row] = prefix + rgb
        rows.append(out)
    return rows


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def render_poster_png(width: int, height: int, title: str) -> bytes:
    """The title card (same picture as the video's frames) as an 8-bit RGB PNG.

    The prompt is also stored, UTF-8, in an ``iTXt`` chunk with the keyword ``Title``.

    >>> png = render_poster_png(320, 180, "A lighthouse in a storm")
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    >>> struct.unpack(">II", png[16:24])
    (320, 180)
    """
    _check_size(width, height)
    raw = b"".join(_card_rgb_rows(width, height, title, b"\x00"))  # filter type 0 (None) per row
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    itxt = b"Title\x00\x00\x00\x00\x00" + title[:4000].encode("utf-8", "replace")
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", ihdr),
            _png_chunk(b"tEXt", b"Software\x00minimax_dagster simulator"),
            _png_chunk(b"iTXt", itxt),
            _png_chunk(b"IDAT", zlib.compress(raw, 6)),
            _png_chunk(b"IEND", b""),
        )
    )


def _rgb_to_ycbcr(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited ("studio") range: Y in 16..235, Cb/Cr in 16..240. Never 0, which keeps I_PCM
    samples from ever forming a start-code prefix."""
    r, g, b = rgb
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    cb = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    cr = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return (
        min(max(round(y), 16), 235),
        min(max(round(cb), 16), 240),
        min(max(round(cr), 16), 240),
    )


# --------------------------------------------------------------------------------------------------
# H.264 bitstream
# --------------------------------------------------------------------------------------------------


class _BitWriter:
    """MSB-first bit writer with the Exp-Golomb codes of H.264 clause 9.1."""

    __slots__ = ("_acc", "_nbits", "_out")

    def __init__(self) -> None:
        self._out = bytearray()
        self._acc = 0
        self._nbits = 0

    def u(self, n: int, value: int) -> None:
        """Fixed-length unsigned ``u(n)``."""
        if value < 0 or value >> n:
            raise ValueError(f"{value} does not fit in {n} bits")
        self._acc = (self._acc << n) | value
        self._nbits += n
        while self._nbits >= 8:
            self._nbits -= 8
            self._out.append((self._acc >> self._nbits) & 0xFF)
        self._acc &= (1 << self._nbits) - 1

    def flag(self, value: bool | int) -> None:
        self.u(1, 1 if value else 0)

    def ue(self, value: int) -> None:
        """Unsigned Exp-Golomb ``ue(v)``."""
        if value < 0:
            raise ValueError("ue(v) needs a non-negative value")
        code = value + 1
        self.u(2 * code.bit_length() - 1, code)

    def se(self, value: int) -> None:
        """Signed Exp-Golomb ``se(v)``: 1 -> 1, -1 -> 2, 2 -> 3, ..."""
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    @property
    def byte_aligned(self) -> bool:
        return self._nbits == 0

    def align_zero(self) -> None:
        if self._nbits:
            self.u(8 - self._nbits, 0)

    def rbsp_trailing_bits(self) -> None:
        self.u(1, 1)
        self.align_zero()

    def raw(self, data: bytes) -> None:
        if not self.byte_aligned:
            raise ValueError("raw bytes need byte alignment")
        self._out += data

    def getvalue(self) -> bytes:
        if not self.byte_aligned:
            raise ValueError("bitstream is not byte aligned")
        return bytes(self._out)


def _emulation_prevent(rbsp: bytes) -> bytes:
    """Insert ``emulation_prevention_three_byte`` (0x03) after every ``00 00`` followed by a byte <= 3
    (or by the end of the payload), as clause 7.4.1 requires for every NAL unit payload."""
    pos = rbsp.find(b"\x00\x00")
    if pos < 0:
        return rbsp
    out = bytearray()
    start = 0
    n = len(rbsp)
    while pos >= 0:
        nxt = pos + 2
        if nxt >= n or rbsp[nxt] <= 3:
            out += rbsp[start:nxt]
            out.append(3)
            start = nxt
            pos = rbsp.find(b"\x00\x00", nxt)
        else:
            pos = rbsp.find(b"\x00\x00", pos + 1)
    out += rbsp[start:]
    return bytes(out)


def _nal(nal_ref_idc: int, nal_unit_type: int, rbsp: bytes) -> bytes:
    return bytes([(nal_ref_idc << 5) | nal_unit_type]) + _emulation_prevent(rbsp)


# (level_idc, MaxMBPS, MaxFS, MaxDpbMbs, MaxCPB in kbit) from H.264 Table A-1 (level 1b omitted).
_LEVELS = (
    (10, 1485, 99, 396, 175),
    (11, 3000, 396, 900, 500),
    (12, 6000, 396, 2376, 1000),
    (13, 11880, 396, 2376, 2000),
    (20, 11880, 396, 2376, 2000),
    (21, 19800, 792, 4752, 4000),
    (22, 20250, 1620, 8100, 4000),
    (30, 40500, 1620, 8100, 10000),
    (31, 108000, 3600, 18000, 14000),
    (32, 216000, 5120, 20480, 20000),
    (40, 245760, 8192, 32768, 25000),
    (41, 245760, 8192, 32768, 62500),
    (42, 522240, 8704, 34816, 62500),
    (50, 589824, 22080, 110400, 135000),
    (51, 983040, 36864, 184320, 240000),
    (52, 2073600, 36864, 184320, 240000),
    (60, 4177920, 139264, 696320, 240000),
    (61, 8355840, 139264, 696320, 480000),
    (62, 16711680, 139264, 696320, 800000),
)


def _frame_fits(level: tuple[int, int, int, int, int], mb_w: int, mb_h: int) -> bool:
    _, _, max_fs, max_dpb_mbs, _ = level
    side = math.isqrt(8 * max_fs)
    return mb_w * mb_h <= max_fs and mb_w <= side and mb_h <= side and mb_w * mb_h <= max_dpb_mbs


def _choose_level(mb_w: int, mb_h: int, fps: int) -> int:
    """Smallest level_idc whose frame size, macroblock rate and CPB size (one I_PCM frame) fit."""
    mbs = mb_w * mb_h
    idr_bits = mbs * (384 + 2) * 8 + 1024
    for level in _LEVELS:
        if _frame_fits(level, mb_w, mb_h) and mbs * fps <= level[1] and idr_bits <= level[4] * 1000:
            return level[0]
    for level in _LEVELS:  # rate or CPB too high for any level: the frame size is what matters
        if _frame_fits(level, mb_w, mb_h):
            return level[0]
    raise ValueError(f"a {mb_w * 16}x{mb_h * 16} picture exceeds H.264 level 6.2 ({mbs} macroblocks)")


class _Geometry(NamedTuple):
    width: int
    height: int
    mb_w: int
    mb_h: int

    @property
    def coded_width(self) -> int:
        return self.mb_w * 16

    @property
    def coded_height(self) -> int:
        return self.mb_h * 16

    @property
    def mbs(self) -> int:
        return self.mb_w * self.mb_h


def _geometry(width: int, height: int) -> _Geometry:
    return _Geometry(width, height, (width + 15) // 16, (height + 15) // 16)


def _sps_rbsp(geo: _Geometry, fps: int, level_idc: int) -> bytes:
    w = _BitWriter()
    w.u(8, 66)  # profile_idc: Baseline
    w.u(8, 0b11000000)  # constraint_set0 + constraint_set1 (=> Constrained Baseline), reserved zeros
    w.u(8, level_idc)
    w.ue(0)  # seq_parameter_set_id
    w.ue(_LOG2_MAX_FRAME_NUM - 4)  # log2_max_frame_num_minus4
    w.ue(2)  # pic_order_cnt_type: output order = decoding order
    w.ue(1)  # max_num_ref_frames
    w.flag(0)  # gaps_in_frame_num_value_allowed_flag
    w.ue(geo.mb_w - 1)  # pic_width_in_mbs_minus1
    w.ue(geo.mb_h - 1)  # pic_height_in_map_units_minus1
    w.flag(1)  # frame_mbs_only_flag
    w.flag(1)  # direct_8x8_inference_flag
    crop_right = (geo.coded_width - geo.width) // 2  # CropUnitX = CropUnitY = 2 for 4:2:0 frames
    crop_bottom = (geo.coded_height - geo.height) // 2
    if crop_right or crop_bottom:
        w.flag(1)  # frame_cropping_flag
        w.ue(0)  # frame_crop_left_offset
        w.ue(crop_right)
        w.ue(0)  # frame_crop_top_offset
        w.ue(crop_bottom)
    else:
        w.flag(0)
    w.flag(1)  # vui_parameters_present_flag
    w.flag(0)  # aspect_ratio_info_present_flag
    w.flag(0)  # overscan_info_present_flag
    w.flag(1)  # video_signal_type_present_flag
    w.u(3, 5)  # video_format: unspecified
    w.flag(0)  # video_full_range_flag: limited range
    w.flag(1)  # colour_description_present_flag
    w.u(8, 6)  # colour_primaries: SMPTE 170M
    w.u(8, 6)  # transfer_characteristics: SMPTE 170M
    w.u(8, 6)  # matrix_coefficients: BT.601
    w.flag(0)  # chroma_loc_info_present_flag
    w.flag(1)  # timing_info_present_flag
    w.u(32, 1)  # num_units_in_tick
    w.u(32, 2 * fps)  # time_scale (two ticks per frame)
    w.flag(1)  # fixed_frame_rate_flag
    w.flag(0)  # nal_hrd_parameters_present_flag
    w.flag(0)  # vcl_hrd_parameters_present_flag
    w.flag(0)  # pic_struct_present_flag
    w.flag(1)  # bitstream_restriction_flag
    w.flag(1)  # motion_vectors_over_pic_boundaries_flag
    w.ue(0)  # max_bytes_per_pic_denom (no limit)
    w.ue(0)  # max_bits_per_mb_denom (no limit)
    w.ue(16)  # log2_max_mv_length_horizontal
    w.ue(16)  # log2_max_mv_length_vertical
    w.ue(0)  # max_num_reorder_frames: frames can be output as soon as decoded
    w.ue(1)  # max_dec_frame_buffering
    w.rbsp_trailing_bits()
    return w.getvalue()


def _pps_rbsp() -> bytes:
    w = _BitWriter()
    w.ue(0)  # pic_parameter_set_id
    w.ue(0)  # seq_parameter_set_id
    w.flag(0)  # entropy_coding_mode_flag: CAVLC
    w.flag(0)  # bottom_field_pic_order_in_frame_present_flag
    w.ue(0)  # num_slice_groups_minus1
    w.ue(0)  # num_ref_idx_l0_default_active_minus1
    w.ue(0)  # num_ref_idx_l1_default_active_minus1
    w.flag(0)  # weighted_pred_flag
    w.u(2, 0)  # weighted_bipred_idc
    w.se(0)  # pic_init_qp_minus26
    w.se(0)  # pic_init_qs_minus26
    w.se(0)  # chroma_qp_index_offset
    w.flag(1)  # deblocking_filter_control_present_flag
    w.flag(0)  # constrained_intra_pred_flag
    w.flag(0)  # redundant_pic_cnt_present_flag
    w.rbsp_trailing_bits()
    return w.getvalue()


def _idr_slice_header() -> bytes:
    """IDR I-slice header plus the first macroblock's ``mb_type`` (I_PCM) and pcm alignment bits."""
    w = _BitWriter()
    w.ue(0)  # first_mb_in_slice
    w.ue(7)  # slice_type: I (all slices of the picture)
    w.ue(0)  # pic_parameter_set_id
    w.u(_LOG2_MAX_FRAME_NUM, 0)  # frame_num
    w.ue(0)  # idr_pic_id
    w.flag(0)  # dec_ref_pic_marking: no_output_of_prior_pics_flag
    w.flag(0)  # dec_ref_pic_marking: long_term_reference_flag
    w.se(0)  # slice_qp_delta
    w.ue(1)  # disable_deblocking_filter_idc: off
    w.ue(25)  # first macroblock's mb_type: I_PCM
    w.align_zero()  # pcm_alignment_zero_bit
    return w.getvalue()


# After an I_PCM macroblock the stream is byte aligned, so the next one starts with ue(25) = 0000 11010
# followed by seven pcm_alignment_zero_bits: exactly these two bytes.
_PCM_MB_PREFIX = b"\x0d\x00"


def _idr_nal(geo: _Geometry, idx: bytes | bytearray, palette: tuple[tuple[int, int, int], ...]) -> bytes:
    """The IDR picture: every macroblock I_PCM, samples taken from the palette-index card image.

    I_PCM stores each macroblock's 16x16 luma then 8x8 Cb and Cr samples, so the picture is reordered
    from raster to macroblock order. That is done on views of 8-byte units (8 samples of one row of
    one macroblock) with a few dozen strided slice assignments, not by slicing every macroblock.
    """
    w, cw, ch = geo.width, geo.coded_width, geo.coded_height
    rows = [idx[y * w : (y + 1) * w] for y in range(geo.height)]
    if cw != w:  # pad right and bottom with background up to whole MBs
        pad = bytes([_BG]) * (cw - w)
        rows = [row + pad for row in rows]
    rows += [bytes([_BG]) * cw] * (ch - geo.height)
    mb_h, mbs = geo.mb_h, geo.mbs
    # Block r holds row r of every macroblock row, top to bottom, so macroblock k's row r is at byte
    # 16 * k of luma block r (8 * k of chroma block r). 4:2:0 chroma: the top-left sample of each 2x2
    # block (the card is flat colour, so this is exact everywhere but on glyph edges).
    luma = b"".join([rows[16 * mby + r] for r in range(16) for mby in range(mb_h)])
    chroma = b"".join([rows[16 * mby + 2 * r][::2] for r in range(8) for mby in range(mb_h)])
    ycc = [_rgb_to_ycbcr(c) for c in palette]
    y_units = memoryview(luma.translate(_lookup_table([c[0] for c in ycc], 16))).cast("Q")
    cb_units = memoryview(chroma.translate(_lookup_table([c[1] for c in ycc], 128))).cast("Q")
    cr_units = memoryview(chroma.translate(_lookup_table([c[2] for c in ycc], 128))).cast("Q")
    # 48 units per macroblock: luma row r at 2r and 2r + 1, then the 8 Cb rows, then the 8 Cr rows.
    # Units are only moved, never interpreted, so the machine's byte order does not matter.
    samples = bytearray(384 * mbs)
    mb_units = memoryview(samples).cast("Q")
    n = 2 * mbs
    for r in range(16):
        mb_units[2 * r :: 48] = y_units[r * n : (r + 1) * n : 2]
        mb_units[2 * r + 1 :: 48] = y_units[r * n + 1 : (r + 1) * n : 2]
    for r in range(8):
        mb_units[32 + r :: 48] = cb_units[r * mbs : (r + 1) * mbs]
        mb_units[40 + r :: 48] = cr_units[r * mbs : (r + 1) * mbs]

    view = memoryview(samples)
    parts: list[bytes | memoryview] = [view[i : i + 384] for i in range(0, 384 * mbs, 384)]
    # Emulation prevention need not scan the samples: they are never 0 (see _rgb_to_ycbcr), and the
    # only other zero bytes, the second byte of each _PCM_MB_PREFIX, are followed by a sample. Any
    # 00 00 is thus in the slice header, and the first macroblock is enough context for it.
    parts[0] = _nal(3, 5, _idr_slice_header() + parts[0])
    parts[-1] = bytes(parts[-1]) + b"\x80"  # rbsp_slice_trailing_bits: stop bit + alignment
    return _PCM_MB_PREFIX.join(parts)


def _p_skip_rbsp(mbs: int, frame_num: int) -> bytes:
    """A P picture in which every macroblock is P_Skip: an exact copy of the previous picture."""
    w = _BitWriter()
    w.ue(0)  # first_mb_in_slice
    w.ue(5)  # slice_type: P (all slices of the picture)
    w.ue(0)  # pic_parameter_set_id
    w.u(_LOG2_MAX_FRAME_NUM, frame_num)
    w.flag(0)  # num_ref_idx_active_override_flag
    w.flag(0)  # ref_pic_list_modification_flag_l0
    w.flag(0)  # dec_ref_pic_marking: adaptive_ref_pic_marking_mode_flag (sliding window)
    w.se(0)  # slice_qp_delta
    w.ue(1)  # disable_deblocking_filter_idc: off
    w.ue(mbs)  # mb_skip_run: the whole picture
    w.rbsp_trailing_bits()
    return w.getvalue()


# Bit offset of frame_num in _p_skip_rbsp: first_mb_in_slice ue(0), slice_type ue(5) and
# pic_parameter_set_id ue(0) take 1 + 5 + 1 bits.
_P_FRAME_NUM_BIT = 7


@functools.lru_cache(maxsize=32)
def _p_skip_samples(mbs: int) -> tuple[bytes, ...]:
    """The MP4 samples (4-byte length + NAL unit) of the P_Skip picture for every frame_num.

    They differ only in the fixed-width frame_num field, so the slice is written once and each
    frame_num is OR-ed into it.
    """
    rbsp = _p_skip_rbsp(mbs, 0)
    base = int.from_bytes(rbsp, "big")
    shift = 8 * len(rbsp) - _P_FRAME_NUM_BIT - _LOG2_MAX_FRAME_NUM
    samples = []
    for frame_num in range(_MAX_FRAME_NUM):
        nal = _nal(2, 1, (base | frame_num << shift).to_bytes(len(rbsp), "big"))
        samples.append(struct.pack(">I", len(nal)) + nal)
    return tuple(samples)


# --------------------------------------------------------------------------------------------------
# MP4 boxes
# --------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------
# Public video API
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------

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
