"""Contract tests of the MiniMax simulator, spoken to with plain `requests` (never the project's client)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from minimax_dagster.simulator import Fault, MiniMaxSimulator, SimulatorConfig
from minimax_dagster.simulator.catalogue import TEMPLATES
from minimax_dagster.simulator.media import read_mp4_info, render_poster_png

# Template ids by input kind (see minimax_dagster/simulator/catalogue.py).
TEXT = "394100000000000001"  # prompt required, no image
TEXT_OPT = "394100000000000003"  # prompt optional, no image
IMAGE_ONLY = "392747428568649728"  # "Diving": image required, no text
IMAGE_TEXT = "393769180141805569"  # "Run for Life": image + prompt required
IMAGE_TEXT_OPT = "394100000000000008"  # image required, prompt optional
DOCS_TEMPLATE = "1122334455667788"  # the documentation examples' template id

PNG = render_poster_png(32, 32, "upload")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"

GEN = 0.5


# ---- fixtures & helpers ------------------------------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[MiniMaxSimulator]:
    with MiniMaxSimulator(generation_seconds=GEN, heartbeat_seconds=0.1, moderated_visible_seconds=0.5) as s:
        yield s


def auth(sim: MiniMaxSimulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.token}"}


def create(
    sim: MiniMaxSimulator, body: dict[str, Any] | None = None, *, how: str = "json", headers=None, **kw
):
    """POST agent-create (stream=True). how: json | form | multipart."""
    h = {**auth(sim), **(headers or {})}
    url = f"{sim.base_url}/videos/agent-create"
    body = body or {}
    if how == "json":
        return requests.post(url, headers=h, json=body, stream=True, timeout=30, **kw)
    if how == "form":
        return requests.post(url, headers=h, data=body, stream=True, timeout=30, **kw)
    if how == "multipart":
        files = {k: (None, str(v)) for k, v in body.items()}
        return requests.post(url, headers=h, files=files, stream=True, timeout=30, **kw)
    raise ValueError(how)


def read_events(resp: requests.Response) -> list[dict[str, Any]]:
    """All data events of a stream (invalid JSON kept as {"_raw": text})."""
    events = []
    for line in resp.iter_lines(decode_unicode=True):
        if line and line.startswith("data:"):
            text = line[5:].strip()
            try:
                events.append(json.loads(text))
            except ValueError:
                events.append({"_raw": text})
    return events


def run(sim: MiniMaxSimulator, body: dict[str, Any], **kw) -> list[dict[str, Any]]:
    resp = create(sim, body, **kw)
    assert resp.status_code == 200, resp.text
    return read_events(resp)


def non_heartbeat(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("status") != "heartbeat"]


def get_video(sim: MiniMaxSimulator, video_id: str) -> requests.Response:
    return requests.get(f"{sim.base_url}/videos/{video_id}", headers=auth(sim), timeout=10)


def upload(
    sim: MiniMaxSimulator, data: bytes = PNG, ctype: str = "image/png", account: str | None = "100001"
):
    """POST files to ``account`` (None: no account parameter, which several accounts make a 400)."""
    params = {"account": account} if account else None
    return requests.post(
        f"{sim.base_url}/files",
        headers={**auth(sim), "Content-Type": ctype},
        params=params,
        data=data,
        timeout=10,
    )


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def wait_final(sim: MiniMaxSimulator, video_id: str, timeout: float = 10.0) -> dict[str, Any]:
    def final():
        r = get_video(sim, video_id)
        return r.json() if r.status_code == 200 and r.json()["statusFinal"] else None

    return wait_for(final, timeout)


def documented_code(resp: requests.Response) -> bool:
    """Whether the error body carries "code": not on agent-create's 400/401/404 (seed page), else yes (pages)."""
    is_create = resp.request.method == "POST" and resp.url.rstrip("/").endswith("/videos/agent-create")
    return not (is_create and resp.status_code in (400, 401, 404))


