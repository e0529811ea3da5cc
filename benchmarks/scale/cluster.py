"""A local "production" deployment for one session: PostgreSQL storage, RabbitMQ, Celery workers, the daemon.

:class:`ScaleCluster` starts, in this order, and stops in reverse (even on failure):

1. the embedded MiniMax simulator and S3 server (:class:`minimax_dagster.embedded.EmbeddedServices`, whose S3
   server applies conditional writes atomically, as S3 does);
2. a fresh PostgreSQL database ``mmd_<random>`` for the Dagster instance (dropped at the end), and a
   ``DAGSTER_HOME`` holding ``deploy/postgres/dagster.yaml`` and a workspace for
   :mod:`minimax_dagster.deployment.definitions`;
3. the code server (``dagster api grpc``) of :mod:`minimax_dagster.deployment.definitions`, which the
   workspace names as a ``grpc_server``: it loads the code once, and the daemon and every ``dagster job
   backfill`` talk to it instead of each importing the code in a server of its own (``code_server=False``
   keeps the old ``python_module`` workspace, for comparison);
4. N Celery workers (``dagster-celery worker start``, one step at a time each) on a queue of its own
   (``mmd-<random>``, deleted at the end), so sessions sharing a broker never take each other's steps;
5. ``dagster-daemon run`` (the run queue, run retries, backfills).

It then submits asset backfills (:mod:`minimax_dagster.deployment.backfill`) and reads what happened from the instance: runs, the
Celery worker that executed each step (dagster-celery's "Executing steps ... in celery worker" engine event) and
the simulator's counters. Every process is started in a session of its own and stopped by its process group.

Needs PostgreSQL, RabbitMQ and Redis (:class:`~benchmarks.scale.services.ServiceSettings`); without them
:meth:`ScaleCluster.start` raises :class:`~benchmarks.scale.services.ServiceUnavailable` naming the service:

>>> from benchmarks.scale.services import ServiceSettings, ServiceUnavailable
>>> try:
...     ScaleCluster(workers=1, services=ServiceSettings(pg_port=1)).start()
... except ServiceUnavailable as exc:
...     print(str(exc).split(" (")[0])
PostgreSQL is not reachable at 127.0.0.1:1
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from benchmarks._common import free_port, machine_cpu_seconds
from benchmarks._timeline import s3_window
from benchmarks.scale.report import BackfillReport, StepExecution
from benchmarks.scale.services import ServiceSettings
from minimax_dagster.deployment.backfill import launch_asset_backfill
from minimax_dagster.deployment.celery import celery_config_path
from minimax_dagster.deployment.definitions import JOB_NAME
from minimax_dagster.embedded import EmbeddedServices
from minimax_dagster.storage import put_json

REPO = Path(__file__).resolve().parents[2]  # the repository (this tooling is not installed)
INSTANCE_YAML = REPO / "deploy" / "postgres" / "dagster.yaml"
WORKSPACE_YAML = REPO / "deploy" / "postgres" / "workspace.yaml"  # names the code server (grpc_server)
WORKSPACE_PORT = 4266  # the port written in WORKSPACE_YAML, replaced by a free one
LOCATION = "minimax"  # the code location name WORKSPACE_YAML gives
CELERY_YAML = celery_config_path()
BIN = Path(sys.executable).parent
VIDEO_STEP = "batch_videos"
TAG = "minimax/scale-backfill"


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


class ScaleCluster:
    """Services, a fresh Dagster instance on PostgreSQL, N Celery workers and the daemon (see the module)."""

    def __init__(
        self,
        *,
        workers: int = 2,
        generation_seconds: float = 2.0,
        accounts: Mapping[str, int] | None = None,
        pool_limit: int | None = None,
        worker_concurrency: int = 1,
        video_bytes: int | None = 64 * 1024,
        services: ServiceSettings | None = None,
        root: Path | None = None,
        daemon: bool = True,
        code_server: bool = True,
        log: Any = None,
    ) -> None:
        self.worker_count = workers
        self.generation_seconds = generation_seconds
        self.accounts = dict(accounts or {"100001": 5, "100002": 5})
        self.worker_concurrency = max(1, worker_concurrency)
        self.pool_limit = pool_limit if pool_limit is not None else workers * self.worker_concurrency
        self.video_bytes = video_bytes
        self.settings = services or ServiceSettings.from_env()
        self.token = secrets.token_hex(3)
        self.queue = f"mmd-{self.token}"
        self.root = root
        self.with_daemon = daemon
        self.with_code_server = code_server
        self.code_server: subprocess.Popen[bytes] | None = None
        self.say = log or (lambda text: print(text, flush=True))
        self.workers: dict[str, Worker] = {}
        self.daemon: subprocess.Popen[bytes] | None = None
        self.services: EmbeddedServices | None = None
        self.instance: dg.DagsterInstance | None = None
        self.env: dict[str, str] = {}
        self._stack = contextlib.ExitStack()
        self._home: Path | None = None
        self.backfill_ids: dict[str, str] = {}  # tag -> backfill id

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
        self.services = self._stack.enter_context(
            EmbeddedServices(
                bucket=f"mmd-scale-{self.token}",
                generation_seconds=self.generation_seconds,
                heartbeat_seconds=min(1.0, self.generation_seconds / 4),
                accounts=self.accounts,
                video_bytes=self.video_bytes,
            )
        )
        db = self._stack.enter_context(self.settings.fresh_database())
        self._home = Path(tempfile.mkdtemp(prefix=f"mmd-scale-{self.token}-", dir=self.root))
        self._stack.callback(shutil.rmtree, self._home, True)
        shutil.copy(INSTANCE_YAML, self._home / "dagster.yaml")
        code_port = free_port() if self.with_code_server else 0
        if self.with_code_server:
            # The deployment's own workspace file, on this cluster's port.
            workspace = WORKSPACE_YAML.read_text().replace(f"port: {WORKSPACE_PORT}", f"port: {code_port}")
            assert f"port: {code_port}" in workspace, f"{WORKSPACE_YAML} names no port {WORKSPACE_PORT}"
        else:
            workspace = (
                "load_from:\n  - python_module:\n      module_name: minimax_dagster.deployment.definitions\n"
                f"      working_directory: {REPO}\n      location_name: {LOCATION}\n"
            )
        (self._home / "workspace.yaml").write_text(workspace)
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
        self.code_port = code_port
        if self.with_code_server:
            self.start_code_server()
        for i in range(1, self.worker_count + 1):
            self.start_worker(f"w{i}")
        if self.code_server is not None:
            self.wait_for_code_server(code_port)  # before the daemon, which loads the workspace at its start
        if self.with_daemon:
            self.start_daemon()
        self.wait_for_workers(list(self.workers))
        return self

    def start_code_server(self) -> None:
        """Start the code server (``dagster api grpc``) on the cluster's port."""
        self.code_server = self._spawn(
            [
                str(BIN / "dagster"),
                "api",
                "grpc",
                "-m",
                "minimax_dagster.deployment.definitions",
                "--working-directory",
                str(REPO),
                "--location-name",
                LOCATION,
                "-h",
                "127.0.0.1",
                "-p",
                str(self.code_port),
            ],
            self.home / "code-server.log",
        )

    def start_daemon(self) -> None:
        """Start ``dagster-daemon run`` (the run queue, run retries, backfills, run monitoring)."""
        self.daemon = self._spawn(
            [str(BIN / "dagster-daemon"), "run", "-w", str(self.home / "workspace.yaml")],
            self.home / "daemon.log",
        )

    def restart_code_server(self) -> None:
        """SIGKILL the code server's own process (the runs it launched live on) and start it again."""
        assert self.code_server is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.code_server.pid, signal.SIGKILL)
        self.code_server.wait(timeout=10)
        self.start_code_server()
        self.wait_for_code_server(self.code_port)

    def restart_daemon(self) -> None:
        """SIGKILL the daemon (all its threads at once, like a lost machine) and start it again."""
        assert self.daemon is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.daemon.pid, signal.SIGKILL)
        self.daemon.wait(timeout=10)
        self.start_daemon()

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
        """Start one Celery worker named ``<short>-<session>@<host>`` that runs ``worker_concurrency`` steps at
        a time (its processes)."""
        name = f"{short}-{self.token}"
        cmd = [
            str(BIN / "dagster-celery"),
            "worker",
            "start",
            "-A",
            "minimax_dagster.deployment.celery_app",
            "-y",
            str(CELERY_YAML),
            "-q",
            self.queue,
            "-n",
            name,
            "--",
            f"--concurrency={self.worker_concurrency}",
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

    def wait_for_code_server(self, port: int, timeout: float = 120.0) -> None:
        """Wait until the code server answers a ping (it loads the code before it serves)."""
        from dagster._grpc.client import DagsterGrpcClient  # the client dagster's own processes use

        client = DagsterGrpcClient(port=port, host="127.0.0.1")
        deadline = time.monotonic() + timeout
        while True:
            assert self.code_server is not None
            if self.code_server.poll() is not None:
                raise RuntimeError(f"the code server exited:\n{_tail(self.home / 'code-server.log')}")
            try:
                client.ping("up")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the code server did not answer in {timeout:.0f} s") from None
                time.sleep(0.2)

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker and all its processes at once, like a lost machine."""
        worker = self.workers.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)

    def _stop_processes(self) -> None:
        processes = [p for p in (self.daemon, self.code_server) if p is not None] + [
            w.process for w in self.workers.values()
        ]
        threads = [threading.Thread(target=_stop_group, args=(p,)) for p in processes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.daemon = None
        self.code_server = None
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

    def submit_backfill(self, partitions: list[str], tag: str | None = None, *, asset: bool = True) -> str:
        """A backfill of ``partitions`` (one queued run per partition, tagged ``minimax/scale-backfill=<tag>``);
        returns the tag. ``asset`` (default): an asset backfill
        (:func:`~minimax_dagster.deployment.backfill.launch_asset_backfill`), whose failed runs the daemon
        retries, and whose runs the daemon creates at its next tick (within 30 s). ``asset=False``:
        ``dagster job backfill``, whose runs are queued at once but never retried."""
        tag = tag or secrets.token_hex(4)
        if asset:
            self.backfill_ids[tag] = launch_asset_backfill(
                self.home / "workspace.yaml", partitions, {TAG: tag}, env=self.env
            )
            return tag
        cmd = [
            str(BIN / "dagster"),
            "job",
            "backfill",
            "-w",
            str(self.home / "workspace.yaml"),
            "-j",
            JOB_NAME,
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

    def backfill_status(self, tag: str) -> str:
        """The status of the backfill submitted with ``tag`` (REQUESTED until the daemon closes it)."""
        assert self.instance is not None
        backfill = self.instance.get_backfill(self.backfill_ids[tag])
        return backfill.status.value if backfill is not None else "MISSING"

    def runs(self, tag: str) -> list[dg.DagsterRun]:
        """The runs of one backfill."""
        assert self.instance is not None
        return list(self.instance.get_runs(filters=dg.RunsFilter(tags={TAG: tag})))

    def wait_for_runs(self, tag: str, count: int, timeout: float = 600.0) -> list[dg.DagsterRun]:
        """Wait until ``count`` partitions of the backfill have a run that succeeded, or the backfill ended,
        and every run of it is finished (success, failure or canceled); a failed run about to be retried
        counts as neither."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.runs(tag)
            done = {partition_of(r) for r in runs if r.status == dg.DagsterRunStatus.SUCCESS}
            if tag in self.backfill_ids:
                ended = self.backfill_status(tag) != "REQUESTED"
            else:  # a job backfill: its runs all exist at once and are never retried
                ended = len(runs) >= count
            if (len(done) >= count or ended) and runs and all(r.is_finished for r in runs):
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
        partition = partition_of(run) if run else None
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
        self,
        tag: str,
        partitions: list[str],
        prompts: int,
        started_at: float,
        submit_seconds: float = 0.0,
        machine_cpu: float = math.nan,
    ) -> BackfillReport:
        """Gather the backfill's runs, workers per partition and the simulator's counters.

        ``started_at`` (epoch seconds) is when the backfill was submitted: the wall time runs from it to the
        end of the last run. ``machine_cpu``: CPU seconds the machine used over that time, where measured.
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
            worker_concurrency=self.worker_concurrency,
            pool_limit=self.pool_limit,
            machine_cpu_seconds=machine_cpu,
            cores=os.cpu_count() or 1,
            window=s3_window(
                self.services.s3_client(),
                self.services.bucket,
                self.services.prefix,
                since=started_at,
                capacity=self.capacity,
            ),
        )
        for record in records:
            run = record.dagster_run
            executions = self.step_executions(run.run_id)
            steps = {s.step_key: s for s in self.instance.get_run_step_stats(run.run_id)}
            prompts, videos = steps.get("batch_prompts"), steps.get(VIDEO_STEP)
            report.runs.append(
                {
                    "run_id": run.run_id,
                    "partition": partition_of(run),
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
        cpu_before = machine_cpu_seconds()
        started = time.time()
        tag = self.submit_backfill(names)
        submitted = time.time() - started
        self.wait_for_runs(tag, len(names), timeout=timeout)
        cpu = machine_cpu_seconds() - cpu_before
        return self.report(tag, names, sum(len(rows) for rows in batches.values()), started, submitted, cpu)

    def logs(self, lines: int = 40) -> str:
        """The tails of the daemon's and workers' logs (for failure messages)."""
        if self._home is None:
            return ""
        return "\n".join(
            f"--- {p.name}\n{_tail(p, lines)}" for p in sorted(self._home.glob("*.log")) if p.exists()
        )


def partition_of(run: dg.DagsterRun) -> str | None:
    """The one partition a run of the backfill materializes: an asset backfill's run names it as a range of
    one (``dagster/asset_partition_range_start`` = ``_end``), a job's run as ``dagster/partition``."""
    return run.tags.get("dagster/partition") or run.tags.get("dagster/asset_partition_range_start")


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
