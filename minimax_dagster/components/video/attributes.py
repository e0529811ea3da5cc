"""The YAML attributes of :class:`~minimax_dagster.components.video.component.MiniMaxVideoComponent` that are more
than a scalar: partitions, freshness, retry and backfill policies, checks (the resources are in
:mod:`~minimax_dagster.components.video.resource_attributes`).

Each is a small model (what ``defs.yaml`` may say, validated with the line of any mistake) plus a resolver that
turns it into the Dagster object.

>>> from dagster.components.resolved.context import ResolutionContext
>>> ctx = ResolutionContext.default()
>>> resolve_partitions(ctx, PartitionsModel(type="daily", start_date="2026-11-01")).start.date().isoformat()
'2026-11-01'
"""

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

import dagster as dg
from pydantic import BaseModel, Field, model_validator

from minimax_dagster.assets.yaml_values import located_error, render


def _only_for(model: BaseModel, kind: str, names: tuple[str, ...]) -> None:
    """Refuse the fields of another ``type`` (a YAML mistake, e.g. ``name:`` on daily partitions)."""
    stray = [n for n in names if n in model.model_fields_set]
    if stray:
        raise ValueError(f"{', '.join(stray)} not allowed with type {kind}")


class PartitionsModel(dg.Model):
    """``type: daily`` (one partition per day from ``start_date``) or ``type: dynamic`` (partitions added at run
    time by a sensor, the UI or ``instance.add_dynamic_partitions``, e.g. one per prompt dataset; assets naming
    the same ``name`` share them).

    >>> try:
    ...     PartitionsModel(type="dynamic")
    ... except ValueError as exc:
    ...     print(exc.errors()[0]["msg"])
    Value error, dynamic partitions need name: (e.g. prompt_datasets)
    """

    type: Literal["daily", "dynamic"] = Field(description="daily or dynamic.")
    start_date: str | None = Field(
        default=None, description="daily: first day, YYYY-MM-DD.", examples=["2026-11-01"]
    )
    end_date: str | None = Field(
        default=None, description="daily: day after the last one (default: open-ended)."
    )
    timezone: str | None = Field(default=None, description="daily: IANA timezone of the days (default UTC).")
    end_offset: int = Field(
        default=0, description="daily: 1 makes today's partition available before it ends."
    )
    hour_offset: int = Field(default=0, ge=0, le=23, description="daily: hour the day starts at.")
    minute_offset: int = Field(default=0, ge=0, le=59, description="daily: minute the day starts at.")
    name: str | None = Field(
        default=None, description="dynamic: name of the partitions.", examples=["datasets"]
    )

    @model_validator(mode="after")
    def _fields_of_type(self) -> "PartitionsModel":
        if self.type == "dynamic":
            if not self.name:
                raise ValueError("dynamic partitions need name: (e.g. prompt_datasets)")
            _only_for(self, "dynamic", ("start_date", "end_date", "timezone", "end_offset", "hour_offset"))
        elif not self.start_date:
            raise ValueError("daily partitions need start_date: YYYY-MM-DD (the first day)")
        else:
            _only_for(self, "daily", ("name",))
        return self


def resolve_partitions(context: dg.ResolutionContext, model: Any) -> dg.PartitionsDefinition | None:
    """``partitions:`` → the partitions definition (``None`` when absent).

    >>> from dagster.components.resolved.context import ResolutionContext
    >>> ctx = ResolutionContext.default()
    >>> resolve_partitions(ctx, PartitionsModel(type="dynamic", name="datasets")).name
    'datasets'
    """
    if model is None or isinstance(model, dg.PartitionsDefinition):
        return model
    values = render(context, model.model_dump())
    try:
        if values["type"] == "dynamic":
            return dg.DynamicPartitionsDefinition(name=str(values["name"]))
        return dg.DailyPartitionsDefinition(
            start_date=str(values["start_date"]),
            end_date=values["end_date"],
            timezone=values["timezone"],
            end_offset=values["end_offset"],
            hour_offset=values["hour_offset"],
            minute_offset=values["minute_offset"],
        )
    except Exception as exc:
        raise located_error(context, f"partitions: {exc} (start_date and end_date are YYYY-MM-DD)") from None


class FreshnessModel(dg.Model):
    """``type: time_window``: fresh when materialized within the last ``fail_window_hours``
    (``dg.FreshnessPolicy.time_window``). ``type: cron``: materialized by each ``deadline_cron`` tick, in the
    ``lower_bound_hours`` before it (``dg.FreshnessPolicy.cron``).

    >>> FreshnessModel(type="time_window", fail_window_hours=26).fail_window_hours
    26.0
    """

    type: Literal["time_window", "cron"] = Field(description="time_window or cron.")
    fail_window_hours: float | None = Field(
        default=None, gt=0, description="time_window: older is a failure."
    )
    warn_window_hours: float | None = Field(
        default=None, gt=0, description="time_window: older is a warning."
    )
    deadline_cron: str | None = Field(
        default=None, description="cron: when it must be fresh.", examples=["0 9 * * *"]
    )
    lower_bound_hours: float | None = Field(
        default=None, gt=0, description="cron: window before the deadline."
    )
    timezone: str = Field(default="UTC", description="cron: IANA timezone of the cron.")

    @model_validator(mode="after")
    def _fields_of_type(self) -> "FreshnessModel":
        if self.type == "time_window":
            if self.fail_window_hours is None:
                raise ValueError("time_window freshness needs fail_window_hours:")
            _only_for(self, "time_window", ("deadline_cron", "lower_bound_hours", "timezone"))
        else:
            if not self.deadline_cron or self.lower_bound_hours is None:
                raise ValueError("cron freshness needs deadline_cron: and lower_bound_hours:")
            _only_for(self, "cron", ("fail_window_hours", "warn_window_hours"))
        return self


