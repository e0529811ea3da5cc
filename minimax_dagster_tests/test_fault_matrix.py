"""The fault matrix (issue 5): every fault the simulator can play, end to end through a Dagster materialization.

Each test runs ``prompts → videos`` on a real sqlite Dagster instance against the simulator and moto's S3 server
over real sockets, and asserts what a user wants: the prompt recovered, or a clear failure naming the prompt and
the cause; exactly one create per prompt (``creates_by_prompt``), however often it is retried; no partial object
and no open multipart upload left in S3; what succeeded is kept. ``docs/FAULTS.md`` is the table of this file.

To keep the matrix fast, the per-prompt faults share one materialization (and its re-run): each prompt carries
its own ``[sim:...]`` marker, so every test below still checks one fault, on its own prompt, and the faults also
meet each other in one run as they would in production. Faults that change the whole run (accounts, S3, a killed
worker) have runs of their own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from minimax_dagster.embedded import EmbeddedS3Server
from minimax_dagster.production.manifest import ManifestEntry
from minimax_dagster.simulator import MiniMaxSimulator
from minimax_dagster.storage import read_job_record
from minimax_dagster_tests.conftest import new_bucket, s3_client_for
from minimax_dagster_tests.fault_support import ApiProxy, Env

ROOT = Path(__file__).resolve().parents[1]

# The world: a fresh bucket per test (``env``) on one Dagster instance per module (``module_instance``), with the
# secrets in the environment (``module_secrets``); all three in conftest.py, over this module's ``sim``.
pytestmark = pytest.mark.usefixtures("module_secrets")


@pytest.fixture(scope="module")
def sim() -> Iterator[MiniMaxSimulator]:
    """A fast simulator with three accounts; Retry-After 0 so that a 429 storm costs no wall time."""
    with MiniMaxSimulator(
        generation_seconds=0.3,
        heartbeat_seconds=0.1,
        retry_after_seconds=0,
        moderated_visible_seconds=30,
        accounts={"100001": 5, "100002": 5, "100003": 5},
    ) as s:
        yield s


# ---------------------------------------------------------------------------------------------------- per-prompt faults

#: One prompt per fault (id → prompt). The markers make the simulator play the fault on that prompt only.
MATRIX = {
    "drop": "A lighthouse at dusk [sim:drop_after=3]",
    "stall": "A windmill in a storm [sim:stall_after=2]",
    "malformed": "A kite over dunes [sim:malformed_at=4]",
    "no-finished": "A glacier calving [sim:no_finished]",
    "failed": "A robot dancing [sim:fail]",
    "moderated-5": "A crowded beach [sim:moderate=5]",
    "moderated-7": "A crowded market [sim:moderate=7]",
    "moderated-14": "A crowded stadium [sim:moderate=14]",
    "busy": "A fox crossing a road [sim:busy=6]",
    "http502": "A tram in the rain [sim:http502=4]",
    "http504": "A bus in the snow [sim:http504=4]",
    "cdn-cut": "A hummingbird in slow motion [sim:cdn_cut=100000]",
    "cdn-cut-always": "A waterfall from above [sim:cdn_cut=100000:0]",
    "cdn-slow": "A snail on a leaf [sim:cdn_slow=1500000]",
    "control": "A calm lake at dawn",
}
#: Stalls show after 1 s; the client gives up after one retry, so 429/502/504 storms outlast its budget and
#: the producer's own waits (capacity_wait 0.2 s) have to carry them. Each 502/504 is reconciled (the settle
#: time is dagster_support's 0.05 s) before any second POST.
MATRIX_OVERRIDES = {"read_timeout": 1.0, "max_retries": 1, "backoff_max": 0.2, "capacity_wait": 0.2}
FAILING = {"failed", "moderated-5", "moderated-7", "moderated-14", "cdn-cut-always"}


@dataclass
class MatrixRuns:
    """The shared materialization of :data:`MATRIX`, its re-run, and the counters after each."""

    env: Env
    first: dg.ExecuteInProcessResult
    first_entries: dict[str, ManifestEntry]
    first_counters: dict[str, Any]
    before: dict[str, Any]
    second: dg.ExecuteInProcessResult
    second_entries: dict[str, ManifestEntry]
    second_counters: dict[str, Any]

    def rejected(self, status: int) -> int:
        """How many creates the simulator refused with ``status`` during the first run."""
        after = self.first_counters["rejected_by_status"].get(str(status), 0)
        return after - self.before["rejected_by_status"].get(str(status), 0)


@pytest.fixture(scope="module")
def matrix(sim: MiniMaxSimulator, s3_endpoint: str, module_instance: dg.DagsterInstance) -> MatrixRuns:
    s3 = s3_client_for(s3_endpoint)
    env = Env(sim, s3_endpoint, s3, new_bucket(s3, "faults"), module_instance)
    rows = [{"id": k, "prompt": v} for k, v in MATRIX.items()]
    before = sim.counters()
    first = env.run(rows, overrides=MATRIX_OVERRIDES)
    first_entries, first_counters = env.entries(), sim.counters()
    second = env.run(rows, overrides=MATRIX_OVERRIDES)
    return MatrixRuns(
        env, first, first_entries, first_counters, before, second, env.entries(), sim.counters()
    )


def _assert_recovered(matrix: MatrixRuns, prompt_id: str) -> ManifestEntry:
    """The prompt's video was made in the first run, reused by the re-run, and paid once."""
    entry = matrix.first_entries[prompt_id]
    assert entry.status == "generated", entry.error
    assert matrix.second_entries[prompt_id].status == "reused"
    assert matrix.second_counters["creates_by_prompt"][MATRIX[prompt_id]] == 1
    return entry


