"""Capacity: the accounts' generation slots, counted in this process and, shared, across processes in S3.

Every account allows ``maxJobs`` generations at once. :class:`AccountPool` counts the free slots of this
process; :class:`SharedAccountPool` also leases each slot as one of the account's numbered claims in S3, so
every process sharing the accounts stays within maxJobs together. :func:`account_pool` picks the one the
settings ask for.

>>> pool = AccountPool({"a": 1, "b": 2})
>>> pool.acquire(), pool.acquire(), pool.acquire()
('b', 'a', 'b')
"""

from __future__ import annotations

import threading
import time

from minimax_dagster.api.errors import MiniMaxError
from minimax_dagster.production.settings import ProducerSettings
from minimax_dagster.storage import ClaimHandle, ClaimKeeper, safe_key_part


class NoUsableAccount(MiniMaxError):
    """Every account a prompt may use is out of credits or on hold.

    >>> pool = AccountPool({"a": 1})
    >>> pool.disable("a", "HTTP 412 out of credits")
    >>> pool.acquire()
    Traceback (most recent call last):
    ...
    minimax_dagster.production.capacity.NoUsableAccount: no usable MiniMax account for any account (a: HTTP 412 out of credits)
    """


class AccountPool:
    """Counts free generation slots per account; ``acquire`` blocks until a slot is free.

    >>> pool = AccountPool({"a": 1, "b": 2})
    >>> pool.acquire(), pool.acquire(), pool.acquire()
    ('b', 'a', 'b')
    >>> pool.release("a"); pool.acquire("a")
    'a'
    """

    def __init__(self, capacity: dict[str, int] | None, default_capacity: int = 1) -> None:
        self._free: dict[str | None, int] = {None: default_capacity}
        if capacity:
            self._free = {account: jobs for account, jobs in capacity.items()}
        self._disabled: dict[str | None, str] = {}
        self._cond = threading.Condition()

    def acquire(self, pinned: str | None = None, timeout: float | None = None) -> str | None:
        """Take a slot (on ``pinned`` when given, else the account with most free slots)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                usable = self._usable(pinned)
                best = max(usable, key=lambda a: usable[a])
                if usable[best] > 0:
                    self._free[best] -= 1
                    return pinned if best is None else best
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError("no free generation slot in time")
                self._cond.wait(remaining)

    def _usable(self, pinned: str | None) -> dict[str | None, int]:
        """Free slots of the accounts ``pinned`` may use (call with the lock held); raises if there are none."""
        usable = {a: n for a, n in self._free.items() if a not in self._disabled}
        if pinned is not None and pinned not in self._free:
            usable = {}
            if None in self._free and None not in self._disabled:
                # Accounts unknown: any pinned account shares the API-chosen capacity.
                usable = {None: self._free[None]}
        elif pinned is not None:
            usable = {pinned: usable[pinned]} if pinned in usable else {}
        if not usable:
            reasons = "; ".join(f"{a}: {r}" for a, r in self._disabled.items())
            target = f"account {pinned}" if pinned else "any account"
            raise NoUsableAccount(f"no usable MiniMax account for {target} ({reasons or 'none configured'})")
        return usable

    def release(self, account: str | None) -> None:
        """Give a slot back."""
        with self._cond:
            slot = account if account in self._free else None
            self._free[slot] = self._free.get(slot, 0) + 1
            self._cond.notify_all()

    def disable(self, account: str | None, reason: str) -> None:
        """Stop using an account (out of credits, on hold)."""
        with self._cond:
            self._disabled[account if account in self._free else None] = reason
            self._cond.notify_all()

    def close(self) -> None:
        """Give back whatever the pool holds outside this process (nothing here; see :class:`SharedAccountPool`)."""


class SharedAccountPool(AccountPool):
    """An :class:`AccountPool` whose every slot is also one of the account's maxJobs claims in S3
    (``<prefix>/<account>/<i>.json``): all processes sharing the accounts (Celery workers, pods, concurrent
    runs) stay within maxJobs together instead of each on its own, so none is refused with 429.

    A slot given back while a thread of this process waits for that account is handed over with its claim
    still held (parked, at most one per such waiter): the next generation starts without the three S3 requests
    (delete, list, create) a new lease costs. A parked claim stays parked while a blocked thread could take it,
    however long that thread waits for the lock; one that no blocked thread can take any more (its waiter timed
    out or took another account) is deleted by the next thread that gives a slot back, takes one or starts
    waiting, and :meth:`close` deletes the rest. A claim held by a killed process goes stale (``ClaimKeeper``) and
    its slot is taken over.

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import ClaimKeeper, s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     keeper = ClaimKeeper(s3, "bkt", ttl=60)
    ...     pool = SharedAccountPool({"acc": 2}, keeper=keeper, prefix="p/_slots")
    ...     first, second = pool.acquire(), pool.acquire()
    ...     print(first, second, len(keeper.held()))
    ...     pool.release(first); pool.release(second); pool.close(); keeper.close()
    ...     print(s3.list_objects_v2(Bucket="bkt", Prefix="p/_slots/")["KeyCount"])
    acc acc 2
    0
    """

    def __init__(
        self,
        capacity: dict[str, int] | None,
        default_capacity: int = 1,
        *,
        keeper: ClaimKeeper,
        prefix: str,
        poll: float = 1.0,
    ) -> None:
        super().__init__(capacity, default_capacity)
        self._limits = dict(self._free)
        self._keeper = keeper
        self._prefix = prefix
        self._poll = poll
        self._held: dict[str | None, list[ClaimHandle]] = {}
        self._next_scan: dict[str | None, float] = {}
        # Claims still held in S3 but given back here, per account, for the threads blocked in acquire.
        self._parked: dict[str | None, list[ClaimHandle]] = {}
        self._waiting: list[str | None] = []  # the ``pinned`` of every thread blocked in acquire

    def acquire(self, pinned: str | None = None, timeout: float | None = None) -> str | None:
        """Take a local slot and a shared one, on the account with most local free slots that has a shared
        slot free (a parked claim first); waits (looking again every ``poll`` seconds or when a slot is given
        back) until one is."""
        deadline = None if timeout is None else time.monotonic() + timeout
        unwanted: list[ClaimHandle] = []
        try:
            with self._cond:
                while True:
                    usable = self._usable(pinned)
                    # Parked claims first (they cost no request), then the account with most free slots.
                    order = sorted(
                        (a for a, n in usable.items() if n > 0),
                        key=lambda a: (not self._parked.get(a), -usable[a]),
                    )
                    for slot in order:
                        parked = self._parked.get(slot)
                        handle = parked.pop(0) if parked else self._lease(slot)
                        if handle is not None:
                            self._free[slot] -= 1
                            self._held.setdefault(slot, []).append(handle)
                            unwanted = self._unwanted_parked()
                            return pinned if slot is None else slot
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        unwanted = self._unwanted_parked()
                        raise TimeoutError("no free generation slot in time")
                    # This thread could take none of the parked claims and is not counted as waiting yet: a
                    # claim only it might have wanted goes back to S3 before it blocks (rare: a waiter left).
                    for handle in self._unwanted_parked():
                        self._keeper.release(handle)
                    self._waiting.append(pinned)
                    try:
                        self._cond.wait(self._poll if remaining is None else min(self._poll, remaining))
                    finally:
                        self._waiting.remove(pinned)
        finally:
            for handle in unwanted:
                self._keeper.release(handle)

    @property
    def waiting(self) -> int:
        """How many threads are blocked in :meth:`acquire` right now."""
        with self._cond:
            return len(self._waiting)

    def _lease(self, slot: str | None) -> ClaimHandle | None:
        now = time.monotonic()
        scan = now >= self._next_scan.get(slot, 0.0)
        if scan:  # reading every taken slot's body is for finding dead holders: not on every look
            self._next_scan[slot] = now + max(self._poll, self._keeper.ttl / 8)
        name = safe_key_part(slot) if slot is not None else "_any"
        return self._keeper.acquire_slot(
            f"{self._prefix}/{name}", self._limits[slot], f"slot of {name}", scan_stale=scan
        )

    def _takers(self, slot: str | None) -> int:
        """How many blocked threads could take a slot of ``slot`` (call with the lock held)."""
        if slot in self._disabled:
            return 0
        return sum(1 for p in self._waiting if p is None or p == slot or slot is None)

    def _unwanted_parked(self) -> list[ClaimHandle]:
        """Take out the parked claims beyond what the blocked threads could take (call with the lock held),
        for the caller to delete."""
        unwanted: list[ClaimHandle] = []
        for slot, parked in self._parked.items():
            while len(parked) > self._takers(slot):
                unwanted.append(parked.pop())
        return unwanted

    def release(self, account: str | None) -> None:
        """Give the slot back: handed over (its S3 claim kept) when a thread here waits for it, else deleted
        in S3 too."""
        with self._cond:
            slot = account if account in self._free else None
            held = self._held.get(slot)
            handle = held.pop() if held else None
            parked = self._parked.setdefault(slot, [])
            if handle is not None and len(parked) < self._takers(slot):
                parked.append(handle)
                handle = None
            to_delete = self._unwanted_parked()
            # The local slot is freed under the same lock as the claim is parked, so no waiter ever sees a
            # parked claim without the free slot it needs (and gives the claim up).
            super().release(account)
        if handle is not None:
            to_delete.append(handle)
        for stale in to_delete:
            self._keeper.release(stale)

    def close(self) -> None:
        """Delete every parked claim (the held ones belong to threads still generating)."""
        with self._cond:
            parked = [h for hs in self._parked.values() for h in hs]
            self._parked.clear()
        for handle in parked:
            self._keeper.release(handle)


def account_pool(settings: ProducerSettings, keeper: ClaimKeeper | None) -> AccountPool:
    """The pool ``settings`` ask for: shared in S3 (``shared_capacity``, the default) or local to this process.

    >>> from minimax_dagster.storage import DownloadPolicy
    >>> policy = DownloadPolicy(allowed_hosts=("x.com",))
    >>> settings = ProducerSettings(bucket="b", prefix="p", policy=policy, shared_capacity=False)
    >>> type(account_pool(settings, keeper=None)).__name__  # a local pool needs no keeper
    'AccountPool'
    """
    if not settings.shared_capacity:
        return AccountPool(settings.accounts, settings.default_capacity)
    if keeper is None:
        raise ValueError("a pool shared in S3 (shared_capacity=True) needs a ClaimKeeper; pass keeper")
    return SharedAccountPool(
        settings.accounts,
        settings.default_capacity,
        keeper=keeper,
        prefix=settings.slots,
        poll=settings.claim_poll,
    )
