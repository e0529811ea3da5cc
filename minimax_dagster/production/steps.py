"""The per-video steps: claim → reuse → reattach → create, each paying at most once for a video.

1. **Claim, and learn what an earlier run left, in one request.** The worker creates the video key's job record
   (``<prefix>/_jobs/<key>.json``, see :mod:`~minimax_dagster.production.held_records`) with ``If-None-Match: *``.
   Of several processes or runs asking for the same video at once, exactly one succeeds, and its success proves
   that no earlier run started this video: it goes straight to the create. The others read the record once and
   decide: a ``finished`` video whose object is whole is reused; a failed one stays failed (unless
   ``regenerate_failed``); while a live worker holds the record they wait for its result; a record whose holder
   died (or that was released unfinished) is taken over (``If-Match`` on its ETag: one taker wins).
2. **Reattach.** If the record holds a video id, an earlier run created the video: it is awaited through
   GET videos/{videoId}, not created again.
3. **Create.** Otherwise a slot is taken on an account with free capacity (see
   :mod:`~minimax_dagster.production.capacity`), the input image uploaded if needed (see
   :mod:`~minimax_dagster.production.images`), and the video created. The record turns ``running`` the moment
   the stream names the video id.
4. **Store** (see :mod:`~minimax_dagster.production.store`); the record turns ``finished`` and is released in
   the same request. A store lets the run's creates under way go first (:class:`~minimax_dagster.production.creates_first.CreatesFirst`, at most 2 s):
   a slot given back is paid capacity, the next create on it should not queue behind stores.

>>> from minimax_dagster.storage import VideoKeys, video_key
>>> fox = VideoPrompt(id="fox", prompt="A fox", template_id="1")
>>> PlannedVideo(fox, VideoKeys("p", video_key("1", "A fox", None)), ImageSource(None)).keys.job[:11]
'p/_jobs/v1-'
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from minimax_dagster.api.client import GenerationResult, MiniMaxClient
from minimax_dagster.api.errors import (
    AccountOnHoldError,
    CapacityError,
    CreateOutcomeUnknownError,
    MiniMaxError,
    ModeratedError,
    OutOfCreditsError,
    ServerError,
    VideoFailedError,
)
from minimax_dagster.api.models import AgentCreateRequest
from minimax_dagster.production.budget import RunBudget, entry_made_no_job, surely_no_job
from minimax_dagster.production.capacity import AccountPool, NoUsableAccount
from minimax_dagster.production.create_attempt import Attempt, CreateOutcome, Retry, wait_out
from minimax_dagster.production.creates_first import CreatesFirst
from minimax_dagster.production.entries import failed_entry
from minimax_dagster.production.held_records import HeldRecord, new_record
from minimax_dagster.production.images import ImageSource, InputImages, image_owner
from minimax_dagster.production.manifest import ManifestEntry
from minimax_dagster.production.notes import NoteQueue
from minimax_dagster.production.producer_settings import ProducerSettings
from minimax_dagster.production.prompts import VideoPrompt
from minimax_dagster.production.store import ResultStore
from minimax_dagster.storage import ClaimKeeper, JobRecord, VideoKeys


@dataclass(frozen=True)
class PlannedVideo:
    """One prompt to produce: the prompt, the keys of its video, and its input image as identified.

    >>> from minimax_dagster.storage import VideoKeys
    >>> PlannedVideo(VideoPrompt(id="a", template_id="1"), VideoKeys("p", "v1-a"), ImageSource(None)).keys.video
    'p/videos/v1-a.mp4'
    """

    prompt: VideoPrompt
    keys: VideoKeys
    image: ImageSource


#: What :meth:`VideoSteps.claim` gives: the prompt's entry (nothing left to do), the record now held by this
#: worker, or ``None`` while another live worker holds it.
ClaimOutcome = ManifestEntry | HeldRecord | None


class VideoSteps:
    """The steps of one video (see the module docstring); thread-safe, one instance per run.

    Args:
        settings: limits (deadline, claim poll, capacity wait, ``regenerate_failed``).
        keeper: takes, renews and releases the video keys' records (their claims).
        store: reads and writes the results in S3.
        images: gives each create its input image.
        client: the calling thread's :class:`MiniMaxClient`.
        notes: where progress is said.
        budget: the run's reservations (:mod:`~minimax_dagster.production.budget`); ``None``: no budget.

    >>> import boto3, requests
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import DownloadPolicy, VideoKeys
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1")
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     settings = ProducerSettings(bucket="bkt", prefix="p", policy=DownloadPolicy(allowed_hosts=("x.com",)))
    ...     client, notes, keeper = (lambda: MiniMaxClient("t")), NoteQueue(), ClaimKeeper(s3, "bkt")
    ...     steps = VideoSteps(
    ...         settings,
    ...         keeper,
    ...         ResultStore(s3, settings, client=client, session=requests.Session, notes=notes),
    ...         InputImages(s3, settings.policy, client=client, session=requests.Session, notes=notes),
    ...         client=client,
    ...         notes=notes,
    ...     )
    ...     fox = VideoPrompt(id="fox", prompt="A fox", template_id="1")
    ...     held = steps.claim(fox, VideoKeys("p", "v1-fox"), announce=True)
    ...     print(keeper.held(), held.record.status, held.taken_from)
    ...     keeper.close()
    ['p/_jobs/v1-fox.json'] pending None
    """

    def __init__(
        self,
        settings: ProducerSettings,
        keeper: ClaimKeeper,
        store: ResultStore,
        images: InputImages,
        *,
        client: Callable[[], MiniMaxClient],
        notes: NoteQueue,
        budget: RunBudget | None = None,
    ) -> None:
        self.settings = settings
        self.budget = budget
        self.keeper = keeper
        self.store = store
        self.images = images
        self._client = client
        self._notes = notes
        limit = settings.store_concurrency
        self._store_slots = threading.BoundedSemaphore(limit) if limit > 0 else None
        self.creates_first = CreatesFirst()

    @contextlib.contextmanager
    def _storing(self) -> Iterator[None]:
        """Hold one of the ``store_concurrency`` store places (the generation slot is already given back)."""
        if self._store_slots is None:
            yield
            return
        with self._store_slots:
            yield

    def _store(
        self,
        prompt: VideoPrompt,
        keys: VideoKeys,
        result: GenerationResult,
        held: HeldRecord,
        *,
        reattached: bool,
    ) -> ManifestEntry:
        self.creates_first.wait_for_creates()
        with self._storing():
            return self.store.store(prompt, keys, result, held, reattached=reattached)

    def produce(self, video: PlannedVideo, pool: AccountPool) -> ManifestEntry:
        """Every step for one video: its one manifest entry (or an exception, which the caller turns into a
        failed entry)."""
        prompt, keys = video.prompt, video.keys
        limit = time.monotonic() + self.settings.generation_deadline
        waited = False
        while True:
            # After the first look the record is known to exist: look again with one GET, not PUT + GET.
            outcome = self.claim(prompt, keys, announce=not waited, exists=waited)
            if isinstance(outcome, ManifestEntry):
                return outcome
            if outcome is not None:
                break
            if time.monotonic() >= limit:
                raise TimeoutError(
                    f"another worker held the claim on {keys.key} for more than the generation deadline"
                )
            waited = True
            time.sleep(self.settings.claim_poll)
        try:
            return self.work(video, outcome, pool)
        finally:
            outcome.release()  # nothing is sent when the record was already finished or failed

    # ------------------------------------------------------------------------------------------ claim

    def claim(
        self, prompt: VideoPrompt, keys: VideoKeys, *, announce: bool, exists: bool = False
    ) -> ClaimOutcome:
        """Claim the video's key, or find that nothing is left to do (see :data:`ClaimOutcome`).

        Creates the record (one PUT, ``If-None-Match``) unless ``exists`` says an earlier look found one; else,
        or when the create finds a record, reads it (one GET) and decides: reuse a finished video whose object
        is whole (one HEAD), keep an earlier failure, wait for a live holder (said once with ``announce``), or
        take the record over (one PUT, ``If-Match``) when its holder died or released it unfinished.
        """
        purpose = f"produce {keys.key}"
        if not exists:
            handle = self.keeper.acquire(keys.job, purpose, new_record(prompt, keys))
            if handle is not None:
                return HeldRecord(self.keeper, handle)
        found = self.store.look(keys)
        if found is None:  # deleted since (by hand): create it again
            handle = self.keeper.acquire(keys.job, purpose, new_record(prompt, keys))
            return HeldRecord(self.keeper, handle) if handle is not None else None
        record, etag = found
        settled = self._settled(prompt, keys, record)
        if settled is not None:
            return settled
        holder = record.holder
        if holder is not None and not holder.is_stale():
            if announce:
                self._notes.say(prompt, f"{holder.owner} is producing this video; waiting for its result")
            return None
        if holder is not None:
            self._notes.say(prompt, f"taking over the stale claim of {holder.owner} on {keys.key}", "warning")
        handle = self.keeper.take_over(keys.job, etag, purpose, record)
        return HeldRecord(self.keeper, handle, taken_from=holder) if handle is not None else None

    def _settled(self, prompt: VideoPrompt, keys: VideoKeys, record: JobRecord) -> ManifestEntry | None:
        """The entry when ``record`` leaves nothing to do: a finished video whose object is whole (reused), or an
        earlier failure (unless ``regenerate_failed``)."""
        if record.status == "finished":
            reused = self.store.reusable(prompt, keys, record)
            if reused is not None:
                self._notes.say(prompt, f"reusing {reused.s3_uri} (already generated as {reused.video_id})")
                return reused
            if record.holder is None:
                self._notes.say(
                    prompt,
                    f"the stored video of {record.video_id} is missing or incomplete: storing it again",
                )
        elif record.status == "failed" and not self.settings.regenerate_failed:
            error = record.extra.get("error", "failed")
            return failed_entry(
                prompt,
                keys,
                f"an earlier run's {f'video {record.video_id}' if record.video_id else 'create'} failed "
                f"({error}); set regenerate_failed=True to pay for a new attempt",
                video_id=record.video_id,
            )
        return None

    # ------------------------------------------------------------------------------------------ work

    def work(self, video: PlannedVideo, held: HeldRecord, pool: AccountPool) -> ManifestEntry:
        """What the held record asks for: reattach to its video id, or create (after looking for a job that
        a holder which died may have created without recording it)."""
        prompt, keys = video.prompt, video.keys
        record = held.record
        if record.video_id is not None and record.status in ("running", "finished"):
            return self.reattach(prompt, keys, held, pool)
        if record.status == "pending" and held.taken_from is not None and prompt.reply_ref is None:
            found = self._find_created_by(prompt, keys)
            if found is not None:
                self._notes.say(
                    prompt, f"the worker that died had created {found}; reattaching (no new create)"
                )
                held.running(found, None)
                return self.reattach(prompt, keys, held, pool)
        return self.create(video, held, pool)

    def _find_created_by(self, prompt: VideoPrompt, keys: VideoKeys) -> str | None:
        """The job a dead holder may have created in the instant between its create and the first event,
        found by its replyRef (our key): best effort, a lookup that fails is only said."""
        try:
            return self._client().find_executing_job(keys.key)
        except MiniMaxError as exc:
            self._notes.say(prompt, f"cannot look for a job the dead worker created ({exc})", "warning")
            return None

    # ------------------------------------------------------------------------------------------ reattach

    def reattach(
        self, prompt: VideoPrompt, keys: VideoKeys, held: HeldRecord, pool: AccountPool
    ) -> ManifestEntry:
        """Await the job an earlier run created (the video id of the ``held`` record) and store it: no create."""
        record = held.record
        video_id = record.video_id
        if video_id is None:
            raise ValueError(f"the record of {keys.key} names no video to reattach to")
        self._notes.say(prompt, f"reattaching to {video_id} (created by an earlier run; no new create)")
        # The job occupies a slot of its account until it is final, whoever polls it: count it.
        has_slot, slot = self._slot_for_reattach(pool, record.account)
        try:
            result = self._client().reattach(
                video_id,
                deadline=self.settings.generation_deadline,
                on_status=lambda s: self._notes.say(
                    prompt, f"status {s.status}, {s.percent or 0:.0f}%", "debug"
                ),
            )
        except (VideoFailedError, ModeratedError) as exc:
            return self.store.record_failure(prompt, keys, held, video_id, record.account, exc)
        finally:
            if has_slot:
                pool.release(slot)
        return self._store(prompt, keys, result, held, reattached=True)

    def _slot_for_reattach(self, pool: AccountPool, account: str | None) -> tuple[bool, str | None]:
        """``(True, slot)`` with a slot of the job's account, ``(False, None)`` when the account is no longer
        usable or configured (polling a paid video must never fail for want of a slot)."""
        try:
            return True, pool.acquire(account, timeout=self.settings.generation_deadline)
        except (NoUsableAccount, TimeoutError):
            return False, None

    # ------------------------------------------------------------------------------------------ create

    def create(self, video: PlannedVideo, held: HeldRecord, pool: AccountPool) -> ManifestEntry:
        """Reserve the create's cost in the budget (:class:`~minimax_dagster.production.budget.BudgetSpent`
        when a window is spent: nothing is created), then :meth:`_create`; the reservation is given back when
        the create surely made no job, kept (spent on the video id, when one is known) otherwise."""
        budget = self.budget
        if budget is None:
            return self._create(video, held, pool)
        reservation = budget.reserve(video.prompt, video.keys.key)
        problem = None
        try:
            entry = self._create(video, held, pool)
        except BaseException as exc:
            video_id = getattr(exc, "video_id", None) or held.record.video_id
            if surely_no_job(exc, video_id):
                problem = budget.release(reservation)
            elif video_id is not None:
                problem = budget.spend(reservation, video_id)
            raise
        else:
            if entry.video_id is not None:
                problem = budget.spend(reservation, entry.video_id)
            elif entry_made_no_job(entry):
                problem = budget.release(reservation)
        finally:
            if problem:
                self._notes.say(video.prompt, problem, "warning")
        return entry

    def _create(self, video: PlannedVideo, held: HeldRecord, pool: AccountPool) -> ManifestEntry:
        """Take a slot, upload the image if needed, create the video (recording its id in ``held``) and store it.

        An account out of credits or on hold is disabled and another tried; a 429, or a 502/503/504 that
        outlasted the client's retries, is waited out with the slot held (after looking for a job the create
        may have made anyway); none of these is retried once the stream named a video id.
        """
        limit = time.monotonic() + self.settings.generation_deadline
        pinned = video.prompt.account or image_owner(video.prompt)
        while True:
            account = pool.acquire(pinned, timeout=max(0.0, limit - time.monotonic()))
            try:
                outcome = self._create_once(video, held, pool, Attempt(account, limit))
                if isinstance(outcome, Retry) and outcome.wait is not None:
                    wait_out(outcome.wait, limit)
            finally:
                pool.release(account)
            if isinstance(outcome, GenerationResult):
                return self._store(video.prompt, video.keys, outcome, held, reattached=False)
            if isinstance(outcome, ManifestEntry):
                return outcome

    def _create_once(
        self, video: PlannedVideo, held: HeldRecord, pool: AccountPool, attempt: Attempt
    ) -> CreateOutcome:
        """One create on ``attempt.account`` (its slot held), counted by :attr:`creates_first` until the stream
        names the video id: the result to store, the entry when it is settled here, or a :class:`Retry`."""
        prompt, keys = video.prompt, video.keys
        with self.creates_first.creating() as settled:
            request = self._request(video, attempt.account)
            attempt.on_created(
                lambda video_id: self.store.remember_job(prompt, held, video_id, attempt.account)
            )
            attempt.on_created(lambda _: settled())
            try:
                return self._client().generate(
                    request,
                    on_event=lambda e: self._notes.event(prompt, e),
                    on_video_id=attempt.created,
                    deadline=attempt.remaining(minimum=1.0),
                )
            except (VideoFailedError, ModeratedError) as exc:
                video_id = exc.video_id or attempt.video_id
                return self.store.record_failure(prompt, keys, held, video_id, attempt.account, exc)
            except CreateOutcomeUnknownError as exc:
                # Never retried: the create may have made a paid job that nobody could find.
                return self._outcome_unknown(prompt, keys, held, request, exc)
            except (OutOfCreditsError, AccountOnHoldError, CapacityError, ServerError) as exc:
                refused = (
                    None if attempt.video_id else self._refused(exc, video, held, pool, attempt, request)
                )
                if refused is None:
                    raise
                return refused

    def _refused(
        self,
        exc: MiniMaxError,
        video: PlannedVideo,
        held: HeldRecord,
        pool: AccountPool,
        attempt: Attempt,
        request: AgentCreateRequest,
    ) -> CreateOutcome | None:
        """What a create refused before any video id asks for: another account (out of credits, on hold), a wait
        (429; a 502/503/504, once no job of its replyRef exists), or ``None`` (the error stands)."""
        prompt = video.prompt
        if isinstance(exc, (OutOfCreditsError, AccountOnHoldError)):
            pool.disable(attempt.account, f"HTTP {exc.status} {exc.message}")
            self._notes.say(
                prompt, f"account {attempt.account} unusable ({exc}); trying another account", "warning"
            )
            return Retry(wait=None)
        if attempt.remaining() <= 0:
            return None
        if isinstance(exc, CapacityError):
            wait = exc.retry_after if exc.retry_after is not None else self.settings.capacity_wait
            self._notes.say(prompt, f"no capacity ({exc.message}); waiting {wait:.1f} s", "warning")
            return Retry(wait)
        if isinstance(exc, ServerError) and exc.status in (502, 503, 504):
            # Outlasted the client's own retries before the stream: the service is busy (useapi: retry like a
            # 429). No video id was given, but a gateway error does not prove no job was made: look first.
            found = self._find_created(request)
            if found is None:
                wait = self.settings.capacity_wait
                self._notes.say(prompt, f"service busy ({exc}); waiting {wait:.1f} s", "warning")
                return Retry(wait)
            attempt.created(found)
            self._notes.say(prompt, f"the create answered {exc.status}, but job {found} exists; reattaching")
            result = self._client().reattach(found, deadline=attempt.remaining(minimum=1.0))
            return self._store(prompt, video.keys, result, held, reattached=True)
        return None

    def _outcome_unknown(
        self,
        prompt: VideoPrompt,
        keys: VideoKeys,
        held: HeldRecord,
        request: AgentCreateRequest,
        exc: CreateOutcomeUnknownError,
    ) -> ManifestEntry:
        """The failed entry of a create that may have made a paid job: where to look, and what not to do.

        The record is written ``failed`` (with no video id), so a re-run does not pay blindly either: it reports
        this row as failed until ``regenerate_failed`` asks for a new attempt."""
        where = f"account {request.account}" if request.account else "the video accounts (the API chose one)"
        error = (
            f"{type(exc).__name__} on {where}: {exc}. A paid job may exist: check GET videos/?account=... of "
            f"{where} for a video whose desc is this row's prompt; if there is one, take the video from there "
            f"(re-running this row would pay for it again); if there is none, re-run to create it"
        )
        held.failed(None, request.account, error)
        self._notes.say(prompt, f"failed: {error}", "error")
        return failed_entry(prompt, keys, error)

    def _find_created(self, request: AgentCreateRequest) -> str | None:
        """A gateway error does not prove the job was not created: look for it by its replyRef before paying
        for another one."""
        return self._client().find_executing_job(request.reply_ref) if request.reply_ref else None

    def _request(self, video: PlannedVideo, account: str | None) -> AgentCreateRequest:
        prompt = video.prompt
        image = self.images.for_create(prompt, video.image, account)
        return AgentCreateRequest(
            account=image.account,
            template_id=prompt.template_id or "",
            prompt=prompt.prompt,
            file_id=image.file_id,
            oss_path=image.oss_path,
            # Our key doubles as replyRef, so a stream lost before its first event can still be found.
            reply_ref=prompt.reply_ref or video.keys.key,
        )
