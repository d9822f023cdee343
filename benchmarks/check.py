"""Correctness checks run against each server before it is timed.

A server that answers a workload wrongly (status, body, framing) is reported as failing it, not
timed: a fast wrong answer is no result.
"""

from __future__ import annotations

import http.client
import io
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

HELLO = b"Hello, world!"
ROOT = Path(__file__).resolve().parent.parent


class CheckFailed(Exception):
    pass


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def _request(
    port: int, method: str = "GET", path: str = "/", body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"content-type": "application/octet-stream"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        connection.close()


def hello(port: int) -> None:
    status, _, body = _request(port)
    _expect(status == 200, f"status {status}")
    _expect(body == HELLO, f"body {body[:40]!r}")


def hello_twice_keep_alive(port: int) -> None:
    """Two requests on one connection: keep-alive must work for every wrk workload."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(2):
            connection.request("GET", "/")
            response = connection.getresponse()
            body = response.read()
            _expect(response.status == 200 and body == HELLO, f"{response.status} {body[:40]!r}")
            _expect(not response.will_close, "connection not kept alive")
    finally:
        connection.close()


class _SharedFile:
    """One buffered reader shared by successive responses; closing a response keeps it open."""

    def __init__(self, file: io.BufferedReader) -> None:
        self._file = file

    def __getattr__(self, name: str) -> object:
        return getattr(self._file, name)

    def close(self) -> None:
        pass


class _FileSocket:
    """What ``HTTPResponse`` wants of a socket: ``makefile``, here the shared reader."""

    def __init__(self, file: io.BufferedReader) -> None:
        self._file = _SharedFile(file)

    def makefile(self, mode: str) -> _SharedFile:
        return self._file


def pipelined(port: int, depth: int = 16) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        sock.sendall(request * depth)
        source = _FileSocket(sock.makefile("rb"))
        for index in range(depth):
            response = http.client.HTTPResponse(source)  # type: ignore[arg-type]
            response.begin()
            body = response.read()
            _expect(response.status == 200, f"response {index}: status {response.status}")
            _expect(body == HELLO, f"response {index}: body {body[:40]!r}")


def body_of(size: int, fill: bytes) -> Callable[[int], None]:
    def check(port: int) -> None:
        status, _, body = _request(port)
        _expect(status == 200, f"status {status}")
        _expect(len(body) == size, f"body of {len(body)} bytes, not {size}")
        _expect(body == fill * size, "body content differs")

    return check


def upload(port: int, size: int = 1024 * 1024) -> None:
    status, _, body = _request(port, "POST", "/", b"z" * size)
    _expect(status == 200, f"status {status}")
    _expect(body == b"%d" % size, f"server counted {body[:40]!r}, sent {size}")


def websocket(port: int, size: int, binary: bool) -> None:
    command = [sys.executable, "-m", "benchmarks.wsload", "--port", str(port), "--check"]
    command += ["--connections", "2", "--size", str(size)] + (["--binary"] if binary else [])
    completed = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    _expect(completed.returncode == 0, f"echo check: {completed.stdout.strip()[-300:]}")
