"""Security of the video asset (issue 5), end to end through Dagster materializations.

* Secrets: neither the API token nor the S3 secret appears in the stored event log, in any file the Dagster
  instance keeps on disk (sqlite databases, compressed snapshots included, and compute logs), or in S3.
* Downloads: only https or listed origins, redirects checked hop by hop (SSRF), sizes capped; a refusal fails the
  prompt clearly, stores nothing and leaves no multipart upload.
* S3 keys: nothing in a prompt, an id or a prefix can steer a write outside the configured prefix.
* Hostile datasets: empty, huge prompts, huge or control-character ids, non-string rows, duplicates, 100 000 rows:
  validated before any create, with error messages of bounded size.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from minimax_dagster.assets.factory import build_minimax_video_asset
from minimax_dagster.production.prompts import (
    MAX_REPORTED_ERRORS,
    PromptValidationError,
    validate_prompt_rows,
)
from minimax_dagster.simulator import MiniMaxSimulator
from minimax_dagster.storage import read_job_record
from minimax_dagster_tests.conftest import S3_SECRET, new_bucket, s3_client_for
from minimax_dagster_tests.dagster_support import TEMPLATE, event_log_text, materialize, video_defs
from minimax_dagster_tests.fault_support import ApiProxy, Env

#: A token that cannot turn up anywhere by chance.
TOKEN = "sk-useapi-LEAKCHECK-7c1e5d9a3f60b2"
WRONG_TOKEN = "sk-useapi-WRONGTOKEN-41d0c8e2a9"

# ``env``, ``module_instance`` and ``module_secrets`` (USEAPI_TOKEN is this module's TOKEN) are in conftest.py.
pytestmark = pytest.mark.usefixtures("module_secrets")


@pytest.fixture(scope="module")
def sim() -> Iterator[MiniMaxSimulator]:
    with MiniMaxSimulator(
        token=TOKEN, generation_seconds=0.3, heartbeat_seconds=0.1, retry_after_seconds=0
    ) as s:
        yield s


def _failure_line(message: str, prompt_id: str) -> str:
    line = next((m for m in message.splitlines() if m.strip().startswith(f"- {prompt_id}:")), None)
    assert line is not None, f"{prompt_id} not named in:\n{message}"
    return line


# ---------------------------------------------------------------------------------------------------- secrets


def _texts_on_disk(root: Path) -> Iterator[tuple[str, bytes]]:
    """Every file under ``root`` as bytes; for sqlite databases also every value of every row, blobs
    decompressed when they are zlib data (Dagster stores snapshots compressed)."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        yield str(path), path.read_bytes()
        if path.suffix != ".db":
            continue
        with sqlite3.connect(path) as db:
            tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for row in db.execute(f'SELECT * FROM "{table}"'):
                    for value in row:
                        if isinstance(value, bytes):
                            with contextlib.suppress(zlib.error):
                                value = zlib.decompress(value)
                        if isinstance(value, (bytes, str)):
                            data = value if isinstance(value, bytes) else value.encode()
                            yield f"{path}:{table}", data


