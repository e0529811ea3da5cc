"""The one module of the benchmarks that uses ``benchmarks._services``: every benchmark reaches its services here.

``start_stack(...)`` starts the MiniMax simulator and moto's S3 server (through ``Services``, each its own
process) and yields a :class:`Stack`, which offers exactly what the benchmarks need of them. When the way
services start changes, this module is the only one to rewire.

>>> Stack.__doc__.splitlines()[0]
'What a benchmark needs of its services: URLs, the bucket, clients, counters, CPU and process ids.'
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from benchmarks._services import SIM_TOKEN, Services

__all__ = ["SIM_TOKEN", "Stack", "start_stack"]


class Stack:
    """What a benchmark needs of its services: URLs, the bucket, clients, counters, CPU and process ids.

    Built by :func:`start_stack`; wraps a started ``Services``.
    """

    def __init__(self, services: Services) -> None:
        self._services = services

    @property
    def sim_base_url(self) -> str:
        """The simulator's API root (``.../v1/minimax``)."""
        return self._services.sim_base_url

    @property
    def sim_origin(self) -> str:
        """``http://127.0.0.1:<port>`` of the simulator (its CDN too)."""
        return self._services.sim_origin

    @property
    def s3_endpoint(self) -> str:
        """moto's endpoint URL."""
        return self._services.s3_endpoint

    @property
    def bucket(self) -> str:
        """The bucket created for this stack."""
        return self._services.bucket

    @property
    def accounts(self) -> dict[str, int]:
        """Account id -> maxJobs, as the simulator was started."""
        return dict(self._services.accounts)

    @property
    def capacity(self) -> int:
        """Sum of the accounts' maxJobs: how many videos the API generates at once."""
        return sum(self._services.accounts.values())

    def s3_client(self) -> Any:
        """A new boto3 S3 client on moto (the library's client settings)."""
        return self._services.s3_client()

    def producer(self, s3: Any) -> Any:
        """A ``VideoProducer`` on these services that uses the S3 client ``s3``, configured as the asset does."""
        return self._services.producer(s3)

    def counters(self) -> dict[str, Any]:
        """The simulator's counters (creates, polls, max concurrent jobs, rejections)."""
        return self._services.counters()

    def service_cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each service process (``simulator``, ``moto``)."""
        return self._services.service_cpu()

    def moto_rss(self) -> dict[str, int]:
        """VmRSS / VmHWM (bytes) of the moto process."""
        return self._services.moto_rss()

    def service_pids(self) -> set[int]:
        """Process ids of the service processes (so samplers of the benchmark's children can leave them out)."""
        return {server.pid for server in self._services.processes().values()}

    def env(self) -> dict[str, str]:
        """Environment for processes that build the benchmark definitions (``benchmarks._defs``)."""
        return self._services.env()


@contextlib.contextmanager
def start_stack(
    *,
    generation_seconds: float = 1.0,
    heartbeat_seconds: float = 0.1,
    accounts: dict[str, int] | None = None,
    video_bytes: int | None = None,
) -> Iterator[Stack]:
    """Start the simulator (``accounts``: id -> maxJobs) and moto; stop both when the block ends."""
    with Services(
        generation_seconds=generation_seconds,
        heartbeat_seconds=heartbeat_seconds,
        accounts=accounts,
        video_bytes=video_bytes,
    ) as services:
        yield Stack(services)
