"""Log lines written as few, bounded records: the run's progress never queues behind production.

Each line of ``context.log`` is a synchronous event-log write on the step's thread, the thread that also drains
the producer's notes; :class:`BoundedLog` keeps the records per second bounded whatever the rate of lines, and
a record that joins several lines holds lines of one level only.

>>> import logging
>>> BoundedLog(logging.getLogger("bounded-log-example")).waiting
0
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


_NAMES = {number: name for name, number in LEVELS.items()}


class Log(Protocol):
    """What :class:`BoundedLog` writes to: ``context.log`` in a step, or a ``logging.Logger``."""

    def debug(self, msg: str) -> object: ...
    def info(self, msg: str) -> object: ...
    def warning(self, msg: str) -> object: ...
    def error(self, msg: str) -> object: ...


class BoundedLog:
    """Log lines written as few, bounded event-log records: logging never queues behind production.

    :meth:`add` only queues a line; :meth:`tick` writes what is queued, as long as two budgets allow a record
    now: each line its own record when the budget covers them all, else all of them joined in one:

    * ``records_per_second`` (with ``burst_records`` saved up): each record is a synchronous event-log write
      that costs the step a few milliseconds of CPU whatever it holds, so a run whose lines come faster than
      this gets the same lines in fewer records; a run whose lines come slower sees each line in its own
      record (``math.inf``: no such limit, though more than ``burst_records`` lines waiting share one);
    * ``duty``: the share of the writer's time spent writing (``burst`` seconds saved up), for when records
      get slow (a loaded database): the lines then wait and the next record carries them all.

    No line is dropped, and the records per second stay bounded whatever the rate of lines. :meth:`flush`
    writes everything now, as one record.

    >>> import logging
    >>> log = BoundedLog(logging.getLogger("bounded-log-example"), records_per_second=1.0, burst_records=1)
    >>> for n in range(5):
    ...     log.add("info", f"line {n}")
    ...     log.tick()
    >>> log.flush()
    >>> log.records, log.lines
    (2, 5)
    """

    def __init__(
        self,
        log: Log,
        *,
        records_per_second: float = 1.0,
        burst_records: int = 5,
        duty: float = 0.5,
        burst: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._rate = records_per_second
        self._burst_records = max(1, burst_records)
        self._duty = duty
        self._burst = burst
        self._clock = clock
        self._pending: list[tuple[int, str]] = []
        self._allowance = float(self._burst_records)
        self._tokens = burst
        self._refilled = clock()
        self.records = 0
        self.lines = 0
        self.merged = 0

    @property
    def waiting(self) -> int:
        """How many lines are queued, not yet written."""
        return len(self._pending)

    def add(self, level: str | int, text: str) -> None:
        """Queue one line (``level`` a name such as ``"info"`` or a ``logging`` number)."""
        number = level if isinstance(level, int) else LEVELS.get(level, LEVELS["info"])
        self._pending.append((number, text))

    def tick(self) -> None:
        """Write the queued lines (as one record) if both budgets allow a record now."""
        self._write(force=False)

    def flush(self) -> None:
        """Write every queued line now."""
        self._write(force=True)

    def _write(self, *, force: bool) -> None:
        now = self._clock()
        elapsed = now - self._refilled
        self._refilled = now
        self._tokens = min(self._burst, self._tokens + elapsed * self._duty)
        self._allowance = (
            min(self._burst_records, self._allowance + elapsed * self._rate)
            if self._rate < math.inf
            else self._burst_records
        )
        if not self._pending or (not force and (self._tokens <= 0 or self._allowance < 1)):
            return
        if len(self._pending) <= self._allowance:
            # The budget covers a record per line: each its own (a warning stands out on its own).
            while self._pending and self._tokens > 0:
                level, text = self._pending.pop(0)
                self.lines += 1
                self._record(level, text)
            if not self._pending or not force:
                return
        pending, self._pending = self._pending, []
        self.lines += len(pending)
        for level, texts in by_level(pending):  # a record never mixes levels: at most one per level
            if len(texts) == 1:
                self._record(level, texts[0])
                continue
            self.merged += 1
            note = f"({len(texts)} lines in one record, so that logging keeps up with the videos)"
            self._record(level, "\n".join(texts) + f"\n{note}")

    def _record(self, level: int, text: str) -> None:
        started = self._clock()
        getattr(self._log, _NAMES.get(level, "info"), self._log.info)(text)
        self.records += 1
        self._allowance -= 1
        self._tokens -= self._clock() - started


def by_level(lines: list[tuple[int, str]]) -> list[tuple[int, list[str]]]:
    """``(level, text)`` lines grouped by level, the groups in the order of their first line: what one record
    (or one log line) may join, since it never mixes levels.

    >>> by_level([(20, "created"), (40, "failed: moderated"), (20, "ready")])
    [(20, ['created', 'ready']), (40, ['failed: moderated'])]
    """
    groups: dict[int, list[str]] = {}
    for level, text in lines:
        groups.setdefault(level, []).append(text)
    return list(groups.items())
