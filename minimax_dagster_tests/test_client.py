"""MiniMaxClient against a scripted server over real sockets: streaming, errors, retries, recovery, hygiene."""

from __future__ import annotations

import json
import logging
import time

import pytest
from pydantic import ValidationError

from minimax_dagster import AgentCreateRequest, MiniMaxClient, MiniMaxError, StreamEvent
from minimax_dagster.api.errors import (
    AccountOnHoldError,
    AnswerLostError,
    BadRequestError,
    CapacityError,
    ConnectionFailedError,
    CreateOutcomeUnknownError,
    GenerationTimeoutError,
    ModeratedError,
    NotFoundError,
    OutOfCreditsError,
    ServerError,
    SubscriptionExpiredError,
    UnauthorizedError,
    VideoFailedError,
)
from minimax_dagster.api.reconcile import ReconcilePolicy
from minimax_dagster_tests.scripted_server import Reply, ScriptedServer, sse
from minimax_dagster_tests.seed_stream import SEED_EVENTS, seed_stream_bytes

TOKEN = "tok-SECRET-7f3a9c"
VID = "user:1234-minimax:1234567-video:7654321"
CREATE = ("POST", "videos/agent-create")
POLL = ("GET", f"videos/{VID}")

COMPLETED = {
    "videoId": VID,
    "status": 2,
    "statusFinal": True,
    "videoURL": "https://cdn.hailuoai.video/w.mp4",
    "downloadURL": "https://cdn.hailuoai.video/n.mp4",
    "coverURL": "https://cdn.hailuoai.video/p.png",
    "width": 1280,
    "height": 720,
}
CREATED = {"status": "created", "videoId": VID, "code": 200}
CONNECTED = {"status": "connected", "videoId": VID, "code": 200}


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


def test_seed_stream_yields_its_eleven_events_and_the_final_video(server):
    server.on(*CREATE, Reply(chunks=[seed_stream_bytes("\r\n")[i : i + 7] for i in range(0, 4000, 7)]))
    with client_for(server) as client:
        events = list(client.agent_create(AgentCreateRequest(template_id="1122334455667788", prompt="car")))
    assert [e.status for e in events] == [json.loads(s)["status"] for s in SEED_EVENTS]
    assert len(events) == 11 and events[-1].status == "finished"
    finals = [e.final_video for e in events if e.final_video]
    assert [f.url for f in finals] == ["https://cdn.hailuoai.video/moss/prod/.../final.mp4"]
    assert events[5].images[0].url.endswith("car.png")
    assert [t.id for t in events[9].rec_template_list] == ["template_vlog_1", "template_tf_2"]
    assert server.count(*CREATE) == 1 and server.count(*POLL) == 0


def test_request_body_headers_and_token(server):
    server.on(*CREATE, Reply(chunks=[seed_stream_bytes()]))
    with client_for(server) as client:
        list(client.agent_create({"templateId": 42, "prompt": "p", "replyRef": "r-1", "maxJobs": 3}))
    [(_method, _path, headers, body)] = [r for r in server.requests if r[0] == "POST"]
    # The caller's replyRef goes out byte for byte, so their replyUrl callback receives it intact.
    assert json.loads(body) == {"templateId": "42", "prompt": "p", "replyRef": "r-1", "maxJobs": 3}
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Accept-Encoding"] == "identity"
    assert headers["Accept"] == "text/event-stream"


