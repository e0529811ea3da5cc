"""The spend budget: windows (a day, a week, a month, one run), and each create's reservation in their ledgers.

Every create first reserves its cost (one video, and its credits when they are known) in the ledger of each
window (:mod:`~minimax_dagster.storage.ledger`: one S3 object per window, changed by conditional writes), so
any number of steps, runs and workers together never spend more than a window allows, even when they race. A
create the budget stops raises :class:`BudgetSpent` before its POST: nothing is created, and its message says
the window, what was spent and by which runs and assets, when the window resets and how to raise it.

The reservation is given back (:meth:`RunBudget.release`) when the create surely made no job (refused before
the stream with a 4xx, a 429, or never sent: :func:`surely_no_job`); a create whose outcome is unknown keeps
it. Reused and reattached videos never reserve anything.

The windows themselves are :mod:`~minimax_dagster.production.budget_windows`.

>>> RunBudget(None, "b", BudgetPolicy(), run_id="r", asset="videos").active
False
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from minimax_dagster.api.errors import CreateOutcomeUnknownError, MiniMaxError
from minimax_dagster.production.budget_windows import (
    DEFAULT_LEDGER_PREFIX,
    BudgetPolicy,
    Window,
    WindowState,
    run_window,
)
from minimax_dagster.production.capacity import NoUsableAccount
from minimax_dagster.production.manifest import ManifestEntry
from minimax_dagster.production.prompts import VideoPrompt
from minimax_dagster.storage.ledger import Ledger, LedgerEntry, read_ledger, update_ledger

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

#: How many of the spending runs and assets a refusal names.
MAX_NAMED = 5


class BudgetSpent(Exception):
    """A create the budget stopped before its POST: no job, nothing paid (the message says which window, what
    was spent and by whom, when it resets and how to raise it).

    >>> str(BudgetSpent("the day window is spent"))
    'the day window is spent'
    """


@dataclass(frozen=True)
class Reservation:
    """A create's reservation: its entry, and the windows it is written in."""

    entry: LedgerEntry
    windows: tuple[Window, ...]


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
