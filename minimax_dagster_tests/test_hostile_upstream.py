"""A broken or hostile API upstream, over real sockets (:class:`ScriptedServer`): every answer is read against a
cap of :class:`ReadLimits`, the error names the cap and its setting, and the video is never created twice.

A stream cut by a cap after the video id is recovered by polling GET videos/{id}; before the id, it is reconciled
exactly like a lost answer. Memory is not measured here (tests time and weigh nothing): ``python -m
benchmarks.hostile`` prints each case's peak RSS growth.
"""

from __future__ import annotations

import logging

import pytest

from minimax_dagster.api import MiniMaxClient, ReadLimits
from minimax_dagster.api.errors import (
    AnswerLostError,
    AnswerTooLargeError,
    BadRequestError,
    MiniMaxError,
    ServerError,
)
from minimax_dagster.api.reconcile import ReconcilePolicy
from minimax_dagster_tests.hostile_bodies import endless, gzip_lines, many_headers
from minimax_dagster_tests.scripted_server import Reply, ScriptedServer, sse
from minimax_dagster_tests.seed_stream import seed_stream_bytes

TOKEN = "tok-SECRET-hostile"
VID = "user:1234-minimax:1234567-video:7654321"
CREATE = ("POST", "videos/agent-create")
POLL = ("GET", f"videos/{VID}")
CREATED = {"status": "created", "videoId": VID, "code": 200}
COMPLETED = {
    "videoId": VID,
    "status": 2,
    "statusFinal": True,
    "videoURL": "https://cdn.hailuoai.video/w.mp4",
    "coverURL": "https://cdn.hailuoai.video/p.png",
}
MiB = 1024 * 1024
#: Hostile bodies stop by themselves after this long (the client stops reading long before).
SERVER_SECONDS = 30.0


@pytest.fixture
def server():
    with ScriptedServer() as srv:
        yield srv


def client_for(server: ScriptedServer, **kw) -> MiniMaxClient:
    kw.setdefault("reconcile", ReconcilePolicy(settle_seconds=0))
    kw.setdefault("poll_interval", 0.05)
    kw.setdefault("backoff_factor", 0.01)
    kw.setdefault("backoff_jitter", 0.0)
    return MiniMaxClient(TOKEN, base_url=server.base_url, **kw)


def unterminated_line() -> list[bytes] | object:
    return endless(b"x", seconds=SERVER_SECONDS, prefix=b"data: ")


def cut_after_id(body) -> object:
    """The created event, then ``body``."""
    yield from sse(CREATED)
    yield from body


STREAM_CASES = {
    # A line that never ends.
    "unterminated line": (lambda: cut_after_id(unterminated_line()), "max_sse_line_chars"),
    # One 8 MiB event made of 64 KiB data lines (each line is fine; the event is not).
    "huge event": (
        lambda: cut_after_id(endless(b"data: " + b"y" * 65530 + b"\n", total=8 * MiB)),
        "max_sse_event_chars",
    ),
    # gzip although identity was asked: 1 GiB of data lines in about 1 MiB on the wire.
    "gzip expanding": (
        lambda: gzip_lines(b"data: z\n", total=1024 * MiB, seconds=SERVER_SECONDS, prefix=sse(CREATED)[0]),
        "max_sse_event_chars",
    ),
}


@pytest.mark.parametrize("case", list(STREAM_CASES))
def test_stream_cut_by_a_cap_after_the_video_id_is_recovered_by_polling(server, caplog, case):
    body, setting = STREAM_CASES[case]
    headers = {"Content-Encoding": "gzip"} if case == "gzip expanding" else {}
    server.on(*CREATE, Reply(chunks=body(), headers=headers))
    server.on(*POLL, Reply(body=COMPLETED))
    with caplog.at_level(logging.WARNING, logger="minimax_dagster.api.client"), client_for(server) as client:
        result = client.generate({"templateId": "1", "prompt": "x"})
    assert result.video_id == VID and result.recovered and result.posts == 1
    assert server.count(*CREATE) == 1
    assert f"ReadLimits.{setting}" in caplog.text and "recovering by polling, no new create" in caplog.text


