"""The services a local production deployment needs besides the embedded ones: PostgreSQL, RabbitMQ, Redis.

>>> ServiceSettings.from_env({"DAGSTER_PG_PORT": "5433"}).pg_port
5433
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from minimax_dagster.deployment.infrastructure import redact


class ServiceUnavailable(RuntimeError):
    """A service the deployment needs (PostgreSQL, RabbitMQ, Redis) cannot be reached; the message names it."""


@dataclass(frozen=True)
class ServiceSettings:
    """Where PostgreSQL, RabbitMQ and Redis are (defaults: the local services on their standard ports).

    Variables: ``DAGSTER_PG_HOST`` / ``_PORT`` / ``_USERNAME`` / ``_PASSWORD``, ``DAGSTER_PG_ADMIN_DB`` (the
    database to connect to for creating the session's one, default ``test``), ``DAGSTER_CELERY_BROKER_URL``,
    ``DAGSTER_CELERY_BACKEND_URL``.

    >>> ServiceSettings.from_env({}).broker_url
    'pyamqp://guest:guest@127.0.0.1:5672//'
    """

    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_user: str = "postgres"
    pg_password: str = ""
    pg_admin_db: str = "test"
    broker_url: str = "pyamqp://guest:guest@127.0.0.1:5672//"
    backend_url: str = "redis://127.0.0.1:6379/0"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceSettings:
        """Read the settings from ``env`` (default ``os.environ``)."""
        env = os.environ if env is None else env
        return cls(
            pg_host=env.get("DAGSTER_PG_HOST", cls.pg_host),
            pg_port=int(env.get("DAGSTER_PG_PORT", cls.pg_port)),
            pg_user=env.get("DAGSTER_PG_USERNAME", cls.pg_user),
            pg_password=env.get("DAGSTER_PG_PASSWORD", cls.pg_password),
            pg_admin_db=env.get("DAGSTER_PG_ADMIN_DB", cls.pg_admin_db),
            broker_url=env.get("DAGSTER_CELERY_BROKER_URL", cls.broker_url),
            backend_url=env.get("DAGSTER_CELERY_BACKEND_URL", cls.backend_url),
        )

    def _pg_connect(self, db: str) -> Any:
        import psycopg2

        return psycopg2.connect(
            host=self.pg_host,
            port=self.pg_port,
            user=self.pg_user,
            password=self.pg_password or None,
            dbname=db,
            connect_timeout=5,
        )

    def check(self) -> None:
        """Raise :class:`ServiceUnavailable` naming the first service that cannot be reached."""
        try:
            self._pg_connect(self.pg_admin_db).close()
        except Exception as exc:
            raise ServiceUnavailable(
                f"PostgreSQL is not reachable at {self.pg_host}:{self.pg_port} (user {self.pg_user}, "
                f"database {self.pg_admin_db}): {str(exc).strip()}"
            ) from None
        from kombu import Connection

        try:
            with Connection(self.broker_url, connect_timeout=5) as conn:
                conn.ensure_connection(max_retries=1)
        except Exception as exc:
            raise ServiceUnavailable(
                f"RabbitMQ (the Celery broker) is not reachable at {redact(self.broker_url)}: {exc}"
            ) from None
        if self.backend_url.startswith("redis"):
            import redis

            try:
                redis.Redis.from_url(self.backend_url, socket_connect_timeout=5).ping()
            except Exception as exc:
                raise ServiceUnavailable(
                    f"Redis (the Celery result backend) is not reachable at {redact(self.backend_url)}: {exc}"
                ) from None

    @contextlib.contextmanager
    def fresh_database(self) -> Iterator[str]:
        """A new, empty database ``mmd_<random>`` for one session; dropped (connections closed) afterwards."""
        name = f"mmd_{secrets.token_hex(6)}"
        conn = self._pg_connect(self.pg_admin_db)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
            yield name
        finally:
            with contextlib.suppress(Exception), conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.close()
