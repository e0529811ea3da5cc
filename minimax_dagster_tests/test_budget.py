"""The spend budget against the simulator and moto's S3 server, over real sockets: producer processes racing
past a budget, reservations given back or kept by the create's outcome, windows that start fresh (an injected
clock, no sleep), reuse that costs nothing, credits, and ``max_new_videos`` enforced at each create."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from minimax_dagster.api.client import MiniMaxClient
from minimax_dagster.api.reconcile import ReconcilePolicy
from minimax_dagster.budget.__main__ import main as budget_main
from minimax_dagster.production import ProducerSettings, VideoProducer, VideoPrompt
from minimax_dagster.production.budget import RunBudget
from minimax_dagster.production.budget_windows import BudgetPolicy, WindowLimit
from minimax_dagster.storage import DownloadPolicy
from minimax_dagster.storage.ledger import Ledger, read_ledger, update_ledger
from minimax_dagster_tests.fault_support import ApiProxy
from minimax_dagster_tests.producer_process import TEMPLATE, results, spawn, start
from minimax_dagster_tests.producer_support import producer_for, run_collecting

DAY = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.timezone.utc)
DAY_KEY = "_minimax_budget/day/2026-12-07.json"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def budget_of(
    s3_client: Any, bucket: str, *, clock: Clock | None = None, run_id: str = "run-a", **limit: Any
) -> RunBudget:
    """A one-window budget (``per`` day unless said) on ``bucket``, at 2026-12-07 unless ``clock`` says."""
    per = limit.pop("per", "day")
    cap = limit.pop("run_cap", None)
    credits = limit.pop("template_credits", {})
    unknown = limit.pop("unknown_credits", None)
    policy = BudgetPolicy(
        windows=(WindowLimit(per, **limit),) if limit else (),
        template_credits=credits,
        unknown_credits=unknown,
    )
    return RunBudget(
        s3_client, bucket, policy, run_id=run_id, asset="videos", run_cap=cap, clock=clock or Clock(DAY)
    )


def prompts(*texts: str, template_id: str = TEMPLATE) -> list[VideoPrompt]:
    return [VideoPrompt(id=f"p{i}", prompt=t, template_id=template_id) for i, t in enumerate(texts)]


def ledger_at(s3_client: Any, bucket: str, key: str = DAY_KEY) -> Ledger:
    found = read_ledger(s3_client, bucket, key)
    assert found is not None, f"no ledger at {key}"
    return found[0]


# ------------------------------------------------------------------------------------------------ racing


def test_processes_racing_past_a_budget_spend_exactly_it_and_the_rest_are_refused(
    simulator: Any, s3_endpoint: str, s3_client: Any, bucket: str
) -> None:
    racers = [
        spawn(
            simulator,
            s3_endpoint,
            bucket,
            [(f"{name}{i}", f"A lighthouse in a storm, {name} take {i}") for i in range(4)],
            budget={"new_videos": 5, "per": "day", "run_id": f"run-{name}"},
        )
        for name in "abc"
    ]
    start(*racers)
    entries = [e for p in racers for e in results(p)[0]]

    assert len(entries) == 12
    made = [e for e in entries if e["status"] == "generated"]
    refused = [e for e in entries if e["status"] == "failed"]
    assert simulator.counters()["creates"] == 5 and len(made) == 5 and len(refused) == 7
    for entry in refused:
        error = entry["error"]
        assert error.startswith("BudgetSpent: budget spent: day ") and "allows 5 new video(s)" in error, error
        assert "5 new video(s) are spent or reserved (by run run-" in error
        assert "it resets at " in error and "to go on, raise the budget's per-day new_videos" in error
        assert error.endswith("Not created: no job, nothing paid")
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    ledger = ledger_at(s3_client, bucket, f"_minimax_budget/day/{today}.json")
    assert ledger.spent() == (5, 0) and ledger.limit_videos == 5
    assert sorted(e.video_id for e in ledger.entries) == sorted(e["video_id"] for e in made)
    assert {e.status for e in ledger.entries} == {"spent"} and ledger.released == 0


def test_many_writers_never_lose_an_entry(s3_client: Any, bucket: str) -> None:
    """The ledger's read-modify-write under contention: 6 threads adding 5 entries each, every one kept."""
    from concurrent.futures import ThreadPoolExecutor

    budget = budget_of(s3_client, bucket, new_videos=1000)

    def reserve(i: int) -> None:
        for j in range(5):
            budget.reserve(VideoPrompt(id=f"t{i}-{j}", template_id=TEMPLATE), f"k{i}-{j}")

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(reserve, range(6)))
    assert ledger_at(s3_client, bucket).spent() == (30, 0)


