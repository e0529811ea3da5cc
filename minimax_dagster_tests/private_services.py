"""PostgreSQL, Redis and RabbitMQ instances of a test's own, on free ports, that the test may restart.

The machine's own services are never touched: each class starts a new server process with its own data
directory, port and (RabbitMQ) node name, and :meth:`stop` stops only that process. ``restart`` stops the
server and starts it again on the same port and data, as an upgrade or a crash-restart would.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks._common import free_port


def _wait_until(check: object, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not come up in {timeout:.0f} s")
        time.sleep(0.2)


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL's tools refuse to run as root: run them as the ``postgres`` user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PrivatePostgres:
    """A PostgreSQL cluster of its own (``initdb``), trust auth, user ``postgres``, on a free port."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            raise RuntimeError("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) are not installed")
        self.bin = Path(bins[-1])
        self.port = free_port()
        # A directory of its own under the system's temp dir (pytest's is private to root, and the server
        # runs as ``postgres``), removed by :meth:`stop`.
        self.data = Path(tempfile.mkdtemp(prefix="mmd-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres")
        done = subprocess.run(
            _as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]),
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr[-2000:]}")

    def _pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        subprocess.run(
            _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", *args]),
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        self._pg_ctl("-l", str(self.data / "server.log"), "start")

    def restart(self) -> None:
        """Stop (``-m fast``: open connections are cut, as in a restart for an upgrade) and start again."""
        self._pg_ctl("-m", "fast", "-l", str(self.data / "server.log"), "restart")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(self.data, ignore_errors=True)


class PrivateRedis:
    """``redis-server`` on a free port, persisting every write (append-only file, fsync always) like a
    production result backend must: a restart then keeps the results of finished steps."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.dir = root / "redis"
        self.dir.mkdir(parents=True)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        cmd += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        with open(self.dir / "redis.log", "ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        _wait_until(client.ping, f"redis-server on port {self.port}")

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _rabbitmq(tool: str) -> str:
    """RabbitMQ's own script: Debian's wrapper in /usr/sbin would switch to the ``rabbitmq`` user and its
    environment (not this node's)."""
    own = Path("/usr/lib/rabbitmq/bin") / tool
    return str(own) if own.exists() else tool


class PrivateRabbitMQ:
    """A RabbitMQ node of its own (Debian's ``rabbitmq-server``): its own node name, AMQP and distribution
    ports, data and log directories, no plugins, and an Erlang cookie in its own HOME (shared with
    ``rabbitmqctl``)."""

    def __init__(self, root: Path, name: str) -> None:
        self.port = free_port()
        self.dir = root / "rabbitmq"
        self.dir.mkdir(parents=True)
        (self.dir / "enabled_plugins").write_text("[].\n")
        self.env = {
            **os.environ,
            "HOME": str(self.dir),
            "RABBITMQ_NODENAME": f"{name}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.dir / "rabbitmq.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq"),  # none: the defaults, not /etc/rabbitmq's
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config"),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"pyamqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self) -> None:
        from kombu import Connection

        with open(self.dir / "server.out", "ab") as log:
            self.process = subprocess.Popen(
                [_rabbitmq("rabbitmq-server")],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def answers() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited: {(self.dir / 'server.out').read_text()[-2000:]}")
            with Connection(self.url, connect_timeout=1) as conn:
                conn.ensure_connection(max_retries=1)
            return True

        _wait_until(answers, f"RabbitMQ on port {self.port}", timeout=180)

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(Exception):
            subprocess.run([_rabbitmq("rabbitmqctl"), "stop"], env=self.env, capture_output=True, timeout=60)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
