"""Every fault of the MiniMax simulator, through the header, the prompt marker and the server-wide list."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from minimax_dagster.simulator import MiniMaxSimulator
from minimax_dagster.simulator.media import read_mp4_info

from .test_simulator import (
    IMAGE_ONLY,
    TEXT,
    _Receiver,
    assert_error,
    auth,
    create,
    get_video,
    non_heartbeat,
    read_events,
    upload,
    wait_final,
    wait_for,
)

GEN = 0.5


@pytest.fixture
def sim() -> Iterator[MiniMaxSimulator]:
    with MiniMaxSimulator(generation_seconds=GEN, heartbeat_seconds=0.1, moderated_visible_seconds=0.5) as s:
        yield s


@pytest.fixture
def hook() -> Iterator[_Receiver]:
    """A local replyUrl receiver."""
    r = _Receiver()
    yield r
    r.close()


def fault(spec: str) -> dict[str, str]:
    return {"X-Sim-Fault": spec}


def read_until_error(resp: requests.Response) -> tuple[list[str], Exception | None]:
    """Raw data lines read before the stream ended, and the exception that ended it (None = clean end)."""
    lines: list[str] = []
    try:
        for line in resp.iter_lines(decode_unicode=True):
            if line.startswith("data:"):
                lines.append(line)
    except requests.exceptions.RequestException as exc:
        return lines, exc
    return lines, None


def video_id_of(lines: list[str]) -> str:
    return json.loads(lines[0][5:])["videoId"]


# ---- stream faults --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["header", "prompt", "server"])
def test_drop_after_closes_abruptly_and_the_job_continues(sim, where):
    body = {"templateId": TEXT, "prompt": "dropped"}
    headers = None
    if where == "header":
        headers = fault("drop_after=3")
    elif where == "prompt":
        body["prompt"] = "dropped [sim:drop_after=3]"
    else:
        sim.set_faults(["drop_after=3"])
    lines, error = read_until_error(create(sim, body, headers=headers))
    assert isinstance(error, requests.exceptions.ChunkedEncodingError)  # not a clean end
    non_beats = [line for line in lines if '"heartbeat"' not in line]
    assert len(non_beats) == 3
    final = wait_final(sim, video_id_of(lines))
    assert final["status"] == 2 and final["downloadURL"]


def test_drop_after_zero_sends_nothing(sim):
    lines, error = read_until_error(
        create(sim, {"templateId": TEXT, "prompt": "x"}, headers=fault("drop_after=0"))
    )
    assert lines == [] and error is not None
    assert sim.counters()["creates"] == 1


def test_stall_after_keeps_the_socket_silent(sim):
    resp = requests.post(
        f"{sim.base_url}/videos/agent-create",
        headers={**auth(sim), **fault("stall_after=2")},
        json={"templateId": TEXT, "prompt": "stalled"},
        stream=True,
        timeout=(5, GEN * 2 + 0.5),
    )
    started = time.monotonic()
    lines, error = read_until_error(resp)
    assert time.monotonic() - started >= GEN * 2  # it waited for the read timeout: the socket stayed open
    assert isinstance(error, requests.exceptions.ConnectionError)  # read timeout mid-stream
    assert len(lines) == 2 and all('"heartbeat"' not in line for line in lines)
    assert wait_final(sim, video_id_of(lines))["status"] == 2  # the job completed meanwhile


def test_malformed_at_sends_invalid_json_then_continues(sim):
    events = read_events(create(sim, {"templateId": TEXT, "prompt": "broken [sim:malformed_at=4]"}))
    main = non_heartbeat(events)
    assert len(main) == 10
    assert "_raw" in main[3] and main[3]["_raw"].startswith("{")
    assert all("_raw" not in e for i, e in enumerate(main) if i != 3)
    assert main[-1]["status"] == "finished"


def test_no_finished_ends_cleanly_after_type_3(sim):
    lines, error = read_until_error(
        create(sim, {"templateId": TEXT, "prompt": "x"}, headers=fault("no_finished"))
    )
    assert error is None
    events = [json.loads(line[5:]) for line in lines if '"heartbeat"' not in line]
    assert events[-1]["status"] == "progress" and events[-1]["type"] == 3 and events[-1]["isFinished"]
    assert all(e["status"] != "finished" for e in events)
    assert get_video(sim, events[0]["videoId"]).json()["status"] == 2


def test_precedence_prompt_over_header_over_server(sim):
    sim.set_faults(["drop_after=6"])
    lines, _ = read_until_error(
        create(sim, {"templateId": TEXT, "prompt": "p [sim:drop_after=2]"}, headers=fault("drop_after=4"))
    )
    assert len([x for x in lines if "heartbeat" not in x]) == 2
    lines, _ = read_until_error(
        create(sim, {"templateId": TEXT, "prompt": "p"}, headers=fault("drop_after=4"))
    )
    assert len([x for x in lines if "heartbeat" not in x]) == 4
    lines, _ = read_until_error(create(sim, {"templateId": TEXT, "prompt": "p"}))
    assert len([x for x in lines if "heartbeat" not in x]) == 6


def test_bad_fault_specs_are_400(sim):
    assert_error(create(sim, {"templateId": TEXT, "prompt": "x"}, headers=fault("explode")), 400, "explode")
    assert_error(
        create(sim, {"templateId": TEXT, "prompt": "x"}, headers=fault("drop_after=x")), 400, "drop_after"
    )
    assert_error(
        create(sim, {"templateId": TEXT, "prompt": "x"}, headers=fault("moderate=6")), 400, "moderate"
    )
    assert_error(create(sim, {"templateId": TEXT, "prompt": "x [sim:fail=1]"}), 400, "fail")


# ---- outcomes -------------------------------------------------------------------------------------------------


def test_fail(sim):
    events = non_heartbeat(read_events(create(sim, {"templateId": TEXT, "prompt": "doomed [sim:fail]"})))
    assert [e["status"] for e in events][-2:] == ["progress", "finished"]
    last_progress, finished = events[-2], events[-1]
    assert last_progress["type"] == 3 and last_progress["errCode"] != 0 and last_progress["errMsg"]
    assert finished["errCode"] == last_progress["errCode"] and finished["videoId"] == events[0]["videoId"]
    assert len(events) == 9
    body = get_video(sim, events[0]["videoId"]).json()
    assert body["status"] == 3 and body["statusFinal"] and body["statusLabel"] == "failed"
    assert body["message"] and body["canRetry"] is True and body["videoURL"] == ""
    nid = body["id"]
    assert requests.get(f"{sim.origin}/cdn/video/{nid}.mp4", timeout=5).status_code == 404
    c = sim.counters()
    assert c["jobs_by_outcome"] == {"failed": 1} and c["concurrent_jobs_by_account"] == {
        events[0]["videoId"].split("-minimax:")[1].split("-")[0]: 0
    }


@pytest.mark.parametrize("status", [5, 7, 14])
def test_moderate_then_404(sim, status):
    events = non_heartbeat(
        read_events(create(sim, {"templateId": TEXT, "prompt": "x"}, headers=fault(f"moderate={status}")))
    )
    assert events[-1]["status"] == "finished" and events[-1]["errCode"]
    vid = events[0]["videoId"]
    body = get_video(sim, vid).json()
    assert body["status"] == status and body["statusFinal"] and body["statusLabel"] == "moderated"
    assert body["canAppeal"] is True
    time.sleep(0.6)  # moderated_visible_seconds = 0.5
    resp = get_video(sim, vid)
    assert resp.status_code == 404 and resp.json() == {"error": "Not found.", "code": 404}  # doc
    assert sim.counters()["jobs_by_outcome"] == {"moderated": 1}


def test_moderate_default_status_is_7(sim):
    events = read_events(create(sim, {"templateId": TEXT, "prompt": "x [sim:moderate]"}))
    assert get_video(sim, events[0]["videoId"]).json()["status"] == 7


def test_slow(sim):
    started = time.monotonic()
    events = read_events(create(sim, {"templateId": TEXT, "prompt": "x"}, headers=fault("slow=1.5")))
    assert time.monotonic() - started >= 1.5
    assert events[-1]["status"] == "finished"
    assert len([e for e in events if e["status"] == "heartbeat"]) >= 10


# ---- create rejections --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "status"), [("busy", 429), ("http502", 502), ("http504", 504)])
def test_first_n_creates_rejected_then_pass(sim, spec, status):
    for _ in range(2):
        resp = create(sim, {"templateId": TEXT, "prompt": "x"}, headers=fault(f"{spec}=2"))
        body = assert_error(resp, status)
        assert set(body) == {"error", "code"}  # doc: {"error", "code"} bodies
        if status == 429:
            assert "Retry-After" in resp.headers
    assert create(sim, {"templateId": TEXT, "prompt": "x"}, headers=fault(f"{spec}=2")).status_code == 200
    c = sim.counters()
    assert c["rejected_by_status"] == {str(status): 2} and c["creates"] == 1 and c["create_requests"] == 3


def test_busy_counts_per_prompt_for_markers_and_server_wide(sim):
    for prompt in ("a [sim:busy]", "b [sim:busy]"):
        assert_error(create(sim, {"templateId": TEXT, "prompt": prompt}), 429)
        assert create(sim, {"templateId": TEXT, "prompt": prompt}).status_code == 200
    sim.set_faults(["busy=1,http502=1"])
    assert_error(create(sim, {"templateId": TEXT, "prompt": "c"}), 429)
    assert_error(create(sim, {"templateId": TEXT, "prompt": "d"}), 502)
    assert create(sim, {"templateId": TEXT, "prompt": "e"}).status_code == 200
    sim.set_faults(["busy=1"])  # restarts the count
    assert_error(create(sim, {"templateId": TEXT, "prompt": "f"}), 429)


@pytest.mark.parametrize(
    ("spec", "status"), [("credits", 412), ("hold", 596), ("expired", 402), ("moderated_prompt", 422)]
)
def test_account_level_rejections(sim, spec, status):
    for _ in range(2):
        assert_error(create(sim, {"templateId": TEXT, "prompt": f"x [sim:{spec}]"}), status)
    assert sim.counters()["rejected_by_status"] == {str(status): 2}


def test_faults_apply_to_image_only_templates_through_the_header(sim):
    up = upload(sim).json()
    body = {"templateId": IMAGE_ONLY, "fileID": up["fileID"], "ossPath": up["ossPath"]}
    assert_error(create(sim, body, headers=fault("credits")), 412)


# ---- 502/504 that queued the job anyway -----------------------------------------------------------------------


def list_videos(sim: MiniMaxSimulator, account: str, **params) -> list[dict]:
    resp = requests.get(
        f"{sim.base_url}/videos/", headers=auth(sim), params={"account": account, **params}, timeout=10
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def find_queued(sim: MiniMaxSimulator, prompt: str) -> dict:
    """The one video whose desc is ``prompt``, looked for in every account's GET videos/ list."""
    found = [v for account in sim.config.accounts for v in list_videos(sim, account) if v["desc"] == prompt]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("status", [502, 504])
