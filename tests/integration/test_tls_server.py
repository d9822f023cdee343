"""TLS end to end with trustme certificates: ALPN picks HTTP/2 or HTTP/1.1, https/wss scopes,
client certificates, minimum version, handshake timeout, and one-line startup errors."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import h2.events
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from pronghorn.config import Config
from pronghorn.errors import StartupError
from pronghorn.tls import create_ssl_context
from tests.integration.h2_servers import H2Client, TLSFiles, hello, run, serve, tls_files


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return tls_files(tmp_path_factory.mktemp("tls"))


def alpn_of(port: int, tls: TLSFiles, offer: list[str]) -> str | None:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        tls.client_context(offer).wrap_socket(raw, server_hostname="localhost") as conn,
    ):
        return conn.selected_alpn_protocol()


# --------------------------------------------------------------------------- ALPN
def test_alpn_offers_h2_then_http11(tls: TLSFiles) -> None:
    with serve(hello, tls) as server:
        assert alpn_of(server.port, tls, ["h2", "http/1.1"]) == "h2"
        assert alpn_of(server.port, tls, ["http/1.1"]) == "http/1.1"
    with serve(hello, tls, http2=False) as server:
        assert alpn_of(server.port, tls, ["h2", "http/1.1"]) == "http/1.1"


def test_httpx_over_tls_both_versions(tls: TLSFiles) -> None:
    with serve(hello, tls) as server:

        async def go(http2: bool) -> httpx.Response:
            context = tls.client_context()
            async with httpx.AsyncClient(http2=http2, verify=context, timeout=10) as client:
                return await client.get(server.url + "/secure?x=1")

        two = run(go(True))
        assert two.http_version == "HTTP/2"
        assert two.text == "2 https GET /secure x=1"
        one = run(go(False))
        assert one.http_version == "HTTP/1.1"
        assert one.text == "1.1 https GET /secure x=1"


def test_h2_client_over_tls_many_streams(tls: TLSFiles) -> None:
    with serve(hello, tls) as server, H2Client(server.port, tls) as client:
        ids = [client.request(f"/{i}") for i in range(20)]
        client.read_until(lambda events: all(client.ended(i)(events) for i in ids))
        assert [client.body(i) for i in ids] == [f"2 https GET /{i} ".encode() for i in range(20)]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_http2_over_tls(tls: TLSFiles) -> None:
    with serve(hello, tls) as server:
        result = subprocess.run(
            [
                "curl",
                "-sS",
                "--max-time",
                "10",
                "--http2",
                "--cacert",
                str(tls.cafile),
                "-i",
                f"https://localhost:{server.port}/c",
            ],
            capture_output=True,
            timeout=20,
        )
        assert result.stdout.startswith(b"HTTP/2 200"), result
        assert result.stdout.endswith(b"2 https GET /c ")


def test_websocket_scope_is_wss(tls: TLSFiles) -> None:
    from websockets.asyncio.client import connect

    schemes: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        schemes.append(scope["scheme"])
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close"})

    with serve(app, tls) as server:

        async def go() -> None:
            url = f"wss://localhost:{server.port}/ws"
            async with connect(url, ssl=tls.client_context(), open_timeout=5) as ws:
                await asyncio.wait_for(ws.wait_closed(), 5)

        run(go())
    assert schemes == ["wss"]


# --------------------------------------------------------------------------- client certs, versions
def test_required_client_certificate(tls: TLSFiles, tmp_path: Path) -> None:
    client_cert = tls.ca.issue_cert("client@example.com")
    cert_path = tmp_path / "client.pem"
    client_cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    with serve(hello, tls, ssl_cert_reqs=2, ssl_ca_certs=str(tls.cafile)) as server:
        with_cert = tls.client_context()
        with_cert.load_cert_chain(str(cert_path))
        response = httpx.get(server.url + "/m", verify=with_cert, timeout=5)
        assert response.text == "1.1 https GET /m "
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            httpx.get(server.url + "/m", verify=tls.client_context(), timeout=5)


def test_minimum_tls_version(tls: TLSFiles) -> None:
    with serve(hello, tls, ssl_min_version="TLSv1.3") as server:
        old = tls.client_context()
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url, verify=old, timeout=5)
        assert httpx.get(server.url, verify=tls.client_context(), timeout=5).status_code == 200


def negotiated_version(port: int, tls: TLSFiles) -> str | None:
    """The TLS version a client offering 1.2 and 1.3 ends up with."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        tls.client_context().wrap_socket(raw, server_hostname="localhost") as conn,
    ):
        return conn.version()


