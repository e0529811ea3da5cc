"""The account pools: slots counted in this process (``AccountPool``) and leased in moto's S3 server so that
several processes stay within maxJobs together (``SharedAccountPool``)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from minimax_dagster.production.capacity import AccountPool, NoUsableAccount, SharedAccountPool, account_pool
from minimax_dagster.production.producer_settings import ProducerSettings
from minimax_dagster.storage import Claim, ClaimKeeper, DownloadPolicy
from minimax_dagster_tests.s3_support import recorded_s3_calls

SLOTS = "minimax/_slots"


def slot_keys(s3_client: Any, bucket: str) -> dict[str, str]:
    """Key -> ETag of every slot claim in the bucket."""
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix=f"{SLOTS}/")
    return {o["Key"]: o["ETag"] for o in listed.get("Contents", [])}


def blocked_acquire(pool: AccountPool, pinned: str | None = None) -> tuple[threading.Thread, list[Any]]:
    """Start a thread blocked in ``pool.acquire(pinned)``; returns it with the list its result lands in."""
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(pool.acquire(pinned, timeout=30)), daemon=True)
    before = pool.waiting
    thread.start()
    deadline = time.monotonic() + 10
    while pool.waiting <= before:
        assert time.monotonic() < deadline, "the thread never blocked"
        time.sleep(0.01)
    return thread, got


def wait_for_takes(results: list[list[Any]], count: int, what: str) -> None:
    """Wait until ``count`` of the blocked threads whose result lists are ``results`` have taken a slot."""
    deadline = time.monotonic() + 10
    while sum(len(got) for got in results) < count:
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


class LookCountingPool(AccountPool):
    """An AccountPool that counts how often a thread looks for a free slot (each wake-up of a waiter looks)."""

    looks = 0

    def _usable(self, pinned: str | None) -> dict[str | None, int]:
        self.looks += 1
        return super()._usable(pinned)


@pytest.fixture
def keepers(s3_client: Any, bucket: str) -> Iterator[list[ClaimKeeper]]:
    """Two claim keepers on the bucket: two processes as far as S3 can tell (distinct owners)."""
    made = [ClaimKeeper(s3_client, bucket, ttl=60), ClaimKeeper(s3_client, bucket, ttl=60)]
    yield made
    for keeper in made:
        keeper.close()


# ------------------------------------------------------------------------------------------------ AccountPool


def test_the_account_with_most_free_slots_is_taken_first() -> None:
    pool = AccountPool({"a": 1, "b": 2})
    assert [pool.acquire(), pool.acquire(), pool.acquire()] == ["b", "a", "b"]
    with pytest.raises(TimeoutError, match="no free generation slot"):
        pool.acquire(timeout=0)
    pool.release("a")
    assert pool.acquire("a", timeout=0) == "a"


def test_acquire_waits_until_a_slot_is_given_back() -> None:
    pool = AccountPool({"a": 1})
    assert pool.acquire() == "a"
    waiter, got = blocked_acquire(pool)
    waiter.join(timeout=0.2)
    assert waiter.is_alive() and got == [], "no slot is free: the thread waits"
    pool.release("a")
    waiter.join(timeout=10)
    assert got == ["a"]


def test_a_slot_given_back_wakes_one_waiter_not_every_waiter() -> None:
    pool = LookCountingPool({"a": 1})
    assert pool.acquire() == "a"
    waiters = [blocked_acquire(pool) for _ in range(20)]
    pool.looks = 0
    pool.release("a")
    wait_for_takes([got for _, got in waiters], 1, "nobody took the slot given back")
    time.sleep(0.2)  # time for any other thread woken in vain to look
    assert pool.looks == 1, f"{pool.looks} threads looked for the one slot given back (20 were waiting)"
    assert pool.waiting == 19
    for _ in range(19):
        pool.release("a")
    for thread, got in waiters:
        thread.join(timeout=10)
        assert got == ["a"]


def test_the_longest_waiting_thread_gets_the_slot_first() -> None:
    pool = AccountPool({"a": 1})
    assert pool.acquire() == "a"
    first, got_first = blocked_acquire(pool)
    second, got_second = blocked_acquire(pool)
    pool.release("a")
    first.join(timeout=10)
    assert got_first == ["a"] and got_second == [], "first come, first served"
    pool.release("a")
    second.join(timeout=10)
    assert got_second == ["a"]


def test_a_slot_wakes_a_waiter_that_can_use_it_not_one_pinned_elsewhere() -> None:
    pool = AccountPool({"a": 1, "b": 1})
    assert {pool.acquire(), pool.acquire()} == {"a", "b"}
    pinned_b, got_b = blocked_acquire(pool, "b")  # waits longest, but cannot use account a
    anyone, got_any = blocked_acquire(pool)
    pool.release("a")
    anyone.join(timeout=10)
    assert got_any == ["a"] and got_b == []
    pool.release("b")
    pinned_b.join(timeout=10)
    assert got_b == ["b"]


def test_a_waiter_woken_for_a_slot_someone_else_took_passes_the_turn_on() -> None:
    pool = AccountPool({"a": 2})
    assert [pool.acquire(), pool.acquire()] == ["a", "a"]
    first, got_first = blocked_acquire(pool)
    second, got_second = blocked_acquire(pool)
    with pool._lock:  # both slots come back, then this thread takes one before either waiter runs
        pool.release("a")
        pool.release("a")
        assert pool.acquire(timeout=0) == "a"
    # Both were woken for the two slots; one takes the slot left, the other waits again, still counted.
    wait_for_takes([got_first, got_second], 1, "the slot left was not taken")
    assert pool.waiting == 1
    pool.release("a")
    first.join(timeout=10)
    second.join(timeout=10)
    assert got_first == got_second == ["a"]


def test_a_disabled_account_is_skipped_and_the_last_one_fails_naming_the_reasons() -> None:
    pool = AccountPool({"a": 2, "b": 1})
    pool.disable("a", "HTTP 412 out of credits")
    assert pool.acquire() == "b"
    pool.release("b")
    with pytest.raises(NoUsableAccount, match=r"for account a .*a: HTTP 412 out of credits"):
        pool.acquire("a")
    pool.disable("b", "HTTP 596 on hold")
    with pytest.raises(
        NoUsableAccount, match=r"any account .*a: HTTP 412 out of credits; b: HTTP 596 on hold"
    ):
        pool.acquire()


def test_without_known_accounts_every_prompt_shares_the_default_capacity() -> None:
    pool = AccountPool(None, default_capacity=2)
    assert pool.acquire("pinned-1") == "pinned-1", "a pinned account is handed back as asked"
    assert pool.acquire() is None, "None: the API chooses the account"
    with pytest.raises(TimeoutError):
        pool.acquire("pinned-2", timeout=0)
    pool.release("pinned-1")
    assert pool.acquire("pinned-2", timeout=0) == "pinned-2"


def test_a_pin_to_an_unconfigured_account_fails_clearly() -> None:
    with pytest.raises(NoUsableAccount, match="for account zzz"):
        AccountPool({"a": 1}).acquire("zzz")


def test_the_settings_choose_the_pool(s3_client: Any, bucket: str) -> None:
    policy = DownloadPolicy(allowed_hosts=("x.com",))
    local = ProducerSettings(bucket=bucket, prefix="minimax", policy=policy, shared_capacity=False)
    assert type(account_pool(local, None)) is AccountPool
    shared = ProducerSettings(bucket=bucket, prefix="minimax", policy=policy, accounts={"a": 1})
    with pytest.raises(ValueError, match="needs a ClaimKeeper"):
        account_pool(shared, None)
    keeper = ClaimKeeper(s3_client, bucket)
    try:
        pool = account_pool(shared, keeper)
        assert isinstance(pool, SharedAccountPool) and pool.acquire() == "a"
        assert list(slot_keys(s3_client, bucket)) == [f"{SLOTS}/a/0.json"], "slots live under settings.slots"
        pool.release("a")
    finally:
        keeper.close()


# ------------------------------------------------------------------------------------------------ SharedAccountPool


def test_two_processes_share_an_accounts_max_jobs(
    s3_client: Any, bucket: str, keepers: list[ClaimKeeper]
) -> None:
    first, second = (SharedAccountPool({"acc": 1}, keeper=k, prefix=SLOTS, poll=0.05) for k in keepers)
    assert first.acquire() == "acc"
    with pytest.raises(TimeoutError):
        second.acquire(timeout=0.3)  # its own count says 1 free; the account's one slot is held in S3
    first.release("acc")
    assert second.acquire(timeout=10) == "acc"
    assert [c for c in slot_keys(s3_client, bucket)] == [f"{SLOTS}/acc/0.json"]
    second.release("acc")
    assert slot_keys(s3_client, bucket) == {}


def test_threads_here_look_at_an_account_full_elsewhere_once_a_poll_not_each_on_its_own(
    s3_client: Any, bucket: str, keepers: list[ClaimKeeper]
) -> None:
    other, here = (SharedAccountPool({"acc": 1}, keeper=k, prefix=SLOTS, poll=0.2) for k in keepers)
    assert other.acquire() == "acc"
    with recorded_s3_calls(s3_client) as calls:
        waiters = [blocked_acquire(here) for _ in range(5)]
        time.sleep(1.0)  # five polls
        looks = calls.count("ListObjectsV2")
        other.release("acc")  # the other process gives its slot back: the threads here take it in turn
        for taken in range(1, 6):
            wait_for_takes([got for _, got in waiters], taken, "the slot given back was never taken here")
            here.release("acc")
    assert looks <= 10, f"{looks} lists of the account's slots in 1 s by 5 threads polling every 0.2 s"
    for thread, got in waiters:
        thread.join(timeout=10)
        assert got == ["acc"]
    assert slot_keys(s3_client, bucket) == {}


def looks_in_a_second_while_full_elsewhere(
    s3_client: Any, other: SharedAccountPool, here: SharedAccountPool
) -> int:
    """``other`` takes the account's one slot; a thread of ``here`` waits for it for 1 s. Returns how often
    ``here`` listed the account's slots meanwhile; then ``other`` gives the slot back and ``here`` takes and
    returns it."""
    assert other.acquire() == "acc"
    with recorded_s3_calls(s3_client) as calls:
        thread, got = blocked_acquire(here)
        time.sleep(1.0)
        looks = calls.count("ListObjectsV2")
        other.release("acc")
        wait_for_takes([got], 1, "the slot given back elsewhere was never taken here")
    here.release("acc")
    thread.join(timeout=10)
    return looks


def test_a_full_account_is_looked_at_again_after_a_share_of_the_generations_not_after_poll(
    s3_client: Any, bucket: str, keepers: list[ClaimKeeper]
) -> None:
    """A slot given back elsewhere stays empty until a look finds it: once this process has held slots for
    about 0.8 s each (its "generations"), it looks every 0.1 s (1/40 of 0.8 s, floored), not every 1 s."""
    other, here = (SharedAccountPool({"acc": 1}, keeper=k, prefix=SLOTS, poll=1.0) for k in keepers)
    assert here.poll_seconds == 1.0  # nothing held yet: the configured poll
    for _ in range(2):
        assert here.acquire(timeout=10) == "acc"
        time.sleep(0.8)
        here.release("acc")
    assert here.poll_seconds == pytest.approx(0.1)
    looks = looks_in_a_second_while_full_elsewhere(s3_client, other, here)
    assert looks >= 4, f"only {looks} looks at the full account in 1 s: the poll did not follow the holds"


def test_a_hint_of_recent_generations_paces_the_looks_before_any_slot_here_is_given_back(
    s3_client: Any, bucket: str, keepers: list[ClaimKeeper]
) -> None:
    """A new step's pool has given nothing back yet: the hint (the last materialization's median generation,
    here 4 s) paces its looks from the start, every 0.1 s instead of every 1 s; a hint too short to be a
    generation is no hint."""
    assert SharedAccountPool({"acc": 1}, keeper=keepers[1], prefix=SLOTS, hold_hint=0.2).poll_seconds == 1.0
    other = SharedAccountPool({"acc": 1}, keeper=keepers[0], prefix=SLOTS, poll=1.0)
    here = SharedAccountPool({"acc": 1}, keeper=keepers[1], prefix=SLOTS, poll=1.0, hold_hint=4.0)
    assert here.poll_seconds == pytest.approx(0.1)
    looks = looks_in_a_second_while_full_elsewhere(s3_client, other, here)
    assert looks >= 4, f"only {looks} looks at the full account in 1 s: the hint did not pace them"
    assert slot_keys(s3_client, bucket) == {}


def test_holds_too_short_to_be_generations_leave_the_poll_alone(
    s3_client: Any, bucket: str, keepers: list[ClaimKeeper]
) -> None:
    """A create refused at once (a 429, an account out of credits) gives its slot back within milliseconds:
    that says nothing about how long generations take, so the poll stays as configured."""
    pool = SharedAccountPool({"acc": 2}, keeper=keepers[0], prefix=SLOTS, poll=0.7)
    for _ in range(5):
        pool.release(pool.acquire(timeout=10))
    assert pool.poll_seconds == 0.7
    pool.close()
    assert slot_keys(s3_client, bucket) == {}


class SlowFirstLeasePool(SharedAccountPool):
    """A SharedAccountPool whose first new lease waits for ``go`` (a slow S3 request, as on a busy server)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.leasing = threading.Event()
        self.go = threading.Event()

    def _lease(self, slot: str | None) -> Any:
        if not self.leasing.is_set():
            self.leasing.set()
            assert self.go.wait(10)
        return super()._lease(slot)


