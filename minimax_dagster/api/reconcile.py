"""Reconciliation: before a create is ever sent a second time, look for the job the first one may have made.

Why (each point is what the docs say, or what follows from it):

* doc (POST accounts/{account}): "the MiniMax website is too busy and responds with 502 or 504 while still
  accepting jobs into the internal queue". A create answered 502/503/504 may therefore have made, and billed, a
  job. useapi gave no video id for it and does not count it as executing, so it is found only in the account's
  own list, GET videos/?account=... ("running ones and those made in the web app included", doc), as a video
  newer than the attempt whose ``desc`` is the prompt (doc: ``desc`` = the prompt).
* A create whose answer was lost (a reset, a read timeout, a stream cut before its first event) may have made a
  job that useapi does track: GET scheduler/available lists it with the create's ``replyRef`` (doc).
* There is no idempotency key (2nd): a second POST is a second paid job. So the client POSTs again only when the
  job is *surely absent*: every account it may have gone to was read back to what was there before the attempt,
  and nothing matched. When that cannot be shown, it raises :class:`CreateOutcomeUnknownError` instead.
* When the request names no account, useapi picks one at random (doc), so every video account is a candidate.

How "newer than the attempt" is decided: GET videos/ items carry no creation time (doc), so before the first POST
the client reads the head of each candidate account's list (the *baseline*); after a failure, the items listed
above the first baseline item are the new ones. GUESS: the list is newest first (its ``lastVideoId`` paging and
the web app suggest it; the page does not say).

The attempt's own replyRef: when the caller gave no ``replyRef``, the create carries one of the client's own,
``mmd-<16 hex digits>`` (one per logical create, shared by its POSTs), so a job in GET scheduler/available is
recognised without doubt. When the caller gave one, it is sent byte for byte unchanged, so it reaches their
``replyUrl`` callback intact; the client keeps the attempt's identity beside it (start time, prompt, fileID,
accounts) and accepts a scheduler job carrying that replyRef only if it started after the attempt and GET
videos/{videoId} shows the same prompt (a caller may reuse one replyRef for many requests).

>>> request = AgentCreateRequest(template_id="1", prompt="A red fox")
>>> matches_request(VideoStatus(desc="A red fox "), request), matches_request(VideoStatus(desc="A cat"), request)
(True, False)
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from minimax_dagster.api.errors import MiniMaxError
from minimax_dagster.api.models import (
    AgentCreateRequest,
    ExecutingJob,
    SchedulerAvailable,
    VideoPage,
    VideoStatus,
)

logger = logging.getLogger("minimax_dagster.api.reconcile")

#: The prefix of the replyRef the client gives a create whose caller gave none.
OWN_REPLY_REF_PREFIX = "mmd-"


@dataclass(frozen=True)
class ReconcilePolicy:
    """How the client looks for a job a failed create may have made.

    Args:
        settle_seconds: wait this long after the failure before looking (GUESS: how long MiniMax takes to list a
            job it queued during a 502/504; the docs give no figure).
        page_size: items per GET videos/ page (doc: the default is 30).
        max_pages: pages read per account before giving up on reaching the baseline (then: unknown).
        clock_skew_seconds: a scheduler job counts as the attempt's if it started no earlier than this before
            the attempt (useapi's clock is not ours).
        baseline: read each candidate account's list before the first POST. Without it an older video with the
            same prompt cannot be told from the attempt's, so a failure then ends in "unknown", not in a re-POST.

    >>> ReconcilePolicy(settle_seconds=0).page_size
    30
    """

    settle_seconds: float = 20.0
    page_size: int = 30
    max_pages: int = 3
    clock_skew_seconds: float = 120.0
    baseline: bool = True


@runtime_checkable
class ReconcileApi(Protocol):
    """The calls reconciliation makes (implemented by :class:`~minimax_dagster.api.client.MiniMaxClient`).

    >>> from minimax_dagster.api import MiniMaxClient
    >>> isinstance(MiniMaxClient("t", base_url="http://127.0.0.1:9/v1/minimax"), ReconcileApi)
    True
    """

    def list_videos(
        self, account: str | None = None, limit: int = 30, last_video_id: str | None = None
    ) -> VideoPage: ...

    def get_scheduler(self) -> SchedulerAvailable: ...

    def get_video(self, video_id: str) -> VideoStatus: ...

    def video_account_names(self) -> list[str]: ...


@dataclass
class CreateAttempt:
    """One logical create: the caller's request, what is POSTed, where the job may go, what was there before.

    >>> attempt = CreateAttempt.begin(AgentCreateRequest(template_id="1", prompt="p"), accounts=("7",))
    >>> (attempt.wire.reply_ref == attempt.own_reply_ref, attempt.request.reply_ref, attempt.accounts)
    (True, None, ('7',))
    """

    request: AgentCreateRequest
    wire: AgentCreateRequest
    own_reply_ref: str | None
    accounts: tuple[str, ...]
    started_at: float
    baseline: dict[str, frozenset[str] | None] = field(default_factory=dict)
    posts: int = 0
    problems: list[str] = field(default_factory=list)

    @classmethod
    def begin(cls, request: AgentCreateRequest, *, accounts: tuple[str, ...]) -> CreateAttempt:
        """A new attempt; gives the request the client's own replyRef when the caller gave none."""
        own = None if request.reply_ref else f"{OWN_REPLY_REF_PREFIX}{secrets.token_hex(8)}"
        wire = request if own is None else request.model_copy(update={"reply_ref": own})
        return cls(request=request, wire=wire, own_reply_ref=own, accounts=accounts, started_at=time.time())


@dataclass(frozen=True)
class Reconciliation:
    """What a look found: the job (``video_id``), proof that there is none (``absent``), or neither (``problems``).

    >>> Reconciliation(absent=True).describe()
    'no job found'
    """

    video_id: str | None = None
    found_by: str | None = None
    absent: bool = False
    problems: tuple[str, ...] = ()
    seen: dict[str, frozenset[str]] = field(default_factory=dict)

    def describe(self) -> str:
        """A short phrase for log lines and error messages."""
        if self.video_id:
            return f"found job {self.video_id} in {self.found_by}"
        if self.absent:
            return "no job found"
        return "cannot tell whether a job exists: " + "; ".join(self.problems)


class SharedBaselines:
    """Baselines (the head of an account's GET videos/ list) read by one create and lent to the next ones, for
    ``max_age`` seconds: the clients of one run (one per worker thread) share one, so a wave of creates on an
    account reads the list once, not once per create (each read is a request to useapi in front of the POST).

    Why an older baseline is as safe: a baseline only has to predate the attempt's first POST. Every video made
    after it, by this attempt or any other, is listed above it, so the job a failed create made is still found;
    the others are told apart by their prompt (and replyRef), as with a fresh baseline. What an older baseline
    costs is more new videos to read through after a failure (at most ``max_pages`` pages, else "unknown", and
    no second POST): ``max_age`` keeps that to what an account makes in a few seconds.

    >>> baselines = SharedBaselines(max_age=5.0)
    >>> baselines.get("55") is None
    True
    >>> baselines.put("55", frozenset({"v1"}))
    >>> baselines.get("55")
    frozenset({'v1'})
    >>> SharedBaselines(max_age=0.0).get("55") is None
    True
    """

    def __init__(self, max_age: float = 5.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._read: dict[str, tuple[float, frozenset[str]]] = {}

    def get(self, account: str) -> frozenset[str] | None:
        """The account's baseline if one was read within ``max_age`` seconds, else ``None``."""
        with self._lock:
            found = self._read.get(account)
        if found is None or self._clock() - found[0] > self.max_age:
            return None
        return found[1]

    def put(self, account: str, keys: frozenset[str]) -> None:
        """A baseline just read (its request already answered, so it predates any POST sent after this)."""
        with self._lock:
            self._read[account] = (self._clock(), keys)


def prepare(
    api: ReconcileApi,
    request: AgentCreateRequest,
    policy: ReconcilePolicy,
    shared: SharedBaselines | None = None,
) -> CreateAttempt:
    """Start a logical create: choose the candidate accounts and read their baselines (before the first POST),
    or take them from ``shared`` where another create read them a moment ago.

    Failures here never stop the create: they are recorded, and only matter if the create fails.

    >>> from minimax_dagster.api import MiniMaxClient
    >>> offline = MiniMaxClient("t", base_url="http://127.0.0.1:9/v1/minimax", max_retries=0)
    >>> attempt = prepare(offline, AgentCreateRequest(template_id="1", prompt="p", account="55"), ReconcilePolicy())
    >>> (attempt.accounts, attempt.baseline, attempt.own_reply_ref.startswith("mmd-"))
    (('55',), {'55': None}, True)
    """
    problems: list[str] = []
    if request.account:
        accounts: tuple[str, ...] = (request.account,)
    else:
        try:
            accounts = tuple(api.video_account_names())
        except MiniMaxError as exc:
            accounts = ()
            problems.append(f"cannot list the accounts ({exc})")
    attempt = CreateAttempt.begin(request, accounts=accounts)
    attempt.problems.extend(problems)
    for account in accounts if policy.baseline else ():
        lent = shared.get(account) if shared is not None else None
        if lent is not None:
            attempt.baseline[account] = lent
            continue
        try:
            page = api.list_videos(account, policy.page_size)
        except MiniMaxError as exc:
            logger.debug("no baseline for account %s (%s)", account, exc)
            attempt.baseline[account] = None
            continue
        keys = frozenset(_keys(page))
        attempt.baseline[account] = keys
        if shared is not None:
            shared.put(account, keys)
    return attempt


def after_absent(attempt: CreateAttempt, found: Reconciliation) -> CreateAttempt:
    """The attempt for the next POST: what the last look saw joins the baseline, so it is not "new" next time.

    >>> a = CreateAttempt.begin(AgentCreateRequest(template_id="1", prompt="p"), accounts=("7",))
    >>> after_absent(a, Reconciliation(absent=True, seen={"7": frozenset({"v1"})})).baseline
    {'7': frozenset({'v1'})}
    """
    baseline = dict(attempt.baseline)
    for account, ids in found.seen.items():
        baseline[account] = (baseline.get(account) or frozenset()) | ids
    return replace(attempt, baseline=baseline)


def reconcile(
    api: ReconcileApi,
    attempt: CreateAttempt,
    policy: ReconcilePolicy,
    *,
    exclude: Collection[str] = (),
    deadline: float | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Reconciliation:
    """Wait ``settle_seconds`` (not past ``deadline``, a ``time.monotonic()`` value), then look for the job.

    ``exclude`` are video ids known to belong to other creates (seen in their streams).

    >>> from minimax_dagster.api import MiniMaxClient
    >>> offline = MiniMaxClient("t", base_url="http://127.0.0.1:9/v1/minimax", max_retries=0)
    >>> policy = ReconcilePolicy(settle_seconds=0)
    >>> attempt = prepare(offline, AgentCreateRequest(template_id="1", prompt="p", account="55"), policy)
    >>> found = reconcile(offline, attempt, policy)
    >>> (found.video_id, found.absent, found.problems[0].startswith("cannot read the videos of account 55"))
    (None, False, True)
    """
    wait = policy.settle_seconds
    if deadline is not None:
        wait = min(wait, max(0.0, deadline - time.monotonic()))
    if wait > 0:
        (sleep or time.sleep)(wait)
    problems = list(attempt.problems)
    if not attempt.accounts:
        problems.append("no candidate account is known")
    others, tracked = _scheduler_jobs(api, attempt, policy)
    found = _confirm_tracked(api, attempt, tracked, problems)
    if found is not None:
        return Reconciliation(video_id=found, found_by="GET scheduler/available")
    excluded = set(exclude) | others
    seen: dict[str, frozenset[str]] = {}
    candidates: list[VideoStatus] = []
    for account in attempt.accounts:
        look = _look_at_account(api, account, attempt.baseline.get(account), policy)
        seen[account] = look.ids
        if look.problem:
            problems.append(look.problem)
        for video in look.new:
            if video.video_id in excluded:
                continue
            match = matches_request(video, attempt.request)
            if match is False:
                continue
            if match is None:
                problems.append(
                    f"account {account} has a new video {video.video_id} and the request has neither "
                    "prompt nor fileID to compare it with"
                )
            elif not look.proven_new:
                problems.append(
                    f"account {account} lists {video.video_id} with this prompt, and was not listed before "
                    "the create, so it cannot be told whether the create made it"
                )
            elif not video.video_id:
                problems.append(f"account {account} lists a matching video without a videoId")
            else:
                candidates.append(video)
    if candidates:
        chosen = _pick(candidates)
        if len(candidates) > 1:
            logger.warning(
                "%d new videos match the create (%s); reattaching to %s",
                len(candidates),
                ", ".join(str(v.video_id) for v in candidates),
                chosen,
            )
        return Reconciliation(video_id=chosen, found_by="GET videos/", seen=seen)
    if problems:
        return Reconciliation(problems=tuple(problems), seen=seen)
    return Reconciliation(absent=True, seen=seen)


def matches_request(video: VideoStatus, request: AgentCreateRequest) -> bool | None:
    """Whether a video is the one ``request`` would make: the same prompt (``desc``) and, when the request sent a
    fileID and the video lists its inputs, that file among them. None when nothing can be compared (the request
    has neither prompt nor fileID, or the video shows neither ``desc`` nor ``originFiles``).

    >>> req = AgentCreateRequest(template_id="1", file_id="user:1-minimax:2-file:3", oss_path="o")
    >>> matches_request(VideoStatus.model_validate({"originFiles": [{"id": "user:1-minimax:2-file:3"}]}), req)
    True
    >>> matches_request(VideoStatus(desc="x"), AgentCreateRequest(template_id="1")) is None
    True
    """
    files = video.origin_file_ids
    compared = False
    if request.prompt and video.desc is not None:
        if video.desc.strip() != request.prompt.strip():
            return False
        compared = True
    if request.file_id and files:
        if request.file_id not in files:
            return False
        compared = True
    return True if compared else None


def _keys(page: VideoPage) -> list[str]:
    return [key for v in page.videos for key in (v.video_id, v.id) if key]


@dataclass(frozen=True)
class _AccountLook:
    new: list[VideoStatus]  # listed above the first baseline item (every item read, without a baseline)
    ids: frozenset[str]  # every id read
    proven_new: bool  # False without a baseline: nothing proves an item is newer than the attempt
    problem: str | None = None


def _look_at_account(
    api: ReconcileApi, account: str, baseline: frozenset[str] | None, policy: ReconcilePolicy
) -> _AccountLook:
    new: list[VideoStatus] = []
    ids: set[str] = set()
    last: str | None = None
    # Without a baseline there is nothing to read back to: the first page is where a new job would be (GUESS).
    pages = max(1, policy.max_pages) if baseline is not None else 1
    for _ in range(pages):
        try:
            page = api.list_videos(account, policy.page_size, last)
        except MiniMaxError as exc:
            return _AccountLook(
                new, frozenset(ids), False, f"cannot read the videos of account {account} ({exc})"
            )
        for video in page.videos:
            keys = {k for k in (video.video_id, video.id) if k}
            if baseline is not None and keys & baseline:
                return _AccountLook(new, frozenset(ids | keys), True)
            ids |= keys
            new.append(video)
        if not page.more_after(policy.page_size):
            return _AccountLook(new, frozenset(ids), baseline is not None)
        last = page.next_key
    if baseline is None:
        return _AccountLook(new, frozenset(ids), False)
    problem = f"account {account}: {pages} page(s) read without reaching the videos listed before the create"
    return _AccountLook(new, frozenset(ids), True, problem)


def _scheduler_jobs(
    api: ReconcileApi, attempt: CreateAttempt, policy: ReconcilePolicy
) -> tuple[set[str], list[ExecutingJob]]:
    """Video ids useapi attributes to other replyRefs, and the jobs carrying this attempt's replyRef."""
    try:
        scheduler = api.get_scheduler()
    except MiniMaxError as exc:
        # The accounts' lists hold useapi's jobs too, so this is not fatal on its own.
        logger.debug("cannot read GET scheduler/available (%s)", exc)
        return set(), []
    ref = attempt.wire.reply_ref
    since = attempt.started_at - policy.clock_skew_seconds
    others: set[str] = set()
    tracked: list[ExecutingJob] = []
    for job in scheduler.executing:
        if not job.is_video or not job.video_id:
            continue
        if job.reply_ref != ref:
            others.add(job.video_id)
        elif attempt.accounts and job.account not in attempt.accounts:
            continue
        elif job.started is None or job.started.timestamp() >= since:
            tracked.append(job)
    return others, tracked


def _confirm_tracked(
    api: ReconcileApi, attempt: CreateAttempt, tracked: list[ExecutingJob], problems: list[str]
) -> str | None:
    for job in tracked:
        assert job.video_id is not None
        if attempt.own_reply_ref is not None:
            return job.video_id  # the client's own replyRef: nobody else can have sent it
        try:
            status = api.get_video(job.video_id)
        except MiniMaxError as exc:
            problems.append(f"job {job.video_id} carries the replyRef but cannot be read ({exc})")
            continue
        if matches_request(status, attempt.request) is not False:
            return job.video_id
    return None


def _pick(candidates: list[VideoStatus]) -> str:
    # Prefer a video that can still succeed; among those, the oldest new one (nearest the first POST).
    usable = [v for v in candidates if not (v.is_failed or v.is_moderated)] or candidates
    chosen = usable[-1].video_id
    assert chosen is not None
    return chosen
