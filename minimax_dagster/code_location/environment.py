"""Where a code location's services are, read from environment variables (no network call: safe at load time).

Both the demo (:mod:`minimax_dagster.demo.definitions`) and the production deployment
(:mod:`minimax_dagster.deployment.definitions`) are configured this way, so one environment serves either.

>>> settings = EnvSettings.from_env({"MINIMAX_BUCKET": "b", "MINIMAX_ACCOUNTS": "100001:5,100002"})
>>> settings.bucket, settings.accounts
('b', {'100001': 5, '100002': 1})
>>> settings.datasets_prefix
'minimax/datasets/'
>>> EnvSettings.from_env({"MINIMAX_BUDGET": "300/day"}).minimax_resource().budget.new_videos
300
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import dagster as dg

from minimax_dagster.api.client import DEFAULT_BASE_URL
from minimax_dagster.budget import Budget, budget_from_env
from minimax_dagster.resources.minimax import (
    DEFAULT_DOWNLOAD_HOSTS,
    AccountConfig,
    MiniMaxResource,
    MiniMaxS3Resource,
)


@dataclass(frozen=True)
class EnvSettings:
    """What a code location needs to know about its environment.

    Variables: ``MINIMAX_BASE_URL``, ``MINIMAX_BUCKET``, ``MINIMAX_PREFIX``, ``MINIMAX_S3_ENDPOINT_URL``,
    ``AWS_REGION``, ``MINIMAX_ALLOWED_DOWNLOAD_HOSTS`` (comma-separated), ``MINIMAX_ACCOUNTS``
    (``account:max_jobs,...``), ``MINIMAX_POLL_INTERVAL``, ``MINIMAX_READ_TIMEOUT``, ``MINIMAX_BUDGET``
    (``300/day,5000/month``; ``MINIMAX_BUDGET_TIMEZONE`` and more, see
    :func:`~minimax_dagster.budget.budget_from_env`). The token is read by the
    resource itself from ``USEAPI_TOKEN`` through ``EnvVar``; S3 credentials come from boto3's usual chain
    (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, profiles, instance roles).

    >>> EnvSettings().base_url
    'https://api.useapi.net/v1/minimax'
    """

    base_url: str = DEFAULT_BASE_URL
    bucket: str = "minimax-videos"
    prefix: str = "minimax"
    s3_endpoint_url: str | None = None
    region: str = "us-east-1"
    allowed_download_hosts: tuple[str, ...] = tuple(DEFAULT_DOWNLOAD_HOSTS)
    accounts: dict[str, int] = field(default_factory=dict)
    poll_interval: float = 30.0
    read_timeout: float = 45.0
    budget: Budget | None = None

    @property
    def datasets_prefix(self) -> str:
        """Where prompt datasets live: ``<prefix>/datasets/`` (``datasets/`` without a prefix).

        >>> EnvSettings(prefix="").datasets_prefix
        'datasets/'
        """
        return f"{self.prefix}/datasets/" if self.prefix else "datasets/"

    def minimax_resource(self) -> MiniMaxResource:
        """The MiniMax resource of these settings; the token stays ``EnvVar("USEAPI_TOKEN")``, read in the step.

        >>> EnvSettings(accounts={"100001": 2}).minimax_resource().capacity_by_account()
        {'100001': 2}
        """
        return MiniMaxResource(
            api_token=dg.EnvVar("USEAPI_TOKEN"),
            base_url=self.base_url,
            accounts=[AccountConfig(account=a, max_jobs=n) for a, n in self.accounts.items()],
            allowed_download_hosts=list(self.allowed_download_hosts),
            poll_interval=self.poll_interval,
            read_timeout=self.read_timeout,
            budget=self.budget,
        )

    def s3_resource(self) -> MiniMaxS3Resource:
        """The S3 resource of these settings (credentials from boto3's usual chain).

        >>> EnvSettings(s3_endpoint_url="http://127.0.0.1:9000").s3_resource().endpoint_url
        'http://127.0.0.1:9000'
        """
        return MiniMaxS3Resource(endpoint_url=self.s3_endpoint_url, region_name=self.region)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "EnvSettings":
        """Read the settings from ``env`` (default ``os.environ``).

        >>> EnvSettings.from_env({"MINIMAX_ALLOWED_DOWNLOAD_HOSTS": "http://127.0.0.1:1"}).allowed_download_hosts[-1]
        'http://127.0.0.1:1'
        """
        env = os.environ if env is None else env
        hosts = tuple(
            h.strip() for h in env.get("MINIMAX_ALLOWED_DOWNLOAD_HOSTS", "").split(",") if h.strip()
        )
        accounts: dict[str, int] = {}
        for item in env.get("MINIMAX_ACCOUNTS", "").split(","):
            name, _, jobs = item.strip().partition(":")
            if name:
                accounts[name] = int(jobs or 1)
        return cls(
            base_url=env.get("MINIMAX_BASE_URL", DEFAULT_BASE_URL),
            bucket=env.get("MINIMAX_BUCKET", cls.bucket),
            prefix=env.get("MINIMAX_PREFIX", cls.prefix),
            s3_endpoint_url=env.get("MINIMAX_S3_ENDPOINT_URL") or None,
            region=env.get("AWS_REGION", cls.region),
            allowed_download_hosts=(*DEFAULT_DOWNLOAD_HOSTS, *hosts),
            accounts=accounts,
            poll_interval=float(env.get("MINIMAX_POLL_INTERVAL", cls.poll_interval)),
            read_timeout=float(env.get("MINIMAX_READ_TIMEOUT", cls.read_timeout)),
            budget=budget_from_env(env),
        )