def test_token_and_s3_secret_appear_nowhere(
    sim: MiniMaxSimulator, s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that goes through failures, recoveries, retries and a wrong token leaks neither secret: not to the
    event log, not to the instance's files (sqlite, compressed snapshots, compute logs), not to S3."""
    home = tmp_path / "dagster"
    home.mkdir()
    s3 = s3_client_for(s3_endpoint)
    bucket = new_bucket(s3)
    rows = [
        {"id": "fine", "prompt": "A red fox in fresh snow"},
        {"id": "failed", "prompt": "A glitching robot [sim:fail]"},
        {"id": "dropped", "prompt": "A heron in fog [sim:drop_after=3]"},
        {"id": "cut", "prompt": "A fountain [sim:cdn_cut=100000]"},
        {"id": "busy", "prompt": "A market [sim:busy=2]"},
    ]
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        defs = video_defs(
            rows, sim=sim, s3_endpoint=s3_endpoint, bucket=bucket, minimax_overrides={"max_retries": 1}
        )
        result = materialize(defs, instance)
        monkeypatch.setenv("USEAPI_TOKEN", WRONG_TOKEN)
        wrong = materialize(
            video_defs(
                [{"id": "denied", "prompt": "A locked door"}], sim=sim, s3_endpoint=s3_endpoint, bucket=bucket
            ),
            instance,
        )
        logs = [event_log_text(instance, r.run_id) for r in (result, wrong)]

    assert not result.success and not wrong.success
    assert "created user:" in logs[0] and "attempt 2 of" in logs[0], "the scan must read real content"
    assert "Unauthorized" in logs[1]
    secrets = {
        "API token": TOKEN.encode(),
        "wrong API token": WRONG_TOKEN.encode(),
        "S3 secret": S3_SECRET.encode(),
    }
    for name, secret in secrets.items():
        assert all(secret not in text.encode() for text in logs), f"{name} in the event log"
    scanned = list(_texts_on_disk(home))
    assert any(where.endswith(".err") and data for where, data in scanned), "compute logs should be scanned"
    assert any(where.endswith(":snapshots") for where, _ in scanned), "snapshots should be scanned"
    for where, data in scanned:
        for name, secret in secrets.items():
            assert secret not in data, f"{name} in {where}"
    for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        if obj["Key"].endswith((".json",)):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            assert all(secret not in body for secret in secrets.values()), obj["Key"]


# ---------------------------------------------------------------------------------------------------- downloads


def test_download_from_a_host_not_allowed_is_refused_and_a_fixed_config_reattaches(env: Env) -> None:
    prompt = "A harbour at night"
    rows = [{"id": "ssrf", "prompt": prompt}]
    downloads = env.sim.counters()["downloads"]
    result = env.run(rows, overrides={"allowed_download_hosts": ["cdn.example.com", "*.hailuoai.video"]})
    line = _failure_line(env.failure(result), "ssrf")
    assert "download refused" in line and "was generated but not stored" in line
    assert env.sim.counters()["downloads"] == downloads, "a refused URL must not even be fetched"
    assert env.video_objects() == []
    env.assert_clean()
    record = read_job_record(env.s3, env.bucket, env.keys(prompt))
    assert record is not None and record.status == "running"

    # The operator fixes the allow-list: the re-run downloads the video already paid for.
    fixed = env.run(rows)
    assert fixed.success
    entry = env.entries()["ssrf"]
    assert entry.reattached and entry.video_id == record.video_id
    assert env.creates(prompt) == 1
    env.assert_clean()


class Redirector:
    """An HTTP server that answers every GET with a redirect to ``target`` (the SSRF bait)."""

    def __init__(self, target: str) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def origin(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Redirector:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://evil.example.com/video.mp4",
    ],
)
def test_redirect_to_a_host_not_allowed_is_refused(env: Env, target: str) -> None:
    """The API hands out a URL on an allowed origin that redirects elsewhere: the hop is refused, unfetched."""
    prompt = f"A lantern in the wind {target}"
    with (
        Redirector(target) as redirector,
        ApiProxy(env.sim.origin, rewrite=(f"{env.sim.origin}/cdn/", f"{redirector.origin}/cdn/")) as proxy,
    ):
        result = env.run(
            [{"id": "redirected", "prompt": prompt}],
            overrides={
                "base_url": proxy.base_url,
                "allowed_download_hosts": [redirector.origin, env.sim.origin],
            },
        )
    line = _failure_line(env.failure(result), "redirected")
    assert "download refused" in line and target.split("://")[0] + "://" in line
    assert redirector.hits == 1, "the redirect must not be followed, nor retried"
    assert env.video_objects() == []
    assert env.creates(prompt) == 1
    env.assert_clean()


def test_video_over_max_download_bytes_fails_cleanly(env: Env) -> None:
    prompt = "A very long river"
    downloads = env.sim.counters()["downloads"]
    result = env.run([{"id": "huge", "prompt": prompt}], overrides={"max_download_bytes": 100_000})
    line = _failure_line(env.failure(result), "huge")
    assert "exceeds max_bytes 100000" in line and "was generated but not stored" in line
    assert env.sim.counters()["downloads"] == downloads + 1, "an oversized video is not downloaded again"
    assert env.video_objects() == []
    assert env.s3.list_multipart_uploads(Bucket=env.bucket).get("Uploads", []) == []
    env.assert_clean()


# ---------------------------------------------------------------------------------------------------- S3 keys

HOSTILE_ROWS = [
    {"id": "../../../etc/passwd", "prompt": "../../../../outside the prefix"},
    {"id": "/absolute/id", "prompt": "/etc/shadow"},
    {"id": "..\\..\\windows", "prompt": "C:\\Windows\\system32\\config"},
    {"id": "%2e%2e%2f%2e%2e%2fescape", "prompt": "%2e%2e/%2e%2e/ and ..%00"},
    {"id": "s3://other-bucket/key", "prompt": "s3://other-bucket/stolen.mp4"},
    {"id": "ünïcødé ../🦊", "prompt": "\u202eevil\u202c 🦊 ../.."},
    {"id": "header", "prompt": "A fox\r\nX-Amz-Meta-Evil: 1\r\n\r\n"},
    {"id": "i" * 200, "prompt": "the longest id allowed"},
]
_SAFE_KEY = re.compile(r"minimax(/[A-Za-z0-9._=-]+)+")


def test_s3_keys_stay_under_the_prefix_whatever_the_ids_and_prompts(env: Env) -> None:
    result = env.run(HOSTILE_ROWS)
    assert result.success
    entries = env.entries()
    assert set(entries) == {r["id"] for r in HOSTILE_ROWS}, "ids are kept verbatim in the manifest"
    keys = [o["Key"] for o in env.s3.list_objects_v2(Bucket=env.bucket).get("Contents", [])]
    assert len(env.video_objects()) == len(HOSTILE_ROWS)
    for key in keys:
        assert _SAFE_KEY.fullmatch(key), key
        assert ".." not in key.split("/") and "etc" not in key and "passwd" not in key, key
    env.assert_clean()


