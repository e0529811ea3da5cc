"""Shared bits of the benchmarks: result rows, the table printer, a throw-away Dagster home, CPU clocks.

>>> print(format_table([Row("x", "demo", "wall", 1.234, "s", "a note")]))  # doctest: +NORMALIZE_WHITESPACE
benchmark | variant | figure | value | unit | note
--------- | ------- | ------ | ----- | ---- | ------
x         | demo    | wall   | 1.23  | s    | a note
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RESULT_MARKER = "BENCH_RESULT "
HEADER = ("benchmark", "variant", "figure", "value", "unit", "note")


@dataclasses.dataclass
class Row:
    """One figure of one benchmark."""

    benchmark: str
    variant: str
    figure: str
    value: float | str | None
    unit: str = ""
    note: str = ""

    def cells(self) -> tuple[str, ...]:
        """The row as table cells."""
        return (self.benchmark, self.variant, self.figure, _fmt(self.value), self.unit, self.note)


def _fmt(value: float | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if abs(value) >= 100:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def format_table(rows: list[Row]) -> str:
    """A plain-text (and markdown-friendly) table."""
    cells = [HEADER, *(r.cells() for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)).rstrip()]
    lines.append(" | ".join("-" * max(3, w) for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells[1:]]
    return "\n".join(lines)


def emit(rows: list[Row], as_json: bool) -> None:
    """Print the rows: a table for people, plus one machine-readable line for ``python -m benchmarks``."""
    print(format_table(rows), flush=True)
    if as_json:
        print(RESULT_MARKER + json.dumps([dataclasses.asdict(r) for r in rows]), flush=True)


def parse_rows(stdout: str) -> list[Row]:
    """The rows a benchmark subprocess printed with ``emit(..., as_json=True)``."""
    rows: list[Row] = []
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            rows += [Row(**r) for r in json.loads(line[len(RESULT_MARKER) :])]
    return rows


@contextlib.contextmanager
def dagster_home() -> Iterator[Path]:
    """A fresh ``DAGSTER_HOME`` (sqlite storage, telemetry off) for the duration of the block."""
    old = os.environ.get("DAGSTER_HOME")
    with tempfile.TemporaryDirectory(prefix="bench_dagster_home_") as home:
        Path(home, "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        os.environ["DAGSTER_HOME"] = home
        try:
            yield Path(home)
        finally:
            if old is None:
                os.environ.pop("DAGSTER_HOME", None)
            else:
                os.environ["DAGSTER_HOME"] = old


def cpu_seconds() -> dict[str, float]:
    """User+system CPU seconds of this process and of its reaped children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"self": me.ru_utime + me.ru_stime, "children": kids.ru_utime + kids.ru_stime}


def load_average() -> str:
    """The 1/5/15-minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def log(message: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def jsonable(value: Any) -> Any:
    """``value`` through a JSON round trip (drops anything JSON cannot carry)."""
    return json.loads(json.dumps(value, default=str))
