"""Pronghorn: a fast, strict ASGI server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pronghorn.config import Config
from pronghorn.runner import run

if TYPE_CHECKING:
    from pronghorn.server.server import Server

__version__ = "0.1.0"

__all__ = ["Config", "Server", "__version__", "run"]


def __getattr__(name: str) -> Any:
    # Server loads the serving code (asyncio, the protocol cores); the supervisor's parent
    # process imports this package too and must not pay for, or depend on, any of it.
    if name == "Server":
        from pronghorn.server.server import Server

        return Server
    raise AttributeError(f"module 'pronghorn' has no attribute {name!r}")
