"""Test support: a :class:`VideoProducer` on the simulator and an S3 client, with fast polling."""

from __future__ import annotations

from typing import Any

from minimax_dagster.api.client import MiniMaxClient
from minimax_dagster.production import ManifestEntry, ProducerSettings, VideoProducer, VideoPrompt
from minimax_dagster.production.budget import RunBudget
from minimax_dagster.production.store import PosterHandler
from minimax_dagster.storage import DownloadPolicy


def producer_for(
    sim: Any,
    s3_client: Any,
    bucket: str,
    *,
    on_poster: PosterHandler | None = None,
    budget: RunBudget | None = None,
    client_options: dict[str, Any] | None = None,
    **settings: Any,
) -> VideoProducer:
    """A producer for ``sim``'s accounts into ``bucket`` under ``minimax/`` (reserving in ``budget``);
    ``settings`` override the defaults, ``client_options`` those of its clients."""
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
        options = {"poll_interval": 0.1, "read_timeout": 5.0, **(client_options or {})}
        return MiniMaxClient(sim.token, base_url=sim.base_url, **options)

    return VideoProducer(client, s3_client, ProducerSettings(**options), on_poster=on_poster, budget=budget)


def run_collecting(
    producer: VideoProducer, prompts: list[VideoPrompt]
) -> tuple[dict[str, ManifestEntry], list[str]]:
    """Run ``producer`` over ``prompts``: the entries by prompt id, and the log messages in order."""
    entries: dict[str, ManifestEntry] = {}
    messages: list[str] = []
    for note in producer.run(prompts):
        if note.entry is not None:
            entries[note.entry.id] = note.entry
        elif note.message:
            messages.append(note.message)
    return entries, messages
