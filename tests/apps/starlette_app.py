"""A Starlette app using the features a real service does: routing, JSON, streaming, forms and
multipart uploads, background tasks, lifespan state, a WebSocket and exception handlers."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

#: Filled by background tasks; read back through /background/log.
BACKGROUND_LOG: list[str] = []
#: Lifespan events, in order.
LIFESPAN_LOG: list[str] = []
#: The ticks /ticker produced; they must stop when the client leaves.
TICKER_LOG: list[str] = []


class TeapotError(Exception):
    pass


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    LIFESPAN_LOG.append("startup")
    yield {"db": "connected", "visits": []}
    LIFESPAN_LOG.append("shutdown")


async def home(request: Request) -> Response:
    return PlainTextResponse("hello from starlette")


async def item(request: Request) -> Response:
    return JSONResponse(
        {
            "item_id": request.path_params["item_id"],
            "q": request.query_params.get("q"),
            "tags": request.query_params.getlist("tag"),
        }
    )


async def echo_json(request: Request) -> Response:
    payload = await request.json()
    return JSONResponse({"received": payload}, status_code=201)


async def stream(request: Request) -> Response:
    count = int(request.query_params.get("n", "5"))

    async def lines() -> AsyncIterator[bytes]:
        for index in range(count):
            yield b"line %d\n" % index

    return StreamingResponse(lines(), media_type="text/plain")


async def ticker(request: Request) -> Response:
    """An endless event stream, as dashboards and SSE feeds are; ends when the client leaves."""

    async def ticks() -> AsyncIterator[bytes]:
        count = 0
        while True:
            TICKER_LOG.append(f"tick {count}")
            yield b"tick %d\n" % count
            count += 1
            await asyncio.sleep(0.01)

    return StreamingResponse(ticks(), media_type="text/plain")


async def source(request: Request) -> Response:
    """This very file, through FileResponse (http.response.pathsend when offered)."""
    return FileResponse(__file__, media_type="text/x-python")


async def form(request: Request) -> Response:
    async with request.form() as data:
        fields: dict[str, Any] = {}
        for key, value in data.multi_items():
            if isinstance(value, UploadFile):
                content = await value.read()
                fields[key] = {
                    "filename": value.filename,
                    "content_type": value.content_type,
                    "size": len(content),
                    "sha256": hashlib.sha256(content).hexdigest(),
                }
            else:
                fields.setdefault(key, []).append(value)
    return JSONResponse(fields)


async def background(request: Request) -> Response:
    name = request.query_params["name"]

    async def record() -> None:
        BACKGROUND_LOG.append(name)

    return JSONResponse({"queued": name}, background=BackgroundTask(record))


async def background_log(request: Request) -> Response:
    return JSONResponse(BACKGROUND_LOG)


async def state(request: Request) -> Response:
    request.state.visits.append(request.url.path)
    return JSONResponse({"db": request.state.db, "visits": len(request.state.visits)})


async def teapot(request: Request) -> Response:
    raise TeapotError("short and stout")


async def missing(request: Request) -> Response:
    raise HTTPException(status_code=404, detail="no such thing")


async def crash(request: Request) -> Response:
    raise RuntimeError("starlette-internal-secret")


async def teapot_handler(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=418)


async def websocket_echo(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol=None)
    await websocket.send_json(
        {"hello": websocket.query_params.get("name", "anonymous"), "db": websocket.state.db}
    )
    try:
        while True:
            message = await websocket.receive_text()
            await websocket.send_text(message.upper())
    except WebSocketDisconnect:
        pass


async def websocket_bytes(websocket: WebSocket) -> None:
    """Binary echo with a byte count; closes with 4000 when told 'bye'."""
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "bye":
            await websocket.close(code=4000, reason="see you")
            return
        data = message.get("bytes") or b""
        await websocket.send_bytes(len(data).to_bytes(4, "big") + data[::-1])


async def echo_path(request: Request) -> Response:
    return PlainTextResponse(request.url.path)


async def mounted(request: Request) -> Response:
    return JSONResponse({"root_path": request.scope["root_path"], "path": request.url.path})


app = Starlette(
    routes=[
        Route("/", home),
        Route("/items/{item_id:int}", item),
        Route("/echo", echo_json, methods=["POST"]),
        Route("/stream", stream),
        Route("/ticker", ticker),
        Route("/source", source),
        Route("/form", form, methods=["POST"]),
        Route("/background", background, methods=["POST"]),
        Route("/background/log", background_log),
        Route("/state", state),
        Route("/teapot", teapot),
        Route("/missing", missing),
        Route("/crash", crash),
        Route("/path/{rest:path}", echo_path),
        Mount("/sub", routes=[Route("/where", mounted)]),
        WebSocketRoute("/ws", websocket_echo),
        WebSocketRoute("/ws-bytes", websocket_bytes),
    ],
    exception_handlers={TeapotError: teapot_handler},
    lifespan=lifespan,
)
