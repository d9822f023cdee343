"""Reads the whole request body and answers with its length in bytes (as decimal text)."""

from __future__ import annotations

from typing import Any

from benchmarks.apps.hello import _lifespan


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        await _lifespan(scope, receive, send)
        return
    received = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return  # http.disconnect
        received += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"%d" % received
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
