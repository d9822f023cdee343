"""WebSocket over HTTP/2 (RFC 8441 extended CONNECT), end to end: a real server on
127.0.0.1:0 and an h2 client driven by hand over a socket (prior knowledge, no TLS)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
import zlib
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings

from tests.integration.test_websocket_server import Running, client_frame, echo, serve


class H2WebSocketClient:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.events: list[Any] = []
        self.data = b""
        self.inbound = b""
        self.ended = False
        #: Off: the client reads frames but grants the server no window for more.
        self.acknowledge = True
        self.wait_for(h2.events.RemoteSettingsChanged)
        settings = self.conn.remote_settings
        assert settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] == 1

    def pump(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, "server closed the connection"
        self.inbound += chunk
        # Feed h2 one frame at a time: after a graceful GOAWAY its client state machine would
        # refuse the DATA that open streams may still receive, so it is kept open in between,
        # as the server core does.
        while len(self.inbound) >= 9:
            size = 9 + int.from_bytes(self.inbound[:3], "big")
            if len(self.inbound) < size:
                break
            frame, self.inbound = self.inbound[:size], self.inbound[size:]
            for event in self.conn.receive_data(frame):
                self._on_event(event)
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def _on_event(self, event: Any) -> None:
        self.events.append(event)
        if isinstance(event, h2.events.ConnectionTerminated) and not event.error_code:
            self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        elif isinstance(event, h2.events.DataReceived):
            self.data += event.data
            if self.acknowledge:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self.ended = True

    def wait_for(self, kind: type) -> Any:
        for _ in range(50):
            for event in self.events:
                if isinstance(event, kind):
                    self.events.remove(event)
                    return event
            self.pump()
        raise AssertionError(f"no {kind.__name__}: {self.events}")

    def connect(self, *extra: tuple[bytes, bytes]) -> dict[bytes, bytes]:
        self.conn.send_headers(
            1,
            [
                (b":method", b"CONNECT"),
                (b":protocol", b"websocket"),
                (b":scheme", b"http"),
                (b":path", b"/ws"),
                (b":authority", b"127.0.0.1"),
                *extra,
            ],
        )
        self.sock.sendall(self.conn.data_to_send())
        response = self.wait_for(h2.events.ResponseReceived)
        return dict(response.headers)

    def send(self, data: bytes) -> None:
        self.conn.send_data(1, data)
        self.sock.sendall(self.conn.data_to_send())

    def read_frame(self) -> tuple[int, int, bytes]:
        """(first byte, opcode, payload) of the next server frame on the stream."""
        for _ in range(50):
            if len(self.data) >= 2:
                n = self.data[1] & 0x7F
                offset = {126: 4, 127: 10}.get(n, 2)
                if n == 126 and len(self.data) >= 4:
                    (n,) = struct.unpack("!H", self.data[2:4])
                elif n == 127 and len(self.data) >= 10:
                    (n,) = struct.unpack("!Q", self.data[2:10])
                if n < 126 and len(self.data) >= offset + n:
                    first = self.data[0]
                    payload = self.data[offset : offset + n]
                    self.data = self.data[offset + n :]
                    return first, first & 0x0F, payload
            self.pump()
        raise AssertionError("no frame")

    def close(self) -> None:
        self.sock.close()


VERSION = (b"sec-websocket-version", b"13")


def test_echo_with_subprotocol_and_deflate() -> None:
    with serve(echo) as server:
        client = H2WebSocketClient(server.port)
        headers = client.connect(
            VERSION,
            (b"sec-websocket-protocol", b"chat"),
            (b"sec-websocket-extensions", b"permessage-deflate"),
        )
        assert headers[b":status"] == b"200"
        assert b"sec-websocket-accept" not in headers  # RFC 8441: no key, no accept
        assert headers[b"sec-websocket-protocol"] == b"chat"
        assert headers[b"sec-websocket-extensions"].startswith(b"permessage-deflate")
        assert headers[b"x-echo"] == b"yes"
        client.send(client_frame(0x1, b"hello over h2"))
        first, opcode, payload = client.read_frame()
        assert (first & 0x40, opcode) == (0x40, 0x1)  # compressed text
        inflated = zlib.decompressobj(wbits=-15).decompress(payload + b"\x00\x00\xff\xff")
        assert inflated == b"hello over h2"
        client.send(client_frame(0x8, struct.pack("!H", 1000)))
        assert client.read_frame()[1:] == (0x8, struct.pack("!H", 1000))
        for _ in range(20):
            if client.ended:
                break
            client.pump()
        assert client.ended  # END_STREAM after the closing handshake
        client.close()


def test_two_websockets_on_one_connection() -> None:
    with serve(echo) as server:
        client = H2WebSocketClient(server.port)
        client.connect(VERSION)
        client.conn.send_headers(
            3,
            [
                (b":method", b"CONNECT"),
                (b":protocol", b"websocket"),
                (b":scheme", b"http"),
                (b":path", b"/ws"),
                (b":authority", b"127.0.0.1"),
                VERSION,
            ],
        )
        client.sock.sendall(client.conn.data_to_send())
        assert client.wait_for(h2.events.ResponseReceived).stream_id == 3
        client.send(client_frame(0x1, b"on stream one"))
        assert client.read_frame()[2] == b"on stream one"
        client.close()


def test_unsupported_version_is_426() -> None:
    with serve(echo) as server:
        client = H2WebSocketClient(server.port)
        headers = client.connect((b"sec-websocket-version", b"8"))
        assert headers[b":status"] == b"426"
        assert headers[b"sec-websocket-version"] == b"13"
        client.close()


def test_close_before_accept_is_403() -> None:
    async def deny(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["http_version"] == "2"
        await receive()
        await send({"type": "websocket.close"})

    with serve(deny) as server:
        client = H2WebSocketClient(server.port)
        assert client.connect(VERSION)[b":status"] == b"403"
        client.close()


def test_graceful_shutdown_closes_with_1012() -> None:
    with serve(echo) as server:
        running: Running = server
        client = H2WebSocketClient(server.port)
        client.connect(VERSION)
        client.send(client_frame(0x1, b"x"))
        assert client.read_frame()[2] == b"x"
        running.shutdown()
        _, opcode, payload = client.read_frame()
        assert opcode == 0x8
        assert struct.unpack("!H", payload[:2])[0] == 1012
        client.send(client_frame(0x8, payload[:2]))  # complete the closing handshake
        client.close()


def test_full_message_queue_withholds_the_stream_window() -> None:
    release = threading.Event()
    received: list[int] = []
    size, count = 10_000, 60  # 600 kB: past the point where h2 sends a WINDOW_UPDATE

    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        for _ in range(500):
            if release.is_set():
                break
            await asyncio.sleep(0.01)
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            received.append(len(message["bytes"]))

    def pump_for(seconds: float) -> None:
        client.sock.settimeout(0.05)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                client.pump()
        client.sock.settimeout(5)

    with serve(slow, ws_max_queue=2, ws_per_message_deflate=False, timeout_ws_close=1) as server:
        client = H2WebSocketClient(server.port)
        client.connect(VERSION)
        initial = client.conn.local_flow_control_window(1)
        sent = 0
        for _ in range(count):
            frame = client_frame(0x2, b"m" * size)
            client.send(frame)
            sent += len(frame)
        pump_for(0.3)
        # Two messages wait for the app: the server acknowledges none of the stream's DATA.
        assert client.conn.local_flow_control_window(1) == initial - sent
        release.set()
        for _ in range(100):
            if len(received) == count:
                break
            pump_for(0.05)
        pump_for(0.2)
        assert received == [size] * count
        # Consumed by the app, the data is acknowledged and the window reopens.
        assert client.conn.local_flow_control_window(1) > initial - sent
        client.close()


def test_pings_from_a_client_granting_no_window_do_not_pile_up() -> None:
    # Pongs are DATA on the stream: once they wait for the client's window, the server stops
    # acknowledging the client's DATA, so the client runs out of window instead of the server
    # buffering pongs without bound.
    ping = client_frame(0x9, b"p" * 125)
    batch, limit = ping * 50, 100_000
    with serve(echo, ws_ping_interval=None) as server:
        client = H2WebSocketClient(server.port)
        client.connect(VERSION)
        client.acknowledge = False
        client.sock.settimeout(0.05)
        sent = stalls = 0
        deadline = time.monotonic() + 15
        while sent < limit and stalls < 10 and time.monotonic() < deadline:
            if client.conn.local_flow_control_window(1) < len(batch):
                stalls += 1
                with contextlib.suppress(TimeoutError):
                    client.pump()  # takes in pongs and any WINDOW_UPDATE
                continue
            stalls = 0
            client.send(batch)
            sent += 50
        assert sent < limit, "the server acknowledged every ping while its pongs piled up"
        # Nothing lost: granting window again lets every pong out and the server read on.
        client.sock.settimeout(5)
        client.acknowledge = True
        client.conn.acknowledge_received_data(len(client.data), 1)
        client.sock.sendall(client.conn.data_to_send())
        pong = b"\x8a\x7d" + b"p" * 125
        for _ in range(10_000):
            if len(client.data) >= sent * len(pong):
                break
            client.pump()
        assert client.data == pong * sent
        client.data = b""
        client.send(client_frame(0x1, b"still echoing"))
        assert client.read_frame() == (0x81, 0x1, b"still echoing")
        client.close()
