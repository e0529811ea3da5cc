"""``MiniMaxVideoComponent``: the video pipeline as a YAML component of a ``dg`` project (``defs.yaml``).

Written the way dagster-sling's ``SlingReplicationCollectionComponent`` is: a ``dg.Component`` that is also a
``dg.Resolvable`` dataclass (its fields are the YAML attributes, validated with the line of any mistake),
``build_defs`` making the asset through :func:`~minimax_dagster.assets.factory.build_minimax_video_asset` and its checks
through :func:`~minimax_dagster.assets.checks.build_video_checks`, and a scaffolder for ``dg scaffold defs``. It is
registered through the ``dagster_dg_cli.registry_modules`` entry point, so ``dg list components`` lists it as
``minimax_dagster.MiniMaxVideoComponent``.

Loading it makes no network call: the token and S3 secrets stay ``dg.EnvVar`` references until a step runs.

>>> import dagster as dg
>>> component = MiniMaxVideoComponent.resolve_from_dict(
...     {"asset_key": "videos", "prompts": "prompts", "template_id": "393769180141805569", "bucket": "my-videos"}
... )
>>> defs = component.build_defs(dg.ComponentTree.for_test().load_context)
>>> [a.key.to_user_string() for a in defs.assets]
['videos']
>>> sorted(c.check_specs_by_output_name[o].name for c in defs.asset_checks for o in c.check_specs_by_output_name)
['all_prompts_present', 'videos_in_s3']
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import dagster as dg
from dagster.components.resolved.core_models import ResolvedAssetKey

from minimax_dagster import compat
from minimax_dagster.assets.checks import build_video_checks
from minimax_dagster.assets.factory import build_minimax_video_asset
from minimax_dagster.assets.options import AssetOptions, resolve_text
from minimax_dagster.assets.yaml_values import located_error, render
from minimax_dagster.components.video.attributes import (
    BackfillPolicyModel,
    FreshnessModel,
    PartitionsModel,
    RetryPolicyModel,
    VideoChecksModel,
    mapping_of_text,
    resolve_backfill_policy,
    resolve_freshness,
    resolve_partitions,
    resolve_retry_policy,
)
from minimax_dagster.components.video.resource_attributes import MiniMaxResources, ResourceKeysModel
from minimax_dagster.components.video.scaffolder import MiniMaxVideoScaffolder
from minimax_dagster.production.prompts import PromptValidationError, validate_prompt_rows
from minimax_dagster.resources.io_manager import PartitionedValues, S3JsonIOManager

#: In a prompt row's text, replaced by the partition key (``"Sunrise over Lisbon on {partition_key}"``).
PARTITION_PLACEHOLDER = "{partition_key}"


def _resolve_automation_condition(context: dg.ResolutionContext, raw: Any) -> dg.AutomationCondition | None:
    value = render(context, raw)
    if value is None or isinstance(value, dg.AutomationCondition):
        return value
    raise located_error(
        context,
        f"automation_condition: {value!r} is not an automation condition; write a template such as "
        '"{{ dg.AutomationCondition.on_cron(\'0 6 * * *\') }}" or "{{ dg.AutomationCondition.eager() }}"',
    )


def _resolve_prompt_rows(context: dg.ResolutionContext, model: Any) -> list[Any] | None:
    """``prompt_rows`` rendered and validated now, so a bad row is reported at its line before any run."""
    raw = getattr(model, "prompt_rows", None)
    if raw is None:
        return None
    at = context.at_path("prompt_rows")
    rows = render(at, raw)
    if isinstance(rows, (str, Mapping)) or not isinstance(rows, Sequence):
        raise located_error(at, "prompt_rows: write a list of prompts or of rows (id, prompt, ...)")
    template = getattr(model, "template_id", None)
    default_template = resolve_text(context, template)
    try:
        validate_prompt_rows(list(rows), default_template_id=default_template)
    except PromptValidationError as exc:
        first = exc.errors[0]
        raise located_error(at.at_path(first.index), f"prompt_rows (rows counted from 0): {exc}") from None
    return list(rows)


def _doc(text: str) -> dg.Resolver:
    return dg.Resolver.default(description=text)


def _resolve_as_written(context: dg.ResolutionContext, raw: Any) -> Any:
    return render(context, raw)


def _as_written(text: str, model_field_type: Any) -> dg.Resolver:
    """Templates rendered, plain values kept as written: dagster's default rendering would turn ``"3"`` into 3."""
    return dg.Resolver(
        _resolve_as_written, model_field_type=model_field_type, inject_before_resolve=False, description=text
    )


