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
from typing import NamedTuple

from minimax_dagster.api.errors import MiniMaxError
from minimax_dagster.production.producer_settings import ProducerSettings
from minimax_dagster.storage import ClaimHandle, ClaimKeeper, safe_key_part

#: An account full in S3 is looked at again after this share of the mean time a slot is held (see
#: :class:`SharedAccountPool`), but never more often than every ``MIN_POLL`` seconds.
POLL_FRACTION = 1 / 40
MIN_POLL = 0.1
#: Holds shorter than this (seconds) are not generations and do not move the mean; each new hold moves it by
#: this weight.
MIN_HOLD = 0.5
HOLD_WEIGHT = 0.2


class _Taken(NamedTuple):
    """A slot taken, local and shared: the account to give the caller."""

    account: str | None


class _Reserved(NamedTuple):
    """A local slot reserved for a new lease in S3 (made outside the pool's lock)."""

    slot: str | None


class NoUsableAccount(MiniMaxError):
    """Every account a prompt may use is out of credits or on hold.

    >>> pool = AccountPool({"a": 1})
    >>> pool.disable("a", "HTTP 412 out of credits")
    >>> pool.acquire()
    Traceback (most recent call last):
    ...
    minimax_dagster.production.capacity.NoUsableAccount: no usable MiniMax account for any account (a: HTTP 412 out of credits)
    """


class _Waiter:
    """A thread blocked in ``acquire``: what it may take, and a condition of its own on the pool's lock.

    So a slot given back wakes one thread that can use it, not every blocked thread (``benchmarks/RESULTS.md``
    says what waking them all cost).
    """

    __slots__ = ("cond", "pinned", "woken")

    def __init__(self, pinned: str | None, lock: threading.RLock) -> None:
        self.pinned = pinned
        self.cond = threading.Condition(lock)
        self.woken = False


