"""HTTP/1.1 (RFC 9112) as a sans-IO core on httptools (llhttp).

What may change state, and nowhere else:
- ``receive_data`` / ``receive_eof``: the parser callbacks below append events and may record a
  violation; nothing else touches the parse side.
- ``send``: the response side, one request at a time, strictly in order.

Requests are numbered as they are parsed. Only the events of the request being answered are
handed out by ``next_events``; the events of pipelined requests wait in a backlog until every
earlier response has ended, so the I/O shell never sees two requests at once. A request whose
response ended before its body arrived has its remaining body discarded, keeping the connection
usable. Peer misbehaviour never raises: the answer (400/413/414/431/501/505) is queued in order
behind earlier responses, a ``ProtocolViolation`` is emitted and ``should_close`` is set.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final

import httptools

from pronghorn.errors import LocalProtocolError, ResponseLengthError
from pronghorn.protocols.events import (
    COLON,
    AppHeaders,
    Body,
    BodyReceived,
    Headers,
    InboundEvent,
    InformationalResponse,
    InputEnded,
    OutboundEvent,
    ProtocolViolation,
    RequestEnded,
    RequestReceived,
    ResetStream,
    Response,
    StreamReset,
    Trailers,
    has_bad_byte,
)
from pronghorn.protocols.heads import HEAD_CACHE_SIZE, HeadKey, remember
from pronghorn.protocols.output import COPY_LIMIT, joined

__all__ = [
    "DISCARD_LIMIT",
    "HEAD_CACHE_SIZE",
    "IDLE_PARSERS_MAX",
    "PARSER_POOL",
    "DefaultHeaders",
    "HTTP1Connection",
    "HTTP1Limits",
]

STREAM_ID: Final = 1
#: Request body an app left unread that is still read and dropped to keep the connection
#: (Go's net/http draws the same line); past it the connection closes after the answer.
DISCARD_LIMIT: Final = 256 * 1024


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase.encode("ascii"))


STATUS_LINES: Final[dict[int, bytes]] = {
    status.value: _status_line(status.value) for status in HTTPStatus
}

#: Response headers the core must see: framing ones, and defaults an app header replaces.
_CONTENT_LENGTH: Final = 1
_TRANSFER_ENCODING: Final = 2
_CONNECTION: Final = 3
_DEFAULT: Final = 4
_FRAMING: Final = {
    b"content-length": _CONTENT_LENGTH,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"connection": _CONNECTION,
}
#: A response header block as RFC 9110 allows it: token names, values without CR, LF or NUL.
_VALID_BLOCK: Final = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [^\r\n\x00]*\r\n)*")


def _backlog_cost(event: InboundEvent) -> int:
    """What a pipelined event counts against ``max_backlog``: its body bytes, or a flat 256."""
    return len(event.data) if type(event) is BodyReceived else 256


class _HeadInfo:
    """An app's response header list, validated and encoded once: what ``_write_head`` needs
    of it whatever the request (keep-alive, HEAD, HTTP/1.0 decide the rest per response)."""

    __slots__ = ("block", "chunked", "close", "content_length", "lines", "overridden")

    def __init__(self, headers: AppHeaders, special: dict[bytes, int]) -> None:
        lines = []
        overridden: set[bytes] | None = None
        content_length: int | None = None
        chunked = close = False
        for name, value in headers:
            kind = special.get(name.lower())
            if kind is not None:
                if kind == _CONTENT_LENGTH:
                    try:
                        content_length = int(value)
                    except ValueError:
                        raise ValueError(f"Invalid content-length {value!r}") from None
                elif kind == _TRANSFER_ENCODING:
                    if value.lower().find(b"chunked") >= 0:
                        chunked = True
                        continue  # the core frames the body and writes its own header
                elif kind == _CONNECTION:
                    if value.lower().find(b"close") >= 0:
                        close = True
                        continue
                else:
                    if overridden is None:
                        overridden = set()
                    overridden.add(name.lower())
            lines.append(b"%s: %s\r\n" % (name, value))
        block = b"".join(lines)
        # One C-speed pass validates every name and value: no CR/LF/NUL can split the head.
        if block.count(b"\n") != len(lines) or _VALID_BLOCK.fullmatch(block) is None:
            raise ValueError(f"Invalid response header in {headers!r}")
        self.block = block
        self.lines = lines
        self.content_length = content_length
        self.chunked = chunked
        self.close = close
        self.overridden = None if overridden is None else frozenset(overridden)


class DefaultHeaders:
    """Headers every response carries unless the app sets its own (Server, Date, ``--header``).

    A shared, mutable holder: the I/O shell refreshes the Date once a second for every
    connection at once; the cores only read ``h1_block``, ``pairs`` and ``h2_pairs``.
    """

    __slots__ = (
        "_build",
        "_static",
        "date",
        "h1_block",
        "h2_pairs",
        "heads",
        "names",
        "pairs",
        "special",
    )

    def __init__(self, static: Headers) -> None:
        self._static = list(static)
        self.names = frozenset(name.lower() for name, _ in static) | {b"date"}
        self.special = {**dict.fromkeys(self.names, _DEFAULT), **_FRAMING}
        self.date: bytes | None = None
        self.pairs: Headers = []
        self.h1_block = b""
        self.h2_pairs: Headers = []
        #: App header lists already validated and encoded, shared by every connection: most
        #: apps send the same few lists again and again (see ``_HeadInfo``).
        self.heads: dict[HeadKey, _HeadInfo] = {}
        #: Bound once: a bound method made per response cost about 480 instructions.
        self._build = self._head_info
        self._rebuild()

    def set_date(self, value: bytes | None) -> None:
        if value is None:
            self.names = self.names - {b"date"}
            self.special = {**dict.fromkeys(self.names, _DEFAULT), **_FRAMING}
            self.heads = {}  # what counts as overriding a default changed
        self.date = value
        self._rebuild()

    def head_info(self, headers: AppHeaders) -> _HeadInfo:
        """The encoded, validated form of an app's response header list (ValueError if any
        name or value is invalid); cached while the cache is small."""
        return remember(self.heads, headers, self._build)

    def _head_info(self, headers: AppHeaders) -> _HeadInfo:
        return _HeadInfo(headers, self.special)

    def _rebuild(self) -> None:
        pairs = list(self._static)
        if self.date is not None:
            pairs.append((b"date", self.date))
        self.pairs = pairs
        self.h1_block = b"".join(b"%s: %s\r\n" % pair for pair in pairs)
        #: HTTP/2 field names are lower case (RFC 9113 §8.2.1).
        self.h2_pairs = [(name.lower(), value) for name, value in pairs]


@dataclass(frozen=True, slots=True)
class HTTP1Limits:
    max_request_line: int = 8190
    max_headers: int = 100
    max_header_size: int = 65536
    max_body: int | None = None
    #: Parsed-but-unanswered pipelined data beyond which ``wants_read`` turns False.
    max_backlog: int = 65536


class _Send(enum.Enum):
    IDLE = "idle"  # waiting for the app's response head
    HEAD_HELD = "head_held"  # Response received, written with the first Body
    BODY = "body"  # head written, body flowing
    CLOSED = "closed"  # nothing more may be written


# The members as module constants for the per-request code: on CPython 3.11 every
# ``_Send.X`` is a lookup through EnumType.__getattr__'s slow attribute path (about
# 900 instructions against some 60 for a global; 3.12 dropped that hook).
_SEND_IDLE: Final = _Send.IDLE
_SEND_HEAD_HELD: Final = _Send.HEAD_HELD
_SEND_BODY: Final = _Send.BODY
_SEND_CLOSED: Final = _Send.CLOSED


class _Violation(Exception):
    """Stops the parser from inside a callback; never leaves this module."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _is_token_list_chunked_only(value: bytes) -> bool:
    return value.strip().lower() == b"chunked"


