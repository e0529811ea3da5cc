"""``MiniMaxResource``: the Dagster resource wrapping the agent-create client.

Stateless, like dagster-aws's ``S3Resource``: its fields are configuration only, and clients are built on demand
inside the step, so it is safe in every process of a multiprocess, Celery or Kubernetes executor. Loading
definitions makes no network call.

>>> import dagster as dg
>>> resource = MiniMaxResource(api_token="t0k3n", base_url="http://127.0.0.1:8765/v1/minimax")
>>> "t0k3n" in repr(resource)
False

In definitions, the token comes from the environment when the step runs:

>>> MiniMaxResource(api_token=dg.EnvVar("USEAPI_TOKEN")).default_max_jobs
1
"""

import logging
from typing import Any

import boto3
import dagster as dg
from botocore import UNSIGNED
from botocore.config import Config
from dagster_aws.s3 import S3Resource
from pydantic import Field, field_validator

from minimax_dagster.api.client import DEFAULT_BASE_URL, MiniMaxClient
from minimax_dagster.api.errors import MiniMaxError
from minimax_dagster.api.limits import ReadLimits
from minimax_dagster.api.models import CapacityByAccount, video_capacity
from minimax_dagster.api.reconcile import ReconcilePolicy
from minimax_dagster.budget import Budget
from minimax_dagster.production import ProducerSettings
from minimax_dagster.storage import DownloadPolicy, s3_client_config

#: The real service's CDN hosts (https only). The simulator's plain-http origin is added by configuration.
DEFAULT_DOWNLOAD_HOSTS = [
    "hailuoai.video",
    "*.hailuoai.video",
    "*.minimax.io",
    "*.minimaxi.com",
    "*.useapi.net",
]


def _read_limits(overrides: dict[str, float]) -> ReadLimits:
    """The client's :class:`~minimax_dagster.api.limits.ReadLimits` with ``overrides`` (the resource's
    ``read_limits``); a name it does not know, or a value under its floor, is refused naming it.

    >>> _read_limits({"max_json_bytes": 4096}).max_json_bytes
    4096
    >>> _read_limits({"max_json": 4096})
    Traceback (most recent call last):
    ...
    ValueError: read_limits: unknown cap 'max_json'; the caps are body_seconds, max_error_body_bytes, max_json_bytes, max_sse_event_chars, max_sse_line_chars
    """
    known = set(ReadLimits.__dataclass_fields__)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"read_limits: unknown cap {unknown[0]!r}; the caps are {', '.join(sorted(known))}")
    values = {name: value if name == "body_seconds" else int(value) for name, value in overrides.items()}
    return ReadLimits(**values)  # type: ignore[arg-type]


class AccountConfig(dg.Config):
    """A MiniMax account and how many jobs it may run at once.

    >>> AccountConfig(account="1234567", max_jobs=3).max_jobs
    3
    """

    account: str = Field(description="The MiniMax account id, as configured on useapi.net.")
    max_jobs: int = Field(default=1, ge=1, le=10, description="Concurrent jobs on this account (1-10).")


