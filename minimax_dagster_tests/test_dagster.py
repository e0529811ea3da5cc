"""The Dagster integration end to end: simulator + moto S3 over real sockets, a real sqlite Dagster instance."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from minimax_dagster import MiniMaxClient
from minimax_dagster.assets.run import recent_generation_seconds
from minimax_dagster.production.manifest import VideoManifest
from minimax_dagster.resources.minimax import MiniMaxResource
from minimax_dagster.simulator.media import read_mp4_info
from minimax_dagster.storage import (
    JobRecord,
    VideoKeys,
    get_json,
    prompt_sha256,
    video_key,
    write_job_record,
)
from minimax_dagster_tests.conftest import S3_SECRET
from minimax_dagster_tests.dagster_support import (
    TEMPLATE,
    event_log_text,
    log_messages,
    materialization_metadata,
    materialize,
    video_defs,
)

ROWS = [
    {"id": "fox", "prompt": "A red fox in fresh snow"},
    {"id": "tram", "prompt": "A yellow tram climbing a hill"},
    "A paper boat on a puddle",
]


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


@pytest.fixture(autouse=True)
def _secrets_in_env(monkeypatch, simulator):
    monkeypatch.setenv("USEAPI_TOKEN", simulator.token)
    monkeypatch.setenv("TEST_S3_SECRET", S3_SECRET)


def _lines(records: list[str]) -> list[str]:
    """The lines of log records (when logging falls behind, one record holds several lines)."""
    return [line for record in records for line in record.splitlines()]


def _manifest(s3_client, bucket, partition=None) -> VideoManifest:
    name = partition or "__all__"
    data = get_json(s3_client, bucket, f"minimax/assets/videos/{name}.json")
    assert data is not None, "manifest not written to S3"
    return VideoManifest.model_validate(data)


def test_resource_config_is_described_secret_and_lazy(simulator):
    fields = MiniMaxResource.model_fields
    assert all(f.description for name, f in fields.items()), "every field needs a description"
    resource = MiniMaxResource(api_token="tok-xyz-secret", base_url=simulator.base_url)
    assert "tok-xyz-secret" not in repr(resource) and "tok-xyz-secret" not in str(resource)
    schema = MiniMaxResource.model_json_schema()
    assert schema["properties"]["api_token"].get("is_secret") is True
    with resource.get_client() as client:
        assert isinstance(client, MiniMaxClient)
        assert client.base_url == simulator.base_url
    # Loading definitions makes no call: nothing was created or listed.
    assert simulator.counters()["create_requests"] == 0


def test_end_to_end_materialization_logs_metadata_and_s3(simulator, s3_endpoint, s3_client, bucket, instance):
    defs = video_defs(ROWS, sim=simulator, s3_endpoint=s3_endpoint, bucket=bucket)
    result = materialize(defs, instance)
    assert result.success

    manifest = _manifest(s3_client, bucket)
    assert [e.id for e in manifest.entries] == ["fox", "tram", manifest.entries[2].id]
    assert all(e.status == "generated" for e in manifest.entries)
    for entry in manifest.entries:
        key = entry.s3_uri.removeprefix(f"s3://{bucket}/")
        body = s3_client.get_object(Bucket=bucket, Key=key)
        data = body["Body"].read()
        assert body["ContentType"] == "video/mp4"
        assert body["Metadata"]["video-id"] == entry.video_id
        assert body["Metadata"]["prompt-sha256"] == prompt_sha256(entry.prompt)
        info = read_mp4_info(data)
        assert (info["width"], info["height"]) == (entry.width, entry.height)
        assert abs(info["duration_s"] - entry.duration_s) < 0.05
        assert len(data) == entry.bytes
        poster = s3_client.get_object(Bucket=bucket, Key=entry.poster_uri.removeprefix(f"s3://{bucket}/"))
        assert poster["Body"].read().startswith(b"\x89PNG")
        sidecar = get_json(s3_client, bucket, entry.sidecar_uri.removeprefix(f"s3://{bucket}/"))
        statuses = [e["status"] for e in sidecar["events"]]
        assert statuses[0] == "created" and statuses[-1] == "finished"

    md = materialization_metadata(result)
    assert (md["requested"], md["generated"], md["reused"], md["failed"]) == (3, 3, 0, 0)
    assert (
        md["generation_seconds_total"] > 0 and md["generation_seconds_max"] >= md["generation_seconds_median"]
    )
    assert "![poster](" in md["videos"] and "| fox |" in md["videos"]
    # A link a browser opens (the S3 endpoint, path-style), not a bare s3:// URI.
    assert md["first_video"] == f"{s3_endpoint}/{manifest.entries[0].s3_uri.removeprefix('s3://')}"
    assert sorted(md["video_ids"]) == sorted(e.video_id for e in manifest.entries)
    assert md["recommended_templates"], "the stream's recTemplateList should reach the metadata"
    assert md["stream_events"]["created"] == 3 and md["stream_events"]["finished"] == 3
    assert md["path"] == f"s3://{bucket}/minimax/assets/videos/__all__.json"

    logs = _lines(log_messages(instance, result.run_id))
    assert any(m.startswith("[fox] created user:") for m in logs)
    assert any(m.startswith("[fox] video: ") and m.endswith(" ready") for m in logs)
    # "finished" and "stored" come a moment apart: one line says both (unless storing takes over 2 s).
    assert any(m.startswith("[tram] ") and "stored " in m and m.endswith("/3 done") for m in logs)
    assert any(m.startswith("[tram] finished") for m in logs)
    # Heartbeats and repeated states are counted, not logged one by one (log_heartbeats=False by default).
    assert not any("heartbeat" in m and m.startswith("[") for m in logs)
    assert not any(m.endswith("Generating video...") for m in logs)
    assert any(m.startswith("run total: 3 prompt(s) in 1 partition(s)") for m in logs)

    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"videos_in_s3": True, "all_prompts_present": True}
    assert simulator.counters()["creates"] == 3


def test_rerun_reuses_everything_without_a_create(simulator, s3_endpoint, s3_client, bucket, instance):
    defs = video_defs(ROWS, sim=simulator, s3_endpoint=s3_endpoint, bucket=bucket)
    first = materialize(defs, instance)
    assert first.success
    before = simulator.counters()
    result = materialize(defs, instance)
    assert result.success
    after = simulator.counters()
    assert after["creates"] == before["creates"] == 3
    assert after["create_requests"] == before["create_requests"]
    md = materialization_metadata(result)
    assert (md["generated"], md["reused"]) == (0, 3)
    # The next run's pool paces its looks at full accounts from the newest median generation time: the
    # re-run generated nothing, so it is the first run's.
    median = materialization_metadata(first)["generation_seconds_median"]
    assert median > 0
    assert recent_generation_seconds(instance, dg.AssetKey("videos")) == pytest.approx(median)


def test_crash_resume_reattaches_instead_of_creating(simulator, s3_endpoint, s3_client, bucket, instance):
    prompt = "A heron standing in fog"
    # An earlier run created the video, recorded the job, then died before storing it.
    with MiniMaxClient(simulator.token, base_url=simulator.base_url) as client:
        stream = client.agent_create({"templateId": TEMPLATE, "prompt": prompt})
        created = next(stream)
        stream.close()
    assert created.status == "created" and created.video_id
    keys = VideoKeys("minimax", video_key(TEMPLATE, prompt, None))
    record = JobRecord(
        key=keys.key, video_id=created.video_id, template_id=TEMPLATE, prompt_sha256=prompt_sha256(prompt)
    )
    write_job_record(s3_client, bucket, keys, record)
    assert simulator.counters()["creates"] == 1

    defs = video_defs(
        [{"id": "heron", "prompt": prompt}], sim=simulator, s3_endpoint=s3_endpoint, bucket=bucket
    )
    result = materialize(defs, instance)
    assert result.success
    assert simulator.counters()["creates"] == 1, "a second create was made instead of reattaching"
    entry = _manifest(s3_client, bucket).entries[0]
    assert entry.video_id == created.video_id and entry.reattached and entry.status == "generated"
    assert any("reattaching" in m for m in log_messages(instance, result.run_id))
    assert get_json(s3_client, bucket, keys.job)["status"] == "finished"


def test_partial_failure_fails_keeps_successes_and_retry_does_not_repay(
    simulator, s3_endpoint, s3_client, bucket, instance
):
    rows = [*ROWS[:2], {"id": "doomed", "prompt": "A glitching robot [sim:fail]"}]
    defs = video_defs(rows, sim=simulator, s3_endpoint=s3_endpoint, bucket=bucket)
    result = materialize(defs, instance)
    assert not result.success
    failure = result.failure_data_for_node("videos")
    assert "doomed" in failure.error.message and "1 of 3 prompt(s) failed" in failure.error.message
    manifest = _manifest(s3_client, bucket)
    statuses = {e.id: e.status for e in manifest.entries}
    assert statuses == {"fox": "generated", "tram": "generated", "doomed": "failed"}
    md = materialization_metadata(result)
    assert md["failed"] == 1 and md["failed_prompts"][0]["id"] == "doomed"
    assert simulator.counters()["creates"] == 3

    # A re-run (what a retry does) reuses the successes and does not pay again for the failed video.
    again = materialize(defs, instance)
    assert not again.success
    assert simulator.counters()["creates"] == 3
    md2 = materialization_metadata(again)
    assert (md2["reused"], md2["failed"]) == (2, 1)
    assert "regenerate_failed" in md2["failed_prompts"][0]["error"]

    # allow_partial: the same outcome materializes successfully, failures still listed.
    ok = materialize(defs, instance, run_config={"ops": {"videos": {"config": {"allow_partial": True}}}})
    assert ok.success
    checks = {c.check_name: c.passed for c in ok.get_asset_check_evaluations()}
    assert checks == {"videos_in_s3": True, "all_prompts_present": False}


def test_bad_rows_rejected_before_any_create(simulator, s3_endpoint, bucket, instance):
    rows = [
        {"id": "ok", "prompt": "fine"},
        {"id": "empty", "prompt": ""},
        {"id": "long", "prompt": "x" * 2500},
        {"id": "ok", "prompt": "duplicate id"},
        {"id": "img", "prompt": "needs a file", "image": "/nonexistent/face.png"},
        42,
        {"id": "tpl", "prompt": "no such template", "template_id": "999"},
        {"id": "noimg", "prompt": "diving needs an image", "template_id": "392747428568649728"},
    ]
    defs = video_defs(rows, sim=simulator, s3_endpoint=s3_endpoint, bucket=bucket)
    result = materialize(defs, instance)
    assert not result.success
    message = result.failure_data_for_node("videos").error.message
    for expected in [
        "row 1 (id 'empty'): prompt",
        "row 2 (id 'long'): prompt: too long (2500 characters, at most 2000)",
        "row 3 (id 'ok'): id: duplicate of row 0",
        "row 4 (id 'img'): image: file '/nonexistent/face.png' not found",
        "row 5: row: expected a string or a mapping",
        "row 6 (id 'tpl'): template_id: template '999' does not exist",
        "row 7 (id 'noimg'): prompt: template 392747428568649728 takes no text prompt",
        "row 7 (id 'noimg'): image: template 392747428568649728 needs an input image",
    ]:
        assert expected in message, f"missing {expected!r} in:\n{message}"
    assert simulator.counters()["create_requests"] == 0
    assert result.retry_attempts_for_node("videos") == 0


def test_daily_partition(simulator, s3_endpoint, s3_client, bucket, instance):
    daily = dg.DailyPartitionsDefinition(start_date="2026-11-01")

    def rows(context):
        return [{"id": "a", "prompt": f"sunrise on {context.partition_key}"}]

    defs = video_defs(rows, sim=simulator, s3_endpoint=s3_endpoint, bucket=bucket, partitions_def=daily)
    result = materialize(defs, instance, partition_key="2026-11-20")
    assert result.success
    manifest = _manifest(s3_client, bucket, "2026-11-20")
    assert manifest.partition == "2026-11-20" and manifest.entries[0].prompt == "sunrise on 2026-11-20"
    assert (
        instance.get_latest_materialization_event(dg.AssetKey("videos")).dagster_event.partition
        == "2026-11-20"
    )


def test_backfill_of_many_partitions_in_one_run(simulator, s3_endpoint, s3_client, bucket, instance):
    datasets = dg.DynamicPartitionsDefinition(name="datasets")
    names = ["alpha", "beta", "gamma", "delta"]
    instance.add_dynamic_partitions("datasets", names)

    def rows(context):
        return _partitioned(
            {
                k: [{"id": "one", "prompt": f"{k} one"}, {"id": "two", "prompt": f"{k} two"}]
                for k in context.partition_keys
            }
        )

    defs = video_defs(rows, sim=simulator, s3_endpoint=s3_endpoint, bucket=bucket, partitions_def=datasets)
    result = materialize(
        defs,
        instance,
        tags={"dagster/asset_partition_range_start": "alpha", "dagster/asset_partition_range_end": "delta"},
    )
    assert result.success
    for name in names:
        manifest = _manifest(s3_client, bucket, name)
        assert [e.prompt for e in manifest.entries] == [f"{name} one", f"{name} two"]
    counters = simulator.counters()
    assert counters["creates"] == 8
    assert counters["max_concurrent_total"] > 1, "prompts of one run should be generated concurrently"
    assert set(counters["creates_by_account"]) == {"100001", "100002"}, "work should spread over accounts"
    mats = [m.partition for m in result.asset_materializations_for_node("videos")]
    assert sorted(mats) == sorted(names)
    logs = _lines(log_messages(instance, result.run_id))
    # Every partition has a "two": the log names each by its partition.
    assert any(m.startswith("[gamma/two] created") for m in logs)
    stored = [m for m in logs if m.startswith("[gamma/two] ") and "stored " in m]
    assert len(stored) == 1 and stored[0].endswith("/8 done"), "entries are attributed by partition"


def test_same_prompt_in_two_partitions_is_paid_once(simulator, s3_endpoint, s3_client, bucket, instance):
    datasets = dg.DynamicPartitionsDefinition(name="datasets")
    instance.add_dynamic_partitions("datasets", ["a", "b"])

    def rows(context):
        return _partitioned(
            {k: [{"id": "same", "prompt": "identical prompt"}] for k in context.partition_keys}
        )

    defs = video_defs(rows, sim=simulator, s3_endpoint=s3_endpoint, bucket=bucket, partitions_def=datasets)
    result = materialize(
        defs,
        instance,
        tags={"dagster/asset_partition_range_start": "a", "dagster/asset_partition_range_end": "b"},
    )
    assert result.success
    assert simulator.counters()["creates"] == 1
    a, b = _manifest(s3_client, bucket, "a").entries[0], _manifest(s3_client, bucket, "b").entries[0]
    assert a.s3_uri == b.s3_uri and {a.status, b.status} == {"generated", "reused"}


def test_asset_check_fails_when_an_object_is_damaged(simulator, s3_endpoint, s3_client, bucket, instance):
    defs = video_defs(ROWS[:2], sim=simulator, s3_endpoint=s3_endpoint, bucket=bucket)
    assert materialize(defs, instance).success
    entries = _manifest(s3_client, bucket).entries
    s3_client.put_object(
        Bucket=bucket, Key=entries[0].s3_uri.removeprefix(f"s3://{bucket}/"), Body=b"not a video"
    )
    s3_client.delete_object(Bucket=bucket, Key=entries[1].s3_uri.removeprefix(f"s3://{bucket}/"))
    result = _run_checks_only(defs, instance)
    evaluation = {c.check_name: c for c in result.get_asset_check_evaluations()}["videos_in_s3"]
    assert not evaluation.passed
    problems = evaluation.metadata["first_problems"].value
    assert any("is not an MP4" in p for p in problems) and any("is missing" in p for p in problems)


def test_token_and_s3_secret_absent_from_the_event_log(simulator, s3_endpoint, s3_client, bucket, instance):
    rows = [*ROWS[:1], {"id": "bad", "prompt": "boom [sim:fail]"}]
    defs = video_defs(rows, sim=simulator, s3_endpoint=s3_endpoint, bucket=bucket, allow_partial=True)
    result = materialize(defs, instance)
    assert result.success
    text = event_log_text(instance, result.run_id)
    assert "created user:" in text  # the scan reads real content
    assert simulator.token not in text
    assert S3_SECRET not in text
    run = instance.get_run_by_id(result.run_id)
    assert simulator.token not in json.dumps(run.run_config) and S3_SECRET not in json.dumps(run.run_config)


def _partitioned(values):
    from minimax_dagster.resources.io_manager import PartitionedValues

    return PartitionedValues(values) if len(values) > 1 else next(iter(values.values()))


def _run_checks_only(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = dg.define_asset_job(
        "checks_only", selection=dg.AssetSelection.checks_for_assets(dg.AssetKey("videos"))
    )
    checks_defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
    return checks_defs.resolve_job_def("checks_only").execute_in_process(
        instance=instance, raise_on_error=False
    )


def test_image_rows_are_uploaded_once_and_used(simulator, s3_endpoint, s3_client, bucket, instance, tmp_path):
    from minimax_dagster.simulator.media import render_poster_png

    face = tmp_path / "face.png"
    face.write_bytes(render_poster_png(64, 64, "face"))
    rows = [
        {
            "id": "run",
            "prompt": "Run through the city",
            "image": str(face),
            "template_id": "393769180141805569",
        },
        {"id": "dive", "image": str(face), "template_id": "392747428568649728"},
    ]
    defs = video_defs(rows, sim=simulator, s3_endpoint=s3_endpoint, bucket=bucket)
    result = materialize(defs, instance)
    assert result.success, result.failure_data_for_node("videos")
    entries = {e.id: e for e in _manifest(s3_client, bucket).entries}
    assert entries["run"].status == entries["dive"].status == "generated"
    counters = simulator.counters()
    assert counters["creates"] == 2
    assert 1 <= counters["uploads"] <= 2  # one upload per account that needs the image
    assert any("uploaded the input image" in m for m in log_messages(instance, result.run_id))
