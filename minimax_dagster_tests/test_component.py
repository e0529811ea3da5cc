"""MiniMaxVideoComponent: registration, scaffolding, every YAML attribute, errors at their line, secrets, and a
daily-partitioned YAML pipeline materialized against the simulator and moto's S3 server over real sockets."""

from __future__ import annotations

import inspect
import textwrap
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster.components.core.package_entry import discover_entry_point_package_objects
from dagster.components.testing import create_defs_folder_sandbox

from minimax_dagster import MiniMaxVideoComponent
from minimax_dagster.assets.factory import build_minimax_video_asset
from minimax_dagster.components.video.scaffolder import defs_yaml
from minimax_dagster.production.manifest import VideoManifest
from minimax_dagster.resources.minimax import MiniMaxResource, MiniMaxS3Resource
from minimax_dagster.storage import get_json
from minimax_dagster_tests.conftest import S3_KEY_ID, S3_SECRET
from minimax_dagster_tests.dagster_support import TEMPLATE, event_log_text, materialize

TYPE = "minimax_dagster.MiniMaxVideoComponent"
FACTORY_OPTIONS = set(inspect.signature(build_minimax_video_asset).parameters)
DAGSTER_OPTIONS = {
    "automation_condition",
    "freshness_policy",
    "code_version",
    "key_prefix",
    "kinds",
    "metadata",
}
needs_factory_options = pytest.mark.skipif(
    not DAGSTER_OPTIONS | {"op_tags"} <= FACTORY_OPTIONS,
    reason="build_minimax_video_asset does not take Dagster's asset options yet (they land with issue 11.5)",
)


@contextmanager
def loaded(text: str, name: str = "videos") -> Iterator[tuple[MiniMaxVideoComponent, dg.Definitions, Path]]:
    """Write ``text`` as ``defs/<name>/defs.yaml`` of a fresh project and load it as ``dg`` does."""
    with create_defs_folder_sandbox() as sandbox:
        folder = sandbox.defs_folder_path / name
        folder.mkdir()
        path = folder / "defs.yaml"
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        with sandbox.load_component_and_build_defs(defs_path=folder) as (component, defs):
            yield component, defs, path


def load_error(text: str) -> str:
    """Everything the load of ``text`` reports (the exception and its causes)."""
    # Any exception type: dagster wraps the error in its own.
    with pytest.raises(Exception) as caught, loaded(text):
        pass
    return "".join(traceback.format_exception(caught.value))


def minimal(extra: str = "", *, head: str = "") -> str:
    """A valid ``defs.yaml`` with ``extra`` lines added to the attributes (indented by two spaces)."""
    return (
        f"{head}type: {TYPE}\n"
        "attributes:\n"
        "  asset_key: videos\n"
        "  prompts: prompts\n"
        f'  template_id: "{TEMPLATE}"\n'
        "  bucket: my-videos\n" + textwrap.indent(textwrap.dedent(extra), "  ")
    )


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


# ---------------------------------------------------------------- registration and scaffolding


def test_registered_through_the_dg_entry_point():
    points = [e for e in entry_points(group="dagster_dg_cli.registry_modules") if e.name == "minimax_dagster"]
    assert [p.value for p in points] == ["minimax_dagster"]
    objects = {f"{k.namespace}.{k.name}": v for k, v in discover_entry_point_package_objects().items()}
    assert objects[TYPE] is MiniMaxVideoComponent
    # Only the component is registered from our package, not the factories or resources.
    assert [k for k in objects if k.startswith("minimax_dagster.")] == [TYPE]


def test_docstring_carries_a_yaml_example_of_every_main_attribute():
    doc = inspect.getdoc(MiniMaxVideoComponent) or ""
    example = yaml.safe_load(
        textwrap.dedent(doc.split(".. code-block:: yaml")[1].split("``prompts`` names")[0])
    )
    assert example["type"] == TYPE
    wanted = {"asset_key", "prompts", "template_id", "bucket", "prefix", "partitions", "pool", "retry_policy"}
    wanted |= {"backfill_policy", "automation_condition", "freshness_policy", "checks", "resources"}
    assert wanted <= set(example["attributes"])
    assert example["attributes"]["resources"]["minimax"]["api_token"] == "{{ env.USEAPI_TOKEN }}"


