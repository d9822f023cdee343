"""HTTP/2 (RFC 9113) as a sans-IO core on h2, with the contract of ``HTTP1Connection``.

What may change state, and nowhere else:
- ``receive_data`` / ``receive_eof``: h2's events are translated in ``_dispatch``; the abuse
  guards (protocols/http2_limits.py) may terminate the connection before h2 sees the bytes.
- ``send``: the app's response side, per stream; ``_flush`` moves buffered DATA as the stream
  and connection windows allow and emits ``WindowOpened`` when a blocked stream drains.
- ``acknowledge`` / ``app_finished`` / ``start_shutdown`` / ``tick`` / ``send_ping``: calls
  from the I/O shell.

Flow control, inbound: DATA is acknowledged (WINDOW_UPDATE) only when the shell reports that the
app consumed it, so a slow app slows its own stream, and the connection window bounds the body
bytes one connection may hold in memory. Outbound: the core buffers what does not fit in the
windows; the shell makes the app's ``send()`` wait while ``is_blocked(stream_id)``.

Peer misbehaviour never raises: h2 queues its GOAWAY before raising, we queue ours for the abuse
limits, then ``ProtocolViolation`` is emitted and ``should_close`` set.
"""

from __future__ import annotations

import contextlib
from typing import Final, assert_never

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hpack import HPACKError
from hyperframe.exceptions import HyperframeError
from hyperframe.frame import GoAwayFrame

from pronghorn.protocols.events import (
    AcceptWebSocket,
    Body,
    BodyReceived,
    CloseWebSocket,
    InboundEvent,
    InformationalResponse,
    OutboundEvent,
    ProtocolViolation,
    PushPromise,
    RequestEnded,
    RequestReceived,
    ResetStream,
    Response,
    StreamReset,
    Trailers,
    WebSocketMessage,
)
from pronghorn.protocols.http1 import DefaultHeaders
from pronghorn.protocols.http2_headers import MalformedHeaders, check_trailers, parse_request_head
from pronghorn.protocols.http2_hpack import ReusingDecoder, ReusingEncoder
from pronghorn.protocols.http2_limits import FloodGuard, FrameScanner, HTTP2Limits
from pronghorn.protocols.http2_send import H2Sender
from pronghorn.protocols.http2_stream import (
    STATUS_CODES,
    STREAM_BODY,
    STREAM_ENDED,
    STREAM_HEAD_HELD,
    STREAM_IDLE,
    H2Stream,
    clean_fields,
    require,
)

__all__ = ["HTTP2Connection", "HTTP2Limits"]

_PEER_ERRORS: Final = (h2.exceptions.ProtocolError, HyperframeError, HPACKError)
#: Fields of an h2c upgrade request that belonged to the HTTP/1.1 hop only.
_UPGRADE_ONLY: Final = frozenset((b"connection", b"upgrade", b"http2-settings", b"host"))


def _h2_config() -> h2.config.H2Configuration:
    # Both directions are checked here rather than by h2: inbound blocks in one pass by
    # protocols/http2_headers.py (and a malformed one is a stream error, not a connection
    # error); outbound ones as the core builds them.
    return h2.config.H2Configuration(
        client_side=False,
        header_encoding=None,
        validate_inbound_headers=False,
        normalize_inbound_headers=False,
        validate_outbound_headers=False,
        normalize_outbound_headers=False,
    )