class MiniMaxResource(dg.ConfigurableResource):
    """Access to the useapi.net MiniMax API for video assets.

    ``api_token`` is a secret: pass it as ``dg.EnvVar("USEAPI_TOKEN")`` so it is resolved in the step and shown
    nowhere (it is excluded from the repr and marked secret in the UI).

    >>> r = MiniMaxResource(api_token="x", accounts=[AccountConfig(account="a", max_jobs=2)])
    >>> r.capacity_by_account()
    {'a': 2}
    """

    api_token: str = Field(
        repr=False,
        json_schema_extra={"is_secret": True},
        description="useapi.net API token. Use EnvVar('USEAPI_TOKEN'); never hard-code it.",
    )
    base_url: str = Field(
        default=DEFAULT_BASE_URL, description="API root, e.g. https://api.useapi.net/v1/minimax."
    )
    accounts: list[AccountConfig] = Field(
        default_factory=list,
        description="Accounts to spread jobs over, with max_jobs each. Empty: ask GET accounts at run time.",
    )
    default_max_jobs: int = Field(
        default=1,
        ge=1,
        le=100,
        description="Concurrency when accounts are neither configured nor listed by the API.",
    )
    connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to open a connection to the API.")
    read_timeout: float = Field(
        default=45.0,
        gt=0,
        description="Seconds without a byte before a request or event stream counts as stalled (heartbeats ~10 s).",
    )
    max_retries: int = Field(
        default=5, ge=0, description="Retries of 429/502/503/504/connect errors before a stream."
    )
    backoff_factor: float = Field(
        default=2.0, ge=0, description="Exponential backoff factor between retries (s)."
    )
    backoff_max: float = Field(default=30.0, ge=0, description="Longest single wait between retries (s).")
    capacity_wait: float = Field(
        default=30.0,
        ge=0,
        description="Seconds to wait (the account's slot held) before creating again after a 429 without "
        "Retry-After, or a 502/503/504 that outlasted the retries above.",
    )
    download_backoff: float = Field(
        default=2.0,
        ge=0,
        description="First wait (s) between attempts at storing a paid video; doubles with each attempt.",
    )
    retry_total_seconds: float = Field(
        default=300.0, gt=0, description="Most seconds spent retrying one request."
    )
    poll_interval: float = Field(
        default=30.0,
        gt=0,
        description="Seconds between GET videos/{id} polls when recovering or reattaching.",
    )
    generation_deadline: float = Field(
        default=20 * 60.0,
        gt=0,
        description="Wall-clock seconds one video may take (the API says up to 15 min).",
    )
    reconcile_settle_seconds: float = Field(
        default=20.0,
        ge=0,
        description=(
            "After a create answered 502/503/504 (or whose answer was lost), seconds to wait before looking for "
            "the job it may have made (GET videos/, GET scheduler/available); it is never re-sent before that."
        ),
    )
    allowed_download_hosts: list[str] = Field(
        default_factory=lambda: list(DEFAULT_DOWNLOAD_HOSTS),
        description=(
            "Hosts videos may be downloaded from: hostnames or *.suffix (https only), or an explicit origin "
            "such as http://127.0.0.1:8765 to allow plain http to exactly that origin (the simulator)."
        ),
    )
    max_download_bytes: int = Field(
        default=8 * 1024**3, gt=0, description="Largest video accepted, in bytes."
    )
    download_read_timeout: float = Field(
        default=60.0, gt=0, description="Seconds a CDN download may stay silent."
    )
    store_concurrency: int = Field(
        default=0,
        ge=0,
        description=(
            "At most this many finished videos are downloaded and stored at once per step (0: no limit). A "
            "limit bounds memory and connections when many videos finish together; a worker waiting to store "
            "does not take the next prompt meanwhile."
        ),
    )

    read_limits: dict[str, float] = Field(
        default={},
        description=(
            "Overrides of the client's caps on what it reads of one answer, against a broken or hostile upstream "
            "(minimax_dagster.api.ReadLimits: max_sse_line_chars, max_sse_event_chars, max_error_body_bytes, "
            "max_json_bytes, body_seconds), e.g. {max_json_bytes: 33554432}. Empty: the defaults."
        ),
    )

    @field_validator("read_limits")
    @classmethod
    def _known_read_limits(cls, value: dict[str, float]) -> dict[str, float]:
        _read_limits(value)
        return value

    budget: Budget | None = Field(
        default=None,
        description=(
            "The most new paid videos (and/or credits) per day/week/month for every asset using this resource, "
            "held across runs and processes by ledgers in S3, e.g. {new_videos: 300, per: day}."
        ),
    )

    def get_client(self) -> MiniMaxClient:
        """A new client (own connection pool); use it as a context manager. Building it makes no call.

        >>> with MiniMaxResource(api_token="x", base_url="http://127.0.0.1:9/v1/minimax").get_client() as client:
        ...     client.base_url
        'http://127.0.0.1:9/v1/minimax'
        """
        return MiniMaxClient(
            self.api_token,
            base_url=self.base_url,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_retries=self.max_retries,
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max,
            retry_total_seconds=self.retry_total_seconds,
            poll_interval=self.poll_interval,
            generation_deadline=self.generation_deadline,
            accounts=[a.account for a in self.accounts] or None,
            reconcile=ReconcilePolicy(settle_seconds=self.reconcile_settle_seconds),
            limits=_read_limits(self.read_limits),
        )

    def download_policy(self) -> DownloadPolicy:
        """The policy every video and poster download goes through.

        >>> MiniMaxResource(api_token="x", allowed_download_hosts=["cdn.example.com"]).download_policy().allowed_hosts
        ('cdn.example.com',)
        """
        return DownloadPolicy(
            allowed_hosts=tuple(self.allowed_download_hosts),
            max_bytes=self.max_download_bytes,
            connect_timeout=self.connect_timeout,
            read_timeout=self.download_read_timeout,
        )

    def producer_settings(
        self,
        *,
        bucket: str,
        prefix: str,
        accounts: dict[str, int] | None = None,
        regenerate_failed: bool = False,
        asset_name: str | None = None,
        generation_hint: float | None = None,
    ) -> ProducerSettings:
        """The producer's settings for one run: where videos go (``bucket``/``prefix``), the accounts' capacity
        found at run time (``accounts``, see :meth:`capacity_by_account`), how long generations took lately
        (``generation_hint``, seconds; paces the looks at accounts full in S3) and this resource's limits.

        The waits after the client's own retries have fields of their own: ``capacity_wait`` before creating
        again after a 429/5xx that outlasted them, ``download_backoff`` between attempts at storing a paid video.

        >>> settings = MiniMaxResource(api_token="x", default_max_jobs=3).producer_settings(bucket="b", prefix="p")
        >>> settings.capacity, settings.capacity_wait, settings.policy.allowed_hosts[0]
        (3, 30.0, 'hailuoai.video')
        >>> tuned = MiniMaxResource(api_token="x", backoff_max=99, capacity_wait=4, download_backoff=0.5)
        >>> settings = tuned.producer_settings(bucket="b", prefix="p")
        >>> settings.capacity_wait, settings.download_backoff
        (4.0, 0.5)
        """
        return ProducerSettings(
            bucket=bucket,
            prefix=prefix,
            policy=self.download_policy(),
            accounts=dict(accounts or {}),
            default_capacity=self.default_max_jobs,
            generation_deadline=self.generation_deadline,
            capacity_wait=self.capacity_wait,
            download_backoff=self.download_backoff,
            regenerate_failed=regenerate_failed,
            asset_name=asset_name,
            store_concurrency=self.store_concurrency,
            generation_hint=generation_hint,
        )

    def capacity_by_account(self, client: MiniMaxClient | None = None) -> CapacityByAccount:
        """Concurrent jobs per account: the configured accounts, else (with a client) the video accounts GET
        accounts lists; empty when unknown.

        Discovery keeps only accounts with ``supportVideo`` and no ``error``, as useapi's own client does. The
        result is a ``dict`` (account -> jobs) whose ``skipped`` maps every other listed account to the reason,
        ``source`` says where the numbers come from and ``problem`` why the accounts could not be listed;
        ``describe()`` puts it all in one line. Skipped accounts and a failed listing are logged as warnings.

        >>> r = MiniMaxResource(api_token="x", accounts=[AccountConfig(account="a", max_jobs=2)])
        >>> capacity = r.capacity_by_account()
        >>> (capacity, capacity.source, capacity.skipped)
        ({'a': 2}, 'configured', {})
        """
        if self.accounts:
            return CapacityByAccount({a.account: a.max_jobs for a in self.accounts}, source="configured")
        if client is None:
            return CapacityByAccount(source="unknown", problem="no client to ask GET accounts")
        log = logging.getLogger("minimax_dagster.resources.minimax")
        try:
            listed = client.get_accounts()
        except (MiniMaxError, ValueError) as exc:
            log.warning("cannot list the accounts (GET accounts: %s)", exc)
            return CapacityByAccount(source="unknown", problem=f"GET accounts failed: {exc}")
        capacity = video_capacity(listed)
        if capacity.skipped:
            log.warning("accounts not used for videos: %s", capacity.describe())
        return capacity


