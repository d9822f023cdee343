"""HTTP/2 and TLS test helpers: a real pronghorn on 127.0.0.1:0 in a thread, trustme certificates,
and pytest fixtures for cleartext (prior knowledge / h2c) and TLS (ALPN) servers.

A shared contract suite can import ``serve`` and ``tls_files`` from here to run over HTTP/2.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme

from pronghorn.config import Config
from pronghorn.server.server import Server

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


@dataclass
class TLSFiles:
    ca: trustme.CA
    certfile: Path
    keyfile: Path
    cafile: Path

    def client_context(self, alpn: list[str] | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.cafile))
        if alpn:
            context.set_alpn_protocols(alpn)
        return context


def tls_files(directory: Path) -> TLSFiles:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    certfile = directory / "cert.pem"
    keyfile = directory / "key.pem"
    cafile = directory / "ca.pem"
    for blob in cert.cert_chain_pems:
        with certfile.open("ab") as fh:
            fh.write(blob.bytes())
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    return TLSFiles(ca, certfile, keyfile, cafile)


class Running:
    def __init__(self, server: Server, loop: asyncio.AbstractEventLoop, scheme: str) -> None:
        self.server = server
        self.loop = loop
        self.port: int = server.sockets[0].getsockname()[1]
        self.url = f"{scheme}://127.0.0.1:{self.port}"

    def connections(self) -> list[Any]:
        assert self.server.state is not None
        return list(self.server.state.connections)

    def shutdown(self) -> None:
        self.loop.call_soon_threadsafe(self.server.request_shutdown)


@contextmanager
def serve(app: App, tls: TLSFiles | None = None, **settings: Any) -> Iterator[Running]:
    """Run pronghorn with ``app`` until the block ends; TLS when ``tls`` is given."""
    settings = {"host": "127.0.0.1", "port": 0, "lifespan": "off", "access_log": False, **settings}
    if tls is not None:
        settings.setdefault("ssl_certfile", str(tls.certfile))
        settings.setdefault("ssl_keyfile", str(tls.keyfile))
    server = Server(Config(**settings), app)
    loop = asyncio.new_event_loop()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(server.serve())
        except BaseException as exc:  # surfaced in the test thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started or errors:
            break
        time.sleep(0.01)
    assert server.started, errors
    running = Running(server, loop, "https" if tls is not None else "http")
    try:
        yield running
    finally:
        running.shutdown()
        thread.join(15)
        assert not thread.is_alive()
        loop.close()
        assert not errors, errors


def run(coro: Awaitable[Any], timeout: float = 15) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


# --------------------------------------------------------------------------- apps
async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    body = (
        f"{scope['http_version']} {scope['scheme']} {scope['method']} {scope['path']}"
        f" {scope['query_string'].decode()}"
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def echo_body(scope: dict[str, Any], receive: Any, send: Any) -> None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    data = b"".join(chunks)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})


# --------------------------------------------------------------------------- a raw h2 client
class H2Client:
    """A blocking h2 client over a real socket, for what httpx will not do (push, trailers,
    zero windows, floods). Every read is bounded by a deadline."""

    def __init__(
        self,
        port: int,
        tls: TLSFiles | None = None,
        settings: dict[Any, int] | None = None,
    ) -> None:
        import socket

        import h2.config
        import h2.connection

        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if tls is not None:
            sock = tls.client_context(["h2"]).wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        self.scheme = b"https" if tls is not None else b"http"
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.events: list[Any] = []
        self.closed = False
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(
        self,
        path: str = "/",
        method: str = "GET",
        body: bytes | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        *,
        end: bool = True,
        flush: bool = True,
    ) -> int:
        """Open a stream; ``flush=False`` leaves it queued to go out with later requests."""
        stream_id: int = self.conn.get_next_available_stream_id()
        self.conn.send_headers(
            stream_id,
            [
                (b":method", method.encode()),
                (b":scheme", self.scheme),
                (b":authority", b"localhost"),
                (b":path", path.encode()),
                *(headers or []),
            ],
            end_stream=body is None and end,
        )
        if body is not None:
            self.conn.send_data(stream_id, body, end_stream=end)
        if flush:
            self.flush()
        return stream_id

    def read_until(self, done: Callable[[list[Any]], bool], timeout: float = 5.0) -> list[Any]:
        import h2.connection
        import h2.events
        import h2.exceptions

        deadline = time.monotonic() + timeout
        while not done(self.events) and not self.closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            except (ConnectionResetError, ssl.SSLError):
                data = b""
            if not data:
                self.closed = True
                break
            try:
                new = self.conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                self.closed = True
                break
            self.events += new
            if any(isinstance(e, h2.events.ConnectionTerminated) and not e.error_code for e in new):
                # h2 stops accepting frames after a GOAWAY; RFC 9113 §6.8 lets the streams
                # up to last_stream_id finish, which is what these tests check.
                self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
            self.flush()
        return self.events

    def of(self, kind: type[Any], stream_id: int | None = None) -> list[Any]:
        return [
            e
            for e in self.events
            if isinstance(e, kind) and (stream_id is None or e.stream_id == stream_id)
        ]

    def ended(self, stream_id: int) -> Callable[[list[Any]], bool]:
        import h2.events

        def check(events: list[Any]) -> bool:
            return any(
                isinstance(e, h2.events.StreamEnded | h2.events.StreamReset)
                and e.stream_id == stream_id
                for e in events
            )

        return check

    def body(self, stream_id: int) -> bytes:
        import h2.events

        return b"".join(e.data for e in self.of(h2.events.DataReceived, stream_id))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
