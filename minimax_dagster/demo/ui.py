"""``python -m minimax_dagster.demo --ui`` (what ``make ui`` runs): the embedded services and ``dg dev``.

``dg dev`` (Dagster's recommended local UI; the ``demo`` extra installs it) loads the demo code location by
module name, so no file of the repository is needed. Its processes (dg, the webserver, the daemon, the code
servers, any run) form a process group of their own, which this process stops as a whole:

* on SIGTERM (``make`` passes it on), Ctrl-C (SIGINT), SIGHUP, or when the process that started this one dies;
* by sending SIGINT to the whole group (what Ctrl-C in a terminal does to ``dg dev`` run by hand), waiting at
  most :data:`STOP_GRACE_SECONDS`, then SIGKILL to whatever is left: on a busy machine Dagster's code servers
  take 10 s or more to wind down, and a UI that does not stop when told is worse than one stopped abruptly
  (its SQLite storage survives a kill).

>>> dg_dev_command(3000)[1:]
['dev', '-m', 'minimax_dagster.demo.definitions', '-h', '127.0.0.1', '-p', '3000']
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path

from minimax_dagster.demo.services import demo_services

#: The code location the UI loads.
UI_MODULE = "minimax_dagster.demo.definitions"
#: How long the Dagster processes get to stop after SIGINT before they are killed.
STOP_GRACE_SECONDS = 2.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def dg_dev_command(port: int) -> list[str]:
    """``dg dev`` on the demo module, bound to loopback (the ``dg`` beside this interpreter first)."""
    here = Path(sys.executable).parent
    dg = shutil.which("dg", path=os.pathsep.join([str(here), os.environ.get("PATH", "")]))
    if dg is None:
        raise SystemExit("the UI needs dg (dagster-dg-cli): pip install 'minimax-dagster[demo]'")
    return [dg, "dev", "-m", UI_MODULE, "-h", "127.0.0.1", "-p", str(port)]


def run_ui(port: int, generation_seconds: float, simulator_port: int = 8765) -> int:
    """Start the services and ``dg dev`` until a stop signal; returns a process exit code."""
    stop = threading.Event()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    parent = os.getppid()
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").resolve()  # Dagster wants it absolute
    home.mkdir(parents=True, exist_ok=True)
    instance_yaml = resources.files("minimax_dagster.demo").joinpath("dagster.yaml").read_text()
    (home / "dagster.yaml").write_text(instance_yaml)
    # dg dev runs outside the repository (no dg project around it to interpret) and keeps its temporary
    # files (workspace, sockets) in a folder removed at the end, also when its processes had to be killed.
    scratch = Path(tempfile.mkdtemp(prefix="minimax-ui-"))
    services = demo_services(generation_seconds=generation_seconds, simulator_port=simulator_port)
    try:
        services.start()
        env = {**os.environ, **services.env(), "DAGSTER_HOME": str(home), "TMPDIR": str(scratch)}
        print(
            f"services: {services.describe()}\nDagster UI on http://127.0.0.1:{port} (Ctrl-C stops)",
            flush=True,
        )
        ui = subprocess.Popen(dg_dev_command(port), env=env, cwd=scratch, start_new_session=True)
        code = 0
        try:
            while not stop.wait(0.2) and os.getppid() == parent:  # a new parent: ours is gone
                if ui.poll() is not None:
                    code = ui.returncode or 1  # dg dev stopped by itself: say so in the exit code
                    print(f"dg dev exited with {ui.returncode}", file=sys.stderr, flush=True)
                    break
        finally:
            print("stopping the Dagster UI and the services ...", flush=True)
            stopping = threading.Thread(target=services.stop, name="stop-services")
            stopping.start()  # the services are of no use once the UI goes: stop both at once
            killed = stop_group(ui, STOP_GRACE_SECONDS)
            stopping.join()
            if killed:
                print(
                    f"{killed} Dagster process(es) still running after {STOP_GRACE_SECONDS} s: killed",
                    flush=True,
                )
        return code
    finally:
        services.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def exit_at_once(code: int) -> None:
    """Exit with ``code`` without finalizing the interpreter (a second or more for Dagster's module graph on a
    busy machine): everything this process started is stopped by then, so nothing is left to clean."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def stop_group(leader: subprocess.Popen[bytes], grace: float) -> int:
    """SIGINT the leader's process group, wait ``grace`` seconds for it to empty, SIGKILL what is left.

    Returns how many processes had to be killed. The leader is reaped.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(leader.pid, signal.SIGINT)
    deadline = time.monotonic() + grace
    while _group_alive(leader) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _group_members(leader.pid)
    if left:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        leader.wait(timeout=5)
    return len(left)


def _group_alive(leader: subprocess.Popen[bytes]) -> bool:
    leader.poll()  # reap the leader, so that a finished one does not count as a member
    return bool(_group_members(leader.pid))


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc (Linux); elsewhere the group's existence."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members
