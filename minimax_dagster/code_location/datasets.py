"""Prompt datasets in S3: one JSON list of prompt rows per dataset, one dynamic partition per dataset.

A dataset ``<name>`` lives at ``s3://<bucket>/<folder><name>.json`` (the folder is usually
:attr:`~minimax_dagster.code_location.environment.EnvSettings.datasets_prefix`). :func:`build_prompt_datasets_asset` makes the
upstream asset that reads them (the demo's ``dataset_prompts``, the deployment's ``batch_prompts``), on
:func:`read_prompt_datasets`.

>>> import boto3, dagster as dg
>>> from moto import mock_aws
>>> from minimax_dagster.storage import put_json, s3_client_config
>>> @dg.asset(partitions_def=dg.StaticPartitionsDefinition(["autumn", "launch"]))
... def prompts(context: dg.AssetExecutionContext) -> Any:
...     return read_prompt_datasets(context, s3, "bkt", "minimax/datasets/")
>>> with mock_aws():
...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
...     _ = s3.create_bucket(Bucket="bkt")
...     _ = put_json(s3, "bkt", "minimax/datasets/autumn.json", [{"id": "leaves", "prompt": "Falling leaves"}])
...     prompts(dg.build_asset_context(partition_key="autumn"))
[{'id': 'leaves', 'prompt': 'Falling leaves'}]
"""

from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource

from minimax_dagster.resources.io_manager import PartitionedValues
from minimax_dagster.resources.minimax import s3_client_from_resource
from minimax_dagster.storage import ObjectTooLarge, get_json, s3_uri

#: The largest dataset object read (a prompt row is ~100 bytes to a few KB: this is hundreds of thousands of rows).
DEFAULT_MAX_DATASET_BYTES = 64 * 1024 * 1024


def build_prompt_datasets_asset(
    name: str,
    *,
    partitions_def: dg.PartitionsDefinition,
    bucket: str,
    folder: str,
    backfill_policy: dg.BackfillPolicy | None = None,
    group_name: str | None = None,
    io_manager_key: str = "minimax_io_manager",
    s3_resource_key: str = "s3",
    max_dataset_bytes: int = DEFAULT_MAX_DATASET_BYTES,
    op_tags: dict[str, str] | None = None,
) -> dg.AssetsDefinition:
    """An asset whose value is the rows of each partition's dataset ``s3://<bucket>/<folder><name>.json``
    (see :func:`read_prompt_datasets`), read through the ``s3`` resource: the upstream of a video asset for
    backfills across prompt datasets. A dataset object over ``max_dataset_bytes`` is refused before it is read.

    >>> datasets = dg.DynamicPartitionsDefinition(name="datasets")
    >>> asset = build_prompt_datasets_asset("prompts", partitions_def=datasets, bucket="b", folder="m/datasets/")
    >>> asset.key.to_user_string(), sorted(asset.required_resource_keys)
    ('prompts', ['minimax_io_manager', 's3'])
    """

    @dg.asset(
        name=name,
        partitions_def=partitions_def,
        io_manager_key=io_manager_key,
        backfill_policy=backfill_policy,
        group_name=group_name,
        kinds={"s3"},
        required_resource_keys={s3_resource_key},
        op_tags=op_tags,
        description=f"The rows of each prompt dataset (one per partition), read from `s3://{bucket}/{folder}{{name}}.json`.",
    )
    def _prompts(context: dg.AssetExecutionContext) -> Any:
        s3: S3Resource = getattr(context.resources, s3_resource_key)
        return read_prompt_datasets(
            context, s3_client_from_resource(s3), bucket, folder, max_dataset_bytes=max_dataset_bytes
        )

    return _prompts


def read_prompt_datasets(
    context: dg.AssetExecutionContext,
    s3_client: Any,
    bucket: str,
    folder: str,
    *,
    max_dataset_bytes: int = DEFAULT_MAX_DATASET_BYTES,
) -> Any:
    """The rows of each partition's dataset ``s3://<bucket>/<folder><name>.json``: one list, or
    :class:`~minimax_dagster.resources.io_manager.PartitionedValues` when the run covers several partitions.

    A missing dataset, or one that is not a JSON list, fails the step naming its S3 URI; so does one over
    ``max_dataset_bytes``, refused by its size before it is read.
    """
    values: dict[str, Any] = {}
    for name in context.partition_keys:
        key = f"{folder}{name}.json"
        try:
            rows = get_json(s3_client, bucket, key, max_bytes=max_dataset_bytes, setting="max_dataset_bytes")
        except ObjectTooLarge as exc:
            raise dg.Failure(
                f"prompt dataset {name!r}: {exc}; split it, or raise max_dataset_bytes"
            ) from None
        if rows is None:
            raise dg.Failure(f"prompt dataset {name!r} not found at {s3_uri(bucket, key)}")
        if not isinstance(rows, list):
            raise dg.Failure(f"{s3_uri(bucket, key)} must hold a JSON list of prompt rows")
        values[name] = rows
        context.log.info(f"dataset {name}: {len(rows)} prompt(s)")
    return next(iter(values.values())) if len(values) == 1 else PartitionedValues(values)
