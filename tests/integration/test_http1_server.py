"""HTTP/1.1 over real sockets: httpx and raw sockets against a real server on 127.0.0.1:0."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pronghorn.errors import ClientDisconnected
from tests.conftest import RunningServer, recv_response, recv_until_closed, run_server

Serve = Callable[..., RunningServer]


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"Hello, world!"})


def scope_app(seen: list[dict[str, Any]]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    return app


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"x-len", b"%d" % len(body))]}
    )
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- scope
def test_http_scope_matches_the_spec(serve: Serve) -> None:
    seen: list[dict[str, Any]] = []
    server = serve(scope_app(seen), root_path="/api")
    with httpx.Client() as client:
        client.get(server.url + "/api/caf%C3%A9/a%2Fb?x=1&y=%20", headers={"X-Dup": "1"})
    scope = seen[0]
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/api/café/a/b"
    assert scope["raw_path"] == b"/api/caf%C3%A9/a%2Fb"
    assert scope["root_path"] == "/api"
    assert scope["query_string"] == b"x=1&y=%20"
    assert scope["server"] == ("127.0.0.1", server.port)
    assert scope["client"][0] == "127.0.0.1"
    assert (b"x-dup", b"1") in scope["headers"]
    assert all(name == name.lower() for name, _ in scope["headers"])
    assert "http.response.trailers" in scope["extensions"]
    assert scope["state"] == {}


def test_lifespan_state_is_copied_into_each_request(serve: Serve) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            scope["state"]["db"] = "connected"
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        seen.append(scope)
        scope["state"]["mutated"] = True
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body"})

    server = serve(app, lifespan="on")
    with httpx.Client() as client:
        client.get(server.url)
        client.get(server.url)
    assert seen[0]["state"]["db"] == "connected"
    assert "mutated" not in seen[1]["state"] or seen[1]["state"] is not seen[0]["state"]


def test_proxy_headers_from_a_trusted_peer(serve: Serve) -> None:
    seen: list[dict[str, Any]] = []
    server = serve(scope_app(seen), forwarded_allow_ips="127.0.0.1")
    headers = {"X-Forwarded-For": "9.9.9.9, 10.0.0.1", "X-Forwarded-Proto": "https"}
    with httpx.Client() as client:
        client.get(server.url, headers=headers)
    assert seen[0]["client"] == ("10.0.0.1", 0)
    assert seen[0]["scheme"] == "https"


def test_proxy_headers_per_request_on_one_connection(serve: Serve) -> None:
    # The rewritten connection facts are reused while the proxy names the same client and
    # scheme; every change shows in the very request that makes it.
    seen: list[dict[str, Any]] = []
    server = serve(scope_app(seen), forwarded_allow_ips="127.0.0.1")
    sent = [
        {"X-Forwarded-For": "10.0.0.1", "X-Forwarded-Proto": "https"},
        {"X-Forwarded-For": "10.0.0.1", "X-Forwarded-Proto": "https"},
        {"X-Forwarded-For": "10.0.0.2", "X-Forwarded-Proto": "https"},
        {"X-Forwarded-For": "10.0.0.2", "X-Forwarded-Proto": "http"},
        {},
        {"X-Forwarded-For": "10.0.0.2", "X-Forwarded-Proto": "http"},
    ]
    with httpx.Client() as client:
        for headers in sent:
            client.get(server.url, headers=headers)
    assert [(scope["client"][0], scope["scheme"]) for scope in seen] == [
        ("10.0.0.1", "https"),
        ("10.0.0.1", "https"),
        ("10.0.0.2", "https"),
        ("10.0.0.2", "http"),
        ("127.0.0.1", "http"),
        ("10.0.0.2", "http"),
    ]


def test_proxy_headers_ignored_from_untrusted_peer(serve: Serve) -> None:
    seen: list[dict[str, Any]] = []
    server = serve(scope_app(seen), forwarded_allow_ips="10.1.1.1")
    with httpx.Client() as client:
        client.get(server.url, headers={"X-Forwarded-For": "9.9.9.9"})
    assert seen[0]["client"][0] == "127.0.0.1"


# --------------------------------------------------------------------------- bodies
def test_content_length_and_chunked_uploads(serve: Serve) -> None:
    server = serve(echo)
    with httpx.Client() as client:
        r = client.post(server.url, content=b"x" * 100_000)
        assert r.content == b"x" * 100_000

        def gen() -> Any:
            for _ in range(10):
                yield b"y" * 10_000

        r = client.post(server.url, content=gen())
        assert r.headers["x-len"] == "100000"


def test_streamed_response_is_chunked(serve: Serve) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(5):
            await send({"type": "http.response.body", "body": b"%d" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    server = serve(app)
    with httpx.Client() as client:
        r = client.get(server.url)
    assert r.text == "01234"
    assert r.headers["transfer-encoding"] == "chunked"


def test_expect_100_continue_is_sent_on_first_receive(serve: Serve) -> None:
    server = serve(echo)
    sock = server.connect()
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
    sock.settimeout(5)
    assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    sock.sendall(b"abc")
    response = recv_response(sock)
    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(b"abc")


def test_no_100_continue_when_app_does_not_read(serve: Serve) -> None:
    server = serve(hello)
    sock = server.connect()
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
    response = recv_until_closed(sock)
    assert response.startswith(b"HTTP/1.1 200 ")
    assert b"100 Continue" not in response


def test_reading_pauses_while_the_app_does_not_consume(serve: Serve) -> None:
    release = threading.Event()
    sizes: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while not release.is_set():
            await asyncio.sleep(0.01)
        total = 0
        while True:
            message = await receive()
            total += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        sizes.append(total)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"%d" % total})

    server = serve(app)
    sock = server.connect()
    sock.setblocking(False)
    total = 20 * 1024 * 1024
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total
    sent = 0
    payload = head + b"z" * total
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and sent < len(payload):
        try:
            sent += sock.send(payload[sent : sent + 65536])
        except BlockingIOError:
            time.sleep(0.01)
    # The server stopped reading: far less than the whole body went out.
    assert sent < len(payload)
    stats = server.call(lambda: [c.statistics() for c in server.server.state.connections])
    assert stats[0]["reading_paused"] is True
    release.set()
    sock.setblocking(True)
    sock.sendall(payload[sent:])
    response = recv_response(sock, timeout=20)
    assert response.endswith(b"%d" % total)


def test_client_disconnect_is_seen_by_the_app(serve: Serve) -> None:
    seen: list[dict[str, Any]] = []
    done = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                seen.append(message)
                done.set()
                return

    server = serve(app)
    sock = server.connect()
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    time.sleep(0.2)
    sock.close()
    assert done.wait(5)
    assert seen == [{"type": "http.disconnect"}]


def test_send_after_disconnect_raises_oserror(serve: Serve) -> None:
    outcome: list[BaseException] = []
    done = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        try:
            for _ in range(1000):
                await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
                await asyncio.sleep(0.005)
        except OSError as exc:
            outcome.append(exc)
        finally:
            done.set()

    server = serve(app)
    sock = server.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.recv(1000)
    sock.close()
    assert done.wait(10)
    assert outcome
    assert isinstance(outcome[0], OSError)


# --------------------------------------------------------------------------- responses
@pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304)])
def test_no_body_responses(serve: Serve, method: str, status: int) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", b"5")] if status == 200 else [],
            }
        )
        await send({"type": "http.response.body", "body": b"hello"})

    server = serve(app)
    sock = server.connect()
    sock.sendall(f"{method} / HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    sock.settimeout(5)
    data = sock.recv(65536)
    assert data.endswith(b"\r\n\r\n")
    assert b"hello" not in data
    # the connection stays usable
    sock.sendall(f"{method} / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert recv_until_closed(sock).startswith(b"HTTP/1.1 ")


def test_date_server_and_default_headers(serve: Serve) -> None:
    server = serve(hello, headers=["X-Env: test"])
    with httpx.Client() as client:
        r = client.get(server.url)
    assert r.headers["server"] == "pronghorn"
    assert r.headers["date"].endswith("GMT")
    assert r.headers["x-env"] == "test"
    server2 = serve(hello, server_header=False, date_header=False)
    with httpx.Client() as client:
        r = client.get(server2.url)
    assert "server" not in r.headers
    assert "date" not in r.headers


def test_app_exception_before_response_is_500_without_internals(serve: Serve) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("secret database password")

    server = serve(app)
    with httpx.Client() as client:
        r = client.get(server.url)
    assert r.status_code == 500
    assert b"secret" not in r.content


def test_app_exception_after_response_started_closes(serve: Serve) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom")

    server = serve(app)
    sock = server.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 ")
    assert not data.endswith(b"0\r\n\r\n")  # never a complete chunked body


def test_wrong_message_order_raises_a_typed_error(serve: Serve) -> None:
    errors: list[BaseException] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await send({"type": "http.response.body", "body": b"x"})
        except Exception as exc:
            errors.append(exc)
            raise

    server = serve(app)
    with httpx.Client() as client:
        assert client.get(server.url).status_code == 500
    from pronghorn.errors import AppProtocolError

    assert isinstance(errors[0], AppProtocolError)


@pytest.mark.parametrize(
    "headers", [[("a", "b")], [(b"a",)], [(b"x", b"a\r\nset-cookie: evil")], [(b"bad name", b"v")]]
)
def test_invalid_response_headers_raise_in_send(serve: Serve, headers: list[Any]) -> None:
    errors: list[BaseException] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            await send({"type": "http.response.body", "body": b"x"})
        except Exception as exc:
            errors.append(exc)
            raise

    server = serve(app)
    sock = server.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = recv_until_closed(sock)
    assert b"set-cookie" not in data
    from pronghorn.errors import AppProtocolError

    assert isinstance(errors[0], AppProtocolError)


def test_content_length_mismatch_closes(serve: Serve) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]}
        )
        await send({"type": "http.response.body", "body": b"short"})

    server = serve(app)
    sock = server.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 ")


def test_trailers_early_hints_and_pathsend(serve: Serve, tmp_path: Any) -> None:
    target = tmp_path / "file.bin"
    target.write_bytes(os.urandom(300_000))

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert "http.response.pathsend" in scope["extensions"]
        if scope["path"] == "/file":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"300000")],
                }
            )
            await send({"type": "http.response.pathsend", "path": str(target)})
            return
        await send({"type": "http.response.early_hint", "links": [b"</s.css>; rel=preload"]})
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"data"})
        await send({"type": "http.response.trailers", "headers": [(b"x-md5", b"abc")]})

    server = serve(app)
    sock = server.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n")
    data = recv_response(sock)
    assert data.startswith(b"HTTP/1.1 103 Early Hints\r\nlink: </s.css>; rel=preload\r\n\r\n")
    assert data.endswith(b"4\r\ndata\r\n0\r\nx-md5: abc\r\n\r\n")
    with httpx.Client() as client:
        r = client.get(server.url + "/file")
    assert r.content == target.read_bytes()


def test_write_backpressure_bounds_server_memory(serve: Serve) -> None:
    progress: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        for i in range(400):  # 400 * 256 KiB = 100 MiB if nobody waited
            await send({"type": "http.response.body", "body": b"x" * 262144, "more_body": True})
            progress.append(i)
        await send({"type": "http.response.body"})

    server = serve(app, timeout_graceful_shutdown=1)
    sock = server.connect()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.5)
    # The client reads nothing: send() must be waiting, not buffering everything.
    assert len(progress) < 50
    received = len(recv_until_closed(sock, timeout=2, limit=1 << 20))
    assert received > 0


# --------------------------------------------------------------------------- connections
def test_keep_alive_and_pipelining_in_order(serve: Serve) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":
            await asyncio.sleep(0.2)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    server = serve(app)
    sock = server.connect()
    sock.sendall(
        b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    data = recv_until_closed(sock)
    assert data.index(b"/slow") < data.index(b"/fast") < data.index(b"/last")
    assert data.count(b"HTTP/1.1 200 OK") == 3


def test_a_pipelined_answer_is_not_held_for_a_slow_successor(serve: Serve) -> None:
    """Pipelined answers may share a write, but one whose successor's app waits goes out."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":
            await asyncio.sleep(1.5)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    server = serve(app)
    sock = server.connect()
    sock.sendall(
        b"".join(b"GET /fast%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(20))
        + b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    sock.settimeout(1.0)
    received = b""
    while received.count(b"HTTP/1.1 200 OK") < 20:
        chunk = sock.recv(65536)  # TimeoutError here: fast answers held back for /slow
        assert chunk
        received += chunk
    assert [int(n) for n in re.findall(rb"/fast(\d+)", received)] == list(range(20))
    assert b"/slow" not in received
    rest = recv_until_closed(sock, timeout=5)
    assert rest.endswith(b"/slow")


def test_keep_alive_timeout_closes_idle_connections(serve: Serve) -> None:
    server = serve(hello, timeout_keep_alive=0.3)
    sock = server.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    recv_response(sock)
    start = time.monotonic()
    assert recv_until_closed(sock, timeout=5) == b""
    assert time.monotonic() - start < 3


def test_slow_header_client_is_cut_off(serve: Serve) -> None:
    server = serve(hello, timeout_request_header=0.3)
    sock = server.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    start = time.monotonic()
    for _ in range(10):
        try:
            sock.sendall(b"X-Slow: 1\r\n")
        except OSError:
            break
        time.sleep(0.1)
    recv_until_closed(sock, timeout=5)
    assert time.monotonic() - start < 4


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400),
        (b"NOT A REQUEST\r\n\r\n", 400),
        (b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: y\r\n" * 200 + b"\r\n", 431),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET / HTTP/1.1\nHost: x\n\n", 400),
    ],
)
def test_bad_requests_get_a_clear_error_and_never_reach_the_app(
    serve: Serve, raw: bytes, status: int
) -> None:
    seen: list[dict[str, Any]] = []
    server = serve(scope_app(seen), limit_request_body=1000)
    sock = server.connect()
    sock.sendall(raw)
    data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 %d " % status)
    assert b"connection: close" in data
    assert seen == []


