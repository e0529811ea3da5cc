"""Helpers for tests that materialize video assets against the simulator and moto's S3 server.

``video_defs(...)`` builds a small code location: a ``prompts`` asset whose rows come from the test, and a
``videos`` asset built by :func:`build_minimax_video_asset`, wired to the simulator and S3 over real sockets.
"""

from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg

from minimax_dagster.assets.checks import build_video_checks
from minimax_dagster.assets.factory import build_minimax_video_asset
from minimax_dagster.resources.io_manager import PartitionedValues, S3JsonIOManager
from minimax_dagster.resources.minimax import MiniMaxResource, MiniMaxS3Resource
from minimax_dagster_tests.conftest import S3_KEY_ID

TEMPLATE = "394100000000000003"  # simulator "Transformers": text optional, no image


def minimax_resource(sim: Any, **overrides: Any) -> MiniMaxResource:
    """The resource pointed at the simulator; the token comes from USEAPI_TOKEN (set it with monkeypatch)."""
    options: dict[str, Any] = {
        "api_token": dg.EnvVar("USEAPI_TOKEN"),
        "base_url": sim.base_url,
        "allowed_download_hosts": [sim.origin],
        "poll_interval": 0.1,
        "read_timeout": 3.0,
        "backoff_factor": 0.05,
        "download_backoff": 0.05,
        "generation_deadline": 60.0,
        # The simulator lists a job it queued behind a 502/504 at once: no need to wait the real 20 s.
        "reconcile_settle_seconds": 0.05,
    }
    options.update(overrides)
    return MiniMaxResource(**options)


def s3_resource(s3_endpoint: str) -> MiniMaxS3Resource:
    """The S3 resource pointed at moto."""
    return MiniMaxS3Resource(
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=dg.EnvVar("TEST_S3_SECRET"),
    )


def video_defs(
    rows: Sequence[Any] | Callable[[dg.AssetExecutionContext], Any],
    *,
    sim: Any,
    s3_endpoint: str,
    bucket: str,
    partitions_def: dg.PartitionsDefinition | None = None,
    minimax_overrides: dict[str, Any] | None = None,
    **asset_kwargs: Any,
) -> dg.Definitions:
    """A ``prompts`` → ``videos`` code location for one test."""

    @dg.asset(
        partitions_def=partitions_def,
        io_manager_key="minimax_io_manager",
        backfill_policy=dg.BackfillPolicy.single_run() if partitions_def else None,
    )
    def prompts(context: dg.AssetExecutionContext) -> Any:
        if callable(rows):
            return rows(context)
        if partitions_def is not None and len(context.partition_keys) > 1:
            return PartitionedValues({k: list(rows) for k in context.partition_keys})
        return list(rows)

    asset_kwargs.setdefault("template_id", TEMPLATE)
    if partitions_def is not None:
        asset_kwargs.setdefault("backfill_policy", dg.BackfillPolicy.single_run())
    videos = build_minimax_video_asset(
        "videos", prompts=prompts, bucket=bucket, partitions_def=partitions_def, **asset_kwargs
    )
    s3 = s3_resource(s3_endpoint)
    return dg.Definitions(
        assets=[prompts, videos],
        asset_checks=build_video_checks(videos),
        resources={
            "minimax": minimax_resource(sim, **(minimax_overrides or {})),
            "s3": s3,
            "minimax_io_manager": S3JsonIOManager(s3=s3, bucket=bucket, prefix="minimax"),
        },
    )


def materialize(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    *,
    partition_key: str | None = None,
    tags: dict[str, str] | None = None,
    run_config: dict[str, Any] | None = None,
    raise_on_error: bool = False,
) -> dg.ExecuteInProcessResult:
    """Materialize every asset of ``defs`` (and its checks) in process on ``instance``."""
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance,
        partition_key=partition_key,
        tags=tags,
        run_config=run_config,
        raise_on_error=raise_on_error,
        resources=None,
    )


def log_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """Every ``context.log`` line of a run (not Dagster's own events), one item a line.

    When lines come faster than the step's log writes records, one record holds several lines (see
    ``BoundedLog``), so a record is split into its lines here.
    """
    records = [e.user_message for e in instance.all_logs(run_id) if e.dagster_event is None]
    return [line for record in records for line in record.splitlines()]


def event_log_text(instance: dg.DagsterInstance, run_id: str) -> str:
    """The whole stored event log of a run, serialized (for leak scans)."""
    return "\n".join(dg.serialize_value(e) for e in instance.all_logs(run_id))


def materialization_metadata(result: dg.ExecuteInProcessResult, asset: str = "videos") -> dict[str, Any]:
    """The metadata of the asset's (first) materialization in the run."""
    mats = result.asset_materializations_for_node(asset)
    assert mats, f"no materialization of {asset}"
    return {k: v.value for k, v in mats[0].metadata.items()}
