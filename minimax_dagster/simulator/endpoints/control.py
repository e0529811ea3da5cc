"""The simulator-only endpoints under ``/_sim`` (no auth; never part of the real API) and what they change.

``GET /_sim/counters``, ``POST /_sim/reset``, ``GET|POST /_sim/faults`` (a JSON list of fault specs) and
``GET|POST /_sim/config`` (a JSON object of runtime fields, e.g. ``{"generation_seconds": 2}``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..config import RUNTIME_FIELDS, SimulatorConfig
from .common import CDN_KEY, STATE_KEY, ApiError, json_response, state_of

__all__ = [
    "configure",
    "reset_state",
    "sim_counters",
    "sim_get_config",
    "sim_get_faults",
    "sim_reset",
    "sim_set_config",
    "sim_set_faults",
]


async def sim_counters(request: web.Request) -> web.Response:
    """GET /_sim/counters."""
    return json_response(state_of(request).counters.snapshot())


async def sim_reset(request: web.Request) -> web.Response:
    """POST /_sim/reset."""
    reset_state(request.app)
    return json_response({"ok": True})


async def sim_get_faults(request: web.Request) -> web.Response:
    """GET /_sim/faults."""
    return json_response(state_of(request).config.faults)


async def sim_set_faults(request: web.Request) -> web.Response:
    """POST /_sim/faults: replace the server-wide faults."""
    try:
        faults = await request.json()
        if not isinstance(faults, list):
            raise ValueError("the body must be a JSON list of fault specs")
        state_of(request).set_faults(faults)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return json_response(state_of(request).config.faults)


async def sim_get_config(request: web.Request) -> web.Response:
    """GET /_sim/config."""
    return json_response(state_of(request).snapshot_config())


async def sim_set_config(request: web.Request) -> web.Response:
    """POST /_sim/config: change runtime fields."""
    try:
        changes = await request.json()
        if not isinstance(changes, dict):
            raise ValueError("the body must be a JSON object")
        configure(request.app, changes)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return json_response(state_of(request).snapshot_config())


def configure(app: web.Application, changes: dict[str, Any]) -> None:
    """Change runtime fields of the config (raises ValueError on a fixed field or an invalid value)."""
    state = app[STATE_KEY]
    fixed = set(changes) - RUNTIME_FIELDS
    if fixed:
        raise ValueError(
            f"cannot change {sorted(fixed)} while running (changeable: {sorted(RUNTIME_FIELDS)})"
        )
    merged = {**state.config.model_dump(), **changes}
    try:
        new = SimulatorConfig.model_validate(merged)
    except Exception as exc:  # pydantic.ValidationError is a ValueError
        raise ValueError(str(exc)) from None
    faults_changed = new.faults != state.config.faults
    state.config = new
    if faults_changed:
        state.set_faults(new.faults)


def reset_state(app: web.Application) -> None:
    """Forget every job (running ones cancelled), fault count and counter; keep the uploaded files."""
    app[STATE_KEY].forget_everything()
    app[CDN_KEY].videos.clear()
