"""Bodies a broken or hostile upstream can send, built lazily (a generator of chunks), so the server side of a
test or a benchmark holds one chunk at a time whatever the size. Each stops after ``seconds`` at the latest.

>>> b"".join(endless(b"ab", total=5))
b'ababa'
>>> next(gzip_lines(b"data: x\\n", total=100))[:2]
b'\\x1f\\x8b'
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator

CHUNK = 64 * 1024


def endless(
    unit: bytes = b"x", *, total: int | None = None, seconds: float = 60.0, prefix: bytes = b""
) -> Iterator[bytes]:
    """``prefix``, then ``unit`` repeated in 64 KiB chunks: ``total`` bytes of it, or until ``seconds`` passed."""
    if prefix:
        yield prefix
    block = unit * max(1, CHUNK // len(unit))
    stop = time.monotonic() + seconds
    sent = 0
    while (total is None or sent < total) and time.monotonic() < stop:
        piece = block if total is None else block[: total - sent]
        yield piece
        sent += len(piece)


def gzip_lines(line: bytes, *, total: int, seconds: float = 60.0, prefix: bytes = b"") -> Iterator[bytes]:
    """``prefix``, then ``line`` repeated to ``total`` bytes, gzip-compressed on the fly (a small body that
    expands about 1000 times)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    for piece in endless(line, total=total, seconds=seconds, prefix=prefix):
        out = packer.compress(piece)
        if out:
            yield out
    yield packer.flush()


def many_headers(n: int) -> dict[str, str]:
    """``n`` distinct response headers."""
    return {f"X-Pad-{i}": "y" for i in range(n)}
