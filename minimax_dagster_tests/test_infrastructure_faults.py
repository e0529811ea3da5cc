"""The deployment survives its own infrastructure (issue 26): a restart of PostgreSQL, Redis, RabbitMQ or the
code server, a SIGKILLed Celery worker or a restarted daemon, in the middle of a backfill.

One :class:`~benchmarks.scale.cluster.ScaleCluster` (2 Celery workers, the daemon, the code server, the
deployment's own ``deploy/postgres/dagster.yaml`` and Celery YAML) runs on PostgreSQL, Redis and RabbitMQ
instances of this module's own, on free ports (:mod:`minimax_dagster_tests.private_services`); the machine's
services are never touched. A fault-free backfill comes first; then each test backfills new partitions, injects
its fault once the first video step is running, and checks that the backfill ends with every partition
materialized without any action, each prompt created once (the simulator's counters), and no run left
unfinished. Wall times are printed (and tabled in docs/FAULTS.md), never asserted.

Select them with ``-m faults``; they need PostgreSQL's server binaries, redis-server and rabbitmq-server.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from benchmarks.scale import ScaleCluster, ServiceSettings
from benchmarks.scale.cluster import partition_of
from minimax_dagster_tests.private_services import PrivatePostgres, PrivateRabbitMQ, PrivateRedis

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

PARTITIONS = 2
PROMPTS_PER_PARTITION = 2


@dataclass
class Services:
    postgres: PrivatePostgres
    redis: PrivateRedis
    rabbitmq: PrivateRabbitMQ


@dataclass
class Outcome:
    """What one backfill did."""

    fault: str
    partitions: list[str]
    prompts: list[str]
    runs: list[dg.DagsterRun]
    wall_seconds: float
    fault_seconds: float
    creates_by_prompt: dict[str, int]

    def line(self) -> str:
        failed = sum(r.status == dg.DagsterRunStatus.FAILURE for r in self.runs)
        return (
            f"FAULT {self.fault}: {len(self.runs)} runs ({failed} failed, retried), wall {self.wall_seconds:.1f} s,"
            f" fault took {self.fault_seconds:.1f} s, creates {sum(self.creates_by_prompt.values())}"
            f" for {len(self.prompts)} prompts"
        )


def _tools_missing() -> str | None:
    for tool in ("redis-server", "rabbitmq-server"):
        if shutil.which(tool) is None and not Path("/usr/lib/rabbitmq/bin", tool).exists():
            return tool
    return None if list(Path("/usr/lib/postgresql").glob("*/bin/initdb")) else "initdb"


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    missing = _tools_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} is not installed (CI=true: the fault tests must run)", pytrace=False)
        pytest.skip(f"{missing} is not installed")
    root = tmp_path_factory.mktemp("private-services")
    root.chmod(0o755)
    started: list[Any] = []
    try:
        postgres = PrivatePostgres()
        postgres.start()
        started.append(postgres)
        redis = PrivateRedis(root / "redis")
        redis.start()
        started.append(redis)
        rabbitmq = PrivateRabbitMQ(root / "rabbitmq", f"mmd-{secrets.token_hex(3)}")
        rabbitmq.start()
        started.append(rabbitmq)
        yield Services(postgres, redis, rabbitmq)
    finally:
        for service in reversed(started):
            service.stop()


@pytest.fixture(scope="module")
def cluster(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleCluster]:
    settings = ServiceSettings(
        pg_port=services.postgres.port,
        pg_admin_db="postgres",
        broker_url=services.rabbitmq.url,
        backend_url=f"redis://127.0.0.1:{services.redis.port}/0",
    )
    with ScaleCluster(
        workers=2,
        generation_seconds=2.0,
        accounts={"100001": 2, "100002": 2},
        services=settings,
        root=tmp_path_factory.mktemp("fault-cluster"),
    ) as running:
        yield running


def _video_step_started(cluster: ScaleCluster, tag: str) -> bool:
    return any(cluster.step_executions(run.run_id) for run in cluster.runs(tag))


def backfill_with(cluster: ScaleCluster, fault: str, inject: Callable[[str], None] | None) -> Outcome:
    """Backfill new partitions; once a video step runs, ``inject(tag)``; wait for the end and gather."""
    assert cluster.services is not None and cluster.instance is not None
    batches = {
        f"{fault}-{p}": [
            {"id": f"{fault}-{p}-{i}", "prompt": f"A kite over the dunes, {fault} partition {p} shot {i}"}
            for i in range(PROMPTS_PER_PARTITION)
        ]
        for p in range(PARTITIONS)
    }
    cluster.add_batches(batches)
    started = time.time()
    tag = cluster.submit_backfill(list(batches))
    fault_seconds = 0.0
    try:
        if inject is not None:
            deadline = time.monotonic() + 300
            while not _video_step_started(cluster, tag):
                assert time.monotonic() < deadline, f"no video step started:\n{cluster.logs()}"
                time.sleep(0.2)
            t0 = time.monotonic()
            inject(tag)
            fault_seconds = time.monotonic() - t0
        runs = cluster.wait_for_runs(tag, PARTITIONS, timeout=600)
    except BaseException:
        print(cluster.logs(80))
        raise
    records = cluster.instance.get_run_records(filters=dg.RunsFilter(tags={"minimax/scale-backfill": tag}))
    wall = max(r.end_time or time.time() for r in records) - started
    by_prompt = cluster.services.simulator.counters()["creates_by_prompt"]
    prompts = [row["prompt"] for rows in batches.values() for row in rows]
    outcome = Outcome(
        fault, list(batches), prompts, runs, wall, fault_seconds, {p: by_prompt.get(p, 0) for p in prompts}
    )
    print(outcome.line())
    return outcome


def failures(cluster: ScaleCluster, runs: list[dg.DagsterRun]) -> list[str]:
    """The failure message (with its error) of every failed run."""
    assert cluster.instance is not None
    out = []
    for run in runs:
        for entry in cluster.instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE):
            event = entry.dagster_event
            error = event.job_failure_data.error if event and event.job_failure_data else None
            out.append(f"{run.run_id[:8]}: {entry.message}\n{error.to_string() if error else ''}")
    return out


def assert_recovered(cluster: ScaleCluster, outcome: Outcome) -> None:
    """Every partition materialized, each prompt created exactly once, every run finished."""
    assert cluster.instance is not None
    succeeded = {partition_of(r) for r in outcome.runs if r.status == dg.DagsterRunStatus.SUCCESS}
    assert succeeded == set(outcome.partitions), (
        f"{outcome.fault}: partitions without a successful run: {set(outcome.partitions) - succeeded}\n"
        f"{[(r.run_id[:8], r.tags.get('dagster/partition'), r.status.value) for r in outcome.runs]}\n"
        + "\n".join(failures(cluster, outcome.runs))[-6000:]
    )
    for partition in outcome.partitions:
        records = cluster.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("batch_videos"), asset_partitions=[partition]),
            limit=5,
        ).records
        assert records, f"{outcome.fault}: batch_videos[{partition}] was never materialized"
    assert set(outcome.creates_by_prompt.values()) == {1}, (
        f"{outcome.fault}: creates {outcome.creates_by_prompt}"
    )
    assert all(r.is_finished for r in outcome.runs), "no run is left hanging"


@pytest.fixture(scope="module")
def baseline(cluster: ScaleCluster) -> Outcome:
    outcome = backfill_with(cluster, "none", None)
    assert_recovered(cluster, outcome)
    return outcome


def _report(outcome: Outcome, baseline: Outcome) -> None:
    print(
        f"{outcome.fault}: wall {outcome.wall_seconds:.1f} s = {outcome.wall_seconds / baseline.wall_seconds:.2f} x"
        f" the fault-free {baseline.wall_seconds:.1f} s"
    )


def test_a_failed_runs_pool_slots_are_freed_and_the_next_run_proceeds(cluster: ScaleCluster) -> None:
    """Every ``minimax`` slot is held by a run that failed without releasing them (as a run whose orchestrator
    died does): run monitoring (``free_slots_after_run_end_seconds``) frees them and the next backfill's video
    steps get slots instead of waiting forever."""
    from dagster._core.test_utils import create_run_for_test

    instance = cluster.instance
    assert instance is not None
    dead = create_run_for_test(instance, job_name="lost_job", status=dg.DagsterRunStatus.STARTED)
    for i in range(cluster.pool_limit):
        claim = instance.event_log_storage.claim_concurrency_slot("minimax", dead.run_id, f"step_{i}")
        assert claim.is_claimed
    instance.report_run_failed(dead)
    assert instance.event_log_storage.get_concurrency_info("minimax").active_slot_count == cluster.pool_limit
    outcome = backfill_with(cluster, "held-slots", None)
    assert_recovered(cluster, outcome)
    assert instance.event_log_storage.get_concurrency_info("minimax").active_slot_count == 0


def test_postgresql_restart_mid_backfill(
    cluster: ScaleCluster, services: Services, baseline: Outcome
) -> None:
    outcome = backfill_with(cluster, "postgresql", lambda _: services.postgres.restart())
    assert_recovered(cluster, outcome)
    _report(outcome, baseline)


def test_redis_restart_mid_backfill(cluster: ScaleCluster, services: Services, baseline: Outcome) -> None:
    outcome = backfill_with(cluster, "redis", lambda _: services.redis.restart())
    assert_recovered(cluster, outcome)
    _report(outcome, baseline)


def test_rabbitmq_restart_mid_backfill(cluster: ScaleCluster, services: Services, baseline: Outcome) -> None:
    outcome = backfill_with(cluster, "rabbitmq", lambda _: services.rabbitmq.restart())
    assert_recovered(cluster, outcome)
    _report(outcome, baseline)


def test_code_server_restart_mid_backfill(cluster: ScaleCluster, baseline: Outcome) -> None:
    outcome = backfill_with(cluster, "code-server", lambda _: cluster.restart_code_server())
    assert_recovered(cluster, outcome)
    _report(outcome, baseline)


def test_worker_sigkill_mid_backfill(cluster: ScaleCluster, baseline: Outcome) -> None:
    def kill(tag: str) -> None:
        worker = next(e.worker for run in cluster.runs(tag) for e in cluster.step_executions(run.run_id))
        short = worker.split("@")[0].split("-")[0]
        cluster.kill_worker(worker)
        cluster.start_worker(short)  # the replacement a supervisor would start

    outcome = backfill_with(cluster, "worker-kill", kill)
    assert_recovered(cluster, outcome)
    _report(outcome, baseline)


def test_daemon_restart_mid_backfill(cluster: ScaleCluster, baseline: Outcome) -> None:
    outcome = backfill_with(cluster, "daemon", lambda _: cluster.restart_daemon())
    assert_recovered(cluster, outcome)
    _report(outcome, baseline)


def test_a_failed_run_of_the_backfill_is_retried_by_the_daemon_and_the_backfill_completes(
    cluster: ScaleCluster,
) -> None:
    """The run-retry path itself (what was refused for ``dagster job backfill``: "Not retrying run since it is
    part of a backfill that is in a terminal state"): the partition's dataset is unreadable when its run
    starts, so the run fails; the dataset is then fixed, and the daemon's retry of the asset backfill's run
    materializes the partition without anyone launching anything."""
    from minimax_dagster.storage import put_json

    assert cluster.services is not None and cluster.instance is not None
    partition = "retried-0"
    s3, bucket = cluster.services.s3_client(), cluster.services.bucket
    dataset = f"{cluster.services.prefix}/datasets/{partition}.json"
    put_json(s3, bucket, dataset, {"rows": "not a list"})  # the prompts step fails: "must hold a JSON list"
    cluster.instance.add_dynamic_partitions("scale_batches", [partition])
    tag = cluster.submit_backfill([partition])
    deadline = time.monotonic() + 300
    while not any(r.status == dg.DagsterRunStatus.FAILURE for r in cluster.runs(tag)):
        assert time.monotonic() < deadline, f"the first run never failed:\n{cluster.logs()}"
        time.sleep(0.2)
    rows = [{"id": "r0", "prompt": "A kite over the dunes, retried partition"}]
    put_json(s3, bucket, dataset, rows)
    runs = cluster.wait_for_runs(tag, 1, timeout=300)
    statuses = sorted((r.tags.get("dagster/retry_number", "0"), r.status.value) for r in runs)
    assert statuses[0] == ("0", "FAILURE") and statuses[-1][1] == "SUCCESS", statuses
    assert statuses[-1][0] != "0", "the successful run is the daemon's retry"
    creates = cluster.services.simulator.counters()["creates_by_prompt"]
    assert creates.get(rows[0]["prompt"]) == 1
