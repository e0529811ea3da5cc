"""Never billed by surprise (issue 14): ``dry_run`` reports what a run would pay for and does nothing else;
``max_new_videos`` fails a run that would create more paid jobs, before the first create.

Each test runs ``prompts → videos`` through a real Dagster materialization against the simulator and moto's S3
server, and reads the simulator's own counters (creates, create requests, uploads) and the bucket's objects
before and after: a dry run and a capped run leave both exactly as they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest

from minimax_dagster import MiniMaxClient
from minimax_dagster.storage import JobRecord, prompt_sha256, write_job_record
from minimax_dagster_tests.dagster_support import TEMPLATE, log_messages, materialize, video_defs
from minimax_dagster_tests.fault_support import Env

pytestmark = pytest.mark.usefixtures("module_secrets")

TEMPLATE_CREDITS = 50  # the simulator's "Transformers" template detail gives credits: 50 (GUESS field name)


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    from minimax_dagster.simulator import MiniMaxSimulator

    with MiniMaxSimulator(
        generation_seconds=0.3, heartbeat_seconds=0.1, accounts={"100001": 3, "100002": 3}
    ) as s:
        yield s


def run(env: Env, rows: list[Any], config: dict[str, Any] | None = None, **asset_kwargs: Any) -> Any:
    partition_key = asset_kwargs.pop("partition_key", None)
    defs = video_defs(rows, sim=env.sim, s3_endpoint=env.s3_endpoint, bucket=env.bucket, **asset_kwargs)
    run_config = {"ops": {"videos": {"config": config}}} if config else None
    return materialize(defs, env.instance, run_config=run_config, partition_key=partition_key)


def paid_calls(env: Env) -> tuple[int, int, int]:
    """What would show that something was paid for or sent: creates, create requests, uploads."""
    c = env.sim.counters()
    return c["creates"], c["create_requests"], c["uploads"]


def bucket_state(env: Env) -> dict[str, str]:
    """Every object of the bucket and its ETag, but the upstream ``prompts`` asset's value (the same run
    materializes that asset too, as it is asked to)."""
    listed = env.s3.list_objects_v2(Bucket=env.bucket).get("Contents", [])
    return {o["Key"]: o["ETag"] for o in listed if not o["Key"].startswith("minimax/assets/prompts/")}


def observations(result: dg.ExecuteInProcessResult) -> list[dg.AssetObservation]:
    return [
        e.event_specific_data.asset_observation  # type: ignore[union-attr]
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]


def test_dry_run_reports_each_prompt_and_creates_and_writes_nothing(env: Env) -> None:
    done, waiting, failed = (
        "A finished lighthouse",
        "A lighthouse still rendering",
        "A lighthouse that failed",
    )
    first = env.run([{"id": "done", "prompt": done}])
    assert first.success, env.failure(first)
    before_materialization = env.instance.get_latest_materialization_event(dg.AssetKey("videos"))
    # An earlier run's job still running (a crash left its record), and one that failed for good.
    with MiniMaxClient(env.sim.token, base_url=env.sim.base_url) as client:
        running = client.generate({"templateId": TEMPLATE, "prompt": waiting, "account": "100001"})
    for prompt, status, video_id in [(waiting, "running", running.video_id), (failed, "failed", "v-gone")]:
        keys = Env.keys(prompt)
        record = JobRecord(
            key=keys.key,
            video_id=video_id,
            template_id=TEMPLATE,
            prompt_sha256=prompt_sha256(prompt),
            account="100001",
            status=status,  # type: ignore[arg-type]
            extra={"error": "VideoFailedError: the video failed"} if status == "failed" else {},
        )
        write_job_record(env.s3, env.bucket, keys, record)
    rows = [
        {"id": "done", "prompt": done},
        {"id": "waiting", "prompt": waiting},
        {"id": "failed", "prompt": failed},
        {"id": "new", "prompt": "A brand new lighthouse"},
        {"id": "twin", "prompt": "A brand new lighthouse"},
    ]
    calls, objects = paid_calls(env), bucket_state(env)

    result = run(env, rows, {"dry_run": True})

    assert result.success
    assert paid_calls(env) == calls, "a dry run creates, sends and uploads nothing"
    assert bucket_state(env) == objects, "a dry run writes nothing to S3"
    assert result.asset_materializations_for_node("videos") == [], "a dry run is not a materialization"
    latest = env.instance.get_latest_materialization_event(dg.AssetKey("videos"))
    assert latest is not None and before_materialization is not None
    assert latest.run_id == before_materialization.run_id, "downstream still sees the real videos"
    assert not [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    [observation] = observations(result)
    md = {k: v.value for k, v in observation.metadata.items()}
    assert md["dry_run"] is True
    assert (
        md["would_create"],
        md["would_reuse"],
        md["would_reattach"],
        md["same_video"],
        md["would_fail"],
    ) == (
        1,
        1,
        1,
        1,
        1,
    )
    assert md["credits"] == TEMPLATE_CREDITS and md["credits_unknown"] == 0
    decisions = {row["id"]: row["decision"] for row in md["plan_rows"]}
    assert decisions == {
        "done": "reuse",
        "waiting": "reattach",
        "failed": "known_fail",
        "new": "create",
        "twin": "same_video",
    }
    logs = log_messages(env.instance, result.run_id)
    text = "\n".join(logs)
    assert f"[new] would be created: paid, {TEMPLATE_CREDITS} credit(s)" in text
    assert "[done] would be reused (in S3 at s3://" in text
    assert f"[waiting] would be reattached (job {running.video_id} of an earlier run" in text
    assert "[failed] would fail without a create (an earlier run's video v-gone failed" in text
    assert "[twin] same video as another row (new: create)" in text
    assert (
        f"dry run: 5 prompt(s): 1 would be created (paid, {TEMPLATE_CREDITS} credit(s)), 1 reused, 1 reattached"
        in text
    )


def test_dry_run_of_a_partition_reports_on_that_partition(env: Env) -> None:
    daily = dg.DailyPartitionsDefinition(start_date="2026-11-01")
    calls = paid_calls(env)
    result = run(
        env,
        [{"id": "a", "prompt": "Dawn over the harbour"}],
        {"dry_run": True},
        partitions_def=daily,
        partition_key="2026-11-20",
    )
    assert result.success and paid_calls(env) == calls
    [observation] = observations(result)
    assert observation.partition == "2026-11-20"
    assert observation.metadata["would_create"].value == 1


def test_a_run_over_the_cap_fails_before_any_create_naming_the_cap_the_count_and_the_fix(env: Env) -> None:
    first = env.run([{"id": "old", "prompt": "An old windmill"}])
    assert first.success
    rows = [
        {"id": "old", "prompt": "An old windmill"},
        {"id": "n1", "prompt": "A new windmill"},
        {"id": "n2", "prompt": "A newer windmill"},
    ]
    calls, objects = paid_calls(env), bucket_state(env)
    result = run(env, rows, max_new_videos=1, retry_policy=dg.RetryPolicy(max_retries=2))
    message = env.failure(result)
    assert "this run would create 2 new paid video(s), more than max_new_videos=1 allows" in message
    assert "ops: {videos: {config: {max_new_videos: 2}}}" in message and "dry_run: true" in message
    assert "- n1" in message and "- n2" in message and "- old" not in message
    assert paid_calls(env) == calls and bucket_state(env) == objects, "failed before the first create"
    assert result.retry_attempts_for_node("videos") == 0

    # The run config raises the factory's cap; reused videos never count against it.
    allowed = run(env, rows, {"max_new_videos": 2}, max_new_videos=1)
    assert allowed.success, env.failure(allowed)
    assert env.sim.counters()["creates"] == calls[0] + 2
    assert any(
        "2 new paid video(s) planned, within max_new_videos=2" in m
        for m in log_messages(env.instance, allowed.run_id)
    )
    again = run(env, rows, {"max_new_videos": 0})
    assert again.success and env.sim.counters()["creates"] == calls[0] + 2, "a cap of 0 allows reuse only"


def test_a_negative_cap_is_refused_when_the_asset_is_defined() -> None:
    from minimax_dagster.assets.factory import build_minimax_video_asset

    with pytest.raises(ValueError, match="max_new_videos must be 0 or more"):
        build_minimax_video_asset("videos", prompts="prompts", bucket="b", max_new_videos=-1)


# ---------------------------------------------------------------------------------------------------- YAML component

COMPONENT = """
type: minimax_dagster.MiniMaxVideoComponent
attributes:
  asset_key: videos
  prompt_rows: ["A lantern on a pier", "A lantern in a window"]
  template_id: "{template}"
  bucket: "{{{{ env.TEST_BUCKET }}}}"
  max_new_videos: 1
  resources:
    minimax:
      api_token: "{{{{ env.USEAPI_TOKEN }}}}"
      base_url: "{base_url}"
      allowed_download_hosts: ["{origin}"]
      poll_interval: 0.1
      reconcile_settle_seconds: 0.05
    s3:
      endpoint_url: "{s3_endpoint}"
      region_name: us-east-1
      aws_access_key_id: {key_id}
      aws_secret_access_key: "{{{{ env.TEST_S3_SECRET }}}}"
