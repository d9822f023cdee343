"""ConnectionProtocol: the one asyncio protocol class, for every core.

It feeds received bytes to the connection's sans-IO core, dispatches the core's events to the
stream runners (``server/http.py`` for HTTP, ``server/websocket.py`` for WebSocket), writes what
the core queued, and owns the connection's deadline, reading pauses and write backpressure.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

from pronghorn.asgi.proxy_headers import apply_proxy_headers, peer_is_trusted
from pronghorn.asgi.scope import ConnectionInfo
from pronghorn.protocols.events import (
    BodyReceived,
    InboundEvent,
    InputEnded,
    ProtocolViolation,
    RequestEnded,
    RequestReceived,
    StreamReset,
    WindowOpened,
)
from pronghorn.protocols.http1 import HTTP1Connection
from pronghorn.protocols.http2 import HTTP2Connection
from pronghorn.protocols.output import joined
from pronghorn.protocols.tunnel import TunnelConnection
from pronghorn.server.awaits import delegate
from pronghorn.server.http import HTTPExchange
from pronghorn.server.http2 import PrefaceSniffer, select_core, start_h2c

if TYPE_CHECKING:
    from pronghorn.server.state import ServerState

logger = logging.getLogger("pronghorn.error")

#: Request body bytes buffered for the app before reading from the socket pauses.
BODY_HIGH_WATER: Final = 65536
#: The extensions every HTTP scope announces; shared by every connection (the scope copies
#: the outer dict, and a connection that adds one, HTTP/2 push, copies it first).
HTTP_EXTENSIONS: Final[dict[str, dict[str, Any]]] = {
    "http.response.trailers": {},
    "http.response.early_hint": {},
    "http.response.pathsend": {},
}
#: Pipelined responses that may wait for the next one before a write (see response_complete).
MAX_DEFERRED_RESPONSES: Final = 16

_NO_TIMER: Final = 0
_KEEP_ALIVE: Final = 1
_HEADER: Final = 2
_BODY: Final = 3
_SHUTDOWN: Final = 4
_LINGER: Final = 5
#: How long a closed connection keeps draining the peer's input (see _close_lingering).
LINGER_SECONDS: Final = 2.0


#: The cores a connection may hold, each fulfilling the sans-IO contract (docs/design.md,
#: "The protocol-core contract"): ``should_close``, ``wants_read``, ``receive_data``,
#: ``receive_eof``, ``next_events``, ``send``, ``data_to_send``. A union of the classes
#: rather than a typing.Protocol: compiled, a call on a union of compiled classes dispatches
#: by type to the method itself, where a Protocol's is a generic Python method call.
Core = HTTP1Connection | HTTP2Connection | TunnelConnection | PrefaceSniffer


class StreamRunner(Protocol):
    """One request or WebSocket session on a connection (HTTP/1.1: at most one at a time)."""

    def body_received(self, data: bytes) -> None: ...

    def request_ended(self) -> None: ...

    def disconnected(self) -> None: ...


def _address(value: Any) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return (str(value[0]), int(value[1]))
    if isinstance(value, str) and value:
        return (value, 0)  # UNIX socket path
    return None


class ConnectionProtocol(asyncio.Protocol):
    __slots__ = (
        "_deferrals",
        "_dispatching",
        "_drain_waiters",
        "_forwarded",
        "_gathers",
        "_in_receive",
        "_lingering",
        "_peer_trusted",
        "_repoll",
        "_timer",
        "closed",
        "conn_info",
        "core",
        "deadline",
        "flush_deferred",
        "flush_pending",
        "reading_paused",
        "server",
        "streams",
        "transport",
        "tunnel_runner",
        "write_paused",
    )

    def __init__(self, server: ServerState) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.core: Core = HTTP1Connection(server.h1_limits, server.defaults)
        self.streams: dict[int, Any] = {}
        self.conn_info = ConnectionInfo(None, None)
        self.deadline = 0.0
        self._timer = _NO_TIMER
        self.flush_pending = False
        #: A pipelined response's write waits for the next one (see response_complete).
        self.flush_deferred = False
        self._deferrals = 0
        self.reading_paused = False
        self.write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] | None = None  # made when one waits
        self.closed = False
        self._peer_trusted = False
        #: The last request's proxy-rewritten ConnectionInfo, reused while the proxy names the
        #: same client and scheme (not made anew, nor its scope base looked up, per request).
        self._forwarded: ConnectionInfo | None = None
        self._dispatching = False
        self._repoll = False
        self._in_receive = False
        self._lingering = False
        self._gathers = False  # (set in connection_made)
        #: The one stream runner of a byte tunnel core (see switch_core).
        self.tunnel_runner: StreamRunner | None = None

    # ------------------------------------------------------------------ asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast("asyncio.Transport", transport)
        self.transport = transport
        # uvloop's writelines gathers the parts into one writev and pauses the protocol when
        # its buffer fills. The stdlib's joins them (3.11), or on 3.12 sends them without
        # pausing the protocol at all (so no backpressure): there, large output is joined.
        self._gathers = type(transport).__module__.startswith("uvloop")
        server = self.server
        server.connections.add(self)
        if server.backlog is not None:
            server.backlog.drain()
        ssl_object = transport.get_extra_info("ssl_object")
        config = server.config
        self.conn_info = ConnectionInfo(
            client=_address(transport.get_extra_info("peername")),
            server=_address(transport.get_extra_info("sockname")),
            scheme="https" if ssl_object is not None else "http",
            root_path=config.root_path,
            http_extensions=HTTP_EXTENSIONS,
        )
        trusted = server.trusted
        if trusted is not None:
            client = self.conn_info.client
            # A UNIX socket peer has no address: only '*' trusts it.
            self._peer_trusted = peer_is_trusted(client, trusted)
        if config.http2:
            select_core(self, ssl_object)  # ALPN h2, or sniff for the prior-knowledge preface
        self._set_timer(_HEADER, config.timeout_request_header)
        if server.draining:
            core = self.core
            if not isinstance(core, TunnelConnection):  # (no connection starts as a tunnel)
                core.start_shutdown()
            self.flush()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # input after our close is read only so that it cannot reset the answer
        # Responses completed while handling these bytes (answers given without the app, such
        # as errors and 503s) are written with the loop turn's other writes (see below).
        self._in_receive = True
        try:
            runner = self.tunnel_runner
            if runner is not None:
                runner.body_received(data)  # (see switch_core)
            else:
                self.core.receive_data(data)
                self._process_events()
        finally:
            self._in_receive = False
        core = self.core  # an upgrade (h2c) or the preface sniffer may have switched it
        if (
            not self.streams
            and self._timer != _HEADER
            and not core.should_close
            # (A type test, not getattr with a default: a missing attribute costs a formatted
            # AttributeError, and the other cores have none.)
            and (core.receiving_head if type(core) is HTTP1Connection else True)
        ):
            # Part of a request head arrived: it must be complete within the header timeout
            # (counted once from its first byte, so trickling bytes cannot extend it).
            self._set_timer(_HEADER, self.server.config.timeout_request_header)
        if not core.wants_read and not self.reading_paused:
            self._pause_reading()
        if core.should_close or type(core) is HTTP2Connection:
            # HTTP/2 answers frames by itself (SETTINGS/PING ACKs, WINDOW_UPDATE) and a peer's
            # WINDOW_UPDATE lets buffered DATA out: it is always written now too.
            self.flush()
        elif self.flush_pending:
            # Answers completed here leave with the loop turn's other writes, after every
            # ready connection was read: writing each one
            # between reads cost about 3 us more kernel time per request (Python 3.12, 64
            # connections), the client being woken once per answer instead of once per turn.
            self._queue_flush()

    def eof_received(self) -> bool:
        if self._lingering:
            return False  # the peer closed too: done lingering
        self.core.receive_eof()
        self._process_events()
        self.flush()
        # Keep the transport while answers to complete requests are still due.
        return not self.closed

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        for runner in list(self.streams.values()):
            runner.disconnected()
        self.streams.clear()
        self._wake_writers()
        self.deadline = 0.0

    def pause_writing(self) -> None:
        self.write_paused = True
        if type(self.core) is not HTTP1Connection:
            self._output_flow_changed()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_writers()
        if type(self.core) is not HTTP1Connection:
            self._output_flow_changed()

    def _output_flow_changed(self) -> None:
        # A WebSocket answers pings by itself, past the app's send() backpressure: its runner
        # stops reading while the peer is not reading what is written (server/websocket.py,
        # _update_flow). Plain HTTP runners have no such output.
        for runner in list(self.streams.values()):
            changed = getattr(runner, "flow_changed", None)
            if changed is not None:
                changed()

    # ------------------------------------------------------------------ events
    def _process_events(self) -> None:
        self._dispatching = True
        try:
            while True:
                self._repoll = False
                events = self.core.next_events()  # re-read: a dispatched event may switch cores
                if not events:
                    return
                for event in events:
                    if type(event) is RequestReceived:
                        self._on_request(event)
                    else:
                        self._dispatch(event)
                if not self._repoll:
                    # Nothing was answered while dispatching: no pipelined request can be
                    # waiting, so skip asking the core again.
                    return
        finally:
            self._dispatching = False

    def _dispatch(self, event: InboundEvent) -> None:
        kind = type(event)
        if kind is RequestReceived:
            assert isinstance(event, RequestReceived)
            self._on_request(event)
        elif kind is BodyReceived:
            assert isinstance(event, BodyReceived)
            runner = self.streams.get(event.stream_id)
            if runner is not None:
                runner.body_received(event.data)
        elif kind is RequestEnded:
            runner = self.streams.get(event.stream_id)
            if runner is not None:
                runner.request_ended()
        elif kind is StreamReset or kind is ProtocolViolation:
            runner = self.streams.pop(event.stream_id, None)
            if runner is not None:
                runner.disconnected()
            if kind is ProtocolViolation:
                assert isinstance(event, ProtocolViolation)
                logger.debug("Protocol violation from %s: %s", self.conn_info.client, event.reason)
        elif kind is InputEnded:
            runner = self.streams.get(event.stream_id)
            if runner is not None and hasattr(runner, "input_ended"):
                runner.input_ended()
        elif kind is WindowOpened:
            self._wake_writers()
            self._output_flow_changed()
        else:  # pragma: no cover - every event type is listed above
            raise AssertionError(f"unhandled event {event!r}")

    def _on_request(self, request: RequestReceived) -> None:
        server = self.server
        self._timer = _NO_TIMER
        self.deadline = 0.0
        conn = self.conn_info
        if server.trusted is not None and self._peer_trusted:
            client, scheme = apply_proxy_headers(
                request.headers, conn.client, conn.scheme, server.trusted, peer_trusted=True
            )
            if client != conn.client or scheme != conn.scheme:
                forwarded = self._forwarded
                if forwarded is None or forwarded.client != client or forwarded.scheme != scheme:
                    forwarded = self._forwarded = ConnectionInfo(
                        client, conn.server, scheme, conn.root_path, conn.http_extensions, conn.tls
                    )
                conn = forwarded
        if request.upgrade is not None and self._start_upgrade(request, conn):
            return
        exchange = HTTPExchange(self, request, conn)
        self.streams[request.stream_id] = exchange
        server.requests_total += 1
        if server.on_request is not None:
            server.on_request()
        if server.limit_concurrency is not None and server.over_capacity():
            exchange.reject(503)
            return
        exchange.start()

    def _start_upgrade(self, request: RequestReceived, conn: ConnectionInfo) -> bool:
        """Hand an Upgrade/extended-CONNECT request to its runner; False serves it as HTTP."""
        if request.upgrade == b"websocket" and self.server.config.ws != "none":
            try:
                from pronghorn.server.websocket import start_websocket
            except ImportError:
                return False
            started: bool = start_websocket(self, request, conn)
            return started
        if request.upgrade == b"h2c":
            return start_h2c(self, request)
        return False

    # ------------------------------------------------------------------ for stream runners
    def response_complete(self, runner: Any) -> None:
        """The runner's response is fully queued: flush, then serve what comes next."""
        streams = self.streams
        stream_id: int = runner.stream_id
        if stream_id in streams:  # (dict.pop is a method call from compiled code)
            del streams[stream_id]
        if runner is self.tunnel_runner:
            self.tunnel_runner = None  # (what the tunnel reads after its end is not for it)
        core = self.core
        # HTTP/1.1 knows whether a pipelined request waits; None: ask any other core.
        pipelined = core.pipelined_ready if type(core) is HTTP1Connection else None
        if self._in_receive:
            self.flush_pending = True  # data_received queues the write when it returns
        elif streams and type(core) is HTTP2Connection:
            # Other streams' apps are likely finishing in this same loop turn (a client sends
            # its requests together): their answers leave in one write at its end, not one each.
            self.schedule_flush()
        elif pipelined and self._deferrals < MAX_DEFERRED_RESPONSES:
            # The next pipelined request's app runs on the next loop turn: its answer joins
            # this one in one write instead of one each.
            # The flush callback waits one more turn only while responses keep completing.
            self._deferrals += 1
            self.flush_deferred = True
            self.schedule_flush()
        elif self.server.flusher.turn.running > 1:
            # This app's first step is one of several the loop runs in this pass: their
            # answers leave together after them, not one by one while the others run
            # (Starlette hello, 64 connections: 31k -> 40k req/s, kernel time halved).
            self.schedule_flush()
        else:
            # A lone answer goes out now: waiting for the loop's flush callback would cost
            # one more loop turn per request.
            self.flush()
        if self.closed or core.should_close:
            return
        if not streams:
            server = self.server
            self._timer = _KEEP_ALIVE
            self.deadline = server.loop.time() + server.keep_alive_timeout
            if type(core) is HTTP1Connection:
                core.rest()  # an idle keep-alive connection holds no parser
        if self.reading_paused and core.wants_read:
            self._resume_reading()
        # A pipelined request may already be parsed and waiting: serve it now, or, when this
        # response completed inside the dispatch loop (an answer given without the app),
        # let that loop do it.
        if pipelined is False:
            return  # (HTTP/1.1 knows nothing waits: no need to ask the core again)
        if self._dispatching:
            self._repoll = True
        else:
            self._process_events()

    def schedule_flush(self) -> None:
        if not self.flush_pending:
            self.flush_pending = True
            if self._in_receive:
                return  # data_received queues it once, when it returns
            self._queue_flush()

    def _queue_flush(self) -> None:
        flusher = self.server.flusher
        flusher.pending.append(self)
        if not flusher.scheduled:
            flusher.scheduled = True
            flusher.loop.call_soon(flusher.run)

    def flush(self) -> None:
        self.flush_pending = False
        self.flush_deferred = False
        self._deferrals = 0
        transport = self.transport
        if transport is None or self.closed:
            return
        core = self.core
        if type(core) is HTTP1Connection or type(core) is TunnelConnection:
            output = core.take_output()
            if isinstance(output, list):
                if self._gathers:
                    transport.writelines(output)
                else:
                    transport.write(joined(output))
            elif output:
                transport.write(output)
        else:
            data = core.data_to_send()
            if data:
                transport.write(data)
        if core.should_close:
            self.closed = True
            self._close_lingering(transport)

    def _close_lingering(self, transport: asyncio.Transport) -> None:
        """Close after our last bytes without losing them to a reset.

        Closing a socket with unread input makes the kernel answer with RST, which can destroy
        the answer we just wrote (a 413 to a client still uploading, a GOAWAY to a flooding
        HTTP/2 peer). So, as nginx's lingering close does: send FIN, read and discard for a
        moment, and close when the peer closes too or the linger time is up.
        """
        if not transport.can_write_eof():  # TLS: close_notify plays this part
            transport.close()
            return
        try:
            transport.write_eof()
        except OSError:
            transport.close()
            return
        self._lingering = True
        if self.reading_paused:  # read on to drain (self.closed already stops _resume_reading)
            self.reading_paused = False
            transport.resume_reading()
        self._set_timer(_LINGER, LINGER_SECONDS)

    async def wait_writable(self) -> None:
        """Return once the transport takes more data (send() backpressure).

        A client that takes none of it for ``timeout_send`` is dropped (``closed`` is then
        set): otherwise a client that stops reading holds its connection and the app's task
        for as long as it likes (a slow-read attack).
        """
        loop = self.server.loop
        timeout = self.server.config.timeout_send
        deadline = loop.time() + timeout if timeout > 0 else None
        while self.write_paused and not self.closed:
            if deadline is None:
                await delegate(self.writable_waiter())
                continue
            try:
                await delegate(asyncio.wait_for(self.writable_waiter(), deadline - loop.time()))
            except TimeoutError:
                logger.debug("%s took no response bytes for %.0f s", self.conn_info.client, timeout)
                self.force_close()

    def writable_waiter(self) -> asyncio.Future[None]:
        """A future set once the transport takes more data or a core's window opens."""
        waiter: asyncio.Future[None] = self.server.loop.create_future()
        waiters = self._drain_waiters
        if waiters is None:
            self._drain_waiters = [waiter]
        else:
            waiters.append(waiter)
        return waiter

    def _wake_writers(self) -> None:
        waiters = self._drain_waiters
        if waiters:
            self._drain_waiters = None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def update_reading(self, buffered: int) -> None:
        """Pause reading while a runner holds too much unread body; resume when it drains."""
        if buffered > BODY_HIGH_WATER:
            if not self.reading_paused:
                self._pause_reading()
        elif self.reading_paused and self.core.wants_read:
            self._resume_reading()

    def wait_body(self) -> None:
        """A runner waits on the peer for body bytes: the body read timeout runs."""
        if self.reading_paused and self.core.wants_read:
            self._resume_reading()
        self._set_timer(_BODY, self.server.config.timeout_request_body)

    def body_arrived(self) -> None:
        if self._timer == _BODY:
            self._timer = _NO_TIMER
            self.deadline = 0.0

    def _pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.reading_paused = False
            self.transport.resume_reading()

    def switch_core(self, core: Core, tunnel_runner: StreamRunner | None = None) -> None:
        """Replace the core (HTTP/1.1 -> WebSocket tunnel, h2c -> HTTP/2).

        A byte tunnel's received bytes all belong to its one stream and need no parsing: with
        ``tunnel_runner`` given, data_received hands them to it directly instead of through
        the core's BodyReceived events (five calls and an event per WebSocket message). Its
        EOF still goes through the core.
        """
        self.core = core
        self.tunnel_runner = tunnel_runner

    # ------------------------------------------------------------------ timers & shutdown
    def _set_timer(self, kind: int, seconds: float | None) -> None:
        if seconds is None or seconds <= 0:
            self._timer = _NO_TIMER
            self.deadline = 0.0
            return
        self._timer = kind
        self.deadline = self.server.loop.time() + seconds

    def on_deadline(self, now: float) -> None:
        timer = self._timer
        self.deadline = 0.0
        self._timer = _NO_TIMER
        if timer == _BODY:
            logger.debug("Request body from %s timed out", self.conn_info.client)
            for runner in list(self.streams.values()):
                runner.disconnected()
            self.force_close()
        elif timer == _LINGER:
            self.force_close()
        elif timer in (_KEEP_ALIVE, _HEADER, _SHUTDOWN):
            if timer == _HEADER and not self.streams:
                logger.debug("Request head from %s timed out", self.conn_info.client)
            if not self.streams:
                self.abort()

    def start_shutdown(self) -> None:
        """Graceful shutdown: finish what is in flight, then close."""
        start = getattr(self.core, "start_shutdown", None)
        if start is not None:
            start()
        for runner in list(self.streams.values()):
            # A runner that ends its own stream on shutdown (WebSocket: close frame 1012), on
            # HTTP/1.1 and HTTP/2 alike.
            stop = getattr(runner, "start_shutdown", None)
            if stop is not None:
                stop()
        if self.streams:
            self.schedule_flush()
        elif self.core.should_close:
            self.flush()
            if not self.closed:
                self.abort()
        else:
            # A request may be on its way (a fresh connection or a partial head): the core
            # answers it and closes; a client that sends nothing is closed after a grace.
            grace = min(1.0, self.server.config.timeout_graceful_shutdown)
            self._set_timer(_SHUTDOWN, grace)

    def abort(self) -> None:
        """Close now, writing whatever is already queued first."""
        if self.transport is None or self.closed:
            return
        if type(self.core) is HTTP2Connection:
            # A GOAWAY first (RFC 9113 §6.8): the peer then knows no request was in flight,
            # rather than racing a new one against the close.
            self.core.start_shutdown()
        data = self.core.data_to_send()
        if data:
            self.transport.write(data)
        self.closed = True
        self._close_lingering(self.transport)

    def force_close(self) -> None:
        """Drop the connection, discarding unsent data (a peer that stopped reading)."""
        if self.transport is None:
            return
        self.closed = True
        self.transport.abort()

    def statistics(self) -> dict[str, Any]:
        stats: dict[str, Any] = {
            "streams": len(self.streams),
            "reading_paused": self.reading_paused,
            "write_paused": self.write_paused,
        }
        core_stats = getattr(self.core, "statistics", None)
        if core_stats is not None:
            stats.update(core_stats())
        return stats