@pytest.mark.parametrize("where", ["header", "prompt", "server"])
def test_gateway_error_that_queued_the_job(sim, status, where, hook):
    name = f"http{status}_queued"
    prompt = f"queued behind a {status} ({where})"
    headers = None
    if where == "header":
        headers = fault(name)
    elif where == "prompt":
        prompt += f" [sim:{name}]"
    else:
        sim.set_faults([name])
    body = {"templateId": TEXT, "prompt": prompt, "replyUrl": hook.url, "replyRef": "r"}
    resp = create(sim, body, headers=headers)
    error = assert_error(resp, status)
    assert set(error) == {"error", "code"}  # doc: {"error", "code"} bodies
    # The job exists on an account although the answer was an error ...
    c = sim.counters()
    assert c["creates"] == 1 and c["creates_by_prompt"] == {prompt: 1} and c["create_requests"] == 1
    assert c["rejected_by_status"] == {str(status): 1} and c["queued_behind_gateway_errors"] == 1
    # ... useapi's side does not know it: not executing, no slot taken ...
    available = requests.get(f"{sim.base_url}/scheduler/available", headers=auth(sim), timeout=5).json()
    assert available["executing"] == [] and all(a["executing"] == 0 for a in available["available"])
    # ... but it is in its account's list, with its prompt as desc, and it completes.
    video = find_queued(sim, prompt)
    account = video["videoId"].split("-minimax:")[1].split("-video:")[0]
    assert account in sim.config.accounts and video["id"] == video["videoId"].rsplit(":", 1)[1]
    final = wait_final(sim, video["videoId"])
    assert final["status"] == 2 and final["desc"] == prompt
    assert find_queued(sim, prompt) == get_video(sim, video["videoId"]).json()
    assert requests.get(final["downloadURL"], timeout=10).status_code == 200
    c = sim.counters()
    assert c["jobs_by_outcome"] == {"completed": 1} and c["concurrent_jobs_by_account"][account] == 0
    # GUESS: useapi lost track of the job, so its replyUrl is never called. A later job's callback proves it:
    # the queued job became final first, so its callback (if any) would have been sent first.
    sim.set_faults([])
    later = read_events(create(sim, {"templateId": TEXT, "prompt": "later", "replyUrl": hook.url}))
    wait_for(lambda: hook.received)
    assert [r["videoId"] for r in hook.received] == [later[0]["videoId"]]
    assert sim.counters()["callbacks"] == 1


