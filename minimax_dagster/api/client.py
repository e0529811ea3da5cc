"""``MiniMaxClient``: a typed client of the useapi.net MiniMax API, centred on ``POST videos/agent-create``.

The client owns one pooled :class:`requests.Session`. It retries what is safe to retry *before* a stream starts
(429, 502, 503, 504 and connection failures, with exponential backoff, jitter and ``Retry-After``, bounded in count
and in total time), and once a stream has given a video id it never sends a second create: a stream that drops,
stalls or ends without ``finished`` is recovered by polling ``GET videos/{videoId}`` until the video is final.

This module is part of the API layer and never imports dagster.

>>> from minimax_dagster.simulator import MiniMaxSimulator
>>> with MiniMaxSimulator(generation_seconds=0.2, heartbeat_seconds=0.05) as sim:
...     with MiniMaxClient(sim.token, base_url=sim.base_url) as client:
...         result = client.generate(AgentCreateRequest(template_id="394100000000000003", prompt="A red fox"))
>>> result.video.width > 0 and result.video_id.startswith("user:")
True
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from pydantic import ValidationError
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ProtocolError, ReadTimeoutError
from urllib3.util.retry import Retry

from minimax_dagster.api.errors import (
    BadRequestError,
    ConnectionFailedError,
    GenerationTimeoutError,
    MiniMaxError,
    ModeratedError,
    NotFoundError,
    StreamEndedError,
    StreamStalledError,
    VideoFailedError,
    error_from_response,
)
from minimax_dagster.api.models import (
    Account,
    AgentCreateRequest,
    AgentTemplate,
    FinalVideo,
    RecommendedTemplate,
    SchedulerAvailable,
    StreamEvent,
    TemplateDetail,
    TemplateList,
    UploadedFile,
    VideoStatus,
)
from minimax_dagster.api.sse import SSEDecoder

DEFAULT_BASE_URL = "https://api.useapi.net/v1/minimax"
RETRY_STATUSES = (429, 502, 503, 504)

logger = logging.getLogger("minimax_dagster.api.client")

EventCallback = Callable[[StreamEvent], None]
StatusCallback = Callable[[VideoStatus], None]


class BoundedRetry(Retry):
    """urllib3 ``Retry`` bounded in total time as well as in count, with ``Retry-After`` capped at ``backoff_max``.

    The clock starts at the first retry of a request, so one instance can sit on a session adapter.

    >>> r = BoundedRetry(total=3, total_seconds=0.0, status_forcelist=[429])
    >>> r.new(started=0.0).is_exhausted()
    True
    """

    def __init__(
        self, *args: Any, total_seconds: float | None = None, started: float | None = None, **kw: Any
    ):
        super().__init__(*args, **kw)
        self.total_seconds = total_seconds
        self.started = started

    def new(self, **kw: Any) -> BoundedRetry:
        kw.setdefault("total_seconds", self.total_seconds)
        kw.setdefault("started", self.started if self.started is not None else time.monotonic())
        return super().new(**kw)

    def _remaining(self) -> float | None:
        if self.total_seconds is None or self.started is None:
            return None
        return self.total_seconds - (time.monotonic() - self.started)

    def is_exhausted(self) -> bool:
        remaining = self._remaining()
        return super().is_exhausted() or (remaining is not None and remaining <= 0)

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        if value is None:
            return None
        remaining = self._remaining()
        cap = self.backoff_max if remaining is None else min(self.backoff_max, max(remaining, 0.0))
        return min(value, cap)

    def get_backoff_time(self) -> float:
        value = super().get_backoff_time()
        remaining = self._remaining()
        return value if remaining is None else min(value, max(remaining, 0.0))


@dataclass
class GenerationResult:
    """The outcome of one generation: the finished video plus what the stream said on the way.

    >>> r = GenerationResult(video_id="user:1-minimax:2-video:3", video=FinalVideo(url="https://c/v.mp4"))
    >>> r.account
    '2'
    """

    video_id: str
    video: FinalVideo
    events: list[StreamEvent] = field(default_factory=list)
    recommended_templates: list[RecommendedTemplate] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    recovered: bool = False
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def account(self) -> str | None:
        """The MiniMax account that made the video (parsed from the video id)."""
        from minimax_dagster.api.models import parse_composite_id

        return parse_composite_id(self.video_id).get("minimax")

    @property
    def seconds(self) -> float:
        """Wall-clock seconds from the create (or reattach) to the final state."""
        return max(0.0, self.finished_at - self.started_at)


class MiniMaxClient:
    """Client of the useapi.net MiniMax API.

    Args:
        api_token: the useapi.net API token (never logged, never in a repr or an error).
        base_url: the API root, ``https://api.useapi.net/v1/minimax`` by default.
        connect_timeout: seconds to open a connection.
        read_timeout: seconds a request (or a silent event stream) may wait for bytes. Heartbeats arrive about
            every 10 s, so a stream silent for this long is stalled.
        max_retries: retries before a stream starts (429 / 502 / 503 / 504 / connection failures).
        backoff_factor, backoff_max, backoff_jitter: exponential backoff between those retries.
        retry_total_seconds: the most time spent retrying one request.
        poll_interval: seconds between GET videos/{videoId} polls while recovering or reattaching.
        generation_deadline: wall-clock seconds one generation may take before :class:`GenerationTimeoutError`.
        session: an existing session to use (its adapters are replaced by the retrying ones).

    >>> client = MiniMaxClient("secret-token", base_url="http://127.0.0.1:9/v1/minimax")
    >>> "secret-token" in repr(client)
    False
    >>> client.close()
    """

    def __init__(
        self,
        api_token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 45.0,
        max_retries: int = 5,
        backoff_factor: float = 2.0,
        backoff_max: float = 30.0,
        backoff_jitter: float = 1.0,
        retry_total_seconds: float = 300.0,
        poll_interval: float = 30.0,
        generation_deadline: float = 20 * 60.0,
        session: requests.Session | None = None,
        user_agent: str = "minimax-dagster",
    ) -> None:
        if not api_token:
            raise ValueError("api_token is empty: set USEAPI_TOKEN (your useapi.net API token)")
        self._token = api_token
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.poll_interval = poll_interval
        self.generation_deadline = generation_deadline
        self.retry = BoundedRetry(
            total=max_retries,
            connect=max_retries,
            read=0,
            other=0,
            status=max_retries,
            redirect=0,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "POST"}),
            backoff_factor=backoff_factor,
            backoff_max=backoff_max,
            backoff_jitter=backoff_jitter,
            respect_retry_after_header=True,
            raise_on_status=False,
            total_seconds=retry_total_seconds,
        )
        self.session = session or requests.Session()
        adapter = HTTPAdapter(max_retries=self.retry, pool_connections=4, pool_maxsize=32)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": user_agent, "Accept": "application/json"})
        # The token travels only in this header; requests never puts headers into exception text.
        self.session.headers["Authorization"] = f"Bearer {api_token}"

    def __repr__(self) -> str:
        return f"MiniMaxClient(base_url={self.base_url!r})"

    def __enter__(self) -> MiniMaxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    # ------------------------------------------------------------------------------------------ plumbing

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", (self.connect_timeout, self.read_timeout))
        try:
            response = self.session.request(method, self._url(path), **kwargs)
        except requests.exceptions.RetryError as exc:  # pragma: no cover - raise_on_status=False avoids it
            raise ConnectionFailedError(
                f"{method} {path}: retries exhausted ({type(exc).__name__})"
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise ConnectionFailedError(f"{method} {path}: cannot reach the API ({_short(exc)})") from None
        except requests.exceptions.Timeout as exc:
            raise ConnectionFailedError(f"{method} {path}: timed out ({_short(exc)})") from None
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _error(self, response: requests.Response) -> MiniMaxError:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        retry_after = _retry_after(response)
        response.close()
        return error_from_response(response.status_code, body, retry_after=retry_after)

    def _get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = self._request(
            "GET", path, params={k: v for k, v in (params or {}).items() if v is not None}
        )
        try:
            return response.json()
        except ValueError:
            raise MiniMaxError(
                f"GET {path}: the API answered with non-JSON", status=response.status_code
            ) from None

    # ------------------------------------------------------------------------------------------ endpoints

    def get_video(self, video_id: str) -> VideoStatus:
        """GET videos/{videoId}: the status of one video.

        >>> # client.get_video("user:1234-minimax:1234567-video:7654321").status
        """
        return VideoStatus.model_validate(self._get_json(f"videos/{video_id}"))

    def wait_for_video(
        self,
        video_id: str,
        poll_interval: float | None = None,
        deadline: float | None = None,
        *,
        on_status: StatusCallback | None = None,
    ) -> VideoStatus:
        """Poll GET videos/{videoId} until the video is final, and return its final status.

        ``deadline`` is the most seconds to wait (default: ``generation_deadline``). A video seen before and
        then answered with 404 was removed after moderation: that raises :class:`ModeratedError`. Network
        failures while polling are retried until the deadline.

        >>> # status = client.wait_for_video(video_id, poll_interval=5, deadline=900)
        """
        interval = self.poll_interval if poll_interval is None else poll_interval
        limit = time.monotonic() + (self.generation_deadline if deadline is None else deadline)
        seen = False
        last: VideoStatus | None = None
        while True:
            try:
                status = self.get_video(video_id)
            except NotFoundError as exc:
                if seen:
                    raise ModeratedError(
                        "the video disappeared (404 after it existed): it was most likely moderated and removed",
                        status=404,
                        video_id=video_id,
                    ) from None
                exc.video_id = video_id
                raise
            except (ConnectionFailedError, MiniMaxError) as exc:
                if not exc.retryable or time.monotonic() >= limit:
                    raise
                logger.warning("polling %s failed (%s); trying again", video_id, exc)
                time.sleep(min(interval, max(0.0, limit - time.monotonic())))
                continue
            seen = True
            last = status
            if on_status is not None:
                on_status(status)
            if status.is_final:
                return status
            if time.monotonic() >= limit:
                raise GenerationTimeoutError(
                    f"not final after the deadline (last status {status.status}, {status.percent or 0:.0f}%)",
                    video_id=video_id,
                    body=last.to_wire(),
                )
            time.sleep(min(interval, max(0.0, limit - time.monotonic())))

    def list_templates(
        self, limit: int = 30, last_id: str | None = None, *, account: str | None = None
    ) -> TemplateList:
        """GET videos/agent-templates: one page of templates.

        >>> # page = client.list_templates(limit=10); [t.template_id for t in page.video_list]
        """
        data = self._get_json(
            "videos/agent-templates", {"limit": limit, "lastId": last_id, "account": account}
        )
        return TemplateList.model_validate(data)

    def iter_templates(self, page_size: int = 30, *, account: str | None = None) -> Iterator[AgentTemplate]:
        """Every template, page after page.

        >>> # names = [t.name for t in client.iter_templates()]
        """
        last_id: str | None = None
        while True:
            page = self.list_templates(page_size, last_id, account=account)
            yield from page.video_list
            more = page.has_next if page.has_next is not None else len(page.video_list) >= page_size
            if not more or not page.video_list:
                return
            last_id = page.video_list[-1].id

    def get_template(self, template_id: str, *, account: str | None = None) -> TemplateDetail:
        """GET videos/agent-templates?templateId=...: what one template needs.

        >>> # client.get_template("393769180141805569").requires_image
        """
        data = self._get_json("videos/agent-templates", {"templateId": template_id, "account": account})
        return TemplateDetail.model_validate(data)

    def upload_file(
        self,
        path_or_bytes: str | Path | bytes,
        content_type: str | None = None,
        *,
        account: str | None = None,
    ) -> UploadedFile:
        """POST files: upload a PNG or JPEG image for templates that need one; returns its fileID and ossPath.

        The content type is detected from the bytes when not given (WebP is sent as image/jpeg, as the API asks).

        >>> # uploaded = client.upload_file("face.png"); uploaded.file_id
        """
        data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
        kind = content_type or sniff_image_type(data)
        if kind is None:
            raise BadRequestError(
                "upload_file: the data is not a PNG, JPEG or WebP image; pass an image file"
            )
        if kind == "image/webp":
            kind = "image/jpeg"
        response = self._request(
            "POST",
            "files",
            params={"account": account} if account else None,
            data=data,
            headers={"Content-Type": kind},
        )
        return UploadedFile.model_validate(response.json())

    def get_accounts(self) -> dict[str, Account]:
        """GET accounts: the configured MiniMax accounts with their maxJobs.

        >>> # {name: a.max_jobs for name, a in client.get_accounts().items()}
        """
        data = self._get_json("accounts")
        return {str(k): Account.model_validate(v) for k, v in (data or {}).items()}

    def get_scheduler(self) -> SchedulerAvailable:
        """GET scheduler/available: jobs executing now and the free capacity of each account.

        >>> # sum(a.available or 0 for a in client.get_scheduler().available)
        """
        return SchedulerAvailable.model_validate(self._get_json("scheduler/available"))

    # ------------------------------------------------------------------------------------------ agent-create

    def agent_create(
        self,
        request: AgentCreateRequest | dict[str, Any],
        *,
        deadline: float | None = None,
    ) -> Iterator[StreamEvent]:
        """POST videos/agent-create and yield each stream event as it arrives.

        Once an event has given the video id, no second POST is ever made: if the stream drops, stalls (silent
        for ``read_timeout``) or ends without a final video, the client polls GET videos/{videoId} until the
        video is final, then yields a synthetic final-video event and a ``finished`` event (both with
        ``recovered=True`` in ``model_extra``). A failed or moderated video raises :class:`VideoFailedError` or
        :class:`ModeratedError`; no final state within ``deadline`` seconds raises
        :class:`GenerationTimeoutError`. A malformed event is logged and skipped.

        >>> # for event in client.agent_create({"templateId": "1", "prompt": "a fox"}): print(event.status)
        """
        if not isinstance(request, AgentCreateRequest):
            request = AgentCreateRequest.model_validate(request)
        limit = time.monotonic() + (self.generation_deadline if deadline is None else deadline)
        response = self._request(
            "POST",
            "videos/agent-create",
            json=request.to_payload(),
            headers={"Accept": "text/event-stream", "Accept-Encoding": "identity"},
            stream=True,
        )
        video_id: str | None = None
        final_seen = False
        failure: MiniMaxError | None = None
        try:
            for event in self._read_stream(response, limit):
                if event.video_id and video_id is None:
                    video_id = event.video_id
                if event.final_video is not None:
                    final_seen = True
                yield event
                if event.status == "finished":
                    break
        except (StreamStalledError, StreamEndedError) as exc:
            failure = exc
        except GenerationTimeoutError as exc:
            exc.video_id = video_id
            raise
        finally:
            response.close()
        if final_seen and failure is None:
            return
        if video_id is None and request.reply_ref:
            video_id = self.find_executing_job(request.reply_ref)
        if video_id is None:
            if failure is None:
                failure = StreamEndedError("the stream ended before it gave a video id")
            failure.message += (
                "; no video id was received, so the job may or may not exist: check GET scheduler/available"
            )
            raise failure
        if failure is not None:
            logger.warning(
                "stream for %s broke (%s); recovering by polling, no new create", video_id, failure
            )
        remaining = max(0.0, limit - time.monotonic())
        yield from self._events_from_status(self._final_status(video_id, remaining))

    def find_executing_job(self, reply_ref: str) -> str | None:
        """The video id of an executing job created with ``reply_ref`` (GET scheduler/available), or None.

        This finds a job whose create answer was lost (a stream cut before its first event, a gateway error).

        >>> # client.find_executing_job("v1-0123...")
        """
        try:
            scheduler = self.get_scheduler()
        except MiniMaxError as exc:
            logger.warning("cannot look up executing jobs (%s)", exc)
            return None
        for job in scheduler.executing:
            if job.reply_ref == reply_ref and job.video_id:
                logger.warning("found the job %s by its replyRef after the stream broke", job.video_id)
                return job.video_id
        return None

    def _read_stream(self, response: requests.Response, limit: float) -> Iterator[StreamEvent]:
        raw = response.raw
        raw.decode_content = True
        decoder = SSEDecoder()
        while True:
            if time.monotonic() >= limit:
                raise GenerationTimeoutError("the generation deadline passed while streaming")
            try:
                chunk = raw.read1(65536)
            except ReadTimeoutError:
                raise StreamStalledError(
                    f"no bytes for {self.read_timeout:.0f} s (heartbeats should come every ~10 s)"
                ) from None
            except (ProtocolError, OSError, requests.exceptions.RequestException) as exc:
                raise StreamEndedError(f"the stream broke: {_short(exc)}") from None
            if not chunk:
                decoder.close()
                raise StreamEndedError("the stream ended without a finished event")
            for sse in decoder.feed(chunk):
                event = _parse_event(sse.data)
                if event is not None:
                    yield event

    def _final_status(self, video_id: str, deadline: float) -> VideoStatus:
        status = self.wait_for_video(video_id, deadline=deadline)
        raise_for_video_status(status, video_id)
        return status

    @staticmethod
    def _events_from_status(status: VideoStatus) -> list[StreamEvent]:
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

    def generate(
        self,
        request: AgentCreateRequest | dict[str, Any],
        *,
        on_event: EventCallback | None = None,
        on_video_id: Callable[[str], None] | None = None,
        deadline: float | None = None,
    ) -> GenerationResult:
        """Create one video and wait for it: consumes :meth:`agent_create` and returns a :class:`GenerationResult`.

        ``on_video_id`` is called as soon as the stream names the video, before anything else happens: record
        it there (crash-resume). ``on_event`` sees every event.

        >>> # result = client.generate({"templateId": "1", "prompt": "a fox"}); result.video.best_url
        """
        started = time.time()
        events: list[StreamEvent] = []
        video_id: str | None = None
        video: FinalVideo | None = None
        rec: list[RecommendedTemplate] = []
        images: list[str] = []
        recovered = False
        for event in self.agent_create(request, deadline=deadline):
            events.append(event)
            if event.video_id and video_id is None:
                video_id = event.video_id
                if on_video_id is not None:
                    on_video_id(video_id)
            if on_event is not None:
                on_event(event)
            video = event.final_video or video
            rec.extend(event.rec_template_list or [])
            images.extend(img.url for img in event.images)
            recovered = recovered or bool((event.model_extra or {}).get("recovered"))
        if video is None or video_id is None:
            raise StreamEndedError("the stream finished without a video", video_id=video_id)
        return GenerationResult(
            video_id=video_id,
            video=video,
            events=events,
            recommended_templates=rec,
            images=images,
            recovered=recovered,
            started_at=started,
            finished_at=time.time(),
        )

    def reattach(
        self,
        video_id: str,
        *,
        deadline: float | None = None,
        on_status: StatusCallback | None = None,
    ) -> GenerationResult:
        """Wait for a video created earlier (for example by a run that crashed) without creating a new one.

        >>> # result = client.reattach("user:1234-minimax:1234567-video:7654321")
        """
        started = time.time()
        status = self.wait_for_video(video_id, deadline=deadline, on_status=on_status)
        raise_for_video_status(status, video_id)
        events = self._events_from_status(status)
        video = events[0].final_video
        assert video is not None
        return GenerationResult(
            video_id=video_id,
            video=video,
            events=events,
            recovered=True,
            started_at=started,
            finished_at=time.time(),
        )


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


def sniff_image_type(data: bytes) -> str | None:
    """The image MIME type from the first bytes, or None.

    >>> sniff_image_type(b"\\x89PNG\\r\\n\\x1a\\n....")
    'image/png'
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _parse_event(data: str) -> StreamEvent | None:
    if not data.strip():
        return None
    try:
        return StreamEvent.model_validate(json.loads(data))
    except (ValueError, ValidationError) as exc:
        logger.warning("skipping a malformed stream event (%s): %.200s", type(exc).__name__, data)
        return None


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _short(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:300]}"
