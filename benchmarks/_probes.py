"""What the benchmarks observe besides clocks: every S3 call a client makes, and the threads, TCP connections and
memory of processes (read from ``/proc``; Linux only).

* :class:`S3Recorder` hooks a boto3 client's botocore events (``before-parameter-build`` notes the key,
  ``after-call`` / ``after-call-error`` record the answer), keeps every call and, given a path, appends each one
  to a file, so the step processes of a Dagster run leave a trace the benchmark reads afterwards
  (:func:`read_s3_trace`). A call is one S3 API request as the code makes it; botocore's own retries of it (none
  against a healthy local server) are not counted apart.
* :class:`ProcessSampler` samples a process and its descendants every ``interval`` seconds in a thread and
  keeps each one's peak threads, open TCP connections and RSS.

>>> calls = [S3Call(1.0, "PutObject", "p/videos/a.mp4", 200), S3Call(2.0, "GetObject", "p/_jobs/a.json", 404)]
>>> dict(by_operation(calls))
{'PutObject': 1, 'GetObject': 1}
>>> last_video_write(calls, "p")
1.0
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

#: Operations that create or complete an object.
WRITES = frozenset({"PutObject", "CompleteMultipartUpload", "CopyObject"})
_CONTEXT_KEY = "bench_s3_key"


@dataclasses.dataclass(frozen=True)
class S3Call:
    """One S3 API call: when its answer arrived (epoch seconds), the operation, the object key, the HTTP status
    (0 when no answer came)."""

    at: float
    operation: str
    key: str
    status: int

    def line(self) -> str:
        """One tab-separated line of a trace file.

        >>> S3Call.parse(S3Call(1.5, "PutObject", "k", 200).line()) == S3Call(1.5, "PutObject", "k", 200)
        True
        """
        return f"{self.at:.6f}\t{self.operation}\t{self.key}\t{self.status}\n"

    @classmethod
    def parse(cls, line: str) -> S3Call:
        """The call written by :meth:`line`."""
        at, operation, key, status = line.rstrip("\n").split("\t")
        return cls(float(at), operation, key, int(status))


class S3Recorder:
    """Records the S3 calls of the boto3 clients it is attached to; thread-safe.

    >>> import boto3
    >>> from botocore import UNSIGNED
    >>> from botocore.config import Config
    >>> client = boto3.client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
    ...                       config=Config(signature_version=UNSIGNED, retries={"max_attempts": 0}))
    >>> recorder = S3Recorder().attach(client)
    >>> try:
    ...     client.head_object(Bucket="b", Key="k")
    ... except Exception:
    ...     pass
    >>> [(c.operation, c.key, c.status) for c in recorder.calls]
    [('HeadObject', 'k', 0)]
    """

    def __init__(self, path: Path | None = None) -> None:
        self.calls: list[S3Call] = []
        self._path = path
        self._lock = threading.Lock()

    def attach(self, client: Any) -> S3Recorder:
        """Hook ``client``'s events; returns ``self``."""
        events = client.meta.events
        events.register("before-parameter-build.s3", self._note_key)
        events.register("after-call.s3", self._answered)
        events.register("after-call-error.s3", self._failed)
        return self

    def by_operation(self) -> collections.Counter[str]:
        """Calls so far, counted by operation."""
        with self._lock:
            return by_operation(self.calls)

    def snapshot(self) -> list[S3Call]:
        """A copy of the calls so far."""
        with self._lock:
            return list(self.calls)

    def _note_key(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_CONTEXT_KEY] = str(params.get("Key", ""))

    def _answered(self, http_response: Any, context: dict[str, Any], event_name: str, **_: Any) -> None:
        self._add(event_name, context, int(getattr(http_response, "status_code", 0) or 0))

    def _failed(self, context: dict[str, Any], event_name: str, **_: Any) -> None:
        self._add(event_name, context, 0)

    def _add(self, event_name: str, context: dict[str, Any], status: int) -> None:
        call = S3Call(time.time(), event_name.rsplit(".", 1)[-1], context.get(_CONTEXT_KEY, ""), status)
        with self._lock:
            self.calls.append(call)
            if self._path is not None:
                with self._path.open("a") as trace:
                    trace.write(call.line())


