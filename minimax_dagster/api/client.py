"""``MiniMaxClient``: a typed client of the useapi.net MiniMax API, centred on ``POST videos/agent-create``.

The client owns one pooled :class:`requests.Session`. GET requests are retried on 429, 502, 503, 504 and
connection failures (exponential backoff, jitter, ``Retry-After``, bounded in count and in total time); a create
is sent again by the transport only after a 429, which makes no job (:mod:`minimax_dagster.api.retry`). A create
answered 502/503/504, or whose answer was lost, may have made a paid job: the client then looks for it before
anything else (:mod:`minimax_dagster.api.reconcile`) and reattaches to it, or sends the create again only when it
is surely absent. Once a stream has given a video id, no second create is ever sent: a stream that drops, stalls
or ends without ``finished`` is recovered by polling ``GET videos/{videoId}`` until the video is final.

This module is part of the API layer and never imports dagster.

>>> from minimax_dagster.simulator import MiniMaxSimulator
>>> with MiniMaxSimulator(generation_seconds=0.2, heartbeat_seconds=0.05) as sim:
...     with MiniMaxClient(sim.token, base_url=sim.base_url) as client:
...         result = client.generate(AgentCreateRequest(template_id="394100000000000003", prompt="A red fox"))
>>> result.video.width > 0 and result.video_id.startswith("user:")
True
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from minimax_dagster.api import reconcile as reconciliation
from minimax_dagster.api.create_stream import (
    created_event,
    events_from_status,
    raise_for_video_status,
    read_stream,
)
from minimax_dagster.api.endpoints import MAYBE_DONE_STATUSES, ApiEndpoints, sniff_image_type
from minimax_dagster.api.errors import (
    AnswerLostError,
    CreateOutcomeUnknownError,
    GenerationTimeoutError,
    MiniMaxError,
    ModeratedError,
    NotFoundError,
    ServerError,
    StreamEndedError,
    StreamError,
    StreamStalledError,
    StreamTooLargeError,
)
from minimax_dagster.api.limits import ReadLimits
from minimax_dagster.api.models import (
    AgentCreateRequest,
    FinalVideo,
    RecommendedTemplate,
    StreamEvent,
    VideoStatus,
)
from minimax_dagster.api.reconcile import ReconcilePolicy
from minimax_dagster.api.result import GenerationResult
from minimax_dagster.api.retry import RETRY_STATUSES, BoundedRetry, backoff_seconds, transport_retry

__all__ = [
    "DEFAULT_BASE_URL",
    "RETRY_STATUSES",
    "BoundedRetry",
    "GenerationResult",
    "MiniMaxClient",
    "ReadLimits",
    "raise_for_video_status",
    "sniff_image_type",
]

DEFAULT_BASE_URL = "https://api.useapi.net/v1/minimax"

logger = logging.getLogger("minimax_dagster.api.client")

EventCallback = Callable[[StreamEvent], None]
StatusCallback = Callable[[VideoStatus], None]


@dataclass
class _CreateTrace:
    posts: int = 0
    reconciled: str | None = None


class MiniMaxClient(ApiEndpoints):
    """Client of the useapi.net MiniMax API.

    Args:
        api_token: the useapi.net API token (never logged, never in a repr or an error).
        base_url: the API root, ``https://api.useapi.net/v1/minimax`` by default.
        connect_timeout: seconds to open a connection.
        read_timeout: seconds a request (or a silent event stream) may wait for bytes. Heartbeats arrive about
            every 10 s, so a stream silent for this long is stalled.
        max_retries: retries of a request before its answer (429 / 502 / 503 / 504 / connection failures for
            GET; 429 / connection failures for POST); also the most times a create is sent again after
            reconciliation proved that the failed one made no job.
        backoff_factor, backoff_max, backoff_jitter: exponential backoff between those retries.
        retry_total_seconds: the most time spent retrying one request.
        poll_interval: seconds between GET videos/{videoId} polls while recovering or reattaching.
        generation_deadline: wall-clock seconds one generation may take before :class:`GenerationTimeoutError`.
        session: an existing session to use (its adapters are replaced by the retrying ones).
        accounts: the accounts a create naming no account may go to; by default the video accounts GET accounts
            lists (``supportVideo`` and no ``error``). Only reconciliation uses it.
        reconcile: how a failed create is looked for (:class:`ReconcilePolicy`: settle time, pages, baseline).
        limits: how much of one answer is read (:class:`ReadLimits`: the longest stream line and event, error
            and JSON bodies). A stream cut by a cap is recovered like a dropped one (polling, or reconciliation
            before the video id); never by a second create while the first may exist.

    >>> client = MiniMaxClient("secret-token", base_url="http://127.0.0.1:9/v1/minimax")
    >>> ("secret-token" in repr(client), client.reconcile_policy.settle_seconds)
    (False, 20.0)
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
        accounts: Sequence[str] | None = None,
        reconcile: ReconcilePolicy | None = None,
        limits: ReadLimits | None = None,
    ) -> None:
        self.retry = transport_retry(
            max_retries,
            backoff_factor=backoff_factor,
            backoff_max=backoff_max,
            backoff_jitter=backoff_jitter,
            total_seconds=retry_total_seconds,
        )
        super().__init__(
            api_token,
            base_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retry=self.retry,
            session=session,
            user_agent=user_agent,
            limits=limits,
        )
        self.poll_interval = poll_interval
        self.generation_deadline = generation_deadline
        self.max_retries = max_retries
        self.backoff_factor = backoff_factor
        self.backoff_max = backoff_max
        self.retry_total_seconds = retry_total_seconds
        self.accounts = tuple(accounts) if accounts else None
        self.reconcile_policy = reconcile or ReconcilePolicy()
        #: Baselines shared with the other clients of a run (set by whoever makes them, e.g. the producer).
        self.shared_baselines: reconciliation.SharedBaselines | None = None
        # Video ids this client saw in create streams: reconciliation never takes one of them for another create.
        self._streamed: set[str] = set()
        self._streamed_lock = threading.Lock()

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

        >>> from minimax_dagster.simulator import MiniMaxSimulator
        >>> with MiniMaxSimulator(generation_seconds=0.1) as sim, MiniMaxClient(sim.token, base_url=sim.base_url) as c:
        ...     made = c.generate({"templateId": "394100000000000003", "prompt": "A red fox"})
        ...     c.wait_for_video(made.video_id, poll_interval=0.05, deadline=10).status_label
        'completed'
        """
        interval = self.poll_interval if poll_interval is None else poll_interval
        limit = time.monotonic() + (self.generation_deadline if deadline is None else deadline)
        seen = False
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
            except MiniMaxError as exc:
                if not exc.retryable or time.monotonic() >= limit:
                    raise
                logger.warning("polling %s failed (%s); trying again", video_id, exc)
                time.sleep(min(interval, max(0.0, limit - time.monotonic())))
                continue
            seen = True
            if on_status is not None:
                on_status(status)
            if status.is_final:
                return status
            if time.monotonic() >= limit:
                raise GenerationTimeoutError(
                    f"not final after the deadline (last status {status.status}, {status.percent or 0:.0f}%)",
                    video_id=video_id,
                    body=status.to_wire(),
                )
            time.sleep(min(interval, max(0.0, limit - time.monotonic())))

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
        ``recovered=True`` in ``model_extra``). A create answered 502/503/504 or lost before it gave a video id
        is reconciled (:mod:`minimax_dagster.api.reconcile`): a job found is announced by a synthetic
        ``created`` event (``reconciled`` in ``model_extra``) and followed to its end; otherwise the create is
        sent again only when the job is surely absent, and :class:`CreateOutcomeUnknownError` is raised when
        that cannot be shown. A failed or moderated video raises :class:`VideoFailedError` or
        :class:`ModeratedError`; no final state within ``deadline`` seconds raises
        :class:`GenerationTimeoutError`. A malformed event is logged and skipped.

        >>> client = MiniMaxClient("t", base_url="http://127.0.0.1:9/v1/minimax")
        >>> events = client.agent_create({"templateId": "1", "fileID": "user:1-minimax:2-file:3"})
        >>> next(events)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        pydantic_core._pydantic_core.ValidationError: 1 validation error for AgentCreateRequest
        ...
        """
        yield from self._create(request, deadline, _CreateTrace())

    def _create(
        self, request: AgentCreateRequest | dict[str, Any], deadline: float | None, trace: _CreateTrace
    ) -> Iterator[StreamEvent]:
        if not isinstance(request, AgentCreateRequest):
            request = AgentCreateRequest.model_validate(request)
        limit = time.monotonic() + (self.generation_deadline if deadline is None else deadline)
        policy = self.reconcile_policy
        attempt = reconciliation.prepare(self, request, policy, self.shared_baselines)
        first_post = time.monotonic()
        while True:
            attempt.posts += 1
            trace.posts = attempt.posts
            failure = yield from self._post_and_stream(attempt.wire, limit)
            if failure is None:
                return
            with self._streamed_lock:
                exclude = frozenset(self._streamed)
            found = reconciliation.reconcile(self, attempt, policy, exclude=exclude, deadline=limit)
            what = f"the create (POST {attempt.posts}) failed ({failure}) and {found.describe()}"
            if found.video_id is not None and found.found_by is not None:
                logger.warning("%s: reattaching, no new create", what)
                trace.reconciled = found.found_by
                yield created_event(found.video_id, found_by=found.found_by)
                yield from events_from_status(
                    self._final_status(found.video_id, max(0.0, limit - time.monotonic()))
                )
                return
            if not found.absent:
                raise CreateOutcomeUnknownError(
                    f"{what}; it is not sent again, since that could pay twice: look for the video in GET "
                    f"videos/?account=... and reattach to it, or create again once you know there is none",
                    status=failure.status,
                )
            wait = backoff_seconds(attempt.posts, factor=self.backoff_factor, maximum=self.backoff_max)
            resume = time.monotonic() + wait
            if (
                attempt.posts > self.max_retries
                or resume - first_post > self.retry_total_seconds
                or resume >= limit
            ):
                failure.message += f"; no job was made (none on account(s) {', '.join(attempt.accounts)})"
                raise failure
            logger.warning("%s: sending it again in %.1f s", what, wait)
            time.sleep(wait)
            attempt = reconciliation.after_absent(attempt, found)

    def _post_and_stream(
        self, wire: AgentCreateRequest, limit: float
    ) -> Generator[StreamEvent, None, MiniMaxError | None]:
        """One POST and its stream. Returns None when the video is final, or the failure that left no video id."""
        try:
            response = self._request(
                "POST",
                "videos/agent-create",
                json=wire.to_payload(),
                headers={"Accept": "text/event-stream", "Accept-Encoding": "identity"},
                stream=True,
            )
        except ServerError as exc:
            if exc.status in MAYBE_DONE_STATUSES:
                return exc
            raise
        except AnswerLostError as exc:
            return exc
        video_id: str | None = None
        final_seen = False
        failure: StreamError | None = None
        try:
            stream = read_stream(
                response.raw, limit=limit, read_timeout=self.read_timeout, limits=self.limits
            )
            for event in stream:
                if event.video_id and video_id is None:
                    video_id = event.video_id
                    with self._streamed_lock:
                        self._streamed.add(video_id)
                if event.final_video is not None:
                    final_seen = True
                yield event
                if event.status == "finished":
                    break
        except (StreamStalledError, StreamEndedError, StreamTooLargeError) as exc:
            failure = exc
        except GenerationTimeoutError as exc:
            exc.video_id = video_id
            raise
        finally:
            response.close()
        if final_seen and failure is None:
            return None
        if video_id is None:
            return failure or StreamEndedError("the stream ended before it gave a video id")
        if failure is not None:
            logger.warning(
                "stream for %s broke (%s); recovering by polling, no new create", video_id, failure
            )
        yield from events_from_status(self._final_status(video_id, max(0.0, limit - time.monotonic())))
        return None

    def _final_status(self, video_id: str, deadline: float) -> VideoStatus:
        status = self.wait_for_video(video_id, deadline=deadline)
        raise_for_video_status(status, video_id)
        return status

    def generate(
        self,
        request: AgentCreateRequest | dict[str, Any],
        *,
        on_event: EventCallback | None = None,
        on_video_id: Callable[[str], None] | None = None,
        deadline: float | None = None,
    ) -> GenerationResult:
        """Create one video and wait for it: consumes :meth:`agent_create` and returns a :class:`GenerationResult`.

        ``on_video_id`` is called as soon as the stream (or reconciliation) names the video, before anything
        else happens: record it there (crash-resume). ``on_event`` sees every event.

        >>> from minimax_dagster.simulator import MiniMaxSimulator
        >>> with MiniMaxSimulator(generation_seconds=0.1) as sim, MiniMaxClient(sim.token, base_url=sim.base_url) as c:
        ...     ids = []
        ...     result = c.generate({"templateId": "394100000000000003", "prompt": "A fox"}, on_video_id=ids.append)
        >>> (ids == [result.video_id], result.posts, result.recovered)
        (True, 1, False)
        """
        started = time.time()
        trace = _CreateTrace()
        events: list[StreamEvent] = []
        video_id: str | None = None
        video: FinalVideo | None = None
        rec: list[RecommendedTemplate] = []
        images: list[str] = []
        recovered = False
        for event in self._create(request, deadline, trace):
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
            posts=trace.posts,
            reconciled=trace.reconciled,
        )

    def reattach(
        self,
        video_id: str,
        *,
        deadline: float | None = None,
        on_status: StatusCallback | None = None,
    ) -> GenerationResult:
        """Wait for a video created earlier (for example by a run that crashed) without creating a new one.

        >>> from minimax_dagster.simulator import MiniMaxSimulator
        >>> with MiniMaxSimulator(generation_seconds=0.1) as sim, MiniMaxClient(sim.token, base_url=sim.base_url) as c:
        ...     made = c.generate({"templateId": "394100000000000003", "prompt": "A fox"})
        ...     again = c.reattach(made.video_id)
        >>> (again.video_id == made.video_id, again.recovered, again.posts)
        (True, True, 0)
        """
        started = time.time()
        status = self.wait_for_video(video_id, deadline=deadline, on_status=on_status)
        raise_for_video_status(status, video_id)
        events = events_from_status(status)
        video = events[0].final_video
        assert video is not None
        return GenerationResult(
            video_id=video_id,
            video=video,
            events=events,
            recovered=True,
            started_at=started,
            finished_at=time.time(),
            posts=0,
        )
