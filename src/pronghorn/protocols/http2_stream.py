"""Per-stream state of the HTTP/2 core: what the app has sent and what the windows still hold.

What may change state: only ``HTTP2Connection`` (protocols/http2.py) touches these fields; this
module exists so that the connection logic and the per-stream record stay small and readable.
"""

from __future__ import annotations

import enum
from typing import Final

from pronghorn.errors import LocalProtocolError
from pronghorn.protocols.events import COLON, AppHeaders, Headers, Response, has_bad_byte

#: Response headers that mean something only to a single HTTP/1.1 hop; RFC 9113 §8.2.2 forbids
#: them in HTTP/2, so they are dropped from what an app sends.
CONNECTION_SPECIFIC: Final = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)

STATUS_CODES: Final[dict[int, bytes]] = {code: str(code).encode() for code in range(100, 600)}


class Send(enum.Enum):
    IDLE = "idle"  # no response head yet
    HEAD_HELD = "head_held"  # head kept until the first body chunk, to save a frame
    BODY = "body"  # head written, body flowing
    ENDED = "ended"  # END_STREAM or RST_STREAM written (or the peer reset the stream)


# The members as module constants for the per-request code: on CPython 3.11 every
# ``Send.X`` is a lookup through EnumType.__getattr__'s slow attribute path (about
# 900 instructions against some 60 for a global; 3.12 dropped that hook).
STREAM_IDLE: Final = Send.IDLE
STREAM_HEAD_HELD: Final = Send.HEAD_HELD
STREAM_BODY: Final = Send.BODY
STREAM_ENDED: Final = Send.ENDED


class H2Stream:
    """One request stream, server side."""

    __slots__ = (
        "app_done",
        "authority",
        "body_received",
        "continue_sent",
        "discard",
        "end_pending",
        "head",
        "method",
        "no_body",
        "offset",
        "out",
        "out_size",
        "remaining",
        "request_done",
        "scheme",
        "sending",
        "stream_id",
        "trailers",
        "trailers_in",
        "tunnel",
        "unacked",
    )

    def __init__(
        self,
        stream_id: int,
        method: bytes,
        scheme: str,
        authority: bytes | None,
        *,
        tunnel: bool = False,
    ) -> None:
        self.stream_id = stream_id
        self.method = method
        self.scheme = scheme
        self.authority = authority
        #: An RFC 8441 extended CONNECT: DATA frames are an opaque byte tunnel.
        self.tunnel = tunnel
        self.sending = STREAM_IDLE
        self.head: Response | None = None
        self.no_body = False
        #: Bytes the Content-Length still promises (None: no Content-Length).
        self.remaining: int | None = None
        #: Outbound bytes waiting for window; ``offset`` is how much of ``out[0]`` went out.
        self.out: list[bytes] = []
        self.offset = 0
        self.out_size = 0
        self.end_pending = False
        self.trailers: Headers | None = None
        #: Inbound bytes handed to the app but not yet acknowledged with WINDOW_UPDATE.
        self.unacked = 0
        self.body_received = 0
        self.request_done = False
        #: Inbound DATA is no longer wanted (answered 413): acknowledge it on arrival.
        self.discard = False
        self.trailers_in: Headers | None = None
        self.continue_sent = False
        self.app_done = False

    @property
    def finished(self) -> bool:
        """Nothing more will be sent and the app is done: the record can go."""
        return self.app_done and self.sending is STREAM_ENDED

    def drop_output(self) -> None:
        self.out = []
        self.offset = 0
        self.out_size = 0
        self.end_pending = False
        self.trailers = None
        self.sending = STREAM_ENDED


def clean_fields(headers: AppHeaders, what: str) -> Headers:
    """Lower-case names and drop hop-by-hop fields; raise on a field no peer could accept."""
    cleaned: Headers = []
    for name, value in headers:
        lowered = bytes(name).lower()
        if type(value) is not bytes:
            value = bytes(value)  # a bytearray from the app: h2 takes only bytes
        if lowered in CONNECTION_SPECIFIC:
            continue
        if not lowered or lowered[0] == COLON or has_bad_byte(lowered) or has_bad_byte(value):
            raise ValueError(f"Invalid {what} field {name!r}: {value!r}")
        cleaned.append((lowered, value))
    return cleaned


def require(condition: bool, message: str) -> None:
    """Our own misuse of the core (the shell's bug), never the peer's."""
    if not condition:
        raise LocalProtocolError(message)