# ------------------------------------------------------------------------------------------------ outcomes


def test_a_create_refused_by_the_api_gives_its_reservation_back(
    simulator: Any, s3_client: Any, bucket: str
) -> None:
    budget = budget_of(s3_client, bucket, new_videos=3)
    entries, _ = run_collecting(
        producer_for(simulator, s3_client, bucket, budget=budget),
        [
            *prompts("A moderated owl [sim:moderated_prompt]", "An owl"),  # 422 before the stream; a video
            VideoPrompt(
                id="nt", prompt="An owl, no such template", template_id="999"
            ),  # 404 before the stream
        ],
    )
    assert [entries[i].status for i in ("p0", "p1", "nt")] == ["failed", "generated", "failed"]
    ledger = ledger_at(s3_client, bucket)
    assert [e.prompt_id for e in ledger.entries] == ["p1"] and ledger.released == 2, ledger
    assert ledger.entries[0].video_id == entries["p1"].video_id
    # 412 out of credits on every account: refused each time, then no account is left to send it to.
    later, _ = run_collecting(
        producer_for(simulator, s3_client, bucket, budget=budget),
        prompts("An owl without credits [sim:credits]"),
    )
    assert "NoUsableAccount" in (later["p0"].error or "")
    assert ledger_at(s3_client, bucket).released == 3 and simulator.counters()["creates"] == 1


def test_a_create_whose_outcome_is_unknown_keeps_its_reservation(
    simulator: Any, s3_client: Any, bucket: str
) -> None:
    budget = budget_of(s3_client, bucket, new_videos=3)
    with ApiProxy(simulator.origin, fail={"/videos/": 500}) as proxy:

        def client() -> MiniMaxClient:
            return MiniMaxClient(
                simulator.token,
                base_url=proxy.base_url,
                poll_interval=0.05,
                backoff_factor=0.01,
                reconcile=ReconcilePolicy(settle_seconds=0.05),
            )

        settings = ProducerSettings(
            bucket=bucket,
            prefix="minimax",
            policy=DownloadPolicy(allowed_hosts=(simulator.origin,)),
            accounts=dict(simulator.config.accounts),
            generation_deadline=60.0,
        )
        producer = VideoProducer(client, s3_client, settings, budget=budget)
        entries, _ = run_collecting(producer, prompts("A badger at dusk [sim:http504_queued]"))
    assert (entries["p0"].error or "").startswith("CreateOutcomeUnknownError"), entries["p0"].error
    ledger = ledger_at(s3_client, bucket)
    assert [(e.prompt_id, e.status, e.video_id) for e in ledger.entries] == [("p0", "reserved", None)]
    assert ledger.released == 0 and budget.states()[0].left_videos == 2


# ------------------------------------------------------------------------------------------------ windows


def test_a_new_window_starts_fresh(simulator: Any, s3_client: Any, bucket: str) -> None:
    clock = Clock(dt.datetime(2026, 12, 7, 22, 59, tzinfo=dt.timezone.utc))  # 23:59 in Berlin
    policy = BudgetPolicy(windows=(WindowLimit("day", new_videos=1),), timezone="Europe/Berlin")
    budget = RunBudget(s3_client, bucket, policy, run_id="r", asset="videos", clock=clock)
    producer = producer_for(simulator, s3_client, bucket, budget=budget)
    first, _ = run_collecting(producer, prompts("A fox at 23:59", "A fox at midnight"))
    assert sorted(e.status for e in first.values()) == ["failed", "generated"]
    stopped = next(e for e in first.values() if e.status == "failed")
    assert "day 2026-12-07 (Europe/Berlin)" in (stopped.error or "")
    assert "it resets at 2026-12-08T00:00:00+01:00" in (stopped.error or "")

    clock.now = dt.datetime(2026, 12, 7, 23, 0, tzinfo=dt.timezone.utc)  # midnight in Berlin: a new day
    second, _ = run_collecting(producer, [stopped_prompt(stopped)])
    assert second[stopped.id].status == "generated"
    assert ledger_at(s3_client, bucket, "_minimax_budget/day/2026-12-08.json").spent() == (1, 0)
    assert ledger_at(s3_client, bucket, DAY_KEY).spent() == (1, 0)
    assert simulator.counters()["creates"] == 2


