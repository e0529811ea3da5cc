"""In-memory state of the simulator: accounts, jobs, uploaded files and counters.

Everything except :class:`Counters` is only touched from the simulator's event-loop thread. Counters are
also read from other threads (``MiniMaxSimulator.counters()``), so they sit behind a lock.
"""

from __future__ import annotations

import asyncio
import copy
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .catalogue import Template
from .config import SimulatorConfig
from .faults import Fault, FaultSet, parse_faults

__all__ = ["FINAL_STATUSES", "MODERATED_STATUSES", "Counters", "Job", "SimState", "UploadedFile"]

#: GET videos/{id} status codes (documented by useapi.net).
STATUS_LABELS = {
    0: "pending",
    11: "queued",
    1: "processing",
    12: "processing",
    2: "completed",
    3: "failed",
    5: "moderated",
    7: "moderated",
    14: "moderated",
}
MODERATED_STATUSES = frozenset({5, 7, 14})
FINAL_STATUSES = frozenset({2, 3}) | MODERATED_STATUSES


class Counters:
    """Thread-safe counters; :meth:`snapshot` returns plain dicts (JSON-ready).

    >>> counters = Counters()
    >>> counters.job_started("100001", "a red car")
    >>> counters.snapshot()["creates_by_prompt"]
    {'a red car': 1}
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.creates = 0
            self.creates_by_account: dict[str, int] = defaultdict(int)
            self.create_requests = 0
            self.rejected_by_status: dict[str, int] = defaultdict(int)
            self.polls = 0
            self.polls_by_video: dict[str, int] = defaultdict(int)
            self.downloads = 0
            self.downloads_completed = 0
            self.downloads_by_video: dict[str, int] = defaultdict(int)
            self.range_requests = 0
            self.bytes_served = 0
            self.callbacks = 0
            self.callbacks_delivered = 0
            self.concurrent_jobs_by_account: dict[str, int] = defaultdict(int)
            self.max_concurrent_by_account: dict[str, int] = defaultdict(int)
            self.concurrent_total = 0
            self.max_concurrent_total = 0
            self.uploads = 0
            self.creates_by_prompt: dict[str, int] = defaultdict(int)
            self.jobs_by_outcome: dict[str, int] = defaultdict(int)
            self.queued_behind_gateway_errors = 0
            self.video_lists = 0

    def bump(self, name: str, key: str | None = None, amount: int = 1) -> None:
        with self._lock:
            if key is None:
                setattr(self, name, getattr(self, name) + amount)
            else:
                getattr(self, name)[key] += amount

    def job_started(self, account: str, prompt: str | None) -> None:
        with self._lock:
            self.creates += 1
            self.creates_by_account[account] += 1
            self.creates_by_prompt[prompt or ""] += 1
            self.concurrent_jobs_by_account[account] += 1
            self.concurrent_total += 1
            self.max_concurrent_by_account[account] = max(
                self.max_concurrent_by_account[account], self.concurrent_jobs_by_account[account]
            )
            self.max_concurrent_total = max(self.max_concurrent_total, self.concurrent_total)

    def job_ended(self, account: str, outcome: str) -> None:
        with self._lock:
            self.concurrent_jobs_by_account[account] -= 1
            self.concurrent_total -= 1
            self.jobs_by_outcome[outcome] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "creates": self.creates,
                "creates_by_account": dict(self.creates_by_account),
                "create_requests": self.create_requests,
                "rejected_by_status": dict(self.rejected_by_status),
                "polls": self.polls,
                "polls_by_video": dict(self.polls_by_video),
                "downloads": self.downloads,
                "downloads_completed": self.downloads_completed,
                "downloads_by_video": dict(self.downloads_by_video),
                "range_requests": self.range_requests,
                "bytes_served": self.bytes_served,
                "callbacks": self.callbacks,
                "callbacks_delivered": self.callbacks_delivered,
                "concurrent_jobs_by_account": dict(self.concurrent_jobs_by_account),
                "max_concurrent_by_account": dict(self.max_concurrent_by_account),
                "concurrent_total": self.concurrent_total,
                "max_concurrent_total": self.max_concurrent_total,
                "uploads": self.uploads,
                "creates_by_prompt": dict(self.creates_by_prompt),
                "jobs_by_outcome": dict(self.jobs_by_outcome),
                "queued_behind_gateway_errors": self.queued_behind_gateway_errors,
                "video_lists": self.video_lists,
            }


@dataclass
class UploadedFile:
    """An image uploaded with POST files.

    >>> f = UploadedFile("user:1-minimax:7-file:42", "42", "7", "image/jpeg", b"", "http://h/cdn/files/7/42.jpg",
    ...                  "42.jpg")
    >>> f.listing()["file_type"], f.listing()["oss_path"]
    ('jpeg', 'files/7/42.jpg')
    """

    file_id: str  # the full "user:<uid>-minimax:<account>-file:<id>"
    numeric_id: str
    account: str
    content_type: str
    data: bytes
    oss_path: str  # the CDN URL that POST files answers as ossPath (doc: "ossPath": "<file url>")
    file_name: str
    created_at: float = field(default_factory=time.time)
    used: bool = False  # a create used it (doc: GET files lists "only images that were actually used")

    @property
    def extension(self) -> str:
        return "png" if self.content_type == "image/png" else "jpg"

    @property
    def file_type(self) -> str:
        # doc: GET files examples say "jpeg" and "png" (not MIME types); originFiles say "png".
        return "png" if self.content_type == "image/png" else "jpeg"

    @property
    def storage_path(self) -> str:
        # doc: GET files' oss_path is "<file path with name>", distinct from cdn_url; this path is a GUESS.
        return f"files/{self.account}/{self.numeric_id}.{self.extension}"

    def listing(self) -> dict[str, Any]:
        """The GET files item (doc: get-minimax-files page; file_scene 10 / file_status 1 as its example)."""
        return {
            "file_id": self.file_id,
            "file_name": self.file_name,
            "file_type": self.file_type,
            "cdn_url": self.oss_path,
            "oss_path": self.storage_path,
            "file_scene": 10,
            "file_status": 1,
        }


@dataclass
class Job:
    """One agent-create job. Its event log is replayed to the stream that created it.

    >>> from minimax_dagster.simulator.catalogue import TEMPLATES
    >>> job = Job("42", "user:1-minimax:7-video:42", "7", TEMPLATES[0], "a car", None, None, None, 1, FaultSet(),
    ...           1.0, "http://h", "p", "c", "s", "u", "t")
    >>> job.video_url, job.is_final
    ('http://h/cdn/video/42.mp4', False)
    """

    numeric_id: str
    video_id: str
    account: str
    template: Template
    prompt: str | None
    file: UploadedFile | None
    reply_url: str | None
    reply_ref: str | None
    max_jobs: int
    faults: FaultSet
    generation_seconds: float
    origin: str  # scheme://host:port the URLs are built on
    project_id: str
    chat_id: str
    section_id: str
    user_msg_id: str
    task_id: str
    created_at: float = field(default_factory=time.time)
    status: int = 0
    started_processing_at: float | None = None
    final_at: float | None = None
    message: str = ""
    err_code: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    cdn_cuts_done: int = 0
    task: asyncio.Task | None = None
    generating: bool = True  # heartbeats are sent while True
    removed: bool = False  # reset() forgot this job
    # http502_queued / http504_queued: the create was answered 502/504 but the job was queued anyway. useapi's
    # side does not know it: not in scheduler/available, no maxJobs slot, no callback (doc-inferred, see faults).
    hidden: bool = False
    _waiters: list[asyncio.Future] = field(default_factory=list)

    # ---- URLs -------------------------------------------------------------------------------------------
    @property
    def video_url(self) -> str:
        return f"{self.origin}/cdn/video/{self.numeric_id}.mp4"

    @property
    def download_url(self) -> str:
        return f"{self.origin}/cdn/video/{self.numeric_id}_nowm.mp4"

    @property
    def poster_url(self) -> str:
        return f"{self.origin}/cdn/video/{self.numeric_id}.png"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def removed_by_moderation(self, visible_seconds: float) -> bool:
        """doc: a moderated video is removed after generation (GET then answers 404); the delay is a GUESS."""
        return (
            self.status in MODERATED_STATUSES
            and self.final_at is not None
            and time.time() - self.final_at > visible_seconds
        )

    # ---- event log --------------------------------------------------------------------------------------
    def emit(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.notify()

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_change(self, timeout: float | None) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            if fut in self._waiters:
                self._waiters.remove(fut)


class SimState:
    """Accounts, jobs, files, fault counters and counters of one simulator instance.

    >>> state = SimState(SimulatorConfig(accounts={"7": 1, "8": 1}, accounts_in_error={"8": "Account on hold"}))
    >>> state.video_accounts(), state.account_error("8")
    (['7'], 'Account on hold')
    """

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.counters = Counters()
        self.rng = random.Random(config.seed)
        # Ids look like MiniMax's 18-digit snowflake ids. Their base is random so that two simulator runs do
        # not hand out the same ids.
        self._next_id = 400_000_000_000_000_000 + self.rng.randrange(10**15) * 1000
        self.jobs: dict[str, Job] = {}  # videoId -> job
        self.jobs_by_numeric: dict[str, Job] = {}
        self.files: dict[str, UploadedFile] = {}  # fileID -> file
        self.files_by_numeric: dict[str, UploadedFile] = {}
        self.fault_hits: dict[tuple, int] = defaultdict(int)  # busy/http502/http504 counting
        self.server_faults: list[Fault] = parse_faults(config.faults, source="config")
        self.stopping = False
        self.started_at = time.time()

    # ---- ids ----------------------------------------------------------------------------------------------
    def new_id(self) -> str:
        self._next_id += self.rng.randrange(1, 4096)
        return str(self._next_id)

    # ---- accounts -----------------------------------------------------------------------------------------
    @property
    def accounts(self) -> dict[str, int]:
        return self.config.accounts

    def supports_video(self, account: str) -> bool:
        return account not in self.config.accounts_without_video

    def account_error(self, account: str) -> str | None:
        return self.config.accounts_in_error.get(account)

    def video_accounts(self) -> list[str]:
        """The accounts a create without ``account`` may go to: video support and no error."""
        return [a for a in self.accounts if self.supports_video(a) and self.account_error(a) is None]

    def running(self, account: str) -> list[Job]:
        """The account's jobs that useapi's side counts against maxJobs (hidden jobs are not among them)."""
        return [j for j in self.executing() if j.account == account]

    def executing(self) -> list[Job]:
        """What GET scheduler/available lists: running jobs useapi's side knows of."""
        return [j for j in self.jobs.values() if not j.is_final and not j.removed and not j.hidden]

    def account_videos(self, account: str) -> list[Job]:
        """The account's videos as GET videos/ lists them, newest first (the order is a GUESS)."""
        jobs = [j for j in self.jobs.values() if j.account == account and not j.removed]
        return sorted(jobs, key=lambda j: int(j.numeric_id), reverse=True)

    # ---- runtime config -----------------------------------------------------------------------------------
    def set_faults(self, faults: list[str]) -> None:
        parsed = parse_faults(faults, source="config")
        self.config = self.config.model_copy(update={"faults": list(faults)})
        self.server_faults = parsed
        for key in [k for k in self.fault_hits if k[0] == "config"]:
            del self.fault_hits[key]

    def forget_everything(self) -> None:
        for job in list(self.jobs.values()):
            job.removed = True
            job.generating = False
            if job.task is not None and not job.task.done():
                job.task.cancel()
            job.notify()
        self.jobs.clear()
        self.jobs_by_numeric.clear()
        self.fault_hits.clear()
        self.counters.reset()

    def snapshot_config(self) -> dict[str, Any]:
        data = copy.deepcopy(self.config.model_dump())
        return data
