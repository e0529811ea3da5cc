"""What a run will produce, settled before anything is paid for: :class:`VideoPlan`, built from the upstream
prompts by :func:`rows_of` and :func:`validated_rows`.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from minimax_dagster.api.models import TemplateDetail
from minimax_dagster.metadata.markdown import MAX_LISTED
from minimax_dagster.production.prompts import PromptValidationError, VideoPrompt, validate_prompt_rows

__all__ = ["VideoPlan", "rows_of", "validated_rows"]


@dataclass(frozen=True)
class VideoPlan:
    """What a run will produce, settled before anything is paid for.

    ``rows`` holds each partition's validated prompts (``None`` for an unpartitioned asset), each with its
    ``partition`` set; ``several`` says whether the value covers several partitions (``PartitionedValues``);
    ``capacity`` is usually a :class:`~minimax_dagster.api.models.CapacityByAccount` (with what was skipped);
    ``templates`` the details looked up (``None`` when templates are not checked).

    >>> plan = VideoPlan(rows={"a": [VideoPrompt(id="x", template_id="1", partition="a")], "b": []}, capacity={})
    >>> plan.total, [p.id for p in plan.prompts]
    (1, ['x'])
    """

    rows: dict[str | None, list[VideoPrompt]]
    capacity: dict[str, int]
    several: bool = False
    templates: dict[str, TemplateDetail | None] | None = None

    @property
    def prompts(self) -> list[VideoPrompt]:
        """Every prompt of the run, partition by partition."""
        return [p for prompts in self.rows.values() for p in prompts]

    @property
    def total(self) -> int:
        """How many prompts the run has."""
        return sum(len(prompts) for prompts in self.rows.values())


def rows_of(value: Any, partition: str | None) -> list[Any]:
    """The prompt rows of one partition's upstream value (a list; ``None`` is none), or a step failure saying
    what the upstream asset must return.

    >>> rows_of(("a", "b"), None), rows_of(None, "p")
    (['a', 'b'], [])
    """
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)):
        where = f" of partition {partition!r}" if partition else ""
        raise dg.Failure(
            f"the prompts{where} must be a list of strings or rows, got {type(value).__name__}; "
            "return a list from the upstream asset",
            allow_retries=False,
        )
    return list(value)


def validated_rows(
    by_partition: dict[str | None, list[Any]],
    template_id: str | None,
    templates: dict[str, TemplateDetail | None] | None,
) -> dict[str | None, list[VideoPrompt]]:
    """Each partition's rows validated (each prompt carrying its partition), or one step failure listing every
    invalid row of the run before anything is paid for.

    >>> [(p.prompt, p.partition) for p in validated_rows({"2026-12-07": ["A fox"]}, "1", None)["2026-12-07"]]
    [('A fox', '2026-12-07')]
    """
    out: dict[str | None, list[VideoPrompt]] = {}
    problems: list[str] = []
    for partition, rows in by_partition.items():
        try:
            valid = validate_prompt_rows(rows, default_template_id=template_id, templates=templates)
        except PromptValidationError as exc:
            where = f"partition {partition!r}: " if partition is not None else ""
            problems.extend(f"{where}{e}" for e in exc.errors)
            continue
        # The partition travels with the prompt (a row cannot claim another partition than the one it is in).
        out[partition] = [p.model_copy(update={"partition": partition}) for p in valid]
    if problems:
        shown = "\n".join(f"  - {p}" for p in problems[:MAX_LISTED])
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise dg.Failure(
            description=f"{len(problems)} invalid prompt row(s); no video was created:\n{shown}{more}",
            metadata={
                "invalid_rows": len(problems),
                "first_problems": dg.MetadataValue.json(problems[:MAX_LISTED]),
            },
            allow_retries=False,
        )
    return out
