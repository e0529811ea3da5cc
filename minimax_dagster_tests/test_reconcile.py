"""Reconciliation against a scripted server over real sockets: a create answered 502/504 (or whose answer was lost)
is never sent again while the job it may have made exists; it is sent again only when the job is surely absent."""

from __future__ import annotations

import json
import logging

import pytest

from minimax_dagster import AgentCreateRequest, MiniMaxClient
from minimax_dagster.api import reconcile as reconciliation
from minimax_dagster.api.errors import (
    AnswerLostError,
    CreateOutcomeUnknownError,
    ServerError,
    StreamEndedError,
    VideoFailedError,
)
from minimax_dagster.api.reconcile import OWN_REPLY_REF_PREFIX, ReconcilePolicy
from minimax_dagster_tests.scripted_server import Queue, Reply, ScriptedServer, completed, processing, sse
from minimax_dagster_tests.seed_stream import seed_stream_bytes

TOKEN = "tok-SECRET-recon"
CREATE = ("POST", "videos/agent-create")
LIST = ("GET", "videos/")
STREAM_VID = "user:1234-minimax:1234567-video:7654321"  # the id in the seed stream
PROMPT = "A red fox runs through snow"
VIDEO_ACCOUNT = {"maxJobs": 2, "supportVideo": True}


@pytest.fixture
def server():
    with ScriptedServer() as srv:
        yield srv


def client_for(server: ScriptedServer, **kw) -> MiniMaxClient:
    kw.setdefault("reconcile", ReconcilePolicy(settle_seconds=0))
    kw.setdefault("poll_interval", 0.01)
    kw.setdefault("backoff_factor", 0.01)
    kw.setdefault("backoff_jitter", 0.0)
    return MiniMaxClient(TOKEN, base_url=server.base_url, **kw)


def request(**extra) -> dict:
    return {"templateId": "393769180141805569", "prompt": PROMPT, "account": "55", **extra}


def posted(server: ScriptedServer) -> list[dict]:
    return [json.loads(body) for _, _, body in server.sent(*CREATE)]


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_error_that_queued_the_job_is_reattached_after_one_post(server, status):
    server.add_video("55", "an older video of the account")
    server.on(
        *CREATE,
        Reply(status, {"error": "Bad gateway"}, queue=Queue("55")),
        Reply(chunks=[seed_stream_bytes()]),
    )
    seen: list[str] = []
    with client_for(server) as client:
        result = client.generate(request(), on_video_id=seen.append)
    [queued] = [job.video_id for job in server.videos["55"] if job.item["desc"] == PROMPT]
    assert server.count(*CREATE) == 1
    assert result.video_id == queued and seen == [queued]
    assert result.reconciled == "GET videos/" and result.recovered and result.posts == 1
    assert result.video.best_url == "https://cdn.hailuoai.video/queued-n.mp4"


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_error_that_queued_nothing_is_created_once_more(server, status):
    server.on(*CREATE, Reply(status, {"error": "Gateway timeout"}), Reply(chunks=[seed_stream_bytes()]))
    with client_for(server) as client:
        result = client.generate(request())
    assert server.count(*CREATE) == 2
    assert result.video_id == STREAM_VID and result.posts == 2 and result.reconciled is None
    # Both POSTs are the same create, with the same replyRef of the client's own.
    first, second = posted(server)
    assert first == second and first["replyRef"].startswith(OWN_REPLY_REF_PREFIX)


def test_connection_reset_after_the_create_was_sent_with_a_queued_job(server):
    server.on(*CREATE, Reply(reset=True, queue=Queue("55")))
    with client_for(server) as client:
        result = client.generate(request())
    assert server.count(*CREATE) == 1
    assert result.video_id.startswith("user:1234-minimax:55-video:") and result.reconciled == "GET videos/"


def test_connection_reset_after_the_create_was_sent_with_nothing_queued(server):
    server.on(*CREATE, Reply(reset=True), Reply(chunks=[seed_stream_bytes()]))
    with client_for(server) as client:
        result = client.generate(request())
    assert server.count(*CREATE) == 2 and result.video_id == STREAM_VID


