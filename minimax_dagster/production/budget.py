"""The spend budget: windows (a day, a week, a month, one run), and each create's reservation in their ledgers.

Every create first reserves its cost (one video, and its credits when they are known) in the ledger of each
window (:mod:`~minimax_dagster.storage.ledger`: one S3 object per window, changed by conditional writes), so
any number of steps, runs and workers together never spend more than a window allows, even when they race. A
create the budget stops raises :class:`BudgetSpent` before its POST: nothing is created, and its message says
the window, what was spent and by which runs and assets, when the window resets and how to raise it.

The reservation is given back (:meth:`RunBudget.release`) when the create surely made no job (refused before
the stream with a 4xx, a 429, or never sent: :func:`surely_no_job`); a create whose outcome is unknown keeps
it. Reused and reattached videos never reserve anything.

>>> policy = BudgetPolicy(windows=(WindowLimit("day", new_videos=300),), timezone="Europe/Berlin")
>>> import datetime as dt
>>> window = policy.calendar_windows(dt.datetime(2026, 12, 7, 23, 30, tzinfo=dt.timezone.utc))[0]
>>> window.label, window.key, window.resets_at.isoformat()
('day 2026-12-08 (Europe/Berlin)', '_minimax_budget/day/2026-12-08.json', '2026-12-09T00:00:00+01:00')
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from minimax_dagster.api.errors import CreateOutcomeUnknownError, MiniMaxError
from minimax_dagster.production.capacity import NoUsableAccount
from minimax_dagster.production.manifest import ManifestEntry
from minimax_dagster.production.prompts import VideoPrompt
from minimax_dagster.storage import normalize_prefix
from minimax_dagster.storage.ledger import Ledger, LedgerEntry, read_ledger, update_ledger

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")
#: The ledger objects' folder at the bucket's root when the budget names none: every asset writing to the
#: bucket with the same budget shares it.
DEFAULT_LEDGER_PREFIX = "_minimax_budget"
#: The share of a window at which the run warns.
DEFAULT_WARN_AT = 0.8
#: How many of the spending runs and assets a refusal names.
MAX_NAMED = 5


class BudgetSpent(Exception):
    """A create the budget stopped before its POST: no job, nothing paid (the message says which window, what
    was spent and by whom, when it resets and how to raise it).

    >>> str(BudgetSpent("the day window is spent"))
    'the day window is spent'
    """


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
class Reservation:
    """A create's reservation: its entry, and the windows it is written in."""

    entry: LedgerEntry
    windows: tuple[Window, ...]


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


def surely_no_job(exc: BaseException, video_id: str | None) -> bool:
    """Whether a create that raised ``exc`` surely made no job: never sent (no account free), or refused
    before the stream with a 4xx (a 429 included) and no video id named.

    >>> from minimax_dagster.api.errors import CapacityError, ServerError
    >>> surely_no_job(CapacityError("busy", status=429), None), surely_no_job(ServerError("x", status=502), None)
    (True, False)
    """
    if video_id is not None:
        return False
    if isinstance(exc, (NoUsableAccount, BudgetSpent)):
        return True
    return isinstance(exc, MiniMaxError) and exc.status is not None and 400 <= exc.status < 500


def entry_made_no_job(entry: ManifestEntry) -> bool:
    """Whether a create that returned ``entry`` surely made no job: it failed before any video id was named
    (a 422 moderation refusal of the create, say), and not with an unknown outcome (which keeps its reservation).

    >>> entry_made_no_job(ManifestEntry(id="a", template_id="1", status="failed", error="ModeratedError: no"))
    True
    >>> entry_made_no_job(ManifestEntry(id="a", template_id="1", status="failed", error="CreateOutcomeUnknownError: ?"))
    False
    """
    return (
        entry.status == "failed"
        and entry.video_id is None
        and not (entry.error or "").startswith(CreateOutcomeUnknownError.__name__)
    )


