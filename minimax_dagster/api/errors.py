"""The exception hierarchy of the API layer, rooted at :class:`MiniMaxError`.

Every error carries the HTTP status (``None`` when there was no HTTP answer) and the API's own message.
``retryable`` tells whether trying again later can help. :class:`CreateOutcomeUnknownError` says that a job may
already exist (and be billed): a caller must never answer it with a second create.

No error text ever contains the API token: messages are built from the API's answer and our own words only.

>>> err = error_from_response(429, {"error": "All accounts are busy", "code": 429})
>>> type(err).__name__, err.status, err.retryable
('CapacityError', 429, True)
"""

from __future__ import annotations

from typing import Any


class MiniMaxError(Exception):
    """Base of every error raised by this library's API layer.

    >>> str(MiniMaxError("boom", status=500))
    'HTTP 500: boom'
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        video_id: str | None = None,
        body: Any = None,
    ) -> None:
        self.message = message
        self.status = status
        self.video_id = video_id
        self.body = body
        super().__init__(message)

    def __str__(self) -> str:
        prefix = f"HTTP {self.status}: " if self.status is not None else ""
        suffix = f" (video {self.video_id})" if self.video_id else ""
        return f"{prefix}{self.message}{suffix}"

    def __reduce__(self) -> Any:
        # Keep keyword-only fields when errors cross process boundaries (Dagster's multiprocess executor).
        return (_rebuild_error, (type(self), self.message, self.status, self.video_id, self.body))


def _rebuild_error(
    cls: type[MiniMaxError], message: str, status: int | None, video_id: str | None, body: Any
) -> MiniMaxError:
    err = cls.__new__(cls)
    MiniMaxError.__init__(err, message, status=status, video_id=video_id, body=body)
    return err


class BadRequestError(MiniMaxError):
    """400: the request was refused as invalid. Fix the request; retrying it unchanged will not help."""


class UnauthorizedError(MiniMaxError):
    """401: the API token is missing or wrong. Check USEAPI_TOKEN."""


class SubscriptionExpiredError(MiniMaxError):
    """402: the useapi.net subscription has expired."""


class NotFoundError(MiniMaxError):
    """404: the template, video or account does not exist (for a video: most often moderated and removed)."""


class OutOfCreditsError(MiniMaxError):
    """412: the MiniMax account has no credits left; stop using that account."""


class ModeratedError(MiniMaxError):
    """422, or a video status 5 / 7 / 14: moderation refused the prompt or the result. Do not retry."""


class CapacityError(MiniMaxError):
    """429: every account already runs its maxJobs jobs. Wait for one to finish, then try again."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class AccountOnHoldError(MiniMaxError):
    """596: the account is on hold (for hours); pause it."""


class ServerError(MiniMaxError):
    """5xx: the service is busy or failing (502 / 504 are retried before the stream starts)."""

    retryable = True


class VideoFailedError(MiniMaxError):
    """The video reached status 3 (failed). The job was created, so it may have been billed."""


class GenerationTimeoutError(MiniMaxError):
    """The generation did not reach a final state within its wall-clock deadline."""

    retryable = True


class StreamError(MiniMaxError):
    """The event stream broke. Raised only when no video id is known (otherwise the client recovers by polling)."""

    retryable = True


class StreamEndedError(StreamError):
    """The stream ended without a ``finished`` event."""


class StreamStalledError(StreamError):
    """The stream stayed silent for longer than the read timeout (heartbeats come about every 10 s)."""


class StreamTooLargeError(StreamError):
    """A line or an event of the stream went over its cap (:class:`~minimax_dagster.api.limits.ReadLimits`).

    The stream is cut there; as for a dropped stream, the client then polls the video when its id is known and
    reconciles the create otherwise, so this reaches the caller only when neither can find the video.

    >>> StreamTooLargeError("an SSE line is longer than 1048576 characters").retryable
    True
    """


class AnswerTooLargeError(MiniMaxError):
    """An error or JSON answer was longer than its cap (:class:`~minimax_dagster.api.limits.ReadLimits`), or
    did not arrive in full within ``body_seconds``. Retryable: a broken proxy may answer properly next time.

    >>> str(AnswerTooLargeError("GET videos/: the answer is over max_json_bytes", status=200))
    'HTTP 200: GET videos/: the answer is over max_json_bytes'
    """

    retryable = True


class ConnectionFailedError(MiniMaxError):
    """The API could not be reached (after the configured retries).

    >>> ConnectionFailedError("POST files: cannot reach the API").retryable
    True
    """

    retryable = True


class AnswerLostError(ConnectionFailedError):
    """The request was sent (or may have been) but its answer was lost: a reset, a close or a read timeout.

    For a create this means a job may exist; the client reconciles before it sends the create again.

    >>> isinstance(AnswerLostError("POST videos/agent-create: the connection was reset"), ConnectionFailedError)
    True
    """


class CreateOutcomeUnknownError(MiniMaxError):
    """A create may have made (and billed) a job, and the client could neither find it nor prove it absent.

    Not retryable: creating again could pay twice. Look at the account's videos (GET videos/?account=...) for a
    video with the prompt; reattach to it by its videoId, or create again only once you know there is none.

    >>> CreateOutcomeUnknownError("GET videos/ failed on account 1").retryable
    False
    """


_BY_STATUS: dict[int, type[MiniMaxError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    402: SubscriptionExpiredError,
    404: NotFoundError,
    412: OutOfCreditsError,
    422: ModeratedError,
    429: CapacityError,
    596: AccountOnHoldError,
}


def error_from_response(status: int, body: Any, *, retry_after: float | None = None) -> MiniMaxError:
    """Map an HTTP error answer to the matching :class:`MiniMaxError` subclass.

    ``body`` is the decoded JSON (``{"error": "...", "code": N}``) or raw text.

    >>> error_from_response(412, {"error": "Out of credits"})
    OutOfCreditsError('Out of credits')
    >>> type(error_from_response(503, "busy")).__name__
    'ServerError'
    """
    if isinstance(body, dict):
        message = str(body.get("error") or body.get("message") or body)
    else:
        message = str(body or "").strip()[:500] or f"HTTP {status}"
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else BadRequestError if 400 <= status < 500 else MiniMaxError
    if cls is CapacityError:
        return CapacityError(message, status=status, body=body, retry_after=retry_after)
    return cls(message, status=status, body=body)