def s3_client_from_resource(s3: Any) -> Any:
    """A boto3 S3 client for whatever ``context.resources.<s3 key>`` holds.

    dagster-aws's ``S3Resource`` puts a ready boto3 client on the context; it is used as it is. Given the
    resource object itself (or any ``ResourceWithS3Configuration``), a client is built from its settings with
    the checksum settings S3-compatible servers need (``storage.s3_client_config``); ``endpoint_url``, region,
    profile and credentials are honoured exactly as ``S3Resource.get_client`` does.

    >>> from dagster_aws.s3 import S3Resource
    >>> client = s3_client_from_resource(S3Resource(region_name="us-east-1", endpoint_url="http://127.0.0.1:9"))
    >>> client.meta.endpoint_url
    'http://127.0.0.1:9'
    >>> s3_client_from_resource(client) is client
    True
    """
    if hasattr(s3, "meta") and hasattr(s3, "head_object"):
        return s3
    session = boto3.session.Session(profile_name=getattr(s3, "profile_name", None))
    config = s3_client_config(max_attempts=getattr(s3, "max_attempts", 5) or 5)
    if getattr(s3, "use_unsigned_session", False):
        config = config.merge(Config(signature_version=UNSIGNED))
    return session.client(
        "s3",
        region_name=getattr(s3, "region_name", None),
        endpoint_url=getattr(s3, "endpoint_url", None),
        use_ssl=getattr(s3, "use_ssl", True),
        verify=getattr(s3, "verify", None),
        aws_access_key_id=getattr(s3, "aws_access_key_id", None),
        aws_secret_access_key=getattr(s3, "aws_secret_access_key", None),
        aws_session_token=getattr(s3, "aws_session_token", None),
        config=config,
    )


class MiniMaxS3Resource(S3Resource):
    """dagster-aws ``S3Resource`` with two fixes for video pipelines; an ``S3Resource`` in every other way.

    * ``get_client()`` (and so ``context.resources.s3``) builds the client with the checksum settings that
      S3-compatible servers (MinIO, Ceph, R2, moto) need since botocore 1.36.
    * The secret fields stay out of its repr (the stock resource prints them).

    >>> r = MiniMaxS3Resource(aws_access_key_id="AKIA", aws_secret_access_key="s3cr3t")
    >>> "s3cr3t" in repr(r)
    False
    """

    aws_secret_access_key: str | None = Field(
        default=None,
        repr=False,
        json_schema_extra={"is_secret": True},
        description="AWS secret access key; pass it as EnvVar, never inline.",
    )
    aws_session_token: str | None = Field(
        default=None,
        repr=False,
        json_schema_extra={"is_secret": True},
        description="AWS session token; pass it as EnvVar, never inline.",
    )

    def get_client(self) -> Any:
        """A boto3 S3 client with this resource's settings and the S3-compatible checksum settings."""
        return s3_client_from_resource(self)
