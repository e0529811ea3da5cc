"""MiniMaxResource.capacity_by_account against a scripted GET accounts over a real socket: only accounts that make
videos and are not in error get capacity (as useapi's own client), and the others are reported with the reason."""

from __future__ import annotations

import logging

import pytest

from minimax_dagster import MiniMaxClient
from minimax_dagster.api.models import CapacityByAccount
from minimax_dagster.resources.minimax import AccountConfig, MiniMaxResource
from minimax_dagster_tests.scripted_server import Reply, ScriptedServer

TOKEN = "tok-SECRET-capacity"


def documented(account: str, **fields) -> dict:
    """An account as the get-minimax-accounts page shows it."""
    return {
        "account": account,
        "jwt": {
            "token": "abc…secured…xyz",
            "user": {"deviceID": "123456789", "id": account, "isAnonymous": True, "name": "n", "avatar": "a"},
            "exp": 1734858598.864,
            "iat": 1732266598.864,
            "host": "hailuoai.video",
        },
        "maxJobs": 3,
        "supportVideo": True,
        "supportMusic": False,
        "supportChat": False,
        "supportAudio": False,
        "host": "hailuoai.video",
        **fields,
    }


ACCOUNTS = {
    "111": documented("111", maxJobs=4),
    "222": documented("222", supportVideo=False, supportMusic=True, maxJobs=1),
    "333": documented("333", error="Account token expired, please update"),
    "444": {"account": "444", "maxJobs": 2},  # no supportVideo at all
}


@pytest.fixture
def server():
    with ScriptedServer(accounts=ACCOUNTS) as srv:
        yield srv


def resource_for(server: ScriptedServer, **kw) -> MiniMaxResource:
    return MiniMaxResource(api_token=TOKEN, base_url=server.base_url, max_retries=0, **kw)


def test_discovery_keeps_only_video_accounts_without_error_and_says_why_others_were_skipped(server, caplog):
    resource = resource_for(server)
    with (
        caplog.at_level(logging.WARNING, logger="minimax_dagster.resources.minimax"),
        resource.get_client() as client,
    ):
        capacity = resource.capacity_by_account(client)
    assert isinstance(capacity, dict) and isinstance(capacity, CapacityByAccount)
    assert capacity == {"111": 4} and capacity.source == "GET accounts" and capacity.problem is None
    assert capacity.skipped == {
        "222": "no video support (supportVideo is false)",
        "333": "in error: Account token expired, please update",
        "444": "no video support (supportVideo is missing)",
    }
    assert "222" in caplog.text and "Account token expired" in caplog.text
    assert "abc…secured…xyz" not in caplog.text and TOKEN not in caplog.text
    assert capacity.describe().startswith(
        "capacity from GET accounts: 111 x 4; skipped 222 (no video support"
    )


def test_configured_accounts_are_used_as_they_are_without_asking(server):
    resource = resource_for(server, accounts=[AccountConfig(account="222", max_jobs=2)])
    with resource.get_client() as client:
        capacity = resource.capacity_by_account(client)
    assert capacity == {"222": 2} and capacity.source == "configured" and capacity.skipped == {}
    assert server.count("GET", "accounts") == 0


def test_a_failed_listing_gives_no_capacity_and_says_why(server, caplog):
    server.on("GET", "accounts", Reply(500, {"error": "internal", "code": 500}))
    resource = resource_for(server)
    with (
        caplog.at_level(logging.WARNING, logger="minimax_dagster.resources.minimax"),
        resource.get_client() as client,
    ):
        capacity = resource.capacity_by_account(client)
    assert capacity == {} and capacity.source == "unknown" and "GET accounts failed" in capacity.problem
    assert "cannot list the accounts" in caplog.text


def test_the_client_sends_creates_naming_no_account_only_to_video_accounts(server):
    with MiniMaxClient(TOKEN, base_url=server.base_url) as client:
        assert client.video_account_names() == ["111"]


def test_the_account_models_parse_the_documented_answer_and_hide_the_jwt_token(server):
    with MiniMaxClient(TOKEN, base_url=server.base_url) as client:
        accounts = client.get_accounts()
    first = accounts["111"]
    assert (first.max_jobs, first.support_video, first.host, first.jwt.user.device_id) == (
        4,
        True,
        "hailuoai.video",
        "123456789",
    )
    assert first.jwt.token == "abc…secured…xyz" and "secured" not in repr(first)
