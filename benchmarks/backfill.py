"""Benchmark 1: a backfill of N prompts against the accounts' capacity, three ways.

* (a) ours: every prompt of several dynamic partitions in ONE Dagster run (``BackfillPolicy.single_run``),
  ``dg.execute_job`` with the multiprocess executor on a real (sqlite) instance.
* (b) the seed's example: one ``requests`` stream at a time, then download and ``put_object``; a sample is
  measured and extrapolated linearly to N.
* (c) one Dagster run per partition (one prompt each), runs one after another with ``dg.execute_job``; a sample
  of runs is measured and extrapolated linearly to N.

Ideal = ceil(N / capacity) x T. ``python -m benchmarks.backfill [--quick] [--only a,b,c]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from benchmarks._common import Row, cpu_demand_row, cpu_seconds, dagster_home, emit, log, preamble
from benchmarks._probes import by_operation, read_s3_trace, s3_trace_dir
from benchmarks._stack import SIM_TOKEN, start_stack
from benchmarks._timeline import per_video_cost_rows, run_events, s3_window, step_rows, window_rows

NAME = "backfill"
#: The simulator's default heartbeat interval (the real API: ~10 s, so 12-42 heartbeats per video).
HEARTBEAT = 1.0


def _set_rows(per_partition: int) -> str:
    seed = uuid.uuid4().hex[:8]
    os.environ["BENCH_ROWS_SEED"] = seed
    os.environ["BENCH_ROWS_PER_PARTITION"] = str(per_partition)
    return seed


#: Run config of each ``--executor``: the default multiprocess executor spawns a fresh interpreter per step
#: (each imports dagster and the definitions); a forkserver with the definitions preloaded forks them instead;
#: in_process runs both steps in the orchestrator (the producer's threads give the concurrency anyway).
EXECUTORS: dict[str, dict[str, Any] | None] = {
    "multiprocess": None,
    "forkserver": {
        "execution": {
            "config": {
                "multiprocess": {"start_method": {"forkserver": {"preload_modules": ["benchmarks._defs"]}}}
            }
        }
    },
    "in_process": {"execution": {"config": {"in_process": {}}}},
}


def single_run(n: int, partitions: int, capacity: int, t: float, executor: str = "multiprocess") -> list[Row]:
    """(a): N prompts over ``partitions`` dynamic partitions in one run."""
    import dagster as dg

    from benchmarks._defs import bench_job

    ideal = math.ceil(n / capacity) * t
    per = math.ceil(n / partitions)
    n = per * partitions
    variant = "a: ours, 1 run"
    with (
        start_stack(generation_seconds=t, heartbeat_seconds=HEARTBEAT) as svc,
        dagster_home(),
        tempfile.TemporaryDirectory(prefix="bench_s3_trace_") as trace_dir,
        s3_trace_dir(Path(trace_dir)),
    ):
        os.environ.update(svc.env())
        _set_rows(per)
        names = [f"set{i:02d}" for i in range(partitions)]
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions("bench_sets", names)
            tags = {
                "dagster/asset_partition_range_start": names[0],
                "dagster/asset_partition_range_end": names[-1],
            }
            log(f"(a) one run: {n} prompts in {partitions} partitions, capacity {capacity}, T={t:g} s")
            cpu0, svc0 = cpu_seconds(), svc.service_cpu()
            started = time.time()
            with dg.execute_job(
                dg.reconstructable(bench_job), instance=instance, tags=tags, run_config=EXECUTORS[executor]
            ) as result:
                ok = result.success
                run_id = result.run_id
            wall = time.time() - started
            cpu1, svc1 = cpu_seconds(), svc.service_cpu()
            events = run_events(instance, run_id, "bench_videos")
        trace = read_s3_trace(Path(trace_dir))
        window = s3_window(svc.s3_client(), svc.bucket, trace=trace)
        counters = svc.counters()
    run_cpu = cpu1["self"] - cpu0["self"] + cpu1["children"] - cpu0["children"]
    service_cpu = {k: svc1[k] - svc0.get(k, 0.0) for k in svc1}
    calls = by_operation(trace)
    rows = [
        Row(NAME, variant, "ideal", ideal, "s", f"ceil({n}/{capacity}) x {t:g} s"),
        *window_rows(NAME, variant, window, ideal, capacity),
    ]
    rows[1].note += f"; {n} prompts, {partitions} partitions, 1 run, {executor} executor; success={ok}"
    rows += step_rows(NAME, variant, events, window)
    rows += [
        Row(NAME, variant, "whole run (execute_job call)", wall, "s", "incl. process spawns"),
        Row(NAME, variant, "  / ideal", wall / ideal, "x"),
        Row(
            NAME,
            variant,
            "creates / videos in S3",
            f"{counters['creates']} / {window['videos']}",
            "",
            f"max concurrent jobs {counters['max_concurrent_total']}, polls {counters['polls']}, "
            f"rejected {counters['rejected_by_status'] or 'none'}",
        ),
        *per_video_cost_rows(NAME, variant, events, calls, n),
        Row(
            NAME,
            variant,
            "CPU of the run (all processes)",
            run_cpu,
            "s",
            f"{run_cpu / n * 1000:.0f} ms per video"
            + ("; steps forked by the forkserver are not counted" if executor == "forkserver" else ""),
        ),
        Row(
            NAME,
            variant,
            "CPU of the simulator + moto",
            sum(service_cpu.values()),
            "s",
            ", ".join(f"{k} {v:.1f} s" for k, v in service_cpu.items()),
        ),
        cpu_demand_row(
            NAME, variant, run_cpu + sum(service_cpu.values()), ideal, {"run": run_cpu, **service_cpu}
        ),
    ]
    return rows


def _seed_style_one(base_url: str, s3: Any, bucket: str, prompt: str) -> None:
    """The seed's Python example, plus what it leaves out: download the video and put it in S3."""
    response = requests.post(
        f"{base_url}/videos/agent-create",
        headers={"Authorization": f"Bearer {SIM_TOKEN}"},
        data={"templateId": "394100000000000003", "prompt": prompt},
        stream=True,
    )
    if not response.ok:
        raise RuntimeError(f"HTTP Error {response.status_code}: {response.text}")
    video_id = video_url = None
    for line in response.iter_lines(decode_unicode=True):
        if line and line.startswith("data:"):
            data = json.loads(line[5:].strip())
            if data.get("videoId") and not video_id:
                video_id = data["videoId"]
            info = (data.get("message") or {}).get("attachmentInfo") or {}
            for att in info.get("attachments") or []:
                file = att.get("file") or {}
                if att.get("status") == 3 and file.get("type") == "video":
                    video_url = (file.get("extra") or {}).get("no_watermark_url") or file.get("fileUrl")
            if data.get("status") == "finished":
                break
    response.close()
    if not video_url:
        raise RuntimeError(f"no video URL for {video_id}")
    body = requests.get(video_url, timeout=60).content
    s3.put_object(Bucket=bucket, Key=f"seed/{video_id}.mp4", Body=body, ContentType="video/mp4")


