"""The claim keeper: takes this process's claims, renews them from a daemon thread, releases them; and counting
slots (``<prefix>/<i>.json``) built on the same claims.

A claim may be held in a record (a video's job record): then the keeper's writes carry the record too, so taking
the claim creates the record, :meth:`ClaimKeeper.update` records progress, and :meth:`ClaimKeeper.release`
writes the record's last state, each in one conditional request.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from pydantic import BaseModel

from minimax_dagster.storage.claims import (
    Claim,
    ClaimHandle,
    claim_body,
    host_identity,
    read_claim,
    release_claim,
)
from minimax_dagster.storage.keys import s3_uri
from minimax_dagster.storage.objects import put_bytes_if

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

__all__ = ["RENEW_AT_ONCE", "ClaimKeeper"]

log = logging.getLogger(__name__)

#: At most this many renewals of one keeper in flight at once (its threads, and its S3 connections).
RENEW_AT_ONCE = 8


class ClaimKeeper:
    """Takes, renews and releases this process's claims in one bucket.

    A daemon thread renews each held claim once it is ``ttl / 4`` old (looking every ``ttl / 16`` seconds, a
    few claims at once), so a claim stays live exactly as long as its holder does: a killed holder's claims go
    stale after ``ttl`` (at once for a dead process on the same host). Thread-safe; ``close()`` stops the thread
    and releases whatever is still held. Every write of one claim (renewal, update, release) is ``If-Match`` on
    the ETag of the previous one, so a claim taken over by another process is never written again: the keeper
    notes it in ``lost``.

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     mine, theirs = ClaimKeeper(s3, "bkt", ttl=60), ClaimKeeper(s3, "bkt", ttl=60)
    ...     handle = mine.acquire("p/_claims/v1-x.json", "produce")
    ...     taken = theirs.acquire("p/_claims/v1-x.json", "produce")  # held by `mine`, and not stale
    ...     slots = [theirs.acquire_slot("p/_slots/acct", 2) for _ in range(3)]
    ...     held = mine.held(), theirs.held(), slots[2]
    ...     mine.close()
    ...     theirs.close()
    ...     inspected = mine.inspect("p/_claims/v1-x.json")
    >>> handle.claim.purpose, taken, held, inspected
    ('produce', None, (['p/_claims/v1-x.json'], ['p/_slots/acct/0.json', 'p/_slots/acct/1.json'], None), None)
    """

    def __init__(self, s3_client: S3Client, bucket: str, *, ttl: float = 60.0) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be > 0, got {ttl}")
        self.s3 = s3_client
        self.bucket = bucket
        self.ttl = ttl
        self.host = host_identity()
        self.pid = os.getpid()
        self.owner = f"{socket.gethostname()}:{self.pid}:{secrets.token_hex(4)}"
        self._held: dict[str, ClaimHandle] = {}
        self._trying: set[str] = set()  # slot keys a thread of this keeper is claiming right now
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: list[str] = []

    def _claim(self, purpose: str, acquired_at: float | None = None) -> Claim:
        now = time.time()
        return Claim(
            owner=self.owner,
            host=self.host,
            pid=self.pid,
            purpose=purpose,
            acquired_at=now if acquired_at is None else acquired_at,
            renewed_at=now,
            ttl=self.ttl,
        )

    def _hold(self, key: str, etag: str | None, claim: Claim, record: BaseModel | None) -> ClaimHandle | None:
        if etag is None:
            return None
        handle = ClaimHandle(key, etag, claim, record)
        with self._lock:
            self._held[key] = handle
            if self._thread is None:
                self._thread = threading.Thread(target=self._renew_loop, name="claim-keeper", daemon=True)
                self._thread.start()
        return handle

    def acquire(self, key: str, purpose: str = "", record: BaseModel | None = None) -> ClaimHandle | None:
        """Create the claim at ``key`` (as the holder of ``record``, when given: see
        :class:`~minimax_dagster.storage.ClaimHandle`); ``None`` when an object is already there. For a record,
        success also proves that no earlier record exists."""
        claim = self._claim(purpose)
        etag = put_bytes_if(self.s3, self.bucket, key, claim_body(claim, record), if_match=None)
        return self._hold(key, etag, claim, record)

    def take_over(
        self, key: str, etag: str, purpose: str = "", record: BaseModel | None = None
    ) -> ClaimHandle | None:
        """Replace the (stale or released) object whose ETag is ``etag`` with our claim, held in ``record`` when
        given; ``None`` when another process changed it first."""
        claim = self._claim(purpose)
        new_etag = put_bytes_if(self.s3, self.bucket, key, claim_body(claim, record), if_match=etag)
        return self._hold(key, new_etag, claim, record)

    def update(self, handle: ClaimHandle, record: BaseModel) -> bool:
        """Write ``record`` (still held by us) over the held one, ``If-Match`` on its ETag: one request that
        records progress and renews the claim. ``False`` when the claim was lost (taken over as stale) or
        released; S3 errors are raised."""
        with handle.lock:
            if not self._holds(handle):
                return False
            claim = self._claim(handle.claim.purpose, handle.claim.acquired_at)
            etag = put_bytes_if(
                self.s3, self.bucket, handle.key, claim_body(claim, record), if_match=handle.etag
            )
            if etag is None:
                self._lose(handle)
                return False
            handle.etag, handle.claim, handle.record = etag, claim, record
            return True

    def inspect(self, key: str) -> tuple[Claim | None, str] | None:
        """The claim currently at ``key`` with its ETag (see :func:`read_claim`)."""
        return read_claim(self.s3, self.bucket, key)

    def acquire_slot(
        self, prefix: str, limit: int, purpose: str = "", *, scan_stale: bool = True
    ) -> ClaimHandle | None:
        """Take one of ``limit`` numbered claims ``<prefix>/<i>.json``: a counting semaphore shared by every
        process using the same bucket and prefix. With ``scan_stale``, stale slots are taken over too."""
        base = prefix.rstrip("/") + "/"
        taken: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
            taken.extend(obj["Key"] for obj in page.get("Contents", []))
        names = [f"{base}{i}.json" for i in range(limit)]
        free = [n for n in names if n not in taken]
        random.shuffle(free)  # processes listing at the same time try the free slots in different orders
        for key in free:
            # Threads of this process listing at the same time skip each other's slots instead of racing
            # for them (each lost race is a refused PUT).
            with self._lock:
                if key in self._held or key in self._trying:
                    continue
                self._trying.add(key)
            try:
                handle = self.acquire(key, purpose)
            finally:
                with self._lock:
                    self._trying.discard(key)
            if handle is not None:
                return handle
        if scan_stale:
            for key in (n for n in names if n in taken):
                found = self.inspect(key)
                if found is None:
                    handle = self.acquire(key, purpose)
                elif found[0] is None or found[0].is_stale():
                    handle = self.take_over(key, found[1], purpose)
                else:
                    continue
                if handle is not None:
                    return handle
        return None

    def release(self, handle: ClaimHandle, record: BaseModel | None = None) -> bool:
        """Stop renewing ``handle`` and give the claim up, unless it was lost or released already (then nothing
        is sent): a bare claim is deleted; a claim held in a record is cleared from it, in the same request that
        writes ``record`` (default: the held one) as the record's last state. ``False`` when the claim was not
        ours any more or S3 failed (logged: an unreleased claim only delays others until it goes stale)."""
        with handle.lock:
            with self._lock:
                if self._held.get(handle.key) is not handle:
                    return False
                del self._held[handle.key]
            try:
                if handle.record is None:
                    return release_claim(self.s3, self.bucket, handle.key, handle.etag)
                body = claim_body(None, handle.record if record is None else record)
                etag = put_bytes_if(self.s3, self.bucket, handle.key, body, if_match=handle.etag)
            except Exception:
                log.warning("could not release the claim %s", s3_uri(self.bucket, handle.key), exc_info=True)
                return False
            if etag is None:
                log.warning("lost the claim %s before releasing it", s3_uri(self.bucket, handle.key))
                return False
            handle.etag = etag
            return True

    def _holds(self, handle: ClaimHandle) -> bool:
        with self._lock:
            return self._held.get(handle.key) is handle

    def _lose(self, handle: ClaimHandle) -> None:
        with self._lock:
            if self._held.get(handle.key) is handle:
                del self._held[handle.key]
                self.lost.append(handle.key)
        log.warning("lost the claim %s (taken over as stale)", s3_uri(self.bucket, handle.key))

    def held(self) -> list[str]:
        """Keys of the claims held now."""
        with self._lock:
            return sorted(self._held)

    def renew_due(self, age: float | None = None) -> None:
        """Renew the held claims last written ``age`` seconds ago or more (``ttl / 4`` unless given; ``0``
        renews them all now), oldest first, up to :data:`RENEW_AT_ONCE` at a time; the background thread calls
        this every ``ttl / 16``.

        A claim an update wrote a moment ago is not renewed again, claims taken at different times are
        renewed at different times (not all in one burst), and a round over many claims takes a fraction
        of the time one request after another would."""
        limit = time.time() - (self.ttl / 4 if age is None else age)
        self._renew([h for h in self._snapshot() if h.claim.renewed_at <= limit])

    def _snapshot(self) -> list[ClaimHandle]:
        with self._lock:
            return sorted(self._held.values(), key=lambda h: h.claim.renewed_at)

    def _renew(self, handles: list[ClaimHandle]) -> None:
        if len(handles) <= 1:
            for handle in handles:
                self._renew_one(handle)
            return
        with ThreadPoolExecutor(min(RENEW_AT_ONCE, len(handles)), thread_name_prefix="claim-renew") as pool:
            list(pool.map(self._renew_one, handles))

    def _renew_one(self, handle: ClaimHandle) -> None:
        with handle.lock:
            if not self._holds(handle):
                return  # released meanwhile
            claim = self._claim(handle.claim.purpose, handle.claim.acquired_at)
            try:
                etag = put_bytes_if(
                    self.s3, self.bucket, handle.key, claim_body(claim, handle.record), if_match=handle.etag
                )
            except Exception:
                log.warning("could not renew the claim %s", s3_uri(self.bucket, handle.key), exc_info=True)
                return
            if etag is None:
                self._lose(handle)
            else:
                handle.etag, handle.claim = etag, claim

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 16):
            self.renew_due()

    def close(self) -> None:
        """Stop renewing and release every claim still held."""
        self._stop.set()
        with self._lock:
            handles = list(self._held.values())
        for handle in handles:
            self.release(handle)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
