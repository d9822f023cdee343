"""A Litestar app: a route, a typed JSON body, lifespan state and a WebSocket listener."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Litestar, Request, get, post, websocket_listener
from litestar.datastructures import State
from litestar.params import JSONBody

LIFESPAN_LOG: list[str] = []


@dataclass
class Order:
    product: str
    quantity: int


def startup(app: Litestar) -> None:
    LIFESPAN_LOG.append("startup")
    app.state.greeting = "hello from litestar"


def shutdown(app: Litestar) -> None:
    LIFESPAN_LOG.append("shutdown")


@get("/")
async def index(state: State) -> str:
    return str(state.greeting)


@post("/orders")
async def create_order(data: JSONBody[Order]) -> dict[str, Any]:
    return {"product": data.product, "quantity": data.quantity, "ok": data.quantity > 0}


@get("/whoami")
async def whoami(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"path": request.url.path, "client": request.client.host if request.client else None}


@websocket_listener("/ws")
async def echo_ws(data: str) -> str:
    return f"litestar:{data}"


app = Litestar(
    route_handlers=[index, create_order, whoami, echo_ws],
    on_startup=[startup],
    on_shutdown=[shutdown],
    # Litestar's default logging config takes over the root logger (level INFO, a queue
    # handler) for the whole process; the tests share that process with other suites.
    logging_config=None,
)
