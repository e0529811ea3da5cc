"""The aiohttp application: the /v1/minimax API, the CDN and the simulator-only /_sim endpoints.

aiohttp (asyncio) is used because agent-create answers with a long-lived event stream: one event-loop thread
serves many concurrent streams, ``StreamResponse`` puts every event on the wire as soon as it is written
(chunked HTTP/1.1, no buffering), and the same library sends the replyUrl callbacks. See the package
docstring for the endpoints, the faults and the counters.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import Executor
from datetime import datetime, timezone
from typing import Any

import aiohttp
from aiohttp import web

from .catalogue import TEMPLATES, Template, get_template
from .cdn import Cdn
from .config import RUNTIME_FIELDS, SimulatorConfig
from .faults import FaultSet, parse_faults, prompt_faults, strip_markers
from .jobs import created_event, run_job, video_json
from .state import MODERATED_STATUSES, Job, SimState, UploadedFile

log = logging.getLogger(__name__)

__all__ = ["API_PREFIX", "build_app"]

API_PREFIX = "/v1/minimax"
TEMPLATE_NOT_FOUND = "The video or template you are trying to use does not exist or has been deleted."
MAX_REPLY_LEN = 1024
MAX_PROMPT_LEN = 2000
MAX_JOBS_RANGE = (1, 10)

STATE_KEY = web.AppKey("state", SimState)
CDN_KEY = web.AppKey("cdn", Cdn)
SESSION_KEY = web.AppKey("session", aiohttp.ClientSession)
TASKS_KEY = web.AppKey("tasks", set)

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"


# ---- helpers -----------------------------------------------------------------------------------------------


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        body, status=status, headers=headers, dumps=lambda o: json.dumps(o, ensure_ascii=False)
    )


def _error(
    status: int, message: str, *, code: bool = True, headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if code:
        body["code"] = status
    return _json(body, status=status, headers=headers)


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, *, code: bool = True, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers

    def response(self) -> web.Response:
        return _error(self.status, self.message, code=self.code, headers=self.headers)


def _state(request: web.Request) -> SimState:
    return request.app[STATE_KEY]


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _spawn(app: web.Application, coro) -> asyncio.Task:
    task = asyncio.get_running_loop().create_task(coro)
    tasks: set = app[TASKS_KEY]
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task


# ---- middleware --------------------------------------------------------------------------------------------


@web.middleware
async def api_middleware(request: web.Request, handler):
    """Bearer auth on /v1/minimax/*, JSON error bodies everywhere but the CDN."""
    path = request.path
    is_api = path.startswith(API_PREFIX + "/") or path == API_PREFIX
    if is_api:
        state = _state(request)
        is_create = request.method == "POST" and path.rstrip("/") == f"{API_PREFIX}/videos/agent-create"
        if is_create:
            state.counters.bump("create_requests")
        if request.headers.get("Authorization", "") != f"Bearer {state.config.token}":
            if is_create:
                state.counters.bump("rejected_by_status", "401")
            return _json({"error": "Unauthorized"}, status=401)
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPNotFound:
        if path.startswith("/cdn/"):
            raise
        return _json({"error": "Not found."}, status=404)
    except web.HTTPMethodNotAllowed as exc:
        return _json(
            {"error": f"Method {request.method} not allowed"},
            status=405,
            headers={"Allow": exc.headers.get("Allow", "")},
        )


# ---- POST videos/agent-create --------------------------------------------------------------------------------


async def _read_fields(request: web.Request) -> dict[str, Any]:
    ctype = request.content_type.lower()
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await request.post()
        except Exception as exc:
            raise ApiError(400, f"Could not parse the form body: {exc}") from None
        fields: dict[str, Any] = {}
        for key, value in form.items():
            if key in fields:
                continue  # first value wins
            if isinstance(value, str):
                fields[key] = value
            else:  # a file part: read it as text (browsers' FormData may send Blob parts)
                try:
                    fields[key] = value.file.read().decode()
                except Exception:
                    raise ApiError(400, f"Field {key} must be text") from None
        return fields
    raw = await request.read()
    if not raw.strip():
        return {}
    if ctype not in ("application/json", "text/plain", "application/octet-stream", ""):
        raise ApiError(
            400,
            f"Unsupported Content-Type {ctype!r}: send application/json, multipart/form-data or "
            "application/x-www-form-urlencoded",
        )
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"Invalid JSON body: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The JSON body must be an object")
    return data


def _text_field(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ApiError(400, f"{name} must be a string")
    text = str(value)
    return text if text != "" else None


def _max_jobs_field(fields: dict[str, Any]) -> int | None:
    value = fields.get("maxJobs")
    if value is None or value == "":
        return None
    low, high = MAX_JOBS_RANGE
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    if number is None or not low <= number <= high:
        raise ApiError(400, f"maxJobs must be an integer between {low} and {high}, got {value!r}")
    return number


def _parse_file_id(state: SimState, file_id: str) -> UploadedFile:
    # fileID = "user:<user_id>-minimax:<account>-file:<file id>"
    prefix = f"user:{state.config.user_id}-minimax:"
    if not file_id.startswith(prefix) or "-file:" not in file_id:
        raise ApiError(
            400, f"fileID {file_id!r} is not a valid fileID (user:<id>-minimax:<account>-file:<id>)"
        )
    file = state.files.get(file_id)
    if file is None:
        raise ApiError(400, f"fileID {file_id!r} not found: upload the image with POST files first")
    return file


def _check_template_inputs(t: Template, prompt: str | None, has_file: bool) -> None:
    text = strip_markers(prompt)  # [sim:...] markers alone do not count as text (simulator-only)
    label = f"Template {t.template_id} ({t.name})"
    if text and not t.allows_prompt:
        raise ApiError(400, f"{label} does not take a text prompt: remove prompt")
    if not text and t.requires_prompt:
        raise ApiError(400, f"{label} requires a text prompt: prompt is required")
    if t.image_required and not has_file:
        raise ApiError(400, f"{label} requires an image: fileID and ossPath are required")
    if has_file and not t.image_required:
        # GUESS: the real API's behaviour for an image sent to a text-only template is undocumented.
        raise ApiError(400, f"{label} does not take an image: remove fileID and ossPath")


def _fault_rejection(state: SimState, faults: FaultSet, prompt: str | None) -> ApiError | None:
    if "credits" in faults:
        return ApiError(412, "Insufficient credits on the MiniMax account (simulated fault 'credits').")
    if "hold" in faults:
        return ApiError(
            596, "The MiniMax account is on hold, try again in a few hours (simulated fault 'hold')."
        )
    if "expired" in faults:
        return ApiError(402, "The useapi.net subscription has expired (simulated fault 'expired').")
    if "moderated_prompt" in faults:
        return ApiError(
            422, "The prompt was refused by content moderation (simulated fault 'moderated_prompt')."
        )
    for name, status, message in (
        ("busy", 429, "All accounts are busy (simulated fault 'busy'), retry later."),
        ("http502", 502, "Bad gateway: MiniMax did not answer (simulated fault 'http502')."),
        ("http504", 504, "Gateway timeout: MiniMax is busy (simulated fault 'http504')."),
    ):
        fault = faults.fault(name)
        if fault is None:
            continue
        # Counted server-wide per fault instance: source + spec (+ the prompt for prompt markers).
        key = (fault.source, fault.spec, prompt if fault.source == "prompt" else "")
        if state.fault_hits[key] < int(fault.arg):  # type: ignore[arg-type]
            state.fault_hits[key] += 1
            headers = {"Retry-After": str(state.config.retry_after_seconds)} if status == 429 else None
            # 502/504 bodies carry only "error" (GUESS: gateway errors of the real API).
            return ApiError(status, message, code=status == 429, headers=headers)
    return None


def _pick_account(state: SimState, account: str | None, max_jobs: int | None) -> str:
    retry = {"Retry-After": str(state.config.retry_after_seconds)}
    if account is not None:
        limit = max_jobs or state.accounts[account]
        running = len(state.running(account))
        if running >= limit:
            raise ApiError(
                429,
                f"Account {account} is executing {running} of maxJobs {limit} jobs. "
                "Wait for a job to finish (or about 30 seconds) and retry.",
                headers=retry,
            )
        return account
    free = [a for a, limit in state.accounts.items() if len(state.running(a)) < (max_jobs or limit)]
    if not free:
        raise ApiError(
            429,
            "All configured accounts are executing their maximum number of jobs (maxJobs). "
            "Wait for a job to finish (or about 30 seconds) and retry.",
            headers=retry,
        )
    return state.rng.choice(free)


async def create_video(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    try:
        job = await _create_job(request, state)
    except ApiError as exc:
        state.counters.bump("rejected_by_status", str(exc.status))
        return exc.response()
    return await _stream_job(request, state, job)


async def _create_job(request: web.Request, state: SimState) -> Job:
    fields = await _read_fields(request)
    template_id = _text_field(fields, "templateId")
    if template_id is None:
        raise ApiError(400, "templateId is required")
    template = get_template(template_id)
    if template is None:
        raise ApiError(404, TEMPLATE_NOT_FOUND, code=False)
    prompt = _text_field(fields, "prompt")
    file_id = _text_field(fields, "fileID")
    oss_path = _text_field(fields, "ossPath")
    reply_url = _text_field(fields, "replyUrl")
    reply_ref = _text_field(fields, "replyRef")
    account = _text_field(fields, "account")
    if file_id is not None and oss_path is None:
        raise ApiError(400, "ossPath is required when fileID is provided")
    if oss_path is not None and file_id is None:
        raise ApiError(400, "ossPath cannot be provided without fileID")
    for name, value in (("replyUrl", reply_url), ("replyRef", reply_ref)):
        if value is not None and len(value) > MAX_REPLY_LEN:
            raise ApiError(400, f"{name} must be at most {MAX_REPLY_LEN} characters (got {len(value)})")
    if prompt is not None and len(prompt) > MAX_PROMPT_LEN:
        raise ApiError(400, f"prompt must be at most {MAX_PROMPT_LEN} characters (got {len(prompt)})")
    max_jobs = _max_jobs_field(fields)
    if account is not None and account not in state.accounts:
        # Choice: an unknown account is a 400 naming the field (GUESS: the real API may answer 404).
        raise ApiError(400, f"account {account} is not configured (see GET accounts)")
    _check_template_inputs(template, prompt, file_id is not None)
    file: UploadedFile | None = None
    if file_id is not None:
        file = _parse_file_id(state, file_id)
        if account is None:
            account = file.account  # a file can only be used by the account that owns it
        elif file.account != account:
            raise ApiError(400, f"fileID belongs to account {file.account}, not to account {account}")
    try:
        faults = FaultSet.merge(
            prompt_faults(prompt),
            parse_faults(request.headers.get("X-Sim-Fault"), source="header"),
            state.server_faults,
        )
    except ValueError as exc:
        raise ApiError(400, f"Simulator fault syntax: {exc}") from None
    rejection = _fault_rejection(state, faults, prompt)
    if rejection is not None:
        raise rejection
    account = _pick_account(state, account, max_jobs)

    cfg = state.config
    numeric_id = state.new_id()
    job = Job(
        numeric_id=numeric_id,
        video_id=f"user:{cfg.user_id}-minimax:{account}-video:{numeric_id}",
        account=account,
        template=template,
        prompt=prompt,
        file=file,
        reply_url=reply_url or cfg.default_reply_url,
        reply_ref=reply_ref,
        max_jobs=max_jobs or state.accounts[account],
        faults=faults,
        generation_seconds=float(faults.get("slow", cfg.generation_seconds)),  # type: ignore[arg-type]
        origin=_origin(request),
        project_id=state.new_id(),
        chat_id=state.new_id(),
        section_id=state.new_id(),
        user_msg_id=state.new_id(),
        task_id=state.new_id(),
    )
    state.jobs[job.video_id] = job
    state.jobs_by_numeric[numeric_id] = job
    state.counters.job_started(account, prompt)
    job.emit(created_event(job))
    app = request.app

    def on_final(done: Job, notify_callback: bool = True) -> None:
        outcome = {2: "completed", 3: "failed"}.get(done.status, "moderated")
        state.counters.job_ended(done.account, outcome)
        if notify_callback and done.reply_url:
            _spawn(app, _send_callback(app, done))

    job.task = _spawn(app, run_job(state, job, on_final))
    return job


def _sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


async def _stream_job(request: web.Request, state: SimState, job: Job) -> web.StreamResponse:
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
    no_finished = "no_finished" in faults
    loop = asyncio.get_running_loop()
    heartbeat = state.config.heartbeat_seconds
    next_beat = loop.time() + heartbeat
    sent = 0
    if drop_after == 0:
        return _drop(request)
    if stall_after == 0:
        return await _stall(request, state)
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


async def _stall(request: web.Request, state: SimState) -> None:
    """stall_after fault: keep the socket open and silent until the client leaves or the server stops."""
    deadline = time.monotonic() + 3600
    while not state.stopping and time.monotonic() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            break
        await asyncio.sleep(0.1)
    _drop(request)


async def _send_callback(app: web.Application, job: Job) -> None:
    state = app[STATE_KEY]
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


# ---- GET videos/{videoId} -------------------------------------------------------------------------------------


async def get_video(request: web.Request) -> web.Response:
    state = _state(request)
    video_id = request.match_info["video_id"]
    state.counters.bump("polls")
    state.counters.bump("polls_by_video", video_id)
    job = state.jobs.get(video_id)
    if job is None or job.removed:
        return _json({"error": "Not found."}, status=404)
    if (
        job.status in MODERATED_STATUSES
        and job.final_at is not None
        and time.time() - job.final_at > state.config.moderated_visible_seconds
    ):
        # Documented: a moderated video is removed after generation; GET then answers 404.
        return _json({"error": "Not found."}, status=404)
    return _json(video_json(job))


# ---- GET videos/agent-templates --------------------------------------------------------------------------------


def _template_item(t: Template, origin: str) -> dict[str, Any]:
    cover, video = (
        f"{origin}/cdn/templates/{t.template_id}.png",
        f"{origin}/cdn/templates/{t.template_id}.mp4",
    )
    return {
        "id": t.template_id,
        "createTime": t.create_time,
        "videoAsset": {
            "id": t.template_id,
            "desc": t.desc,
            "coverURL": cover,
            "videoURL": video,
            "status": 2,
            "width": t.width,
            "height": t.height,
            "duration": t.duration,
            "resolution": t.resolution,
            "title": t.name,
            "agentTemplateID": t.template_id,
            "agentTemplateName": t.name,
            "downloadURL": video,
            "aspectRatio": t.aspect_ratio,
            "tags": list(t.tags),
        },
        # GUESS: the contents of like/author/cardType/tabID are not documented.
        "like": {"likeCount": 0, "isLiked": False},
        "author": {"userID": "0", "name": "MiniMax", "avatar": ""},
        "cardType": 1,
        "tabID": 0,
    }


def _template_detail(t: Template) -> dict[str, Any]:
    # GUESS: these field names are invented; the real detail response is not documented beyond "it says
    # which inputs the template needs".
    return {
        "templateId": t.template_id,
        "name": t.name,
        "desc": t.desc,
        "needTextInput": t.allows_prompt,
        "needImageInput": t.image_required,
        "textRequired": t.requires_prompt,
        "promptPlaceholder": t.prompt_placeholder,
        "credits": t.credits,
        "width": t.width,
        "height": t.height,
        "duration": t.duration,
        "fps": t.fps,
    }


async def list_templates(request: web.Request) -> web.Response:
    state = _state(request)
    query = request.query
    account = query.get("account")
    if account and account not in state.accounts:
        raise ApiError(400, f"account {account} is not configured (see GET accounts)")
    template_id = query.get("templateId")
    if template_id:
        t = get_template(template_id)
        if t is None:
            raise ApiError(404, TEMPLATE_NOT_FOUND, code=False)
        return _json(_template_detail(t))
    limit_text = query.get("limit", "30")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
        raise ApiError(400, f"limit must be an integer between 1 and 100, got {limit_text!r}")
    limit = int(limit_text)
    items = list(TEMPLATES)
    last_id = query.get("lastId")
    if last_id:
        ids = [t.template_id for t in items]
        if last_id not in ids:
            # GUESS: the real API's answer to an unknown lastId is undocumented.
            raise ApiError(400, f"lastId {last_id} is not a template id")
        items = items[ids.index(last_id) + 1 :]
    page = items[:limit]
    origin = _origin(request)
    return _json({"videoList": [_template_item(t, origin) for t in page], "hasNext": len(items) > limit})


# ---- files ---------------------------------------------------------------------------------------------------


async def upload_file(request: web.Request) -> web.Response:
    state = _state(request)
    ctype = request.content_type.lower()
    if ctype not in ("image/png", "image/jpeg"):
        raise ApiError(400, f"Content-Type must be image/png or image/jpeg, got {ctype or 'none'!r}")
    account = request.query.get("account") or next(iter(state.accounts))
    if account not in state.accounts:
        raise ApiError(400, f"account {account} is not configured (see GET accounts)")
    limit = state.config.max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"File too large: {request.content_length} bytes, the limit is {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"File too large: more than {limit} bytes")
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise ApiError(400, "The body is empty: send the image bytes as the request body")
    is_png, is_jpeg = data.startswith(_PNG_MAGIC), data.startswith(_JPEG_MAGIC)
    is_webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"  # useapi.net: send webp as image/jpeg
    if not (is_png or is_jpeg or is_webp):
        raise ApiError(400, "The body is not a PNG or JPEG image")
    if is_png and ctype != "image/png":
        raise ApiError(400, "The body is a PNG image but Content-Type is not image/png")
    if (is_jpeg or is_webp) and ctype != "image/jpeg":
        raise ApiError(400, "The body is a JPEG/WebP image but Content-Type is not image/jpeg")
    numeric_id = state.new_id()
    ext = "png" if is_png else "jpg"
    oss_path = f"{_origin(request)}/cdn/files/{account}/{numeric_id}.{ext}"
    file = UploadedFile(
        file_id=f"user:{state.config.user_id}-minimax:{account}-file:{numeric_id}",
        numeric_id=numeric_id,
        account=account,
        content_type=ctype,
        data=data,
        oss_path=oss_path,
        file_name=f"{numeric_id}.{ext}",
    )
    state.files[file.file_id] = file
    state.files_by_numeric[numeric_id] = file
    state.counters.bump("uploads")
    return _json({"ossPath": oss_path, "fileID": file.file_id})


async def list_files(request: web.Request) -> web.Response:
    state = _state(request)
    account = request.query.get("account")
    if account and account not in state.accounts:
        raise ApiError(400, f"account {account} is not configured (see GET accounts)")
    files = [f for f in state.files.values() if not account or f.account == account]
    return _json([f.listing() for f in sorted(files, key=lambda f: f.created_at, reverse=True)])


# ---- accounts & scheduler ---------------------------------------------------------------------------------


def _account_json(state: SimState, account: str) -> dict[str, Any]:
    return {"account": account, "maxJobs": state.accounts[account]}


async def list_accounts(request: web.Request) -> web.Response:
    state = _state(request)
    return _json({a: _account_json(state, a) for a in state.accounts})


async def get_account(request: web.Request) -> web.Response:
    state = _state(request)
    account = request.match_info["account"]
    if account not in state.accounts:
        raise ApiError(404, f"Account {account} is not configured")
    return _json(_account_json(state, account))


async def scheduler_available(request: web.Request) -> web.Response:
    state = _state(request)
    now = time.time()
    executing = [
        {
            "videoId": j.video_id,
            # GUESS: formats of started (ISO-8601 UTC) and elapsed (seconds) are not documented.
            "started": datetime.fromtimestamp(j.created_at, tz=timezone.utc)
            .isoformat()
            .replace("+00:00", "Z"),
            "elapsed": round(now - j.created_at, 1),
            "replyUrl": j.reply_url,
            "replyRef": j.reply_ref,
        }
        for j in state.executing()
    ]
    available = []
    for account, max_jobs in state.accounts.items():
        running = len(state.running(account))
        available.append(
            {
                "account": account,
                "maxJobs": max_jobs,
                "executing": running,
                "available": max(0, max_jobs - running),
            }
        )
    return _json({"executing": executing, "available": available})


# ---- /_sim (simulator-only, no auth) --------------------------------------------------------------------------


async def sim_counters(request: web.Request) -> web.Response:
    return _json(_state(request).counters.snapshot())


async def sim_reset(request: web.Request) -> web.Response:
    reset_state(request.app)
    return _json({"ok": True})


async def sim_get_faults(request: web.Request) -> web.Response:
    return _json(_state(request).config.faults)


async def sim_set_faults(request: web.Request) -> web.Response:
    try:
        faults = await request.json()
        if not isinstance(faults, list):
            raise ValueError("the body must be a JSON list of fault specs")
        _state(request).set_faults(faults)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return _json(_state(request).config.faults)


async def sim_get_config(request: web.Request) -> web.Response:
    return _json(_state(request).snapshot_config())


async def sim_set_config(request: web.Request) -> web.Response:
    try:
        changes = await request.json()
        if not isinstance(changes, dict):
            raise ValueError("the body must be a JSON object")
        configure(request.app, changes)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return _json(_state(request).snapshot_config())


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
    app[STATE_KEY].forget_everything()
    app[CDN_KEY].videos.clear()


# ---- the application ---------------------------------------------------------------------------------------


def build_app(state: SimState, executor: Executor) -> web.Application:
    # client_max_size bounds request.post()/read(); uploads are read incrementally against max_upload_bytes.
    app = web.Application(middlewares=[api_middleware], client_max_size=4 * 1024 * 1024)
    app[STATE_KEY] = state
    app[CDN_KEY] = Cdn(state, executor)
    app[TASKS_KEY] = set()

    async def session_ctx(app: web.Application):
        app[SESSION_KEY] = aiohttp.ClientSession()
        yield
        state.stopping = True
        for job in list(state.jobs.values()):
            job.notify()
        tasks = list(app[TASKS_KEY])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await app[SESSION_KEY].close()

    app.cleanup_ctx.append(session_ctx)

    api = API_PREFIX
    r = app.router
    r.add_post(f"{api}/videos/agent-create", create_video)
    r.add_post(f"{api}/videos/agent-create/", create_video)
    r.add_get(f"{api}/videos/agent-templates", list_templates)
    r.add_get(f"{api}/videos/agent-templates/", list_templates)
    r.add_get(f"{api}/videos/{{video_id}}", get_video)
    r.add_post(f"{api}/files", upload_file)
    r.add_post(f"{api}/files/", upload_file)
    r.add_get(f"{api}/files", list_files)
    r.add_get(f"{api}/files/", list_files)
    r.add_get(f"{api}/accounts", list_accounts)
    r.add_get(f"{api}/accounts/{{account}}", get_account)
    r.add_get(f"{api}/scheduler/available", scheduler_available)
    r.add_get("/_sim/counters", sim_counters)
    r.add_post("/_sim/reset", sim_reset)
    r.add_get("/_sim/faults", sim_get_faults)
    r.add_post("/_sim/faults", sim_set_faults)
    r.add_get("/_sim/config", sim_get_config)
    r.add_post("/_sim/config", sim_set_config)
    cdn = app[CDN_KEY]
    r.add_route("GET", "/cdn/{path:.+}", cdn.handle)  # HEAD is added by add_get only; see below
    r.add_route("HEAD", "/cdn/{path:.+}", cdn.handle)
    return app