def test_a_slow_lease_does_not_hold_up_another_thread_taking_a_slot(
    s3_client: Any, bucket: str, keepers: list[ClaimKeeper]
) -> None:
    pool = SlowFirstLeasePool({"acc": 2}, keeper=keepers[0], prefix=SLOTS, poll=0.05)
    try:
        slow = threading.Thread(target=pool.acquire, daemon=True)
        slow.start()
        assert pool.leasing.wait(10)
        quick = threading.Thread(target=pool.acquire, daemon=True)
        quick.start()
        quick.join(timeout=5)
        assert not quick.is_alive(), "the second thread waited for the first one's S3 requests"
        assert len(keepers[0].held()) == 1 and slow.is_alive()
        pool.go.set()
        slow.join(timeout=10)
        assert len(keepers[0].held()) == 2, "each thread leased its own slot"
        with pytest.raises(TimeoutError):
            pool.acquire(timeout=0.1)  # both local slots taken: the reservation counted while leasing
        pool.release("acc")
        pool.release("acc")
        assert slot_keys(s3_client, bucket) == {}
    finally:
        pool.go.set()
        pool.close()


def test_a_slot_held_by_a_dead_process_is_taken_over(
    s3_client: Any, bucket: str, keepers: list[ClaimKeeper]
) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    now = time.time()
    dead = Claim(
        owner="gone:1:x", host=keepers[0].host, pid=child.pid, acquired_at=now, renewed_at=now, ttl=60
    )
    s3_client.put_object(Bucket=bucket, Key=f"{SLOTS}/acc/0.json", Body=dead.model_dump_json())
    pool = SharedAccountPool({"acc": 1}, keeper=keepers[0], prefix=SLOTS, poll=0.05)
    assert pool.acquire(timeout=10) == "acc"
    assert keepers[0].held() == [f"{SLOTS}/acc/0.json"]
    pool.release("acc")


