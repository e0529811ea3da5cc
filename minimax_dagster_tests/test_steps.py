"""The per-video steps (claim → reuse → reattach → create → store), one at a time, against the simulator and
moto's S3 server over real sockets; with the S3 requests each path costs, seen through botocore's event hooks."""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from minimax_dagster.api.client import MiniMaxClient
from minimax_dagster.api.models import AgentCreateRequest
from minimax_dagster.production.capacity import AccountPool, NoUsableAccount
from minimax_dagster.production.creates_first import CreatesFirst
from minimax_dagster.production.held_records import HeldRecord
from minimax_dagster.production.images import ImageSource, InputImages
from minimax_dagster.production.manifest import ManifestEntry
from minimax_dagster.production.notes import Note, NoteQueue
from minimax_dagster.production.producer_settings import ProducerSettings
from minimax_dagster.production.prompts import VideoPrompt
from minimax_dagster.production.steps import PlannedVideo, VideoSteps
from minimax_dagster.production.store import ResultStore
from minimax_dagster.storage import (
    Claim,
    ClaimKeeper,
    DownloadPolicy,
    JobRecord,
    VideoKeys,
    get_json,
    prompt_sha256,
    put_json,
    read_job_record,
    video_key,
    write_job_record,
)
from minimax_dagster_tests.s3_support import recorded_s3_requests

TEMPLATE = "394100000000000003"  # simulator "Transformers": text optional, no image
PREFIX = "minimax"


@dataclass
class Bench:
    """One run's worth of steps on the simulator and moto, with the notes they said."""

    steps: VideoSteps
    keeper: ClaimKeeper
    notes: NoteQueue
    s3: Any
    bucket: str
    sim: Any
    settings: ProducerSettings

    def said(self) -> list[Note]:
        out = []
        with contextlib.suppress(queue.Empty):
            while True:
                out.append(self.notes.get(timeout=0))
        return out

    def messages(self) -> list[str]:
        return [n.message for n in self.said() if n.message]

    def client(self) -> MiniMaxClient:
        return MiniMaxClient(self.sim.token, base_url=self.sim.base_url, poll_interval=0.1, max_retries=0)


def make_bench(sim: Any, s3_client: Any, bucket: str, **settings: Any) -> Bench:
    options: dict[str, Any] = {
        "bucket": bucket,
        "prefix": PREFIX,
        "policy": DownloadPolicy(allowed_hosts=(sim.origin,)),
        "accounts": dict(sim.config.accounts),
        "generation_deadline": 60.0,
        "claim_poll": 0.1,
        "capacity_wait": 0.05,
        "shared_capacity": False,
    }
    options.update(settings)
    config = ProducerSettings(**options)
    notes = NoteQueue()
    keeper = ClaimKeeper(s3_client, bucket, ttl=60)
    client = MiniMaxClient(sim.token, base_url=sim.base_url, poll_interval=0.1, max_retries=0)
    session = requests.Session()
    steps = VideoSteps(
        config,
        keeper,
        ResultStore(s3_client, config, client=lambda: client, session=lambda: session, notes=notes),
        InputImages(
            s3_client,
            config.policy,
            max_bytes=config.image_limit,
            client=lambda: client,
            session=lambda: session,
            notes=notes,
        ),
        client=lambda: client,
        notes=notes,
    )
    return Bench(steps, keeper, notes, s3_client, bucket, sim, config)


@pytest.fixture
def bench(simulator: Any, s3_client: Any, bucket: str) -> Iterator[Bench]:
    made = make_bench(simulator, s3_client, bucket)
    yield made
    made.keeper.close()


def planned(text: str, *, row: str = "p1", partition: str | None = None) -> PlannedVideo:
    prompt = VideoPrompt(id=row, prompt=text, template_id=TEMPLATE, partition=partition)
    return PlannedVideo(prompt, VideoKeys(PREFIX, video_key(TEMPLATE, text, None)), ImageSource(None))


