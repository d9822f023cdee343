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
from pronghorn.errors import ConfigError, LifespanFailure, PronghornError

#: The exit status of a server or supervisor whose app failed lifespan startup.
EXIT_LIFESPAN_FAILED = 3


def run(app: Any, **settings: Any) -> None:
    """Serve ``app`` until interrupted; raises LifespanFailure if the app fails to start."""
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"run() got unknown setting(s): {', '.join(unknown)}")
    factory = settings.get("ssl_context_factory")
    if factory is not None and not isinstance(factory, str):
        settings["ssl_context_factory"] = import_string_of(factory, "ssl_context_factory")
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


def import_string_of(obj: object, name: str) -> str:
    """``"module:qualname"`` for a module-level function, which every worker can import.

    uvicorn takes such callables as objects; pronghorn settings cross into worker processes
    as text, so the object must be importable under its own name.
    """
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if callable(obj) and module and qualname and "<" not in qualname:
        import_str = f"{module}:{qualname}"
        from pronghorn.importer import import_from_string

        try:
            found = import_from_string(import_str)
        except PronghornError:
            found = None
        if found is obj:
            return import_str
    raise ConfigError(
        f"{name} must be a module-level function (workers import it by name) or a "
        f"'module:function' string, not {obj!r}"
    )