def _text(text: str) -> dg.Resolver:
    """A text attribute (``null`` stays ``None``)."""
    return dg.Resolver(resolve_text, model_field_type=str, inject_before_resolve=False, description=text)


@dg.scaffold_with(MiniMaxVideoScaffolder)
@dataclass(kw_only=True)
class MiniMaxVideoComponent(dg.Component, dg.Resolvable, AssetOptions):
    """Videos made by MiniMax (useapi.net agent-create) from an upstream asset's prompts, stored in S3.

    One asset whose value is the manifest of its videos (stored as JSON in the bucket), the checks
    ``videos_in_s3`` and ``all_prompts_present``, and, when ``resources`` says so, the resources it needs.
    A video that was paid for is never generated twice by a retry or a re-run. Secrets are written
    ``"{{ env.NAME }}"`` and stay environment references until a step runs.

    Scaffold one with ``dg scaffold defs minimax_dagster.MiniMaxVideoComponent videos``.

    .. code-block:: yaml

        type: minimax_dagster.MiniMaxVideoComponent
        attributes:
          asset_key: content/daily_videos
          prompts: content/daily_prompts        # an asset of yours returning prompt rows
          template_id: "393769180141805569"
          bucket: my-video-bucket
          prefix: minimax
          partitions:
            type: daily
            start_date: "2026-11-01"
          backfill_policy:
            type: single_run
          retry_policy:
            max_retries: 2
            delay_seconds: 30
            backoff: exponential
          pool: minimax
          automation_condition: "{{ dg.AutomationCondition.on_cron('0 6 * * *') }}"
          freshness_policy:
            type: time_window
            fail_window_hours: 30
          checks:
            enabled: true
            blocking: true
          group_name: content
          owners: ["team:content"]
          resources:
            minimax:
              api_token: "{{ env.USEAPI_TOKEN }}"
              accounts:
                - account: "1234567"
                  max_jobs: 3
            s3:
              region_name: eu-west-1

    ``prompts`` names the upstream asset; ``prompt_rows`` (a list of prompts or of rows with ``id``,
    ``prompt``, ``template_id``, ``image``) instead makes the component define that asset itself, with
    ``{partition_key}`` in a prompt replaced by the partition. ``partitions`` is left out (none), ``daily`` or
    ``dynamic`` (``name:``, e.g. one partition per prompt dataset). Leave ``resources`` out to bind
    ``minimax``, ``s3`` and ``minimax_io_manager`` (names in ``resource_keys``) elsewhere in the project.

    The example above, resolved (every attribute checked as ``dg check defs`` does):

    >>> import textwrap, yaml
    >>> example = MiniMaxVideoComponent.__doc__.split(".. code-block:: yaml")[1].split("``prompts`` names")[0]
    >>> component = MiniMaxVideoComponent.resolve_from_dict(yaml.safe_load(textwrap.dedent(example))["attributes"])
    >>> component.asset_key.to_user_string(), component.prompts_key.to_user_string()
    ('content/daily_videos', 'content/daily_prompts')
    >>> type(component.partitions).__name__, component.retry_policy.max_retries, component.checks.blocking
    ('DailyPartitionsDefinition', 2, True)
    >>> component.resources.minimax.api_token.env_var_name
    'USEAPI_TOKEN'
    """

    asset_key: Annotated[
        ResolvedAssetKey,
        dg.Resolver.default(
            description="Key of the video asset, e.g. videos or content/videos.", examples=["videos"]
        ),
    ]
    prompts: Annotated[
        ResolvedAssetKey | None,
        _doc(
            "The upstream asset whose value is the prompt rows. With prompt_rows, the key this component "
            "gives its own prompts asset (default <asset name>_prompts)."
        ),
    ] = None
    prompt_rows: Annotated[
        list[Any] | None,
        dg.Resolver.from_model(
            _resolve_prompt_rows,
            model_field_type=list[str | dict[str, Any]],
            description="Prompts written here: strings or rows with id, prompt, template_id, image. The "
            "component then defines the prompts asset; {partition_key} in a prompt is the partition.",
        ),
    ] = None
    partitions: Annotated[
        dg.PartitionsDefinition | None,
        dg.Resolver(
            resolve_partitions,
            model_field_type=PartitionsModel,
            description="Left out: not partitioned. {type: daily, start_date: ...} or {type: dynamic, name: ...}.",
        ),
    ] = None
    automation_condition: Annotated[
        dg.AutomationCondition | None,
        dg.Resolver(
            _resolve_automation_condition,
            model_field_type=str,
            inject_before_resolve=False,
            description="When to materialize by itself, e.g. \"{{ dg.AutomationCondition.on_cron('0 6 * * *') }}\".",
        ),
    ] = None
    freshness_policy: Annotated[
        dg.FreshnessPolicy | None,
        dg.Resolver(
            resolve_freshness,
            model_field_type=FreshnessModel,
            description="{type: time_window, fail_window_hours: ...} or {type: cron, deadline_cron: ..., "
            "lower_bound_hours: ...}.",
        ),
    ] = None
    retry_policy: Annotated[
        dg.RetryPolicy | None,
        dg.Resolver(
            resolve_retry_policy,
            model_field_type=RetryPolicyModel,
            description="Retries of a failed step; a retry reuses finished videos and reattaches to running ones.",
        ),
    ] = None
    backfill_policy: Annotated[
        dg.BackfillPolicy | None,
        dg.Resolver(
            resolve_backfill_policy,
            model_field_type=BackfillPolicyModel,
            description="{type: single_run} makes a backfill one run sharing the API capacity.",
        ),
    ] = None
    checks: Annotated[VideoChecksModel, _doc("The two asset checks: enabled, blocking.")] = field(
        default_factory=VideoChecksModel
    )
    resources: Annotated[
        MiniMaxResources | None, _doc("Resources to bind: minimax (api_token, accounts, ...) and s3.")
    ] = None
    resource_keys: Annotated[ResourceKeysModel, _doc("Keys of the resources the asset uses.")] = field(
        default_factory=ResourceKeysModel
    )
    group_name: Annotated[str | None, _text("Asset group.")] = None
    owners: Annotated[list[str] | None, _as_written("Owners: emails or team:name.", list[str])] = None
    tags: Annotated[
        dict[str, Any] | None,
        _as_written("Asset tags (values become text).", dict[str, str | int | float | bool]),
    ] = None
    kinds: Annotated[list[str] | None, _as_written("Kinds added to minimax and s3.", list[str])] = None
    metadata: Annotated[dict[str, Any] | None, _as_written("Asset metadata.", dict[str, Any])] = None
    code_version: Annotated[str | None, _text("Code version of the asset.")] = None
    op_tags: Annotated[
        dict[str, Any] | None,
        _as_written("Tags of the step, e.g. dagster/priority (values become text).", dict[str, Any]),
    ] = None

    @classmethod
    def get_spec(cls) -> dg.ComponentTypeSpec:
        """What ``dg list components`` and the UI's component picker show.

        >>> MiniMaxVideoComponent.get_spec().tags
        ['minimax', 'video', 's3']
        """
        return compat.component_type_spec(
            owners=[], tags=["minimax", "video", "s3"], produces=["asset", "asset_check", "resource"]
        )

    @property
    def prompts_key(self) -> dg.AssetKey:
        """The upstream asset: ``prompts``, or ``<asset name>_prompts`` beside the video asset.

        >>> MiniMaxVideoComponent.resolve_from_dict(
        ...     {"asset_key": "content/clips", "prompt_rows": ["A fox"], "template_id": "1", "bucket": "b"}
        ... ).prompts_key.to_user_string()
        'content/clips_prompts'
        """
        if self.prompts is not None:
            return self.prompts
        *parents, name = self.asset_key.path
        return dg.AssetKey([*parents, f"{name}_prompts"])

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """The video asset, its checks, the prompts asset when ``prompt_rows`` is given, and the resources
        (examples: the module's and the class's docstrings)."""
        if self.prompts is None and self.prompt_rows is None:
            raise ValueError(
                f"{type(self).__name__} {self.asset_key.to_user_string()}: give prompts (the key of the upstream "
                "asset of prompt rows) or prompt_rows (a list of prompts written in defs.yaml)"
            )
        videos = self.build_video_asset()
        assets: list[dg.AssetsDefinition] = [videos]
        if self.prompt_rows is not None:
            assets.insert(0, self.build_prompts_asset())
        keys = self.resource_keys
        checks = (
            build_video_checks(videos, s3_resource_key=keys.s3, blocking=self.checks.blocking)
            if self.checks.enabled
            else []
        )
        return dg.Definitions(assets=assets, asset_checks=checks, resources=self.bound_resources())

    def build_video_asset(self) -> dg.AssetsDefinition:
        """The asset, through :func:`~minimax_dagster.assets.factory.build_minimax_video_asset`."""
        *parents, name = self.asset_key.path
        keys = self.resource_keys
        # Dagster's asset options are passed only when set, so the factory's own defaults stay in charge.
        optional: dict[str, Any] = {
            "key_prefix": parents or None,
            "automation_condition": self.automation_condition,
            "freshness_policy": self.freshness_policy,
            "code_version": self.code_version,
            "kinds": set(self.kinds) if self.kinds else None,
            "metadata": self.metadata or None,
            "op_tags": mapping_of_text(self.op_tags) or None,
        }
        return build_minimax_video_asset(
            name,
            prompts=self.prompts_key,
            options=self.asset_options(),
            partitions_def=self.partitions,
            retry_policy=self.retry_policy,
            backfill_policy=self.backfill_policy,
            minimax_resource_key=keys.minimax,
            s3_resource_key=keys.s3,
            io_manager_key=keys.io_manager,
            group_name=self.group_name,
            description=self.description,
            owners=self.owners,
            tags=mapping_of_text(self.tags) or None,
            **{option: value for option, value in optional.items() if value is not None},
        )

    def build_prompts_asset(self) -> dg.AssetsDefinition:
        """The asset of ``prompt_rows``: the rows as written, ``{partition_key}`` replaced per partition."""
        rows = list(self.prompt_rows or [])
        partitions_def = self.partitions

        @dg.asset(
            key=self.prompts_key,
            partitions_def=partitions_def,
            backfill_policy=self.backfill_policy if partitions_def is not None else None,
            io_manager_key=self.resource_keys.io_manager,
            automation_condition=self.automation_condition,
            group_name=self.group_name,
            owners=self.owners,
            kinds={"yaml"},
            description=f"The {len(rows)} prompt row(s) written in defs.yaml.",
            metadata={"rows": len(rows)},
        )
        def _prompts(context: dg.AssetExecutionContext) -> Any:
            if partitions_def is None:
                return rows
            values = {key: rows_for_partition(rows, key) for key in context.partition_keys}
            return next(iter(values.values())) if len(values) == 1 else PartitionedValues(values)

        return _prompts

    def bound_resources(self) -> dict[str, Any]:
        """The resources ``resources`` gives, under ``resource_keys`` (the IO manager comes with ``s3``).

        >>> component = MiniMaxVideoComponent.resolve_from_dict(
        ...     {"asset_key": "v", "prompts": "p", "bucket": "b", "resources": {"s3": {"region_name": "eu-west-1"}},
        ...      "resource_keys": {"s3": "s3_eu", "io_manager": "manifests_eu"}}
        ... )
        >>> sorted(component.bound_resources())
        ['manifests_eu', 's3_eu']
        """
        if self.resources is None:
            return {}
        keys = self.resource_keys
        out: dict[str, Any] = {}
        if self.resources.minimax is not None:
            out[keys.minimax] = self.resources.minimax
        if self.resources.s3 is not None:
            out[keys.s3] = self.resources.s3
            out[keys.io_manager] = S3JsonIOManager(
                s3=self.resources.s3, bucket=self.bucket, prefix=self.prefix
            )
        return out


def rows_for_partition(rows: Sequence[Any], partition_key: str) -> list[Any]:
    """The rows of one partition: ``{partition_key}`` in each prompt replaced by the key.

    >>> rows_for_partition(["Dawn on {partition_key}", {"id": "a", "prompt": "Dusk, {partition_key}"}], "2026-11-02")
    ['Dawn on 2026-11-02', {'id': 'a', 'prompt': 'Dusk, 2026-11-02'}]
    """
    out: list[Any] = []
    for row in rows:
        if isinstance(row, str):
            out.append(row.replace(PARTITION_PLACEHOLDER, partition_key))
        elif isinstance(row, Mapping) and isinstance(row.get("prompt"), str):
            out.append({**row, "prompt": row["prompt"].replace(PARTITION_PLACEHOLDER, partition_key)})
        else:
            out.append(row)
    return out


__all__ = ["PARTITION_PLACEHOLDER", "MiniMaxVideoComponent", "rows_for_partition"]
