"""The services every benchmark runs against, each in its own process: the MiniMax simulator and moto's S3.

>>> # with Services(generation_seconds=1.0) as svc: print(svc.sim_base_url, svc.s3_endpoint)
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import boto3

from minimax_dagster.storage import s3_client_config

#: Credentials of the local moto server (moto accepts anything; these are not secrets of any real account).
S3_KEY_ID = "bench-key-id"
S3_SECRET = "bench-secret"
SIM_TOKEN = "bench-sim-token"


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[Any], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                response.read()
                return
        except urllib.error.HTTPError:
            return  # it answers: good enough
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s")


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS / VmHWM (bytes) of a process, from /proc/<pid>/status."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) * 1024
    return out


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process (from /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Services:
    """Starts ``python -m minimax_dagster.simulator`` and ``moto_server`` as subprocesses; stops them on exit.

    A fresh bucket is created per instance. ``env()`` gives what child processes (Dagster step processes)
    need to reach both.
    """

    def __init__(
        self,
        *,
        generation_seconds: float = 1.0,
        heartbeat_seconds: float = 0.1,
        accounts: dict[str, int] | None = None,
        video_bytes: int | None = None,
        moto: bool = True,
    ) -> None:
        self.generation_seconds = generation_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.accounts = accounts or {"100001": 5, "100002": 5}
        self.video_bytes = video_bytes
        self.want_moto = moto
        self.bucket = f"bench-{uuid.uuid4().hex[:10]}"
        self.sim_proc: subprocess.Popen[Any] | None = None
        self.moto_proc: subprocess.Popen[Any] | None = None
        self.sim_origin = ""
        self.s3_endpoint = ""

    @property
    def sim_base_url(self) -> str:
        """The simulator's API root."""
        return f"{self.sim_origin}/v1/minimax"

    def __enter__(self) -> Services:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start both processes and create the bucket."""
        sim_port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "minimax_dagster.simulator",
            "--port",
            str(sim_port),
            "--token",
            SIM_TOKEN,
            "--generation-seconds",
            str(self.generation_seconds),
            "--heartbeat-seconds",
            str(self.heartbeat_seconds),
        ]
        for account, jobs in self.accounts.items():
            cmd += ["--account", f"{account}={jobs}"]
        if self.video_bytes is not None:
            cmd += ["--video-bytes", str(self.video_bytes)]
        self.sim_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.sim_origin = f"http://127.0.0.1:{sim_port}"
        if self.want_moto:
            s3_port = free_port()
            moto_bin = Path(sys.executable).with_name("moto_server")
            self.moto_proc = subprocess.Popen(
                [str(moto_bin), "-H", "127.0.0.1", "-p", str(s3_port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.s3_endpoint = f"http://127.0.0.1:{s3_port}"
            _wait_http(f"{self.s3_endpoint}/", self.moto_proc, "moto_server")
            self.s3_client().create_bucket(Bucket=self.bucket)
        _wait_http(f"{self.sim_origin}/_sim/counters", self.sim_proc, "the simulator")

    def stop(self) -> None:
        """Stop the processes this object started."""
        for proc in (self.sim_proc, self.moto_proc):
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.sim_proc = self.moto_proc = None

    def s3_client(self) -> Any:
        """A boto3 client on the moto server."""
        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            region_name="us-east-1",
            aws_access_key_id=S3_KEY_ID,
            aws_secret_access_key=S3_SECRET,
            config=s3_client_config(),
        )

    def producer(self, s3: Any) -> Any:
        """A ``VideoProducer`` on these services, configured as the Dagster asset configures it."""
        from minimax_dagster.production import ProducerSettings, VideoProducer
        from minimax_dagster.resources import AccountConfig, MiniMaxResource

        resource = MiniMaxResource(
            api_token=SIM_TOKEN,
            base_url=self.sim_base_url,
            allowed_download_hosts=[self.sim_origin],
            accounts=[AccountConfig(account=a, max_jobs=n) for a, n in self.accounts.items()],
        )
        settings = ProducerSettings(
            bucket=self.bucket,
            prefix="bench",
            policy=resource.download_policy(),
            accounts=resource.capacity_by_account(),
            generation_deadline=resource.generation_deadline,
        )
        return VideoProducer(resource.get_client, s3, settings)

    def counters(self) -> dict[str, Any]:
        """The simulator's counters."""
        with urllib.request.urlopen(f"{self.sim_origin}/_sim/counters", timeout=10) as response:
            return dict(json.loads(response.read()))

    def configure(self, **changes: Any) -> None:
        """Change runtime fields of the simulator (POST /_sim/config)."""
        request = urllib.request.Request(
            f"{self.sim_origin}/_sim/config",
            data=json.dumps(changes).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def service_cpu(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far by the simulator and moto processes."""
        out: dict[str, float] = {}
        for name, proc in (("simulator", self.sim_proc), ("moto", self.moto_proc)):
            if proc is not None:
                with contextlib.suppress(OSError):
                    out[name] = process_cpu(proc.pid)
        return out

    def moto_rss(self) -> dict[str, int]:
        """VmRSS / VmHWM of the moto process."""
        if self.moto_proc is None:
            return {}
        with contextlib.suppress(OSError):
            return proc_status(self.moto_proc.pid)
        return {}

    def env(self) -> dict[str, str]:
        """Environment for processes that build the benchmark definitions (see ``_defs``)."""
        return {
            "BENCH_SIM_BASE_URL": self.sim_base_url,
            "BENCH_SIM_ORIGIN": self.sim_origin,
            "BENCH_S3_ENDPOINT": self.s3_endpoint,
            "BENCH_BUCKET": self.bucket,
            "BENCH_ACCOUNTS": ",".join(f"{a}:{n}" for a, n in self.accounts.items()),
            "USEAPI_TOKEN": SIM_TOKEN,
            "BENCH_S3_SECRET": S3_SECRET,
            **{k: v for k, v in os.environ.items() if k.startswith("BENCH_ROWS")},
        }
