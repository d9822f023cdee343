"""Context variables: each request starts from the server's context, never its predecessor's.

A request's task used to inherit the context current when it was started: a pipelined request
is started by its predecessor's task, and a request read after a large body resumed reading
from inside the previous request's task, so the second request saw what the first one set
(a user id, a tracing span, a database session). Each case below sends two requests on one
connection over a real socket, on uvloop and on the stdlib loop.
"""

from __future__ import annotations

import base64
import contextvars
import os
import socket
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import RunningServer

Serve = Callable[..., RunningServer]

#: Set by each request; a request must never see another's value.
REQUEST_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("request_var", default="unset")
#: Set before serving (as an app module does at import time, or instrumentation does).
SERVER_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("server_var", default="unset")

LOOPS = pytest.mark.parametrize("loop", ["uvloop", "asyncio"])


async def context_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    seen = f"{REQUEST_VAR.get()} {SERVER_VAR.get()}".encode()
    REQUEST_VAR.set(scope["path"])
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "bytes": seen})
        await send({"type": "websocket.close"})
        return
    more_body = True
    while more_body:
        message = await receive()
        more_body = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": seen})


class Responses:
    """Reads Content-Length framed responses off one connection, keeping what follows each."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, f"connection closed; unread {self.buffer[:200]!r}"
        self.buffer += chunk

    def head(self) -> bytes:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        return head

    def body(self) -> bytes:
        """The body of the next response, which must be a 200."""
        head = self.head()
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return body

    def first_frame(self) -> bytes:
        """After a 101: the payload of the server's first (short, binary) frame."""
        head = self.head()
        assert head.startswith(b"HTTP/1.1 101"), head
        while len(self.buffer) < 2 or len(self.buffer) < 2 + (self.buffer[1] & 0x7F):
            self._fill()
        assert self.buffer[0] == 0x82  # FIN, binary
        return self.buffer[2 : 2 + (self.buffer[1] & 0x7F)]


def set_server_var() -> None:
    SERVER_VAR.set("server")


@LOOPS
def test_a_pipelined_request_does_not_see_its_predecessors_context(serve: Serve, loop: str) -> None:
    server = serve(context_app, loop=loop, before_serving=set_server_var)
    sock = server.connect()
    sock.sendall(
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    responses = Responses(sock)
    bodies = [responses.body() for _ in range(3)]
    assert bodies == [b"unset server"] * 3


@LOOPS
def test_a_request_after_a_large_body_does_not_see_its_predecessors_context(
    serve: Serve, loop: str
) -> None:
    # 4 MiB pauses reading; the request behind it is read when the app's receive() resumes
    # reading, from inside the first request's task.
    server = serve(context_app, loop=loop, before_serving=set_server_var)
    sock = server.connect()
    size = 4 << 20
    sock.sendall(f"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode())
    sock.sendall(bytes(size) + b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    responses = Responses(sock)
    assert [responses.body(), responses.body()] == [b"unset server"] * 2


@LOOPS
def test_a_websocket_after_a_request_does_not_see_its_context(serve: Serve, loop: str) -> None:
    server = serve(context_app, loop=loop, before_serving=set_server_var)
    sock = server.connect()
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    responses = Responses(sock)
    assert responses.body() == b"unset server"
    assert responses.first_frame() == b"unset server"
    sock.sendall(b"\x88\x80" + os.urandom(4))  # answer the app's close: a masked close frame


def test_the_server_context_is_visible_by_default_and_hidden_on_request(serve: Serve) -> None:
    shown = serve(context_app, before_serving=set_server_var)
    hidden = serve(context_app, before_serving=set_server_var, reset_contextvars=True)
    for server, expected in ((shown, b"unset server"), (hidden, b"unset unset")):
        sock = server.connect()
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        responses = Responses(sock)
        assert [responses.body(), responses.body()] == [expected] * 2
