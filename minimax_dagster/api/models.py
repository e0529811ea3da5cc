"""Typed models of the useapi.net MiniMax API around ``POST videos/agent-create``.

Python attributes are snake_case; the API's own names (``templateId``, ``fileID``, ``projectID`` ...) are the
aliases used on the wire. Both spellings are accepted on input. Response models keep unknown fields
(``extra="allow"``), so a field the API adds tomorrow never breaks a pipeline; the request model refuses unknown
fields, because there a stray key is a typo that would otherwise be silently dropped.

This module is part of the API layer: it never imports dagster.

>>> req = AgentCreateRequest(template_id="393769180141805569", prompt="A fox runs")
>>> req.to_payload()
{'templateId': '393769180141805569', 'prompt': 'A fox runs'}
"""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

#: The documented limits of agent-create (seed page; prompt length from third-party sources).
MAX_PROMPT_CHARS = 2000
MAX_REPLY_CHARS = 1024
MIN_MAX_JOBS, MAX_MAX_JOBS = 1, 10


class ApiModel(BaseModel):
    """Base of every response model: camelCase aliases, both spellings accepted, unknown fields kept.

    >>> class Thing(ApiModel):
    ...     video_id: str | None = None
    >>> Thing.model_validate({"videoId": "v", "brandNew": 1}).model_extra
    {'brandNew': 1}
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        coerce_numbers_to_str=True,
        frozen=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The model as the API spells it (aliases, no ``None`` values).

        >>> ApiError(error="Unauthorized", code=401).to_wire()
        {'error': 'Unauthorized', 'code': 401}
        """
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# --------------------------------------------------------------------------------------------- request


