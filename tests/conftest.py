"""Shared fixtures: a real pronghorn server on 127.0.0.1:0 in a background thread.

``run_server(app, **settings)`` is a context manager yielding a :class:`RunningServer`; the
``serve`` fixture wraps it and stops every server it started. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from pronghorn.config import Config
from pronghorn.server.server import Server

START_TIMEOUT = 10.0


@dataclass
class RunningServer:
    server: Server
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    host: str = "127.0.0.1"
    port: int = 0
    scheme: str = "http"
    errors: list[BaseException] = field(default_factory=list)
    sockets: list[socket.socket] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.scheme == 'https' else 'ws'}://{self.host}:{self.port}"

    def call(self, func: Callable[[], Any]) -> Any:
        """Run ``func`` on the server's loop and return its result (bounded)."""
        future: Any = asyncio.run_coroutine_threadsafe(_call(func), self.loop)
        return future.result(timeout=5)

    def connect(self, timeout: float = 5.0) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        self.sockets.append(sock)  # closed when the server stops
        return sock

    def stop(self, timeout: float = 15.0) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.server.request_shutdown)
            self.thread.join(timeout)
        if self.thread.is_alive():  # pragma: no cover - a hang is a test failure
            raise AssertionError("server did not stop in time")


async def _call(func: Callable[[], Any]) -> Any:
    return func()


@contextlib.contextmanager
def run_server(
    app: Any, *, before_serving: Callable[[], object] | None = None, **settings: Any
) -> Iterator[RunningServer]:
    """Serve ``app``; ``before_serving`` runs first in the server thread's context."""
    settings.setdefault("port", 0)
    settings.setdefault("host", "127.0.0.1")
    settings.setdefault("log_level", "warning")
    settings.setdefault("lifespan", "off")  # test apps are bare; lifespan tests opt in
    config = Config(**settings)
    server = Server(config, app)
    loop = asyncio.new_event_loop() if config.loop == "asyncio" else _new_loop(config.loop)
    errors: list[BaseException] = []

    def target() -> None:
        asyncio.set_event_loop(loop)
        if before_serving is not None:
            before_serving()
        try:
            loop.run_until_complete(server.serve())
        except BaseException as exc:  # reported to the test
            errors.append(exc)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=target, name="pronghorn-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if errors or not thread.is_alive():
            thread.join(1)
            raise RuntimeError(f"server failed to start: {errors!r}")
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start in time")
        time.sleep(0.01)
    port = server.sockets[0].getsockname()[1] if server.sockets else 0
    running = RunningServer(
        server,
        loop,
        thread,
        port=port,
        scheme="https" if config.ssl_certfile else "http",
        errors=errors,
    )
    try:
        yield running
    finally:
        try:
            running.stop()
        finally:
            for sock in running.sockets:
                sock.close()


def _new_loop(choice: str) -> asyncio.AbstractEventLoop:
    from pronghorn.server.server import new_event_loop

    return new_event_loop(choice)


@pytest.fixture
def serve() -> Iterator[Callable[..., RunningServer]]:
    """``serve(app, **settings)`` starts a server that is stopped after the test."""
    stack = contextlib.ExitStack()

    def start(app: Any, **settings: Any) -> RunningServer:
        return stack.enter_context(run_server(app, **settings))

    with stack:
        yield start


def recv_until_closed(sock: socket.socket, timeout: float = 5.0, limit: int = 1 << 24) -> bytes:
    """Everything the server sends until it closes the connection (bounded)."""
    sock.settimeout(timeout)
    chunks = []
    total = 0
    deadline = time.monotonic() + timeout
    while total < limit and time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not data:
            break
        chunks.append(data)
        total += len(data)
    return b"".join(chunks)


def recv_response(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """One HTTP/1.1 response with Content-Length or chunked framing (bounded)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk or time.monotonic() > deadline:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lower = head.lower()
    if b"content-length:" in lower:
        length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
        while len(body) < length and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body
    if b"transfer-encoding: chunked" in lower:
        while not body.endswith(b"0\r\n\r\n") and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return head + b"\r\n\r\n" + body