def pool_of(bench: Bench) -> AccountPool:
    return AccountPool(bench.settings.accounts)


def dead_claim(host: str) -> Claim:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    now = time.time()
    return Claim(owner="gone:1:x", host=host, pid=child.pid, acquired_at=now, renewed_at=now, ttl=60)


def start_job_elsewhere(bench: Bench, text: str, reply_ref: str | None = None) -> str:
    """Create a video through the simulator the way a run that then crashed did: read the stream up to the
    video id and hang up (the job goes on server-side). Returns the video id."""
    client = bench.client()
    events = client.agent_create(AgentCreateRequest(template_id=TEMPLATE, prompt=text, reply_ref=reply_ref))
    try:
        for event in events:
            if event.video_id:
                return event.video_id
    finally:
        events.close()  # type: ignore[attr-defined]
        client.close()
    raise AssertionError("the stream never named a video")


def record_of(video: PlannedVideo, status: str, **fields: Any) -> JobRecord:
    return JobRecord.model_validate(
        {
            "key": video.keys.key,
            "template_id": TEMPLATE,
            "prompt_sha256": prompt_sha256(video.prompt.prompt),
            "status": status,
            **fields,
        }
    )


def running_record(video: PlannedVideo, video_id: str, account: str | None = None) -> JobRecord:
    return record_of(video, "running", video_id=video_id, account=account)


def held(bench: Bench, video: PlannedVideo) -> HeldRecord:
    """The record of ``video`` claimed by ``bench`` (which must be able to take it)."""
    outcome = bench.steps.claim(video.prompt, video.keys, announce=True)
    assert isinstance(outcome, HeldRecord), outcome
    return outcome


def create(bench: Bench, video: PlannedVideo, pool: AccountPool) -> ManifestEntry:
    """Claim ``video`` and run the create step on it, as ``produce`` does for a new video."""
    record = held(bench, video)
    try:
        return bench.steps.create(video, record, pool)
    finally:
        record.release()


# ------------------------------------------------------------------------------------------------ claim


def test_the_claim_is_the_record_and_proves_the_video_new_in_one_request(
    bench: Bench, s3_client: Any
) -> None:
    video = planned("A kite over dunes")
    with recorded_s3_requests(s3_client) as seen:
        mine = bench.steps.claim(video.prompt, video.keys, announce=True)
    assert [(op, key) for op, _bucket, key in seen] == [("PutObject", video.keys.job)]
    assert isinstance(mine, HeldRecord) and mine.taken_from is None
    record = read_job_record(s3_client, bench.bucket, video.keys)
    assert record is not None and (record.status, record.video_id) == ("pending", None)
    assert record.holder is not None and record.holder.owner == bench.keeper.owner
    assert record.extra == {"prompt_id": "p1"}
    assert bench.keeper.held() == [video.keys.job]


def test_a_held_record_is_exclusive_and_a_waiter_says_so_once(
    bench: Bench, s3_client: Any, bucket: str
) -> None:
    video = planned("A lighthouse in fog")
    mine = held(bench, video)
    rival = make_bench(bench.sim, s3_client, bucket)  # another process: its own claim keeper
    try:
        with recorded_s3_requests(s3_client) as seen:
            assert rival.steps.claim(video.prompt, video.keys, announce=True) is None
            assert rival.steps.claim(video.prompt, video.keys, announce=False, exists=True) is None
        assert [op for op, _b, _k in seen] == ["PutObject", "GetObject", "GetObject"], "a later look is a GET"
        waits = [m for m in rival.messages() if "is producing this video; waiting for its result" in m]
        assert waits == [f"[p1] {bench.keeper.owner} is producing this video; waiting for its result"]
        mine.release()  # given up unfinished: the record stays, its holder cleared
        released = read_job_record(s3_client, bucket, video.keys)
        assert released is not None and released.holder is None and released.status == "pending"
        taken = rival.steps.claim(video.prompt, video.keys, announce=True)
        assert isinstance(taken, HeldRecord) and taken.taken_from is None
        assert rival.keeper.held() == [video.keys.job] and bench.keeper.held() == []
        assert not any("stale" in m for m in rival.messages()), "a released record is no stale claim"
    finally:
        rival.keeper.close()


