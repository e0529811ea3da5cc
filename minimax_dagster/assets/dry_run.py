"""Never billed by surprise: the dry run's report, and the cap on new paid videos.

A run's :class:`~minimax_dagster.production.preview.ProductionPlan` (found by reading only) says per prompt
whether it would be created (paid), reused, reattached, made once for several rows, or fail without a create.
:class:`PlanReport` words it for a person: one log line per prompt, a run summary, and per partition the
metadata of the dry run's ``AssetObservation`` (counts, credits when the template detail gives them, a table).
:func:`cap_failure` is the failure of a run that would pay for more videos than ``max_new_videos``.

>>> from minimax_dagster.api.models import TemplateDetail
>>> from minimax_dagster.production.preview import PlannedOutcome, ProductionPlan
>>> from minimax_dagster.production.prompts import VideoPrompt
>>> fox = VideoPrompt(id="fox", prompt="A fox", template_id="1")
>>> report = PlanReport(ProductionPlan([PlannedOutcome(fox, "create", "v1-a", reason="a new job")]),
...                     {"1": TemplateDetail(template_id="1", credits=5)})
>>> report.lines()
['[fox] would be created: paid, 5 credit(s) (a new job)']
>>> report.summary()
'dry run: 1 prompt(s): 1 would be created (paid, 5 credit(s)), 0 reused, 0 reattached, 0 same video as another row, 0 would fail without a create; nothing was created or written'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from minimax_dagster.api.models import TemplateDetail
from minimax_dagster.metadata.markdown import ERROR_CHARS, ID_CHARS, MAX_LISTED, WORD_CHARS, escape_markdown
from minimax_dagster.metadata.tables import TABLE_ROWS
from minimax_dagster.production.preview import PlannedOutcome, ProductionPlan
from minimax_dagster.production.progress import display

#: How each decision is said in a log line and in the table.
_SAID = {
    "create": "would be created",
    "reuse": "would be reused",
    "reattach": "would be reattached",
    "same_video": "same video as another row",
    "known_fail": "would fail without a create",
}


@dataclass(frozen=True)
class PlanReport:
    """A plan with the templates looked up (``None`` when templates were not looked up, or a look-up failed).

    >>> PlanReport(ProductionPlan([]), None).credits([])
    (0, 0)
    """

    plan: ProductionPlan
    templates: Mapping[str, TemplateDetail | None] | None

    def credit(self, outcome: PlannedOutcome) -> int | None:
        """The credits a paid prompt costs, when its template detail gives them (``None`` otherwise)."""
        detail = (self.templates or {}).get(outcome.prompt.template_id or "")
        return detail.credits if detail is not None else None

    def credits(self, outcomes: Sequence[PlannedOutcome]) -> tuple[int, int]:
        """``(credits known, paid prompts whose credits are unknown)`` of ``outcomes``."""
        known = unknown = 0
        for outcome in outcomes:
            if not outcome.paid:
                continue
            credit = self.credit(outcome)
            if credit is None:
                unknown += 1
            else:
                known += credit
        return known, unknown

    def lines(self) -> list[str]:
        """One line per prompt: the decision, and why."""
        return [f"[{_name(o)}] {self._said(o)}" for o in self.plan.outcomes]

    def summary(self, outcomes: Sequence[PlannedOutcome] | None = None) -> str:
        """The run's (or ``outcomes``') decisions counted, with the credits of what would be paid for."""
        chosen = self.plan.outcomes if outcomes is None else list(outcomes)
        counts = ProductionPlan(chosen).counts()
        return (
            f"dry run: {len(chosen)} prompt(s): {counts['create']} would be created "
            f"({self._paid(chosen)}), {counts['reuse']} reused, {counts['reattach']} reattached, "
            f"{counts['same_video']} same video as another row, {counts['known_fail']} would fail without a "
            "create; nothing was created or written"
        )

    def metadata(self, outcomes: Sequence[PlannedOutcome]) -> dict[str, Any]:
        """The dry run's metadata for one partition's prompts (the ``AssetObservation`` it records).

        >>> from minimax_dagster.production.prompts import VideoPrompt
        >>> fox = VideoPrompt(id="fox", prompt="A fox", template_id="1")
        >>> md = PlanReport(ProductionPlan([]), None).metadata([PlannedOutcome(fox, "reuse", "v1-a")])
        >>> md["dry_run"], md["would_create"], md["would_reuse"], md["credits_unknown"]
        (True, 0, 1, 0)
        """
        counts = ProductionPlan(list(outcomes)).counts()
        known, unknown = self.credits(outcomes)
        return {
            "dry_run": True,
            "summary": self.summary(outcomes),
            "would_create": counts["create"],
            "would_reuse": counts["reuse"],
            "would_reattach": counts["reattach"],
            "same_video": counts["same_video"],
            "would_fail": counts["known_fail"],
            "credits": known,
            "credits_unknown": unknown,
            "plan": dg.MetadataValue.md(self.table(outcomes)),
            "plan_rows": dg.MetadataValue.json(
                [
                    {
                        "partition": o.prompt.partition,
                        "id": o.prompt.id,
                        "decision": o.decision,
                        "paid": o.paid,
                        "credits": self.credit(o) if o.paid else None,
                        "video_id": o.video_id,
                        "reason": o.reason,
                    }
                    for o in outcomes[:TABLE_ROWS]
                ]
            ),
        }

    def table(self, outcomes: Sequence[PlannedOutcome], rows: int = TABLE_ROWS) -> str:
        """A Markdown table: id, prompt, what would happen, credits, why (data text escaped)."""
        lines = ["| id | prompt | would | credits | why |", "|---|---|---|---|---|"]
        for o in outcomes[:rows]:
            credit = self.credit(o) if o.paid else None
            cells = [
                escape_markdown(o.prompt.id, ID_CHARS, break_every=WORD_CHARS),
                escape_markdown(o.prompt.prompt, ID_CHARS * 3, break_every=WORD_CHARS),
                _SAID[o.decision].removeprefix("would ") + (" (paid)" if o.paid else ""),
                "" if credit is None else str(credit),
                escape_markdown(o.reason, ERROR_CHARS, break_every=WORD_CHARS),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        if len(outcomes) > rows:
            lines.append(f"\n{len(outcomes) - rows} more prompt(s) in plan counts and the log.")
        return "\n".join(lines)

    def _said(self, outcome: PlannedOutcome) -> str:
        text = _SAID[outcome.decision]
        if outcome.paid:
            credit = self.credit(outcome)
            text += ": paid, " + ("credits unknown" if credit is None else f"{credit} credit(s)")
        return f"{text} ({outcome.reason})" if outcome.reason else text

    def _paid(self, outcomes: Sequence[PlannedOutcome]) -> str:
        known, unknown = self.credits(outcomes)
        paid = sum(o.paid for o in outcomes)
        if not paid:
            return "nothing paid"
        if not unknown:
            return f"paid, {known} credit(s)"
        if unknown == paid:
            return "paid, credits unknown (no template detail gave them)"
        return f"paid, {known} credit(s) and {unknown} prompt(s) of unknown credits"


def cap_failure(plan: ProductionPlan, cap: int, op_name: str) -> dg.Failure:
    """The failure of a run that would create more paid videos than ``cap``, raised before the first create.

    >>> from minimax_dagster.production.preview import PlannedOutcome
    >>> from minimax_dagster.production.prompts import VideoPrompt
    >>> rows = [PlannedOutcome(VideoPrompt(id=i, template_id="1"), "create", i) for i in "ab"]
    >>> print(cap_failure(ProductionPlan(rows), 1, "videos").description.splitlines()[0])
    this run would create 2 new paid video(s), more than max_new_videos=1 allows; nothing was created.
    """
    paid = [o for o in plan.outcomes if o.paid]
    listed = "\n".join(f"  - {_name(o)}" for o in paid[:MAX_LISTED])
    more = f"\n  ... and {len(paid) - MAX_LISTED} more" if len(paid) > MAX_LISTED else ""
    return dg.Failure(
        description=(
            f"this run would create {len(paid)} new paid video(s), more than max_new_videos={cap} allows; "
            "nothing was created.\n"
            f"To allow it, raise the cap for this run (run config: ops: {{{op_name}: {{config: "
            f"{{max_new_videos: {len(paid)}}}}}}}) or in the asset's definition (max_new_videos= of "
            "build_minimax_video_asset, or the component's max_new_videos attribute); to see what would be "
            "paid for first, run with dry_run: true. The prompts that would be paid for:\n"
            f"{listed}{more}"
        ),
        metadata={"max_new_videos": cap, "new_paid_videos": len(paid), **plan.counts()},
        allow_retries=False,
    )


def _name(outcome: PlannedOutcome) -> str:
    return display((outcome.prompt.partition, outcome.prompt.id))
