"""Real frameworks over real sockets, unchanged: Starlette, FastAPI, Django (ASGI handler),
Quart and Litestar, each served by pronghorn on 127.0.0.1:0 and driven by httpx and websockets.

The apps live in ``tests/apps/``; nothing in them knows about pronghorn. Lifespan runs in the
default ``auto`` mode, as a user would run it. Flask (WSGI) is covered by test_wsgi.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.conftest import RunningServer, run_server
from tests.integration.h2_servers import TLSFiles, tls_files

TIMEOUT = 10.0
Serve = Callable[..., RunningServer]


@pytest.fixture
def serve_app() -> Iterator[Serve]:
    """``serve_app(app, **settings)``: lifespan 'auto' like a real deployment; stopped after."""
    with contextlib.ExitStack() as stack:

        def start(app: Any, **settings: Any) -> RunningServer:
            settings.setdefault("lifespan", "auto")
            settings.setdefault("access_log", False)
            return stack.enter_context(run_server(app, **settings))

        yield start


@pytest.fixture(autouse=True)
def no_server_errors(
    caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> Iterator[None]:
    """An unchanged app served correctly leaves nothing at WARNING or above in the server log
    (a test that provokes an app error asks for the ``allow_app_errors`` fixture)."""
    caplog.set_level(logging.DEBUG, logger="pronghorn")
    yield
    if "allow_app_errors" not in request.fixturenames:
        assert server_warnings(caplog) == []


@pytest.fixture
def allow_app_errors() -> None:
    """Marks a test whose app raises on purpose: the server logs it at ERROR."""


def http(server: RunningServer, *, http2: bool = False) -> httpx.Client:
    """An httpx client for ``server``; ``http2`` uses prior knowledge (no fallback)."""
    # verify=False: cleartext, and it spares loading the system CA bundle per client.
    if http2:
        return httpx.Client(
            base_url=server.url, http1=False, http2=True, timeout=TIMEOUT, verify=False
        )
    return httpx.Client(base_url=server.url, timeout=TIMEOUT, verify=False)


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def server_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """pronghorn's log lines at WARNING or above, in every phase of the test so far."""
    records = [r for phase in ("setup", "call", "teardown") for r in caplog.get_records(phase)]
    return [
        record.getMessage()
        for record in records
        if record.name.startswith("pronghorn") and record.levelno >= logging.WARNING
    ]


PROTOCOLS = [pytest.param(False, id="http1"), pytest.param(True, id="h2c")]


