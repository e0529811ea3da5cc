"""Job records: the crash-resume record of one paid generation, so that a re-run never pays twice.

>>> from minimax_dagster.storage import JobRecord
>>> JobRecord(key="v1-x", video_id="42", template_id="t", prompt_sha256="").status
'running'
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from minimax_dagster.storage.errors import CorruptObject
from minimax_dagster.storage.keys import VideoKeys
from minimax_dagster.storage.objects import get_json, put_json

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

__all__ = ["JobRecord", "read_job_record", "write_job_record"]

JobStatus = Literal["running", "finished", "failed"]


def _utc_now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


class JobRecord(BaseModel):
    """Crash-resume record of one paid generation, stored at ``VideoKeys.job``.

    Written as soon as the API returns a video id, so that a restarted run resumes polling
    that id instead of paying for a second video.

    >>> from minimax_dagster.storage import prompt_sha256
    >>> rec = JobRecord(key="v1-x", video_id="123", template_id="392747428568649728",
    ...                 prompt_sha256=prompt_sha256("a cat"), status="running")
    >>> JobRecord.model_validate_json(rec.model_dump_json()) == rec
    True
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    key: str = Field(min_length=1)
    video_id: str = Field(min_length=1)
    template_id: str = Field(min_length=1)
    prompt_sha256: str
    account: str | None = None
    created_at: str = Field(default_factory=_utc_now_iso)
    status: JobStatus = "running"
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("created_at")
    @classmethod
    def _iso_timestamp(cls, value: str) -> str:
        try:
            dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"created_at must be an ISO 8601 timestamp, got {value!r}") from None
        return value


def write_job_record(s3_client: S3Client, bucket: str, keys: VideoKeys, record: JobRecord) -> str:
    """Store ``record`` at ``keys.job``; return the ETag. The record's key must be ``keys.key``.

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


def read_job_record(s3_client: S3Client, bucket: str, keys: VideoKeys) -> JobRecord | None:
    """Load the job record at ``keys.job``; ``None`` when there is none.

    A record that exists but does not validate raises ``CorruptObject`` rather than returning
    ``None``: treating it as missing could pay for the same video twice.

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     read_job_record(s3, "bkt", VideoKeys("p", "v1-x")) is None
    True
    """
    data = get_json(s3_client, bucket, keys.job)
    if data is None:
        return None
    try:
        return JobRecord.model_validate(data)
    except ValueError as exc:
        raise CorruptObject(bucket, keys.job, f"invalid job record ({exc})") from None