def _assert_failed(matrix: MatrixRuns, prompt_id: str, *needles: str) -> str:
    """The prompt failed in both runs with a message naming it and the cause, and was paid at most once."""
    message = matrix.env.failure(matrix.first)
    line = next((m for m in message.splitlines() if m.strip().startswith(f"- {prompt_id}:")), None)
    assert line is not None, f"{prompt_id} not named in:\n{message}"
    for needle in needles:
        assert needle in line, f"{needle!r} missing in {line!r}"
    assert matrix.first_entries[prompt_id].status == "failed"
    assert matrix.second_entries[prompt_id].status == "failed"
    assert matrix.second_counters["creates_by_prompt"].get(MATRIX[prompt_id], 0) <= 1
    return line


def test_dropped_stream_recovers_by_polling(matrix: MatrixRuns) -> None:
    assert _assert_recovered(matrix, "drop").recovered


def test_stalled_stream_recovers_by_polling(matrix: MatrixRuns) -> None:
    assert _assert_recovered(matrix, "stall").recovered


def test_malformed_event_is_skipped(matrix: MatrixRuns) -> None:
    entry = _assert_recovered(matrix, "malformed")
    assert not entry.recovered, "one bad event must not break the stream"


def test_stream_without_finished_recovers(matrix: MatrixRuns) -> None:
    _assert_recovered(matrix, "no-finished")


def test_failed_video_fails_clearly_and_is_not_paid_again(matrix: MatrixRuns) -> None:
    _assert_failed(matrix, "failed", "VideoFailedError", "the video failed")
    assert matrix.second_counters["creates_by_prompt"][MATRIX["failed"]] == 1
    record = read_job_record(matrix.env.s3, matrix.env.bucket, Env.keys(MATRIX["failed"]))
    assert record is not None and record.status == "failed"
    assert "regenerate_failed" in (matrix.second_entries["failed"].error or "")


@pytest.mark.parametrize("status", [5, 7, 14])
def test_moderated_video_fails_clearly(matrix: MatrixRuns, status: int) -> None:
    _assert_failed(matrix, f"moderated-{status}", "ModeratedError", f"status {status}")
    assert matrix.second_counters["creates_by_prompt"][MATRIX[f"moderated-{status}"]] == 1


def test_429_storm_longer_than_the_client_budget_waits_and_recovers(matrix: MatrixRuns) -> None:
    _assert_recovered(matrix, "busy")
    assert matrix.rejected(429) == 6
    assert any(m.startswith("[busy] no capacity") for m in matrix.env.logs(matrix.first))


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_errors_longer_than_the_client_budget_wait_and_recover(
    matrix: MatrixRuns, status: int
) -> None:
    _assert_recovered(matrix, f"http{status}")
    assert matrix.rejected(status) == 4
    # No blind re-POST: the client looked for a job after each answer and proved there was none before the
    # producer waited and created again (a storm that queued jobs: test_fault_matrix_gateway.py).
    assert any(
        m.startswith(f"[http{status}] service busy") and "no job was made (none on account(s)" in m
        for m in matrix.env.logs(matrix.first)
    )