def assert_error(resp: requests.Response, status: int, *words: str) -> dict[str, Any]:
    """An error answer with this status, the documented body (with or without "code") naming ``words``."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert isinstance(body["error"], str) and body["error"]
    if documented_code(resp):
        assert body["code"] == status, body
    else:
        assert set(body) == {"error"}, body
    for word in words:
        assert word.lower() in body["error"].lower(), body
    return body


# ---- auth -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "videos/agent-create"),
        ("GET", "videos/agent-templates"),
        ("GET", "videos/user:1234-minimax:100001-video:1"),
        ("GET", "videos/"),
        ("POST", "files"),
        ("GET", "files"),
        ("GET", "accounts"),
        ("GET", "accounts/100001"),
        ("GET", "scheduler/available"),
    ],
)
@pytest.mark.parametrize("token", [None, "wrong"])
def test_every_endpoint_requires_the_bearer_token(sim, method, path, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = requests.request(method, f"{sim.base_url}/{path}", headers=headers, timeout=10)
    assert resp.status_code == 401
    if path == "videos/agent-create":
        assert resp.json() == {"error": "Unauthorized"}  # doc: the seed page's 401
    else:
        assert resp.json() == {"error": "Unauthorized", "code": 401}  # doc: the other pages' 401


def test_unauthorized_create_is_counted(sim):
    requests.post(f"{sim.base_url}/videos/agent-create", json={"templateId": TEXT}, timeout=10)
    c = sim.counters()
    assert c["create_requests"] == 1 and c["creates"] == 0 and c["rejected_by_status"] == {"401": 1}


# ---- agent-create: the stream --------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["json", "form", "multipart"])
def test_create_accepts_three_body_encodings(sim, how):
    resp = create(sim, {"templateId": TEXT, "prompt": f"A {how} car", "maxJobs": 2}, how=how)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["Connection"] == "keep-alive"
    events = read_events(resp)
    assert events[0]["status"] == "created"
    assert events[0]["message"]["msgContent"] == f"A {how} car"
    assert events[-1]["status"] == "finished"


def test_stream_follows_the_documented_sequence_with_real_content(sim):
    t0 = int(time.time() * 1000)
    events = run(sim, {"templateId": TEXT, "prompt": "Futuristic sports car", "replyRef": "r1"})
    main = non_heartbeat(events)
    statuses = [(e["status"], e.get("type")) for e in main]
    assert statuses == [
        ("created", None),
        ("connected", None),
        ("progress", 1),
        ("progress", 2),
        ("progress", 2),
        ("progress", 1),
        ("progress", 2),
        ("progress", 2),
        ("progress", 3),
        ("finished", None),
    ]
    created, connected, gen_img, img2, img3, gen_vid, vid2, vid3, recs, finished = main
    vid = created["videoId"]
    assert vid.startswith("user:1234-minimax:") and "-video:" in vid
    account = vid.split("-minimax:")[1].split("-video:")[0]
    assert account in sim.config.accounts
    assert vid.rsplit(":", 1)[1].isdigit()
    for e in (created, connected, finished):
        assert e["videoId"] == vid and e["code"] == 200
        assert e["projectID"] == created["projectID"] and e["chatID"] == created["chatID"]
        assert e["projectID"] and e["chatID"]
    assert created["message"]["msgContent"] == "Futuristic sports car"
    assert created["message"]["msgType"] == 1 and created["message"]["msgId"]
    assert finished["message"]["msgContent"] == "Futuristic sports car"
    for e in main:
        assert t0 - 1000 <= e["timestamp"] <= int(time.time() * 1000) + 1000
    assert [e["timestamp"] for e in main] == sorted(e["timestamp"] for e in main)
    # heartbeats during generation
    beats = [e for e in events if e.get("status") == "heartbeat"]
    assert len(beats) >= 2 and all(set(b) == {"status", "timestamp"} for b in beats)
    # progress texts
    assert gen_img["message"]["msgContent"] == "Generating image..." and gen_img["message"]["msgType"] == 2
    assert gen_vid["message"]["msgContent"] == "Generating video..."
    # image attachment: processing then done with the poster PNG
    a2 = img2["message"]["attachmentInfo"]
    a3 = img3["message"]["attachmentInfo"]
    assert a2["attachmentInfoID"] == a3["attachmentInfoID"] and a2["createTime"]
    assert a2["attachments"][0]["status"] == 2 and a2["attachments"][0]["file"]["fileName"] == "processing"
    assert a3["attachments"][0]["status"] == 3 and a3["attachments"][0]["attachmentID"]
    poster_url = a3["attachments"][0]["file"]["fileUrl"]
    assert poster_url.startswith(sim.origin + "/cdn/") and poster_url.endswith(".png")
    # video attachment
    v2 = vid2["message"]["attachmentInfo"]
    v3 = vid3["message"]["attachmentInfo"]
    assert v2["type"] == 3 and v3["type"] == 3 and v2["attachments"][0]["status"] == 2
    att = v3["attachments"][0]
    assert att["status"] == 3
    f = att["file"]
    assert f["type"] == "video" and f["fileName"].endswith(".mp4")
    assert f["fileUrl"] == f["extra"]["watermark_url"] and f["posterUrl"] == poster_url
    extra = f["extra"]
    assert {k: extra[k] for k in ("width", "height", "duration", "fps")} == {
        "width": "1280",
        "height": "720",
        "duration": "5",
        "fps": "24",
    }
    assert extra["no_watermark_url"].endswith("_nowm.mp4") and extra["task_id"] and extra["vendor"]
    assert extra["url"]
    # recommendations: 2-3 other catalogue templates
    assert recs["isFinished"] is True
    ids = {t.template_id: t.name for t in TEMPLATES}
    assert 2 <= len(recs["recTemplateList"]) <= 3
    for r in recs["recTemplateList"]:
        assert r["id"] != TEXT and ids[r["id"]] == r["name"]
    # GET agrees with the stream
    body = get_video(sim, vid).json()
    assert (
        body["status"] == 2
        and body["videoURL"] == f["fileUrl"]
        and body["downloadURL"] == extra["no_watermark_url"]
    )
    assert body["coverURL"] == poster_url


def test_stages_are_spread_over_generation_seconds(sim):
    resp = create(sim, {"templateId": TEXT, "prompt": "timing"})
    arrivals = []
    for line in resp.iter_lines(decode_unicode=True):
        if line.startswith("data:") and '"heartbeat"' not in line:
            arrivals.append(time.monotonic())
    assert len(arrivals) == 10
    assert GEN * 0.8 <= arrivals[-1] - arrivals[0] <= GEN * 3 + 0.5
    assert arrivals[4] - arrivals[0] >= GEN * 0.25  # the image is ready about a third of the way


def test_job_keeps_running_after_the_client_disconnects(sim):
    resp = create(sim, {"templateId": TEXT, "prompt": "abandoned", "account": "100001", "maxJobs": 1})
    first = next(resp.iter_lines(decode_unicode=True))
    video_id = json.loads(first[5:])["videoId"]
    resp.close()
    # the slot stays taken while the job runs ...
    assert_error(create(sim, {"templateId": TEXT, "prompt": "x", "account": "100001", "maxJobs": 1}), 429)
    body = get_video(sim, video_id).json()
    assert body["status"] in (0, 11, 1, 12) and not body["statusFinal"]
    # ... and the job completes anyway
    assert wait_final(sim, video_id)["status"] == 2
    assert sim.counters()["concurrent_jobs_by_account"]["100001"] == 0
    assert (
        create(sim, {"templateId": TEXT, "prompt": "y", "account": "100001", "maxJobs": 1}).status_code == 200
    )


def test_image_template_with_uploaded_file(sim):
    up = upload(sim, account="100002").json()
    events = run(
        sim,
        {"templateId": IMAGE_TEXT, "prompt": "on the moon", "fileID": up["fileID"], "ossPath": up["ossPath"]},
    )
    created = events[0]
    assert "-minimax:100002-" in created["videoId"]  # the file's owner account is used
    assert created["message"]["files"][0]["fileUrl"] == up["ossPath"]
    body = get_video(sim, created["videoId"]).json()
    assert body["originFiles"][0]["url"] == up["ossPath"]
    # image-only template: no prompt at all
    events = run(sim, {"templateId": IMAGE_ONLY, "fileID": up["fileID"], "ossPath": up["ossPath"]})
    assert events[-1]["status"] == "finished"
    # image + optional text, without text
    events = run(sim, {"templateId": IMAGE_TEXT_OPT, "fileID": up["fileID"], "ossPath": up["ossPath"]})
    assert events[-1]["status"] == "finished"


# ---- agent-create: validation ---------------------------------------------------------------------------------


LONG = "x" * 1025


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"prompt": "no template"}, ["templateId"]),
        ({"templateId": TEXT, "prompt": "a", "ossPath": "https://x/y.png"}, ["ossPath", "fileID"]),
        ({"templateId": IMAGE_ONLY, "fileID": "user:1234-minimax:100001-file:1"}, ["ossPath"]),
        ({"templateId": TEXT, "prompt": "a", "replyUrl": "http://x/" + LONG}, ["replyUrl", "1024"]),
        ({"templateId": TEXT, "prompt": "a", "replyRef": LONG}, ["replyRef", "1024"]),
        ({"templateId": TEXT, "prompt": "a", "maxJobs": 0}, ["maxJobs"]),
        ({"templateId": TEXT, "prompt": "a", "maxJobs": 11}, ["maxJobs"]),
        ({"templateId": TEXT, "prompt": "a", "maxJobs": "many"}, ["maxJobs"]),
        ({"templateId": TEXT, "prompt": "a", "maxJobs": 2.5}, ["maxJobs"]),
        ({"templateId": TEXT, "prompt": "p" * 2001}, ["prompt", "2000"]),
        ({"templateId": TEXT, "prompt": "a", "account": "999"}, ["account", "999"]),
        ({"templateId": TEXT}, ["prompt", "required"]),
        ({"templateId": TEXT, "prompt": "[sim:slow=1]"}, ["prompt", "required"]),
        ({"templateId": IMAGE_TEXT, "prompt": "no image"}, ["image", "fileID"]),
        (
            {"templateId": TEXT, "prompt": "a", "fileID": "user:1234-minimax:100001-file:1", "ossPath": "x"},
            ["image"],
        ),
        (
            {"templateId": IMAGE_ONLY, "fileID": "user:1234-minimax:100001-file:1", "ossPath": "x"},
            ["not found"],
        ),
        ({"templateId": IMAGE_ONLY, "fileID": "garbage", "ossPath": "x"}, ["fileID"]),
        ({"templateId": TEXT, "prompt": "a [sim:nonsense]"}, ["fault", "nonsense"]),
    ],
)
def test_create_validation_errors_are_400_naming_the_field(sim, body, words):
    assert_error(create(sim, body), 400, *words)


def test_prompt_refused_by_a_template_without_text(sim):
    up = upload(sim).json()
    body = {"templateId": IMAGE_ONLY, "fileID": up["fileID"], "ossPath": up["ossPath"], "prompt": "hello"}
    assert_error(create(sim, body), 400, "prompt")
    # a prompt made only of simulator markers is not text
    body["prompt"] = "[sim:slow=0.1]"
    assert create(sim, body).status_code == 200


def test_file_owned_by_another_account_is_refused(sim):
    up = upload(sim, account="100001").json()
    body = {"templateId": IMAGE_ONLY, "fileID": up["fileID"], "ossPath": up["ossPath"], "account": "100002"}
    assert_error(create(sim, body), 400, "100001", "100002")


def test_unknown_template_is_404(sim):
    resp = create(sim, {"templateId": "999", "prompt": "a"})
    assert resp.status_code == 404
    assert resp.json() == {
        "error": "The video or template you are trying to use does not exist or has been deleted."
    }


def test_bad_bodies(sim):
    url = f"{sim.base_url}/videos/agent-create"
    h = auth(sim)
    assert_error(
        requests.post(url, headers={**h, "Content-Type": "application/json"}, data="{bad", timeout=5), 400
    )
    assert_error(
        requests.post(url, headers={**h, "Content-Type": "application/json"}, data="[1]", timeout=5), 400
    )
    assert_error(requests.post(url, headers=h, timeout=5), 400, "templateId")
    assert_error(requests.post(url, headers={**h, "Content-Type": "text/csv"}, data="a,b", timeout=5), 400)
    c = sim.counters()
    assert c["create_requests"] == 4 and c["rejected_by_status"] == {"400": 4} and c["creates"] == 0


def test_template_id_may_be_a_json_number(sim):
    assert create(sim, {"templateId": int(TEXT_OPT)}).status_code == 200


# ---- capacity ----------------------------------------------------------------------------------------------


def test_capacity_per_account_and_retry_after(sim):
    sim.configure(generation_seconds=5)
    opened = [create(sim, {"templateId": TEXT_OPT, "account": "100001"}) for _ in range(5)]
    assert all(r.status_code == 200 for r in opened)
    resp = create(sim, {"templateId": TEXT_OPT, "account": "100001"})
    body = assert_error(resp, 429, "100001")
    assert int(resp.headers["Retry-After"]) >= 0
    assert body["code"] == 429
    # the other account still has room; without account the free one is picked
    for _ in range(3):
        r = create(sim, {"templateId": TEXT_OPT})
        first = next(r.iter_lines(decode_unicode=True))
        assert "-minimax:100002-" in first
        opened.append(r)
    avail = requests.get(f"{sim.base_url}/scheduler/available", headers=auth(sim), timeout=5).json()
    by_account = {a["account"]: a for a in avail["available"]}
    assert by_account["100001"] == {"account": "100001", "maxJobs": 5, "executing": 5, "available": 0}
    assert by_account["100002"]["executing"] == 3 and by_account["100002"]["available"] == 2
    assert len(avail["executing"]) == 8
    item = avail["executing"][0]
    assert set(item) == {"videoId", "started", "elapsed"}  # no replyUrl/replyRef given: left out (GUESS)
    c = sim.counters()
    assert c["max_concurrent_by_account"] == {"100001": 5, "100002": 3} and c["max_concurrent_total"] == 8
    assert c["rejected_by_status"] == {"429": 1}
    for r in opened:
        r.close()


def test_request_max_jobs_overrides_the_account(sim):
    sim.configure(generation_seconds=3)
    first = create(sim, {"templateId": TEXT_OPT, "account": "100001", "maxJobs": 1})
    assert first.status_code == 200
    assert_error(create(sim, {"templateId": TEXT_OPT, "account": "100001", "maxJobs": 1}), 429)
    # the account's own maxJobs (5) still allows more
    assert create(sim, {"templateId": TEXT_OPT, "account": "100001"}).status_code == 200


def test_no_account_and_all_full_is_429(sim):
    sim.configure(generation_seconds=3, accounts={"100001": 1, "100002": 1})
    a = create(sim, {"templateId": TEXT_OPT})
    b = create(sim, {"templateId": TEXT_OPT})
    accounts = {next(r.iter_lines(decode_unicode=True)).split("-minimax:")[1].split("-")[0] for r in (a, b)}
    assert accounts == {"100001", "100002"}
    resp = create(sim, {"templateId": TEXT_OPT})
    assert_error(resp, 429)
    assert "Retry-After" in resp.headers


def test_random_account_choice_uses_both_accounts(sim):
    sim.configure(accounts={"100001": 10, "100002": 10})
    seen = set()
    for _ in range(12):
        r = create(sim, {"templateId": TEXT_OPT, "prompt": "[sim:drop_after=1]"})
        seen.add(next(r.iter_lines(decode_unicode=True)).split("-minimax:")[1].split("-")[0])
        r.close()
    assert seen == {"100001", "100002"}


# ---- GET videos/{id} ---------------------------------------------------------------------------------------


def test_get_video_reports_progress_then_completion(sim):
    # 3 s: the "processing video" phase (status 12) lasts 1.8 s, so polls every 50 ms see it even on a loaded
    # machine (at 1 s it lasted 0.6 s, and a CI run once missed it).
    sim.configure(generation_seconds=3.0)
    resp = create(sim, {"templateId": TEXT, "prompt": "poll me"})
    vid = json.loads(next(resp.iter_lines(decode_unicode=True))[5:])["videoId"]
    statuses, percents = [], []
    while True:
        body = get_video(sim, vid).json()
        statuses.append(body["status"])
        percents.append(body["percent"])
        if body["statusFinal"]:
            break
        assert body["statusLabel"] in ("pending", "queued", "processing")
        time.sleep(0.05)
    assert statuses[-1] == 2 and percents[-1] == 100
    assert {1, 12} <= set(statuses)
    moving = [p for s, p in zip(statuses, percents, strict=True) if s in (1, 12)]
    assert moving == sorted(moving) and moving[0] < moving[-1] and all(0 < p < 100 for p in moving)
    assert set(body) >= {
        "id",
        "videoId",
        "desc",
        "coverURL",
        "videoURL",
        "downloadURL",
        "status",
        "statusLabel",
        "statusFinal",
        "message",
        "percent",
        "width",
        "height",
        "originFiles",
        "canAppeal",
        "canRetry",
    }
    assert body["videoId"] == vid and body["id"] == vid.rsplit(":", 1)[1] and body["desc"] == "poll me"
    assert (body["width"], body["height"]) == (1280, 720) and body["statusLabel"] == "completed"
    c = sim.counters()
    assert c["polls"] == len(statuses) and c["polls_by_video"] == {vid: len(statuses)}


def test_unknown_routes_and_methods_answer_json(sim):
    resp = requests.get(f"{sim.base_url}/no/such/endpoint", headers=auth(sim), timeout=5)
    assert resp.status_code == 404 and resp.json() == {"error": "Not found.", "code": 404}
    resp = requests.delete(f"{sim.base_url}/accounts", headers=auth(sim), timeout=5)
    assert resp.status_code == 405 and "error" in resp.json()
    assert create(sim, {"templateId": TEXT_OPT}).status_code == 200
    url = f"{sim.base_url}/videos/agent-create/"
    assert requests.post(url, headers=auth(sim), json={"templateId": "0"}, timeout=5).status_code == 404


def test_unknown_video_is_404(sim):
    resp = get_video(sim, "user:1234-minimax:100001-video:42")
    assert resp.status_code == 404 and resp.json() == {"error": "Not found.", "code": 404}  # doc


# ---- agent-templates -----------------------------------------------------------------------------------------


ONE = {"account": "100001"}


def test_templates_list_and_paging(sim):
    url = f"{sim.base_url}/videos/agent-templates"
    body = requests.get(url, headers=auth(sim), params=ONE, timeout=5).json()
    assert len(body["videoList"]) == len(TEMPLATES) >= 12 and body["hasNext"] is False
    item = body["videoList"][0]
    assert set(item) >= {"id", "createTime", "videoAsset", "like", "author", "cardType", "tabID"}
    asset = item["videoAsset"]
    assert set(asset) >= {
        "id",
        "desc",
        "coverURL",
        "videoURL",
        "status",
        "width",
        "height",
        "duration",
        "resolution",
        "title",
        "agentTemplateID",
        "agentTemplateName",
        "downloadURL",
        "aspectRatio",
        "tags",
    }
    assert asset["agentTemplateID"] == item["id"] and asset["id"] != item["id"]  # doc: distinct ids
    assert isinstance(asset["resolution"], int) and item["tabID"] == "template"  # doc: a number, a string
    assert all(set(tag) == {"type", "tagIcon", "tagText"} for tag in asset["tags"]) and asset["tags"]
    assert set(item["like"]) == {"likes", "likeStatus"}
    # paging with limit + lastId
    seen, last = [], None
    while True:
        params = {**ONE, "limit": 4, **({"lastId": last} if last else {})}
        page = requests.get(url, headers=auth(sim), params=params, timeout=5).json()
        assert len(page["videoList"]) <= 4
        seen += [v["id"] for v in page["videoList"]]
        if not page["hasNext"]:
            break
        last = page["videoList"][-1]["id"]
    assert seen == [t.template_id for t in TEMPLATES]
    assert_error(requests.get(url, headers=auth(sim), params={**ONE, "limit": "0"}, timeout=5), 400, "limit")
    assert_error(
        requests.get(url, headers=auth(sim), params={**ONE, "lastId": "nope"}, timeout=5), 400, "lastId"
    )
    # doc: account is required when several accounts are configured, also for a template's detail
    assert_error(requests.get(url, headers=auth(sim), timeout=5), 400, "account", "required")
    assert_error(requests.get(url, headers=auth(sim), params={"templateId": TEXT}, timeout=5), 400, "account")
    assert_error(
        requests.get(url, headers=auth(sim), params={"account": "9"}, timeout=5), 400, "account", "9"
    )
    # the preview video and cover exist on the CDN
    assert requests.get(asset["coverURL"], timeout=10).headers["Content-Type"] == "image/png"
    preview = requests.get(asset["videoURL"], timeout=10)
    info = read_mp4_info(preview.content)
    assert (info["width"], info["height"]) == (asset["width"], asset["height"])


def test_catalogue_covers_every_input_kind():
    kinds = {t.input_kind for t in TEMPLATES}
    assert {"text", "text?", "image", "image+text", "image+text?"} <= kinds
    diving = next(t for t in TEMPLATES if t.template_id == IMAGE_ONLY)
    assert diving.name == "Diving" and diving.image_required and not diving.allows_prompt
    run_for_life = next(t for t in TEMPLATES if t.template_id == IMAGE_TEXT)
    assert (
        run_for_life.name == "Run for Life" and run_for_life.image_required and run_for_life.requires_prompt
    )
    for t in TEMPLATES:
        assert t.width % 16 == 0 and t.height % 16 == 0 and t.credits > 0 and t.name


@pytest.mark.parametrize(
    ("template_id", "text", "image", "required"),
    [(IMAGE_ONLY, False, True, False), (IMAGE_TEXT, True, True, True), (TEXT_OPT, True, False, False)],
)
def test_template_detail(sim, template_id, text, image, required):
    url = f"{sim.base_url}/videos/agent-templates"
    body = requests.get(url, headers=auth(sim), params={**ONE, "templateId": template_id}, timeout=5).json()
    assert body["templateId"] == template_id
    assert (body["needTextInput"], body["needImageInput"], body["textRequired"]) == (text, image, required)
    assert set(body) >= {"name", "desc", "promptPlaceholder", "credits", "width", "height", "duration", "fps"}
    resp = requests.get(url, headers=auth(sim), params={**ONE, "templateId": "404404"}, timeout=5)
    assert resp.status_code == 404 and "does not exist" in resp.json()["error"]


def test_one_configured_account_needs_no_account_parameter():
    with MiniMaxSimulator(accounts={"7": 1}, generation_seconds=GEN) as one:
        url = f"{one.base_url}/videos/agent-templates"
        assert requests.get(url, headers=auth(one), timeout=5).json()["videoList"]
        assert upload(one, account=None).json()["fileID"].startswith("user:1234-minimax:7-file:")
        assert requests.get(f"{one.base_url}/files", headers=auth(one), timeout=5).json() == []
        assert requests.get(f"{one.base_url}/videos/", headers=auth(one), timeout=5).json() == []


# ---- files ---------------------------------------------------------------------------------------------------


def list_files(sim: MiniMaxSimulator, **params: Any) -> requests.Response:
    return requests.get(f"{sim.base_url}/files", headers=auth(sim), params=params, timeout=5)


def test_upload_and_list_files(sim):
    png = upload(sim).json()
    jpg = upload(sim, JPEG, "image/jpeg", account="100002").json()
    assert png["fileID"].startswith("user:1234-minimax:100001-file:")
    assert jpg["fileID"].startswith("user:1234-minimax:100002-file:")
    assert png["ossPath"].startswith(sim.origin + "/cdn/") and jpg["ossPath"].endswith(".jpg")
    served = requests.get(png["ossPath"], timeout=5)
    assert served.content == PNG and served.headers["Content-Type"] == "image/png"
    # doc: "Only images that were actually used for generation will be shown"
    assert list_files(sim, account="100002").json() == []
    run(sim, {"templateId": IMAGE_ONLY, "fileID": jpg["fileID"], "ossPath": jpg["ossPath"]})
    listing = list_files(sim, account="100002").json()
    assert [f["file_id"] for f in listing] == [jpg["fileID"]]
    assert list_files(sim, account="100001").json() == []
    item = listing[0]
    assert set(item) == {
        "file_id",
        "file_name",
        "file_type",
        "cdn_url",
        "oss_path",
        "file_scene",
        "file_status",
    }
    # doc: file_type like "jpeg", cdn_url the file's URL, oss_path a path distinct from it
    assert item["file_type"] == "jpeg" and item["cdn_url"] == jpg["ossPath"]
    assert item["oss_path"] != item["cdn_url"] and not item["oss_path"].startswith("http")
    assert sim.counters()["uploads"] == 2
    # doc: account is required with several accounts (POST and GET files)
    assert_error(list_files(sim), 400, "account", "required")
    assert_error(upload(sim, account=None), 400, "account", "required")


def test_list_files_limit_defaults_to_10_newest_first(sim):
    sim.configure(accounts={"100001": 10, "100002": 5}, generation_seconds=10)  # no job ends meanwhile
    ups = [upload(sim).json() for _ in range(12)]
    opened = [
        create(sim, {"templateId": IMAGE_ONLY, "fileID": up["fileID"], "ossPath": up["ossPath"]})
        for up in ups
    ]
    assert all(r.status_code == 200 for r in opened[:10])
    for r in opened:
        r.close()
    listing = list_files(sim, account="100001").json()
    used = [up["fileID"] for up, r in zip(ups, opened, strict=True) if r.status_code == 200]
    assert len(used) == 10 and len(listing) == 10  # doc: limit default 10
    assert [f["file_id"] for f in listing] == list(reversed(used))  # newest first (GUESS)
    assert len(list_files(sim, account="100001", limit=3).json()) == 3
    assert_error(list_files(sim, account="100001", limit=0), 400, "limit")


def test_upload_errors(sim):
    assert_error(upload(sim, PNG, "image/gif"), 400, "Content-Type")
    assert_error(upload(sim, b"not an image at all", "image/png"), 400, "PNG")
    assert_error(upload(sim, PNG, "image/jpeg"), 400)
    assert_error(upload(sim, b"", "image/png"), 400)
    assert_error(upload(sim, PNG, account="nope"), 400, "account")
    sim.configure(max_upload_bytes=1000)
    assert_error(upload(sim, PNG + b"\0" * 2000), 413)
    webp = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\0" * 20
    assert upload(sim, webp, "image/jpeg").status_code == 200  # useapi.net: send webp as image/jpeg
    assert sim.counters()["uploads"] == 1


# ---- accounts & scheduler ---------------------------------------------------------------------------------


def test_accounts(sim):
    body = requests.get(f"{sim.base_url}/accounts", headers=auth(sim), timeout=5).json()
    assert set(body) == {"100001", "100002"}
    for account, item in body.items():
        assert item["account"] == account and item["maxJobs"] == 5
        assert item["supportVideo"] is True and "error" not in item
        assert {"supportMusic", "supportChat", "supportAudio", "host"} <= set(item)
        assert set(item["jwt"]) >= {"token", "user", "exp", "iat", "host", "iat_Issued", "exp_Expire"}
        assert "secured" in item["jwt"]["token"] and item["jwt"]["user"]["id"] == account  # a dummy
    one = requests.get(f"{sim.base_url}/accounts/100002", headers=auth(sim), timeout=5).json()
    assert one == body["100002"]
    assert_error(requests.get(f"{sim.base_url}/accounts/9", headers=auth(sim), timeout=5), 404, "9")


def test_scheduler_lists_executing_jobs_with_reply_fields(sim):
    resp = create(sim, {"templateId": TEXT_OPT, "replyUrl": "http://127.0.0.1:9/cb", "replyRef": "ref-7"})
    vid = json.loads(next(resp.iter_lines(decode_unicode=True))[5:])["videoId"]
    body = requests.get(f"{sim.base_url}/scheduler/available", headers=auth(sim), timeout=5).json()
    (job,) = body["executing"]
    assert job["videoId"] == vid and job["replyUrl"] == "http://127.0.0.1:9/cb" and job["replyRef"] == "ref-7"
    # doc: started ISO 8601 with milliseconds ("2024-09-25T01:55:16.128Z"), elapsed "mm:ss" ("03:57")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", job["started"]), job["started"]
    assert re.fullmatch(r"\d{2,}:[0-5]\d", job["elapsed"]), job["elapsed"]
    wait_final(sim, vid)
    body = requests.get(f"{sim.base_url}/scheduler/available", headers=auth(sim), timeout=5).json()
    assert body["executing"] == [] and all(a["available"] == a["maxJobs"] for a in body["available"])


# ---- CDN -------------------------------------------------------------------------------------------------------


def _final_file(events):
    for e in events:
        info = (e.get("message") or {}).get("attachmentInfo") or {}
        if info.get("type") == 3 and info["attachments"][0]["status"] == 3:
            return info["attachments"][0]["file"]
    raise AssertionError("no final file")


@pytest.mark.parametrize("template_id", [TEXT, "394100000000000002", "394100000000000005"])
def test_cdn_mp4_matches_what_the_api_reports(sim, template_id):
    events = run(sim, {"templateId": template_id, "prompt": "a clip"})
    f = _final_file(events)
    body = get_video(sim, events[0]["videoId"]).json()
    for url in (body["videoURL"], body["downloadURL"]):
        resp = requests.get(url, timeout=30)
        assert resp.status_code == 200 and resp.headers["Content-Type"] == "video/mp4"
        assert int(resp.headers["Content-Length"]) == len(resp.content)
        info = read_mp4_info(resp.content)
        assert (info["width"], info["height"]) == (body["width"], body["height"])
        assert (str(info["width"]), str(info["height"])) == (f["extra"]["width"], f["extra"]["height"])
        assert info["duration_s"] == pytest.approx(float(f["extra"]["duration"]))
        assert info["fps"] == int(f["extra"]["fps"])
    poster = requests.get(body["coverURL"], timeout=10)
    assert poster.content.startswith(b"\x89PNG") and poster.headers["Content-Type"] == "image/png"
    # A completed download is counted just after the server's last write, a moment after the client read it.
    wait_for(lambda: sim.counters()["downloads_completed"] >= 2, timeout=5)
    c = sim.counters()
    assert c["downloads"] == 2 and c["downloads_completed"] == 2


def test_cdn_range_requests(sim):
    events = run(sim, {"templateId": TEXT, "prompt": "ranges"})
    url = _final_file(events)["extra"]["no_watermark_url"]
    full = requests.get(url, timeout=30).content
    size = len(full)
    r = requests.get(url, headers={"Range": "bytes=1000-"}, timeout=30)
    assert r.status_code == 206 and r.content == full[1000:]
    assert r.headers["Content-Range"] == f"bytes 1000-{size - 1}/{size}"
    assert int(r.headers["Content-Length"]) == size - 1000
    r = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=30)
    assert r.status_code == 206 and r.content == full[10:20]
    r = requests.get(url, headers={"Range": "bytes=-100"}, timeout=30)
    assert r.status_code == 206 and r.content == full[-100:]
    r = requests.get(url, headers={"Range": f"bytes={size}-"}, timeout=30)
    assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{size}"
    head = requests.head(url, timeout=30)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == size
    assert head.headers["Accept-Ranges"] == "bytes" and head.headers["ETag"]
    # If-Range with a stale validator: the full body
    r = requests.get(url, headers={"Range": "bytes=10-", "If-Range": '"stale"'}, timeout=30)
    assert r.status_code == 200 and len(r.content) == size
    c = sim.counters()
    assert c["range_requests"] == 3 and c["downloads"] == 6


def test_cdn_video_bytes_padding_streams_in_bounded_chunks(sim):
    sim.configure(video_bytes=24 * 1024 * 1024 + 3)
    events = run(sim, {"templateId": TEXT, "prompt": "big"})
    url = _final_file(events)["fileUrl"]
    resp = requests.get(url, stream=True, timeout=30)
    assert int(resp.headers["Content-Length"]) == 24 * 1024 * 1024 + 3
    total, head = 0, b""
    for chunk in resp.iter_content(1 << 20):
        if len(head) < 65536:
            head += chunk[:65536]
        total += len(chunk)
    assert total == 24 * 1024 * 1024 + 3
    assert read_mp4_info(head)["width"] == 1280


def test_cdn_404s(sim):
    assert requests.get(f"{sim.origin}/cdn/video/123.mp4", timeout=5).status_code == 404
    assert requests.get(f"{sim.origin}/cdn/nothing", timeout=5).status_code == 404
    resp = create(sim, {"templateId": TEXT, "prompt": "not yet"})
    nid = json.loads(next(resp.iter_lines(decode_unicode=True))[5:])["videoId"].rsplit(":", 1)[1]
    assert requests.get(f"{sim.origin}/cdn/video/{nid}.mp4", timeout=5).status_code == 404  # still generating


# ---- callbacks --------------------------------------------------------------------------------------------


class _Receiver:
    def __init__(self, status: int = 200) -> None:
        received = self.received = []
        answer = status

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver()
    yield r
    r.close()


def test_reply_url_callback_on_completion(sim, receiver):
    events = run(
        sim, {"templateId": TEXT, "prompt": "call me", "replyUrl": receiver.url, "replyRef": "my-ref"}
    )
    vid = events[0]["videoId"]
    wait_for(lambda: receiver.received)
    (body,) = receiver.received
    assert body["replyRef"] == "my-ref" and body["videoId"] == vid and body["status"] == 2
    assert body["statusFinal"] is True and body["downloadURL"]
    expected = get_video(sim, vid).json()
    assert {k: v for k, v in body.items() if k != "replyRef"} == expected
    c = wait_for(lambda: (c := sim.counters())["callbacks_delivered"] == 1 and c)
    assert c["callbacks"] == 1


def test_reply_url_callback_on_failure_and_default_reply_url(sim, receiver):
    sim.configure(default_reply_url=receiver.url)
    run(sim, {"templateId": TEXT, "prompt": "doomed [sim:fail]"})
    wait_for(lambda: receiver.received)
    assert receiver.received[0]["status"] == 3 and receiver.received[0]["replyRef"] is None


def test_failed_callbacks_are_counted_not_fatal(sim):
    bad = _Receiver(status=500)
    try:
        run(sim, {"templateId": TEXT, "prompt": "a", "replyUrl": bad.url})
        run(sim, {"templateId": TEXT, "prompt": "b", "replyUrl": "http://127.0.0.1:1/nothing-listens"})
        c = wait_for(lambda: (c := sim.counters())["callbacks"] == 2 and c)
        assert c["callbacks_delivered"] == 0
        assert len(bad.received) == 1
    finally:
        bad.close()
    assert create(sim, {"templateId": TEXT, "prompt": "still alive"}).status_code == 200


# ---- counters & /_sim ---------------------------------------------------------------------------------------------


def test_counters_and_sim_endpoints(sim):
    run(sim, {"templateId": TEXT, "prompt": "one"})
    run(sim, {"templateId": TEXT, "prompt": "two", "account": "100002"})
    assert_error(create(sim, {"templateId": TEXT}), 400)
    c = requests.get(f"{sim.origin}/_sim/counters", timeout=5).json()
    assert c == sim.counters()
    assert c["creates"] == 2 and c["create_requests"] == 3 and c["rejected_by_status"] == {"400": 1}
    assert c["creates_by_prompt"] == {"one": 1, "two": 1}
    assert sum(c["creates_by_account"].values()) == 2 and c["creates_by_account"]["100002"] >= 1
    assert c["jobs_by_outcome"] == {"completed": 2}
    assert set(c) >= {
        "creates",
        "creates_by_account",
        "create_requests",
        "rejected_by_status",
        "polls",
        "polls_by_video",
        "downloads",
        "downloads_completed",
        "callbacks",
        "callbacks_delivered",
        "concurrent_jobs_by_account",
        "max_concurrent_by_account",
        "max_concurrent_total",
        "uploads",
        "creates_by_prompt",
        "queued_behind_gateway_errors",
        "video_lists",
    }
    # reset over HTTP
    assert requests.post(f"{sim.origin}/_sim/reset", timeout=5).json() == {"ok": True}
    c = sim.counters()
    assert c["creates"] == 0 and c["creates_by_prompt"] == {}
    # faults over HTTP
    resp = requests.post(f"{sim.origin}/_sim/faults", json=["credits"], timeout=5)
    assert resp.json() == ["credits"]
    assert requests.get(f"{sim.origin}/_sim/faults", timeout=5).json() == ["credits"]
    assert_error(create(sim, {"templateId": TEXT, "prompt": "x"}), 412)
    assert requests.post(f"{sim.origin}/_sim/faults", json=["bogus=1"], timeout=5).status_code == 400
    assert requests.post(f"{sim.origin}/_sim/faults", json=[], timeout=5).json() == []
    # runtime config over HTTP
    resp = requests.post(f"{sim.origin}/_sim/config", json={"generation_seconds": 0.2}, timeout=5)
    assert resp.json()["generation_seconds"] == 0.2 and sim.config.generation_seconds == 0.2
    assert requests.post(f"{sim.origin}/_sim/config", json={"port": 1}, timeout=5).status_code == 400
    assert (
        requests.post(f"{sim.origin}/_sim/config", json={"heartbeat_seconds": -1}, timeout=5).status_code
        == 400
    )
    assert requests.get(f"{sim.origin}/_sim/config", timeout=5).json()["token"] == sim.token


def test_reset_forgets_running_jobs(sim):
    sim.configure(generation_seconds=5)
    resp = create(sim, {"templateId": TEXT, "prompt": "forgotten"})
    lines = resp.iter_lines(decode_unicode=True)
    vid = json.loads(next(lines)[5:])["videoId"]
    sim.reset()
    assert get_video(sim, vid).status_code == 404
    assert sim.counters()["concurrent_jobs_by_account"] == {}
    rest = [line for line in lines if line]  # the stream ends cleanly
    assert all('"finished"' not in line for line in rest)


def test_python_api():
    cfg = SimulatorConfig(accounts={"7": 1}, token="t0k")
    assert all(f.description for f in SimulatorConfig.model_fields.values())
    sim = MiniMaxSimulator(cfg, generation_seconds=0.2)
    assert sim.config.generation_seconds == 0.2 and sim.config.accounts == {"7": 1}
    with pytest.raises(RuntimeError):
        _ = sim.base_url
    with sim:
        assert sim.base_url == f"{sim.origin}/v1/minimax" and sim.origin.startswith("http://127.0.0.1:")
        assert sim.token == "t0k" and repr(sim).startswith("MiniMaxSimulator(http://")
        with pytest.raises(ValueError):
            sim.set_faults(["nope"])
        sim.set_faults(["busy=1"])
        assert sim.config.faults == ["busy=1"]
    with pytest.raises(ValueError):
        SimulatorConfig(faults=["drop_after"])  # argument required
    assert [f.name for f in Fault.parse("drop_after=3, cdn_cut=10:2 ,fail")] == [
        "drop_after",
        "cdn_cut",
        "fail",
    ]
    assert Fault.parse("cdn_cut=10:2")[0].arg == (10, 2)


# ---- the documentation's own examples ----------------------------------------------------------------------------

# The Python streaming example of the documentation page, verbatim apart from the URL and the token.
SEED_PYTHON_EXAMPLE = """
import requests
import json

