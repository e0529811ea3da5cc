"""Test support: one Dagster run of the budget tests' ``videos`` asset in a process of its own, so that several
runs go at once against one budget (as a daemon's run workers do).

``python -m minimax_dagster_tests.budget_run_process '<json>'`` opens the instance (``instance_ref``, serialized),
builds the code location of :func:`minimax_dagster_tests.test_budget_dagster.budget_defs` on the simulator and S3
server the JSON names, prints ``ready``, waits for a line on stdin (so that the runs start together), materializes
``partition`` and prints ``{"run_id": ..., "success": ...}``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dagster as dg

ROOT = Path(__file__).resolve().parent.parent


def spawn(config: dict[str, Any]) -> subprocess.Popen[str]:
    """Start a run process and wait until it is ready (write a line to its stdin to start it)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "minimax_dagster_tests.budget_run_process", json.dumps(config)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if line.strip() != "ready":
        process.kill()
        _, err = process.communicate(timeout=30)
        raise AssertionError(f"the run process did not start: {line!r}\n{err[-3000:]}")
    return process


def outcome(process: subprocess.Popen[str], timeout: float = 240) -> dict[str, Any]:
    """What a finished run process printed last."""
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return dict(json.loads(out.strip().splitlines()[-1]))


def main(raw: str) -> None:
    from minimax_dagster_tests.dagster_support import materialize
    from minimax_dagster_tests.test_budget_dagster import budget_defs

    config = json.loads(raw)
    ref = dg.deserialize_value(config["instance_ref"])
    with dg.DagsterInstance.from_ref(ref) as instance:
        sim = SimpleNamespace(**config["sim"])  # what the resource needs of the simulator: base_url, origin
        defs = budget_defs(sim, config["s3_endpoint"], config["bucket"], config["new_videos"])
        print("ready", flush=True)
        sys.stdin.readline()
        result = materialize(defs, instance, partition_key=config["partition"])
        print(json.dumps({"run_id": result.run_id, "success": result.success}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
