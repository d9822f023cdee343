"""An in-process HTTP/2 client (h2) wired to the server core, for the HTTP/2 core tests.

Not a test module itself: the core tests import ``Peer`` from here.
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events

from pronghorn.protocols.events import InboundEvent
from pronghorn.protocols.http2 import HTTP2Connection, HTTP2Limits


class Peer:
    """A client h2 connection and a server core, exchanging bytes on demand."""

    def __init__(
        self,
        limits: HTTP2Limits | None = None,
        *,
        settings: dict[Any, int] | None = None,
        server: HTTP2Connection | None = None,
        client: h2.connection.H2Connection | None = None,
    ) -> None:
        self.server = server or HTTP2Connection(limits)
        if client is None:
            client = h2.connection.H2Connection(
                h2.config.H2Configuration(client_side=True, header_encoding=None)
            )
            client.initiate_connection()
        self.client = client
        if settings:
            self.client.update_settings(settings)
        self.client_events: list[h2.events.Event] = []
        self.server_events: list[InboundEvent] = []
        self.exchange()

    def exchange(self) -> list[InboundEvent]:
        """Move bytes both ways until both sides are quiet; return the server's new events."""
        new: list[InboundEvent] = []
        for _ in range(50):
            data = self.client.data_to_send()
            if data:
                self.server.receive_data(data)
            new += self.server.next_events()
            back = self.server.data_to_send()
            if back:
                self.client_events += self.client.receive_data(back)
            if not data and not back:
                break
        self.server_events += new
        return new

    def feed(self, raw: bytes) -> list[InboundEvent]:
        """Raw bytes from a misbehaving client; the server's answer goes to the h2 client."""
        self.server.receive_data(raw)
        events = self.server.next_events()
        back = self.server.data_to_send()
        if back:
            try:
                self.client_events += self.client.receive_data(back)
            except h2.exceptions.ProtocolError:
                self.client_events.append(h2.events.ConnectionTerminated())
                self.raw_back = back
        return events

    def request(
        self,
        path: bytes = b"/",
        method: bytes = b"GET",
        headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes | None = None,
        *,
        end: bool = True,
    ) -> int:
        stream_id: int = self.client.get_next_available_stream_id()
        self.client.send_headers(
            stream_id,
            [
                (b":method", method),
                (b":scheme", b"https"),
                (b":authority", b"example.com"),
                (b":path", path),
                *(headers or []),
            ],
            end_stream=body is None and end,
        )
        if body is not None:
            self.client.send_data(stream_id, body, end_stream=end)
        return stream_id

    def of(self, kind: type[Any], stream_id: int | None = None) -> list[Any]:
        """Client-side h2 events of a type, optionally on one stream."""
        return [
            e
            for e in self.client_events
            if isinstance(e, kind) and (stream_id is None or e.stream_id == stream_id)
        ]

    def body(self, stream_id: int) -> bytes:
        return b"".join(e.data for e in self.of(h2.events.DataReceived, stream_id))

    def goaway(self) -> h2.events.ConnectionTerminated | None:
        found = self.of(h2.events.ConnectionTerminated)
        return found[-1] if found else None
