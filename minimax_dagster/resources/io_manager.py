"""``S3JsonIOManager``: stores asset values (prompt lists, video manifests) as JSON objects in S3, one per partition.

Unlike Dagster's default filesystem IO manager it supports runs that cover many partitions at once
(``BackfillPolicy.single_run()``): the asset returns :class:`PartitionedValues`, one value per partition key, and
each is written to its own object. Loading many partitions returns a dict; partitions never materialized are
skipped with a warning, so a catalogue over a growing dataset list keeps working.

>>> S3JsonIOManager(s3=MiniMaxS3Resource(), bucket="b", prefix="minimax").object_key(["videos"], "2026-11-27")
'minimax/assets/videos/2026-11-27.json'
"""

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import BaseModel, Field, PrivateAttr

from minimax_dagster.resources.minimax import MiniMaxS3Resource, s3_client_from_resource
from minimax_dagster.storage import get_json, normalize_prefix, put_json, s3_uri

UNPARTITIONED = "__all__"
#: Partition values written at once by one output.
PUT_THREADS = 8


class PartitionedValues(dict):
    """An asset's value for several partitions at once: ``{partition_key: value}``.

    >>> PartitionedValues({"2026-11-01": [1], "2026-11-02": [2]})["2026-11-02"]
    [2]
    """


class S3JsonIOManager(dg.ConfigurableIOManager):
    """JSON values in ``s3://<bucket>/<prefix>/assets/<asset key path>/<partition>.json``.

    Pydantic models are stored with ``model_dump(mode="json")``; an input annotated with a pydantic model
    (for example ``VideoManifest``) is loaded into it, any other input as plain JSON.
    """

    s3: dg.ResourceDependency[S3Resource]
    bucket: str = Field(description="Bucket holding the JSON values.")
    prefix: str = Field(default="minimax", description="Key prefix (no leading slash, no '..').")

    def object_key(self, asset_path: list[str], partition: str | None) -> str:
        """The S3 key of one asset partition's value (partition keys are percent-encoded, so never a path)."""
        name = quote(partition, safe="-_") if partition is not None else UNPARTITIONED
        return f"{self._folder(asset_path)}/{name}.json"

    def _folder(self, asset_path: list[str]) -> str:
        base = normalize_prefix(self.prefix)
        return "/".join([*(p for p in [base] if p), "assets", *(quote(p, safe="-_") for p in asset_path)])

    def uri_for(self, asset_key: dg.AssetKey, partition: str | None) -> str:
        """The ``s3://`` URI of one asset partition's value (what ``path`` metadata points at).

        >>> S3JsonIOManager(s3=MiniMaxS3Resource(), bucket="b").uri_for(dg.AssetKey(["videos"]), None)
        's3://b/minimax/assets/videos/__all__.json'
        """
        return s3_uri(self.bucket, self.object_key(list(asset_key.path), partition))

    # One client for the step's loads and its outputs: building one costs about 0.2 s of CPU, which would
    # otherwise come again after the step's last video, when the output is written.
    _s3_client: Any = PrivateAttr(default=None)

    def _client(self) -> Any:
        if self._s3_client is None:
            self._s3_client = s3_client_from_resource(self.s3)
        return self._s3_client

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        """Write the value, or each partition's value of a :class:`PartitionedValues`."""
        if obj is None:
            return
        client = self._client()
        path = list(context.asset_key.path)
        if isinstance(obj, PartitionedValues):
            expected = set(context.asset_partition_keys) if context.has_asset_partitions else set()
            unknown = set(obj) - expected
            if unknown:
                raise dg.Failure(f"values for partitions not in this run: {sorted(unknown)[:5]}")
            # Several at once: the step ends when the last is written.
            items = [(self.object_key(path, partition), _dump(value)) for partition, value in obj.items()]
            with ThreadPoolExecutor(min(PUT_THREADS, max(1, len(items))), "minimax-io") as executor:
                list(executor.map(lambda item: put_json(client, self.bucket, *item), items))
            # Output metadata would be copied onto every partition's materialization, so none is added here:
            # the video asset gives each partition its own ``path`` (``uri_for``).
            return
        if context.has_asset_partitions and len(context.asset_partition_keys) > 1:
            raise dg.Failure(
                f"{context.asset_key.to_user_string()} covers {len(context.asset_partition_keys)} partitions in this "
                "run: return PartitionedValues({partition_key: value, ...}) instead of one value"
            )
        partition = context.asset_partition_key if context.has_asset_partitions else None
        key = self.object_key(path, partition)
        put_json(client, self.bucket, key, _dump(obj))
        context.add_output_metadata({"path": dg.MetadataValue.path(s3_uri(self.bucket, key))})

    def load_input(self, context: dg.InputContext) -> Any:
        """Load one partition's value, or a dict of them when the input spans several partitions."""
        client = self._client()
        asset_key = context.asset_key
        path = list(asset_key.path)
        model = _declared_model(context)
        if context.has_asset_partitions and len(context.asset_partition_keys) != 1:
            out: dict[str, Any] = {}
            for partition in context.asset_partition_keys:
                data = get_json(client, self.bucket, self.object_key(path, partition))
                if data is None:
                    context.log.warning(
                        f"{asset_key.to_user_string()} partition {partition!r} has no value; skipped"
                    )
                    continue
                out[partition] = _load(data, model)
            return out
        only = context.asset_partition_key if context.has_asset_partitions else None
        key = self.object_key(path, only)
        data = get_json(client, self.bucket, key)
        if data is None:
            raise dg.Failure(
                f"no value for {asset_key.to_user_string()}"
                + (f" partition {only!r}" if only else "")
                + f" at {s3_uri(self.bucket, key)}: materialize it first"
            )
        return _load(data, model)


def _declared_model(context: dg.InputContext) -> type[BaseModel] | None:
    """The pydantic model the consuming input is annotated with, if any (else values load as plain JSON)."""
    try:
        typing_type = context.dagster_type.typing_type
    except Exception:  # no type information on this context
        return None
    if isinstance(typing_type, type) and issubclass(typing_type, BaseModel):
        return typing_type
    return None


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    json.dumps(value)  # fail early, with the value's own error, on anything JSON cannot hold
    return value


def _load(data: Any, model: type[BaseModel] | None) -> Any:
    return model.model_validate(data) if model is not None else data


__all__ = ["MiniMaxS3Resource", "PartitionedValues", "S3JsonIOManager"]
