"""The error body of the API.

doc: ``{"error": "...", "code": N}`` on most endpoints; agent-create's 400 is ``{"error": "..."}`` without
``code`` (seed page), so ``code`` is optional.

>>> ApiError.model_validate({"error": "Not found.", "code": 404}).code
404
"""

from __future__ import annotations

from pydantic import AliasChoices, Field

from minimax_dagster.api.models.base import ApiModel


class ApiError(ApiModel):
    """The error body ``{"error": "...", "code": N}`` (``code`` absent on agent-create's 400).

    >>> ApiError.model_validate({"error": "template is required"}).code is None
    True
    """

    error: str | None = None
    code: int | None = Field(None, validation_alias=AliasChoices("code", "status"))
