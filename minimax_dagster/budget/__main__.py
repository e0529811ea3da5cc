"""``python -m minimax_dagster.budget show``: what each budget window spent, per asset and run.

Reads the ledgers (:mod:`~minimax_dagster.storage.ledger`) under the budget's prefix in a bucket; S3 is
reached through boto3's usual chain (``AWS_ACCESS_KEY_ID``, profiles, roles) and ``--endpoint-url`` /
``MINIMAX_S3_ENDPOINT_URL`` for an S3-compatible server. Writes nothing.

>>> print(render([], "b", "_minimax_budget"))
no budget ledger under s3://b/_minimax_budget/ (nothing spent against a budget yet)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Sequence

import boto3

from minimax_dagster.production.budget_windows import DEFAULT_LEDGER_PREFIX
from minimax_dagster.storage import s3_client_config
from minimax_dagster.storage.ledger import Ledger, list_ledgers, read_ledger


def render(ledgers: Sequence[tuple[str, Ledger]], bucket: str, prefix: str, *, entries: bool = False) -> str:
    """The report of ``ledgers`` (``(key, ledger)`` pairs): per window its spend, limits and reset, then the
    spend per asset and per run (and every entry with ``entries``).

    >>> from minimax_dagster.storage.ledger import LedgerEntry
    >>> ledger = Ledger(window="day 2026-12-07 (UTC)", limit_videos=3, resets_at="2026-12-08T00:00:00+00:00",
    ...                 entries=(LedgerEntry(id="a", run_id="r1", asset="videos", prompt_id="fox", video_id="9",
    ...                                      status="spent", at="2026-12-07T10:00:00+00:00"),))
    >>> print(render([("_b/day/2026-12-07.json", ledger)], "bkt", "_b", entries=True))
    day 2026-12-07 (UTC)  (s3://bkt/_b/day/2026-12-07.json)
      spent: 1 of 3 new video(s), 0 credit(s); 0 given back; resets 2026-12-08T00:00:00+00:00
      per asset: videos 1
      per run: r1 1 (videos)
      2026-12-07T10:00:00+00:00  spent  run r1  videos  -  fox  video 9  unknown credit(s)
    """
    if not ledgers:
        return f"no budget ledger under s3://{bucket}/{prefix}/ (nothing spent against a budget yet)"
    out = []
    for key, ledger in ledgers:
        videos, credits = ledger.spent()
        limit_v = f" of {ledger.limit_videos}" if ledger.limit_videos is not None else ""
        limit_c = f" of {ledger.limit_credits}" if ledger.limit_credits is not None else ""
        resets = f"; resets {ledger.resets_at}" if ledger.resets_at else ""
        out.append(f"{ledger.window}  (s3://{bucket}/{key})")
        out.append(
            f"  spent: {videos}{limit_v} new video(s), {credits}{limit_c} credit(s); "
            f"{ledger.released} given back{resets}"
        )
        by_asset = Counter(e.asset or "?" for e in ledger.entries)
        out.append("  per asset: " + (", ".join(f"{a} {n}" for a, n in by_asset.most_common()) or "-"))
        by_run = Counter((e.run_id or "?", e.asset or "?") for e in ledger.entries)
        out.append("  per run: " + (", ".join(f"{r} {n} ({a})" for (r, a), n in by_run.most_common()) or "-"))
        if entries:
            for e in ledger.entries:
                credit = e.credits if e.credits is not None else f"{e.counted_credits} (counted)"
                credit = credit if e.credits is not None or e.counted_credits else "unknown"
                out.append(
                    f"  {e.at}  {e.status}  run {e.run_id or '?'}  {e.asset or '?'}  {e.partition or '-'}  "
                    f"{e.prompt_id or '?'}  video {e.video_id or '-'}  {credit} credit(s)"
                )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (``show``); returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m minimax_dagster.budget", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="print what each budget window spent, per asset and run")
    show.add_argument("--bucket", default=os.environ.get("MINIMAX_BUCKET"), help="default: $MINIMAX_BUCKET")
    show.add_argument(
        "--prefix",
        default=os.environ.get("MINIMAX_BUDGET_PREFIX", DEFAULT_LEDGER_PREFIX),
        help=f"the budget's ledger_prefix (default: $MINIMAX_BUDGET_PREFIX or {DEFAULT_LEDGER_PREFIX})",
    )
    show.add_argument(
        "--endpoint-url",
        default=os.environ.get("MINIMAX_S3_ENDPOINT_URL") or None,
        help="an S3-compatible server (default: $MINIMAX_S3_ENDPOINT_URL, else AWS)",
    )
    show.add_argument(
        "--window", default="", help="only windows whose key contains this, e.g. day/ or 2026-12"
    )
    show.add_argument("--runs", action="store_true", help="also the max_new_videos ledgers of single runs")
    show.add_argument(
        "--entries", action="store_true", help="list every entry (time, run, asset, partition, ...)"
    )
    show.add_argument("--limit", type=int, default=200, help="at most this many ledgers (default 200)")
    args = parser.parse_args(argv)
    if not args.bucket:
        parser.error("--bucket is required (or set MINIMAX_BUCKET)")
    s3 = boto3.client(
        "s3",
        endpoint_url=args.endpoint_url,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=s3_client_config(),
    )
    prefix = args.prefix.strip("/")
    ledgers = []
    for key in list_ledgers(s3, args.bucket, prefix, limit=args.limit):
        if args.window not in key or (not args.runs and key.startswith(f"{prefix}/runs/")):
            continue
        found = read_ledger(s3, args.bucket, key)
        if found is not None:
            ledgers.append((key, found[0]))
    print(render(ledgers, args.bucket, prefix, entries=args.entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