class AccountPool:
    """Counts free generation slots per account; ``acquire`` blocks until a slot is free.

    A slot given back wakes the longest-waiting thread that can use it, not every blocked thread.

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
        self._lock = threading.RLock()
        self._waiters: list[_Waiter] = []  # the threads blocked in acquire, longest waiting first
        self._woken = 0  # waiters woken for a free slot that have not run yet

    def acquire(self, pinned: str | None = None, timeout: float | None = None) -> str | None:
        """Take a slot (on ``pinned`` when given, else the account with most free slots)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                usable = self._usable(pinned)
                best = max(usable, key=lambda a: usable[a])
                if usable[best] > 0:
                    self._free[best] -= 1
                    self._wake()  # a slot left over (another account's) may suit the next waiter
                    return pinned if best is None else best
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self._wake()
                    raise TimeoutError("no free generation slot in time")
                self._block(pinned, remaining)

    @property
    def waiting(self) -> int:
        """How many threads are blocked in :meth:`acquire` right now.

        >>> AccountPool({"a": 1}).waiting
        0
        """
        with self._lock:
            return len(self._waiters)

    def _block(self, pinned: str | None, timeout: float | None) -> None:
        """Wait (lock held) until woken for a free slot, or ``timeout`` seconds."""
        self._wake()  # this thread may have been woken for a slot it could not take: pass the turn on
        waiter = _Waiter(pinned, self._lock)
        self._waiters.append(waiter)
        try:
            waiter.cond.wait(timeout)
        finally:
            self._waiters.remove(waiter)
            if waiter.woken:
                self._woken -= 1

    def _wake(self) -> None:
        """Wake, longest waiting first, as many blocked threads as there are free slots they could take and
        no woken thread is already on its way to (call with the lock held)."""
        budget = sum(n for a, n in self._free.items() if n > 0 and self._open(a)) - self._woken
        for waiter in self._waiters:
            if budget <= 0:
                return
            if not waiter.woken and self._could_take(waiter.pinned):
                waiter.woken = True
                self._woken += 1
                waiter.cond.notify()
                budget -= 1

    def _could_take(self, pinned: str | None) -> bool:
        """Whether a free slot is one a thread ``pinned`` may use (call with the lock held, from :meth:`_wake`,
        which only asks while some open slot is free: any such slot suits an unpinned thread)."""
        if pinned is None:
            return True
        slot = pinned if pinned in self._free else None
        return self._free.get(slot, 0) > 0 and self._open(slot)

    def _open(self, slot: str | None) -> bool:
        """Whether a free local slot of ``slot`` can be taken now (call with the lock held)."""
        return slot not in self._disabled

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
        """Give a slot back (and wake one thread that can use it)."""
        with self._lock:
            slot = account if account in self._free else None
            self._free[slot] = self._free.get(slot, 0) + 1
            self._wake()

    def disable(self, account: str | None, reason: str) -> None:
        """Stop using an account (out of credits, on hold); every blocked thread looks again (some may have
        no usable account left, and say so)."""
        with self._lock:
            self._disabled[account if account in self._free else None] = reason
            for waiter in self._waiters:
                waiter.cond.notify()

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

    A new lease is made outside the pool's lock (threads starting together lease side by side). An account
    whose shared slots all belong to other processes is looked at again after :attr:`poll_seconds`, or when one
    of its slots is given back here, by one thread, not by every thread waiting here. The look costs one LIST,
    and a slot another process gives back stays empty until somebody looks, so the interval follows the
    generations: 1/40 of the mean time a slot is held here (at least 0.1 s, at most ``poll``), starting from
    ``hold_hint`` (how long generations took lately; ``ProducerSettings.generation_hint``), or ``poll`` when
    there is no hint and no slot held here has been given back yet. A slot freed elsewhere then waits about
    1 % of a generation for its next create, and long generations keep one look per ``poll``.

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
        hold_hint: float | None = None,
    ) -> None:
        super().__init__(capacity, default_capacity)
        self._limits = dict(self._free)
        self._keeper = keeper
        self._prefix = prefix
        self._poll = poll
        # Seconds a slot is held here (a moving mean), from the first slot given back on; until then the hint
        # (how long generations took lately), when it looks like a generation.
        self._hold_mean: float | None = hold_hint if hold_hint is not None and hold_hint >= MIN_HOLD else None
        self._taken_at: dict[int, float] = {}  # thread -> when it took the slot it holds
        self._held: dict[str | None, list[ClaimHandle]] = {}
        self._next_scan: dict[str | None, float] = {}
        # Claims still held in S3 but given back here, per account, for the threads blocked in acquire.
        self._parked: dict[str | None, list[ClaimHandle]] = {}
        # Accounts whose every shared slot another process held when last leased, until when not to try again.
        self._full_until: dict[str | None, float] = {}

    def acquire(self, pinned: str | None = None, timeout: float | None = None) -> str | None:
        """Take a local slot and a shared one, on the account with most local free slots that has a shared
        slot free (a parked claim first); waits (looking again every :attr:`poll_seconds` or when a slot is
        given back) until one is.

        A new lease (its S3 requests) is made outside the pool's lock, on a local slot reserved first, so
        threads starting together lease their slots side by side instead of one after another."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = self._hand_over_or_reserve(pinned, deadline)
            if isinstance(step, _Reserved):
                step = self._lease_reserved(step.slot, pinned)
            if step is not None:
                return step.account

    def _hand_over_or_reserve(self, pinned: str | None, deadline: float | None) -> _Taken | _Reserved | None:
        """Under the lock: a parked claim handed over, a local slot reserved for a new lease, or ``None`` once
        this thread has waited for a slot (``TimeoutError`` past ``deadline``). The parked claims no blocked
        thread can take any more are deleted in S3 after the lock is let go."""
        unwanted: list[ClaimHandle] = []
        try:
            with self._lock:
                picked = self._pick(pinned)
                if picked is not None:
                    return self._hand_over(picked, pinned, unwanted)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    unwanted.extend(self._unwanted_parked())
                    self._wake()
                    raise TimeoutError("no free generation slot in time")
                self._wait_turn(pinned, remaining)
                return None
        finally:
            for stale in unwanted:
                self._keeper.release(stale)

    def _hand_over(
        self, picked: tuple[str | None, ClaimHandle | None], pinned: str | None, unwanted: list[ClaimHandle]
    ) -> _Taken | _Reserved:
        """With the lock held: take the parked claim :meth:`_pick` found (adding the parked claims nobody can
        take any more to ``unwanted``), or keep the reserved local slot for a new lease."""
        slot, parked = picked
        if parked is None:
            return _Reserved(slot)
        unwanted.extend(self._unwanted_parked())
        return _Taken(self._took(slot, parked, pinned))

    def _wait_turn(self, pinned: str | None, remaining: float | None) -> None:
        """With the lock held and no slot to take: block until a slot is given back, or the accounts found
        full in S3 are due a look (:attr:`poll_seconds`), or ``remaining`` seconds.

        This thread could take none of the parked claims and is not counted as waiting yet: a claim only it
        might have wanted goes back to S3 before it blocks (rare: a waiter left)."""
        for stale in self._unwanted_parked():
            self._keeper.release(stale)
        poll = self.poll_seconds
        self._block(pinned, poll if remaining is None else min(poll, remaining))

    def _lease_reserved(self, slot: str | None, pinned: str | None) -> _Taken | None:
        """Lease a shared slot of ``slot`` in S3 for the local slot reserved (nobody else counts on it
        meanwhile); ``None`` when other processes hold all of them: no thread here tries the account again for
        :attr:`poll_seconds` or until one of its slots is given back here."""
        try:
            leased = self._lease(slot)
        except BaseException:
            with self._lock:
                self._free[slot] += 1
                self._wake()
            raise
        with self._lock:
            if leased is None:
                self._free[slot] += 1
                self._full_until[slot] = time.monotonic() + self.poll_seconds
                return None
            self._full_until.pop(slot, None)
            return _Taken(self._took(slot, leased, pinned))

    @property
    def poll_seconds(self) -> float:
        """How long an account found full in S3 is left before it is looked at again (see the class).

        >>> pool = SharedAccountPool({"a": 1}, keeper=None, prefix="p", poll=1.0)  # type: ignore[arg-type]
        >>> pool.poll_seconds                   # nothing held and given back yet, and no hint: ``poll``
        1.0
        >>> SharedAccountPool({"a": 1}, keeper=None, prefix="p", hold_hint=20.0).poll_seconds  # type: ignore[arg-type]
        0.5
        >>> pool._hold_mean = 10.0; pool.poll_seconds    # 10 s generations: a look every 0.25 s
        0.25
        >>> pool._hold_mean = 300.0; pool.poll_seconds   # 5-minute ones: never slower than ``poll``
        1.0
        """
        mean = self._hold_mean
        if mean is None:
            return self._poll
        return min(self._poll, max(MIN_POLL, mean * POLL_FRACTION))

    def _pick(self, pinned: str | None) -> tuple[str | None, ClaimHandle | None] | None:
        """With the lock held: ``(slot, parked claim)`` taken, ``(slot, None)`` with the local slot reserved
        for a new lease, or ``None`` when no open account has a local slot free."""
        usable = self._usable(pinned)
        candidates = [a for a, n in usable.items() if n > 0 and self._open(a)]
        if not candidates:
            return None
        # Parked claims first (they cost no request), then the account with most free slots.
        slot = min(candidates, key=lambda a: (not self._parked.get(a), -usable[a]))
        self._free[slot] -= 1
        parked = self._parked.get(slot)
        return slot, (parked.pop(0) if parked else None)

    def _took(self, slot: str | None, handle: ClaimHandle, pinned: str | None) -> str | None:
        """With the lock held: hold ``handle`` for the slot this thread took, let the next waiter look, and
        return the account for the caller."""
        self._held.setdefault(slot, []).append(handle)
        self._taken_at[threading.get_ident()] = time.monotonic()
        self._wake()
        return slot if slot is not None else pinned

    def _open(self, slot: str | None) -> bool:
        """Usable, and not found full in S3 within the last ``poll`` seconds (call with the lock held)."""
        return super()._open(slot) and self._full_until.get(slot, 0.0) <= time.monotonic()

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
        return sum(1 for w in self._waiters if w.pinned is None or w.pinned == slot or slot is None)

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
        with self._lock:
            self._count_hold()
            slot = account if account in self._free else None
            held = self._held.get(slot)
            handle = held.pop() if held else None
            parked = self._parked.setdefault(slot, [])
            if handle is not None and len(parked) < self._takers(slot):
                parked.append(handle)
                handle = None
            to_delete = self._unwanted_parked()
            self._full_until.pop(slot, None)  # its shared slot is parked here or deleted below: free to try
            # The local slot is freed under the same lock as the claim is parked, so no waiter ever sees a
            # parked claim without the free slot it needs (and gives the claim up).
            super().release(account)
        if handle is not None:
            to_delete.append(handle)
        for stale in to_delete:
            self._keeper.release(stale)

    def _count_hold(self) -> None:
        """Add the slot this thread gives back to the mean hold time (call with the lock held). Holds under
        ``MIN_HOLD`` (a create refused at once) say nothing about how long generations take and are left out."""
        taken = self._taken_at.pop(threading.get_ident(), None)
        if taken is None:
            return
        held = time.monotonic() - taken
        if held >= MIN_HOLD:
            mean = self._hold_mean
            self._hold_mean = held if mean is None else mean + HOLD_WEIGHT * (held - mean)

    def close(self) -> None:
        """Delete every parked claim (the held ones belong to threads still generating)."""
        with self._lock:
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
        hold_hint=settings.generation_hint,
    )
