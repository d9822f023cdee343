"""A FastAPI app: typed routes, pydantic bodies, dependency injection, forms and uploads,
background tasks, lifespan state, streaming, a WebSocket and exception handlers."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import (
    BackgroundTasks,
    Depends,
    FastAPI,
    File,
    Form,
    Header,
    HTTPException,
    Request,
    UploadFile,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

BACKGROUND_LOG: list[str] = []
LIFESPAN_LOG: list[str] = []


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


class QuotaExceeded(Exception):
    def __init__(self, user: str) -> None:
        super().__init__(user)
        self.user = user


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    LIFESPAN_LOG.append("startup")
    yield {"settings": {"greeting": "hi"}}
    LIFESPAN_LOG.append("shutdown")


app = FastAPI(lifespan=lifespan)


@app.exception_handler(QuotaExceeded)
async def quota_handler(request: Request, exc: QuotaExceeded) -> JSONResponse:
    return JSONResponse({"detail": f"quota exceeded for {exc.user}"}, status_code=429)


async def current_user(x_user: Annotated[str | None, Header()] = None) -> str:
    if x_user is None:
        raise HTTPException(status_code=401, detail="who are you?")
    return x_user


async def pagination(offset: int = 0, limit: int = 10) -> dict[str, int]:
    return {"offset": offset, "limit": min(limit, 100)}


User = Annotated[str, Depends(current_user)]
Page = Annotated[dict[str, int], Depends(pagination)]


@app.get("/")
async def root() -> dict[str, str]:
    return {"framework": "fastapi"}


@app.get("/items/{item_id}")
async def read_item(item_id: int, page: Page, user: User) -> dict[str, Any]:
    return {"item_id": item_id, "page": page, "user": user}


@app.post("/items", status_code=201)
async def create_item(item: Item) -> dict[str, Any]:
    return {"created": item.model_dump(), "total": item.price * len(item.tags or ["x"])}


@app.get("/sync")
def sync_route(q: str = "none") -> dict[str, str]:
    return {"q": q}  # runs in the threadpool


@app.post("/upload")
async def upload(
    description: Annotated[str, Form()],
    files: Annotated[list[UploadFile], File()],
) -> dict[str, Any]:
    out = []
    for upload_file in files:
        content = await upload_file.read()
        out.append(
            {
                "filename": upload_file.filename,
                "size": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
            }
        )
    return {"description": description, "files": out}


@app.post("/background")
async def background(name: str, tasks: BackgroundTasks) -> dict[str, str]:
    def record() -> None:
        BACKGROUND_LOG.append(name)

    tasks.add_task(record)
    return {"queued": name}


@app.get("/background/log")
async def background_log() -> list[str]:
    return BACKGROUND_LOG


@app.get("/state")
async def state(request: Request) -> dict[str, str]:
    return {"greeting": request.state.settings["greeting"]}


@app.get("/quota/{user}")
async def quota(user: str) -> None:
    raise QuotaExceeded(user)


@app.get("/stream")
async def stream(n: int = 3) -> StreamingResponse:
    async def events() -> AsyncIterator[str]:
        for index in range(n):
            yield f"data: {index}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


@app.websocket("/ws/{room}")
async def chat(websocket: WebSocket, room: str, user: User) -> None:
    await websocket.accept()
    await websocket.send_json({"room": room, "user": user})
    try:
        while True:
            data = await websocket.receive_json()
            await websocket.send_json({"echo": data, "room": room})
    except WebSocketDisconnect:
        pass
