"""The job record of a video key as the producer uses it: a new record is also the claim on the key, and every
change of it (the video id, the stored video, a failure, giving the key up) is one conditional write.

See :mod:`minimax_dagster.storage.job_records` for the record itself. A worker holds the record of each video it
produces (:class:`HeldRecord`): the ``holder`` field of the object is its claim, renewed by the run's
:class:`~minimax_dagster.storage.ClaimKeeper` while it works.

>>> from minimax_dagster.storage import VideoKeys
>>> record = new_record(VideoPrompt(id="fox", prompt="A fox", template_id="1", partition="p1"), VideoKeys("p", "v1-x"))
>>> record.status, record.video_id, record.extra
('pending', None, {'prompt_id': 'fox', 'partition': 'p1'})
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from minimax_dagster.production.manifest import ManifestEntry
from minimax_dagster.production.prompts import VideoPrompt
from minimax_dagster.storage import Claim, ClaimHandle, ClaimKeeper, JobRecord, VideoKeys, prompt_sha256


def new_record(prompt: VideoPrompt, keys: VideoKeys) -> JobRecord:
    """The ``pending`` record a worker creates to claim ``keys`` for ``prompt`` (no job created yet).

    >>> from minimax_dagster.storage import VideoKeys
    >>> new_record(VideoPrompt(id="a", template_id="1"), VideoKeys("p", "v1-a")).extra
    {'prompt_id': 'a'}
    """
    about: dict[str, Any] = {"prompt_id": prompt.id}
    if prompt.partition is not None:
        about["partition"] = prompt.partition
    return JobRecord(
        key=keys.key,
        template_id=prompt.template_id or "",
        prompt_sha256=prompt_sha256(prompt.prompt),
        status="pending",
        extra=about,
    )


@dataclass
class HeldRecord:
    """The job record of one video key while this worker holds it; each method is one ``If-Match`` write.

    ``taken_from`` is the claim of a holder whose claim went stale (it died, or stopped renewing) and that this
    worker took over; ``None`` when the worker created the record or took over a released one.

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import VideoKeys, read_job_record, s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     keeper, keys = ClaimKeeper(s3, "bkt"), VideoKeys("p", "v1-fox")
    ...     fox = VideoPrompt(id="fox", prompt="A fox", template_id="1")
    ...     held = HeldRecord(keeper, keeper.acquire(keys.job, "produce", new_record(fox, keys)))
    ...     claimed = read_job_record(s3, "bkt", keys)
    ...     _ = held.running("user:1-minimax:2-video:3", "2")
    ...     held.release()
    ...     released = read_job_record(s3, "bkt", keys)
    ...     keeper.close()
    >>> claimed.status, claimed.holder.owner == keeper.owner, released.status, released.holder
    ('pending', True, 'running', None)
    """

    keeper: ClaimKeeper
    handle: ClaimHandle
    taken_from: Claim | None = None

    @property
    def record(self) -> JobRecord:
        """The record as this worker last wrote it."""
        return cast("JobRecord", self.handle.record)

    def running(self, video_id: str, account: str | None) -> bool:
        """The stream named the video id: record it, so that a crash from here on reattaches instead of paying
        again. ``False`` when the record was lost to another process (S3 errors are raised)."""
        return self.keeper.update(
            self.handle, self.record.moved_to("running", video_id=video_id, account=account)
        )

    def finished(self, entry: ManifestEntry) -> bool:
        """The video is stored: write the record ``finished``, with ``entry``, and give the key up, in one
        request. ``False`` when that write did not land (the video stays stored; see :meth:`ClaimKeeper.release`)."""
        record = self.record.moved_to(
            "finished",
            video_id=entry.video_id,
            account=entry.account,
            # The video's fields only: a row reusing it brings its own prompt and metadata (see entry_for), and
            # a job record keeps no prompt text (prompt_sha256 names it).
            entry=entry.model_dump(mode="json", exclude={"prompt", "metadata"}),
            extra={**self.record.extra, "s3_uri": entry.s3_uri},
        )
        return self.keeper.release(self.handle, record)

    def failed(self, video_id: str | None, account: str | None, error: str) -> bool:
        """The video failed for good: write the record ``failed`` and give the key up, in one request."""
        record = self.record.moved_to(
            "failed", video_id=video_id, account=account, extra={**self.record.extra, "error": error}
        )
        return self.keeper.release(self.handle, record)

    def release(self) -> None:
        """Give the key up as it is (nothing sent when already finished, failed, released or lost)."""
        self.keeper.release(self.handle)
