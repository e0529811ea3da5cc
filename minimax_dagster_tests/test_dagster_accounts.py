"""Accounts as documented, through a Dagster materialization (issue 14): with several accounts configured,
POST files and GET videos/agent-templates must name one (the simulator answers 400 otherwise, as the pages say),
and capacity comes only from accounts with ``supportVideo`` and without ``error`` (as useapi's own client does),
the others skipped and said so in the log and the metadata.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from minimax_dagster.simulator import MiniMaxSimulator
from minimax_dagster.simulator.media import render_poster_png
from minimax_dagster_tests.conftest import new_bucket
from minimax_dagster_tests.dagster_support import materialization_metadata
from minimax_dagster_tests.fault_support import ApiProxy, Env

pytestmark = pytest.mark.usefixtures("module_secrets")

DIVING = "392747428568649728"  # image required, no text (MiniMax's own table, 2nd)


@pytest.fixture(scope="module")
def sim() -> Iterator[MiniMaxSimulator]:
    """Two video accounts: every account-scoped call must name one."""
    with MiniMaxSimulator(
        generation_seconds=0.3, heartbeat_seconds=0.1, accounts={"100001": 2, "100002": 2}
    ) as s:
        yield s


def accounts_sent(proxy: ApiProxy, method: str, path_end: str) -> list[str | None]:
    """The ``account`` query parameter of each such request (None when it was not sent)."""
    out: list[str | None] = []
    for sent_method, path_qs, _ in proxy.requests:
        parts = urlsplit(path_qs)
        if sent_method == method and parts.path.endswith(path_end):
            out.append((parse_qs(parts.query).get("account") or [None])[0])
    return out


def test_with_two_accounts_uploads_and_template_look_ups_name_the_account(env: Env) -> None:
    images = new_bucket(env.s3, "images")
    env.s3.put_object(Bucket=images, Key="faces/ada.png", Body=render_poster_png(64, 64, "Ada"))
    rows = [
        {"id": "diver", "template_id": DIVING, "image": f"s3://{images}/faces/ada.png"},
        {"id": "robot", "prompt": "A tractor turns into a robot"},
    ]
    with ApiProxy(env.sim.origin) as proxy:
        result = env.run(rows, overrides={"base_url": proxy.base_url})
    assert result.success, env.failure(result)
    entries = env.entries()
    assert entries["diver"].status == "generated" and entries["robot"].status == "generated"
    uploads = accounts_sent(proxy, "POST", "/files")
    assert uploads == [entries["diver"].account], "one upload, to the account that then created the video"
    looked_up = accounts_sent(proxy, "GET", "/videos/agent-templates")
    assert len(looked_up) == 2 and all(a in ("100001", "100002") for a in looked_up), looked_up
    assert not any("cannot look up template" in m for m in env.logs(result))
    env.assert_clean()


def test_a_template_look_up_that_fails_is_a_warning_that_says_what_is_not_checked(env: Env) -> None:
    with ApiProxy(env.sim.origin, fail={"/videos/agent-templates": 500}) as proxy:
        result = env.run(
            [{"id": "robot", "prompt": "A bus turns into a robot"}], overrides={"base_url": proxy.base_url}
        )
    assert result.success, env.failure(result)
    [warning] = [m for m in env.logs(result) if "cannot look up template" in m]
    assert "on account 1000" in warning and "HTTP 500" in warning
    assert (
        "1 row(s) are NOT checked for whether the template exists, takes a text prompt or needs an image"
        in (warning)
    )


def test_capacity_comes_only_from_video_accounts_without_error(
    env: Env, s3_endpoint: str, module_instance
) -> None:
    with MiniMaxSimulator(
        generation_seconds=0.3,
        heartbeat_seconds=0.1,
        accounts={"100001": 2, "100002": 5, "100003": 5},
        accounts_without_video=["100002"],
        accounts_in_error={"100003": "Account on hold"},
        token=env.sim.token,
    ) as mixed:
        world = Env(mixed, s3_endpoint, env.s3, env.bucket, module_instance)
        rows = [{"id": f"crane-{i}", "prompt": f"A paper crane number {i}"} for i in range(4)]
        # No accounts configured on the resource: the run discovers them with GET accounts.
        result = world.run(rows)
        assert result.success, world.failure(result)
        entries = world.entries()
        assert {entries[r["id"]].account for r in rows} == {"100001"}
        assert mixed.counters()["creates_by_account"] == {"100001": 4}
        assert mixed.counters()["max_concurrent_by_account"]["100001"] <= 2
    [line] = [m for m in world.logs(result) if m.startswith("accounts: ")]
    assert "capacity from GET accounts: 100001 x 2" in line
    assert "100002 (no video support" in line and "100003 (in error: Account on hold)" in line
    metadata = materialization_metadata(result)
    assert set(metadata["accounts_skipped"]) == {"100002", "100003"}
    assert "in error: Account on hold" in metadata["accounts_skipped"]["100003"]
    assert metadata["accounts"] == line.removeprefix("accounts: ")