class HTTP2Connection:
    """One HTTP/2 connection, server side."""

    __slots__ = (
        "_defaults",
        "_events",
        "_goaway_last",
        "_guard",
        "_h2",
        "_limits",
        "_out",
        "_ping_count",
        "_scanner",
        "_sender",
        "_streams",
        "_terminated",
        "ping_outstanding",
        "should_close",
    )

    def __init__(
        self,
        limits: HTTP2Limits | None = None,
        defaults: DefaultHeaders | None = None,
        *,
        now: float = 0.0,
        _upgrade_settings: bytes | None = None,
    ) -> None:
        limits = limits or HTTP2Limits()
        self._limits = limits
        self._defaults = defaults or DefaultHeaders([])
        self._streams: dict[int, H2Stream] = {}
        self._events: list[InboundEvent] = []
        self._out: list[bytes] = []
        self._terminated = False
        self._goaway_last: int | None = None
        self._ping_count = 0
        self._guard = FloodGuard(limits, now)
        self._scanner = FrameScanner(limits)
        self.should_close = False
        #: A keepalive PING went out and its ACK has not come back.
        self.ping_outstanding = False
        conn = h2.connection.H2Connection(config=_h2_config())
        # Our settings apply from the first byte (not only once the peer ACKs them), so a
        # peer cannot exceed them in the window before its ACK.
        conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_header_list_size,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: limits.initial_window_size,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: limits.max_frame_size,
                h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: int(
                    limits.enable_connect_protocol
                ),
            },
        )
        conn.max_inbound_frame_size = limits.max_frame_size
        conn.encoder = ReusingEncoder()
        conn.decoder = ReusingDecoder(limits.max_header_list_size)
        conn.decoder.max_allowed_table_size = conn.local_settings.header_table_size
        self._h2 = conn
        self._sender = H2Sender(
            conn, self._streams, self._events_append, self._defaults, self._release
        )
        if _upgrade_settings is None:
            conn.initiate_connection()
        else:
            conn.initiate_upgrade_connection(_upgrade_settings)
        extra = limits.receive_window - 65535
        if extra > 0:
            conn.increment_flow_control_window(extra)

    @classmethod
    def from_upgrade(
        cls,
        settings_header: bytes,
        request: RequestReceived,
        limits: HTTP2Limits | None = None,
        defaults: DefaultHeaders | None = None,
        *,
        now: float = 0.0,
    ) -> HTTP2Connection:
        """The connection after an accepted ``Upgrade: h2c`` (RFC 7540 §3.2): the HTTP/1.1
        request becomes stream 1, already complete; the client's preface follows."""
        try:
            self = cls(limits, defaults, now=now, _upgrade_settings=settings_header)
        except (*_PEER_ERRORS, ValueError) as exc:
            self = cls(limits, defaults, now=now)
            self._fail(ErrorCodes.PROTOCOL_ERROR, f"bad HTTP2-Settings: {exc}")
            return self
        authority = next((v for n, v in request.headers if n == b"host"), None)
        headers = [(n, v) for n, v in request.headers if n not in _UPGRADE_ONLY]
        stream = H2Stream(1, request.method, "http", authority)
        stream.request_done = True
        self._streams[1] = stream
        self._events.append(
            RequestReceived(
                1, request.method, request.target, "2", headers, authority=authority, scheme="http"
            )
        )
        self._events.append(RequestEnded(1))
        return self

    # ------------------------------------------------------------------ queries
    @property
    def wants_read(self) -> bool:
        return not self._terminated

    @property
    def idle(self) -> bool:
        """No stream in progress: the keep-alive timeout applies."""
        return not self._streams and not self._terminated

    def is_blocked(self, stream_id: int) -> bool:
        """The stream has DATA waiting for window; the app's send() should wait."""
        return self._sender.is_blocked(stream_id)

    def outbound_window(self, stream_id: int) -> int:
        """Bytes that may be sent on the stream now (stream and connection window); stream 0
        is the connection window alone."""
        if stream_id == 0:
            return int(self._h2.outbound_flow_control_window)
        try:
            return self._h2.local_flow_control_window(stream_id)
        except h2.exceptions.NoSuchStreamError:
            return 0

    def stream_closed(self, stream_id: int) -> bool:
        stream = self._streams.get(stream_id)
        return stream is None or stream.sending is STREAM_ENDED

    def statistics(self) -> dict[str, int]:
        streams = self._streams.values()
        return {
            "active_streams": len(self._streams),
            "blocked_streams": self._sender.blocked_count,
            "buffered_out": sum(s.out_size for s in streams),
            "unacknowledged_in": sum(s.unacked for s in streams),
            "resets_in_window": self._guard.resets,
        }

    # ------------------------------------------------------------------ receive side
    def receive_data(self, data: bytes) -> None:
        if self._terminated or not data:
            return
        reason = self._scanner.scan(data)
        if reason is not None:
            self._fail(ErrorCodes.ENHANCE_YOUR_CALM, reason)
            return
        try:
            events = self._h2.receive_data(data)
        except _PEER_ERRORS as exc:
            code = getattr(exc, "error_code", None) or ErrorCodes.PROTOCOL_ERROR
            # h2 queues its GOAWAY (closing its state machine) for frame errors, not for a bad
            # preface or an error outside its frame loop.
            queued = self._h2.state_machine.state is h2.connection.ConnectionState.CLOSED
            self._fail(code, str(exc) or type(exc).__name__, goaway_queued=queued)
            return
        for event in events:
            self._dispatch(event)
        reason = self._guard.exceeded(self._scanner.empty_frames)
        if reason is not None:
            self._fail(ErrorCodes.ENHANCE_YOUR_CALM, reason)

    def receive_eof(self) -> None:
        if not self._terminated:
            self._abort_streams()
        self._terminated = True
        self.should_close = True

    def _events_append(self, event: InboundEvent) -> None:
        self._events.append(event)

    def next_events(self) -> list[InboundEvent]:
        events = self._events
        if events:
            self._events = []
        return events

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._on_request(event)
        elif isinstance(event, h2.events.DataReceived):
            self._on_data(event)
        elif isinstance(event, h2.events.StreamEnded):
            self._on_stream_ended(event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            self._on_trailers(event)
        elif isinstance(event, h2.events.WindowUpdated):
            if event.stream_id:
                if self._sender.is_blocked(event.stream_id):
                    self._sender.flush(self._streams[event.stream_id])
            else:
                self._sender.flush_all()
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._guard.settings += 1
            if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                self._sender.flush_all()
        elif isinstance(event, h2.events.PingReceived):
            self._guard.pings += 1  # h2 already queued the ACK
        elif isinstance(event, h2.events.PingAckReceived):
            self.ping_outstanding = False
        elif isinstance(event, h2.events.StreamReset):
            self._on_reset(event)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._on_goaway(event)
        # Priority, ALTSVC, unknown frames and SETTINGS ACKs need no action.

    def _on_request(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id
        if self._goaway_last is not None and stream_id > self._goaway_last:
            self._refuse(stream_id, ErrorCodes.REFUSED_STREAM)  # opened after our GOAWAY
            return
        if len(self._streams) >= self._limits.max_concurrent_streams:
            # h2 counts streams by protocol state; we also count streams whose app is still
            # running after a reset, which is what rapid reset exploits.
            self._guard.resets += 1
            self._refuse(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        try:
            head = parse_request_head(event.headers)
        except MalformedHeaders:
            # RFC 9113 §8.1.1: a malformed request is a stream error; the connection lives on.
            # Each one costs us a frame, so it counts against the same budget as resets.
            self._guard.resets += 1
            self._refuse(stream_id, ErrorCodes.PROTOCOL_ERROR)
            return
        method = head.method
        path = head.path
        protocol = None if head.protocol is None else head.protocol.lower()
        headers = head.headers
        authority = head.authority
        scheme = "http" if head.scheme is None else head.scheme.decode("latin-1")
        limits = self._limits
        tunnel = method == b"CONNECT"
        if tunnel and (protocol != b"websocket" or not limits.enable_connect_protocol):
            # Classic CONNECT proxying and unknown extended-CONNECT protocols are not served.
            self._answer(stream_id, 501)
            return
        if path is not None and len(path) > limits.max_path:
            self._answer(stream_id, 414)  # the HTTP/1.1 request-line limit, applied alike
            return
        if len(headers) > limits.max_headers:
            self._answer(stream_id, 431)
            return
        stream = H2Stream(stream_id, method, scheme, authority, tunnel=tunnel)
        self._streams[stream_id] = stream
        ended = event.stream_ended is not None
        self._events.append(
            RequestReceived(
                stream_id,
                method,
                path or b"",
                "2",
                headers,
                True,
                not ended,
                head.expect_continue,
                protocol if tunnel else None,
                authority,
                scheme,
            )
        )

    def _on_trailers(self, event: h2.events.TrailersReceived) -> None:
        stream = self._streams.get(event.stream_id)
        try:
            trailers = check_trailers(event.headers)
        except MalformedHeaders:
            self._guard.resets += 1
            self._refuse(event.stream_id, ErrorCodes.PROTOCOL_ERROR)
            if stream is not None:
                self._drop_stream(stream, ErrorCodes.PROTOCOL_ERROR)
            return
        if stream is not None:
            stream.trailers_in = trailers

    def _answer(self, stream_id: int, status: int) -> None:
        """Refuse a request with a bodiless status, without involving the app."""
        head = [(b":status", STATUS_CODES[status]), *self._defaults.pairs]
        with contextlib.suppress(h2.exceptions.StreamClosedError):
            self._h2.send_headers(stream_id, [*head, (b"content-length", b"0")], end_stream=True)

    def _refuse(self, stream_id: int, error_code: int) -> None:
        # h2 hands us a whole chunk's events at once: the peer may already have reset the
        # stream we are about to refuse.
        with contextlib.suppress(h2.exceptions.StreamClosedError):
            self._h2.reset_stream(stream_id, error_code)

    def _on_data(self, event: h2.events.DataReceived) -> None:
        stream_id = event.stream_id
        length = event.flow_controlled_length or 0
        data = event.data or b""
        stream = self._streams.get(stream_id)
        if stream is None or stream.discard or stream.request_done:
            if length:  # nobody will read it: give the window straight back
                self._h2.acknowledge_received_data(length, stream_id)
            return
        padding = length - len(data)
        if padding:  # padding is never the app's to consume
            self._h2.acknowledge_received_data(padding, stream_id)
        if not data:
            return
        stream.body_received += len(data)
        limit = self._limits.max_body
        if limit is not None and stream.body_received > limit and not stream.tunnel:
            self._refuse_body(stream, len(data))
            return
        stream.unacked += len(data)
        self._events.append(BodyReceived(stream_id, bytes(data)))

    def _refuse_body(self, stream: H2Stream, pending: int) -> None:
        """The body passed ``max_body``: answer 413 if we still can, stop the app's cycle."""
        stream.discard = True
        self._h2.acknowledge_received_data(pending + stream.unacked, stream.stream_id)
        stream.unacked = 0
        stream_id = stream.stream_id
        if stream.sending is STREAM_IDLE:
            body = b"Payload Too Large: Request body too large\n"
            head = [
                (b":status", b"413"),
                *self._defaults.pairs,
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(body)),
            ]
            with contextlib.suppress(h2.exceptions.StreamClosedError):
                self._h2.send_headers(stream_id, head)
                self._h2.send_data(stream_id, body, end_stream=True)
        elif stream.sending is not STREAM_ENDED:
            self._refuse(stream_id, ErrorCodes.CANCEL)
        stream.drop_output()
        self._sender.unblock(stream_id)
        self._events.append(StreamReset(stream_id, ErrorCodes.CANCEL))

    def _on_stream_ended(self, stream_id: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or stream.request_done:
            return
        stream.request_done = True
        if not stream.discard:
            self._events.append(RequestEnded(stream_id, stream.trailers_in))

    def _on_reset(self, event: h2.events.StreamReset) -> None:
        if event.remote_reset:
            self._guard.resets += 1
        stream = self._streams.get(event.stream_id)
        if stream is not None:
            self._drop_stream(stream, int(event.error_code or 0))

    def _drop_stream(self, stream: H2Stream, error_code: int) -> None:
        """The stream is reset: nothing more goes out, and the app hears of it."""
        stream.request_done = True
        stream.drop_output()
        self._sender.unblock(stream.stream_id)
        self._events.append(StreamReset(stream.stream_id, error_code))
        self._release(stream)

    def _on_goaway(self, event: h2.events.ConnectionTerminated) -> None:
        if event.error_code:
            self._abort_streams()
            self._terminated = True
            self.should_close = True
            return
        # A graceful GOAWAY: our streams may finish. h2 moved its connection state machine to
        # CLOSED, which would refuse our responses; put it back so they can be written.
        self._h2.state_machine.state = h2.connection.ConnectionState.SERVER_OPEN
        if self._goaway_last is None:
            self._goaway_last = self._h2.highest_inbound_stream_id
        if not self._streams:
            self.should_close = True

    # ------------------------------------------------------------------ shell hooks
    def tick(self, now: float) -> None:
        """Advance the abuse-limit window to ``now`` (the shell's monotonic clock)."""
        if self._guard.tick(now):
            self._scanner.empty_frames = 0

    def acknowledge(self, stream_id: int, nbytes: int) -> None:
        """The app consumed ``nbytes`` of the stream's body: let the peer send more."""
        stream = self._streams.get(stream_id)
        if stream is None or self._terminated:
            return
        nbytes = min(nbytes, stream.unacked)
        if nbytes > 0:
            stream.unacked -= nbytes
            self._h2.acknowledge_received_data(nbytes, stream_id)

    def app_finished(self, stream_id: int) -> None:
        """The stream's app task is done; a response it left unfinished is reset."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        stream.app_done = True
        if stream.sending is not STREAM_ENDED and not self._terminated:
            if stream.end_pending:
                return  # the response is complete but still waiting for window
            self._sender.reset(stream, ErrorCodes.INTERNAL_ERROR)
        self._release(stream)

    def start_shutdown(self) -> None:
        """Send GOAWAY (NO_ERROR, last stream id): no new streams; open ones may finish."""
        if self._goaway_last is not None or self._terminated:
            if not self._streams:
                self.should_close = True
            return
        last = self._h2.highest_inbound_stream_id
        self._goaway_last = last
        # Written by hand: h2's close_connection() would stop the streams still running.
        self._raw(GoAwayFrame(0, last_stream_id=last, error_code=0).serialize())
        if not self._streams:
            self.should_close = True

    def send_ping(self) -> None:
        """A keepalive PING; ``ping_outstanding`` stays True until its ACK arrives."""
        if self._terminated:
            return
        self._ping_count += 1
        self._h2.ping(self._ping_count.to_bytes(8, "big"))
        self.ping_outstanding = True

    # ------------------------------------------------------------------ send side
    def send(self, event: OutboundEvent) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is None or stream.sending is STREAM_ENDED or self._terminated:
            # The peer reset the stream or the connection is gone; what the app still sends
            # has nowhere to go (the shell reports the disconnect to the app).
            return
        if isinstance(event, Body):
            self._sender.send_body(stream, event.data, event.end)
        elif isinstance(event, Response):
            require(stream.sending is STREAM_IDLE, f"Response in state {stream.sending.value}")
            self._sender.begin_response(stream, event)
        elif isinstance(event, InformationalResponse):
            require(stream.sending is STREAM_IDLE, "1xx after the response started")
            self._sender.send_informational(stream, event)
        elif isinstance(event, Trailers):
            require(stream.sending in (STREAM_HEAD_HELD, STREAM_BODY), "Trailers before a response")
            self._sender.send_trailers(stream, event.headers)
        elif isinstance(event, PushPromise):
            # Not after our GOAWAY, and a pushed stream counts against our own stream limit.
            if self._goaway_last is None and (
                len(self._streams) < self._limits.max_concurrent_streams
            ):
                self._sender.push(stream, event)
        elif isinstance(event, AcceptWebSocket):
            require(stream.tunnel and stream.sending is STREAM_IDLE, "AcceptWebSocket misplaced")
            headers = [(b":status", b"200"), *clean_fields(event.headers, "header")]
            if event.subprotocol is not None:
                headers.append((b"sec-websocket-protocol", event.subprotocol.encode()))
            self._h2.send_headers(stream.stream_id, headers)
            stream.sending = STREAM_BODY
        elif isinstance(event, ResetStream):
            self._sender.reset(stream, event.error_code)
            self._release(stream)
        elif isinstance(event, (WebSocketMessage, CloseWebSocket)):
            require(False, "WebSocket frames over HTTP/2 are Body events on the tunnel")
        else:
            assert_never(event)

    # ------------------------------------------------------------------ endings
    def _release(self, stream: H2Stream) -> None:
        """Forget a stream once the app and the wire are both done with it."""
        if not stream.finished:
            return
        del self._streams[stream.stream_id]
        if stream.unacked and not self._terminated:
            # Body the app never read still counts against the connection window.
            self._h2.acknowledge_received_data(stream.unacked, stream.stream_id)
            stream.unacked = 0
        if self._goaway_last is not None and not self._streams:
            self.should_close = True

    def _abort_streams(self) -> None:
        for stream in self._streams.values():
            if stream.sending is not STREAM_ENDED or not stream.request_done:
                self._events.append(StreamReset(stream.stream_id))
            stream.drop_output()
        self._sender.clear()

    def _fail(self, code: int, reason: str, *, goaway_queued: bool = False) -> None:
        """The peer broke the protocol or a limit: GOAWAY, reset every stream, close."""
        if not goaway_queued:
            self._h2.close_connection(code, additional_data=reason.encode()[:256])
        self._abort_streams()
        self._terminated = True
        self.should_close = True
        status = 429 if code == ErrorCodes.ENHANCE_YOUR_CALM else 400
        self._events.append(ProtocolViolation(0, status, reason))

    def _raw(self, frame: bytes) -> None:
        """Queue a frame h2 does not produce for us, keeping the byte order."""
        pending = self._h2.data_to_send()
        if pending:
            self._out.append(pending)
        self._out.append(frame)

    def data_to_send(self) -> bytes:
        data = self._h2.data_to_send()
        if self._out:
            self._out.append(data)
            data = b"".join(self._out)
            self._out = []
        return data
