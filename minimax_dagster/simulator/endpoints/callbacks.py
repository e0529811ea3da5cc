"""The replyUrl callback: once a job is final, POST its GET videos/{videoId} JSON plus ``replyRef``, once.

doc: useapi.net calls replyUrl "once MiniMax video completed or failed" and returns replyRef with it. The body
(the status JSON plus replyRef), no signature and no retries are GUESSES (2nd-hand sources); failures are only
counted.
"""

from __future__ import annotations

import logging

import aiohttp
from aiohttp import web

from ..jobs import video_json
from ..state import Job
from .common import SESSION_KEY, STATE_KEY

log = logging.getLogger(__name__)

__all__ = ["send_callback"]


async def send_callback(app: web.Application, job: Job) -> None:
    """POST the callback of ``job`` to its replyUrl; count the attempt and, on a 2xx, the delivery."""
    state = app[STATE_KEY]
    if job.reply_url is None:
        return
    body = video_json(job)
    body["replyRef"] = job.reply_ref
    state.counters.bump("callbacks")
    try:
        timeout = aiohttp.ClientTimeout(total=state.config.callback_timeout)
        async with app[SESSION_KEY].post(job.reply_url, json=body, timeout=timeout) as reply:
            await reply.read()
            if 200 <= reply.status < 300:
                state.counters.bump("callbacks_delivered")
            else:
                log.info("callback to %s answered %s", job.reply_url, reply.status)
    except Exception as exc:  # a failing callback must never hurt the simulator
        log.info("callback to %s failed: %r", job.reply_url, exc)
