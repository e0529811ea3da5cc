"""Each driver's real connection error (a closed port, over a real socket) becomes one line naming the service.

The errors are the ones the drivers raise against a port where nothing listens: psycopg2 (PostgreSQL, the
Dagster instance), redis (the Celery result backend) and kombu (RabbitMQ, the Celery broker).
"""

from __future__ import annotations

import pytest

from benchmarks._common import free_port
from minimax_dagster.deployment.infrastructure import chain_of, explain


def _raised(action: object) -> BaseException:
    with pytest.raises(Exception) as caught:
        action()  # type: ignore[operator]
    return caught.value


def test_postgresql_unreachable_names_postgresql_and_the_address() -> None:
    import psycopg2

    port = free_port()
    exc = _raised(
        lambda: psycopg2.connect(host="127.0.0.1", port=port, user="u", dbname="d", connect_timeout=2)
    )
    line = explain(chain_of(exc), {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": str(port)})
    assert line is not None and line.startswith(
        f"PostgreSQL (the Dagster instance storage, 127.0.0.1:{port})"
    )
    assert "pg_isready" in line and "retried automatically" in line and "\n" not in line


def test_redis_unreachable_names_redis_without_its_password() -> None:
    import redis

    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    exc = _raised(lambda: redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    line = explain(chain_of(exc), {"DAGSTER_CELERY_BACKEND_URL": url})
    assert line is not None and line.startswith("Redis (the Celery result backend, redis://***@127.0.0.1:")
    assert "hunter2" not in line


def test_rabbitmq_unreachable_names_rabbitmq_without_its_password() -> None:
    from kombu import Connection

    url = f"pyamqp://guest:s3cret@127.0.0.1:{free_port()}//"

    def connect() -> None:
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)

    line = explain(chain_of(_raised(connect)), {"DAGSTER_CELERY_BROKER_URL": url})
    assert line is not None and line.startswith("RabbitMQ (the Celery broker, pyamqp://***@127.0.0.1:")
    assert "s3cret" not in line


def test_an_error_that_is_not_a_connection_error_is_left_alone() -> None:
    exc = _raised(lambda: int("not a number"))
    assert explain(chain_of(exc), {}) is None
