"""Running the video pipeline at scale: Dagster on PostgreSQL, steps on Celery workers, a queued backfill.

* :mod:`minimax_dagster.scale.definitions`: the demo's dataset pipeline with one run per partition and the
  ``celery_executor`` (what the code server, the run workers and the Celery workers load).
* :mod:`minimax_dagster.scale.cluster`: :class:`~minimax_dagster.scale.cluster.ScaleCluster`, a whole local
  deployment for one session (services, a fresh PostgreSQL database, N workers, the daemon).
* ``python -m minimax_dagster.scale --workers 2 --prompts 40``: starts it, backfills, prints which worker
  produced which partition and how close the wall time came to the capacity-bound ideal.

The instance and worker settings are in ``deploy/postgres/dagster.yaml`` and ``deploy/celery_config.yaml``.
"""
