"""TunnelConnection: the core of an HTTP/1.1 connection after ``101 Switching Protocols``.

From the connection's point of view a WebSocket is a byte tunnel on stream 1: received bytes
become ``BodyReceived``, ``Body`` events are written as they are, and the peer's EOF is
``RequestEnded``. So the WebSocket runner is the same over HTTP/1.1 and over an HTTP/2
extended CONNECT stream, whose DATA frames arrive and leave as the same events.

What may change state: ``receive_eof`` and ``send`` (``Body(end=True)`` or ``ResetStream``)
set ``should_close``; nothing else.
"""

from __future__ import annotations

from typing import Final

from pronghorn.errors import LocalProtocolError
from pronghorn.protocols.events import (
    Body,
    BodyReceived,
    InboundEvent,
    OutboundEvent,
    RequestEnded,
    ResetStream,
)
from pronghorn.protocols.output import joined, joined_unless_large

STREAM_ID: Final = 1


class TunnelConnection:
    """A pass-through core: bytes in -> BodyReceived, Body -> bytes out."""

    __slots__ = ("_eof", "_events", "_out", "should_close")

    def __init__(self, pending_out: bytes = b"") -> None:
        #: Bytes the previous core still had queued (the 101 response) go out first.
        self._out: list[bytes] = [pending_out] if pending_out else []
        self._events: list[InboundEvent] = []
        self._eof = False
        self.should_close = False

    @property
    def wants_read(self) -> bool:
        return not self._eof and not self.should_close

    def receive_data(self, data: bytes) -> None:
        if data and not self._eof:
            self._events.append(BodyReceived(STREAM_ID, data))

    def receive_eof(self) -> None:
        if not self._eof:
            self._eof = True
            self._events.append(RequestEnded(STREAM_ID))

    def next_events(self) -> list[InboundEvent]:
        events = self._events
        if events:
            self._events = []
        return events

    def send(self, event: OutboundEvent) -> None:
        if type(event) is Body:
            self.send_data(event.data, event.end)
        elif type(event) is ResetStream:
            self.should_close = True
        else:
            raise LocalProtocolError(f"a tunnel cannot send {type(event).__name__}")

    def send_data(self, data: bytes, end: bool) -> None:
        """A Body event's effect, by a direct call (the WebSocket runner's per-message path)."""
        if data:
            self._out.append(data)
        if end:
            self.should_close = True

    def data_to_send(self) -> bytes:
        return joined(self.take_output())

    def take_output(self) -> bytes | list[bytes]:
        """The queued output, large output as its parts (a big WebSocket message is its
        header and its payload): see protocols/output.py."""
        out = self._out
        if not out:
            return b""
        self._out = []
        return joined_unless_large(out)

    def statistics(self) -> dict[str, int]:
        return {"buffered_out": sum(map(len, self._out))}