def test_queued_gateway_errors_are_counted_then_pass(sim):
    for _ in range(2):
        assert_error(create(sim, {"templateId": TEXT, "prompt": "twice [sim:http502_queued=2]"}), 502)
    events = read_events(create(sim, {"templateId": TEXT, "prompt": "twice [sim:http502_queued=2]"}))
    assert events[-1]["status"] == "finished"
    c = sim.counters()
    assert (
        c["creates_by_prompt"] == {"twice [sim:http502_queued=2]": 3}
        and c["queued_behind_gateway_errors"] == 2
    )
    listed = [v for a in sim.config.accounts for v in list_videos(sim, a)]
    assert len([v for v in listed if v["desc"] == "twice [sim:http502_queued=2]"]) == 3


def test_a_queued_job_holds_no_useapi_slot(sim):
    sim.configure(accounts={"100001": 1}, generation_seconds=3)
    body = {"templateId": TEXT, "prompt": "hidden", "account": "100001", "maxJobs": 1}
    assert_error(create(sim, body, headers=fault("http504_queued")), 504)
    (hidden,) = list_videos(sim, "100001")
    assert not hidden["statusFinal"]  # still running on MiniMax's side ...
    visible = create(sim, {**body, "prompt": "visible"})
    assert visible.status_code == 200  # ... yet useapi's maxJobs check does not count it
    visible.close()
    assert_error(create(sim, {**body, "prompt": "third"}), 429)  # the visible job does count
    assert [v["desc"] for v in list_videos(sim, "100001")] == ["visible", "hidden"]  # newest first (GUESS)


