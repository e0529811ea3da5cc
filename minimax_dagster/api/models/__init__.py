"""Typed models of the useapi.net MiniMax API around ``POST videos/agent-create``, one module per subject.

Python attributes are snake_case; the API's own names (``templateId``, ``fileID``, ``projectID`` ...) are the
aliases used on the wire. Both spellings are accepted on input. Response models keep unknown fields
(``extra="allow"``), so a field the API adds tomorrow never breaks a pipeline; the request model refuses unknown
fields, because there a stray key is a typo that would otherwise be silently dropped.

==================  ==================================================================
``create_request``  the body of POST videos/agent-create
``events``          the events of its stream
``videos``          GET videos/{videoId} and the account's list, GET videos/
``templates``       GET videos/agent-templates
``files``           POST files, GET files
``accounts``        GET accounts, GET scheduler/available, which accounts make videos
``error_body``      the API's error answer
==================  ==================================================================

This package is part of the API layer: it never imports dagster.

>>> req = AgentCreateRequest(template_id="393769180141805569", prompt="A fox runs")
>>> req.to_payload()
{'templateId': '393769180141805569', 'prompt': 'A fox runs'}
"""

from minimax_dagster.api.models.accounts import (
    Account,
    AccountCapacity,
    AccountJwt,
    AccountUser,
    CapacityByAccount,
    ExecutingJob,
    SchedulerAvailable,
    split_video_accounts,
    video_capacity,
)
from minimax_dagster.api.models.base import ApiModel, as_float, as_int, parse_composite_id

# The names the single models module gave these helpers stay importable.
from minimax_dagster.api.models.base import _as_float as _as_float
from minimax_dagster.api.models.base import _as_int as _as_int
from minimax_dagster.api.models.create_request import (
    MAX_MAX_JOBS,
    MAX_PROMPT_CHARS,
    MAX_REPLY_CHARS,
    MIN_MAX_JOBS,
    AgentCreateRequest,
)
from minimax_dagster.api.models.error_body import ApiError
from minimax_dagster.api.models.events import (
    Attachment,
    AttachmentFile,
    AttachmentInfo,
    EventMessage,
    EventStatus,
    FileExtra,
    FinalVideo,
    GeneratedImage,
    MessageFile,
    RecommendedTemplate,
    StreamEvent,
    ToolCall,
)
from minimax_dagster.api.models.files import FileInfo, UploadedFile
from minimax_dagster.api.models.templates import (
    AgentTemplate,
    TemplateAsset,
    TemplateAuthor,
    TemplateDetail,
    TemplateLike,
    TemplateList,
    TemplateTag,
)
from minimax_dagster.api.models.videos import _STATUS_LABELS as _STATUS_LABELS
from minimax_dagster.api.models.videos import (
    OriginFile,
    VideoListItem,
    VideoPage,
    VideoStatus,
    VideoStatusCode,
)

__all__ = [
    "MAX_MAX_JOBS",
    "MAX_PROMPT_CHARS",
    "MAX_REPLY_CHARS",
    "MIN_MAX_JOBS",
    "Account",
    "AccountCapacity",
    "AccountJwt",
    "AccountUser",
    "AgentCreateRequest",
    "AgentTemplate",
    "ApiError",
    "ApiModel",
    "Attachment",
    "AttachmentFile",
    "AttachmentInfo",
    "CapacityByAccount",
    "EventMessage",
    "EventStatus",
    "ExecutingJob",
    "FileExtra",
    "FileInfo",
    "FinalVideo",
    "GeneratedImage",
    "MessageFile",
    "OriginFile",
    "RecommendedTemplate",
    "SchedulerAvailable",
    "StreamEvent",
    "TemplateAsset",
    "TemplateAuthor",
    "TemplateDetail",
    "TemplateLike",
    "TemplateList",
    "TemplateTag",
    "ToolCall",
    "UploadedFile",
    "VideoListItem",
    "VideoPage",
    "VideoStatus",
    "VideoStatusCode",
    "as_float",
    "as_int",
    "parse_composite_id",
    "split_video_accounts",
    "video_capacity",
]
