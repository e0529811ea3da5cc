"""Test support: a :class:`VideoProducer` in a process of its own, to race, share capacity with or crash.

``python -m minimax_dagster_tests.producer_process '<json>'`` builds a producer on the simulator and S3 server
the JSON names (``base_url``, ``origin``, ``token``, ``s3_endpoint``, ``bucket``, ``accounts``, ``prompts``: a
list of ``[id, prompt]``), prints ``ready``, waits for a line on stdin (so that several processes start at once),
runs the prompts (reserving in a one-window budget when ``budget`` names one) and prints one JSON line per entry (``{"entry": ...}``) and then one with every S3 request it
sent (``{"requests": [[operation, key, HTTP status], ...]}``, seen through botocore's event hooks). It can be
SIGKILLed at any moment: that is the crash the tests simulate.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from minimax_dagster.api.client import MiniMaxClient
from minimax_dagster.production import ProducerSettings, VideoProducer, VideoPrompt
from minimax_dagster.production.budget import RunBudget
from minimax_dagster.production.budget_windows import BudgetPolicy, WindowLimit
from minimax_dagster.storage import DownloadPolicy
from minimax_dagster_tests.conftest import s3_client_for

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "394100000000000003"  # simulator "Transformers": text optional, no image


def spawn(
    sim: Any, s3_endpoint: str, bucket: str, prompts: list[tuple[str, str]], **extra: Any
) -> subprocess.Popen[str]:
    """Start a producer process for ``prompts`` and wait until it is ready; write a line to its stdin to start
    it (see :func:`start`)."""
    config = {
        "base_url": sim.base_url,
        "origin": sim.origin,
        "token": sim.token,
        "s3_endpoint": s3_endpoint,
        "bucket": bucket,
        "accounts": dict(sim.config.accounts),
        "prompts": prompts,
        **extra,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "minimax_dagster_tests.producer_process", json.dumps(config)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if line.strip() != "ready":
        process.kill()
        _, err = process.communicate(timeout=30)
        raise AssertionError(f"the producer process did not start: {line!r}\n{err[-3000:]}")
    return process


def start(*processes: subprocess.Popen[str]) -> None:
    """Let processes made by :func:`spawn` run."""
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()


def results(
    process: subprocess.Popen[str], timeout: float = 120
) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """The entries and the S3 requests a finished producer process printed."""
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    entries: list[dict[str, Any]] = []
    requests: list[list[Any]] = []
    for line in out.splitlines():
        data = json.loads(line)
        entries += [data["entry"]] if "entry" in data else []
        requests += data.get("requests", [])
    return entries, requests


def main(raw: str) -> None:
    config = json.loads(raw)
    s3 = s3_client_for(config["s3_endpoint"])
    seen: list[list[Any]] = []

    def remember_key(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["recorded_key"] = str(params.get("Key", ""))

    def record(http_response: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        seen.append([model.name, context.get("recorded_key", ""), http_response.status_code])

    s3.meta.events.register("before-parameter-build.s3", remember_key)
    s3.meta.events.register("after-call.s3", record)
    settings = ProducerSettings(
        bucket=config["bucket"],
        prefix="minimax",
        policy=DownloadPolicy(allowed_hosts=(config["origin"],)),
        accounts=config["accounts"],
        generation_deadline=60.0,
        claim_poll=0.1,
        claim_ttl=config.get("claim_ttl", 60.0),
    )

    def client() -> MiniMaxClient:
        return MiniMaxClient(
            config["token"], base_url=config["base_url"], poll_interval=0.1, read_timeout=5.0
        )

    budget = None
    if "budget" in config:  # {"new_videos": N, "per": "day", "run_id": ...}: one window of N new videos
        wanted = config["budget"]
        policy = BudgetPolicy(windows=(WindowLimit(wanted["per"], new_videos=wanted["new_videos"]),))
        budget = RunBudget(s3, config["bucket"], policy, run_id=wanted["run_id"], asset="videos")
    producer = VideoProducer(client, s3, settings, budget=budget)
    prompts = [VideoPrompt(id=row, prompt=text, template_id=TEMPLATE) for row, text in config["prompts"]]
    print("ready", flush=True)
    sys.stdin.readline()
    for note in producer.run(prompts):
        if note.entry is not None:
            print(json.dumps({"entry": note.entry.model_dump(mode="json")}), flush=True)
    print(json.dumps({"requests": seen}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
