"""The video asset's execution through a real sqlite Dagster instance (simulator + moto over real sockets):
per-partition truth in a single-run backfill, checks per partition, the factory's Dagster options, and the
number of event-log records a video costs."""

from __future__ import annotations

import datetime as dt
import re

import dagster as dg
import pytest

from minimax_dagster import compat
from minimax_dagster.assets.factory import VIDEO_ASSET_KINDS, build_minimax_video_asset
from minimax_dagster.metadata.markdown import PROMPT_CHARS, WORD_CHARS, escape_markdown
from minimax_dagster.production.manifest import VideoManifest
from minimax_dagster.resources.io_manager import S3JsonIOManager
from minimax_dagster.resources.minimax import MiniMaxResource, MiniMaxS3Resource
from minimax_dagster.storage import get_json
from minimax_dagster_tests.conftest import S3_SECRET
from minimax_dagster_tests.dagster_support import TEMPLATE, log_messages, materialize, video_defs

VIDEOS = dg.AssetKey("videos")
DATASETS = {
    "small": [{"id": "a", "prompt": "small: a lighthouse at dusk"}, {"id": "b", "prompt": "small: a tram"}],
    "large": [
        {"id": "a", "prompt": "large: a fox in snow"},
        {"id": "b", "prompt": "large: a heron in fog"},
        {"id": "c", "prompt": "large: a paper boat"},
    ],
}


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


@pytest.fixture(autouse=True)
def _secrets_in_env(monkeypatch, simulator):
    monkeypatch.setenv("USEAPI_TOKEN", simulator.token)
    monkeypatch.setenv("TEST_S3_SECRET", S3_SECRET)


def _dataset_rows(context: dg.AssetExecutionContext):
    from minimax_dagster.resources.io_manager import PartitionedValues

    values = {k: DATASETS[k] for k in context.partition_keys}
    return PartitionedValues(values) if len(values) > 1 else next(iter(values.values()))


def _backfill(simulator, s3_endpoint, bucket, instance, **asset_kwargs):
    datasets = dg.DynamicPartitionsDefinition(name="datasets")
    instance.add_dynamic_partitions("datasets", list(DATASETS))
    defs = video_defs(
        _dataset_rows,
        sim=simulator,
        s3_endpoint=s3_endpoint,
        bucket=bucket,
        partitions_def=datasets,
        **asset_kwargs,
    )
    tags = {"dagster/asset_partition_range_start": "small", "dagster/asset_partition_range_end": "large"}
    return defs, tags, materialize(defs, instance, tags=tags)


def _latest_metadata(instance: dg.DagsterInstance, partition: str | None) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=VIDEOS, asset_partitions=[partition] if partition else None), limit=1
    ).records
    assert records, f"no materialization of partition {partition}"
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def shown(prompt: str) -> str:
    """A prompt as the metadata's table cell shows it."""
    return escape_markdown(prompt, PROMPT_CHARS, break_every=WORD_CHARS)


def _lines(records: list[str]) -> list[str]:
    """The lines of log records (a record may hold several when logging had to catch up)."""
    return [line for record in records for line in record.splitlines()]


def _check_statuses(instance: dg.DagsterInstance, name: str) -> dict[str | None, str]:
    key = dg.AssetCheckKey(VIDEOS, name)
    infos = instance.event_log_storage.get_asset_check_partition_info([key])
    assert all(info.is_current for info in infos), (
        "each evaluation targets its partition's latest materialization"
    )
    return {info.partition_key: info.latest_execution_status.value for info in infos}


