"""The transport retry policy: what urllib3 may send again on its own, bounded in count and in total time.

GET requests are retried on 429, 502, 503, 504 and connection failures. A POST is retried only on 429 and on a
connection that could not be opened: doc, "the MiniMax website is too busy and responds with 502 or 504 while
still accepting jobs into the internal queue", so a create answered 502/503/504 may have made (and billed) a job,
and only :mod:`minimax_dagster.api.reconcile` may decide to send it again. A 429 means capacity was full and no
job was made (doc), so it is safe to send again as it is.

>>> policy = BoundedRetry(total=3, status_forcelist=RETRY_STATUSES, allowed_methods=frozenset({"GET", "POST"}))
>>> (policy.is_retry("GET", 502), policy.is_retry("POST", 502), policy.is_retry("POST", 429))
(True, False, True)
"""

from __future__ import annotations

import time
from typing import Any

from urllib3.util.retry import Retry

#: Answers retried before a GET's body (and a POST's stream) starts.
RETRY_STATUSES = (429, 502, 503, 504)
#: The only answer after which a POST is sent again by the transport: capacity full, no job made (doc).
POST_RETRY_STATUSES = frozenset({429})
#: Methods that change nothing on the server, so any retryable answer may be retried.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class BoundedRetry(Retry):
    """urllib3 ``Retry`` bounded in total time as well as in count, with ``Retry-After`` capped at ``backoff_max``.

    The clock starts at the first retry of a request, so one instance can sit on a session adapter. A method
    that is not idempotent (POST) is retried only on :data:`POST_RETRY_STATUSES`, whatever the forcelist says,
    and never because of a ``Retry-After`` on another status.

    >>> r = BoundedRetry(total=3, total_seconds=0.0, status_forcelist=[429])
    >>> r.new(started=0.0).is_exhausted()
    True
    """

    def __init__(
        self, *args: Any, total_seconds: float | None = None, started: float | None = None, **kw: Any
    ):
        super().__init__(*args, **kw)
        self.total_seconds = total_seconds
        self.started = started

    def new(self, **kw: Any) -> BoundedRetry:
        kw.setdefault("total_seconds", self.total_seconds)
        kw.setdefault("started", self.started if self.started is not None else time.monotonic())
        return super().new(**kw)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if method.upper() not in IDEMPOTENT_METHODS and status_code not in POST_RETRY_STATUSES:
            return False
        return super().is_retry(method, status_code, has_retry_after)

    def increment(self, *args: Any, **kw: Any) -> BoundedRetry:
        new = super().increment(*args, **kw)  # raises when exhausted: the caller then reads that answer
        response = kw.get("response")
        if response is not None and not _small_body(response):
            # urllib3 drains the body of an answer it retries: without bound in time for an endless one.
            # Closing drops the connection instead (the retry opens a new one).
            response.close()
        return new

    def _remaining(self) -> float | None:
        if self.total_seconds is None or self.started is None:
            return None
        return self.total_seconds - (time.monotonic() - self.started)

    def is_exhausted(self) -> bool:
        remaining = self._remaining()
        return super().is_exhausted() or (remaining is not None and remaining <= 0)

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        if value is None:
            return None
        remaining = self._remaining()
        cap = self.backoff_max if remaining is None else min(self.backoff_max, max(remaining, 0.0))
        return min(value, cap)

    def get_backoff_time(self) -> float:
        value = super().get_backoff_time()
        remaining = self._remaining()
        return value if remaining is None else min(value, max(remaining, 0.0))


#: The largest announced body urllib3 may drain before a retry (so the connection can be reused).
_DRAINED_BYTES = 64 * 1024


def _small_body(response: Any) -> bool:
    length = str(response.headers.get("Content-Length", ""))
    return length.isdigit() and int(length) <= _DRAINED_BYTES


def transport_retry(
    max_retries: int,
    *,
    backoff_factor: float,
    backoff_max: float,
    backoff_jitter: float,
    total_seconds: float,
) -> BoundedRetry:
    """The retry policy of the client's session adapter (see the module docstring for what it retries).

    Read errors are never retried by the transport: the request was sent, so its answer is lost, and for a
    create only reconciliation may decide what happens next.

    >>> policy = transport_retry(2, backoff_factor=0.5, backoff_max=4, backoff_jitter=0, total_seconds=30)
    >>> (policy.total, policy.read, policy.is_retry("POST", 504))
    (2, 0, False)
    """
    return BoundedRetry(
        total=max_retries,
        connect=max_retries,
        read=0,
        other=0,
        status=max_retries,
        redirect=0,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "POST"}),
        backoff_factor=backoff_factor,
        backoff_max=backoff_max,
        backoff_jitter=backoff_jitter,
        respect_retry_after_header=True,
        raise_on_status=False,
        total_seconds=total_seconds,
    )


def backoff_seconds(attempt: int, *, factor: float, maximum: float) -> float:
    """The wait before re-sending after ``attempt`` failed sends: ``factor * 2**(attempt-1)``, at most ``maximum``.

    >>> [backoff_seconds(n, factor=2.0, maximum=30.0) for n in (1, 2, 3, 5)]
    [2.0, 4.0, 8.0, 30.0]
    """
    return float(min(maximum, factor * (2 ** max(0, attempt - 1))))
