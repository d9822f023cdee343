"""1 MiB streamed in 16 KiB chunks with no Content-Length (chunked on HTTP/1.1)."""

from __future__ import annotations

from typing import Any

from benchmarks.apps.hello import _lifespan

CHUNK = b"y" * (16 * 1024)
CHUNKS = 64  # 64 x 16 KiB = 1 MiB
SIZE = CHUNKS * len(CHUNK)
HEADERS = [(b"content-type", b"application/octet-stream")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        await _lifespan(scope, receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    message = {"type": "http.response.body", "body": CHUNK, "more_body": True}
    for _ in range(CHUNKS - 1):
        await send(message)
    await send({"type": "http.response.body", "body": CHUNK, "more_body": False})