def test_stream_cut_by_a_cap_before_the_video_id_is_reconciled_like_a_lost_answer(server, caplog):
    server.on(*CREATE, Reply(chunks=unterminated_line()))
    server.on(
        "GET",
        "scheduler/available",
        Reply(body={"executing": [{"videoId": VID, "replyRef": "row-7"}], "available": []}),
    )
    server.on(*POLL, Reply(body=COMPLETED))
    with caplog.at_level(logging.WARNING, logger="minimax_dagster.api.client"), client_for(server) as client:
        result = client.generate({"templateId": "1", "replyRef": "row-7"})
    assert result.video_id == VID and result.reconciled == "GET scheduler/available"
    assert server.count(*CREATE) == 1
    assert "ReadLimits.max_sse_line_chars" in caplog.text


def test_stream_cut_before_the_id_with_the_job_proven_absent_is_sent_once_more(server):
    server.on(*CREATE, Reply(chunks=unterminated_line()), Reply(chunks=[seed_stream_bytes()]))
    with client_for(server) as client:
        result = client.generate({"templateId": "1", "prompt": "a car", "account": "55"})
    assert result.posts == 2 and server.count(*CREATE) == 2  # the first made no job: GET videos/ proved it


def test_a_cap_set_lower_cuts_there_and_names_the_setting(server, caplog):
    line = b"data: " + b"q" * 5000 + b"\n\n"
    server.on(*CREATE, Reply(chunks=[*sse(CREATED), line]))
    server.on(*POLL, Reply(body=COMPLETED))
    limits = ReadLimits(max_sse_line_chars=4096)
    logs = caplog.at_level(logging.WARNING, logger="minimax_dagster.api.client")
    with logs, client_for(server, limits=limits) as client:
        assert client.generate({"templateId": "1"}).recovered
    assert "longer than 4096 characters (ReadLimits.max_sse_line_chars)" in caplog.text


def test_endless_error_body_is_cut_and_only_an_excerpt_is_kept(server):
    server.on(*CREATE, Reply(status=400, chunks=endless(b'{"error": "', seconds=SERVER_SECONDS)))
    with client_for(server) as client, pytest.raises(BadRequestError) as info:
        client.generate({"templateId": "1"})
    message = str(info.value)
    assert f"ReadLimits.max_error_body_bytes = {MiB} bytes" in message
    assert len(info.value.body) <= 2048 and len(message) < 3000
    assert server.count(*CREATE) == 1


def test_large_json_error_keeps_its_message_and_an_excerpt(server):
    body = {"error": "Template not found", "pad": "p" * 100_000}
    server.on(*CREATE, Reply(status=404, body=body))
    with client_for(server) as client, pytest.raises(MiniMaxError) as info:
        client.generate({"templateId": "1"})
    assert info.value.message == "Template not found" and len(info.value.body) == 2048


def test_gateway_error_with_an_endless_body_is_reconciled(server):
    server.on(*CREATE, Reply(status=502, chunks=endless(b"<html>", seconds=SERVER_SECONDS)))
    server.on("GET", "scheduler/available", Reply(body={"executing": [{"videoId": VID, "replyRef": "r"}]}))
    server.on(*POLL, Reply(body=COMPLETED))
    with client_for(server) as client:
        result = client.generate({"templateId": "1", "replyRef": "r"})
    assert result.video_id == VID and server.count(*CREATE) == 1


def test_json_answer_over_its_cap_names_it_and_polling_ends_at_the_deadline(server):
    server.on(*CREATE, Reply(chunks=sse(CREATED), cut=True))
    server.on(*POLL, Reply(chunks=endless(b"[1,", seconds=SERVER_SECONDS)))
    limits = ReadLimits(max_json_bytes=256 * 1024)
    with client_for(server, limits=limits) as client, pytest.raises(AnswerTooLargeError) as info:
        client.generate({"templateId": "1"}, deadline=1.0)
    assert "ReadLimits.max_json_bytes = 262144 bytes" in str(info.value)
    assert server.count(*CREATE) == 1