@pytest.mark.parametrize(
    "settings",
    [{"limit_request_header_size": 1024}, {"h11_max_incomplete_event_size": 1024}],
    ids=["pronghorn-flag", "uvicorn-flag"],
)
def test_the_header_size_limit_answers_431(serve: Serve, settings: dict[str, int]) -> None:
    server = serve(hello, **settings)
    fits = server.connect()
    fits.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 900 + b"\r\n\r\n")
    assert recv_response(fits).startswith(b"HTTP/1.1 200 ")
    too_big = server.connect()
    too_big.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 1100 + b"\r\n\r\n")
    data = recv_until_closed(too_big)
    assert data.startswith(b"HTTP/1.1 431 ")
    assert b"connection: close" in data


@pytest.mark.parametrize("choice", ["auto", "httptools", "h11"])
def test_uvicorn_http_implementation_names_are_served_by_llhttp(
    serve: Serve, choice: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pronghorn.error")
    server = serve(hello, http=choice, log_level="info")
    assert httpx.get(server.url).text == "Hello, world!"
    notes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("--http")]
    expected = ["--http h11: HTTP/1.1 is parsed by llhttp (httptools), as in every mode"]
    assert notes == (expected if choice == "h11" else [])


@pytest.mark.parametrize(
    "rest",
    [b"zz\r\n", b"0\r\nX-T: " + b"a" * 70000 + b"\r\n\r\n"],
    ids=["bad-chunk-size", "trailers-too-large"],
)
def test_a_bad_body_after_the_answer_closes_without_a_second_answer(
    serve: Serve, rest: bytes
) -> None:
    # hello answers without reading the body; the rest of it is discarded. A second answer
    # for the bad part would be read by the client as the answer to its next request.
    server = serve(hello)
    sock = server.connect()
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    assert recv_response(sock).startswith(b"HTTP/1.1 200 ")
    sock.sendall(rest + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert recv_until_closed(sock) == b""


def test_a_large_unread_body_is_not_read_on_forever(serve: Serve) -> None:
    # hello answers without reading; 10 GB follow. The connection closes after the answer
    # (draining the input for the linger time so the answer is not reset) instead of reading
    # and dropping everything the client sends.
    server = serve(hello)
    sock = server.connect()
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n")
    assert recv_response(sock).startswith(b"HTTP/1.1 200 ")
    chunk = bytes(65536)
    start = time.monotonic()
    closed = False
    while time.monotonic() - start < 8:
        try:
            sock.sendall(chunk)
        except OSError:
            closed = True
            break
    assert closed, "the server kept reading a body nobody reads"
    assert time.monotonic() - start < 6


def test_a_client_that_stops_reading_is_dropped_after_timeout_send(serve: Serve) -> None:
    outcome: list[str] = []
    disconnected = threading.Event()

    async def stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for _ in range(2000):  # 128 MiB: far more than any socket buffer
                await send({"type": "http.response.body", "body": bytes(65536), "more_body": True})
        except ClientDisconnected:
            outcome.append("disconnected")
            disconnected.set()
            raise
        outcome.append("sent everything")

    server = serve(stream, timeout_send=0.5)
    sock = server.connect()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert disconnected.wait(10), outcome  # the client never reads a byte
    assert outcome == ["disconnected"]
    assert recv_until_closed(sock, limit=1 << 30)  # what was in flight, then the close


def test_limit_concurrency_answers_503(serve: Serve) -> None:
    release = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while not release.is_set():
            await asyncio.sleep(0.01)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body"})

    server = serve(app, limit_concurrency=1)
    first = server.connect()
    first.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.2)
    second = server.connect()
    second.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert recv_until_closed(second).startswith(b"HTTP/1.1 503 ")
    release.set()
    assert recv_response(first).startswith(b"HTTP/1.1 200 ")


