"""Prompt rows: what an upstream asset hands to the video asset, and their validation before any paid call.

A row is a plain string (the prompt), a mapping, or a :class:`VideoPrompt`. Every row is checked first (empty or
over-long prompt, unknown or missing template, input the template does not take or needs, duplicate id); all the
problems are reported together, one line per row, before a single video is created.

This module does not import dagster.

>>> rows = validate_prompt_rows(["A fox in snow", {"id": "b", "prompt": "A heron"}], default_template_id="1")
>>> [(r.id, r.template_id) for r in rows]
[('p-02ea7a26d27b', '1'), ('b', '1')]
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from minimax_dagster.api.models import MAX_PROMPT_CHARS, MAX_REPLY_CHARS, TemplateDetail
from minimax_dagster.storage.source_objects import parse_s3_uri

MAX_ID_CHARS = 200
MAX_REPORTED_ERRORS = 50
_FILE_ID = re.compile(r"^user:[^\s]+-minimax:[^\s]+-file:[^\s]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

ImageKind = Literal["none", "file_id", "url", "s3", "path"]


class VideoPrompt(BaseModel):
    """One video to make.

    ``image`` is a local file path, an http(s) URL, an ``s3://bucket/key`` object (an upstream asset's image),
    or the fileID of an image already uploaded (then ``oss_path`` must come with it). ``id`` is stable across
    runs; when a row has none, it is derived from the row's content. ``id`` is unique within a ``partition``:
    two rows with the same id in different partitions are different rows.

    >>> VideoPrompt(id="fox", prompt="A fox", template_id="1").image_kind
    'none'
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    id: str = Field(..., min_length=1, max_length=MAX_ID_CHARS, description="Stable id of the row.")
    prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS, description="Text prompt (≤ 2000 chars).")
    template_id: str | None = Field(
        None, alias="templateId", description="Agent template; default from the asset."
    )
    image: str | None = Field(
        None, description="Local path, http(s) URL, s3://bucket/key or fileID of the input image."
    )
    oss_path: str | None = Field(None, alias="ossPath", description="ossPath of an uploaded fileID.")
    reply_ref: str | None = Field(None, alias="replyRef", max_length=MAX_REPLY_CHARS)
    account: str | None = Field(None, description="Pin this row to one MiniMax account.")
    partition: str | None = Field(
        None, description="The Dagster partition the row belongs to (set by the asset, not by datasets)."
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Free-form data carried to the manifest."
    )

    @field_validator("id")
    @classmethod
    def _printable_id(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("id contains control characters; use printable text")
        return value

    @field_validator("template_id", mode="before")
    @classmethod
    def _template_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value:
            raise ValueError("prompt is empty; give text or leave it out for image-only templates")
        return value

    @property
    def image_kind(self) -> ImageKind:
        """``none``, ``file_id``, ``url``, ``s3`` or ``path``.

        >>> VideoPrompt(id="a", template_id="1", image="s3://imgs/faces/ada.png").image_kind
        's3'
        """
        if not self.image:
            return "none"
        if _FILE_ID.match(self.image):
            return "file_id"
        if self.image.startswith(("http://", "https://")):
            return "url"
        if self.image[:5].lower() == "s3://":
            return "s3"
        return "path"

    @property
    def label(self) -> str:
        """How log lines name the row: ``partition/id`` when it has a partition, else its id.

        >>> VideoPrompt(id="fox", template_id="1", partition="2024-05-01").label
        '2024-05-01/fox'
        """
        return f"{self.partition}/{self.id}" if self.partition else self.id


@dataclass(frozen=True)
class RowError:
    """A problem with one row: its position, its id when known, the field and the fix."""

    index: int
    row_id: str | None
    field: str
    message: str

    def __str__(self) -> str:
        # The id comes from the data: shorten it, so that a huge id cannot blow up the error message.
        shown = self.row_id if self.row_id is None or len(self.row_id) <= 80 else self.row_id[:80] + "…"
        who = f"row {self.index}" + (f" (id {shown!r})" if shown else "")
        return f"{who}: {self.field}: {self.message}"


class PromptValidationError(ValueError):
    """Raised when rows are invalid; ``errors`` lists every problem, the message the first 50.

    >>> try:
    ...     validate_prompt_rows([""], default_template_id="1")
    ... except PromptValidationError as exc:
    ...     print(exc.errors[0])
    row 0: prompt: prompt is empty; give text or leave it out for image-only templates
    """

    def __init__(self, errors: list[RowError], total_rows: int) -> None:
        self.errors = errors
        self.total_rows = total_rows
        shown = "\n".join(f"  - {e}" for e in errors[:MAX_REPORTED_ERRORS])
        more = (
            f"\n  ... and {len(errors) - MAX_REPORTED_ERRORS} more"
            if len(errors) > MAX_REPORTED_ERRORS
            else ""
        )
        super().__init__(
            f"{len(errors)} problem(s) in {total_rows} prompt row(s); nothing was generated:\n{shown}{more}"
        )


def derive_id(prompt: str | None, template_id: str | None, image: str | None) -> str:
    """A stable id for a row that has none: a short hash of its content.

    >>> derive_id("A fox in snow", "1", None)
    'p-02ea7a26d27b'
    """
    text = "\x1f".join(part or "" for part in (template_id, prompt, image))
    return "p-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _row_to_mapping(row: Any) -> dict[str, Any]:
    if isinstance(row, VideoPrompt):
        return row.model_dump(exclude_none=True)
    if isinstance(row, str):
        return {"prompt": row}
    if isinstance(row, BaseModel):
        return row.model_dump(exclude_none=True)
    if isinstance(row, Mapping):
        return dict(row)
    raise TypeError(f"expected a string or a mapping with 'prompt', got {type(row).__name__}")


def validate_prompt_rows(
    rows: Iterable[Any],
    *,
    default_template_id: str | None = None,
    templates: Mapping[str, TemplateDetail | None] | None = None,
) -> list[VideoPrompt]:
    """Validate every row and return them as :class:`VideoPrompt` s, or raise :class:`PromptValidationError`.

    ``templates`` maps template ids to their details (GET videos/agent-templates?templateId=); a template
    mapped to ``None`` does not exist. With details, the rows are also checked against what each template
    takes: a prompt for a template without text, a missing image for one that needs it, and so on.

    >>> try:
    ...     validate_prompt_rows([{"prompt": "x"}])
    ... except PromptValidationError as exc:
    ...     print(exc.errors[0])
    row 0: template_id: missing; give the row a template_id or the asset a default template_id
    """
    out: list[VideoPrompt] = []
    errors: list[RowError] = []
    seen: dict[tuple[str | None, str], int] = {}
    total = 0
    for index, row in enumerate(rows):
        total += 1
        try:
            data = _row_to_mapping(row)
        except TypeError as exc:
            errors.append(RowError(index, None, "row", str(exc)))
            continue
        raw_id = data.get("id")
        row_id = str(raw_id) if raw_id is not None else None
        if data.get("template_id") is None and data.get("templateId") is None:
            if default_template_id is None:
                errors.append(
                    RowError(
                        index,
                        row_id,
                        "template_id",
                        "missing; give the row a template_id or the asset a default template_id",
                    )
                )
                continue
            data["template_id"] = default_template_id
        if raw_id is None:
            prompt = data.get("prompt")
            template = data.get("template_id") or data.get("templateId")
            data["id"] = derive_id(
                prompt.strip() if isinstance(prompt, str) else None, str(template), data.get("image")
            )
        elif not isinstance(raw_id, str):
            data["id"] = str(raw_id)
        try:
            item = VideoPrompt.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"]) or "row"
                errors.append(RowError(index, row_id, field, _friendly(err)))
            continue
        problems = _check_against_template(item, templates)
        if (item.partition, item.id) in seen:
            problems.append(
                ("id", f"duplicate of row {seen[item.partition, item.id]}; ids must be unique in a partition")
            )
        else:
            seen[item.partition, item.id] = index
        if item.image_kind == "path" and not Path(item.image or "").is_file():
            problems.append(
                (
                    "image",
                    f"file {item.image!r} not found; give an existing path, URL, s3://bucket/key or fileID",
                )
            )
        if item.image_kind == "s3":
            try:
                parse_s3_uri(item.image or "")
            except ValueError as exc:
                problems.append(("image", str(exc)))
        if item.image_kind == "file_id" and not item.oss_path:
            problems.append(
                ("oss_path", "required with a fileID image; pass the ossPath returned by POST files")
            )
        if item.oss_path and item.image_kind != "file_id":
            problems.append(("oss_path", "only allowed with a fileID image; remove it"))
        if problems:
            errors.extend(RowError(index, item.id, f, m) for f, m in problems)
            continue
        out.append(item)
    if errors:
        raise PromptValidationError(errors, total)
    return out


def _check_against_template(
    item: VideoPrompt, templates: Mapping[str, TemplateDetail | None] | None
) -> list[tuple[str, str]]:
    if templates is None or item.template_id not in templates:
        return []
    detail = templates[item.template_id or ""]
    if detail is None:
        return [
            ("template_id", f"template {item.template_id!r} does not exist; pick one from agent-templates")
        ]
    problems = []
    if item.prompt and not detail.accepts_prompt:
        problems.append(("prompt", f"template {item.template_id} takes no text prompt; remove the prompt"))
    if not item.prompt and detail.requires_prompt:
        problems.append(("prompt", f"template {item.template_id} needs a text prompt; add one"))
    if not item.image and detail.requires_image:
        problems.append(("image", f"template {item.template_id} needs an input image; add image"))
    if item.image and detail.need_image_input is False:
        problems.append(("image", f"template {item.template_id} takes no image; remove image"))
    return problems


def _friendly(err: Any) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "string_too_long":
        return f"too long ({len(str(err.get('input', '')))} characters, at most {ctx.get('max_length')}); shorten it"
    if kind == "extra_forbidden":
        return (
            "unknown field; allowed: id, prompt, template_id, image, oss_path, reply_ref, account, partition, "
            "metadata"
        )
    if kind in ("string_type", "string_too_short"):
        return f"{err.get('msg', 'invalid')}; give non-empty text"
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")