def test_capacity_is_checked_before_the_queued_gateway_error(sim):
    sim.configure(accounts={"100001": 1}, generation_seconds=3)
    first = create(sim, {"templateId": TEXT, "prompt": "first", "maxJobs": 1})
    assert first.status_code == 200
    resp = create(sim, {"templateId": TEXT, "prompt": "second [sim:http502_queued]", "maxJobs": 1})
    assert_error(resp, 429)  # useapi answers 429 itself: MiniMax is not called, no job is queued
    first.close()
    assert sim.counters()["creates"] == 1 and sim.counters()["queued_behind_gateway_errors"] == 0


# ---- CDN faults -------------------------------------------------------------------------------------------------


def _finished_video(sim, headers=None, prompt="cdn") -> dict:
    events = read_events(create(sim, {"templateId": TEXT, "prompt": prompt}, headers=headers))
    return get_video(sim, events[0]["videoId"]).json()


def test_cdn_cut_then_resume_with_range(sim):
    # A multiple of the client's read size: requests drops the partial chunk read when the connection breaks.
    video = _finished_video(sim, headers=fault("cdn_cut=131072"))
    url = video["downloadURL"]
    resp = requests.get(url, stream=True, timeout=10)
    size = int(resp.headers["Content-Length"])
    got = bytearray()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for chunk in resp.iter_content(65536):
            got += chunk
    # At most the cut point arrives (requests may drop a partial read when the connection breaks, depending on
    # how the bytes were split across reads); Content-Length announced the full size.
    assert 0 < len(got) <= 131072 < size
    rest = requests.get(url, headers={"Range": f"bytes={len(got)}-"}, timeout=10)
    assert rest.status_code == 206
    data = bytes(got) + rest.content
    assert len(data) == size
    assert data == requests.get(url, timeout=10).content  # only the first response is cut
    assert read_mp4_info(data)["width"] == 1280
    # The server counts a download as completed after its last write returns, which can be a moment after the
    # client has read the last byte: wait (bounded) for the count to settle.
    wait_for(lambda: sim.counters()["downloads_completed"] >= 2, timeout=5)
    c = sim.counters()
    assert c["downloads"] == 3 and c["downloads_completed"] == 2


