"""Accounts and capacity: GET accounts, GET scheduler/available, and which accounts can make videos.

Fields are doc (the get-minimax-accounts and get-minimax-scheduler-available pages) unless marked GUESS.

>>> usable, skipped = split_video_accounts({
...     "1": Account(account="1", max_jobs=3, support_video=True),
...     "2": Account(account="2", max_jobs=1, support_video=False),
... })
>>> (list(usable), skipped)
(['1'], {'2': 'no video support (supportVideo is false)'})
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import Field, field_serializer, field_validator

from minimax_dagster.api.models.base import ApiModel, parse_composite_id


class AccountUser(ApiModel):
    """``jwt.user`` of an account (doc: ``{deviceID, id, isAnonymous, name, avatar}``).

    >>> AccountUser.model_validate({"deviceID": "123", "id": "456", "isAnonymous": True}).device_id
    '123'
    """

    device_id: str | None = Field(None, alias="deviceID")
    id: str | None = None
    is_anonymous: bool | None = None
    name: str | None = None
    avatar: str | None = None


class AccountJwt(ApiModel):
    """``jwt`` of an account. The token is kept out of reprs (useapi masks it, but it is still a credential).

    >>> jwt = AccountJwt.model_validate({"token": "abc-secured-xyz", "exp": 1734858598.864, "host": "hailuoai.video"})
    >>> ("abc-secured-xyz" in repr(jwt), jwt.exp)
    (False, 1734858598.864)
    """

    token: str | None = Field(None, repr=False)
    user: AccountUser | None = None
    exp: float | None = None  # seconds since the epoch
    iat: float | None = None
    host: str | None = None
    search_params: str | None = None
    iat_issued: str | None = Field(None, alias="iat_Issued")
    exp_expire: str | None = Field(None, alias="exp_Expire")


class Account(ApiModel):
    """A configured MiniMax account (GET accounts, GET accounts/{account}).

    doc: ``{account, jwt{...}, maxJobs, supportVideo, supportMusic, supportChat, supportAudio, host}``, and an
    ``error`` on an account that is broken. GUESS: the type of ``error`` (a message; an object is kept as is).

    >>> Account.model_validate({"account": "1", "maxJobs": 2, "supportVideo": True}).unusable_reason is None
    True
    >>> Account(account="2", support_video=True, error="token expired").unusable_reason
    'in error: token expired'
    """

    account: str | None = None
    jwt: AccountJwt | None = None
    max_jobs: int | None = None
    support_video: bool | None = None
    support_music: bool | None = None
    support_chat: bool | None = None
    support_audio: bool | None = None
    host: str | None = None
    error: str | dict[str, Any] | None = None

    @property
    def unusable_reason(self) -> str | None:
        """Why this account cannot make videos, or None when it can.

        As useapi's own client does (doc: ``useapi/minimax-api`` ``video/videos.mjs``), an account makes videos
        only with ``supportVideo`` true and no ``error``; a missing flag counts as false.
        """
        if self.error:
            return f"in error: {self.error}"
        if self.support_video is not True:
            flag = "missing" if self.support_video is None else "false"
            return f"no video support (supportVideo is {flag})"
        return None


def split_video_accounts(accounts: Mapping[str, Account]) -> tuple[dict[str, Account], dict[str, str]]:
    """The accounts that can make videos, and the others with the reason each was skipped.

    >>> split_video_accounts({"9": Account(account="9", support_video=True, error="on hold")})
    ({}, {'9': 'in error: on hold'})
    """
    usable: dict[str, Account] = {}
    skipped: dict[str, str] = {}
    for name, account in accounts.items():
        reason = account.unusable_reason
        if reason is None:
            usable[name] = account
        else:
            skipped[name] = reason
    return usable, skipped


class CapacityByAccount(dict[str, int]):
    """Concurrent jobs per account (a plain ``dict``), saying where the numbers come from and what was skipped.

    ``source`` is ``"configured"``, ``"GET accounts"`` or ``"unknown"``; ``skipped`` maps each listed account
    that was left out to the reason; ``problem`` says why the accounts could not be listed, if they could not.

    >>> capacity = CapacityByAccount({"1": 3}, source="GET accounts", skipped={"2": "in error: expired"})
    >>> (capacity, capacity["1"], capacity.skipped)
    ({'1': 3}, 3, {'2': 'in error: expired'})
    """

    def __init__(
        self,
        jobs: Mapping[str, int] | None = None,
        *,
        source: str = "configured",
        skipped: Mapping[str, str] | None = None,
        problem: str | None = None,
    ) -> None:
        super().__init__(jobs or {})
        self.source = source
        self.skipped: dict[str, str] = dict(skipped or {})
        self.problem = problem

    def describe(self) -> str:
        """One line for a log or metadata: the capacity, then what was skipped and why.

        >>> CapacityByAccount({"1": 3}, source="GET accounts", skipped={"2": "in error: expired"}).describe()
        'capacity from GET accounts: 1 x 3; skipped 2 (in error: expired)'
        """
        jobs = ", ".join(f"{name} x {n}" for name, n in self.items()) or "none"
        text = f"capacity from {self.source}: {jobs}"
        if self.skipped:
            text += "; skipped " + ", ".join(f"{name} ({why})" for name, why in self.skipped.items())
        if self.problem:
            text += f"; {self.problem}"
        return text


def video_capacity(accounts: Mapping[str, Account], *, default_jobs: int = 1) -> CapacityByAccount:
    """The ``maxJobs`` of the accounts that can make videos (GET accounts); the others are skipped, with why.

    >>> video_capacity({"1": Account(max_jobs=3, support_video=True), "2": Account(support_music=True)}).describe()
    'capacity from GET accounts: 1 x 3; skipped 2 (no video support (supportVideo is missing))'
    """
    usable, skipped = split_video_accounts(accounts)
    jobs = {name: max(1, account.max_jobs or default_jobs) for name, account in usable.items()}
    return CapacityByAccount(jobs, source="GET accounts", skipped=skipped)


class ExecutingJob(ApiModel):
    """A job in GET scheduler/available's ``executing`` list.

    doc: ``started`` is ISO 8601 with milliseconds (``2024-09-25T01:55:16.128Z``; an older page types it as a
    number, which parses too), ``elapsed`` a ``"mm:ss"`` string, and an image job carries ``imageId`` instead
    of ``videoId``.

    >>> job = ExecutingJob.model_validate({"videoId": "user:1-minimax:2-video:3",
    ...                                    "started": "2024-09-25T01:55:16.128Z", "elapsed": "03:57"})
    >>> (job.started.isoformat(), job.elapsed_seconds, job.is_video, job.account)
    ('2024-09-25T01:55:16.128000+00:00', 237.0, True, '2')
    """

    video_id: str | None = None
    image_id: str | None = None
    started: datetime | None = None
    elapsed: str | None = None
    reply_url: str | None = None
    reply_ref: str | None = None

    @field_validator("started", mode="before")
    @classmethod
    def _unreadable_start_is_unknown(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_serializer("started", when_used="json-unless-none")
    def _started_as_documented(self, value: datetime) -> str:
        # doc: milliseconds and a Z, as the service writes it (isoformat would give microseconds and +00:00).
        text = value.isoformat(timespec="milliseconds")
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    @property
    def is_video(self) -> bool:
        """True for a video job (an image job has ``imageId``, or a ``-image:`` id)."""
        return bool(self.video_id) and "-image:" not in (self.video_id or "")

    @property
    def account(self) -> str | None:
        """The account running the job (parsed from its id), or None."""
        ident = self.video_id or self.image_id
        return parse_composite_id(ident).get("minimax") if ident else None

    @property
    def elapsed_seconds(self) -> float | None:
        """``elapsed`` in seconds: ``"mm:ss"`` (doc) or ``"h:mm:ss"``; a bare number is read as seconds.

        >>> ExecutingJob(elapsed="1:02:03").elapsed_seconds, ExecutingJob(elapsed="12.5").elapsed_seconds
        (3723.0, 12.5)
        """
        if not self.elapsed:
            return None
        text = self.elapsed.strip()
        if _CLOCK.fullmatch(text):
            seconds = 0.0
            for part in text.split(":"):
                seconds = seconds * 60 + float(part)
            return seconds
        try:
            return float(text)
        except ValueError:
            return None


_CLOCK = re.compile(r"\d+(:\d{1,2}){1,2}(\.\d+)?")


class AccountCapacity(ApiModel):
    """An account's capacity in GET scheduler/available (doc: counts video jobs only).

    >>> AccountCapacity.model_validate({"account": "1", "maxJobs": 5, "executing": 3, "available": 2}).available
    2
    """

    account: str | None = None
    max_jobs: int | None = None
    executing: int | None = None
    available: int | None = None


class SchedulerAvailable(ApiModel):
    """GET scheduler/available: the jobs useapi runs now and each account's free capacity (doc).

    >>> SchedulerAvailable.model_validate({"executing": [], "available": [{"account": "1", "available": 2}]}
    ...     ).available[0].available
    2
    """

    executing: list[ExecutingJob] = Field(default_factory=list)
    available: list[AccountCapacity] = Field(default_factory=list)
