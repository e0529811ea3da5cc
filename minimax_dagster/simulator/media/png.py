"""The PNG poster: the title card as an 8-bit RGB PNG (stdlib ``zlib`` only).

>>> render_poster_png(8, 8, "x")[12:16]
b'IHDR'
"""

from __future__ import annotations

import struct
import zlib

from .card import _card_rgb_rows, _check_size

__all__ = ["render_poster_png"]


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
