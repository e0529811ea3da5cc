"""What every response model shares: the base class, composite ids and lenient number parsing.

>>> parse_composite_id("user:1-minimax:2-video:3")["minimax"]
'2'
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


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

        >>> from minimax_dagster.api.models import ApiError
        >>> ApiError(error="Unauthorized", code=401).to_wire()
        {'error': 'Unauthorized', 'code': 401}
        """
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def parse_composite_id(value: str) -> dict[str, str]:
    """Split an id of the form ``user:<id>-minimax:<account>-video:<id>`` into its parts (doc: the id format).

    >>> parse_composite_id("user:1234-minimax:1234567-video:7654321")
    {'user': '1234', 'minimax': '1234567', 'video': '7654321'}
    """
    parts: dict[str, str] = {}
    for piece in value.split("-"):
        name, sep, ident = piece.partition(":")
        if sep:
            parts[name] = ident
    return parts


def as_int(value: str | float | None) -> int | None:
    """A number sent as text (or as a number) as an int, or None when absent or not a number.

    >>> as_int("1280"), as_int("wide"), as_int(None)
    (1280, None, None)
    """
    number = as_float(value)
    return int(number) if number is not None else None


def as_float(value: str | float | None) -> float | None:
    """A number sent as text (or as a number) as a float, or None when absent or not a number.

    >>> as_float("6"), as_float("")
    (6.0, None)
    """
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# The names the single models module used to have (kept importable from the package).
_as_int = as_int
_as_float = as_float