def test_generate_collects_result(server):
    server.on(*CREATE, Reply(chunks=[seed_stream_bytes()]))
    seen_ids: list[str] = []
    statuses: list[str] = []
    with client_for(server) as client:
        result = client.generate(
            {"templateId": "1"}, on_video_id=seen_ids.append, on_event=lambda e: statuses.append(e.status)
        )
    assert seen_ids == [VID]
    assert result.video_id == VID and result.account == "1234567"
    assert result.video.best_url.endswith("final.mp4") and not result.recovered
    assert [t.name for t in result.recommended_templates] == ["Vlog Interview", "Transformers"]
    assert result.images == ["https://cdn.hailuoai.video/moss/prod/.../car.png"]
    assert len(statuses) == 11


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, UnauthorizedError),
        (402, SubscriptionExpiredError),
        (404, NotFoundError),
        (412, OutOfCreditsError),
        (422, ModeratedError),
        (596, AccountOnHoldError),
        (500, ServerError),
    ],
)
def test_error_statuses_map_to_exceptions(server, status, cls):
    server.on(*CREATE, Reply(status, {"error": f"message {status}", "code": status}))
    with client_for(server, max_retries=0) as client, pytest.raises(cls) as info:
        list(client.agent_create({"templateId": "1", "prompt": "x"}))
    assert info.value.status == status
    assert f"message {status}" in str(info.value)
    assert isinstance(info.value, MiniMaxError)
    assert server.count(*CREATE) == 1


def test_429_is_retried_by_the_transport_then_streams(server):
    # 429: capacity was full, no job was made (doc), so the same create is simply sent again.
    server.on(
        *CREATE,
        Reply(429, {"error": "busy"}, headers={"Retry-After": "0"}),
        Reply(429, {"error": "busy"}),
        Reply(chunks=[seed_stream_bytes()]),
    )
    with client_for(server) as client:
        events = list(client.agent_create({"templateId": "1", "account": "55"}))
    assert events[-1].status == "finished"
    assert server.count(*CREATE) == 3
    assert server.count("GET", "videos/") == 1  # the baseline only: no reconciliation after a 429


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_sent_again_only_after_the_job_is_proven_absent(server, status):
    server.on(
        *CREATE,
        Reply(status, {"error": "busy"}, headers={"Retry-After": "0"}),
        Reply(status, {"error": "busy"}),
        Reply(chunks=[seed_stream_bytes()]),
    )
    with client_for(server) as client:
        result = client.generate({"templateId": "1", "prompt": "a car", "account": "55"})
    assert result.video_id == VID and result.posts == 3 and result.reconciled is None
    assert server.count(*CREATE) == 3
    # One baseline read, then one look at the account's list before each of the two re-sends.
    assert server.count("GET", "videos/") == 3
    assert all(q["account"] == ["55"] for _, q, _ in server.sent("GET", "videos/"))


def test_capacity_error_after_retries_exhausted_carries_retry_after(server):
    server.on(*CREATE, Reply(429, {"error": "all busy", "code": 429}, headers={"Retry-After": "0"}))
    with client_for(server, max_retries=2) as client, pytest.raises(CapacityError) as info:
        list(client.agent_create({"templateId": "1"}))
    assert server.count(*CREATE) == 3
    assert info.value.retry_after == 0.0 and info.value.retryable


def test_retry_budget_bounds_total_time_even_with_long_retry_after(server):
    server.on(*CREATE, Reply(429, {"error": "busy"}, headers={"Retry-After": "30"}))
    started = time.monotonic()
    with client_for(server, max_retries=10, retry_total_seconds=0.5) as client, pytest.raises(CapacityError):
        list(client.agent_create({"templateId": "1"}))
    assert time.monotonic() - started < 5


def test_connection_refused_is_retried_then_reported():
    client = MiniMaxClient(
        TOKEN, base_url="http://127.0.0.1:9/v1/minimax", max_retries=2, backoff_factor=0.01
    )
    with pytest.raises(ConnectionFailedError) as info:
        list(client.agent_create({"templateId": "1"}))
    assert TOKEN not in str(info.value)


def test_invalid_request_fails_before_any_network_call(server):
    with client_for(server) as client, pytest.raises(ValidationError) as info:
        list(client.agent_create({"templateId": "1", "fileID": "user:1-minimax:2-file:3"}))
    assert "ossPath" in str(info.value)
    assert server.requests == []


def test_dropped_stream_recovers_by_polling_without_second_post(server):
    server.on(*CREATE, Reply(chunks=sse(CREATED, CONNECTED), cut=True))
    server.on(*POLL, Reply(body={**COMPLETED, "status": 1, "statusFinal": False}), Reply(body=COMPLETED))
    with client_for(server) as client:
        result = client.generate({"templateId": "1", "prompt": "x"})
    assert result.recovered
    assert result.video.best_url == "https://cdn.hailuoai.video/n.mp4"
    assert result.video.width == 1280
    assert server.count(*CREATE) == 1
    assert server.count(*POLL) == 2


