"""The materialization's metadata: counts, sizes, timings, the table of videos and of recommended templates.

>>> from minimax_dagster.production.manifest import ManifestEntry
>>> entry = ManifestEntry(id="fox", prompt="A fox", template_id="1", status="generated")
>>> materialization_metadata([entry], links=VideoLinks())["requested"]
1
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args, get_origin

import dagster as dg

from minimax_dagster.metadata.links import VideoLinks
from minimax_dagster.metadata.markdown import (
    _NBSP,
    ERROR_CHARS,
    ID_CHARS,
    PROMPT_CHARS,
    WORD_CHARS,
    escape_markdown,
    human_bytes,
    human_seconds,
)
from minimax_dagster.production.manifest import ManifestEntry, VideoManifest

#: Rows shown in the materialization's table; the full list is in the manifest.
TABLE_ROWS = 50


#: Templates listed in the recommended-templates table (the most recommended first).
TEMPLATE_ROWS = 10


def _link(text: str, url: str | None) -> str:
    # The URLs are built here from percent-encoded parts, so they hold no space, '<' or '>'.
    return f"[{text}](<{url}>)" if url else ""


def video_table(
    entries: list[ManifestEntry],
    *,
    links: VideoLinks | None = None,
    thumbnails: Mapping[str, str] | None = None,
    rows: int = TABLE_ROWS,
) -> str:
    """A Markdown table, one row per video: poster thumbnail, id, prompt, status (with the error of a failed
    one), resolution, duration, file size and a link that opens the video; then a line saying where the links
    lead. Only ``thumbnails`` that are ``data:image/`` URIs are shown (nothing makes the browser load a URL).

    >>> entry = ManifestEntry(id="a|b", prompt="![x](x.png)", template_id="1", status="generated",
    ...                       width=1280, height=720, duration_s=6, bytes=1_500_000, s3_uri="s3://m/v.mp4")
    >>> print(video_table([entry], links=VideoLinks(endpoint_url="http://127.0.0.1:9000")))
    | poster | id | prompt | status | resolution | duration | size | video |
    |---|---|---|---|---|---|---|---|
    |  | a\\|b | \\!\\[x\\]\\(x\\.png\\) | generated | 1280x720 | 6\u00a0s | 1.4\u00a0MiB | [open](<http://127.0.0.1:9000/m/v.mp4>) |
    <BLANKLINE>
    Links open the objects on 127.0.0.1:9000.
    """
    links = links or VideoLinks()
    thumbnails = thumbnails or {}
    lines = [
        "| poster | id | prompt | status | resolution | duration | size | video |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in entries[:rows]:
        url = links.url(e.s3_uri) if e.ok else None
        thumb = thumbnails.get(e.id)
        poster = ""
        if thumb and thumb.startswith("data:image/"):
            poster = f"[![poster]({thumb})](<{url}>)" if url else f"![poster]({thumb})"
        error = escape_markdown(e.error, ERROR_CHARS, break_every=WORD_CHARS)
        cells = [
            poster,
            escape_markdown(e.id, ID_CHARS, break_every=WORD_CHARS),
            escape_markdown(e.prompt, PROMPT_CHARS, break_every=WORD_CHARS),
            e.status if e.ok else f"failed: {error}",
            f"{e.width}x{e.height}" if e.width and e.height else "",
            f"{e.duration_s:g}{_NBSP}s" if e.duration_s else "",
            human_bytes(e.bytes).replace(" ", _NBSP) if e.ok else "",
            _link("open", url),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = []
    if len(entries) > rows:
        notes.append(f"{len(entries) - rows} more in the manifest.")
    if any(e.ok and e.s3_uri for e in entries[:rows]):
        notes.append(links.describe())
    return "\n".join(lines) + ("\n\n" + " ".join(notes) if notes else "")


def recommended_templates(entries: Iterable[ManifestEntry]) -> Counter[tuple[str, str]]:
    """How many videos the agent recommended each template after: ``{(template id, name): videos}``.

    >>> e = ManifestEntry(id="a", template_id="1", status="generated",
    ...                   recommended_templates=[{"id": "42", "name": "Diving"}])
    >>> recommended_templates([e, e])
    Counter({('42', 'Diving'): 2})
    """
    out: Counter[tuple[str, str]] = Counter()
    for e in entries:
        if not e.ok:
            continue
        for t in {(str(t["id"]), str(t.get("name") or "")) for t in e.recommended_templates if t.get("id")}:
            out[t] += 1
    return out


def templates_table(templates: Mapping[tuple[str, str], int], rows: int = TEMPLATE_ROWS) -> str:
    """The recommended templates as a small Markdown table, most recommended first (names come from the API:
    escaped); past ``rows`` they are counted.

    >>> print(templates_table({("42", "Diving"): 2}))
    | template | name | videos |
    |---|---|---|
    | 42 | Diving | 2 |
    """
    lines = ["| template | name | videos |", "|---|---|---|"]
    ranked = sorted(templates.items(), key=lambda kv: (-kv[1], kv[0]))
    for (tid, name), count in ranked[:rows]:
        lines.append(f"| {escape_markdown(tid, ID_CHARS)} | {escape_markdown(name, ID_CHARS)} | {count} |")
    more = f"\n\nand {len(ranked) - rows} more." if len(ranked) > rows else ""
    return "\n".join(lines) + more


#: What the manifest's columns hold, where ManifestEntry does not say it itself.
_COLUMN_NOTES = {
    "id": "The prompt row's stable id.",
    "prompt": "The text prompt.",
    "template_id": "The MiniMax agent template.",
    "status": "generated (this run), reused (an earlier run's video) or failed.",
    "video_id": "MiniMax's video id.",
    "account": "The useapi.net account that made the video.",
    "s3_uri": "The video in S3.",
    "poster_uri": "The poster in S3.",
    "sidecar_uri": "The JSON sidecar (stream events, sizes) in S3.",
    "width": "Video width in pixels.",
    "height": "Video height in pixels.",
    "duration_s": "Video duration in seconds.",
    "fps": "Frames per second.",
    "bytes": "Video size in bytes.",
    "sha256": "SHA-256 of the video file.",
    "generation_seconds": "Seconds from create to the finished video.",
    "upload_seconds": "Seconds to store the video in S3.",
    "recommended_templates": "Templates the agent recommended after this video.",
    "error": "Why there is no video.",
    "metadata": "Extra fields of the prompt row.",
}


def _column_type(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return "string"
    args = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) else []
    base = args[0] if len(args) == 1 else annotation
    if get_origin(base) in (list, dict):
        return "json"
    return {str: "string", int: "int", float: "float", bool: "bool"}.get(base, "json")


def manifest_column_schema() -> dg.TableSchema:
    """The columns of a video manifest, for a definition-level ``dagster/column_schema``.

    >>> schema = manifest_column_schema()
    >>> [(c.name, c.type) for c in schema.columns][:5]
    [('id', 'string'), ('partition', 'string'), ('prompt', 'string'), ('template_id', 'string'), ('status', 'string')]
    >>> {c.name: c.type for c in schema.columns}["bytes"], {c.name: c.type for c in schema.columns}["metadata"]
    ('int', 'json')
    """
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=name,
                type=_column_type(field.annotation),
                description=field.description or _COLUMN_NOTES.get(name),
            )
            for name, field in ManifestEntry.model_fields.items()
        ]
    )


def materialization_metadata(
    entries: list[ManifestEntry],
    events: Mapping[str, int] | None = None,
    capacity: Mapping[str, int] | None = None,
    *,
    links: VideoLinks | None = None,
    thumbnails: Mapping[str, str] | None = None,
    manifest_uri: str | None = None,
    templates: bool = True,
    rows: int = TABLE_ROWS,
) -> dict[str, Any]:
    """The metadata of one materialization (one partition's entries): counts, sizes, timings, the table.

    ``events`` (stream events counted) and ``capacity`` (account → jobs) are shown when given; they describe a
    run, so pass them where the run is described, not to every partition. ``manifest_uri`` is the manifest's
    ``s3://`` object, shown as a link. ``templates=False`` leaves out the recommended-templates table.

    >>> md = materialization_metadata([ManifestEntry(id="a", template_id="1", status="failed", error="moderated")])
    >>> md["failed"], md["dagster/row_count"], md["failed_prompts"].value
    (1, 1, [{'id': 'a', 'error': 'moderated'}])
    """
    links = links or VideoLinks()
    manifest = VideoManifest(requested_ids=[e.id for e in entries], entries=entries)
    stats = manifest.generation_stats()
    ok = [e for e in entries if e.ok]
    generated = [e for e in entries if e.status == "generated" and e.generation_seconds]
    size = sum(e.bytes or 0 for e in ok)
    # What a person reads first (the UI keeps this order), then the raw values that plots and tools use.
    md: dict[str, Any] = {
        **manifest.counts(),
        "videos": dg.MetadataValue.md(video_table(entries, links=links, thumbnails=thumbnails, rows=rows)),
        "size_total": human_bytes(size),
        "generation_time": (
            f"median {human_seconds(stats['median'])}, longest {human_seconds(stats['max'])}, "
            f"{human_seconds(stats['total'])} in all ({len(generated)} generated)"
            if generated
            else "nothing generated in this run"
        ),
    }
    first = links.url(ok[0].s3_uri) if ok else None
    if first:
        md["first_video"] = dg.MetadataValue.url(first)
    manifest_link = links.url(manifest_uri)
    if manifest_link:
        md["manifest"] = dg.MetadataValue.url(manifest_link)
    recommended = recommended_templates(entries)
    if templates and recommended:
        md["recommended_templates"] = dg.MetadataValue.md(templates_table(recommended))
    md.update(
        {
            "dagster/row_count": len(entries),
            "bytes_total": size,
            "generation_seconds_total": stats["total"],
            "generation_seconds_median": stats["median"],
            "generation_seconds_max": stats["max"],
            "recovered_by_polling": sum(1 for e in entries if e.recovered),
            "reattached": sum(1 for e in entries if e.reattached),
            "video_ids": dg.MetadataValue.json([e.video_id for e in ok if e.video_id]),
        }
    )
    if events is not None:
        md["stream_events"] = dg.MetadataValue.json(dict(events))
    if capacity is not None:
        md["capacity"] = dg.MetadataValue.json(dict(capacity) or {"api-chosen": 0})
    failed = [e for e in entries if not e.ok]
    if failed:
        md["failed_prompts"] = dg.MetadataValue.json([{"id": e.id, "error": e.error} for e in failed])
    return md
