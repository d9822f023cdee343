"""HTTP/2 on the I/O shell: choosing the core, h2c upgrades, and per-stream flow control.

``ConnectionProtocol`` stays one class for every core; this module holds what only HTTP/2 needs
from the shell:

- ``select_core`` (at ``connection_made``): over TLS the ALPN result decides; on cleartext a
  ``PrefaceSniffer`` looks at the first bytes for the prior-knowledge preface, then swaps itself
  for the real core, so HTTP/1.1 connections pay for it once.
- ``start_h2c``: an HTTP/1.1 request with ``Upgrade: h2c`` gets 101 and becomes stream 1.
- ``acknowledge`` / ``wait_window`` / ``app_finished``: what ``HTTPExchange`` calls so that the
  peer's DATA is acknowledged as the app consumes it and the app's ``send()`` waits while the
  stream or connection window is closed. A window that stays closed for
  ``--timeout-request-body`` seconds (a zero-window stall) resets the stream.
- a repeating timer per connection advances the abuse-limit window (the core reads no clock)
  and sends keepalive PINGs when ``--http2-ping-interval`` is set.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING, Any, Final

from pronghorn.config import Config
from pronghorn.errors import ClientDisconnected, LocalProtocolError
from pronghorn.protocols.events import InboundEvent, OutboundEvent, RequestReceived, ResetStream
from pronghorn.protocols.http1 import HTTP1Connection
from pronghorn.protocols.http2 import HTTP2Connection, HTTP2Limits
from pronghorn.protocols.negotiate import (
    H2C_SWITCHING,
    Choice,
    from_alpn,
    from_first_bytes,
    h2c_settings,
)
from pronghorn.server.awaits import delegate

if TYPE_CHECKING:
    from pronghorn.server.protocol import ConnectionProtocol

logger = logging.getLogger("pronghorn.error")

#: RST_STREAM code for a stream whose window never opened (RFC 9113 §7: CANCEL).
_CANCEL: Final = 0x8

_LIMITS: Final[dict[int, tuple[Config, HTTP2Limits]]] = {}


def http2_limits(config: Config) -> HTTP2Limits:
    """The core's limits for ``config`` (built once per Config object)."""
    cached = _LIMITS.get(id(config))
    if cached is not None and cached[0] is config:
        return cached[1]
    limits = HTTP2Limits(
        max_concurrent_streams=config.http2_max_concurrent_streams,
        max_header_list_size=config.http2_max_header_list_size,
        initial_window_size=config.http2_initial_window_size,
        max_frame_size=config.http2_max_frame_size,
        max_body=config.limit_request_body,
        max_path=config.limit_request_line,
        max_headers=config.limit_request_headers,
        enable_connect_protocol=config.ws != "none",
        max_resets=config.http2_max_resets,
    )
    _LIMITS[id(config)] = (config, limits)
    return limits


def new_core(protocol: ConnectionProtocol) -> HTTP2Connection:
    server = protocol.server
    return HTTP2Connection(http2_limits(server.config), server.defaults, now=server.loop.time())


# --------------------------------------------------------------------------- core selection
def select_core(protocol: ConnectionProtocol, ssl_object: Any) -> None:
    """Pick the core for a new connection (``protocol.core`` starts as HTTP/1.1)."""
    config = protocol.server.config
    if not config.http2:
        return
    if ssl_object is not None:
        if from_alpn(ssl_object.selected_alpn_protocol()) is Choice.HTTP2:
            use_http2(protocol, new_core(protocol))
        return
    protocol.switch_core(PrefaceSniffer(protocol, protocol.core))


def use_http2(protocol: ConnectionProtocol, core: HTTP2Connection) -> None:
    protocol.switch_core(core)
    extensions = dict(protocol.conn_info.http_extensions)
    extensions["http.response.push"] = {}
    protocol.conn_info = dataclasses.replace(protocol.conn_info, http_extensions=extensions)
    protocol.schedule_flush()  # our SETTINGS go out without waiting for a request
    _ConnectionTimer(protocol, core).schedule()


