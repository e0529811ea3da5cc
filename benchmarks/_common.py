"""Shared bits of the benchmarks: result rows, the table printer, a throw-away Dagster home, CPU clocks, and the
rows every benchmark starts with (the machine, its load, a single-core speed figure) and the CPU demand row.

>>> print(format_table([Row("x", "demo", "wall", 1.234, "s", "a note")]))  # doctest: +NORMALIZE_WHITESPACE
benchmark | variant | figure | value | unit | note
--------- | ------- | ------ | ----- | ---- | ------
x         | demo    | wall   | 1.23  | s    | a note
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import json
import math
import os
import platform
import random
import resource
import socket
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
    value: float | int | str | None
    unit: str = ""
    note: str = ""

    def cells(self) -> tuple[str, ...]:
        """The row as table cells."""
        return (self.benchmark, self.variant, self.figure, _fmt(self.value), self.unit, self.note)


#: Where :func:`free_port` looks first: below the kernel's ephemeral range (Linux's default starts at 32768).
FIXED_PORTS_FROM = 20000


def free_port() -> int:
    """A TCP port free on the loopback interface right now (for a server this tooling starts a while later).

    Taken below the kernel's ephemeral range where it can: a port the kernel handed out (``bind(0)``) comes from
    the range every outgoing connection takes its local port from, so on a busy machine one of them could take it
    before the server binds it. Random, so that parallel callers do not try the same ports in turn.

    >>> 0 < free_port() < 65536
    True
    """
    low = _ephemeral_low()
    candidates = random.Random().sample(range(FIXED_PORTS_FROM, low), min(64, max(low - FIXED_PORTS_FROM, 0)))
    for port in [*candidates, 0]:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError("no free TCP port on 127.0.0.1")


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (32768 where it cannot be read)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _fmt(value: float | int | str | None) -> str:
    """A cell: counts as they are, other numbers with 3 significant-ish digits.

    >>> _fmt(12), _fmt(12.0), _fmt(0.1234), _fmt(None)
    ('12', '12.00', '0.123', '-')
    """
    if value is None:
        return "-"
    if isinstance(value, (str, bool)):
        return str(value)
    if isinstance(value, int):
        return str(value)
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


def machine_cpu_seconds() -> float:
    """CPU seconds all processes of the machine have used since boot (user, nice, system, irq, softirq; from
    ``/proc/stat``), or ``nan`` where there is no ``/proc``: the difference over a run is its CPU demand whatever
    processes it spawned (workers, daemons, orchestrators), other load included.

    >>> a = machine_cpu_seconds(); b = machine_cpu_seconds()
    >>> math.isnan(a) or b >= a
    True
    """
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in first[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    """The 1/5/15-minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def log(message: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def jsonable(value: Any) -> Any:
    """``value`` through a JSON round trip (drops anything JSON cannot carry)."""
    return json.loads(json.dumps(value, default=str))


#: The packages whose versions a figure depends on.
VERSIONED = ("dagster", "dagster-aws", "boto3", "moto", "requests")


def machine() -> tuple[str, str]:
    """(cores and memory, versions): the machine and the software the figures were measured on.

    >>> cores, versions = machine()
    >>> "cores" in cores and "Python" in versions and "dagster" in versions
    True
    """
    mem_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    versions = [f"Python {platform.python_version()}"]
    for package in VERSIONED:
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{package} -")
    cpu = platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = " ".join(line.partition(":")[2].split())
                break
    return f"{os.cpu_count()} cores, {mem_kib / 1024 / 1024:.0f} GiB", f"{cpu}; " + ", ".join(versions)


def _speed_workload(loops: int) -> int:
    """A fixed pure-Python workload (dict, str, int, list and call work, like parsing and logging events)."""
    counts: dict[str, int] = {}
    total = 0
    for i in range(loops):
        word = f"k{i % 97}"
        counts[word] = counts.get(word, 0) + i
        total += len(word) * (i & 7) + abs(-i) % 13
        if i % 1000 == 0:
            total += sum(sorted(counts.values())[:10])
    return total


def single_core_speed(loops: int = 300_000, repeats: int = 5) -> tuple[float, float]:
    """(best, median) thousands of workload loops per CPU second of this process, on one core.

    Measured with ``time.process_time``, so other processes on the machine lower it only through shared caches
    and frequency; the best of ``repeats`` is the figure to compare machines by.

    >>> best, median = single_core_speed(loops=2_000, repeats=3)
    >>> best >= median > 0
    True
    """
    rates = []
    for _ in range(repeats):
        started = time.process_time()
        _speed_workload(loops)
        spent = max(time.process_time() - started, 1e-6)
        rates.append(loops / spent / 1000.0)
    rates.sort()
    return rates[-1], rates[len(rates) // 2]


def preamble(name: str) -> list[Row]:
    """The rows every benchmark prints first: the machine, the load average at its start, single-core speed.

    >>> [r.figure for r in preamble("x")]
    ['machine', 'load average at start', 'single-core speed']
    """
    cores, versions = machine()
    load = load_average()
    best, median = single_core_speed()
    return [
        Row(name, "-", "machine", cores, "", versions),
        Row(name, "-", "load average at start", load, "", "1 / 5 / 15 minutes"),
        Row(
            name,
            "-",
            "single-core speed",
            best,
            "kloops/s",
            f"a fixed pure-Python loop, best of 5 (median {median:.0f}) per CPU second of this process; "
            "compare machines by it",
        ),
    ]


def cpu_demand(cpu_total: float, ideal: float, cores: int | None = None) -> float:
    """CPU seconds / (cores x ideal seconds), nan without an ideal: above 1, the machine is the limit.

    >>> cpu_demand(30.0, 20.0, cores=2), math.isnan(cpu_demand(1.0, 0.0))
    (0.75, True)
    """
    cores = cores or os.cpu_count() or 1
    return cpu_total / (cores * ideal) if ideal > 0 else math.nan


def cpu_demand_row(name: str, variant: str, cpu_total: float, ideal: float, parts: dict[str, float]) -> Row:
    """CPU of all processes / (cores x ideal): above 1, the machine, not the accounts' capacity, is the limit.

    >>> row = cpu_demand_row("x", "v", 30.0, 20.0, {"run": 20.0, "moto": 10.0})
    >>> round(row.value, 3) == round(30.0 / ((os.cpu_count() or 1) * 20.0), 3), row.note.startswith("run 20.0 s")
    (True, True)
    """
    cores = os.cpu_count() or 1
    value = cpu_demand(cpu_total, ideal, cores)
    note = ", ".join(f"{k} {v:.1f} s" for k, v in parts.items())
    note += f"; {cores} cores x {ideal:g} s ideal = {cores * ideal:g} CPU s; above 1 the machine is the limit"
    return Row(name, variant, "CPU demand / (cores x ideal)", value, "x", note)
