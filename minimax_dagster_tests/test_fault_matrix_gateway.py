"""The fault matrix's gateway rows (issue 14): a create answered 502/504 is never sent again blindly.

useapi.net's docs (POST accounts/{account}) warn that MiniMax "responds with 502 or 504 while still accepting jobs
into the internal queue". The simulator plays both sides: ``http502_queued`` / ``http504_queued`` answer 502/504
AND queue the job on the account (hidden from GET scheduler/available, listed by GET videos/ with its prompt);
plain ``http502`` / ``http504`` make no job. Against each, through a Dagster materialization and through the
client alone: a queued job is found in the account's list and its video kept after ONE create; when nothing was
queued, the client looks first and then creates once more. A look that cannot be made (the account's list
answers 500) ends the row with ``CreateOutcomeUnknownError``: not sent again, not retried by Dagster, and the
rest of the run kept. Every request goes through :class:`~minimax_dagster_tests.fault_support.ApiProxy`, whose
log shows the order of the creates and the looks. ``docs/FAULTS.md`` lists these rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import dagster as dg
import pytest

from minimax_dagster import MiniMaxClient
from minimax_dagster.api.errors import CreateOutcomeUnknownError
from minimax_dagster.api.reconcile import ReconcilePolicy
from minimax_dagster.simulator import MiniMaxSimulator
from minimax_dagster_tests.dagster_support import TEMPLATE
from minimax_dagster_tests.fault_support import ApiProxy, Env

pytestmark = pytest.mark.usefixtures("module_secrets")

ACCOUNTS = {"100001": 3, "100002": 3}


@pytest.fixture(scope="module")
def sim() -> Iterator[MiniMaxSimulator]:
    """A fast simulator with two accounts (so every account-scoped call must name one)."""
    with MiniMaxSimulator(generation_seconds=0.3, heartbeat_seconds=0.1, accounts=ACCOUNTS) as s:
        yield s


@pytest.fixture
def proxy(sim: MiniMaxSimulator) -> Iterator[ApiProxy]:
    with ApiProxy(sim.origin) as p:
        yield p


def listed_with_prompt(sim: MiniMaxSimulator, prompt: str) -> list[tuple[str, str]]:
    """``(account, videoId)`` of every video whose desc is ``prompt``, read from each account's GET videos/."""
    with MiniMaxClient(sim.token, base_url=sim.base_url) as client:
        return [
            (account, str(video.video_id))
            for account in ACCOUNTS
            for video in client.iter_videos(account)
            if video.desc == prompt
        ]


def counted(sim: MiniMaxSimulator, name: str) -> int:
    return int(sim.counters()[name])


# ---------------------------------------------------------------------------------------------------- materialization


@pytest.mark.parametrize("status", [502, 504])
def test_materialization_recovers_the_job_queued_behind_a_gateway_error_after_one_create(
    env: Env, proxy: ApiProxy, status: int
) -> None:
    prompt = f"A heron fishing at dawn, behind a {status} [sim:http{status}_queued]"
    queued_before = counted(env.sim, "queued_behind_gateway_errors")
    result = env.run([{"id": "heron", "prompt": prompt}], overrides={"base_url": proxy.base_url})
    assert result.success, env.failure(result)
    assert counted(env.sim, "queued_behind_gateway_errors") == queued_before + 1, "the fault queued no job"

    entry = env.entries()["heron"]
    [(account, queued_id)] = listed_with_prompt(env.sim, prompt)
    assert entry.status == "generated" and entry.video_id == queued_id and entry.account == account
    assert env.creates(prompt) == 1, "exactly one job for the prompt"
    [post] = proxy.posts(prompt)
    assert any(f"account={account}" in path for path in proxy.lists_between(post)), (
        "found in the account's list"
    )
    assert any(
        f"created {queued_id} (the create's answer was an error or lost; found in GET videos/)" in line
        for line in env.logs(result)
    )
    env.assert_clean()

    again = env.run([{"id": "heron", "prompt": prompt}], overrides={"base_url": proxy.base_url})
    assert again.success and env.entries()["heron"].status == "reused"
    assert env.creates(prompt) == 1 and len(proxy.posts(prompt)) == 1


