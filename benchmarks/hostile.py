"""Benchmark: what a broken or hostile upstream costs a worker (issue 25), one fresh process per case.

For each case a raw HTTP server (the tests' :class:`ScriptedServer`, or the tests' CDN source) is set to answer
with it, then a fresh child process imports the library, resets its peak-RSS counter (``/proc/self/clear_refs``),
notes its RSS, makes the one call the case is about with default settings (``MiniMaxClient.generate``,
``list_videos``, or a CDN download read part by part as the upload reads it) and reads its peak RSS (``VmHWM``)
back. A row gives the peak RSS growth, its excess over the normal stream's, the wall time, the outcome (the
error's type and the start of its message, which names the cap and its setting) and the number of creates the
server saw. Target: every case within 64 MiB of the normal stream, ended, no create sent twice.

``python -m benchmarks.hostile [--quick] [--only CASE,CASE]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from benchmarks._common import Row, emit, log, preamble
from benchmarks._probes import proc_status, reset_peak_rss
from minimax_dagster_tests.hostile_bodies import endless, gzip_lines, many_headers
from minimax_dagster_tests.http_source import serving_http_source
from minimax_dagster_tests.scripted_server import Reply, ScriptedServer, sse
from minimax_dagster_tests.seed_stream import seed_stream_bytes

NAME = "hostile"
MIB = 1024 * 1024
TARGET_MIB = 64
VID = "user:1234-minimax:1234567-video:7654321"
CREATE = ("POST", "videos/agent-create")
CREATED = {"status": "created", "videoId": VID, "code": 200}
COMPLETED = {"videoId": VID, "status": 2, "statusFinal": True, "videoURL": "https://cdn.hailuoai.video/w.mp4"}


def _after_id(body: Iterator[bytes]) -> Iterator[bytes]:
    yield from sse(CREATED)
    yield from body


@dataclass(frozen=True)
class Case:
    """One hostile answer: ``script`` sets the server up (given its size factor), ``call`` names what the child
    does (``generate``, ``generate-5s``, ``list``, ``download:<path>:<max bytes>``)."""

    script: Callable[[ScriptedServer, float], None]
    call: str = "generate"


def _stream(
    body: Callable[[float], Iterator[bytes]], **reply: object
) -> Callable[[ScriptedServer, float], None]:
    def script(server: ScriptedServer, scale: float) -> None:
        server.on(*CREATE, Reply(chunks=body(scale), **reply))  # type: ignore[arg-type]
        server.on("GET", f"videos/{VID}", Reply(body=COMPLETED))

    return script


def _on(
    method: str, path: str, *replies: Callable[[float], Reply]
) -> Callable[[ScriptedServer, float], None]:
    def script(server: ScriptedServer, scale: float) -> None:
        server.on(method, path, *(make(scale) for make in replies))

    return script


def _nothing(server: ScriptedServer, scale: float) -> None:
    pass


CASES: dict[str, Case] = {
    "normal stream (the seed's 11 events)": Case(_stream(lambda s: iter([seed_stream_bytes()]))),
    "'data: ' then no line end, 30 s": Case(
        _stream(lambda s: _after_id(endless(b"x", seconds=30 * s, prefix=b"data: ")))
    ),
    "one 200 MiB data line": Case(
        _stream(lambda s: _after_id(endless(b"y", total=int(200 * MIB * s), prefix=b"data: ")))
    ),
    "one 200 MiB event in 64 KiB data lines": Case(
        _stream(lambda s: _after_id(endless(b"data: " + b"y" * 65530 + b"\n", total=int(200 * MIB * s))))
    ),
    "gzip stream expanding to 1 GiB of data lines": Case(
        _stream(
            lambda s: gzip_lines(b"data: z\n", total=int(1024 * MIB * s), prefix=sse(CREATED)[0]),
            headers={"Content-Encoding": "gzip"},
        )
    ),
    "300 MiB JSON error body (400)": Case(
        _on(*CREATE, lambda s: Reply(status=400, chunks=endless(b'{"error":"', total=int(300 * MIB * s))))
    ),
    "comments forever, never finished (5 s deadline)": Case(
        _stream(lambda s: _after_id(iter([b": keep-alive\n"] * 100_000)), delay=0.01), call="generate-5s"
    ),
    "endless JSON list (GET videos/)": Case(
        _on("GET", "videos/", lambda s: Reply(chunks=endless(b'{"id":"1"},', seconds=60 * s))), call="list"
    ),
    "150 headers on the create": Case(_on(*CREATE, lambda s: Reply(body={}, headers=many_headers(150)))),
    "429 with an endless body, then the seed": Case(
        _on(
            *CREATE,
            lambda s: Reply(status=429, chunks=endless(b"z", seconds=60 * s), headers={"Retry-After": "0"}),
            lambda s: Reply(chunks=[seed_stream_bytes()]),
        )
    ),
    "CDN: gzip video expanding to 1 GiB (default max_download_bytes)": Case(
        _nothing, call="download:/gzip-zeros/{1024}:default"
    ),
    "CDN: gzip video expanding to 1 GiB, max_download_bytes 64 MiB": Case(
        _nothing, call="download:/gzip-zeros/{1024}:67108864"
    ),
    "CDN: Content-Length 64 MiB, body cut after 1 MiB": Case(
        _nothing, call=f"download:/cut/{64 * MIB}/{MIB}:default"
    ),
}


def child(call: str, base_url: str, origin: str, scale: float) -> dict[str, object]:
    """In a fresh process: make the call, and measure it."""
    import requests

    from minimax_dagster.api import MiniMaxClient, ReconcilePolicy
    from minimax_dagster.storage import DownloadPolicy
    from minimax_dagster.storage.download import open_download, response_reader

    reset_peak_rss()
    before = proc_status()
    started = time.monotonic()
    outcome = "ok"
    try:
        if call.startswith("download:"):
            _, path, cap = call.split(":")
            path = path.replace("{1024}", str(int(1024 * MIB * scale)))
            # The policy the resource builds (max_download_bytes is DownloadPolicy.max_bytes; no dagster import).
            fields = {} if cap == "default" else {"max_bytes": int(cap)}
            policy = DownloadPolicy(allowed_hosts=(origin,), **fields)
            response = open_download(origin + path, policy=policy, session=requests.Session(), key="k")
            with response:
                reader = response_reader(response, policy=policy, key="k")
                while reader.read(8 * MIB):  # one upload part at a time, as upload_from_url reads it
                    pass
            outcome = f"ok, {reader.bytes_read / MIB:.0f} MiB read"
        else:
            settle = ReconcilePolicy(settle_seconds=0.05)
            with MiniMaxClient("t", base_url=base_url, reconcile=settle, backoff_factor=0.01) as client:
                if call == "list":
                    client.list_videos("1234567")
                else:
                    deadline = 5.0 if call == "generate-5s" else None
                    result = client.generate({"templateId": "1", "prompt": "x"}, deadline=deadline)
                    outcome = "ok, recovered by polling" if result.recovered else "ok"
    except Exception as exc:  # the outcome is what is measured
        text = str(exc)
        shown = text if len(text) <= 200 else f"{text[:60]} … {text[-140:]}"
        outcome = f"{type(exc).__name__}: {shown}"
    seconds = time.monotonic() - started
    after = proc_status()
    return {"before": before["VmRSS"], "peak": after["VmHWM"], "seconds": seconds, "outcome": outcome}


def measure(names: list[str], scale: float) -> list[Row]:
    """One row per case, plus the normal stream's baseline first."""
    rows: list[Row] = []
    normal: float | None = None
    with serving_http_source() as origin:
        for name in names:
            log(f"hostile: {name}")
            with ScriptedServer() as server:
                CASES[name].script(server, scale)
                cmd = [
                    sys.executable,
                    "-m",
                    "benchmarks.hostile",
                    "--child",
                    json.dumps([CASES[name].call, server.base_url, origin, scale]),
                ]
                out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
                creates = server.count(*CREATE)
            if out.returncode != 0:
                raise RuntimeError(f"hostile child failed for {name}:\n{out.stderr[-3000:]}")
            fig = json.loads(out.stdout.strip().splitlines()[-1])
            growth = (fig["peak"] - fig["before"]) / MIB
            if normal is None:
                normal = growth
            over = growth - normal
            verdict = "meets" if over <= TARGET_MIB else "MISSES"
            rows.append(
                Row(
                    NAME,
                    name,
                    "peak RSS growth",
                    growth,
                    "MiB",
                    f"{verdict} <= {TARGET_MIB} MiB over normal ({over:+.1f}); {fig['seconds']:.2f} s; "
                    f"creates {creates}; {fig['outcome']}",
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="bodies at 1/20 size and length (a smoke test)")
    parser.add_argument("--only", default=None, help="comma-separated case numbers (1-based; 1 = normal)")
    parser.add_argument("--json", action="store_true", help="also print a machine-readable line")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*json.loads(args.child))), flush=True)
        return 0
    names = list(CASES)
    if args.only:
        wanted = {int(n) for n in args.only.split(",")} | {1}
        names = [n for i, n in enumerate(names, 1) if i in wanted]
    rows = preamble(NAME)
    rows += measure(names, 0.05 if args.quick else 1.0)
    emit(rows, args.json)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
