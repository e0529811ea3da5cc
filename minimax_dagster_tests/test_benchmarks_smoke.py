"""The benchmark code runs and prints every row it promises: ``python -m benchmarks --quick --only ...`` exits 0.

No figure is checked against a target (benchmarks print figures; tests never time anything). What is checked is
that each row is there and holds what it must for the benchmark to be right: counts that follow from the sizes
(every prompt created once and stored), S3 calls actually recorded, a sampled process actually found. The
benchmarks' doctests (``benchmarks/`` is outside the suite's testpaths) are run here too.
"""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks._common import Row, parse_rows

REPO = Path(__file__).resolve().parents[1]
#: Generous: the machine may be shared; this bounds a hung benchmark, it is not a timing check.
TIMEOUT = 900

BENCHMARK_MODULES = [
    "benchmarks._common",
    "benchmarks._probes",
    "benchmarks._stack",
    "benchmarks._timeline",
    "benchmarks._defs",
    "benchmarks.__main__",
    "benchmarks.backfill",
    "benchmarks.overhead",
    "benchmarks.memory",
    "benchmarks.finish_to_s3",
    "benchmarks.wide",
    "benchmarks.hostile",
]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def _rows(stdout: str) -> dict[tuple[str, str], Row]:
    rows = parse_rows(stdout)
    assert rows, stdout[-2000:]
    return {(r.variant, r.figure): r for r in rows}


def _preamble_is_there(rows: dict[tuple[str, str], Row]) -> None:
    assert "cores" in str(rows[("-", "machine")].value)
    assert "dagster" in rows[("-", "machine")].note
    assert len(str(rows[("-", "load average at start")].value).split()) == 3
    speed = rows[("-", "single-core speed")].value
    assert isinstance(speed, float) and speed > 0


@pytest.mark.parametrize("module", BENCHMARK_MODULES)
def test_benchmark_doctests_pass(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_benchmarks_quick_memory_runs_and_prints_the_table():
    out = _run("benchmarks", "--quick", "--only", "memory")
    assert "benchmark | variant | figure" in out.stdout
    assert "peak RSS above baseline" in out.stdout
    assert "single-core speed" in out.stdout


def test_benchmarks_quick_wide_prints_capacity_peaks_and_cpu_demand():
    out = _run("benchmarks", "--quick", "--only", "wide")
    assert out.stdout.startswith("machine: ")
    table = out.stdout
    for variant in ("producer alone", "1 run, multiprocess"):
        lines = [line for line in table.splitlines() if line.startswith("wide") and f"| {variant} " in line]
        figures = {line.split("|")[2].strip(): line.split("|")[3].strip() for line in lines}
        # 2 accounts x 2 jobs, 8 prompts: every prompt created once and stored.
        assert figures["creates / videos in S3"] == "8 / 8", lines
        assert figures["ideal"] == "0.600", lines
        for figure in ("first create -> last S3 object", "/ ideal", "CPU demand / (cores x ideal)"):
            assert float(figures[figure]) > 0, (figure, lines)
        assert int(figures["peak threads"]) >= 1
        assert int(figures["peak open TCP connections"]) >= 1
        assert float(figures["peak RSS"]) > 10
    run = [line for line in table.splitlines() if "| 1 run, multiprocess " in line]
    assert any("last S3 object -> step end" in line for line in run)
    assert any("S3 calls of the step per video" in line and "PutObject" in line for line in run)
    assert table.count("| machine ") == 1  # the joint table keeps one machine row


def test_overhead_quick_prints_every_per_video_cost():
    rows = _rows(_run("benchmarks.overhead", "--quick", "--json").stdout)
    _preamble_is_there(rows)
    step, alone = "in-process run", "producer alone"
    for key in (
        (step, "step CPU per video (slope)"),
        (step, "event-log records per video (slope)"),
        (alone, "producer CPU per video (slope)"),
        (alone, "producer CPU per video already in S3"),
    ):
        assert isinstance(rows[key].value, float), key
    # S3 calls are recorded by the hook, and broken down by operation: a new video is at least written.
    for variant, figure in (
        (step, "S3 calls of the step per new video (slope)"),
        (alone, "S3 requests per new video (slope)"),
    ):
        total = rows[(variant, figure)].value
        assert isinstance(total, float) and total >= 1, (variant, rows[(variant, figure)])
        assert rows[(variant, "  PutObject")].value >= 1
    assert rows[(alone, "S3 requests per video already in S3")].value > 0
    big = "in-process run, 16 videos"
    for figure in (
        "  last S3 object -> step end",
        "videos step (STEP_START -> STEP_SUCCESS)",
        "CPU demand / (cores x ideal)",
    ):
        assert isinstance(rows[(big, figure)].value, float), figure


def test_hostile_quick_prints_a_row_per_case_and_each_ends_with_its_outcome():
    rows = _rows(_run("benchmarks.hostile", "--quick", "--json").stdout)
    _preamble_is_there(rows)
    from benchmarks.hostile import CASES

    for name in CASES:
        row = rows[(name, "peak RSS growth")]
        assert isinstance(row.value, float) and "creates " in row.note, row
    assert (
        "ReadLimits.max_sse_line_chars"
        not in rows[("normal stream (the seed's 11 events)", "peak RSS growth")].note
    )
    assert "max_error_body_bytes" in rows[("300 MiB JSON error body (400)", "peak RSS growth")].note
    assert "creates 1; ok, recovered by polling" in rows[("one 200 MiB data line", "peak RSS growth")].note
