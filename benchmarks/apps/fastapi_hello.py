"""FastAPI hello world: one route returning a 13-byte PlainTextResponse."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.get("/", response_class=PlainTextResponse)
async def hello() -> str:
    return "Hello, world!"
