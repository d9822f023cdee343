"""Protocol-neutral events exchanged between the sans-IO cores and the I/O shell.

Inbound events (peer -> server) are named in the past tense; outbound events (server -> peer)
are nouns. Every event carries the ``stream_id`` it belongs to (always 1 on HTTP/1.1), so one
dispatch in ``server/protocol.py`` serves every core. They are slotted and hold plain data: on the
hot path a request costs two of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

Headers = list[tuple[bytes, bytes]]
#: A response header list as the app sent it: asgi/http.py hands a list to the core unchecked,
#: and the core validates every pair as it encodes it. Apps send pairs as tuples or lists, and
#: values as bytes or bytearray, so no item type is promised (nor checked by compiled code).
AppHeaders = list[Any]


#: Byte values, not one-byte strings, for membership tests: ``int in bytes`` is a memchr,
#: while ``bytes in bytes`` first tries its argument as an int, raising and clearing a
#: TypeError on the way (300-480 ns per test on CPython 3.11-3.13, against 20-35).
CR: Final = b"\r"[0]
LF: Final = b"\n"[0]
NUL: Final = b"\x00"[0]
COLON: Final = b":"[0]
SPACE: Final = b" "[0]


def has_bad_byte(value: bytes) -> bool:
    """CR, LF or NUL: a header name or value with one could split or end a message."""
    return CR in value or LF in value or NUL in value


# The events made for every request or body chunk write their ``__init__`` out: compiled by
# mypyc, a dataclass keeps the generated one, which runs interpreted (a Python frame and a
# descriptor call per field, per event).


# --------------------------------------------------------------------------- inbound
@dataclass(slots=True, init=False)
class RequestReceived:
    """A complete request head. ``target`` is the raw request-target as sent."""

    stream_id: int
    method: bytes
    target: bytes
    http_version: str
    headers: Headers
    keep_alive: bool = True
    #: True when a body follows (Content-Length > 0 or chunked).
    has_body: bool = False
    #: The request asked for ``100 Continue`` before sending its body.
    expect_continue: bool = False
    #: Set when the request asks to switch protocols (``websocket``, ``h2c``) or is an extended
    #: CONNECT; the lower-cased protocol token.
    upgrade: bytes | None = None
    #: The HTTP/2 ``:authority`` (None on HTTP/1.1, which carries ``host`` among the headers).
    authority: bytes | None = None
    #: The HTTP/2 ``:scheme`` (None on HTTP/1.1).
    scheme: str | None = None

    def __init__(
        self,
        stream_id: int,
        method: bytes,
        target: bytes,
        http_version: str,
        headers: Headers,
        keep_alive: bool = True,
        has_body: bool = False,
        expect_continue: bool = False,
        upgrade: bytes | None = None,
        authority: bytes | None = None,
        scheme: str | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers
        self.keep_alive = keep_alive
        self.has_body = has_body
        self.expect_continue = expect_continue
        self.upgrade = upgrade
        self.authority = authority
        self.scheme = scheme


@dataclass(slots=True, init=False)
class BodyReceived:
    stream_id: int
    data: bytes

    def __init__(self, stream_id: int, data: bytes) -> None:
        self.stream_id = stream_id
        self.data = data


@dataclass(slots=True, init=False)
class RequestEnded:
    stream_id: int
    trailers: Headers | None = None

    def __init__(self, stream_id: int, trailers: Headers | None = None) -> None:
        self.stream_id = stream_id
        self.trailers = trailers


@dataclass(slots=True)
class StreamReset:
    """The peer abandoned the stream (HTTP/2 RST_STREAM) or the connection ended mid-request."""

    stream_id: int
    error_code: int = 0


@dataclass(slots=True)
class InputEnded:
    """The peer will send nothing more on ``stream_id`` (HTTP/1.1: it closed its side), yet the
    response may still be written. An app waiting in receive() after its body hears
    ``http.disconnect``; its send() keeps working while the transport does."""

    stream_id: int


@dataclass(slots=True)
class WindowOpened:
    """HTTP/2 flow control: sending on ``stream_id`` (0 = connection) may resume."""

    stream_id: int


@dataclass(slots=True)
class WebSocketCloseReceived:
    stream_id: int
    code: int
    reason: str = ""


@dataclass(slots=True)
class ProtocolViolation:
    """The peer broke the protocol. The core already queued its answer and set should_close."""

    stream_id: int
    status: int
    reason: str


InboundEvent = (
    RequestReceived
    | BodyReceived
    | RequestEnded
    | StreamReset
    | InputEnded
    | WindowOpened
    | WebSocketCloseReceived
    | ProtocolViolation
)


# --------------------------------------------------------------------------- outbound
@dataclass(slots=True, init=False)
class Response:
    stream_id: int
    status: int
    headers: AppHeaders
    #: The app announced ``trailers: True``; HTTP/1.1 must then chunk the body.
    trailers_expected: bool = False

    def __init__(
        self, stream_id: int, status: int, headers: AppHeaders, trailers_expected: bool = False
    ) -> None:
        self.stream_id = stream_id
        self.status = status
        self.headers = headers
        self.trailers_expected = trailers_expected


@dataclass(slots=True)
class InformationalResponse:
    stream_id: int
    status: int
    headers: Headers = field(default_factory=list)


@dataclass(slots=True, init=False)
class Body:
    stream_id: int
    data: bytes
    end: bool = False

    def __init__(self, stream_id: int, data: bytes, end: bool = False) -> None:
        self.stream_id = stream_id
        self.data = data
        self.end = end


@dataclass(slots=True)
class Trailers:
    stream_id: int
    headers: Headers


@dataclass(slots=True)
class PushPromise:
    """HTTP/2 server push of a GET for ``path`` on ``stream_id``."""

    stream_id: int
    path: bytes
    headers: Headers


@dataclass(slots=True)
class AcceptWebSocket:
    stream_id: int
    subprotocol: str | None = None
    headers: Headers = field(default_factory=list)


@dataclass(slots=True)
class WebSocketMessage:
    stream_id: int
    data: bytes | str


@dataclass(slots=True)
class CloseWebSocket:
    stream_id: int
    code: int = 1000
    reason: str = ""


@dataclass(slots=True)
class ResetStream:
    """Abort a stream: RST_STREAM on HTTP/2, closing the connection on HTTP/1.1."""

    stream_id: int
    error_code: int = 2


OutboundEvent = (
    Response
    | InformationalResponse
    | Body
    | Trailers
    | PushPromise
    | AcceptWebSocket
    | WebSocketMessage
    | CloseWebSocket
    | ResetStream
)
