"""Reading the agent-create event stream, and the events the client makes up when it recovers a video.

>>> import io
>>> class Raw(io.BytesIO):
...     decode_content = False
>>> events = read_stream(Raw(b'data: {"status":"created","videoId":"v1"}\\n\\n'), limit=float("inf"), read_timeout=45)
>>> event = next(events)
>>> (event.status, event.video_id)
('created', 'v1')
>>> next(events)
Traceback (most recent call last):
...
minimax_dagster.api.errors.StreamEndedError: the stream ended without a finished event
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import requests
from pydantic import ValidationError
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError

from minimax_dagster.api.errors import (
    GenerationTimeoutError,
    ModeratedError,
    StreamEndedError,
    StreamStalledError,
    StreamTooLargeError,
    VideoFailedError,
)
from minimax_dagster.api.limits import ReadLimits
from minimax_dagster.api.models import StreamEvent, VideoStatus
from minimax_dagster.api.sse import ServerSentEvent, SSEDecoder, SSELimitError

# The client's logger: stream warnings have always been logged under it.
logger = logging.getLogger("minimax_dagster.api.client")


def read_stream(
    raw: Any, *, limit: float, read_timeout: float, limits: ReadLimits | None = None
) -> Iterator[StreamEvent]:
    """Yield the events of an event-stream body (``response.raw``) as their bytes arrive.

    ``limit`` is a ``time.monotonic()`` deadline. A silent socket raises :class:`StreamStalledError`, a broken one
    :class:`StreamEndedError`, and so does the end of the body (the caller stops reading at ``finished``). A line
    or an event over its cap in ``limits`` raises :class:`StreamTooLargeError`. A malformed event is logged and
    skipped. A compressed body is decoded at most 64 KiB per read (urllib3 >= 2.6 bounds its decompressors), so
    the caps count decoded characters.
    """
    limits = limits or ReadLimits()
    raw.decode_content = True
    decoder = SSEDecoder(max_line_chars=limits.max_sse_line_chars, max_event_chars=limits.max_sse_event_chars)
    while True:
        if time.monotonic() >= limit:
            raise GenerationTimeoutError("the generation deadline passed while streaming")
        try:
            chunk = raw.read1(65536)
        except ReadTimeoutError:
            raise StreamStalledError(
                f"no bytes for {read_timeout:.0f} s (heartbeats should come every ~10 s)"
            ) from None
        except (ProtocolError, DecodeError, OSError, requests.exceptions.RequestException) as exc:
            raise StreamEndedError(f"the stream broke: {short_error(exc)}") from None
        if not chunk:
            decoder.close()
            raise StreamEndedError("the stream ended without a finished event")
        try:
            decoded = decoder.feed(chunk)
        except SSELimitError as exc:
            yield from _parsed(exc.events)  # whole events before the cap: one may carry the video id
            setting = "max_sse_line_chars" if exc.what == "line" else "max_sse_event_chars"
            raise StreamTooLargeError(
                f"the stream was cut: an SSE {exc.what} is longer than {exc.limit} characters (ReadLimits."
                f"{setting}); the documented events are a few KB, so the upstream is broken, or raise the limit"
            ) from None
        yield from _parsed(decoded)


def _parsed(events: list[ServerSentEvent]) -> Iterator[StreamEvent]:
    for sse in events:
        event = parse_event(sse.data)
        if event is not None:
            yield event


def parse_event(data: str) -> StreamEvent | None:
    """One ``data`` payload as a :class:`StreamEvent`, or None (logged) when it is empty or malformed.

    >>> parse_event('{"status": "heartbeat"}').is_heartbeat, parse_event("{not json")
    (True, None)
    """
    if not data.strip():
        return None
    try:
        return StreamEvent.model_validate_json(data)  # one pass in pydantic-core: no dict in between
    except (ValueError, ValidationError) as exc:
        logger.warning("skipping a malformed stream event (%s): %.200s", type(exc).__name__, data)
        return None


def created_event(video_id: str, *, found_by: str) -> StreamEvent:
    """The event announcing a video found by reconciliation (``recovered`` and ``reconciled`` in ``model_extra``).

    >>> created_event("v1", found_by="GET videos/").model_extra
    {'recovered': True, 'reconciled': 'GET videos/'}
    """
    return StreamEvent.model_validate(
        {"status": "created", "videoId": video_id, "recovered": True, "reconciled": found_by}
    )


def events_from_status(status: VideoStatus) -> list[StreamEvent]:
    """A final-video event and a ``finished`` event built from a completed GET videos/{videoId} answer.

    >>> final, done = events_from_status(VideoStatus(video_id="v1", status=2, video_url="https://c/v.mp4"))
    >>> (final.final_video.url, done.status, done.model_extra["recovered"])
    ('https://c/v.mp4', 'finished', True)
    """
    video = status.final_video()
    assert video is not None  # raise_for_video_status let only completed videos through
    attachment = {
        "status": 3,
        "file": {
            "fileName": video.file_name or "video.mp4",
            "fileUrl": video.url,
            "posterUrl": video.poster_url,
            "type": "video",
            "extra": {
                "width": video.width,
                "height": video.height,
                "duration": video.duration_s,
                "no_watermark_url": video.no_watermark_url,
            },
        },
    }
    final = StreamEvent.model_validate(
        {
            "status": "progress",
            "type": 2,
            "videoId": status.video_id,
            "message": {"attachmentInfo": {"type": 3, "attachments": [attachment]}},
            "recovered": True,
        }
    )
    finished = StreamEvent.model_validate(
        {"status": "finished", "videoId": status.video_id, "recovered": True}
    )
    return [final, finished]


def raise_for_video_status(status: VideoStatus, video_id: str) -> None:
    """Raise the matching error for a final status that is not a usable completed video.

    >>> raise_for_video_status(VideoStatus(status=3, message="GPU fell over"), "v1")
    Traceback (most recent call last):
    ...
    minimax_dagster.api.errors.VideoFailedError: the video failed: GPU fell over (video v1)
    """
    if status.is_moderated:
        raise ModeratedError(
            f"the video was moderated (status {status.status}): {status.message or 'no message'}",
            video_id=video_id,
            body=status.to_wire(),
        )
    if status.is_failed:
        raise VideoFailedError(
            f"the video failed: {status.message or 'no message'}", video_id=video_id, body=status.to_wire()
        )
    if not status.is_completed or status.final_video() is None:
        raise VideoFailedError(
            f"the video is final with status {status.status} but has no video URL",
            video_id=video_id,
            body=status.to_wire(),
        )


def short_error(exc: BaseException) -> str:
    """An exception as ``Type: message`` cut to 300 characters (never holding a header: requests puts none there).

    >>> short_error(ValueError("x" * 400))[:12], len(short_error(ValueError("x" * 400)))
    ('ValueError: ', 312)
    """
    return f"{type(exc).__name__}: {str(exc)[:300]}"
