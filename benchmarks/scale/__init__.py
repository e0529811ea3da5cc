"""A whole local production deployment for one session, and the command that backfills it at scale.

This is repository tooling (tests and benchmarks), not part of the installed package; the deployment itself is
:mod:`minimax_dagster.deployment`.

* :mod:`benchmarks.scale.cluster`: :class:`ScaleCluster`, the embedded services, a fresh PostgreSQL database,
  N Celery workers and the daemon;
* :mod:`benchmarks.scale.services`: where PostgreSQL, RabbitMQ and Redis are (:class:`ServiceSettings`);
* :mod:`benchmarks.scale.report`: what a backfill did (:class:`BackfillReport`);
* ``python -m benchmarks.scale --workers 2 --prompts 40``: starts it, backfills, prints which worker produced
  which partition and how close the wall time came to the capacity-bound ideal.

>>> sorted(batches_of(3, 2))
['b000', 'b001']
"""

from benchmarks.scale.cluster import ScaleCluster
from benchmarks.scale.report import BackfillReport, StepExecution, batches_of
from benchmarks.scale.services import ServiceSettings, ServiceUnavailable

__all__ = [
    "BackfillReport",
    "ScaleCluster",
    "ServiceSettings",
    "ServiceUnavailable",
    "StepExecution",
    "batches_of",
]
