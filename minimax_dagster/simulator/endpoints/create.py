"""POST videos/agent-create: the body, its validation, the faults that refuse it, the account, the job.

The order of the checks follows what a proxy like useapi.net must do: the body and the template first (400/404),
then the account and its capacity (429), then the call to MiniMax, whose failures the faults simulate.
"""

from __future__ import annotations

import json
from typing import Any, cast

from aiohttp import web

from ..catalogue import Template, get_template
from ..faults import Fault, FaultSet, parse_faults, prompt_faults, strip_markers
from ..jobs import created_event, run_job
from ..state import Job, SimState, UploadedFile
from .callbacks import send_callback
from .common import TEMPLATE_NOT_FOUND, ApiError, origin_of, spawn, state_of
from .stream import stream_job

__all__ = ["create_video"]

MAX_REPLY_LEN = 1024
MAX_PROMPT_LEN = 2000
MAX_JOBS_RANGE = (1, 10)

# Faults that refuse the create before any job exists: name -> (status, message).
_REFUSALS = {
    "credits": (412, "Insufficient credits on the MiniMax account (simulated fault 'credits')."),
    "hold": (596, "The MiniMax account is on hold, try again in a few hours (simulated fault 'hold')."),
    "expired": (402, "The useapi.net subscription has expired (simulated fault 'expired')."),
    "moderated_prompt": (
        422,
        "The prompt was refused by content moderation (simulated fault 'moderated_prompt').",
    ),
}
# Counted faults: the first N creates carrying one are answered with this status and no job.
_COUNTED_REFUSALS = {
    "busy": (429, "All accounts are busy (simulated fault 'busy'), retry later."),
    "http502": (502, "Bad gateway: MiniMax did not answer (simulated fault 'http502')."),
    "http504": (504, "Gateway timeout: MiniMax is busy (simulated fault 'http504')."),
}
# Counted faults whose job is queued on the account although the answer is a gateway error.
_QUEUED_GATEWAY_ERRORS = {
    "http502_queued": (502, "Bad gateway: MiniMax is too busy (simulated fault 'http502_queued')."),
    "http504_queued": (504, "Gateway timeout: MiniMax is too busy (simulated fault 'http504_queued')."),
}


async def create_video(request: web.Request) -> web.StreamResponse:
    """The handler: a job and its event stream, or an error answer counted by status."""
    state = state_of(request)
    try:
        job, gateway_error = await _create_job(request, state)
    except ApiError as exc:
        if exc.status in (400, 404):
            exc.code = False  # doc (seed page): agent-create's 400 and 404 bodies carry only "error"
        state.counters.bump("rejected_by_status", str(exc.status))
        return exc.response()
    if gateway_error is not None:
        state.counters.bump("rejected_by_status", str(gateway_error.status))
        state.counters.bump("queued_behind_gateway_errors")
        return gateway_error.response()
    return await stream_job(request, state, job)


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
                    fields[key] = cast(web.FileField, value).file.read().decode()
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


def _check_account_can_make_videos(state: SimState, account: str) -> None:
    """Refuse an account GET accounts shows without video support or with an error (both answers GUESS)."""
    if not state.supports_video(account):
        raise ApiError(
            400, f"account {account} does not support video (supportVideo is false in GET accounts)"
        )
    error = state.account_error(account)
    if error is not None:
        # GUESS: useapi.net marks an account with `error` when MiniMax put it on hold (2nd: its MCP tool
        # description), so a create naming it gets what an account on hold gets: 596.
        raise ApiError(596, f"account {account} is in error: {error}")


def _claim_counted(state: SimState, fault: Fault | None, prompt: str | None) -> bool:
    """True for the first N creates carrying this counted fault (busy, http502, http502_queued, ...)."""
    if fault is None:
        return False
    # Counted server-wide per fault instance: source + spec (+ the prompt for prompt markers).
    key = (fault.source, fault.spec, prompt if fault.source == "prompt" else "")
    if state.fault_hits[key] >= int(fault.arg):  # type: ignore[call-overload]
        return False
    state.fault_hits[key] += 1
    return True


