"""The built-in demo app over real sockets: the page, the JSON echo, the WebSocket echo."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from pronghorn import __version__
from pronghorn.config import Config
from pronghorn.importer import load_app
from tests.conftest import RunningServer

Serve = Callable[..., RunningServer]


@pytest.fixture
def demo(serve: Serve) -> RunningServer:
    return serve(load_app(Config()), lifespan="on")


def test_page_shows_what_serves_it(demo: RunningServer) -> None:
    response = httpx.get(demo.url + "/", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert f"pronghorn {__version__}" in page
    assert "HTTP/1.1" in page
    assert "Loop" in page  # the event loop class name (uvloop's Loop by default)
    assert "127.0.0.1:" in page
    assert 'new WebSocket(scheme + "//" + location.host + "/ws")' in page


def test_page_over_http2(demo: RunningServer) -> None:
    with httpx.Client(http1=False, http2=True, timeout=5) as client:
        response = client.get(demo.url + "/")
    assert response.http_version == "HTTP/2"
    assert "HTTP/2" in response.text


def test_page_escapes_the_client_address(serve: Serve) -> None:
    # With proxy headers trusted, the client address comes from the request: it must be escaped.
    server = serve(load_app(Config()), forwarded_allow_ips="*")
    response = httpx.get(server.url + "/", headers={"x-forwarded-for": "<b>x</b>"}, timeout=5)
    assert "<b>x</b>" not in response.text
    assert "&lt;b&gt;x&lt;/b&gt;" in response.text


def test_json_echo(demo: RunningServer) -> None:
    response = httpx.post(
        demo.url + "/echo?a=1&b=2", content=b"hello body", headers={"x-test": "yes"}, timeout=5
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    echo = response.json()
    assert echo["method"] == "POST"
    assert echo["path"] == "/echo"
    assert echo["query"] == "a=1&b=2"
    assert ["x-test", "yes"] in echo["headers"]
    assert echo["body"] == "hello body"

    get = httpx.get(demo.url + "/echo", timeout=5).json()
    assert (get["method"], get["body"]) == ("GET", "")


def test_not_found_and_wrong_method(demo: RunningServer) -> None:
    missing = httpx.get(demo.url + "/nope", timeout=5)
    assert missing.status_code == 404
    assert missing.json() == {"error": "not found"}
    assert httpx.delete(demo.url + "/echo", timeout=5).status_code == 405


def test_websocket_echo(demo: RunningServer) -> None:
    async def talk() -> tuple[object, object]:
        async with websockets.connect(demo.ws_url + "/ws", open_timeout=5) as ws:
            await ws.send("hello")
            text = await asyncio.wait_for(ws.recv(), 5)
            await ws.send(b"\x00\x01binary")
            data = await asyncio.wait_for(ws.recv(), 5)
            return text, data

    assert asyncio.run(talk()) == ("hello", b"\x00\x01binary")


def test_websocket_on_other_path_is_refused(demo: RunningServer) -> None:
    async def connect() -> None:
        async with websockets.connect(demo.ws_url + "/other", open_timeout=5):
            pass

    with pytest.raises(InvalidStatus) as info:
        asyncio.run(connect())
    assert info.value.response.status_code == 403


def test_echo_body_json_is_valid_for_binary(demo: RunningServer) -> None:
    response = httpx.post(demo.url + "/echo", content=b"\xff\xfe", timeout=5)
    assert json.loads(response.text)["body"] == "\ufffd\ufffd"
