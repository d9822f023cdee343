"""HTTPExchange: one HTTP request served by the app, over any core.

It owns the app task and the app's ``receive``/``send`` coroutines; message rules live in
``asgi/http.py`` (HTTPCycle), framing in the core, waiting and files here.
"""

from __future__ import annotations

import asyncio
import logging
from time import perf_counter
from typing import TYPE_CHECKING, Final

from pronghorn.asgi.http import SEND_DONE, HTTPCycle
from pronghorn.asgi.messages import AppMessage, Message
from pronghorn.asgi.scope import ConnectionInfo, Scope, http_scope
from pronghorn.errors import AppProtocolError, ClientDisconnected
from pronghorn.protocols.events import Body, InformationalResponse, RequestReceived
from pronghorn.protocols.http1 import HTTP1Connection
from pronghorn.protocols.http2 import HTTP2Connection
from pronghorn.server.appcall import run_app
from pronghorn.server.awaits import delegate
from pronghorn.server.http2 import acknowledge, wait_window
from pronghorn.server.tasks import start_task

if TYPE_CHECKING:
    from pronghorn.server.protocol import ConnectionProtocol

logger = logging.getLogger("pronghorn.error")

#: Unflushed response bytes past which send() writes at once instead of at the loop's turn.
FLUSH_THRESHOLD: Final = 65536
FILE_CHUNK: Final = 262144