class HTTP1Connection:
    """One HTTP/1.1 connection, server side."""

    __slots__ = (
        "_backlog",
        "_backlog_size",
        "_body_expected",
        "_body_received",
        "_chunked_response",
        "_continue_sent",
        "_declined_upgrade",
        "_defaults",
        "_discard_until",
        "_draining",
        "_expect_continue",
        "_head_bytes",
        "_header_count",
        "_header_size",
        "_headers",
        "_http10",
        "_in_head",
        "_in_trailers",
        "_keep_alive",
        "_limits",
        "_no_body",
        "_out",
        "_out_large",
        "_parse_index",
        "_pending_head",
        "_ready",
        "_remaining",
        "_request",
        "_request_method",
        "_send_state",
        "_serve_index",
        "_slot",
        "_stopped",
        "_synthetic_head",
        "_trailers",
        "_url",
        "_violation",
        "should_close",
        "trailing_data",
    )

    def __init__(self, limits: HTTP1Limits | None = None, defaults: DefaultHeaders | None = None):
        self._limits = limits or HTTP1Limits()
        self._defaults = defaults or DefaultHeaders([])
        #: The parser, taken from the pool when bytes arrive and given back at rest (rest()).
        self._slot: _ParserSlot | None = None
        self._ready: list[InboundEvent] = []
        #: Events of pipelined requests not being answered yet; made on first use (a deque
        #: is 600-odd bytes, and most connections never pipeline).
        self._backlog: deque[tuple[int, InboundEvent]] | None = None
        self._backlog_size = 0
        self._out: list[bytes] = []
        self._out_large = False  # a part of _out is at least COPY_LIMIT bytes
        self._parse_index = 0
        self._serve_index = 1
        self._stopped = False
        self._violation: tuple[int, int, str] | None = None
        self._in_head = False
        self._in_trailers = False
        self._head_bytes = 0
        self._header_count = 0
        self._header_size = 0
        self._url = b""
        self._headers: Headers = []
        self._trailers: Headers | None = None  # made when a chunked body has trailers
        self._body_received = 0
        #: The request body's Content-Length (None: chunked), for the discard decision.
        self._body_expected: int | None = 0
        #: Discarding an answered request's unread body stops (closing) past this count.
        self._discard_until = 0
        self._request: RequestReceived | None = None
        # response side (for the request being served)
        self._send_state = _SEND_IDLE
        self._pending_head: tuple[int, AppHeaders, bool] | None = None
        self._request_method = b""
        self._keep_alive = True
        self._http10 = False
        self._expect_continue = False
        self._continue_sent = False
        self._no_body = False
        self._remaining: int | None = None
        self._chunked_response = False
        self._draining = False
        #: The head that primes a fresh parser for a declined upgrade's body.
        self._declined_upgrade: bytes | None = None
        self._synthetic_head = False
        self.should_close = False
        #: Bytes after an upgrade request's head; they belong to the next protocol.
        self.trailing_data = b""

    # ------------------------------------------------------------------ receive side
    @property
    def wants_read(self) -> bool:
        return not self._stopped and self._backlog_size <= self._limits.max_backlog

    @property
    def pipelined_ready(self) -> bool:
        """A complete response was just queued and the next pipelined request waits in
        ``next_events()``: the shell may hold the write for that request's answer."""
        return bool(self._ready) and not self.should_close

    @property
    def receiving_head(self) -> bool:
        """Part of a request head has arrived (the shell runs the header timeout)."""
        return self._in_head

    def receive_data(self, data: bytes) -> None:
        if self._stopped or not data:
            return
        if self._in_head or self._parse_index < self._serve_index:
            self._head_bytes += len(data)
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        slot = self._slot
        if slot is None:
            slot = self._slot = PARSER_POOL.take(self)
        try:
            slot.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._on_upgrade(data, exc)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Violation):
                self._violate(cause.status, cause.reason)
            else:  # our own callback failed: a bug, never the peer's fault
                raise LocalProtocolError(f"HTTP/1.1 parser callback failed: {cause!r}") from exc
        except httptools.HttpParserInvalidMethodError:
            self._violate(400, "Invalid method")
        except httptools.HttpParserError as exc:
            message = str(exc)
            if "Invalid HTTP version" in message:
                self._violate(505, "HTTP version not supported")
            elif (
                "Invalid `Transfer-Encoding`" in message or "invalid `Transfer-Encoding`" in message
            ):
                self._violate(501, "Unsupported Transfer-Encoding")
            else:
                self._violate(400, message or "Malformed request")
        else:
            if self._in_head and self._head_bytes > self._max_head():
                if self._header_count == 0:
                    self._violate(414, "Request line too long")
                else:
                    self._violate(431, "Request header block too large")

    def receive_eof(self) -> None:
        """The peer half-closed. Requests already received are still answered, then we close."""
        if self._stopped:
            return
        partial_head = self._in_head
        if self._request is not None and not partial_head:
            self._emit(StreamReset(STREAM_ID))  # mid-body: the app sees a disconnect
        elif not partial_head and self._parse_index == self._serve_index:
            # A complete request is being answered: its app may wait in receive() for the
            # client to leave (long polls); the answer itself is still written.
            self._emit(InputEnded(STREAM_ID))
        self._stopped = True
        self._in_head = False
        if self._parse_index < self._serve_index or (
            partial_head and self._parse_index == self._serve_index
        ):
            self.should_close = True

    def _max_head(self) -> int:
        return self._limits.max_request_line + self._limits.max_header_size

    def rest(self) -> None:
        """Give the parser back to the pool if no request is partly received (the shell calls
        this when the connection turns idle). The next bytes take a parser again.

        At rest means every request llhttp has begun is answered (a begun message, even two
        bytes of a method, counts as parsed) and its body has ended. A connection that ends
        with this response, or whose parser stopped (violation, EOF, upgrade), keeps it:
        llhttp refuses input after such a message, so no other connection may get it.
        """
        slot = self._slot
        if (
            slot is not None
            and self._parse_index < self._serve_index
            and self._request is None
            and not self.should_close
            and not self._stopped
        ):
            self._slot = None
            PARSER_POOL.give(slot)

    def next_events(self) -> list[InboundEvent]:
        events = self._ready
        if events:
            self._ready = []
        return events

    # -- routing of parsed events
    def _emit(self, event: InboundEvent) -> None:
        index = self._parse_index
        if index == self._serve_index:
            self._ready.append(event)
        elif index > self._serve_index:
            backlog = self._backlog
            if backlog is None:
                backlog = self._backlog = deque()
            backlog.append((index, event))
            self._backlog_size += _backlog_cost(event)
        # else: the response already ended; a late body is discarded.

    def _on_upgrade(self, data: bytes, exc: Exception) -> None:
        offset = exc.args[0] if exc.args and isinstance(exc.args[0], int) else len(data)
        declined = self._declined_upgrade
        if declined is not None:
            # Parse the declined upgrade's body (and whatever follows) with a fresh parser,
            # primed with a head of the same framing whose callbacks are ignored.
            self._declined_upgrade = None
            assert self._slot is not None  # the parser that raised HttpParserUpgrade
            self._slot.parser = httptools.HttpRequestParser(self._slot)
            self._synthetic_head = True
            self._feed(declined + data[offset:])
            return
        request = self._last_request()
        if request is not None and request.method == b"CONNECT":
            # Classic CONNECT tunnels are not served: answer it as a plain request and close.
            request.upgrade = None
            request.keep_alive = False
            self._stopped = True
            return
        self.trailing_data = data[offset:]
        self._stopped = True

    def _last_request(self) -> RequestReceived | None:
        for event in reversed(self._ready):
            if isinstance(event, RequestReceived):
                return event
        for _, event in reversed(self._backlog or ()):
            if isinstance(event, RequestReceived):
                return event
        return None

    def _violate(self, status: int, reason: str) -> None:
        self._stopped = True
        if self._in_head or self._request is not None:
            index = self._parse_index  # the request being parsed is the bad one
        else:
            index = self._parse_index + 1  # garbage where the next request should start
        if index < self._serve_index:
            # The bad bytes are the unread body of a request already answered, being
            # discarded: an error response now would be read as the next request's answer.
            # The connection just closes after the answer it has.
            self._in_head = False
            self._ready.append(ProtocolViolation(STREAM_ID, status, reason))
            self.should_close = True
            return
        index = max(index, self._serve_index)
        self._violation = (index, status, reason)
        self._in_head = False
        if index == self._serve_index:
            self._answer_violation()

    def _answer_violation(self) -> None:
        assert self._violation is not None
        _, status, reason = self._violation
        self._ready.append(ProtocolViolation(STREAM_ID, status, reason))
        if self._send_state in (_SEND_IDLE, _SEND_HEAD_HELD):
            body = f"{HTTPStatus(status).phrase}: {reason}\n".encode()
            self._out.append(
                STATUS_LINES[status]
                + self._defaults.h1_block
                + b"content-type: text/plain; charset=utf-8\r\n"
                + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
                + body
            )
        self._send_state = _SEND_CLOSED
        self.should_close = True

    # ------------------------------------------------------------------ send side
    def send(self, event: OutboundEvent) -> None:
        state = self._send_state
        if type(event) is Body:
            self.send_body(event.stream_id, event.data, event.end)
        elif type(event) is Response:
            self.send_response(
                event.stream_id, event.status, event.headers, event.trailers_expected
            )
        elif type(event) is InformationalResponse:
            if state is not _SEND_IDLE:
                raise LocalProtocolError("1xx after the response started")
            self._write_informational(event)
        elif type(event) is Trailers:
            if state is _SEND_HEAD_HELD:
                self._write_head(b"", False)  # the body was empty: the head goes out now
            elif state is not _SEND_BODY:
                raise LocalProtocolError(f"Trailers in state {state.value}")
            if self._chunked_response:
                self._write_trailers(event.headers)
            else:
                # No chunked framing to carry them (HEAD, 204/304, HTTP/1.0): end the body.
                self.send_body(event.stream_id, b"", True)
        elif type(event) is ResetStream:
            self._send_state = _SEND_CLOSED
            self.should_close = True
        else:
            raise LocalProtocolError(f"HTTP/1.1 cannot send {type(event).__name__}")

    # The two calls of every response, without building an event each (the ASGI bridge calls
    # them directly; ``send`` routes Response and Body events here too).
    def send_response(
        self, stream_id: int, status: int, headers: AppHeaders, trailers_expected: bool = False
    ) -> None:
        if self._send_state is not _SEND_IDLE:
            raise LocalProtocolError(f"Response in state {self._send_state.value}")
        self._no_body = (
            self._request_method == b"HEAD" or status == 204 or status == 304 or status < 200
        )
        self._send_state = _SEND_HEAD_HELD
        self._pending_head = (status, headers, trailers_expected)

    def send_body(self, stream_id: int, data: bytes, end: bool) -> None:
        state = self._send_state
        if state is _SEND_HEAD_HELD:
            self._write_head(data, end)
        elif state is not _SEND_BODY:
            raise LocalProtocolError(f"Body in state {state.value}")
        if data and not self._no_body:
            size = len(data)
            if size >= COPY_LIMIT:
                self._out_large = True
            if self._chunked_response:
                if size < COPY_LIMIT:
                    self._out.append(b"%x\r\n%s\r\n" % (size, data))
                else:
                    self._out.extend((b"%x\r\n" % size, data, b"\r\n"))
            else:
                remaining = self._remaining
                if remaining is not None:
                    remaining -= size
                    self._remaining = remaining
                    if remaining < 0:
                        self._fail_response()
                        raise ResponseLengthError("Response body longer than its Content-Length")
                self._out.append(data)
        if end:
            if self._chunked_response:
                self._out.append(b"0\r\n\r\n")
            elif self._remaining:
                self._fail_response()
                raise ResponseLengthError("Response body shorter than its Content-Length")
            self._finish_response()

    def start_request(self, request: RequestReceived) -> None:
        """Record what the response framing depends on, when ``request`` becomes the one
        being answered (the core does this itself; calling it again is harmless)."""
        self._request_method = request.method
        self._keep_alive = request.keep_alive
        self._http10 = request.http_version == "1.0"
        self._expect_continue = request.expect_continue
        self._continue_sent = False

    def _write_head(self, first_data: bytes, first_end: bool) -> None:
        pending = self._pending_head
        assert pending is not None
        status, headers, trailers_expected = pending
        self._pending_head = None
        defaults = self._defaults
        info = defaults.head_info(headers)
        block = info.block
        content_length = info.content_length
        chunked = info.chunked
        keep_alive = (
            self._keep_alive
            and not info.close
            and not (self._draining or self._violation is not None)
        )
        overridden = info.overridden
        if overridden is None:
            defaults_block = defaults.h1_block
        else:
            defaults_block = b"".join(
                b"%s: %s\r\n" % pair for pair in defaults.pairs if pair[0] not in overridden
            )
        framing = b""
        if self._no_body:
            chunked = False
        elif content_length is None and not chunked and not trailers_expected:
            if first_end:
                content_length = len(first_data)
                framing = b"content-length: %d\r\n" % content_length
            elif self._http10:
                keep_alive = False  # close-delimited body
            else:
                chunked = True
        elif trailers_expected and not self._http10:
            chunked = True
            content_length = None
        if chunked and self._http10:
            chunked = False
            keep_alive = False
        if chunked:
            framing += b"transfer-encoding: chunked\r\n"
            if content_length is not None or trailers_expected:
                # RFC 9112 §6.1: never Content-Length next to Transfer-Encoding; the chunked
                # framing (needed for trailers, or asked for by the app) wins.
                block = b"".join(
                    line
                    for line in info.lines
                    if defaults.special.get(line.split(b":", 1)[0].lower()) != _CONTENT_LENGTH
                )
        if (
            first_end
            and keep_alive
            and self._request is not None
            and self._parse_index == self._serve_index
            and self._unread_body_closes()
        ):
            # The whole answer is here and the body will stay unread: say the connection
            # closes, or a client reusing it races the close (httpx did).
            keep_alive = False
        if not keep_alive:
            framing += b"connection: close\r\n"
        elif self._http10:
            framing += b"connection: keep-alive\r\n"
        self._keep_alive = keep_alive
        self._chunked_response = chunked
        self._remaining = None if self._no_body or chunked else content_length
        # One join, not four concatenations: each ``+`` copies the head so far.
        self._out.append(
            b"".join(
                (
                    STATUS_LINES.get(status) or _status_line(status),
                    defaults_block,
                    block,
                    framing,
                    b"\r\n",
                )
            )
        )
        self._send_state = _SEND_BODY

    def start_shutdown(self) -> None:
        """Graceful shutdown: the request in flight or on its way is answered with
        ``Connection: close``; an idle keep-alive connection closes now.

        A connection accepted a moment ago (nothing parsed yet) or with part of a head in is
        a request on its way, not an idle one: closing it would lose a request the client
        already sent, so that one request is still read and answered.
        """
        self._draining = True
        idle_keep_alive = (
            self._parse_index > 0 and self._parse_index < self._serve_index and not self._in_head
        )
        if idle_keep_alive:
            self._stopped = True
            self.should_close = True

    def _write_trailers(self, headers: Headers) -> None:
        lines = [b"0\r\n"]
        for name, value in headers:
            if has_bad_byte(name) or has_bad_byte(value) or COLON in name:
                raise ValueError(f"Invalid trailer {name!r}: {value!r}")
            lines.append(b"%s: %s\r\n" % (name, value))
        lines.append(b"\r\n")
        self._out.append(b"".join(lines))
        self._finish_response()

    def _write_informational(self, event: InformationalResponse) -> None:
        if self._http10:
            return  # HTTP/1.0 clients do not expect interim responses
        if event.status == 100:
            if self._continue_sent:
                return
            self._continue_sent = True
        lines = [STATUS_LINES.get(event.status) or _status_line(event.status)]
        lines.extend(b"%s: %s\r\n" % pair for pair in event.headers)
        lines.append(b"\r\n")
        self._out.append(b"".join(lines))

    def _fail_response(self) -> None:
        self._send_state = _SEND_CLOSED
        self.should_close = True

    def _finish_response(self) -> None:
        unread = self._request is not None and self._parse_index == self._serve_index
        if not self._keep_alive or (unread and self._unread_body_closes()):
            # Either the peer asked to close, or it may still be deciding whether to send a
            # body we never invited, or reading past the body it is sending would cost more
            # than a new connection: closing is the only unambiguous way on.
            self._send_state = _SEND_CLOSED
            self.should_close = True
            return
        if unread:  # the rest is read and dropped, up to DISCARD_LIMIT more (on_body)
            self._discard_until = self._body_received + DISCARD_LIMIT
        self._send_state = _SEND_IDLE
        self._serve_index += 1
        backlog = self._backlog
        if backlog:
            # The backlog is in parse order: the next request's events are at its front.
            index = self._serve_index
            ready = self._ready
            while backlog and backlog[0][0] == index:
                event = backlog.popleft()[1]
                self._backlog_size -= _backlog_cost(event)
                if type(event) is RequestReceived:
                    self.start_request(event)
                ready.append(event)
        violation = self._violation
        if violation is not None and violation[0] == self._serve_index:
            self._answer_violation()
        elif self._stopped and not any(type(e) is RequestReceived for e in self._ready):
            # EOF or an upgrade stopped the parser: nothing more will arrive to be served.
            self.should_close = True

    def _unread_body_closes(self) -> bool:
        """The app answers without reading its whole body: whether the connection closes.

        It does when the client may still be deciding whether to send a body we never
        invited (Expect: 100-continue), or when the rest is larger than DISCARD_LIMIT;
        otherwise the rest is read and dropped to keep the connection (a chunked body only
        up to DISCARD_LIMIT: it is cut off there).
        """
        if self._expect_continue and not self._continue_sent:
            return True
        expected = self._body_expected
        return expected is not None and expected - self._body_received > DISCARD_LIMIT

    def data_to_send(self) -> bytes:
        return joined(self.take_output())

    def take_output(self) -> bytes | list[bytes]:
        """The queued output: one bytes object, or its parts, uncopied, when a body part is
        large (protocols/output.py): joining a 64 KiB body to its head was a 64 KiB copy in
        Python for every response."""
        out = self._out
        if self._out_large:
            self._out_large = False
            if len(out) > 1:
                self._out = []
                return out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()  # (kept: a fresh list per response is one more object for the collector)
        return data

    def statistics(self) -> dict[str, int]:
        return {
            "requests_parsed": self._parse_index,
            "requests_served": self._serve_index - 1,
            "backlog_bytes": self._backlog_size,
            "buffered_out": sum(map(len, self._out)),
            "parser_held": int(self._slot is not None),
        }


