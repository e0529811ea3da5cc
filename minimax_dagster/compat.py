"""What the installed Dagster can do, found by looking at it (never at its version string), and what the library
does on a release without a feature: the one place that knows the differences between supported releases.

The supported window is dagster 1.12.0 up to the newest 1.13 (with dagster-aws 0.28 / 0.29); the features below
came within it. On a release without one the library degrades as stated here and in ``docs/COMPATIBILITY.md``:

* :data:`PARTITIONED_CHECKS` (dagster 1.12.13): the video checks are partitioned like their asset and record one
  evaluation per partition of a run. Without it the checks are unpartitioned: one evaluation per check and run,
  passed only when every partition of the run passed, its metadata listing each partition's outcome (a run of
  the checks alone covers every partition Dagster loads for them: all of the asset's).
* :data:`COMPONENT_PRODUCES` (dagster 1.13.18): ``dg list components`` and the UI's component picker show what the
  component produces (assets, asset checks, a resource). Without it that is not shown; nothing else changes.
* :data:`TEMPLATES_SEE_DG` (dagster 1.12.3): templates in a component's attributes see ``dg``
  (``{{ dg.AutomationCondition.eager() }}``). Without it the component adds ``dg`` to the scope of its own
  attributes, with the names Dagster's later ``dg`` scope offers (:data:`DG_TEMPLATE_NAMES`).

>>> all(isinstance(found, bool) for found in (PARTITIONED_CHECKS, COMPONENT_PRODUCES, TEMPLATES_SEE_DG))
True
"""

import inspect
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
from dagster.components.resolved.context import ResolutionContext

#: Check evaluations summarized in the metadata of an unpartitioned check's one evaluation; the rest are counted.
MAX_SUMMARIZED = 25


def accepts(target: Callable[..., Any], name: str) -> bool:
    """Whether ``target`` (a function or a class) takes a keyword argument called ``name``.

    >>> accepts(sorted, "key"), accepts(sorted, "partition")
    (True, False)
    """
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return name in parameters


#: ``dg.asset_check(partitions_def=...)`` and ``dg.AssetCheckEvaluation(partition=...)`` exist.
PARTITIONED_CHECKS: bool = accepts(dg.asset_check, "partitions_def") and accepts(
    dg.AssetCheckEvaluation, "partition"
)

#: ``dg.ComponentTypeSpec(produces=...)`` exists.
COMPONENT_PRODUCES: bool = accepts(dg.ComponentTypeSpec, "produces")

#: Dagster's own template scope has ``dg``.
TEMPLATES_SEE_DG: bool = "dg" in ResolutionContext.default().scope

#: What ``{{ dg.* }}`` offers in a component's templates (the names of Dagster's own ``dg`` scope).
DG_TEMPLATE_NAMES = (
    "AutomationCondition",
    "FreshnessPolicy",
    "DailyPartitionsDefinition",
    "WeeklyPartitionsDefinition",
    "MonthlyPartitionsDefinition",
    "HourlyPartitionsDefinition",
    "StaticPartitionsDefinition",
    "TimeWindowPartitionsDefinition",
)


def with_dg_scope(context: ResolutionContext) -> ResolutionContext:
    """``context``, with ``dg`` in its template scope where this Dagster does not put it there.

    >>> with_dg_scope(ResolutionContext.default()).resolve_value("{{ dg.AutomationCondition.eager() }}").get_label()
    'eager'
    """
    if TEMPLATES_SEE_DG or "dg" in context.scope:
        return context
    return context.with_scope(
        dg=types.SimpleNamespace(**{name: getattr(dg, name) for name in DG_TEMPLATE_NAMES})
    )


def component_type_spec(*, produces: Sequence[str], **fields: Any) -> dg.ComponentTypeSpec:
    """``dg.ComponentTypeSpec(**fields, produces=produces)``, without ``produces`` where this Dagster lacks it.

    >>> component_type_spec(tags=["video"], produces=["asset"]).tags
    ['video']
    """
    if COMPONENT_PRODUCES:
        fields["produces"] = list(produces)
    return dg.ComponentTypeSpec(**fields)


def check_partitioning(partitions_def: dg.PartitionsDefinition | None) -> dict[str, Any]:
    """The keyword arguments of ``dg.asset_check`` that partition a check like its asset (none where this Dagster
    cannot partition checks: the check is then unpartitioned).

    >>> check_partitioning(None)
    {}
    >>> check_partitioning(dg.StaticPartitionsDefinition(["a"])) == (
    ...     {"partitions_def": dg.StaticPartitionsDefinition(["a"])} if PARTITIONED_CHECKS else {}
    ... )
    True
    """
    return {"partitions_def": partitions_def} if PARTITIONED_CHECKS and partitions_def is not None else {}


