"""Processes: bind the sockets once, then start, watch, restart and stop the workers serving them.

This package never imports the protocol or ASGI layers (nor the server, in the supervisor
process): a worker is ``Server(config).serve(sockets)`` in a fresh interpreter
(:mod:`pronghorn.supervisor.worker_main`), handed the sockets bound here.

- :mod:`~pronghorn.sockets`: TCP, IPv6, UNIX, ``--fd`` and systemd sockets
- :mod:`~pronghorn.systemd`: socket activation and readiness notification
- :mod:`~pronghorn.supervisor.channel`: what supervisor and worker say; worker exit statuses
- :mod:`~pronghorn.supervisor.process`: one worker process as the supervisor sees it
- :mod:`~pronghorn.supervisor.workers`: the supervisor loop and its policy
- :mod:`~pronghorn.supervisor.reload`: ``--reload`` file watching
"""

from __future__ import annotations

import logging
import os

from pronghorn.config import Config

__all__ = ["run"]

logger = logging.getLogger("pronghorn.error")


def run(config: Config) -> int:
    """Serve ``config`` with ``config.workers`` worker processes (restarted on file changes under
    ``config.reload``) until SIGINT or SIGTERM; returns the exit status: 0 after a graceful stop,
    1 after a forced one, 3 when the app failed to start.

    Raises :class:`~pronghorn.errors.StartupError` when a socket cannot be bound.
    """
    from pronghorn.sockets import bind_sockets, close_sockets, describe
    from pronghorn.supervisor.workers import Supervisor

    listeners = bind_sockets(config)
    try:
        for sock in listeners:
            logger.info("Listening on %s", describe(sock))
        supervisor = Supervisor(config, listeners)
        watcher = None
        try:
            if config.reload:
                from pronghorn.supervisor.reload import Watcher

                watcher = Watcher(config, supervisor.files_changed)
                watcher.start()
        except BaseException:
            supervisor.close()
            raise
        logger.info("Started supervisor process [%d]", os.getpid())
        try:
            return supervisor.run()
        finally:
            if watcher is not None:
                watcher.stop()
            logger.info("Stopped supervisor process [%d]", os.getpid())
    finally:
        close_sockets(listeners)