# =========================================================================== Starlette
@pytest.fixture
def starlette_server(serve_app: Serve) -> RunningServer:
    from tests.apps.starlette_app import app

    return serve_app(app)


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_starlette_routing_and_json(starlette_server: RunningServer, http2: bool) -> None:
    with http(starlette_server, http2=http2) as client:
        home = client.get("/")
        assert home.status_code == 200
        assert home.text == "hello from starlette"
        assert home.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        item = client.get("/items/42", params=[("q", "x y"), ("tag", "a"), ("tag", "b")])
        assert item.json() == {"item_id": 42, "q": "x y", "tags": ["a", "b"]}
        assert client.get("/items/not-a-number").status_code == 404
        echo = client.post("/echo", json={"nested": {"list": [1, 2, 3]}, "text": "é"})
        assert echo.status_code == 201
        assert echo.json() == {"received": {"nested": {"list": [1, 2, 3]}, "text": "é"}}
        assert client.put("/echo").status_code == 405
        mounted = client.get("/sub/where")
        assert mounted.json() == {"root_path": "/sub", "path": "/sub/where"}


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_starlette_paths_that_are_not_utf8(starlette_server: RunningServer, http2: bool) -> None:
    # Bytes that are not UTF-8 reach the app as U+FFFD (raw_path keeps them): an app writing
    # the path into its response must not fail with a 500 on /caf%E9.
    with http(starlette_server, http2=http2) as client:
        assert client.get("/path/caf%C3%A9").text == "/path/café"
        latin1 = client.get("/path/caf%E9")
        assert latin1.status_code == 200
        assert latin1.text == "/path/caf\ufffd"
        assert client.get("/path/%FF%FE/x").text == "/path/\ufffd\ufffd/x"


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_starlette_streaming_response(starlette_server: RunningServer, http2: bool) -> None:
    with (
        http(starlette_server, http2=http2) as client,
        client.stream("GET", "/stream", params={"n": 200}) as response,
    ):
        assert response.status_code == 200
        body = b"".join(response.iter_bytes())
    assert body == b"".join(b"line %d\n" % i for i in range(200))


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_starlette_file_response_and_ranges(starlette_server: RunningServer, http2: bool) -> None:
    import tests.apps.starlette_app as module

    source = Path(module.__file__).read_bytes()
    with http(starlette_server, http2=http2) as client:
        whole = client.get("/source")
        assert whole.status_code == 200
        assert whole.content == source
        assert whole.headers["content-length"] == str(len(source))
        part = client.get("/source", headers={"range": "bytes=10-29"})
        assert part.status_code == 206
        assert part.content == source[10:30]
        assert part.headers["content-range"] == f"bytes 10-29/{len(source)}"
        head = client.head("/source")
        assert head.content == b""
        assert head.headers["content-length"] == str(len(source))


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_starlette_endless_stream_stops_when_the_client_leaves(
    starlette_server: RunningServer, http2: bool
) -> None:
    from tests.apps.starlette_app import TICKER_LOG

    TICKER_LOG.clear()
    client = http(starlette_server, http2=http2)
    with client.stream("GET", "/ticker") as response:
        lines = response.iter_lines()
        assert next(lines) == "tick 0"
        assert next(lines) == "tick 1"
        client.close()
    # Starlette's send() fails with the server's ClientDisconnected (an OSError), the app
    # returns and the ticks stop.
    state = starlette_server.server.state
    assert state is not None
    assert eventually(lambda: not state.exchanges)
    produced = len(TICKER_LOG)
    time.sleep(0.1)
    assert len(TICKER_LOG) == produced
    assert produced < 100


def test_starlette_form_and_multipart_upload(starlette_server: RunningServer) -> None:
    blob = hashlib.sha256(b"upload").digest() * 40000  # 1.28 MB
    with http(starlette_server) as client:
        urlencoded = client.post("/form", data={"a": ["1", "2"], "b": "x&y=z"})
        assert urlencoded.json() == {"a": ["1", "2"], "b": ["x&y=z"]}
        multipart = client.post(
            "/form",
            data={"title": "report"},
            files={"doc": ("report.bin", blob, "application/octet-stream")},
        )
    assert multipart.status_code == 200
    assert multipart.json() == {
        "title": ["report"],
        "doc": {
            "filename": "report.bin",
            "content_type": "application/octet-stream",
            "size": len(blob),
            "sha256": hashlib.sha256(blob).hexdigest(),
        },
    }


def test_starlette_background_task_runs_after_the_response(
    starlette_server: RunningServer,
) -> None:
    with http(starlette_server) as client:
        response = client.post("/background", params={"name": "starlette-job"})
        assert response.json() == {"queued": "starlette-job"}
        assert eventually(lambda: "starlette-job" in client.get("/background/log").json())


def test_starlette_lifespan_state(serve_app: Serve) -> None:
    from tests.apps.starlette_app import LIFESPAN_LOG, app

    before = len(LIFESPAN_LOG)
    with run_server(app, lifespan="auto", access_log=False) as server:
        assert LIFESPAN_LOG[before:] == ["startup"]
        with http(server) as client:
            assert client.get("/state").json() == {"db": "connected", "visits": 1}
            # Each request gets a shallow copy: the shared list keeps growing.
            assert client.get("/state").json() == {"db": "connected", "visits": 2}
    assert LIFESPAN_LOG[before:] == ["startup", "shutdown"]


