"""What every endpoint module shares: JSON answers, :class:`ApiError`, the app keys and the ``account`` rules."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any

import aiohttp
from aiohttp import web

from ..cdn import Cdn
from ..state import SimState

__all__ = [
    "API_PREFIX",
    "CDN_KEY",
    "SESSION_KEY",
    "STATE_KEY",
    "TASKS_KEY",
    "TEMPLATE_NOT_FOUND",
    "ApiError",
    "json_response",
    "origin_of",
    "query_limit",
    "spawn",
    "state_of",
    "target_account",
]

API_PREFIX = "/v1/minimax"
#: doc (seed page): the 404 of an unknown template (agent-create and the template detail).
TEMPLATE_NOT_FOUND = "The video or template you are trying to use does not exist or has been deleted."

STATE_KEY = web.AppKey("state", SimState)
CDN_KEY = web.AppKey("cdn", Cdn)
SESSION_KEY = web.AppKey("session", aiohttp.ClientSession)
TASKS_KEY: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("tasks", set)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer, UTF-8 kept as is.

    >>> json_response({"error": "café"}, status=400).text
    '{"error": "café"}'
    """
    return web.json_response(
        body, status=status, headers=headers, dumps=lambda o: json.dumps(o, ensure_ascii=False)
    )


class ApiError(Exception):
    """An error answer: ``{"error": message, "code": status}``, or ``{"error": message}`` with ``code=False``.

    doc: useapi.net's pages show ``{"error", "code"}`` bodies on every endpoint except agent-create, whose
    400/401/404 bodies carry only ``error`` (seed page).

    >>> ApiError(400, "limit must be an integer").response().text
    '{"error": "limit must be an integer", "code": 400}'
    >>> ApiError(400, "templateId is required", code=False).response().text
    '{"error": "templateId is required"}'
    """

    def __init__(
        self, status: int, message: str, *, code: bool = True, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.code:
            body["code"] = self.status
        return body

    def response(self) -> web.Response:
        return json_response(self.body(), status=self.status, headers=self.headers)


def state_of(request: web.Request) -> SimState:
    return request.app[STATE_KEY]


def origin_of(request: web.Request) -> str:
    """``scheme://host:port`` the request came to (the CDN URLs are built on it)."""
    return f"{request.scheme}://{request.host}"


def spawn(app: web.Application, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
    """Run ``coro`` as a task the app cancels when it stops."""
    task = asyncio.get_running_loop().create_task(coro)
    tasks: set = app[TASKS_KEY]
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task


def target_account(state: SimState, value: str | None) -> str:
    """The account a query names, following the documented rule for POST/GET files, GET videos/ and GET
    videos/agent-templates (doc): "account is optional when only one account configured. However, if you have
    multiple accounts configured, this parameter becomes required."

    The wording of both 400s is a GUESS (the pages give none).

    >>> from minimax_dagster.simulator.config import SimulatorConfig
    >>> target_account(SimState(SimulatorConfig(accounts={"7": 1})), None)
    '7'
    >>> target_account(SimState(SimulatorConfig(accounts={"7": 1, "8": 1})), None)
    Traceback (most recent call last):
    ...
    minimax_dagster.simulator.endpoints.common.ApiError: account is required when several accounts are \
configured (configured: 7, 8); pass ?account=<one of them>
    """
    if value:
        if value not in state.accounts:
            raise ApiError(400, f"account {value} is not configured (see GET accounts)")
        return value
    if len(state.accounts) > 1:
        raise ApiError(
            400,
            "account is required when several accounts are configured "
            f"(configured: {', '.join(state.accounts)}); pass ?account=<one of them>",
        )
    return next(iter(state.accounts))


def query_limit(request: web.Request, default: int, maximum: int = 100) -> int:
    """The ``limit`` query parameter: ``default`` when absent (doc), 1..``maximum`` (the bound is a GUESS)."""
    text = request.query.get("limit", str(default))
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise ApiError(400, f"limit must be an integer between 1 and {maximum}, got {text!r}")
    return int(text)
