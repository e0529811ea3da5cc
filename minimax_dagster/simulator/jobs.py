"""The life of one simulated agent-create job: its timeline, its stream events and its GET videos/{id} body.

A job runs as its own asyncio task, independent of the HTTP stream that created it: a client that
disconnects (or is cut off by a fault) can recover the result by polling GET videos/{videoId}, and the
account's capacity slot stays taken until the job is final.

Timeline, as fractions of the job's generation time T (``generation_seconds`` or the ``slow`` fault)::

    0.00  created      (status 0 pending; sent at once)
    0.00  connected    (status 11 queued)
    0.05  progress type 1 "Generating image..."            (status 1 processing)
    0.10  progress type 2 image attachment, status 2 (processing)
    0.35  progress type 2 image attachment, status 3, fileUrl = poster PNG
    0.40  progress type 1 "Generating video..."            (status 12 processing)
    0.45  progress type 2 attachmentInfo type 3, status 2
    1.00  progress type 2 attachmentInfo type 3, status 3, the final file   (status 2 completed)
          progress type 3 isFinished + recTemplateList
          finished
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .catalogue import recommended_for
from .state import MODERATED_STATUSES, STATUS_LABELS, Job

if TYPE_CHECKING:
    from .state import SimState

log = logging.getLogger(__name__)

__all__ = ["EVENT_NAMES", "run_job", "video_json"]

#: Event numbers used by drop_after / stall_after / malformed_at (heartbeats are not counted).
EVENT_NAMES = {
    1: "created",
    2: "connected",
    3: "progress type 1 'Generating image...'",
    4: "progress type 2 image processing (status 2)",
    5: "progress type 2 image done (status 3)",
    6: "progress type 1 'Generating video...'",
    7: "progress type 2 video processing (attachmentInfo type 3, status 2)",
    8: "progress type 2 final video (status 3)  [fail/moderate: type 3 with errCode]",
    9: "progress type 3 isFinished + recTemplateList  [fail/moderate: finished with errCode]",
    10: "finished",
}

# GUESS: errCode/errMsg values of failed and moderated jobs (codes borrowed from the official MiniMax API:
# 1026 sensitive input, 1027 sensitive output).
FAIL_CODE, FAIL_MSG = 1000, "Video generation failed (simulated fault 'fail')."
MODERATION = {
    5: (1026, "The prompt or image was flagged by content moderation (simulated)."),
    7: (1027, "The generated video was flagged by content moderation (simulated)."),
    14: (1027, "The video was removed by content moderation (simulated)."),
}


def now_ms() -> int:
    return int(time.time() * 1000)


def _num(value: float) -> str:
    """Numbers inside attachment extra are strings in the real API ("720", "5", "24")."""
    return f"{value:g}"


# ---- stream events ---------------------------------------------------------------------------------------


def _ids(job: Job) -> dict[str, Any]:
    return {
        "videoId": job.video_id,
        "projectID": job.project_id,
        "sectionID": job.section_id,
        "chatID": job.chat_id,
    }


def _user_message(job: Job) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "msgId": job.user_msg_id,
        "msgContent": job.prompt or "",
        "msgType": 1,
        "timestamp": int(job.created_at * 1000),
    }
    if job.file is not None:
        msg["files"] = [
            {
                "fileName": job.file.file_name,
                "fileUrl": job.file.oss_path,
                "posterUrl": job.file.oss_path,
                "type": "image",
                "extra": {},
            }
        ]
    return msg


def created_event(job: Job) -> dict[str, Any]:
    return {
        "status": "created",
        **_ids(job),
        "message": _user_message(job),
        "code": 200,
        "timestamp": now_ms(),
    }


def _system_message(state: SimState, job: Job, **fields: Any) -> dict[str, Any]:
    return {
        "msgId": state.new_id(),
        "parentMsgId": job.user_msg_id,
        "msgType": 2,
        "timestamp": now_ms(),
        **fields,
    }


def _text_event(state: SimState, job: Job, text: str) -> dict[str, Any]:
    return {
        "status": "progress",
        "type": 1,
        "message": _system_message(state, job, msgContent=text),
        "timestamp": now_ms(),
    }


def _attachment_event(
    state: SimState, job: Job, info_id: str, att_id: str, kind: int, status: int, file: dict[str, Any]
) -> dict[str, Any]:
    info = {
        "attachmentInfoID": info_id,
        "type": kind,
        "attachments": [{"attachmentID": att_id, "type": kind, "file": file, "status": status}],
        "createTime": now_ms(),
    }
    return {
        "status": "progress",
        "type": 2,
        "message": _system_message(state, job, attachmentInfo=info),
        "timestamp": now_ms(),
    }


def _final_file(job: Job) -> dict[str, Any]:
    t = job.template
    return {
        "fileName": f"{t.name.lower().replace(' ', '_')}_{job.numeric_id}.mp4",
        "fileUrl": job.video_url,
        "posterUrl": job.poster_url,
        "type": "video",
        "extra": {
            "width": _num(t.width),
            "height": _num(t.height),
            "duration": _num(t.duration),
            "fps": _num(t.fps),
            "url": job.video_url,  # GUESS: which of the two URLs 'url' carries is undocumented
            "path": f"/cdn/video/{job.numeric_id}.mp4",
            "no_watermark_url": job.download_url,
            "watermark_url": job.video_url,
            "task_id": job.task_id,
            "vendor": "minimax",  # GUESS
        },
    }


def _finished_event(job: Job, err: tuple[int, str] | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "status": "finished",
        **_ids(job),
        "message": {"msgId": job.user_msg_id, "msgContent": job.prompt or "", "msgType": 1},
        "code": 200,
        "timestamp": now_ms(),
    }
    if err is not None:  # GUESS: how the real stream ends a failed job is undocumented
        event["errCode"], event["errMsg"] = err
    return event


# ---- the job's task -------------------------------------------------------------------------------------


async def run_job(state: SimState, job: Job, on_final: Callable[..., None]) -> None:
    """Drive ``job`` through its timeline; call ``on_final(job)`` once it is final.

    >>> import asyncio
    >>> from minimax_dagster.simulator.catalogue import TEMPLATES
    >>> from minimax_dagster.simulator.config import SimulatorConfig
    >>> from minimax_dagster.simulator.faults import FaultSet
    >>> from minimax_dagster.simulator.state import SimState
    >>> job = Job("42", "user:1-minimax:7-video:42", "7", TEMPLATES[0], "a car", None, None, None, 1, FaultSet(),
    ...           0.05, "http://h", "p", "c", "s", "u", "t")
    >>> asyncio.run(run_job(SimState(SimulatorConfig()), job, lambda done: None))
    >>> job.status, [e["status"] for e in job.events][-1]
    (2, 'finished')
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    total = job.generation_seconds

    async def at(fraction: float) -> None:
        delay = start + fraction * total - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    image_info, image_att = state.new_id(), state.new_id()
    video_info, video_att = state.new_id(), state.new_id()
    t = job.template
    try:
        job.status = 11
        job.emit({"status": "connected", **_ids(job), "code": 200, "timestamp": now_ms()})

        await at(0.05)
        job.status = 1
        job.started_processing_at = time.time()
        job.emit(_text_event(state, job, "Generating image..."))
        await at(0.10)
        job.emit(_attachment_event(state, job, image_info, image_att, 1, 2, {"fileName": "processing"}))
        await at(0.35)
        image_file = {
            "fileName": f"{job.numeric_id}.png",
            "fileUrl": job.poster_url,
            "posterUrl": job.poster_url,
            "type": "image",
            "extra": {"width": _num(t.width), "height": _num(t.height)},
        }
        job.emit(_attachment_event(state, job, image_info, image_att, 1, 3, image_file))
        await at(0.40)
        job.status = 12
        job.emit(_text_event(state, job, "Generating video..."))
        await at(0.45)
        job.emit(_attachment_event(state, job, video_info, video_att, 3, 2, {"fileName": "processing"}))
        await at(1.0)

        moderation = job.faults.get("moderate") if "moderate" in job.faults else None
        if "fail" in job.faults or moderation is not None:
            if moderation is not None:
                job.status = int(str(moderation))
                job.err_code, job.message = MODERATION[job.status]
            else:
                job.status = 3
                job.err_code, job.message = FAIL_CODE, FAIL_MSG
            job.final_at = time.time()
            job.generating = False
            err = (job.err_code, job.message)
            job.emit(
                {
                    "status": "progress",
                    "type": 3,
                    "isFinished": True,
                    "needUserInput": False,
                    "errCode": err[0],
                    "errMsg": err[1],
                    "recTemplateList": [],
                    "timestamp": now_ms(),
                }
            )
            job.emit(_finished_event(job, err))
        else:
            job.status = 2
            job.message = ""
            job.final_at = time.time()
            job.generating = False
            job.emit(_attachment_event(state, job, video_info, video_att, 3, 3, _final_file(job)))
            recs = recommended_for(t.template_id, job.numeric_id)
            job.emit(
                {
                    "status": "progress",
                    "type": 3,
                    "isFinished": True,
                    "needUserInput": False,
                    "errCode": 0,
                    "errMsg": "",
                    "recTemplateList": [{"id": r.template_id, "name": r.name} for r in recs],
                    "timestamp": now_ms(),
                }
            )
            job.emit(_finished_event(job))
    except asyncio.CancelledError:
        job.generating = False
        job.notify()
        if not job.removed and not job.is_final:
            # The simulator is stopping: release the slot so counters stay consistent.
            job.status = 3
            job.message = "Simulator stopped."
            job.final_at = time.time()
            on_final(job, notify_callback=False)
        raise
    job.notify()
    on_final(job)