"""


def test_the_yaml_component_takes_max_new_videos_and_the_dry_run(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster.components.testing import create_defs_folder_sandbox

    from minimax_dagster_tests.conftest import S3_KEY_ID

    monkeypatch.setenv("TEST_BUCKET", env.bucket)
    text = COMPONENT.format(
        template=TEMPLATE,
        base_url=env.sim.base_url,
        origin=env.sim.origin,
        s3_endpoint=env.s3_endpoint,
        key_id=S3_KEY_ID,
    )
    calls = paid_calls(env)
    with create_defs_folder_sandbox() as sandbox:
        folder = sandbox.defs_folder_path / "videos"
        folder.mkdir()
        (folder / "defs.yaml").write_text(text.lstrip(), encoding="utf-8")
        with sandbox.load_component_and_build_defs(defs_path=folder) as (_, defs):
            capped = materialize(defs, env.instance)
            dry = materialize(
                defs, env.instance, run_config={"ops": {"videos": {"config": {"dry_run": True}}}}
            )
    assert not capped.success and paid_calls(env) == calls
    message = capped.failure_data_for_node("videos").error.message  # type: ignore[union-attr]
    assert "this run would create 2 new paid video(s), more than max_new_videos=1 allows" in message
    assert dry.success and paid_calls(env) == calls
    [observation] = observations(dry)
    assert observation.metadata["would_create"].value == 2