def stopped_prompt(entry: Any) -> VideoPrompt:
    return VideoPrompt(id=entry.id, prompt=entry.prompt, template_id=entry.template_id)


def test_reused_videos_cost_nothing(simulator: Any, s3_client: Any, bucket: str) -> None:
    texts = ("A swan on a lake", "A swan taking off")
    first, _ = run_collecting(
        producer_for(simulator, s3_client, bucket, budget=budget_of(s3_client, bucket, new_videos=2)),
        prompts(*texts),
    )
    assert {e.status for e in first.values()} == {"generated"}
    again = budget_of(s3_client, bucket, new_videos=2, run_id="run-b")
    second, _ = run_collecting(producer_for(simulator, s3_client, bucket, budget=again), prompts(*texts))
    assert {e.status for e in second.values()} == {"reused"}
    ledger = ledger_at(s3_client, bucket)
    assert ledger.spent() == (2, 0) and {e.run_id for e in ledger.entries} == {"run-a"}
    assert simulator.counters()["creates"] == 2


# ------------------------------------------------------------------------------------------------ credits, cap


def test_a_credit_budget_counts_each_templates_credits_and_refuses_unknown_ones(
    simulator: Any, s3_client: Any, bucket: str
) -> None:
    budget = budget_of(s3_client, bucket, credits=10, template_credits={TEMPLATE: 4})
    producer = producer_for(simulator, s3_client, bucket, budget=budget)
    entries, _ = run_collecting(producer, prompts("A crab", "A crab dancing", "A crab asleep"))
    assert sorted(e.status for e in entries.values()) == ["failed", "generated", "generated"]
    stopped = next(e for e in entries.values() if e.status == "failed")
    assert "allows 10 credit(s); 8 credit(s) (this video needs 4) are spent or reserved" in (
        stopped.error or ""
    )
    assert ledger_at(s3_client, bucket).spent() == (2, 8)

    unknown = budget_of(s3_client, bucket, credits=100, run_id="run-u")
    other, _ = run_collecting(
        producer_for(simulator, s3_client, bucket, budget=unknown),
        prompts("A crab of unknown price"),
    )
    assert "credits of template" in (other["p0"].error or "") and "budget.unknown_credits" in (
        other["p0"].error or ""
    )
    counted = budget_of(s3_client, bucket, credits=100, run_id="run-c", unknown_credits=30)
    third, _ = run_collecting(
        producer_for(simulator, s3_client, bucket, budget=counted), prompts("A crab, counted")
    )
    assert third["p0"].status == "generated"
    assert ledger_at(s3_client, bucket).spent() == (3, 38)


def test_max_new_videos_is_enforced_at_each_create_across_the_steps_of_a_run(
    simulator: Any, s3_client: Any, bucket: str
) -> None:
    # Two steps (two producers) of one run, each planning 2 new videos: the run's cap of 3 holds across both.
    steps = [budget_of(s3_client, bucket, run_cap=3, run_id="run-x") for _ in range(2)]
    made = 0
    for n, budget in enumerate(steps):
        entries, _ = run_collecting(
            producer_for(simulator, s3_client, bucket, budget=budget),
            prompts(f"A heron, step {n}", f"A heron flying, step {n}"),
        )
        made += sum(e.status == "generated" for e in entries.values())
        for entry in entries.values():
            if entry.status == "failed":
                assert "run run-x of videos (max_new_videos=3) allows 3 new video(s)" in (entry.error or "")
                assert "raise max_new_videos for this run" in (entry.error or "")
    assert made == 3 and simulator.counters()["creates"] == 3
    assert ledger_at(s3_client, bucket, "_minimax_budget/runs/run-x/videos.json").spent() == (3, 0)


# ------------------------------------------------------------------------------------------------ the command


@pytest.fixture
def spent_ledger(s3_client: Any, bucket: str) -> Iterator[str]:
    budget = budget_of(s3_client, bucket, new_videos=3)
    reservation = budget.reserve(VideoPrompt(id="fox", template_id=TEMPLATE, partition="2026-12-07"), "v1-k")
    budget.spend(reservation, "4242")
    update_ledger(
        s3_client, bucket, "_minimax_budget/runs/r/videos.json", lambda ledger: Ledger(window="run r")
    )
    yield bucket


