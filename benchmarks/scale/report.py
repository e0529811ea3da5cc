"""What a backfill did, read back from the instance: runs, the worker of each video step, where the time went.

>>> report = BackfillReport(tag="t", partitions=["b000"], prompts=10, workers=2, capacity=4,
...                         generation_seconds=2.0, wall_seconds=7.5)
>>> report.ideal_seconds, report.succeeded
(6.0, False)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from benchmarks._common import cpu_demand
from benchmarks._timeline import slot_fill


@dataclass
class StepExecution:
    """One execution of a step by a Celery worker, read from the event log."""

    run_id: str
    partition: str | None
    step_key: str
    worker: str
    timestamp: float


@dataclass
class BackfillReport:
    """What a backfill did: its runs, which worker produced each partition, the simulator's counters."""

    tag: str
    partitions: list[str]
    prompts: int
    workers: int
    capacity: int
    generation_seconds: float
    wall_seconds: float
    submit_seconds: float = 0.0
    started_at: float = 0.0
    runs: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, Any] = field(default_factory=dict)
    worker_concurrency: int = 1
    pool_limit: int = 0
    #: The videos' window from S3 (``benchmarks._timeline.s3_window``): first create -> last object.
    window: dict[str, Any] = field(default_factory=dict)
    #: CPU seconds the whole machine used from the submission to the last run's end (``/proc/stat``).
    machine_cpu_seconds: float = math.nan
    cores: int = 1

    @property
    def ideal_seconds(self) -> float:
        """The capacity-bound ideal: ``ceil(prompts / capacity)`` generations one after the other."""
        return math.ceil(self.prompts / max(1, self.capacity)) * self.generation_seconds

    @property
    def succeeded(self) -> bool:
        """Every run succeeded."""
        return bool(self.runs) and all(r["status"] == "SUCCESS" for r in self.runs)

    def lines(self) -> list[str]:
        """The report as printable lines: one per partition, then the totals."""
        out = [f"{'partition':<14} {'run':<8} {'status':<8} {'worker(s) of the video step':<40} videos"]
        for r in sorted(self.runs, key=lambda r: r["partition"] or ""):
            out.append(
                f"{r['partition'] or '-':<14} {r['run_id'][:8]:<8} {r['status']:<8} "
                f"{' -> '.join(r['video_workers']) or '?':<40} {r['videos']}"
            )
        out += self.time_lines()
        out += self.window_lines()
        out += self.split_lines()
        if not math.isnan(self.machine_cpu_seconds) and self.wall_seconds:
            cpu = self.machine_cpu_seconds
            out.append(
                f"CPU: the machine used {cpu:.1f} CPU s during the {self.wall_seconds:.1f} s wall "
                f"({cpu / (self.cores * self.wall_seconds):.0%} of {self.cores} cores; every process, other "
                f"load included); CPU demand / (cores x ideal) {cpu_demand(cpu, self.ideal_seconds, self.cores):.2f} "
                "(above 1 the machine is the limit)"
            )
        c = self.counters
        by_prompt = c.get("creates_by_prompt", {})
        out += [
            f"{len(self.partitions)} partitions, {self.prompts} prompts, {self.workers} worker(s) x "
            f"{self.worker_concurrency} process(es), pool limit {self.pool_limit}, capacity "
            f"{self.capacity}: wall {self.wall_seconds:.1f} s, capacity-bound ideal {self.ideal_seconds:.1f} s "
            f"({self.ideal_seconds / self.wall_seconds:.1%} of ideal)"
            if self.wall_seconds
            else "",
            f"simulator: {c.get('creates', 0)} creates for {len(by_prompt)} distinct prompts (most for one "
            f"prompt: {max(by_prompt.values(), default=0)}), max concurrent by account "
            f"{c.get('max_concurrent_by_account', {})}, refused with 429: "
            f"{c.get('rejected_by_status', {}).get('429', 0)}",
        ]
        return out

    def window_lines(self) -> list[str]:
        """The API's side: first create -> last S3 object against the ideal, and how busy the slots were."""
        w = self.window
        span = w.get("window")
        if not w.get("videos") or not span or math.isnan(span):
            return []
        started = w["first_create"] - self.started_at
        fill = slot_fill(w, self.capacity)
        lines = [
            f"videos: first create at {started:.1f} s after the submission; first create -> last S3 object "
            f"{span:.1f} s for {w['videos']} videos ({self.ideal_seconds / span:.1%} of ideal); slots kept "
            f"busy {fill:.0%}; mean created->finished {w['generation_mean']:.2f} s, finished->last object "
            f"{w['store_mean']:.2f} s"
        ]
        idle = w.get("idle")
        if idle:
            lines.append(
                f"idle slot-seconds: {idle['ramp']:.1f} while the slots first filled, {idle['between_waves']:.1f} "
                f"between waves (hand-overs; {idle['between_waves'] / self.capacity:.2f} s of the window), "
                f"{idle['last_wave']:.1f} in the last wave"
            )
        return lines

    def split(self) -> dict[str, float]:
        """The wall time cut where it changes hands (seconds; empty without timed runs and a window).

        ``queued``: the submission -> the first run queued (the backfill command); ``started``: -> that run
        started (the daemon's dequeue and the run's process); ``video_step``: -> its video step started (its
        prompts step and Celery's hand-offs); ``first_create``: -> the first create (the step's own start);
        ``window``: -> the last S3 object (the generations, and what the hand-overs between them cost);
        ``tail``: -> the last run's end (its video step's end, and dagster-celery noticing it). They add up to
        the wall time.

        >>> r = BackfillReport(tag="t", partitions=["b000"], prompts=10, workers=1, capacity=10,
        ...                    generation_seconds=10.0, wall_seconds=20.0, started_at=100.0,
        ...                    window={"videos": 10, "first_create": 106.0, "last_write": 118.5, "window": 12.5})
        >>> r.runs = [{"status": "SUCCESS", "t": {"created": 101.0, "start": 103.0, "prompts_start": 104.0,
        ...            "prompts_end": 104.5, "video_start": 105.5, "video_end": 118.6, "end": 120.0}}]
        >>> r.split()
        {'queued': 1.0, 'started': 2.0, 'video_step': 2.5, 'first_create': 0.5, 'window': 12.5, 'tail': 1.5}
        """
        timed, w = self._timed(), self.window
        if not timed or not w.get("videos") or not self.wall_seconds:
            return {}
        first = min(timed, key=lambda t: t["created"])
        marks = [
            ("queued", first["created"]),
            ("started", first["start"]),
            ("video_step", first["video_start"]),
            ("first_create", w["first_create"]),
            ("window", w["last_write"]),
            ("tail", self.started_at + self.wall_seconds),
        ]
        out, previous = {}, self.started_at
        for name, at in marks:
            out[name] = round(at - previous, 6)
            previous = at
        return out

    def split_lines(self) -> list[str]:
        """The wall time split (:meth:`split`), and how much of it lies outside the videos' window and the
        first run's video step."""
        sp = self.split()
        if not sp:
            return []
        fixed = sp["queued"] + sp["started"] + sp["video_step"] + sp["tail"]
        return [
            f"wall split: {sp['queued']:.1f} s to the first run queued (backfill command) + {sp['started']:.1f} s "
            f"to it started (daemon, run process) + {sp['video_step']:.1f} s to its video step (prompts step, "
            f"Celery) + {sp['first_create']:.1f} s to the first create (the video step) + {sp['window']:.1f} s "
            f"first create -> last object (ideal {self.ideal_seconds:.1f} s) + {sp['tail']:.1f} s to the last "
            f"run's end; {fixed:.1f} s ({fixed / self.ideal_seconds:.1%} of the ideal) go to the command, the "
            "daemon, the run's process, its prompts step and dagster-celery's hand-offs (and the last video "
            "step's own end, inside the last part)"
        ]

    def _timed(self) -> list[dict[str, float]]:
        return [r["t"] for r in self.runs if r.get("t") and None not in r["t"].values()]

    def phases(self) -> dict[str, float]:
        """Mean seconds per run in each phase, from the run records and step stats (see :meth:`time_lines`)."""
        timed = self._timed()
        if not timed:
            return {}
        spans = {
            "queued": ("created", "start"),
            "startup": ("start", "prompts_start"),
            "prompts_step": ("prompts_start", "prompts_end"),
            "pool_wait": ("prompts_end", "video_start"),
            "video_step": ("video_start", "video_end"),
            "teardown": ("video_end", "end"),
        }
        return {k: sum(t[b] - t[a] for t in timed) / len(timed) for k, (a, b) in spans.items()}

    def video_busy_seconds(self) -> float:
        """Seconds during which at least one video step was running (the union of their intervals)."""
        spans = sorted((t["video_start"], t["video_end"]) for t in self._timed())
        busy, current = 0.0, None
        for start, end in spans:
            if current is None or start > current[1]:
                busy += 0.0 if current is None else current[1] - current[0]
                current = [start, end]
            else:
                current[1] = max(current[1], end)
        return busy + (current[1] - current[0] if current else 0.0)

    def time_lines(self) -> list[str]:
        """Where the time goes: the submission, each run's phases, how long video steps were running."""
        timed = self._timed()
        if not timed:
            return []
        first = min(t["start"] for t in timed) - self.started_at
        ph = self.phases()
        return [
            f"time: backfill submitted in {self.submit_seconds:.1f} s (an asset backfill: the daemon creates its"
            f" runs at its next tick, within 30 s); first run started "
            f"at {first:.1f} s; per run (mean): queued {ph['queued']:.1f} s, run start-up to first step "
            f"{ph['startup']:.1f} s, prompts step {ph['prompts_step']:.1f} s, pool wait + dispatch "
            f"{ph['pool_wait']:.1f} s, video step {ph['video_step']:.1f} s, run end {ph['teardown']:.1f} s; "
            f"some video step running during {self.video_busy_seconds():.1f} s of {self.wall_seconds:.1f} s",
        ]


def batches_of(prompts: int, per_batch: int, *, tag: str = "") -> dict[str, list[dict[str, str]]]:
    """``prompts`` distinct prompt rows in batches of ``per_batch`` (partition names ``b000``, ``b001``...).

    >>> {k: [r["id"] for r in v] for k, v in batches_of(5, 2).items()}
    {'b000': ['p0000', 'p0001'], 'b001': ['p0002', 'p0003'], 'b002': ['p0004']}
    """
    subjects = ["a red fox", "a lighthouse", "a paper boat", "a city tram", "a hummingbird", "a caravan"]
    rows = [
        {"id": f"p{i:04d}", "prompt": f"{subjects[i % len(subjects)]}, shot {i}{(' ' + tag) if tag else ''}"}
        for i in range(prompts)
    ]
    return {f"b{n:03d}": rows[i : i + per_batch] for n, i in enumerate(range(0, prompts, per_batch))}