def test_reset_every_time_ends_with_answer_lost_after_the_retry_budget(server):
    server.on(*CREATE, Reply(reset=True))
    with client_for(server, max_retries=2) as client, pytest.raises(AnswerLostError) as info:
        client.generate(request())
    assert server.count(*CREATE) == 3
    assert "no job was made" in str(info.value)


def test_gateway_error_every_time_keeps_its_type_and_says_nothing_was_made(server):
    server.on(*CREATE, Reply(502, {"error": "Bad gateway"}))
    with client_for(server, max_retries=1) as client, pytest.raises(ServerError) as info:
        client.generate(request())
    assert info.value.status == 502 and "no job was made (none on account(s) 55)" in str(info.value)
    assert server.count(*CREATE) == 2


def test_an_older_video_with_the_same_prompt_is_not_taken_for_the_new_job(server):
    server.add_video("55", PROMPT, [completed("old")])  # made before this create: in the baseline
    server.on(*CREATE, Reply(502, {"error": "Bad gateway"}), Reply(chunks=[seed_stream_bytes()]))
    with client_for(server) as client:
        result = client.generate(request())
    assert server.count(*CREATE) == 2 and result.video_id == STREAM_VID


def test_the_job_is_found_behind_newer_videos_over_several_pages(server):
    server.add_video("55", "made before the create")

    def newer_videos_above_the_job() -> None:
        for n in range(5):
            server.add_video("55", f"made in the web app {n}")

    server.on(
        *CREATE,
        Reply(502, {"error": "Bad gateway"}, queue=Queue("55"), on_request=newer_videos_above_the_job),
    )
    policy = ReconcilePolicy(settle_seconds=0, page_size=2, max_pages=4)
    with client_for(server, reconcile=policy) as client:
        result = client.generate(request())
    [queued] = [job.video_id for job in server.videos["55"] if job.item["desc"] == PROMPT]
    assert server.count(*CREATE) == 1 and result.video_id == queued
    pages = [q.get("lastVideoId") for _, q, _ in server.sent(*LIST)]
    # The baseline, then pages of 2 (5 newer videos and the job) down to the video listed before the create.
    assert pages[0] is None and len(pages) == 1 + 4


def test_too_many_new_videos_to_read_back_to_the_baseline_means_unknown(server):
    server.add_video("55", "made before the create")

    def many_newer_videos() -> None:
        for n in range(9):
            server.add_video("55", f"made in the web app {n}")

    server.on(*CREATE, Reply(502, {"error": "Bad gateway"}, on_request=many_newer_videos))
    policy = ReconcilePolicy(settle_seconds=0, page_size=2, max_pages=2)
    with client_for(server, reconcile=policy) as client, pytest.raises(CreateOutcomeUnknownError) as info:
        client.generate(request())
    assert server.count(*CREATE) == 1 and "without reaching the videos listed before" in str(info.value)


def test_no_account_named_makes_every_video_account_a_candidate():
    accounts = {
        "111": {"account": "111", **VIDEO_ACCOUNT},
        "222": {"account": "222", **VIDEO_ACCOUNT},
        "333": {"account": "333", "maxJobs": 1, "supportVideo": False},
    }
    with ScriptedServer(accounts=accounts) as server:
        server.on(*CREATE, Reply(504, {"error": "Gateway timeout"}, queue=Queue("222")))
        with client_for(server) as client:
            result = client.generate(request(account=None))
        looked_at = sorted({q["account"][0] for _, q, _ in server.sent(*LIST)})
    assert server.count(*CREATE) == 1 and result.account == "222"
    assert looked_at == ["111", "222"]  # not 333: it makes no videos


def test_lost_stream_found_in_scheduler_by_the_clients_own_reply_ref(server):
    # useapi answered 200 and tracks the job; the account's list does not show it yet.
    server.on(
        *CREATE, Reply(chunks=[b": hello\n\n"], cut=True, queue=Queue("55", tracked=True, listed=False))
    )
    with client_for(server) as client:
        result = client.generate(request())
    assert server.count(*CREATE) == 1 and result.reconciled == "GET scheduler/available"
    [job] = server.videos["55"]
    assert job.reply_ref.startswith(OWN_REPLY_REF_PREFIX) and result.video_id == job.video_id


