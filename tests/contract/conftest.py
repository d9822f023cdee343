"""The ``transport`` fixture: one ASGI behaviour suite, run over every way a request can arrive.

Each test is written once against a :class:`Transport`, which knows how to start pronghorn for
its protocol (``serve``), how to build an httpx client that really speaks it (``client`` /
``async_client``; h2 is forced with ``http1=False`` so a fallback to HTTP/1.1 cannot pass
silently) and how to make one request below httpx (``raw``) for what httpx hides: informational
responses, trailers and server push.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import h2.events
import h2.settings
import httpx
import pytest

from tests.conftest import RunningServer, run_server
from tests.integration.h2_servers import H2Client, TLSFiles, tls_files

Headers = list[tuple[bytes, bytes]]
TIMEOUT = 10.0
#: The raw HTTP/2 client's receive windows: it never acknowledges DATA, so they start large.
_WINDOW = 1 << 30


@dataclass
class RawResponse:
    """One response as the wire carried it."""

    status: int
    headers: Headers
    body: bytes
    informational: list[tuple[int, Headers]] = field(default_factory=list)
    trailers: Headers = field(default_factory=list)
    #: HTTP/2 server push: (promised request headers, pushed response status, pushed body).
    pushes: list[tuple[Headers, int, bytes]] = field(default_factory=list)

    def header(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key.lower() == name]


@dataclass(frozen=True)
class Transport:
    name: str
    http2: bool
    tls: TLSFiles | None

    @property
    def http_version(self) -> str:
        return "2" if self.http2 else "1.1"

    @property
    def httpx_version(self) -> str:
        return "HTTP/2" if self.http2 else "HTTP/1.1"

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    # ------------------------------------------------------------------ server
    @contextlib.contextmanager
    def serve(self, app: Any, **settings: Any) -> Iterator[RunningServer]:
        settings.setdefault("access_log", False)
        if self.tls is not None:
            settings.setdefault("ssl_certfile", str(self.tls.certfile))
            settings.setdefault("ssl_keyfile", str(self.tls.keyfile))
        with run_server(app, **settings) as server:
            yield server
            assert not server.errors, server.errors

    # ------------------------------------------------------------------ httpx
    def _client_settings(self, **kwargs: Any) -> dict[str, Any]:
        settings: dict[str, Any] = {"timeout": TIMEOUT}
        if self.http2:
            settings.update(http1=False, http2=True)
        if self.tls is not None:
            # A fresh context per client: httpcore sets its ALPN list on the context it gets.
            settings["verify"] = ssl.create_default_context(cafile=str(self.tls.cafile))
        else:
            settings["verify"] = False  # cleartext: skip loading the system CA bundle
        settings.update(kwargs)
        return settings

    def client(self, server: RunningServer, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=server.url, **self._client_settings(**kwargs))

    def async_client(self, server: RunningServer, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=server.url, **self._client_settings(**kwargs))

    # ------------------------------------------------------------------ below httpx
    def raw(
        self,
        server: RunningServer,
        path: str = "/",
        method: str = "GET",
        headers: Headers | None = None,
    ) -> RawResponse:
        if self.http2:
            return self._raw_h2(server, path, method, headers or [])
        return self._raw_h1(server, path, method, headers or [])

    def _raw_h2(
        self, server: RunningServer, path: str, method: str, headers: Headers
    ) -> RawResponse:
        settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _WINDOW}
        with H2Client(server.port, self.tls, settings=settings) as client:
            client.conn.increment_flow_control_window(_WINDOW)  # no WINDOW_UPDATEs needed
            client.flush()
            stream_id = client.request(path, method, headers=headers)
            events = client.read_until(client.ended(stream_id), timeout=TIMEOUT)
            promised: dict[int, Headers] = {
                e.pushed_stream_id: [(bytes(k), bytes(v)) for k, v in e.headers or []]
                for e in events
                if isinstance(e, h2.events.PushedStreamReceived) and e.pushed_stream_id is not None
            }
            if promised:
                client.read_until(
                    lambda evs: all(client.ended(p)(evs) for p in promised), timeout=TIMEOUT
                )
            response = RawResponse(0, [], client.body(stream_id))
            for event in client.of(h2.events.InformationalResponseReceived, stream_id):
                response.informational.append((_status(event.headers), _fields(event.headers)))
            for event in client.of(h2.events.ResponseReceived, stream_id):
                response.status = _status(event.headers)
                response.headers = _fields(event.headers)
            for event in client.of(h2.events.TrailersReceived, stream_id):
                response.trailers = list(event.headers)
            for pushed, request_headers in promised.items():
                status = [_status(e.headers) for e in client.of(h2.events.ResponseReceived, pushed)]
                response.pushes.append(
                    (request_headers, status[0] if status else 0, client.body(pushed))
                )
            return response

    def _raw_h1(
        self, server: RunningServer, path: str, method: str, headers: Headers
    ) -> RawResponse:
        sock = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
        with contextlib.ExitStack() as stack:
            stack.callback(sock.close)
            if self.tls is not None:
                sock = self.tls.client_context(["http/1.1"]).wrap_socket(
                    sock, server_hostname="localhost"
                )
                stack.callback(sock.close)
            head = [f"{method} {path} HTTP/1.1".encode(), b"host: localhost", b"te: trailers"]
            head += [b"%s: %s" % pair for pair in headers]
            head.append(b"connection: close")
            sock.sendall(b"\r\n".join(head) + b"\r\n\r\n")
            data = _read_until_closed(sock)
        return _parse_h1(data, head_only=method == "HEAD")


def _status(headers: Headers) -> int:
    return int(dict(headers)[b":status"])


def _fields(headers: Headers) -> Headers:
    return [(name, value) for name, value in headers if not name.startswith(b":")]


def _read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def _parse_head(block: bytes) -> tuple[int, Headers]:
    lines = block.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower(), value.strip()))
    return status, headers


def _parse_h1(data: bytes, *, head_only: bool = False) -> RawResponse:
    if not data:
        return RawResponse(0, [], b"")  # closed without a response
    informational = []
    while True:
        block, sep, data = data.partition(b"\r\n\r\n")
        assert sep, f"incomplete response head: {block!r}"
        status, headers = _parse_head(block)
        if status >= 200:
            break
        informational.append((status, headers))
    response = RawResponse(status, headers, b"", informational)
    if head_only or status in (204, 304):
        response.body = data
        return response
    if b"chunked" in b",".join(response.header(b"transfer-encoding")):
        body = []
        while True:
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            body.append(data[:size])
            data = data[size + 2 :]
        response.body = b"".join(body)
        trailer_block = data[: data.find(b"\r\n\r\n")] if b"\r\n\r\n" in data else b""
        for line in trailer_block.split(b"\r\n"):
            if line:
                name, _, value = line.partition(b":")
                response.trailers.append((name.strip().lower(), value.strip()))
        return response
    response.body = data
    return response


# --------------------------------------------------------------------------- fixtures
TRANSPORTS = ["h1", "h2c", "h1-tls", "h2-tls"]


@pytest.fixture(scope="session")
def contract_tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return tls_files(tmp_path_factory.mktemp("contract-tls"))


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest, contract_tls: TLSFiles) -> Transport:
    name: str = request.param
    return Transport(
        name, http2=name.startswith("h2"), tls=contract_tls if name.endswith("tls") else None
    )


def server_log(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    """pronghorn's log lines at ``level`` or above, from every phase of the test so far."""
    records = [r for phase in ("setup", "call", "teardown") for r in caplog.get_records(phase)]
    return [
        r.getMessage() for r in records if r.name.startswith("pronghorn") and r.levelno >= level
    ]


@pytest.fixture(autouse=True)
def quiet_server_log(
    caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> Iterator[None]:
    """A correct app leaves nothing at WARNING or above in the server log; a test whose app
    misbehaves on purpose asks for ``allow_app_errors``."""
    caplog.set_level(logging.DEBUG, logger="pronghorn")
    yield
    if "allow_app_errors" not in request.fixturenames:
        assert server_log(caplog) == []


@pytest.fixture
def allow_app_errors() -> None:
    """The test's app raises or breaks the protocol on purpose; the server logs it."""


def wait_for(condition: Any, timeout: float = 5.0) -> bool:
    """Poll ``condition()`` until it is true or ``timeout`` passes (for app-side effects that
    happen after the client already has its response)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())