def test_stalled_stream_recovers_by_polling_without_second_post(server):
    server.on(*CREATE, Reply(chunks=sse(CREATED), stall=10))
    server.on(*POLL, Reply(body=COMPLETED))
    started = time.monotonic()
    with client_for(server, read_timeout=0.5) as client:
        result = client.generate({"templateId": "1"})
    assert time.monotonic() - started < 5
    assert result.recovered and result.video_id == VID
    assert server.count(*CREATE) == 1


def test_stream_ending_without_finished_is_recovered(server):
    server.on(*CREATE, Reply(chunks=sse(CREATED, CONNECTED, {"status": "heartbeat"})))
    server.on(*POLL, Reply(body=COMPLETED))
    with client_for(server) as client:
        events = list(client.agent_create({"templateId": "1"}))
    assert events[-1].status == "finished" and events[-1].model_extra["recovered"] is True
    assert events[-2].final_video.best_url.endswith("n.mp4")
    assert server.count(*CREATE) == 1


def test_malformed_event_is_skipped_not_fatal(server, caplog):
    chunks = [*sse(CREATED), b"data: {not json\n\n", *sse(*[json.loads(s) for s in SEED_EVENTS[1:]])]
    server.on(*CREATE, Reply(chunks=chunks))
    with caplog.at_level(logging.WARNING, logger="minimax_dagster.api.client"), client_for(server) as client:
        events = list(client.agent_create({"templateId": "1"}))
    assert len(events) == 11 and events[-1].status == "finished"
    assert "malformed" in caplog.text


def test_failed_video_after_drop_raises_video_failed(server):
    server.on(*CREATE, Reply(chunks=sse(CREATED), cut=True))
    server.on(*POLL, Reply(body={"videoId": VID, "status": 3, "message": "render failed"}))
    with client_for(server) as client, pytest.raises(VideoFailedError) as info:
        client.generate({"templateId": "1"})
    assert info.value.video_id == VID and "render failed" in str(info.value)
    assert server.count(*CREATE) == 1


@pytest.mark.parametrize("code", [5, 7, 14])
def test_moderated_video_raises_moderated(server, code):
    server.on(*CREATE, Reply(chunks=sse(CREATED), cut=True))
    server.on(*POLL, Reply(body={"videoId": VID, "status": code}))
    with client_for(server) as client, pytest.raises(ModeratedError):
        client.generate({"templateId": "1"})


def test_video_removed_after_moderation_404(server):
    server.on(*CREATE, Reply(chunks=sse(CREATED), cut=True))
    server.on(*POLL, Reply(body={"videoId": VID, "status": 1}), Reply(404, {"error": "Not found."}))
    with client_for(server) as client, pytest.raises(ModeratedError) as info:
        client.generate({"templateId": "1"})
    assert "moderated" in str(info.value)
    assert server.count(*CREATE) == 1


def test_deadline_while_polling(server):
    server.on(*CREATE, Reply(chunks=sse(CREATED), cut=True))
    server.on(*POLL, Reply(body={"videoId": VID, "status": 1, "percent": 40}))
    started = time.monotonic()
    with client_for(server) as client, pytest.raises(GenerationTimeoutError) as info:
        client.generate({"templateId": "1"}, deadline=0.6)
    assert time.monotonic() - started < 3
    assert info.value.video_id == VID
    assert server.count(*CREATE) == 1


def test_deadline_while_streaming(server):
    heartbeats = sse(CREATED, *[{"status": "heartbeat"}] * 40)
    server.on(*CREATE, Reply(chunks=heartbeats, delay=0.05))
    with client_for(server) as client, pytest.raises(GenerationTimeoutError) as info:
        client.generate({"templateId": "1"}, deadline=0.5)
    assert info.value.video_id == VID


