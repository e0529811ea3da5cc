"""The aiohttp application: the routes of the /v1/minimax API, the CDN and /_sim, and the auth middleware.

aiohttp (asyncio) is used because agent-create answers with a long-lived event stream: one event-loop thread
serves many concurrent streams, ``StreamResponse`` puts every event on the wire as soon as it is written
(chunked HTTP/1.1, no buffering), and the same library sends the replyUrl callbacks. The handlers live in
:mod:`.endpoints`, one module per endpoint group; docs/SIMULATOR.md describes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import Executor

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from .cdn import Cdn
from .endpoints import accounts, control, create, files, templates, videos
from .endpoints.common import (
    API_PREFIX,
    CDN_KEY,
    SESSION_KEY,
    STATE_KEY,
    TASKS_KEY,
    ApiError,
    json_response,
)
from .state import SimState

__all__ = ["API_PREFIX", "build_app"]

_CREATE_PATH = f"{API_PREFIX}/videos/agent-create"


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer auth on /v1/minimax/*, JSON error bodies everywhere but the CDN."""
    path = request.path
    if path.startswith(API_PREFIX + "/") or path == API_PREFIX:
        state = request.app[STATE_KEY]
        is_create = request.method == "POST" and path.rstrip("/") == _CREATE_PATH
        if is_create:
            state.counters.bump("create_requests")
        if request.headers.get("Authorization", "") != f"Bearer {state.config.token}":
            if is_create:
                state.counters.bump("rejected_by_status", "401")
                return json_response({"error": "Unauthorized"}, status=401)  # doc (seed page): no code
            return json_response({"error": "Unauthorized", "code": 401}, status=401)  # doc: other pages
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPNotFound:
        if path.startswith("/cdn/"):
            raise
        return json_response({"error": "Not found.", "code": 404}, status=404)  # GUESS for unknown routes
    except web.HTTPMethodNotAllowed as exc:
        return json_response(
            {"error": f"Method {request.method} not allowed", "code": 405},
            status=405,
            headers={"Allow": exc.headers.get("Allow", "")},
        )


def build_app(state: SimState, executor: Executor) -> web.Application:
    """The application serving ``state``; ``executor`` renders media off the event loop.

    >>> from concurrent.futures import ThreadPoolExecutor
    >>> from minimax_dagster.simulator.config import SimulatorConfig
    >>> app = build_app(SimState(SimulatorConfig()), ThreadPoolExecutor(1))
    >>> sorted({r.resource.canonical for r in app.router.routes()})[:3]
    ['/_sim/config', '/_sim/counters', '/_sim/faults']
    """
    # client_max_size bounds request.post()/read(); uploads are read incrementally against max_upload_bytes.
    app = web.Application(middlewares=[api_middleware], client_max_size=4 * 1024 * 1024)
    app[STATE_KEY] = state
    app[CDN_KEY] = Cdn(state, executor)
    app[TASKS_KEY] = set()

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        app[SESSION_KEY] = aiohttp.ClientSession()
        yield
        state.stopping = True
        for job in list(state.jobs.values()):
            job.notify()
        running = app[TASKS_KEY]
        tasks = list(running)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await app[SESSION_KEY].close()

    app.cleanup_ctx.append(session_ctx)

    api = API_PREFIX
    r = app.router
    for path in (f"{api}/videos/agent-create", f"{api}/videos/agent-create/"):
        r.add_post(path, create.create_video)
    for path in (f"{api}/videos/agent-templates", f"{api}/videos/agent-templates/"):
        r.add_get(path, templates.list_templates)
    for path in (f"{api}/videos", f"{api}/videos/"):
        r.add_get(path, videos.list_videos)
    r.add_get(f"{api}/videos/{{video_id}}", videos.get_video)
    for path in (f"{api}/files", f"{api}/files/"):
        r.add_post(path, files.upload_file)
        r.add_get(path, files.list_files)
    r.add_get(f"{api}/accounts", accounts.list_accounts)
    r.add_get(f"{api}/accounts/{{account}}", accounts.get_account)
    r.add_get(f"{api}/scheduler/available", accounts.scheduler_available)
    r.add_get("/_sim/counters", control.sim_counters)
    r.add_post("/_sim/reset", control.sim_reset)
    r.add_get("/_sim/faults", control.sim_get_faults)
    r.add_post("/_sim/faults", control.sim_set_faults)
    r.add_get("/_sim/config", control.sim_get_config)
    r.add_post("/_sim/config", control.sim_set_config)
    cdn = app[CDN_KEY]
    r.add_route("GET", "/cdn/{path:.+}", cdn.handle)  # HEAD is added by add_get only; see below
    r.add_route("HEAD", "/cdn/{path:.+}", cdn.handle)
    return app
