"""The Celery app of the deployment's workers: dagster-celery's own app, with the code location imported first.

Start the workers with ``-A minimax_dagster.deployment.celery_app`` instead of ``-A dagster_celery.app``::

    dagster-celery worker start -A minimax_dagster.deployment.celery_app \\
        -y "$(python -m minimax_dagster.deployment --celery-config)" -q minimax -n w1 \\
        -- --concurrency=2 --without-gossip --without-mingle

The app, its broker settings and its tasks are dagster-celery's (``app``, ``execute_plan``, ``execute_job``,
``resume_job``, re-exported unchanged). What differs: :mod:`minimax_dagster.deployment.definitions` is
imported here, in the worker's main process, before Celery forks the pool's processes. With
``-A dagster_celery.app`` every pool process imports the code location inside its first step (0.7 s on the
benchmark machine, with dagster already loaded), and at the start of a backfill those imports sit on the way to
the first paid create: the first prompts step and the first video step each wait for one. Importing the code
location makes no network call and starts no thread (the definitions only describe resources), so forking after
it is safe.

When the worker starts (Celery's ``worker_init``, in the main process, before the pool forks) it also warms
what each pool process would otherwise pay for in its first step, and then freezes the garbage collector:

* one S3 client is built and thrown away (dummy keys, no request, so no credential look-up and no network call):
  botocore's first client in a process imports its lazy modules and fills its caches, 0.2 s of CPU that every
  forked process paid again in its first step (0.06 s per client after it; measured on the benchmark machine),
  before its first paid create;
* ``gc.freeze()`` (the interpreter's advice for processes that fork without exec): the objects loaded so far
  are left out of the pool processes' collections, so a collection no longer walks (and copies, page by page)
  the 200,000 objects of dagster and the code location, about 0.13 s each time it runs a full one.

A code location that cannot be imported (a missing extra, a broken module) now stops the worker at its start,
with the traceback in the worker's log, instead of failing every step the worker takes.

>>> from minimax_dagster.deployment import celery_app
>>> sorted(name for name in celery_app.app.tasks if not name.startswith("celery."))
['execute_job', 'execute_plan', 'resume_job']
"""

import gc
from typing import Any

import boto3
from celery.signals import worker_init  # type: ignore[import-untyped]
from dagster_celery.app import app, execute_job, execute_plan, resume_job

import minimax_dagster.deployment.definitions  # noqa: F401  (loaded before the pool forks; see the module)
from minimax_dagster.storage import s3_client_config

__all__ = ["app", "execute_job", "execute_plan", "resume_job", "warm_up_before_fork"]


def warm_up_before_fork(**_: Any) -> None:
    """Build (and drop) one S3 client, then freeze the collector: what the pool processes forked after this
    inherit instead of paying for in their first step (see the module). Connected to Celery's ``worker_init``.

    >>> import gc
    >>> warm_up_before_fork(); gc.get_freeze_count() > 0
    True
    >>> gc.unfreeze()
    """
    # Dummy keys: a client built without keys would look credentials up (the instance metadata service among
    # them, a network call) at its construction. The client makes no request and is not kept.
    boto3.session.Session().client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="warm-up",
        aws_secret_access_key="warm-up",
        config=s3_client_config(),
    )
    gc.freeze()


worker_init.connect(warm_up_before_fork, weak=False)