def test_starlette_exception_handlers(
    starlette_server: RunningServer, caplog: pytest.LogCaptureFixture, allow_app_errors: None
) -> None:
    with http(starlette_server) as client:
        teapot = client.get("/teapot")
        assert teapot.status_code == 418
        assert teapot.json() == {"error": "short and stout"}
        missing = client.get("/missing")
        assert missing.status_code == 404
        assert missing.text == "no such thing"
        crash = client.get("/crash")
        assert crash.status_code == 500
        assert "secret" not in crash.text
        assert client.get("/").status_code == 200  # still serving
    # Starlette answered the 500 itself and re-raised: the server logs it, with the traceback.
    assert any("Exception in ASGI application" in m for m in server_warnings(caplog))


def test_starlette_websocket(starlette_server: RunningServer) -> None:
    with connect(f"{starlette_server.ws_url}/ws?name=ann", open_timeout=5) as ws:
        # Lifespan state reaches WebSocket scopes too.
        assert json.loads(ws.recv(timeout=5)) == {"hello": "ann", "db": "connected"}
        for word in ("one", "two", "ünïcode"):
            ws.send(word)
            assert ws.recv(timeout=5) == word.upper()


def test_starlette_websocket_binary_large_and_server_close(
    starlette_server: RunningServer,
) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB, under the 16 MiB default limit
    with connect(f"{starlette_server.ws_url}/ws-bytes", open_timeout=5, max_size=None) as ws:
        ws.send(big)
        reply = ws.recv(timeout=10)
        assert isinstance(reply, bytes)
        assert int.from_bytes(reply[:4], "big") == len(big)
        assert reply[4:] == big[::-1]
        ws.send("bye")
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 4000
        assert ws.close_reason == "see you"


def test_starlette_websocket_client_vanishing(starlette_server: RunningServer) -> None:
    """A client that drops the TCP connection without a close frame is just a disconnect."""
    with connect(f"{starlette_server.ws_url}/ws?name=gone", open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5))["hello"] == "gone"
        ws.socket.shutdown(socket.SHUT_RDWR)  # no close frame: the TCP connection just ends
    state = starlette_server.server.state
    assert state is not None
    assert eventually(lambda: not state.connections)


# =========================================================================== FastAPI
@pytest.fixture
def fastapi_server(serve_app: Serve) -> RunningServer:
    from tests.apps.fastapi_app import app

    return serve_app(app)


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_fastapi_dependencies_and_validation(fastapi_server: RunningServer, http2: bool) -> None:
    with http(fastapi_server, http2=http2) as client:
        assert client.get("/").json() == {"framework": "fastapi"}
        item = client.get("/items/7", params={"limit": 500}, headers={"X-User": "bob"})
        assert item.json() == {"item_id": 7, "page": {"offset": 0, "limit": 100}, "user": "bob"}
        unauthorized = client.get("/items/7")
        assert unauthorized.status_code == 401
        assert unauthorized.json() == {"detail": "who are you?"}
        invalid = client.get("/items/seven", headers={"X-User": "bob"})
        assert invalid.status_code == 422
        assert invalid.json()["detail"][0]["loc"] == ["path", "item_id"]
        assert client.get("/sync", params={"q": "threadpool"}).json() == {"q": "threadpool"}