class _ParserSlot:
    """An llhttp parser and the connection it parses for, with the parser's callbacks.

    A connection holds a slot only while a request is partly received: at rest (every parsed
    request answered, no partial message) it gives the slot back to a pool, and the next
    bytes on any connection take one. An idle keep-alive connection then carries no parser
    (about 900 bytes: llhttp's state and one bound method per callback). The callbacks live
    here, not on the connection, so that a parser can serve another connection; they are
    called by httptools inside feed_data.
    """

    __slots__ = ("conn", "parser")

    def __init__(self, conn: HTTP1Connection) -> None:
        self.conn = conn
        self.parser = httptools.HttpRequestParser(self)

    def on_message_begin(self) -> None:
        c = self.conn
        if c._synthetic_head:
            return
        c._parse_index += 1
        c._in_head = True
        c._in_trailers = False
        c._url = b""
        c._headers = []
        c._trailers = None
        c._header_count = 0
        c._header_size = 0
        c._body_received = 0

    def on_url(self, url: bytes) -> None:
        c = self.conn
        if c._synthetic_head:
            return
        if c._url:
            url = c._url + url  # a later fragment of the same request-target
        c._url = url
        if len(url) > c._limits.max_request_line:
            raise _Violation(414, "Request-URI too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        c = self.conn
        if c._synthetic_head:
            return
        c._header_count += 1
        c._header_size += len(name) + len(value) + 4
        if c._header_size > c._limits.max_header_size:
            raise _Violation(431, "Request header block too large")
        if c._in_trailers:
            if c._header_count > c._limits.max_headers:
                raise _Violation(431, "Too many trailer fields")
            trailers = c._trailers
            if trailers is None:
                trailers = c._trailers = []
            trailers.append((name.lower(), value))
            return
        if c._header_count > c._limits.max_headers:
            raise _Violation(431, "Too many header fields")
        c._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        c = self.conn
        if c._synthetic_head:
            c._synthetic_head = False
            return
        parser = self.parser
        headers = c._headers
        host_count = 0
        content_length: int | None = None
        chunked = False
        expect_continue = False
        upgrade: bytes | None = None
        connection_upgrade = False
        keep_alive_named = False
        for name, value in headers:
            # By length first: most fields are none of these six, and a set lookup would hash
            # each name (the parser's new bytes object) anew: 700 instructions for one field.
            size = len(name)
            if size == 4:
                if name == b"host":
                    host_count += 1
            elif size == 14:
                if name == b"content-length":
                    content_length = int(value)  # llhttp already validated the digits
            elif size == 17:
                if name == b"transfer-encoding":
                    if not _is_token_list_chunked_only(value):
                        raise _Violation(501, "Unsupported Transfer-Encoding")
                    chunked = True
            elif size == 6:
                if name == b"expect" and value.lower() == b"100-continue":
                    expect_continue = True
            elif size == 7:
                if name == b"upgrade":
                    upgrade = value.strip().lower()
            elif size == 10 and name == b"connection":
                # (find, not ``in``: see events.py on ``bytes in bytes``)
                tokens = value.lower()
                connection_upgrade = connection_upgrade or tokens.find(b"upgrade") >= 0
                keep_alive_named = keep_alive_named or tokens.find(b"keep-alive") >= 0
        keep_alive = parser.should_keep_alive()
        if keep_alive and not keep_alive_named:
            # llhttp keeps a connection alive by default only for HTTP/1.1 (it accepts 0.9,
            # 1.0, 1.1 and 2.0), so the version is known without asking for it. Asking
            # costs a str.format in httptools: 2.9k of a hello request's 46k instructions.
            version = "1.1"
        else:
            version = parser.get_http_version()
            if version not in ("1.1", "1.0"):
                raise _Violation(505, "HTTP version not supported")
        if version == "1.1" and host_count != 1:
            raise _Violation(400, "Missing Host header" if host_count == 0 else "Duplicate Host")
        if host_count > 1:
            raise _Violation(400, "Duplicate Host")
        limit = c._limits.max_body
        if limit is not None and content_length is not None and content_length > limit:
            raise _Violation(413, "Request body too large")
        method = parser.get_method()
        c._in_head = False
        c._head_bytes = 0
        if upgrade is not None and not connection_upgrade:
            upgrade = None
        if upgrade is not None and (chunked or content_length):
            # An Upgrade request with a body (curl --http2 -d sends h2c this way) is served as
            # plain HTTP/1.1, as RFC 9110 7.8 allows; llhttp still stops at its head, so the
            # body is parsed afterwards by a fresh parser (see _on_upgrade).
            upgrade = None
            framing = (
                b"transfer-encoding: chunked\r\n"
                if chunked
                else b"content-length: %d\r\n" % (content_length or 0)
            )
            c._declined_upgrade = b"POST / HTTP/1.1\r\nhost: x\r\n" + framing + b"\r\n"
        request = RequestReceived(
            STREAM_ID,
            method,
            c._url,
            version,
            headers,
            keep_alive,
            chunked or bool(content_length),
            expect_continue,
            upgrade,
        )
        c._request = request
        c._body_expected = None if chunked else content_length or 0
        if c._parse_index == c._serve_index:
            c.start_request(request)
            c._ready.append(request)
        else:
            c._emit(request)

    def on_body(self, body: bytes) -> None:
        c = self.conn
        c._body_received += len(body)
        limit = c._limits.max_body
        if limit is not None and c._body_received > limit:
            raise _Violation(413, "Request body too large")
        if c._parse_index < c._serve_index and c._body_received > c._discard_until:
            # Answered already (_finish_response): no second answer, the connection closes.
            raise _Violation(413, "Unread body of an answered request past the discard limit")
        c._emit(BodyReceived(STREAM_ID, body))

    def on_chunk_header(self) -> None:
        c = self.conn
        # Any header after the last chunk is a trailer field.
        c._in_trailers = True
        c._header_count = 0
        c._header_size = 0

    def on_message_complete(self) -> None:
        c = self.conn
        if c._declined_upgrade is not None:
            return  # llhttp ends an upgrade at its head; this request's body is still to come
        request = c._request
        c._request = None
        trailers = c._trailers or None
        if request is not None and not request.has_body:
            # A request without a body is complete with its head (has_body says so). For an
            # upgrade this matters twice: an eager app may already have accepted and switched
            # the connection to its new protocol, whose runner would take a stray end of the
            # HTTP request for the end of its own stream.
            return
        if c._parse_index == c._serve_index:
            c._ready.append(RequestEnded(STREAM_ID, trailers))
        else:
            c._emit(RequestEnded(STREAM_ID, trailers))


class _ParserPool:
    """Parsers given back by connections at rest, for the next connection that gets bytes.

    Sized by use, not by a fixed count: a pool smaller than the number of connections
    mid-request at once makes most requests build a parser (with 1000 busy connections and
    a pool of 256, creating parsers was 7% of the server's time). ``trim`` runs once per
    clock tick and frees the parsers that sat unused for the whole interval (the fewest the
    pool held since the last trim), so a burst's parsers are gone a tick or two after it.
    """

    __slots__ = ("idle", "low_water")

    def __init__(self) -> None:
        self.idle: list[_ParserSlot] = []
        #: The fewest parsers the pool held since the last trim: that many went unused.
        self.low_water = 0

    def take(self, conn: HTTP1Connection) -> _ParserSlot:
        idle = self.idle
        if idle:
            slot = idle.pop()
            if len(idle) < self.low_water:
                self.low_water = len(idle)
            slot.conn = conn
            return slot
        return _ParserSlot(conn)

    def give(self, slot: _ParserSlot) -> None:
        if len(self.idle) < IDLE_PARSERS_MAX:
            slot.conn = None  # type: ignore[assignment]  # a pooled slot parses for nobody
            self.idle.append(slot)

    def trim(self) -> int:
        """Free the parsers no connection needed since the last trim; return how many."""
        unused = self.low_water
        if unused:
            del self.idle[:unused]  # the bottom of the stack: take() pops from the top
        self.low_water = len(self.idle)
        return unused


#: At most this many parsers wait in the pool (about 900 bytes each), however large a burst.
IDLE_PARSERS_MAX: Final = 4096
PARSER_POOL: Final = _ParserPool()
