"""``build_minimax_video_asset``: an asset that turns an upstream asset's prompts into videos in S3.

The asset's value is the :class:`~minimax_dagster.production.manifest.VideoManifest` (one entry per prompt), stored by
:class:`~minimax_dagster.io_manager.S3JsonIOManager`, so lineage runs prompts → videos → whatever consumes them.
Every stream event is logged, prefixed with the prompt id: progress at info, heartbeats and repeated
"processing" states at debug (``log_heartbeats=False`` counts heartbeats instead of logging each).
The materialization carries counts, timings, a table of the videos with their posters, the video ids and the
templates the agent recommended.

>>> import dagster as dg
>>> videos = build_minimax_video_asset("videos", prompts="prompts", template_id="393769180141805569",
...                                    bucket="my-bucket")
>>> videos.key
AssetKey(['videos'])
"""

import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg

from minimax_dagster.api.errors import MiniMaxError, NotFoundError
from minimax_dagster.api.models import TemplateDetail
from minimax_dagster.io_manager import PartitionedValues
from minimax_dagster.metadata import VideoLinks, materialization_metadata, poster_thumbnails
from minimax_dagster.production.manifest import ManifestEntry, VideoManifest
from minimax_dagster.production.producer import ProducerSettings, VideoProducer
from minimax_dagster.production.prompts import PromptValidationError, VideoPrompt, validate_prompt_rows
from minimax_dagster.resources import MiniMaxResource, s3_client_from_resource
from minimax_dagster.storage import abort_stale_multipart_uploads, normalize_prefix

#: Heartbeats are not logged one by one; at most one "n done, m streams open" debug line per this many seconds.
LIVENESS_SECONDS = 30.0
_SEP = "\x1f"


class VideoAssetConfig(dg.Config):
    """Run configuration of a video asset (defaults come from the factory arguments)."""

    allow_partial: bool | None = None
    regenerate_failed: bool | None = None


