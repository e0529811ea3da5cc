"""The embedded servers in processes of their own, for callers that measure their own CPU and memory apart from
the servers' (the benchmarks).

A child is ``python -m minimax_dagster.embedded <kind>``: it reads its configuration as one JSON line on stdin
(so no secret is on a command line), prints ``{"url": ...}`` once it serves, and stops when its stdin closes, on
SIGTERM or when its parent dies (the pipe closes then too).

>>> with SimulatorProcess(SimulatorConfig(generation_seconds=0.1)) as sim:
...     sim.counters()["creates"]
0
"""

from __future__ import annotations

import contextlib
import json
import selectors
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import IO, Any

from minimax_dagster.simulator.config import SimulatorConfig


class ServerProcess:
    """One child server (``kind`` is ``simulator`` or ``s3``); :attr:`url` is where it serves.

    >>> with ServerProcess("s3") as s3:
    ...     s3.url.startswith("http://127.0.0.1:")
    True
    """

    def __init__(self, kind: str, config: dict[str, Any] | None = None) -> None:
        self.kind = kind
        self._config = dict(config or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        """The child's process id."""
        if self.process is None:
            raise RuntimeError(f"the {self.kind} process is not started")
        return self.process.pid

    def start(self, timeout: float = 60.0) -> ServerProcess:
        """Start the child and wait until it says where it serves."""
        self.spawn()
        return self.wait_ready(timeout)

    def spawn(self) -> None:
        """Start the child without waiting for it (see :meth:`wait_ready`), so several start at once."""
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - kept open for the child's life, closed by stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "minimax_dagster.embedded", self.kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(self._config).encode() + b"\n")
        self.process.stdin.flush()

    def wait_ready(self, timeout: float = 60.0) -> ServerProcess:
        """Wait until the spawned child says where it serves (it is stopped if it does not)."""
        if self.process is None or self.process.stdout is None:
            raise RuntimeError(f"the {self.kind} process is not spawned")
        try:
            self.url = str(json.loads(_read_line(self.process.stdout, timeout))["url"])
        except Exception as exc:
            tail = self.log_tail()
            self.stop()
            raise RuntimeError(f"the {self.kind} process did not start: {exc}\n{tail}") from None
        return self

    def stop(self, grace: float = 10.0) -> None:
        """Close the child's stdin (it stops by itself), then terminate or kill it if it is slow to."""
        process, self.process = self.process, None
        if process is not None:
            with contextlib.suppress(OSError):
                assert process.stdin is not None
                process.stdin.close()
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    process.wait(grace)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(grace)
            if process.stdout is not None:
                process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, limit: int = 3000) -> str:
        """The end of the child's stderr."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-limit:]

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ServerProcess({self.kind}, {self.url or 'not started'})"


def _read_line(stream: IO[bytes], timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no answer within {timeout:.0f} s")
    line = stream.readline()
    if not line:
        raise RuntimeError("it exited before serving")
    return line


class SimulatorProcess(ServerProcess):
    """The MiniMax simulator in a child process, with the in-process simulator's addresses and controls.

    The configuration (its token included) travels on the child's stdin.
    """

    def __init__(self, config: SimulatorConfig) -> None:
        super().__init__("simulator", config.model_dump(mode="json"))
        self.config = config

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``: the API's and the CDN's origin."""
        return self.url

    @property
    def base_url(self) -> str:
        """The API root, ``<origin>/v1/minimax``."""
        return f"{self.url}/v1/minimax"

    @property
    def token(self) -> str:
        """The bearer token the simulator accepts."""
        return self.config.token

    def counters(self) -> dict[str, Any]:
        """The simulator's counters (``GET /_sim/counters``)."""
        with urllib.request.urlopen(f"{self.url}/_sim/counters", timeout=10) as response:
            return dict(json.loads(response.read()))

    def configure(self, **changes: Any) -> None:
        """Change runtime fields while it runs (``POST /_sim/config``)."""
        request = urllib.request.Request(
            f"{self.url}/_sim/config",
            data=json.dumps(changes).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        self.config = self.config.model_copy(update=changes)

    def __repr__(self) -> str:
        return f"SimulatorProcess({self.base_url if self.url else 'not started'})"