def test_scaffold_writes_a_defs_yaml_that_loads_as_it_is(monkeypatch, simulator):
    monkeypatch.delenv("USEAPI_TOKEN", raising=False)
    monkeypatch.setenv("MINIMAX_BUCKET", "scaffolded-bucket")
    with create_defs_folder_sandbox() as sandbox:
        folder = sandbox.scaffold_component(component_cls=MiniMaxVideoComponent, defs_path="videos")
        text = (folder / "defs.yaml").read_text()
        assert text.startswith("type: minimax_dagster.components.video.component.MiniMaxVideoComponent\n")
        assert "# A secret: always an environment reference" in text
        with sandbox.load_component_and_build_defs(defs_path=folder) as (component, defs):
            assert sorted(a.key.to_user_string() for a in defs.assets) == ["videos", "videos_prompts"]
            checks = sorted(k.name for c in defs.asset_checks for k in c.check_keys)
            assert checks == ["all_prompts_present", "videos_in_s3"]
            assert sorted(defs.resources) == ["minimax", "minimax_io_manager", "s3"]
            assert component.bucket == "scaffolded-bucket"
            token = defs.resources["minimax"].api_token
            assert isinstance(token, dg.EnvVar) and token.env_var_name == "USEAPI_TOKEN"
            defs.get_repository_def()  # the whole code location validates without the token being set
    # Loading made no call to the API.
    assert simulator.counters()["create_requests"] == 0


def test_scaffold_options_name_an_upstream_asset_and_a_template():
    from minimax_dagster.components.video.scaffolder import MiniMaxVideoScaffoldParams

    text = defs_yaml(
        TYPE, "clips", MiniMaxVideoScaffoldParams(prompts="content/prompts", template_id=TEMPLATE)
    )
    attributes = yaml.safe_load(text)["attributes"]
    assert attributes["prompts"] == "content/prompts" and "prompt_rows" not in attributes
    assert (attributes["asset_key"], attributes["template_id"]) == ("clips", TEMPLATE)


# ---------------------------------------------------------------- attributes


def test_attributes_reach_the_asset_checks_and_resources():
    text = minimal(
        """
        prefix: team/videos/
        pool: minimax_pool
        partitions:
          type: daily
          start_date: "2026-11-01"
          end_offset: 1
          timezone: Europe/Lisbon
        retry_policy:
          max_retries: 3
          delay_seconds: 10
          backoff: exponential
          jitter: full
        backfill_policy:
          type: multi_run
          max_partitions_per_run: 7
        checks:
          blocking: true
        group_name: content
        owners: ["team:content"]
        tags: {tier: 1}
        resource_keys:
          minimax: minimax_eu
          s3: s3_eu
          io_manager: manifests_eu
        resources:
          minimax:
            api_token: "{{ env.USEAPI_TOKEN }}"
            accounts:
              - account: "1234567"
                max_jobs: 3
            read_timeout: 20
          s3:
            region_name: eu-west-1
            aws_access_key_id: "{{ env.MY_KEY_ID }}"
            aws_secret_access_key: "{{ env('MY_SECRET') }}"
        """
    )
    with loaded(text) as (component, defs, _):
        videos = defs.get_assets_def("videos")
        spec = videos.specs_by_key[dg.AssetKey("videos")]
        partitions = videos.partitions_def
        assert isinstance(partitions, dg.DailyPartitionsDefinition)
        assert (partitions.start.date().isoformat(), partitions.end_offset, partitions.timezone) == (
            "2026-11-01",
            1,
            "Europe/Lisbon",
        )
        assert videos.backfill_policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=7)
        node = videos.node_def
        assert node.pool == "minimax_pool"
        assert node.retry_policy == dg.RetryPolicy(
            max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.FULL
        )
        assert (spec.group_name, list(spec.owners), spec.tags["tier"]) == ("content", ["team:content"], "1")
        assert spec.metadata["prefix"] == "team/videos" and spec.metadata["bucket"] == "my-videos"
        assert videos.required_resource_keys >= {"minimax_eu", "s3_eu"}
        assert [c.blocking for c in defs.asset_checks for c in c.check_specs] == [True, True]

        minimax, s3 = defs.resources["minimax_eu"], defs.resources["s3_eu"]
        assert isinstance(minimax, MiniMaxResource) and isinstance(s3, MiniMaxS3Resource)
        assert minimax.capacity_by_account() == {"1234567": 3}  # an account id stays text
        assert minimax.read_timeout == 20
        assert s3.region_name == "eu-west-1"
        assert (
            isinstance(s3.aws_access_key_id, dg.EnvVar) and s3.aws_access_key_id.env_var_name == "MY_KEY_ID"
        )
        assert s3.aws_secret_access_key.env_var_name == "MY_SECRET"
        manifests = defs.resources["manifests_eu"]
        assert (manifests.bucket, manifests.prefix) == ("my-videos", "team/videos")
        assert component.prompts_key == dg.AssetKey("prompts")


