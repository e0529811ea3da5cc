"""dagster-celery's executor, whose run failure names the service that failed it and what to do.

:class:`ExplainingCeleryExecutor` is dagster-celery's ``CeleryExecutor`` unchanged, except at the end of a run
that failed because PostgreSQL, RabbitMQ or Redis was unreachable (after the retries of the Celery YAML): the
run then fails with :class:`~minimax_dagster.deployment.infrastructure.InfrastructureUnavailable`, whose
message has one line per failure (which step, which service at which address, what to do, and that the run
is retried), the original error chained below it. Any other failure is left exactly as it was.

>>> celery_executor_explained.name
'celery'
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_celery import celery_executor
from dagster_celery.executor import CeleryExecutor

from minimax_dagster.deployment.infrastructure import ErrorPart, InfrastructureUnavailable, chain_of, explain

__all__ = ["ExplainingCeleryExecutor", "celery_executor_explained"]


def _error_chain(error: Any) -> list[ErrorPart]:
    """A serialized error (a step failure's) and its causes, as :data:`ErrorPart` s."""
    out: list[ErrorPart] = []
    while error is not None and len(out) < 20:
        out.append((error.cls_name or "Error", error.message or "", list(error.stack or [])))
        error = error.cause or error.context
    return out


class ExplainingCeleryExecutor(CeleryExecutor):
    """``CeleryExecutor`` whose infrastructure failures end the run with one clear line each (see the module)."""

    def execute(self, plan_context: Any, execution_plan: Any) -> Iterator[dg.DagsterEvent]:
        lines: list[str] = []
        try:
            for event in super().execute(plan_context, execution_plan):
                if event.is_step_failure and event.step_failure_data is not None:
                    line = explain(_error_chain(event.step_failure_data.error))
                    if line and f"step {event.step_key}: {line}" not in lines:
                        lines.append(f"step {event.step_key}: {line}")
                yield event
        except Exception as exc:
            line = explain(chain_of(exc))
            if line is None:
                raise
            raise InfrastructureUnavailable("\n".join([*lines, line])) from exc
        if lines:
            raise InfrastructureUnavailable("\n".join(lines))


@dg.executor(  # type: ignore[call-overload]  # dagster types config_schema narrower than an executor's own schema
    name=celery_executor.name,
    config_schema=celery_executor.config_schema,
    requirements=dg.multiple_process_executor_requirements(),
)
def celery_executor_explained(init_context: dg.InitExecutorContext) -> ExplainingCeleryExecutor:
    """dagster-celery's ``celery_executor`` (same name and configuration), executing with
    :class:`ExplainingCeleryExecutor`."""
    config = init_context.executor_config
    base = celery_executor.executor_creation_fn(init_context)  # type: ignore[misc]
    return ExplainingCeleryExecutor(
        retries=base.retries,
        broker=config.get("broker"),
        backend=config.get("backend"),
        include=config.get("include"),
        config_source=config.get("config_source"),
    )
