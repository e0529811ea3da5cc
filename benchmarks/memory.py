"""Benchmark 3: peak memory of moving a large video from the CDN into S3 through ``storage.upload_from_url``.

For each size, fresh simulator and moto processes are started (``--video-bytes SIZE``), and a fresh child
process creates one video through ``MiniMaxClient.generate``, resets its peak-RSS counter
(``/proc/self/clear_refs``), notes its RSS, then calls ``upload_from_url`` exactly as the producer does (same
part size, policy, metadata, a ``requests.Session``) and reads its peak RSS (``VmHWM``) back. The figure is
peak minus the RSS just before the upload. Target: <= 150 MiB, flat in the size.

``python -m benchmarks.memory [--quick] [--sizes 256M,1G,2G,4G]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._common import Row, emit, log, preamble
from benchmarks._probes import proc_status
from benchmarks._stack import SIM_TOKEN, start_stack

NAME = "memory"
MIB = 1024 * 1024
TARGET_MIB = 150


def parse_size(text: str) -> int:
    """``256M`` / ``1G`` / a byte count.

    >>> parse_size("256M"), parse_size("1G"), parse_size("1000")
    (268435456, 1073741824, 1000)
    """
    units = {"K": 1024, "M": MIB, "G": 1024 * MIB}
    text = text.strip().upper()
    if text[-1:] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def human(n: int) -> str:
    """``1 GiB``, ``256 MiB``.

    >>> human(1 << 30), human(256 << 20)
    ('1 GiB', '256 MiB')
    """
    return f"{round(n / (1024 * MIB), 1):g} GiB" if n >= 1024 * MIB else f"{round(n / MIB, 1):g} MiB"


def child(base_url: str, origin: str, endpoint: str, bucket: str) -> dict[str, float]:
    """In a fresh process: make one video, then upload it exactly as ``VideoProducer._store`` does."""
    import boto3
    import requests

    from minimax_dagster.api.client import MiniMaxClient
    from minimax_dagster.production import ProducerSettings
    from minimax_dagster.resources.minimax import MiniMaxResource
    from minimax_dagster.storage import s3_client_config, upload_from_url

    resource = MiniMaxResource(api_token=SIM_TOKEN, base_url=base_url, allowed_download_hosts=[origin])
    settings = ProducerSettings(bucket=bucket, prefix="bench", policy=resource.download_policy())
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench-key-id",
        aws_secret_access_key="bench-secret",
        config=s3_client_config(),
    )
    with MiniMaxClient(SIM_TOKEN, base_url=base_url) as client:
        result = client.generate({"templateId": "394100000000000003", "prompt": f"memory {time.time()}"})
    session = requests.Session()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = proc_status()
    started = time.monotonic()
    uploaded = upload_from_url(
        s3,
        bucket,
        "bench/videos/memory.mp4",
        result.video.best_url,
        policy=settings.policy,
        session=session,
        content_type="video/mp4",
        metadata={"video-id": result.video_id},
        part_size=settings.part_size,
    )
    seconds = time.monotonic() - started
    after = proc_status()
    return {
        "bytes": uploaded.bytes,
        "seconds": seconds,
        "rss_before": before["VmRSS"],
        "peak": after["VmHWM"],
        "part_size": settings.part_size,
    }


def _enough_room(size: int, moto_ratio: float) -> str | None:
    """Why ``size`` cannot be run here, or ``None``.

    moto keeps the parts in spooled temp files (on disk past 5 MiB), but completing a multipart upload joins
    every part in its own memory (a bytearray, a bytes copy and the part copies it reads): its peak RSS was
    measured at ``moto_ratio`` x the object's size. The machine is shared, so 3 GiB are left to the others.
    """
    avail = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            avail = int(line.split()[1]) * 1024
    need_mem = int(moto_ratio * size) + 3 * 1024 * MIB
    if avail < need_mem:
        return (
            f"skipped: moto's own process peaks at ~{moto_ratio:.1f}x the object when completing a multipart "
            f"upload, so it would need ~{human(need_mem)} with a 3 GiB margin for the other users of this "
            f"machine; {human(avail)} available"
        )
    free_disk = shutil.disk_usage("/tmp").free
    if free_disk < 3 * size:
        return f"skipped: moto spools ~{human(2 * size)} to /tmp, {human(free_disk)} free"
    return None


def measure(sizes: list[int]) -> list[Row]:
    """One row per size."""
    rows: list[Row] = []
    moto_ratio = 4.6  # measured with 256 MiB and 1 GiB objects; updated by every size measured here
    for size in sizes:
        reason = _enough_room(size, moto_ratio)
        if reason:
            rows.append(Row(NAME, human(size), "peak RSS above baseline", None, "MiB", reason))
            continue
        with start_stack(generation_seconds=0.2, video_bytes=size) as svc:
            log(f"memory: {human(size)}")
            cmd = [
                sys.executable,
                "-m",
                "benchmarks.memory",
                "--child",
                json.dumps([svc.sim_base_url, svc.sim_origin, svc.s3_endpoint, svc.bucket]),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=3600)
            moto = svc.moto_rss()
        if out.returncode != 0:
            raise RuntimeError(f"memory child failed for {human(size)}:\n{out.stderr[-3000:]}")
        fig = json.loads(out.stdout.strip().splitlines()[-1])
        if size >= 256 * MIB and moto.get("VmHWM"):
            moto_ratio = max(moto_ratio, moto["VmHWM"] / size)
        above = (fig["peak"] - fig["rss_before"]) / MIB
        verdict = "meets" if above <= TARGET_MIB else "MISSES"
        rows.append(
            Row(
                NAME,
                human(size),
                "peak RSS above baseline",
                above,
                "MiB",
                f"{verdict} <= {TARGET_MIB} MiB; baseline {fig['rss_before'] / MIB:.0f} MiB, "
                f"{fig['bytes'] / MIB / fig['seconds']:.0f} MiB/s, part {fig['part_size'] // MIB} MiB; "
                f"moto peak {moto.get('VmHWM', 0) / MIB:.0f} MiB (own process)",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one small size, for a smoke test")
    parser.add_argument("--sizes", default=None, help="comma-separated sizes (default 256M,1G,2G,4G)")
    parser.add_argument("--json", action="store_true", help="also print a machine-readable line")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*json.loads(args.child))), flush=True)
        return 0
    default = "48M" if args.quick else "256M,1G,2G,4G"
    sizes = [parse_size(s) for s in (args.sizes or default).split(",")]
    rows = preamble(NAME)
    rows += measure(sizes)
    emit(rows, args.json)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
