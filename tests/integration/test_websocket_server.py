"""WebSocket end to end: a real server on 127.0.0.1:0, real clients (websockets, aiohttp, raw
sockets for what clients refuse to send), real frameworks (Starlette, FastAPI).

Every wait is bounded: socket timeouts, ``asyncio.wait_for`` and counted polling loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import socket
import struct
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import pytest
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from pronghorn.errors import ClientDisconnected
from tests.integration.h2_servers import Running, run
from tests.integration.h2_servers import serve as serve_http

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


@contextmanager
def serve(app: App, **settings: Any) -> Iterator[Running]:
    """The shared test server (h2_servers.serve), with a ws:// or wss:// base URL."""
    with serve_http(app, **settings) as running:
        running.url = running.url.replace("http", "ws", 1)
        yield running


# --------------------------------------------------------------------------- apps
async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    offered = scope["subprotocols"]
    await send(
        {
            "type": "websocket.accept",
            "subprotocol": offered[0] if offered else None,
            "headers": [(b"x-echo", b"yes")],
        }
    )
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "close-please":
            await send({"type": "websocket.close", "code": 4001, "reason": "as asked"})
            continue
        if message.get("text") == "raise":
            raise RuntimeError("app failure after accept")
        await send(
            {"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")}
        )


class Recorder:
    """An echo app that records what its receive() returned, for the test thread."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.done = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await receive()
            await send({"type": "websocket.accept"})
            while True:
                message = await receive()
                self.messages.append(message)
                if message["type"] == "websocket.disconnect":
                    return
        finally:
            self.done.set()

    def disconnect(self) -> dict[str, Any]:
        assert self.done.wait(5), self.messages
        return self.messages[-1]


# --------------------------------------------------------------------------- raw client
def client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, masked: bool = True
) -> bytes:
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawClient:
    """A hand-driven WebSocket client over a plain socket."""

    def __init__(self, port: int, extra: bytes = b"") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""
        self.sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + KEY + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n"
        )
        self.head = self._read_head()

    def _read_head(self) -> bytes:
        for _ in range(100):
            end = self.buffer.find(b"\r\n\r\n")
            if end != -1:
                head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
                return head
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buffer += chunk
        raise AssertionError(f"no response head: {self.buffer!r}")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame; (-1, b"") at EOF."""
        for _ in range(1000):
            if len(self.buffer) >= 2:
                n = self.buffer[1] & 0x7F
                offset = 2
                if n == 126 and len(self.buffer) >= 4:
                    (n,) = struct.unpack("!H", self.buffer[2:4])
                    offset = 4
                elif n == 127 and len(self.buffer) >= 10:
                    (n,) = struct.unpack("!Q", self.buffer[2:10])
                    offset = 10
                if (n < 126 or offset > 2) and len(self.buffer) >= offset + n:
                    opcode = self.buffer[0] & 0x0F
                    payload = self.buffer[offset : offset + n]
                    self.buffer = self.buffer[offset + n :]
                    return opcode, payload
            chunk = self.sock.recv(65536)
            if not chunk:
                return -1, b""
            self.buffer += chunk
        raise AssertionError("frame never completed")

    def read_close(self) -> int:
        """Read until the server's close frame; its code."""
        for _ in range(100):
            opcode, payload = self.read_frame()
            assert opcode != -1, "EOF before a close frame"
            if opcode == 0x8:
                return int(struct.unpack("!H", payload[:2])[0])
        raise AssertionError("no close frame")

    def read_eof(self) -> bool:
        for _ in range(100):
            try:
                if not self.sock.recv(65536):
                    return True
            except ConnectionResetError:
                return True
        return False

    def close(self) -> None:
        self.sock.close()


def raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        for _ in range(100):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