def test_a_slot_given_back_is_handed_to_a_waiting_thread_with_its_claim(
    s3_client: Any, bucket: str, keepers: list[ClaimKeeper]
) -> None:
    keeper = keepers[0]
    pool = SharedAccountPool({"acc": 1}, keeper=keeper, prefix=SLOTS, poll=0.2)
    try:
        assert pool.acquire() == "acc"
        claimed = slot_keys(s3_client, bucket)
        assert list(claimed) == [f"{SLOTS}/acc/0.json"]
        waiter, got = blocked_acquire(pool)
        with recorded_s3_calls(s3_client) as calls:
            pool.release("acc")
            waiter.join(timeout=10)
        assert got == ["acc"]
        assert calls == [], "the claim changed hands inside the process: no delete, list or create in S3"
        assert slot_keys(s3_client, bucket) == claimed and keeper.held() == list(claimed)
        pool.release("acc")  # nobody waits now: the claim is deleted
        assert slot_keys(s3_client, bucket) == {} and keeper.held() == []
    finally:
        pool.close()


def test_a_waiter_slow_to_get_the_lock_still_takes_the_claim_parked_for_it(
    s3_client: Any, bucket: str, keepers: list[ClaimKeeper]
) -> None:
    """On a loaded machine a woken waiter may run many ``poll`` periods after the hand-over; it must not
    then give its own claim back and lease a new one (CI once paid a delete, a list and a create for this)."""
    pool = SharedAccountPool({"acc": 1}, keeper=keepers[0], prefix=SLOTS, poll=0.05)
    try:
        assert pool.acquire() == "acc"
        waiter, got = blocked_acquire(pool)
        with recorded_s3_calls(s3_client) as calls:
            with pool._lock:  # the waiter cannot run while this thread holds the pool's lock
                pool.release("acc")
                time.sleep(0.3)  # six polls
            waiter.join(timeout=10)
        assert got == ["acc"]
        assert calls == [], "the parked claim changed hands however late the waiter ran"
        assert list(slot_keys(s3_client, bucket)) == [f"{SLOTS}/acc/0.json"]
        pool.release("acc")
        assert slot_keys(s3_client, bucket) == {}
    finally:
        pool.close()


