"""An exact server-sent-events (``text/event-stream``) decoder.

Implements the parsing rules of the WHATWG HTML standard, section "Server-sent events"
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation),
over a byte stream that may be split anywhere, modelled on openai-python's ``SSEDecoder``.

>>> [e.data for e in iter_sse_bytes([b"data: hel", b"lo\\r", b"\\n\\r\\n"])]
['hello']
"""

# Why not a library: sseclient-py, requests-sse and httpx-sse each break at least one of the
# rules below on a requests stream (mixed line ends, a CRLF split across reads, a BOM, a
# truncated last event). The rules are short, so we implement them exactly and test each one.

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from minimax_dagster.api.limits import ReadLimits

if TYPE_CHECKING:
    import requests

__all__ = ["SSEDecoder", "SSELimitError", "ServerSentEvent", "iter_sse_bytes", "iter_sse_response"]

# Only CRLF, lone LF and lone CR end a line. Not str.splitlines(): it also splits on
# \x0b, \x0c, \x1c-\x1e, \x85, \u2028 and \u2029, which are ordinary characters in SSE.
_LINE_END = re.compile(r"\r\n|\r|\n")
# "retry" must consist of ASCII digits only (str.isdigit() would accept e.g. "²" or "٣").
_ASCII_DIGITS = re.compile(r"[0-9]+")
_BOM = "\ufeff"
DEFAULT_MAX_LINE_CHARS = ReadLimits.max_sse_line_chars
DEFAULT_MAX_EVENT_CHARS = ReadLimits.max_sse_event_chars


