"""A local "production" deployment for one session: PostgreSQL storage, RabbitMQ, Celery workers, the daemon.

:class:`ScaleCluster` starts, in this order, and stops in reverse (even on failure):

1. the embedded MiniMax simulator and S3 server (the demo's :class:`EmbeddedServices`);
2. a fresh PostgreSQL database ``mmd_<random>`` for the Dagster instance (dropped at the end), and a
   ``DAGSTER_HOME`` holding ``deploy/postgres/dagster.yaml`` and a workspace for
   :mod:`minimax_dagster.scale.definitions`;
3. N Celery workers (``dagster-celery worker start``, one step at a time each) on a queue of its own
   (``mmd-<random>``, deleted at the end), so sessions sharing a broker never take each other's steps;
4. ``dagster-daemon run`` (the run queue, run retries, backfills).

It then submits backfills with ``dagster job backfill`` and reads what happened from the instance: runs, the
Celery worker that executed each step (dagster-celery's "Executing steps ... in celery worker" engine event) and
the simulator's counters. Every process is started in a session of its own and stopped by its process group.

>>> # with ScaleCluster(workers=2) as cluster: cluster.add_batches(rows); report = cluster.run_backfill(...)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from minimax_dagster.demo.services import EmbeddedServices
from minimax_dagster.storage import put_json

REPO = Path(__file__).resolve().parents[2]
INSTANCE_YAML = REPO / "deploy" / "postgres" / "dagster.yaml"
CELERY_YAML = REPO / "deploy" / "celery_config.yaml"
BIN = Path(sys.executable).parent
VIDEO_STEP = "batch_videos"
TAG = "minimax/scale-backfill"


class ServiceUnavailable(RuntimeError):
    """A service the deployment needs (PostgreSQL, RabbitMQ, Redis) cannot be reached; the message names it."""


# ------------------------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class ServiceSettings:
    """Where PostgreSQL, RabbitMQ and Redis are (defaults: the local services on their standard ports).

    Variables: ``DAGSTER_PG_HOST`` / ``_PORT`` / ``_USERNAME`` / ``_PASSWORD``, ``DAGSTER_PG_ADMIN_DB`` (the
    database to connect to for creating the session's one, default ``test``), ``DAGSTER_CELERY_BROKER_URL``,
    ``DAGSTER_CELERY_BACKEND_URL``.

    >>> ServiceSettings.from_env({}).broker_url
    'pyamqp://guest:guest@127.0.0.1:5672//'
    """

    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_user: str = "postgres"
    pg_password: str = ""
    pg_admin_db: str = "test"
    broker_url: str = "pyamqp://guest:guest@127.0.0.1:5672//"
    backend_url: str = "redis://127.0.0.1:6379/0"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceSettings:
        """Read the settings from ``env`` (default ``os.environ``)."""
        env = os.environ if env is None else env
        return cls(
            pg_host=env.get("DAGSTER_PG_HOST", cls.pg_host),
            pg_port=int(env.get("DAGSTER_PG_PORT", cls.pg_port)),
            pg_user=env.get("DAGSTER_PG_USERNAME", cls.pg_user),
            pg_password=env.get("DAGSTER_PG_PASSWORD", cls.pg_password),
            pg_admin_db=env.get("DAGSTER_PG_ADMIN_DB", cls.pg_admin_db),
            broker_url=env.get("DAGSTER_CELERY_BROKER_URL", cls.broker_url),
            backend_url=env.get("DAGSTER_CELERY_BACKEND_URL", cls.backend_url),
        )

    def _pg_connect(self, db: str) -> Any:
        import psycopg2

        return psycopg2.connect(
            host=self.pg_host,
            port=self.pg_port,
            user=self.pg_user,
            password=self.pg_password or None,
            dbname=db,
            connect_timeout=5,
        )

    def check(self) -> None:
        """Raise :class:`ServiceUnavailable` naming the first service that cannot be reached."""
        try:
            self._pg_connect(self.pg_admin_db).close()
        except Exception as exc:
            raise ServiceUnavailable(
                f"PostgreSQL is not reachable at {self.pg_host}:{self.pg_port} (user {self.pg_user}, "
                f"database {self.pg_admin_db}): {str(exc).strip()}"
            ) from None
        from kombu import Connection

        try:
            with Connection(self.broker_url, connect_timeout=5) as conn:
                conn.ensure_connection(max_retries=1)
        except Exception as exc:
            raise ServiceUnavailable(
                f"RabbitMQ (the Celery broker) is not reachable at {_redact(self.broker_url)}: {exc}"
            ) from None
        if self.backend_url.startswith("redis"):
            import redis

            try:
                redis.Redis.from_url(self.backend_url, socket_connect_timeout=5).ping()
            except Exception as exc:
                raise ServiceUnavailable(
                    f"Redis (the Celery result backend) is not reachable at {_redact(self.backend_url)}: {exc}"
                ) from None

    @contextlib.contextmanager
    def fresh_database(self) -> Iterator[str]:
        """A new, empty database ``mmd_<random>`` for one session; dropped (connections closed) afterwards."""
        name = f"mmd_{secrets.token_hex(6)}"
        conn = self._pg_connect(self.pg_admin_db)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
            yield name
        finally:
            with contextlib.suppress(Exception), conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.close()


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"


# ------------------------------------------------------------------------------------------------ services


_MOTO_LOCK = threading.Lock()
_MOTO_PATCHED = False


def atomic_conditional_writes() -> None:
    """Make moto's S3 server apply conditional writes (``If-None-Match`` / ``If-Match``) atomically.

    Real S3 guarantees that of two concurrent conditional PUTs of a key only one succeeds; moto checks the
    condition and stores the object in two steps, so two requests landing in the same millisecond could both
    win. The claims of the video producer rely on that guarantee: here the embedded test server provides it,
    by running single-object writes, deletes and listings one at a time (a listing also iterates a dict that a
    concurrent write or delete changes: moto answers 500 then). Idempotent; affects the S3 servers of this
    process only, and costs nothing measurable at their scale.
    """
    global _MOTO_PATCHED
    from moto.s3.responses import S3Response

    with _MOTO_LOCK:
        if _MOTO_PATCHED:
            return
        for name in ("put_object", "delete_object", "list_objects", "list_objects_v2"):
            original = getattr(S3Response, name)

            def serialized(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                with _MOTO_LOCK:
                    return _original(self, *args, **kwargs)

            setattr(S3Response, name, serialized)
        _MOTO_PATCHED = True


@dataclass
class Worker:
    """A Celery worker process (its process group) and its node name."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """The pid of the worker's process group leader."""
        return self.process.pid


def _stop_group(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``grace`` seconds."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # children that outlived their leader
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


@dataclass
class StepExecution:
    """One execution of a step by a Celery worker, read from the event log."""

    run_id: str
    partition: str | None
    step_key: str
    worker: str
    timestamp: float


@dataclass
class BackfillReport:
    """What a backfill did: its runs, which worker produced each partition, the simulator's counters."""

    tag: str
    partitions: list[str]
    prompts: int
    workers: int
    capacity: int
    generation_seconds: float
    wall_seconds: float
    submit_seconds: float = 0.0
    started_at: float = 0.0
    runs: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, Any] = field(default_factory=dict)

    @property
    def ideal_seconds(self) -> float:
        """The capacity-bound ideal: ``ceil(prompts / capacity)`` generations one after the other."""
        return math.ceil(self.prompts / max(1, self.capacity)) * self.generation_seconds

    @property
    def succeeded(self) -> bool:
        """Every run succeeded."""
        return bool(self.runs) and all(r["status"] == "SUCCESS" for r in self.runs)

    def lines(self) -> list[str]:
        """The report as printable lines: one per partition, then the totals."""
        out = [f"{'partition':<14} {'run':<8} {'status':<8} {'worker(s) of the video step':<40} videos"]
        for r in sorted(self.runs, key=lambda r: r["partition"] or ""):
            out.append(
                f"{r['partition'] or '-':<14} {r['run_id'][:8]:<8} {r['status']:<8} "
                f"{' -> '.join(r['video_workers']) or '?':<40} {r['videos']}"
            )
        out += self.time_lines()
        c = self.counters
        by_prompt = c.get("creates_by_prompt", {})
        out += [
            f"{len(self.partitions)} partitions, {self.prompts} prompts, {self.workers} worker(s), capacity "
            f"{self.capacity}: wall {self.wall_seconds:.1f} s, capacity-bound ideal {self.ideal_seconds:.1f} s "
            f"({self.ideal_seconds / self.wall_seconds:.0%} of ideal)"
            if self.wall_seconds
            else "",
            f"simulator: {c.get('creates', 0)} creates for {len(by_prompt)} distinct prompts (most for one "
            f"prompt: {max(by_prompt.values(), default=0)}), max concurrent by account "
            f"{c.get('max_concurrent_by_account', {})}, refused with 429: "
            f"{c.get('rejected_by_status', {}).get('429', 0)}",
        ]
        return out

    def _timed(self) -> list[dict[str, float]]:
        return [r["t"] for r in self.runs if r.get("t") and None not in r["t"].values()]

    def phases(self) -> dict[str, float]:
        """Mean seconds per run in each phase, from the run records and step stats (see :meth:`time_lines`)."""
        timed = self._timed()
        if not timed:
            return {}
        spans = {
            "queued": ("created", "start"),
            "startup": ("start", "prompts_start"),
            "prompts_step": ("prompts_start", "prompts_end"),
            "pool_wait": ("prompts_end", "video_start"),
            "video_step": ("video_start", "video_end"),
            "teardown": ("video_end", "end"),
        }
        return {k: sum(t[b] - t[a] for t in timed) / len(timed) for k, (a, b) in spans.items()}

    def video_busy_seconds(self) -> float:
        """Seconds during which at least one video step was running (the union of their intervals)."""
        spans = sorted((t["video_start"], t["video_end"]) for t in self._timed())
        busy, current = 0.0, None
        for start, end in spans:
            if current is None or start > current[1]:
                busy += 0.0 if current is None else current[1] - current[0]
                current = [start, end]
            else:
                current[1] = max(current[1], end)
        return busy + (current[1] - current[0] if current else 0.0)

    def time_lines(self) -> list[str]:
        """Where the time goes: the submission, each run's phases, how long video steps were running."""
        timed = self._timed()
        if not timed:
            return []
        first = min(t["start"] for t in timed) - self.started_at
        ph = self.phases()
        return [
            f"time: backfill submitted in {self.submit_seconds:.1f} s (dagster job backfill); first run started "
            f"at {first:.1f} s; per run (mean): queued {ph['queued']:.1f} s, run start-up to first step "
            f"{ph['startup']:.1f} s, prompts step {ph['prompts_step']:.1f} s, pool wait + dispatch "
            f"{ph['pool_wait']:.1f} s, video step {ph['video_step']:.1f} s, run end {ph['teardown']:.1f} s; "
            f"some video step running during {self.video_busy_seconds():.1f} s of {self.wall_seconds:.1f} s",
        ]


class ScaleCluster:
    """Services, a fresh Dagster instance on PostgreSQL, N Celery workers and the daemon (see the module)."""

    def __init__(
        self,
        *,
        workers: int = 2,
        generation_seconds: float = 2.0,
        accounts: Mapping[str, int] | None = None,
        pool_limit: int | None = None,
        video_bytes: int | None = 64 * 1024,
        services: ServiceSettings | None = None,
        root: Path | None = None,
        daemon: bool = True,
        log: Any = None,
    ) -> None:
        self.worker_count = workers
        self.generation_seconds = generation_seconds
        self.accounts = dict(accounts or {"100001": 5, "100002": 5})
        self.pool_limit = pool_limit if pool_limit is not None else workers
        self.video_bytes = video_bytes
        self.settings = services or ServiceSettings.from_env()
        self.token = secrets.token_hex(3)
        self.queue = f"mmd-{self.token}"
        self.root = root
        self.with_daemon = daemon
        self.say = log or (lambda text: print(text, flush=True))
        self.workers: dict[str, Worker] = {}
        self.daemon: subprocess.Popen[bytes] | None = None
        self.services: EmbeddedServices | None = None
        self.instance: dg.DagsterInstance | None = None
        self.env: dict[str, str] = {}
        self._stack = contextlib.ExitStack()
        self._home: Path | None = None

    # -------------------------------------------------------------------------------------------- lifecycle

    def __enter__(self) -> ScaleCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def capacity(self) -> int:
        """Σ maxJobs of the simulator's accounts."""
        return sum(self.accounts.values())

    @property
    def home(self) -> Path:
        """``DAGSTER_HOME`` of this cluster."""
        assert self._home is not None, "start the cluster first"
        return self._home

    def start(self) -> ScaleCluster:
        """Start everything; raises :class:`ServiceUnavailable` when PostgreSQL/RabbitMQ/Redis are down."""
        self.settings.check()
        atomic_conditional_writes()
        self.services = self._stack.enter_context(
            EmbeddedServices(
                generation_seconds=self.generation_seconds,
                heartbeat_seconds=min(1.0, self.generation_seconds / 4),
                seed_datasets=False,
                accounts=self.accounts,
                video_bytes=self.video_bytes,
            )
        )
        db = self._stack.enter_context(self.settings.fresh_database())
        self._home = Path(tempfile.mkdtemp(prefix=f"mmd-scale-{self.token}-", dir=self.root))
        self._stack.callback(shutil.rmtree, self._home, True)
        shutil.copy(INSTANCE_YAML, self._home / "dagster.yaml")
        (self._home / "workspace.yaml").write_text(
            "load_from:\n  - python_module:\n      module_name: minimax_dagster.scale.definitions\n"
            f"      working_directory: {REPO}\n      location_name: scale\n"
        )
        s = self.settings
        self.env = {
            **os.environ,
            **self.services.env(),
            "DAGSTER_HOME": str(self._home),
            "DAGSTER_PG_HOST": s.pg_host,
            "DAGSTER_PG_PORT": str(s.pg_port),
            "DAGSTER_PG_USERNAME": s.pg_user,
            "DAGSTER_PG_PASSWORD": s.pg_password,
            "DAGSTER_PG_DB": db,
            "DAGSTER_CELERY_BROKER_URL": s.broker_url,
            "DAGSTER_CELERY_BACKEND_URL": s.backend_url,
            "MINIMAX_CELERY_QUEUE": self.queue,
            "MINIMAX_CELERY_CONFIG": str(CELERY_YAML),
            "PYTHONPATH": os.pathsep.join(p for p in [str(REPO), os.environ.get("PYTHONPATH", "")] if p),
            "PYTHONUNBUFFERED": "1",
            # dagster-celery starts `celery` from PATH: the one of this environment.
            "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")]),
        }
        self._stack.callback(self._delete_queue)
        with _environ(self.env):
            self.instance = self._stack.enter_context(dg.DagsterInstance.from_config(str(self._home)))
        self.instance.event_log_storage.set_concurrency_slots("minimax", self.pool_limit)
        self._stack.callback(self._stop_processes)
        for i in range(1, self.worker_count + 1):
            self.start_worker(f"w{i}")
        if self.with_daemon:
            self.daemon = self._spawn(
                [str(BIN / "dagster-daemon"), "run", "-w", str(self._home / "workspace.yaml")],
                self._home / "daemon.log",
            )
        self.wait_for_workers(list(self.workers))
        return self

    def stop(self) -> None:
        """Stop every process, the services, drop the database, delete the queue and DAGSTER_HOME."""
        self._stack.close()

    def _spawn(self, cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            return subprocess.Popen(
                cmd,
                env=self.env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def start_worker(self, short: str) -> Worker:
        """Start one Celery worker named ``<short>-<session>@<host>`` that runs one step at a time."""
        name = f"{short}-{self.token}"
        cmd = [
            str(BIN / "dagster-celery"),
            "worker",
            "start",
            "-A",
            "dagster_celery.app",
            "-y",
            str(CELERY_YAML),
            "-q",
            self.queue,
            "-n",
            name,
            "--",
            "--concurrency=1",
            "--without-gossip",
            "--without-mingle",
        ]
        process = self._spawn(cmd, self.home / f"{short}.log")
        worker = Worker(f"{name}@{socket.gethostname()}", process, self.home / f"{short}.log")
        self.workers[worker.name] = worker
        return worker

    def wait_for_workers(self, names: list[str], timeout: float = 120.0) -> None:
        """Wait until every named worker answers a ping through the broker."""
        from celery import Celery

        app = Celery(broker=self.settings.broker_url)
        try:
            deadline = time.monotonic() + timeout
            missing = set(names)
            while missing:
                for name, worker in self.workers.items():
                    if name in missing and worker.process.poll() is not None:
                        raise RuntimeError(f"worker {name} exited:\n{_tail(worker.log)}")
                replies = app.control.ping(destination=sorted(missing), timeout=1.0) or []
                for reply in replies:
                    missing -= set(reply)
                if missing and time.monotonic() > deadline:
                    raise TimeoutError(f"Celery workers {sorted(missing)} did not start in {timeout:.0f} s")
        finally:
            app.close()

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker and all its processes at once, like a lost machine."""
        worker = self.workers.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)

    def _stop_processes(self) -> None:
        processes = ([self.daemon] if self.daemon is not None else []) + [
            w.process for w in self.workers.values()
        ]
        threads = [threading.Thread(target=_stop_group, args=(p,)) for p in processes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.daemon = None
        self.workers.clear()

    def _delete_queue(self) -> None:
        from kombu import Connection

        with contextlib.suppress(Exception), Connection(self.settings.broker_url, connect_timeout=5) as conn:
            conn.default_channel.queue_delete(self.queue)

    # -------------------------------------------------------------------------------------------- backfills

    def add_batches(self, batches: Mapping[str, list[Any]]) -> None:
        """Store each batch of prompt rows as a dataset in S3 and register it as a partition."""
        assert self.services is not None and self.instance is not None
        s3 = self.services.s3_client()
        for name, rows in batches.items():
            put_json(s3, self.services.bucket, f"{self.services.prefix}/datasets/{name}.json", rows)
        self.instance.add_dynamic_partitions("scale_batches", list(batches))

    def submit_backfill(self, partitions: list[str], tag: str | None = None) -> str:
        """``dagster job backfill`` of ``partitions`` (queued runs, tagged ``minimax/scale-backfill=<tag>``)."""
        tag = tag or secrets.token_hex(4)
        cmd = [
            str(BIN / "dagster"),
            "job",
            "backfill",
            "-w",
            str(self.home / "workspace.yaml"),
            "-j",
            "scale_videos_job",
            "--partitions",
            ",".join(partitions),
            "--tags",
            json.dumps({TAG: tag}),
            "--noprompt",
        ]
        done = subprocess.run(cmd, env=self.env, cwd=REPO, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"dagster job backfill failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return tag

    def runs(self, tag: str) -> list[dg.DagsterRun]:
        """The runs of one backfill."""
        assert self.instance is not None
        return list(self.instance.get_runs(filters=dg.RunsFilter(tags={TAG: tag})))

    def wait_for_runs(self, tag: str, count: int, timeout: float = 600.0) -> list[dg.DagsterRun]:
        """Wait until ``count`` runs of the backfill are finished (success, failure or canceled)."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.runs(tag)
            if len(runs) >= count and all(r.is_finished for r in runs):
                return runs
            if time.monotonic() > deadline:
                states = {r.run_id[:8]: r.status.value for r in runs}
                raise TimeoutError(
                    f"backfill {tag}: runs not finished in {timeout:.0f} s: {states}\n{self.logs()}"
                )
            if self.daemon is not None and self.daemon.poll() is not None:
                raise RuntimeError(f"dagster-daemon exited:\n{self.logs()}")
            time.sleep(0.5)

    def step_executions(self, run_id: str, step_key: str = VIDEO_STEP) -> list[StepExecution]:
        """Every time a Celery worker started ``step_key`` of the run, in order (more than one after a retry
        or after a worker died mid-step and the broker handed the step to another)."""
        assert self.instance is not None
        run = self.instance.get_run_by_id(run_id)
        partition = run.tags.get("dagster/partition") if run else None
        out = []
        for entry in self.instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
            event = entry.dagster_event
            if event is None or entry.step_key != step_key:
                continue
            data = event.engine_event_data
            worker = data.metadata.get("Celery worker") if data and data.metadata else None
            if worker is not None:
                out.append(StepExecution(run_id, partition, step_key, str(worker.value), entry.timestamp))
        return out

    def materialized_counts(self, run_id: str) -> dict[str, Any]:
        """The counts in the video asset's materialization metadata of a run (generated, reused...)."""
        assert self.instance is not None
        for entry in self.instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
            mat = entry.asset_materialization
            if mat is not None and mat.asset_key == dg.AssetKey(VIDEO_STEP):
                return {
                    k: v.value
                    for k, v in mat.metadata.items()
                    if k in ("generated", "reused", "reattached", "failed", "total")
                }
        return {}

    def report(
        self, tag: str, partitions: list[str], prompts: int, started_at: float, submit_seconds: float = 0.0
    ) -> BackfillReport:
        """Gather the backfill's runs, workers per partition and the simulator's counters.

        ``started_at`` (epoch seconds) is when the backfill was submitted: the wall time runs from it to the
        end of the last run.
        """
        assert self.services is not None and self.instance is not None
        records = list(self.instance.get_run_records(filters=dg.RunsFilter(tags={TAG: tag})))
        report = BackfillReport(
            tag=tag,
            partitions=partitions,
            prompts=prompts,
            workers=self.worker_count,
            capacity=self.capacity,
            generation_seconds=self.generation_seconds,
            wall_seconds=max((r.end_time or time.time() for r in records), default=started_at) - started_at,
            submit_seconds=submit_seconds,
            started_at=started_at,
            counters=self.services.simulator.counters(),
        )
        for record in records:
            run = record.dagster_run
            executions = self.step_executions(run.run_id)
            steps = {s.step_key: s for s in self.instance.get_run_step_stats(run.run_id)}
            prompts, videos = steps.get("batch_prompts"), steps.get(VIDEO_STEP)
            report.runs.append(
                {
                    "run_id": run.run_id,
                    "partition": run.tags.get("dagster/partition"),
                    "status": run.status.value,
                    "video_workers": [
                        e.worker.split("@")[0].removesuffix(f"-{self.token}") for e in executions
                    ],
                    "videos": self.materialized_counts(run.run_id),
                    "t": {
                        "created": record.create_timestamp.timestamp(),
                        "start": record.start_time,
                        "prompts_start": prompts.start_time if prompts else None,
                        "prompts_end": prompts.end_time if prompts else None,
                        "video_start": videos.start_time if videos else None,
                        "video_end": videos.end_time if videos else None,
                        "end": record.end_time,
                    },
                }
            )
        return report

    def run_backfill(self, batches: Mapping[str, list[Any]], timeout: float = 900.0) -> BackfillReport:
        """Add the batches, backfill them all, wait for every run and report."""
        self.add_batches(batches)
        names = list(batches)
        started = time.time()
        tag = self.submit_backfill(names)
        submitted = time.time() - started
        self.wait_for_runs(tag, len(names), timeout=timeout)
        return self.report(tag, names, sum(len(rows) for rows in batches.values()), started, submitted)

    def logs(self, lines: int = 40) -> str:
        """The tails of the daemon's and workers' logs (for failure messages)."""
        if self._home is None:
            return ""
        return "\n".join(
            f"--- {p.name}\n{_tail(p, lines)}" for p in sorted(self._home.glob("*.log")) if p.exists()
        )


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block (the instance resolves ``env:`` at load)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def batches_of(prompts: int, per_batch: int, *, tag: str = "") -> dict[str, list[dict[str, str]]]:
    """``prompts`` distinct prompt rows in batches of ``per_batch`` (partition names ``b000``, ``b001``...).

    >>> {k: [r["id"] for r in v] for k, v in batches_of(5, 2).items()}
    {'b000': ['p0000', 'p0001'], 'b001': ['p0002', 'p0003'], 'b002': ['p0004']}
    """
    subjects = ["a red fox", "a lighthouse", "a paper boat", "a city tram", "a hummingbird", "a caravan"]
    rows = [
        {"id": f"p{i:04d}", "prompt": f"{subjects[i % len(subjects)]}, shot {i}{(' ' + tag) if tag else ''}"}
        for i in range(prompts)
    ]
    return {f"b{n:03d}": rows[i : i + per_batch] for n, i in enumerate(range(0, prompts, per_batch))}
