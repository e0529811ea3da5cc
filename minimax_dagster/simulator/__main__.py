"""``python -m minimax_dagster.simulator``: serve the MiniMax simulator until Ctrl-C.

>>> args = build_parser().parse_args(["--account", "7=2", "--account", "8=1", "--account-in-error", "8=on hold"])
>>> args.account, args.account_in_error
([('7', 2), ('8', 1)], [('8', 'on hold')])
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from .config import SimulatorConfig
from .faults import describe_faults
from .server import MiniMaxSimulator


def _account(text: str) -> tuple[str, int]:
    account, _, max_jobs = text.partition("=")
    if not account or not max_jobs.isdigit():
        raise argparse.ArgumentTypeError(f"expected ACCOUNT=MAXJOBS, got {text!r}")
    return account, int(max_jobs)


def _account_error(text: str) -> tuple[str, str]:
    account, _, message = text.partition("=")
    if not account or not message:
        raise argparse.ArgumentTypeError(f"expected ACCOUNT=MESSAGE, got {text!r}")
    return account, message


def build_parser() -> argparse.ArgumentParser:
    """The command line's options (``--help`` lists them)."""
    p = argparse.ArgumentParser(
        prog="python -m minimax_dagster.simulator",
        description="Local simulator of the useapi.net MiniMax API (agent-create, videos, files, accounts, CDN).",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any free port)")
    p.add_argument("--token", default="sim-token", help="the bearer token accepted (default sim-token)")
    p.add_argument("--user-id", default="1234", help="useapi.net user id used in ids (default 1234)")
    p.add_argument(
        "--account",
        action="append",
        type=_account,
        metavar="ACCOUNT=MAXJOBS",
        help="a MiniMax account and its maxJobs; repeatable (default 100001=5 and 100002=5)",
    )
    p.add_argument(
        "--account-without-video",
        action="append",
        default=[],
        metavar="ACCOUNT",
        help="a configured account that GET accounts shows with supportVideo false; repeatable",
    )
    p.add_argument(
        "--account-in-error",
        action="append",
        default=[],
        type=_account_error,
        metavar="ACCOUNT=MESSAGE",
        help="a configured account that GET accounts shows with this error; repeatable",
    )
    p.add_argument(
        "--generation-seconds", type=float, default=3.0, help="simulated generation time (default 3)"
    )
    p.add_argument("--heartbeat-seconds", type=float, default=1.0, help="heartbeat interval (default 1)")
    p.add_argument("--video-bytes", type=int, default=None, help="pad produced MP4s to this many bytes")
    p.add_argument("--cdn-bytes-per-second", type=float, default=None, help="throttle CDN downloads")
    p.add_argument(
        "--fault", action="append", default=[], metavar="NAME[=ARG]", help="server-wide fault; repeatable"
    )
    p.add_argument("--moderated-visible-seconds", type=float, default=2.0)
    p.add_argument("--help-faults", action="store_true", help="list the faults and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, serve until SIGINT/SIGTERM and return the exit code (2 on a bad configuration)."""
    args = build_parser().parse_args(argv)
    if args.help_faults:
        print(describe_faults())
        return 0
    fields = {
        "host": args.host,
        "port": args.port,
        "token": args.token,
        "user_id": args.user_id,
        "generation_seconds": args.generation_seconds,
        "heartbeat_seconds": args.heartbeat_seconds,
        "video_bytes": args.video_bytes,
        "cdn_bytes_per_second": args.cdn_bytes_per_second,
        "faults": args.fault,
        "moderated_visible_seconds": args.moderated_visible_seconds,
        "accounts_without_video": args.account_without_video,
        "accounts_in_error": dict(args.account_in_error),
    }
    if args.account:
        fields["accounts"] = dict(args.account)
    try:
        config = SimulatorConfig(**fields)
    except ValueError as exc:
        print(f"invalid configuration: {exc}", file=sys.stderr)
        return 2
    sim = MiniMaxSimulator(config).start()
    print(f"MiniMax simulator serving at {sim.base_url}", flush=True)
    print(f"  token:      {sim.token}")
    print(f"  CDN origin: {sim.origin}")
    print(f"  accounts:   {json.dumps(sim.config.accounts)}")
    if config.accounts_without_video:
        print(f"  no video:   {', '.join(config.accounts_without_video)}")
    if config.accounts_in_error:
        print(f"  in error:   {json.dumps(config.accounts_in_error)}")
    print(f"  counters:   {sim.origin}/_sim/counters")
    if config.faults:
        print(f"  faults:     {', '.join(config.faults)}")
    print("Press Ctrl-C to stop.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
