"""One create's attempt on one account (:class:`Attempt`), what it gives (:data:`CreateOutcome`), and the wait
before another go (:func:`wait_out`): the small pieces :meth:`~minimax_dagster.production.steps.VideoSteps.create`
loops over.

>>> Retry(wait=None).wait is None
True
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from minimax_dagster.api.client import GenerationResult
from minimax_dagster.production.manifest import ManifestEntry

__all__ = ["Attempt", "CreateOutcome", "Retry", "wait_out"]


class Retry(NamedTuple):
    """A create that made nothing: create again, at once on another account (``wait`` is ``None``, the account
    was disabled) or after waiting ``wait`` seconds with the slot held (a 429 or a busy gateway)."""

    wait: float | None


#: What one create gives: the result to store, the video's entry (settled already), or another go.
CreateOutcome = GenerationResult | ManifestEntry | Retry


@dataclass
class Attempt:
    """One create on one account: its deadline, and what happens once the stream names the video id.

    >>> attempt = Attempt("acc", limit=time.monotonic() + 60)
    >>> attempt.on_created(print)
    >>> attempt.created("v1"); attempt.video_id, 0 < attempt.remaining() <= 60
    v1
    ('v1', True)
    """

    account: str | None
    limit: float
    video_id: str | None = None
    _on_created: list[Callable[[str], None]] = field(default_factory=list)

    def on_created(self, callback: Callable[[str], None]) -> None:
        """Call ``callback`` with the video id once it is known."""
        self._on_created.append(callback)

    def created(self, video_id: str) -> None:
        """The stream (or a lookup by replyRef) named ``video_id``: the first one is kept."""
        self.video_id = self.video_id or video_id
        for callback in self._on_created:
            callback(video_id)

    def remaining(self, minimum: float = 0.0) -> float:
        """Seconds left before the generation deadline (never below ``minimum``)."""
        return max(minimum, self.limit - time.monotonic())


def wait_out(wait: float, limit: float) -> None:
    """Sleep ``wait`` seconds (at least 50 ms, never past ``limit``) before creating again.

    >>> start = time.monotonic(); wait_out(5.0, limit=start); time.monotonic() - start < 1
    True
    """
    time.sleep(min(max(wait, 0.05), max(0.0, limit - time.monotonic())))
