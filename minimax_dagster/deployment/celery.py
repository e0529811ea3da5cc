"""The Celery settings shared by the workers and the executor: one YAML, so they can never disagree.

The file is ``MINIMAX_CELERY_CONFIG`` when set, else the ``celery_config.yaml`` shipped in this package (package
data, found through ``importlib.resources``; ``python -m minimax_dagster.deployment --celery-config`` prints its
path for the workers' ``-y``). This module imports neither dagster nor Celery.

>>> celery_executor_config({})["config_source"]["task_acks_late"]
True
"""

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

CELERY_CONFIG_RESOURCE = "celery_config.yaml"


def celery_config_path() -> Path:
    """The Celery YAML shipped in this package (what the workers' ``-y`` takes when nothing else is set).

    >>> celery_config_path().name
    'celery_config.yaml'
    """
    return Path(str(resources.files(__package__ or "minimax_dagster.deployment") / CELERY_CONFIG_RESOURCE))


def celery_executor_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``execution.config`` block of the Celery YAML (``MINIMAX_CELERY_CONFIG``, default
    :func:`celery_config_path`), with the queue of ``MINIMAX_CELERY_QUEUE``.

    >>> config = celery_executor_config({"MINIMAX_CELERY_QUEUE": "q1"})
    >>> config["config_source"]["task_default_queue"], config["broker"]
    ('q1', {'env': 'DAGSTER_CELERY_BROKER_URL'})
    """
    env = os.environ if env is None else env
    path = Path(env.get("MINIMAX_CELERY_CONFIG") or celery_config_path())
    config = dict((yaml.safe_load(path.read_text()) or {}).get("execution", {}).get("config", {}))
    source = dict(config.get("config_source") or {})
    source["task_default_queue"] = env.get("MINIMAX_CELERY_QUEUE") or source.get(
        "task_default_queue", "dagster"
    )
    config["config_source"] = source
    return config
