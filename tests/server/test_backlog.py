"""Connections queued while the server is busy are accepted together, not one per loop turn.

uvloop accepts one connection per loop iteration; pronghorn accepts the rest of the queue when
a connection is made (server/backlog.py). These tests queue connections while the server's
loop is blocked, keep every later iteration slow with a busy callback, and count iterations:
without the drain the queued connections would be served one iteration apart.
"""

from __future__ import annotations

import concurrent.futures
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import trustme

from tests.conftest import RunningServer, recv_response, run_server

CONNECTIONS = 40


class LoopTicks:
    """A callback that runs once per loop iteration, counting them and making each slow."""

    def __init__(self, loop: Any, pause: float) -> None:
        self.loop = loop
        self.pause = pause
        self.count = 0
        self.stopped = threading.Event()

    def tick(self) -> None:
        if self.stopped.is_set():
            return
        self.count += 1
        time.sleep(self.pause)
        self.loop.call_soon(self.tick)


def queue_connections(running: RunningServer, count: int) -> list[socket.socket]:
    """Open ``count`` connections while the server's loop is blocked: all wait in its queue."""
    unblock = threading.Event()
    running.loop.call_soon_threadsafe(unblock.wait, 10)
    try:
        return [running.connect() for _ in range(count)]
    finally:
        unblock.set()


def test_queued_connections_are_served_in_the_same_few_iterations() -> None:
    seen: list[int] = []
    ticks: LoopTicks | None = None

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert ticks is not None
        seen.append(ticks.count)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with run_server(app, loop="uvloop") as running:
        ticks = LoopTicks(running.loop, pause=0.01)
        try:
            running.loop.call_soon_threadsafe(ticks.tick)
            socks = queue_connections(running, CONNECTIONS)
            for sock in socks:
                sock.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            for sock in socks:
                assert recv_response(sock).startswith(b"HTTP/1.1 200 ")
        finally:
            ticks.stopped.set()
        drain = running.server.state.backlog  # type: ignore[union-attr]
        assert drain is not None
        assert drain.accepted >= CONNECTIONS // 2
    assert len(seen) == CONNECTIONS
    # One accept per iteration would spread the first requests over ~40 iterations.
    assert max(seen) - min(seen) <= 5, seen


def test_queued_tls_connections_complete_their_handshakes(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["scheme"].encode()})

    settings = {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile), "loop": "uvloop"}
    with run_server(app, **settings) as running:
        ticks = LoopTicks(running.loop, pause=0.01)
        running.loop.call_soon_threadsafe(ticks.tick)
        socks = queue_connections(running, 20)

        def exchange(raw: socket.socket) -> bytes:
            with client_context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
                conn.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                return data

        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
                answers = list(pool.map(exchange, socks, timeout=20))
        finally:
            ticks.stopped.set()
        drain = running.server.state.backlog  # type: ignore[union-attr]
        assert drain is not None
        assert drain.accepted > 0
    assert all(a.startswith(b"HTTP/1.1 200 ") and a.endswith(b"https") for a in answers)


def test_asyncio_loop_needs_no_drain() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with run_server(app, loop="asyncio") as running:
        assert running.server.state.backlog is None  # type: ignore[union-attr]
        socks = queue_connections(running, 10)
        for sock in socks:
            sock.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            assert recv_response(sock).startswith(b"HTTP/1.1 200 ")


def test_no_accept_after_shutdown_began() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with run_server(app, loop="uvloop") as running:
        drain = running.server.state.backlog  # type: ignore[union-attr]
        assert drain is not None
    assert drain.closed
    before = drain.accepted
    drain.drain()  # the sockets are closed now: a drain must not touch them
    assert drain.accepted == before


def test_queued_unix_socket_connections_are_served(tmp_path: Path) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"unix"})

    path = str(tmp_path / "pronghorn.sock")
    with run_server(app, loop="uvloop", uds=path) as running:
        ticks = LoopTicks(running.loop, pause=0.01)
        running.loop.call_soon_threadsafe(ticks.tick)
        unblock = threading.Event()
        running.loop.call_soon_threadsafe(unblock.wait, 10)
        socks: list[socket.socket] = []
        try:
            for _ in range(20):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(5)
                sock.connect(path)
                socks.append(sock)
        finally:
            unblock.set()
        try:
            for sock in socks:
                sock.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            answers = [recv_response(sock) for sock in socks]
        finally:
            ticks.stopped.set()
            for sock in socks:
                sock.close()
        drain = running.server.state.backlog  # type: ignore[union-attr]
        assert drain is not None
        assert drain.accepted > 0
    assert all(a.startswith(b"HTTP/1.1 200 ") and a.endswith(b"unix") for a in answers)
