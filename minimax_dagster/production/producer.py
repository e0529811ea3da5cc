"""``VideoProducer``: turns validated prompts into videos in S3, concurrently, without ever paying twice.

For each prompt, in order:

1. **Claim, then reuse.** The keys are a hash of (template, prompt, input image). The worker claims the key
   (``<prefix>/_claims/<key>.json``, an S3 conditional write): of several processes or runs asking for the same
   video at once, one produces it and the others wait for its result; a claim whose holder died is taken over.
   Everything below happens under the claim. If the video and its sidecar are already in S3 with matching
   sizes, the prompt is done: nothing is created.
2. **Reattach.** If a job record (``<prefix>/_jobs/<key>.json``) holds a video id, an earlier run created the
   video: it is awaited through GET videos/{videoId}, not created again.
3. **Create.** Otherwise a slot is taken on an account with free capacity (with ``shared_capacity``, also one
   of the account's maxJobs slot claims in S3, so all processes together stay within it), the input image
   uploaded if needed, and the video created. The job record is written the moment the stream names the
   video id.
4. **Store.** The video (no-watermark URL when present) is streamed into S3, then the poster, then the sidecar
   with the whole event record; the job record is marked finished.

The producer composes the API client and the storage layer; it does not import dagster. Its :meth:`run` is a
generator of :class:`Note` s (log lines and finished entries) produced by worker threads and handed over on the
caller's thread, so a Dagster step can log them in order from its own thread.

>>> # for note in VideoProducer(make_client, s3, settings).run(prompts): print(note.message or note.entry)
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from minimax_dagster.api.client import GenerationResult, MiniMaxClient
from minimax_dagster.api.errors import (
    AccountOnHoldError,
    CapacityError,
    MiniMaxError,
    ModeratedError,
    OutOfCreditsError,
    ServerError,
    VideoFailedError,
)
from minimax_dagster.api.models import AgentCreateRequest, StreamEvent, UploadedFile
from minimax_dagster.production.manifest import ManifestEntry
from minimax_dagster.production.prompts import VideoPrompt
from minimax_dagster.storage import (
    ClaimHandle,
    ClaimKeeper,
    DownloadFailed,
    DownloadPolicy,
    DownloadRefused,
    DownloadTooLarge,
    JobRecord,
    StorageError,
    UploadFailed,
    UploadResult,
    VideoKeys,
    get_json,
    head_object,
    normalize_prefix,
    open_download,
    prompt_sha256,
    put_json,
    read_job_record,
    redact_url,
    s3_uri,
    safe_key_part,
    upload_from_url,
    video_key,
    write_job_record,
)

logger = logging.getLogger("minimax_dagster.production.producer")

#: Images given by URL are downloaded into memory before upload; they are small, but bounded all the same.
MAX_IMAGE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class ProducerSettings:
    """Where videos go and how generation behaves.

    ``accounts`` maps account ids to their maxJobs; empty means "let the API choose", with ``default_capacity``
    concurrent jobs. ``claim_ttl``: seconds a claim (of a video key or an account slot) outlives its last
    renewal (holders renew every ``claim_ttl / 4``); ``claim_poll``: seconds between looks while another
    process holds what we need. ``shared_capacity``: lease account slots in S3 under ``slots_prefix``
    (default ``<prefix>/_slots``) so that every process sharing the accounts stays within their maxJobs.
    ``capacity_wait``: seconds to wait before creating again after a 429 without Retry-After, or a 502/503/504,
    that outlasted the client's own retries. ``download_attempts`` / ``download_backoff``: how often (and after
    how many seconds, doubling) storing a paid video is tried when the download breaks or S3 fails.

    >>> ProducerSettings(bucket="b", prefix="p", policy=DownloadPolicy(allowed_hosts=("x.com",))).capacity
    1
    """

    bucket: str
    prefix: str
    policy: DownloadPolicy
    accounts: dict[str, int] = field(default_factory=dict)
    default_capacity: int = 1
    generation_deadline: float = 20 * 60.0
    capacity_wait: float = 5.0
    regenerate_failed: bool = False
    part_size: int = 16 * 1024 * 1024
    download_attempts: int = 4
    download_backoff: float = 2.0
    asset_name: str | None = None
    claim_ttl: float = 60.0
    claim_poll: float = 1.0
    shared_capacity: bool = True
    slots_prefix: str | None = None

    @property
    def capacity(self) -> int:
        """How many generations may run at once."""
        return sum(self.accounts.values()) if self.accounts else self.default_capacity

    @property
    def slots(self) -> str:
        """Where the account slot claims live.

        >>> ProducerSettings(bucket="b", prefix="p", policy=DownloadPolicy(allowed_hosts=("x.com",))).slots
        'p/_slots'
        """
        if self.slots_prefix is not None:
            return normalize_prefix(self.slots_prefix)
        return f"{self.prefix}/_slots" if self.prefix else "_slots"


@dataclass(frozen=True)
class Note:
    """Something the producer reports: a log line (``level`` + ``message``) or a finished ``entry``."""

    level: str = "info"
    message: str | None = None
    entry: ManifestEntry | None = None
    event: StreamEvent | None = None
    prompt_id: str | None = None


class NoUsableAccount(MiniMaxError):
    """Every account is out of credits or on hold."""


class AccountPool:
    """Counts free generation slots per account; ``acquire`` blocks until a slot is free.

    >>> pool = AccountPool({"a": 1, "b": 2})
    >>> pool.acquire(), pool.acquire(), pool.acquire()
    ('b', 'a', 'b')
    >>> pool.release("a"); pool.acquire("a")
    'a'
    """

    def __init__(self, capacity: dict[str, int] | None, default_capacity: int = 1) -> None:
        self._free: dict[str | None, int] = {None: default_capacity}
        if capacity:
            self._free = {account: jobs for account, jobs in capacity.items()}
        self._disabled: dict[str | None, str] = {}
        self._cond = threading.Condition()

    def acquire(self, pinned: str | None = None, timeout: float | None = None) -> str | None:
        """Take a slot (on ``pinned`` when given, else the account with most free slots)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                usable = self._usable(pinned)
                best = max(usable, key=lambda a: usable[a])
                if usable[best] > 0:
                    self._free[best] -= 1
                    return pinned if best is None else best
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError("no free generation slot in time")
                self._cond.wait(remaining)

    def _usable(self, pinned: str | None) -> dict[str | None, int]:
        """Free slots of the accounts ``pinned`` may use (call with the lock held); raises if there are none."""
        usable = {a: n for a, n in self._free.items() if a not in self._disabled}
        if pinned is not None and pinned not in self._free:
            usable = {}
            if None in self._free and None not in self._disabled:
                # Accounts unknown: any pinned account shares the API-chosen capacity.
                usable = {None: self._free[None]}
        elif pinned is not None:
            usable = {pinned: usable[pinned]} if pinned in usable else {}
        if not usable:
            reasons = "; ".join(f"{a}: {r}" for a, r in self._disabled.items())
            target = f"account {pinned}" if pinned else "any account"
            raise NoUsableAccount(f"no usable MiniMax account for {target} ({reasons or 'none configured'})")
        return usable

    def release(self, account: str | None) -> None:
        """Give a slot back."""
        with self._cond:
            slot = account if account in self._free else None
            self._free[slot] = self._free.get(slot, 0) + 1
            self._cond.notify_all()

    def disable(self, account: str | None, reason: str) -> None:
        """Stop using an account (out of credits, on hold)."""
        with self._cond:
            self._disabled[account if account in self._free else None] = reason
            self._cond.notify_all()


