"""The events of the agent-create stream: the seed page's whole JSON data model, with helpers.

Every field here is doc (the seed page's "JSON Data Model"); the helpers (``final_video``, ``images``,
``progress_text``) are this library's reading of it.

>>> ev = StreamEvent.model_validate_json('{"status":"progress","type":1,"message":{"msgContent":"Generating video..."}}')
>>> ev.progress_text
'Generating video...'
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from minimax_dagster.api.models.base import ApiModel, as_float, as_int


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
        return as_int(self.width)

    @property
    def height_px(self) -> int | None:
        """Height in pixels, or None when absent or not a number."""
        return as_int(self.height)

    @property
    def duration_s(self) -> float | None:
        """Duration in seconds, or None."""
        return as_float(self.duration)

    @property
    def fps_value(self) -> float | None:
        """Frames per second, or None."""
        return as_float(self.fps)

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
    """One generated media attachment; ``status`` 2 = processing, 3 = complete.

    >>> Attachment.model_validate({"attachmentID": "a1", "status": 2}).attachment_id
    'a1'
    """

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
    """Generated attachments; ``type`` 1 = image, 2 = video, 3 = final composite.

    >>> len(AttachmentInfo.model_validate({"type": 2, "attachments": [{"status": 2}]}).attachments)
    1
    """

    attachment_info_id: str | None = Field(None, alias="attachmentInfoID")
    type: int | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    create_time: int | None = None
    attachment_info_url: str | None = None
    extra: dict[str, Any] | None = None
    status: int | None = None


class MessageFile(ApiModel):
    """A user-uploaded file quoted in a message.

    >>> MessageFile.model_validate({"fileName": "a.png", "fileUrl": "https://c/a.png"}).file_name
    'a.png'
    """

    file_name: str | None = None
    file_url: str | None = None
    poster_url: str | None = None
    type: str | None = None
    extra: dict[str, Any] | None = None


class ToolCall(ApiModel):
    """A system tool call; ``tool_call_status`` 1 = started, 2 = finished.

    >>> ToolCall.model_validate({"toolName": "render", "toolCallStatus": 2}).tool_call_status
    2
    """

    tool_name: str | None = None
    tool_call_status: int | None = None
    tool_call_args: str | None = None


class EventMessage(ApiModel):
    """The message payload of a stream event; ``msg_type`` 1 = user, 2 = system.

    >>> EventMessage.model_validate({"msgId": "m1", "msgType": 1, "msgContent": "A fox"}).msg_content
    'A fox'
    """

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
    """A template the agent recommends at the end of a generation (``recTemplateList``).

    >>> RecommendedTemplate.model_validate({"id": "t1", "name": "Vlog"}).name
    'Vlog'
    """

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
    """An intermediate image produced by the agent (for example the first frame).

    >>> GeneratedImage(url="https://c/first.png").file_name is None
    True
    """

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
