"""The spend budget as Dagster configuration: :class:`Budget` on the MiniMax resource (Python, YAML, environment).

``MiniMaxResource(budget=Budget(new_videos=300, per="day", timezone="Europe/Berlin"))`` caps what every asset
using the resource creates, across runs, steps, processes and workers: each create reserves its cost in the
window's ledger in S3 first (:mod:`~minimax_dagster.production.budget`). ``python -m minimax_dagster.budget
show`` prints what each window spent.

>>> budget = Budget(new_videos=300, per="day", timezone="Europe/Berlin",
...                 windows=[BudgetWindow(per="month", new_videos=5000)])
>>> [(w.per, w.new_videos) for w in budget.policy().windows]
[('day', 300), ('month', 5000)]
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from pydantic import Field, model_validator

from minimax_dagster.production.budget_windows import (
    DEFAULT_LEDGER_PREFIX,
    DEFAULT_WARN_AT,
    BudgetPolicy,
    WindowLimit,
)

__all__ = ["Budget", "BudgetWindow", "budget_from_env"]


class BudgetWindow(dg.Config):
    """A further window of a :class:`Budget` (a month beside a day, say), in the budget's time zone.

    >>> BudgetWindow(per="month", credits=90000).credits
    90000
    """

    per: str = Field(
        description="The window: day, week (from Monday) or month, midnight in the budget's timezone."
    )
    new_videos: int | None = Field(default=None, ge=0, description="Most new paid videos in the window.")
    credits: int | None = Field(default=None, ge=0, description="Most credits in the window.")

    def limit(self) -> WindowLimit:
        """This window as the production layer's limit (raises ``ValueError`` naming the field)."""
        per: Any = self.per
        return WindowLimit(per=per, new_videos=self.new_videos, credits=self.credits)


class Budget(dg.Config):
    """The most new paid videos (and/or credits) per window, for every asset using the resource.

    ``new_videos`` / ``credits`` per ``per`` is the first window; ``windows`` adds more (each its own ``per``).
    A video's credits are ``template_credits[template_id]`` when given, else its template detail's; a video
    whose credits are unknown counts ``unknown_credits`` against a credit limit (unset: it is refused before
    its create). The ledgers are at ``<ledger_prefix>/`` in the bucket of the asset (one budget per bucket and
    prefix: use the same ``ledger_prefix`` in every code location sharing the accounts). At ``warn_at`` of a
    window the run logs a warning.

    >>> try:
    ...     Budget(new_videos=3, per="fortnight")
    ... except ValueError as exc:
    ...     print(str(exc).splitlines()[1].split(" [")[0].strip())
    Value error, budget per must be one of day, week, month, got 'fortnight'
    """

    new_videos: int | None = Field(default=None, ge=0, description="Most new paid videos per window.")
    credits: int | None = Field(default=None, ge=0, description="Most credits per window.")
    per: str = Field(default="day", description="The window: day, week (from Monday) or month.")
    timezone: str = Field(default="UTC", description="IANA time zone whose midnights start the windows.")
    windows: list[BudgetWindow] = Field(
        default_factory=list, description="Further windows, e.g. [{per: month, new_videos: 5000}]."
    )
    template_credits: dict[str, int] = Field(
        default_factory=dict, description="Credits per template id (win over the template details')."
    )
    unknown_credits: int | None = Field(
        default=None,
        ge=0,
        description="Credits a video of unknown credits counts against a credit limit (unset: refuse it).",
    )
    ledger_prefix: str = Field(
        default=DEFAULT_LEDGER_PREFIX, description="Folder of the ledgers in the bucket."
    )
    warn_at: float = Field(default=DEFAULT_WARN_AT, gt=0, le=1, description="Share of a window that warns.")

    @model_validator(mode="after")
    def _valid(self) -> "Budget":
        self.policy()  # a mistake is said when the resource is built, before any run
        return self

    def policy(self) -> BudgetPolicy:
        """The production layer's policy of this budget."""
        first: Any = self.per
        limits = []
        if self.new_videos is not None or self.credits is not None or not self.windows:
            limits.append(WindowLimit(per=first, new_videos=self.new_videos, credits=self.credits))
        limits.extend(w.limit() for w in self.windows)
        return BudgetPolicy(
            windows=tuple(limits),
            timezone=self.timezone,
            template_credits=dict(self.template_credits),
            unknown_credits=self.unknown_credits,
            ledger_prefix=self.ledger_prefix,
            warn_at=self.warn_at,
        )


def budget_from_env(env: Mapping[str, str]) -> "Budget | None":
    """The budget of ``MINIMAX_BUDGET`` (``300/day``, ``300/day,5000/month``, ``credits:9000/month``; unset:
    none), ``MINIMAX_BUDGET_TIMEZONE``, ``MINIMAX_BUDGET_UNKNOWN_CREDITS`` and ``MINIMAX_BUDGET_PREFIX``.

    >>> budget = budget_from_env({"MINIMAX_BUDGET": "300/day, credits:9000/month", "MINIMAX_BUDGET_TIMEZONE": "Europe/Berlin"})
    >>> [(w.per, w.new_videos, w.credits) for w in budget.policy().windows], budget.timezone
    ([('day', 300, None), ('month', None, 9000)], 'Europe/Berlin')
    >>> budget_from_env({"MINIMAX_BUDGET": "lots"})
    Traceback (most recent call last):
    ...
    ValueError: MINIMAX_BUDGET item 'lots' must be N/per or credits:N/per (per: day, week or month), e.g. 300/day,5000/month
    """
    raw = env.get("MINIMAX_BUDGET", "").strip()
    if not raw:
        return None
    by_per: dict[str, dict[str, int]] = {}
    for item in (i.strip() for i in raw.split(",") if i.strip()):
        unit, _, rest = item.rpartition(":")
        amount, _, per = rest.partition("/")
        if (
            unit not in ("", "videos", "credits")
            or not amount.strip().isdigit()
            or per.strip()
            not in (
                "day",
                "week",
                "month",
            )
        ):
            raise ValueError(
                f"MINIMAX_BUDGET item {item!r} must be N/per or credits:N/per (per: day, week or month), "
                "e.g. 300/day,5000/month"
            )
        field = "credits" if unit == "credits" else "new_videos"
        by_per.setdefault(per.strip(), {})[field] = int(amount)
    windows = [BudgetWindow(per=per, **limits) for per, limits in by_per.items()]
    unknown = env.get("MINIMAX_BUDGET_UNKNOWN_CREDITS", "").strip()
    return Budget(
        per=windows[0].per,
        new_videos=windows[0].new_videos,
        credits=windows[0].credits,
        windows=windows[1:],
        timezone=env.get("MINIMAX_BUDGET_TIMEZONE", "UTC"),
        unknown_credits=int(unknown) if unknown else None,
        ledger_prefix=env.get("MINIMAX_BUDGET_PREFIX", DEFAULT_LEDGER_PREFIX),
    )