def build_minimax_video_asset(
    name: str,
    prompts: dg.AssetKey | str | Sequence[str] | dg.AssetsDefinition,
    *,
    bucket: str,
    template_id: str | None = None,
    prefix: str = "minimax",
    partitions_def: dg.PartitionsDefinition | None = None,
    pool: str | None = "minimax",
    retry_policy: dg.RetryPolicy | None = None,
    backfill_policy: dg.BackfillPolicy | None = None,
    allow_partial: bool = False,
    regenerate_failed: bool = False,
    check_templates: bool = True,
    log_heartbeats: bool = True,
    minimax_resource_key: str = "minimax",
    s3_resource_key: str = "s3",
    io_manager_key: str = "minimax_io_manager",
    group_name: str | None = None,
    description: str | None = None,
    owners: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> dg.AssetsDefinition:
    """Build the video asset.

    Args:
        name: the asset's name (its key, under ``group_name`` if given).
        prompts: the upstream asset whose value is the prompts: a list of strings, or of rows (mappings or
            :class:`~minimax_dagster.production.prompts.VideoPrompt`) with ``prompt``, ``template_id``, ``image``,
            ``reply_ref`` and a stable ``id``. Partitioned like this asset when ``partitions_def`` is given.
        bucket: S3 bucket for the videos, posters, sidecars and job records.
        template_id: the template of rows that name none.
        prefix: key prefix inside the bucket (``<prefix>/videos/<key>.mp4`` ...).
        partitions_def: e.g. daily partitions for a scheduled pipeline, dynamic ones for prompt datasets.
        pool: Dagster pool the step runs in; limit it in dagster.yaml so runs share the accounts' capacity.
        retry_policy: Dagster retry policy; retries reuse finished videos and reattach to running ones.
        backfill_policy: ``BackfillPolicy.single_run()`` makes a backfill one run sharing the capacity.
        allow_partial: materialize even when some prompts failed (they are listed in the metadata).
        regenerate_failed: pay for a new attempt of prompts whose earlier video failed.
        check_templates: look templates up before creating anything, to refuse rows they cannot take.
        log_heartbeats: log every heartbeat and ``connected`` event at debug (the default). ``False`` counts
            them and logs one "n done, m streams open" line at most every 30 s: for very large backfills,
            where each log line's event-log write adds up.
    """
    prompts_key = (
        prompts.key if isinstance(prompts, dg.AssetsDefinition) else dg.AssetKey.from_coercible(prompts)
    )
    prefix = normalize_prefix(prefix)
    asset_name = name

    @dg.asset(
        name=name,
        ins={"prompts": dg.AssetIn(key=prompts_key)},
        partitions_def=partitions_def,
        pool=pool,
        retry_policy=retry_policy,
        backfill_policy=backfill_policy,
        io_manager_key=io_manager_key,
        required_resource_keys={minimax_resource_key, s3_resource_key},
        group_name=group_name,
        description=description
        or f"Videos made by MiniMax from {prompts_key.to_user_string()}, stored in S3.",
        kinds={"minimax", "s3"},
        owners=owners,
        tags=tags,
        metadata={"bucket": bucket, "prefix": prefix, "template_id": template_id or "per row"},
        dagster_type=dg.Any,
    )
    def _video_asset(
        context: dg.AssetExecutionContext, config: VideoAssetConfig, prompts: Any
    ) -> Iterator[Any]:
        minimax: MiniMaxResource = getattr(context.resources, minimax_resource_key)
        s3 = s3_client_from_resource(getattr(context.resources, s3_resource_key))
        by_partition = _split_by_partition(context, prompts)
        keep_partial = allow_partial if config.allow_partial is None else config.allow_partial
        retry_failed = regenerate_failed if config.regenerate_failed is None else config.regenerate_failed

        with minimax.get_client() as client:
            templates = (
                _lookup_templates(context, client, by_partition, template_id) if check_templates else None
            )
            rows = _validate(by_partition, template_id, templates)
            capacity = minimax.capacity_by_account(client)
        total = sum(len(v) for v in rows.values())
        context.log.info(
            f"{total} prompt(s) in {len(rows)} partition(s); capacity "
            + (
                ", ".join(f"{a} x {n}" for a, n in capacity.items())
                if capacity
                else f"{minimax.default_max_jobs}"
            )
        )
        aborted = abort_stale_multipart_uploads(s3, bucket, f"{prefix}/videos/" if prefix else "videos/")
        if aborted:
            context.log.warning(f"aborted {aborted} multipart upload(s) left by an earlier, interrupted run")

        settings = ProducerSettings(
            bucket=bucket,
            prefix=prefix,
            policy=minimax.download_policy(),
            accounts=capacity,
            default_capacity=minimax.default_max_jobs,
            generation_deadline=minimax.generation_deadline,
            # Waits after the client's own retries: the resource's backoff settings bound them as well.
            capacity_wait=minimax.backoff_max,
            download_backoff=minimax.backoff_factor,
            regenerate_failed=retry_failed,
            asset_name=asset_name,
        )
        producer = VideoProducer(minimax.get_client, s3, settings)
        flat = [
            p.model_copy(update={"id": f"{part}{_SEP}{p.id}" if part is not None else p.id})
            for part, prompts_of_part in rows.items()
            for p in prompts_of_part
        ]
        entries: dict[str, ManifestEntry] = {}
        events: Counter[str] = Counter()
        streaming: set[str] = set()
        next_liveness = time.monotonic() + LIVENESS_SECONDS
        for note in producer.run(flat):
            if note.entry is not None:
                entries[note.entry.id] = note.entry
                streaming.discard(note.entry.id)
                done = len(entries)
                context.log.info(f"{done}/{total} done: {_display(note.entry.id)} {note.entry.status}")
                continue
            if note.event is not None:
                events[note.event.status or "unknown"] += 1
                if note.prompt_id is not None:
                    streaming.add(note.prompt_id)
                if note.level == "debug" and not log_heartbeats:
                    # Each log line is a synchronous event-log write; heartbeats (every ~10 s per stream) are
                    # most of them. With log_heartbeats=False they and "connected" are only counted (metadata
                    # "stream_events") and summed up in one line at most every LIVENESS_SECONDS.
                    if time.monotonic() >= next_liveness:
                        next_liveness = time.monotonic() + LIVENESS_SECONDS
                        context.log.debug(
                            f"{len(entries)}/{total} done, {len(streaming)} stream(s) open, "
                            f"{events['heartbeat']} heartbeat(s) so far"
                        )
                    continue
            getattr(context.log, note.level, context.log.info)(_display(note.message or ""))

        manifests = _manifests(asset_name, rows, entries)
        everything = [e for m in manifests.values() for e in m.entries]
        metadata = materialization_metadata(
            everything,
            events,
            capacity,
            links=VideoLinks.from_s3_client(s3),
            thumbnails=poster_thumbnails(s3, everything),
        )
        value: Any
        if context.has_partition_key_range and len(manifests) > 1:
            value = PartitionedValues(manifests)
        else:
            value = next(iter(manifests.values()))
        yield dg.Output(value, metadata=metadata)

        failed = [e for e in everything if not e.ok]
        if failed and not keep_partial:
            lines = "\n".join(f"  - {e.id}: {e.error}" for e in failed[:50])
            raise dg.Failure(
                description=(
                    f"{len(failed)} of {len(everything)} prompt(s) failed; the {len(everything) - len(failed)} "
                    f"video(s) made are kept and will be reused by a re-run:\n{lines}"
                ),
                metadata={
                    "failed_prompts": dg.MetadataValue.json([{"id": e.id, "error": e.error} for e in failed])
                },
            )

    return _video_asset


def _split_by_partition(context: dg.AssetExecutionContext, prompts: Any) -> dict[str | None, list[Any]]:
    if not (context.has_partition_key or context.has_partition_key_range):
        return {None: _as_rows(prompts, None)}
    keys = context.partition_keys
    if len(keys) == 1 and not (isinstance(prompts, Mapping) and set(prompts) == set(keys)):
        return {keys[0]: _as_rows(prompts, keys[0])}
    if not isinstance(prompts, Mapping):
        raise dg.Failure(
            "prompts for several partitions must arrive as {partition_key: rows}", allow_retries=False
        )
    missing = [k for k in keys if k not in prompts]
    if missing:
        context.log.warning(f"no prompts for partition(s) {missing[:10]}; they get empty manifests")
    return {k: _as_rows(prompts.get(k, []), k) for k in keys}


def _as_rows(value: Any, partition: str | None) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)):
        where = f" of partition {partition!r}" if partition else ""
        raise dg.Failure(
            f"the prompts{where} must be a list of strings or rows, got {type(value).__name__}; "
            "return a list from the upstream asset",
            allow_retries=False,
        )
    return list(value)


