"""The budget's windows: a day, a week or a month in a time zone, or one run, each with its limits and its
ledger object, and what a window has spent and has left.

>>> policy = BudgetPolicy(windows=(WindowLimit("day", new_videos=300),), timezone="Europe/Berlin")
>>> import datetime as dt
>>> window = policy.calendar_windows(dt.datetime(2026, 12, 7, 23, 30, tzinfo=dt.timezone.utc))[0]
>>> window.label, window.key, window.resets_at.isoformat()
('day 2026-12-08 (Europe/Berlin)', '_minimax_budget/day/2026-12-08.json', '2026-12-09T00:00:00+01:00')
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from minimax_dagster.storage import normalize_prefix
from minimax_dagster.storage.ledger import Ledger, LedgerEntry

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")
#: The ledger objects' folder at the bucket's root when the budget names none: every asset writing to the
#: bucket with the same budget shares it.
DEFAULT_LEDGER_PREFIX = "_minimax_budget"
#: The share of a window at which the run warns.
DEFAULT_WARN_AT = 0.8


@dataclass(frozen=True)
class WindowLimit:
    """The most new videos and/or credits one window may spend (``None``: no limit on that unit).

    >>> WindowLimit("month", new_videos=5000).per
    'month'
    >>> WindowLimit("year", new_videos=1)
    Traceback (most recent call last):
    ...
    ValueError: budget per must be one of day, week, month, got 'year'
    """

    per: Period
    new_videos: int | None = None
    credits: int | None = None

    def __post_init__(self) -> None:
        if self.per not in PERIODS:
            raise ValueError(f"budget per must be one of {', '.join(PERIODS)}, got {self.per!r}")
        if self.new_videos is None and self.credits is None:
            raise ValueError(
                f"a budget per {self.per} needs new_videos or credits (or both); set new_videos: N to cap videos"
            )
        for name, value in (("new_videos", self.new_videos), ("credits", self.credits)):
            if value is not None and value < 0:
                raise ValueError(f"budget {name} per {self.per} must be 0 or more, got {value}")


@dataclass(frozen=True)
class Window:
    """One window's ledger: where it is, its limits, when it resets and how a person raises them.

    >>> Window("run abc of videos", "b/runs/abc/videos.json", 3, None, None, None, "raise max_new_videos").limits()
    '3 new video(s)'
    """

    label: str
    key: str
    limit_videos: int | None
    limit_credits: int | None
    opens_at: dt.datetime | None
    resets_at: dt.datetime | None
    how_to_raise: str

    def limits(self) -> str:
        """The limits in words."""
        said = []
        if self.limit_videos is not None:
            said.append(f"{self.limit_videos} new video(s)")
        if self.limit_credits is not None:
            said.append(f"{self.limit_credits} credit(s)")
        return " and ".join(said)

    def admits(self, ledger: Ledger | None, entry: LedgerEntry) -> bool:
        """Whether ``entry`` fits in what ``ledger`` has left."""
        videos, credits = ledger.spent() if ledger is not None else (0, 0)
        cost = entry.credits if entry.credits is not None else entry.counted_credits
        if self.limit_videos is not None and videos + entry.cost_videos > self.limit_videos:
            return False
        return self.limit_credits is None or credits + cost <= self.limit_credits

    def fresh(self) -> Ledger:
        """An empty ledger of this window."""
        return Ledger(
            window=self.label,
            opens_at=self.opens_at.isoformat() if self.opens_at else None,
            resets_at=self.resets_at.isoformat() if self.resets_at else None,
            limit_videos=self.limit_videos,
            limit_credits=self.limit_credits,
        )


@dataclass(frozen=True)
class BudgetPolicy:
    """A budget as configured: its windows, the time zone they follow, what a video costs in credits.

    ``template_credits`` are the user's credits per template id (they win over the template detail's);
    ``unknown_credits`` is what a video of unknown credits counts against a credit limit (``None``: such a
    video is refused before its create). Ledgers live at ``<ledger_prefix>/`` of the run's bucket.

    >>> BudgetPolicy(windows=(WindowLimit("day", new_videos=1),), timezone="Mars/Olympus")
    Traceback (most recent call last):
    ...
    ValueError: budget timezone 'Mars/Olympus' is not an IANA time zone (e.g. 'UTC', 'Europe/Berlin')
    """

    windows: tuple[WindowLimit, ...] = ()
    timezone: str = "UTC"
    template_credits: Mapping[str, int] = field(default_factory=dict)
    unknown_credits: int | None = None
    ledger_prefix: str = DEFAULT_LEDGER_PREFIX
    warn_at: float = DEFAULT_WARN_AT

    def __post_init__(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"budget timezone {self.timezone!r} is not an IANA time zone (e.g. 'UTC', 'Europe/Berlin')"
            ) from None
        pers = [w.per for w in self.windows]
        if len(set(pers)) != len(pers):
            raise ValueError(f"budget windows must each have their own per, got {pers}; merge the limits")
        if not 0 < self.warn_at <= 1:
            raise ValueError(f"budget warn_at must be in (0, 1], got {self.warn_at}")
        if self.unknown_credits is not None and self.unknown_credits < 0:
            raise ValueError(f"budget unknown_credits must be 0 or more, got {self.unknown_credits}")

    @property
    def prefix(self) -> str:
        """The ledger folder, normalised."""
        return normalize_prefix(self.ledger_prefix)

    def calendar_windows(self, now: dt.datetime) -> list[Window]:
        """The window of each limit that ``now`` falls in."""
        tz = zoneinfo.ZoneInfo(self.timezone)
        local = now.astimezone(tz)
        out = []
        for limit in self.windows:
            opens, resets, name = _bounds(limit.per, local.date(), tz)
            out.append(
                Window(
                    label=f"{limit.per} {name} ({self.timezone})",
                    key=f"{self.prefix}/{limit.per}/{name}.json",
                    limit_videos=limit.new_videos,
                    limit_credits=limit.credits,
                    opens_at=opens,
                    resets_at=resets,
                    how_to_raise=(
                        f"raise the budget's per-{limit.per} new_videos/credits on the MiniMax resource "
                        "(Python: MiniMaxResource(budget=Budget(...)); YAML: resources.minimax.budget; "
                        "environment: MINIMAX_BUDGET), or wait for the window to reset"
                    ),
                )
            )
        return out


def _bounds(per: Period, day: dt.date, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime, str]:
    """``(opens, resets, name)`` of the ``per`` window holding ``day`` (midnights in ``tz``)."""
    if per == "day":
        start, end, name = day, day + dt.timedelta(days=1), day.isoformat()
    elif per == "week":
        start = day - dt.timedelta(days=day.weekday())
        end = start + dt.timedelta(days=7)
        year, week, _ = day.isocalendar()
        name = f"{year}-W{week:02d}"
    else:
        start = day.replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1)
        name = f"{day.year}-{day.month:02d}"
    midnight = dt.time(0, 0)
    return dt.datetime.combine(start, midnight, tz), dt.datetime.combine(end, midnight, tz), name


def run_window(prefix: str, run_id: str, asset: str, cap: int) -> Window:
    """The window of ``max_new_videos``: one run of one asset, in every step and process of that run.

    >>> run_window("_b", "r1", "videos", 2).key
    '_b/runs/r1/videos.json'
    """
    return Window(
        label=f"run {run_id} of {asset} (max_new_videos={cap})",
        key=f"{normalize_prefix(prefix)}/runs/{run_id}/{asset}.json",
        limit_videos=cap,
        limit_credits=None,
        opens_at=None,
        resets_at=None,
        how_to_raise=(
            f"raise max_new_videos for this run (run config: ops: {{{asset}: {{config: {{max_new_videos: N}}}}}}) "
            "or in the asset's definition"
        ),
    )


@dataclass(frozen=True)
class WindowState:
    """What a window has spent and has left, read now.

    >>> w = Window("day x", "k", 10, None, None, None, "")
    >>> WindowState(w, Ledger(window="day x", entries=tuple(LedgerEntry(id=str(i)) for i in range(8)))).share
    0.8
    """

    window: Window
    ledger: Ledger | None

    @property
    def spent(self) -> tuple[int, int]:
        """``(videos, credits)`` spent or reserved."""
        return self.ledger.spent() if self.ledger is not None else (0, 0)

    @property
    def left_videos(self) -> int | None:
        """New videos left (``None``: no video limit)."""
        limit = self.window.limit_videos
        return None if limit is None else max(0, limit - self.spent[0])

    @property
    def left_credits(self) -> int | None:
        """Credits left (``None``: no credit limit)."""
        limit = self.window.limit_credits
        return None if limit is None else max(0, limit - self.spent[1])

    @property
    def share(self) -> float:
        """The largest share of a limit spent (0 with no limits; 1 for a limit of 0)."""
        shares = []
        for limit, spent in (
            (self.window.limit_videos, self.spent[0]),
            (self.window.limit_credits, self.spent[1]),
        ):
            if limit is not None:
                shares.append(1.0 if limit == 0 else spent / limit)
        return max(shares, default=0.0)

    def describe(self) -> str:
        """One line: spent, left, window, reset."""
        videos, credits = self.spent
        parts = []
        if self.window.limit_videos is not None:
            parts.append(
                f"{videos} of {self.window.limit_videos} new video(s) spent, {self.left_videos} left"
            )
        if self.window.limit_credits is not None:
            parts.append(
                f"{credits} of {self.window.limit_credits} credit(s) spent, {self.left_credits} left"
            )
        resets = f"; resets {self.window.resets_at.isoformat()}" if self.window.resets_at else ""
        return f"budget {self.window.label}: {'; '.join(parts)}{resets}"