# --------------------------------------------------------------------------- RFC 6455 4: handshake
class TestHandshake:
    def test_echo_with_subprotocol_and_extra_headers(self) -> None:
        async def client(url: str) -> None:
            async with connect(url + "/ws", subprotocols=["chat"]) as ws:
                assert ws.subprotocol == "chat"
                assert ws.response.headers["x-echo"] == "yes"
                await ws.send("hello")
                assert await ws.recv() == "hello"
                await ws.send(b"\x00\x01")
                assert await ws.recv() == b"\x00\x01"

        with serve(echo) as server:
            run(client(server.url))

    @pytest.mark.parametrize(
        ("request_head", "status"),
        [
            (b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", 400),
            (
                b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\n"
                b"Sec-WebSocket-Version: 13\r\n",
                400,
            ),
            (
                b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
                + KEY
                + b"\r\nSec-WebSocket-Version: 8\r\n",
                426,
            ),
        ],
    )
    def test_bad_handshake(self, request_head: bytes, status: int) -> None:
        with serve(echo) as server:
            response = raw_request(
                server.port, b"GET /ws HTTP/1.1\r\nHost: x\r\n" + request_head + b"\r\n"
            )
        assert response.startswith(b"HTTP/1.1 %d " % status), response
        if status == 426:
            assert b"sec-websocket-version: 13\r\n" in response.lower()

    def test_close_before_accept_is_403(self) -> None:
        async def deny(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.close"})

        async def client(url: str) -> None:
            with pytest.raises(InvalidStatus) as info:
                async with connect(url + "/ws"):
                    pass
            assert info.value.response.status_code == 403

        with serve(deny) as server:
            run(client(server.url))

    def test_denial_response_extension(self) -> None:
        async def deny(scope: dict[str, Any], receive: Any, send: Any) -> None:
            assert "websocket.http.response" in scope["extensions"]
            await receive()
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 401,
                    "headers": [(b"www-authenticate", b"Bearer"), (b"content-length", b"12")],
                }
            )
            await send({"type": "websocket.http.response.body", "body": b"go ", "more_body": True})
            await send({"type": "websocket.http.response.body", "body": b"away, you"})

        async def client(url: str) -> None:
            with pytest.raises(InvalidStatus) as info:
                async with connect(url + "/ws"):
                    pass
            response = info.value.response
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.body == b"go away, you"

        with serve(deny) as server:
            run(client(server.url))

    def test_over_limit_concurrency_is_503(self) -> None:
        async def client(url: str) -> None:
            async with connect(url + "/ws") as ws:
                await ws.send("first")
                assert await ws.recv() == "first"
                with pytest.raises(InvalidStatus) as info:
                    async with connect(url + "/ws"):
                        pass
                assert info.value.response.status_code == 503
                await ws.send("still served")
                assert await ws.recv() == "still served"

        with serve(echo, limit_concurrency=1) as server:
            run(client(server.url))

    def test_ws_none_serves_upgrade_as_plain_http(self) -> None:
        async def http_only(scope: dict[str, Any], receive: Any, send: Any) -> None:
            assert scope["type"] == "http"
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"plain"})

        with serve(http_only, ws="none") as server:
            response = raw_request(
                server.port,
                b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13\r\n\r\n",
            )
        assert response.startswith(b"HTTP/1.1 200 "), response
        assert response.endswith(b"plain")

    @pytest.mark.parametrize("choice", ["websockets", "websockets-sansio", "wsproto"])
    def test_uvicorn_implementation_names_serve_websockets(
        self, choice: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="pronghorn.error")

        async def client(url: str) -> None:
            async with connect(url + "/") as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"

        with serve(echo, ws=choice, log_level="info") as server:
            run(client(server.url))
        notes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("--ws")]
        expected = ["--ws wsproto: WebSocket frames are handled by websockets' sans-IO core"]
        assert notes == (expected if choice == "wsproto" else [])


# --------------------------------------------------------------------------- clients
class TestClients:
    def test_wss_over_tls(self, tmp_path: Any) -> None:
        import ssl

        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
        client_context = ssl.create_default_context()
        ca.configure_trust(client_context)
        schemes: list[str] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            schemes.append(scope["scheme"])
            await echo(scope, receive, send)

        async def client(port: int) -> None:
            async with connect(f"wss://127.0.0.1:{port}/ws", ssl=client_context) as ws:
                await ws.send("secure")
                assert await ws.recv() == "secure"

        pem = str(tmp_path / "server.pem")
        with serve(app, ssl_certfile=pem, ssl_keyfile=pem) as server:
            run(client(server.port))
        assert schemes == ["wss"]

    def test_aiohttp_client_with_compression(self) -> None:
        async def client(url: str) -> None:
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(url + "/ws", compress=15) as ws,
            ):
                assert ws.compress  # permessage-deflate negotiated
                for text in ("one", "two" * 1000):
                    await ws.send_str(text)
                    assert (await ws.receive()).data == text
                await ws.send_bytes(b"\xff" * 70000)
                assert (await ws.receive()).data == b"\xff" * 70000
                await ws.close()
            assert ws.close_code == 1000

        with serve(echo) as server:
            run(client(server.url))

    def test_websockets_client_deflate_large_and_many(self) -> None:
        async def client(url: str) -> None:
            async with connect(url + "/ws", max_size=None) as ws:
                assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]
                big = os.urandom(3 * 1024 * 1024)
                await ws.send(big)
                assert await ws.recv() == big
                for i in range(200):
                    await ws.send(f"message {i}")
                assert [await ws.recv() for _ in range(200)] == [f"message {i}" for i in range(200)]

        with serve(echo) as server:
            run(client(server.url))

    def test_deflate_disabled_by_setting(self) -> None:
        async def client(url: str) -> None:
            async with connect(url + "/ws") as ws:
                assert ws.protocol.extensions == []
                await ws.send("x")
                assert await ws.recv() == "x"

        with serve(echo, ws_per_message_deflate=False) as server:
            run(client(server.url))