def _lookup_templates(
    context: dg.AssetExecutionContext,
    client: Any,
    by_partition: dict[str | None, list[Any]],
    default_template: str | None,
) -> dict[str, TemplateDetail | None] | None:
    wanted: set[str] = {default_template} if default_template else set()
    for rows in by_partition.values():
        for row in rows:
            if isinstance(row, Mapping):
                tid = row.get("template_id") or row.get("templateId")
            else:
                tid = getattr(row, "template_id", None)
            if tid is not None:
                wanted.add(str(tid))
    out: dict[str, TemplateDetail | None] = {}
    for tid in sorted(wanted):
        try:
            out[tid] = client.get_template(tid)
        except NotFoundError:
            out[tid] = None
        except MiniMaxError as exc:
            context.log.warning(f"cannot look up template {tid} ({exc}); its rows are not checked against it")
    return out


def _validate(
    by_partition: dict[str | None, list[Any]],
    template_id: str | None,
    templates: dict[str, TemplateDetail | None] | None,
) -> dict[str | None, list[VideoPrompt]]:
    out: dict[str | None, list[VideoPrompt]] = {}
    problems: list[str] = []
    for partition, rows in by_partition.items():
        try:
            out[partition] = validate_prompt_rows(rows, default_template_id=template_id, templates=templates)
        except PromptValidationError as exc:
            where = f"partition {partition!r}: " if partition is not None else ""
            problems.extend(f"{where}{e}" for e in exc.errors)
    if problems:
        shown = "\n".join(f"  - {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise dg.Failure(
            description=f"{len(problems)} invalid prompt row(s); no video was created:\n{shown}{more}",
            metadata={"invalid_rows": len(problems), "first_problems": dg.MetadataValue.json(problems[:50])},
            allow_retries=False,
        )
    return out


def _display(text: str) -> str:
    return text.replace(_SEP, "/")


def _manifests(
    asset_name: str, rows: dict[str | None, list[VideoPrompt]], entries: dict[str, ManifestEntry]
) -> dict[str | None, VideoManifest]:
    out: dict[str | None, VideoManifest] = {}
    for partition, prompts in rows.items():
        items = []
        for p in prompts:
            flat_id = f"{partition}{_SEP}{p.id}" if partition is not None else p.id
            entry = entries.get(flat_id)
            if entry is not None:
                items.append(entry.model_copy(update={"id": p.id}))
        out[partition] = VideoManifest(
            asset=asset_name, partition=partition, requested_ids=[p.id for p in prompts], entries=items
        )
    return out
