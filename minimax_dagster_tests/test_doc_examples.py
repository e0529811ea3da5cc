"""Every example of the README and of the documentation site runs (how each kind runs: ``doc_examples.py``).

Python examples run as scripts in a fresh interpreter, with the simulator and moto's S3 server in their
environment; component YAML is loaded by the component; run config is executed; instance YAML is loaded; an
example marked ``not run: <why>`` is checked for syntax. The shell commands are each listed in
``docs/commands.md`` with what runs them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import dagster as dg
import pytest
import yaml
from dagster.components.testing import create_defs_folder_sandbox

from minimax_dagster import MiniMaxResource, MiniMaxS3Resource, S3JsonIOManager, build_minimax_video_asset
from minimax_dagster_tests.conftest import S3_KEY_ID, S3_SECRET
from minimax_dagster_tests.dagster_support import TEMPLATE
from minimax_dagster_tests.doc_examples import REPO, Example, doc_environment, examples, shell_commands

PYTHON = examples("python")
YAML = examples("yaml")
SHELL = examples("bash")
YAML_KINDS = {"defs.yaml", "run config", "dagster.yaml"}


def ids(found: list[Example]) -> list[str]:
    return [e.id for e in found]


def test_the_documents_have_examples_of_each_kind():
    assert len(PYTHON) >= 5 and len(YAML) >= 3 and len(SHELL) >= 3
    assert {e.title for e in YAML if e.runs} == YAML_KINDS


@pytest.fixture
def doc_env(simulator, s3_endpoint, bucket):
    """The environment a reader's shell would have, pointed at the simulator and the S3 server."""
    return doc_environment(simulator, s3_endpoint, bucket)


@pytest.mark.parametrize("example", PYTHON, ids=ids(PYTHON))
def test_python_example(example: Example, doc_env, tmp_path):
    compile(example.code, example.id, "exec")  # a syntax error names the document and line
    if not example.runs:
        return
    script = tmp_path / "example.py"
    script.write_text(example.code)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**os.environ, **doc_env},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, f"{example.id} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert S3_SECRET not in done.stdout + done.stderr


@pytest.mark.parametrize("example", YAML, ids=ids(YAML))
def test_yaml_example(example: Example, doc_env, monkeypatch, tmp_path, simulator):
    document = yaml.safe_load(example.code)
    assert example.title in YAML_KINDS or not example.runs, (
        f'{example.id}: give the fence a title: one of {sorted(YAML_KINDS)}, or "not run: <why>"'
    )
    if not example.runs:
        return
    for name, value in doc_env.items():
        monkeypatch.setenv(name, value)
    if example.title == "defs.yaml":
        with create_defs_folder_sandbox() as sandbox:
            folder = sandbox.defs_folder_path / "videos"
            folder.mkdir()
            (folder / "defs.yaml").write_text(example.code)
            with sandbox.load_component_and_build_defs(defs_path=folder) as (_, defs):
                assert defs.resolve_asset_graph().get_all_asset_keys()
    elif example.title == "dagster.yaml":
        with dg.instance_for_test(overrides=document, temp_dir=str(tmp_path)) as instance:
            assert instance.get_settings("concurrency") or instance.get_settings("telemetry") is not None
    else:
        result = _run_videos(document, doc_env, simulator)
        assert result.success, f"{example.id}: the run failed"
        config = document["ops"]["videos"]["config"]
        if config.get("dry_run"):  # what the documents promise of a dry run: nothing is created
            assert simulator.counters()["creates"] == 0


def _run_videos(run_config: dict, env: dict[str, str], simulator) -> dg.ExecuteInProcessResult:
    """One run of ``prompts`` -> ``videos`` (the asset the documents' run config names) with ``run_config``."""

    @dg.asset(io_manager_key="minimax_io_manager")
    def prompts() -> list:
        return ["A red fox in fresh snow", "A yellow tram on a hill"]

    videos = build_minimax_video_asset(
        "videos", prompts=prompts, template_id=TEMPLATE, bucket=env["MINIMAX_BUCKET"]
    )
    s3 = MiniMaxS3Resource(
        endpoint_url=env["MINIMAX_S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET,
    )
    return dg.materialize(
        [prompts, videos],
        run_config=run_config,
        raise_on_error=False,
        resources={
            "minimax": MiniMaxResource(
                api_token=simulator.token,
                base_url=simulator.base_url,
                allowed_download_hosts=[simulator.origin],
            ),
            "s3": s3,
            "minimax_io_manager": S3JsonIOManager(s3=s3, bucket=env["MINIMAX_BUCKET"]),
        },
    )


def test_every_shell_command_is_listed_with_what_runs_it():
    listed = (REPO / "docs" / "commands.md").read_text(encoding="utf-8")
    missing = [f"{e.id}: {c}" for e in SHELL for c in shell_commands(e) if f"`{c}`" not in listed]
    assert not missing, "commands not listed in docs/commands.md:\n" + textwrap.indent(
        "\n".join(missing), "  "
    )
