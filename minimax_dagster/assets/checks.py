"""Asset checks for video assets: every manifest entry's object is in S3, is an MP4 of the recorded size, and no
prompt is missing from the manifest.

Each partition of a run gets its own evaluation, linked to that partition's latest materialization: a single-run
backfill over three datasets records three evaluations of each check, so the check list, the lineage node and
the detail pane agree on every partition. (``AssetCheckResult`` alone records one evaluation without a
partition when a run covers several partitions; the checks yield Dagster's ``AssetCheckEvaluation`` per
partition instead.) On a Dagster without partitioned checks the checks record one evaluation per run instead
(:mod:`minimax_dagster.compat`).

>>> import dagster as dg
>>> from minimax_dagster.assets.factory import build_minimax_video_asset
>>> videos = build_minimax_video_asset("videos", prompts="prompts", template_id="1", bucket="b")
>>> [c.check_key.name for c in build_video_checks(videos)]
['videos_in_s3', 'all_prompts_present']
"""

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import dagster as dg

# The record linking an evaluation to the materialization it checked; Dagster exports no public name for it.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from minimax_dagster import compat
from minimax_dagster.metadata.markdown import MAX_LISTED
from minimax_dagster.production.manifest import VideoManifest
from minimax_dagster.resources.minimax import s3_client_from_resource
from minimax_dagster.storage import head_object, read_head_bytes

#: One partition's outcome: passed, severity, description, metadata.
Outcome = tuple[bool, dg.AssetCheckSeverity, str, dict[str, Any]]


def manifests_by_partition(
    value: Any, partitions: list[str | None]
) -> dict[str | None, VideoManifest | None]:
    """The manifest of each partition in ``partitions`` from what the IO manager loaded (one manifest, or
    ``{partition: manifest}`` when the run covers several); ``None`` for a partition without one.

    >>> manifests_by_partition({"entries": [], "partition": "a"}, ["a"])["a"].partition
    'a'
    >>> manifests_by_partition({"a": {"entries": []}}, ["a", "b"])["b"] is None
    True
    """
    if isinstance(value, VideoManifest) or (isinstance(value, Mapping) and "entries" in value):
        single = value if isinstance(value, VideoManifest) else VideoManifest.model_validate(value)
        return {p: single if len(partitions) == 1 or p == single.partition else None for p in partitions}
    out: dict[str | None, VideoManifest | None] = {}
    for partition in partitions:
        item = value.get(partition) if isinstance(value, Mapping) and partition is not None else None
        if isinstance(item, VideoManifest):
            out[partition] = item
        elif isinstance(item, Mapping):
            out[partition] = VideoManifest.model_validate(item)
        else:
            out[partition] = None
    return out


def _split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def verify_manifest_objects(s3_client: Any, manifests: list[VideoManifest]) -> tuple[int, list[str]]:
    """Check each video of the manifests in S3: present, ``ftyp`` at byte 4, the recorded size.

    Returns how many objects were checked and a list of problems.

    >>> verify_manifest_objects(None, [VideoManifest(entries=[])])
    (0, [])
    """
    checked = 0
    problems: list[str] = []
    for manifest in manifests:
        for entry in manifest.entries:
            if not entry.ok:
                continue
            checked += 1
            where = f"{manifest.partition + '/' if manifest.partition else ''}{entry.id}"
            if not entry.s3_uri:
                problems.append(f"{where}: no s3_uri recorded")
                continue
            bucket, key = _split_uri(entry.s3_uri)
            head = head_object(s3_client, bucket, key)
            if head is None:
                problems.append(f"{where}: {entry.s3_uri} is missing")
                continue
            size = int(head.get("ContentLength", -1))
            if entry.bytes is not None and size != entry.bytes:
                problems.append(f"{where}: {entry.s3_uri} is {size} bytes, the manifest says {entry.bytes}")
            first = read_head_bytes(s3_client, bucket, key, 12) or b""
            if first[4:8] != b"ftyp":
                problems.append(f"{where}: {entry.s3_uri} is not an MP4 (no ftyp box)")
    return checked, problems


def objects_outcome(s3_client: Any, manifest: VideoManifest) -> Outcome:
    """The ``videos_in_s3`` outcome of one partition's manifest.

    >>> objects_outcome(None, VideoManifest(entries=[]))[:3]
    (True, <AssetCheckSeverity.ERROR: 'ERROR'>, '0 object(s) checked, 0 problem(s)')
    """
    checked, problems = verify_manifest_objects(s3_client, [manifest])
    metadata = {
        "checked": checked,
        "problems": len(problems),
        "first_problems": dg.MetadataValue.json(problems[:MAX_LISTED]),
    }
    description = f"{checked} object(s) checked, {len(problems)} problem(s)"
    return not problems, dg.AssetCheckSeverity.ERROR, description, metadata