def seed_sequential(n: int, sample: int, capacity: int, t: float) -> list[Row]:
    """(b): the seed's approach, sequentially; ``sample`` prompts measured, extrapolated to N."""
    ideal = math.ceil(n / capacity) * t
    with start_stack(generation_seconds=t, heartbeat_seconds=HEARTBEAT) as svc:
        s3 = svc.s3_client()
        log(f"(b) seed-style sequential streams: sample of {sample}")
        started = time.time()
        for i in range(sample):
            _seed_style_one(svc.sim_base_url, s3, svc.bucket, f"seed-style prompt {uuid.uuid4().hex[:6]} {i}")
        wall = time.time() - started
    total = wall / sample * n
    note = f"measured {sample} prompts ({wall:.1f} s), extrapolated linearly to {n}"
    return [
        Row(NAME, "b: seed example, sequential", f"wall for {n} (extrapolated)", total, "s", note),
        Row(NAME, "b: seed example, sequential", "  / ideal", total / ideal, "x"),
    ]


def run_per_partition(n: int, sample: int, capacity: int, t: float) -> list[Row]:
    """(c): one run per one-prompt partition, sequentially; ``sample`` runs measured, extrapolated to N."""
    import dagster as dg

    from benchmarks._defs import bench_job

    ideal = math.ceil(n / capacity) * t
    with start_stack(generation_seconds=t, heartbeat_seconds=HEARTBEAT) as svc, dagster_home():
        os.environ.update(svc.env())
        _set_rows(1)
        names = [f"prompt{i:03d}" for i in range(sample)]
        walls: list[float] = []
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions("bench_sets", names)
            log(f"(c) one run per partition: sample of {sample} runs")
            cpu0 = cpu_seconds()
            for name in names:
                started = time.time()
                with dg.execute_job(
                    dg.reconstructable(bench_job), instance=instance, tags={"dagster/partition": name}
                ) as result:
                    if not result.success:
                        raise RuntimeError(f"run for {name} failed")
                walls.append(time.time() - started)
            cpu1 = cpu_seconds()
    per_run = sum(walls) / len(walls)
    cpu_run = (cpu1["self"] - cpu0["self"] + cpu1["children"] - cpu0["children"]) / len(walls)
    total = per_run * n
    cores = os.cpu_count() or 1
    note = f"measured {sample} runs (mean {per_run:.2f} s), extrapolated linearly to {n} runs"
    return [
        Row(NAME, "c: 1 run per partition", f"wall for {n} (extrapolated)", total, "s", note),
        Row(NAME, "c: 1 run per partition", "  / ideal", total / ideal, "x"),
        Row(
            NAME,
            "c: 1 run per partition",
            "CPU per run",
            cpu_run,
            "s",
            f"so even runs in parallel need >= {cpu_run * n / cores:.0f} s on {cores} cores for {n} prompts",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m benchmarks.backfill [--quick] [--only a,b,c] [--json]``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small N for a smoke test")
    parser.add_argument("--only", default="a,b,c", help="variants to run (a,b,c)")
    parser.add_argument("-n", type=int, default=None, help="prompts (default 200; 20 with --quick)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of (a)")
    parser.add_argument("--generation-seconds", type=float, default=1.0)
    parser.add_argument(
        "--executor", choices=sorted(EXECUTORS), default="multiprocess", help="executor of (a)'s run"
    )
    parser.add_argument("--json", action="store_true", help="also print a machine-readable line")
    args = parser.parse_args(argv)
    n = args.n or (20 if args.quick else 200)
    capacity, t = 10, args.generation_seconds
    variants = set(args.only.split(","))
    rows: list[Row] = preamble(NAME)
    if "a" in variants:
        rows += single_run(n, args.partitions, capacity, t, args.executor)
    if "b" in variants:
        rows += seed_sequential(n, 3 if args.quick else 20, capacity, t)
    if "c" in variants:
        rows += run_per_partition(n, 2 if args.quick else 5, capacity, t)
    emit(rows, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
