"""A Quart app: a route, a JSON body, lifespan hooks and a WebSocket route."""

from __future__ import annotations

from typing import Any

from quart import Quart, jsonify, request, websocket

app = Quart(__name__)
LIFESPAN_LOG: list[str] = []


@app.before_serving
async def startup() -> None:
    LIFESPAN_LOG.append("startup")


@app.after_serving
async def shutdown() -> None:
    LIFESPAN_LOG.append("shutdown")


@app.route("/")
async def index() -> str:
    return "hello from quart"


@app.route("/json", methods=["POST"])
async def echo_json() -> Any:
    payload = await request.get_json()
    return jsonify({"received": payload, "args": request.args.to_dict()}), 201


@app.websocket("/ws")
async def echo_ws() -> None:
    while True:
        message = await websocket.receive()
        text = message if isinstance(message, str) else message.decode()
        await websocket.send(f"quart:{text}")
