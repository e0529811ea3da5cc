"""The budget end to end through Dagster (simulator + moto S3 over real sockets, a real sqlite instance): a dry
run over a backfill range, a single-run backfill and two runs in parallel against one budget, each partition's
spend in its metadata, the 80 % warning, and the prompts the budget stopped listed."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest

from minimax_dagster.budget import Budget
from minimax_dagster.resources.io_manager import PartitionedValues
from minimax_dagster_tests import budget_run_process
from minimax_dagster_tests.conftest import S3_SECRET
from minimax_dagster_tests.dagster_support import log_messages, materialize, video_defs

NAMES = ["alpha", "beta", "gamma", "delta"]


@pytest.fixture
def instance(tmp_path: Any) -> Any:
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


@pytest.fixture(autouse=True)
def _secrets_in_env(monkeypatch: Any, simulator: Any) -> None:
    monkeypatch.setenv("USEAPI_TOKEN", simulator.token)
    monkeypatch.setenv("TEST_S3_SECRET", S3_SECRET)


def rows(context: dg.AssetExecutionContext) -> Any:
    by_partition = {
        k: [{"id": "one", "prompt": f"{k} one"}, {"id": "two", "prompt": f"{k} two"}]
        for k in context.partition_keys
    }
    if len(by_partition) == 1:
        return next(iter(by_partition.values()))
    return PartitionedValues(by_partition)


def budget_defs(sim: Any, s3_endpoint: str, bucket: str, new_videos: int) -> dg.Definitions:
    """``prompts`` → ``videos`` over dynamic partitions ``datasets``, two prompts each, under a day's budget."""
    return video_defs(
        rows,
        sim=sim,
        s3_endpoint=s3_endpoint,
        bucket=bucket,
        partitions_def=dg.DynamicPartitionsDefinition(name="datasets"),
        minimax_overrides={"budget": Budget(new_videos=new_videos, per="day", timezone="Europe/Berlin")},
    )


def metadata_by_partition(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    return {
        str(m.partition): {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node("videos")
    }


@pytest.mark.slow
def test_a_backfill_and_parallel_runs_share_one_budget_visibly(
    simulator: Any, s3_endpoint: str, bucket: str, instance: Any
) -> None:
    instance.add_dynamic_partitions("datasets", [*NAMES, "epsilon", "zeta"])
    defs = budget_defs(simulator, s3_endpoint, bucket, 10)
    backfill = {"dagster/asset_partition_range_start": "alpha", "dagster/asset_partition_range_end": "delta"}

    # A dry run over the backfill range: what it would spend against what is left.
    dry = materialize(
        defs, instance, tags=backfill, run_config={"ops": {"videos": {"config": {"dry_run": True}}}}
    )
    assert dry.success and simulator.counters()["creates"] == 0
    dry_lines = [m for m in log_messages(instance, dry.run_id) if m.startswith("budget day ")]
    assert len(dry_lines) == 1 and dry_lines[0].endswith(
        ": this run would create 8 new video(s); 10 left: within the budget"
    ), dry_lines

    # The single-run backfill: 8 of 10 spent, each partition's spend in its metadata, the 80 % warning.
    result = materialize(defs, instance, tags=backfill)
    assert result.success
    metadata = metadata_by_partition(result)
    assert sorted(metadata) == sorted(NAMES)
    for name in NAMES:
        assert metadata[name]["new_paid_videos"] == 2
        assert metadata[name]["budget_day_spent"] == 8 and metadata[name]["budget_day_left"] == 2
        assert metadata[name]["budget_day_used_pct"] == 80.0
    warnings = [
        e.user_message
        for e in instance.all_logs(result.run_id)
        if e.dagster_event is None and e.level == 30 and e.user_message.startswith("budget at 80% of day ")
    ]
    assert len(warnings) == 1 and "8 of 10 new video(s) spent, 2 left" in warnings[0], warnings

    # Two runs at once, each in its own process: 4 videos wanted, 2 left: exactly 2 made, 2 stopped and listed.
    racers = {
        partition: budget_run_process.spawn(
            {
                "instance_ref": dg.serialize_value(instance.get_ref()),
                "sim": {"base_url": simulator.base_url, "origin": simulator.origin},
                "s3_endpoint": s3_endpoint,
                "bucket": bucket,
                "new_videos": 10,
                "partition": partition,
            }
        )
        for partition in ("epsilon", "zeta")
    }
    for process in racers.values():
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    finished = {p: budget_run_process.outcome(process) for p, process in racers.items()}
    assert simulator.counters()["creates"] == 10
    parallel = {}
    for partition, done in finished.items():
        record = instance.get_run_record_by_id(done["run_id"])
        assert record is not None
        mats = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("videos"), asset_partitions=[partition]), limit=1
        ).records
        assert mats, f"no materialization of {partition}"
        parallel[partition] = {k: v.value for k, v in mats[0].asset_materialization.metadata.items()}
    assert sum(m["new_paid_videos"] for m in parallel.values()) == 2
    assert sum(m.get("over_budget", 0) for m in parallel.values()) == 2
    for partition, md in parallel.items():
        assert md["budget_day_spent"] == 10 and md["budget_day_left"] == 0
        stopped = md.get("over_budget", 0)
        if not stopped:
            assert finished[partition]["success"]
            continue
        assert not finished[partition]["success"], (
            "a prompt the budget stopped fails the run (no allow_partial)"
        )
        listed = md["over_budget_prompts"]
        assert len(listed) == stopped and {row["partition"] for row in listed} == {partition}
        assert all(row["error"].startswith("BudgetSpent: budget spent: day ") for row in listed)
        said = log_messages(instance, finished[partition]["run_id"])
        assert any(
            m.startswith(f"{stopped} prompt(s) not created because the budget is spent: ") for m in said
        )
        failure = next(
            e
            for e in instance.all_logs(finished[partition]["run_id"])
            if e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_FAILURE"
        )
        assert "BudgetSpent: budget spent: day " in str(
            failure.dagster_event.event_specific_data.error.message
        )
