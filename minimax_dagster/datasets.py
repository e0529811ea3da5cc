"""Prompt datasets in S3: one JSON list of prompt rows per dataset, one dynamic partition per dataset.

A dataset ``<name>`` lives at ``s3://<bucket>/<folder><name>.json`` (the folder is usually
:attr:`~minimax_dagster.settings.EnvSettings.datasets_prefix`). The demo's ``dataset_prompts`` and the
deployment's ``batch_prompts`` read them with :func:`read_prompt_datasets`.

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

from minimax_dagster.io_manager import PartitionedValues
from minimax_dagster.storage import get_json, s3_uri


def read_prompt_datasets(context: dg.AssetExecutionContext, s3_client: Any, bucket: str, folder: str) -> Any:
    """The rows of each partition's dataset ``s3://<bucket>/<folder><name>.json``: one list, or
    :class:`~minimax_dagster.io_manager.PartitionedValues` when the run covers several partitions.

    A missing dataset, or one that is not a JSON list, fails the step naming its S3 URI.
    """
    values: dict[str, Any] = {}
    for name in context.partition_keys:
        key = f"{folder}{name}.json"
        rows = get_json(s3_client, bucket, key)
        if rows is None:
            raise dg.Failure(f"prompt dataset {name!r} not found at {s3_uri(bucket, key)}")
        if not isinstance(rows, list):
            raise dg.Failure(f"{s3_uri(bucket, key)} must hold a JSON list of prompt rows")
        values[name] = rows
        context.log.info(f"dataset {name}: {len(rows)} prompt(s)")
    return next(iter(values.values())) if len(values) == 1 else PartitionedValues(values)
