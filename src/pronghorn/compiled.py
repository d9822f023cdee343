"""The modules the build compiles with mypyc, and whether this install runs them compiled.

setup.py reads ``MODULES`` from this file (it runs it on its own, so this module imports nothing
of pronghorn's). Every module also runs as plain Python: an install without a C compiler, or
with ``PRONGHORN_PURE_PYTHON=1``, is complete, only slower.
"""

from __future__ import annotations

import importlib.util
import os
import sys

__all__ = ["MODULES", "PURE_SWITCH", "hot_path_compiled", "is_compiled", "pure_python_requested"]

#: Set (to anything but 0) when installing, it skips the compile; the test suite reads it to
#: know which build it is meant to be running.
PURE_SWITCH = "PRONGHORN_PURE_PYTHON"

#: The modules a request or a message passes through. Startup, configuration, the supervisor and
#: the CLI stay interpreted: they run once, and their tracebacks matter more than their speed.
MODULES = (
    "pronghorn.protocols.events",
    "pronghorn.protocols.heads",
    "pronghorn.protocols.output",
    "pronghorn.protocols.http1",
    "pronghorn.protocols.tunnel",
    "pronghorn.protocols.websocket",
    "pronghorn.protocols.http2",
    "pronghorn.protocols.http2_hpack",
    "pronghorn.protocols.http2_headers",
    "pronghorn.protocols.http2_limits",
    "pronghorn.protocols.http2_send",
    "pronghorn.protocols.http2_stream",
    "pronghorn.asgi.headers",
    "pronghorn.asgi.http",
    "pronghorn.asgi.messages",
    "pronghorn.asgi.proxy_headers",
    "pronghorn.asgi.scope",
    "pronghorn.asgi.websocket",
    "pronghorn.server.access_log",
    "pronghorn.server.awaits",
    "pronghorn.server.clock",
    "pronghorn.server.http",
    "pronghorn.server.http2",
    "pronghorn.server.protocol",
    "pronghorn.server.state",
    "pronghorn.server.tasks",
    "pronghorn.server.websocket",
) + (
    # Awaits the app: compiled only where throw()'s three-argument form is not deprecated
    # (server/appcall.py says why).
    ("pronghorn.server.appcall",) if sys.version_info < (3, 12) else ()
)


def is_compiled(module: str) -> bool:
    """True when ``module`` would load from an extension rather than its ``.py`` file."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(module)
    return not spec.origin.endswith(".py")


def hot_path_compiled() -> bool:
    return all(is_compiled(module) for module in MODULES)


def pure_python_requested() -> bool:
    return os.environ.get(PURE_SWITCH, "") not in ("", "0")
