"""``python -m minimax_dagster.deployment``: the deployment's two commands.

``--celery-config`` prints the path of the shipped Celery YAML, for the workers, which must start with the same
settings as the executor::

    dagster-celery worker start -A minimax_dagster.deployment.celery_app -y "$(python -m minimax_dagster.deployment --celery-config)" \\
        -q minimax -n w1 -- --concurrency=2 --without-gossip --without-mingle

``backfill -w WORKSPACE PARTITION...`` launches an asset backfill of those partitions (one run per partition,
whose failed runs the daemon retries; see :mod:`minimax_dagster.deployment.backfill`) and prints its id::

    python -m minimax_dagster.deployment backfill -w deploy/postgres/workspace.yaml batch-001 batch-002
"""

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m minimax_dagster.deployment", description=__doc__)
    parser.add_argument("--celery-config", action="store_true", help="print the path of celery_config.yaml")
    commands = parser.add_subparsers(dest="command")
    backfill = commands.add_parser("backfill", help="launch an asset backfill of partitions; print its id")
    backfill.add_argument(
        "-w", "--workspace", required=True, help="the workspace file (names the code server)"
    )
    backfill.add_argument("--tags", default="{}", help='JSON object of run tags, e.g. {"team": "video"}')
    backfill.add_argument("partitions", nargs="+", help="partition names (the prompt datasets)")
    args = parser.parse_args(argv)
    if args.command == "backfill":
        from minimax_dagster.deployment.backfill import launch_asset_backfill

        print(launch_asset_backfill(args.workspace, args.partitions, json.loads(args.tags)))
        return 0
    if not args.celery_config:
        parser.print_help()
        return 2
    from minimax_dagster.deployment.celery import celery_config_path

    print(celery_config_path())
    return 0


if __name__ == "__main__":
    sys.exit(main())
