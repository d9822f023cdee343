"""Contract: the HTTP response extensions (trailers, early hints, pathsend, server push) and
the informational responses around them (Expect: 100-continue)."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h2.events

from tests.contract.conftest import Transport
from tests.integration.h2_servers import H2Client

Scope = dict[str, Any]


def test_trailers(transport: Transport) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        assert "http.response.trailers" in scope["extensions"]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"trailer", b"x-checksum, x-count")],
                "trailers": True,
            }
        )
        await send({"type": "http.response.body", "body": b"part one;", "more_body": True})
        await send({"type": "http.response.body", "body": b"part two"})
        await send(
            {
                "type": "http.response.trailers",
                "headers": [(b"x-checksum", b"abc123")],
                "more_trailers": True,
            }
        )
        await send({"type": "http.response.trailers", "headers": [(b"x-count", b"2")]})

    with transport.serve(app) as server:
        response = transport.raw(server)
        with transport.client(server) as client:  # a client that ignores trailers still works
            assert client.get("/").content == b"part one;part two"
    assert response.status == 200
    assert response.body == b"part one;part two"
    assert response.trailers == [(b"x-checksum", b"abc123"), (b"x-count", b"2")]


def test_trailers_whatever_the_body(transport: Transport, tmp_path: Path) -> None:
    """Trailers after an empty body, after a file, with the app's own content-length, and on
    responses that carry no body at all (HEAD, 204): framed correctly, never an error."""
    data = b"F" * 300_000
    path = tmp_path / "file.bin"
    path.write_bytes(data)

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        route = scope["path"]
        headers = [(b"content-length", b"3")] if route == "/length" else []
        status = 204 if route == "/204" else 200
        await send(
            {"type": "http.response.start", "status": status, "headers": headers, "trailers": True}
        )
        if route == "/file":
            await send({"type": "http.response.pathsend", "path": str(path)})
        elif route in ("/length", "/head"):
            await send({"type": "http.response.body", "body": b"abc"})
        else:
            await send({"type": "http.response.body", "body": b""})
        await send({"type": "http.response.trailers", "headers": [(b"x-t", b"1")]})

    with transport.serve(app) as server:
        empty = transport.raw(server, "/empty")
        from_file = transport.raw(server, "/file")
        with_length = transport.raw(server, "/length")
        head = transport.raw(server, "/head", "HEAD")
        no_content = transport.raw(server, "/204")
        with transport.client(server) as client:  # the connection stays in sync afterwards
            for route in ("/empty", "/length", "/204", "/empty"):
                assert client.get(route).status_code in (200, 204)
    assert (empty.status, empty.body, empty.trailers) == (200, b"", [(b"x-t", b"1")])
    assert (from_file.status, from_file.body, from_file.trailers) == (200, data, [(b"x-t", b"1")])
    assert (with_length.status, with_length.body) == (200, b"abc")
    # RFC 9112 §6.1: never Content-Length next to Transfer-Encoding.
    assert not (with_length.header(b"content-length") and with_length.header(b"transfer-encoding"))
    assert (head.status, head.body) == (200, b"")
    assert (no_content.status, no_content.body) == (204, b"")
    if transport.http2:
        assert with_length.trailers == [(b"x-t", b"1")]


def test_early_hints(transport: Transport) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        assert "http.response.early_hint" in scope["extensions"]
        await send(
            {
                "type": "http.response.early_hint",
                "links": [b"</style.css>; rel=preload; as=style", b"</app.js>; rel=preload"],
            }
        )
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"page"})

    with transport.serve(app) as server:
        response = transport.raw(server)
        with transport.client(server) as client:  # clients skip 1xx responses
            assert client.get("/").text == "page"
    assert response.status == 200
    assert response.body == b"page"
    assert len(response.informational) == 1
    status, headers = response.informational[0]
    assert status == 103
    links = [value for name, value in headers if name == b"link"]
    assert links == [b"</style.css>; rel=preload; as=style", b"</app.js>; rel=preload"]


def test_pathsend(transport: Transport, tmp_path: Path) -> None:
    data = hashlib.sha256(b"file").digest() * 20000  # 640 000 bytes, several file chunks
    path = tmp_path / "payload.bin"
    path.write_bytes(data)

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        assert "http.response.pathsend" in scope["extensions"]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/octet-stream"),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.pathsend", "path": str(path)})

    with transport.serve(app) as server, transport.client(server) as client:
        for _ in range(2):
            response = client.get("/")
            assert response.status_code == 200
            assert response.content == data


def test_pathsend_of_a_missing_file_is_a_server_error(
    transport: Transport, tmp_path: Path, allow_app_errors: None
) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["path"] == "/ok":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(tmp_path / "missing")})

    with transport.serve(app) as server:
        response = transport.raw(server, "/missing")
        # Never a complete-looking response: the connection closes (HTTP/1.1) or the stream
        # is reset (HTTP/2) before any head goes out.
        assert response.status == 0
        assert response.body == b""
        with transport.client(server) as client:
            assert client.get("/ok").text == "ok"


async def push_app(scope: Scope, receive: Any, send: Any) -> None:
    """Pushes /style.css (when the extension is offered) and serves both paths."""
    if scope["path"] == "/style.css":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"body{color:red}"})
        return
    pushed = "http.response.push" in scope["extensions"]
    if pushed:
        await send(
            {"type": "http.response.push", "path": "/style.css", "headers": [(b"accept", b"*/*")]}
        )
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"x-push-offered", b"yes" if pushed else b"no")],
        }
    )
    await send({"type": "http.response.body", "body": b"<html>"})


def test_server_push_only_on_http2(transport: Transport) -> None:
    with transport.serve(push_app) as server:
        response = transport.raw(server)
        with transport.client(server) as client:
            # httpx turns push off in its SETTINGS: the server must not push then.
            plain = client.get("/")
    assert response.status == 200
    assert response.body == b"<html>"
    assert plain.text == "<html>"
    if not transport.http2:
        assert response.header(b"x-push-offered") == [b"no"]
        assert response.pushes == []
        return
    assert response.header(b"x-push-offered") == [b"yes"]
    assert plain.headers["x-push-offered"] == "yes"
    assert len(response.pushes) == 1
    request_headers, status, body = response.pushes[0]
    assert (b":path", b"/style.css") in request_headers
    assert (b":method", b"GET") in request_headers
    assert (b"accept", b"*/*") in request_headers
    assert status == 200
    assert body == b"body{color:red}"


def test_push_refused_by_client_settings(transport: Transport) -> None:
    """A client that sets ENABLE_PUSH=0 gets no PUSH_PROMISE (HTTP/2 only; no-op on 1.1)."""
    if not transport.http2:
        return
    with (
        transport.serve(push_app) as server,
        H2Client(
            server.port, transport.tls, settings={h2.settings.SettingCodes.ENABLE_PUSH: 0}
        ) as client,
    ):
        stream_id = client.request("/")
        client.read_until(client.ended(stream_id))
        assert client.body(stream_id) == b"<html>"
        assert not client.of(h2.events.PushedStreamReceived)


def test_expect_100_continue(transport: Transport) -> None:
    """'100 Continue' goes out when the app first asks for the body, not before; an app that
    answers without reading never sends it."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["path"] == "/refuse":
            await send({"type": "http.response.start", "status": 413, "headers": []})
            await send({"type": "http.response.body", "body": b"too big"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"got " + body})

    expect = [(b"expect", b"100-continue"), (b"content-length", b"5")]
    with transport.serve(app) as server:
        if transport.http2:
            with H2Client(server.port, transport.tls) as client:
                stream = client.request("/read", "POST", headers=expect, end=False)
                informational = h2.events.InformationalResponseReceived
                client.read_until(lambda events: bool(client.of(informational, stream)))
                assert [dict(e.headers)[b":status"] for e in client.of(informational)] == [b"100"]
                client.conn.send_data(stream, b"hello", end_stream=True)
                client.flush()
                client.read_until(client.ended(stream))
                assert client.body(stream) == b"got hello"
                refused = client.request("/refuse", "POST", headers=expect, end=False)
                client.read_until(client.ended(refused))
                assert not client.of(informational, refused)
                assert client.body(refused) == b"too big"
            return
        with _h1_socket(transport, server) as sock:
            head = (
                b"POST /read HTTP/1.1\r\nhost: x\r\n"
                b"expect: 100-continue\r\ncontent-length: 5\r\n\r\n"
            )
            sock.sendall(head)
            assert _recv_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 100 Continue\r\n")
            sock.sendall(b"hello")
            assert _recv_until(sock, b"got hello").endswith(b"got hello")
        with _h1_socket(transport, server) as sock:
            sock.sendall(head.replace(b"/read", b"/refuse"))
            answer = _recv_until(sock, b"too big")
            assert answer.startswith(b"HTTP/1.1 413 ")
            assert b" 100 " not in answer


@contextlib.contextmanager
def _h1_socket(transport: Transport, server: Any) -> Iterator[socket.socket]:
    sock = socket.create_connection((server.host, server.port), timeout=5)
    try:
        if transport.tls is not None:
            sock = transport.tls.client_context(["http/1.1"]).wrap_socket(
                sock, server_hostname="localhost"
            )
        yield sock
    finally:
        sock.close()


def _recv_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    deadline = time.monotonic() + 5
    while marker not in data and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data