class SSELimitError(ValueError):
    """A line or an event went over the decoder's cap: ``what`` is ``"line"`` or ``"event"``, ``limit`` the cap.

    >>> SSEDecoder(max_line_chars=4).feed(b"data: 12345")
    Traceback (most recent call last):
    ...
    minimax_dagster.api.sse.SSELimitError: an SSE line is longer than 4 characters (max_line_chars)
    """

    def __init__(self, what: str, limit: int) -> None:
        self.what = what
        self.limit = limit
        #: The events the same ``feed()`` completed before the cap was hit (they are whole and valid).
        self.events: list[ServerSentEvent] = []
        setting = "max_line_chars" if what == "line" else "max_event_chars"
        super().__init__(f"an SSE {what} is longer than {limit} characters ({setting})")


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event.

    ``id`` is the last event id in force when the event was dispatched (``""`` if the server
    reset it with an empty ``id`` field, ``None`` if the stream never set one). ``retry`` is
    the reconnection time set by this event's own ``retry`` lines, if any.

    >>> event = ServerSentEvent(data='{"status": "heartbeat"}')
    >>> event.event, event.id, event.retry
    ('message', None, None)
    """

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """Parse ``data`` as JSON.

        >>> ServerSentEvent(data='{"code": 200}').json()
        {'code': 200}
        """
        return json.loads(self.data)


class SSEDecoder:
    """Incremental decoder: feed it bytes as they arrive, get back the events they complete.

    Attributes, all readable at any time:

    - ``last_event_id``: the spec's "last event ID string", updated when an event block is
      dispatched (so an ``id`` in a truncated final block does not count). Starts as ``""``.
    - ``retry``: the latest valid ``retry`` value in milliseconds, or ``None``.
    - ``comments_seen``: number of comment lines (``:...``), e.g. keep-alives.
    - ``bytes_seen``: number of bytes fed so far.
    - ``discarded_partial_event``: set by ``close()`` when the stream ended inside an event
      block (a field line, or an unterminated non-comment line, not followed by a blank line),
      which per the spec is discarded; a sign of a truncated stream.

    ``max_line_chars`` caps one line and ``max_event_chars`` the ``data`` of one event (its lines joined by
    LF), both in characters: the decoder raises :class:`SSELimitError` as soon as a line or an event would pass
    its cap, before buffering more of it, and is closed from then on. Below the caps it is exact.

    >>> decoder = SSEDecoder()
    >>> decoder.feed(b": keep-alive\\nid: 7\\nevent: ping\\ndata: a\\r\\ndata: b\\n")
    []
    >>> decoder.feed(b"\\n")
    [ServerSentEvent(event='ping', data='a\\nb', id='7', retry=None)]
    >>> decoder.comments_seen, decoder.last_event_id
    (1, '7')
    """

    def __init__(
        self, *, max_line_chars: int = DEFAULT_MAX_LINE_CHARS, max_event_chars: int = DEFAULT_MAX_EVENT_CHARS
    ) -> None:
        self.max_line_chars = max_line_chars
        self.max_event_chars = max_event_chars
        self.last_event_id: str = ""
        self.retry: int | None = None
        self.comments_seen: int = 0
        self.bytes_seen: int = 0
        self.discarded_partial_event: bool = False

        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._at_start = True  # no character decoded yet: a BOM here is stripped
        self._skip_lf = False  # the previous text ended with CR: a leading LF completes a CRLF
        self._partial: list[str] = []  # pieces of the current, unterminated line
        self._partial_chars = 0
        self._closed = False

        # The event being built (the spec's "buffers").
        self._data: list[str] = []  # data buffer as lines; empty list == empty buffer
        self._data_chars = 0  # characters of the data buffer, one LF per line included
        self._event_type = ""
        self._id_buffer: str | None = None  # None: the stream never set an id
        self._event_retry: int | None = None
        self._in_event = False  # a field line was seen since the last blank line

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume the next piece of the byte stream (any split is fine); return completed events.

        A CR ending ``chunk`` ends its line at once; an LF starting the next chunk is then
        taken as the second half of that CRLF rather than as a blank line.

        >>> decoder = SSEDecoder()
        >>> decoder.feed(b"data: x\\r")
        []
        >>> decoder.feed(b"\\n\\r")
        [ServerSentEvent(event='message', data='x', id=None, retry=None)]
        """
        if self._closed:
            raise RuntimeError("SSEDecoder.feed() called after close()")
        self.bytes_seen += len(chunk)
        return self._feed_text(self._utf8.decode(chunk))

    def close(self) -> list[ServerSentEvent]:
        """Signal the end of the stream and return any events that completes.

        An event block not closed by a blank line is discarded and flagged in
        ``discarded_partial_event``. A CR at the very end already ended its line in
        ``feed()``, so this returns ``[]`` today; the list keeps ``feed``/``close`` symmetric.

        >>> decoder = SSEDecoder()
        >>> decoder.feed(b"data: complete\\n\\ndata: trunc")
        [ServerSentEvent(event='message', data='complete', id=None, retry=None)]
        >>> decoder.close(), decoder.discarded_partial_event
        ([], True)
        """
        if self._closed:
            return []
        # Flush an incomplete multi-byte sequence (it becomes U+FFFD in the unterminated line).
        events = self._feed_text(self._utf8.decode(b"", final=True))
        self._closed = True
        pending_line = "".join(self._partial)
        if self._in_event or (pending_line and not pending_line.startswith(":")):
            self.discarded_partial_event = True
        self._partial.clear()
        self._partial_chars = 0
        self._reset_event()
        return events

    def _feed_text(self, text: str) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        try:
            self._feed_lines(text, events)
        except SSELimitError as exc:
            exc.events = events
            raise
        return events

    def _feed_lines(self, text: str, events: list[ServerSentEvent]) -> None:
        if not text:
            return
        pos = 0
        if self._at_start:
            self._at_start = False
            if text.startswith(_BOM):
                pos = 1
        if self._skip_lf:
            self._skip_lf = False
            if text.startswith("\n", pos):
                pos += 1
        partial = self._partial
        for match in _LINE_END.finditer(text, pos):
            piece = text[pos : match.start()]
            self._check_line(len(piece))
            if partial:
                partial.append(piece)
                line = "".join(partial)
                partial.clear()
                self._partial_chars = 0
            else:
                line = piece
            self._process_line(line, events)
            pos = match.end()
        if pos < len(text):
            self._check_line(len(text) - pos)
            partial.append(text[pos:])
            self._partial_chars += len(text) - pos
        elif text.endswith("\r"):
            self._skip_lf = True

    def _check_line(self, more: int) -> None:
        if self._partial_chars + more > self.max_line_chars:
            self._give_up()
            raise SSELimitError("line", self.max_line_chars)

    def _give_up(self) -> None:
        """Drop every buffer and refuse further input (after a cap was hit)."""
        self._closed = True
        self._partial.clear()
        self._partial_chars = 0
        self._reset_event()

    def _process_line(self, line: str, events: list[ServerSentEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line.startswith(":"):
            self.comments_seen += 1
            return
        self._in_event = True
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            if self._data_chars + len(value) > self.max_event_chars:
                self._give_up()
                raise SSELimitError("event", self.max_event_chars)
            self._data.append(value)
            self._data_chars += len(value) + 1
        elif name == "event":
            self._event_type = value
        elif name == "id" and "\0" not in value:
            self._id_buffer = value
        elif name == "retry" and _ASCII_DIGITS.fullmatch(value):
            self.retry = self._event_retry = int(value)
        # Anything else (an unknown name, an id with NUL, a non-digit retry) is ignored.

    def _dispatch(self, events: list[ServerSentEvent]) -> None:
        if self._id_buffer is not None:
            self.last_event_id = self._id_buffer
        if self._data:
            events.append(
                ServerSentEvent(
                    event=self._event_type or "message",
                    data="\n".join(self._data),
                    id=self._id_buffer,
                    retry=self._event_retry,
                )
            )
        self._reset_event()

    def _reset_event(self) -> None:
        self._data = []
        self._data_chars = 0
        self._event_type = ""
        self._event_retry = None
        self._in_event = False


def iter_sse_bytes(
    chunks: Iterable[bytes], *, decoder: SSEDecoder | None = None
) -> Iterator[ServerSentEvent]:
    """Decode an iterable of byte chunks: feed every chunk, then close.

    Pass your own ``decoder`` to inspect it afterwards (e.g. ``discarded_partial_event``).

    >>> decoder = SSEDecoder()
    >>> [e.json() for e in iter_sse_bytes([b'data: {"n": 1}\\n\\n', b"data: {"], decoder=decoder)]
    [{'n': 1}]
    >>> decoder.discarded_partial_event
    True
    """
    decoder = SSEDecoder() if decoder is None else decoder
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.close()


def iter_sse_response(
    response: requests.Response, chunk_size: int = 65536, *, decoder: SSEDecoder | None = None
) -> Iterator[ServerSentEvent]:
    """Decode the body of a streaming ``requests`` response, yielding events as bytes arrive.

    Reads ``response.raw.read1(chunk_size)`` so bytes are handled as they arrive (iter_lines
    splits a CRLF straddling two chunks; iter_content(n) holds events back on close-delimited
    bodies). Call with a response from a request made with ``stream=True`` and header
    ``Accept-Encoding: identity``. Sets ``response.raw.decode_content = True`` first (so a
    server that compresses anyway still works), needs urllib3 >= 2.3 (``HTTPResponse.read1``),
    and closes the response when done or when the generator is closed. Errors from the
    transport (e.g. urllib3's ``ProtocolError`` on a truncated chunked body) propagate.

    >>> import io, types
    >>> response = types.SimpleNamespace(raw=io.BytesIO(b"data: hi\\n\\n"), close=lambda: None)
    >>> [e.data for e in iter_sse_response(response)]
    ['hi']
    """
    raw = response.raw
    read1 = getattr(raw, "read1", None)
    if read1 is None:
        raise TypeError("iter_sse_response needs response.raw.read1 (urllib3 >= 2.3)")
    raw.decode_content = True
    decoder = SSEDecoder() if decoder is None else decoder
    try:
        while True:
            chunk = read1(chunk_size)
            if not chunk:  # b"" at the end of the body (None if urllib3 already released it)
                break
            yield from decoder.feed(chunk)
        yield from decoder.close()
    finally:
        response.close()
