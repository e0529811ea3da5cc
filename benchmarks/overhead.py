"""Benchmark 2: what each video costs, measured in one invocation: CPU, event-log records and S3 calls.

* **in-process run**: the run executes in process (``execute_in_process`` on a real sqlite instance), so the
  step, its threads and the event-log writes all land in this process's CPU clock (``time.process_time``; the
  simulator and moto run in their own processes). Two runs of different sizes give the slope, which drops fixed
  costs (resources, template lookup, manifests): per video = (x(N2) - x(N1)) / (N2 - N1). The same runs give
  event-log records per video, the step's S3 calls per video (its ``s3`` client traced, see
  ``benchmarks._defs``), and, for the larger run, "last S3 object -> step end" and the CPU demand.
* **producer alone**: ``VideoProducer.run`` without Dagster, same slope; its S3 client is hooked
  (``benchmarks._probes.S3Recorder``) so S3 requests per NEW video are counted by operation; then the larger
  set again, all reused, for the calls and CPU of a video already in S3.

``--profile`` prints a cProfile of the larger run on stderr.

``python -m benchmarks.overhead [--quick] [--profile] [--generation-seconds 1] [--heartbeat-seconds 0.1]``.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import math
import os
import pstats
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks._common import Row, cpu_demand_row, dagster_home, emit, log, preamble
from benchmarks._probes import S3Recorder, by_operation, read_s3_trace, s3_trace_dir, slope
from benchmarks._stack import Stack, start_stack
from benchmarks._timeline import run_events, s3_window, step_rows

NAME = "overhead"
TEMPLATE = "394100000000000003"


def _one_run(
    svc: Stack, instance: Any, trace_dir: Path, partitions: int, per: int, profile: cProfile.Profile | None
) -> dict[str, Any]:
    from benchmarks._defs import make_definitions

    os.environ["BENCH_ROWS_SEED"] = uuid.uuid4().hex[:8]
    os.environ["BENCH_ROWS_PER_PARTITION"] = str(per)
    names = [f"o{uuid.uuid4().hex[:6]}-{i}" for i in range(partitions)]
    instance.add_dynamic_partitions("bench_sets", names)
    job = make_definitions().resolve_job_def("bench_job")
    tags = {"dagster/asset_partition_range_start": names[0], "dagster/asset_partition_range_end": names[-1]}
    # The console logger off: in a deployment the run worker's stderr goes to compute logs, not a terminal.
    run_config = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    svc0, started = svc.service_cpu(), time.time()
    cpu0, wall0 = time.process_time(), time.monotonic()
    if profile is not None:
        profile.enable()
    try:
        result = job.execute_in_process(instance=instance, tags=tags, run_config=run_config)
    finally:
        if profile is not None:
            profile.disable()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    ended, svc1 = time.time(), svc.service_cpu()
    if not result.success:
        raise RuntimeError("benchmark run failed")
    trace = [c for c in read_s3_trace(trace_dir) if started <= c.at <= ended]
    return {
        "cpu": cpu,
        "wall": wall,
        "videos": partitions * per,
        "records": len(instance.all_logs(result.run_id)),
        "calls": by_operation(trace),
        "events": run_events(instance, result.run_id, "bench_videos"),
        "window": s3_window(svc.s3_client(), svc.bucket, since=started, trace=trace),
        "service_cpu": {k: svc1[k] - svc0.get(k, 0.0) for k in svc1},
    }


def _producer_only(svc: Stack, prompts: list[Any]) -> dict[str, Any]:
    """CPU seconds and S3 calls (by operation) of ``VideoProducer.run`` alone (no Dagster; notes drained)."""
    s3 = svc.s3_client()
    recorder = S3Recorder().attach(s3)
    producer = svc.producer(s3)
    cpu0 = time.process_time()
    entries = [n.entry for n in producer.run(prompts) if n.entry is not None]
    cpu = time.process_time() - cpu0
    if len(entries) != len(prompts) or not all(e.ok for e in entries):
        raise RuntimeError("producer-only run failed")
    return {"cpu": cpu, "calls": recorder.by_operation()}


def _prompts(count: int) -> list[Any]:
    from minimax_dagster.production.prompts import VideoPrompt

    seed = uuid.uuid4().hex[:8]
    return [
        VideoPrompt(id=f"p{i}", prompt=f"producer only {seed} {i}", template_id=TEMPLATE)
        for i in range(count)
    ]


def _s3_rows(variant: str, figure: str, per_op: dict[str, float], target: str) -> list[Row]:
    """A total row, then one indented row per operation (most frequent first)."""
    total = sum(per_op.values())
    rows = [Row(NAME, variant, figure, total, "", target)]
    for op, value in sorted(per_op.items(), key=lambda kv: -kv[1]):
        if abs(value) >= 0.005:
            rows.append(Row(NAME, variant, f"  {op}", value, "", ""))
    return rows


def measure(small: int, large: int, t: float, heartbeat: float, profile_out: bool) -> list[Row]:
    """Per-video costs from runs of ``small`` and ``large`` prompts (4 partitions each), with and without Dagster."""
    import dagster as dg

    profile = cProfile.Profile() if profile_out else None
    with (
        start_stack(generation_seconds=t, heartbeat_seconds=heartbeat) as svc,
        dagster_home(),
        tempfile.TemporaryDirectory(prefix="bench_s3_trace_") as trace_name,
        s3_trace_dir(Path(trace_name)) as trace_dir,
    ):
        os.environ.update(svc.env())
        capacity = svc.capacity
        with dg.DagsterInstance.get() as instance:
            log("overhead: warm-up run")
            _one_run(svc, instance, trace_dir, 2, 2, None)
            log(f"overhead: {small} prompts")
            a = _one_run(svc, instance, trace_dir, 4, small // 4, None)
            log(f"overhead: {large} prompts")
            b = _one_run(svc, instance, trace_dir, 4, large // 4, profile)
        log("overhead: the producer alone")
        _producer_only(svc, _prompts(2))  # warm-up: first connections, lazy imports
        p_small = _producer_only(svc, _prompts(small))
        large_prompts = _prompts(large)
        p_large = _producer_only(svc, large_prompts)
        log("overhead: the producer alone, the same prompts again (all in S3 already)")
        p_again = _producer_only(svc, large_prompts)
    extra = b["videos"] - a["videos"]
    ideal = math.ceil(b["videos"] / capacity) * t
    settings = f"T={t:g} s, heartbeat {heartbeat:g} s, capacity {capacity}"
    step = "in-process run"
    alone = "producer alone"
    rows = [
        Row(
            NAME,
            step,
            "step CPU per video (slope)",
            (b["cpu"] - a["cpu"]) / extra * 1000,
            "ms",
            f"target <= 30 ms; runs of {a['videos']} and {b['videos']} videos: {a['cpu']:.2f} s / {b['cpu']:.2f} s "
            f"CPU; {settings}",
        ),
        Row(
            NAME,
            step,
            "event-log records per video (slope)",
            (b["records"] - a["records"]) / extra,
            "",
            f"target <= 5; {b['records']} records in the {b['videos']}-video run",
        ),
        *_s3_rows(
            step,
            "S3 calls of the step per new video (slope)",
            slope(b["calls"], a["calls"], extra),
            "the videos asset's s3 client (producer + manifests); the IO manager is not counted",
        ),
        *step_rows(NAME, f"{step}, {b['videos']} videos", b["events"], b["window"]),
        Row(
            NAME, f"{step}, {b['videos']} videos", "CPU of the run", b["cpu"], "s", f"wall {b['wall']:.1f} s"
        ),
        cpu_demand_row(
            NAME,
            f"{step}, {b['videos']} videos",
            b["cpu"] + sum(b["service_cpu"].values()),
            ideal,
            {"run": b["cpu"], **b["service_cpu"]},
        ),
        Row(
            NAME,
            alone,
            "producer CPU per video (slope)",
            (p_large["cpu"] - p_small["cpu"]) / (large - small) * 1000,
            "ms",
            f"target <= 20 ms; VideoProducer.run without Dagster, {small} and {large} new prompts: "
            f"{p_small['cpu']:.2f} s / {p_large['cpu']:.2f} s CPU",
        ),
        *_s3_rows(
            alone,
            "S3 requests per new video (slope)",
            slope(p_large["calls"], p_small["calls"], large - small),
            f"target <= 6; all calls of {large} new videos: {sum(p_large['calls'].values())}",
        ),
        Row(
            NAME,
            alone,
            "S3 requests per video already in S3",
            sum(p_again["calls"].values()) / large,
            "",
            f"the {large} prompts again: "
            + ", ".join(
                f"{op} {n / large:.2f}" for op, n in collections.Counter(p_again["calls"]).most_common()
            ),
        ),
        Row(NAME, alone, "producer CPU per video already in S3", p_again["cpu"] / large * 1000, "ms", ""),
    ]
    if profile is not None:
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out).sort_stats("tottime")
        stats.print_stats(30)
        log("profile of the larger run (by own time):\n" + out.getvalue())
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(60)
        log("profile of the larger run (cumulative):\n" + out.getvalue())
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small runs for a smoke test")
    parser.add_argument("--profile", action="store_true", help="cProfile the larger run (stderr)")
    parser.add_argument("--generation-seconds", type=float, default=1.0)
    parser.add_argument("--heartbeat-seconds", type=float, default=0.1)
    parser.add_argument("--json", action="store_true", help="also print a machine-readable line")
    args = parser.parse_args(argv)
    small, large = (8, 16) if args.quick else (20, 100)
    rows = preamble(NAME)
    rows += measure(small, large, args.generation_seconds, args.heartbeat_seconds, args.profile)
    emit(rows, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