def presence_outcome(manifest: VideoManifest) -> Outcome:
    """The ``all_prompts_present`` outcome of one partition's manifest: an error when a requested id has no
    entry, a warning when entries failed.

    >>> presence_outcome(VideoManifest(requested_ids=["a"], entries=[]))[2]
    '1 requested, 1 missing, 0 failed'
    """
    missing = manifest.missing_ids()
    failed = [e.id for e in manifest.failed()]
    requested = len(manifest.requested_ids)
    severity = dg.AssetCheckSeverity.ERROR if missing else dg.AssetCheckSeverity.WARN
    metadata = {
        "requested": requested,
        "missing": dg.MetadataValue.json(missing[:MAX_LISTED]),
        "failed": dg.MetadataValue.json(failed[:MAX_LISTED]),
    }
    description = f"{requested} requested, {len(missing)} missing, {len(failed)} failed"
    return not missing and not failed, severity, description, metadata


def _target(
    context: dg.AssetCheckExecutionContext, asset_key: dg.AssetKey, partition: str | None
) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The partition's latest materialization: what this evaluation checked."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition] if partition else None),
        limit=1,
    ).records
    if not records:
        return None
    record = records[0]
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )


def _evaluate_per_partition(
    context: dg.AssetCheckExecutionContext,
    manifest_value: Any,
    *,
    asset_key: dg.AssetKey,
    check_name: str,
    blocking: bool,
    outcome: Callable[[VideoManifest], Outcome],
) -> Iterator[dg.AssetCheckEvaluation | dg.Output[None]]:
    partitions = compat.run_partitions(context, manifest_value)
    evaluations: list[dict[str, Any]] = []
    for partition, manifest in manifests_by_partition(manifest_value, partitions).items():
        metadata: dict[str, Any]
        if manifest is None:
            passed, severity, description, metadata = (
                False,
                dg.AssetCheckSeverity.ERROR,
                "no manifest for this partition: materialize it first",
                {},
            )
        else:
            passed, severity, description, metadata = outcome(manifest)
        if partition is not None:
            metadata = {"partition": partition, **metadata}
        evaluations.append(
            dict(
                asset_key=asset_key,
                check_name=check_name,
                passed=passed,
                severity=severity,
                description=description,
                metadata=metadata,
                blocking=blocking,
                partition=partition,
                target_materialization_data=_target(context, asset_key, partition),
            )
        )
    yield from compat.check_evaluations(evaluations)
    # The check's own output (what blocking checks and downstream steps wait for); its evaluations are above.
    yield dg.Output(None)


def build_video_checks(
    video_asset: dg.AssetsDefinition,
    *,
    s3_resource_key: str = "s3",
    blocking: bool = False,
) -> list[dg.AssetChecksDefinition]:
    """Two checks on a video asset built by :func:`~minimax_dagster.assets.factory.build_minimax_video_asset`, each
    evaluated per partition of the run.

    ``videos_in_s3`` (error severity): every generated or reused entry's object exists, starts with an MP4
    ``ftyp`` box and has the recorded size. ``all_prompts_present`` (error when a requested id has no entry,
    warning when entries failed).
    """
    partitions_def = video_asset.partitions_def
    asset_key = video_asset.key

    # dagster types a check as returning one AssetCheckResult; it also runs one that yields its evaluations.
    @dg.asset_check(  # type: ignore[arg-type]
        asset=video_asset,
        name="videos_in_s3",
        description="Every video in the manifest is in S3, is an MP4 (ftyp) and has the recorded size.",
        required_resource_keys={s3_resource_key},
        blocking=blocking,
        **compat.check_partitioning(partitions_def),
    )
    def videos_in_s3(
        context: dg.AssetCheckExecutionContext, manifest: Any
    ) -> Iterator[dg.AssetCheckEvaluation | dg.Output[None]]:
        s3 = s3_client_from_resource(getattr(context.resources, s3_resource_key))
        yield from _evaluate_per_partition(
            context,
            manifest,
            asset_key=asset_key,
            check_name="videos_in_s3",
            blocking=blocking,
            outcome=lambda m: objects_outcome(s3, m),
        )

    @dg.asset_check(  # type: ignore[arg-type]
        asset=video_asset,
        name="all_prompts_present",
        description="Every requested prompt has a manifest entry; failed entries are reported as a warning.",
        blocking=blocking,
        **compat.check_partitioning(partitions_def),
    )
    def all_prompts_present(
        context: dg.AssetCheckExecutionContext, manifest: Any
    ) -> Iterator[dg.AssetCheckEvaluation | dg.Output[None]]:
        yield from _evaluate_per_partition(
            context,
            manifest,
            asset_key=asset_key,
            check_name="all_prompts_present",
            blocking=blocking,
            outcome=presence_outcome,
        )

    return [videos_in_s3, all_prompts_present]
