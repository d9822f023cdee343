"""WSGI (PEP 3333) apps served through the ASGI interface, on a bounded thread pool.

The app runs in one of ``--wsgi-threads`` threads; the event loop never blocks on it.

- Request body: ``wsgi.input`` pulls one ASGI ``http.request`` message at a time through
  :meth:`_Bridge.call` (run ``receive()`` on the loop, wait in the thread), only when the app
  reads past what it already has, so a large upload is never buffered whole.
- Response: the thread hands each chunk to an :class:`_Outbox` and goes on producing, while the
  request's ASGI task sends them in order. The thread waits only while more than
  ``OUTBOX_LIMIT`` body bytes are handed over but not yet taken by the connection, so a slow
  client pauses the app (backpressure) instead of growing memory, and a fast response costs no
  thread round trip beyond the pool's own (each costs two thread switches, about 50 µs).

Lifespan is answered here (a WSGI app has none) and shuts the pool down; WebSocket requests are
refused with the ASGI close-before-accept (HTTP 403).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from pronghorn.errors import AppProtocolError, ClientDisconnected
from pronghorn.importer import Message, Receive, Scope, Send

T = TypeVar("T")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], None]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: How often a worker thread waiting on the loop checks that the loop still runs (seconds).
_LOOP_CHECK = 5.0


class _Bridge:
    """A worker thread's handle on its request's ASGI ``receive``."""

    __slots__ = ("loop", "receive")

    def __init__(self, loop: asyncio.AbstractEventLoop, receive: Receive) -> None:
        self.loop = loop
        self.receive = receive

    def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run ``make()`` on the loop and wait for its result in this (worker) thread."""
        future = asyncio.run_coroutine_threadsafe(_await(make), self.loop)
        while True:
            try:
                return future.result(timeout=_LOOP_CHECK)
            except TimeoutError:
                # A slow client legitimately keeps us waiting; a stopped loop never answers,
                # and a thread stuck here would hang interpreter exit.
                if not self.loop.is_running():
                    future.cancel()
                    raise ClientDisconnected("the server stopped") from None


async def _await(make: Callable[[], Awaitable[T]]) -> T:
    # The awaitable is created on the loop's thread: some receive()/send() implementations
    # touch loop state as soon as they are called.
    return await make()


#: Body bytes a worker thread may hand over before it waits for the connection to take them.
OUTBOX_LIMIT = 256 * 1024


