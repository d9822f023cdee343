"""``pronghorn.run(app, **settings)``: serve from Python code, as ``uvicorn.run`` does.

``app`` is an ASGI/WSGI callable or a ``"module:attr"`` string; ``settings`` are ``Config``
field names (``host``, ``port``, ``workers``...). Unlike the CLI, nothing is read from the
environment or a config file: embedding code says what it means. Failures raise the typed
errors of :mod:`pronghorn.errors` (the CLI turns those into exit codes).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from pronghorn.config import Config
from pronghorn.errors import ConfigError, LifespanFailure

#: The exit status of a server or supervisor whose app failed lifespan startup.
EXIT_LIFESPAN_FAILED = 3


def run(app: Any, **settings: Any) -> None:
    """Serve ``app`` until interrupted; raises LifespanFailure if the app fails to start."""
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"run() got unknown setting(s): {', '.join(unknown)}")
    app_object = None
    if isinstance(app, str):
        settings["app"] = app
    else:
        app_object = app
    config = Config(**settings)
    if serve(config, app_object) == EXIT_LIFESPAN_FAILED:
        # The server has logged the app's message; embedding code gets the typed error.
        raise LifespanFailure("the application failed its lifespan startup")


def serve(config: Config, app: object | None = None) -> int:
    """Set up logging, then serve ``config``: in this process, or under the supervisor when
    reloading or running several workers. Returns the exit code."""
    # The supervisor also serves one worker when something needs a parent process: systemd
    # socket activation or readiness, and recycling by request count or memory.
    supervised = config.reload or config.workers > 1 or (app is None and _needs_supervisor(config))
    if supervised and app is not None:
        # Workers and reloads import the app afresh in each process.
        raise ConfigError(
            "pass the app as an import string ('module:attr') to use reload or workers"
        )

    from pronghorn import logging as pronghorn_logging

    pronghorn_logging.configure(config)
    if supervised:
        from pronghorn.supervisor import run as supervise

        return supervise(config)

    from pronghorn.importer import load_app
    from pronghorn.server.server import Server

    # An object is wrapped like an imported APP (factory, ASGI 2 / WSGI detection); with no
    # object the server imports config.app itself.
    server = Server(config, app=load_app(config, app) if app is not None else None)
    return server.run()


def _needs_supervisor(config: Config) -> bool:
    return bool(
        os.environ.get("LISTEN_FDS")
        or os.environ.get("NOTIFY_SOCKET")
        or config.limit_max_requests is not None
        or config.limit_max_rss is not None
    )