@pytest.mark.parametrize(
    "prefix",
    [
        "../escape",
        "/absolute",
        "a//b",
        "a/./b",
        "a/../b",
        "x\x00y",
        "line\nbreak",
        "s3://bucket/key",
        "a\\b",
        "p" * 600,
    ],
)
def test_hostile_prefix_is_refused_at_definition_time(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        build_minimax_video_asset(
            "videos", prompts="prompts", bucket="b", template_id=TEMPLATE, prefix=prefix
        )


# ---------------------------------------------------------------------------------------------------- datasets


def test_empty_prompt_list_materializes_an_empty_manifest(env: Env) -> None:
    """An empty dataset (a day without prompts) is not an error: an empty manifest, nothing created."""
    requests = env.sim.counters()["create_requests"]
    result = env.run([])
    assert result.success
    manifest = env.manifest()
    assert manifest.entries == [] and manifest.requested_ids == []
    assert env.sim.counters()["create_requests"] == requests
    assert any(m.startswith("0 prompt(s)") for m in env.logs(result))
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"videos_in_s3": True, "all_prompts_present": True}


HOSTILE_DATASET = [
    {"id": "ok", "prompt": "A fine prompt"},
    {"id": "huge-prompt", "prompt": "Z" * 10_000},
    42,
    None,
    3.5,
    ["a", "list"],
    {"id": "number", "prompt": 12345},
    {"id": "nested", "prompt": {"$ne": None}},
    {"id": "ok", "prompt": "a duplicate id"},
    {"id": "nul\x00id", "prompt": "control characters in the id"},
    {"id": "new\nline", "prompt": "a newline in the id"},
    {"id": "L" * 5_000, "prompt": "a 5 000-character id"},
    {"id": "M" * 100_000, "prompt": "a 100 000-character id"},
]


def test_hostile_dataset_is_refused_row_by_row_before_any_create(env: Env) -> None:
    requests = env.sim.counters()["create_requests"]
    result = env.run(HOSTILE_DATASET)
    message = env.failure(result)
    for expected in [
        "row 1 (id 'huge-prompt'): prompt: too long (10000 characters, at most 2000)",
        "row 2: row: expected a string or a mapping",
        "row 3: row: expected a string or a mapping",
        "row 4: row: expected a string or a mapping",
        "row 5: row: expected a string or a mapping",
        "row 6 (id 'number'): prompt: Input should be a valid string",
        "row 7 (id 'nested'): prompt:",
        "row 8 (id 'ok'): id: duplicate of row 0",
        "row 9 (id 'nul\\x00id'): id: id contains control characters",
        "row 10 (id 'new\\nline'): id: id contains control characters",
        "row 11 (id 'LLLL",
        "row 12 (id 'MMMM",
    ]:
        assert expected in message, f"missing {expected!r} in:\n{message[:3000]}"
    assert "Z" * 2001 not in message and "L" * 200 not in message, "hostile values must not be echoed whole"
    assert len(message) < 10_000
    assert env.sim.counters()["create_requests"] == requests
    assert result.retry_attempts_for_node("videos") == 0


def test_rows_json_cannot_carry_are_refused_too() -> None:
    rows: list[Any] = [b"bytes", object(), {"id": "set", "prompt": {"a"}}, "fine"]
    with pytest.raises(PromptValidationError) as caught:
        validate_prompt_rows(rows, default_template_id=TEMPLATE)
    assert [(e.index, e.field) for e in caught.value.errors] == [(0, "row"), (1, "row"), (2, "prompt")]


def test_validation_of_100k_rows_stays_bounded() -> None:
    """100 000 rows, every other one wrong in some way: every problem is counted, 50 are listed, no crash."""
    rows: list[Any] = [
        f"prompt number {i}" if i % 2 else ({"id": f"row-{i}", "prompt": ""} if i % 4 else i)
        for i in range(100_000)
    ]
    with pytest.raises(PromptValidationError) as caught:
        validate_prompt_rows(rows, default_template_id=TEMPLATE)
    error = caught.value
    assert error.total_rows == 100_000 and len(error.errors) == 50_000
    lines = str(error).splitlines()
    assert lines[0].startswith("50000 problem(s) in 100000 prompt row(s); nothing was generated")
    assert sum(1 for line in lines if line.startswith("  - ")) == MAX_REPORTED_ERRORS
    assert lines[-1] == f"  ... and {50_000 - MAX_REPORTED_ERRORS} more"
    assert len(str(error)) < 20_000


def test_many_invalid_rows_fail_the_asset_with_a_bounded_message(env: Env) -> None:
    requests = env.sim.counters()["create_requests"]
    result = env.run([{"id": f"r{i}" * 40, "prompt": ""} for i in range(5_000)])
    message = env.failure(result)
    assert "5000 invalid prompt row(s); no video was created" in message
    assert sum(1 for line in message.splitlines() if line.startswith("  - ")) == 50
    assert "... and 4950 more" in message and len(message) < 20_000
    assert env.sim.counters()["create_requests"] == requests
