"""The response side of the HTTP/2 core: heads, bodies under flow control, trailers, 1xx, push.

What may change state: ``HTTP2Connection.send`` calls in here for the app's events, and the
connection's receive side calls ``flush``/``flush_all`` when the peer opens a window. A body that
does not fit in the stream and connection windows waits in the stream's ``out`` list; the stream
is then listed in ``blocked`` (the shell makes the app's send() wait) until it drains, when
``WindowOpened`` is emitted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Final

import h2.connection
import h2.exceptions
from h2.errors import ErrorCodes

from pronghorn.errors import LocalProtocolError, ResponseLengthError
from pronghorn.protocols.events import (
    AppHeaders,
    Headers,
    InboundEvent,
    InformationalResponse,
    PushPromise,
    RequestEnded,
    RequestReceived,
    Response,
    WindowOpened,
    has_bad_byte,
)
from pronghorn.protocols.heads import HeadKey, remember
from pronghorn.protocols.http1 import DefaultHeaders
from pronghorn.protocols.http2_stream import (
    STATUS_CODES,
    STREAM_BODY,
    STREAM_ENDED,
    STREAM_HEAD_HELD,
    H2Stream,
    clean_fields,
    require,
)


class _AppHead:
    """An app's response header list as HTTP/2 sends it, checked once (``heads.remember``):
    lower-case names, hop-by-hop fields dropped."""

    __slots__ = ("content_length", "fields", "names")

    def __init__(self, headers: AppHeaders) -> None:
        self.fields = clean_fields(headers, "response header")
        #: What the app sets itself: a default (Server, Date, ``--header``) of the same name
        #: is left out.
        self.names = frozenset(name for name, _ in self.fields)
        self.content_length: int | None = None
        for name, value in self.fields:
            if name == b"content-length":
                try:
                    self.content_length = int(value)
                except ValueError:
                    raise ValueError(f"Invalid content-length {value!r}") from None


_APP_HEADS: Final[dict[HeadKey, _AppHead]] = {}


class H2Sender:
    """Writes the app's responses into h2, never past the peer's flow-control windows."""

    __slots__ = ("_blocked", "_defaults", "_emit", "_h2", "_release", "_streams")

    def __init__(
        self,
        conn: h2.connection.H2Connection,
        streams: dict[int, H2Stream],
        emit: Callable[[InboundEvent], None],
        defaults: DefaultHeaders,
        release: Callable[[H2Stream], None],
    ) -> None:
        self._h2 = conn
        self._streams = streams
        self._emit = emit
        self._defaults = defaults
        self._release = release
        #: Streams with DATA waiting for window, in the order they are served (a dict as an
        #: ordered set: moving a served stream to the end keeps the sharing round-robin).
        self._blocked: dict[int, None] = {}

    def is_blocked(self, stream_id: int) -> bool:
        return stream_id in self._blocked

    @property
    def blocked_count(self) -> int:
        return len(self._blocked)

    def unblock(self, stream_id: int) -> None:
        """The stream ended without draining (reset): whoever waits on it must wake up."""
        if stream_id in self._blocked:
            del self._blocked[stream_id]
            self._emit(WindowOpened(stream_id))

    def clear(self) -> None:
        self._blocked.clear()

    def begin_response(self, stream: H2Stream, event: Response) -> None:
        status = event.status
        stream.no_body = stream.method == b"HEAD" or status in (204, 304)
        stream.head = event
        stream.sending = STREAM_HEAD_HELD
        if stream.tunnel:
            self._write_head(stream, end_stream=False)  # the tunnel's peer waits for it

    def _write_head(self, stream: H2Stream, *, end_stream: bool) -> None:
        event = stream.head
        if event is None:
            raise LocalProtocolError("no response head to write")
        stream.head = None
        app = remember(_APP_HEADS, event.headers, _AppHead)
        if app.content_length is not None and not stream.no_body:
            stream.remaining = app.content_length
        headers: Headers = [(b":status", STATUS_CODES.get(event.status) or b"%d" % event.status)]
        names = app.names
        for pair in self._defaults.h2_pairs:
            if pair[0] not in names:
                headers.append(pair)
        headers += app.fields
        self._h2.send_headers(stream.stream_id, headers, end_stream=end_stream)
        stream.sending = STREAM_ENDED if end_stream else STREAM_BODY

    def send_body(self, stream: H2Stream, data: bytes, end: bool) -> None:
        if stream.sending is STREAM_HEAD_HELD:
            if end and (not data or stream.no_body) and stream.trailers is None:
                if stream.remaining:
                    self._length_error(stream, "shorter")
                self._write_head(stream, end_stream=True)
                self._release(stream)
                return
            self._write_head(stream, end_stream=False)
        require(stream.sending is STREAM_BODY, f"Body in state {stream.sending.value}")
        require(not stream.end_pending, "Body after the end of the body")
        if data and not stream.no_body:
            remaining = stream.remaining
            if remaining is not None:
                remaining -= len(data)
                stream.remaining = remaining
                if remaining < 0:
                    self._length_error(stream, "longer")
            stream.out.append(data)
            stream.out_size += len(data)
        if end:
            if stream.remaining:
                self._length_error(stream, "shorter")
            stream.end_pending = True
        self.flush(stream)

    def _length_error(self, stream: H2Stream, which: str) -> None:
        self.reset(stream, ErrorCodes.INTERNAL_ERROR)
        raise ResponseLengthError(f"Response body {which} than its Content-Length")

    def send_trailers(self, stream: H2Stream, headers: Headers) -> None:
        if stream.sending is STREAM_HEAD_HELD:
            self._write_head(stream, end_stream=False)
        stream.trailers = clean_fields(headers, "trailer")
        stream.end_pending = True
        self.flush(stream)

    def send_informational(self, stream: H2Stream, event: InformationalResponse) -> None:
        if event.status == 100:
            if stream.continue_sent or stream.request_done:
                return
            stream.continue_sent = True
        headers = [(b":status", STATUS_CODES.get(event.status) or b"%d" % event.status)]
        self._h2.send_headers(stream.stream_id, headers + clean_fields(event.headers, "header"))

    def reset(self, stream: H2Stream, error_code: int) -> None:
        if stream.sending is not STREAM_ENDED:
            # A stream already closed on the wire has nothing left to abort.
            with contextlib.suppress(h2.exceptions.StreamClosedError):
                self._h2.reset_stream(stream.stream_id, error_code)
        stream.drop_output()
        self._blocked.pop(stream.stream_id, None)

    # -------------------------------------------------------------- flow control
    def flush(self, stream: H2Stream) -> None:
        """Send what the windows allow; a stream left with data waits in ``_blocked``."""
        conn = self._h2
        stream_id = stream.stream_id
        out = stream.out
        while out:
            window = conn.local_flow_control_window(stream_id)
            if window <= 0:
                break
            chunk = out[0]
            offset = stream.offset
            size = min(window, conn.max_outbound_frame_size, len(chunk) - offset)
            if offset == 0 and size == len(chunk):
                piece: bytes | memoryview = chunk
                out.pop(0)
            else:
                piece = memoryview(chunk)[offset : offset + size]
                offset += size
                if offset == len(chunk):
                    out.pop(0)
                    offset = 0
                stream.offset = offset
            stream.out_size -= size
            last = not out and stream.end_pending and stream.trailers is None
            conn.send_data(stream_id, piece, end_stream=last)
            if last:
                stream.end_pending = False
                stream.sending = STREAM_ENDED
        if out:
            self._blocked[stream_id] = None
            return
        if stream.end_pending:
            if stream.trailers is not None:
                conn.send_headers(stream_id, stream.trailers, end_stream=True)
                stream.trailers = None
            else:
                conn.end_stream(stream_id)
            stream.end_pending = False
            stream.sending = STREAM_ENDED
        if stream_id in self._blocked:
            del self._blocked[stream_id]
            self._emit(WindowOpened(stream_id))
        if stream.sending is STREAM_ENDED:
            self._release(stream)

    def flush_all(self) -> None:
        for stream_id in list(self._blocked):
            if self._h2.outbound_flow_control_window <= 0:
                break
            stream = self._streams.get(stream_id)
            if stream is None:
                self._blocked.pop(stream_id, None)
                continue
            # Move to the back before serving: a stream that stays blocked waits its turn.
            del self._blocked[stream_id]
            self._blocked[stream_id] = None
            self.flush(stream)

    # -------------------------------------------------------------- server push
    def push(self, stream: H2Stream, event: PushPromise) -> None:
        """Server push (RFC 9113 §8.4) when the client allows it; otherwise ignored, as the
        ASGI spec permits. The promised request reaches the shell like a received one."""
        conn = self._h2
        if (
            not conn.remote_settings.enable_push
            or stream.tunnel
            or conn.open_outbound_streams >= conn.remote_settings.max_concurrent_streams
        ):
            return
        if has_bad_byte(event.path) or not event.path.startswith(b"/"):
            raise ValueError(f"Invalid push path {event.path!r}")
        headers = clean_fields(event.headers, "header")
        promised = conn.get_next_available_stream_id()
        conn.push_stream(
            stream.stream_id,
            promised,
            [
                (b":method", b"GET"),
                (b":path", event.path),
                (b":scheme", stream.scheme.encode()),
                (b":authority", stream.authority or b""),
                *headers,
            ],
        )
        pushed = H2Stream(promised, b"GET", stream.scheme, stream.authority)
        pushed.request_done = True
        self._streams[promised] = pushed
        self._emit(
            RequestReceived(
                promised,
                b"GET",
                event.path,
                "2",
                headers,
                authority=stream.authority,
                scheme=stream.scheme,
            )
        )
        self._emit(RequestEnded(promised))