# --------------------------------------------------------------------------- RFC 6455 7: closing
class TestClosing:
    def test_app_close_code_and_reason_reach_the_client(self) -> None:
        async def client(url: str) -> None:
            async with connect(url + "/ws") as ws:
                await ws.send("close-please")
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
            assert ws.close_code == 4001
            assert ws.close_reason == "as asked"

        with serve(echo) as server:
            run(client(server.url))

    def test_client_close_code_and_reason_reach_the_app(self) -> None:
        recorder = Recorder()

        async def client(url: str) -> None:
            async with connect(url + "/ws") as ws:
                await ws.send("hi")
                await ws.close(1001, "leaving")

        with serve(recorder) as server:
            run(client(server.url))
            assert recorder.disconnect() == {
                "type": "websocket.disconnect",
                "code": 1001,
                "reason": "leaving",
            }
        assert recorder.messages[0] == {"type": "websocket.receive", "text": "hi"}

    def test_dropped_connection_is_1006_for_the_app(self) -> None:
        recorder = Recorder()
        with serve(recorder) as server:
            raw = RawClient(server.port)
            raw.close()
            assert recorder.disconnect()["code"] == 1006

    def test_app_exception_after_accept_is_1011(self) -> None:
        async def client(url: str) -> None:
            async with connect(url + "/ws") as ws:
                await ws.send("raise")
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
            assert ws.close_code == 1011

        with serve(echo) as server:
            run(client(server.url))

    def test_peer_that_never_answers_our_close_is_dropped(self) -> None:
        with serve(echo, timeout_ws_close=0.2) as server:
            raw = RawClient(server.port)
            raw.send(client_frame(0x1, b"close-please"))
            assert raw.read_close() == 4001
            started = time.monotonic()
            assert raw.read_eof()  # without our close frame, after the timeout
            assert 0.1 < time.monotonic() - started < 3
            raw.close()

    def test_graceful_shutdown_closes_with_1012(self) -> None:
        async def client(server: Running) -> int | None:
            async with connect(server.url + "/ws") as ws:
                await ws.send("x")
                assert await ws.recv() == "x"
                server.shutdown()
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                return ws.close_code

        with serve(echo) as server:
            assert run(client(server)) == 1012

    def test_shutdown_deadline_cancels_an_app_that_never_returns(self) -> None:
        seen: list[str] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            try:
                await asyncio.sleep(60)
            except BaseException as exc:
                # The cancellation itself, thrown through the compiled exchange (see
                # server/awaits.py), not a DeprecationWarning in its place.
                seen.append(type(exc).__name__)
                raise

        async def client(server: Running) -> None:
            async with connect(server.url + "/ws") as ws:
                server.shutdown()
                with pytest.raises(ConnectionClosed):
                    await ws.recv()

        with serve(app, timeout_graceful_shutdown=0.3) as server:
            run(client(server))
        assert seen == ["CancelledError"]


