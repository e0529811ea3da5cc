"""``make ui`` stops cleanly: on SIGTERM, on Ctrl-C and when ``make`` is told to stop, every process it started
(the services, dg dev, the webserver, the daemon, the code servers) is gone once it has stopped.

Each case starts ``python -m minimax_dagster.demo --ui`` on free ports, waits until the UI answers, records every
descendant process, sends the signal, waits for the process it signalled to exit and checks that none of the
recorded processes is left. Slow (each UI takes a while to start on a busy machine). No timed assertion: the UI
bounds its own stop (``STOP_GRACE_SECONDS``, then SIGKILL), the test prints how long the stop took and its waits
are hang guards (a loaded machine stretched the stop past the 5 s this test once asserted).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from benchmarks._common import free_port

#: Hang guards, not speed targets: how long the signalled process may take to exit, and then its killed
#: descendants to be gone (a SIGKILLed process ends when the kernel next runs it).
EXIT_HANG_GUARD_SECONDS = 120.0
GONE_HANG_GUARD_SECONDS = 30.0


def _stat(pid: int) -> tuple[str, int, int, str] | None:
    """(state, parent pid, process group, start time) of a process, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2]), fields[19]


def descendants(root: int) -> dict[int, str]:
    """pid -> start time of every live descendant of ``root`` (and ``root`` itself)."""
    parents: dict[int, int] = {}
    starts: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found is not None and found[0] != "Z":
                parents[int(entry.name)], starts[int(entry.name)] = found[1], found[3]
    out = {root: starts[root]} if root in starts else {}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in out and pid not in out:
                out[pid] = starts[pid]
                changed = True
    return out


def still_running(processes: dict[int, str]) -> list[str]:
    """The processes of ``processes`` that still run (the same pid with the same start time, not a zombie)."""
    left = []
    for pid, start in processes.items():
        found = _stat(pid)
        if found is not None and found[0] != "Z" and found[3] == start:
            left.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120])
    return left


def start_ui(tmp_path: Path, via_make: bool) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    cmd = [sys.executable, "-m", "minimax_dagster.demo", "--ui", "--port", str(port), "--simulator-port", "0"]
    if via_make:  # make runs the recipe as its child and passes SIGTERM on, as `make ui` does
        makefile = tmp_path / "Makefile"
        makefile.write_text("ui:\n\t" + " ".join(cmd) + "\n")
        cmd = ["make", "-s", "-f", str(makefile), "ui"]
    log = tmp_path / "ui.log"
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 240
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as response:
                response.read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the UI never answered on port {port}:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
    return proc, port, log


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C", "SIGTERM to make"])
def test_the_ui_stops_with_every_process_it_started(tmp_path: Path, how: str) -> None:
    proc, _port, log = start_ui(tmp_path, via_make=how == "SIGTERM to make")
    processes = descendants(proc.pid)
    try:
        commands = " ".join(still_running(processes))
        assert "dagster_webserver" in commands and "dagster._daemon" in commands, commands
        if how == "Ctrl-C":
            os.killpg(proc.pid, signal.SIGINT)  # the terminal signals its whole foreground group
        else:
            os.kill(proc.pid, signal.SIGTERM)
        signalled = time.monotonic()
        proc.wait(timeout=EXIT_HANG_GUARD_SECONDS)
        exited = time.monotonic() - signalled
        deadline = time.monotonic() + GONE_HANG_GUARD_SECONDS
        while (still_running(processes) or _group_alive(proc)) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = still_running(processes)
        assert not left, f"still running after {how} and its exit: {left}\n{log.read_text()[-2000:]}"
        assert not _group_alive(proc)
        assert "stopping the Dagster UI" in log.read_text()
        print(f"{how}: exited {exited:.1f} s after the signal, {len(processes)} processes gone")
    finally:
        for pid, start in processes.items():
            found = _stat(pid)
            if found is not None and found[3] == start:
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _group_alive(proc: subprocess.Popen[bytes]) -> bool:
    proc.poll()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found is not None and found[0] != "Z" and found[2] == proc.pid:
                return True
    return False