class AgentCreateRequest(BaseModel):
    """The body of ``POST videos/agent-create``, validated before any network call.

    Rules (from the endpoint's documentation): ``template_id`` is required; ``oss_path`` is required with
    ``file_id`` and refused without it; ``reply_url`` and ``reply_ref`` at most 1024 characters and ``reply_url``
    an http(s) URL; ``max_jobs`` 1 to 10; ``prompt`` at most 2000 characters.

    >>> AgentCreateRequest(templateId="1", prompt="hi", maxJobs=2).to_payload()
    {'templateId': '1', 'prompt': 'hi', 'maxJobs': 2}
    >>> AgentCreateRequest(template_id="1", file_id="f")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for AgentCreateRequest
    ...
    """

    model_config = ConfigDict(populate_by_name=True, extra="forbid", str_strip_whitespace=True)

    account: str | None = Field(None, description="MiniMax account to use; random free account if omitted.")
    template_id: str = Field(
        ...,
        alias="templateId",
        min_length=1,
        description="Agent template id (see GET videos/agent-templates).",
    )
    prompt: str | None = Field(
        None, max_length=MAX_PROMPT_CHARS, description="Text prompt, for templates that take text."
    )
    file_id: str | None = Field(
        None, alias="fileID", min_length=1, description="fileID of an uploaded image (POST files)."
    )
    oss_path: str | None = Field(
        None,
        alias="ossPath",
        min_length=1,
        description="OSS path returned with the fileID; required with it.",
    )
    reply_url: str | None = Field(
        None, alias="replyUrl", max_length=MAX_REPLY_CHARS, description="Callback URL called on completion."
    )
    reply_ref: str | None = Field(
        None, alias="replyRef", max_length=MAX_REPLY_CHARS, description="Your reference, echoed in callbacks."
    )
    max_jobs: int | None = Field(
        None,
        alias="maxJobs",
        ge=MIN_MAX_JOBS,
        le=MAX_MAX_JOBS,
        description="Concurrent jobs for the account (1-10); overrides the account's setting.",
    )

    @field_validator("template_id", "account", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        # Template ids are 18-digit numbers; JSON users often pass them as integers.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value:
            raise ValueError(
                "prompt is empty: give some text, or omit prompt for templates that take no text"
            )
        return value

    @field_validator("reply_url")
    @classmethod
    def _reply_url_is_http(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("replyUrl must be an absolute http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _file_and_oss_path_together(self) -> AgentCreateRequest:
        if self.file_id and not self.oss_path:
            raise ValueError("ossPath is required with fileID: pass the ossPath returned by POST files")
        if self.oss_path and not self.file_id:
            raise ValueError(
                "ossPath cannot be given without fileID: remove ossPath or add the file's fileID"
            )
        return self

    def to_payload(self) -> dict[str, Any]:
        """The JSON body as the API spells it, without unset fields.

        >>> AgentCreateRequest(template_id="7", reply_ref="r1").to_payload()
        {'templateId': '7', 'replyRef': 'r1'}
        """
        return self.model_dump(by_alias=True, exclude_none=True)

    def __repr_args__(self) -> Any:
        # A prompt can be long; keep reprs readable in logs.
        for name, value in super().__repr_args__():
            if name == "prompt" and isinstance(value, str) and len(value) > 80:
                value = value[:77] + "..."
            yield name, value


# --------------------------------------------------------------------------------------------- stream


class FileExtra(ApiModel):
    """``file.extra`` of an attachment. The API sends numbers as strings; the ``*_value`` accessors type them.

    >>> e = FileExtra.model_validate({"width": "1280", "height": "720", "duration": "6", "fps": "24"})
    >>> (e.width_px, e.height_px, e.duration_s, e.fps_value)
    (1280, 720, 6.0, 24.0)
    """

    height: str | None = None
    width: str | None = None
    url: str | None = None
    path: str | None = None
    no_watermark_url: str | None = Field(None, alias="no_watermark_url")
    watermark_url: str | None = Field(None, alias="watermark_url")
    duration: str | None = None
    fps: str | None = None
    frames: str | None = None
    task_id: str | None = Field(None, alias="task_id")
    vendor: str | None = None

    @property
    def width_px(self) -> int | None:
        """Width in pixels, or None when absent or not a number."""
        return _as_int(self.width)

    @property
    def height_px(self) -> int | None:
        """Height in pixels, or None when absent or not a number."""
        return _as_int(self.height)

    @property
    def duration_s(self) -> float | None:
        """Duration in seconds, or None."""
        return _as_float(self.duration)

    @property
    def fps_value(self) -> float | None:
        """Frames per second, or None."""
        return _as_float(self.fps)

    @property
    def frame_urls(self) -> list[str]:
        """``frames`` is a JSON string of frame URLs; the decoded list (empty when absent or malformed).

        >>> FileExtra(frames='["a.png", "b.png"]').frame_urls
        ['a.png', 'b.png']
        """
        if not self.frames:
            return []
        try:
            decoded = json.loads(self.frames)
        except ValueError:
            return []
        return [str(item) for item in decoded] if isinstance(decoded, list) else []


class AttachmentFile(ApiModel):
    """The file of an attachment (``fileName: "processing"`` while it is being made).

    >>> AttachmentFile(file_name="car.png", file_url="https://x/car.png").is_placeholder
    False
    """

    file_name: str | None = None
    file_url: str | None = None
    poster_url: str | None = None
    type: str | None = None
    extra: FileExtra | None = None

    @field_validator("extra", mode="before")
    @classmethod
    def _empty_extra(cls, value: Any) -> Any:
        return None if value in ({}, None, "") else value

    @property
    def is_placeholder(self) -> bool:
        """True while the file is still being produced (no URL yet)."""
        return not self.file_url


class Attachment(ApiModel):
    """One generated media attachment; ``status`` 2 = processing, 3 = complete."""

    attachment_id: str | None = Field(None, alias="attachmentID")
    type: int | None = None
    file: AttachmentFile | None = None
    text: str | None = None
    status: int | None = None
    extra: dict[str, Any] | None = None
    sub_attachments: list[Any] | None = None

    @property
    def is_complete(self) -> bool:
        """True when the attachment is finished and has a URL.

        >>> Attachment(status=3, file={"fileUrl": "https://x/a.mp4"}).is_complete
        True
        """
        return self.status == 3 and self.file is not None and not self.file.is_placeholder


class AttachmentInfo(ApiModel):
    """Generated attachments; ``type`` 1 = image, 2 = video, 3 = final composite."""

    attachment_info_id: str | None = Field(None, alias="attachmentInfoID")
    type: int | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    create_time: int | None = None
    attachment_info_url: str | None = None
    extra: dict[str, Any] | None = None
    status: int | None = None


class MessageFile(ApiModel):
    """A user-uploaded file quoted in a message."""

    file_name: str | None = None
    file_url: str | None = None
    poster_url: str | None = None
    type: str | None = None
    extra: dict[str, Any] | None = None


class ToolCall(ApiModel):
    """A system tool call; ``tool_call_status`` 1 = started, 2 = finished."""

    tool_name: str | None = None
    tool_call_status: int | None = None
    tool_call_args: str | None = None


class EventMessage(ApiModel):
    """The message payload of a stream event; ``msg_type`` 1 = user, 2 = system."""

    msg_id: str | None = None
    parent_msg_id: str | None = None
    msg_type: int | None = None
    is_quota: bool | None = None
    timestamp: int | None = None
    msg_content: str | None = None
    files: list[MessageFile] | None = None
    tool_call: ToolCall | None = None
    attachment_info: AttachmentInfo | None = None


class RecommendedTemplate(ApiModel):
    """A template the agent recommends at the end of a generation (``recTemplateList``)."""

    id: str | None = None
    name: str | None = None


class FinalVideo(BaseModel):
    """The finished video announced by the stream (or by GET videos/{videoId} after a recovery).

    >>> v = FinalVideo(url="https://cdn/w.mp4", no_watermark_url="https://cdn/n.mp4")
    >>> v.best_url
    'https://cdn/n.mp4'
    """

    url: str
    no_watermark_url: str | None = None
    poster_url: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    fps: float | None = None

    @property
    def best_url(self) -> str:
        """The no-watermark URL when the account has one, else the watermarked URL."""
        return self.no_watermark_url or self.url


class GeneratedImage(BaseModel):
    """An intermediate image produced by the agent (for example the first frame)."""

    url: str
    file_name: str | None = None


EventStatus = Literal["created", "connected", "heartbeat", "progress", "finished"]


class StreamEvent(ApiModel):
    """One ``data:`` event of the agent-create stream: the endpoint's whole documented JSON model.

    Every field is optional, and unknown fields are kept in ``model_extra``.

    >>> ev = StreamEvent.model_validate_json('{"status":"progress","type":1,"message":{"msgContent":"Generating video..."}}')
    >>> ev.progress_text
    'Generating video...'
    """

    status: str | None = None
    video_id: str | None = None
    timestamp: int | None = None
    project_id: str | None = Field(None, alias="projectID")
    section_id: str | None = Field(None, alias="sectionID")
    chat_id: str | None = Field(None, alias="chatID")
    code: int | None = None
    type: int | None = None
    need_user_input: bool | None = None
    is_finished: bool | None = None
    err_code: int | None = None
    err_msg: str | None = None
    message: EventMessage | None = None
    rec_template_list: list[RecommendedTemplate] | None = None

    @property
    def is_heartbeat(self) -> bool:
        """True for the keep-alive events sent about every 10 seconds."""
        return self.status == "heartbeat"

    @property
    def is_error(self) -> bool:
        """True when the event reports an error (``errCode`` non-zero, or a ``code`` of 400 or more)."""
        return bool(self.err_code) or (self.code is not None and self.code >= 400)

    @property
    def progress_text(self) -> str | None:
        """Human-readable progress: the system message text, or the state of an attachment.

        >>> StreamEvent(status="progress", type=2, message={"attachmentInfo": {"attachments": [
        ...     {"status": 2, "file": {"fileName": "processing"}}]}}).progress_text
        'image: processing'
        """
        msg = self.message
        if msg is None:
            if self.is_finished:
                return "agent finished"
            return None
        if msg.msg_content and (msg.msg_type == 2 or self.status == "progress"):
            return msg.msg_content
        info = msg.attachment_info
        if info is not None and info.attachments:
            kind = "video" if info.type in (2, 3) else "image"
            states = []
            for att in info.attachments:
                if att.is_complete and att.file is not None:
                    states.append(f"{att.file.file_name or 'file'} ready")
                else:
                    states.append("processing")
            return f"{kind}: {', '.join(states)}"
        if msg.tool_call is not None and msg.tool_call.tool_name:
            state = "finished" if msg.tool_call.tool_call_status == 2 else "started"
            return f"tool {msg.tool_call.tool_name} {state}"
        return None

    def _attachments(self) -> list[tuple[AttachmentInfo, Attachment]]:
        info = self.message.attachment_info if self.message else None
        return [(info, att) for att in info.attachments] if info else []

    @property
    def final_video(self) -> FinalVideo | None:
        """The finished video if this event announces it (a complete attachment of a video/composite).

        >>> StreamEvent.model_validate({"status": "progress", "type": 2, "message": {"attachmentInfo": {
        ...     "type": 3, "attachments": [{"status": 3, "file": {"fileName": "f.mp4",
        ...     "fileUrl": "https://cdn/f.mp4", "extra": {"width": "1280", "no_watermark_url": "https://cdn/n.mp4"}}}]}}}
        ... ).final_video.best_url
        'https://cdn/n.mp4'
        """
        for info, att in self._attachments():
            if not att.is_complete or att.file is None or att.file.file_url is None:
                continue
            f = att.file
            is_video = (
                info.type in (2, 3)
                or (f.type or "").startswith("video")
                or (f.file_name or "").lower().endswith((".mp4", ".mov", ".webm"))
            )
            if not is_video:
                continue
            extra = f.extra or FileExtra()
            return FinalVideo(
                url=f.file_url,
                no_watermark_url=extra.no_watermark_url,
                poster_url=f.poster_url,
                file_name=f.file_name,
                width=extra.width_px,
                height=extra.height_px,
                duration_s=extra.duration_s,
                fps=extra.fps_value,
            )
        return None

    @property
    def images(self) -> list[GeneratedImage]:
        """Completed intermediate images announced by this event."""
        out = []
        for info, att in self._attachments():
            if att.is_complete and att.file is not None and info.type not in (2, 3):
                name = (att.file.file_name or "").lower()
                if not name.endswith((".mp4", ".mov", ".webm")):
                    out.append(GeneratedImage(url=att.file.file_url or "", file_name=att.file.file_name))
        return out


# --------------------------------------------------------------------------------------------- videos


class VideoStatusCode(IntEnum):
    """``status`` of GET videos/{videoId}.

    >>> VideoStatusCode(14).is_moderated
    True
    """

    PENDING = 0
    PROCESSING = 1
    COMPLETED = 2
    FAILED = 3
    MODERATED = 5
    MODERATED_7 = 7
    QUEUED = 11
    PROCESSING_12 = 12
    MODERATED_14 = 14

    @property
    def is_moderated(self) -> bool:
        """5, 7 and 14 are moderation outcomes."""
        return self in (VideoStatusCode.MODERATED, VideoStatusCode.MODERATED_7, VideoStatusCode.MODERATED_14)

    @property
    def is_final(self) -> bool:
        """Completed, failed or moderated: the status will not change any more."""
        return self in (VideoStatusCode.COMPLETED, VideoStatusCode.FAILED) or self.is_moderated

    @property
    def label(self) -> str:
        """A short human label."""
        return _STATUS_LABELS[self]


_STATUS_LABELS = {
    VideoStatusCode.PENDING: "pending",
    VideoStatusCode.PROCESSING: "processing",
    VideoStatusCode.COMPLETED: "completed",
    VideoStatusCode.FAILED: "failed",
    VideoStatusCode.MODERATED: "moderated",
    VideoStatusCode.MODERATED_7: "moderated",
    VideoStatusCode.QUEUED: "queued",
    VideoStatusCode.PROCESSING_12: "processing",
    VideoStatusCode.MODERATED_14: "moderated",
}


class OriginFile(ApiModel):
    """An input file of a video (``originFiles``)."""

    id: str | None = None
    url: str | None = None
    type: str | None = None


class VideoStatus(ApiModel):
    """The body of GET videos/{videoId}.

    >>> s = VideoStatus.model_validate({"videoId": "v", "status": 2, "downloadURL": "https://c/n.mp4",
    ...                                 "videoURL": "https://c/w.mp4", "width": 1280, "height": 720})
    >>> (s.is_final, s.is_completed, s.final_video().best_url)
    (True, True, 'https://c/n.mp4')
    """

    id: str | None = None
    video_id: str | None = None
    desc: str | None = None
    cover_url: str | None = Field(None, alias="coverURL")
    video_url: str | None = Field(None, alias="videoURL")
    download_url: str | None = Field(None, alias="downloadURL")
    status: int | None = None
    status_label: str | None = None
    status_final: bool | None = None
    message: str | None = None
    percent: float | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    origin_files: list[OriginFile] | None = None
    can_appeal: bool | None = None
    can_retry: bool | None = None

    @property
    def code(self) -> VideoStatusCode | None:
        """The status as an enum member, or None for a status this library does not know."""
        try:
            return VideoStatusCode(self.status) if self.status is not None else None
        except ValueError:
            return None

    @property
    def is_final(self) -> bool:
        """True when the video will not change any more."""
        code = self.code
        return bool(self.status_final) or (code is not None and code.is_final)

    @property
    def is_completed(self) -> bool:
        """True when the video is ready."""
        return self.status == VideoStatusCode.COMPLETED

    @property
    def is_failed(self) -> bool:
        """True when generation failed (status 3)."""
        return self.status == VideoStatusCode.FAILED

    @property
    def is_moderated(self) -> bool:
        """True when the video was stopped by moderation (5, 7, 14)."""
        code = self.code
        return code is not None and code.is_moderated

    def final_video(self) -> FinalVideo | None:
        """The video as a :class:`FinalVideo`, when completed."""
        url = self.video_url or self.download_url
        if not self.is_completed or not url:
            return None
        return FinalVideo(
            url=url,
            no_watermark_url=self.download_url,
            poster_url=self.cover_url,
            width=self.width,
            height=self.height,
            duration_s=self.duration,
        )


# --------------------------------------------------------------------------------------------- templates


class TemplateAsset(ApiModel):
    """``videoAsset`` of a template in GET videos/agent-templates."""

    id: str | None = None
    desc: str | None = None
    cover_url: str | None = Field(None, alias="coverURL")
    video_url: str | None = Field(None, alias="videoURL")
    download_url: str | None = Field(None, alias="downloadURL")
    status: int | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    resolution: str | None = None
    title: str | None = None
    agent_template_id: str | None = Field(None, alias="agentTemplateID")
    agent_template_name: str | None = None
    aspect_ratio: str | None = None
    tags: list[Any] | None = None


class AgentTemplate(ApiModel):
    """One item of the template list."""

    id: str
    create_time: int | None = None
    video_asset: TemplateAsset | None = None
    like: dict[str, Any] | None = None
    author: dict[str, Any] | None = None
    card_type: int | None = None
    tab_id: str | None = Field(None, alias="tabID")

    @property
    def template_id(self) -> str:
        """The id to pass as ``templateId`` (the asset's ``agentTemplateID`` when present)."""
        return (self.video_asset.agent_template_id if self.video_asset else None) or self.id

    @property
    def name(self) -> str | None:
        """The template's display name."""
        asset = self.video_asset
        return (asset.agent_template_name or asset.title) if asset else None


class TemplateList(ApiModel):
    """A page of GET videos/agent-templates."""

    video_list: list[AgentTemplate] = Field(default_factory=list)
    has_next: bool | None = None


class TemplateDetail(ApiModel):
    """GET videos/agent-templates?templateId=...: what a template needs.

    The field names here are a guess (the public documentation does not show them); unknown fields are kept.

    >>> TemplateDetail(template_id="1", need_text_input=False, need_image_input=True).accepts_prompt
    False
    """

    template_id: str | None = None
    name: str | None = None
    desc: str | None = None
    need_text_input: bool | None = None
    need_image_input: bool | None = None
    text_required: bool | None = None
    prompt_placeholder: str | None = None
    credits: int | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    fps: float | None = None

    @property
    def accepts_prompt(self) -> bool:
        """False only when the template is known to take no text."""
        return self.need_text_input is not False

    @property
    def requires_prompt(self) -> bool:
        """True when the template needs a text prompt."""
        return bool(self.text_required)

    @property
    def requires_image(self) -> bool:
        """True when the template needs an image (fileID)."""
        return bool(self.need_image_input)


# --------------------------------------------------------------------------------------------- files, accounts


class UploadedFile(ApiModel):
    """The answer of POST files.

    >>> UploadedFile.model_validate({"fileID": "user:1-minimax:2-file:3", "ossPath": "https://o/p.png"}).file_id
    'user:1-minimax:2-file:3'
    """

    file_id: str = Field(..., alias="fileID")
    oss_path: str = Field(..., alias="ossPath")

    @property
    def account(self) -> str | None:
        """The MiniMax account that owns the file (parsed from the fileID), or None."""
        return parse_composite_id(self.file_id).get("minimax")


class FileInfo(ApiModel):
    """An item of GET files (the API spells these in snake_case)."""

    model_config = ConfigDict(populate_by_name=True, extra="allow", coerce_numbers_to_str=True)

    file_id: str | None = None
    file_name: str | None = None
    file_type: str | None = None
    cdn_url: str | None = None
    oss_path: str | None = None
    file_scene: Any = None
    file_status: Any = None


class Account(ApiModel):
    """A configured MiniMax account (GET accounts)."""

    account: str | None = None
    max_jobs: int | None = None


class ExecutingJob(ApiModel):
    """A job in GET scheduler/available's ``executing`` list."""

    video_id: str | None = None
    started: Any = None
    elapsed: Any = None
    reply_url: str | None = None
    reply_ref: str | None = None


class AccountCapacity(ApiModel):
    """An account's capacity in GET scheduler/available."""

    account: str | None = None
    max_jobs: int | None = None
    executing: int | None = None
    available: int | None = None


class SchedulerAvailable(ApiModel):
    """GET scheduler/available."""

    executing: list[ExecutingJob] = Field(default_factory=list)
    available: list[AccountCapacity] = Field(default_factory=list)


class ApiError(ApiModel):
    """The error body ``{"error": "...", "code": N}``."""

    error: str | None = None
    code: int | None = Field(None, validation_alias=AliasChoices("code", "status"))


def parse_composite_id(value: str) -> dict[str, str]:
    """Split an id of the form ``user:<id>-minimax:<account>-video:<id>`` into its parts.

    >>> parse_composite_id("user:1234-minimax:1234567-video:7654321")
    {'user': '1234', 'minimax': '1234567', 'video': '7654321'}
    """
    parts: dict[str, str] = {}
    for piece in value.split("-"):
        name, sep, ident = piece.partition(":")
        if sep:
            parts[name] = ident
    return parts


def _as_int(value: str | None) -> int | None:
    number = _as_float(value)
    return int(number) if number is not None else None


def _as_float(value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return None
