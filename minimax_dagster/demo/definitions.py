"""The demo's Dagster definitions: a daily content pipeline and prompt-dataset backfills, with lineage
``prompts → videos → catalogue``. Loaded by ``workspace.yaml``; configured from environment variables
(:class:`~minimax_dagster.code_location.environment.EnvSettings`), never by a network call at load time.

* ``daily_prompts`` → ``daily_videos`` (daily partitions) with the schedule ``daily_videos_schedule``.
* ``dataset_prompts`` → ``dataset_videos`` (one dynamic partition per prompt dataset in
  ``s3://<bucket>/<prefix>/datasets/<name>.json``), registered by the sensor ``prompt_dataset_sensor``;
  ``BackfillPolicy.single_run()`` makes a backfill over many datasets one run sharing the API capacity.
* ``video_catalogue``: an HTML page and JSON index of every dataset video, written to S3.

>>> defs = make_definitions(EnvSettings(bucket="b"))
>>> sorted(a.key.to_user_string() for a in defs.assets)
['daily_prompts', 'daily_videos', 'dataset_prompts', 'dataset_videos', 'video_catalogue']
"""

import datetime as dt
import html
import json
import warnings
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource

from minimax_dagster.assets.checks import build_video_checks
from minimax_dagster.assets.factory import build_minimax_video_asset
from minimax_dagster.code_location.datasets import build_prompt_datasets_asset
from minimax_dagster.code_location.environment import EnvSettings
from minimax_dagster.demo.yaml_pipeline import yaml_definitions
from minimax_dagster.production.manifest import VideoManifest
from minimax_dagster.resources.io_manager import PartitionedValues, S3JsonIOManager
from minimax_dagster.resources.minimax import (
    s3_client_from_resource,
)
from minimax_dagster.storage import put_bytes, put_json, s3_uri

#: A template that takes optional text (the simulator's "Transformers"; pick a real one from agent-templates).
DAILY_TEMPLATE_ID = "394100000000000003"
DATASET_TEMPLATE_ID = "394100000000000004"
SUBJECTS = ["a red fox", "a lighthouse", "a paper boat", "a city tram", "a hummingbird", "a desert caravan"]
STYLES = ["at golden hour", "in heavy rain", "under northern lights", "in watercolour style"]

# The demo uses backfill_policy (beta) and partitioned asset checks (preview) on purpose; say so once, not per run.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

daily_partitions = dg.DailyPartitionsDefinition(start_date="2026-11-01", end_offset=1)
prompt_datasets = dg.DynamicPartitionsDefinition(name="prompt_datasets")


