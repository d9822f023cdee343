"""Plain ASGI hello world: 13-byte text body, Content-Length set, no framework."""

from __future__ import annotations

from typing import Any

BODY = b"Hello, world!"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
START = {"type": "http.response.start", "status": 200, "headers": HEADERS}
FINISH = {"type": "http.response.body", "body": BODY}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        await _lifespan(scope, receive, send)
        return
    await send(START)
    await send(FINISH)


async def _lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "lifespan":
        return
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