class _Outbox:
    """Response messages from a worker thread to the request's ASGI task, in order.

    ``put`` (worker thread) queues messages with one ``call_soon_threadsafe`` and returns at
    once unless too many body bytes are pending; ``pump`` (the ASGI task, on the loop) sends
    them. When sending fails (the client left, the task was cancelled) the failure is recorded
    and the thread's next ``put`` raises it, which ends the app's iteration.
    """

    __slots__ = ("_done", "_failure", "_loop", "_pending", "_queued", "_room", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: deque[Message] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._done = False
        self._room = threading.Condition()
        self._queued = 0  # body bytes put but not yet sent
        self._failure: BaseException | None = None

    # ------------------------------------------------------------------ worker thread
    def put(self, messages: list[Message], size: int) -> None:
        room = self._room
        with room:
            if self._failure is not None:
                raise self._failure
            self._queued += size
        self._loop.call_soon_threadsafe(self._deliver, messages)
        with room:
            while self._queued > OUTBOX_LIMIT and self._failure is None:
                # A slow client legitimately keeps us waiting; a stopped loop never drains,
                # and a thread stuck here would hang interpreter exit.
                if not room.wait(_LOOP_CHECK) and not self._loop.is_running():
                    self._failure = ClientDisconnected("the server stopped")
            if self._failure is not None:
                raise self._failure

    # ------------------------------------------------------------------ event loop
    def _deliver(self, messages: list[Message]) -> None:
        self._pending.extend(messages)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _finished(self, work: asyncio.Future[None]) -> None:
        # Runs after every _deliver the thread scheduled: both come through the loop's
        # thread-safe queue, in the order the thread made them.
        if not work.cancelled():
            work.exception()  # retrieved here; whoever awaits ``work`` still gets it
        self._done = True
        self._wake()

    async def pump(self, send: Send, work: asyncio.Future[None]) -> None:
        """Send what the thread puts until its ``work`` is finished and everything is sent."""
        work.add_done_callback(self._finished)
        pending = self._pending
        try:
            while True:
                while pending:
                    message = pending.popleft()
                    await send(message)
                    size = len(message.get("body", b""))
                    if size:
                        with self._room:
                            self._queued -= size
                            self._room.notify()
                if self._done:
                    return
                self._waiter = self._loop.create_future()
                await self._waiter
        except BaseException as exc:
            with self._room:
                self._failure = (
                    exc
                    if isinstance(exc, ClientDisconnected)
                    else ClientDisconnected("the response could not be sent")
                )
                self._room.notify()
            raise


class WSGIInput:
    """``wsgi.input``: reads the request body from ASGI ``receive()`` as the app asks for it."""

    __slots__ = ("_bridge", "_buffer", "_more")

    def __init__(self, bridge: _Bridge) -> None:
        self._bridge = bridge
        self._buffer = bytearray()
        self._more = True

    def _fill(self) -> bool:
        """Append the next body chunk to the buffer; False once the body has ended."""
        if not self._more:
            return False
        message = self._bridge.call(self._bridge.receive)
        if message["type"] == "http.disconnect":
            self._more = False
            raise ClientDisconnected("the client disconnected while sending the body")
        self._buffer += message.get("body", b"")
        self._more = bool(message.get("more_body", False))
        return True

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(len(self._buffer))
        while len(self._buffer) < size and self._fill():
            pass
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        limit = -1 if size is None else size
        start = 0
        while True:
            newline = self._buffer.find(b"\n", start)
            if newline >= 0:
                end = newline + 1
                break
            if 0 <= limit <= len(self._buffer):
                end = limit
                break
            start = len(self._buffer)
            if not self._fill():
                end = len(self._buffer)
                break
        return self._take(end if limit < 0 else min(end, limit))

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> WSGIInput:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class _Response:
    """``start_response`` and the response half of one request, used in the worker thread."""

    __slots__ = ("_outbox", "headers", "headers_sent", "status")

    def __init__(self, outbox: _Outbox) -> None:
        self._outbox = outbox
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_sent = False

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            if self.headers_sent:
                # PEP 3333: too late to change the response; re-raise the app's error.
                raise exc_info[1].with_traceback(exc_info[2])
        elif self.status is not None:
            raise AppProtocolError("start_response() called twice without exc_info")
        code = status.split(" ", 1)[0]
        if len(code) != 3 or not code.isdigit():
            raise AppProtocolError(f"WSGI status must start with a 3-digit code, not {status!r}")
        self.status = int(code)
        try:
            self.headers = [
                (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers
            ]
        except (AttributeError, UnicodeEncodeError) as exc:
            raise AppProtocolError(f"WSGI headers must be latin-1 str pairs: {exc}") from None
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write()`` callable returned by start_response."""
        if data:
            self.send(data, more=True)

    def send(self, data: bytes, *, more: bool) -> None:
        """Hand ``data`` to the loop, led by the response head the first time."""
        if not isinstance(data, bytes):
            raise AppProtocolError(f"a WSGI app must produce bytes, not {type(data).__name__}")
        if self.status is None:
            raise AppProtocolError("the WSGI app did not call start_response() before its body")
        messages: list[Message] = []
        if not self.headers_sent:
            self.headers_sent = True
            messages.append(
                {"type": "http.response.start", "status": self.status, "headers": self.headers}
            )
        messages.append({"type": "http.response.body", "body": data, "more_body": more})
        self._outbox.put(messages, len(data))


def _run_app(app: WSGIApp, environ: dict[str, Any], response: _Response) -> None:
    """Call the app and stream its iterable; runs in a worker thread."""
    iterable = app(environ, response.start_response)
    try:
        if isinstance(iterable, list | tuple):
            # A known length: the last chunk also ends the response.
            chunks = [chunk for chunk in iterable if chunk]
            for chunk in chunks[:-1]:
                response.send(chunk, more=True)
            response.send(chunks[-1] if chunks else b"", more=False)
        else:
            for chunk in iterable:
                if chunk:
                    response.send(chunk, more=True)
            response.send(b"", more=False)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()


def _latin1(text: str) -> str:
    """PEP 3333 'bytes as str': the UTF-8 bytes of a decoded path, as latin-1 characters."""
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def build_environ(scope: Scope, body: WSGIInput) -> dict[str, Any]:
    """The PEP 3333 environ for one ASGI HTTP scope."""
    root_path: str = scope.get("root_path", "")
    script_name = _latin1(root_path.rstrip("/"))
    raw_path: bytes | None = scope.get("raw_path")
    # PEP 3333 wants the path's bytes; raw_path has them exactly (the ASGI path has any
    # bytes that are not UTF-8 replaced).
    path = unquote_to_bytes(raw_path).decode("latin-1") if raw_path else _latin1(scope["path"])
    if script_name and (path == script_name or path.startswith(script_name + "/")):
        # The ASGI path includes root_path; WSGI splits it into SCRIPT_NAME + PATH_INFO.
        path = path[len(script_name) :]
    scheme = scope.get("scheme", "http")
    server = scope.get("server") or ("localhost", None)
    server_port = server[1] if server[1] is not None else (443 if scheme == "https" else 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server_port),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": body,
        "wsgi.input_terminated": True,  # read() returns b"" at the end, even when chunked
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
        if client[1] is not None:
            environ["REMOTE_PORT"] = str(client[1])
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1")
        if "_" in name:
            # X-Forwarded_For and X-Forwarded-For would both become HTTP_X_FORWARDED_FOR;
            # dropping underscore names (as nginx does) stops one spoofing the other.
            continue
        value = raw_value.decode("latin-1")
        if name == "content-type":
            key = "CONTENT_TYPE"
        elif name == "content-length":
            key = "CONTENT_LENGTH"
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
        if key in environ:
            # Repeated fields join with ", " (RFC 9110 5.3), except cookies, joined with "; "
            # (RFC 6265 5.4), which HTTP/2 sends one per field.
            separator = "; " if key == "HTTP_COOKIE" else ", "
            value = environ[key] + separator + value
        environ[key] = value
    return environ


class WSGIAdapter:
    """An ASGI 3 app that runs a WSGI app on a bounded pool of threads."""

    __slots__ = ("_executor", "app", "threads")

    def __init__(self, app: WSGIApp, threads: int = 16) -> None:
        self.app = app
        self.threads = threads
        self._executor: ThreadPoolExecutor | None = None

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.threads, thread_name_prefix="pronghorn-wsgi"
            )
        return self._executor

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            loop = asyncio.get_running_loop()
            outbox = _Outbox(loop)
            environ = build_environ(scope, WSGIInput(_Bridge(loop, receive)))
            work = loop.run_in_executor(
                self._pool(), _run_app, self.app, environ, _Response(outbox)
            )
            try:
                await outbox.pump(send, work)
            except ClientDisconnected:
                # The thread stops at its next put(); wait for it, so the request still owns it.
                await asyncio.wait([work])
                raise
            await work  # the app's own exception, if it raised
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1000})
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
