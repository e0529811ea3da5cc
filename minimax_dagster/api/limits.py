"""``ReadLimits``: how much of an answer the client holds, so a broken or hostile upstream cannot grow a worker.

Every cap is checked while bytes arrive (never after reading a whole body) and counts decoded bytes, so a
``Content-Encoding`` that expands is bounded like plain bytes. A cap that is hit raises an error naming the
setting; :class:`~minimax_dagster.api.client.MiniMaxClient` takes them as ``limits=ReadLimits(...)``.

Headers are left to the standard library, which urllib3 uses to parse them: ``http.client`` refuses a status or
header line over 65,536 bytes (``_MAXLINE``) and more than 100 header lines (``_MAXHEADERS``), so the headers of
one answer hold at most about 6.4 MiB before they are refused.

>>> limits = ReadLimits()
>>> limits.max_sse_event_chars, limits.max_json_bytes // MiB
(1048576, 16)
>>> ReadLimits(max_json_bytes=0)
Traceback (most recent call last):
...
ValueError: ReadLimits.max_json_bytes must be at least 1024, got 0
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["MiB", "ReadLimits"]

MiB = 1024 * 1024


@dataclass(frozen=True)
class ReadLimits:
    """The most the client reads of one answer.

    Attributes:
        max_sse_line_chars: the longest line of the agent-create event stream, in characters (the documented
            events are a few KB; an unterminated line is cut here).
        max_sse_event_chars: the most ``data`` characters one event may gather (its lines joined).
        max_error_body_bytes: the most bytes read of an error answer (4xx/5xx); the error keeps a short excerpt.
        max_json_bytes: the most bytes of a JSON answer (GET videos/, templates, accounts, files, one video).
        body_seconds: the most seconds to read a whole error or JSON answer once its headers arrived (a body
            trickling a byte at a time would otherwise reset ``read_timeout`` forever).

    >>> ReadLimits(max_error_body_bytes=4096).max_error_body_bytes
    4096
    """

    max_sse_line_chars: int = MiB
    max_sse_event_chars: int = MiB
    max_error_body_bytes: int = MiB
    max_json_bytes: int = 16 * MiB
    body_seconds: float = 120.0

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if value < 1024 and item.name != "body_seconds":
                raise ValueError(f"ReadLimits.{item.name} must be at least 1024, got {value}")
        if not self.body_seconds > 0:
            raise ValueError(f"ReadLimits.body_seconds must be > 0, got {self.body_seconds}")