def test_single_run_backfill_gives_each_partition_its_own_truth(
    simulator, s3_endpoint, s3_client, bucket, instance
):
    _defs, _tags, result = _backfill(simulator, s3_endpoint, bucket, instance)
    assert result.success
    assert simulator.counters()["creates"] == 5

    seen_ids: set[str] = set()
    for partition, rows in DATASETS.items():
        manifest = VideoManifest.model_validate(
            get_json(s3_client, bucket, f"minimax/assets/videos/{partition}.json")
        )
        assert [e.id for e in manifest.entries] == [r["id"] for r in rows]
        assert [e.prompt for e in manifest.entries] == [r["prompt"] for r in rows]
        assert {e.partition for e in manifest.entries} == {partition}

        md = _latest_metadata(instance, partition)
        n = len(rows)
        assert (md["requested"], md["generated"], md["failed"]) == (n, n, 0), partition
        assert md["dagster/row_count"] == n
        assert sorted(md["video_ids"]) == sorted(e.video_id for e in manifest.entries)
        # The link (to moto's endpoint here) opens this partition's own manifest object.
        assert md["manifest"].endswith(f"/{bucket}/minimax/assets/videos/{partition}.json")
        assert md["bytes_total"] == sum(e.bytes for e in manifest.entries)
        assert md["generation_seconds_total"] == pytest.approx(
            sum(e.generation_seconds for e in manifest.entries), abs=0.01
        )
        # Every row has its poster's thumbnail by the time the step ends (made while the others generated).
        assert md["videos"].count("](data:image/jpeg;base64,") == n, partition
        # The table shows the dataset's text escaped for Markdown (metadata.escape_markdown).
        for row in rows:
            assert shown(row["prompt"]) in md["videos"]
        other = next(p for p in DATASETS if p != partition)
        assert not any(shown(row["prompt"]) in md["videos"] for row in DATASETS[other])
        assert not seen_ids & set(md["video_ids"]), "a video id appears in two partitions"
        seen_ids |= set(md["video_ids"])

    # The run-wide totals are said once, in the log, and not attached to the output (which would copy them
    # onto every partition's materialization).
    logs = _lines(log_messages(instance, result.run_id))
    totals = [m for m in logs if m.startswith("run total:")]
    assert totals == [m for m in totals if m.startswith("run total: 5 prompt(s) in 2 partition(s)")]
    assert len(totals) == 1
    outputs = [
        e
        for e in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.STEP_OUTPUT)
        if e.step_key == "videos"
    ]
    assert [dict(e.dagster_event.step_output_data.metadata) for e in outputs] == [{}]
    assert any(m.startswith("[large/c] created user:") for m in logs)
    assert any(m.startswith("[small/a] ") and "stored " in m for m in logs)


def _damage_one_video_and_check_again(defs, tags, s3_client, bucket, instance) -> dg.ExecuteInProcessResult:
    """Overwrite the second video of "large" with junk, then run only the checks over both partitions."""
    manifest = VideoManifest.model_validate(get_json(s3_client, bucket, "minimax/assets/videos/large.json"))
    s3_client.put_object(
        Bucket=bucket, Key=manifest.entries[1].s3_uri.removeprefix(f"s3://{bucket}/"), Body=b"not a video"
    )
    job = dg.define_asset_job("checks_only", selection=dg.AssetSelection.checks_for_assets(VIDEOS))
    checks = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("checks_only")
    return checks.execute_in_process(instance=instance, tags=tags, raise_on_error=False)


def _assert_large_b_is_not_an_mp4(problems: list[str]) -> None:
    assert problems and all(p.startswith("large/b: ") for p in problems)
    assert any("is not an MP4" in p for p in problems)


def test_checks_are_evaluated_per_partition_and_agree(simulator, s3_endpoint, s3_client, bucket, instance):
    """Per partition where Dagster has partitioned checks; once per run, as docs/COMPATIBILITY.md states, on
    dagster 1.12.0 to 1.12.12 (minimax_dagster.compat)."""
    defs, tags, result = _backfill(simulator, s3_endpoint, bucket, instance)
    assert result.success
    if compat.PARTITIONED_CHECKS:
        _per_partition(defs, tags, result, s3_client, bucket, instance)
    else:
        _once_per_run(defs, tags, result, s3_client, bucket, instance)


