"""``build_minimax_video_asset``: an asset that turns an upstream asset's prompts into videos in S3.

The asset's value is the :class:`~minimax_dagster.production.manifest.VideoManifest` (one entry per prompt), stored by
:class:`~minimax_dagster.io_manager.S3JsonIOManager`, so lineage runs prompts → videos → whatever consumes them.
The factory only builds the definition; what a materialization does is
:class:`~minimax_dagster.execution.MiniMaxVideoRun`. Each partition's materialization carries its own counts,
timings, table of videos, video ids, manifest path and ``dagster/row_count``; the definition carries the
manifest's ``dagster/column_schema``.

>>> import dagster as dg
>>> videos = build_minimax_video_asset("videos", prompts="prompts", template_id="393769180141805569",
...                                    bucket="my-bucket", key_prefix="media", kinds={"video"})
>>> videos.key, sorted(videos.specs_by_key[videos.key].kinds)
(AssetKey(['media', 'videos']), ['minimax', 's3', 'video'])
"""

from collections.abc import Iterator, Mapping, Sequence
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

import dagster as dg

from minimax_dagster.execution import MiniMaxVideoRun, VideoAssetOptions
from minimax_dagster.production.manifest import ManifestEntry
from minimax_dagster.storage import normalize_prefix

#: The kinds every video asset has; ``kinds=`` adds to them.
VIDEO_ASSET_KINDS = frozenset({"minimax", "s3"})

_COLUMN_DESCRIPTIONS = {
    "id": "The prompt row's stable id.",
    "prompt": "The text prompt.",
    "template_id": "The agent template the video was made with.",
    "status": "generated (in this run), reused (already in S3) or failed.",
    "video_id": "MiniMax's video id (GET videos/{videoId}).",
    "account": "The MiniMax account that made the video.",
    "s3_uri": "Where the video is in S3.",
    "poster_uri": "Where the poster image is in S3.",
    "sidecar_uri": "The JSON sidecar with the entry and the whole event record.",
    "width": "Video width in pixels.",
    "height": "Video height in pixels.",
    "duration_s": "Video duration in seconds.",
    "fps": "Frames per second.",
    "bytes": "Size of the video object in bytes.",
    "sha256": "SHA-256 of the video object.",
    "generation_seconds": "Seconds from create to the finished video.",
    "upload_seconds": "Seconds to stream the video into S3.",
    "recommended_templates": "Templates the agent recommended afterwards.",
    "error": "Why the prompt has no video.",
    "metadata": "The row's free-form data, carried through.",
}


class VideoAssetConfig(dg.Config):
    """Run configuration of a video asset (defaults come from the factory arguments)."""

    allow_partial: bool | None = None
    regenerate_failed: bool | None = None


def manifest_column_schema() -> dg.TableSchema:
    """The columns of a video manifest (one row per prompt), for the asset's ``dagster/column_schema``.

    >>> schema = manifest_column_schema()
    >>> [(c.name, c.type) for c in schema.columns][:3]
    [('id', 'str'), ('partition', 'str'), ('prompt', 'str')]
    """
    columns = []
    for name, info in ManifestEntry.model_fields.items():
        description = info.description or _COLUMN_DESCRIPTIONS.get(name, "")
        columns.append(dg.TableColumn(name=name, type=_type_name(info.annotation), description=description))
    return dg.TableSchema(columns=columns)


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not NoneType]
        return _type_name(args[0]) if len(args) == 1 else " | ".join(_type_name(a) for a in args)
    origin = get_origin(annotation)
    if origin is not None and getattr(origin, "__name__", None) == "Literal":
        return "str"
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    name = getattr(annotation, "__name__", None)
    return name if name is not None else str(annotation).replace("typing.", "")


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
    log_heartbeats: bool = False,
    summary_interval: float = 30.0,
    minimax_resource_key: str = "minimax",
    s3_resource_key: str = "s3",
    io_manager_key: str = "minimax_io_manager",
    key_prefix: str | Sequence[str] | None = None,
    group_name: str | None = None,
    description: str | None = None,
    owners: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    kinds: set[str] | frozenset[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    op_tags: Mapping[str, Any] | None = None,
    automation_condition: dg.AutomationCondition | None = None,
    freshness_policy: dg.FreshnessPolicy | None = None,
    code_version: str | None = None,
) -> dg.AssetsDefinition:
    """Build the video asset.

    Args:
        name: the asset's name (the last part of its key).
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
        log_heartbeats: also log every heartbeat, "processing" state and poll at debug. By default (``False``)
            a video logs only its milestones (at most five records: created with its video id, image ready,
            video ready, finished, stored or failed), and the rest is summed up every ``summary_interval`` s.
        summary_interval: seconds between the run's progress lines (done / generating / waiting / failed).
        minimax_resource_key, s3_resource_key, io_manager_key: where the step finds its resources.
        key_prefix: prefix of the asset key (``key_prefix=["media"]`` makes ``media/<name>``).
        group_name, description, owners, tags, op_tags, code_version: as in ``dg.asset``.
        kinds: kinds added to ``{"minimax", "s3"}``.
        metadata: definition metadata merged over ours (bucket, prefix, template, ``dagster/column_schema``).
        automation_condition: e.g. ``dg.AutomationCondition.eager()`` to materialize when the prompts change.
        freshness_policy: e.g. ``dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26))``.
    """
    prompts_key = (
        prompts.key if isinstance(prompts, dg.AssetsDefinition) else dg.AssetKey.from_coercible(prompts)
    )
    options = VideoAssetOptions(
        asset_name=name,
        bucket=bucket,
        prefix=normalize_prefix(prefix),
        template_id=template_id,
        check_templates=check_templates,
        allow_partial=allow_partial,
        regenerate_failed=regenerate_failed,
        log_heartbeats=log_heartbeats,
        summary_interval=summary_interval,
        minimax_resource_key=minimax_resource_key,
        s3_resource_key=s3_resource_key,
        io_manager_key=io_manager_key,
    )
    definition_metadata: dict[str, Any] = {
        "bucket": bucket,
        "prefix": options.prefix,
        "template_id": template_id or "per row",
        "dagster/column_schema": manifest_column_schema(),
        **(metadata or {}),
    }

    @dg.asset(
        name=name,
        key_prefix=key_prefix,
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
        kinds=set(VIDEO_ASSET_KINDS | set(kinds or ())),
        owners=owners,
        tags=tags,
        op_tags=op_tags,
        metadata=definition_metadata,
        automation_condition=automation_condition,
        freshness_policy=freshness_policy,
        code_version=code_version,
        dagster_type=dg.Any,
    )
    def _video_asset(
        context: dg.AssetExecutionContext, config: VideoAssetConfig, prompts: Any
    ) -> Iterator[dg.Output[Any]]:
        run_options = options.with_run_config(config.allow_partial, config.regenerate_failed)
        yield from MiniMaxVideoRun(context, run_options).events(prompts)

    return _video_asset