def test_the_callers_reply_ref_is_sent_intact_and_used_to_find_the_job(server):
    server.on(*CREATE, Reply(reset=True, queue=Queue("55", tracked=True, listed=False)))
    with client_for(server) as client:
        result = client.generate(request(replyRef="row-7"))
    assert [body["replyRef"] for body in posted(server)] == ["row-7"]
    assert server.count(*CREATE) == 1 and result.reconciled == "GET scheduler/available"


def test_a_shared_reply_ref_on_another_prompt_is_not_taken(server):
    # Another request of the caller's, same replyRef, different prompt, running on the account.
    server.add_video(
        "55", "a different prompt", [processing()], reply_ref="row-7", tracked=True, listed=False
    )
    server.on(*CREATE, Reply(502, {"error": "Bad gateway"}), Reply(chunks=[seed_stream_bytes()]))
    with client_for(server) as client:
        result = client.generate(request(replyRef="row-7"))
    assert server.count(*CREATE) == 2 and result.video_id == STREAM_VID


def test_a_matching_video_useapi_attributes_to_another_create_is_not_taken(server):
    def someone_else_creates_the_same_prompt() -> None:
        server.add_video("55", PROMPT, [processing()], reply_ref="someone-else", tracked=True)

    server.on(
        *CREATE,
        Reply(502, {"error": "Bad gateway"}, on_request=someone_else_creates_the_same_prompt),
        Reply(chunks=[seed_stream_bytes()]),
    )
    with client_for(server) as client:
        result = client.generate(request())
    assert server.count(*CREATE) == 2 and result.video_id == STREAM_VID


def test_an_unreadable_account_list_means_unknown_and_no_second_post(server, caplog):
    server.on(*LIST, Reply(body=[]), Reply(500, {"error": "oops", "code": 500}))
    server.on(*CREATE, Reply(502, {"error": "Bad gateway"}))
    with (
        caplog.at_level(logging.DEBUG),
        client_for(server, max_retries=0) as client,
        pytest.raises(CreateOutcomeUnknownError) as info,
    ):
        client.generate(request())
    assert server.count(*CREATE) == 1
    assert "cannot read the videos of account 55" in str(info.value) and not info.value.retryable
    assert TOKEN not in str(info.value) and TOKEN not in caplog.text


def test_no_baseline_and_a_listed_video_with_the_prompt_means_unknown(server):
    # The baseline read fails; afterwards the list answers and shows the prompt, but nothing proves the
    # create made that video rather than an earlier one.
    server.on(*LIST, Reply(500, {"error": "down"}, on_request=lambda: server.routes.pop(LIST)))
    server.on(*CREATE, Reply(502, {"error": "Bad gateway"}, queue=Queue("55")))
    with client_for(server) as client, pytest.raises(CreateOutcomeUnknownError) as info:
        client.generate(request())
    assert server.count(*CREATE) == 1 and "was not listed before the create" in str(info.value)


def test_no_baseline_and_no_video_with_the_prompt_is_created_once_more(server):
    server.add_video("55", "another prompt")
    server.on(*LIST, Reply(500, {"error": "down"}, on_request=lambda: server.routes.pop(LIST)))
    server.on(*CREATE, Reply(502, {"error": "Bad gateway"}), Reply(chunks=[seed_stream_bytes()]))
    with client_for(server) as client:
        result = client.generate(request())
    assert server.count(*CREATE) == 2 and result.video_id == STREAM_VID


def test_a_reattached_job_that_failed_raises_with_its_video_id(server):
    failed = {"status": 3, "statusLabel": "failed", "statusFinal": True, "message": "render failed"}
    server.on(*CREATE, Reply(502, {"error": "Bad gateway"}, queue=Queue("55", states=[failed])))
    with client_for(server) as client, pytest.raises(VideoFailedError) as info:
        client.generate(request())
    assert info.value.video_id.startswith("user:1234-minimax:55-video:") and server.count(*CREATE) == 1


def test_an_image_only_create_is_matched_by_its_file(server):
    file_id = "user:1234-minimax:55-file:42"
    server.on(*CREATE, Reply(502, {"error": "Bad gateway"}, queue=Queue("55")))
    with client_for(server) as client:
        result = client.generate(
            {"templateId": "392747428568649728", "account": "55", "fileID": file_id, "ossPath": "o/p.png"}
        )
    assert server.count(*CREATE) == 1 and result.reconciled == "GET videos/"


