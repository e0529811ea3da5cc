"""``ProducerSettings``: where the producer puts videos and how it generates them.

>>> from minimax_dagster.storage import DownloadPolicy
>>> settings = ProducerSettings(bucket="b", prefix="p", policy=DownloadPolicy(allowed_hosts=("x.com",)))
>>> settings.capacity, settings.slots
(1, 'p/_slots')
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minimax_dagster.storage import DownloadPolicy, normalize_prefix

#: Images given by URL or S3 object are read into memory before upload; they are small, but bounded all the same.
MAX_IMAGE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class ProducerSettings:
    """Where videos go and how generation behaves.

    ``accounts`` maps account ids to their maxJobs; empty means "let the API choose", with ``default_capacity``
    concurrent jobs. ``claim_ttl``: seconds a claim (of a video key or an account slot) outlives its last
    renewal (holders renew a claim once it is ``claim_ttl / 4`` old); ``claim_poll``: seconds between looks
    while another process holds what we need. ``shared_capacity``: lease account slots in S3 under ``slots_prefix``
    (default ``<prefix>/_slots``) so that every process sharing the accounts stays within their maxJobs.
    ``capacity_wait``: seconds to wait before creating again after a 429 without Retry-After, or a 502/503/504,
    that outlasted the client's own retries. ``download_attempts`` / ``download_backoff``: how often (and after
    how many seconds, doubling) storing a paid video is tried when the download breaks or S3 fails.
    ``max_image_bytes``: the largest input image read from a URL or an S3 object (see :attr:`image_limit`).
    ``store_concurrency``: at most this many finished videos are downloaded and stored at once (0, the default:
    no limit). A limit bounds the memory and connections of a burst of finished videos (a wide run's waves);
    a worker waiting for a store place does not take its next prompt meanwhile. ``generation_hint``: seconds a
    generation took lately (the Dagster layer passes the median of the asset's latest materialization), from
    which the shared pool paces its looks at accounts full in S3 until this run's own slots tell
    (:class:`~minimax_dagster.production.capacity.SharedAccountPool`); ``None``: ``claim_poll`` until then.

    >>> ProducerSettings(bucket="b", prefix="p", policy=DownloadPolicy(allowed_hosts=("x.com",))).capacity
    1
    """

    bucket: str
    prefix: str
    policy: DownloadPolicy
    accounts: dict[str, int] = field(default_factory=dict)
    default_capacity: int = 1
    generation_deadline: float = 20 * 60.0
    capacity_wait: float = 5.0
    regenerate_failed: bool = False
    part_size: int = 16 * 1024 * 1024
    download_attempts: int = 4
    download_backoff: float = 2.0
    asset_name: str | None = None
    claim_ttl: float = 60.0
    claim_poll: float = 1.0
    shared_capacity: bool = True
    slots_prefix: str | None = None
    max_image_bytes: int = MAX_IMAGE_BYTES
    store_concurrency: int = 0
    generation_hint: float | None = None

    @property
    def capacity(self) -> int:
        """How many generations may run at once."""
        return sum(self.accounts.values()) if self.accounts else self.default_capacity

    @property
    def image_limit(self) -> int:
        """The most bytes an input image read from a URL or S3 may have: ``max_image_bytes``, or the download
        policy's ``max_bytes`` when that is smaller.

        >>> policy = DownloadPolicy(allowed_hosts=("x.com",), max_bytes=1000)
        >>> ProducerSettings(bucket="b", prefix="p", policy=policy).image_limit
        1000
        """
        return min(self.max_image_bytes, self.policy.max_bytes)

    @property
    def slots(self) -> str:
        """Where the account slot claims live.

        >>> ProducerSettings(bucket="b", prefix="p", policy=DownloadPolicy(allowed_hosts=("x.com",))).slots
        'p/_slots'
        """
        if self.slots_prefix is not None:
            return normalize_prefix(self.slots_prefix)
        return f"{self.prefix}/_slots" if self.prefix else "_slots"
