"""Benchmark 4: time from the stream's ``finished`` event to the video in S3, against a plain boto3 upload.

One prompt goes through ``VideoProducer.run`` (what the asset's step runs): the notes arrive on this thread as
the worker produces them, so the ``finished`` note and the ``stored ...`` note give the time the library takes
to land the video (download from the CDN streamed into a multipart upload, then a HEAD); the entry note comes
after the poster, the sidecar and the job record. The reference is ``upload_fileobj`` of the same bytes, already
in memory, with boto3's default transfer settings, to the same moto server.

``python -m benchmarks.finish_to_s3 [--quick] [--sizes 64M,256M]``.
"""

from __future__ import annotations

import argparse
import io
import time
import uuid

from benchmarks._common import Row, emit, log, preamble
from benchmarks._stack import Stack, start_stack
from benchmarks.memory import human, parse_size

NAME = "finish-to-s3"


def _ours(svc: Stack, s3: object) -> dict[str, float | str]:
    from minimax_dagster.production.prompts import VideoPrompt

    producer = svc.producer(s3)
    prompt = VideoPrompt(
        id="big", prompt=f"finish-to-s3 {uuid.uuid4().hex[:8]}", template_id="394100000000000003"
    )
    marks: dict[str, float] = {}
    url = ""
    for note in producer.run([prompt]):
        now = time.monotonic()
        if note.event is not None and note.event.status == "finished":
            marks["finished"] = now
            continue
        if note.message and "] stored " in note.message:
            marks["stored"] = now
        if note.entry is not None:
            marks["entry"] = now
            if not note.entry.ok:
                raise RuntimeError(f"the video failed: {note.entry.error}")
            url = note.entry.s3_uri or ""
    return {
        "to_video": marks["stored"] - marks["finished"],
        "to_all": marks["entry"] - marks["finished"],
        "uri": url,
    }


def _plain(svc: Stack, s3: object, data: bytes) -> float:
    started = time.monotonic()
    s3.upload_fileobj(io.BytesIO(data), svc.bucket, f"plain/{uuid.uuid4().hex}.mp4")  # type: ignore[attr-defined]
    return time.monotonic() - started


def measure(sizes: list[int], repeats: int) -> list[Row]:
    """Rows per size: ours (to the video, to everything), plain boto3, the ratio."""
    rows: list[Row] = []
    for size in sizes:
        with start_stack(generation_seconds=0.5, video_bytes=size) as svc:
            s3 = svc.s3_client()
            ours: list[dict[str, float | str]] = []
            plain: list[float] = []
            for i in range(repeats):
                log(f"finish-to-s3: {human(size)} #{i + 1}")
                ours.append(_ours(svc, s3))
                # The same bytes, already in memory: only the upload is timed.
                video = s3.get_object(Bucket=svc.bucket, Key=str(ours[-1]["uri"]).split("/", 3)[3])
                data = video["Body"].read()
                plain.append(_plain(svc, s3, data))
                del data
        to_video = min(float(o["to_video"]) for o in ours)
        to_all = min(float(o["to_all"]) for o in ours)
        reference = min(plain)
        best = f"best of {repeats}" if repeats > 1 else "one run"
        rows += [
            Row(
                NAME,
                human(size),
                "finished -> video in S3 (ours)",
                to_video,
                "s",
                f"{best}; CDN download + upload + HEAD",
            ),
            Row(
                NAME,
                human(size),
                "finished -> entry done (ours)",
                to_all,
                "s",
                "+ poster, sidecar, job record",
            ),
            Row(NAME, human(size), "plain boto3 upload_fileobj", reference, "s", "bytes already in memory"),
            Row(NAME, human(size), "ratio ours / plain", to_video / reference, "x", ""),
        ]
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one small size, for a smoke test")
    parser.add_argument("--sizes", default=None, help="comma-separated sizes (default 64M,256M)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per size (best is kept; default 2)")
    parser.add_argument("--json", action="store_true", help="also print a machine-readable line")
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in (args.sizes or ("16M" if args.quick else "64M,256M")).split(",")]
    repeats = args.repeats or (1 if args.quick else 2)
    rows = preamble(NAME)
    rows += measure(sizes, repeats)
    emit(rows, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