class HTTPExchange:
    __slots__ = (
        "_flushed_mark",
        "_logged",
        "_waiter",
        "conn",
        "cycle",
        "h2",
        "protocol",
        "request",
        "start_time",
        "stream_id",
        "task",
    )

    def __init__(
        self, protocol: ConnectionProtocol, request: RequestReceived, conn: ConnectionInfo
    ) -> None:
        self.protocol = protocol
        self.request = request
        self.conn = conn
        self.stream_id = request.stream_id
        core = protocol.core
        # (Positional: see HTTPCycle.__init__.)
        if type(core) is HTTP1Connection:
            self.cycle = HTTPCycle(
                request.stream_id, None, request.has_body, request.expect_continue, False, core
            )
        else:
            self.cycle = HTTPCycle(
                request.stream_id,
                core.send,
                request.has_body,
                request.expect_continue,
                "http.response.push" in conn.http_extensions,
            )
        self._waiter: asyncio.Future[None] | None = None
        self._flushed_mark = 0
        self._logged = False
        self.task: asyncio.Task[None] | None = None
        # (Read for the access log only: the clock costs a call per request.)
        self.start_time = perf_counter() if protocol.server.access_log is not None else 0.0
        #: HTTP/2: per-stream flow control replaces pausing the whole connection.
        self.h2 = core if type(core) is HTTP2Connection else None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        server = self.protocol.server
        server.exchanges.add(self)
        # The app's first step runs when the loop next runs its callbacks, back to back with
        # the other requests read in this turn (see server/tasks.py).
        self.task = start_task(
            server.loop, run_app(server.app, self), server.base_context.copy(), server.flusher.turn
        )

    def reject(self, status: int) -> None:
        """Answer without running the app (--limit-concurrency)."""
        body = b"Service Unavailable" if status == 503 else b""
        self.cycle.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"connection", b"close"),
                ],
            }
        )
        self.cycle.send({"type": "http.response.body", "body": body})
        self._response_done()

    def begin(self) -> Scope:
        """The request's scope, as the app's task starts (see server/appcall.py)."""
        return http_scope(self.request, self.conn, self.protocol.server.lifespan_state)

    def end(self, error: BaseException | None) -> bool:
        """Settle what the app left when it returned or raised ``error``: the response it did
        not finish, the log line. True when ``error`` must propagate (KeyboardInterrupt)."""
        protocol = self.protocol
        failed = False
        propagate = False
        if error is None or isinstance(error, ClientDisconnected):
            pass  # (disconnected: the client left while the app was sending; nothing to answer)
        elif isinstance(error, asyncio.CancelledError):
            failed = True  # shutdown deadline: answer what can still be answered
        elif isinstance(error, Exception):
            failed = True
            if self.cycle.disconnected_flag or protocol.closed:
                # Frameworks turn our ClientDisconnected into their own exception (Starlette's
                # StreamingResponse raises ClientDisconnect): a client that left is not an error.
                logger.debug("ASGI application raised after the client left", exc_info=error)
            else:
                logger.error("Exception in ASGI application", exc_info=error)
        else:
            propagate = True
        protocol.server.exchanges.discard(self)
        cycle = self.cycle
        if cycle.send_state is not SEND_DONE:
            if not failed and not cycle.response_started and not cycle.disconnected_flag:
                logger.error("ASGI callable returned without starting response")
            cycle.app_finished(failed)
            if not cycle.disconnected_flag:
                self._response_done()
        if self.h2 is not None:
            # After the cycle's own ending (the 500 or the reset): the core resets a stream
            # whose response is unfinished when told the app is done, which would drop it.
            self.h2.app_finished(self.stream_id)  # frees the stream's slot (rapid reset)
            # Freeing it returns the window of body the app left unread: that
            # WINDOW_UPDATE must go out, or a client still uploading waits for it forever.
            protocol.schedule_flush()
        return propagate

    # ------------------------------------------------------------------ inbound (core events)
    def body_received(self, data: bytes) -> None:
        cycle = self.cycle
        cycle.body_received(data)
        self.protocol.body_arrived()
        self._wake()
        if cycle.buffered > 65536 and self.h2 is None:
            self.protocol.update_reading(cycle.buffered)

    def request_ended(self) -> None:
        self.cycle.request_ended()
        self.protocol.body_arrived()
        self._wake()

    def disconnected(self) -> None:
        self.cycle.disconnected()
        self._wake()

    def input_ended(self) -> None:
        self.cycle.input_ended()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------------ the app's receive/send
    async def receive(self) -> Message:
        cycle = self.cycle
        if cycle.take_continue():
            self.protocol.core.send(InformationalResponse(self.stream_id, 100))
            self.protocol.schedule_flush()
        message = cycle.next_message()
        while message is None:
            self._waiter = waiter = self.protocol.server.loop.create_future()
            if not cycle.request_done:
                self.protocol.wait_body()
            try:
                await delegate(waiter)
            finally:
                self._waiter = None
            message = cycle.next_message()
        if self.h2 is not None:
            acknowledge(self.protocol, self.h2, self.stream_id, message)
        elif self.protocol.reading_paused:
            self.protocol.update_reading(cycle.buffered)
        return message

    async def send(self, message: AppMessage) -> None:
        cycle = self.cycle
        protocol = self.protocol
        if cycle.disconnected_flag or protocol.closed:
            raise ClientDisconnected("the client disconnected")
        try:
            path = cycle.send(message)
        except (TypeError, ValueError) as exc:
            raise AppProtocolError(str(exc)) from exc
        if path is not None:
            await self._send_file(path)
        if cycle.send_state is SEND_DONE:
            if self.h2 is not None and self.h2.is_blocked(self.stream_id):
                # The end of the body still waits for the peer's window: the stream is not done
                # (no keep-alive timer yet), and a window that never opens times out as above.
                try:
                    await wait_window(protocol, self.h2, self.stream_id)
                finally:
                    self._response_done()
                return
            self._response_done()
            return
        if cycle.bytes_sent - self._flushed_mark > FLUSH_THRESHOLD:
            self._flushed_mark = cycle.bytes_sent
            protocol.flush()
            if not protocol.write_paused:
                # Give the loop a turn per flushed chunk. Over TLS a peer's reset does not
                # pause writing (the TLS layer drops what its dead socket cannot take), so an
                # app sending in a loop would never await and connection_lost could not run.
                await delegate(asyncio.sleep(0))
                if cycle.disconnected_flag or protocol.closed:
                    raise ClientDisconnected("the client disconnected")
        elif self.h2 is not None or message["type"] != "http.response.start":
            # (The HTTP/1.1 core holds a response head until the first body message, so
            # there is nothing to write after http.response.start.)
            protocol.schedule_flush()
        if protocol.write_paused:
            await protocol.wait_writable()
            if protocol.closed:
                raise ClientDisconnected("the client disconnected")
        if self.h2 is not None:
            await wait_window(protocol, self.h2, self.stream_id)

    async def _send_file(self, path: str) -> None:
        cycle = self.cycle
        protocol = self.protocol
        try:
            handle = await delegate(protocol.server.loop.run_in_executor(None, open, path, "rb"))
        except OSError as exc:
            raise AppProtocolError(f"http.response.pathsend cannot open {path!r}: {exc}") from exc
        try:
            loop = protocol.server.loop
            while True:
                chunk = await delegate(loop.run_in_executor(None, handle.read, FILE_CHUNK))
                if not chunk:
                    break
                if protocol.closed or cycle.disconnected_flag:
                    raise ClientDisconnected("the client disconnected")
                cycle.bytes_sent += len(chunk)
                protocol.core.send(Body(self.stream_id, chunk, False))
                protocol.flush()
                if protocol.write_paused:
                    await protocol.wait_writable()
                if self.h2 is not None:
                    await wait_window(protocol, self.h2, self.stream_id)
        finally:
            await delegate(protocol.server.loop.run_in_executor(None, handle.close))
        cycle.pathsend_done()

    def _response_done(self) -> None:
        protocol = self.protocol
        if self._waiter is not None:
            # An app task listening for the disconnect (Quart does) hears it now: after the
            # response, receive() returns http.disconnect.
            self._wake()
        access_log = protocol.server.access_log
        if access_log is not None and not self._logged:
            self._logged = True
            request = self.request
            cycle = self.cycle
            client = self.conn.client
            access_log(
                f"{client[0]}:{client[1]}" if client else "-",
                request.method,
                request.target,
                request.http_version,
                cycle.status,
                cycle.bytes_sent,
                perf_counter() - self.start_time,
            )
        protocol.response_complete(self)