def test_a_stale_claim_is_taken_over_with_a_warning(bench: Bench, s3_client: Any, bucket: str) -> None:
    video = planned("A windmill in a storm")
    write_job_record(
        s3_client, bucket, video.keys, record_of(video, "pending", holder=dead_claim(bench.keeper.host))
    )
    taken = bench.steps.claim(video.prompt, video.keys, announce=True)
    assert isinstance(taken, HeldRecord) and taken.taken_from is not None
    assert taken.taken_from.owner == "gone:1:x"
    (note,) = bench.said()
    assert note.level == "warning" and "taking over the stale claim of gone:1:x" in (note.message or "")
    record = read_job_record(s3_client, bucket, video.keys)
    assert record is not None and record.holder is not None and record.holder.owner == bench.keeper.owner


def test_of_two_takers_of_a_stale_record_one_wins(bench: Bench, s3_client: Any, bucket: str) -> None:
    video = planned("A tide pool at noon")
    write_job_record(
        s3_client, bucket, video.keys, record_of(video, "pending", holder=dead_claim(bench.keeper.host))
    )
    rival = make_bench(bench.sim, s3_client, bucket)
    try:
        # Both read the record (and its ETag) before either takes it over.
        found = [b.steps.store.look(video.keys) for b in (bench, rival)]
        assert all(f is not None for f in found)
        first = bench.keeper.take_over(video.keys.job, found[0][1], "produce", found[0][0])  # type: ignore[index]
        second = rival.keeper.take_over(video.keys.job, found[1][1], "produce", found[1][0])  # type: ignore[index]
        assert first is not None and second is None, "If-Match on the ETag read: only one taker wins"
    finally:
        rival.keeper.close()


# ------------------------------------------------------------------------------------------------ reuse


def test_a_stored_video_is_reused_as_the_asking_rows_own_in_three_requests(
    bench: Bench, s3_client: Any
) -> None:
    video = planned("A heron at dawn", row="a", partition="2024-05-01")
    made = bench.steps.produce(video, pool_of(bench))
    assert made.status == "generated" and made.partition == "2024-05-01"
    other_row = VideoPrompt(id="b", prompt="A heron at dawn", template_id=TEMPLATE, partition="2024-05-02")
    with recorded_s3_requests(s3_client) as seen:
        entry = bench.steps.produce(PlannedVideo(other_row, video.keys, video.image), pool_of(bench))
    assert [(op, key) for op, _bucket, key in seen] == [
        ("PutObject", video.keys.job),  # If-None-Match: refused, a record exists
        ("GetObject", video.keys.job),  # finished, with its entry
        ("HeadObject", video.keys.video),  # the object is whole: reuse
    ]
    assert (entry.status, entry.id, entry.partition, entry.video_id) == (
        "reused",
        "b",
        "2024-05-02",
        made.video_id,
    )
    assert entry.generation_seconds is None and entry.bytes == made.bytes


def test_a_finished_record_from_before_entries_were_recorded_is_reused_through_its_sidecar(
    bench: Bench, s3_client: Any, bucket: str
) -> None:
    video = planned("A fox in snow at dusk")
    made = bench.steps.produce(video, pool_of(bench))
    old = read_job_record(s3_client, bucket, video.keys)
    assert old is not None
    # What the code before the records held their claims wrote: no holder, no entry.
    write_job_record(s3_client, bucket, video.keys, old.model_copy(update={"entry": None}))
    entry = bench.steps.produce(video, pool_of(bench))
    assert entry.status == "reused" and entry.bytes == made.bytes
    assert bench.sim.counters()["creates"] == 1


