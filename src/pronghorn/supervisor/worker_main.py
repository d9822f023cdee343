"""A worker process: ``Server(config, app).serve(sockets)`` on the sockets it was handed.

Started by the supervisor as ``python -m pronghorn.supervisor.worker_main CONTROL_FD``. It reads
its orders from the control channel, imports the app, serves, and answers the supervisor's pings
from its event loop. It exits with one of the statuses in :mod:`pronghorn.supervisor.channel`:
0 when asked to stop, 3 when the app failed to start, 75 when the server stopped by itself (the
request limit) and wants replacing.

Signals: SIGTERM (or end of file on the control channel: the supervisor died) drains gracefully.
SIGINT, SIGHUP, SIGTTIN and SIGTTOU are the supervisor's business; a terminal delivers them to the
whole process group, so the worker catches and ignores them (handlers, not SIG_IGN, because an
ignored disposition would be inherited by the app's own child processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from typing import TYPE_CHECKING

from pronghorn import logging as pronghorn_logging
from pronghorn.errors import PronghornError
from pronghorn.supervisor import channel

if TYPE_CHECKING:
    from pronghorn.config import Config
    from pronghorn.server.server import Server

logger = logging.getLogger("pronghorn.error")

_SUPERVISOR_SIGNALS = (signal.SIGINT, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)


def _ignore(signum: int, frame: object) -> None:
    """The supervisor decides what these mean."""


class WorkerRunner:
    """Runs one server and keeps the supervisor informed about it."""

    def __init__(self, config: Config, control: socket.socket) -> None:
        self.config = config
        self.control = control
        self.stop_requested = False
        self.draining = False
        self.server: Server | None = None
        self._serving: asyncio.Task[None] | None = None
        self._reader = channel.LineReader(control)

    def run(self, sockets: list[socket.socket]) -> int:
        from pronghorn.server.server import Server, new_event_loop

        runner = self

        class WorkerServer(Server):
            def request_shutdown(self) -> None:
                # Not asked by us: the server stops by itself (its request limit). Say so now,
                # so that the supervisor starts the replacement while this one drains.
                if not runner.stop_requested and not runner.draining:
                    runner.draining = True
                    runner.send(channel.draining())
                super().request_shutdown()

        # No app is passed: the server imports it inside its loop, as it does when serving
        # in-process, so an app behaves the same with one worker or many.
        self.server = server = WorkerServer(self.config)
        server.on_started.append(self._on_started)
        loop = new_event_loop(self.config.loop)
        asyncio.set_event_loop(loop)
        try:
            loop.add_signal_handler(signal.SIGTERM, self.request_stop)
            self.control.setblocking(False)
            loop.add_reader(self.control.fileno(), self._on_control)
            self._serving = loop.create_task(server.serve(sockets))
            loop.run_until_complete(self._serving)
        except asyncio.CancelledError:  # asked to stop before serving
            return channel.EXIT_OK
        except PronghornError as exc:  # the app did not import, a TLS file is missing...
            logger.error("%s", exc)
            return channel.EXIT_CRASHED
        except Exception:
            logger.exception("Worker failed")
            return channel.EXIT_CRASHED
        finally:
            loop.remove_reader(self.control.fileno())
            _cancel_remaining_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()
        if server.exit_code or not server.started:
            return server.exit_code or channel.EXIT_CRASHED
        return channel.EXIT_OK if self.stop_requested else channel.EXIT_RECYCLE

    def request_stop(self) -> None:
        if self.stop_requested or self.server is None:
            return
        self.stop_requested = True
        if self.server.started:
            self.server.request_shutdown()
        elif self._serving is not None:
            # Nothing is in flight before serving starts; waiting out a slow import or lifespan
            # startup would only delay a reload or a shutdown.
            self._serving.cancel()

    def _on_started(self, server: Server) -> None:
        self.send(channel.ready())

    def _on_control(self) -> None:
        # Runs as a loop reader callback: a blocked loop leaves pings unanswered, which is the
        # point of the health check.
        lines = self._reader.read_lines()
        if lines is None:
            self.request_stop()  # the supervisor is gone; nobody would replace us
            loop = asyncio.get_running_loop()
            loop.remove_reader(self.control.fileno())
            return
        if channel.PING_LINE in lines:
            self.send(channel.pong(channel.resident_memory()))

    def send(self, message: bytes) -> None:
        # The supervisor is gone or not reading; end of file will tell us.
        with contextlib.suppress(OSError):
            self.control.send(message)


def _cancel_remaining_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Tasks the app left behind (a cancelled startup's lifespan task) end with the loop."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m pronghorn.supervisor.worker_main CONTROL_FD", file=sys.stderr)
        return 2
    for signum in _SUPERVISOR_SIGNALS:
        signal.signal(signum, _ignore)
    control = socket.socket(fileno=int(args[0]))
    orders = channel.read_orders(control)
    sys.path[:] = orders.sys_path
    pronghorn_logging.configure(orders.config)
    sockets = [socket.socket(fileno=fd) for fd in orders.socket_fds]
    return WorkerRunner(orders.config, control).run(sockets)


if __name__ == "__main__":
    sys.exit(main())
