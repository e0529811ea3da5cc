"""The per-video steps: claim → reuse → reattach → create, each paying at most once for a video.

1. **Claim, then reuse.** The worker claims the video's key (``<prefix>/_claims/<key>.json``, an S3 conditional
   write): of several processes or runs asking for the same video at once, one produces it and the others wait
   for its result; a claim whose holder died is taken over. Everything below happens under the claim. If the
   video and its sidecar are already in S3 with matching sizes, the prompt is done: nothing is created.
2. **Reattach.** If a job record (``<prefix>/_jobs/<key>.json``) holds a video id, an earlier run created the
   video: it is awaited through GET videos/{videoId}, not created again.
3. **Create.** Otherwise a slot is taken on an account with free capacity (see
   :mod:`~minimax_dagster.production.capacity`), the input image uploaded if needed (see
   :mod:`~minimax_dagster.production.images`), and the video created. The job record is written the moment the
   stream names the video id.
4. **Store** (see :mod:`~minimax_dagster.production.store`).

>>> from minimax_dagster.storage import VideoKeys, video_key
>>> fox = VideoPrompt(id="fox", prompt="A fox", template_id="1")
>>> PlannedVideo(fox, VideoKeys("p", video_key("1", "A fox", None)), ImageSource(None)).keys.claim[:13]
'p/_claims/v1-'
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from minimax_dagster.api.client import MiniMaxClient
from minimax_dagster.api.errors import (
    AccountOnHoldError,
    CapacityError,
    CreateOutcomeUnknownError,
    ModeratedError,
    OutOfCreditsError,
    ServerError,
    VideoFailedError,
)
from minimax_dagster.api.models import AgentCreateRequest
from minimax_dagster.production.capacity import AccountPool, NoUsableAccount
from minimax_dagster.production.entries import failed_entry
from minimax_dagster.production.images import ImageSource, InputImages, image_owner
from minimax_dagster.production.manifest import ManifestEntry
from minimax_dagster.production.notes import NoteQueue
from minimax_dagster.production.prompts import VideoPrompt
from minimax_dagster.production.settings import ProducerSettings
from minimax_dagster.production.store import ResultStore
from minimax_dagster.storage import ClaimHandle, ClaimKeeper, JobRecord, VideoKeys


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


class VideoSteps:
    """The steps of one video (see the module docstring); thread-safe, one instance per run.

    Args:
        settings: limits (deadline, claim poll, capacity wait, ``regenerate_failed``).
        keeper: takes and renews the video keys' claims.
        store: reads and writes the results in S3.
        images: gives each create its input image.
        client: the calling thread's :class:`MiniMaxClient`.
        notes: where progress is said.

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
    ...     handle = steps.claim(fox, VideoKeys("p", "v1-fox"), announce=True)
    ...     print(keeper.held(), steps.settled(fox, VideoKeys("p", "v1-fox")))
    ...     keeper.close()
    ['p/_claims/v1-fox.json'] (None, None)
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
    ) -> None:
        self.settings = settings
        self.keeper = keeper
        self.store = store
        self.images = images
        self._client = client
        self._notes = notes

    def produce(self, video: PlannedVideo, pool: AccountPool) -> ManifestEntry:
        """Every step for one video: its one manifest entry (or an exception, which the caller turns into a
        failed entry)."""
        prompt, keys = video.prompt, video.keys
        limit = time.monotonic() + self.settings.generation_deadline
        waited = False
        # Claim first, then look: a new video (the paid, capacity-bound path) costs one look instead of two,
        # and the look under the claim is the one that counts (no other process writes this key meanwhile).
        while True:
            claim = self.claim(prompt, keys, announce=not waited)
            if claim is not None:
                break
            settled, _record = self.settled(prompt, keys)  # the holder may have finished meanwhile
            if settled is not None:
                return settled
            if time.monotonic() >= limit:
                raise TimeoutError(
                    f"another worker held the claim on {keys.key} for more than the generation deadline"
                )
            waited = True
            time.sleep(self.settings.claim_poll)
        try:
            settled, record = self.settled(prompt, keys)
            if settled is not None:
                return settled
            if record is not None and record.status != "failed":
                return self.reattach(prompt, keys, record, pool)
            return self.create(video, pool)
        finally:
            self.keeper.release(claim)

    # ------------------------------------------------------------------------------------------ claim

    def claim(self, prompt: VideoPrompt, keys: VideoKeys, *, announce: bool) -> ClaimHandle | None:
        """Claim the video's key; ``None`` while another live process holds it (said once with ``announce``).
        A stale claim (its holder dead, or not renewed within its TTL) is taken over."""
        purpose = f"produce {keys.key}"
        handle = self.keeper.acquire(keys.claim, purpose)
        if handle is not None:
            return handle
        found = self.keeper.inspect(keys.claim)
        if found is None:  # released between our two requests
            return self.keeper.acquire(keys.claim, purpose)
        claim, etag = found
        if claim is None or claim.is_stale():
            holder = claim.owner if claim is not None else "an unreadable claim"
            self._notes.say(prompt, f"taking over the stale claim of {holder} on {keys.key}", "warning")
            return self.keeper.take_over(keys.claim, etag, purpose)
        if announce:
            self._notes.say(prompt, f"{claim.owner} is producing this video; waiting for its result")
        return None

    # ------------------------------------------------------------------------------------------ reuse

    def settled(self, prompt: VideoPrompt, keys: VideoKeys) -> tuple[ManifestEntry | None, JobRecord | None]:
        """``(entry, None)`` when nothing is left to do (the video is in S3, or an earlier attempt failed for
        good); else ``(None, job record or None)``, the record read here so the caller need not read it again."""
        reused = self.store.stored_entry(prompt, keys)
        if reused is not None:
            self._notes.say(prompt, f"reusing {reused.s3_uri} (already generated as {reused.video_id})")
            return reused, None
        record = self.store.read_job(keys)
        if record is not None and record.status == "failed" and not self.settings.regenerate_failed:
            error = record.extra.get("error", "failed")
            failed = failed_entry(
                prompt,
                keys,
                f"an earlier run's video {record.video_id} failed ({error}); "
                "set regenerate_failed=True to pay for a new attempt",
                video_id=record.video_id,
            )
            return failed, None
        return None, record

    # ------------------------------------------------------------------------------------------ reattach

    def reattach(
        self, prompt: VideoPrompt, keys: VideoKeys, record: JobRecord, pool: AccountPool
    ) -> ManifestEntry:
        """Await the job an earlier run created (``record``, read under the claim) and store it: no create."""
        self._notes.say(
            prompt, f"reattaching to {record.video_id} (created by an earlier run; no new create)"
        )
        # The job occupies a slot of its account until it is final, whoever polls it: count it.
        held, slot = self._slot_for_reattach(pool, record.account)
        try:
            result = self._client().reattach(
                record.video_id,
                deadline=self.settings.generation_deadline,
                on_status=lambda s: self._notes.say(
                    prompt, f"status {s.status}, {s.percent or 0:.0f}%", "debug"
                ),
            )
        except (VideoFailedError, ModeratedError) as exc:
            return self.store.record_failure(prompt, keys, record.video_id, record.account, exc)
        finally:
            if held:
                pool.release(slot)
        return self.store.store(prompt, keys, result, reattached=True)

    def _slot_for_reattach(self, pool: AccountPool, account: str | None) -> tuple[bool, str | None]:
        """``(True, slot)`` with a slot of the job's account, ``(False, None)`` when the account is no longer
        usable or configured (polling a paid video must never fail for want of a slot)."""
        try:
            return True, pool.acquire(account, timeout=self.settings.generation_deadline)
        except (NoUsableAccount, TimeoutError):
            return False, None

    # ------------------------------------------------------------------------------------------ create

    def create(self, video: PlannedVideo, pool: AccountPool) -> ManifestEntry:
        """Take a slot, upload the image if needed, create the video and store it.

        An account out of credits or on hold is disabled and another tried; a 429, or a 502/503/504 that
        outlasted the client's retries, is waited out (after looking for a job the create may have made
        anyway); none of these is retried once the stream named a video id.
        """
        prompt, keys = video.prompt, video.keys
        settings = self.settings
        pinned = prompt.account or image_owner(prompt)
        limit = time.monotonic() + settings.generation_deadline
        while True:
            account = pool.acquire(pinned, timeout=max(0.0, limit - time.monotonic()))
            try:
                request = self._request(video, account)
                video_ids: list[str] = []

                def remember(
                    video_id: str, account: str | None = account, video_ids: list[str] = video_ids
                ) -> None:
                    video_ids.append(video_id)
                    self.store.remember_job(prompt, keys, video_id, account)

                try:
                    result = self._client().generate(
                        request,
                        on_event=lambda e: self._notes.event(prompt, e),
                        on_video_id=remember,
                        deadline=max(1.0, limit - time.monotonic()),
                    )
                except (VideoFailedError, ModeratedError) as exc:
                    vid = exc.video_id or (video_ids[0] if video_ids else None)
                    return self.store.record_failure(prompt, keys, vid, account, exc)
                except CreateOutcomeUnknownError as exc:
                    # Never retried: the create may have made a paid job that nobody could find.
                    return self._outcome_unknown(prompt, keys, request, exc)
                except (OutOfCreditsError, AccountOnHoldError) as exc:
                    if video_ids:
                        raise
                    pool.disable(account, f"HTTP {exc.status} {exc.message}")
                    self._notes.say(
                        prompt, f"account {account} unusable ({exc}); trying another account", "warning"
                    )
                    continue
                except CapacityError as exc:
                    if video_ids or time.monotonic() >= limit:
                        raise
                    wait = exc.retry_after if exc.retry_after is not None else settings.capacity_wait
                    self._notes.say(prompt, f"no capacity ({exc.message}); waiting {wait:.1f} s", "warning")
                    time.sleep(min(max(wait, 0.05), max(0.0, limit - time.monotonic())))
                    continue
                except ServerError as exc:
                    # 502/503/504 before the stream outlasted the client's own retries: the service is busy
                    # (useapi: retry like a 429). No video id was given, so nothing was created to reattach to.
                    if video_ids or exc.status not in (502, 503, 504) or time.monotonic() >= limit:
                        raise
                    found = self._find_created(request)
                    if found is not None:
                        remember(found)
                        self._notes.say(
                            prompt, f"the create answered {exc.status}, but job {found} exists; reattaching"
                        )
                        result = self._client().reattach(found, deadline=max(1.0, limit - time.monotonic()))
                        return self.store.store(prompt, keys, result, reattached=True)
                    wait = settings.capacity_wait
                    self._notes.say(prompt, f"service busy ({exc}); waiting {wait:.1f} s", "warning")
                    time.sleep(min(max(wait, 0.05), max(0.0, limit - time.monotonic())))
                    continue
            finally:
                pool.release(account)
            return self.store.store(prompt, keys, result, reattached=False)

    def _outcome_unknown(
        self,
        prompt: VideoPrompt,
        keys: VideoKeys,
        request: AgentCreateRequest,
        exc: CreateOutcomeUnknownError,
    ) -> ManifestEntry:
        """The failed entry of a create that may have made a paid job: where to look, and what not to do."""
        where = f"account {request.account}" if request.account else "the video accounts (the API chose one)"
        error = (
            f"{type(exc).__name__} on {where}: {exc}. A paid job may exist: check GET videos/?account=... of "
            f"{where} for a video whose desc is this row's prompt; if there is one, take the video from there "
            f"(re-running this row would pay for it again); if there is none, re-run to create it"
        )
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
