"""``build_minimax_video_asset``: an asset that turns an upstream asset's prompts into videos in S3.

The asset's value is the :class:`~minimax_dagster.production.manifest.VideoManifest` (one entry per prompt), stored by
:class:`~minimax_dagster.resources.io_manager.S3JsonIOManager`, so lineage runs prompts → videos → whatever consumes them.
The factory only builds the definition; what a materialization does is
:class:`~minimax_dagster.assets.run.MiniMaxVideoRun`. Each partition's materialization carries its own counts,
timings, table of videos, video ids, manifest path and ``dagster/row_count``; the definition carries the
manifest's ``dagster/column_schema``.

>>> import dagster as dg
>>> videos = build_minimax_video_asset("videos", prompts="prompts", template_id="393769180141805569",
...                                    bucket="my-bucket", key_prefix="media", kinds={"video"})
>>> videos.key, sorted(videos.specs_by_key[videos.key].kinds)
(AssetKey(['media', 'videos']), ['minimax', 's3', 'video'])
"""

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
from pydantic import Field

from minimax_dagster.assets.options import OPTION_NAMES, AssetOptions, VideoAssetOptions
from minimax_dagster.assets.run import MiniMaxVideoRun
from minimax_dagster.metadata.tables import manifest_column_schema

#: The kinds every video asset has; ``kinds=`` adds to them.
VIDEO_ASSET_KINDS = frozenset({"minimax", "s3"})


class VideoAssetConfig(dg.Config):
    """Run configuration of a video asset (defaults come from the factory arguments).

    >>> VideoAssetConfig(dry_run=True, max_new_videos=10).max_new_videos
    10
    """

    allow_partial: bool | None = Field(
        default=None, description="Materialize even when some prompts failed (default: the factory's)."
    )
    regenerate_failed: bool | None = Field(
        default=None,
        description="Pay for a new attempt of prompts whose video failed (default: the factory's).",
    )
    dry_run: bool = Field(
        default=False,
        description=(
            "Validate, look templates up and report per prompt whether it would be created (paid), reused or "
            "reattached, with credits when known; no create, nothing written, nothing materialized."
        ),
    )
    max_new_videos: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Fail before the first create when the run would create more new paid videos than this, and hold "
            "the cap at each create across the run's steps and processes (default: the factory's; none: no cap)."
        ),
    )


def build_minimax_video_asset(
    name: str,
    prompts: dg.AssetKey | str | Sequence[str] | dg.AssetsDefinition,
    *,
    options: AssetOptions | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    retry_policy: dg.RetryPolicy | None = None,
    backfill_policy: dg.BackfillPolicy | None = None,
    minimax_resource_key: str = "minimax",
    s3_resource_key: str = "s3",
    io_manager_key: str = "minimax_io_manager",
    key_prefix: str | Sequence[str] | None = None,
    group_name: str | None = None,
    owners: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    kinds: set[str] | frozenset[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    op_tags: Mapping[str, Any] | None = None,
    automation_condition: dg.AutomationCondition | None = None,
    freshness_policy: dg.FreshnessPolicy | None = None,
    code_version: str | None = None,
    **option_values: Any,
) -> dg.AssetsDefinition:
    """Build the video asset.

    Args:
        name: the asset's name (the last part of its key).
        prompts: the upstream asset whose value is the prompts: a list of strings, or of rows (mappings or
            :class:`~minimax_dagster.production.prompts.VideoPrompt`) with ``prompt``, ``template_id``, ``image``,
            ``reply_ref`` and a stable ``id``. Partitioned like this asset when ``partitions_def`` is given.
        options: the asset's :class:`~minimax_dagster.assets.options.AssetOptions` (``bucket``,
            ``template_id``, ``prefix``, ``pool``, ``allow_partial``, ``max_new_videos``, ...).
        **option_values: any of those options as a keyword argument (``bucket="my-bucket"``), over ``options``.
        partitions_def: e.g. daily partitions for a scheduled pipeline, dynamic ones for prompt datasets.
        retry_policy: Dagster retry policy; retries reuse finished videos and reattach to running ones.
        backfill_policy: ``BackfillPolicy.single_run()`` makes a backfill one run sharing the capacity.
        minimax_resource_key, s3_resource_key, io_manager_key: where the step finds its resources.
        key_prefix: prefix of the asset key (``key_prefix=["media"]`` makes ``media/<name>``).
        group_name, owners, tags, op_tags, code_version: as in ``dg.asset``.
        kinds: kinds added to ``{"minimax", "s3"}``.
        metadata: definition metadata merged over ours (bucket, prefix, template, ``dagster/column_schema``).
        automation_condition: e.g. ``dg.AutomationCondition.eager()`` to materialize when the prompts change.
        freshness_policy: e.g. ``dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26))``.

    Run config ``max_new_videos`` and ``dry_run: true`` (:class:`VideoAssetConfig`) cap or preview a run's paid
    videos; each create reserves its place in the run's ledger in S3, so the cap holds when the plan changes
    under the run or its steps race (a create past it fails its prompt with ``BudgetSpent``).
    """
    asset_options = _options(options, option_values)
    prompts_key = (
        prompts.key if isinstance(prompts, dg.AssetsDefinition) else dg.AssetKey.from_coercible(prompts)
    )
    run_options = VideoAssetOptions(
        **vars(asset_options),
        asset_name=name,
        minimax_resource_key=minimax_resource_key,
        s3_resource_key=s3_resource_key,
        io_manager_key=io_manager_key,
    )
    definition_metadata: dict[str, Any] = {
        "bucket": run_options.bucket,
        "prefix": run_options.prefix,
        "template_id": run_options.template_id or "per row",
        "dagster/column_schema": manifest_column_schema(),
        **(metadata or {}),
    }

    @dg.asset(
        name=name,
        key_prefix=key_prefix,
        ins={"prompts": dg.AssetIn(key=prompts_key)},
        partitions_def=partitions_def,
        pool=run_options.pool,
        retry_policy=retry_policy,
        backfill_policy=backfill_policy,
        io_manager_key=io_manager_key,
        required_resource_keys={minimax_resource_key, s3_resource_key},
        group_name=group_name,
        description=run_options.description
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
        # A dry run yields no output: nothing is materialized, and downstream steps are skipped in that run.
        output_required=False,
    )
    def _video_asset(
        context: dg.AssetExecutionContext, config: VideoAssetConfig, prompts: Any
    ) -> Iterator[dg.Output[Any]]:
        this_run = run_options.with_run_config(
            config.allow_partial,
            config.regenerate_failed,
            dry_run=config.dry_run,
            max_new_videos=config.max_new_videos,
        )
        yield from MiniMaxVideoRun(context, this_run).events(prompts)

    return _video_asset


def _options(options: AssetOptions | None, values: Mapping[str, Any]) -> AssetOptions:
    """``options`` with ``values`` over them; an unknown name is an error listing the options.

    >>> _options(None, {"bucket": "b", "max_new_videos": 3}).max_new_videos
    3
    >>> _options(AssetOptions(bucket="b"), {"buket": "c"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: build_minimax_video_asset: unknown argument(s) buket; the options are bucket, template_id, ...
    """
    unknown = sorted(set(values) - set(OPTION_NAMES))
    if unknown:
        raise TypeError(
            f"build_minimax_video_asset: unknown argument(s) {', '.join(unknown)}; "
            f"the options are {', '.join(OPTION_NAMES)}"
        )
    if options is None:
        return AssetOptions(**values)
    return dataclasses.replace(options.asset_options(), **values)