def test_a_claim_is_parked_for_each_waiter_not_for_each_slot_given_back(
    s3_client: Any, bucket: str, keepers: list[ClaimKeeper]
) -> None:
    pool = SharedAccountPool({"acc": 3}, keeper=keepers[0], prefix=SLOTS, poll=0.05)
    try:
        assert [pool.acquire(), pool.acquire(), pool.acquire()] == ["acc"] * 3
        waiter, got = blocked_acquire(pool)
        with recorded_s3_calls(s3_client) as calls:
            with pool._lock:  # both slots come back before the one waiter runs
                pool.release("acc")
                pool.release("acc")
            waiter.join(timeout=10)
        assert got == ["acc"]
        assert calls == ["DeleteObject"], "the second claim had no taker: it went back to S3 at once"
        assert len(slot_keys(s3_client, bucket)) == 2 and len(keepers[0].held()) == 2
        pool.release("acc")
        pool.release("acc")
        assert slot_keys(s3_client, bucket) == {} and keepers[0].held() == []
    finally:
        pool.close()


def test_a_claim_parked_for_a_waiter_that_took_another_account_goes_back_to_s3(
    s3_client: Any, bucket: str, keepers: list[ClaimKeeper]
) -> None:
    pool = SharedAccountPool({"a": 1, "b": 1}, keeper=keepers[0], prefix=SLOTS, poll=0.05)
    try:
        assert {pool.acquire(), pool.acquire()} == {"a", "b"}
        waiter, got = blocked_acquire(pool)  # any account will do for it
        with recorded_s3_calls(s3_client) as calls:
            with pool._lock:  # both come back, each parked for the one waiter, before it runs
                pool.release("a")
                pool.release("b")
                assert calls == []
            waiter.join(timeout=10)
        assert got in (["a"], ["b"])
        assert calls == ["DeleteObject"], "the waiter took one: the other claim is not kept parked"
        assert list(slot_keys(s3_client, bucket)) == [f"{SLOTS}/{got[0]}/0.json"]
        pool.release(got[0])
        assert slot_keys(s3_client, bucket) == {}
    finally:
        pool.close()


