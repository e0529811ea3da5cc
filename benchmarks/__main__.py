"""``python -m benchmarks``: run the benchmarks, each in its own process, and print one table.

``--only backfill|overhead|memory|finish-to-s3`` (comma-separated for several), ``--quick`` for small sizes
(a smoke test, not figures). Each benchmark starts its own simulator and moto processes. Progress goes to
stderr; Dagster's console output of each benchmark is kept in ``/tmp/benchmarks-<name>.log``.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._common import Row, format_table, parse_rows

MODULES = {
    "backfill": "benchmarks.backfill",
    "overhead": "benchmarks.overhead",
    "memory": "benchmarks.memory",
    "finish-to-s3": "benchmarks.finish_to_s3",
}
_PROGRESS = re.compile(r"^\[\d\d:\d\d:\d\d\] ")


def machine() -> str:
    """One line about the machine and the versions measured."""
    try:
        import dagster

        dagster_version = dagster.__version__
    except Exception:  # pragma: no cover - dagster is a dependency
        dagster_version = "?"
    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) // 1024 // 1024
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, {mem} GiB RAM, Python {platform.python_version()}, "
        f"dagster {dagster_version}, load average {load}"
    )


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
    print(f"machine: {machine()}", flush=True)
    rows: list[Row] = []
    for name in names:
        extra = ["--profile"] if args.profile and name == "overhead" else []
        rows += run_one(name, args.quick, extra)
    print(format_table(rows), flush=True)
    return 1 if any(r.figure == "FAILED" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
