"""Benchmark 2: CPU seconds the Dagster step spends per video (event parsing, logging, metadata, S3 bookkeeping).

The run executes in process (``execute_in_process`` on a real sqlite instance), so the step, its threads and the
event-log writes all land in this process's CPU clock (``time.process_time``; the simulator and moto run in
their own processes). Two runs of different sizes give the slope, which drops fixed costs (resources, template
lookup, manifests): CPU per video = (cpu(N2) - cpu(N1)) / (N2 - N1). ``--profile`` prints a cProfile of the
larger run on stderr.

``python -m benchmarks.overhead [--quick] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import time
from typing import Any

from benchmarks._common import Row, dagster_home, emit, load_average, log
from benchmarks._services import Services

NAME = "overhead"


def _one_run(instance: Any, partitions: int, per: int, profile: cProfile.Profile | None) -> dict[str, float]:
    import uuid

    from benchmarks._defs import make_definitions

    os.environ["BENCH_ROWS_SEED"] = uuid.uuid4().hex[:8]
    os.environ["BENCH_ROWS_PER_PARTITION"] = str(per)
    names = [f"o{uuid.uuid4().hex[:6]}-{i}" for i in range(partitions)]
    instance.add_dynamic_partitions("bench_sets", names)
    job = make_definitions().resolve_job_def("bench_job")
    tags = {"dagster/asset_partition_range_start": names[0], "dagster/asset_partition_range_end": names[-1]}
    # The console logger off: in a deployment the run worker's stderr goes to compute logs, not a terminal.
    run_config = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    cpu0, wall0 = time.process_time(), time.monotonic()
    if profile is not None:
        profile.enable()
    try:
        result = job.execute_in_process(instance=instance, tags=tags, run_config=run_config)
    finally:
        if profile is not None:
            profile.disable()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    if not result.success:
        raise RuntimeError("benchmark run failed")
    return {
        "cpu": cpu,
        "wall": wall,
        "videos": partitions * per,
        "records": len(instance.all_logs(result.run_id)),
    }


def _producer_only(svc: Services, count: int) -> float:
    """CPU seconds of ``VideoProducer.run`` alone (no Dagster; notes drained, not logged) for new prompts."""
    import uuid

    from minimax_dagster.production.prompts import VideoPrompt

    seed = uuid.uuid4().hex[:8]
    prompts = [
        VideoPrompt(id=f"p{i}", prompt=f"producer only {seed} {i}", template_id="394100000000000003")
        for i in range(count)
    ]
    producer = svc.producer(svc.s3_client())
    cpu0 = time.process_time()
    entries = [n.entry for n in producer.run(prompts) if n.entry is not None]
    cpu = time.process_time() - cpu0
    if len(entries) != count or not all(e.ok for e in entries):
        raise RuntimeError("producer-only run failed")
    return cpu


def measure(small: int, large: int, t: float, heartbeat: float, profile_out: bool) -> list[Row]:
    """CPU per video from two in-process runs of ``small`` and ``large`` prompts (4 partitions each)."""
    import dagster as dg

    profile = cProfile.Profile() if profile_out else None
    with Services(generation_seconds=t, heartbeat_seconds=heartbeat) as svc, dagster_home():
        os.environ.update(svc.env())
        with dg.DagsterInstance.get() as instance:
            log("overhead: warm-up run")
            _one_run(instance, 2, 2, None)
            log(f"overhead: {small} prompts")
            a = _one_run(instance, 4, small // 4, None)
            log(f"overhead: {large} prompts")
            b = _one_run(instance, 4, large // 4, profile)
            log("overhead: the producer alone")
            p_small = _producer_only(svc, small)
            p_large = _producer_only(svc, large)
    per_video = (b["cpu"] - a["cpu"]) / (b["videos"] - a["videos"])
    records = (b["records"] - a["records"]) / (b["videos"] - a["videos"])
    rows = [
        Row(
            NAME,
            "in-process run",
            "CPU per video (slope)",
            per_video * 1000,
            "ms",
            f"runs of {a['videos']} and {b['videos']} videos: {a['cpu']:.2f} s / {b['cpu']:.2f} s CPU; "
            f"T={t:g} s, heartbeat {heartbeat:g} s",
        ),
        Row(
            NAME,
            "producer alone",
            "CPU per video (slope)",
            (p_large - p_small) / (large - small) * 1000,
            "ms",
            "VideoProducer.run without Dagster: API stream, S3 claims/records, download + upload",
        ),
        Row(NAME, "in-process run", "event-log records per video", records, "", ""),
        Row(
            NAME,
            "in-process run",
            f"CPU of the {b['videos']}-video run",
            b["cpu"],
            "s",
            f"wall {b['wall']:.1f} s",
        ),
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
    rows = [Row(NAME, "-", "load average at start", load_average())]
    rows += measure(small, large, args.generation_seconds, args.heartbeat_seconds, args.profile)
    emit(rows, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
