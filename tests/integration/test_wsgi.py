"""WSGI apps (plain and Flask) behind the ASGI adapter, over real sockets with httpx."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from pronghorn.config import Config
from pronghorn.importer import load_app
from pronghorn.server.wsgi import WSGIAdapter
from tests.conftest import RunningServer

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
Serve = Callable[..., RunningServer]


@pytest.fixture
def serve_wsgi(serve: Serve) -> Iterator[Callable[..., RunningServer]]:
    adapters: list[WSGIAdapter] = []

    def start(app: Any, threads: int = 4, **settings: Any) -> RunningServer:
        adapter = WSGIAdapter(app, threads=threads)
        adapters.append(adapter)
        return serve(adapter, **settings)

    yield start
    for adapter in adapters:
        adapter.shutdown()


def environ_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """Answers with the CGI-style part of the environ, as JSON."""
    body = environ["wsgi.input"].read()
    shown = {k: v for k, v in environ.items() if isinstance(v, str)}
    shown["body"] = body.decode("latin-1")
    shown["wsgi.version"] = list(environ["wsgi.version"])
    shown["multithread"] = environ["wsgi.multithread"]
    data = json.dumps(shown).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("X-Reply", "yes")])
    return [data]


# --------------------------------------------------------------------------- environ
def test_environ(serve_wsgi: Callable[..., RunningServer]) -> None:
    server = serve_wsgi(environ_app)
    response = httpx.post(
        server.url + "/some/path?a=1&b=%20",
        content=b"payload",
        headers=[("x-dup", "1"), ("x-dup", "2"), ("content-type", "text/plain"),
                 ("x_sneaky", "dropped")],
        timeout=5,
    )  # fmt: skip
    assert response.status_code == 200
    assert response.headers["x-reply"] == "yes"
    env = response.json()
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/some/path"
    assert env["QUERY_STRING"] == "a=1&b=%20"
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(server.port)
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "7"
    assert env["HTTP_X_DUP"] == "1, 2"
    assert "HTTP_X_SNEAKY" not in env  # underscore names could spoof dashed ones
    assert "HTTP_CONTENT_TYPE" not in env
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.version"] == [1, 0]
    assert env["multithread"] is True
    assert env["body"] == "payload"


def test_root_path_and_non_ascii_path(serve_wsgi: Callable[..., RunningServer]) -> None:
    server = serve_wsgi(environ_app, root_path="/api")
    env = httpx.get(server.url + "/caf%C3%A9", timeout=5).json()
    assert env["SCRIPT_NAME"] == "/api"
    # PEP 3333: the path's UTF-8 bytes, one latin-1 character each.
    assert env["PATH_INFO"] == "/caf\u00c3\u00a9"
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café"
    # Bytes that are not UTF-8 reach PATH_INFO exactly (from raw_path).
    env = httpx.get(server.url + "/api/caf%E9/%2F", timeout=5).json()
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/api", "/caf\u00e9//")


# --------------------------------------------------------------------------- streaming
def test_upload_is_streamed_to_the_app(serve_wsgi: Callable[..., RunningServer]) -> None:
    first_read = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        stream = environ["wsgi.input"]
        digest = hashlib.sha256()
        total = 0
        while chunk := stream.read(65536):
            digest.update(chunk)
            total += len(chunk)
            first_read.set()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{total} {digest.hexdigest()}".encode()]

    part = bytes(range(256)) * 4096  # 1 MiB
    expected = hashlib.sha256(part * 8).hexdigest()

    def body() -> Iterator[bytes]:
        yield part
        # The app must be reading before the rest is sent: a buffered adapter deadlocks here.
        assert first_read.wait(5), "the app saw nothing of a body still being sent"
        for _ in range(7):
            yield part

    server = serve_wsgi(app)
    response = httpx.post(server.url + "/", content=body(), timeout=10)
    assert response.text == f"{8 * len(part)} {expected}"


def test_input_readline_and_iteration(serve_wsgi: Callable[..., RunningServer]) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        stream = environ["wsgi.input"]
        first = stream.readline()
        limited = stream.readline(3)
        rest = list(stream)
        start_response("200 OK", [])
        return [json.dumps([first.decode(), limited.decode(), [r.decode() for r in rest]]).encode()]

    def body() -> Iterator[bytes]:
        yield b"line one\nlo"
        yield b"ng line\nla"
        yield b"st"

    server = serve_wsgi(app)
    result = httpx.post(server.url + "/", content=body(), timeout=5).json()
    assert result == ["line one\n", "lon", ["g line\n", "last"]]


def test_download_is_streamed_from_the_app(serve_wsgi: Callable[..., RunningServer]) -> None:
    client_got_first = threading.Event()
    closed = threading.Event()

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"first chunk;"
            # The client must see the first chunk while the app is still producing.
            assert client_got_first.wait(5), "the first chunk was held back"
            for i in range(100):
                yield b"x" * 10000 + str(i).encode()

        def close(self) -> None:
            closed.set()

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Body()

    server = serve_wsgi(app)
    received = b""
    with httpx.stream("GET", server.url + "/", timeout=10) as response:
        for chunk in response.iter_bytes():
            received += chunk
            if received.startswith(b"first chunk;"):
                client_got_first.set()
    assert received.startswith(b"first chunk;")
    assert received.endswith(b"x" * 10000 + b"99")
    assert len(received) == len(b"first chunk;") + 100 * 10000 + 190
    assert closed.wait(5), "close() was not called on the iterable"


def test_large_download_with_backpressure(serve_wsgi: Callable[..., RunningServer]) -> None:
    chunk = b"0123456789abcdef" * 4096  # 64 KiB

    produced = 0

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        nonlocal produced
        start_response("200 OK", [("Content-Length", str(len(chunk) * 512))])
        for _ in range(512):
            produced += 1
            yield chunk

    server = serve_wsgi(app)
    digest = hashlib.sha256()
    total = 0
    with httpx.stream("GET", server.url + "/", timeout=10) as response:
        for index, data in enumerate(response.iter_bytes()):
            if index == 0:
                time.sleep(0.5)  # a slow reader: the app must wait, not buffer 32 MiB
                # What ran ahead is bounded by the socket buffers (a few MiB on loopback) and
                # the adapter's outbox.
                assert produced < 256, f"{produced} chunks of 64 KiB produced ahead"
            digest.update(data)
            total += len(data)
    assert total == len(chunk) * 512
    assert digest.hexdigest() == hashlib.sha256(chunk * 512).hexdigest()


def test_write_callable(serve_wsgi: Callable[..., RunningServer]) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("201 Created", [("Content-Type", "text/plain")])
        write(b"written, ")
        return [b"then returned"]

    server = serve_wsgi(app)
    response = httpx.get(server.url + "/", timeout=5)
    assert (response.status_code, response.text) == (201, "written, then returned")


# --------------------------------------------------------------------------- errors
def test_exc_info_replaces_the_response_before_it_is_sent(
    serve_wsgi: Callable[..., RunningServer],
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("failed while rendering")
        except ValueError:
            import sys

            start_response("500 Internal Server Error", [("X-Error", "1")], sys.exc_info())
        return [b"error page"]

    server = serve_wsgi(app)
    response = httpx.get(server.url + "/", timeout=5)
    assert (response.status_code, response.headers["x-error"]) == (500, "1")
    assert response.text == "error page"


def test_app_exception_before_response_is_a_500(serve_wsgi: Callable[..., RunningServer]) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        raise RuntimeError("broken app")

    server = serve_wsgi(app)
    assert httpx.get(server.url + "/", timeout=5).status_code == 500


def test_close_is_called_when_the_app_fails_midway(
    serve_wsgi: Callable[..., RunningServer],
) -> None:
    closed = threading.Event()

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"partial"
            raise RuntimeError("failed midway")

        def close(self) -> None:
            closed.set()

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return Body()

    server = serve_wsgi(app)
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.url + "/", timeout=5)
    assert closed.wait(5)


def test_websocket_is_refused(serve_wsgi: Callable[..., RunningServer]) -> None:
    server = serve_wsgi(environ_app)

    async def connect() -> None:
        async with websockets.connect(server.ws_url + "/", open_timeout=5):
            pass

    with pytest.raises(InvalidStatus) as info:
        asyncio.run(connect())
    assert info.value.response.status_code == 403


def test_thread_pool_is_bounded(serve_wsgi: Callable[..., RunningServer]) -> None:
    lock = threading.Lock()
    running = 0
    peak = 0

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        # Wait for a partner (bounded), then leave room for a third the pool must not admit.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with lock:
                if running >= 2:
                    break
            time.sleep(0.01)
        time.sleep(0.1)
        with lock:
            running -= 1
        start_response("200 OK", [])
        return [b"ok"]

    server = serve_wsgi(app, threads=2)

    async def many() -> list[int]:
        async with httpx.AsyncClient(timeout=10) as client:
            responses = await asyncio.gather(*(client.get(server.url + "/") for _ in range(6)))
        return [r.status_code for r in responses]

    assert asyncio.run(many()) == [200] * 6
    assert peak == 2


# --------------------------------------------------------------------------- Flask
def make_flask_app() -> Any:
    import flask

    app = flask.Flask("pronghorn_wsgi_test")

    @app.get("/hello/<name>")
    def hello(name: str) -> Any:
        return {"hello": name, "args": flask.request.args.to_dict()}

    @app.post("/form")
    def form() -> Any:
        upload = flask.request.files["file"]
        return {"field": flask.request.form["field"], "size": len(upload.read())}

    @app.post("/json")
    def echo_json() -> Any:
        return flask.jsonify(flask.request.get_json())

    @app.get("/stream")
    def stream() -> Any:
        def generate() -> Iterator[str]:
            for i in range(5):
                yield f"part {i}\n"

        return flask.Response(flask.stream_with_context(generate()), mimetype="text/plain")

    @app.get("/redirect")
    def redirect() -> Any:
        return flask.redirect(flask.url_for("hello", name="r"))

    return app


def test_flask(serve: Serve) -> None:
    adapter = load_app(Config(wsgi_threads=4), make_flask_app())
    assert isinstance(adapter, WSGIAdapter)  # detected, not forced
    server = serve(adapter, root_path="/mount")
    try:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            hello = client.get("/hello/world?x=1")
            assert hello.json() == {"hello": "world", "args": {"x": "1"}}

            form = client.post(
                "/form", data={"field": "value"}, files={"file": ("a.bin", b"\x00" * 100000)}
            )
            assert form.json() == {"field": "value", "size": 100000}

            assert client.post("/json", json={"a": [1, 2]}).json() == {"a": [1, 2]}
            assert client.get("/stream").text == "".join(f"part {i}\n" for i in range(5))
            # url_for sees SCRIPT_NAME, so the mount prefix is kept.
            assert client.get("/redirect").headers["location"] == "/mount/hello/r"
            assert client.get("/missing").status_code == 404
    finally:
        adapter.shutdown()


def test_client_leaving_stops_an_endless_stream(serve_wsgi: Callable[..., RunningServer]) -> None:
    closed = threading.Event()

    class Endless:
        def __iter__(self) -> Iterator[bytes]:
            while True:
                yield b"tick " * 1000
                time.sleep(0.01)

        def close(self) -> None:
            closed.set()

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return Endless() if environ["PATH_INFO"] == "/endless" else [b"ok"]

    server = serve_wsgi(app, threads=1)
    with httpx.stream("GET", server.url + "/endless", timeout=5) as response:
        next(response.iter_bytes())
    # The next send() fails in the worker thread; the iterable is closed and the thread freed.
    assert closed.wait(10), "the WSGI iterable kept running after the client left"
    # The only thread is free again.
    assert httpx.get(server.url + "/", timeout=5).text == "ok"