def test_fastapi_pydantic_body(fastapi_server: RunningServer) -> None:
    with http(fastapi_server) as client:
        created = client.post("/items", json={"name": "pen", "price": 1.5, "tags": ["a", "b"]})
        assert created.status_code == 201
        assert created.json() == {
            "created": {"name": "pen", "price": 1.5, "tags": ["a", "b"]},
            "total": 3.0,
        }
        bad = client.post("/items", json={"name": "pen"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "price"]
        not_json = client.post(
            "/items", content=b"{broken", headers={"content-type": "application/json"}
        )
        assert not_json.status_code == 422


def test_fastapi_multipart_upload(fastapi_server: RunningServer) -> None:
    first = b"a" * 300_000
    second = bytes(range(256)) * 1000
    with http(fastapi_server) as client:
        response = client.post(
            "/upload",
            data={"description": "two files"},
            files=[
                ("files", ("a.txt", first, "text/plain")),
                ("files", ("b.bin", second, "application/octet-stream")),
            ],
        )
    assert response.status_code == 200
    assert response.json() == {
        "description": "two files",
        "files": [
            {"filename": "a.txt", "size": len(first), "sha256": hashlib.sha256(first).hexdigest()},
            {
                "filename": "b.bin",
                "size": len(second),
                "sha256": hashlib.sha256(second).hexdigest(),
            },
        ],
    }


def test_fastapi_background_tasks_and_lifespan_state(fastapi_server: RunningServer) -> None:
    with http(fastapi_server) as client:
        assert client.get("/state").json() == {"greeting": "hi"}
        assert client.post("/background", params={"name": "fastapi-job"}).json() == {
            "queued": "fastapi-job"
        }
        assert eventually(lambda: "fastapi-job" in client.get("/background/log").json())


def test_fastapi_lifespan_runs_both_phases() -> None:
    from tests.apps.fastapi_app import LIFESPAN_LOG, app

    before = len(LIFESPAN_LOG)
    with run_server(app, lifespan="auto", access_log=False):
        assert LIFESPAN_LOG[before:] == ["startup"]
    assert LIFESPAN_LOG[before:] == ["startup", "shutdown"]


def test_fastapi_exception_handler(fastapi_server: RunningServer) -> None:
    with http(fastapi_server) as client:
        response = client.get("/quota/carol")
    assert response.status_code == 429
    assert response.json() == {"detail": "quota exceeded for carol"}


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_fastapi_server_sent_events(fastapi_server: RunningServer, http2: bool) -> None:
    with (
        http(fastapi_server, http2=http2) as client,
        client.stream("GET", "/stream", params={"n": 50}) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert events == [f"data: {i}" for i in range(50)]


def test_fastapi_websocket_with_dependency(fastapi_server: RunningServer) -> None:
    url = f"{fastapi_server.ws_url}/ws/lobby"
    with connect(url, additional_headers={"X-User": "dan"}, open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5)) == {"room": "lobby", "user": "dan"}
        ws.send(json.dumps({"n": 1}))
        assert json.loads(ws.recv(timeout=5)) == {"echo": {"n": 1}, "room": "lobby"}
    # The dependency refuses the handshake; with the websocket.http.response extension FastAPI
    # sends the HTTPException as a real HTTP response instead of a bare 403.
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=5)
    assert refused.value.response.status_code == 401
    assert json.loads(bytes(refused.value.response.body or b"")) == {"detail": "who are you?"}


def test_fastapi_behind_a_root_path(serve_app: Serve) -> None:
    """--root-path /api: routes match with or without the prefix, docs know where they live."""
    from tests.apps.fastapi_app import app

    server = serve_app(app, root_path="/api")
    with http(server) as client:
        assert client.get("/api/").json() == {"framework": "fastapi"}
        assert client.get("/").json() == {"framework": "fastapi"}  # a proxy that strips it
        openapi = client.get("/api/openapi.json").json()
        assert openapi["servers"] == [{"url": "/api"}]
        docs = client.get("/api/docs")
        assert docs.status_code == 200
        assert "/api/openapi.json" in docs.text


@pytest.fixture(scope="module")
def framework_tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return tls_files(tmp_path_factory.mktemp("framework-tls"))


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_fastapi_over_tls(serve_app: Serve, framework_tls: TLSFiles, http2: bool) -> None:
    """HTTPS with ALPN: h2 when offered, HTTP/1.1 otherwise; the app sees scheme https."""
    from tests.apps.fastapi_app import app

    server = serve_app(
        app, ssl_certfile=str(framework_tls.certfile), ssl_keyfile=str(framework_tls.keyfile)
    )
    context = ssl.create_default_context(cafile=str(framework_tls.cafile))
    with httpx.Client(
        base_url=server.url, verify=context, http1=not http2, http2=http2, timeout=TIMEOUT
    ) as client:
        response = client.get("/items/1", headers={"X-User": "eve"})
        assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        assert response.json()["user"] == "eve"
        upload = client.post(
            "/upload", data={"description": "tls"}, files={"files": ("x", b"y" * 200_000)}
        )
        assert upload.json()["files"][0]["size"] == 200_000
        events = client.get("/stream", params={"n": 5}).text
        assert events == "".join(f"data: {i}\n\n" for i in range(5))