def test_objects_alive_at_startup_are_frozen_while_serving() -> None:
    """Full collections skip what lives as long as the server (its app, the imports), and
    the collector gets it all back when the server stops."""
    with run_server(hello) as server:
        assert gc.get_freeze_count() > 1000
        sock = server.connect()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert recv_response(sock).startswith(b"HTTP/1.1 200 OK")
    assert gc.get_freeze_count() == 0


def test_graceful_shutdown_finishes_in_flight_requests(serve: Serve) -> None:
    started = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started.set()
        await asyncio.sleep(0.5)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"finished"})

    server = serve(app, timeout_graceful_shutdown=5)
    sock = server.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    idle = server.connect()
    assert started.wait(5)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" in data
    assert data.endswith(b"finished")
    assert recv_until_closed(idle) == b""
    stopper.join(10)
    with pytest.raises(ConnectionRefusedError):
        server.connect(timeout=1)


def test_graceful_shutdown_deadline_cancels_stuck_requests(serve: Serve) -> None:
    started = threading.Event()
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started.set()
        try:
            await asyncio.sleep(60)
        except BaseException as exc:
            # The cancellation itself, thrown through the exchange (a DeprecationWarning raised
            # instead would be an error here: see server/appcall.py and server/awaits.py).
            seen.append(type(exc).__name__)
            raise

    server = serve(app, timeout_graceful_shutdown=0.3)
    sock = server.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert started.wait(5)
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 5
    data = recv_until_closed(sock)
    assert data == b"" or data.startswith(b"HTTP/1.1 500 ")
    assert seen == ["CancelledError"]