def test_a_truncated_video_is_not_reused_and_its_job_is_reattached(
    bench: Bench, s3_client: Any, bucket: str
) -> None:
    video = planned("A glacier calving")
    made = bench.steps.produce(video, pool_of(bench))
    s3_client.put_object(Bucket=bucket, Key=video.keys.video, Body=b"only a part")
    again = bench.steps.produce(video, pool_of(bench))
    assert again.reattached and again.bytes == made.bytes and again.video_id == made.video_id
    assert any("missing or incomplete: storing it again" in m for m in bench.messages())
    assert bench.sim.counters()["creates"] == 1, "the paid video was downloaded again, not created again"
    stored = s3_client.get_object(Bucket=bucket, Key=video.keys.video)["Body"].read()
    assert len(stored) == made.bytes


def test_an_earlier_failure_is_final_unless_regeneration_is_asked(
    simulator: Any, s3_client: Any, bucket: str
) -> None:
    video = planned("A red car [sim:fail]")
    first = make_bench(simulator, s3_client, bucket)
    try:
        failed = first.steps.produce(video, pool_of(first))
        assert failed.status == "failed" and "VideoFailedError" in (failed.error or "")
        record = read_job_record(s3_client, bucket, video.keys)
        assert record is not None and record.status == "failed" and record.holder is None
        entry = first.steps.claim(video.prompt, video.keys, announce=True)
        assert isinstance(entry, ManifestEntry)
        assert "set regenerate_failed=True to pay for a new attempt" in (entry.error or "")
        assert first.steps.produce(video, pool_of(first)).status == "failed"
        assert simulator.counters()["creates"] == 1, "a re-run does not pay again for a failed video"
    finally:
        first.keeper.close()
    retry = make_bench(simulator, s3_client, bucket, regenerate_failed=True)
    try:
        taken = retry.steps.claim(video.prompt, video.keys, announce=True)
        assert isinstance(taken, HeldRecord) and taken.record.status == "failed"
        taken.release()
        assert retry.steps.produce(video, pool_of(retry)).status == "failed"
        assert simulator.counters()["creates"] == 2, "asked to regenerate: paid once more"
    finally:
        retry.keeper.close()


# ------------------------------------------------------------------------------------------------ reattach


def test_a_job_recorded_by_a_crashed_run_is_reattached_not_created(
    bench: Bench, s3_client: Any, bucket: str
) -> None:
    video = planned("A lantern on a river", partition="night")
    video_id = start_job_elsewhere(bench, "A lantern on a river")
    dead = dead_claim(bench.keeper.host)
    write_job_record(
        s3_client, bucket, video.keys, running_record(video, video_id).model_copy(update={"holder": dead})
    )
    entry = bench.steps.produce(video, pool_of(bench))
    assert entry.status == "generated" and entry.reattached and entry.video_id == video_id
    assert entry.partition == "night"
    assert bench.sim.counters()["creates"] == 1
    messages = bench.messages()
    assert any("taking over the stale claim of gone:1:x" in m for m in messages)
    assert any("reattaching to" in m and "no new create" in m for m in messages)
    finished = get_json(s3_client, bucket, video.keys.job)
    assert finished["status"] == "finished" and finished["holder"] is None
    assert finished["entry"]["video_id"] == video_id and finished["entry"]["bytes"] == entry.bytes


def test_a_job_a_dead_holder_created_without_recording_it_is_found_by_its_reply_ref(
    bench: Bench, s3_client: Any, bucket: str
) -> None:
    """A worker died between its create and the first event naming the video: its record says ``pending``.
    The taker looks the job up by its replyRef (the video key) before paying for another one."""
    bench.sim.configure(generation_seconds=3.0)
    video = planned("A balloon over fields")
    video_id = start_job_elsewhere(bench, "A balloon over fields", reply_ref=video.keys.key)
    write_job_record(
        s3_client, bucket, video.keys, record_of(video, "pending", holder=dead_claim(bench.keeper.host))
    )
    entry = bench.steps.produce(video, pool_of(bench))
    assert entry.reattached and entry.video_id == video_id and entry.ok
    assert bench.sim.counters()["creates"] == 1
    assert any("the worker that died had created" in m for m in bench.messages())