# =========================================================================== Django
@pytest.fixture(scope="module")
def django_app() -> Any:
    from tests.apps.djangoproject.asgi import application

    return application


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_django_views(
    django_app: Any, serve_app: Serve, caplog: pytest.LogCaptureFixture, http2: bool
) -> None:
    caplog.set_level(logging.DEBUG, logger="pronghorn")
    server = serve_app(django_app)
    with http(server, http2=http2) as client:
        index = client.get("/", params={"q": "search"}, headers={"User-Agent": "tests/1.0"})
        assert index.status_code == 200
        assert index.json() == {
            "framework": "django",
            "method": "GET",
            "path": "/",
            "query": "search",
            "scheme": "http",
            "host": f"127.0.0.1:{server.port}",
            "user_agent": "tests/1.0",
        }
        assert client.get("/async/").json() == {"async": True, "path": "/async/"}
        # CommonMiddleware's APPEND_SLASH redirect works through the server too.
        redirect = client.get("/async")
        assert redirect.status_code == 301
        assert redirect.headers["location"] == "/async/"
        assert client.get("/nowhere/").status_code == 404
    # Django refuses the lifespan scope; 'auto' notes it at debug level only.
    assert server_warnings(caplog) == []


def test_django_csrf_exempt_post_and_protection(django_app: Any, serve_app: Serve) -> None:
    server = serve_app(django_app)
    payload = {"items": list(range(1000)), "name": "ünïcode"}
    with http(server) as client:
        raw = json.dumps(payload, ensure_ascii=False).encode()
        echo = client.post("/echo/", content=raw, headers={"content-type": "application/json"})
        assert echo.status_code == 201
        body = echo.json()
        assert body["received"] == payload
        assert body["length"] == len(raw)
        # A streamed (chunked) request body reaches request.body whole.
        chunked = client.post("/echo/", content=iter([b'{"a":', b" [1, 2,", b" 3]}"]))
        assert chunked.json() == {"received": {"a": [1, 2, 3]}, "length": 16}
        forbidden = client.post("/protected/", data={"x": "1"})
        assert forbidden.status_code == 403


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_django_streaming_response(django_app: Any, serve_app: Serve, http2: bool) -> None:
    server = serve_app(django_app)
    with (
        http(server, http2=http2) as client,
        client.stream("GET", "/stream/", params={"n": 30}) as response,
    ):
        assert response.status_code == 200
        body = b"".join(response.iter_bytes())
    assert body == b"".join(b"chunk %d;" % i for i in range(30))


