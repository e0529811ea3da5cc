"""The prompt-dataset pipeline, shaped for production: one run per partition, each step on a Celery worker.

``batch_prompts`` → ``batch_videos`` over the dynamic partitions ``scale_batches`` (one per prompt dataset
``s3://<bucket>/<prefix>/datasets/<name>.json``, read like the demo's ``dataset_prompts``). Unlike the demo,
whose backfills are one run sharing the capacity, the backfill policy here is ``multi_run(1)``: a backfill is one
run per batch, the runs are queued by the QueuedRunCoordinator, their video steps take a slot of the ``minimax``
pool, and every step is executed by whichever Celery worker takes it. The video producer keeps the accounts'
capacity shared across all workers (slot claims in S3) and never pays twice for a video (key claims in S3).

The job's executor is ``celery_executor`` (whose run failures name an unreachable service:
:mod:`minimax_dagster.deployment.executor`) configured from the same YAML the workers start with
(:func:`~minimax_dagster.deployment.celery.celery_executor_config`); ``MINIMAX_CELERY_QUEUE`` (default ``dagster``)
names the queue, so that several deployments can share one broker. Everything else comes from the environment
variables of :class:`~minimax_dagster.code_location.environment.EnvSettings`. Needs the ``celery`` extra.

>>> defs = make_definitions(EnvSettings(bucket="b"), executor=dg.in_process_executor)
>>> sorted(a.key.to_user_string() for a in defs.assets)
['batch_prompts', 'batch_videos']
"""

from typing import Any

import dagster as dg

from minimax_dagster.assets.factory import build_minimax_video_asset
from minimax_dagster.code_location.datasets import build_prompt_datasets_asset
from minimax_dagster.code_location.environment import EnvSettings
from minimax_dagster.deployment.celery import celery_executor_config
from minimax_dagster.resources.io_manager import S3JsonIOManager

#: The simulator's "Transformers" template: text optional, no image (pick a real one from agent-templates).
TEMPLATE_ID = "394100000000000004"
JOB_NAME = "scale_videos_job"
POOL = "minimax"

scale_batches = dg.DynamicPartitionsDefinition(name="scale_batches")


def make_definitions(settings: EnvSettings | None = None, executor: Any = None) -> dg.Definitions:
    """Build the deployment's definitions (``executor`` default: the Celery executor of
    :func:`celery_executor_config`)."""
    settings = settings or EnvSettings.from_env()
    bucket, prefix = settings.bucket, settings.prefix
    datasets_prefix = settings.datasets_prefix
    # Each step names its Celery queue: dagster-celery before 0.28.12 sends untagged steps to "dagster" whatever
    # the executor's task_default_queue says.
    queue_tag = {"dagster-celery/queue": celery_executor_config()["config_source"]["task_default_queue"]}

    batch_prompts = build_prompt_datasets_asset(
        "batch_prompts",
        partitions_def=scale_batches,
        bucket=bucket,
        folder=datasets_prefix,
        backfill_policy=dg.BackfillPolicy.multi_run(1),
        group_name="scale",
        op_tags=queue_tag,
    )

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
        op_tags=queue_tag,
    )
    job = dg.define_asset_job(JOB_NAME, selection=[batch_prompts, batch_videos])
    s3_resource = settings.s3_resource()
    minimax = settings.minimax_resource()
    return dg.Definitions(
        assets=[batch_prompts, batch_videos],
        jobs=[job],
        executor=executor if executor is not None else _celery_executor(),
        resources={
            "minimax": minimax,
            "s3": s3_resource,
            "minimax_io_manager": S3JsonIOManager(s3=s3_resource, bucket=bucket, prefix=prefix),
        },
    )


def _celery_executor() -> dg.ExecutorDefinition:
    try:
        from minimax_dagster.deployment.executor import celery_executor_explained
    except ImportError:
        raise ImportError(
            "minimax_dagster.deployment runs its steps on Celery: install the extra with "
            "pip install 'minimax-dagster[celery]' (and [postgres] for the instance storage)"
        ) from None
    return celery_executor_explained.configured(celery_executor_config())


defs = make_definitions()