# ---- GET videos/{videoId} -------------------------------------------------------------------------------


def video_json(job: Job) -> dict[str, Any]:
    """The body of GET videos/{videoId} and of each GET videos/ item (also the replyUrl callback body, plus
    replyRef). Every field is the documented one (doc: get-minimax-videos-videoId page).

    >>> from minimax_dagster.simulator.catalogue import TEMPLATES
    >>> from minimax_dagster.simulator.faults import FaultSet
    >>> job = Job("42", "user:1-minimax:7-video:42", "7", TEMPLATES[0], "a car", None, None, None, 1, FaultSet(),
    ...           1.0, "http://h", "p", "c", "s", "u", "t")
    >>> body = video_json(job)
    >>> body["desc"], body["status"], body["statusLabel"], body["statusFinal"], body["originFiles"]
    ('a car', 0, 'pending', False, [])
    """
    t = job.template
    status = job.status
    if status == 2:
        percent = 100
    elif status in (1, 12) and job.started_processing_at is not None:
        elapsed = time.time() - job.created_at
        percent = max(1, min(99, int(100 * elapsed / max(job.generation_seconds, 1e-6))))
    elif job.is_final:
        percent = 0 if status in MODERATED_STATUSES else min(99, int(100 * 0.45))
    else:
        percent = 0
    completed = status == 2
    body: dict[str, Any] = {
        "id": job.numeric_id,
        "videoId": job.video_id,
        "desc": job.prompt or "",
        "coverURL": job.poster_url if completed else "",
        "videoURL": job.video_url if completed else "",
        "downloadURL": job.download_url if completed else "",
        "status": status,
        "statusLabel": STATUS_LABELS.get(status, "unknown"),
        "statusFinal": job.is_final,
        "message": job.message,
        "percent": percent,
        "width": t.width,
        "height": t.height,
        # doc: originFiles items are {"id": "user:<id>-minimax:<account>-file:<id>", "url", "type": "png"}.
        "originFiles": (
            [{"id": job.file.file_id, "url": job.file.oss_path, "type": job.file.file_type}]
            if job.file is not None
            else []
        ),
        "canAppeal": status in MODERATED_STATUSES,
        "canRetry": status == 3,
    }
    return body
