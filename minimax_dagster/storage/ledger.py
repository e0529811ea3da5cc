"""Spend ledgers: one small JSON object per budget window, changed only by conditional writes.

A ledger holds who spent what in one window (a day, a month, one run of one asset): one :class:`LedgerEntry` per
paid create, with its run id, asset, partition, prompt id, video key, video id and time. Every change is a
read-modify-write with ``If-Match`` on the ETag read (``If-None-Match: *`` for the window's first entry), so
processes racing to add entries each see the others' and none is lost; a change whose condition fails is
read and decided again (:func:`update_ledger`). Storage knows nothing of budgets: what a change does is the
caller's (see :mod:`~minimax_dagster.production.budget`).

>>> ledger = Ledger(window="day 2026-12-07 UTC")
>>> ledger.with_entry(LedgerEntry(id="r1", cost_videos=1, credits=5)).spent()
(1, 5)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from minimax_dagster.storage.errors import CorruptObject
from minimax_dagster.storage.job_records import utc_now_iso
from minimax_dagster.storage.objects import put_bytes_if, read_object

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

__all__ = ["MAX_LEDGER_ENTRIES", "Ledger", "LedgerEntry", "list_ledgers", "read_ledger", "update_ledger"]

#: The most entries one ledger object holds (about 300 bytes each): a window that would need more is refused,
#: so the object every create rewrites stays small (a shorter window, or a second budget, splits it).
MAX_LEDGER_ENTRIES = 5000
#: Seconds a change may keep losing races to other writers before it gives up (raises ``TimeoutError``).
UPDATE_DEADLINE = 120.0

EntryStatus = Literal["reserved", "spent"]


class LedgerEntry(BaseModel):
    """One paid create: ``reserved`` before its POST, ``spent`` once the stream named its video id.

    ``credits`` is ``None`` when the template's credits are unknown (counted as ``counted_credits``).

    >>> LedgerEntry(id="r1", run_id="abc", prompt_id="fox").status
    'reserved'
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1)
    run_id: str | None = None
    asset: str | None = None
    partition: str | None = None
    prompt_id: str | None = None
    key: str | None = None
    video_id: str | None = None
    template_id: str | None = None
    cost_videos: int = Field(1, ge=0)
    credits: int | None = Field(None, ge=0)
    counted_credits: int = Field(0, ge=0)
    status: EntryStatus = "reserved"
    at: str = Field(default_factory=utc_now_iso)