def test_stream_lost_before_video_id_finds_job_by_reply_ref(server):
    server.on(*CREATE, Reply(chunks=[b": hello\n\n"], cut=True))
    server.on(
        "GET",
        "scheduler/available",
        Reply(body={"executing": [{"videoId": VID, "replyRef": "row-7"}], "available": []}),
    )
    server.on(*POLL, Reply(body=COMPLETED))
    with client_for(server) as client:
        result = client.generate({"templateId": "1", "replyRef": "row-7"})
    assert result.video_id == VID and result.recovered and result.reconciled == "GET scheduler/available"
    assert server.count(*CREATE) == 1


def test_stream_lost_before_video_id_and_no_job_is_created_once_more(server):
    server.on(*CREATE, Reply(chunks=[b": hello\n\n"], cut=True), Reply(chunks=[seed_stream_bytes()]))
    with client_for(server) as client:
        result = client.generate({"templateId": "1", "prompt": "a car", "account": "55"})
    assert result.video_id == VID and result.posts == 2
    assert server.count(*CREATE) == 2


def test_stream_lost_when_no_account_can_be_listed_is_not_sent_again(server):
    server.on(*CREATE, Reply(chunks=[b": hello\n\n"], cut=True))
    with client_for(server) as client, pytest.raises(CreateOutcomeUnknownError) as info:
        client.generate({"templateId": "1", "prompt": "a car"})
    assert "cannot list the accounts" in str(info.value) and not info.value.retryable
    assert server.count(*CREATE) == 1


def test_reattach_polls_an_existing_video(server):
    server.on(*POLL, Reply(body={"videoId": VID, "status": 12, "percent": 50}), Reply(body=COMPLETED))
    with client_for(server) as client:
        result = client.reattach(VID)
    assert result.recovered and result.video.height == 720
    assert server.count(*CREATE) == 0 and server.count(*POLL) == 2


def test_get_requests_keep_their_transport_retries(server):
    server.on(*POLL, Reply(503, {"error": "busy"}), Reply(502, {"error": "busy"}), Reply(body=COMPLETED))
    with client_for(server, max_retries=3) as client:
        assert client.get_video(VID).is_completed
    assert server.count(*POLL) == 3


def test_connection_reset_after_the_request_is_an_answer_lost(server):
    server.on("GET", "accounts", Reply(reset=True))
    with client_for(server, max_retries=3) as client, pytest.raises(AnswerLostError) as info:
        client.get_accounts()
    assert "answer was lost" in str(info.value) and TOKEN not in str(info.value)
    assert server.count("GET", "accounts") == 1  # a read error is not retried by the transport


def test_polling_survives_a_transient_server_error(server):
    server.on(*POLL, Reply(500, {"error": "oops"}), Reply(body=COMPLETED))
    with client_for(server, max_retries=0) as client:
        status = client.wait_for_video(VID)
    assert status.is_completed


def test_templates_paging_and_detail(server):
    page1 = {"videoList": [{"id": "a"}, {"id": "b"}], "hasNext": True}
    page2 = {"videoList": [{"id": "c", "videoAsset": {"agentTemplateID": "c1", "agentTemplateName": "C"}}]}
    server.on("GET", "videos/agent-templates", Reply(body=page1), Reply(body=page2))
    with client_for(server) as client:
        templates = list(client.iter_templates(page_size=2))
    assert [t.template_id for t in templates] == ["a", "b", "c1"]
    assert templates[-1].name == "C"
    assert "lastId=b" in server.requests[1][1]


def test_upload_file_sniffs_type(server, tmp_path):
    png = tmp_path / "face.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    server.on(
        "POST", "files", Reply(body={"fileID": "user:1-minimax:55-file:9", "ossPath": "https://o/x.png"})
    )
    with client_for(server) as client:
        uploaded = client.upload_file(png, account="55")
        with pytest.raises(BadRequestError):
            client.upload_file(b"GIF89a...")
    assert uploaded.account == "55"
    _, path, headers, body = server.requests[0]
    assert headers["Content-Type"] == "image/png" and "account=55" in path and body.startswith(b"\x89PNG")