def test_budget_show_prints_spend_per_window_asset_and_run(
    spent_ledger: str, s3_endpoint: str, capsys: Any, monkeypatch: Any
) -> None:
    from minimax_dagster_tests.conftest import S3_KEY_ID, S3_SECRET

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    assert budget_main(["show", "--bucket", spent_ledger, "--endpoint-url", s3_endpoint, "--entries"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"day 2026-12-07 (UTC)  (s3://{spent_ledger}/{DAY_KEY})"
    assert "spent: 1 of 3 new video(s), 0 credit(s); 0 given back; resets 2026-12-08T00:00:00+00:00" in out
    assert "per asset: videos 1" in out and "per run: run-a 1 (videos)" in out
    assert "spent  run run-a  videos  2026-12-07  fox  video 4242" in out
    assert "run r  (s3://" not in out, "the single runs' ledgers only with --runs"
    assert budget_main(["show", "--bucket", spent_ledger, "--endpoint-url", s3_endpoint, "--runs"]) == 0
    assert "run r  (s3://" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ configuration


def test_the_budget_in_yaml_and_the_environment_and_its_mistakes_named() -> None:
    from minimax_dagster.code_location.environment import EnvSettings
    from minimax_dagster.components.video.resource_attributes import MiniMaxResources

    resources = MiniMaxResources.resolve_from_dict(
        {
            "minimax": {
                "api_token": "{{ env.USEAPI_TOKEN }}",
                "budget": {
                    "new_videos": 300,
                    "per": "day",
                    "timezone": "Europe/Berlin",
                    "windows": [{"per": "month", "credits": 90000}],
                    "template_credits": {TEMPLATE: 50},
                },
            }
        }
    )
    policy = resources.minimax.budget.policy()
    assert [(w.per, w.new_videos, w.credits) for w in policy.windows] == [
        ("day", 300, None),
        ("month", None, 90000),
    ]
    assert policy.timezone == "Europe/Berlin" and policy.template_credits == {TEMPLATE: 50}
    from_env = EnvSettings.from_env({"MINIMAX_BUDGET": "300/day,credits:90000/month"}).minimax_resource()
    assert from_env.budget is not None and from_env.budget.policy().windows == policy.windows
    for bad, named in (
        ({"new_videos": 3, "timezone": "Berlin"}, "budget timezone 'Berlin' is not an IANA time zone"),
        ({"new_videos": -1}, "new_videos"),
        ({"per": "day"}, "a budget per day needs new_videos or credits"),
        ({"new_videos": 1, "windows": [{"per": "day", "new_videos": 2}]}, "must each have their own per"),
    ):
        with pytest.raises(Exception) as info:
            MiniMaxResources.resolve_from_dict(
                {"minimax": {"api_token": "{{ env.USEAPI_TOKEN }}", "budget": bad}}
            )
        assert named in str(info.value), (bad, str(info.value))


def test_the_documented_environment_sets_the_documented_budget() -> None:
    """docs/BUDGET.md's ``export`` lines, read as written, give the budget the page describes."""
    import shlex

    from minimax_dagster.code_location.environment import EnvSettings
    from minimax_dagster_tests.doc_examples import examples, shell_commands

    env: dict[str, str] = {}
    for example in examples("bash"):
        if example.path.endswith("BUDGET.md"):
            for command in shell_commands(example):
                word = shlex.split(command, comments=True)
                if word and word[0] == "export":
                    env.update(item.split("=", 1) for item in word[1:])  # type: ignore[misc]
    assert set(env) == {
        "MINIMAX_BUDGET",
        "MINIMAX_BUDGET_TIMEZONE",
        "MINIMAX_BUDGET_UNKNOWN_CREDITS",
        "MINIMAX_BUDGET_PREFIX",
    }
    budget = EnvSettings.from_env(env).minimax_resource().budget
    assert budget is not None
    policy = budget.policy()
    assert [(w.per, w.new_videos, w.credits) for w in policy.windows] == [
        ("day", 300, None),
        ("month", 5000, None),
    ]
    assert (policy.timezone, policy.unknown_credits, policy.ledger_prefix) == (
        "Europe/Berlin",
        50,
        "_minimax_budget",
    )