def _fault_refusal(state: SimState, faults: FaultSet, prompt: str | None) -> ApiError | None:
    for name, (status, message) in _REFUSALS.items():
        if name in faults:
            return ApiError(status, message)
    for name, (status, message) in _COUNTED_REFUSALS.items():
        if _claim_counted(state, faults.fault(name), prompt):
            headers = {"Retry-After": str(state.config.retry_after_seconds)} if status == 429 else None
            # doc: error bodies are {"error": "...", "code": N} (api-notes, "Accounts, capacity, errors").
            return ApiError(status, message, headers=headers)
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
    candidates = state.video_accounts()  # GUESS: useapi picks among accounts that can make videos
    if not candidates:
        raise ApiError(
            400, "no configured account can generate videos (see supportVideo and error in GET accounts)"
        )
    free = [a for a in candidates if len(state.running(a)) < (max_jobs or state.accounts[a])]
    if not free:
        raise ApiError(
            429,
            "All configured accounts are executing their maximum number of jobs (maxJobs). "
            "Wait for a job to finish (or about 30 seconds) and retry.",
            headers=retry,
        )
    return state.rng.choice(free)


async def _create_job(request: web.Request, state: SimState) -> tuple[Job, ApiError | None]:
    """The job, and the gateway error to answer instead of its stream when a queued-gateway fault fired."""
    fields = await _read_fields(request)
    template_id = _text_field(fields, "templateId")
    if template_id is None:
        raise ApiError(400, "templateId is required")
    template = get_template(template_id)
    if template is None:
        raise ApiError(404, TEMPLATE_NOT_FOUND)
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
    if account is not None:
        _check_account_can_make_videos(state, account)
    try:
        faults = FaultSet.merge(
            prompt_faults(prompt),
            parse_faults(request.headers.get("X-Sim-Fault"), source="header"),
            state.server_faults,
        )
    except ValueError as exc:
        raise ApiError(400, f"Simulator fault syntax: {exc}") from None
    refusal = _fault_refusal(state, faults, prompt)
    if refusal is not None:
        raise refusal
    account = _pick_account(state, account, max_jobs)
    gateway_error = None
    for name, (status, message) in _QUEUED_GATEWAY_ERRORS.items():
        if gateway_error is None and _claim_counted(state, faults.fault(name), prompt):
            gateway_error = ApiError(status, message)  # doc: {"error", "code"} bodies
    job = _start_job(
        request, state, template, prompt, file, account, max_jobs, faults, reply_url, reply_ref, gateway_error
    )
    return job, gateway_error


def _start_job(
    request: web.Request,
    state: SimState,
    template: Template,
    prompt: str | None,
    file: UploadedFile | None,
    account: str,
    max_jobs: int | None,
    faults: FaultSet,
    reply_url: str | None,
    reply_ref: str | None,
    gateway_error: ApiError | None,
) -> Job:
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
        origin=origin_of(request),
        project_id=state.new_id(),
        chat_id=state.new_id(),
        section_id=state.new_id(),
        user_msg_id=state.new_id(),
        task_id=state.new_id(),
        hidden=gateway_error is not None,
    )
    if file is not None:
        file.used = True  # doc: GET files lists only the images "actually used for generation"
    state.jobs[job.video_id] = job
    state.jobs_by_numeric[numeric_id] = job
    state.counters.job_started(account, prompt)
    job.emit(created_event(job))
    app = request.app

    def on_final(done: Job, notify_callback: bool = True) -> None:
        outcome = {2: "completed", 3: "failed"}.get(done.status, "moderated")
        state.counters.job_ended(done.account, outcome)
        # GUESS: a job useapi's side lost track of (a queued gateway error) gets no replyUrl callback.
        if notify_callback and done.reply_url and not done.hidden:
            spawn(app, send_callback(app, done))

    job.task = spawn(app, run_job(state, job, on_final))
    return job