class Ledger(BaseModel):
    """The body of one window's ledger object.

    ``released`` counts reservations given back (their entries are removed, so the object stays bounded);
    ``refused`` counts creates the window stopped. ``limit_videos`` / ``limit_credits`` / ``resets_at`` are the
    budget as the last writer knew it, for the people who read the ledger.

    >>> Ledger(window="month 2026-12 UTC").spent()
    (0, 0)
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    window: str
    opens_at: str | None = None
    resets_at: str | None = None
    limit_videos: int | None = None
    limit_credits: int | None = None
    entries: tuple[LedgerEntry, ...] = ()
    released: int = 0
    refused: int = 0

    def spent(self) -> tuple[int, int]:
        """``(videos, credits)`` spent or reserved in this window (unknown credits as they were counted)."""
        videos = sum(e.cost_videos for e in self.entries)
        credits = sum(e.credits if e.credits is not None else e.counted_credits for e in self.entries)
        return videos, credits

    def with_entry(self, entry: LedgerEntry) -> Ledger:
        """This ledger with ``entry`` added.

        >>> Ledger(window="w").with_entry(LedgerEntry(id="a")).spent()
        (1, 0)
        """
        if len(self.entries) >= MAX_LEDGER_ENTRIES:
            raise ValueError(
                f"the ledger of {self.window} holds {MAX_LEDGER_ENTRIES} entries, the most one object may; "
                "use a shorter budget window (per: day) for budgets that large"
            )
        return self.model_copy(update={"entries": (*self.entries, entry)})

    def without(self, entry_id: str) -> Ledger:
        """This ledger with the entry ``entry_id`` given back (removed and counted in ``released``).

        >>> Ledger(window="w").with_entry(LedgerEntry(id="a")).without("a").released
        1
        """
        kept = tuple(e for e in self.entries if e.id != entry_id)
        if len(kept) == len(self.entries):
            return self
        return self.model_copy(update={"entries": kept, "released": self.released + 1})

    def with_video(self, entry_id: str, video_id: str) -> Ledger:
        """This ledger with the entry ``entry_id`` spent on ``video_id``.

        >>> Ledger(window="w").with_entry(LedgerEntry(id="a")).with_video("a", "42").entries[0].status
        'spent'
        """
        entries = tuple(
            e.model_copy(update={"video_id": video_id, "status": "spent"}) if e.id == entry_id else e
            for e in self.entries
        )
        return self.model_copy(update={"entries": entries})


def read_ledger(s3_client: S3Client, bucket: str, key: str) -> tuple[Ledger, str] | None:
    """``(ledger, etag)`` at ``key`` in one GET; ``None`` when the window has no ledger yet.

    A ledger that does not validate raises ``CorruptObject``: reading it as empty would let spend past the budget.

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     read_ledger(s3, "bkt", "_budget/day/2026-12-07.json")
    """
    found = read_object(s3_client, bucket, key)
    if found is None:
        return None
    data, etag = found
    try:
        return Ledger.model_validate_json(data), etag
    except ValidationError as exc:
        raise CorruptObject(
            bucket,
            key,
            f"invalid budget ledger ({exc.error_count()} problem(s)); fix it by hand or delete it (deleting it "
            "forgets what this window spent)",
        ) from None


def update_ledger(
    s3_client: S3Client,
    bucket: str,
    key: str,
    change: Callable[[Ledger | None], Ledger | None],
    *,
    deadline: float = UPDATE_DEADLINE,
) -> tuple[Ledger | None, bool]:
    """Apply ``change`` to the ledger at ``key`` atomically: ``(ledger, True)`` once written, or ``(current,
    False)`` when ``change`` returned ``None`` (nothing to write).

    ``change`` gets the current ledger (``None``: none yet) and may be called again, on a fresher one, when
    another writer got in first; it must decide from its argument alone.

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     add = lambda ledger: (ledger or Ledger(window="w")).with_entry(LedgerEntry(id=str(len(ledger.entries) if ledger else 0)))
    ...     _ = update_ledger(s3, "bkt", "l.json", add)
    ...     ledger, wrote = update_ledger(s3, "bkt", "l.json", add)
    >>> wrote, [e.id for e in ledger.entries]
    (True, ['0', '1'])
    """
    give_up = time.monotonic() + deadline
    pause = 0.01
    while True:
        found = read_ledger(s3_client, bucket, key)
        current, etag = found if found is not None else (None, None)
        changed = change(current)
        if changed is None:
            return current, False
        body = changed.model_dump_json().encode("utf-8")
        if put_bytes_if(s3_client, bucket, key, body, if_match=etag) is not None:
            return changed, True
        if time.monotonic() >= give_up:
            raise TimeoutError(
                f"s3://{bucket}/{key}: another writer changed the budget ledger every time for {deadline:.0f} s"
            )
        # Jittered, growing pauses: racing writers spread out instead of colliding again in step.
        time.sleep(random.uniform(0, pause))
        pause = min(pause * 2, 0.5)


def list_ledgers(s3_client: S3Client, bucket: str, prefix: str, *, limit: int = 1000) -> list[str]:
    """The keys of the ledgers under ``prefix`` (``.json`` objects), sorted, at most ``limit`` of them.

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import put_json, s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     _ = put_json(s3, "bkt", "_b/day/2026-12-07.json", {"window": "day"})
    ...     list_ledgers(s3, "bkt", "_b")
    ['_b/day/2026-12-07.json']
    """
    keys: list[str] = []
    paginator = s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix.rstrip('/')}/"):
        keys.extend(o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".json"))
        if len(keys) >= limit:
            break
    return sorted(keys)[:limit]
