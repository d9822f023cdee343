"""What the supervisor and a worker say to each other, and how a worker's exit status reads.

Each worker gets one end of a UNIX socket pair. The supervisor writes the worker's orders first
(one JSON line: the settings with this worker's own request limit, the numbers of the inherited
listening sockets, the supervisor's ``sys.path``), then a ``ping`` line now and then. The worker
answers ``ready`` once its server serves and ``pong <rss bytes>`` to each ping, both from its event
loop, so a worker whose loop is blocked stops answering; it says ``draining`` when its server
starts a graceful shutdown by itself (the request limit). End of file on either side means the
other is gone.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import socket
import sys
from dataclasses import dataclass
from typing import Any

from pronghorn.config import Config

# Exit statuses of a worker process, those of a server in one process (the CLI's): 1 it
# crashed or could not start (the app did not import, a TLS file is missing), 3 the app
# failed its lifespan startup; 75 is EX_TEMPFAIL from sysexits.h: "try again".
EXIT_OK = 0
EXIT_CRASHED = 1
EXIT_LIFESPAN_FAILED = 3
EXIT_RECYCLE = 75

PING_LINE = "ping"
PING = PING_LINE.encode() + b"\n"
READY = "ready"
PONG = "pong"
DRAINING = "draining"


@dataclass(frozen=True, slots=True)
class Orders:
    """Everything a worker needs beyond its inherited descriptors."""

    config: Config
    socket_fds: list[int]
    sys_path: list[str]

    def encode(self) -> bytes:
        payload = {
            "config": dataclasses.asdict(self.config),
            "socket_fds": self.socket_fds,
            "sys_path": self.sys_path,
        }
        return json.dumps(payload).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> Orders:
        payload: dict[str, Any] = json.loads(line)
        return cls(Config(**payload["config"]), list(payload["socket_fds"]), payload["sys_path"])


def read_orders(control: socket.socket) -> Orders:
    """Block until the first line arrives; the worker has nothing else to do before it."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = control.recv(65536)
        if not chunk:
            raise ConnectionError("the supervisor closed the control channel before the orders")
        data += chunk
    return Orders.decode(data)


def pong(rss: int) -> bytes:
    return f"{PONG} {rss}\n".encode()


def ready() -> bytes:
    return f"{READY}\n".encode()


def draining() -> bytes:
    return f"{DRAINING}\n".encode()


def resident_memory() -> int:
    """This process's resident set size in bytes (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes there, KiB elsewhere


class LineReader:
    """Splits what arrives on a non-blocking channel into lines; None once the peer is gone."""

    __slots__ = ("_buffer", "_sock")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    def read_lines(self) -> list[str] | None:
        try:
            chunk = self._sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            return None
        if not chunk:
            return None
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [line.decode("ascii", "replace") for line in lines]
