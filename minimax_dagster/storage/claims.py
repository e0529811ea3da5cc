"""Claims: cross-process ownership of a key through S3 conditional writes.

A claim is a small JSON object created with ``PutObject(IfNoneMatch="*")``: of several processes (Celery workers,
Kubernetes pods, two racing runs) creating the same claim, S3 lets exactly one succeed. Its holder renews it
(``IfMatch`` on its ETag) while it works; a claim not renewed within its TTL, or whose holder process is gone from
this host, is stale and may be taken over (again ``IfMatch``, so only one taker wins). Needs an S3 that honours
conditional writes: AWS S3 (since 2024), MinIO, R2; moto 5 for tests. :class:`~minimax_dagster.storage.ClaimKeeper`
does the renewing.

A claim is either a bare object (the account slots) or the ``holder`` of a record (a video's job record): then one
object says both who works on the key and what is known about it, and taking the claim, recording progress and
releasing it are each one request (see :func:`claim_body`).

>>> c = Claim(owner="w1:42:ab", host="w1", pid=42, acquired_at=0.0, renewed_at=0.0, ttl=60)
>>> c.is_stale(now=30.0, hostname="w2")
False
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from minimax_dagster.storage.objects import delete_if, put_bytes_if, read_object

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

__all__ = [
    "Claim",
    "ClaimHandle",
    "claim_body",
    "host_identity",
    "pid_alive",
    "read_claim",
    "release_claim",
    "replace_claim",
    "try_claim",
]


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a zombie counts as gone).

    >>> import os
    >>> pid_alive(os.getpid()), pid_alive(0)
    (True, False)
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def host_identity() -> str:
    """This host as far as pids are concerned: the hostname plus, on Linux, the PID namespace.

    Containers sharing a hostname (host networking, a fixed ``hostname:``) each have their own PID namespace, so
    a pid is only checked for liveness where it means the same process.

    >>> host_identity().startswith(socket.gethostname())
    True
    """
    try:
        return f"{socket.gethostname()}/pidns:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return socket.gethostname()


class Claim(BaseModel):
    """The body of a claim object: who holds the key, and until when the claim counts as live.

    ``owner`` is ``<hostname>:<pid>:<random>``; ``host`` is the holder's :func:`host_identity`; ``renewed_at`` is
    epoch seconds of the holder's clock, renewed once it is ``ttl / 4`` old (clock skew must stay well below
    the TTL).

    >>> c = Claim(owner="w1:42:ab", host="w1", pid=42, acquired_at=100.0, renewed_at=100.0, ttl=60)
    >>> c.is_stale(now=150.0, hostname="w2"), c.is_stale(now=161.0, hostname="w2")
    (False, True)
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    owner: str = Field(min_length=1)
    host: str = ""
    pid: int = 0
    purpose: str = ""
    acquired_at: float
    renewed_at: float
    ttl: float = Field(gt=0)

    def is_stale(self, now: float | None = None, *, hostname: str | None = None) -> bool:
        """Not renewed within its TTL, or held by a process that no longer runs on this host."""
        now = time.time() if now is None else now
        if now > self.renewed_at + self.ttl:
            return True
        here = host_identity() if hostname is None else hostname
        return bool(self.host) and self.host == here and not pid_alive(self.pid)


@dataclasses.dataclass
class ClaimHandle:
    """A claim this process holds: its key, the ETag of the current body (updated on renewal), the claim, and the
    record it is held in (``None`` for a bare claim, whose body is the claim itself).

    A record is a pydantic model with a ``holder`` field (a :class:`~minimax_dagster.storage.JobRecord`, say):
    the object at ``key`` is the record with the claim as its holder, so the claim and what it protects are
    written in one request. ``lock`` keeps this handle's writes (renewal, update, release) one at a time.

    >>> claim = Claim(owner="w1:42:ab", acquired_at=0.0, renewed_at=0.0, ttl=60)
    >>> ClaimHandle("p/_claims/v1-x.json", "etag-1", claim).claim.owner
    'w1:42:ab'
    """

    key: str
    etag: str
    claim: Claim
    record: BaseModel | None = None
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False, compare=False)