def test_a_slot_is_not_parked_for_a_thread_pinned_to_another_account(
    s3_client: Any, bucket: str, keepers: list[ClaimKeeper]
) -> None:
    pool = SharedAccountPool({"a": 1, "b": 1}, keeper=keepers[0], prefix=SLOTS, poll=0.2)
    try:
        assert {pool.acquire("a"), pool.acquire("b")} == {"a", "b"}
        waiter, got = blocked_acquire(pool, "b")
        pool.release("a")  # the waiter cannot use account a: its claim goes back to S3 at once
        assert list(slot_keys(s3_client, bucket)) == [f"{SLOTS}/b/0.json"]
        pool.release("b")
        waiter.join(timeout=10)
        assert got == ["b"] and list(slot_keys(s3_client, bucket)) == [f"{SLOTS}/b/0.json"]
        pool.release("b")
        assert slot_keys(s3_client, bucket) == {}
    finally:
        pool.close()


def test_a_disabled_accounts_slot_is_not_parked_and_close_leaves_nothing(
    s3_client: Any, bucket: str, keepers: list[ClaimKeeper]
) -> None:
    pool = SharedAccountPool({"a": 1, "b": 1}, keeper=keepers[0], prefix=SLOTS, poll=0.2)
    assert {pool.acquire(), pool.acquire()} == {"a", "b"}
    waiter, got = blocked_acquire(pool)
    pool.disable("a", "HTTP 412 out of credits")
    pool.release("a")  # the waiter could take any account, but not a disabled one
    assert list(slot_keys(s3_client, bucket)) == [f"{SLOTS}/b/0.json"]
    pool.release("b")
    waiter.join(timeout=10)
    assert got == ["b"]
    pool.release("b")
    pool.close()
    assert slot_keys(s3_client, bucket) == {} and keepers[0].held() == []