def resolve_freshness(context: dg.ResolutionContext, model: Any) -> Any:
    """``freshness_policy:`` (the model, or a template such as ``{{ dg.FreshnessPolicy.time_window(...) }}``).

    >>> from dagster.components.resolved.context import ResolutionContext
    >>> ctx = ResolutionContext.default()
    >>> resolve_freshness(ctx, FreshnessModel(type="time_window", fail_window_hours=2)).fail_window.to_timedelta()
    datetime.timedelta(seconds=7200)
    """
    if model is None or isinstance(model, dg.FreshnessPolicy):
        return model
    if not isinstance(model, FreshnessModel):
        raise located_error(
            context,
            f"freshness_policy: {model!r} is not a freshness policy; write {{type: time_window, "
            "fail_window_hours: 26}} or {type: cron, deadline_cron: '0 9 * * *', lower_bound_hours: 24}",
        )
    try:
        if model.type == "cron":
            return dg.FreshnessPolicy.cron(
                deadline_cron=str(model.deadline_cron),
                lower_bound_delta=dt.timedelta(hours=float(model.lower_bound_hours or 0)),
                timezone=model.timezone,
            )
        warn = model.warn_window_hours
        return dg.FreshnessPolicy.time_window(
            fail_window=dt.timedelta(hours=float(model.fail_window_hours or 0)),
            warn_window=dt.timedelta(hours=warn) if warn is not None else None,
        )
    except Exception as exc:
        raise located_error(context, f"freshness_policy: {exc}") from None


class RetryPolicyModel(dg.Model):
    """How often a failed step is retried; a retry reuses finished videos and reattaches to running ones.

    >>> RetryPolicyModel(max_retries=2, backoff="exponential").backoff
    'exponential'
    """

    max_retries: int = Field(default=1, ge=0, description="Retries after the first attempt.")
    delay_seconds: float | None = Field(default=None, ge=0, description="Wait before a retry.")
    backoff: Literal["linear", "exponential"] | None = Field(default=None, description="How the delay grows.")
    jitter: Literal["full", "plus_minus"] | None = Field(default=None, description="Randomness of the delay.")


def resolve_retry_policy(context: dg.ResolutionContext, model: Any) -> dg.RetryPolicy | None:
    """``retry_policy:`` → ``dg.RetryPolicy``.

    >>> from dagster.components.resolved.context import ResolutionContext
    >>> ctx = ResolutionContext.default()
    >>> resolve_retry_policy(ctx, RetryPolicyModel(max_retries=2, delay_seconds=5, backoff="exponential")).backoff
    <Backoff.EXPONENTIAL: 'EXPONENTIAL'>
    """
    if model is None or isinstance(model, dg.RetryPolicy):
        return model
    return dg.RetryPolicy(
        max_retries=model.max_retries,
        delay=model.delay_seconds,
        backoff=dg.Backoff(model.backoff.upper()) if model.backoff else None,
        jitter=dg.Jitter(model.jitter.upper()) if model.jitter else None,
    )


class BackfillPolicyModel(dg.Model):
    """``type: single_run``: a backfill over many partitions is ONE run sharing the API capacity (the usual
    choice). ``type: multi_run``: runs of at most ``max_partitions_per_run`` partitions.

    >>> BackfillPolicyModel(type="multi_run", max_partitions_per_run=7).max_partitions_per_run
    7
    """

    type: Literal["single_run", "multi_run"] = Field(description="single_run or multi_run.")
    max_partitions_per_run: int | None = Field(
        default=None, ge=1, description="multi_run: partitions per run."
    )

    @model_validator(mode="after")
    def _fields_of_type(self) -> "BackfillPolicyModel":
        if self.type == "single_run":
            _only_for(self, "single_run", ("max_partitions_per_run",))
        return self


def resolve_backfill_policy(context: dg.ResolutionContext, model: Any) -> dg.BackfillPolicy | None:
    """``backfill_policy:`` → ``dg.BackfillPolicy``.

    >>> from dagster.components.resolved.context import ResolutionContext
    >>> ctx = ResolutionContext.default()
    >>> resolve_backfill_policy(ctx, BackfillPolicyModel(type="single_run")) == dg.BackfillPolicy.single_run()
    True
    """
    if model is None or isinstance(model, dg.BackfillPolicy):
        return model
    if model.type == "multi_run":
        return dg.BackfillPolicy.multi_run(max_partitions_per_run=model.max_partitions_per_run or 1)
    return dg.BackfillPolicy.single_run()


class VideoChecksModel(dg.Model):
    """The asset checks ``videos_in_s3`` and ``all_prompts_present`` (``minimax_dagster.assets.checks``).

    >>> VideoChecksModel(blocking=True).enabled
    True
    """

    enabled: bool = Field(default=True, description="Define the two checks on the video asset.")
    blocking: bool = Field(
        default=False, description="A failed check stops downstream assets of the same run."
    )


def mapping_of_text(value: Mapping[str, Any] | None) -> dict[str, str]:
    """Tags and op tags: every value as text.

    >>> mapping_of_text({"tier": 1, "team": "video"})
    {'tier': '1', 'team': 'video'}
    """
    return {str(k): str(v) for k, v in (value or {}).items()}
