"""``python -m benchmarks``: run the benchmarks, each in its own process, and print one table.

``--only backfill|overhead|memory|finish-to-s3|wide|hostile`` (comma-separated for several), ``--quick`` for small
sizes (a smoke test, not figures). Each benchmark starts its own simulator and moto processes and prints the
machine, the load average at its start and a single-core speed figure first (the machine row once in the joint
table). Progress goes to stderr; Dagster's console output of each benchmark is kept in
``/tmp/benchmarks-<name>.log``. Each module also runs on its own with more options
(``python -m benchmarks.<module> --help``).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._common import Row, format_table, load_average, machine, parse_rows

MODULES = {
    "backfill": "benchmarks.backfill",
    "overhead": "benchmarks.overhead",
    "memory": "benchmarks.memory",
    "finish-to-s3": "benchmarks.finish_to_s3",
    "wide": "benchmarks.wide",
    "hostile": "benchmarks.hostile",
}
_PROGRESS = re.compile(r"^\[\d\d:\d\d:\d\d\] ")


def machine_line() -> str:
    """One line about the machine, the versions measured, and the load now.

    >>> "cores" in machine_line() and "load average" in machine_line()
    True
    """
    cores, versions = machine()
    return f"{cores}, {versions}, load average {load_average()}"


def drop_repeated_machine_rows(rows: list[Row]) -> list[Row]:
    """Keep the first ``machine`` row of each distinct value (every benchmark prints one).

    >>> rows = [Row("a", "-", "machine", "2 cores", "", "v"), Row("b", "-", "machine", "2 cores", "", "v")]
    >>> [r.benchmark for r in drop_repeated_machine_rows(rows)]
    ['a']
    """
    seen: set[tuple[object, str]] = set()
    out = []
    for row in rows:
        if row.figure == "machine":
            if (row.value, row.note) in seen:
                continue
            seen.add((row.value, row.note))
        out.append(row)
    return out


def run_one(name: str, quick: bool, extra: list[str]) -> list[Row]:
    """Run one benchmark module in a subprocess; its rows, or one row saying it failed."""
    log_path = Path(f"/tmp/benchmarks-{name}.log")
    cmd = [sys.executable, "-m", MODULES[name], "--json", *(["--quick"] if quick else []), *extra]
    started = time.monotonic()
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None and proc.stdout is not None
        for line in proc.stderr:
            log_file.write(line)
            if _PROGRESS.match(line):
                print(line, end="", file=sys.stderr, flush=True)
        stdout = proc.stdout.read()
        code = proc.wait()
    rows = parse_rows(stdout)
    if code != 0 or not rows:
        return [Row(name, "-", "FAILED", f"exit {code}", "", f"see {log_path}")]
    print(f"{name}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--only", default=",".join(MODULES), help="benchmarks to run: " + "|".join(MODULES))
    parser.add_argument("--quick", action="store_true", help="small sizes: proves the code runs")
    parser.add_argument("--profile", action="store_true", help="cProfile of the overhead run (in its log)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(MODULES)}")
    print(f"machine: {machine_line()}", flush=True)
    rows: list[Row] = []
    for name in names:
        extra = ["--profile"] if args.profile and name == "overhead" else []
        rows += run_one(name, args.quick, extra)
    print(format_table(drop_repeated_machine_rows(rows)), flush=True)
    return 1 if any(r.figure == "FAILED" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