template_id = "1122334455667788"
prompt = "text prompt"
token = "API token"

data = {
    'templateId': template_id,
    'prompt': prompt
}

response = requests.post(
    'https://api.useapi.net/v1/minimax/videos/agent-create',
    headers={'Authorization': f'Bearer {token}'},
    data=data,
    stream=True
)

if not response.ok:
    print(f"HTTP Error {response.status_code}: {response.text}")
    exit(1)

video_id = None
for line in response.iter_lines(decode_unicode=True):
    if line and line.startswith("data:"):
        try:
            json_data = json.loads(line[5:].strip())
            print("Stream event:", json_data)

            if json_data.get("videoId") and not video_id:
                video_id = json_data["videoId"]
                print(f"Video ID: {video_id}")

            if json_data.get("status") == "finished":
                print("Generation completed!")
                break

        except json.JSONDecodeError as e:
            print(f"Failed to parse JSON: {e}")

print(f"Final video ID: {video_id}")
"""


def test_seed_python_example_runs_unchanged(sim, tmp_path):
    script = SEED_PYTHON_EXAMPLE.replace("https://api.useapi.net/v1/minimax", sim.base_url).replace(
        '"API token"', json.dumps(sim.token)
    )
    path = tmp_path / "seed_example.py"
    path.write_text(textwrap.dedent(script))
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60, check=True)
    lines = out.stdout.strip().splitlines()
    assert "Generation completed!" in lines
    assert lines[-1].startswith("Final video ID: user:1234-minimax:")
    video_id = lines[-1].split(": ", 1)[1]
    assert get_video(sim, video_id).json()["desc"] == "text prompt"
    assert sim.counters()["creates_by_prompt"] == {"text prompt": 1}


@pytest.mark.skipif(not os.path.exists("/usr/bin/curl"), reason="curl not installed")
def test_seed_curl_example_runs_unchanged(sim):
    # curl -H "Accept: text/event-stream" -H "Authorization: Bearer …" -X POST ".../videos/agent-create" \
    #      -d "templateId=1122334455667788" -d "prompt=text prompt" --no-buffer
    cmd = [
        "/usr/bin/curl",
        "-sS",
        "-H",
        "Accept: text/event-stream",
        "-H",
        f"Authorization: Bearer {sim.token}",
        "-X",
        "POST",
        f"{sim.base_url}/videos/agent-create",
        "-d",
        f"templateId={DOCS_TEMPLATE}",
        "-d",
        "prompt=text prompt",
        "--no-buffer",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    events = [json.loads(line[5:]) for line in out.stdout.splitlines() if line.startswith("data:")]
    assert events[0]["status"] == "created" and events[-1]["status"] == "finished"
    assert events[-1]["videoId"] == events[0]["videoId"]
    assert get_video(sim, events[0]["videoId"]).json()["status"] == 2