def run_partitions(context: dg.AssetCheckExecutionContext, loaded: Any) -> list[str | None]:
    """The partitions a check's run covers (``[None]`` for an unpartitioned run), given the value the check
    loaded.

    Where checks cannot be partitioned, a run of the checks without their asset (a checks-only job) has
    partition tags but no partitioned job, and Dagster loads every partition of the asset for the check, as a
    ``{partition: value}`` mapping: the check covers those.
    """
    op = context.op_execution_context
    if not (op.has_partition_key_range or op.has_partition_key):
        return [None]
    if PARTITIONED_CHECKS:
        return list(op.partition_keys)
    try:
        return list(op.partition_keys)
    except dg.DagsterInvariantViolationError:  # "Cannot access partition_keys for a non-partitioned run"
        if isinstance(loaded, Mapping) and "entries" not in loaded:  # not a single manifest
            return [str(key) for key in loaded]
        return [loaded.get("partition") if isinstance(loaded, Mapping) else None]


def check_evaluations(evaluations: Sequence[Mapping[str, Any]]) -> Iterator[dg.AssetCheckEvaluation]:
    """The ``dg.AssetCheckEvaluation`` records of one check's per-partition outcomes (each a mapping of that
    record's fields, ``partition`` included).

    Where this Dagster records per-partition evaluations, one per outcome. Where it does not, one evaluation
    without a partition: passed only when every outcome passed, with the most severe failure's severity, each
    partition's outcome and the failed partitions' metadata in its metadata (one outcome keeps its own
    description and metadata).

    >>> outcome = dict(asset_key=dg.AssetKey("v"), check_name="c", passed=True, metadata={}, partition=None)
    >>> [e.passed for e in check_evaluations([outcome])]
    [True]
    """
    if PARTITIONED_CHECKS or (len(evaluations) == 1 and evaluations[0].get("partition") is None):
        for fields in evaluations:
            yield dg.AssetCheckEvaluation(**_supported(fields))
        return
    yield dg.AssetCheckEvaluation(**_supported(unpartitioned(evaluations)))


def unpartitioned(evaluations: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One partition-less evaluation's fields summarizing several partitions' outcomes.

    >>> fail = dict(passed=False, severity=dg.AssetCheckSeverity.WARN, description="1 failed", partition="b")
    >>> merged = unpartitioned([dict(passed=True, description="ok", partition="a", metadata={"n": 1}), fail])
    >>> merged["passed"], merged["severity"], merged["description"]
    (False, <AssetCheckSeverity.WARN: 'WARN'>, '2 partition(s), 1 failed: b: 1 failed')
    >>> merged["metadata"]["partitions"].data[1]
    {'partition': 'b', 'passed': False, 'description': '1 failed'}
    """
    if len(evaluations) == 1:
        return {**evaluations[0], "partition": None}
    failed = [e for e in evaluations if not e["passed"]]
    severities = [e.get("severity", dg.AssetCheckSeverity.ERROR) for e in failed or evaluations]
    worst = dg.AssetCheckSeverity.ERROR if dg.AssetCheckSeverity.ERROR in severities else severities[0]
    summary = [
        {"partition": e["partition"], "passed": e["passed"], "description": e.get("description")}
        for e in evaluations[:MAX_SUMMARIZED]
    ]
    failures = "; ".join(f"{e['partition']}: {e.get('description')}" for e in failed[:MAX_SUMMARIZED])
    description = f"{len(evaluations)} partition(s), {len(failed)} failed" + (
        f": {failures}" if failed else ""
    )
    # The failed partitions' own metadata (their problems), each entry under "<partition>/<name>".
    problems = {
        f"{e['partition']}/{name}": value
        for e in failed[:MAX_SUMMARIZED]
        for name, value in (e.get("metadata") or {}).items()
        if name != "partition"
    }
    return {
        **{k: v for k, v in evaluations[0].items() if k not in {"metadata", "target_materialization_data"}},
        "passed": not failed,
        "severity": worst,
        "description": description,
        "metadata": {
            "partitions": dg.MetadataValue.json(summary),
            "partition_count": len(evaluations),
            **problems,
        },
        "partition": None,
    }


def _supported(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields without ``partition`` where this Dagster's evaluations have none (it is then ``None``)."""
    return {k: v for k, v in fields.items() if k != "partition" or PARTITIONED_CHECKS}