def test_uvicorn_ssl_version_5_pins_tls_1_2(tls: TLSFiles) -> None:
    # uvicorn's --ssl-version 5 is ssl.PROTOCOL_TLSv1_2.
    with serve(hello, tls, ssl_version=5) as server:
        assert negotiated_version(server.port, tls) == "TLSv1.2"
        newest = tls.client_context()
        newest.minimum_version = ssl.TLSVersion.TLSv1_3
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url, verify=newest, timeout=5)
    with serve(hello, tls) as server:  # the default (17) negotiates the newest
        assert negotiated_version(server.port, tls) == "TLSv1.3"


def test_handshake_timeout_closes_silent_connections(tls: TLSFiles) -> None:
    with (
        serve(hello, tls, timeout_ssl_handshake=0.3) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
    ):
        started = time.monotonic()
        assert raw.recv(10) == b""  # closed by the server, not by our 5 s timeout
        assert time.monotonic() - started < 4


def test_ping_keepalive_over_tls(tls: TLSFiles) -> None:
    with serve(hello, tls, http2_ping_interval=0.2) as server, H2Client(server.port, tls) as c:
        c.read_until(lambda events: bool(c.of(h2.events.PingReceived)), timeout=15)
        assert c.of(h2.events.PingReceived)


# --------------------------------------------------------------------------- startup errors
def config(**settings: Any) -> Config:
    return Config(**settings)