def _per_partition(defs, tags, result, s3_client, bucket, instance) -> None:
    evaluations = {(c.check_name, c.partition): c.passed for c in result.get_asset_check_evaluations()}
    assert evaluations == {
        (name, p): True for name in ("videos_in_s3", "all_prompts_present") for p in ("small", "large")
    }
    assert _check_statuses(instance, "videos_in_s3") == {"small": "SUCCEEDED", "large": "SUCCEEDED"}
    assert _check_statuses(instance, "all_prompts_present") == {"small": "SUCCEEDED", "large": "SUCCEEDED"}

    # Damage one video of "large": a checks-only run over both partitions fails that partition only.
    again = _damage_one_video_and_check_again(defs, tags, s3_client, bucket, instance)
    by_partition = {
        c.partition: c for c in again.get_asset_check_evaluations() if c.check_name == "videos_in_s3"
    }
    assert (by_partition["small"].passed, by_partition["large"].passed) == (True, False)
    _assert_large_b_is_not_an_mp4(by_partition["large"].metadata["first_problems"].value)
    assert by_partition["large"].metadata["partition"].value == "large"
    assert _check_statuses(instance, "videos_in_s3") == {"small": "SUCCEEDED", "large": "FAILED"}


def _once_per_run(defs, tags, result, s3_client, bucket, instance) -> None:
    """One evaluation per check and run, failed when a partition failed, each partition's outcome and the failed
    ones' problems in its metadata."""
    by_check = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert sorted(by_check) == ["all_prompts_present", "videos_in_s3"]
    assert len(result.get_asset_check_evaluations()) == 2
    for evaluation in by_check.values():
        assert evaluation.passed and evaluation.description == "2 partition(s), 0 failed"
        outcomes = evaluation.metadata["partitions"].value
        assert sorted((o["partition"], o["passed"]) for o in outcomes) == [("large", True), ("small", True)]

    again = _damage_one_video_and_check_again(defs, tags, s3_client, bucket, instance)
    (videos_in_s3,) = [c for c in again.get_asset_check_evaluations() if c.check_name == "videos_in_s3"]
    assert not videos_in_s3.passed and videos_in_s3.severity == dg.AssetCheckSeverity.ERROR
    assert videos_in_s3.description.startswith("2 partition(s), 1 failed: large: ")
    outcomes = videos_in_s3.metadata["partitions"].value
    assert sorted((o["partition"], o["passed"]) for o in outcomes) == [("large", False), ("small", True)]
    _assert_large_b_is_not_an_mp4(videos_in_s3.metadata["large/first_problems"].value)


def test_factory_passes_dagster_asset_options_through():
    eager = dg.AutomationCondition.eager()
    fresh = dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=26))
    videos = build_minimax_video_asset(
        "videos",
        prompts="prompts",
        bucket="b",
        template_id=TEMPLATE,
        key_prefix=["media"],
        kinds={"video"},
        metadata={"team": "growth", "template_id": "overridden"},
        op_tags={"dagster/concurrency_key": "minimax", "team": "growth"},
        automation_condition=eager,
        freshness_policy=fresh,
        code_version="v2",
        owners=["team:media"],
        tags={"tier": "gold"},
        group_name="media",
    )
    key = dg.AssetKey(["media", "videos"])
    spec = videos.specs_by_key[key]
    assert videos.key == key
    assert spec.kinds == {*VIDEO_ASSET_KINDS, "video"}
    assert spec.automation_condition == eager
    assert spec.freshness_policy == fresh
    assert spec.code_version == "v2"
    assert spec.owners == ["team:media"]
    assert spec.tags["tier"] == "gold"
    assert spec.group_name == "media"
    assert spec.metadata["team"] == "growth" and spec.metadata["template_id"] == "overridden"
    assert spec.metadata["bucket"] == "b"
    schema = spec.metadata["dagster/column_schema"]
    assert isinstance(schema, dg.TableSchema)
    names = [c.name for c in schema.columns]
    assert names[:4] == ["id", "partition", "prompt", "template_id"] and "video_id" in names
    assert all(c.description for c in schema.columns), "every manifest column is described"
    assert videos.op.tags["team"] == "growth"
    assert videos.op.tags["dagster/concurrency_key"] == "minimax"
    # The definitions load (the options are valid together) without a call to anything.
    s3 = MiniMaxS3Resource(endpoint_url="http://127.0.0.1:9")
    resources = {
        "minimax": MiniMaxResource(api_token="unused", base_url="http://127.0.0.1:9/v1/minimax"),
        "s3": s3,
        "minimax_io_manager": S3JsonIOManager(s3=s3, bucket="b"),
    }
    defs = dg.Definitions(assets=[dg.AssetSpec("prompts"), videos], resources=resources)
    assert defs.resolve_implicit_global_asset_job_def().asset_layer.has(key)


