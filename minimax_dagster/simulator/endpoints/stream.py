"""The event stream of one job: its event log replayed as ``data: <json>`` lines, with the stream faults.

doc (seed page): ``Content-Type: text/event-stream``, ``Cache-Control: no-cache``, ``Connection: keep-alive``;
events are ``data:<JSON>`` lines; heartbeats come about every 10 s (here every ``heartbeat_seconds``). The job
runs on its own task, so a client that leaves (or is cut off by ``drop_after``/``stall_after``) does not stop it.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from ..state import Job, SimState

__all__ = ["stream_job"]


def _sse(event: dict[str, Any]) -> bytes:
    """One event as the wire carries it.

    >>> _sse({"status": "heartbeat", "timestamp": 1})
    b'data: {"status":"heartbeat","timestamp":1}\\n\\n'
    """
    return f"data: {json.dumps(event, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


async def stream_job(request: web.Request, state: SimState, job: Job) -> web.StreamResponse:
    """Answer 200 with the job's event stream; returns when the stream ends or the client leaves."""
    resp = web.StreamResponse(
        status=200,
        headers={"Cache-Control": "no-cache", "Connection": "keep-alive", "X-Accel-Buffering": "no"},
    )
    resp.content_type = "text/event-stream"
    try:
        await resp.prepare(request)
        await _stream_events(request, state, job, resp)
    except ConnectionError:
        # The client went away (or closed its side early); the job carries on regardless.
        pass
    return resp


async def _stream_events(request: web.Request, state: SimState, job: Job, resp: web.StreamResponse) -> None:
    """Replay the job's event log to ``resp`` as it grows, applying the stream faults."""
    faults = job.faults
    drop_after = faults.get("drop_after")
    stall_after = faults.get("stall_after")
    malformed_at = faults.get("malformed_at")
    oversized_after = faults.get("oversized_after")
    no_finished = "no_finished" in faults
    loop = asyncio.get_running_loop()
    heartbeat = state.config.heartbeat_seconds
    next_beat = loop.time() + heartbeat
    sent = 0
    if drop_after == 0:
        return _drop(request)
    if stall_after == 0:
        return await _stall(request, state)
    if oversized_after == 0:
        return await _oversized(request, resp)
    while not job.removed and not state.stopping:
        if sent < len(job.events):
            event = job.events[sent]
            sent += 1
            payload = _sse(event)
            if sent == malformed_at:
                payload = payload[: max(8, len(payload) // 2)].rstrip(b"\n") + b"\n\n"  # cut JSON mid-way
            await resp.write(payload)
            if sent == drop_after:
                return _drop(request)
            if sent == stall_after:
                return await _stall(request, state)
            if sent == oversized_after:
                return await _oversized(request, resp)
            if event.get("status") == "finished":
                break
            if no_finished and event.get("status") == "progress" and event.get("type") == 3:
                break
            continue
        if job.is_final:
            break
        now = loop.time()
        if now >= next_beat:
            if job.generating and job.status != 0:
                await resp.write(_sse({"status": "heartbeat", "timestamp": int(time.time() * 1000)}))
            next_beat = max(next_beat + heartbeat, now)
            continue
        await job.wait_change(next_beat - now)
    await resp.write_eof()


def _drop(request: web.Request) -> None:
    """drop_after fault: close the connection without ending the chunked body."""
    if request.transport is not None:
        request.transport.close()


async def _oversized(request: web.Request, resp: web.StreamResponse) -> None:
    """oversized_after fault: a 2 MiB line with no end (a broken proxy), then the connection is closed."""
    await resp.write(b"data: ")
    block = b"x" * 65536
    for _ in range(32):
        await resp.write(block)
    _drop(request)


async def _stall(request: web.Request, state: SimState) -> None:
    """stall_after fault: keep the socket open and silent until the client leaves or the server stops."""
    deadline = time.monotonic() + 3600
    while not state.stopping and time.monotonic() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            break
        await asyncio.sleep(0.1)
    _drop(request)