def looked_then_sent_again(caplog: pytest.LogCaptureFixture, status: int) -> bool:
    """Whether the client said that its look after the failed POST found no job, and only then sent it again
    (the request log alone cannot tell that look from the baseline read of a new create)."""
    return any(
        r.name == "minimax_dagster.api.client"
        and f"the create (POST 1) failed (HTTP {status}" in r.getMessage()
        and "and no job found: sending it again" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.parametrize("status", [502, 504])
def test_materialization_creates_once_more_only_after_looking_when_nothing_was_queued(
    env: Env, proxy: ApiProxy, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    prompt = f"A kingfisher on a branch, behind a plain {status} [sim:http{status}]"
    caplog.set_level(logging.WARNING, logger="minimax_dagster.api.client")
    result = env.run([{"id": "kingfisher", "prompt": prompt}], overrides={"base_url": proxy.base_url})
    assert result.success, env.failure(result)
    entry = env.entries()["kingfisher"]
    assert entry.status == "generated" and not entry.reattached
    assert env.creates(prompt) == 1, "the refused create made no job; the second made the one video"
    first, second = proxy.posts(prompt)
    looks = proxy.lists_between(first + 1, second)
    assert any(f"account={entry.account}" in path for path in looks), "no second POST before looking"
    assert looked_then_sent_again(caplog, status)
    assert listed_with_prompt(env.sim, prompt) == [(entry.account, entry.video_id)]


def test_an_outcome_that_cannot_be_known_fails_the_row_without_a_second_create_or_a_retry(
    env: Env, proxy: ApiProxy
) -> None:
    """The account's list answers 500: the job queued behind the 502 can be neither found nor ruled out."""
    unknown = "A lynx in deep snow [sim:http502_queued]"
    control = "A calm pond at noon"
    proxy.fail = {"/videos/": 500}
    result = env.run(
        [{"id": "lynx", "prompt": unknown}, {"id": "pond", "prompt": control}],
        overrides={"base_url": proxy.base_url},
        retry_policy=dg.RetryPolicy(max_retries=2),
    )
    message = env.failure(result)
    assert result.retry_attempts_for_node("videos") == 0, "a retry would create the unknown job again"
    line = next(m for m in message.splitlines() if m.strip().startswith("- lynx:"))
    [(account, _queued)] = listed_with_prompt(env.sim, unknown)
    assert f"CreateOutcomeUnknownError on account {account}" in line
    assert "check GET videos/?account=" in line and "re-running this row would pay for it again" in line
    assert len(proxy.posts(unknown)) == 1 and env.creates(unknown) == 1
    entries = env.entries()
    assert entries["lynx"].status == "failed" and entries["pond"].status == "generated", "the rest is kept"
    assert any("the step is not retried" in m for m in env.logs(result))
    env.assert_clean()


# ---------------------------------------------------------------------------------------------------- client alone


def client_for(base_url: str, token: str) -> MiniMaxClient:
    return MiniMaxClient(
        token,
        base_url=base_url,
        poll_interval=0.05,
        backoff_factor=0.01,
        backoff_jitter=0.0,
        reconcile=ReconcilePolicy(settle_seconds=0.05),
    )


@pytest.mark.parametrize("status", [502, 504])
def test_client_alone_reattaches_to_the_queued_job_after_one_post(
    sim: MiniMaxSimulator, proxy: ApiProxy, status: int
) -> None:
    prompt = f"A red fox in the snow, client alone, {status} [sim:http{status}_queued]"
    # No account named: the API picks one at random, so the client looks at every video account.
    with client_for(proxy.base_url, sim.token) as client:
        result = client.generate({"templateId": TEMPLATE, "prompt": prompt})
    [(account, queued_id)] = listed_with_prompt(sim, prompt)
    assert result.video_id == queued_id and result.posts == 1 and result.reconciled == "GET videos/"
    assert sim.counters()["creates_by_prompt"][prompt] == 1 and len(proxy.posts(prompt)) == 1
    assert f"account={account}" in " ".join(proxy.lists_between(proxy.posts(prompt)[0]))
    assert result.video.best_url


@pytest.mark.parametrize("status", [502, 504])
def test_client_alone_creates_once_more_when_nothing_was_queued(
    sim: MiniMaxSimulator, proxy: ApiProxy, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    prompt = f"A grey owl at night, client alone, {status} [sim:http{status}]"
    caplog.set_level(logging.WARNING, logger="minimax_dagster.api.client")
    with client_for(proxy.base_url, sim.token) as client:
        result = client.generate({"templateId": TEMPLATE, "prompt": prompt, "account": "100002"})
    first, second = proxy.posts(prompt)
    assert result.posts == 2 and result.reconciled is None
    assert any("account=100002" in path for path in proxy.lists_between(first + 1, second))
    assert looked_then_sent_again(caplog, status)
    assert sim.counters()["creates_by_prompt"][prompt] == 1
    assert listed_with_prompt(sim, prompt) == [("100002", result.video_id)]


def test_client_alone_raises_outcome_unknown_when_the_list_cannot_be_read(
    sim: MiniMaxSimulator, proxy: ApiProxy
) -> None:
    prompt = "A badger at dusk, client alone [sim:http504_queued]"
    proxy.fail = {"/videos/": 500}
    with client_for(proxy.base_url, sim.token) as client, pytest.raises(CreateOutcomeUnknownError) as info:
        client.generate({"templateId": TEMPLATE, "prompt": prompt, "account": "100001"})
    assert not info.value.retryable and "cannot read the videos of account 100001" in str(info.value)
    assert len(proxy.posts(prompt)) == 1 and sim.counters()["creates_by_prompt"][prompt] == 1
