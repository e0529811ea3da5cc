"""Creates before stores: the run's second scheduler, beside :mod:`~minimax_dagster.production.capacity`.

The account pool decides which create runs on which paid slot; :class:`CreatesFirst` decides when a store may
take the interpreter and S3 from the creates under way.

>>> gate = CreatesFirst(max_wait=0.01)
>>> gate.busy
False
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator


class CreatesFirst:
    """Creates before stores: a store waits (up to ``max_wait`` seconds) while a create is under way.

    When many videos finish together (a wave of a backfill), each worker gives its slot back and stores its
    video, while the slot's next video is being created. Both want the same interpreter and S3. A create that
    waits behind stores leaves a paid slot idle; a store that waits behind creates costs nothing but a moment.
    So a create counts from the moment it has its slot until the stream named its video id (and it is
    recorded), and stores start once no create is under way, or after ``max_wait``.

    >>> gate = CreatesFirst(max_wait=0.01)
    >>> with gate.creating():
    ...     gate.busy, gate.wait_for_creates()
    (True, False)
    >>> gate.busy, gate.wait_for_creates()
    (False, True)
    """

    def __init__(self, max_wait: float = 2.0) -> None:
        self.max_wait = max_wait
        self._lock = threading.Lock()
        self._under_way = 0
        self._clear = threading.Event()
        self._clear.set()

    @property
    def busy(self) -> bool:
        """Whether a create is under way."""
        return not self._clear.is_set()

    @contextlib.contextmanager
    def creating(self) -> Iterator[Callable[[], None]]:
        """Count one create for the block; the callable it gives ends the count early (the video id is known)."""
        done = False

        def settled() -> None:
            nonlocal done
            with self._lock:
                if done:
                    return
                done = True
                self._under_way -= 1
                if self._under_way == 0:
                    self._clear.set()

        with self._lock:
            self._under_way += 1
            self._clear.clear()
        try:
            yield settled
        finally:
            settled()

    def wait_for_creates(self) -> bool:
        """Wait until no create is under way (``True``), or ``max_wait`` seconds (``False``)."""
        return self._clear.wait(self.max_wait)
