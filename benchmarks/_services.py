"""The services every benchmark runs against, each in its own process: the MiniMax simulator and moto's S3
(the package's launcher, :class:`minimax_dagster.embedded.EmbeddedServices`, with ``separate_processes=True``).

>>> with Services(generation_seconds=0.1) as svc:
...     svc.counters()["creates"], svc.s3_client().list_objects_v2(Bucket=svc.bucket)["KeyCount"]
(0, 0)
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Any

from benchmarks._probes import proc_status, process_cpu
from minimax_dagster.embedded import EmbeddedServices, ServerProcess

#: Credentials of the local moto server (moto accepts anything; these are not secrets of any real account).
S3_KEY_ID = "bench-key-id"
S3_SECRET = "bench-secret"
SIM_TOKEN = "bench-sim-token"


class Services(EmbeddedServices):
    """The embedded services with each server in a process of its own (so the benchmark's own CPU and memory
    are measured apart from theirs), fixed credentials and a fresh bucket per instance.

    ``env()`` gives what child processes (Dagster step processes) need to reach both.
    """

    def __init__(
        self,
        *,
        generation_seconds: float = 1.0,
        heartbeat_seconds: float = 0.1,
        accounts: dict[str, int] | None = None,
        video_bytes: int | None = None,
    ) -> None:
        super().__init__(
            bucket=f"bench-{uuid.uuid4().hex[:10]}",
            prefix="bench",
            separate_processes=True,
            generation_seconds=generation_seconds,
            heartbeat_seconds=heartbeat_seconds,
            accounts=accounts or {"100001": 5, "100002": 5},
            video_bytes=video_bytes,
            token=SIM_TOKEN,
            s3_key_id=S3_KEY_ID,
            s3_secret=S3_SECRET,
        )
        self.accounts = dict(self.simulator.config.accounts)

    @property
    def sim_base_url(self) -> str:
        """The simulator's API root."""
        return self.simulator.base_url

    @property
    def sim_origin(self) -> str:
        """The simulator's origin (API and CDN)."""
        return self.simulator.origin

    @property
    def s3_endpoint(self) -> str:
        """The S3 server's endpoint URL."""
        return self.s3_endpoint_url

    def producer(self, s3: Any) -> Any:
        """A ``VideoProducer`` on these services, configured as the Dagster asset configures it."""
        from minimax_dagster.production import VideoProducer
        from minimax_dagster.resources.minimax import AccountConfig, MiniMaxResource

        resource = MiniMaxResource(
            api_token=SIM_TOKEN,
            base_url=self.sim_base_url,
            allowed_download_hosts=[self.sim_origin],
            accounts=[AccountConfig(account=a, max_jobs=n) for a, n in self.accounts.items()],
        )
        settings = resource.producer_settings(
            bucket=self.bucket, prefix="bench", accounts=resource.capacity_by_account()
        )
        return VideoProducer(resource.get_client, s3, settings)

    def counters(self) -> dict[str, Any]:
        """The simulator's counters."""
        return self.simulator.counters()

    def configure(self, **changes: Any) -> None:
        """Change runtime fields of the simulator (POST /_sim/config)."""
        self.simulator.configure(**changes)

    def processes(self) -> dict[str, ServerProcess]:
        """The service processes by name (``simulator``, ``moto``)."""
        return {
            name: server
            for name, server in (("simulator", self.simulator), ("moto", self.s3_server))
            if isinstance(server, ServerProcess) and server.process is not None
        }

    def service_cpu(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far by the simulator and S3 server processes."""
        out: dict[str, float] = {}
        for name, server in self.processes().items():
            with contextlib.suppress(OSError):
                out[name] = process_cpu(server.pid)
        return out

    def moto_rss(self) -> dict[str, int]:
        """VmRSS / VmHWM of the S3 server process."""
        server = self.processes().get("moto")
        if server is not None:
            with contextlib.suppress(OSError):
                return proc_status(server.pid)
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
