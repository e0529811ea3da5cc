"""The README's quickstart, run as a user would in a temporary folder: ``create-dagster project``, ``dg list
components``, ``dg scaffold defs``, ``dg check defs``, ``dg list defs``, and ``dg launch`` of a daily partition
against the simulator and moto's S3 server (real sockets, real subprocesses).

The project is created offline (``--no-uv-sync``, no update check) and uses this test's virtual environment,
where minimax-dagster is installed, instead of a new one; ``PYTHONPATH=src`` stands in for installing the
project itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from minimax_dagster.production.manifest import VideoManifest
from minimax_dagster.storage import get_json
from minimax_dagster_tests.conftest import S3_KEY_ID, S3_SECRET
from minimax_dagster_tests.dagster_support import TEMPLATE

BIN = Path(sys.executable).parent
TYPE = "minimax_dagster.MiniMaxVideoComponent"
PROJECT = "video_project"


def dg_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment of a user who activated this venv inside the project (no secrets of the test's own)."""
    env = {k: v for k, v in os.environ.items() if k not in {"USEAPI_TOKEN", "MINIMAX_BUCKET", "DAGSTER_HOME"}}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=sys.prefix,
        DAGSTER_DG_UPDATE_CHECK_ENABLED="0",  # create-dagster asks PyPI for a newer version otherwise
        XDG_CONFIG_HOME=str(root / "config"),  # no user-level dg.toml
        DAGSTER_HOME=str(root / "home"),
        PYTHONPATH=str(root / PROJECT / "src"),
    )
    env.update(extra)
    return env


def run(
    args: list[str], cwd: Path, env: dict[str, str], *, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    tool = BIN / args[0]
    assert tool.exists(), f"{args[0]} is not installed: pip install -e '.[dev]'"
    done = subprocess.run(
        [str(tool), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    if ok:
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def new_project(root: Path) -> tuple[Path, dict[str, str]]:
    (root / "home").mkdir()
    env = dg_env(root)
    run(["create-dagster", "project", "--no-uv-sync", PROJECT], root, env)
    project = root / PROJECT
    assert (project / "src" / PROJECT / "defs").is_dir()
    return project, env


def test_quickstart_lists_scaffolds_checks_and_lists_defs(tmp_path):
    project, env = new_project(tmp_path)

    listed = json.loads(run(["dg", "list", "components", "--json"], project, env).stdout)
    items = (
        listed["items"] if isinstance(listed, dict) else listed
    )  # a bare list in older dg (1.12.0-1.12.10)
    assert TYPE in [item["key"] for item in items]
    described = run(["dg", "utils", "inspect-component", TYPE, "--description"], project, env).stdout
    assert ".. code-block:: yaml" in described and "type: minimax_dagster.MiniMaxVideoComponent" in described

    run(["dg", "scaffold", "defs", TYPE, "videos"], project, env)
    defs_yaml = project / "src" / PROJECT / "defs" / "videos" / "defs.yaml"
    text = defs_yaml.read_text()
    assert text.startswith(f"type: {TYPE}\n") and '"{{ env.USEAPI_TOKEN }}"' in text

    # Before the bucket variable is set, the check names it, at its line, with the fix.
    unset = run(["dg", "check", "defs"], project, env, ok=False)
    report = unset.stdout + unset.stderr
    bucket_line = next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("  bucket:"))
    assert unset.returncode != 0
    assert f"defs.yaml:{bucket_line}" in report and "environment variable MINIMAX_BUCKET is not set" in report

    # The defs.yaml as scaffolded passes once MINIMAX_BUCKET is set; the token is not needed to load.
    with_bucket = {**env, "MINIMAX_BUCKET": "my-video-bucket"}
    checked = run(["dg", "check", "defs"], project, with_bucket)
    assert "All definitions loaded successfully." in checked.stdout

    defs = json.loads(run(["dg", "list", "defs", "--json"], project, with_bucket).stdout)
    # Older dg (1.12.0) names an asset's key "key", newer "asset_key".
    assert sorted(a.get("asset_key", a.get("key")) for a in defs["assets"]) == ["videos", "videos_prompts"]
    assert sorted(c["key"] for c in defs["asset_checks"]) == [
        "videos:all_prompts_present",
        "videos:videos_in_s3",
    ]
    assert sorted(r["name"] for r in defs["resources"]) == ["minimax", "minimax_io_manager", "s3"]
    assert defs_yaml.read_text() == text  # nothing rewrote the user's file


@pytest.mark.slow
def test_quickstart_daily_pipeline_launches_against_the_simulator_and_s3(
    tmp_path, simulator, s3_endpoint, s3_client, bucket
):
    project, env = new_project(tmp_path)
    params = json.dumps({"template_id": TEMPLATE})
    run(["dg", "scaffold", "defs", TYPE, "videos", "--json-params", params], project, env)
    defs_yaml = project / "src" / PROJECT / "defs" / "videos" / "defs.yaml"

    # What a user changes: daily partitions, and the API / S3 endpoints (here the simulator and moto).
    document = yaml.safe_load(defs_yaml.read_text())
    attributes = document["attributes"]
    attributes["prompt_rows"][0]["prompt"] = "A red fox runs through fresh snow on {partition_key}"
    attributes["partitions"] = {"type": "daily", "start_date": "2026-11-01"}
    attributes["backfill_policy"] = {"type": "single_run"}
    attributes["resources"]["minimax"].update(
        base_url="{{ env.MINIMAX_BASE_URL }}",
        allowed_download_hosts=[simulator.origin],
        poll_interval=0.2,
        read_timeout=5,
        generation_deadline=120,
    )
    attributes["resources"]["s3"] = {
        "endpoint_url": s3_endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "{{ env.AWS_ACCESS_KEY_ID }}",
        "aws_secret_access_key": "{{ env.AWS_SECRET_ACCESS_KEY }}",
    }
    defs_yaml.write_text(yaml.safe_dump(document, sort_keys=False))

    # The two variables of the quickstart, plus where the simulator and moto listen.
    user_env = {
        **env,
        "USEAPI_TOKEN": simulator.token,
        "MINIMAX_BUCKET": bucket,
        "MINIMAX_BASE_URL": simulator.base_url,
        "AWS_ACCESS_KEY_ID": S3_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
    }
    run(["dg", "check", "defs"], project, user_env)
    launched = run(
        ["dg", "launch", "--assets", "videos_prompts,videos", "--partition", "2026-11-02"], project, user_env
    )
    output = launched.stdout + launched.stderr
    assert simulator.token not in output and S3_SECRET not in output

    manifest = VideoManifest.model_validate(
        get_json(s3_client, bucket, "minimax/assets/videos/2026-11-02.json")
    )
    assert [e.id for e in manifest.entries] == ["fox-in-snow", "paper-boat"]
    assert [e.status for e in manifest.entries] == ["generated", "generated"]
    assert "on 2026-11-02" in (manifest.entries[0].prompt or "")
    for entry in manifest.entries:
        head = s3_client.head_object(Bucket=bucket, Key=entry.s3_uri.removeprefix(f"s3://{bucket}/"))
        assert head["ContentType"] == "video/mp4" and head["ContentLength"] == entry.bytes
    assert simulator.counters()["creates"] == 2

    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        (record,) = instance.get_run_records()
        assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        evaluations = {
            e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data.passed
            for e in instance.all_logs(
                record.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            )
        }
        assert evaluations == {"videos_in_s3": True, "all_prompts_present": True}
        log = "\n".join(dg.serialize_value(e) for e in instance.all_logs(record.dagster_run.run_id))
        assert simulator.token not in log and S3_SECRET not in log
