"""GET accounts, GET accounts/{account} and GET scheduler/available.

doc (get-minimax-accounts and get-minimax-accounts-account pages, revision of March 17, 2025): a map of account
id -> ``{account, jwt: {token, user: {deviceID, id, isAnonymous, name, avatar}, exp, iat, host, searchParams,
iat_Issued, exp_Expire}, maxJobs, supportVideo, supportChat, supportAudio, supportMusic}``; 404 for an account that
is not configured. An ``error`` on a broken account (doc per api-notes; no example found), which useapi.net's own
client uses to skip the account, as it skips accounts without ``supportVideo``.

doc (get-minimax-scheduler-available page): ``{executing: [{videoId, started, elapsed, replyUrl, replyRef}],
available: [{account, maxJobs, executing, available}]}``, ``started`` ISO 8601 with milliseconds, ``elapsed``
``"mm:ss"``; ``available`` counts video jobs only.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from ..state import SimState
from .common import ApiError, json_response, state_of

__all__ = ["account_json", "elapsed_mm_ss", "get_account", "iso_ms", "list_accounts", "scheduler_available"]

_JWT_LIFETIME_S = 30 * 24 * 3600  # GUESS: any lifetime will do, the token is a dummy


def iso_ms(timestamp: float) -> str:
    """ISO 8601 UTC with milliseconds, as the documentation shows ``started`` (doc).

    >>> iso_ms(1727229316.128)
    '2024-09-25T01:55:16.128Z'
    """
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def elapsed_mm_ss(seconds: float) -> str:
    """``"mm:ss"`` as the documentation shows ``elapsed`` (doc); minutes past 99 keep counting (GUESS).

    >>> elapsed_mm_ss(237.9), elapsed_mm_ss(6000)
    ('03:57', '100:00')
    """
    whole = max(0, int(seconds))
    return f"{whole // 60:02d}:{whole % 60:02d}"


def account_json(state: SimState, account: str, now: float | None = None) -> dict[str, Any]:
    """One account as GET accounts shows it, with a dummy ``jwt`` (no secret anywhere).

    >>> from minimax_dagster.simulator.config import SimulatorConfig
    >>> state = SimState(SimulatorConfig(accounts={"7": 2}, accounts_in_error={"7": "Account on hold"}))
    >>> body = account_json(state, "7", now=0)
    >>> body["maxJobs"], body["supportVideo"], body["error"], body["jwt"]["token"]
    (2, True, 'Account on hold', 'sim…secured…jwt')
    """
    issued = state.started_at if now is None else now
    host = "hailuoai.video"
    body: dict[str, Any] = {
        "account": account,
        "jwt": {
            "token": "sim…secured…jwt",  # doc: useapi.net shows the token masked ("abc…secured…xyz")
            "user": {
                "deviceID": f"9{account}",
                "id": account,
                "isAnonymous": False,
                "name": f"Simulated account {account}",
                "avatar": "",
            },
            "exp": round(issued + _JWT_LIFETIME_S, 3),
            "iat": round(issued, 3),
            "host": host,  # doc: the examples carry host inside jwt
            "searchParams": f"device_platform=web&app_id=3001&device_id=9{account}&os_name=Simulator",
            "iat_Issued": iso_ms(issued),
            "exp_Expire": iso_ms(issued + _JWT_LIFETIME_S),
        },
        "maxJobs": state.accounts[account],
        "supportVideo": state.supports_video(account),
        "supportChat": True,  # doc: the key; the value is a GUESS
        "supportAudio": True,  # doc: the key; the value is a GUESS
        "supportMusic": False,  # doc: the key; the value is a GUESS
        # 2nd: api-notes and useapi.net's MCP tool description list host beside maxJobs; the pages put it in jwt.
        "host": host,
    }
    error = state.account_error(account)
    if error is not None:
        body["error"] = error  # doc (api-notes): present only on a broken account; its text is configured
    return body


async def list_accounts(request: web.Request) -> web.Response:
    """GET accounts."""
    state = state_of(request)
    return json_response({a: account_json(state, a) for a in state.accounts})


async def get_account(request: web.Request) -> web.Response:
    """GET accounts/{account}."""
    state = state_of(request)
    account = request.match_info["account"]
    if account not in state.accounts:
        # doc: 404 "Configuration not found. To create configuration use POST /accounts/account."; the JSON
        # body around that text is a GUESS.
        raise ApiError(
            404, f"Configuration not found for account {account}. To create configuration use POST /accounts."
        )
    return json_response(account_json(state, account))


async def scheduler_available(request: web.Request) -> web.Response:
    """GET scheduler/available: the jobs useapi's side runs, and each account's free capacity."""
    state = state_of(request)
    now = time.time()
    executing = []
    for j in state.executing():
        item = {
            "videoId": j.video_id,
            "started": iso_ms(j.created_at),
            "elapsed": elapsed_mm_ss(now - j.created_at),
        }
        # GUESS: a job without replyUrl/replyRef omits the key (as JSON.stringify drops undefined values).
        item.update(
            {k: v for k, v in (("replyUrl", j.reply_url), ("replyRef", j.reply_ref)) if v is not None}
        )
        executing.append(item)
    available = []
    for account, max_jobs in state.accounts.items():  # GUESS: every configured account is listed
        running = len(state.running(account))
        available.append(
            {
                "account": account,
                "maxJobs": max_jobs,
                "executing": running,
                "available": max(0, max_jobs - running),
            }
        )
    return json_response({"executing": executing, "available": available})
