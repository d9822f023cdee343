"""The servers under test: how each is started, and a handle to stop exactly what we started.

Every server runs one worker pinned to the server core (``taskset``), in its own process group
(``start_new_session``), with stdout and stderr sent to a log file. Stopping signals that group
only, by its id: never a name match.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.procstat import group_cpu_seconds, group_rss_kib

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
#: pronghorn serves its built-in demo when given no app; the peers are given the same app.
DEMO_APP = "pronghorn.demo:app"


@dataclass(frozen=True, slots=True)
class Launch:
    """What a workload asks of a server: the ASGI app, the raw reference shape, logging."""

    app: str  # "module:attr"
    shape: str | None  # rawref shape, None when the raw reference has no answer for it
    access_log: bool = False
    #: The ASGI floor can serve it (GET requests without a body, answers framed by length).
    floor: bool = False


@dataclass(frozen=True, slots=True)
class ServerSpec:
    name: str
    title: str
    #: Distributions whose versions the report records.
    packages: tuple[str, ...]
    command: Callable[[Launch, int], list[str] | None]
    #: A directory to import from first (the pure-Python build of pronghorn).
    import_first: Callable[[], Path] | None = None


def _pronghorn(launch: Launch, port: int) -> list[str]:
    command = [PY, "-m", "pronghorn"]
    if launch.app != DEMO_APP:
        command.append(launch.app)
    command += ["--host", "127.0.0.1", "--port", str(port)]
    if launch.access_log:
        return [*command, "--log-level", "info"]
    return [*command, "--no-access-log", "--log-level", "warning"]


@functools.cache
def pure_python_build() -> Path:
    """The installed pronghorn's Python sources alone, copied once per run: run from there it
    is the pure build (no compiled module shadows a ``.py``), measured beside the compiled
    one to show what the compile buys."""
    import pronghorn

    target = ROOT / "benchmarks" / "results" / "pure-python"
    shutil.rmtree(target, ignore_errors=True)
    source = Path(pronghorn.__file__).parent
    shutil.copytree(source, target / "pronghorn", ignore=shutil.ignore_patterns("*.so", "*.pyd"))
    return target


def _uvicorn(http: str) -> Callable[[Launch, int], list[str]]:
    def command(launch: Launch, port: int) -> list[str]:
        base = [PY, "-m", "uvicorn", launch.app, "--host", "127.0.0.1", "--port", str(port)]
        base += ["--http", http, "--loop", "uvloop", "--lifespan", "on"]
        if launch.access_log:
            return [*base, "--log-level", "info"]
        return [*base, "--no-access-log", "--log-level", "warning"]

    return command


def _hypercorn(launch: Launch, port: int) -> list[str]:
    bind = f"127.0.0.1:{port}"
    options = ["-b", bind, "-w", "1", "-k", "uvloop", "--log-level", "warning", "--backlog", "4096"]
    return [PY, "-m", "hypercorn", *options, launch.app]


def _daphne(launch: Launch, port: int) -> list[str]:
    return [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "-v", "0", launch.app]


def _granian(launch: Launch, port: int) -> list[str]:
    options = ["--interface", "asgi", "--host", "127.0.0.1", "--port", str(port)]
    options += ["--workers", "1", "--runtime-threads", "1", "--loop", "uvloop"]
    options += ["--no-access-log", "--log-level", "warning", "--backlog", "4096"]
    return [PY, "-m", "granian", *options, launch.app]


def _rawref(launch: Launch, port: int) -> list[str] | None:
    if launch.shape is None:
        return None
    # As a module from the repository root (the runner's working directory): it shares
    # benchmarks/readbuffer.py with the WebSocket load client.
    command = [PY, "-m", "benchmarks.rawref", "--host", "127.0.0.1", "--port", str(port)]
    return [*command, "--shape", launch.shape]


def _asgifloor(launch: Launch, port: int) -> list[str] | None:
    if not launch.floor:
        return None
    command = [PY, "-m", "benchmarks.asgifloor", "--host", "127.0.0.1", "--port", str(port)]
    return [*command, "--app", launch.app]


SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        ServerSpec("pronghorn", "pronghorn", ("pronghorn", "httptools", "uvloop"), _pronghorn),
        ServerSpec(
            "pronghorn-pure",
            "pronghorn (pure-Python build)",
            ("pronghorn",),
            _pronghorn,
            import_first=pure_python_build,
        ),
        ServerSpec(
            "uvicorn",
            "uvicorn (httptools+uvloop)",
            ("uvicorn", "httptools", "uvloop", "websockets"),
            _uvicorn("httptools"),
        ),
        ServerSpec("uvicorn-h11", "uvicorn (h11+uvloop)", ("uvicorn", "h11"), _uvicorn("h11")),
        ServerSpec("hypercorn", "hypercorn (uvloop)", ("hypercorn", "h11", "wsproto"), _hypercorn),
        ServerSpec("daphne", "daphne", ("daphne", "twisted", "autobahn"), _daphne),
        ServerSpec("granian", "granian (ASGI)", ("granian",), _granian),
        ServerSpec("rawref", "raw limit (uvloop Protocol)", ("uvloop",), _rawref),
        ServerSpec("asgifloor", "ASGI floor (app, Task, no parsing)", ("uvloop",), _asgifloor),
    )
}

#: The server every ratio is measured against.
BASELINE = "uvicorn"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerFailed(Exception):
    """The server did not start, died, or answered wrongly; the message says which."""


class RunningServer:
    """One started server: its process group, port and log file."""

    def __init__(
        self, spec: ServerSpec, launch: Launch, core: int | None, log_dir: Path, tag: str = ""
    ) -> None:
        self.spec = spec
        self.launch = launch
        self.port = free_port()
        command = spec.command(launch, self.port)
        if command is None:
            raise ServerFailed("not applicable")
        if core is not None:
            command = ["taskset", "-c", str(core), *command]
        self.command = command
        self.log_path = log_dir / f"{spec.name}{tag}.log"
        env = dict(os.environ)
        first = str(spec.import_first()) if spec.import_first is not None else None
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [first, str(ROOT), env.get("PYTHONPATH")]))
        env.pop("WEB_CONCURRENCY", None)
        self._log = self.log_path.open("wb")
        self.started_at = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, signalled by id below
        )

    @property
    def pgid(self) -> int:
        return self.process.pid

    def wait_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerFailed(f"exited with {self.process.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.005)
        raise ServerFailed(f"not listening after {timeout:.0f} s: {self.log_tail()}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 6) -> str:
        self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def rss_kib(self) -> int:
        return group_rss_kib(self.pgid)

    def cpu_seconds(self) -> float:
        return group_cpu_seconds(self.pgid)

    def stop(self, grace: float = 5.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        # Children (a worker) may outlive the leader: the group goes, by its id.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(grace)
        self._log.close()
