"""Job records (minimax_dagster.storage.job_records), which are also the video keys' claims, against moto's S3
server."""

from __future__ import annotations

import datetime as dt

import pytest

from minimax_dagster.storage import (
    CorruptObject,
    JobRecord,
    VideoKeys,
    get_json,
    head_object,
    prompt_sha256,
    put_bytes,
    put_json,
    read_job_record,
    read_job_record_with_etag,
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
    # 'failed' may lack a video id (a create whose outcome was unknown); 'finished' may not.
    put_json(s3_client, bucket, keys.job, {**base, "video_id": None})
    assert read_job_record(s3_client, bucket, keys).video_id is None
    put_json(s3_client, bucket, keys.job, {**base, "status": "finished", "video_id": None})
    with pytest.raises(CorruptObject, match="invalid job record"):
        read_job_record(s3_client, bucket, keys)


def test_a_record_moves_from_pending_to_running_to_finished(s3_client, bucket) -> None:
    keys = VideoKeys("minimax", "v1-abc")
    record = JobRecord(key="v1-abc", template_id="t", prompt_sha256="", status="pending")
    assert record.video_id is None and record.holder is None and record.entry is None
    running = record.moved_to("running", video_id="42", account="a1")
    assert (running.status, running.video_id, running.account) == ("running", "42", "a1")
    finished = running.moved_to("finished", entry={"id": "x", "bytes": 3})
    assert finished.entry == {"id": "x", "bytes": 3} and finished.created_at >= running.created_at
    write_job_record(s3_client, bucket, keys, finished)
    found = read_job_record_with_etag(s3_client, bucket, keys)
    assert (
        found is not None
        and found[0] == finished
        and found[1] == head_object(s3_client, bucket, keys.job)["ETag"].strip('"')
    )
    with pytest.raises(ValueError, match="a 'running' job record needs its video_id"):
        record.moved_to("running")


def test_a_record_written_before_records_held_claims_still_reads(s3_client, bucket) -> None:
    keys = VideoKeys("minimax", "v1-abc")
    old = {
        "key": "v1-abc",
        "video_id": "42",
        "template_id": "t",
        "prompt_sha256": "",
        "account": None,
        "created_at": "2026-11-01T10:00:00+00:00",
        "status": "finished",
        "extra": {"prompt_id": "a", "s3_uri": "s3://b/k.mp4"},
    }
    put_json(s3_client, bucket, keys.job, old)
    record = read_job_record(s3_client, bucket, keys)
    assert record is not None and (record.status, record.holder, record.entry) == ("finished", None, None)


def test_a_corrupt_record_names_its_key_and_the_fix(s3_client, bucket) -> None:
    keys = VideoKeys("minimax", "v1-abc")
    put_bytes(s3_client, bucket, keys.job, b'{"key": "v1-abc"')
    with pytest.raises(CorruptObject, match=r"_jobs/v1-abc\.json is corrupt: invalid job record .*delete it"):
        read_job_record_with_etag(s3_client, bucket, keys)
