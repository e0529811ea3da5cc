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
    """Thread-safe counters; :meth:`snapshot` returns plain dicts (JSON-ready)."""

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
            }


@dataclass
class UploadedFile:
    file_id: str  # the full "user:<uid>-minimax:<account>-file:<id>"
    numeric_id: str
    account: str
    content_type: str
    data: bytes
    oss_path: str  # CDN URL
    file_name: str
    created_at: float = field(default_factory=time.time)

    @property
    def extension(self) -> str:
        return "png" if self.content_type == "image/png" else "jpg"

    def listing(self) -> dict[str, Any]:
        # GET files item. file_scene / file_status values are GUESSES (their meaning is undocumented).
        return {
            "file_id": self.file_id,
            "file_name": self.file_name,
            "file_type": self.content_type,
            "cdn_url": self.oss_path,
            "oss_path": self.oss_path,
            "file_scene": 10,
            "file_status": 2,
        }


@dataclass
class Job:
    """One agent-create job. Its event log is replayed to the stream that created it."""

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
    """Accounts, jobs, files, fault counters and counters of one simulator instance."""

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

    # ---- ids ----------------------------------------------------------------------------------------------
    def new_id(self) -> str:
        self._next_id += self.rng.randrange(1, 4096)
        return str(self._next_id)

    # ---- accounts -----------------------------------------------------------------------------------------
    @property
    def accounts(self) -> dict[str, int]:
        return self.config.accounts

    def running(self, account: str) -> list[Job]:
        return [j for j in self.jobs.values() if j.account == account and not j.is_final and not j.removed]

    def executing(self) -> list[Job]:
        return [j for j in self.jobs.values() if not j.is_final and not j.removed]

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
