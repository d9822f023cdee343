"""One worker process as the supervisor sees it: how it is started, what it last said, its state.

A worker is a fresh interpreter (``python -m pronghorn.supervisor.worker_main``), not a fork: the
supervisor never imports the app or the server, so a reload always imports code from disk and a
worker never inherits the supervisor's threads or locks. The listening sockets and the control
channel are passed as inherited descriptors; the orders say which numbers they have.

State changes only here, in :meth:`Worker.mark_ready`, :meth:`Worker.stop` and :meth:`Worker.kill`:
STARTING -> SERVING once the worker says ``ready``; either -> STOPPING once we ask it to stop.
"""

from __future__ import annotations

import contextlib
import enum
import os
import signal
import site
import socket
import subprocess
import sys
from pathlib import Path

from pronghorn.config import Config
from pronghorn.supervisor import channel

# Variables meant for the supervisor alone: systemd talks to one process, not to every worker.
_PARENT_ONLY_VARIABLES = ("NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


class WorkerState(enum.Enum):
    STARTING = "starting"
    SERVING = "serving"
    STOPPING = "stopping"


class Worker:
    __slots__ = (
        "_reader",
        "asked_to_stop",
        "control",
        "killed",
        "last_ping",
        "ping_outstanding",
        "process",
        "ready_at",
        "recycling",
        "replaces",
        "rss",
        "slot",
        "started_at",
        "state",
        "stop_deadline",
    )

    def __init__(
        self, process: subprocess.Popen[bytes], control: socket.socket, slot: int, now: float
    ) -> None:
        self.process = process
        self.control = control
        self.slot = slot
        self.state = WorkerState.STARTING
        self.started_at = now
        self.ready_at: float | None = None
        self.last_ping = now
        self.ping_outstanding = False
        self.rss = 0
        self.stop_deadline: float | None = None
        self.replaces: Worker | None = None  # the worker this one takes over from once it serves
        self.recycling = False  # already queued for a graceful replacement
        self.asked_to_stop = False
        self.killed = ""  # why we sent SIGKILL, for the exit log line
        self._reader = channel.LineReader(control)

    @property
    def pid(self) -> int:
        return self.process.pid

    def fileno(self) -> int:
        return self.control.fileno()

    def read_lines(self) -> list[str] | None:
        return self._reader.read_lines()

    def mark_ready(self, now: float) -> None:
        if self.state is WorkerState.STARTING:
            self.state = WorkerState.SERVING
            self.ready_at = now
            self.last_ping = now

    def ping(self, now: float) -> None:
        self.last_ping = now
        self.ping_outstanding = True
        # Gone or not reading: its exit or the health deadline will tell.
        with contextlib.suppress(OSError):
            self.control.send(channel.PING)

    def answered(self, rss: int) -> None:
        self.ping_outstanding = False
        self.rss = rss

    def stop(self, deadline: float) -> None:
        """Ask for a graceful stop; SIGKILL follows at ``deadline``."""
        if self.asked_to_stop:
            return
        self.asked_to_stop = True
        self.state = WorkerState.STOPPING
        self.stop_deadline = deadline
        self._signal(signal.SIGTERM)

    def kill(self, reason: str) -> None:
        self.killed = self.killed or reason
        self.state = WorkerState.STOPPING
        self._signal(signal.SIGKILL)

    def poll(self) -> int | None:
        return self.process.poll()

    def close(self) -> None:
        self.control.close()

    def _signal(self, signum: int) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)


def spawn(config: Config, sockets: list[socket.socket], slot: int, now: float) -> Worker:
    """Start a worker serving ``sockets`` and send it its orders."""
    ours, theirs = socket.socketpair()
    fds = [sock.fileno() for sock in sockets]
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pronghorn.supervisor.worker_main",
                str(theirs.fileno()),
            ],
            pass_fds=[theirs.fileno(), *fds],
            env=worker_environment(),
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    worker = Worker(process, ours, slot, now)
    orders = channel.Orders(config, fds, list(sys.path))
    ours.sendall(orders.encode())
    ours.setblocking(False)
    return worker


def worker_environment() -> dict[str, str]:
    """The supervisor's environment, minus systemd's variables, plus a path to this package when
    it is importable here only through a path the child would not have."""
    env = {k: v for k, v in os.environ.items() if k not in _PARENT_ONLY_VARIABLES}
    root = str(Path(__file__).resolve().parents[2])
    installed = {
        str(Path(p).resolve()) for p in (*site.getsitepackages(), site.getusersitepackages())
    }
    if root not in installed:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env
