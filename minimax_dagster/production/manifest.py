"""The manifest: one record per prompt of a run, the value downstream assets consume.

This module does not import dagster.

>>> entry = ManifestEntry(id="fox", prompt="A fox", template_id="1", status="generated", bytes=10)
>>> VideoManifest(entries=[entry]).counts()
{'requested': 1, 'generated': 1, 'reused': 0, 'failed': 0}
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any, Literal

from pydantic import BaseModel, Field

EntryStatus = Literal["generated", "reused", "failed"]


class ManifestEntry(BaseModel):
    """What happened to one prompt.

    >>> ManifestEntry(id="a", template_id="1", status="failed", error="moderated").ok
    False
    """

    id: str
    partition: str | None = Field(None, description="The Dagster partition of the prompt, if any.")
    prompt: str | None = None
    template_id: str
    status: EntryStatus
    key: str | None = Field(None, description="The content key the S3 objects are named after.")
    video_id: str | None = None
    account: str | None = None
    s3_uri: str | None = None
    poster_uri: str | None = None
    sidecar_uri: str | None = None
    source_url: str | None = Field(None, description="Where the video was downloaded from (no query string).")
    poster_url: str | None = Field(None, description="The public poster URL the API returned.")
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    fps: float | None = None
    bytes: int | None = None
    sha256: str | None = None
    generation_seconds: float | None = None
    upload_seconds: float | None = None
    recovered: bool = Field(False, description="The stream broke and the video was recovered by polling.")
    reattached: bool = Field(False, description="An earlier run's job was reattached instead of created.")
    recommended_templates: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the video is in S3 (generated now or reused)."""
        return self.status in ("generated", "reused")


class VideoManifest(BaseModel):
    """All the entries of one asset partition (or of the unpartitioned asset).

    >>> VideoManifest(entries=[]).generation_stats()
    {'total': 0.0, 'median': 0.0, 'max': 0.0}
    """

    asset: str | None = None
    partition: str | None = None
    created_at: str = Field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat())
    requested_ids: list[str] = Field(default_factory=list)
    entries: list[ManifestEntry] = Field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Requested, generated, reused and failed counts."""
        out = {
            "requested": len(self.requested_ids) or len(self.entries),
            "generated": 0,
            "reused": 0,
            "failed": 0,
        }
        for e in self.entries:
            out[e.status] += 1
        return out

    def generation_stats(self) -> dict[str, float]:
        """Total, median and max generation seconds of the videos generated in this run."""
        secs = [
            e.generation_seconds for e in self.entries if e.status == "generated" and e.generation_seconds
        ]
        if not secs:
            return {"total": 0.0, "median": 0.0, "max": 0.0}
        return {
            "total": round(sum(secs), 3),
            "median": round(statistics.median(secs), 3),
            "max": round(max(secs), 3),
        }

    def failed(self) -> list[ManifestEntry]:
        """The entries that have no video."""
        return [e for e in self.entries if not e.ok]

    def missing_ids(self) -> list[str]:
        """Requested ids with no entry at all."""
        have = {e.id for e in self.entries}
        return [i for i in self.requested_ids if i not in have]
