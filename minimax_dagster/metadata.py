"""Materialization metadata of a video asset: counts, timings and a table of the videos.

Kept apart from the asset factory so that what a person reads in the Dagster UI has one home.

>>> from minimax_dagster.production.manifest import ManifestEntry
>>> md = materialization_metadata([], Counter(), {})
>>> md["requested"], md["bytes_total"]
(0, 0)
"""

import html
from collections import Counter
from typing import Any

import dagster as dg

from minimax_dagster.production.manifest import ManifestEntry, VideoManifest

#: Rows shown in the materialization's markdown table; the full list is in the manifest.
TABLE_ROWS = 50


def materialization_metadata(
    entries: list[ManifestEntry], events: Counter[str], capacity: dict[str, int]
) -> dict[str, Any]:
    manifest = VideoManifest(requested_ids=[e.id for e in entries], entries=entries)
    counts = manifest.counts()
    stats = manifest.generation_stats()
    ok = [e for e in entries if e.ok]
    recommended: dict[str, str] = {}
    for e in ok:
        for t in e.recommended_templates:
            if t.get("id"):
                recommended.setdefault(str(t["id"]), str(t.get("name") or ""))
    md: dict[str, Any] = {
        **counts,
        "generation_seconds_total": stats["total"],
        "generation_seconds_median": stats["median"],
        "generation_seconds_max": stats["max"],
        "bytes_total": sum(e.bytes or 0 for e in ok),
        "recovered_by_polling": sum(1 for e in entries if e.recovered),
        "reattached": sum(1 for e in entries if e.reattached),
        "stream_events": dg.MetadataValue.json(dict(events)),
        "capacity": dg.MetadataValue.json(capacity or {"api-chosen": 0}),
        "videos": dg.MetadataValue.md(video_table(entries)),
        "video_ids": dg.MetadataValue.json([e.video_id for e in ok if e.video_id]),
        "recommended_templates": dg.MetadataValue.json(
            [{"id": k, "name": v} for k, v in sorted(recommended.items())]
        ),
    }
    if ok and ok[0].s3_uri:
        md["first_video"] = dg.MetadataValue.url(ok[0].s3_uri)
    failed = [e for e in entries if not e.ok]
    if failed:
        md["failed_prompts"] = dg.MetadataValue.json([{"id": e.id, "error": e.error} for e in failed])
    return md


def video_table(entries: list[ManifestEntry]) -> str:
    """A markdown table of the videos, posters shown inline (the API's public poster URLs)."""
    lines = [
        "| poster | id | prompt | status | size | duration | video |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in entries[:TABLE_ROWS]:
        poster = f"![poster]({e.poster_url})" if e.poster_url else ""
        prompt = html.escape((e.prompt or "")[:80]).replace("|", "\\|").replace("\n", " ")
        size = f"{e.width}x{e.height}" if e.width and e.height else ""
        duration = f"{e.duration_s:g} s" if e.duration_s else ""
        where = e.s3_uri or (e.error or "")[:80].replace("|", "\\|")
        lines.append(
            f"| {poster} | {html.escape(e.id)} | {prompt} | {e.status} | {size} | {duration} | {where} |"
        )
    if len(entries) > TABLE_ROWS:
        lines.append(f"| | … | {len(entries) - TABLE_ROWS} more in the manifest | | | | |")
    return "\n".join(lines)
