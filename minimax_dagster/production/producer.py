"""``VideoProducer``: turns validated prompts into videos in S3, concurrently, without ever paying twice.

The producer plans the run (each prompt's video key, from its template, text and identified input image;
prompts asking for the same video are produced once), then runs the per-video steps
(:mod:`~minimax_dagster.production.steps`: claim → reuse → reattach → create → store) on worker threads, at most
the accounts' capacity generating at once (:mod:`~minimax_dagster.production.capacity`). It composes the API
client and the storage layer; it does not import dagster.

Its :meth:`~VideoProducer.run` is a generator of :class:`~minimax_dagster.production.notes.Note` s (log lines and
finished entries) produced by the worker threads and handed over on the caller's thread, so a Dagster step can
log them in order from its own thread.

>>> import boto3
>>> from minimax_dagster.api.client import MiniMaxClient
>>> from minimax_dagster.storage import DownloadPolicy
>>> settings = ProducerSettings(bucket="b", prefix="p", policy=DownloadPolicy(allowed_hosts=("x.com",)))
>>> producer = VideoProducer(lambda: MiniMaxClient("token"), boto3.client("s3", region_name="us-east-1"), settings)
>>> producer.produce([])
[]
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests

from minimax_dagster.api.client import MiniMaxClient
from minimax_dagster.api.reconcile import SharedBaselines
from minimax_dagster.api.transport import EnvironmentOnceSession
from minimax_dagster.production.budget import RunBudget
from minimax_dagster.production.capacity import AccountPool, account_pool
from minimax_dagster.production.entries import entry_for, failed_entry
from minimax_dagster.production.images import ImageSource, InputImages, identify_image
from minimax_dagster.production.manifest import ManifestEntry
from minimax_dagster.production.notes import Note, NoteQueue
from minimax_dagster.production.preview import PlannedOutcome, ProductionPlan
from minimax_dagster.production.producer_settings import ProducerSettings
from minimax_dagster.production.prompts import VideoPrompt
from minimax_dagster.production.steps import PlannedVideo, VideoSteps
from minimax_dagster.production.store import PosterHandler, ResultStore
from minimax_dagster.storage import ClaimKeeper, VideoKeys, video_key

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

logger = logging.getLogger("minimax_dagster.production.producer")

#: At most this many S3 images are looked up (HeadObject) at once while a run is planned.
IDENTIFY_THREADS = 16

RowKey = tuple[str | None, str]  # (partition, id): what names a prompt row


@dataclass(frozen=True)
class _Unplanned:
    """A prompt whose video key could not be made (unreadable file, unusable S3 image): it fails alone."""

    prompt: VideoPrompt
    error: Exception


class VideoProducer:
    """Produces videos for prompts (see the module docstring).

    Args:
        client_factory: builds a :class:`MiniMaxClient`; called once per worker thread.
        s3_client: a boto3 S3 client (thread-safe), built with ``storage.s3_client_config()``; it stores the
            videos and reads ``s3://`` input images.
        settings: bucket, prefix, download policy, accounts and limits.
        on_poster: given each poster just stored, with its bytes, on a worker thread (see
            :class:`~minimax_dagster.production.store.ResultStore`); a Dagster step makes thumbnails of them.
        budget: every create reserves its cost here first (:mod:`~minimax_dagster.production.budget`).

    >>> import boto3
    >>> from minimax_dagster.storage import DownloadPolicy
    >>> settings = ProducerSettings(bucket="b", prefix="p", policy=DownloadPolicy(allowed_hosts=("x.com",)))
    >>> VideoProducer(lambda: MiniMaxClient("t"), boto3.client("s3", region_name="us-east-1"), settings).settings.bucket
    'b'
    """

    def __init__(
        self,
        client_factory: Callable[[], MiniMaxClient],
        s3_client: S3Client,
        settings: ProducerSettings,
        *,
        on_poster: PosterHandler | None = None,
        budget: RunBudget | None = None,
    ) -> None:
        self.client_factory = client_factory
        self.budget = budget
        self.s3 = s3_client
        self.settings = settings
        self._local = threading.local()
        self._notes = NoteQueue()
        self._baselines = SharedBaselines()
        self._clients: list[MiniMaxClient] = []
        self._sessions: list[requests.Session] = []
        self._clients_lock = threading.Lock()
        self._keeper = ClaimKeeper(s3_client, settings.bucket, ttl=settings.claim_ttl)
        self._store = ResultStore(
            s3_client,
            settings,
            client=self._client,
            session=self._session,
            notes=self._notes,
            on_poster=on_poster,
        )
        # Kept across runs of this producer: an image uploaded for one run is not uploaded again by the next.
        self._images = InputImages(
            s3_client,
            settings.policy,
            max_bytes=settings.image_limit,
            client=self._client,
            session=self._session,
            notes=self._notes,
        )

    # ------------------------------------------------------------------------------------------ running

    def run(self, prompts: list[VideoPrompt]) -> Iterator[Note]:
        """Produce every prompt, ``capacity`` at a time; yields notes on the caller's thread as they come.

        Entries come out in completion order; each prompt (each ``(partition, id)``) yields exactly one entry.
        Prompts that ask for the same video (same template, text and image), in one partition or several, are
        generated once; the others reuse it, each with its own partition and id.
        """
        leaders, followers = self._plan(prompts)
        settings = self.settings
        self._keeper = ClaimKeeper(self.s3, settings.bucket, ttl=settings.claim_ttl)
        pool = account_pool(settings, self._keeper)
        steps = VideoSteps(
            settings,
            self._keeper,
            self._store,
            self._images,
            client=self._client,
            notes=self._notes,
            budget=self.budget,
        )
        # Twice as many workers as slots: a worker storing a finished video (its slot already given back) or
        # checking S3 for the next prompt does not leave a slot idle; the extra workers wait in pool.acquire.
        workers = max(1, min(2 * settings.capacity, len(leaders)))
        futures: list[Future[None]] = []
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="minimax") as executor:
                for item in leaders:
                    futures.append(executor.submit(self._produce_safely, item, steps, pool))
                settled = 0
                while settled < len(leaders) or not self._notes.empty():
                    notes = self._notes.take(timeout=0.1)
                    if not notes and all(f.done() for f in futures) and self._notes.empty():
                        break
                    for note in notes:
                        yield note
                        if note.entry is not None and note.prompt_id is not None:
                            yield from _follower_notes(
                                note.entry, followers.get((note.partition, note.prompt_id), [])
                            )
                            # A leader's entry is its worker's last note: after the last one nothing can
                            # come, and the run ends now rather than after one more wait on the empty queue.
                            settled += 1
        finally:
            for f in futures:
                f.cancel()
            pool.close()
            self._keeper.close()
            with self._clients_lock:
                for client in self._clients:
                    client.close()
                self._clients.clear()
                for session in self._sessions:
                    session.close()
                self._sessions.clear()
            self._local = threading.local()  # the closed sessions and clients are not handed out again

    def produce(self, prompts: list[VideoPrompt]) -> list[ManifestEntry]:
        """Run without a caller-side logger: log notes to ``logging`` and return the entries in prompt order.

        >>> import boto3
        >>> from minimax_dagster.storage import DownloadPolicy
        >>> settings = ProducerSettings(bucket="b", prefix="p", policy=DownloadPolicy(allowed_hosts=("x.com",)))
        >>> producer = VideoProducer(lambda: MiniMaxClient("t"), boto3.client("s3", region_name="us-east-1"), settings)
        >>> [e.error for e in producer.produce([VideoPrompt(id="a", template_id="1", image="/no/such.png")])]
        ["FileNotFoundError: [Errno 2] No such file or directory: '/no/such.png'"]
        """
        by_row: dict[RowKey, ManifestEntry] = {}
        for note in self.run(prompts):
            if note.entry is not None:
                by_row[note.entry.partition, note.entry.id] = note.entry
            elif note.message:
                logger.log(logging.getLevelName(note.level.upper()), note.message)
        return [by_row[p.partition, p.id] for p in prompts if (p.partition, p.id) in by_row]

    # ------------------------------------------------------------------------------------------ planning

    def plan(self, prompts: list[VideoPrompt]) -> ProductionPlan:
        """What :meth:`run` would do with ``prompts`` now, found by reading only (no claim, no write, no upload,
        no create): see :mod:`~minimax_dagster.production.preview`. Reads each video's sidecar, object head and
        job record (``IDENTIFY_THREADS`` at a time), and each ``s3://`` image's head.

        >>> import boto3
        >>> from moto import mock_aws
        >>> from minimax_dagster.storage import DownloadPolicy
        >>> with mock_aws():
        ...     s3 = boto3.client("s3", region_name="us-east-1")
        ...     _ = s3.create_bucket(Bucket="bkt")
        ...     settings = ProducerSettings(bucket="bkt", prefix="p", policy=DownloadPolicy(allowed_hosts=("x.com",)))
        ...     producer = VideoProducer(lambda: MiniMaxClient("t"), s3, settings)
        ...     plan = producer.plan([VideoPrompt(id=i, prompt="A fox", template_id="1") for i in ("a", "b")])
        >>> [(o.prompt.id, o.decision) for o in plan.outcomes], plan.new_videos
        ([('a', 'create'), ('b', 'same_video')], 1)
        """
        leaders, followers = self._plan(prompts)
        planned = [item for item in leaders if isinstance(item, PlannedVideo)]
        if planned:
            with ThreadPoolExecutor(min(IDENTIFY_THREADS, len(planned)), "minimax-plan") as executor:
                looked = dict(zip((id(v) for v in planned), executor.map(self._look, planned), strict=True))
        else:
            looked = {}
        by_row: dict[RowKey, PlannedOutcome] = {}
        for item in leaders:
            prompt = item.prompt
            if isinstance(item, _Unplanned):
                error = f"{type(item.error).__name__}: {item.error}"
                by_row[prompt.partition, prompt.id] = PlannedOutcome(prompt, "known_fail", None, reason=error)
                continue
            outcome = looked[id(item)]
            by_row[prompt.partition, prompt.id] = outcome
            for follower in followers.get((prompt.partition, prompt.id), []):
                by_row[follower.partition, follower.id] = PlannedOutcome(
                    follower,
                    "same_video",
                    outcome.key,
                    video_id=outcome.video_id,
                    reason=f"{prompt.label}: {outcome.decision}",
                )
        return ProductionPlan([by_row[p.partition, p.id] for p in prompts if (p.partition, p.id) in by_row])

    def _look(self, video: PlannedVideo) -> PlannedOutcome:
        """The decision the steps would take for ``video`` now (as ``VideoSteps.claim`` and ``work``), read only:
        one GET of the job record, and a HEAD of the video when the record says ``finished``."""
        prompt, keys = video.prompt, video.keys
        looked = self._store.look(keys)
        if looked is None:
            return PlannedOutcome(prompt, "create", keys.key, reason="not in S3 and no job record: a new job")
        record = looked[0]
        if record.status == "finished":
            stored = self._store.reusable(prompt, keys, record)
            if stored is not None:
                return PlannedOutcome(
                    prompt, "reuse", keys.key, video_id=stored.video_id, reason=f"in S3 at {stored.s3_uri}"
                )
        what = f"video {record.video_id}" if record.video_id else "create"
        if record.status == "failed":
            error = record.extra.get("error", "failed")
            if self.settings.regenerate_failed:
                return PlannedOutcome(
                    prompt,
                    "create",
                    keys.key,
                    reason=f"a new attempt (regenerate_failed) after the earlier {what} failed ({error})",
                )
            return PlannedOutcome(
                prompt,
                "known_fail",
                keys.key,
                video_id=record.video_id,
                reason=f"an earlier run's {what} failed ({error}); "
                "set regenerate_failed=True to pay for a new attempt",
            )
        if record.video_id:
            return PlannedOutcome(
                prompt,
                "reattach",
                keys.key,
                video_id=record.video_id,
                reason=f"job {record.video_id} of an earlier run ({record.status}): awaited, not created again",
            )
        # A record without a video id: claimed (pending) but never created, or finished with its object gone.
        return PlannedOutcome(
            prompt, "create", keys.key, reason=f"job record {record.status} without a video"
        )

    def _plan(
        self, prompts: list[VideoPrompt]
    ) -> tuple[list[PlannedVideo | _Unplanned], dict[RowKey, list[VideoPrompt]]]:
        """The leaders (the first prompt of each video, in order) and, by leader row, the prompts that ask for
        the same video."""
        leaders: list[PlannedVideo | _Unplanned] = []
        followers: dict[RowKey, list[VideoPrompt]] = {}
        by_key: dict[str, VideoPrompt] = {}
        for prompt, image in zip(prompts, self._identify(prompts), strict=True):
            if isinstance(image, Exception):
                leaders.append(_Unplanned(prompt, image))
                continue
            key = video_key(prompt.template_id or "", prompt.prompt, image.ref)
            leader = by_key.get(key)
            if leader is None:
                by_key[key] = prompt
                leaders.append(PlannedVideo(prompt, VideoKeys(self.settings.prefix, key), image))
            else:
                followers.setdefault((leader.partition, leader.id), []).append(prompt)
        return leaders, followers

    def _identify(self, prompts: list[VideoPrompt]) -> list[ImageSource | Exception]:
        """Each prompt's image identity (or why it has none); an S3 image is looked up once per URI, several
        at once."""
        limit = self.settings.image_limit

        def identify(prompt: VideoPrompt) -> ImageSource | Exception:
            try:
                return identify_image(prompt, self.s3, max_bytes=limit)
            except Exception as exc:  # this prompt fails alone; the others go on
                return exc

        first_by_uri: dict[str, VideoPrompt] = {}
        for prompt in prompts:
            if prompt.image_kind == "s3":
                first_by_uri.setdefault(prompt.image or "", prompt)
        if len(first_by_uri) > 1:
            with ThreadPoolExecutor(min(IDENTIFY_THREADS, len(first_by_uri)), "minimax-identify") as executor:
                found = dict(zip(first_by_uri, executor.map(identify, first_by_uri.values()), strict=True))
        else:
            found = {uri: identify(prompt) for uri, prompt in first_by_uri.items()}
        return [found[p.image or ""] if p.image_kind == "s3" else identify(p) for p in prompts]

    # ------------------------------------------------------------------------------------------ one worker

    def _produce_safely(self, item: PlannedVideo | _Unplanned, steps: VideoSteps, pool: AccountPool) -> None:
        prompt = item.prompt
        try:
            if isinstance(item, _Unplanned):
                raise item.error
            entry = steps.produce(item, pool)
        except Exception as exc:
            logger.debug("prompt %s failed", prompt.label, exc_info=True)
            entry = failed_entry(prompt, None, f"{type(exc).__name__}: {exc}")
            self._notes.say(prompt, f"failed: {entry.error}", "error")
        self._notes.finished(prompt, entry)

    def _client(self) -> MiniMaxClient:
        """This thread's API client (made on first use, closed when the run ends)."""
        client: MiniMaxClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self.client_factory()
            # A wave of creates on one account reads its baseline once (see SharedBaselines).
            client.shared_baselines = self._baselines
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _session(self) -> requests.Session:
        """This thread's download session (made on first use, closed when the run ends)."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = EnvironmentOnceSession()
            self._local.session = session
            with self._clients_lock:
                self._sessions.append(session)
        return session


def _follower_notes(entry: ManifestEntry, followers: list[VideoPrompt]) -> Iterator[Note]:
    """The notes of the prompts that asked for the same video as ``entry``'s: a line and an entry each."""
    leader = f"{entry.partition}/{entry.id}" if entry.partition else entry.id
    for prompt in followers:
        copy = entry_for(entry, prompt)
        yield Note(
            message=f"[{prompt.label}] same video as {leader}: {copy.status}",
            prompt_id=prompt.id,
            partition=prompt.partition,
        )
        yield Note(entry=copy, prompt_id=prompt.id, partition=prompt.partition)