def test_cdn_cut_mid_body_retries_the_download_within_the_run(matrix: MatrixRuns) -> None:
    entry = _assert_recovered(matrix, "cdn-cut")
    assert entry.bytes and entry.bytes > 100_000
    assert matrix.first_counters["downloads_by_video"][entry.video_id] == 2
    assert any(
        m.startswith("[cdn-cut] storing") and "attempt 2 of" in m for m in matrix.env.logs(matrix.first)
    )


def test_cdn_cutting_every_download_fails_clearly_and_the_rerun_does_not_pay_again(
    matrix: MatrixRuns,
) -> None:
    _assert_failed(
        matrix, "cdn-cut-always", "was generated but not stored", "100000 bytes read", "attempt 4 of 4"
    )
    assert matrix.second_counters["creates_by_prompt"][MATRIX["cdn-cut-always"]] == 1
    record = read_job_record(matrix.env.s3, matrix.env.bucket, Env.keys(MATRIX["cdn-cut-always"]))
    assert record is not None and record.status == "running", "the paid video's id must be kept"
    assert any(m.startswith("[cdn-cut-always] reattaching") for m in matrix.env.logs(matrix.second))


def test_slow_cdn_is_stored_whole(matrix: MatrixRuns) -> None:
    entry = _assert_recovered(matrix, "cdn-slow")
    assert entry.bytes and entry.bytes > 1_000_000


def test_matrix_keeps_what_succeeded_and_leaves_s3_clean(matrix: MatrixRuns) -> None:
    message = matrix.env.failure(matrix.first)
    assert f"{len(FAILING)} of {len(MATRIX)} prompt(s) failed" in message
    for prompt_id in MATRIX:
        first, second = matrix.first_entries[prompt_id], matrix.second_entries[prompt_id]
        assert first.ok == (prompt_id not in FAILING), prompt_id
        assert second.ok == first.ok and (not first.ok or first.s3_uri == second.s3_uri)
        assert matrix.second_counters["creates_by_prompt"].get(MATRIX[prompt_id], 0) <= 1
    assert len(matrix.env.video_objects()) == len(MATRIX) - len(FAILING)
    matrix.env.assert_clean()


# ---------------------------------------------------------------------------------------------------- accounts


def test_out_of_credits_and_on_hold_accounts_are_disabled_and_prompts_move_on(env: Env) -> None:
    """Account 100001 answers 412, 100002 answers 596, 100003 is fine: the first two are disabled at their
    first refusal (creates already in flight on them may see one more) and every prompt lands on 100003."""
    rows = [{"id": f"crane-{i}", "prompt": f"A paper crane number {i}"} for i in range(4)]
    refuse = {
        "100001": (412, "Insufficient credits on this MiniMax account"),
        "100002": (596, "The MiniMax account is on hold, try again in a few hours"),
    }
    with ApiProxy(env.sim.origin, refuse=refuse) as proxy:
        result = env.run(rows, overrides={"base_url": proxy.base_url})
    assert result.success
    assert set(proxy.refused) == {"100001", "100002"}
    assert all(1 <= n <= 2 for n in proxy.refused.values()), proxy.refused
    entries = env.entries()
    assert {entries[r["id"]].account for r in rows} == {"100003"}
    assert all(env.creates(r["prompt"]) == 1 for r in rows)
    logs = env.logs(result)
    assert any("account 100001 unusable (HTTP 412" in m for m in logs)
    assert any("account 100002 unusable (HTTP 596" in m for m in logs)
    env.assert_clean()


def test_every_account_unusable_fails_clearly_without_a_create(env: Env) -> None:
    rows = [
        {"id": "no-credits", "prompt": "A quiet library [sim:credits]"},
        {"id": "on-hold", "prompt": "A quiet museum [sim:hold]"},
    ]
    result = env.run(rows)
    message = env.failure(result)
    assert "2 of 2 prompt(s) failed" in message
    for row in rows:
        line = next(m for m in message.splitlines() if m.strip().startswith(f"- {row['id']}:"))
        assert "no usable MiniMax account" in line and ("HTTP 412" in line or "HTTP 596" in line)
        assert env.creates(row["prompt"]) == 0
    env.assert_clean()


