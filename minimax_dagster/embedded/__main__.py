"""``python -m minimax_dagster.embedded simulator|s3``: one embedded server in this process (see
:mod:`minimax_dagster.embedded.processes`, which starts it).

Reads its configuration as one JSON line on stdin, prints ``{"url": ...}`` once it serves, and stops when stdin
closes or on SIGTERM / Ctrl-C.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from typing import Any


def _start(kind: str, config: dict[str, Any]) -> tuple[Any, str]:
    if kind == "simulator":
        from minimax_dagster.simulator import MiniMaxSimulator
        from minimax_dagster.simulator.config import SimulatorConfig

        sim = MiniMaxSimulator(SimulatorConfig.model_validate(config)).start()
        return sim, sim.origin
    if kind == "s3":
        from minimax_dagster.embedded.s3 import EmbeddedS3Server

        s3 = EmbeddedS3Server(port=int(config.get("port", 0))).start()
        return s3, s3.endpoint_url
    raise SystemExit(f"unknown server {kind!r}: expected 'simulator' or 's3'")


def main(argv: list[str] | None = None) -> int:
    """Serve until stdin closes or SIGTERM."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(
            "usage: python -m minimax_dagster.embedded simulator|s3  (configuration on stdin)",
            file=sys.stderr,
        )
        return 2
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    config = json.loads(sys.stdin.readline() or "{}")
    server, url = _start(args[0], config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_stdin() -> None:
        sys.stdin.read()  # returns at EOF: the parent closed the pipe or is gone
        stop.set()

    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    print(json.dumps({"url": url}), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
