"""``python -m benchmarks.scale``: a partitioned backfill of the video pipeline across N Celery workers.

Starts the MiniMax simulator and the S3 server, a fresh PostgreSQL database for the Dagster instance
(``deploy/postgres/dagster.yaml``), N Celery workers on RabbitMQ (the package's ``celery_config.yaml``) and the
daemon; splits ``--prompts`` distinct prompts into partitions of ``--per-partition``, backfills them (one
queued run per partition, an asset backfill whose failed runs the daemon retries) and prints, per partition, which worker produced it, then
the wall time against the capacity-bound ideal and the simulator's counters. Everything it started is stopped
and the database dropped at the end, also on Ctrl-C or failure.

Needs PostgreSQL, RabbitMQ and Redis (defaults: the local ones; see ``DAGSTER_PG_*``,
``DAGSTER_CELERY_BROKER_URL`` and ``DAGSTER_CELERY_BACKEND_URL``).

    python -m benchmarks.scale --workers 2 --prompts 40
    python -m benchmarks.scale --workers 1,2,4 --prompts 200 --json scaling.json   # one run per count
"""

import argparse
import json
import logging
import sys
import warnings
from dataclasses import asdict
from pathlib import Path

from benchmarks._common import format_table, preamble
from benchmarks.scale import ScaleCluster, ServiceUnavailable, batches_of


def _accounts(text: str) -> dict[str, int]:
    out = {}
    for item in text.split(","):
        name, _, jobs = item.strip().partition("=")
        if not name or not jobs.isdigit():
            raise argparse.ArgumentTypeError(f"expected account=maxJobs[,...], got {text!r}")
        out[name] = int(jobs)
    return out


def run_once(workers: int, args: argparse.Namespace) -> dict:
    """One cluster with ``workers`` workers, one backfill; prints the report and returns it as a dict."""
    print(
        f"\n=== {workers} worker(s): starting PostgreSQL database, services, workers and daemon ...",
        flush=True,
    )
    with ScaleCluster(
        workers=workers,
        generation_seconds=args.generation_seconds,
        accounts=args.accounts,
        pool_limit=args.pool_limit,
        worker_concurrency=args.worker_concurrency,
    ) as cluster:
        print(
            f"    DAGSTER_HOME={cluster.home} database={cluster.env['DAGSTER_PG_DB']} queue={cluster.queue}"
        )
        for name, worker in cluster.workers.items():
            print(f"    worker {name} (pid {worker.pid})")
        batches = batches_of(args.prompts, args.per_partition, tag=cluster.token)
        print(
            f"    backfilling {len(batches)} partitions of up to {args.per_partition} prompts ...", flush=True
        )
        report = cluster.run_backfill(batches, timeout=args.timeout)
        for line in report.lines():
            print(f"    {line}")
        if not report.succeeded:
            print(cluster.logs(), file=sys.stderr)
        data = asdict(report)
        data["ideal_seconds"] = report.ideal_seconds
        data["succeeded"] = report.succeeded
        return data


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--workers", default="2", help="Celery workers; a comma list runs one backfill per count"
    )
    parser.add_argument("--prompts", type=int, default=40, help="distinct prompts in the backfill")
    parser.add_argument("--per-partition", type=int, default=10, help="prompts per partition (one run each)")
    parser.add_argument("--generation-seconds", type=float, default=3.0, help="simulated generation time")
    parser.add_argument(
        "--accounts", type=_accounts, default={"100001": 5, "100002": 5}, help="e.g. 100001=5,100002=5"
    )
    parser.add_argument(
        "--pool-limit",
        type=int,
        default=None,
        help="limit of the minimax pool (default: workers x worker concurrency)",
    )
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=1,
        help="steps each worker runs at once (its Celery processes; default 1)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the backfill")
    parser.add_argument("--json", type=Path, default=None, help="write the reports to this file")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the S3 server's request log
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    print(format_table(preamble("scale")), flush=True)
    counts = [int(n) for n in str(args.workers).split(",") if n.strip()]
    reports = []
    try:
        for n in counts:
            reports.append(run_once(n, args))
    except ServiceUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2, default=str))
    return 0 if all(r["succeeded"] for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