def claim_body(claim: Claim | None, record: BaseModel | None = None) -> bytes:
    """The JSON bytes of a claim object: the claim itself, or ``record`` with ``claim`` as its ``holder``
    (``None``: a released record).

    >>> from pydantic import BaseModel
    >>> class Job(BaseModel):
    ...     status: str
    ...     holder: Claim | None = None
    >>> claim_body(None, Job(status="finished"))
    b'{"status":"finished","holder":null}'
    """
    if record is None:
        if claim is None:
            raise ValueError("a bare claim object needs a claim")
        return claim.model_dump_json().encode("utf-8")
    if "holder" not in type(record).model_fields:
        raise ValueError(f"{type(record).__name__} has no 'holder' field: it cannot hold a claim")
    return record.model_copy(update={"holder": claim}).model_dump_json().encode("utf-8")


def try_claim(s3_client: S3Client, bucket: str, key: str, claim: Claim) -> str | None:
    """Create the claim at ``key`` unless one exists (``IfNoneMatch="*"``); its ETag, or ``None`` if taken.

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     c = Claim(owner="h:1:x", acquired_at=0, renewed_at=0, ttl=60)
    ...     try_claim(s3, "bkt", "p/_claims/k.json", c) is not None, try_claim(s3, "bkt", "p/_claims/k.json", c)
    (True, None)
    """
    return put_bytes_if(s3_client, bucket, key, claim_body(claim), if_match=None)


def replace_claim(s3_client: S3Client, bucket: str, key: str, claim: Claim, etag: str) -> str | None:
    """Overwrite the claim at ``key`` only if its ETag is still ``etag`` (renewal, or take-over of a stale
    claim); the new ETag, or ``None`` when someone else changed or removed it first.

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     c = Claim(owner="h:1:x", acquired_at=0, renewed_at=0, ttl=60)
    ...     etag = try_claim(s3, "bkt", "k.json", c)
    ...     renewed = replace_claim(s3, "bkt", "k.json", c.model_copy(update={"renewed_at": 30}), etag)
    ...     replace_claim(s3, "bkt", "k.json", c, etag)  # the old ETag no longer holds
    ...     read_claim(s3, "bkt", "k.json") == (c.model_copy(update={"renewed_at": 30}), renewed)
    True
    """
    return put_bytes_if(s3_client, bucket, key, claim_body(claim), if_match=etag)


def read_claim(s3_client: S3Client, bucket: str, key: str) -> tuple[Claim | None, str] | None:
    """``(claim, etag)`` of the claim at ``key``, ``None`` when there is none.

    An unreadable body gives ``(None, etag)``: it protects nothing and may be taken over.

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import put_bytes, s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     etag = put_bytes(s3, "bkt", "k.json", b"{not a claim")
    ...     read_claim(s3, "bkt", "k.json") == (None, etag), read_claim(s3, "bkt", "missing.json")
    (True, None)
    """
    found = read_object(s3_client, bucket, key)
    if found is None:
        return None
    data, etag = found
    try:
        return Claim.model_validate_json(data), etag
    except ValueError:
        return None, etag


def release_claim(s3_client: S3Client, bucket: str, key: str, etag: str) -> bool:
    """Delete the claim at ``key`` if its ETag is still ``etag``; ``False`` when it was not ours any more.

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     etag = try_claim(s3, "bkt", "k.json", Claim(owner="h:1:x", acquired_at=0, renewed_at=0, ttl=60))
    ...     release_claim(s3, "bkt", "k.json", "not-the-etag"), release_claim(s3, "bkt", "k.json", etag)
    (False, True)
    """
    return delete_if(s3_client, bucket, key, etag)