class SharedAccountPool(AccountPool):
    """An :class:`AccountPool` whose every slot is also one of the account's maxJobs claims in S3
    (``<prefix>/<account>/<i>.json``): all processes sharing the accounts (Celery workers, pods, concurrent
    runs) stay within maxJobs together instead of each on its own, so none is refused with 429.

    A slot given back while a thread of this process waits for that account is handed over with its claim
    still held: the next generation starts without the three S3 requests (delete, list, create) a new lease
    costs. A handed-over claim nobody takes within ``poll`` seconds is deleted by the next thread that gives a
    slot back or wakes up waiting, and :meth:`close` deletes the rest. A claim held by a killed process goes
    stale (``ClaimKeeper``) and its slot is taken over.
    """

    def __init__(
        self,
        capacity: dict[str, int] | None,
        default_capacity: int = 1,
        *,
        keeper: ClaimKeeper,
        prefix: str,
        poll: float = 1.0,
    ) -> None:
        super().__init__(capacity, default_capacity)
        self._limits = dict(self._free)
        self._keeper = keeper
        self._prefix = prefix
        self._poll = poll
        self._held: dict[str | None, list[ClaimHandle]] = {}
        self._next_scan: dict[str | None, float] = {}
        # Claims still held in S3 but given back here, with the time they were parked, per account.
        self._parked: dict[str | None, list[tuple[ClaimHandle, float]]] = {}
        self._waiting: list[str | None] = []  # the ``pinned`` of every thread blocked in acquire

    def acquire(self, pinned: str | None = None, timeout: float | None = None) -> str | None:
        """Take a local slot and a shared one, on the account with most local free slots that has a shared
        slot free (a parked claim first); waits (looking again every ``poll`` seconds or when a slot is given
        back) until one is."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                usable = self._usable(pinned)
                # Parked claims first (they cost no request), then the account with most free slots.
                order = sorted(
                    (a for a, n in usable.items() if n > 0),
                    key=lambda a: (not self._parked.get(a), -usable[a]),
                )
                for slot in order:
                    parked = self._parked.get(slot)
                    handle = parked.pop(0)[0] if parked else self._lease(slot)
                    if handle is not None:
                        self._free[slot] -= 1
                        self._held.setdefault(slot, []).append(handle)
                        return pinned if slot is None else slot
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError("no free generation slot in time")
                self._waiting.append(pinned)
                try:
                    self._cond.wait(self._poll if remaining is None else min(self._poll, remaining))
                finally:
                    self._waiting.remove(pinned)
                # Rare: a waiter left (timeout) or took another account. This thread is not counted as waiting
                # here, so only age decides.
                for handle in self._unpark_stale(unwanted=False):
                    self._keeper.release(handle)

    @property
    def waiting(self) -> int:
        """How many threads are blocked in :meth:`acquire` right now."""
        with self._cond:
            return len(self._waiting)

    def _lease(self, slot: str | None) -> ClaimHandle | None:
        now = time.monotonic()
        scan = now >= self._next_scan.get(slot, 0.0)
        if scan:  # reading every taken slot's body is for finding dead holders: not on every look
            self._next_scan[slot] = now + max(self._poll, self._keeper.ttl / 8)
        name = safe_key_part(slot) if slot is not None else "_any"
        return self._keeper.acquire_slot(
            f"{self._prefix}/{name}", self._limits[slot], f"slot of {name}", scan_stale=scan
        )

    def _wanted_by_waiter(self, slot: str | None) -> bool:
        """Whether a blocked thread could take a slot of ``slot`` (call with the lock held)."""
        if slot in self._disabled:
            return False
        return any(p is None or p == slot or slot is None for p in self._waiting)

    def _unpark_stale(self, *, unwanted: bool) -> list[ClaimHandle]:
        """Take out the parked claims nobody took within ``poll`` seconds (and, with ``unwanted``, those no
        blocked thread could take); call with the lock held, then delete them."""
        limit = time.monotonic() - self._poll
        stale: list[ClaimHandle] = []
        for slot, parked in self._parked.items():
            while parked and (parked[0][1] <= limit or (unwanted and not self._wanted_by_waiter(slot))):
                stale.append(parked.pop(0)[0])
        return stale

    def release(self, account: str | None) -> None:
        """Give the slot back: handed over (its S3 claim kept) when a thread here waits for it, else deleted
        in S3 too."""
        with self._cond:
            slot = account if account in self._free else None
            held = self._held.get(slot)
            handle = held.pop() if held else None
            if handle is not None and self._wanted_by_waiter(slot):
                self._parked.setdefault(slot, []).append((handle, time.monotonic()))
                handle = None
            to_delete = self._unpark_stale(unwanted=True)
        if handle is not None:
            to_delete.append(handle)
        for stale in to_delete:
            self._keeper.release(stale)
        super().release(account)

    def close(self) -> None:
        """Delete every parked claim (the held ones belong to threads still generating)."""
        with self._cond:
            parked = [h for hs in self._parked.values() for h, _ in hs]
            self._parked.clear()
        for handle in parked:
            self._keeper.release(handle)


class VideoProducer:
    """Produces videos for prompts (see the module docstring for the steps).

    Args:
        client_factory: builds a :class:`MiniMaxClient`; called once per worker thread.
        s3_client: a boto3 S3 client (thread-safe), built with ``storage.s3_client_config()``.
        settings: bucket, prefix, download policy, accounts and limits.
    """

    def __init__(
        self,
        client_factory: Callable[[], MiniMaxClient],
        s3_client: Any,
        settings: ProducerSettings,
    ) -> None:
        self.client_factory = client_factory
        self.s3 = s3_client
        self.settings = settings
        self._local = threading.local()
        self._notes: queue.Queue[Note] = queue.Queue()
        self._uploads_lock = threading.Lock()
        self._uploaded: dict[tuple[str, str | None], UploadedFile] = {}
        self._clients: list[MiniMaxClient] = []
        self._clients_lock = threading.Lock()
        self._keeper = ClaimKeeper(s3_client, settings.bucket, ttl=settings.claim_ttl)

    # ------------------------------------------------------------------------------------------ running

    def run(self, prompts: list[VideoPrompt]) -> Iterator[Note]:
        """Produce every prompt, ``capacity`` at a time; yields notes on the caller's thread as they come.

        Entries come out in completion order; each prompt yields exactly one entry. Prompts that ask for the
        same video (same template, text and image) are generated once; the others reuse it.
        """
        leaders, followers = self._group_by_video(prompts)
        settings = self.settings
        self._keeper = ClaimKeeper(self.s3, settings.bucket, ttl=settings.claim_ttl)
        pool: AccountPool
        if settings.shared_capacity:
            pool = SharedAccountPool(
                settings.accounts,
                settings.default_capacity,
                keeper=self._keeper,
                prefix=settings.slots,
                poll=settings.claim_poll,
            )
        else:
            pool = AccountPool(settings.accounts, settings.default_capacity)
        # Twice as many workers as slots: a worker storing a finished video (its slot already given back) or
        # checking S3 for the next prompt does not leave a slot idle; the extra workers wait in pool.acquire.
        workers = max(1, min(2 * self.settings.capacity, len(leaders)))
        futures: list[Future[None]] = []
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="minimax") as executor:
                for prompt in leaders:
                    futures.append(executor.submit(self._produce_safely, prompt, pool))
                while True:
                    try:
                        note = self._notes.get(timeout=0.1)
                    except queue.Empty:
                        if all(f.done() for f in futures) and self._notes.empty():
                            break
                        continue
                    yield note
                    if note.entry is not None:
                        yield from self._follower_notes(note.entry, followers.get(note.entry.id, []))
        finally:
            for f in futures:
                f.cancel()
            if isinstance(pool, SharedAccountPool):
                pool.close()
            self._keeper.close()
            with self._clients_lock:
                for client in self._clients:
                    client.close()
                self._clients.clear()

    def _group_by_video(
        self, prompts: list[VideoPrompt]
    ) -> tuple[list[VideoPrompt], dict[str, list[VideoPrompt]]]:
        leaders: list[VideoPrompt] = []
        followers: dict[str, list[VideoPrompt]] = {}
        by_key: dict[str, VideoPrompt] = {}
        for prompt in prompts:
            try:
                key = video_key(prompt.template_id or "", prompt.prompt, prompt.file_ref())
            except OSError:
                leaders.append(prompt)  # its own run reports the unreadable file
                continue
            leader = by_key.get(key)
            if leader is None:
                by_key[key] = prompt
                leaders.append(prompt)
            else:
                followers.setdefault(leader.id, []).append(prompt)
        return leaders, followers

    @staticmethod
    def _follower_notes(entry: ManifestEntry, followers: list[VideoPrompt]) -> Iterator[Note]:
        for prompt in followers:
            copy = entry.model_copy(
                update={
                    "id": prompt.id,
                    "prompt": prompt.prompt,
                    "metadata": prompt.metadata,
                    "status": "reused" if entry.ok else entry.status,
                    "generation_seconds": None,
                    "upload_seconds": None,
                }
            )
            yield Note(message=f"[{prompt.id}] same video as {entry.id}: {copy.status}", prompt_id=prompt.id)
            yield Note(entry=copy, prompt_id=prompt.id)

    def produce(self, prompts: list[VideoPrompt]) -> list[ManifestEntry]:
        """Run without a caller-side logger: log notes to ``logging`` and return the entries in prompt order.

        >>> # entries = VideoProducer(make_client, s3, settings).produce(prompts)
        """
        by_id: dict[str, ManifestEntry] = {}
        for note in self.run(prompts):
            if note.entry is not None:
                by_id[note.entry.id] = note.entry
            elif note.message:
                logger.log(logging.getLevelName(note.level.upper()), note.message)
        return [by_id[p.id] for p in prompts if p.id in by_id]

    def _say(
        self, prompt: VideoPrompt, message: str, level: str = "info", event: StreamEvent | None = None
    ) -> None:
        self._notes.put(
            Note(level=level, message=f"[{prompt.id}] {message}", event=event, prompt_id=prompt.id)
        )

    def _client(self) -> MiniMaxClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self.client_factory()
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def _produce_safely(self, prompt: VideoPrompt, pool: AccountPool) -> None:
        try:
            entry = self._produce(prompt, pool)
        except Exception as exc:
            logger.debug("prompt %s failed", prompt.id, exc_info=True)
            entry = self._failed(prompt, None, f"{type(exc).__name__}: {exc}")
            self._say(prompt, f"failed: {entry.error}", "error")
        self._notes.put(Note(entry=entry, prompt_id=prompt.id))

    # ------------------------------------------------------------------------------------------ one prompt

    def _produce(self, prompt: VideoPrompt, pool: AccountPool) -> ManifestEntry:
        settings = self.settings
        template_id = prompt.template_id or ""
        keys = VideoKeys(settings.prefix, video_key(template_id, prompt.prompt, prompt.file_ref()))
        limit = time.monotonic() + settings.generation_deadline
        waited = False
        # Claim first, then look: a new video (the paid, capacity-bound path) costs one look instead of two,
        # and the look under the claim is the one that counts (no other process writes this key meanwhile).
        while True:
            claim = self._claim(prompt, keys, announce=not waited)
            if claim is not None:
                break
            settled, _record = self._settled(prompt, keys)  # the holder may have finished meanwhile
            if settled is not None:
                return settled
            if time.monotonic() >= limit:
                raise TimeoutError(
                    f"another worker held the claim on {keys.key} for more than the generation deadline"
                )
            waited = True
            time.sleep(settings.claim_poll)
        try:
            settled, record = self._settled(prompt, keys)
            if settled is not None:
                return settled
            return self._produce_claimed(prompt, keys, pool, record)
        finally:
            self._keeper.release(claim)

    def _settled(self, prompt: VideoPrompt, keys: VideoKeys) -> tuple[ManifestEntry | None, JobRecord | None]:
        """``(entry, None)`` when nothing is left to do (the video is in S3, or an earlier attempt failed for
        good); else ``(None, job record or None)``, the record read here so the caller need not read it again."""
        reused = self._reuse(prompt, keys)
        if reused is not None:
            self._say(prompt, f"reusing {reused.s3_uri} (already generated as {reused.video_id})")
            return reused, None
        record = read_job_record(self.s3, self.settings.bucket, keys)
        if record is not None and record.status == "failed" and not self.settings.regenerate_failed:
            error = record.extra.get("error", "failed")
            failed = self._failed(
                prompt,
                keys,
                f"an earlier run's video {record.video_id} failed ({error}); "
                "set regenerate_failed=True to pay for a new attempt",
                video_id=record.video_id,
            )
            return failed, None
        return None, record

    def _claim(self, prompt: VideoPrompt, keys: VideoKeys, *, announce: bool) -> ClaimHandle | None:
        """Claim the video's key; ``None`` while another live process holds it."""
        purpose = f"produce {keys.key}"
        handle = self._keeper.acquire(keys.claim, purpose)
        if handle is not None:
            return handle
        found = self._keeper.inspect(keys.claim)
        if found is None:  # released between our two requests
            return self._keeper.acquire(keys.claim, purpose)
        claim, etag = found
        if claim is None or claim.is_stale():
            holder = claim.owner if claim is not None else "an unreadable claim"
            self._say(prompt, f"taking over the stale claim of {holder} on {keys.key}", "warning")
            return self._keeper.take_over(keys.claim, etag, purpose)
        if announce:
            self._say(prompt, f"{claim.owner} is producing this video; waiting for its result")
        return None

    def _produce_claimed(
        self, prompt: VideoPrompt, keys: VideoKeys, pool: AccountPool, record: JobRecord | None
    ) -> ManifestEntry:
        """Reattach to ``record``'s job (read under the claim) or create the video."""
        settings = self.settings
        if record is not None and record.status != "failed":
            self._say(prompt, f"reattaching to {record.video_id} (created by an earlier run; no new create)")
            # The job occupies a slot of its account until it is final, whoever polls it: count it.
            held, slot = self._slot_for_reattach(pool, record.account)
            try:
                result = self._client().reattach(
                    record.video_id,
                    deadline=settings.generation_deadline,
                    on_status=lambda s: self._say(
                        prompt, f"status {s.status}, {s.percent or 0:.0f}%", "debug"
                    ),
                )
            except (VideoFailedError, ModeratedError) as exc:
                return self._record_failure(prompt, keys, record.video_id, record.account, exc)
            finally:
                if held:
                    pool.release(slot)
            return self._store(prompt, keys, result, reattached=True)
        return self._create(prompt, keys, pool)

    def _slot_for_reattach(self, pool: AccountPool, account: str | None) -> tuple[bool, str | None]:
        """``(True, slot)`` with a slot of the job's account, ``(False, None)`` when the account is no longer
        usable or configured (polling a paid video must never fail for want of a slot)."""
        try:
            return True, pool.acquire(account, timeout=self.settings.generation_deadline)
        except (NoUsableAccount, TimeoutError):
            return False, None

    def _reuse(self, prompt: VideoPrompt, keys: VideoKeys) -> ManifestEntry | None:
        bucket = self.settings.bucket
        sidecar = get_json(self.s3, bucket, keys.sidecar)
        if not isinstance(sidecar, dict) or "entry" not in sidecar:
            return None
        head = head_object(self.s3, bucket, keys.video)
        entry = ManifestEntry.model_validate(sidecar["entry"])
        if head is None or int(head.get("ContentLength", -1)) != entry.bytes:
            return None
        return entry.model_copy(
            update={
                "id": prompt.id,
                "prompt": prompt.prompt,
                "status": "reused",
                "metadata": prompt.metadata,
                "generation_seconds": None,
                "upload_seconds": None,
            }
        )

    def _create(self, prompt: VideoPrompt, keys: VideoKeys, pool: AccountPool) -> ManifestEntry:
        settings = self.settings
        pinned = prompt.account or _file_owner(prompt)
        limit = time.monotonic() + settings.generation_deadline
        while True:
            account = pool.acquire(pinned, timeout=max(0.0, limit - time.monotonic()))
            try:
                request = self._request(prompt, keys, account)
                video_ids: list[str] = []

                def remember(
                    video_id: str, account: str | None = account, video_ids: list[str] = video_ids
                ) -> None:
                    video_ids.append(video_id)
                    self._remember_job(prompt, keys, video_id, account)

                try:
                    result = self._client().generate(
                        request,
                        on_event=lambda e: self._log_event(prompt, e),
                        on_video_id=remember,
                        deadline=max(1.0, limit - time.monotonic()),
                    )
                except (VideoFailedError, ModeratedError) as exc:
                    vid = exc.video_id or (video_ids[0] if video_ids else None)
                    return self._record_failure(prompt, keys, vid, account, exc)
                except (OutOfCreditsError, AccountOnHoldError) as exc:
                    if video_ids:
                        raise
                    pool.disable(account, f"HTTP {exc.status} {exc.message}")
                    self._say(
                        prompt, f"account {account} unusable ({exc}); trying another account", "warning"
                    )
                    continue
                except CapacityError as exc:
                    if video_ids or time.monotonic() >= limit:
                        raise
                    wait = exc.retry_after if exc.retry_after is not None else settings.capacity_wait
                    self._say(prompt, f"no capacity ({exc.message}); waiting {wait:.1f} s", "warning")
                    time.sleep(min(max(wait, 0.05), max(0.0, limit - time.monotonic())))
                    continue
                except ServerError as exc:
                    # 502/503/504 before the stream outlasted the client's own retries: the service is busy
                    # (useapi: retry like a 429). No video id was given, so nothing was created to reattach to.
                    if video_ids or exc.status not in (502, 503, 504) or time.monotonic() >= limit:
                        raise
                    # A gateway error does not prove the job was not created: look for it by its replyRef
                    # before paying for another one.
                    found = (
                        self._client().find_executing_job(request.reply_ref) if request.reply_ref else None
                    )
                    if found is not None:
                        remember(found)
                        self._say(
                            prompt, f"the create answered {exc.status}, but job {found} exists; reattaching"
                        )
                        result = self._client().reattach(found, deadline=max(1.0, limit - time.monotonic()))
                        return self._store(prompt, keys, result, reattached=True)
                    wait = settings.capacity_wait
                    self._say(prompt, f"service busy ({exc}); waiting {wait:.1f} s", "warning")
                    time.sleep(min(max(wait, 0.05), max(0.0, limit - time.monotonic())))
                    continue
            finally:
                pool.release(account)
            return self._store(prompt, keys, result, reattached=False)

    def _request(self, prompt: VideoPrompt, keys: VideoKeys, account: str | None) -> AgentCreateRequest:
        file_id = oss_path = None
        if prompt.image_kind == "file_id":
            file_id, oss_path = prompt.image, prompt.oss_path
        elif prompt.image_kind in ("path", "url"):
            uploaded = self._upload_image(prompt, account)
            file_id, oss_path = uploaded.file_id, uploaded.oss_path
            account = account or uploaded.account
        return AgentCreateRequest(
            account=account,
            template_id=prompt.template_id or "",
            prompt=prompt.prompt,
            file_id=file_id,
            oss_path=oss_path,
            # Our key doubles as replyRef, so a stream lost before its first event can still be found.
            reply_ref=prompt.reply_ref or keys.key,
        )

    def _upload_image(self, prompt: VideoPrompt, account: str | None) -> UploadedFile:
        if prompt.image_kind == "path":
            data = Path(prompt.image or "").read_bytes()
        else:
            response = open_download(prompt.image or "", policy=self.settings.policy, session=self._session())
            with response:
                data = response.raw.read(MAX_IMAGE_BYTES + 1, decode_content=True)
            if len(data) > MAX_IMAGE_BYTES:
                raise StorageError(
                    f"image {redact_url(prompt.image)} is over {MAX_IMAGE_BYTES} bytes; use a smaller image"
                )
        digest = hashlib.sha256(data).hexdigest()
        with self._uploads_lock:
            cached = self._uploaded.get((digest, account))
        if cached is not None:
            return cached
        uploaded = self._client().upload_file(data, account=account)
        self._say(prompt, f"uploaded the input image as {uploaded.file_id}")
        with self._uploads_lock:
            self._uploaded[(digest, account)] = uploaded
        return uploaded

    def _remember_job(self, prompt: VideoPrompt, keys: VideoKeys, video_id: str, account: str | None) -> None:
        record = JobRecord(
            key=keys.key,
            video_id=video_id,
            template_id=prompt.template_id or "",
            prompt_sha256=prompt_sha256(prompt.prompt),
            account=account,
            status="running",
            extra={"prompt_id": prompt.id},
        )
        try:
            write_job_record(self.s3, self.settings.bucket, keys, record)
        except Exception as exc:  # the video is already paid for: keep streaming, but say it loudly
            self._say(prompt, f"could not record job {video_id} for crash-resume: {exc}", "error")

    def _log_event(self, prompt: VideoPrompt, event: StreamEvent) -> None:
        if event.is_heartbeat:
            self._say(prompt, "heartbeat", "debug", event)
        elif event.status == "created":
            self._say(prompt, f"created {event.video_id}", "info", event)
        elif event.status == "connected":
            self._say(prompt, "connected", "debug", event)
        elif event.status == "finished":
            self._say(prompt, "finished", "info", event)
        else:
            text = event.progress_text
            level = "warning" if event.is_error else "info"
            if event.is_error:
                text = f"error {event.err_code}: {event.err_msg or text}"
            elif text is not None and (text.endswith(": processing") or text == "agent finished"):
                level = "debug"  # restates the line before ("Generating ...") or after ("finished")
            self._say(prompt, text or f"{event.status} (type {event.type})", level, event)

    # ------------------------------------------------------------------------------------------ storing

    def _store(
        self, prompt: VideoPrompt, keys: VideoKeys, result: GenerationResult, *, reattached: bool
    ) -> ManifestEntry:
        settings = self.settings
        bucket = settings.bucket
        video = result.video
        metadata = {
            "video-id": _ascii(result.video_id),
            "template-id": _ascii(prompt.template_id or ""),
            "prompt-sha256": prompt_sha256(prompt.prompt),
            "content-key": keys.key,
        }
        try:
            uploaded = self._store_video(prompt, keys, result, metadata)
        except StorageError as exc:
            # The job record keeps the video id: a retry reattaches and downloads again, without paying.
            raise StorageError(f"video {result.video_id} was generated but not stored: {exc}") from None
        self._say(prompt, f"stored {uploaded.bytes} bytes at {uploaded.uri} in {uploaded.seconds:.2f} s")
        poster_uri = None
        if video.poster_url:
            try:
                poster = upload_from_url(
                    self.s3,
                    bucket,
                    keys.poster,
                    video.poster_url,
                    policy=settings.policy,
                    session=self._session(),
                    content_type=_image_type(video.poster_url),
                    metadata=metadata,
                    part_size=settings.part_size,
                )
                poster_uri = poster.uri
            except StorageError as exc:
                self._say(prompt, f"poster not stored: {exc}", "warning")
        entry = ManifestEntry(
            id=prompt.id,
            prompt=prompt.prompt,
            template_id=prompt.template_id or "",
            status="generated",
            key=keys.key,
            video_id=result.video_id,
            account=result.account,
            s3_uri=uploaded.uri,
            poster_uri=poster_uri,
            sidecar_uri=s3_uri(bucket, keys.sidecar),
            source_url=redact_url(video.best_url),
            poster_url=video.poster_url,
            width=video.width,
            height=video.height,
            duration_s=video.duration_s,
            fps=video.fps,
            bytes=uploaded.bytes,
            sha256=uploaded.sha256,
            generation_seconds=round(result.seconds, 3),
            upload_seconds=round(uploaded.seconds, 3),
            recovered=result.recovered and not reattached,
            reattached=reattached,
            recommended_templates=[t.model_dump(exclude_none=True) for t in result.recommended_templates],
            metadata=prompt.metadata,
        )
        put_json(
            self.s3,
            bucket,
            keys.sidecar,
            {
                "entry": entry.model_dump(mode="json"),
                "events": [e.to_wire() for e in result.events],
                "images": result.images,
            },
        )
        write_job_record(
            self.s3,
            bucket,
            keys,
            JobRecord(
                key=keys.key,
                video_id=result.video_id,
                template_id=prompt.template_id or "",
                prompt_sha256=prompt_sha256(prompt.prompt),
                account=result.account,
                status="finished",
                extra={"prompt_id": prompt.id, "s3_uri": uploaded.uri},
            ),
        )
        return entry

    def _store_video(
        self, prompt: VideoPrompt, keys: VideoKeys, result: GenerationResult, metadata: dict[str, str]
    ) -> UploadResult:
        """Stream the video into S3, trying again (``download_attempts``, exponential ``download_backoff``) when
        the download breaks or S3 fails: the video is paid for, and GET videos/{id} gives its URL again (a
        signed URL may have expired). A refused URL or an oversized body is not tried again."""
        settings = self.settings
        url = result.video.best_url
        attempts = max(1, settings.download_attempts)
        for attempt in range(1, attempts + 1):
            try:
                return upload_from_url(
                    self.s3,
                    settings.bucket,
                    keys.video,
                    url,
                    policy=settings.policy,
                    session=self._session(),
                    content_type="video/mp4",
                    metadata=metadata,
                    part_size=settings.part_size,
                )
            except (DownloadRefused, DownloadTooLarge):
                raise
            except (DownloadFailed, UploadFailed) as exc:
                if attempt == attempts:
                    raise StorageError(f"{exc} (attempt {attempt} of {attempts})") from None
                wait = settings.download_backoff * 2 ** (attempt - 1)
                self._say(
                    prompt,
                    f"storing {result.video_id} failed ({exc}); attempt {attempt + 1} of {attempts} in {wait:.1f} s",
                    "warning",
                )
                time.sleep(wait)
                url = self._fresh_video_url(result) or url
        raise AssertionError("unreachable")  # pragma: no cover

    def _fresh_video_url(self, result: GenerationResult) -> str | None:
        """The video's URL as GET videos/{id} gives it now, or ``None`` if that fails."""
        try:
            video = self._client().get_video(result.video_id).final_video()
        except MiniMaxError as exc:
            logger.warning("cannot refresh the URL of %s (%s); using the one we have", result.video_id, exc)
            return None
        return video.best_url if video is not None else None

    def _record_failure(
        self,
        prompt: VideoPrompt,
        keys: VideoKeys,
        video_id: str | None,
        account: str | None,
        exc: MiniMaxError,
    ) -> ManifestEntry:
        reason = f"{type(exc).__name__}: {exc.message}"
        if video_id:
            write_job_record(
                self.s3,
                self.settings.bucket,
                keys,
                JobRecord(
                    key=keys.key,
                    video_id=video_id,
                    template_id=prompt.template_id or "",
                    prompt_sha256=prompt_sha256(prompt.prompt),
                    account=account,
                    status="failed",
                    extra={"prompt_id": prompt.id, "error": reason},
                ),
            )
        self._say(prompt, f"failed: {reason}", "error")
        return self._failed(prompt, keys, reason, video_id=video_id)

    @staticmethod
    def _failed(
        prompt: VideoPrompt, keys: VideoKeys | None, error: str, *, video_id: str | None = None
    ) -> ManifestEntry:
        return ManifestEntry(
            id=prompt.id,
            prompt=prompt.prompt,
            template_id=prompt.template_id or "",
            status="failed",
            key=keys.key if keys else None,
            video_id=video_id,
            error=error,
            metadata=prompt.metadata,
        )


def _file_owner(prompt: VideoPrompt) -> str | None:
    if prompt.image_kind != "file_id":
        return None
    from minimax_dagster.api.models import parse_composite_id

    return parse_composite_id(prompt.image or "").get("minimax")


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def _image_type(url: str) -> str:
    path = url.split("?", 1)[0].lower()
    return "image/jpeg" if path.endswith((".jpg", ".jpeg")) else "image/png"
