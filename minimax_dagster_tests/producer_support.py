"""Test support: a :class:`VideoProducer` on the simulator and an S3 client, with fast polling."""

from __future__ import annotations

from typing import Any

from minimax_dagster.api.client import MiniMaxClient
from minimax_dagster.production import ProducerSettings, VideoProducer
from minimax_dagster.storage import DownloadPolicy


def producer_for(sim: Any, s3_client: Any, bucket: str, **settings: Any) -> VideoProducer:
    """A producer for ``sim``'s accounts into ``bucket`` under ``minimax/``; ``settings`` override the defaults."""
    options: dict[str, Any] = {
        "bucket": bucket,
        "prefix": "minimax",
        "policy": DownloadPolicy(allowed_hosts=(sim.origin,)),
        "accounts": dict(sim.config.accounts),
        "generation_deadline": 60.0,
        "claim_poll": 0.1,
    }
    options.update(settings)

    def client() -> MiniMaxClient:
        return MiniMaxClient(sim.token, base_url=sim.base_url, poll_interval=0.1, read_timeout=5.0)

    return VideoProducer(client, s3_client, ProducerSettings(**options))
