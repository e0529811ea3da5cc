"""Load and CLI tests of the MiniMax simulator: 50 concurrent streams, concurrent downloads, the CLI."""

from __future__ import annotations

import doctest
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from minimax_dagster.simulator import MiniMaxSimulator
from minimax_dagster.simulator.media import read_mp4_info

from .test_simulator import TEXT, TEXT_OPT, auth, read_events

STREAMS = 50
GEN = 2.0


def test_fifty_concurrent_streams_over_two_accounts():
    config = {"accounts": {"100001": 25, "100002": 25}, "generation_seconds": GEN, "heartbeat_seconds": 0.2}
    with MiniMaxSimulator(**config) as sim:
        barrier = threading.Barrier(STREAMS)

        def one(i: int) -> list[dict]:
            barrier.wait(timeout=30)
            resp = requests.post(
                f"{sim.base_url}/videos/agent-create",
                headers=auth(sim),
                json={"templateId": TEXT, "prompt": f"stream {i}"},
                stream=True,
                timeout=30,
            )
            assert resp.status_code == 200, resp.text
            return read_events(resp)

        started = time.monotonic()
        with ThreadPoolExecutor(STREAMS) as pool:
            results = list(pool.map(one, range(STREAMS)))
        elapsed = time.monotonic() - started
        assert elapsed < GEN * 3, elapsed  # concurrent, not one after the other
        video_ids = set()
        for i, events in enumerate(results):
            assert events[0]["status"] == "created" and events[0]["message"]["msgContent"] == f"stream {i}"
            assert events[-1]["status"] == "finished"
            assert any(e["status"] == "heartbeat" for e in events)
            video_ids.add(events[0]["videoId"])
        assert len(video_ids) == STREAMS
        c = sim.counters()
        assert c["creates"] == STREAMS and c["rejected_by_status"] == {}
        assert c["max_concurrent_total"] == STREAMS
        assert c["max_concurrent_by_account"] == {"100001": 25, "100002": 25}
        assert c["concurrent_total"] == 0
        assert c["creates_by_prompt"] == {f"stream {i}": 1 for i in range(STREAMS)}

        # ... and the 50 videos download concurrently too
        def download(video_id: str) -> tuple[int, dict]:
            body = requests.get(f"{sim.base_url}/videos/{video_id}", headers=auth(sim), timeout=10).json()
            data = requests.get(body["downloadURL"], timeout=60).content
            return len(data), read_mp4_info(data)

        with ThreadPoolExecutor(STREAMS) as pool:
            downloads = list(pool.map(download, sorted(video_ids)))
        assert all((info["width"], info["height"]) == (1280, 720) for _, info in downloads)
        deadline = time.monotonic() + 5  # completions are counted just after each last byte is sent
        while sim.counters()["downloads_completed"] < STREAMS and time.monotonic() < deadline:
            time.sleep(0.02)
        c = sim.counters()
        assert c["downloads"] == c["downloads_completed"] == STREAMS


#: The test's waits are hang guards, not speed targets: the simulator's stop may take up to 2 x 15 s by design
#: (the server's cleanup, then its thread), and a loaded machine stretches every step (17 s for this test at a
#: load average of 9 on 2 cores, 3 s on a quiet one).
CLI_HANG_GUARD_SECONDS = 90


def test_cli_serves_until_interrupted(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # stderr to a file: a pipe nobody reads blocks the simulator once its buffer is full.
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "minimax_dagster.simulator",
                "--port",
                "0",
                "--generation-seconds",
                "0.3",
                "--fault",
                "busy=1",
                "--account",
                "555=2",
                "--account",
                "556=1",
                "--account-in-error",
                "556=Account on hold",
                "--account",
                "557=1",
                "--account-without-video",
                "557",
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        base_url = lines[0].split()[-1]
        token = lines[1].split()[-1]
        origin = lines[2].split()[-1]
        assert base_url == f"{origin}/v1/minimax" and token == "sim-token"
        headers = {"Authorization": f"Bearer {token}"}
        accounts = requests.get(f"{base_url}/accounts", headers=headers, timeout=30).json()
        assert {a: (v["maxJobs"], v["supportVideo"], v.get("error")) for a, v in accounts.items()} == {
            "555": (2, True, None),
            "556": (1, True, "Account on hold"),
            "557": (1, False, None),
        }
        url = f"{base_url}/videos/agent-create"
        assert (
            requests.post(url, headers=headers, json={"templateId": TEXT_OPT}, timeout=30).status_code == 429
        )
        events = read_events(
            requests.post(url, headers=headers, json={"templateId": TEXT_OPT}, stream=True, timeout=30)
        )
        assert events[-1]["status"] == "finished"
        assert "-minimax:555-video:" in events[0]["videoId"]  # the only account that can make videos
        counters = requests.get(f"{origin}/_sim/counters", timeout=30).json()
        assert counters["creates"] == 1 and counters["rejected_by_status"] == {"429": 1}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=CLI_HANG_GUARD_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, errors.read_text()


def test_cli_help_faults():
    out = subprocess.run(
        [sys.executable, "-m", "minimax_dagster.simulator", "--help-faults"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    for name in ("drop_after", "stall_after", "malformed_at", "cdn_cut", "no_finished", "slow"):
        assert name in out
    assert "`http502_queued[=1]`" in out and "`http504_queued[=1]`" in out


def test_cli_refuses_flags_on_unknown_accounts():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "minimax_dagster.simulator",
            "--account",
            "1=1",
            "--account-without-video",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2 and "accounts_without_video" in out.stderr and "'2'" in out.stderr


def test_cli_docstring_examples_run():
    # pytest's --doctest-modules does not collect __main__.py, so its examples run here.
    import minimax_dagster.simulator.__main__ as cli

    result = doctest.testmod(cli)
    assert result.attempted >= 1 and result.failed == 0
