"""The Celery app of the deployment's workers: dagster-celery's own app, with the code location imported first.

Start the workers with ``-A minimax_dagster.deployment.celery_app`` instead of ``-A dagster_celery.app``::

    dagster-celery worker start -A minimax_dagster.deployment.celery_app \\
        -y "$(python -m minimax_dagster.deployment --celery-config)" -q minimax -n w1 \\
        -- --concurrency=2 --without-gossip --without-mingle

The app, its broker settings and its tasks are dagster-celery's (``app``, ``execute_plan``, ``execute_job``,
``resume_job``, re-exported unchanged). The only difference: :mod:`minimax_dagster.deployment.definitions` is
imported here, in the worker's main process, before Celery forks the pool's processes. With
``-A dagster_celery.app`` every pool process imports the code location inside its first step (0.7 s on the
benchmark machine, with dagster already loaded), and at the start of a backfill those imports sit on the way to
the first paid create: the first prompts step and the first video step each wait for one. Importing the code
location makes no network call and starts no thread (the definitions only describe resources), so forking after
it is safe.

A code location that cannot be imported (a missing extra, a broken module) now stops the worker at its start,
with the traceback in the worker's log, instead of failing every step the worker takes.

>>> from minimax_dagster.deployment import celery_app
>>> sorted(name for name in celery_app.app.tasks if not name.startswith("celery."))
['execute_job', 'execute_plan', 'resume_job']
"""

from dagster_celery.app import app, execute_job, execute_plan, resume_job

import minimax_dagster.deployment.definitions  # noqa: F401  (loaded before the pool forks; see the module)

__all__ = ["app", "execute_job", "execute_plan", "resume_job"]