def test_django_lifespan_auto_is_quiet(django_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pronghorn")
    with run_server(django_app, lifespan="auto", access_log=False) as server, http(server) as c:
        assert c.get("/").status_code == 200
    assert server_warnings(caplog) == []
    assert any("lifespan" in r.getMessage().lower() for r in caplog.records)


@pytest.mark.parametrize("http2", PROTOCOLS)
def test_django_over_tls(
    django_app: Any, serve_app: Serve, framework_tls: TLSFiles, http2: bool
) -> None:
    server = serve_app(
        django_app,
        ssl_certfile=str(framework_tls.certfile),
        ssl_keyfile=str(framework_tls.keyfile),
    )
    context = ssl.create_default_context(cafile=str(framework_tls.cafile))
    with httpx.Client(
        base_url=f"https://localhost:{server.port}",
        verify=context,
        http1=not http2,
        http2=http2,
        timeout=TIMEOUT,
    ) as client:
        index = client.get("/")
        assert index.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        assert index.json()["scheme"] == "https"
        assert index.json()["host"] == f"localhost:{server.port}"
        with client.stream("GET", "/stream/", params={"n": 3}) as response:
            assert b"".join(response.iter_bytes()) == b"chunk 0;chunk 1;chunk 2;"


def test_django_sees_the_proxy_scheme(django_app: Any, serve_app: Serve) -> None:
    """Behind a trusted proxy (127.0.0.1 by default) X-Forwarded-Proto sets the scope scheme."""
    server = serve_app(django_app)
    with http(server) as client:
        index = client.get("/", headers={"X-Forwarded-Proto": "https"})
    assert index.json()["scheme"] == "https"


# =========================================================================== Quart
def test_quart_route_json_and_lifespan(serve_app: Serve) -> None:
    from tests.apps.quart_app import LIFESPAN_LOG, app

    before = len(LIFESPAN_LOG)
    with run_server(app, lifespan="auto", access_log=False) as server:
        assert LIFESPAN_LOG[before:] == ["startup"]
        with http(server) as client:
            assert client.get("/").text == "hello from quart"
            echo = client.post("/json", params={"page": "2"}, json={"k": [1, "two"]})
            assert echo.status_code == 201
            assert echo.json() == {"received": {"k": [1, "two"]}, "args": {"page": "2"}}
            assert client.get("/nowhere").status_code == 404
    assert LIFESPAN_LOG[before:] == ["startup", "shutdown"]


def test_quart_over_http2(serve_app: Serve) -> None:
    from tests.apps.quart_app import app

    server = serve_app(app)
    with http(server, http2=True) as client:
        response = client.post("/json", json={"h2": True})
    assert response.http_version == "HTTP/2"
    assert response.json() == {"received": {"h2": True}, "args": {}}


def test_quart_websocket(serve_app: Serve) -> None:
    from tests.apps.quart_app import app

    server = serve_app(app)
    with connect(f"{server.ws_url}/ws", open_timeout=5) as ws:
        for message in ("ping", "pong"):
            ws.send(message)
            assert ws.recv(timeout=5) == f"quart:{message}"
    # The client closed: Quart's handler is cancelled and the connection goes away quietly.
    state = server.server.state
    assert state is not None
    assert eventually(lambda: not state.connections)


# =========================================================================== Litestar
def test_litestar_route_json_and_lifespan(serve_app: Serve) -> None:
    from tests.apps.litestar_app import LIFESPAN_LOG, app

    before = len(LIFESPAN_LOG)
    with run_server(app, lifespan="auto", access_log=False) as server:
        assert LIFESPAN_LOG[before:] == ["startup"]
        with http(server) as client:
            assert client.get("/").text == "hello from litestar"
            order = client.post("/orders", json={"product": "tea", "quantity": 3})
            assert order.status_code == 201
            assert order.json() == {"product": "tea", "quantity": 3, "ok": True}
            invalid = client.post("/orders", json={"product": "tea"})
            assert invalid.status_code == 400
            assert client.get("/whoami").json() == {"path": "/whoami", "client": "127.0.0.1"}
    assert LIFESPAN_LOG[before:] == ["startup", "shutdown"]


def test_litestar_over_http2(serve_app: Serve) -> None:
    from tests.apps.litestar_app import app

    server = serve_app(app)
    with http(server, http2=True) as client:
        response = client.post("/orders", json={"product": "h2", "quantity": 0})
    assert response.http_version == "HTTP/2"
    assert response.json() == {"product": "h2", "quantity": 0, "ok": False}


def test_litestar_websocket(serve_app: Serve) -> None:
    from tests.apps.litestar_app import app

    server = serve_app(app)
    with connect(f"{server.ws_url}/ws", open_timeout=5) as ws:
        for message in ("alpha", "beta"):
            ws.send(message)
            assert ws.recv(timeout=5) == f"litestar:{message}"
    state = server.server.state
    assert state is not None
    assert eventually(lambda: not state.connections)