def test_an_app_may_time_out_its_own_awaits(serve: Serve) -> None:
    # asyncio.timeout cancels the app's task: the CancelledError is thrown through the
    # server's coroutines into what the app awaits (its sleep, our receive()), in throw()'s
    # one-argument form, or it would be a DeprecationWarning (an error here) on 3.12+.
    timed_out: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        try:
            async with asyncio.timeout(0.05):
                if scope["path"] == "/sleep":
                    await asyncio.sleep(10)
                else:
                    while True:
                        message = await receive()  # a body that never ends
                        if not message.get("more_body"):
                            break
        except TimeoutError:
            timed_out.append(scope["path"])
        await send({"type": "http.response.start", "status": 504, "headers": []})
        await send({"type": "http.response.body", "body": b"late"})

    server = serve(app)
    with httpx.Client() as client:
        assert client.get(server.url + "/sleep").status_code == 504
    sock = server.connect()
    sock.sendall(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    assert recv_response(sock).startswith(b"HTTP/1.1 504 ")
    assert timed_out == ["/sleep", "/body"]


def test_receive_and_send_are_coroutines_an_app_may_schedule_as_tasks(serve: Serve) -> None:
    # Compiled, they are mypyc coroutines: still coroutine functions to inspect, and
    # coroutines to create_task (frameworks run receive() in a task of their own).
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        assert asyncio.iscoroutinefunction(receive)
        assert asyncio.iscoroutinefunction(send)
        loop = asyncio.get_running_loop()
        message = await loop.create_task(receive())
        body = message["body"]
        start = {"type": "http.response.start", "status": 200, "headers": []}
        await loop.create_task(send(start))
        await asyncio.ensure_future(send({"type": "http.response.body", "body": body}))

    server = serve(app)
    with httpx.Client() as client:
        response = client.post(server.url, content=b"scheduled")
    assert response.status_code == 200
    assert response.content == b"scheduled"


def test_uvloop_and_asyncio_loops_both_serve(serve: Serve) -> None:
    for loop in ("asyncio", "uvloop"):
        server = serve(hello, loop=loop)
        with httpx.Client() as client:
            assert client.get(server.url).text == "Hello, world!"


def test_request_on_a_connection_accepted_just_before_shutdown_is_answered(serve: Serve) -> None:
    server = serve(hello, timeout_graceful_shutdown=5)
    fresh = server.connect()
    # The server has accepted the connection but received nothing yet when shutdown begins.
    deadline = time.monotonic() + 5
    while server.call(lambda: len(server.server.state.connections)) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    time.sleep(0.2)
    fresh.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = recv_until_closed(fresh)
    stopper.join(10)
    assert data.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" in data


def test_413_reaches_a_client_still_uploading(serve: Serve) -> None:
    """The server closes after the 413 while the client keeps sending: a lingering close
    drains the upload so the kernel does not reset the connection over the answer."""
    seen: list[dict[str, Any]] = []
    server = serve(scope_app(seen), limit_request_body=1000)
    sock = server.connect()
    sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\n\r\n")
    sock.sendall(b"z" * 4_000_000)  # no reset: the server reads and discards after its answer
    data = recv_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 413 ")
    assert seen == []


def test_idle_keep_alive_connections_hold_no_parser(serve: Serve) -> None:
    """Answered keep-alive connections give their parser back; a partial head keeps one."""
    server = serve(hello)

    def parsers_held() -> list[int]:
        return server.call(
            lambda: sorted(c.statistics()["parser_held"] for c in server.server.state.connections)
        )

    idle = [server.connect() for _ in range(3)]
    for sock in idle:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert recv_response(sock).endswith(b"Hello, world!")
    partial = server.connect()
    partial.sendall(b"GET / HTTP/1.1\r\nHo")
    deadline = time.monotonic() + 5
    while parsers_held() != [0, 0, 0, 1] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert parsers_held() == [0, 0, 0, 1]
    # Every connection goes on serving, parsers now moving between them.
    partial.sendall(b"st: x\r\n\r\n")
    assert recv_response(partial).endswith(b"Hello, world!")
    for round_ in range(3):
        for sock in [*idle, partial]:
            sock.sendall(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % round_)
        for sock in [*idle, partial]:
            assert recv_response(sock).endswith(b"Hello, world!")
    for sock in [*idle, partial]:
        sock.close()
