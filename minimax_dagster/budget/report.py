"""What the budget shows in Dagster: spend per materialization, the windows' state after a run, the 80 % warning,
the prompts the budget stopped, and a dry run's spend against what is left.

Numeric metadata (``new_paid_videos``, ``credits``, ``budget_<per>_spent`` / ``_left`` / ``_used_pct``) is what
Dagster's asset plots and Dagster+ Insights chart per asset and partition.

>>> from minimax_dagster.production.manifest import ManifestEntry
>>> made = ManifestEntry(id="a", template_id="1", status="generated", video_id="9")
>>> spend_metadata([made], lambda template_id: 5)
{'new_paid_videos': 1, 'credits': 5}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg

from minimax_dagster.production.budget import BudgetSpent
from minimax_dagster.production.budget_windows import WindowState
from minimax_dagster.production.manifest import ManifestEntry

#: How an entry the budget stopped starts its error (the producer writes ``<exception type>: <message>``).
OVER_BUDGET = f"{BudgetSpent.__name__}: "


def paid_here(entry: ManifestEntry) -> bool:
    """Whether this run paid for ``entry``'s video (created now, not reused nor reattached).

    >>> paid_here(ManifestEntry(id="a", template_id="1", status="generated", reattached=True))
    False
    """
    return entry.status == "generated" and not entry.reattached


def over_budget(entries: Sequence[ManifestEntry]) -> list[ManifestEntry]:
    """The entries the budget stopped before their create.

    >>> over_budget([ManifestEntry(id="a", template_id="1", status="failed", error="BudgetSpent: day spent")])[0].id
    'a'
    """
    return [e for e in entries if (e.error or "").startswith(OVER_BUDGET)]


def spend_metadata(
    entries: Sequence[ManifestEntry], credits_of: Callable[[str], int | None]
) -> dict[str, Any]:
    """``new_paid_videos`` of ``entries``, ``credits`` when every paid video's credits are known (else
    ``credits_known`` and ``credits_unknown_videos``), and the prompts the budget stopped.

    >>> from minimax_dagster.production.manifest import ManifestEntry
    >>> stopped = ManifestEntry(id="b", template_id="1", status="failed", error="BudgetSpent: spent")
    >>> md = spend_metadata([stopped], lambda template_id: None)
    >>> md["new_paid_videos"], md["over_budget"], md["credits"]
    (0, 1, 0)
    """
    paid = [e for e in entries if paid_here(e)]
    credits = [credits_of(e.template_id) for e in paid]
    out: dict[str, Any] = {"new_paid_videos": len(paid)}
    known = sum(c for c in credits if c is not None)
    unknown = sum(c is None for c in credits)
    if unknown:
        out["credits_known"] = known
        out["credits_unknown_videos"] = unknown
    else:
        out["credits"] = known
    stopped = over_budget(entries)
    if stopped:
        out["over_budget"] = len(stopped)
        out["over_budget_prompts"] = dg.MetadataValue.json(
            [{"partition": e.partition, "id": e.id, "error": e.error} for e in stopped[:50]]
        )
    return out


def state_metadata(states: Sequence[WindowState]) -> dict[str, Any]:
    """Each window's state after the run: spent, left and the share used, per unit, and the window's name.

    >>> from minimax_dagster.production.budget_windows import Window
    >>> state = WindowState(Window("day 2026-12-07 (UTC)", "k", 10, None, None, None, ""), None)
    >>> state_metadata([state])
    {'budget_day_window': 'day 2026-12-07 (UTC)', 'budget_day_spent': 0, 'budget_day_left': 10, 'budget_day_used_pct': 0.0}
    """
    out: dict[str, Any] = {}
    for state in states:
        name = _name(state)
        videos, credits = state.spent
        out[f"budget_{name}_window"] = state.window.label
        if state.window.limit_videos is not None:
            out[f"budget_{name}_spent"] = videos
            out[f"budget_{name}_left"] = state.left_videos
        if state.window.limit_credits is not None:
            out[f"budget_{name}_credits_spent"] = credits
            out[f"budget_{name}_credits_left"] = state.left_credits
        out[f"budget_{name}_used_pct"] = round(100 * state.share, 1)
    return out


def warnings(states: Sequence[WindowState], warn_at: float) -> list[str]:
    """The warning of every window at ``warn_at`` or more of a limit.

    >>> from minimax_dagster.production.budget_windows import Window
    >>> from minimax_dagster.storage.ledger import Ledger, LedgerEntry
    >>> spent = Ledger(window="w", entries=tuple(LedgerEntry(id=str(i)) for i in range(4)))
    >>> warnings([WindowState(Window("day x", "k", 5, None, None, None, "raise it"), spent)], 0.8)
    ['budget at 80% of day x: 4 of 5 new video(s) spent, 1 left; to allow more, raise it']
    """
    return [
        f"budget at {100 * s.share:.0f}% of {s.window.label}: {s.describe().split(': ', 1)[1]}; "
        f"to allow more, {s.window.how_to_raise}"
        for s in states
        if s.share >= warn_at
    ]


def dry_run_lines(new_videos: int, credits: int, unknown: int, states: Sequence[WindowState]) -> list[str]:
    """What a dry run would spend against what each window has left.

    >>> from minimax_dagster.production.budget_windows import Window
    >>> dry_run_lines(4, 0, 0, [WindowState(Window("day x", "k", 3, None, None, None, "raise it"), None)])
    ['budget day x: this run would create 4 new video(s); 3 left: 1 would be stopped by the budget']
    """
    lines = []
    for state in states:
        parts = []
        left = state.left_videos
        if left is not None:
            over = max(0, new_videos - left)
            verdict = f"{over} would be stopped by the budget" if over else "within the budget"
            parts.append(f"this run would create {new_videos} new video(s); {left} left: {verdict}")
        left_credits = state.left_credits
        if left_credits is not None:
            more = f" (+{unknown} video(s) of unknown credits)" if unknown else ""
            verdict = "over the budget" if credits > left_credits else "within the budget"
            parts.append(f"{credits} credit(s){more} against {left_credits} left: {verdict}")
        lines.append(f"budget {state.window.label}: {'; '.join(parts)}")
    return lines


def _name(state: WindowState) -> str:
    return state.window.label.split(" ", 1)[0]  # day, week, month or run