def test_account_is_sent_where_several_accounts_make_it_required(tmp_path):
    accounts = {
        "111": {"account": "111", "supportVideo": True},
        "222": {"account": "222", "supportVideo": True},
    }
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 8
    with ScriptedServer(accounts=accounts) as server:
        server.on("POST", "files", Reply(body={"fileID": "user:1-minimax:222-file:9", "ossPath": "o/x.png"}))
        server.on("GET", "files", Reply(body=[{"file_id": "user:1-minimax:222-file:9", "file_type": "jpeg"}]))
        server.on("GET", "videos/agent-templates", Reply(body={"videoList": [{"id": "1"}]}))
        server.add_video("222", "a fox")
        with client_for(server) as client:
            assert client.upload_file(png, account="222").account == "222"
            assert [f.file_type for f in client.list_files("222")] == ["jpeg"]
            assert [t.id for t in client.list_templates(account="222").video_list] == ["1"]
            client.get_template("1", account="222")
            assert [v.desc for v in client.list_videos("222").videos] == ["a fox"]
            calls = [
                lambda: client.upload_file(png),
                lambda: client.list_files(),
                lambda: client.list_templates(),
                lambda: client.get_template("1"),
                lambda: client.list_videos(),
            ]
            for call in calls:
                with pytest.raises(BadRequestError) as info:
                    call()
                assert "account is required" in str(info.value)
        sent = [(m, path) for m, path, _, _ in server.requests if "account=222" in path]
    assert len(sent) == 5


def test_upload_answered_502_is_sent_again(server):
    # A second upload makes no paid job: unlike a create, it is simply sent again.
    ok = {"fileID": "user:1-minimax:55-file:9", "ossPath": "https://o/x.png"}
    server.on("POST", "files", Reply(502, {"error": "busy"}), Reply(body=ok))
    with client_for(server) as client:
        assert client.upload_file(b"\x89PNG\r\n\x1a\n" + b"\0" * 8, account="55").file_id == ok["fileID"]
    assert server.count("POST", "files") == 2


def test_token_never_in_repr_errors_or_logs(server, caplog):
    server.on(*CREATE, Reply(401, {"error": "Unauthorized"}))
    with caplog.at_level(logging.DEBUG), client_for(server, max_retries=0) as client:
        with pytest.raises(UnauthorizedError) as info:
            list(client.agent_create({"templateId": "1"}))
        assert TOKEN not in repr(client) and TOKEN not in str(client)
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)
    assert TOKEN not in caplog.text


def test_stream_event_keeps_unknown_fields():
    event = StreamEvent.model_validate({"status": "progress", "brandNewField": {"x": 1}})
    assert event.model_extra == {"brandNewField": {"x": 1}}


def test_sessions_honour_the_proxy_environment_read_once_per_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    from minimax_dagster.api.transport import EnvironmentOnceSession

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "cdn.internal")
    session = EnvironmentOnceSession()
    api = session.merge_environment_settings("https://api.useapi.net/v1/x", {}, None, None, None)
    cdn = session.merge_environment_settings("https://cdn.internal/v.mp4", {}, None, None, None)
    assert api["proxies"].get("https") == "http://proxy.internal:3128"
    assert "https" not in cdn["proxies"], "NO_PROXY hosts go direct, as with a plain requests.Session"
    monkeypatch.setenv("HTTPS_PROXY", "http://other:1")
    again = session.merge_environment_settings("https://api.useapi.net/v1/y", {}, None, None, None)
    assert again["proxies"].get("https") == "http://proxy.internal:3128", "read once per origin"
    fresh = EnvironmentOnceSession().merge_environment_settings(
        "https://api.useapi.net/", {}, None, None, None
    )
    assert fresh["proxies"].get("https") == "http://other:1", "a new session reads the environment again"
    explicit = session.merge_environment_settings(
        "https://api.useapi.net/", {"https": "http://x:2"}, None, None, None
    )
    assert explicit["proxies"]["https"] == "http://x:2"
