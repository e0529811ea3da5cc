"""Benchmark 5: wide capacity in one step: many accounts at once (issue 12: 20 accounts x 10 jobs, capacity 200,
N = 1,000, T = 15 s, target <= 1.10 x the bound).

Two variants, each on fresh services (the simulator started with the accounts, moto, a new bucket):

* **producer**: ``VideoProducer.run`` alone in this process, no Dagster, its S3 client hooked to count calls.
* **run**: one Dagster run of the N prompts in ``--partitions`` dynamic partitions (``BackfillPolicy.single_run``,
  ``dg.execute_job``, multiprocess executor unless ``--executor in_process``), the step's S3 client traced
  (``benchmarks._defs``).

Ideal = ceil(N / capacity) x T. "first create -> last S3 object" comes from S3 (see ``benchmarks._timeline``).
While each variant runs, a sampler (``benchmarks._probes.ProcessSampler``, every ``--sample-seconds``) reads
the threads, open TCP connections (any state but listening, from /proc/<pid>/fd and /proc/net/tcp) and RSS
of the process that runs the producer: this one for "producer" and the in_process executor, the videos step's
child process for the multiprocess executor. Peak RSS is the process's ``VmHWM`` (this process's is reset first). The CPU
demand row adds up this process (less the sampler's thread), its children (the step processes), the simulator
and moto.

``python -m benchmarks.wide [--quick] [--only producer,run] [--accounts 20] [--jobs 10] [--prompts 1000]
[--generation-seconds 15] [--heartbeat-seconds 1] [--partitions 4] [--executor multiprocess|in_process]
[--sample-seconds 0.5]``.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks._common import Row, cpu_demand_row, cpu_seconds, dagster_home, emit, log, preamble
from benchmarks._probes import (
    Peaks,
    ProcessSampler,
    S3Recorder,
    by_operation,
    per_video,
    read_s3_trace,
    reset_peak_rss,
    s3_trace_dir,
)
from benchmarks._stack import start_stack
from benchmarks._timeline import per_video_cost_rows, run_events, s3_window, step_rows, window_rows

NAME = "wide"
TEMPLATE = "394100000000000003"
MIB = 1024 * 1024
EXECUTORS: dict[str, dict[str, Any] | None] = {
    "multiprocess": None,
    "in_process": {"execution": {"config": {"in_process": {}}}},
}


def accounts_of(count: int, jobs: int) -> dict[str, int]:
    """``count`` simulator accounts of maxJobs ``jobs``.

    >>> accounts_of(2, 10)
    {'300001': 10, '300002': 10}
    """
    return {str(300001 + i): jobs for i in range(count)}


def _peak_rows(variant: str, peaks: Peaks | None, where: str) -> list[Row]:
    if peaks is None:
        return [Row(NAME, variant, "peak threads", None, "", f"no process found ({where})")]
    note = f"{where}, pid {peaks.pid}, {peaks.samples} samples"
    return [
        Row(NAME, variant, "peak threads", peaks.threads, "", note),
        Row(NAME, variant, "peak open TCP connections", peaks.connections, "", "API streams + S3 pool"),
        Row(NAME, variant, "peak RSS", peaks.rss / MIB, "MiB", "VmHWM of that process"),
    ]


def _common_rows(
    variant: str, svc_counters: dict[str, Any], window: dict[str, Any], n: int, capacity: int, ideal: float
) -> list[Row]:
    return [
        Row(NAME, variant, "ideal", ideal, "s", f"ceil({n}/{capacity}) x T"),
        *window_rows(NAME, variant, window, ideal, capacity),
        Row(
            NAME,
            variant,
            "creates / videos in S3",
            f"{svc_counters['creates']} / {window['videos']}",
            "",
            f"max concurrent jobs {svc_counters['max_concurrent_total']} of {capacity}, "
            f"polls {svc_counters['polls']}, rejected {svc_counters['rejected_by_status'] or 'none'}",
        ),
    ]


def producer_variant(accounts: dict[str, int], n: int, t: float, heartbeat: float, every: float) -> list[Row]:
    """N new prompts through ``VideoProducer.run`` in this process."""
    from minimax_dagster.production.prompts import VideoPrompt

    variant = "producer alone"
    capacity = sum(accounts.values())
    ideal = math.ceil(n / capacity) * t
    seed = uuid.uuid4().hex[:8]
    prompts = [VideoPrompt(id=f"w{i}", prompt=f"wide {seed} {i}", template_id=TEMPLATE) for i in range(n)]
    with start_stack(generation_seconds=t, heartbeat_seconds=heartbeat, accounts=accounts) as svc:
        s3 = svc.s3_client()
        recorder = S3Recorder().attach(s3)
        producer = svc.producer(s3)
        log(f"wide, producer alone: {n} prompts, {len(accounts)} accounts, capacity {capacity}, T={t:g} s")
        reset_peak_rss()
        svc0, cpu0 = svc.service_cpu(), time.process_time()
        with ProcessSampler(exclude=svc.service_pids(), interval=every) as sampler:
            entries = [note.entry for note in producer.run(prompts) if note.entry is not None]
        cpu = time.process_time() - cpu0 - sampler.cpu
        service_cpu = {k: v - svc0.get(k, 0.0) for k, v in svc.service_cpu().items()}
        failed = sum(1 for e in entries if not e.ok)
        window = s3_window(svc.s3_client(), svc.bucket, trace=recorder.snapshot())
        counters = svc.counters()
    calls = recorder.by_operation()
    rows = _common_rows(variant, counters, window, n, capacity, ideal)
    rows[0].note += f" = {ideal:g} s; {len(entries)} entries, {failed} failed"
    rows += _peak_rows(variant, sampler.peaks.get(os.getpid()), "this process")
    rows += [
        Row(NAME, variant, "S3 requests per video", sum(calls.values()) / n, "", per_video(calls, n)),
        Row(
            NAME,
            variant,
            "producer CPU per video",
            cpu / n * 1000,
            "ms",
            f"{cpu:.1f} s in all, sampler excluded",
        ),
        cpu_demand_row(
            NAME, variant, cpu + sum(service_cpu.values()), ideal, {"producer": cpu, **service_cpu}
        ),
    ]
    return rows


def run_variant(
    accounts: dict[str, int], n: int, t: float, heartbeat: float, every: float, partitions: int, executor: str
) -> list[Row]:
    """N new prompts over ``partitions`` dynamic partitions in one Dagster run."""
    import dagster as dg

    from benchmarks._defs import bench_job

    variant = f"1 run, {executor}"
    capacity = sum(accounts.values())
    per = math.ceil(n / partitions)
    n = per * partitions
    ideal = math.ceil(n / capacity) * t
    with (
        start_stack(generation_seconds=t, heartbeat_seconds=heartbeat, accounts=accounts) as svc,
        dagster_home(),
        tempfile.TemporaryDirectory(prefix="bench_s3_trace_") as trace_name,
        s3_trace_dir(Path(trace_name)) as trace_dir,
    ):
        os.environ.update(svc.env())
        os.environ["BENCH_ROWS_SEED"] = uuid.uuid4().hex[:8]
        os.environ["BENCH_ROWS_PER_PARTITION"] = str(per)
        names = [f"wide{i:02d}" for i in range(partitions)]
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions("bench_sets", names)
            tags = {
                "dagster/asset_partition_range_start": names[0],
                "dagster/asset_partition_range_end": names[-1],
            }
            log(
                f"wide, one run: {n} prompts in {partitions} partitions, capacity {capacity}, T={t:g} s, {executor}"
            )
            reset_peak_rss()
            cpu0, svc0 = cpu_seconds(), svc.service_cpu()
            started = time.time()
            with (
                ProcessSampler(exclude=svc.service_pids(), interval=every) as sampler,
                dg.execute_job(
                    dg.reconstructable(bench_job),
                    instance=instance,
                    tags=tags,
                    run_config=EXECUTORS[executor],
                ) as result,
            ):
                ok, run_id = result.success, result.run_id
            wall = time.time() - started
            cpu1, svc1 = cpu_seconds(), svc.service_cpu()
            events = run_events(instance, run_id, "bench_videos")
        trace = read_s3_trace(trace_dir)
        window = s3_window(svc.s3_client(), svc.bucket, trace=trace)
        counters = svc.counters()
    run_cpu = cpu1["self"] - cpu0["self"] + cpu1["children"] - cpu0["children"] - sampler.cpu
    service_cpu = {k: svc1[k] - svc0.get(k, 0.0) for k in svc1}
    calls = by_operation(trace)
    if executor == "in_process":
        step, where = sampler.peaks.get(os.getpid()), "this process (in_process executor)"
    else:
        step, where = sampler.busiest(set(sampler.peaks) - {os.getpid()}), "the videos step's process"
    rows = _common_rows(variant, counters, window, n, capacity, ideal)
    rows[0].note += f" = {ideal:g} s; {partitions} partitions; success={ok}"
    rows += step_rows(NAME, variant, events, window)
    rows += _peak_rows(variant, step, where)
    rows += [
        Row(NAME, variant, "whole run (execute_job call)", wall, "s", f"/ ideal {wall / ideal:.2f} x"),
        *per_video_cost_rows(NAME, variant, events, calls, n),
        Row(
            NAME,
            variant,
            "CPU of the run per video",
            run_cpu / n * 1000,
            "ms",
            f"{run_cpu:.1f} s, all processes",
        ),
        cpu_demand_row(
            NAME, variant, run_cpu + sum(service_cpu.values()), ideal, {"run": run_cpu, **service_cpu}
        ),
    ]
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 accounts x 2 jobs, 8 prompts, T=0.3 s")
    parser.add_argument("--only", default="producer,run", help="variants: producer,run")
    parser.add_argument("--accounts", type=int, default=None, help="simulator accounts (default 20)")
    parser.add_argument("--jobs", type=int, default=None, help="maxJobs of each account (default 10)")
    parser.add_argument("--prompts", type=int, default=None, help="N (default 1000)")
    parser.add_argument("--generation-seconds", type=float, default=None, help="T (default 15)")
    parser.add_argument(
        "--heartbeat-seconds", type=float, default=1.0, help="simulator heartbeat (default 1)"
    )
    parser.add_argument(
        "--sample-seconds", type=float, default=None, help="sampler interval (0.5; 0.1 quick)"
    )
    parser.add_argument("--partitions", type=int, default=None, help="partitions of the run (default 4)")
    parser.add_argument(
        "--executor", choices=sorted(EXECUTORS), default="multiprocess", help="executor of the run"
    )
    parser.add_argument("--json", action="store_true", help="also print a machine-readable line")
    args = parser.parse_args(argv)
    quick = args.quick

    def pick(value: Any, full: Any, small: Any) -> Any:
        return value if value is not None else (small if quick else full)

    accounts = accounts_of(pick(args.accounts, 20, 2), pick(args.jobs, 10, 2))
    n = pick(args.prompts, 1000, 8)
    t = pick(args.generation_seconds, 15.0, 0.3)
    partitions = pick(args.partitions, 4, 2)
    every = pick(args.sample_seconds, 0.5, 0.1)
    variants = {v.strip() for v in args.only.split(",") if v.strip()}
    unknown = variants - {"producer", "run"}
    if unknown:
        parser.error(f"--only: unknown variant(s) {sorted(unknown)}; choose from producer, run")
    rows = preamble(NAME)
    if "producer" in variants:
        rows += producer_variant(accounts, n, t, args.heartbeat_seconds, every)
    if "run" in variants:
        rows += run_variant(accounts, n, t, args.heartbeat_seconds, every, partitions, args.executor)
    emit(rows, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
