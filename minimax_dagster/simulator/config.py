"""Configuration of the MiniMax simulator (one pydantic model, every field documented)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .faults import parse_faults

__all__ = ["RUNTIME_FIELDS", "SimulatorConfig"]


class SimulatorConfig(BaseModel):
    """Everything the simulator can be told. Defaults suit demos and tests (fast, small, fault-free).

    >>> SimulatorConfig(accounts={"1": 2, "2": 1}, accounts_in_error={"2": "Account on hold"}).accounts
    {'1': 2, '2': 1}
    >>> SimulatorConfig(accounts={"1": 2}, accounts_without_video=["9"])
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for SimulatorConfig
      Value error, accounts_without_video names accounts that are not in accounts: ['9'] (configured: ['1']) ...
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    host: str = Field("127.0.0.1", description="Interface the HTTP server binds to.")
    port: int = Field(
        0, ge=0, le=65535, description="TCP port; 0 picks a free one (read it back from base_url)."
    )
    token: str = Field(
        "sim-token", min_length=1, description="The one bearer token accepted on /v1/minimax/*."
    )
    user_id: str = Field("1234", description="useapi.net user id embedded in videoId and fileID values.")
    accounts: dict[str, int] = Field(
        default_factory=lambda: {"100001": 5, "100002": 5},
        description="Configured MiniMax accounts: account id -> maxJobs (concurrent jobs allowed, 1..10).",
    )
    accounts_without_video: list[str] = Field(
        default_factory=list,
        description="Configured accounts that GET accounts shows with supportVideo false (e.g. a music "
        "account). They are never picked for a create without account; a create naming one is refused.",
    )
    accounts_in_error: dict[str, str] = Field(
        default_factory=dict,
        description="Configured accounts that GET accounts shows with an 'error' (account id -> its text, "
        "e.g. 'Account on hold'). They are never picked for a create without account; a create naming one "
        "is answered 596.",
    )
    generation_seconds: float = Field(
        3.0,
        ge=0.0,
        description="Simulated time from 'created' to the final state (the real API takes 2-15 minutes).",
    )
    heartbeat_seconds: float = Field(
        1.0,
        gt=0.0,
        description="Interval of heartbeat events on a stream during generation (real API ~10 s).",
    )
    video_bytes: int | None = Field(
        None,
        ge=0,
        description="Pad every produced MP4 to this many bytes (memory benchmarks; may be several GiB). "
        "None = the natural size of the rendered clip.",
    )
    cdn_bytes_per_second: float | None = Field(
        None, gt=0.0, description="Throttle every CDN download to this rate (None = as fast as possible)."
    )
    faults: list[str] = Field(
        default_factory=list,
        description="Server-wide faults applied to every create, same syntax as the X-Sim-Fault header, "
        "e.g. ['drop_after=3', 'busy=2'].",
    )
    callback_timeout: float = Field(5.0, gt=0.0, description="Timeout in seconds of each replyUrl POST.")
    default_reply_url: str | None = Field(
        None,
        description="replyUrl used when a create does not give one (the real API uses the one stored on "
        "the useapi.net account).",
    )
    moderated_visible_seconds: float = Field(
        2.0,
        ge=0.0,
        description="How long GET videos/{id} keeps answering a moderated video's status (5/7/14) before it "
        "answers 404 'Not found.' (the real API removes moderated videos; the delay is a guess).",
    )
    max_upload_bytes: int = Field(
        10 * 1024 * 1024,
        gt=0,
        description="Size limit of POST files bodies. Sources disagree (5 MB vs 5 GB); 10 MB is a guess.",
    )
    retry_after_seconds: int = Field(
        1,
        ge=0,
        description="Value of the Retry-After header on 429 (the real API: wait for a job to finish or ~30 s).",
    )
    seed: int | None = Field(
        None, description="Seed of the random account choice and ids (None = nondeterministic)."
    )

    @field_validator("accounts")
    @classmethod
    def _check_accounts(cls, value: dict[str, int]) -> dict[str, int]:
        if not value:
            raise ValueError("at least one account is required")
        for account, max_jobs in value.items():
            if not str(account).strip():
                raise ValueError("account ids must be non-empty")
            if not 1 <= int(max_jobs) <= 10_000:
                # The real API allows 1..10 per account; the simulator allows more for load tests.
                raise ValueError(f"maxJobs of account {account} must be >= 1")
        return value

    @model_validator(mode="after")
    def _check_account_flags(self) -> SimulatorConfig:
        for name in ("accounts_without_video", "accounts_in_error"):
            unknown = sorted(set(getattr(self, name)) - set(self.accounts))
            if unknown:
                raise ValueError(
                    f"{name} names accounts that are not in accounts: {unknown} "
                    f"(configured: {sorted(self.accounts)})"
                )
        return self

    @field_validator("faults")
    @classmethod
    def _check_faults(cls, value: list[str]) -> list[str]:
        for spec in value:
            parse_faults(spec, source="config")  # raises ValueError on a bad spec
        return value


#: Fields that may be changed while the simulator runs (Python: MiniMaxSimulator.configure,
#: HTTP: POST /_sim/config). host, port, token and user_id are fixed once started.
RUNTIME_FIELDS = frozenset(
    {
        "accounts",
        "accounts_without_video",
        "accounts_in_error",
        "generation_seconds",
        "heartbeat_seconds",
        "video_bytes",
        "cdn_bytes_per_second",
        "faults",
        "callback_timeout",
        "default_reply_url",
        "moderated_visible_seconds",
        "max_upload_bytes",
        "retry_after_seconds",
    }
)
