"""The title card: a prompt word-wrapped in a scaled 5x7 bitmap font on a dark background.

The card is drawn as a palette-index image (one byte per pixel: background, ink, label ink) that the PNG
poster (:mod:`.png`) and the H.264 IDR picture (:mod:`.h264`) both turn into samples, so the poster and every
frame of the video show the same picture. Only ASCII is drawn; other characters become '?'.

>>> len(render_title_card_rgb(32, 16, "Hi")) == 32 * 16 * 3
True
"""

from __future__ import annotations

import functools
import textwrap
import unicodedata
import zlib
from typing import Any

__all__ = ["LABEL", "MAX_DIMENSION", "render_title_card_rgb", "title_card_background"]

MAX_DIMENSION = 8192
LABEL = "MiniMax simulator"

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