def one_line(exc: pytest.ExceptionInfo[StartupError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_missing_certificate_file(tmp_path: Path) -> None:
    with pytest.raises(StartupError) as exc:
        create_ssl_context(config(ssl_certfile=str(tmp_path / "nope.pem")))
    assert one_line(exc) == f"--ssl-certfile {tmp_path / 'nope.pem'}: no such file"


def test_missing_key_file(tls: TLSFiles, tmp_path: Path) -> None:
    with pytest.raises(StartupError) as exc:
        create_ssl_context(
            config(ssl_certfile=str(tls.certfile), ssl_keyfile=str(tmp_path / "k.pem"))
        )
    assert "--ssl-keyfile" in one_line(exc)


def test_garbage_certificate(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(StartupError) as exc:
        create_ssl_context(config(ssl_certfile=str(junk)))
    assert "not a PEM certificate" in one_line(exc)


@pytest.fixture(scope="module")
def encrypted_key(tls: TLSFiles, tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = load_pem_private_key(tls.keyfile.read_bytes(), None)
    path = tmp_path_factory.mktemp("enc") / "enc.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    return path


def test_encrypted_key_with_password(tls: TLSFiles, encrypted_key: Path) -> None:
    context = create_ssl_context(
        config(
            ssl_certfile=str(tls.certfile),
            ssl_keyfile=str(encrypted_key),
            ssl_keyfile_password="s3cret",
        )
    )
    assert context is not None


def test_wrong_password(tls: TLSFiles, encrypted_key: Path) -> None:
    with pytest.raises(StartupError) as exc:
        create_ssl_context(
            config(
                ssl_certfile=str(tls.certfile),
                ssl_keyfile=str(encrypted_key),
                ssl_keyfile_password="wrong",
            )
        )
    assert "wrong --ssl-keyfile-password" in one_line(exc)


def test_encrypted_key_without_password_does_not_prompt(tls: TLSFiles, encrypted_key: Path) -> None:
    with pytest.raises(StartupError) as exc:
        create_ssl_context(config(ssl_certfile=str(tls.certfile), ssl_keyfile=str(encrypted_key)))
    assert one_line(exc) == "--ssl-keyfile is encrypted: give --ssl-keyfile-password"


def test_client_cert_reqs_need_a_ca(tls: TLSFiles) -> None:
    with pytest.raises(StartupError) as exc:
        create_ssl_context(
            config(ssl_certfile=str(tls.certfile), ssl_keyfile=str(tls.keyfile), ssl_cert_reqs=2)
        )
    assert "--ssl-ca-certs" in one_line(exc)


def test_bad_ciphers(tls: TLSFiles) -> None:
    with pytest.raises(StartupError) as exc:
        create_ssl_context(
            config(
                ssl_certfile=str(tls.certfile),
                ssl_keyfile=str(tls.keyfile),
                ssl_ciphers="NOT-A-CIPHER",
            )
        )
    assert "--ssl-ciphers" in one_line(exc)


def test_server_start_fails_with_the_same_line(tmp_path: Path) -> None:
    from pronghorn.server.server import Server

    server = Server(Config(port=0, lifespan="off", ssl_certfile=str(tmp_path / "x.pem")), hello)
    with pytest.raises(StartupError, match="no such file"):
        asyncio.run(asyncio.wait_for(server.serve(), 10))


def test_no_tls_settings_means_no_context() -> None:
    assert create_ssl_context(config()) is None


# --------------------------------------------------------------------------- ssl_context_factory
#: The certificate files the factories below load (set by the tests that use them).
FACTORY_FILES: list[TLSFiles] = []
FACTORY_CALLS: list[Config] = []


def pinning_factory(config: Config, default_factory: Any) -> ssl.SSLContext:
    """Adjusts the context the --ssl-* settings describe: TLS 1.2 only."""
    FACTORY_CALLS.append(config)
    context: ssl.SSLContext = default_factory()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def own_context_factory(config: Config, default_factory: Any) -> ssl.SSLContext:
    """Builds its context without the settings (no --ssl-certfile given)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    files = FACTORY_FILES[-1]
    context.load_cert_chain(str(files.certfile), str(files.keyfile))
    return context


def default_without_certfile(config: Config, default_factory: Any) -> ssl.SSLContext:
    context: ssl.SSLContext = default_factory()
    return context


def not_a_context(config: Config, default_factory: Any) -> object:
    return "context"


FACTORY_MODULE = __name__


def test_ssl_context_factory_adjusts_the_default_context(tls: TLSFiles) -> None:
    FACTORY_CALLS.clear()
    factory = f"{FACTORY_MODULE}:pinning_factory"
    with serve(hello, tls, ssl_context_factory=factory) as server:
        assert negotiated_version(server.port, tls) == "TLSv1.2"
        # ALPN is the server's: set on whatever the factory returns.
        assert alpn_of(server.port, tls, ["h2", "http/1.1"]) == "h2"
        response = httpx.get(server.url + "/f", verify=tls.client_context(), timeout=5)
        assert response.text == "1.1 https GET /f "
    assert [call.ssl_context_factory for call in FACTORY_CALLS] == [factory]


def test_ssl_context_factory_alone_enables_tls(tls: TLSFiles) -> None:
    FACTORY_FILES.append(tls)
    factory = f"{FACTORY_MODULE}:own_context_factory"
    with serve(hello, ssl_context_factory=factory) as server:
        assert negotiated_version(server.port, tls) == "TLSv1.3"
        assert alpn_of(server.port, tls, ["h2"]) == "h2"


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("default_without_certfile", "its default_factory() needs --ssl-certfile"),
        ("not_a_context", "returned str, not an ssl.SSLContext"),
        ("no_such_function", "not found in module"),
        ("FACTORY_MODULE", "not a function"),
    ],
)
def test_ssl_context_factory_errors_are_one_line(factory: str, message: str) -> None:
    with pytest.raises(StartupError) as exc:
        create_ssl_context(config(ssl_context_factory=f"{FACTORY_MODULE}:{factory}"))
    assert "--ssl-context-factory" in one_line(exc)
    assert message in one_line(exc)


def test_run_takes_a_factory_function_as_uvicorn_does() -> None:
    from pronghorn.errors import ConfigError
    from pronghorn.runner import import_string_of

    name = "ssl_context_factory"
    assert import_string_of(pinning_factory, name) == f"{FACTORY_MODULE}:pinning_factory"
    with pytest.raises(ConfigError, match="must be a module-level function"):
        import_string_of(lambda config, default: default(), name)