def test_cdn_cut_every_response_needs_resuming(sim):
    cut = 6 * 65536
    video = _finished_video(sim, headers=fault(f"cdn_cut={cut}:0"))
    url = video["videoURL"]
    size = int(requests.head(url, timeout=10).headers["Content-Length"])
    data, attempts = bytearray(), 0
    while len(data) < size:
        attempts += 1
        headers = {"Range": f"bytes={len(data)}-"} if data else {}
        try:
            with requests.get(url, headers=headers, stream=True, timeout=10) as resp:
                for chunk in resp.iter_content(65536):
                    data += chunk
        except requests.exceptions.ChunkedEncodingError:
            pass
    assert len(data) == size and attempts == -(-size // cut)
    assert read_mp4_info(bytes(data))["height"] == 720
    sim.set_faults([])
    # only the last, shorter, response was not cut (counted a moment after the client read its last byte)
    wait_for(lambda: sim.counters()["downloads_completed"] >= 1, timeout=5)
    assert sim.counters()["downloads_completed"] == 1


def test_cdn_slow_throttles_this_job_only(sim):
    slow = _finished_video(sim, headers=fault("cdn_slow=200000"), prompt="slow")
    fast = _finished_video(sim, prompt="fast")
    rng = {"Range": "bytes=0-99999"}
    started = time.monotonic()
    assert len(requests.get(slow["videoURL"], headers=rng, timeout=10).content) == 100000
    slow_seconds = time.monotonic() - started
    assert slow_seconds >= 0.4  # 100 kB at 200 kB/s can never take less than 0.5 s
    started = time.monotonic()
    assert len(requests.get(fast["videoURL"], headers=rng, timeout=10).content) == 100000
    # Unthrottled, the same bytes come faster (compared, not timed against a constant, so load cannot flake it).
    assert time.monotonic() - started < slow_seconds


def test_cdn_bytes_per_second_config(sim):
    sim.configure(cdn_bytes_per_second=250000)
    video = _finished_video(sim)
    started = time.monotonic()
    requests.get(video["videoURL"], headers={"Range": "bytes=0-99999"}, timeout=10)
    assert time.monotonic() - started >= 0.3


def test_job_remembers_its_faults_after_server_faults_change(sim):
    sim.set_faults(["cdn_cut=1000"])
    video = _finished_video(sim)
    sim.set_faults([])
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(video["videoURL"], timeout=10)
    wait_for(lambda: sim.counters()["downloads"] == 1)
