"""The simulator's accounts as documented: GET videos/ (an account's list), accounts without video support or in
error, and the `account` parameter that several accounts make required. Spoken to with plain `requests`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from minimax_dagster.simulator import MiniMaxSimulator, SimulatorConfig

from .test_simulator import (
    IMAGE_ONLY,
    TEXT,
    TEXT_OPT,
    assert_error,
    auth,
    create,
    get_video,
    run,
    upload,
    wait_final,
)

GEN = 0.4


@pytest.fixture
def sim() -> Iterator[MiniMaxSimulator]:
    with MiniMaxSimulator(
        accounts={"100001": 40, "100002": 5},
        generation_seconds=GEN,
        heartbeat_seconds=0.1,
        moderated_visible_seconds=0.3,
    ) as s:
        yield s


def videos(sim: MiniMaxSimulator, **params) -> requests.Response:
    return requests.get(f"{sim.base_url}/videos/", headers=auth(sim), params=params, timeout=10)


def started(sim: MiniMaxSimulator, prompt: str, account: str = "100001", **headers: str) -> str:
    """Create a job and leave its stream at once; the videoId."""
    resp = create(sim, {"templateId": TEXT, "prompt": prompt, "account": account}, headers=headers)
    assert resp.status_code == 200, resp.text
    video_id = json.loads(next(resp.iter_lines(decode_unicode=True))[5:])["videoId"]
    resp.close()
    return video_id


# ---- GET videos/ --------------------------------------------------------------------------------------------


def test_list_videos_of_an_account_newest_first_running_ones_included(sim):
    first = run(sim, {"templateId": TEXT, "prompt": "first", "account": "100001"})[0]["videoId"]
    other = run(sim, {"templateId": TEXT, "prompt": "elsewhere", "account": "100002"})[0]["videoId"]
    sim.configure(generation_seconds=5)
    running = started(sim, "running")
    listing = videos(sim, account="100001").json()
    assert isinstance(listing, list)  # doc: the page's example answer is a JSON array
    assert [v["videoId"] for v in listing] == [running, first]  # newest first (GUESS); one account only
    assert [v["desc"] for v in listing] == ["running", "first"]  # doc: desc is the prompt
    assert listing[0]["statusFinal"] is False and listing[0]["status"] in (0, 11, 1, 12)
    assert (
        listing[1]["status"] == 2 and listing[1]["statusLabel"] == "completed" and listing[1]["downloadURL"]
    )
    # Each item is the GET videos/{videoId} body (doc: the items carry its fields).
    assert listing[1] == get_video(sim, first).json()
    assert set(listing[0]) == set(get_video(sim, running).json())
    assert [v["videoId"] for v in videos(sim, account="100002").json()] == [other]
    assert sim.counters()["video_lists"] == 2


def test_list_videos_limit_defaults_to_30_and_pages_with_last_video_id(sim):
    ids = [started(sim, f"p{i}", **{"X-Sim-Fault": "drop_after=1"}) for i in range(33)]
    newest_first = list(reversed(ids))
    page = videos(sim, account="100001").json()
    assert [v["videoId"] for v in page] == newest_first[:30]  # doc: limit default 30
    rest = videos(sim, account="100001", lastVideoId=page[-1]["id"]).json()  # the item's id ...
    assert [v["videoId"] for v in rest] == newest_first[30:]
    same = videos(sim, account="100001", lastVideoId=page[-1]["videoId"]).json()  # ... or its videoId (GUESS)
    assert [v["videoId"] for v in same] == [v["videoId"] for v in rest]  # (their percent moves meanwhile)
    small = videos(sim, account="100001", limit=4, lastVideoId=newest_first[1]).json()
    assert [v["videoId"] for v in small] == newest_first[2:6]
    assert videos(sim, account="100001", lastVideoId=newest_first[-1]).json() == []
    assert_error(videos(sim, account="100001", limit=0), 400, "limit")
    assert_error(videos(sim, account="100001", lastVideoId="nope"), 400, "lastVideoId")


def test_list_videos_needs_the_account_when_several_are_configured(sim):
    assert_error(videos(sim), 400, "account", "required")  # doc; the wording is a GUESS
    assert_error(videos(sim, account="9"), 400, "account", "9")
    with MiniMaxSimulator(accounts={"7": 1}, generation_seconds=GEN) as one:
        vid = run(one, {"templateId": TEXT, "prompt": "only"})[0]["videoId"]
        resp = requests.get(f"{one.base_url}/videos", headers=auth(one), timeout=10)  # without the slash too
        assert [v["videoId"] for v in resp.json()] == [vid]


def test_a_moderated_video_leaves_the_list_when_it_is_removed(sim):
    vid = started(sim, "flagged [sim:moderate=7]")
    wait_final(sim, vid)
    assert [v["status"] for v in videos(sim, account="100001").json()] == [7]
    time.sleep(0.4)  # moderated_visible_seconds = 0.3
    assert get_video(sim, vid).status_code == 404  # doc
    assert videos(sim, account="100001").json() == []  # GUESS: gone from the list as well


# ---- accounts without video support, accounts in error ----------------------------------------------------


@pytest.fixture
def mixed() -> Iterator[MiniMaxSimulator]:
    with MiniMaxSimulator(
        accounts={"100001": 5, "100002": 5, "100003": 5},
        accounts_without_video=["100002"],
        accounts_in_error={"100003": "Account on hold until tomorrow"},
        generation_seconds=GEN,
        heartbeat_seconds=0.1,
    ) as s:
        yield s


def test_get_accounts_shows_video_support_and_errors(mixed):
    body = requests.get(f"{mixed.base_url}/accounts", headers=auth(mixed), timeout=5).json()
    assert {a: v["supportVideo"] for a, v in body.items()} == {
        "100001": True,
        "100002": False,
        "100003": True,
    }
    assert {a: v.get("error") for a, v in body.items()} == {
        "100001": None,
        "100002": None,
        "100003": "Account on hold until tomorrow",
    }
    one = requests.get(f"{mixed.base_url}/accounts/100003", headers=auth(mixed), timeout=5).json()
    assert one == body["100003"]


def test_creates_without_account_only_go_to_video_accounts_without_error(mixed):
    for i in range(8):
        events = run(mixed, {"templateId": TEXT_OPT, "prompt": f"p{i}"})
        assert "-minimax:100001-video:" in events[0]["videoId"]
    assert mixed.counters()["creates_by_account"] == {"100001": 8}


def test_creates_naming_an_unusable_account_are_refused(mixed):
    resp = create(mixed, {"templateId": TEXT, "prompt": "music?", "account": "100002"})
    assert_error(resp, 400, "100002", "supportVideo")  # GUESS
    resp = create(mixed, {"templateId": TEXT, "prompt": "held", "account": "100003"})
    assert_error(resp, 596, "100003", "Account on hold until tomorrow")  # GUESS
    # A file owned by an account without video support cannot make a video either.
    up = upload(mixed, account="100002").json()
    resp = create(mixed, {"templateId": IMAGE_ONLY, "fileID": up["fileID"], "ossPath": up["ossPath"]})
    assert_error(resp, 400, "supportVideo")
    c = mixed.counters()
    assert c["creates"] == 0 and c["rejected_by_status"] == {"400": 2, "596": 1}


def test_no_account_able_to_make_videos_is_a_clear_400(mixed):
    mixed.configure(accounts_in_error={"100001": "Token expired", "100003": "Account on hold"})
    resp = create(mixed, {"templateId": TEXT, "prompt": "nowhere"})
    assert_error(resp, 400, "no configured account can generate videos")
    mixed.configure(accounts_in_error={})  # back in service while running
    assert run(mixed, {"templateId": TEXT, "prompt": "again"})[-1]["status"] == "finished"


def test_account_flags_must_name_configured_accounts():
    with pytest.raises(ValueError, match=r"accounts_without_video.*'9'"):
        SimulatorConfig(accounts={"1": 1}, accounts_without_video=["9"])
    with pytest.raises(ValueError, match=r"accounts_in_error.*'9'"):
        SimulatorConfig(accounts={"1": 1}, accounts_in_error={"9": "x"})
    with MiniMaxSimulator(accounts={"1": 1}) as sim:
        with pytest.raises(ValueError, match="accounts_in_error"):
            sim.configure(accounts_in_error={"2": "x"})
        resp = requests.post(f"{sim.origin}/_sim/config", json={"accounts_without_video": ["3"]}, timeout=5)
        assert resp.status_code == 400 and "accounts_without_video" in resp.json()["error"]