def test_default_json_cap_holds_on_an_endless_list(server):
    server.on("GET", "videos/", Reply(chunks=endless(b'{"id":"1"},', seconds=SERVER_SECONDS)))
    with client_for(server, max_retries=0) as client, pytest.raises(AnswerTooLargeError) as info:
        client.list_videos("1234567")
    assert f"max_json_bytes = {16 * MiB} bytes" in str(info.value)


def test_a_body_trickling_past_body_seconds_is_cut(server):
    server.on("GET", "accounts", Reply(chunks=[b" "] * 200, delay=0.05))
    limits = ReadLimits(body_seconds=0.5)
    with (
        client_for(server, limits=limits, max_retries=0) as client,
        pytest.raises(AnswerTooLargeError) as info,
    ):
        client.get_accounts()
    assert "ReadLimits.body_seconds = 0.5 s" in str(info.value)


def test_too_many_headers_are_refused_by_http_client(server):
    # http.client (under urllib3) refuses more than 100 header lines: the create's answer counts as lost.
    server.on(*CREATE, Reply(body={}, headers=many_headers(150)))
    with client_for(server) as client, pytest.raises(MiniMaxError) as info:
        client.generate({"templateId": "1", "prompt": "x"})
    assert "got more than 100 headers" in str(info.value)
    assert server.count(*CREATE) == 1  # reconciliation could not list the accounts: not sent again


def test_too_many_headers_on_a_get_is_an_answer_lost(server):
    server.on("GET", "accounts", Reply(body={}, headers=many_headers(150)))
    with (
        client_for(server, max_retries=0) as client,
        pytest.raises(AnswerLostError, match="more than 100 headers"),
    ):
        client.get_accounts()


def test_a_redirect_is_not_followed(server):
    server.on("GET", "accounts", Reply(status=302, body=b"", headers={"Location": "http://127.0.0.1:9/x"}))
    with client_for(server) as client, pytest.raises(MiniMaxError, match="redirect, which is not followed"):
        client.get_accounts()


def counted(body, sent: list[int]):
    for chunk in body:
        sent[0] += len(chunk)
        yield chunk


def test_429_with_an_endless_body_is_retried_without_draining_it(server):
    sent = [0]
    server.on(
        *CREATE,
        Reply(
            status=429,
            chunks=counted(endless(b"z", seconds=SERVER_SECONDS), sent),
            headers={"Retry-After": "0"},
        ),
        Reply(chunks=[seed_stream_bytes()]),
    )
    with client_for(server) as client:
        result = client.generate({"templateId": "1"})
    assert result.posts == 1 and server.count(*CREATE) == 2  # a 429 makes no job
    # urllib3 would drain the body before its retry (all of it: GiBs in 30 s here); the connection is dropped.
    assert sent[0] < 64 * MiB


def test_a_malformed_server_error_still_maps(server):
    server.on("GET", "accounts", Reply(status=500, chunks=[b"\xff\xfe not utf-8"]))
    with client_for(server, max_retries=0) as client, pytest.raises(ServerError):
        client.get_accounts()


def test_the_resource_passes_its_read_limits_to_the_client(server):
    """``MiniMaxResource(read_limits=...)``: a Dagster user sets the caps; the error names the one that cut."""
    from pydantic import ValidationError

    from minimax_dagster import MiniMaxResource

    server.on(*CREATE, Reply(status=400, chunks=endless(b'{"error": "', seconds=SERVER_SECONDS)))
    resource = MiniMaxResource(
        api_token="t", base_url=server.base_url, read_limits={"max_error_body_bytes": 4096}
    )
    with resource.get_client() as client, pytest.raises(BadRequestError) as info:
        client.generate({"templateId": "1"})
    assert "ReadLimits.max_error_body_bytes = 4096 bytes" in str(info.value)
    assert server.count(*CREATE) == 1
    for bad, named in (
        ({"max_json": 4096}, "unknown cap 'max_json'"),
        ({"max_json_bytes": 10}, "at least 1024"),
    ):
        with pytest.raises(ValidationError, match=named):
            MiniMaxResource(api_token="t", read_limits=bad)
