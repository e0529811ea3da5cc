"""Running at scale: claims in S3, capacity shared across processes, and a real deployment on PostgreSQL,
RabbitMQ (+ Redis results) and Celery workers.

The first half tests the library's cross-process guarantees against moto's S3 server and the simulator: a
claim is exclusive, a stale one (dead holder, or not renewed within its TTL) is taken over, two producers
racing for the same prompts pay once, and producers sharing accounts stay within maxJobs together.

The second half starts a :class:`~benchmarks.scale.cluster.ScaleCluster` once for the module (a fresh
PostgreSQL database, two Celery workers on a queue of their own, the daemon) and plays one scenario on it:
two backfills racing for the same partition, then a backfill of five partitions during which the worker
producing the slow one is SIGKILLed. The tests then check its facets. The services are never mocked: without
them these tests fail naming the service (skipped outside CI only, never with CI=true).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import pytest

from benchmarks.scale import BackfillReport, ScaleCluster, ServiceSettings, ServiceUnavailable, batches_of
from benchmarks.scale.cluster import partition_of
from minimax_dagster.deployment.definitions import TEMPLATE_ID
from minimax_dagster.production.held_records import new_record
from minimax_dagster.production.manifest import VideoManifest
from minimax_dagster.production.prompts import VideoPrompt
from minimax_dagster.storage import (
    Claim,
    ClaimKeeper,
    VideoKeys,
    get_json,
    read_claim,
    read_job_record,
    try_claim,
    video_key,
)
from minimax_dagster_tests.producer_support import producer_for, run_collecting
from minimax_dagster_tests.s3_support import recorded_s3_calls

TEMPLATE = "394100000000000003"  # simulator "Transformers": text optional, no image


# ------------------------------------------------------------------------------------------------ helpers


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def claim_body(**fields: Any) -> Claim:
    now = time.time()
    base: dict[str, Any] = {
        "owner": "elsewhere:1:abc",
        "host": "elsewhere",
        "pid": 1,
        "acquired_at": now,
        "renewed_at": now,
        "ttl": 60.0,
    }
    base.update(fields)
    return Claim(**base)


def prompts(texts: list[str], prefix: str = "p") -> list[VideoPrompt]:
    return [VideoPrompt(id=f"{prefix}{i}", prompt=t, template_id=TEMPLATE) for i, t in enumerate(texts)]


def keys_of(text: str) -> VideoKeys:
    return VideoKeys("minimax", video_key(TEMPLATE, text, None))


# ------------------------------------------------------------------------------------------------ claims


def test_of_many_concurrent_claims_exactly_one_wins(s3_client: Any, bucket: str) -> None:
    key = "minimax/_claims/v1-race.json"
    start = threading.Barrier(8)

    def attempt(i: int) -> str | None:
        start.wait()
        return try_claim(s3_client, bucket, key, claim_body(owner=f"h:{i}:x"))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    winners = [i for i, etag in enumerate(results) if etag is not None]
    assert len(winners) == 1
    found = read_claim(s3_client, bucket, key)
    assert found is not None and found[0] is not None and found[0].owner == f"h:{winners[0]}:x"


def test_claim_staleness_by_ttl_and_by_dead_holder() -> None:
    now = time.time()
    live = claim_body(renewed_at=now, ttl=60, host="h1", pid=os.getpid())
    assert not live.is_stale(now + 30, hostname="h1")
    assert live.is_stale(now + 61, hostname="h1"), "not renewed within its TTL"
    gone = claim_body(renewed_at=now, host="h1", pid=dead_pid())
    assert gone.is_stale(now, hostname="h1"), "its holder no longer runs on this host"
    assert not gone.is_stale(now, hostname="h2"), "on another host only the TTL can tell"


def test_keeper_renews_releases_and_notices_a_lost_claim(s3_client: Any, bucket: str) -> None:
    keeper = ClaimKeeper(s3_client, bucket, ttl=60)
    other = ClaimKeeper(s3_client, bucket, ttl=60)
    try:
        handle = keeper.acquire("minimax/_claims/a.json", "produce a")
        assert handle is not None and other.acquire("minimax/_claims/a.json") is None
        before = handle.claim.renewed_at
        time.sleep(0.01)
        keeper.renew_due(age=0)
        found = read_claim(s3_client, bucket, "minimax/_claims/a.json")
        assert found is not None and found[0] is not None and found[0].renewed_at > before
        assert found[1] == handle.etag, "the handle follows the renewed body"
        # A stale claim is taken over with IfMatch on the ETag read: only one taker wins, the old holder
        # learns it at its next renewal.
        assert other.take_over("minimax/_claims/a.json", "not-the-etag") is None
        assert other.take_over("minimax/_claims/a.json", found[1]) is not None
        keeper.renew_due(age=0)
        assert keeper.lost == ["minimax/_claims/a.json"] and keeper.held() == []
        # Releasing deletes only our own claim.
        keeper.release(handle)
        assert read_claim(s3_client, bucket, "minimax/_claims/a.json") is not None
        other.close()
        assert read_claim(s3_client, bucket, "minimax/_claims/a.json") is None
    finally:
        keeper.close()
        other.close()


def test_slots_are_a_semaphore_and_dead_holders_slots_are_taken_over(s3_client: Any, bucket: str) -> None:
    a, b = ClaimKeeper(s3_client, bucket, ttl=60), ClaimKeeper(s3_client, bucket, ttl=60)
    try:
        held = [a.acquire_slot("minimax/_slots/acc", 2), b.acquire_slot("minimax/_slots/acc", 2)]
        assert all(held) and {h.key for h in held if h} == {
            "minimax/_slots/acc/0.json",
            "minimax/_slots/acc/1.json",
        }
        assert a.acquire_slot("minimax/_slots/acc", 2) is None, "both slots are taken by live holders"
        # A holder on this host dies: its slot is taken over at once, without waiting for the TTL.
        dead = claim_body(host=a.host, pid=dead_pid())
        found = read_claim(s3_client, bucket, "minimax/_slots/acc/1.json")
        assert found is not None
        s3_client.put_object(Bucket=bucket, Key="minimax/_slots/acc/1.json", Body=dead.model_dump_json())
        b.renew_due(age=0)  # b's slot was overwritten: b sees it lost
        assert a.acquire_slot("minimax/_slots/acc", 2, scan_stale=False) is None
        taken = a.acquire_slot("minimax/_slots/acc", 2)
        assert taken is not None and taken.key == "minimax/_slots/acc/1.json"
    finally:
        a.close()
        b.close()


def test_a_producer_makes_few_s3_requests_per_new_video(simulator: Any, s3_client: Any, bucket: str) -> None:
    """The paid path's S3 bookkeeping (claim, job records, video, poster, sidecar) stays small: moto and the
    step spend most of their CPU on these requests when capacity is high.

    A slot is handed over only to a thread already waiting for it, so the generation (1 s) must outlast a
    worker's storing of its last video and claiming of its next prompt (0.3 s once fell short on a loaded CI
    machine, which also showed a woken waiter giving up the claim parked for it: see test_capacity)."""
    simulator.configure(generation_seconds=1.0)
    account = next(iter(simulator.config.accounts))
    with recorded_s3_calls(s3_client) as calls:
        entries, _log = run_collecting(
            producer_for(simulator, s3_client, bucket, accounts={account: 2}),
            prompts([f"A paper boat on a pond, take {i}" for i in range(6)], "n"),
        )
    assert len(entries) == 6 and all(e.status == "generated" for e in entries.values())
    per_video = len(calls) / 6
    # record PUT (the claim: If-None-Match), record PUT (running), video PUT, poster PUT, sidecar PUT, record PUT
    # (finished and released) = 6 per video; the 2 slots are leased once (LIST + PUT) and deleted at the end,
    # handed over between the run's threads in between: 42 requests in all.
    by_operation = Counter(calls)
    assert per_video <= 7.0, f"{by_operation['ListObjectsV2']} slot leases: {sorted(by_operation.items())}"
    assert by_operation["DeleteObject"] == by_operation["ListObjectsV2"], (
        "every leased slot is deleted at the end"
    )
    assert by_operation["GetObject"] == by_operation["HeadObject"] == 0, "a new video needs no look"
    assert by_operation["PutObject"] == 6 * 6 + by_operation["ListObjectsV2"], sorted(by_operation.items())


# ------------------------------------------------------------------------------------------------ producers


def test_two_producers_racing_for_the_same_prompts_pay_once(
    simulator: Any, s3_client: Any, bucket: str
) -> None:
    simulator.configure(generation_seconds=1.0)
    texts = [f"A heron fishing at dawn, take {i}" for i in range(4)]
    start = threading.Barrier(2)

    def one(name: str) -> tuple[dict[str, Any], list[str]]:
        producer = producer_for(simulator, s3_client, bucket)
        start.wait()
        return run_collecting(producer, prompts(texts, name))

    with ThreadPoolExecutor(2) as pool:
        (first, log1), (second, log2) = pool.map(one, ["a", "b"])
    counters = simulator.counters()
    assert counters["creates"] == 4 and set(counters["creates_by_prompt"].values()) == {1}
    for entries in (first, second):
        assert len(entries) == 4 and all(e.ok for e in entries.values())
    statuses = sorted(e.status for e in [*first.values(), *second.values()])
    assert statuses.count("generated") == 4, statuses
    assert any("waiting for its result" in m for m in log1 + log2), "the loser waited for the winner"
    assert s3_client.list_objects_v2(Bucket=bucket, Prefix="minimax/_claims/").get("KeyCount") == 0
    assert s3_client.list_objects_v2(Bucket=bucket, Prefix="minimax/_slots/").get("KeyCount") == 0


def test_a_live_claim_makes_the_producer_wait_without_creating(
    simulator: Any, s3_client: Any, bucket: str
) -> None:
    text = "A lantern drifting on a river"
    other = ClaimKeeper(s3_client, bucket, ttl=60)
    handle = other.acquire(
        keys_of(text).job, "produce elsewhere", new_record(prompts([text])[0], keys_of(text))
    )
    assert handle is not None
    producer = producer_for(simulator, s3_client, bucket)
    messages: list[str] = []
    entries: dict[str, Any] = {}

    def consume() -> None:
        for note in producer.run(prompts([text])):
            if note.entry is not None:
                entries[note.entry.id] = note.entry
            elif note.message:
                messages.append(note.message)

    thread = threading.Thread(target=consume)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not any(m.endswith("waiting for its result") for m in list(messages)):
            assert time.monotonic() < deadline, "the producer never reported waiting"
            time.sleep(0.05)
        time.sleep(0.5)  # several looks at the claim
        assert simulator.counters()["creates"] == 0, "nothing is created while another worker holds the key"
    finally:
        other.close()  # the other worker gives up without a video: now this one creates it
        thread.join(timeout=60)
    assert entries["p0"].status == "generated" and simulator.counters()["creates"] == 1


def test_a_claim_left_by_a_dead_worker_is_taken_over_and_the_paid_video_reattached(
    simulator: Any, s3_client: Any, bucket: str
) -> None:
    """A worker created the video, wrote its job record and died holding the claim: the next one takes the
    claim over at once (same host, dead pid) and reattaches through the job record: still one create."""
    text = "A windmill turning in a storm"
    keys = keys_of(text)
    first = producer_for(simulator, s3_client, bucket)
    simulator.configure(generation_seconds=3.0)
    # Let a first producer create the video and record its id, then "kill" it: stop at the job record.
    thread = threading.Thread(target=lambda: run_collecting(first, prompts([text])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while read_job_record(s3_client, bucket, keys) is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    thread.join(timeout=30)  # it finishes; then its traces are turned back into a dead worker's
    s3_client.delete_object(Bucket=bucket, Key=keys.video)
    s3_client.delete_object(Bucket=bucket, Key=keys.sidecar)
    record = read_job_record(s3_client, bucket, keys)
    assert record is not None
    dead = claim_body(host=first._keeper.host, pid=dead_pid())
    s3_client.put_object(
        Bucket=bucket,
        Key=keys.job,
        Body=record.model_copy(update={"status": "running", "entry": None, "holder": dead}).model_dump_json(),
    )

    entries, messages = run_collecting(producer_for(simulator, s3_client, bucket), prompts([text]))
    assert entries["p0"].ok and entries["p0"].reattached
    assert simulator.counters()["creates"] == 1
    assert any("taking over the stale claim" in m for m in messages)


def test_producers_sharing_accounts_stay_within_max_jobs_together(s3_client: Any, bucket: str) -> None:
    from minimax_dagster.simulator import MiniMaxSimulator

    with MiniMaxSimulator(
        generation_seconds=0.5, heartbeat_seconds=0.1, accounts={"100001": 1, "100002": 2}
    ) as sim:
        start = threading.Barrier(3)

        def one(name: str) -> dict[str, Any]:
            producer = producer_for(sim, s3_client, bucket)
            start.wait()
            return run_collecting(producer, prompts([f"{name}: a kite, shot {i}" for i in range(4)], name))[0]

        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(one, ["a", "b", "c"]))
        counters = sim.counters()
    assert all(e.ok for r in results for e in r.values())
    assert counters["creates"] == 12
    assert counters["max_concurrent_by_account"]["100001"] <= 1
    assert counters["max_concurrent_by_account"]["100002"] <= 2
    assert counters["rejected_by_status"].get("429", 0) == 0, "no producer asked beyond the shared capacity"


def test_an_unreachable_service_is_named() -> None:
    with pytest.raises(ServiceUnavailable, match="PostgreSQL"):
        ServiceSettings(pg_port=1).check()


# ------------------------------------------------------------------------------------------------ the cluster


@pytest.fixture(scope="module")
def service_settings() -> ServiceSettings:
    """The real PostgreSQL, RabbitMQ and Redis; a clear failure (skip outside CI only) when one is down."""
    settings = ServiceSettings.from_env()
    try:
        settings.check()
    except ServiceUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc} (CI=true: the services must be running)", pytrace=False)
        pytest.skip(f"{exc} (skipped because CI is not set)")
    return settings


RACE = [{"id": f"r{i}", "prompt": f"Paper boats racing on a canal, boat {i} [sim:slow=5]"} for i in range(3)]
SLOW = [{"id": "s0", "prompt": "A glacier calving into the sea [sim:slow=8]"}]
ACCOUNTS = {"100001": 2, "100002": 2}


@dataclass
class Scenario:
    """What the module's one scenario did (see ``scenario``)."""

    cluster: ScaleCluster
    race: list[BackfillReport] = field(default_factory=list)
    main: BackfillReport | None = None
    main_batches: dict[str, list[Any]] = field(default_factory=dict)
    killed: str = ""
    counters: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def scenario(
    service_settings: ServiceSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    """Two workers. (1) Two backfills of the partition ``race`` at once: both runs' video steps run together,
    one on each worker. (2) A backfill of four partitions plus ``slow``; once the slow video is paid for (its
    job record is written), the worker producing it is SIGKILLed, and RabbitMQ hands the step to the other."""
    t0 = time.time()
    with ScaleCluster(
        workers=2,
        generation_seconds=1.5,
        accounts=ACCOUNTS,
        services=service_settings,
        root=tmp_path_factory.mktemp("scale"),
    ) as cluster:
        out = Scenario(cluster)
        out.main_batches = {**batches_of(6, 2), "slow": SLOW}
        cluster.add_batches({"race": RACE, **out.main_batches})
        try:
            started = time.time()
            with ThreadPoolExecutor(2) as pool:
                # Job backfills: both runs are queued at once, so their video steps really race (two asset
                # backfills' runs start at the daemon's ticks, possibly one after the other's videos are done).
                race_tags = list(pool.map(lambda _: cluster.submit_backfill(["race"], asset=False), range(2)))
            main_started = time.time()
            main_tag = cluster.submit_backfill(list(out.main_batches))
            out.killed = _kill_the_slow_worker(cluster, main_tag)
            for tag in race_tags:
                cluster.wait_for_runs(tag, 1, timeout=240)
                out.race.append(cluster.report(tag, ["race"], len(RACE), started))
            cluster.wait_for_runs(main_tag, len(out.main_batches), timeout=240)
            prompts_count = sum(len(r) for r in out.main_batches.values())
            out.main = cluster.report(main_tag, list(out.main_batches), prompts_count, main_started)
            out.counters = cluster.services.simulator.counters() if cluster.services else {}
            print(
                f"timeline: cluster up {started - t0:.1f} s, race backfills submitted {main_started - started:.1f} s,"
                f" main backfill done {time.time() - main_started:.1f} s later"
            )
        except BaseException:
            print(cluster.logs(80))
            raise
        for report in [*out.race, out.main]:
            print("\n".join(report.lines()))
        print(f"killed worker: {out.killed}")
        yield out


def _kill_the_slow_worker(cluster: ScaleCluster, tag: str, timeout: float = 180.0) -> str:
    """Wait until the slow partition's video step runs on a worker and its video is paid for; SIGKILL it."""
    assert cluster.services is not None
    s3, bucket = cluster.services.s3_client(), cluster.services.bucket
    keys = VideoKeys(cluster.services.prefix, video_key(TEMPLATE_ID, SLOW[0]["prompt"], None))
    deadline = time.monotonic() + timeout
    while True:
        runs = [r for r in cluster.runs(tag) if partition_of(r) == "slow"]
        executions = cluster.step_executions(runs[0].run_id) if runs else []
        record = read_job_record(s3, bucket, keys)
        if executions and record is not None and record.status == "running":
            worker = executions[-1].worker
            cluster.kill_worker(worker)
            return worker
        assert time.monotonic() < deadline, f"the slow video step never started:\n{cluster.logs()}"
        time.sleep(0.2)


def _manifest(cluster: ScaleCluster, partition: str) -> VideoManifest:
    assert cluster.services is not None
    data = get_json(
        cluster.services.s3_client(),
        cluster.services.bucket,
        f"{cluster.services.prefix}/assets/batch_videos/{partition}.json",
    )
    assert data is not None, f"no manifest for partition {partition}"
    return VideoManifest.model_validate(data)


def test_backfill_across_workers_produces_every_partition_exactly_once(scenario: Scenario) -> None:
    cluster, main = scenario.cluster, scenario.main
    assert main is not None and main.succeeded, main.lines() if main else None
    by_partition: dict[str, list[dict[str, Any]]] = {}
    for run in main.runs:
        by_partition.setdefault(run["partition"], []).append(run)
    assert sorted(by_partition) == sorted(scenario.main_batches)
    assert all(len(runs) == 1 for runs in by_partition.values()), "one run per partition"
    assert cluster.instance is not None
    materialized = [
        r.partition_key
        for r in cluster.instance.fetch_materializations(dg.AssetKey("batch_videos"), limit=100).records
    ]
    for partition, rows in scenario.main_batches.items():
        assert materialized.count(partition) == 1, (
            f"{partition} materialized {materialized.count(partition)} times"
        )
        manifest = _manifest(cluster, partition)
        assert sorted(e.id for e in manifest.entries) == sorted(r["id"] for r in rows)
        assert all(e.ok for e in manifest.entries)
    workers = {w for runs in by_partition.values() for w in runs[0]["video_workers"]}
    assert len(workers) == 2, f"both workers produced partitions: {workers}"


def test_two_runs_racing_for_the_same_partition_pay_once(scenario: Scenario) -> None:
    race = scenario.race
    assert len(race) == 2 and all(r.succeeded for r in race)
    workers = [r.runs[0]["video_workers"][0] for r in race]
    assert workers[0] != workers[1], "the two racing video steps ran at once, one on each worker"
    generated = sum(r.runs[0]["videos"]["generated"] for r in race)
    reused = sum(r.runs[0]["videos"]["reused"] for r in race)
    assert (generated, reused) == (3, 3), "each video generated by one run and reused by the other"
    logs = [scenario.cluster.instance.all_logs(r.runs[0]["run_id"]) for r in race]  # type: ignore[union-attr]
    waited = [any("waiting for its result" in (e.user_message or "") for e in log) for log in logs]
    assert any(waited), "the later run found the videos claimed and waited, instead of creating"


def test_one_create_per_prompt_and_capacity_shared_by_all_workers(scenario: Scenario) -> None:
    counters = scenario.counters
    distinct = len(RACE) + sum(len(r) for r in scenario.main_batches.values())
    assert counters["creates"] == distinct
    assert set(counters["creates_by_prompt"].values()) == {1}
    for account, max_jobs in ACCOUNTS.items():
        assert counters["max_concurrent_by_account"].get(account, 0) <= max_jobs
    assert counters["rejected_by_status"].get("429", 0) == 0, "no worker asked beyond the shared capacity"


def test_a_worker_killed_mid_generation_is_replaced_by_another_that_reattaches(scenario: Scenario) -> None:
    main = scenario.main
    assert main is not None
    slow = next(r for r in main.runs if r["partition"] == "slow")
    assert slow["status"] == "SUCCESS"
    first, *rest = scenario.cluster.step_executions(slow["run_id"])
    assert first.worker == scenario.killed and rest and rest[-1].worker != scenario.killed, (
        "the killed worker's step was executed again by the other worker"
    )
    entry = _manifest(scenario.cluster, "slow").entries[0]
    assert entry.ok and entry.reattached, "the video paid for by the killed worker was reattached"
    assert scenario.counters["creates_by_prompt"][SLOW[0]["prompt"]] == 1


def test_the_workers_app_imports_the_code_location_before_the_pool_forks() -> None:
    """``-A minimax_dagster.deployment.celery_app``: dagster-celery's app and tasks, with the definitions already
    imported in the worker's main process (so no pool process imports them inside its first step)."""
    probe = (
        "import sys\n"
        "from minimax_dagster.deployment import celery_app\n"
        "import dagster_celery.app\n"
        "assert celery_app.app is dagster_celery.app.app\n"
        "print('minimax_dagster.deployment.definitions' in sys.modules, "
        "sorted(t for t in celery_app.app.tasks if not t.startswith('celery.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[0] == "True ['execute_job', 'execute_plan', 'resume_job']"


def test_the_workers_warm_up_before_the_pool_forks_without_a_network_call() -> None:
    """Celery's ``worker_init`` (sent in the worker's main process before the pool starts) builds one S3 client
    and freezes the collector, with every socket refused and no AWS credentials anywhere: a client built
    without keys would ask the instance metadata service (a connect) and fail here."""
    probe = (
        "import gc, socket\n"
        "def refuse(*args, **kwargs):\n"
        "    raise AssertionError('network call at the worker start')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from celery.signals import worker_init\n"
        "from minimax_dagster.deployment import celery_app\n"
        "before = gc.get_freeze_count()\n"
        "worker_init.send(sender=None)\n"
        "print(before, gc.get_freeze_count() > 0)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[0] == "0 True"


def test_the_cluster_serves_its_code_location_from_one_code_server(scenario: Scenario) -> None:
    """The daemon and every backfill launch of the scenario loaded the code from the cluster's code
    server (a ``grpc_server`` workspace entry), which is still up after all those runs."""
    cluster = scenario.cluster
    workspace = (cluster.home / "workspace.yaml").read_text()
    assert "grpc_server:" in workspace and "python_module" not in workspace
    assert cluster.code_server is not None and cluster.code_server.poll() is None
    assert scenario.main is not None and scenario.main.succeeded