def test_reattach_counts_the_job_on_its_accounts_slot(bench: Bench, s3_client: Any, bucket: str) -> None:
    account = next(iter(bench.sim.config.accounts))
    video = planned("A comet over a lake")
    video_id = start_job_elsewhere(bench, "A comet over a lake")
    write_job_record(s3_client, bucket, video.keys, running_record(video, video_id, account))
    pool = AccountPool({account: 1})
    entry = bench.steps.reattach(video.prompt, video.keys, held(bench, video), pool)
    assert entry.reattached
    assert pool.acquire(account, timeout=0) == account, "the slot was given back after the reattach"


def test_reattach_goes_on_without_a_slot_when_the_account_is_unusable(
    bench: Bench, s3_client: Any, bucket: str
) -> None:
    video = planned("A fox in snow")
    video_id = start_job_elsewhere(bench, "A fox in snow")
    write_job_record(s3_client, bucket, video.keys, running_record(video, video_id, "other"))
    pool = AccountPool({"other": 1})
    pool.disable("other", "on hold")
    entry = bench.steps.reattach(video.prompt, video.keys, held(bench, video), pool)
    assert entry.reattached and entry.ok


# ------------------------------------------------------------------------------------------------ create


def test_a_new_video_costs_six_s3_requests_and_records_its_job_before_the_download(
    bench: Bench, s3_client: Any, bucket: str
) -> None:
    video = planned("A paper boat on a pond")
    keys = video.keys
    records: list[dict[str, Any]] = []

    def record_job_writes(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "PutObject" and params.get("Key") == keys.job:
            body = params["Body"]  # botocore has turned the bytes into a file object by now
            records.append(json.loads(body.getvalue() if hasattr(body, "getvalue") else body))

    s3_client.meta.events.register("before-parameter-build.s3", record_job_writes)
    try:
        with recorded_s3_requests(s3_client) as seen:
            entry = bench.steps.produce(video, pool_of(bench))
    finally:
        s3_client.meta.events.unregister("before-parameter-build.s3", record_job_writes)
    assert entry.status == "generated" and bench.sim.counters()["creates"] == 1
    assert [(op, key) for op, _bucket, key in seen] == [
        ("PutObject", keys.job),  # claim + record (If-None-Match): no earlier record, so nothing to look for
        ("PutObject", keys.job),  # running, written when the stream named the video id (If-Match)
        ("PutObject", keys.video),
        ("PutObject", keys.poster),
        ("PutObject", keys.sidecar),
        ("PutObject", keys.job),  # finished with the entry, holder cleared = released (If-Match)
    ]
    assert [(r["status"], r["video_id"], r["holder"] is not None) for r in records] == [
        ("pending", None, True),
        ("running", entry.video_id, True),
        ("finished", entry.video_id, False),
    ]
    assert records[2]["entry"]["bytes"] == entry.bytes
    assert "prompt" not in records[2]["entry"] and "A paper boat" not in json.dumps(records), "no prompt text"
    sidecar = get_json(s3_client, bucket, keys.sidecar)
    assert sidecar["entry"]["s3_uri"] == entry.s3_uri and sidecar["events"]


def test_a_lost_claim_is_said_and_the_record_left_to_its_new_holder(
    bench: Bench, s3_client: Any, bucket: str
) -> None:
    video = planned("A swan on a lake")
    mine = held(bench, video)
    found = bench.steps.store.look(video.keys)
    assert found is not None
    # Another process decided our claim was stale and took the record over.
    other = ClaimKeeper(s3_client, bucket, ttl=60)
    try:
        assert other.take_over(video.keys.job, found[1], "produce", found[0]) is not None
        bench.steps.store.remember_job(video.prompt, mine, "user:1-minimax:2-video:3", None)
        assert any("another worker took the claim over" in m for m in bench.messages())
        assert bench.keeper.lost == [video.keys.job] and bench.keeper.held() == []
        mine.release()  # nothing sent: the record is the other holder's
        record = read_job_record(s3_client, bucket, video.keys)
        assert record is not None and record.holder is not None and record.holder.owner == other.owner
        assert record.status == "pending"
    finally:
        other.close()


def test_create_waits_out_a_429_and_creates_once(bench: Bench) -> None:
    bench.sim.configure(retry_after_seconds=0)
    entry = create(bench, planned("A tram at night [sim:busy=1]"), pool_of(bench))
    assert entry.status == "generated"
    counters = bench.sim.counters()
    assert counters["creates"] == 1 and counters["rejected_by_status"].get("429") == 1
    assert any("no capacity" in m and "waiting" in m for m in bench.messages())


def test_every_account_out_of_credits_fails_clearly_without_a_create(
    bench: Bench, s3_client: Any, bucket: str
) -> None:
    pool = pool_of(bench)
    video = planned("A bus in rain [sim:credits]")
    with pytest.raises(NoUsableAccount, match=r"no usable MiniMax account for any account .*412"):
        create(bench, video, pool)
    assert bench.sim.counters()["creates"] == 0
    unusable = [m for m in bench.messages() if "unusable" in m and "trying another account" in m]
    assert len(unusable) == len(bench.sim.config.accounts), "each account was tried once, then disabled"
    record = read_job_record(s3_client, bucket, video.keys)
    assert record is not None and (record.status, record.holder) == ("pending", None), (
        "released, nothing paid"
    )


def test_a_moderated_video_is_recorded_as_failed(bench: Bench, s3_client: Any, bucket: str) -> None:
    video = planned("A beach party [sim:moderate]")
    entry = create(bench, video, pool_of(bench))
    assert entry.status == "failed" and "ModeratedError" in (entry.error or "") and entry.video_id
    record = read_job_record(s3_client, bucket, video.keys)
    assert record is not None and record.status == "failed" and record.video_id == entry.video_id
    assert record.holder is None and "ModeratedError" in record.extra["error"]


def test_create_gives_the_slot_back_whatever_happens(bench: Bench) -> None:
    account = next(iter(bench.sim.config.accounts))
    pool = AccountPool({account: 1})
    assert create(bench, planned("A chess game [sim:fail]"), pool).status == "failed"
    assert create(bench, planned("A chess win"), pool).status == "generated"
    assert pool.acquire(account, timeout=0) == account


def test_records_written_by_hand_are_validated_before_anything_is_paid(
    bench: Bench, s3_client: Any, bucket: str
) -> None:
    video = planned("A moth at a lamp")
    put_json(s3_client, bucket, video.keys.job, {"key": video.keys.key, "status": "running"})
    with pytest.raises(Exception, match=r"_jobs/.*is corrupt: invalid job record"):
        bench.steps.produce(video, pool_of(bench))
    assert bench.sim.counters()["creates"] == 0


# ------------------------------------------------------------------------------------------ creates first


def test_a_store_waits_for_the_creates_under_way_and_no_longer() -> None:
    gate = CreatesFirst(max_wait=60)
    waited: list[bool] = []
    with gate.creating() as first_created, gate.creating():
        store = threading.Thread(target=lambda: waited.append(gate.wait_for_creates()), daemon=True)
        store.start()
        first_created()
        first_created()  # said twice: counted once
        store.join(0.3)
        assert store.is_alive() and gate.busy, "the store went ahead of the second create"
    store.join(30)
    assert waited == [True] and not gate.busy


def test_a_create_that_fails_or_outlasts_the_wait_does_not_hold_stores_back() -> None:
    gate = CreatesFirst(max_wait=0.05)
    with pytest.raises(RuntimeError), gate.creating():
        raise RuntimeError("the create failed")
    assert not gate.busy and gate.wait_for_creates()
    with gate.creating():
        assert gate.wait_for_creates() is False  # bounded: a long create never blocks a store for good
