"""The per-video steps (claim → reuse → reattach → create → store), one at a time, against the simulator and
moto's S3 server over real sockets."""

from __future__ import annotations

import contextlib
import queue
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from minimax_dagster.api.client import MiniMaxClient
from minimax_dagster.api.models import AgentCreateRequest
from minimax_dagster.production.capacity import AccountPool, NoUsableAccount
from minimax_dagster.production.images import ImageSource, InputImages
from minimax_dagster.production.notes import Note, NoteQueue
from minimax_dagster.production.prompts import VideoPrompt
from minimax_dagster.production.settings import ProducerSettings
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


def start_job_elsewhere(bench: Bench, text: str) -> str:
    """Create a video through the simulator the way a run that then crashed did: read the stream up to the
    video id and hang up (the job goes on server-side). Returns the video id."""
    client = bench.client()
    events = client.agent_create(AgentCreateRequest(template_id=TEMPLATE, prompt=text))
    try:
        for event in events:
            if event.video_id:
                return event.video_id
    finally:
        events.close()  # type: ignore[attr-defined]
        client.close()
    raise AssertionError("the stream never named a video")


def running_record(video: PlannedVideo, video_id: str, account: str | None = None) -> JobRecord:
    return JobRecord(
        key=video.keys.key,
        video_id=video_id,
        template_id=TEMPLATE,
        prompt_sha256=prompt_sha256(video.prompt.prompt),
        account=account,
        status="running",
    )


# ------------------------------------------------------------------------------------------------ claim


def test_claim_is_exclusive_and_a_waiter_says_so_once(bench: Bench, s3_client: Any, bucket: str) -> None:
    video = planned("A lighthouse in fog")
    mine = bench.steps.claim(video.prompt, video.keys, announce=True)
    assert mine is not None and bench.keeper.held() == [video.keys.claim]
    rival = make_bench(bench.sim, s3_client, bucket)  # another process: its own claim keeper
    try:
        assert rival.steps.claim(video.prompt, video.keys, announce=True) is None
        assert rival.steps.claim(video.prompt, video.keys, announce=False) is None
        waits = [m for m in rival.messages() if "is producing this video; waiting for its result" in m]
        assert waits == [f"[p1] {bench.keeper.owner} is producing this video; waiting for its result"]
        bench.keeper.release(mine)
        assert rival.steps.claim(video.prompt, video.keys, announce=True) is not None
        assert rival.keeper.held() == [video.keys.claim]
    finally:
        rival.keeper.close()


def test_a_stale_claim_is_taken_over_with_a_warning(bench: Bench, s3_client: Any, bucket: str) -> None:
    video = planned("A windmill in a storm")
    s3_client.put_object(
        Bucket=bucket, Key=video.keys.claim, Body=dead_claim(bench.keeper.host).model_dump_json()
    )
    assert bench.steps.claim(video.prompt, video.keys, announce=True) is not None
    (note,) = bench.said()
    assert note.level == "warning" and "taking over the stale claim of gone:1:x" in (note.message or "")


# ------------------------------------------------------------------------------------------------ reuse


def test_nothing_is_settled_for_a_new_video(bench: Bench) -> None:
    video = planned("A kite over dunes")
    assert bench.steps.settled(video.prompt, video.keys) == (None, None)


def test_a_stored_video_is_reused_as_the_asking_rows_own(bench: Bench) -> None:
    video = planned("A heron at dawn", row="a", partition="2024-05-01")
    made = bench.steps.produce(video, pool_of(bench))
    assert made.status == "generated" and made.partition == "2024-05-01"
    other_row = VideoPrompt(id="b", prompt="A heron at dawn", template_id=TEMPLATE, partition="2024-05-02")
    entry, record = bench.steps.settled(other_row, video.keys)
    assert record is None and entry is not None
    assert (entry.status, entry.id, entry.partition, entry.video_id) == (
        "reused",
        "b",
        "2024-05-02",
        made.video_id,
    )
    assert entry.generation_seconds is None and entry.bytes == made.bytes


def test_a_truncated_video_is_not_reused_and_its_job_is_reattached(
    bench: Bench, s3_client: Any, bucket: str
) -> None:
    video = planned("A glacier calving")
    made = bench.steps.produce(video, pool_of(bench))
    s3_client.put_object(Bucket=bucket, Key=video.keys.video, Body=b"only a part")
    entry, record = bench.steps.settled(video.prompt, video.keys)
    assert entry is None and record is not None and record.video_id == made.video_id
    again = bench.steps.produce(video, pool_of(bench))
    assert again.reattached and again.bytes == made.bytes
    assert bench.sim.counters()["creates"] == 1, "the paid video was downloaded again, not created again"


def test_an_earlier_failure_is_final_unless_regeneration_is_asked(
    simulator: Any, s3_client: Any, bucket: str
) -> None:
    video = planned("A red car [sim:fail]")
    first = make_bench(simulator, s3_client, bucket)
    try:
        failed = first.steps.produce(video, pool_of(first))
        assert failed.status == "failed" and "VideoFailedError" in (failed.error or "")
        assert read_job_record(s3_client, bucket, video.keys).status == "failed"  # type: ignore[union-attr]
        entry, _ = first.steps.settled(video.prompt, video.keys)
        assert entry is not None and "set regenerate_failed=True to pay for a new attempt" in (
            entry.error or ""
        )
        assert first.steps.produce(video, pool_of(first)).status == "failed"
        assert simulator.counters()["creates"] == 1, "a re-run does not pay again for a failed video"
    finally:
        first.keeper.close()
    retry = make_bench(simulator, s3_client, bucket, regenerate_failed=True)
    try:
        entry, record = retry.steps.settled(video.prompt, video.keys)
        assert entry is None and record is not None and record.status == "failed"
    finally:
        retry.keeper.close()


