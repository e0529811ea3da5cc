"""Job records (minimax_dagster.storage.records) against moto's S3 server."""

from __future__ import annotations

import datetime as dt

import pytest

from minimax_dagster.storage import (
    CorruptObject,
    JobRecord,
    VideoKeys,
    get_json,
    prompt_sha256,
    put_json,
    read_job_record,
    video_key,
    write_job_record,
)


def test_job_record_round_trip(s3_client, bucket) -> None:
    keys = VideoKeys("minimax", video_key("t", "a cat", None))
    assert read_job_record(s3_client, bucket, keys) is None
    record = JobRecord(
        key=keys.key,
        video_id="user:1-minimax:2-video:3",
        template_id="t",
        prompt_sha256=prompt_sha256("a cat"),
        account="acct-1",
        status="running",
        extra={"replyRef": "r", "attempt": 1},
    )
    write_job_record(s3_client, bucket, keys, record)
    loaded = read_job_record(s3_client, bucket, keys)
    assert loaded == record
    dt.datetime.fromisoformat(loaded.created_at)

    finished = record.model_copy(update={"status": "finished"})
    write_job_record(s3_client, bucket, keys, finished)
    assert read_job_record(s3_client, bucket, keys).status == "finished"
    assert get_json(s3_client, bucket, keys.job)["video_id"] == "user:1-minimax:2-video:3"


def test_job_record_validation(s3_client, bucket) -> None:
    keys = VideoKeys("minimax", "v1-abc")
    with pytest.raises(ValueError, match="status"):
        JobRecord(key="v1-abc", video_id="1", template_id="t", prompt_sha256="", status="done")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="created_at"):
        JobRecord(key="v1-abc", video_id="1", template_id="t", prompt_sha256="", created_at="yesterday")
    other = JobRecord(key="v1-other", video_id="1", template_id="t", prompt_sha256="")
    with pytest.raises(ValueError, match="does not match"):
        write_job_record(s3_client, bucket, keys, other)


def test_job_record_ignores_unknown_fields_but_refuses_invalid(s3_client, bucket) -> None:
    keys = VideoKeys("minimax", "v1-abc")
    base = {"key": "v1-abc", "video_id": "1", "template_id": "t", "prompt_sha256": "", "status": "failed"}
    put_json(s3_client, bucket, keys.job, {**base, "future_field": 1})
    assert read_job_record(s3_client, bucket, keys).status == "failed"
    put_json(s3_client, bucket, keys.job, {**base, "video_id": None})
    with pytest.raises(CorruptObject, match="invalid job record"):
        read_job_record(s3_client, bucket, keys)
