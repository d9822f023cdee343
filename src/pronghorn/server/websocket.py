"""WebSocketExchange: one WebSocket served by the app, over HTTP/1.1 or an HTTP/2 stream.

To the connection the WebSocket is a byte tunnel: frame bytes arrive as ``BodyReceived`` and
leave as ``Body`` events, on stream 1 of an HTTP/1.1 connection whose core was swapped for a
``TunnelConnection`` after the 101, or on an RFC 8441 extended CONNECT stream of HTTP/2. The
handshake and frame codec live in ``protocols/websocket.py``, the ASGI message rules in
``asgi/websocket.py``; this module owns the app task, the waiting, and the timers: keepalive
pings, the closing-handshake timeout and the 1012 close on graceful shutdown.

Backpressure both ways: the app's ``send()`` waits while the transport is paused; once
``ws_max_queue`` received messages wait for the app, reading pauses (HTTP/1.1) or the stream's
flow-control window stops being acknowledged (HTTP/2).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any, Final, assert_never

from pronghorn.asgi.messages import AppMessage, Message
from pronghorn.asgi.scope import ConnectionInfo, Scope, websocket_scope
from pronghorn.asgi.websocket import STATE_CLOSED, WebSocketCycle
from pronghorn.errors import AppProtocolError, ClientDisconnected, LocalProtocolError
from pronghorn.protocols.events import (
    AcceptWebSocket,
    Body,
    CloseWebSocket,
    InformationalResponse,
    OutboundEvent,
    ProtocolViolation,
    PushPromise,
    RequestReceived,
    ResetStream,
    Response,
    Trailers,
    WebSocketCloseReceived,
    WebSocketMessage,
)
from pronghorn.protocols.http2 import HTTP2Connection
from pronghorn.protocols.tunnel import TunnelConnection
from pronghorn.protocols.websocket import (
    Handshake,
    Rejection,
    WebSocketCodec,
    accept_headers,
    negotiate,
)
from pronghorn.server.appcall import run_app
from pronghorn.server.awaits import delegate
from pronghorn.server.http2 import wait_window
from pronghorn.server.tasks import start_task

if TYPE_CHECKING:
    from pronghorn.server.protocol import ConnectionProtocol

logger = logging.getLogger("pronghorn.error")

#: Outgoing frame bytes past which send() writes at once instead of at the loop's turn.
FLUSH_THRESHOLD: Final = 65536
#: ``update_reading`` pauses past the body high-water mark; these stand for "queue full/empty".
_PAUSE: Final = 1 << 62
_RESUME: Final = 0


def start_websocket(
    protocol: ConnectionProtocol, request: RequestReceived, conn: ConnectionInfo
) -> bool:
    """Serve an Upgrade (HTTP/1.1) or extended CONNECT (HTTP/2) request as a WebSocket."""
    server = protocol.server
    config = server.config
    result = negotiate(
        request.method,
        request.headers,
        request.http_version,
        extended_connect=request.http_version == "2",
        per_message_deflate=config.ws_per_message_deflate,
    )
    exchange = WebSocketExchange(
        protocol, request, conn, result if isinstance(result, Handshake) else None
    )
    protocol.streams[request.stream_id] = exchange
    server.requests_total += 1
    if server.on_request is not None:
        server.on_request()
    if isinstance(result, Rejection):
        exchange.reject(result.status, result.headers, result.body)
    elif server.over_capacity():
        body = b"Service Unavailable\n"
        exchange.reject(503, [(b"content-type", b"text/plain"), (b"connection", b"close")], body)
    else:
        exchange.start()
    return True


class WebSocketExchange:
    __slots__ = (
        "_app_done",
        "_close_timer",
        "_finished",
        "_logged",
        "_ping_timer",
        "_pongs_at_ping",
        "_read_paused",
        "_stream_done",
        "_unacked",
        "_waiter",
        "codec",
        "conn",
        "cycle",
        "handshake",
        "protocol",
        "request",
        "start_time",
        "stream_id",
        "task",
    )

    def __init__(
        self,
        protocol: ConnectionProtocol,
        request: RequestReceived,
        conn: ConnectionInfo,
        handshake: Handshake | None,
    ) -> None:
        self.protocol = protocol
        self.request = request
        self.conn = conn
        self.stream_id = request.stream_id
        self.handshake = handshake
        self.cycle = WebSocketCycle(
            request.stream_id, self._on_app_event, send_message=self._send_message
        )
        self.codec: WebSocketCodec | None = None
        self.task: asyncio.Task[None] | None = None
        self.start_time = protocol.server.loop.time()
        self._waiter: asyncio.Future[None] | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._pongs_at_ping = 0
        self._unacked = 0
        self._read_paused = False
        self._app_done = False
        self._stream_done = False
        self._finished = False
        self._logged = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        server = self.protocol.server
        server.exchanges.add(self)
        self.task = start_task(
            server.loop, run_app(server.app, self), server.base_context.copy(), server.flusher.turn
        )

    def reject(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """Answer the handshake without running the app (bad handshake, over capacity)."""
        self._app_done = True
        self._send_core(Response(self.stream_id, status, headers))
        self._send_core(Body(self.stream_id, body, True))
        self._log(status)
        self._stream_done = True
        self._finish()

    def begin(self) -> Scope:
        """The connection's scope, as the app's task starts (see server/appcall.py)."""
        handshake = self.handshake
        assert handshake is not None  # start() is only called for a valid handshake
        return websocket_scope(
            self.request, self.conn, self.protocol.server.lifespan_state, handshake.subprotocols
        )

    def end(self, error: BaseException | None) -> bool:
        """Settle what the app left when it returned or raised ``error``; True when ``error``
        must propagate (KeyboardInterrupt)."""
        protocol = self.protocol
        failed = False
        propagate = False
        if error is None or isinstance(error, ClientDisconnected):
            pass  # (disconnected: the peer left while the app was sending; nothing to answer)
        elif isinstance(error, asyncio.CancelledError):
            failed = True  # shutdown deadline
        elif isinstance(error, Exception):
            failed = True
            logger.error("Exception in ASGI application", exc_info=error)
        else:
            propagate = True
        protocol.server.exchanges.discard(self)
        self._app_done = True
        if not protocol.closed and not self._stream_done:
            self.cycle.app_finished(failed)
        self._finish()
        return propagate

    def _finish(self) -> None:
        """Leave the connection once the app is done and the stream has ended."""
        if self._finished or not self._app_done or not (self._stream_done or self.protocol.closed):
            return
        self._finished = True
        self._cancel_timers()
        protocol = self.protocol
        core = protocol.core
        if type(core) is HTTP2Connection:
            core.app_finished(self.stream_id)  # release the stream
        protocol.response_complete(self)

    # ------------------------------------------------------------------ inbound (core events)
    def body_received(self, data: bytes) -> None:
        codec = self.codec
        if codec is None:
            # Before the handshake answer a client must not send frames (RFC 6455 4.1); an
            # HTTP/2 stream that does is acknowledged and ignored.
            self._unacked += len(data)
            self._update_flow()
            return
        self._unacked += len(data)
        codec.receive_data(data)
        self._process_codec(codec)

    def request_ended(self) -> None:
        """The peer ended its side of the stream (EOF on HTTP/1.1, END_STREAM on HTTP/2)."""
        codec = self.codec
        if codec is not None:
            codec.receive_eof()
            self._process_codec(codec)
        # Before the handshake answer this is the end of the (empty) request body of the
        # HTTP/1.1 Upgrade request: nothing has ended yet.

    def disconnected(self) -> None:
        """The connection is gone or the stream was reset."""
        codec = self.codec
        code = codec.close_code if codec is not None and codec.close_code is not None else 1006
        reason = codec.close_reason if codec is not None else ""
        self.cycle.closed(code, reason)
        self._stream_done = True
        self._cancel_timers()
        self._wake()
        self._finish()

    def _process_codec(self, codec: WebSocketCodec) -> None:
        cycle = self.cycle
        for event in codec.next_events():
            if isinstance(event, (str, bytes)):
                cycle.message_received(event)
            elif isinstance(event, WebSocketCloseReceived):
                cycle.closed(event.code, event.reason)
            elif isinstance(event, ProtocolViolation):
                logger.debug(
                    "WebSocket from %s closed with %d: %s",
                    self.conn.client,
                    event.status,
                    event.reason,
                )
                cycle.closed(event.status, event.reason)
            else:
                assert_never(event)
        if codec.has_output or codec.should_close:  # (pongs, a close echo, a failure)
            self._write_codec(codec)
        self._wake()
        self._update_flow()

    def _write_codec(self, codec: WebSocketCodec, flush: bool = False) -> None:
        """Hand the codec's bytes to the core; end the stream once the codec is done."""
        output = codec.take_output()
        end = codec.should_close and not self._stream_done
        if output or end:
            if isinstance(output, list):  # a large message: its header and payload, uncopied
                size = sum(map(len, output))
                for part in output[:-1]:
                    self._send_core(Body(self.stream_id, part, False))
                output = output[-1]
            else:
                size = len(output)
            core = self.protocol.core
            if type(core) is TunnelConnection:
                if not self.protocol.closed:
                    core.send_data(output, end)  # (_send_core's effect, without the event)
            else:
                self._send_core(Body(self.stream_id, output, end))
            if flush or size > FLUSH_THRESHOLD:
                self.protocol.flush()
            else:
                self.protocol.schedule_flush()
        if end:
            self._stream_done = True
            self._cancel_timers()
            self._finish()

    def flow_changed(self) -> None:
        """The transport paused or resumed writing, or an HTTP/2 window opened."""
        self._update_flow()

    def _update_flow(self) -> None:
        """Stop taking data while ``ws_max_queue`` messages wait for the app; start again once
        the app has taken half of them, so a steady flow does not toggle reading per message.

        Reading also stops while what was written is not being read: the transport is paused
        for writing, or (HTTP/2) the stream's frames wait for the peer's window. Pings are
        answered without the app, so a client that sends pings and reads nothing would
        otherwise have the server buffer every pong (1M pings of 125 bytes: 174 MB of RSS).
        """
        protocol = self.protocol
        limit = protocol.server.config.ws_max_queue
        queued = self.cycle.queued
        paused = queued > limit // 2 if self._read_paused else queued >= limit
        self._read_paused = paused
        stalled = paused or protocol.write_paused
        core = protocol.core
        if type(core) is HTTP2Connection:  # per-stream flow control: withhold the window
            if not stalled and self._unacked and not core.is_blocked(self.stream_id):
                core.acknowledge(self.stream_id, self._unacked)
                self._unacked = 0
                protocol.schedule_flush()
            return
        self._unacked = 0
        if stalled != protocol.reading_paused:
            protocol.update_reading(_PAUSE if stalled else _RESUME)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------------ the app's receive/send
    async def receive(self) -> Message:
        cycle = self.cycle
        message = cycle.next_message()
        while message is None:
            self._waiter = waiter = self.protocol.server.loop.create_future()
            try:
                await delegate(waiter)
            finally:
                self._waiter = None
            message = cycle.next_message()
        if self._read_paused or self._unacked:
            self._update_flow()
        return message

    async def send(self, message: AppMessage) -> None:
        protocol = self.protocol
        if protocol.closed and self.cycle.state is not STATE_CLOSED:
            self.disconnected()
        try:
            self.cycle.send(message)  # emits into _on_app_event
        except (TypeError, ValueError) as exc:  # a core refused what the app gave it
            raise AppProtocolError(str(exc)) from exc
        if protocol.write_paused and not protocol.closed:
            await protocol.wait_writable()
            if protocol.closed and message.get("type") != "websocket.close":
                raise ClientDisconnected("the client disconnected")
        core = protocol.core
        if type(core) is HTTP2Connection and not self._stream_done:
            await wait_window(protocol, core, self.stream_id)  # the stream's own window

    def _send_message(self, payload: bytes | str) -> None:
        """A validated websocket.send's payload (the cycle calls this directly)."""
        codec = self.codec
        assert codec is not None  # the cycle only allows sends once accepted
        codec.send_message(payload)
        # While received messages still wait for the app, its replies are batched into one
        # write at the loop's turn; the reply to the last one goes out at once (a ping-pong
        # exchange would otherwise wait a loop iteration per message).
        self._write_codec(codec, flush=not self.cycle.queued)

    def _on_app_event(self, event: OutboundEvent) -> None:
        """The cycle's validated output: the handshake answer, frames or a denial response."""
        if isinstance(event, WebSocketMessage):
            self._send_message(event.data)
        elif isinstance(event, CloseWebSocket):
            codec = self.codec
            assert codec is not None
            codec.send(event)
            self._write_codec(codec)
            self._start_close_timer()
        elif isinstance(event, AcceptWebSocket):
            self._accept(event)
        elif isinstance(event, Response):
            self._send_core(event)
            self._log(event.status)
        elif isinstance(event, Body):
            self._send_core(event)
            if event.end:
                self._stream_done = True
            self.protocol.schedule_flush()
        elif isinstance(event, ResetStream):
            self._send_core(event)
            self._stream_done = True
            self.protocol.schedule_flush()
        elif isinstance(event, (InformationalResponse, Trailers, PushPromise)):
            raise LocalProtocolError(f"a WebSocket cycle cannot emit {event!r}")
        else:
            assert_never(event)

    def _send_core(self, event: OutboundEvent) -> None:
        protocol = self.protocol
        if protocol.closed:
            return
        core = protocol.core
        if type(event) is Response:
            start_request = getattr(core, "start_request", None)
            if start_request is not None:  # HTTP/1.1 frames the response by the request
                start_request(self.request)
        core.send(event)

    def _accept(self, event: AcceptWebSocket) -> None:
        handshake = self.handshake
        assert handshake is not None
        protocol = self.protocol
        if protocol.closed:
            return
        status, headers = accept_headers(handshake, event.subprotocol, event.headers)
        core = protocol.core
        trailing = b""
        if status == 101:
            self._send_core(Response(self.stream_id, 101, headers))
            self._send_core(Body(self.stream_id, b"", True))
            trailing = getattr(core, "trailing_data", b"")
            # The 101 goes out first, then the connection is a tunnel for the frames.
            tunnel = TunnelConnection(core.data_to_send())
            protocol.switch_core(tunnel, self)
            protocol.update_reading(_RESUME)
        else:
            # HTTP/2: the subprotocol is already among the headers accept_headers built.
            core.send(AcceptWebSocket(self.stream_id, None, headers))
        config = protocol.server.config
        codec = WebSocketCodec(
            self.stream_id, max_size=config.ws_max_size, deflate=handshake.deflate
        )
        self.codec = codec
        self._log(status)
        protocol.flush()
        self._schedule_ping()
        if trailing:
            self.body_received(trailing)

    # ------------------------------------------------------------------ timers
    def _schedule_ping(self, waited: float = 0.0) -> None:
        """Ping ``ws_ping_interval`` after the previous ping (``waited`` already passed)."""
        interval = self.protocol.server.config.ws_ping_interval
        if interval is not None and interval > 0:
            delay = max(0.0, interval - waited)
            self._ping_timer = self.protocol.server.loop.call_later(delay, self._send_ping)

    def _send_ping(self) -> None:
        self._ping_timer = None
        codec = self.codec
        if codec is None or not codec.open or self.protocol.closed:
            return
        self._pongs_at_ping = codec.pongs_received
        codec.send_ping(os.urandom(4))
        self._write_codec(codec)
        timeout = self.protocol.server.config.ws_ping_timeout
        if timeout is not None and timeout > 0:
            self._ping_timer = self.protocol.server.loop.call_later(timeout, self._check_pong)
        else:
            self._schedule_ping()

    def _check_pong(self) -> None:
        self._ping_timer = None
        codec = self.codec
        if codec is None or self.protocol.closed:
            return
        if codec.pongs_received != self._pongs_at_ping:
            self._schedule_ping(waited=self.protocol.server.config.ws_ping_timeout or 0.0)
            return
        logger.debug("WebSocket from %s: keepalive ping timed out", self.conn.client)
        codec.fail(1011, "keepalive ping timeout")
        self.cycle.closed(1011, "keepalive ping timeout")
        self._wake()
        self._write_codec(codec, flush=True)

    def _start_close_timer(self) -> None:
        if self._close_timer is None and not self._stream_done:
            timeout = self.protocol.server.config.timeout_ws_close
            self._close_timer = self.protocol.server.loop.call_later(timeout, self._close_timeout)

    def _close_timeout(self) -> None:
        """The peer never answered our close frame: end the stream anyway."""
        self._close_timer = None
        codec = self.codec
        if codec is None or self._stream_done:
            return
        logger.debug("WebSocket from %s: no close frame within the timeout", self.conn.client)
        codec.fail(1006)
        self.cycle.closed(1006, "no close frame received")
        self._wake()
        self._write_codec(codec, flush=True)

    def _cancel_timers(self) -> None:
        for timer in (self._ping_timer, self._close_timer):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._close_timer = None

    def start_shutdown(self) -> None:
        """Graceful shutdown: close an open WebSocket with 1012 (service restart)."""
        codec = self.codec
        if codec is None or not codec.open or self._stream_done:
            return
        codec.send(CloseWebSocket(self.stream_id, 1012, "Service restart"))
        self.cycle.closed(1012, "Service restart")
        self._wake()
        self._write_codec(codec)
        self._start_close_timer()

    # ------------------------------------------------------------------ logging & stats
    def _log(self, status: int) -> None:
        access_log = self.protocol.server.access_log
        if access_log is not None and not self._logged:
            self._logged = True
            request = self.request
            client = self.conn.client
            access_log(
                f"{client[0]}:{client[1]}" if client else "-",
                request.method,
                request.target,
                request.http_version,
                status,
                0,
                self.protocol.server.loop.time() - self.start_time,
            )

    def statistics(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"state": self.cycle.state.value, "queued": self.cycle.queued}
        if self.codec is not None:
            stats.update(self.codec.statistics())
        return stats
