"""A 64 KiB response body in one message, Content-Length set."""

from __future__ import annotations

from typing import Any

from benchmarks.apps.hello import _lifespan

SIZE = 64 * 1024
BODY = b"x" * SIZE
HEADERS = [(b"content-type", b"application/octet-stream"), (b"content-length", b"%d" % SIZE)]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        await _lifespan(scope, receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