# ---------------------------------------------------------------------------------------------------- S3


@pytest.fixture
def flaky_s3() -> Iterator[tuple[list[EmbeddedS3Server], str]]:
    """An S3 server of this test's own, which the test may stop and start again on the same port (moto keeps
    its buckets in the process, so they survive; a stopped server closes its port)."""
    servers = [EmbeddedS3Server().start()]
    try:
        yield servers, servers[0].endpoint_url
    finally:
        for s in servers:
            s.stop()


def test_s3_down_during_the_upload_then_back_recovers_within_the_run(
    sim: MiniMaxSimulator, flaky_s3: tuple[list[EmbeddedS3Server], str], module_instance: dg.DagsterInstance
) -> None:
    servers, endpoint = flaky_s3
    s3 = s3_client_for(endpoint)
    env = Env(sim, endpoint, s3, new_bucket(s3, "faults"), module_instance)
    prompt = "A train through a tunnel [sim:cdn_slow=2000000]"
    host, port = servers[0].host, int(endpoint.rsplit(":", 1)[1])
    before = sim.counters()

    def outage() -> None:
        # S3 goes away while the video downloads; once the body is all read (the PUT follows at once), it stays
        # away for one more second, then comes back on the same port.
        while sim.counters()["downloads"] <= before["downloads"]:
            time.sleep(0.01)
        servers[0].stop()
        while sim.counters()["downloads_completed"] <= before["downloads_completed"]:
            time.sleep(0.01)
        time.sleep(1.0)
        servers.append(EmbeddedS3Server(host, port).start())

    thread = threading.Thread(target=outage, daemon=True)
    thread.start()
    result = env.run([{"id": "s3-blip", "prompt": prompt}])
    thread.join(30)
    assert len(servers) == 2, "the outage never happened"
    assert result.success, env.failure(result)
    assert env.entries()["s3-blip"].status == "generated"
    assert env.creates(prompt) == 1
    env.assert_clean()


# ---------------------------------------------------------------------------------------------------- killed worker

_WORKER = textwrap.dedent(
    """
    import sys

    import dagster as dg

    from minimax_dagster_tests.dagster_support import materialize, video_defs

    class Sim:
        base_url, origin = sys.argv[1], sys.argv[2]

    defs = video_defs([{"id": "killed", "prompt": sys.argv[5]}], sim=Sim(), s3_endpoint=sys.argv[3], bucket=sys.argv[4])
    with dg.instance_for_test(temp_dir=sys.argv[6]) as instance:
        materialize(defs, instance)
    """
)


def test_worker_killed_mid_generation_reattaches_on_rerun(env: Env, tmp_path: Path) -> None:
    prompt = "A clock tower at midnight [sim:slow=4]"
    keys = env.keys(prompt)
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    home = tmp_path / "worker-dagster"
    home.mkdir()
    args = [env.sim.base_url, env.sim.origin, env.s3_endpoint, env.bucket, prompt, str(home)]
    worker = subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # Kill it once the video is created and its job record is in S3: mid-generation, the video paid for.
        deadline = time.monotonic() + 120
        while (
            env.creates(prompt) < 1
            or getattr(read_job_record(env.s3, env.bucket, keys), "status", "") != "running"
        ):
            if worker.poll() is not None:
                pytest.fail(f"the worker ended early:\n{worker.stderr.read().decode()[-3000:]}")
            assert time.monotonic() < deadline, "the worker never created the video"
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(30)
        assert worker.stderr is not None
        worker.stderr.close()
    assert worker.returncode == -signal.SIGKILL
    record = read_job_record(env.s3, env.bucket, keys)
    assert record is not None and record.status == "running"
    assert env.video_objects() == []

    result = env.run([{"id": "killed", "prompt": prompt}])
    assert result.success, env.failure(result)
    entry = env.entries()["killed"]
    assert entry.reattached and entry.video_id == record.video_id and entry.status == "generated"
    assert env.creates(prompt) == 1
    assert any(m.startswith("[killed] reattaching") for m in env.logs(result))
    env.assert_clean()