# ------------------------------------------------------------------------------------------------ reattach


def test_a_job_recorded_by_a_crashed_run_is_reattached_not_created(
    bench: Bench, s3_client: Any, bucket: str
) -> None:
    video = planned("A lantern on a river", partition="night")
    video_id = start_job_elsewhere(bench, "A lantern on a river")
    write_job_record(s3_client, bucket, video.keys, running_record(video, video_id))
    entry = bench.steps.produce(video, pool_of(bench))
    assert entry.status == "generated" and entry.reattached and entry.video_id == video_id
    assert entry.partition == "night"
    assert bench.sim.counters()["creates"] == 1
    assert any("reattaching to" in m and "no new create" in m for m in bench.messages())
    finished = get_json(s3_client, bucket, video.keys.job)
    assert finished["status"] == "finished" and finished["extra"]["partition"] == "night"


def test_reattach_counts_the_job_on_its_accounts_slot(bench: Bench, s3_client: Any, bucket: str) -> None:
    account = next(iter(bench.sim.config.accounts))
    video = planned("A comet over a lake")
    video_id = start_job_elsewhere(bench, "A comet over a lake")
    pool = AccountPool({account: 1})
    entry = bench.steps.reattach(video.prompt, video.keys, running_record(video, video_id, account), pool)
    assert entry.reattached
    assert pool.acquire(account, timeout=0) == account, "the slot was given back after the reattach"


def test_reattach_goes_on_without_a_slot_when_the_account_is_unusable(bench: Bench) -> None:
    video = planned("A fox in snow")
    video_id = start_job_elsewhere(bench, "A fox in snow")
    pool = AccountPool({"other": 1})
    pool.disable("other", "on hold")
    entry = bench.steps.reattach(video.prompt, video.keys, running_record(video, video_id, "other"), pool)
    assert entry.reattached and entry.ok


# ------------------------------------------------------------------------------------------------ create


def test_a_new_video_costs_nine_s3_requests_and_records_its_job_before_the_download(
    bench: Bench, s3_client: Any
) -> None:
    video = planned("A paper boat on a pond")
    keys = video.keys
    with recorded_s3_requests(s3_client) as seen:
        entry = bench.steps.produce(video, pool_of(bench))
    assert entry.status == "generated" and bench.sim.counters()["creates"] == 1
    assert [(op, key) for op, _bucket, key in seen] == [
        ("PutObject", keys.claim),  # claim
        ("GetObject", keys.sidecar),  # reuse: no sidecar, so no HEAD of the video
        ("GetObject", keys.job),  # no job record: create
        ("PutObject", keys.job),  # running, written when the stream named the video id
        ("PutObject", keys.video),
        ("PutObject", keys.poster),
        ("PutObject", keys.sidecar),
        ("PutObject", keys.job),  # finished
        ("DeleteObject", keys.claim),
    ]


def test_create_waits_out_a_429_and_creates_once(bench: Bench) -> None:
    bench.sim.configure(retry_after_seconds=0)
    entry = bench.steps.create(planned("A tram at night [sim:busy=1]"), pool_of(bench))
    assert entry.status == "generated"
    counters = bench.sim.counters()
    assert counters["creates"] == 1 and counters["rejected_by_status"].get("429") == 1
    assert any("no capacity" in m and "waiting" in m for m in bench.messages())


def test_every_account_out_of_credits_fails_clearly_without_a_create(bench: Bench) -> None:
    pool = pool_of(bench)
    with pytest.raises(NoUsableAccount, match=r"no usable MiniMax account for any account .*412"):
        bench.steps.create(planned("A bus in rain [sim:credits]"), pool)
    assert bench.sim.counters()["creates"] == 0
    unusable = [m for m in bench.messages() if "unusable" in m and "trying another account" in m]
    assert len(unusable) == len(bench.sim.config.accounts), "each account was tried once, then disabled"


def test_a_moderated_video_is_recorded_as_failed(bench: Bench, s3_client: Any, bucket: str) -> None:
    video = planned("A beach party [sim:moderate]")
    entry = bench.steps.create(video, pool_of(bench))
    assert entry.status == "failed" and "ModeratedError" in (entry.error or "") and entry.video_id
    assert read_job_record(s3_client, bucket, video.keys).status == "failed"  # type: ignore[union-attr]


def test_create_gives_the_slot_back_whatever_happens(bench: Bench) -> None:
    account = next(iter(bench.sim.config.accounts))
    pool = AccountPool({account: 1})
    assert bench.steps.create(planned("A chess game [sim:fail]"), pool).status == "failed"
    assert bench.steps.create(planned("A chess win"), pool).status == "generated"
    assert pool.acquire(account, timeout=0) == account
