"""The production deployment: the video pipeline on Dagster's PostgreSQL storage, a run queue and Celery workers.

* :mod:`minimax_dagster.deployment.definitions`: the prompt-dataset pipeline with one run per partition and
  the ``celery_executor`` (what the code server, the run workers and the Celery workers load), configured from
  the environment (:class:`~minimax_dagster.code_location.environment.EnvSettings`). It never imports the demo.
* :mod:`minimax_dagster.deployment.celery_app`: the workers' ``-A``: dagster-celery's app and tasks, with the
  definitions imported before Celery forks the step processes (no step pays the import).
* ``celery_config.yaml`` (package data): the Celery settings read both by the workers (``-y``) and by the
  executor; ``python -m minimax_dagster.deployment --celery-config`` prints its path.

The instance settings are in the repository's ``deploy/postgres/dagster.yaml``, the workspace that names the one
code server (``dagster api grpc``) in ``deploy/postgres/workspace.yaml``. The extras ``celery`` and
``postgres`` install what it needs. A whole local deployment for one session (services, a fresh database, N
workers, the daemon) is started by the repository's tooling, ``python -m benchmarks.scale``.

>>> from minimax_dagster.deployment.definitions import JOB_NAME
>>> JOB_NAME
'scale_videos_job'
"""
