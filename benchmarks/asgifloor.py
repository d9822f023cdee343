"""The ASGI floor: the least a server can do around an ASGI app, with a Task per request.

The raw reference answers without running any app, so it bounds the server alone. This one
bounds a server *with* the app: it does not parse (a request head is counted by its blank
line, every scope is a copy of one canned GET ``/``), it adds no header of its own (no Date,
no Server) and enforces no limit or timeout, but it runs the app as our servers must: one
``asyncio`` Task per request, ``receive`` and ``send`` as coroutines, answers of one loop pass
written after the pass (as pronghorn does). A framework workload measured here says how much
of a ratio is the framework's and the Task's, which no server can win back.

It serves only GET requests without a body; requests of one connection run one after
another (pipelined heads wait for their predecessor), so answers keep their order.

    python -m benchmarks.asgifloor --port 8000 --app benchmarks.apps.starlette_hello:app
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from http import HTTPStatus
from typing import Any, cast

from benchmarks.rawref import HeadCounter, run_on_uvloop, stop_on_signals

Message = MutableMapping[str, Any]
App = Callable[
    [dict[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Coroutine[Any, Any, None],
]

REQUEST: Message = {"type": "http.request", "body": b"", "more_body": False}
DISCONNECT: Message = {"type": "http.disconnect"}
STATUS_LINES = {
    status.value: b"HTTP/1.1 %d %s\r\n" % (status.value, status.phrase.encode())
    for status in HTTPStatus
}


def canned_scope(port: int) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", port),
        "client": ("127.0.0.1", 0),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "state": {},
    }


#: Marks a cached head without Content-Length: the length of the body is added per answer.
NO_LENGTH = b"\x00"


@functools.lru_cache(maxsize=256)
def _head(status: int, headers: tuple[tuple[bytes, bytes], ...]) -> bytes:
    """An encoded status line and header block, cached: an app sends the same few heads."""
    lines = [STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status]
    lines += [b"%s: %s\r\n" % (name, value) for name, value in headers]
    head = b"".join(lines)
    has_length = any(name.lower() == b"content-length" for name, _ in headers)
    return head if has_length else head + NO_LENGTH


class TurnWriter:
    """Answers completed in one loop pass, written together once the pass is over."""

    __slots__ = ("_loop", "_pending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: list[tuple[asyncio.Transport, bytes]] = []

    def add(self, transport: asyncio.Transport, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append((transport, data))

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for transport, data in pending:
            if not transport.is_closing():
                transport.write(data)


class FloorProtocol(asyncio.Protocol):
    """Counts request heads and runs the app once per head, one request at a time."""

    __slots__ = ("_app", "_body", "_head", "_heads", "_scope", "_transport", "_waiting", "_writer")

    def __init__(self, app: App, scope: dict[str, Any], writer: TurnWriter) -> None:
        self._app = app
        self._scope = scope
        self._writer = writer
        self._transport: asyncio.Transport | None = None
        self._heads = HeadCounter()
        self._waiting = 0  # heads received, not yet answered (the first one is running)
        self._head = b""
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        count = self._heads.count(data)
        if count:
            idle = self._waiting == 0
            self._waiting += count
            if idle:
                self._start()

    def _start(self) -> None:
        asyncio.Task(self._app(self._scope.copy(), self._receive, self._send))

    async def _receive(self) -> Message:
        return REQUEST if self._transport is not None else DISCONNECT

    async def _send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._head = _head(message["status"], tuple(message.get("headers", ())))
            self._body = []
            return
        self._body.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(self._body)
        if self._head.endswith(NO_LENGTH):
            self._head = self._head[: -len(NO_LENGTH)] + b"content-length: %d\r\n" % len(body)
        if self._transport is None:
            return  # the client is gone: the heads it left waiting are not run
        self._writer.add(self._transport, self._head + b"\r\n" + body)
        self._waiting -= 1
        if self._waiting:
            self._start()


async def _lifespan(app: App, started: asyncio.Future[None], stop: asyncio.Future[None]) -> None:
    """Startup and shutdown for apps that want them; an app that rejects lifespan is fine."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    inbox.put_nowait({"type": "lifespan.startup"})

    async def send(message: Message) -> None:
        if message["type"] == "lifespan.startup.failed":
            started.set_exception(SystemExit(f"asgifloor: startup failed: {message}"))
        elif message["type"] == "lifespan.startup.complete":
            started.set_result(None)

    async def receive() -> Message:
        return await inbox.get()

    async def shutdown_on_stop() -> None:
        await stop
        inbox.put_nowait({"type": "lifespan.shutdown"})

    waiter = asyncio.ensure_future(shutdown_on_stop())
    with contextlib.suppress(Exception):
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    waiter.cancel()
    if not started.done():  # the app has no lifespan: serve all the same
        started.set_result(None)


async def serve(host: str, port: int, app: App) -> None:
    loop = asyncio.get_running_loop()
    stop = stop_on_signals(loop)
    started: asyncio.Future[None] = loop.create_future()
    lifespan = asyncio.ensure_future(_lifespan(app, started, stop))
    await started
    scope = canned_scope(port)
    writer = TurnWriter(loop)
    server = await loop.create_server(
        lambda: FloorProtocol(app, scope, writer), host, port, backlog=4096
    )
    await stop
    server.close()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(lifespan, 5)


def load(target: str) -> App:
    module, _, attribute = target.partition(":")
    return cast(App, getattr(importlib.import_module(module), attribute or "app"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--app", default="benchmarks.apps.hello:app", help="module:attribute")
    args = parser.parse_args(argv)
    run_on_uvloop("asgifloor", lambda: serve(args.host, args.port, load(args.app)))


if __name__ == "__main__":
    main()