def test_dynamic_partitions_single_run_backfill_and_disabled_checks():
    text = minimal(
        """
        partitions: {type: dynamic, name: prompt_datasets}
        backfill_policy: {type: single_run}
        checks: {enabled: false}
        """
    )
    with loaded(text) as (_, defs, _):
        videos = defs.get_assets_def("videos")
        assert videos.partitions_def == dg.DynamicPartitionsDefinition(name="prompt_datasets")
        assert videos.backfill_policy == dg.BackfillPolicy.single_run()
        assert not list(defs.asset_checks or [])
        assert not defs.resources  # no resources block: the project binds them


def test_freshness_and_automation_condition_resolve():
    text = minimal(
        """
        automation_condition: "{{ dg.AutomationCondition.on_cron('0 6 * * *') }}"
        freshness_policy: {type: cron, deadline_cron: "0 9 * * *", lower_bound_hours: 24, timezone: UTC}
        """
    )
    component = MiniMaxVideoComponent.resolve_from_yaml(text.split("attributes:\n", 1)[1])
    assert isinstance(component.automation_condition, dg.AutomationCondition)
    assert "0 6 * * *" in str(component.automation_condition.get_label() or component.automation_condition)
    assert component.freshness_policy == dg.FreshnessPolicy.cron(
        deadline_cron="0 9 * * *", lower_bound_delta=__import__("datetime").timedelta(hours=24)
    )


@needs_factory_options
def test_dagster_asset_options_pass_through_the_factory():
    text = minimal(
        """
        automation_condition: "{{ dg.AutomationCondition.eager() }}"
        freshness_policy: {type: time_window, fail_window_hours: 26, warn_window_hours: 20}
        code_version: "3"
        kinds: [video]
        metadata: {owner_team: content}
        op_tags: {dagster/priority: "5"}
        prompt_rows: ["A fox"]
        """
    ).replace("asset_key: videos\n  prompts: prompts\n", "asset_key: content/videos\n")
    with loaded(text) as (_, defs, _):
        by_key = {a.key: a for a in defs.assets or []}
        key = dg.AssetKey(["content", "videos"])
        videos = by_key[key]
        spec = videos.specs_by_key[key]
        assert spec.automation_condition == dg.AutomationCondition.eager()
        assert spec.freshness_policy is not None and spec.code_version == "3"
        assert {"minimax", "s3", "video"} <= set(spec.kinds)
        assert spec.metadata["owner_team"] == "content"
        assert videos.node_def.tags["dagster/priority"] == "5"
        # The prompts asset this component defines sits beside it, with the same automation.
        prompts = by_key[dg.AssetKey(["content", "videos_prompts"])]
        assert prompts.specs_by_key[prompts.key].automation_condition == dg.AutomationCondition.eager()


# ---------------------------------------------------------------- mistakes, reported at their line


@pytest.mark.parametrize(
    ("extra", "needle", "expected"),
    [
        ("prefx: minimax\n", "prefx", "prefx"),
        ("partitions:\n  type: daily\n", "partitions:", "daily partitions need start_date"),
        ("partitions: {type: dynamic}\n", "partitions:", "dynamic partitions need name"),
        ("partitions: {type: weekly, start_date: '2026-11-01'}\n", "partitions:", "'daily' or 'dynamic'"),
        ("partitions: {type: daily, start_date: 'November'}\n", "partitions:", "YYYY-MM-DD"),
        ("backfill_policy: {type: single_run, max_partitions_per_run: 3}\n", "backfill", "not allowed"),
        ("freshness_policy: {type: cron, deadline_cron: '0 9 * * *'}\n", "freshness", "lower_bound_hours"),
        ("retry_policy: {max_retries: -1}\n", "max_retries", "greater than or equal to 0"),
        ("automation_condition: eager\n", "automation_condition", "write a template such as"),
        ("prefix: ../escape\n", "prefix", "'..' segments are not allowed"),
        (
            "resources:\n  minimax:\n    api_token: '{{ env.T }}'\n    accounts: [{account: a, max_jobs: 0}]\n",
            "accounts",
            "max_jobs",
        ),
    ],
)
def test_a_yaml_mistake_is_reported_at_its_line(extra, needle, expected):
    text = minimal(extra)
    report = load_error(text)
    assert expected in report
    assert f"defs.yaml:{line_of(text, needle)}" in report, report[-2000:]


