"""The request body of ``POST videos/agent-create``, checked before any network call.

>>> AgentCreateRequest(template_id="393769180141805569", prompt="A fox runs").to_payload()
{'templateId': '393769180141805569', 'prompt': 'A fox runs'}
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# doc (seed page): replyUrl/replyRef at most 1024 characters, maxJobs 1...10.
# 2nd (third-party sources): a prompt of at most 2000 characters.
MAX_PROMPT_CHARS = 2000
MAX_REPLY_CHARS = 1024
MIN_MAX_JOBS, MAX_MAX_JOBS = 1, 10


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

    # Every field and rule below is doc (seed page) unless marked otherwise.
    account: str | None = Field(None, description="MiniMax account to use; random free account if omitted.")
    template_id: str = Field(
        ...,
        alias="templateId",
        min_length=1,
        description="Agent template id (see GET videos/agent-templates).",
    )
    prompt: str | None = Field(  # the 2000-character limit is 2nd
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