def test_factory_defaults_leave_dagster_options_unset():
    videos = build_minimax_video_asset("videos", prompts="prompts", bucket="b", template_id=TEMPLATE)
    spec = videos.specs_by_key[videos.key]
    assert spec.kinds == set(VIDEO_ASSET_KINDS)
    assert spec.automation_condition is None and spec.freshness_policy is None and spec.code_version is None


def _records(instance: dg.DagsterInstance, run_id: str) -> int:
    return len(instance.all_logs(run_id))


def _rows(tag: str, n: int) -> list[dict[str, str]]:
    return [{"id": f"{tag}{i}", "prompt": f"record count {tag}: scene {i}"} for i in range(n)]


def test_a_video_costs_at_most_five_event_log_records_by_default(simulator, s3_endpoint, bucket, instance):
    """Counted through the instance: the slope between a 2- and a 6-video run (fixed costs cancel out), and
    the log lines naming each video. The simulator sends a heartbeat every 0.1 s, so each 0.6 s video has
    about six heartbeats and three "processing" states that the default logging only counts."""
    runs = {}
    for tag, n in (("s", 2), ("l", 6)):
        defs = video_defs(_rows(tag, n), sim=simulator, s3_endpoint=s3_endpoint, bucket=bucket)
        result = materialize(defs, instance)
        assert result.success
        runs[n] = result.run_id
        logs = _lines(log_messages(instance, result.run_id))
        for row in _rows(tag, n):
            lines = [m for m in logs if m.startswith(f"[{row['id']}] ")]
            assert 1 <= len(lines) <= 5, f"{row['id']} has {len(lines)} log lines: {lines}"
            assert lines[-1].endswith(f"/{n} done")
    per_video = (_records(instance, runs[6]) - _records(instance, runs[2])) / 4
    print(f"event-log records per video: {per_video:.2f}")
    assert per_video <= 5

    # The same videos with log_heartbeats=True: each heartbeat is a record again (what the default avoids).
    defs = video_defs(
        _rows("h", 2), sim=simulator, s3_endpoint=s3_endpoint, bucket=bucket, log_heartbeats=True
    )
    result = materialize(defs, instance)
    assert result.success
    logged = _lines(log_messages(instance, result.run_id))
    assert sum(m == "[h0] heartbeat" for m in logged) >= 2
    assert "[h0] Generating video..." in logged
    assert _records(instance, result.run_id) > _records(instance, runs[2])


def test_progress_summary_lines_say_done_generating_waiting_failed(simulator, s3_endpoint, bucket, instance):
    rows = [*_rows("p", 3), {"id": "bad", "prompt": "a glitching robot [sim:fail]"}]
    defs = video_defs(
        rows, sim=simulator, s3_endpoint=s3_endpoint, bucket=bucket, summary_interval=0.2, allow_partial=True
    )
    result = materialize(defs, instance)
    assert result.success
    logs = _lines(log_messages(instance, result.run_id))
    summaries = [m for m in logs if m.startswith("progress: ")]
    assert summaries, "a summary line every 0.2 s of a run that lasts longer"
    pattern = re.compile(
        r"progress: (\d+)/4 done \((\d+)%\): \d+ generated, \d+ reused, \d+ failed; "
        r"(\d+) generating, (\d+) waiting; \d+ heartbeat\(s\)"
    )
    for line in summaries:
        match = pattern.fullmatch(line)
        assert match, line
        done, percent = int(match.group(1)), int(match.group(2))
        assert percent == 100 * done // 4
    failed = [m for m in logs if m.startswith("[bad] ")]
    assert failed[-1].endswith("/4 done") and "failed" in failed[-1]