class RunBudget:
    """One run step's reservations against a budget's windows (and ``max_new_videos``); thread-safe (each
    reservation is its own conditional writes).

    Args:
        s3_client, bucket: where the ledgers are (the run's bucket).
        policy: the budget (``None``: only the run's cap, if any).
        run_id, asset: who spends (the ledger entries and the run cap's window name them).
        run_cap: ``max_new_videos`` of this run (``None``: none).
        template_credits: credits per template id as the template details gave them (``None``: unknown).
        clock: the current time (tests inject one).

    >>> RunBudget(None, "b", None, run_id="r", asset="videos").active
    False
    """

    def __init__(
        self,
        s3_client: S3Client | None,
        bucket: str,
        policy: BudgetPolicy | None,
        *,
        run_id: str,
        asset: str,
        run_cap: int | None = None,
        template_credits: Mapping[str, int | None] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.s3 = s3_client
        self.bucket = bucket
        self.policy = policy
        self.run_id = run_id
        self.asset = asset
        self.run_cap = run_cap
        self._credits = {**(template_credits or {}), **(policy.template_credits if policy else {})}
        self._clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))

    @property
    def active(self) -> bool:
        """Whether any window limits this run."""
        return self.run_cap is not None or bool(self.policy and self.policy.windows)

    def windows(self) -> list[Window]:
        """The windows a create now reserves in: the calendar windows, then the run's cap."""
        out = self.policy.calendar_windows(self._clock()) if self.policy else []
        if self.run_cap is not None:
            prefix = self.policy.prefix if self.policy else DEFAULT_LEDGER_PREFIX
            out.append(run_window(prefix, self.run_id, self.asset, self.run_cap))
        return out

    def credits_of(self, template_id: str | None) -> int | None:
        """A video's credits by its template (the user's table first), ``None`` when unknown.

        >>> RunBudget(None, "b", BudgetPolicy(template_credits={"1": 7}), run_id="r", asset="a").credits_of("1")
        7
        """
        return self._credits.get(template_id or "")

    def reserve(self, prompt: VideoPrompt, key: str) -> Reservation | None:
        """Reserve one create of ``prompt`` (video key ``key``) in every window; ``None`` when nothing limits
        the run. Raises :class:`BudgetSpent` (having given back what it reserved) when a window is spent."""
        if not self.active or self.s3 is None:
            return None
        windows = self.windows()
        credits = self.credits_of(prompt.template_id)
        counted = 0
        if credits is None and any(w.limit_credits is not None for w in windows):
            unknown = self.policy.unknown_credits if self.policy else None
            if unknown is None:
                raise BudgetSpent(
                    f"the credits of template {prompt.template_id} are unknown (its template detail gives none) and "
                    "the budget limits credits: set budget.template_credits: {"
                    f"{prompt.template_id}: N}} or budget.unknown_credits: N to count such videos; not created"
                )
            counted = unknown
        entry = LedgerEntry(
            id=uuid.uuid4().hex,
            run_id=self.run_id,
            asset=self.asset,
            partition=prompt.partition,
            prompt_id=prompt.id,
            key=key,
            template_id=prompt.template_id,
            credits=credits,
            counted_credits=counted,
        )
        done: list[Window] = []
        try:
            for window in windows:
                ledger, wrote = update_ledger(self.s3, self.bucket, window.key, _admit(window, entry))
                if not wrote:
                    raise BudgetSpent(_spent_message(window, ledger, entry))
                done.append(window)
        except BaseException:
            self._give_back(entry.id, done)  # nothing is created: what the earlier windows reserved goes back
            raise
        return Reservation(entry, tuple(done))

    def spend(self, reservation: Reservation | None, video_id: str) -> str | None:
        """Record that the reserved create made ``video_id``; a problem writing it is returned, not raised (the
        video is made and paid: its reservation counts either way)."""
        if reservation is None or self.s3 is None:
            return None
        try:
            for window in reservation.windows:
                update_ledger(
                    self.s3, self.bucket, window.key, lambda ledger: _changed(ledger, reservation, video_id)
                )
        except (
            Exception
        ) as exc:  # the reservation stays counted: only the video id is missing from the ledger
            return f"could not record video {video_id} in the budget ledger ({type(exc).__name__}: {exc})"
        return None

    def release(self, reservation: Reservation | None) -> str | None:
        """Give back a reservation whose create surely made no job; a problem is returned, not raised (the
        reservation then stays counted until its window ends)."""
        if reservation is None:
            return None
        try:
            self._give_back(reservation.entry.id, reservation.windows)
        except Exception as exc:
            return (
                f"could not give back the budget reservation ({type(exc).__name__}: {exc}); it stays counted"
            )
        return None

    def _give_back(self, entry_id: str, windows: Sequence[Window]) -> None:
        if self.s3 is None:
            return
        for window in windows:
            update_ledger(
                self.s3,
                self.bucket,
                window.key,
                lambda ledger: ledger.without(entry_id) if ledger is not None else None,
            )

    def states(self) -> list[WindowState]:
        """Each window's state now (read only: one GET each)."""
        if self.s3 is None:
            return []
        states = []
        for window in self.windows():
            found = read_ledger(self.s3, self.bucket, window.key)
            states.append(WindowState(window, found[0] if found else None))
        return states


def _admit(window: Window, entry: LedgerEntry) -> Callable[[Ledger | None], Ledger | None]:
    def change(ledger: Ledger | None) -> Ledger | None:
        if not window.admits(ledger, entry):
            return None
        return (ledger or window.fresh()).with_entry(entry)

    return change


def _changed(ledger: Ledger | None, reservation: Reservation, video_id: str) -> Ledger | None:
    if ledger is None or not any(e.id == reservation.entry.id for e in ledger.entries):
        return None
    return ledger.with_video(reservation.entry.id, video_id)


def spenders(ledger: Ledger | None, limit: int = MAX_NAMED) -> str:
    """Who spent the window: the runs and assets with the most entries, with their counts.

    >>> spenders(Ledger(window="w", entries=(LedgerEntry(id="a", run_id="r1", asset="v"),)))
    'run r1 / v: 1'
    """
    if ledger is None or not ledger.entries:
        return "nobody"
    counts = Counter((e.run_id or "?", e.asset or "?") for e in ledger.entries)
    named = [f"run {run} / {asset}: {n}" for (run, asset), n in counts.most_common(limit)]
    more = len(counts) - len(named)
    return ", ".join(named) + (f" and {more} more" if more > 0 else "")


def _spent_message(window: Window, ledger: Ledger | None, entry: LedgerEntry) -> str:
    state = WindowState(window, ledger)
    videos, credits = state.spent
    used = []
    if window.limit_videos is not None:
        used.append(f"{videos} new video(s)")
    if window.limit_credits is not None:
        cost = entry.credits if entry.credits is not None else entry.counted_credits
        used.append(f"{credits} credit(s) (this video needs {cost})")
    resets = f"it resets at {window.resets_at.isoformat()}" if window.resets_at else "it lasts this run"
    return (
        f"budget spent: {window.label} allows {window.limits()}; {' and '.join(used)} are spent or reserved "
        f"(by {spenders(ledger)}); {resets}; to go on, {window.how_to_raise}. Not created: no job, nothing paid"
    )
