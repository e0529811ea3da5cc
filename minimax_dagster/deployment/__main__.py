"""``python -m minimax_dagster.deployment --celery-config``: print the path of the shipped Celery YAML.

For the workers, which must start with the same settings as the executor::

    dagster-celery worker start -A minimax_dagster.deployment.celery_app -y "$(python -m minimax_dagster.deployment --celery-config)" \\
        -q minimax -n w1 -- --concurrency=2 --without-gossip --without-mingle
"""

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m minimax_dagster.deployment", description=__doc__)
    parser.add_argument("--celery-config", action="store_true", help="print the path of celery_config.yaml")
    args = parser.parse_args(argv)
    if not args.celery_config:
        parser.print_help()
        return 2
    from minimax_dagster.deployment.celery import celery_config_path

    print(celery_config_path())
    return 0


if __name__ == "__main__":
    sys.exit(main())
