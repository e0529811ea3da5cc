"""When things happened in a benchmark run: the videos' window from S3, and the videos step from the event log.

* :func:`s3_window`: ``created`` / ``finished`` are the stream events' timestamps the sidecars keep; the end of
  each video is the last write of one of its objects, from an S3 trace (:mod:`benchmarks._probes`) when there
  is one, else the finished job record's ``created_at``. The window runs from the first ``created`` to the last
  write; ``busy`` is the sum of created -> finished over all videos, so busy / (capacity x window) is how full
  the accounts' slots were kept.
* :func:`run_events`: timestamps of the run and of one step, and the number of event-log records.

>>> window_rows("x", "v", {"videos": 0, "window": float("nan"), "busy": 0.0}, 10.0, 2)[0].figure
'first create -> last S3 object'
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from benchmarks._common import Row
from benchmarks._probes import S3Call, last_video_write, per_video


def _iso_to_epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def _video_name(key: str) -> str:
    """``p/videos/v1-x.mp4`` -> ``v1-x`` (the name shared by a video's objects).

    >>> _video_name("p/videos/v1-x.mp4"), _video_name("p/_jobs/v1-x.json")
    ('v1-x', 'v1-x')
    """
    name = key.rsplit("/", 1)[-1]
    for suffix in (".mp4", ".png", ".json"):
        name = name.removesuffix(suffix)
    return name


def idle_slot_seconds(spans: list[tuple[float, float]], capacity: int) -> dict[str, float]:
    """Slot-seconds left empty, from ``(created, finished)`` spans: while the slots first fill (``ramp``),
    between the first moment all ``capacity`` slots were busy and the last create (``between_waves``, what slow
    hand-overs cost), and after the last create (``last_wave``).

    >>> idle_slot_seconds([(0.0, 10.0), (0.0, 10.0), (10.5, 20.5)], capacity=2)
    {'ramp': 0.0, 'between_waves': 1.0, 'last_wave': 10.0}
    """
    events = sorted([(c, 1) for c, _ in spans] + [(f, -1) for _, f in spans])
    last_create = max(c for c, _ in spans)
    idle = {"ramp": 0.0, "between_waves": 0.0, "last_wave": 0.0}
    running, previous, full = 0, events[0][0], False
    for at, step in events:
        phase = "ramp" if not full else ("last_wave" if previous >= last_create else "between_waves")
        idle[phase] += max(0, capacity - running) * (at - previous)
        running += step
        previous = at
        full = full or running >= capacity
    return {k: round(v, 6) for k, v in idle.items()}


def s3_window(
    s3: Any,
    bucket: str,
    prefix: str = "bench",
    *,
    since: float = 0.0,
    trace: list[S3Call] | None = None,
    capacity: int | None = None,
) -> dict[str, Any]:
    """The videos' timeline from S3 alone (see the module's doc); only videos created at or after ``since``.
    With ``capacity``, also the slot-seconds left empty (:func:`idle_slot_seconds`) under ``idle``."""
    paginator = s3.get_paginator("list_objects_v2")
    created: dict[str, float] = {}
    finished: dict[str, float] = {}
    stored: dict[str, float] = {}
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            name = _video_name(key)
            if key.startswith(f"{prefix}/_jobs/"):
                record = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                if record.get("status") == "finished" and record.get("created_at"):
                    stored[name] = _iso_to_epoch(record["created_at"])
            elif key.startswith(f"{prefix}/videos/") and key.endswith(".json"):
                sidecar = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                for event in sidecar.get("events", []):
                    ts = event.get("timestamp")
                    if event.get("status") == "created" and ts:
                        created.setdefault(name, ts / 1000.0)
                    elif event.get("status") == "finished" and ts:
                        finished[name] = ts / 1000.0
    if trace:
        for call in trace:
            key = _video_name(call.key)
            if key in created and last_video_write([call], prefix) is not None:
                stored[key] = max(stored.get(key, 0.0), call.at)
    done = [k for k in created if k in finished and created[k] >= since]
    if not done:
        return {
            "videos": 0,
            "window": math.nan,
            "busy": 0.0,
            "store_mean": math.nan,
            "generation_mean": math.nan,
        }
    ends = [stored.get(k, finished[k]) for k in done]
    first, last = min(created[k] for k in done), max(ends)
    idle = idle_slot_seconds([(created[k], finished[k]) for k in done], capacity) if capacity else None
    return {
        "idle": idle,
        "videos": len(done),
        "first_create": first,
        "last_write": last,
        "window": last - first,
        "busy": sum(finished[k] - created[k] for k in done),
        "generation_mean": sum(finished[k] - created[k] for k in done) / len(done),
        "store_mean": sum(e - finished[k] for k, e in zip(done, ends, strict=True)) / len(done),
        "end_source": "S3 trace" if trace else "job records",
    }


def slot_fill(window: dict[str, Any], capacity: int) -> float:
    """How busy the slots were kept over an :func:`s3_window`: generating time / (capacity x window), or nan.

    >>> slot_fill({"window": 10.0, "busy": 15.0}, 2), math.isnan(slot_fill({"window": math.nan, "busy": 0}, 2))
    (0.75, True)
    """
    span = window.get("window")
    return window["busy"] / (max(1, capacity) * span) if span and not math.isnan(span) else math.nan


def window_rows(name: str, variant: str, window: dict[str, Any], ideal: float, capacity: int) -> list[Row]:
    """Rows: first create -> last S3 object, its ratio to the ideal, and how busy the slots were kept."""
    span = window["window"]
    fill = slot_fill(window, capacity)
    return [
        Row(
            name,
            variant,
            "first create -> last S3 object",
            span,
            "s",
            f"{window['videos']} videos; end from the {window.get('end_source', '-')}",
        ),
        Row(name, variant, "  / ideal", span / ideal if ideal else math.nan, "x", "target <= 1.10"),
        Row(
            name,
            variant,
            "slots kept busy",
            100 * fill,
            "%",
            f"mean created->finished {window.get('generation_mean', math.nan):.2f} s, "
            f"finished->last object {window.get('store_mean', math.nan):.2f} s",
        ),
    ]


def run_events(instance: Any, run_id: str, step: str) -> dict[str, float]:
    """Timestamps (epoch s) of run start / end and of ``step``'s start / end, and the run's event-log records."""
    import dagster as dg

    out: dict[str, float] = {}
    wanted = {
        dg.DagsterEventType.RUN_START: "run_start",
        dg.DagsterEventType.RUN_SUCCESS: "run_end",
        dg.DagsterEventType.RUN_FAILURE: "run_end",
    }
    records = instance.all_logs(run_id)
    for record in records:
        event = record.dagster_event
        if event is None:
            continue
        name = wanted.get(event.event_type)
        if name:
            out[name] = record.timestamp
        if event.step_key == step:
            if event.event_type == dg.DagsterEventType.STEP_START:
                out["step_start"] = record.timestamp
            elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
                out["step_end"] = record.timestamp
    out["log_records"] = float(len(records))
    return out


def step_rows(name: str, variant: str, events: dict[str, float], window: dict[str, Any]) -> list[Row]:
    """Rows: the videos step's length, its start -> first create, and last S3 object -> step end."""
    nan = math.nan
    return [
        Row(
            name,
            variant,
            "videos step (STEP_START -> STEP_SUCCESS)",
            events.get("step_end", nan) - events.get("step_start", nan),
            "s",
        ),
        Row(
            name,
            variant,
            "  step start -> first create",
            window.get("first_create", nan) - events.get("step_start", nan),
            "s",
            "resources, template lookup, validation, first claims and slot leases",
        ),
        Row(
            name,
            variant,
            "  last S3 object -> step end",
            events.get("step_end", nan) - window.get("last_write", nan),
            "s",
            "target <= 1 s: manifests, output metadata, and event-log records still queued",
        ),
    ]


def per_video_cost_rows(
    name: str, variant: str, events: dict[str, float], calls: dict[str, int], videos: int
) -> list[Row]:
    """Rows: the run's event-log records per video, and the videos step's S3 calls per video by operation
    (``calls``: operation -> count from the step's S3 trace)."""
    return [
        Row(
            name,
            variant,
            "event-log records per video",
            events["log_records"] / videos,
            "",
            f"{int(events['log_records'])} in the run",
        ),
        Row(
            name,
            variant,
            "S3 calls of the step per video",
            sum(calls.values()) / videos,
            "",
            "the videos asset's client, fixed costs included (IO manager not counted): "
            + per_video(calls, videos),
        ),
    ]
