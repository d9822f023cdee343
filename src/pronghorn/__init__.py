"""Pronghorn: a fast, strict ASGI server."""

from __future__ import annotations

from pronghorn.config import Config
from pronghorn.runner import run

__version__ = "0.1.0"

__all__ = ["Config", "__version__", "run"]
