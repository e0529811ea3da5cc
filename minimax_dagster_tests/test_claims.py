"""Claims held in records (``ClaimKeeper`` with a ``record``): creating, updating, renewing, releasing and losing
the one object that is both a video key's claim and its job record, against moto's S3 server."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pydantic import BaseModel

from minimax_dagster.storage import (
    Claim,
    ClaimKeeper,
    JobRecord,
    VideoKeys,
    claim_body,
    read_job_record,
    read_job_record_with_etag,
)
from minimax_dagster_tests.s3_support import recorded_s3_calls, recorded_s3_requests

KEYS = VideoKeys("minimax", "v1-0123456789abcdef0123456789abcdef")


def pending() -> JobRecord:
    return JobRecord(
        key=KEYS.key, template_id="1", prompt_sha256="", status="pending", extra={"prompt_id": "a"}
    )


@pytest.fixture
def keepers(s3_client: Any, bucket: str) -> Any:
    made = [ClaimKeeper(s3_client, bucket, ttl=60), ClaimKeeper(s3_client, bucket, ttl=60)]
    yield made
    for keeper in made:
        keeper.close()


def test_taking_a_claim_creates_the_record_with_its_holder(s3_client: Any, bucket: str, keepers: Any) -> None:
    mine, theirs = keepers
    handle = mine.acquire(KEYS.job, "produce a", pending())
    assert handle is not None and theirs.acquire(KEYS.job, "produce a", pending()) is None
    found = read_job_record_with_etag(s3_client, bucket, KEYS)
    assert found is not None
    record, etag = found
    assert etag == handle.etag and record.status == "pending" and record.extra == {"prompt_id": "a"}
    assert record.holder == handle.claim and record.holder.owner == mine.owner


def test_of_many_processes_creating_one_record_exactly_one_wins(s3_client: Any, bucket: str) -> None:
    keepers = [ClaimKeeper(s3_client, bucket, ttl=60) for _ in range(8)]
    barrier = threading.Barrier(len(keepers))

    def attempt(keeper: ClaimKeeper) -> bool:
        barrier.wait()
        return keeper.acquire(KEYS.job, "produce", pending()) is not None

    try:
        with ThreadPoolExecutor(len(keepers)) as pool:
            won = list(pool.map(attempt, keepers))
        assert won.count(True) == 1
        record = read_job_record(s3_client, bucket, KEYS)
        assert record is not None and record.holder is not None
        assert record.holder.owner == keepers[won.index(True)].owner
    finally:
        for keeper in keepers:
            keeper.close()


def test_updates_and_renewals_write_the_record_with_a_fresh_holder(
    s3_client: Any, bucket: str, keepers: Any
) -> None:
    keeper = keepers[0]
    handle = keeper.acquire(KEYS.job, "produce", pending())
    assert handle is not None
    first = handle.claim
    running = pending().moved_to("running", video_id="user:1-minimax:2-video:3", account="2")
    with recorded_s3_requests(s3_client) as seen:
        assert keeper.update(handle, running)
    assert [op for op, _b, _k in seen] == ["PutObject"], "progress and renewal in one request"
    after_update = read_job_record(s3_client, bucket, KEYS)
    assert after_update is not None and after_update.status == "running"
    assert after_update.holder is not None and after_update.holder.renewed_at >= first.renewed_at
    assert after_update.holder.acquired_at == first.acquired_at
    keeper.renew_due(age=0)
    renewed = read_job_record(s3_client, bucket, KEYS)
    assert renewed is not None and renewed.status == "running", "a renewal keeps what the record says"
    assert renewed.video_id == "user:1-minimax:2-video:3" and renewed.holder == handle.claim


def test_releasing_writes_the_last_state_once_and_then_nothing(
    s3_client: Any, bucket: str, keepers: Any
) -> None:
    keeper = keepers[0]
    handle = keeper.acquire(KEYS.job, "produce", pending())
    assert handle is not None
    failed = pending().moved_to("failed", video_id="42", extra={"error": "moderated"})
    assert keeper.release(handle, failed) and keeper.held() == []
    record = read_job_record(s3_client, bucket, KEYS)
    assert record is not None and (record.status, record.holder, record.extra["error"]) == (
        "failed",
        None,
        "moderated",
    )
    with recorded_s3_requests(s3_client) as seen:
        assert not keeper.release(handle)
        assert not keeper.update(handle, pending())
        keeper.renew_due(age=0)
    assert seen == [], "a released claim is never written again"


def test_a_record_taken_over_is_never_written_by_its_old_holder(
    s3_client: Any, bucket: str, keepers: Any
) -> None:
    old, new = keepers
    handle = old.acquire(KEYS.job, "produce", pending())
    assert handle is not None
    record, etag = read_job_record_with_etag(s3_client, bucket, KEYS) or (None, "")
    assert record is not None
    taken = new.take_over(KEYS.job, etag, "produce", record)
    assert taken is not None
    assert not old.update(handle, pending().moved_to("running", video_id="1")), "If-Match on a replaced ETag"
    assert old.lost == [KEYS.job] and old.held() == []
    with recorded_s3_requests(s3_client) as seen:
        assert not old.release(handle)
    assert seen == []
    now = read_job_record(s3_client, bucket, KEYS)
    assert now is not None and now.status == "pending" and now.holder == taken.claim


def test_a_stale_take_over_with_an_old_etag_loses(s3_client: Any, bucket: str, keepers: Any) -> None:
    first, second = keepers
    handle = first.acquire(KEYS.job, "produce", pending())
    assert handle is not None
    stale_etag = handle.etag
    first.renew_due(age=0)  # the record changed since the ETag was read
    assert second.take_over(KEYS.job, stale_etag, "produce", pending()) is None


def test_closing_the_keeper_releases_held_records_but_keeps_them(s3_client: Any, bucket: str) -> None:
    keeper = ClaimKeeper(s3_client, bucket, ttl=60)
    assert keeper.acquire(KEYS.job, "produce", pending()) is not None
    keeper.close()
    record = read_job_record(s3_client, bucket, KEYS)
    assert record is not None and record.holder is None and record.status == "pending"


def test_only_a_model_with_a_holder_field_can_hold_a_claim() -> None:
    class NoHolder(BaseModel):
        status: str

    claim = Claim(owner="h:1:x", acquired_at=0, renewed_at=0, ttl=60)
    with pytest.raises(ValueError, match="NoHolder has no 'holder' field"):
        claim_body(claim, NoHolder(status="x"))
    with pytest.raises(ValueError, match="needs a claim"):
        claim_body(None)
    assert claim_body(claim) == claim.model_dump_json().encode()


def test_threads_of_one_process_taking_slots_together_never_race_for_the_same_one(
    s3_client: Any, bucket: str
) -> None:
    keeper = ClaimKeeper(s3_client, bucket, ttl=60)
    threads = 6
    everyone_listed = threading.Barrier(threads, timeout=10)
    seen = threading.local()

    def hold_first_put_until_every_thread_listed(**_: Any) -> None:
        if not getattr(seen, "put", False):  # each thread's first PUT waits: all listed the same free slots
            seen.put = True
            everyone_listed.wait()

    s3_client.meta.events.register("before-call.s3.PutObject", hold_first_put_until_every_thread_listed)
    try:
        with recorded_s3_calls(s3_client) as calls, ThreadPoolExecutor(threads) as pool:
            handles = list(
                pool.map(
                    lambda _: keeper.acquire_slot("minimax/_slots/acc", threads, scan_stale=False),
                    range(threads),
                )
            )
        assert all(h is not None for h in handles) and len({h.key for h in handles if h}) == threads
        assert calls.count("PutObject") == threads, "a refused PUT: two threads raced for the same slot"
    finally:
        s3_client.meta.events.unregister("before-call.s3.PutObject", hold_first_put_until_every_thread_listed)
        keeper.close()


def test_a_claim_written_a_moment_ago_is_not_renewed_and_an_old_one_is(s3_client: Any, bucket: str) -> None:
    keeper = ClaimKeeper(s3_client, bucket, ttl=60)
    try:
        fresh = keeper.acquire("minimax/_slots/acc/0.json", "slot")
        old = keeper.acquire("minimax/_slots/acc/1.json", "slot")
        assert fresh is not None and old is not None
        # As if written 20 s ago (more than ttl / 4): the next look renews it, and only it.
        old.claim = old.claim.model_copy(update={"renewed_at": time.time() - 20})
        with recorded_s3_requests(s3_client) as seen:
            keeper.renew_due()
        assert seen == [("PutObject", bucket, old.key)]
        assert time.time() - old.claim.renewed_at < 5, "renewed now"
        with recorded_s3_requests(s3_client) as seen:
            keeper.renew_due()
        assert seen == [], "both were written within ttl / 4"
    finally:
        keeper.close()


def test_many_claims_are_renewed_several_at_once(s3_client: Any, bucket: str) -> None:
    keeper = ClaimKeeper(s3_client, bucket, ttl=60)
    handles = [keeper.acquire(f"minimax/_slots/acc/{i}.json", "slot") for i in range(4)]
    etags = [h.etag for h in handles if h is not None]
    two_at_once = threading.Barrier(2, timeout=5)

    def wait_for_another_renewal(**_: Any) -> None:
        two_at_once.wait()  # one request after another would break the barrier: no renewal would succeed

    s3_client.meta.events.register("before-call.s3.PutObject", wait_for_another_renewal)
    try:
        keeper.renew_due(age=0)
    finally:
        s3_client.meta.events.unregister("before-call.s3.PutObject", wait_for_another_renewal)
    try:
        assert len(etags) == 4 and all(h is not None for h in handles)
        assert [h.etag for h in handles if h is not None] != etags and not keeper.lost
        assert all(h.etag != e for h, e in zip(handles, etags, strict=True) if h is not None)
    finally:
        keeper.close()