class PrefaceSniffer:
    """A cleartext connection's first core: waits for enough bytes to tell the HTTP/2 preface
    (RFC 9113 §3.3) from an HTTP/1.1 request, then hands everything to the chosen core."""

    __slots__ = ("_buffer", "_closing", "_draining", "_http1", "_inner", "_protocol")

    def __init__(self, protocol: ConnectionProtocol, http1: Any) -> None:
        self._protocol = protocol
        #: The HTTP/1.1 core the connection was created with, reused when HTTP/1.1 it is.
        self._http1 = http1
        self._buffer = b""
        self._inner: Any = None
        self._closing = False
        #: Shutdown began before the first bytes told the protocol: the request on its way is
        #: still answered, by whichever core it turns out to need, and then the core closes.
        self._draining = False

    @property
    def should_close(self) -> bool:
        inner = self._inner
        return self._closing if inner is None else bool(inner.should_close)

    @should_close.setter
    def should_close(self, value: bool) -> None:
        self._closing = value

    @property
    def wants_read(self) -> bool:
        inner = self._inner
        return True if inner is None else bool(inner.wants_read)

    def receive_data(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.receive_data(data)
            return
        buffer = self._buffer + data
        choice = from_first_bytes(buffer)
        if choice is Choice.UNDECIDED:
            self._buffer = buffer
            return
        self._buffer = b""
        protocol = self._protocol
        if choice is Choice.HTTP2:
            core: Any = new_core(protocol)
            use_http2(protocol, core)
        else:
            core = self._http1
            if not isinstance(core, HTTP1Connection):
                server = protocol.server
                core = HTTP1Connection(server.h1_limits, server.defaults)
            protocol.switch_core(core)
        self._http1 = None
        self._inner = core
        core.receive_data(buffer)
        if self._draining:
            core.start_shutdown()

    def receive_eof(self) -> None:
        if self._inner is not None:
            self._inner.receive_eof()
        self._closing = True

    def next_events(self) -> list[InboundEvent]:
        return [] if self._inner is None else list(self._inner.next_events())

    def send(self, event: OutboundEvent) -> None:
        raise LocalProtocolError(f"nothing to send {event!r} on before the first request")

    def data_to_send(self) -> bytes:
        return b"" if self._inner is None else bytes(self._inner.data_to_send())

    def start_shutdown(self) -> None:
        if self._inner is not None:
            self._inner.start_shutdown()
        else:
            self._draining = True


class _ConnectionTimer:
    """Ticks the core's abuse-limit window; sends keepalive PINGs; closes on a lost PING."""

    __slots__ = ("_core", "_next_ping", "_protocol")

    def __init__(self, protocol: ConnectionProtocol, core: HTTP2Connection) -> None:
        self._protocol = protocol
        self._core = core
        interval = protocol.server.config.http2_ping_interval
        self._next_ping = (
            protocol.server.loop.time() + interval if interval and interval > 0 else None
        )

    def schedule(self) -> None:
        interval = self._protocol.server.config.http2_ping_interval
        period = 10.0 if not interval or interval <= 0 else min(10.0, interval)
        self._protocol.server.loop.call_later(period, self._fire)

    def _fire(self) -> None:
        protocol = self._protocol
        core = self._core
        if protocol.closed or protocol.core is not core:
            return
        now = protocol.server.loop.time()
        core.tick(now)
        interval = protocol.server.config.http2_ping_interval
        if self._next_ping is not None and interval and now >= self._next_ping:
            if core.ping_outstanding:
                logger.debug("HTTP/2 PING to %s unanswered; closing", protocol.conn_info.client)
                protocol.abort()
                return
            core.send_ping()
            protocol.flush()
            self._next_ping = now + interval
        self.schedule()


# --------------------------------------------------------------------------- h2c
def start_h2c(protocol: ConnectionProtocol, request: RequestReceived) -> bool:
    """Accept an ``Upgrade: h2c`` request (RFC 7540 §3.2); False serves it as HTTP/1.1."""
    transport = protocol.transport
    config = protocol.server.config
    if transport is None or protocol.closed:
        return False
    tls = transport.get_extra_info("ssl_object") is not None
    settings = h2c_settings(request, http2=config.http2, tls=tls)
    if settings is None:
        return False
    h1 = protocol.core
    trailing: bytes = getattr(h1, "trailing_data", b"")
    transport.write(h1.data_to_send() + H2C_SWITCHING)
    server = protocol.server
    core = HTTP2Connection.from_upgrade(
        settings, request, http2_limits(config), server.defaults, now=server.loop.time()
    )
    use_http2(protocol, core)
    if trailing:
        core.receive_data(trailing)
    return True


# --------------------------------------------------------------------------- per stream
def acknowledge(
    protocol: ConnectionProtocol, core: HTTP2Connection, stream_id: int, message: Any
) -> None:
    """The app's receive() took a body chunk: open the peer's window by as much."""
    body = message.get("body")
    if body:
        core.acknowledge(stream_id, len(body))
        protocol.schedule_flush()


async def wait_window(protocol: ConnectionProtocol, core: HTTP2Connection, stream_id: int) -> None:
    """Return once the stream's buffered DATA has gone out; reset it if the peer never opens
    its window (raises ClientDisconnected then)."""
    if not core.is_blocked(stream_id):
        return
    protocol.flush()
    loop = protocol.server.loop
    timeout = protocol.server.config.timeout_send
    deadline = loop.time() + timeout if timeout and timeout > 0 else None
    while core.is_blocked(stream_id) and not protocol.closed:
        # WindowOpened (and a reset of the stream) wake every writer of the connection; each
        # checks its own stream.
        waiter = protocol.writable_waiter()
        remaining = None if deadline is None else deadline - loop.time()
        try:
            await delegate(asyncio.wait_for(waiter, remaining))
        except TimeoutError:
            logger.debug("HTTP/2 stream %d: window closed too long; resetting", stream_id)
            core.send(ResetStream(stream_id, _CANCEL))
            protocol.flush()
            raise ClientDisconnected("the client stopped reading (flow-control window)") from None
    if protocol.closed:
        raise ClientDisconnected("the client disconnected")
    # A stream the peer reset while we waited is reported by the next send().
