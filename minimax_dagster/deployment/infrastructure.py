"""One line per infrastructure failure: which of the deployment's services failed a run, and what to do.

A run of the deployment can fail because PostgreSQL (the Dagster instance), RabbitMQ (the Celery broker) or
Redis (the Celery result backend) was unreachable for longer than the retries that ride out a restart
(``deploy/postgres/dagster.yaml``, the Celery YAML). Their tracebacks name a driver (psycopg2, kombu/amqp,
redis), not the service, and not that the run will be retried. :func:`explain` turns an error (the class
name, message and stack frames of each exception in its chain) into one line that does; it names the
service's address from the deployment's environment, with any password removed. No dagster import here.

>>> frames = ['  File "/venv/lib/python3.11/site-packages/redis/connection.py", line 1, in connect\\n']
>>> print(explain([("ConnectionError", "Error 111 connecting to 127.0.0.1:6380.", frames)],
...               {"DAGSTER_CELERY_BACKEND_URL": "redis://:secret@127.0.0.1:6380/0"}))
Redis (the Celery result backend, redis://***@127.0.0.1:6380/0) was unreachable (ConnectionError: Error 111 connecting to 127.0.0.1:6380). Check that Redis is running and reachable; this run is retried automatically (run_retries in dagster.yaml) and reuses the videos already made.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

#: (exception class name, message, stack frames) of one exception of a chain, innermost last.
ErrorPart = tuple[str, str, Sequence[str]]

#: The service behind each driver, recognised by the driver's package in the stack: (name, environment
#: variable(s) holding its address, what the user does). First match wins, so the most specific comes first.
_SERVICES: tuple[tuple[tuple[str, ...], str, tuple[str, ...], str], ...] = (
    (
        ("/psycopg2/", "/dagster_postgres/", "/sqlalchemy/"),
        "PostgreSQL (the Dagster instance storage, {address})",
        ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT"),
        "Check that PostgreSQL is running and accepts connections (pg_isready)",
    ),
    (
        ("/redis/", "/celery/backends/"),
        "Redis (the Celery result backend, {address})",
        ("DAGSTER_CELERY_BACKEND_URL",),
        "Check that Redis is running and reachable",
    ),
    (
        ("/kombu/", "/amqp/"),
        "RabbitMQ (the Celery broker, {address})",
        ("DAGSTER_CELERY_BROKER_URL",),
        "Check that RabbitMQ is running and reachable (rabbitmq-diagnostics ping)",
    ),
)
_CONNECTION_WORDS = ("connect", "closed", "refused", "reset", "timeout", "timed out", "unreachable", "errno")
_AFTER = "this run is retried automatically (run_retries in dagster.yaml) and reuses the videos already made."


def explain(chain: Iterable[ErrorPart], env: Mapping[str, str] | None = None) -> str | None:
    """The one line for the first connection error in ``chain`` raised inside a service's driver, else None.

    >>> explain([("ValueError", "bad prompt", ['  File "/app/minimax_dagster/assets.py"'])]) is None
    True
    """
    env = os.environ if env is None else env
    for cls_name, message, stack in chain:
        text = f"{cls_name} {message}".lower()
        if not any(word in text for word in _CONNECTION_WORDS):
            continue
        # The message too: dagster-celery folds a worker's error, traceback included, into its own message.
        frames = "".join(stack) + message
        for packages, service, variables, action in _SERVICES:
            if any(package in frames for package in packages):
                address = ":".join(redact(env.get(v, "?")) for v in variables)
                first = message.strip().splitlines()[0] if message.strip() else ""
                return f"{service.format(address=address)} was unreachable ({cls_name}: {first.rstrip('.')}). {action}; {_AFTER}"
    return None


def redact(url: str) -> str:
    """``url`` without its credentials.

    >>> redact("pyamqp://guest:guest@127.0.0.1:5672//")
    'pyamqp://***@127.0.0.1:5672//'
    """
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"


class InfrastructureUnavailable(RuntimeError):
    """A run failed because a service of the deployment was unreachable; the message has one line per failure
    (:func:`explain`)."""


def chain_of(exc: BaseException) -> list[ErrorPart]:
    """``exc`` and the exceptions it was raised from or during (``__cause__``, ``__context__``), as
    :data:`ErrorPart` s, outermost first.

    >>> try:
    ...     try:
    ...         raise OSError("[Errno 111] Connection refused")
    ...     except OSError as inner:
    ...         raise RuntimeError("publish failed") from inner
    ... except RuntimeError as outer:
    ...     [(name, message) for name, message, _ in chain_of(outer)]
    [('RuntimeError', 'publish failed'), ('OSError', '[Errno 111] Connection refused')]
    """
    import traceback

    out: list[ErrorPart] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(out) < 20:
        seen.add(id(current))
        out.append((type(current).__name__, str(current), traceback.format_tb(current.__traceback__)))
        current = current.__cause__ or current.__context__
    return out
