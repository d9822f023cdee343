"""Helpers for the supervisor tests: a real ``python -m pronghorn`` in its own session, its log,
plain HTTP requests, and bounded waits. Every process started here is killed in ``stop()``."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[2] / "src"

# A small app that says who served it. /slow?S sleeps S seconds in the loop; /block?S blocks the
# loop (a hung worker); /exit kills its worker. Lifespan startup fails when the FAIL_STARTUP
# variable is set and takes SLOW_STARTUP seconds.
APP = textwrap.dedent(
    """
    import asyncio, os, time

    VERSION = "v1"

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await asyncio.sleep(float(os.environ.get("SLOW_STARTUP", 0)))
                    if os.environ.get("FAIL_STARTUP"):
                        await send({"type": "lifespan.startup.failed", "message": "no database"})
                    else:
                        await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        seconds = float(scope["query_string"] or 0)
        if scope["path"] == "/slow":
            await asyncio.sleep(seconds)
        elif scope["path"] == "/block":
            time.sleep(seconds)
        elif scope["path"] == "/exit":
            os._exit(1)
        body = f"{VERSION} {os.getpid()}".encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})
    """
)


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def reaped(pid: int) -> bool:
    """True once ``pid`` is gone entirely: not even a zombie waiting for its parent."""
    return not os.path.exists(f"/proc/{pid}")


def get(port: int, path: str = "/", timeout: float = 5.0) -> tuple[int, str]:
    """One request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def served_by(body: str) -> int:
    return int(body.split()[1])


class Pronghorn:
    """``python -m pronghorn ARGS`` run from ``cwd``, logging into a file."""

    def __init__(
        self,
        cwd: Path,
        *args: str,
        env: dict[str, str] | None = None,
        pass_fds: tuple[int, ...] = (),
        argv: list[str] | None = None,
    ) -> None:
        self.log_path = cwd / f"pronghorn-{time.monotonic_ns()}.log"
        inherited = {k: v for k, v in os.environ.items() if k != "WEB_CONCURRENCY"}
        environment = {**inherited, **(env or {})}
        environment["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(SRC), environment.get("PYTHONPATH", "")) if p
        )
        command = argv or [sys.executable, "-m", "pronghorn"]
        self._log = self.log_path.open("wb")
        # Its own session: signals from the terminal running pytest do not reach it, and stop()
        # can kill everything it started, even workers orphaned by a failing test.
        self.process = subprocess.Popen(
            [*command, *args],
            cwd=cwd,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=pass_fds,
        )
        self.pid = self.process.pid

    # ---------------------------------------------------------------- observation
    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 10.0, count: int = 1) -> list[str]:
        def found() -> list[str]:
            matches = re.findall(pattern, self.log)
            return matches if len(matches) >= count else []

        try:
            result: list[str] = wait_for(found, timeout, f"{pattern!r} in the log")
        except AssertionError:
            raise AssertionError(f"{pattern!r} not in the log:\n{self.log}") from None
        return result

    def port(self, timeout: float = 10.0) -> int:
        return int(self.wait_log(r"Listening on http://127\.0\.0\.1:(\d+)", timeout)[0])

    def worker_pids(self) -> list[int]:
        started = [int(p) for p in re.findall(r"Started worker process \[(\d+)\]", self.log)]
        return [pid for pid in started if alive(pid)]

    def wait_serving(self, workers: int, timeout: float = 15.0) -> None:
        self.wait_log(r"Pronghorn running on", timeout, count=workers)

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"pronghorn did not exit in {timeout} s:\n{self.log}") from None

    # ---------------------------------------------------------------- cleanup
    def stop(self) -> None:
        """Kill the session this test started, workers included, and reap the supervisor."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        self._log.close()


def write_app(directory: Path, version: str = "v1", name: str = "app.py") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(APP.replace('VERSION = "v1"', f'VERSION = "{version}"'))
    return path