# --------------------------------------------------------------------------- peer misbehaviour
class TestViolations:
    def test_unmasked_frame_is_1002(self) -> None:
        with serve(echo) as server:
            raw = RawClient(server.port)
            raw.send(client_frame(0x1, b"hi", masked=False))
            assert raw.read_close() == 1002
            assert raw.read_eof()
            raw.close()

    def test_reserved_bit_is_1002(self) -> None:
        with serve(echo, ws_per_message_deflate=False) as server:
            raw = RawClient(server.port)
            raw.send(client_frame(0x1, b"hi", rsv=0x40))
            assert raw.read_close() == 1002
            raw.close()

    def test_invalid_utf8_is_1007_and_the_app_sees_it(self) -> None:
        recorder = Recorder()
        with serve(recorder) as server:
            raw = RawClient(server.port)
            raw.send(client_frame(0x1, b"\xc3\x28"))
            assert raw.read_close() == 1007
            assert recorder.disconnect()["code"] == 1007
            raw.close()

    def test_message_over_max_size_is_1009(self) -> None:
        async def client(url: str) -> int | None:
            async with connect(url + "/ws") as ws:
                await ws.send(b"x" * 2000)
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                return ws.close_code

        with serve(echo, ws_max_size=1024) as server:
            assert run(client(server.url)) == 1009

    def test_deflate_bomb_is_1009(self) -> None:
        with serve(echo, ws_max_size=65536) as server:
            raw = RawClient(server.port, b"Sec-WebSocket-Extensions: permessage-deflate\r\n")
            assert b"permessage-deflate" in raw.head
            compressor = zlib.compressobj(wbits=-15)
            bomb = compressor.compress(b"\x00" * (50 * 1024 * 1024))
            bomb += compressor.flush(zlib.Z_SYNC_FLUSH)
            raw.send(client_frame(0x2, bomb[:-4], rsv=0x40))
            assert len(bomb) < 65536
            assert raw.read_close() == 1009
            raw.close()

    def test_control_frame_between_fragments(self) -> None:
        with serve(echo) as server:
            raw = RawClient(server.port)
            raw.send(
                client_frame(0x1, b"hel", fin=False)
                + client_frame(0x9, b"ping")
                + client_frame(0x0, b"lo")
            )
            assert raw.read_frame() == (0xA, b"ping")
            assert raw.read_frame() == (0x1, b"hello")
            raw.close()


# --------------------------------------------------------------------------- keepalive
class TestKeepalive:
    def test_unanswered_ping_closes_with_1011(self) -> None:
        with serve(echo, ws_ping_interval=0.1, ws_ping_timeout=0.2) as server:
            raw = RawClient(server.port)
            started = time.monotonic()
            assert raw.read_frame()[0] == 0x9  # a ping, which this client ignores
            assert raw.read_close() == 1011
            assert time.monotonic() - started < 3
            raw.close()

    def test_answered_pings_keep_the_connection(self) -> None:
        async def client(url: str) -> None:
            async with connect(url + "/ws", ping_interval=None) as ws:
                # Past the timeout, and several pings: websockets answers each one.
                await asyncio.sleep(1.5)
                await ws.send("still here")
                assert await ws.recv() == "still here"

        with serve(echo, ws_ping_interval=0.1, ws_ping_timeout=1.0) as server:
            run(client(server.url))


