"""Storing results: a generated video, its poster and sidecar, and the job record, in S3; and reading them back.

For a video key ``k`` under the prefix (see :class:`~minimax_dagster.storage.VideoKeys`):

- ``videos/k.mp4``: the video (the no-watermark URL when the API gives one), streamed into S3: one PutObject
  when it fits in one part, else a multipart upload; either way the object appears whole or not at all;
- ``videos/k.png|jpg``: its poster;
- ``videos/k.json``: the sidecar: the manifest entry, every stream event, the images the agent made;
- ``_jobs/k.json``: the job record, which is also the key's claim (see
  :mod:`~minimax_dagster.production.held_records`): ``pending`` when claimed, ``running`` the moment the stream names
  the video id (crash-resume reattaches to it instead of paying again), then ``finished`` (with the manifest
  entry, written after everything else: a finished record whose entry's size matches the video's object means
  the video is complete) or ``failed``.

>>> keys = VideoKeys("minimax", "v1-abc")
>>> keys.video, keys.sidecar, keys.job
('minimax/videos/v1-abc.mp4', 'minimax/videos/v1-abc.json', 'minimax/_jobs/v1-abc.json')
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import requests

from minimax_dagster.api.client import GenerationResult, MiniMaxClient
from minimax_dagster.api.errors import MiniMaxError
from minimax_dagster.production.entries import entry_for, failed_entry
from minimax_dagster.production.held_records import HeldRecord
from minimax_dagster.production.manifest import ManifestEntry
from minimax_dagster.production.notes import NoteQueue
from minimax_dagster.production.producer_settings import ProducerSettings
from minimax_dagster.production.prompts import VideoPrompt
from minimax_dagster.storage import (
    DownloadFailed,
    DownloadRefused,
    DownloadTooLarge,
    JobRecord,
    StorageError,
    UploadFailed,
    UploadResult,
    VideoKeys,
    get_json,
    head_object,
    prompt_sha256,
    put_json,
    read_job_record_with_etag,
    redact_url,
    s3_uri,
    upload_from_url,
)

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

logger = logging.getLogger("minimax_dagster.production.store")

#: Takes ``(prompt, the poster's s3:// URI, its bytes)`` of a poster just stored (see :class:`ResultStore`).
PosterHandler = Callable[[VideoPrompt, str, bytes], None]


class ResultStore:
    """Writes and reads the S3 objects of produced videos (see the module docstring for the layout).

    Args:
        s3_client: a boto3 S3 client (thread-safe).
        settings: the bucket, prefix, download policy and retry settings.
        client: the calling thread's :class:`MiniMaxClient` (a fresh video URL when a download must be retried).
        session: the calling thread's ``requests.Session`` (downloads).
        notes: where progress is said.
        on_poster: called on the worker's thread with ``(prompt, poster's s3:// URI, its bytes)`` for each poster
            just stored in one request (the caller's thumbnails, without reading the poster back from S3);
            what it raises is logged, and the video is stored all the same.

    >>> import boto3
    >>> from minimax_dagster.storage import DownloadPolicy
    >>> from moto import mock_aws
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1")
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     settings = ProducerSettings(bucket="bkt", prefix="p", policy=DownloadPolicy(allowed_hosts=("x.com",)))
    ...     store = ResultStore(s3, settings, client=lambda: MiniMaxClient("t"), session=requests.Session,
    ...                         notes=NoteQueue())
    ...     fox = VideoPrompt(id="fox", prompt="A fox", template_id="1")
    ...     keys = VideoKeys("p", "v1-fox")
    ...     print(store.look(keys))
    None
    """

    def __init__(
        self,
        s3_client: S3Client,
        settings: ProducerSettings,
        *,
        client: Callable[[], MiniMaxClient],
        session: Callable[[], requests.Session],
        notes: NoteQueue,
        on_poster: PosterHandler | None = None,
    ) -> None:
        self.s3 = s3_client
        self.settings = settings
        self._client = client
        self._session = session
        self._notes = notes
        self._on_poster = on_poster

    # ------------------------------------------------------------------------------------------ reading

    def look(self, keys: VideoKeys) -> tuple[JobRecord, str] | None:
        """The job record of ``keys`` with its ETag (one GET), ``None`` when there is none."""
        return read_job_record_with_etag(self.s3, self.settings.bucket, keys)

    def reusable(self, prompt: VideoPrompt, keys: VideoKeys, record: JobRecord) -> ManifestEntry | None:
        """The entry of the video a ``finished`` record names, as ``prompt``'s (``reused``), if its object is
        whole (a HEAD: there and of the recorded size); ``None`` when it is not, so that it is stored again.

        A record written before records carried the entry is read with its sidecar (one more GET)."""
        bucket = self.settings.bucket
        data = record.entry
        if data is None:
            sidecar = get_json(self.s3, bucket, keys.sidecar)
            if not isinstance(sidecar, dict) or "entry" not in sidecar:
                return None
            data = sidecar["entry"]
        entry = ManifestEntry.model_validate(data)
        head = head_object(self.s3, bucket, keys.video)
        if head is None or int(head.get("ContentLength", -1)) != entry.bytes:
            return None
        return entry_for(entry, prompt)

    # ------------------------------------------------------------------------------------------ job records

    def remember_job(self, prompt: VideoPrompt, held: HeldRecord, video_id: str, account: str | None) -> None:
        """Record the paid job as ``running`` (crash-resume); a failure is said loudly but does not stop the
        stream (the video is already paid for)."""
        try:
            kept = held.running(video_id, account)
        except Exception as exc:
            self._notes.say(prompt, f"could not record job {video_id} for crash-resume: {exc}", "error")
            return
        if not kept:
            self._notes.say(
                prompt,
                f"could not record job {video_id}: another worker took the claim over (this one did not renew "
                "it within claim_ttl); going on with the video already paid for",
                "error",
            )

    def record_failure(
        self,
        prompt: VideoPrompt,
        keys: VideoKeys,
        held: HeldRecord,
        video_id: str | None,
        account: str | None,
        exc: MiniMaxError,
    ) -> ManifestEntry:
        """The video failed for good (failed or moderated): record it, so a re-run does not pay again unless
        asked to (``regenerate_failed``)."""
        reason = f"{type(exc).__name__}: {exc.message}"
        if video_id:
            held.failed(video_id, account, reason)
        self._notes.say(prompt, f"failed: {reason}", "error")
        return failed_entry(prompt, keys, reason, video_id=video_id)

    # ------------------------------------------------------------------------------------------ storing

    def store(
        self,
        prompt: VideoPrompt,
        keys: VideoKeys,
        result: GenerationResult,
        held: HeldRecord,
        *,
        reattached: bool,
    ) -> ManifestEntry:
        """Store a finished generation: the video, then its poster, then the sidecar; then the ``held`` record
        turns ``finished`` (with the entry) and is released, in one request.

        A video that cannot be stored raises ``StorageError``; its job record keeps the video id, so a retry
        reattaches and downloads again without paying. A poster that cannot be stored is only a warning.
        """
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
            raise StorageError(f"video {result.video_id} was generated but not stored: {exc}") from None
        self._notes.say(
            prompt, f"stored {uploaded.bytes} bytes at {uploaded.uri} in {uploaded.seconds:.2f} s"
        )
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
                    keep_body=self._on_poster is not None,
                )
                poster_uri = poster.uri
            except StorageError as exc:
                self._notes.say(prompt, f"poster not stored: {exc}", "warning")
            else:
                self._hand_over_poster(prompt, poster)
        entry = ManifestEntry(
            id=prompt.id,
            partition=prompt.partition,
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
        if not held.finished(entry):
            self._notes.say(
                prompt,
                f"stored, but its job record could not be marked finished: a later run will store {result.video_id} "
                "again (no new create)",
                "warning",
            )
        return entry

    def _hand_over_poster(self, prompt: VideoPrompt, poster: UploadResult) -> None:
        if self._on_poster is None or poster.body is None:
            return
        try:
            self._on_poster(prompt, poster.uri, poster.body)
        except Exception:  # the caller's illustration must not cost a stored video
            logger.warning("the poster handler failed for %s", poster.uri, exc_info=True)

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
                self._notes.say(
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


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def _image_type(url: str) -> str:
    path = url.split("?", 1)[0].lower()
    return "image/jpeg" if path.endswith((".jpg", ".jpeg")) else "image/png"
