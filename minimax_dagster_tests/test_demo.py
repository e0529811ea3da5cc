"""The demo code location: it loads, its sensor and schedule work, and the demo command runs end to end."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from minimax_dagster.code_location.environment import EnvSettings
from minimax_dagster.demo.definitions import make_definitions
from minimax_dagster.demo.services import DEMO_DATASETS, demo_services
from minimax_dagster.resources.minimax import MiniMaxS3Resource
from minimax_dagster_tests.demo_check import EXPECTED_VIDEOS, check_demo_output

REPO = Path(__file__).resolve().parents[1]


def test_workspace_loads_with_dagster_cli(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    env.pop("USEAPI_TOKEN", None)  # loading must not need the token (nor any network)
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_sensor_registers_new_datasets_and_requests_one_run(tmp_path):
    with (
        demo_services(generation_seconds=0.2) as services,
        dg.instance_for_test(temp_dir=str(tmp_path)) as inst,
    ):
        env = services.env()
        defs = make_definitions(EnvSettings.from_env(env))
        sensor = defs.resolve_sensor_def("prompt_dataset_sensor")
        s3 = MiniMaxS3Resource(
            endpoint_url=env["MINIMAX_S3_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        result = sensor(dg.build_sensor_context(instance=inst, resources={"s3": s3}))
        names = sorted(DEMO_DATASETS)
        assert result.dynamic_partitions_requests[0].partition_keys == names
        (request,) = result.run_requests
        assert request.tags["dagster/asset_partition_range_start"] == names[0]
        assert request.tags["dagster/asset_partition_range_end"] == names[-1]
        inst.add_dynamic_partitions("prompt_datasets", names)
        again = sensor(dg.build_sensor_context(instance=inst, resources={"s3": s3}))
        assert not again.run_requests and "no new prompt dataset" in again.skip_reason.skip_message


def test_daily_schedule_makes_the_days_videos_at_six():
    defs = make_definitions(EnvSettings(bucket="b"))
    schedule = defs.resolve_schedule_def("daily_videos_schedule")
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.job_name == "daily_videos_job"
    with dg.instance_for_test() as inst:
        context = dg.build_schedule_context(instance=inst, scheduled_execution_time=_when())
        (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-11-27"  # end_offset=1: the day's own partition exists at 06:00


def _when():
    import datetime as dt

    return dt.datetime(2026, 11, 27, 6, 0, tzinfo=dt.timezone.utc)


@pytest.mark.slow
def test_demo_command_end_to_end_from_another_folder_with_a_relative_output(tmp_path):
    # Run as a newcomer may: from a folder that is not the repository, naming the output relative to it.
    proc = subprocess.run(
        [sys.executable, "-m", "minimax_dagster.demo", "--output", "out", "--generation-seconds", "0.3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = tmp_path / "out"
    console = proc.stdout + proc.stderr
    assert check_demo_output(out, console) == EXPECTED_VIDEOS
    assert f"are in {out}/" in proc.stdout and f"DAGSTER_HOME={out / '.dagster_home'}" in proc.stdout
    assert "Warning" not in proc.stderr
