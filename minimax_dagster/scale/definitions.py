"""The demo's prompt-dataset pipeline, shaped for scale: one run per partition, each step on a Celery worker.

``batch_prompts`` → ``batch_videos`` over the dynamic partitions ``scale_batches`` (one per prompt dataset
``s3://<bucket>/<prefix>/datasets/<name>.json``, exactly like the demo's ``dataset_prompts``). Unlike the demo,
whose backfills are one run sharing the capacity, the backfill policy here is ``multi_run(1)``: a backfill is one
run per batch, the runs are queued by the QueuedRunCoordinator, their video steps take a slot of the ``minimax``
pool, and every step is executed by whichever Celery worker takes it. The video producer keeps the accounts'
capacity shared across all workers (slot claims in S3) and never pays twice for a video (key claims in S3).

The job's executor is ``celery_executor`` configured from the same YAML the workers start with
(``MINIMAX_CELERY_CONFIG``, default ``deploy/celery_config.yaml``); ``MINIMAX_CELERY_QUEUE`` (default
``dagster``) names the queue, so that several deployments can share one broker. Everything else comes from
the demo's environment variables (:class:`~minimax_dagster.demo.settings.DemoSettings`).

>>> defs = make_definitions(DemoSettings(bucket="b"), executor=dg.in_process_executor)
>>> sorted(a.key.to_user_string() for a in defs.assets)
['batch_prompts', 'batch_videos']
"""

import os
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from dagster_aws.s3 import S3Resource

from minimax_dagster.assets import build_minimax_video_asset
from minimax_dagster.demo.definitions import read_prompt_datasets
from minimax_dagster.demo.settings import DemoSettings
from minimax_dagster.io_manager import S3JsonIOManager
from minimax_dagster.resources import (
    AccountConfig,
    MiniMaxResource,
    MiniMaxS3Resource,
    s3_client_from_resource,
)

#: The simulator's "Transformers" template: text optional, no image (pick a real one from agent-templates).
TEMPLATE_ID = "394100000000000004"
JOB_NAME = "scale_videos_job"
POOL = "minimax"
DEFAULT_CELERY_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "celery_config.yaml"

scale_batches = dg.DynamicPartitionsDefinition(name="scale_batches")


def celery_executor_config(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``execution.config`` block of the Celery YAML, with the queue of ``MINIMAX_CELERY_QUEUE``.

    >>> celery_executor_config({"MINIMAX_CELERY_QUEUE": "q1"})["config_source"]["task_default_queue"]
    'q1'
    """
    env = dict(os.environ) if env is None else env
    path = Path(env.get("MINIMAX_CELERY_CONFIG") or DEFAULT_CELERY_CONFIG)
    config = dict((yaml.safe_load(path.read_text()) or {}).get("execution", {}).get("config", {}))
    source = dict(config.get("config_source") or {})
    source["task_default_queue"] = env.get("MINIMAX_CELERY_QUEUE") or source.get(
        "task_default_queue", "dagster"
    )
    config["config_source"] = source
    return config


def make_definitions(settings: DemoSettings | None = None, executor: Any = None) -> dg.Definitions:
    """Build the scale definitions (``executor`` default: the Celery executor from :func:`celery_executor_config`)."""
    from dagster_celery import celery_executor

    settings = settings or DemoSettings.from_env()
    bucket, prefix = settings.bucket, settings.prefix
    datasets_prefix = f"{prefix}/datasets/" if prefix else "datasets/"

    @dg.asset(
        partitions_def=scale_batches,
        io_manager_key="minimax_io_manager",
        backfill_policy=dg.BackfillPolicy.multi_run(1),
        group_name="scale",
        kinds={"s3"},
    )
    def batch_prompts(context: dg.AssetExecutionContext, s3: S3Resource) -> Any:
        """The rows of each prompt batch, read from ``s3://<bucket>/<prefix>/datasets/<name>.json``."""
        return read_prompt_datasets(context, s3_client_from_resource(s3), bucket, datasets_prefix)

    batch_videos = build_minimax_video_asset(
        "batch_videos",
        prompts=batch_prompts,
        bucket=bucket,
        prefix=prefix,
        template_id=TEMPLATE_ID,
        partitions_def=scale_batches,
        pool=POOL,
        backfill_policy=dg.BackfillPolicy.multi_run(1),
        retry_policy=dg.RetryPolicy(max_retries=2, delay=2),
        group_name="scale",
    )
    job = dg.define_asset_job(JOB_NAME, selection=[batch_prompts, batch_videos])
    s3_resource = MiniMaxS3Resource(endpoint_url=settings.s3_endpoint_url, region_name=settings.region)
    minimax = MiniMaxResource(
        api_token=dg.EnvVar("USEAPI_TOKEN"),
        base_url=settings.base_url,
        accounts=[AccountConfig(account=a, max_jobs=n) for a, n in settings.accounts.items()],
        allowed_download_hosts=list(settings.allowed_download_hosts),
        poll_interval=settings.poll_interval,
        read_timeout=settings.read_timeout,
    )
    return dg.Definitions(
        assets=[batch_prompts, batch_videos],
        jobs=[job],
        executor=executor if executor is not None else celery_executor.configured(celery_executor_config()),
        resources={
            "minimax": minimax,
            "s3": s3_resource,
            "minimax_io_manager": S3JsonIOManager(s3=s3_resource, bucket=bucket, prefix=prefix),
        },
    )


def scale_job() -> dg.JobDefinition:
    """The scale job, rebuilt from the environment in each process (for ``dg.reconstructable``)."""
    return make_definitions().resolve_job_def(JOB_NAME)


defs = make_definitions()