def daily_prompt_rows(day: str, count: int = 3) -> list[dict[str, str]]:
    """The day's prompts: deterministic for a date, so a re-run of a day asks for the same videos.

    >>> [r["id"] for r in daily_prompt_rows("2026-11-27", 2)]
    ['2026-11-27-0', '2026-11-27-1']
    """
    ordinal = dt.date.fromisoformat(day).toordinal()
    rows = []
    for i in range(count):
        subject = SUBJECTS[(ordinal + i) % len(SUBJECTS)]
        style = STYLES[(ordinal // len(SUBJECTS) + i) % len(STYLES)]
        rows.append({"id": f"{day}-{i}", "prompt": f"{subject} {style}"})
    return rows


def make_definitions(settings: EnvSettings | None = None) -> dg.Definitions:
    """Build the demo definitions for ``settings`` (default: from the environment)."""
    settings = settings or EnvSettings.from_env()
    bucket, prefix = settings.bucket, settings.prefix
    datasets_prefix = settings.datasets_prefix

    @dg.asset(
        partitions_def=daily_partitions,
        io_manager_key="minimax_io_manager",
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="daily",
        kinds={"python"},
    )
    def daily_prompts(context: dg.AssetExecutionContext) -> Any:
        """The prompts of each day (three themed prompts per date)."""
        values = {day: daily_prompt_rows(day) for day in context.partition_keys}
        if len(values) == 1:
            return next(iter(values.values()))
        return PartitionedValues(values)

    daily_videos = build_minimax_video_asset(
        "daily_videos",
        prompts=daily_prompts,
        bucket=bucket,
        prefix=prefix,
        template_id=DAILY_TEMPLATE_ID,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL),
        group_name="daily",
    )

    dataset_prompts = build_prompt_datasets_asset(
        "dataset_prompts",
        partitions_def=prompt_datasets,
        bucket=bucket,
        folder=datasets_prefix,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="datasets",
    )

    dataset_videos = build_minimax_video_asset(
        "dataset_videos",
        prompts=dataset_prompts,
        bucket=bucket,
        prefix=prefix,
        template_id=DATASET_TEMPLATE_ID,
        partitions_def=prompt_datasets,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL),
        group_name="datasets",
    )

    @dg.asset(io_manager_key="minimax_io_manager", group_name="datasets", kinds={"html", "s3"})
    def video_catalogue(
        context: dg.AssetExecutionContext, s3: S3Resource, dataset_videos: dict[str, Any]
    ) -> dict[str, Any]:
        """An HTML page and a JSON index of every dataset video, in S3 beside the videos."""
        manifests = {k: VideoManifest.model_validate(v) for k, v in dataset_videos.items()}
        items = [
            {
                "dataset": name,
                **e.model_dump(include={"id", "prompt", "s3_uri", "poster_uri", "width", "height"}),
            }
            for name, m in sorted(manifests.items())
            for e in m.entries
            if e.ok
        ]
        client = s3_client_from_resource(s3)
        base = f"{prefix}/catalogue" if prefix else "catalogue"
        put_json(client, bucket, f"{base}/index.json", items)
        rows = "\n".join(
            f"<tr><td>{html.escape(i['dataset'])}</td><td>{html.escape(i['id'])}</td>"
            f"<td>{html.escape(i['prompt'] or '')}</td><td>{html.escape(i['s3_uri'] or '')}</td></tr>"
            for i in items
        )
        page = f"<html><body><h1>Videos</h1><table>{rows}</table></body></html>"
        put_bytes(client, bucket, f"{base}/index.html", page.encode(), content_type="text/html")
        context.add_output_metadata(
            {
                "videos": len(items),
                "datasets": len(manifests),
                "index": dg.MetadataValue.path(s3_uri(bucket, f"{base}/index.json")),
            }
        )
        return {"videos": len(items), "datasets": sorted(manifests)}

    daily_job = dg.define_asset_job("daily_videos_job", selection=[daily_prompts, daily_videos])
    dataset_job = dg.define_asset_job("dataset_videos_job", selection=[dataset_prompts, dataset_videos])
    catalogue_job = dg.define_asset_job("catalogue_job", selection=[video_catalogue])

    @dg.sensor(job=dataset_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED)
    def prompt_dataset_sensor(context: dg.SensorEvaluationContext, s3: S3Resource) -> dg.SensorResult:
        """Registers each new ``datasets/<name>.json`` as a partition and backfills the new ones in one run."""
        client = s3_client_from_resource(s3)
        known = set(context.instance.get_dynamic_partitions(prompt_datasets.name or ""))
        found = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=datasets_prefix):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(datasets_prefix) :]
                if name.endswith(".json") and "/" not in name:
                    found.append(name.removesuffix(".json"))
        new = [n for n in sorted(found) if n not in known]
        if not new:
            return dg.SensorResult(skip_reason=f"no new prompt dataset ({len(known)} known)")
        return dg.SensorResult(
            dynamic_partitions_requests=[prompt_datasets.build_add_request(new)],
            run_requests=[
                dg.RunRequest(
                    run_key=f"datasets:{json.dumps(new)}",
                    tags={
                        "dagster/asset_partition_range_start": new[0],
                        "dagster/asset_partition_range_end": new[-1],
                    },
                )
            ],
        )

    s3_resource = settings.s3_resource()
    minimax = settings.minimax_resource()
    return dg.Definitions(
        assets=[daily_prompts, daily_videos, dataset_prompts, dataset_videos, video_catalogue],
        asset_checks=[*build_video_checks(daily_videos), *build_video_checks(dataset_videos)],
        jobs=[daily_job, dataset_job, catalogue_job],
        schedules=[
            dg.build_schedule_from_partitioned_job(daily_job, hour_of_day=6, name="daily_videos_schedule")
        ],
        sensors=[prompt_dataset_sensor],
        resources={
            "minimax": minimax,
            "s3": s3_resource,
            "minimax_io_manager": S3JsonIOManager(s3=s3_resource, bucket=bucket, prefix=prefix),
        },
    )


# The code location: the Python pipelines and the YAML one (minimax_dagster/demo/defs/, on the same resources).
defs = dg.Definitions.merge(make_definitions(), yaml_definitions())