# --------------------------------------------------------------------------- backpressure
class TestBackpressure:
    def test_reading_pauses_when_the_app_does_not_receive(self) -> None:
        release = threading.Event()
        received: list[int] = []

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

        with serve(slow, ws_max_queue=4) as server:
            raw = RawClient(server.port)
            for _ in range(20):
                raw.send(client_frame(0x2, b"m" * 1000))
            paused = False
            for _ in range(200):
                conns = server.connections()
                if conns and conns[0].reading_paused:
                    paused = True
                    break
                time.sleep(0.01)
            assert paused, "reading never paused with a full message queue"
            release.set()
            for _ in range(300):
                if len(received) == 20:
                    break
                time.sleep(0.01)
            assert received == [1000] * 20  # resumed and nothing was lost
            raw.close()

    def test_app_send_waits_while_the_client_does_not_read(self) -> None:
        sent: list[int] = []
        chunk = os.urandom(256 * 1024)  # incompressible

        async def flood(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            for i in range(200):
                await send({"type": "websocket.send", "bytes": chunk})
                sent.append(i)
            await send({"type": "websocket.close"})

        with serve(flood, ws_per_message_deflate=False) as server:
            raw = RawClient(server.port)
            raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            for _ in range(300):
                if sent:
                    break
                time.sleep(0.01)
            time.sleep(0.5)  # time to send far more than the socket buffers hold
            assert 0 < len(sent) < 100, f"{len(sent)} messages sent to a client that reads none"
            total = 0
            for _ in range(300):
                opcode, payload = raw.read_frame()
                if opcode == 0x8:
                    break
                total += 1
                assert payload == chunk
            assert total == 200
            raw.close()

    def test_a_slow_reader_of_a_stream_still_answers_keepalive_pings(self) -> None:
        # While the app streams to a client slower than the app, the transport is paused
        # most of the time; reading must still take in the client's pongs, or keepalive
        # would close a healthy connection with 1011.
        outcome: list[str] = []

        async def streamer(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            chunk = bytes(256 * 1024)
            try:
                for _ in range(100):
                    await send({"type": "websocket.send", "bytes": chunk})
            except ClientDisconnected:
                outcome.append("disconnected")
                return
            await send({"type": "websocket.close"})

        async def client(url: str) -> tuple[int, int | None]:
            received = 0
            async with connect(url + "/", max_size=None, ping_interval=None) as ws:
                with contextlib.suppress(ConnectionClosed):
                    async for _ in ws:
                        received += 1
                        await asyncio.sleep(0.02)  # about 12 MB/s: slower than the app
            return received, ws.close_code

        settings = {"ws_ping_interval": 0.2, "ws_ping_timeout": 1.5}
        with serve(streamer, ws_per_message_deflate=False, **settings) as server:
            received, code = run(client(server.url))
        assert (received, code, outcome) == (100, 1000, [])

    def test_pings_from_a_client_that_never_reads_do_not_pile_up(self) -> None:
        # Pongs are written without the app: reading stops while the transport is paused for
        # writing, so the client's pings back up in its own socket instead of the server's
        # memory (before: 1M pings buffered 140 MB of pongs in the server).
        ping = client_frame(0x9, b"p" * 125)
        batch = ping * 100
        limit = 300_000 * len(ping)
        with serve(echo, ws_ping_interval=None) as server:
            raw = RawClient(server.port)
            raw.sock.setblocking(False)
            written = 0
            pending = b""
            deadline = time.monotonic() + 15
            while written < limit and time.monotonic() < deadline:
                if not select.select([], [raw.sock], [], 0.5)[1]:
                    break  # the server stopped taking pings
                pending = pending or batch
                sent = raw.sock.send(pending)
                written += sent
                pending = pending[sent:]
            assert written < limit, "the server read every ping of a client reading no pong"
            connection = server.connections()[0]
            assert connection.reading_paused
            assert connection.write_paused
            # Nothing lost: once the client reads, the server reads on and answers each ping.
            raw.sock.setblocking(True)
            raw.sock.settimeout(5)
            rest = threading.Thread(target=raw.sock.sendall, args=(pending,))
            if pending:  # a partial frame: finished once the server reads again
                rest.start()
            pong = b"\x8a\x7d" + b"p" * 125
            expected = pong * ((written + len(pending)) // len(ping))
            received = bytearray(raw.buffer)
            while len(received) < len(expected):
                chunk = raw.sock.recv(1 << 20)
                assert chunk, f"closed after {len(received)} of {len(expected)} bytes of pongs"
                received += chunk
            assert received == expected
            raw.buffer = b""
            if pending:
                rest.join(5)
            raw.send(client_frame(0x1, b"still echoing"))
            assert raw.read_frame() == (0x1, b"still echoing")
            raw.close()


# --------------------------------------------------------------------------- frameworks
class TestFrameworks:
    def test_starlette_endpoint_unchanged(self) -> None:
        async def endpoint(websocket: WebSocket) -> None:
            await websocket.accept(subprotocol="v1")
            async for text in websocket.iter_text():
                await websocket.send_json({"echo": text, "path": websocket.url.path})

        app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])

        async def client(url: str) -> None:
            async with connect(url + "/ws", subprotocols=["v1"]) as ws:
                await ws.send("hi")
                assert await ws.recv() == '{"echo":"hi","path":"/ws"}'
            with pytest.raises(InvalidStatus) as info:  # no route: Starlette closes -> 403
                async with connect(url + "/nowhere"):
                    pass
            assert info.value.response.status_code == 403

        with serve(app) as server:  # type: ignore[arg-type]
            run(client(server.url))

    def test_fastapi_endpoint_unchanged(self) -> None:
        app = FastAPI()
        # FastAPI resolves the endpoint's annotations; with postponed evaluation it needs the
        # names at module level, hence the module-level imports above.
        closes: list[int] = []

        @app.websocket("/ws/{room}")
        async def room(websocket: WebSocket, room: str) -> None:
            await websocket.accept()
            try:
                while True:
                    data = await websocket.receive_bytes()
                    await websocket.send_text(f"{room}:{len(data)}")
            except WebSocketDisconnect as exc:
                closes.append(exc.code)

        async def client(url: str) -> None:
            async with connect(url + "/ws/lobby") as ws:
                await ws.send(b"12345")
                assert await ws.recv() == "lobby:5"
            with pytest.raises(InvalidStatus) as info:  # no route -> FastAPI closes -> 403
                async with connect(url + "/elsewhere"):
                    pass
            assert info.value.response.status_code == 403

        with serve(app) as server:  # type: ignore[arg-type]
            run(client(server.url))
            for _ in range(100):
                if closes:
                    break
                time.sleep(0.01)
        assert closes == [1000]
