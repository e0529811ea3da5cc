"""Asset checks for video assets: every manifest entry's object is in S3, is an MP4 of the recorded size, and no
prompt is missing from the manifest.

>>> import dagster as dg
>>> from minimax_dagster.assets import build_minimax_video_asset
>>> videos = build_minimax_video_asset("videos", prompts="prompts", template_id="1", bucket="b")
>>> len(build_video_checks(videos))
2
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from minimax_dagster.production.manifest import VideoManifest
from minimax_dagster.resources import s3_client_from_resource
from minimax_dagster.storage import head_object, read_head_bytes

#: Problems listed in a check's metadata; the rest are counted.
MAX_LISTED = 25


def _manifests(value: Any) -> list[VideoManifest]:
    if isinstance(value, VideoManifest):
        return [value]
    if isinstance(value, Mapping) and "entries" in value:
        return [VideoManifest.model_validate(value)]
    if isinstance(value, Mapping):
        return [m for v in value.values() for m in _manifests(v)]
    return []


def _split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def verify_manifest_objects(s3_client: Any, manifests: list[VideoManifest]) -> tuple[int, list[str]]:
    """Check each video of the manifests in S3: present, ``ftyp`` at byte 4, the recorded size.

    Returns how many objects were checked and a list of problems.
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


def build_video_checks(
    video_asset: dg.AssetsDefinition,
    *,
    s3_resource_key: str = "s3",
    blocking: bool = False,
) -> list[dg.AssetChecksDefinition]:
    """Two checks on a video asset built by :func:`~minimax_dagster.assets.build_minimax_video_asset`.

    ``videos_in_s3`` (error severity): every generated or reused entry's object exists, starts with an MP4
    ``ftyp`` box and has the recorded size. ``all_prompts_present`` (error when a requested id has no entry,
    warning when entries failed).
    """
    partitions_def = video_asset.partitions_def

    @dg.asset_check(
        asset=video_asset,
        name="videos_in_s3",
        description="Every video in the manifest is in S3, is an MP4 (ftyp) and has the recorded size.",
        required_resource_keys={s3_resource_key},
        blocking=blocking,
        partitions_def=partitions_def,
    )
    def videos_in_s3(context: dg.AssetCheckExecutionContext, manifest: Any) -> dg.AssetCheckResult:
        s3 = s3_client_from_resource(getattr(context.resources, s3_resource_key))
        checked, problems = verify_manifest_objects(s3, _manifests(manifest))
        return dg.AssetCheckResult(
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"{checked} object(s) checked, {len(problems)} problem(s)",
            metadata={
                "checked": checked,
                "problems": len(problems),
                "first_problems": dg.MetadataValue.json(problems[:MAX_LISTED]),
            },
        )

    @dg.asset_check(
        asset=video_asset,
        name="all_prompts_present",
        description="Every requested prompt has a manifest entry; failed entries are reported as a warning.",
        blocking=blocking,
        partitions_def=partitions_def,
    )
    def all_prompts_present(manifest: Any) -> dg.AssetCheckResult:
        manifests = _manifests(manifest)
        missing = [f"{m.partition or ''}/{i}".lstrip("/") for m in manifests for i in m.missing_ids()]
        failed = [f"{m.partition or ''}/{e.id}".lstrip("/") for m in manifests for e in m.failed()]
        requested = sum(len(m.requested_ids) for m in manifests)
        severity = dg.AssetCheckSeverity.ERROR if missing else dg.AssetCheckSeverity.WARN
        return dg.AssetCheckResult(
            passed=not missing and not failed,
            severity=severity,
            description=f"{requested} requested, {len(missing)} missing, {len(failed)} failed",
            metadata={
                "requested": requested,
                "missing": dg.MetadataValue.json(missing[:MAX_LISTED]),
                "failed": dg.MetadataValue.json(failed[:MAX_LISTED]),
            },
        )

    return [videos_in_s3, all_prompts_present]
