"""GET videos/{videoId} (one job's status) and GET videos/ (the account's list of videos).

doc (get-minimax-videos-videoId page): the status JSON; 404 ``{"error": "Not found.", "code": 404}`` "most often
means that the video was moderated and removed after it was generated".

doc (get-minimax-videos page): ``GET videos/?account=&limit=&lastVideoId=`` "Retrieve the list of videos you have
generated" on one account, running ones included; ``account`` required when several accounts are configured;
``limit`` default 30; ``lastVideoId`` "the video id from where to start"; the example answer is a JSON array whose
items carry the GET videos/{videoId} fields. It also lists the jobs useapi's side lost track of (the
``http502_queued``/``http504_queued`` faults): that is where such a job is found.
"""

from __future__ import annotations

from aiohttp import web

from ..jobs import video_json
from ..state import Job, SimState
from .common import ApiError, json_response, query_limit, state_of, target_account

__all__ = ["get_video", "list_videos"]

NOT_FOUND = {"error": "Not found.", "code": 404}  # doc


def _listed(state: SimState, job: Job) -> bool:
    # GUESS: a moderated video, once removed (GET answers 404), is gone from the list as well.
    return not job.removed and not job.removed_by_moderation(state.config.moderated_visible_seconds)


async def get_video(request: web.Request) -> web.Response:
    """GET videos/{videoId}: the job's status JSON, or 404."""
    state = state_of(request)
    video_id = request.match_info["video_id"]
    state.counters.bump("polls")
    state.counters.bump("polls_by_video", video_id)
    job = state.jobs.get(video_id)
    if job is None or not _listed(state, job):
        return json_response(NOT_FOUND, status=404)
    return json_response(video_json(job))


def _cursor(text: str) -> int:
    # GUESS: lastVideoId may be the item's id or its full videoId; the page starts just after that video
    # (ids grow with time, so "after" in a newest-first list means a smaller id).
    numeric = text.rsplit("-video:", 1)[-1]
    if not numeric.isdigit():
        raise ApiError(400, f"lastVideoId must be a video id (id or videoId of a listed video), got {text!r}")
    return int(numeric)


async def list_videos(request: web.Request) -> web.Response:
    """GET videos/: the account's videos, newest first (GUESS), ``limit`` at a time."""
    state = state_of(request)
    account = target_account(state, request.query.get("account"))
    limit = query_limit(request, default=30)  # doc: default 30
    last = request.query.get("lastVideoId")
    state.counters.bump("video_lists")
    jobs = [j for j in state.account_videos(account) if _listed(state, j)]
    if last:
        cursor = _cursor(last)
        jobs = [j for j in jobs if int(j.numeric_id) < cursor]
    return json_response([video_json(j) for j in jobs[:limit]])
