"""Dagster definitions of the backfill benchmarks, rebuilt from ``BENCH_*`` environment variables in every process.

``bench_prompts`` → ``bench_videos``, dynamically partitioned (``bench_sets``); each partition holds
``BENCH_ROWS_PER_PARTITION`` prompts whose text is unique per benchmark (``BENCH_ROWS_SEED``), so no video is
reused from an earlier run. ``bench_job()`` is reconstructable for ``dg.execute_job`` (multiprocess executor).

The videos asset's ``s3`` resource is a boto3 client built at resource init (``bench_s3``); with
``BENCH_S3_TRACE`` set to a directory then, its every call is appended to a file there
(``benchmarks._probes.S3Recorder``), in whichever process the step runs. The IO manager's client is not traced.

>>> sorted(make_definitions().resolve_job_def("bench_job").asset_layer.executable_asset_keys)
[AssetKey(['bench_prompts']), AssetKey(['bench_videos'])]
"""

import os
import uuid
from pathlib import Path
from typing import Any

import dagster as dg

from benchmarks._probes import S3Recorder
from minimax_dagster.assets.factory import build_minimax_video_asset
from minimax_dagster.resources.io_manager import PartitionedValues, S3JsonIOManager
from minimax_dagster.resources.minimax import (
    AccountConfig,
    MiniMaxResource,
    MiniMaxS3Resource,
    s3_client_from_resource,
)

TEMPLATE = "394100000000000003"  # simulator "Transformers": text optional, no image
PARTITIONS = dg.DynamicPartitionsDefinition(name="bench_sets")
PREFIX = "bench"


def rows_for(partition: str, seed: str | None = None, count: int | None = None) -> list[dict[str, str]]:
    """The prompts of one partition (``seed`` and ``count`` default to the environment's).

    >>> [r["id"] for r in rows_for("p0", "s", 2)]
    ['p0-0', 'p0-1']
    """
    seed = seed if seed is not None else os.environ.get("BENCH_ROWS_SEED", "seed")
    count = count if count is not None else int(os.environ.get("BENCH_ROWS_PER_PARTITION", "1"))
    return [
        {"id": f"{partition}-{i}", "prompt": f"benchmark {seed}: scene {i} of set {partition}"}
        for i in range(count)
    ]


@dg.asset(
    partitions_def=PARTITIONS,
    io_manager_key="minimax_io_manager",
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def bench_prompts(context: dg.AssetExecutionContext) -> Any:
    """Generated prompt rows for each partition of the run."""
    keys = context.partition_keys
    if len(keys) > 1:
        return PartitionedValues({k: rows_for(k) for k in keys})
    return rows_for(keys[0])


def _accounts() -> list[AccountConfig]:
    out = []
    for item in os.environ.get("BENCH_ACCOUNTS", "100001:5,100002:5").split(","):
        name, _, jobs = item.partition(":")
        out.append(AccountConfig(account=name, max_jobs=int(jobs)))
    return out


def _s3_settings() -> MiniMaxS3Resource:
    return MiniMaxS3Resource(
        endpoint_url=os.environ.get("BENCH_S3_ENDPOINT"),
        region_name="us-east-1",
        aws_access_key_id="bench-key-id",
        aws_secret_access_key=dg.EnvVar("BENCH_S3_SECRET"),
    )


@dg.resource(
    description="A boto3 S3 client on BENCH_S3_ENDPOINT; each call recorded when BENCH_S3_TRACE is set."
)
def bench_s3(_context: dg.InitResourceContext) -> Any:
    """A ready boto3 client (the asset uses it as it is), built when the resource is initialized, from the
    environment of that moment: Dagster caches reconstructed definitions within a process, so nothing that
    changes between two runs of one benchmark may be fixed when the definitions are built. With
    ``BENCH_S3_TRACE`` set, every call goes to ``$BENCH_S3_TRACE/<pid>-*.tsv``."""
    settings = MiniMaxS3Resource(
        endpoint_url=os.environ.get("BENCH_S3_ENDPOINT"),
        region_name="us-east-1",
        aws_access_key_id="bench-key-id",
        aws_secret_access_key=os.environ.get("BENCH_S3_SECRET"),
    )
    client = s3_client_from_resource(settings)
    trace = os.environ.get("BENCH_S3_TRACE")
    if trace:
        S3Recorder(Path(trace) / f"{os.getpid()}-{uuid.uuid4().hex[:6]}.tsv").attach(client)
    return client


def make_definitions() -> dg.Definitions:
    """The benchmark's code location, pointed at the services named in the environment."""
    s3 = _s3_settings()
    bench_videos = build_minimax_video_asset(
        "bench_videos",
        prompts=bench_prompts,
        bucket=os.environ.get("BENCH_BUCKET", "bench"),
        template_id=TEMPLATE,
        prefix=PREFIX,
        partitions_def=PARTITIONS,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    return dg.Definitions(
        assets=[bench_prompts, bench_videos],
        jobs=[dg.define_asset_job("bench_job", selection=[bench_prompts, bench_videos])],
        resources={
            "minimax": MiniMaxResource(
                api_token=dg.EnvVar("USEAPI_TOKEN"),
                base_url=os.environ.get("BENCH_SIM_BASE_URL", "http://127.0.0.1:8765/v1/minimax"),
                allowed_download_hosts=[os.environ.get("BENCH_SIM_ORIGIN", "http://127.0.0.1:8765")],
                accounts=_accounts(),
            ),
            "s3": bench_s3,
            "minimax_io_manager": S3JsonIOManager(
                s3=s3, bucket=os.environ.get("BENCH_BUCKET", "bench"), prefix=PREFIX
            ),
        },
    )


def bench_job() -> dg.JobDefinition:
    """The prompts → videos job (reconstructable)."""
    return make_definitions().resolve_job_def("bench_job")