def test_an_unset_bucket_variable_names_the_variable_and_the_fix(monkeypatch):
    monkeypatch.delenv("MINIMAX_BUCKET", raising=False)
    text = minimal().replace("bucket: my-videos", 'bucket: "{{ env.MINIMAX_BUCKET }}"')
    report = load_error(text)
    assert f"defs.yaml:{line_of(text, 'bucket:')}" in report
    assert "environment variable MINIMAX_BUCKET is not set" in report and "export MINIMAX_BUCKET=" in report


def test_a_bad_prompt_row_is_reported_at_the_row_before_any_run():
    text = minimal("prompt_rows:\n  - A fox in snow\n  - {id: blank, prompt: '   '}\n")
    report = load_error(text)
    assert f"defs.yaml:{line_of(text, 'id: blank')}" in report
    assert "prompt is empty" in report


def test_prompts_or_prompt_rows_are_required():
    text = minimal().replace("  prompts: prompts\n", "")
    assert "give prompts (the key of the upstream asset of prompt rows) or prompt_rows" in load_error(text)


def test_a_secret_written_in_the_file_is_refused_and_not_echoed():
    secret = "tok-LITERAL-9f8e7d"
    text = minimal(f"resources:\n  minimax:\n    api_token: {secret}\n")
    report = load_error(text)
    assert "resources.minimax.api_token is a secret" in report and "{{ env.USEAPI_TOKEN }}" in report
    assert f"defs.yaml:{line_of(text, 'api_token')}" in report
    assert secret not in report
    s3_text = minimal(f"resources:\n  s3:\n    aws_secret_access_key: {secret}\n")
    s3_report = load_error(s3_text)
    assert "resources.s3.aws_secret_access_key is a secret" in s3_report and secret not in s3_report


def test_secrets_stay_environment_references(monkeypatch):
    monkeypatch.setenv("USEAPI_TOKEN", "tok-REAL-VALUE-123")
    monkeypatch.setenv("MY_S3_SECRET", "s3-REAL-VALUE-456")
    text = minimal(
        "prompt_rows: [A fox]\nresources:\n  minimax:\n    api_token: '{{ env.USEAPI_TOKEN }}'\n"
        "  s3:\n    aws_secret_access_key: '{{ env.MY_S3_SECRET }}'\n"
    ).replace("  prompts: prompts\n", "")
    with loaded(text) as (component, defs, _):
        shown = (
            repr(component) + repr(defs.resources) + str(defs.get_repository_def().get_top_level_resources())
        )
        assert "tok-REAL-VALUE-123" not in shown and "s3-REAL-VALUE-456" not in shown
        assert defs.resources["minimax"].api_token.env_var_name == "USEAPI_TOKEN"


# ---------------------------------------------------------------- a daily YAML pipeline, materialized


PIPELINE = f"""
type: {TYPE}
attributes:
  asset_key: videos
  prompt_rows:
    - "A lighthouse at dawn on {{partition_key}}"
    - {{id: boat, prompt: "A paper boat on a puddle, {{partition_key}}"}}
  template_id: "{TEMPLATE}"
  bucket: "{{{{ env.TEST_BUCKET }}}}"
  partitions: {{type: daily, start_date: "2026-11-01"}}
  backfill_policy: {{type: single_run}}
  retry_policy: {{max_retries: 1}}
  checks: {{blocking: true}}
  resources:
    minimax:
      api_token: "{{{{ env.USEAPI_TOKEN }}}}"
      base_url: "{{{{ env.SIM_BASE_URL }}}}"
      allowed_download_hosts: ["{{{{ env.SIM_ORIGIN }}}}"]
      poll_interval: 0.1
      read_timeout: 3
      backoff_factor: 0.05
      download_backoff: 0.05
      generation_deadline: 60
    s3:
      endpoint_url: "{{{{ env.S3_ENDPOINT }}}}"
      region_name: us-east-1
      aws_access_key_id: {S3_KEY_ID}
      aws_secret_access_key: "{{{{ env.TEST_S3_SECRET }}}}"
"""


