"""The guarantees that hold across processes now that a video key's claim and its job record are one object
(``<prefix>/_jobs/<key>.json``), each tested with real processes: producers in processes of their own
(:mod:`minimax_dagster_tests.producer_process`) against the simulator and moto's S3 server, over real sockets,
and a crash simulated by SIGKILLing a producer process.

- one create per video: two producer processes racing for the same videos create each exactly once;
- crash-resume: a producer killed after the create is reattached to by the next one, whose take-over of the
  dead holder's record is immediate on the same host, and waits for the claim's TTL from another host;
- no partial object: a producer killed mid-download leaves no video object, and the next run stores it whole;
- shared capacity: producer processes sharing an account stay within its maxJobs together.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import defaultdict
from typing import Any

from minimax_dagster.production import ManifestEntry, VideoPrompt
from minimax_dagster.simulator.media import read_mp4_info
from minimax_dagster.storage import (
    Claim,
    JobRecord,
    VideoKeys,
    prompt_sha256,
    read_job_record,
    video_key,
    write_job_record,
)
from minimax_dagster_tests.producer_process import TEMPLATE, results, spawn, start
from minimax_dagster_tests.producer_support import producer_for, run_collecting
from minimax_dagster_tests.s3_support import recorded_s3_requests


def keys_of(text: str) -> VideoKeys:
    return VideoKeys("minimax", video_key(TEMPLATE, text, None))


def wait_for(condition: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def objects(s3_client: Any, bucket: str, prefix: str) -> list[str]:
    return [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


# ------------------------------------------------------------------------------------------------ one create


def test_two_producer_processes_racing_for_the_same_videos_create_each_once(
    simulator: Any, s3_endpoint: str, s3_client: Any, bucket: str
) -> None:
    simulator.configure(generation_seconds=1.0)
    texts = [f"A heron fishing at dawn, take {i}" for i in range(4)]
    racers = [
        spawn(simulator, s3_endpoint, bucket, [(f"{name}{i}", t) for i, t in enumerate(texts)])
        for name in "ab"
    ]
    start(*racers)
    (first, first_requests), (second, second_requests) = (results(p) for p in racers)

    counters = simulator.counters()
    assert counters["creates"] == 4 and set(counters["creates_by_prompt"].values()) == {1}
    assert len(first) == len(second) == 4 and all(
        e["status"] in ("generated", "reused") for e in first + second
    )
    assert sorted(e["status"] for e in first + second).count("generated") == 4, (
        "each video made by one process"
    )
    # Per record: one create won (If-None-Match), one refused, then the winner's running and finished writes.
    puts: dict[str, list[int]] = defaultdict(list)
    for operation, key, status in first_requests + second_requests:
        if operation == "PutObject" and key.startswith("minimax/_jobs/"):
            puts[key].append(status)
    assert sorted(puts) == sorted(keys_of(t).job for t in texts)
    for key, statuses in puts.items():
        assert sorted(statuses) == [200, 200, 200, 412], (key, statuses)
    for text in texts:
        record = read_job_record(s3_client, bucket, keys_of(text))
        assert record is not None and record.status == "finished" and record.holder is None
    assert objects(s3_client, bucket, "minimax/_claims/") == [], "no claim object besides the records"
    assert objects(s3_client, bucket, "minimax/_slots/") == []


# ------------------------------------------------------------------------------------------------ crash-resume


def test_a_producer_killed_after_the_create_is_reattached_by_the_next_one(
    simulator: Any, s3_endpoint: str, s3_client: Any, bucket: str
) -> None:
    simulator.configure(generation_seconds=4.0)
    text = "A clock tower at midnight"
    keys = keys_of(text)
    worker = spawn(simulator, s3_endpoint, bucket, [("killed", text)])
    start(worker)

    def running() -> bool:
        record = read_job_record(s3_client, bucket, keys)
        return record is not None and record.status == "running"

    wait_for(running, "the killed producer recorded its video id")
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=30)
    record = read_job_record(s3_client, bucket, keys)
    assert record is not None and record.video_id and record.holder is not None
    assert record.holder.pid == worker.pid, "the record still names its dead holder"
    assert objects(s3_client, bucket, "minimax/videos/") == []

    with recorded_s3_requests(s3_client) as seen:
        entries, messages = run_collecting(
            producer_for(simulator, s3_client, bucket),
            [VideoPrompt(id="again", prompt=text, template_id=TEMPLATE)],
        )
    entry = entries["again"]
    assert entry.status == "generated" and entry.reattached and entry.video_id == record.video_id
    assert simulator.counters()["creates"] == 1
    # The record: the refused create, one read, the take-over, then finished; the video id was already in it.
    assert [op for op, _b, key in seen if key == keys.job] == [
        "PutObject",
        "GetObject",
        "PutObject",
        "PutObject",
    ]
    assert [op for op, _b, key in seen if key == keys.video] == ["PutObject"]
    assert any(f"taking over the stale claim of {record.holder.owner}" in m for m in messages)
    finished = read_job_record(s3_client, bucket, keys)
    assert finished is not None and finished.status == "finished" and finished.holder is None


def test_a_holder_on_another_host_is_waited_for_until_its_claim_expires(
    simulator: Any, s3_client: Any, bucket: str
) -> None:
    """On another host no process check applies: a holder is waited for while its claim is live, and taken
    over once it was not renewed within its TTL (the record is rewritten as a dead holder leaves it once its
    TTL has passed, instead of waiting a TTL here)."""
    text = "A lantern drifting on a river"
    keys = keys_of(text)
    now = time.time()
    holder = Claim(owner="far:7:abc", host="far-away/pidns:1", pid=7, acquired_at=now, renewed_at=now, ttl=60)
    pending = JobRecord(
        key=keys.key, template_id=TEMPLATE, prompt_sha256=prompt_sha256(text), status="pending", holder=holder
    )
    write_job_record(s3_client, bucket, keys, pending)
    producer = producer_for(simulator, s3_client, bucket)
    entries: dict[str, ManifestEntry] = {}
    messages: list[str] = []

    def produce() -> None:
        for note in producer.run([VideoPrompt(id="p", prompt=text, template_id=TEMPLATE)]):
            if note.entry is not None:
                entries[note.entry.id] = note.entry
            elif note.message:
                messages.append(note.message)

    thread = threading.Thread(target=produce)
    thread.start()
    try:
        wait_for(lambda: any("far:7:abc is producing this video; waiting" in m for m in messages), "a wait")
        assert simulator.counters()["creates"] == 0 and not any("taking over" in m for m in messages)
        expired = holder.model_copy(update={"renewed_at": now - 61})
        write_job_record(s3_client, bucket, keys, pending.model_copy(update={"holder": expired}))
    finally:
        thread.join(timeout=60)
    assert any("taking over the stale claim of far:7:abc" in m for m in messages)
    assert entries["p"].status == "generated" and simulator.counters()["creates"] == 1


# ------------------------------------------------------------------------------------------------ no partial object


def test_a_producer_killed_mid_download_leaves_no_object_and_the_next_run_stores_it_whole(
    simulator: Any, s3_endpoint: str, s3_client: Any, bucket: str
) -> None:
    text = "A slow river barge [sim:cdn_slow=400000]"  # the 1.4 MB clip takes about 3.5 s to download
    keys = keys_of(text)
    worker = spawn(simulator, s3_endpoint, bucket, [("killed", text)])
    start(worker)
    wait_for(lambda: simulator.counters()["downloads"] >= 1, "the download started")
    time.sleep(0.5)  # some of the body is on its way: the process dies with bytes in flight
    worker.send_signal(signal.SIGKILL)
    worker.communicate(timeout=30)
    assert simulator.counters()["downloads_completed"] == 0, "killed before the download ended"
    assert objects(s3_client, bucket, "minimax/videos/") == [], "no object, not even a partial one"
    assert s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    record = read_job_record(s3_client, bucket, keys)
    assert record is not None and record.status == "running"

    entries, _ = run_collecting(
        producer_for(simulator, s3_client, bucket),
        [VideoPrompt(id="again", prompt=text, template_id=TEMPLATE)],
    )
    entry = entries["again"]
    assert entry.reattached and entry.video_id == record.video_id and simulator.counters()["creates"] == 1
    data = s3_client.get_object(Bucket=bucket, Key=keys.video)["Body"].read()
    assert len(data) == entry.bytes and read_mp4_info(data)["duration_s"] > 0


# ------------------------------------------------------------------------------------------------ shared capacity


def test_producer_processes_sharing_an_account_stay_within_its_max_jobs(
    simulator: Any, s3_endpoint: str, s3_client: Any, bucket: str
) -> None:
    simulator.configure(generation_seconds=1.0)
    account = next(iter(simulator.config.accounts))
    workers = [
        spawn(
            simulator,
            s3_endpoint,
            bucket,
            [(f"{name}{i}", f"A kite, {name} take {i}") for i in range(4)],
            accounts={account: 2},
        )
        for name in "ab"
    ]
    start(*workers)
    outcomes = [results(w) for w in workers]
    assert all(
        len(entries) == 4 and all(e["status"] == "generated" for e in entries) for entries, _ in outcomes
    )
    counters = simulator.counters()
    assert counters["creates"] == 8
    assert counters["max_concurrent_by_account"][account] == 2, (
        "both processes together: the account's 2 jobs"
    )
    assert counters["rejected_by_status"].get("429", 0) == 0
    assert objects(s3_client, bucket, "minimax/_slots/") == []