def read_s3_trace(directory: Path) -> list[S3Call]:
    """Every call written by recorders with a path in ``directory`` (one file per process), in time order."""
    calls: list[S3Call] = []
    for path in sorted(directory.glob("*.tsv")):
        calls += [S3Call.parse(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted(calls, key=lambda c: c.at)


def by_operation(calls: Iterable[S3Call]) -> collections.Counter[str]:
    """Calls counted by operation."""
    return collections.Counter(c.operation for c in calls)


def per_video(counts: collections.Counter[str], videos: float) -> str:
    """A breakdown like ``PutObject 4.00, GetObject 2.00`` of ``counts / videos``, most frequent first.

    >>> per_video(collections.Counter({"GetObject": 4, "PutObject": 8}), 2)
    'PutObject 4.00, GetObject 2.00'
    """
    if not videos:
        return "-"
    return ", ".join(f"{op} {n / videos:.2f}" for op, n in counts.most_common())


def slope(
    large: collections.Counter[str], small: collections.Counter[str], videos: float
) -> dict[str, float]:
    """Per-operation ``(large - small) / videos``: the calls each extra video costs, fixed costs removed.

    >>> slope(collections.Counter(PutObject=10, ListObjectsV2=2), collections.Counter(PutObject=4, ListObjectsV2=2), 2)
    {'PutObject': 3.0, 'ListObjectsV2': 0.0}
    """
    ops = list(dict.fromkeys([*large, *small]))
    return {op: (large[op] - small[op]) / videos for op in ops}


def last_video_write(calls: Iterable[S3Call], prefix: str) -> float | None:
    """When the last object of a video (under ``<prefix>/videos/`` or ``<prefix>/_jobs/``) was written."""
    folders = (f"{prefix}/videos/", f"{prefix}/_jobs/")
    times = [
        c.at for c in calls if c.operation in WRITES and 200 <= c.status < 300 and c.key.startswith(folders)
    ]
    return max(times) if times else None


# ----------------------------------------------------------------------------------------------- processes


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """``VmRSS`` / ``VmHWM`` (bytes) and ``Threads`` of a process, from ``/proc/<pid>/status``.

    >>> status = proc_status()
    >>> status["Threads"] >= 1 and status["VmRSS"] > 0
    True
    """
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) * 1024
        elif name == "Threads":
            out[name] = int(value)
    return out


def reset_peak_rss() -> None:
    """Reset this process's ``VmHWM`` to its current RSS (``/proc/self/clear_refs``)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process (``/proc/<pid>/stat``).

    >>> process_cpu(os.getpid()) > 0
    True
    """
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def descendants(root: int) -> set[int]:
    """Process ids of every live descendant of ``root``.

    >>> import subprocess, sys
    >>> child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    >>> child.pid in descendants(os.getpid())
    True
    >>> child.kill(); _ = child.wait()
    """
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent(int(entry))
            if parent is not None:
                children[parent].append(int(entry))
    out: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _tcp_states() -> dict[str, str]:
    """Socket inode -> TCP state (hex, ``01`` established, ``0A`` listening) from /proc/net/tcp and tcp6."""
    states: dict[str, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9:
                    states[fields[9]] = fields[3]
    return states


def tcp_connections(pid: int, states: dict[str, str] | None = None) -> int:
    """TCP sockets of ``pid`` that are connections (any state but listening).

    >>> import socket
    >>> server = socket.create_server(("127.0.0.1", 0))
    >>> before = tcp_connections(os.getpid())
    >>> client = socket.create_connection(server.getsockname())
    >>> tcp_connections(os.getpid()) - before
    1
    >>> client.close(); server.close()
    """
    states = _tcp_states() if states is None else states
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    state = states.get(target[8:-1])
                    if state is not None and state != "0A":
                        count += 1
    return count


@dataclasses.dataclass
class Peaks:
    """The peaks seen of one process."""

    pid: int
    command: str
    threads: int = 0
    connections: int = 0
    rss: int = 0
    samples: int = 0


class ProcessSampler:
    """Samples ``root`` (default: this process) and its descendants, except ``exclude``, every ``interval`` s.

    Used as a context manager; :attr:`peaks` maps each process seen to its :class:`Peaks`. When this process is
    sampled, the sampler's own thread is left out of the thread count, and :attr:`cpu` is the CPU seconds the
    sampler's thread spent (to subtract from this process's CPU).

    >>> with ProcessSampler(interval=0.05) as sampler:
    ...     time.sleep(0.2)
    >>> mine = sampler.peaks[os.getpid()]
    >>> mine.threads >= 1 and mine.rss > 0 and mine.samples >= 1
    True
    """

    def __init__(
        self, root: int | None = None, *, exclude: Iterable[int] = (), interval: float = 0.25
    ) -> None:
        self.root = root if root is not None else os.getpid()
        self.exclude = set(exclude)
        self.interval = interval
        self.peaks: dict[int, Peaks] = {}
        self.cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)

    def __enter__(self) -> ProcessSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()
            self.cpu = time.thread_time()

    def sample(self) -> None:
        """Take one sample of every watched process."""
        states = _tcp_states()
        me = os.getpid()
        for pid in ({self.root} | descendants(self.root)) - self.exclude:
            try:
                status = proc_status(pid)
                command = (
                    Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                continue
            peaks = self.peaks.setdefault(pid, Peaks(pid, command.strip()[:120]))
            threads = status.get("Threads", 0) - (1 if pid == me and self._thread.is_alive() else 0)
            peaks.threads = max(peaks.threads, threads)
            peaks.connections = max(peaks.connections, tcp_connections(pid, states))
            peaks.rss = max(peaks.rss, status.get("VmHWM", 0), status.get("VmRSS", 0))
            peaks.samples += 1

    def busiest(self, among: Iterable[int] | None = None) -> Peaks | None:
        """The process with the most threads at its peak (the step that runs the producer), of ``among``."""
        pool = [p for pid, p in self.peaks.items() if among is None or pid in set(among)]
        return max(pool, key=lambda p: (p.threads, p.rss), default=None)


@contextlib.contextmanager
def s3_trace_dir(directory: Path) -> Iterator[Path]:
    """Point ``BENCH_S3_TRACE`` at ``directory`` for the block (``benchmarks._defs`` records the step's calls
    there)."""
    directory.mkdir(parents=True, exist_ok=True)
    old = os.environ.get("BENCH_S3_TRACE")
    os.environ["BENCH_S3_TRACE"] = str(directory)
    try:
        yield directory
    finally:
        if old is None:
            os.environ.pop("BENCH_S3_TRACE", None)
        else:
            os.environ["BENCH_S3_TRACE"] = old
