"""Job records: one object per video key, ``<prefix>/_jobs/<key>.json``, that is both the claim of the worker
producing the video and what is known about it, so that a re-run never pays twice.

The record goes through ``pending`` (claimed, no job created yet) → ``running`` (the stream named the video id:
crash-resume reattaches to it) → ``finished`` (the video is stored; the record carries its manifest entry) or
``failed`` (failed for good). Its ``holder`` is the claim of the process working on the key, ``None`` once
released. Created with ``If-None-Match: *`` (a success proves that no earlier record exists), then only ever
overwritten ``If-Match`` its ETag (see :class:`~minimax_dagster.storage.ClaimKeeper`).

>>> from minimax_dagster.storage import JobRecord
>>> JobRecord(key="v1-x", video_id="42", template_id="t", prompt_sha256="").status
'running'
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from minimax_dagster.storage.claims import Claim
from minimax_dagster.storage.errors import CorruptObject
from minimax_dagster.storage.keys import VideoKeys
from minimax_dagster.storage.objects import put_json, read_object

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

__all__ = ["JobRecord", "read_job_record", "read_job_record_with_etag", "write_job_record"]

JobStatus = Literal["pending", "running", "finished", "failed"]


def utc_now_iso() -> str:
    """The current UTC time, ISO 8601.

    >>> utc_now_iso().endswith("+00:00")
    True
    """
    return dt.datetime.now(dt.timezone.utc).isoformat()


class JobRecord(BaseModel):
    """The record of one video key, stored at ``VideoKeys.job`` (see the module docstring).

    ``video_id`` is set from ``running`` on (the API's id of the paid generation); ``created_at`` is when the
    record reached its ``status``; ``entry`` is the manifest entry of the stored video (``finished``), so reusing
    it needs no other read than a HEAD of the video; ``holder`` is the claim of the process producing the video.

    >>> from minimax_dagster.storage import prompt_sha256
    >>> rec = JobRecord(key="v1-x", video_id="123", template_id="392747428568649728",
    ...                 prompt_sha256=prompt_sha256("a cat"), status="running")
    >>> JobRecord.model_validate_json(rec.model_dump_json()) == rec
    True
    >>> try:
    ...     JobRecord(key="v1-x", template_id="1", prompt_sha256="", status="running")
    ... except ValueError as exc:
    ...     print(str(exc).splitlines()[1].split(" [")[0].strip())
    Value error, a 'running' job record needs its video_id (only 'pending' and 'failed' may have none)
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    key: str = Field(min_length=1)
    video_id: str | None = Field(None, min_length=1)
    template_id: str = Field(min_length=1)
    prompt_sha256: str
    account: str | None = None
    created_at: str = Field(default_factory=utc_now_iso)
    status: JobStatus = "running"
    holder: Claim | None = None
    entry: dict[str, Any] | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("created_at")
    @classmethod
    def _iso_timestamp(cls, value: str) -> str:
        try:
            dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"created_at must be an ISO 8601 timestamp, got {value!r}") from None
        return value

    @model_validator(mode="after")
    def _video_id_from_running_on(self) -> JobRecord:
        # A create whose outcome could not be known is recorded 'failed' without one, so no re-run pays blindly.
        if self.status in ("running", "finished") and self.video_id is None:
            raise ValueError(
                f"a {self.status!r} job record needs its video_id (only 'pending' and 'failed' may have none)"
            )
        return self

    def moved_to(self, status: JobStatus, **changes: Any) -> JobRecord:
        """This record in a new ``status`` (stamped now), with ``changes`` to its other fields; validated.

        >>> pending = JobRecord(key="v1-x", template_id="1", prompt_sha256="", status="pending")
        >>> pending.moved_to("running", video_id="42").video_id
        '42'
        """
        data = self.model_dump()
        data.update(changes, status=status, created_at=utc_now_iso())
        return JobRecord.model_validate(data)


def write_job_record(s3_client: S3Client, bucket: str, keys: VideoKeys, record: JobRecord) -> str:
    """Store ``record`` at ``keys.job`` unconditionally (tools and tests: the producer writes records only
    through its :class:`~minimax_dagster.storage.ClaimKeeper`); return the ETag. The record's key must be
    ``keys.key``.

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     keys = VideoKeys("p", "v1-x")
    ...     rec = JobRecord(key="v1-x", video_id="42", template_id="t", prompt_sha256="")
    ...     _ = write_job_record(s3, "bkt", keys, rec)
    ...     read_job_record(s3, "bkt", keys) == rec
    True
    """
    if record.key != keys.key:
        raise ValueError(f"record.key {record.key!r} does not match keys.key {keys.key!r}")
    return put_json(s3_client, bucket, keys.job, record)


def read_job_record_with_etag(
    s3_client: S3Client, bucket: str, keys: VideoKeys
) -> tuple[JobRecord, str] | None:
    """``(record, etag)`` of the job record at ``keys.job`` in one GET; ``None`` when there is none.

    A record that exists but does not validate raises ``CorruptObject`` rather than returning ``None``:
    treating it as missing could pay for the same video twice.

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import put_bytes, s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     keys = VideoKeys("p", "v1-x")
    ...     missing = read_job_record_with_etag(s3, "bkt", keys)
    ...     _ = put_bytes(s3, "bkt", keys.job, b'{"key": "v1-x", "video_id": "1", "template_id": "1", "prompt_sha256": ""}')
    ...     record, etag = read_job_record_with_etag(s3, "bkt", keys)
    >>> missing, record.status, record.video_id, len(etag)
    (None, 'running', '1', 32)
    """
    found = read_object(s3_client, bucket, keys.job)
    if found is None:
        return None
    data, etag = found
    try:
        return JobRecord.model_validate_json(data), etag
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'record'}: {error['msg']}" for error in exc.errors()
        )
        raise CorruptObject(
            bucket,
            keys.job,
            f"invalid job record ({problems}); if it names a video id, fix the record to reattach to that "
            "video, else delete it to produce the video again",
        ) from None


def read_job_record(s3_client: S3Client, bucket: str, keys: VideoKeys) -> JobRecord | None:
    """Load the job record at ``keys.job``; ``None`` when there is none (see :func:`read_job_record_with_etag`).

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     read_job_record(s3, "bkt", VideoKeys("p", "v1-x")) is None
    True
    """
    found = read_job_record_with_etag(s3_client, bucket, keys)
    return None if found is None else found[0]