@pytest.fixture
def pipeline_env(monkeypatch, simulator, s3_endpoint, bucket):
    for name, value in {
        "USEAPI_TOKEN": simulator.token,
        "SIM_BASE_URL": simulator.base_url,
        "SIM_ORIGIN": simulator.origin,
        "S3_ENDPOINT": s3_endpoint,
        "TEST_BUCKET": bucket,
        "TEST_S3_SECRET": S3_SECRET,
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


def test_daily_yaml_pipeline_materializes_against_the_simulator_and_s3(
    pipeline_env, simulator, s3_client, bucket, instance
):
    with loaded(PIPELINE) as (_, defs, _):
        result = materialize(defs, instance, partition_key="2026-11-02", raise_on_error=False)
        assert result.success
        data = get_json(s3_client, bucket, "minimax/assets/videos/2026-11-02.json")
        manifest = VideoManifest.model_validate(data)
        assert manifest.partition == "2026-11-02"
        assert [e.status for e in manifest.entries] == ["generated", "generated"]
        assert all("2026-11-02" in (e.prompt or "") for e in manifest.entries)
        for entry in manifest.entries:
            head = s3_client.head_object(Bucket=bucket, Key=entry.s3_uri.removeprefix(f"s3://{bucket}/"))
            assert head["ContentType"] == "video/mp4" and head["ContentLength"] == entry.bytes
        checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
        assert checks == {"videos_in_s3": True, "all_prompts_present": True}
        assert simulator.counters()["creates"] == 2

        # Another day makes its own videos; the first day again pays for nothing.
        assert materialize(defs, instance, partition_key="2026-11-03").success
        assert simulator.counters()["creates"] == 4
        again = materialize(defs, instance, partition_key="2026-11-02")
        assert again.success and simulator.counters()["creates"] == 4

        log = event_log_text(instance, result.run_id) + event_log_text(instance, again.run_id)
        assert simulator.token not in log and S3_SECRET not in log


def test_the_demo_yaml_pipeline_reuses_the_python_pipelines_videos(
    monkeypatch, simulator, s3_endpoint, s3_client, bucket, instance
):
    from minimax_dagster.demo.definitions import make_definitions
    from minimax_dagster.demo.yaml_pipeline import yaml_definitions

    # The demo is configured by its environment variables (read by make_definitions and by the YAML's templates).
    for name, value in {
        "USEAPI_TOKEN": simulator.token,
        "MINIMAX_BASE_URL": simulator.base_url,
        "MINIMAX_ALLOWED_DOWNLOAD_HOSTS": simulator.origin,
        "MINIMAX_POLL_INTERVAL": "0.1",
        "MINIMAX_READ_TIMEOUT": "3",
        "MINIMAX_BUCKET": bucket,
        "MINIMAX_PREFIX": "minimax",
        "MINIMAX_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": S3_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    defs = dg.Definitions.merge(make_definitions(), yaml_definitions())
    day = "2026-11-27"
    python_run = defs.resolve_job_def("daily_videos_job").execute_in_process(
        instance=instance, partition_key=day
    )
    assert python_run.success
    made = simulator.counters()["creates"]
    assert made == 3

    yaml_job = dg.define_asset_job("yaml_daily", selection=["daily_videos_yaml"])
    yaml_run = (
        dg.Definitions.merge(defs, dg.Definitions(jobs=[yaml_job]))
        .resolve_job_def("yaml_daily")
        .execute_in_process(instance=instance, partition_key=day)
    )
    assert yaml_run.success
    assert simulator.counters()["creates"] == made  # same template and prompts: every video reused
    data = get_json(s3_client, bucket, f"minimax/assets/daily_videos_yaml/{day}.json")
    assert [e["status"] for e in data["entries"]] == ["reused"] * 3
    checks = {c.check_name: c.passed for c in yaml_run.get_asset_check_evaluations()}
    assert checks == {"videos_in_s3": True, "all_prompts_present": True}