def test_the_settle_time_is_waited_before_looking(server):
    server.add_video("55", "made before the create")
    waits: list[float] = []

    def the_job_appears_while_settling(seconds: float) -> None:
        waits.append(seconds)
        server.add_video("55", PROMPT)

    policy = ReconcilePolicy(settle_seconds=12.5)
    with client_for(server, reconcile=policy) as client:
        attempt = reconciliation.prepare(client, AgentCreateRequest(**request()), policy)
        found = reconciliation.reconcile(client, attempt, policy, sleep=the_job_appears_while_settling)
    assert waits == [12.5] and found.found_by == "GET videos/"
    assert found.video_id == server.videos["55"][0].video_id


def test_the_settle_time_never_passes_the_deadline(server):
    waits: list[float] = []
    policy = ReconcilePolicy(settle_seconds=600)
    with client_for(server, reconcile=policy) as client:
        attempt = reconciliation.prepare(client, AgentCreateRequest(**request()), policy)
        found = reconciliation.reconcile(client, attempt, policy, deadline=0.0, sleep=waits.append)
    assert waits == [] and found.absent


def test_a_stream_that_gave_its_video_id_is_never_reconciled(server):
    server.on(*CREATE, Reply(chunks=sse({"status": "created", "videoId": STREAM_VID}), cut=True))
    server.on("GET", f"videos/{STREAM_VID}", Reply(body={"videoId": STREAM_VID, **completed("s")}))
    with client_for(server) as client:
        result = client.generate(request())
    assert result.video_id == STREAM_VID and result.reconciled is None
    assert server.count(*CREATE) == 1 and server.count(*LIST) == 1  # the baseline only


def test_stream_ended_is_still_raised_for_a_stream_without_video_when_budget_is_spent(server):
    server.on(*CREATE, Reply(chunks=[b": hi\n\n"], cut=True))
    with client_for(server, max_retries=0) as client, pytest.raises(StreamEndedError) as info:
        client.generate(request())
    assert "no job was made" in str(info.value) and server.count(*CREATE) == 1


# ------------------------------------------------------------------------------------------------ shared baselines


def test_creates_sharing_baselines_read_an_accounts_list_once(server):
    shared = reconciliation.SharedBaselines(max_age=60)
    server.on(*CREATE, Reply(chunks=[seed_stream_bytes()]), Reply(chunks=[seed_stream_bytes()]))
    with client_for(server) as first, client_for(server) as second:
        first.shared_baselines = second.shared_baselines = shared
        first.generate(request())
        second.generate(request(prompt="A heron at dawn"))
    assert server.count(*CREATE) == 2 and server.count(*LIST) == 1


def test_a_lent_baseline_still_finds_the_job_a_gateway_error_queued(server):
    """The baseline another create read a moment ago predates this create too: the job this create's 502 queued
    is listed above it, behind the other create's video, and is reattached without a second POST."""
    shared = reconciliation.SharedBaselines(max_age=60)
    server.add_video("55", "an older video of the account")
    server.on(
        *CREATE,
        Reply(502, {"error": "Bad gateway"}, queue=Queue("55")),
        Reply(502, {"error": "Bad gateway"}, queue=Queue("55")),
    )
    with client_for(server) as other, client_for(server) as client:
        other.shared_baselines = client.shared_baselines = shared
        heron = other.generate(request(prompt="A heron at dawn"))
        fox = client.generate(request())
    assert server.count(*CREATE) == 2, "no create was sent twice"
    assert server.count(*LIST) == 1 + 2  # one baseline for both; one look after each failure
    descs = {job.video_id: job.item["desc"] for job in server.videos["55"]}
    assert descs[heron.video_id] == "A heron at dawn" and descs[fox.video_id] == PROMPT


def test_a_baseline_older_than_max_age_is_read_again():
    now = [100.0]
    shared = reconciliation.SharedBaselines(max_age=5, clock=lambda: now[0])
    shared.put("55", frozenset({"v1"}))
    now[0] += 5
    assert shared.get("55") == frozenset({"v1"})
    now[0] += 0.01
    assert shared.get("55") is None and shared.get("66") is None
