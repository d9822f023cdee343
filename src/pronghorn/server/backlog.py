"""Accepting the connections uvloop leaves waiting in the listen queue.

uvloop (measured with 0.23) accepts one connection per loop iteration: tracing a server
serving 1000 keep-alive connections shows one ``accept4`` per ``epoll_pwait``, though the
listening socket is reported readable every time. An iteration that serves hundreds of ready
connections lasts 20-30 ms, so connections arriving while the server is busy are accepted at
30-50 a second: with wrk opening 1000 connections, the last of them got their first answer
2-6 s late (p99 latency 0.7-2.7 s, wrk timeouts), while the 1000 ran at full speed once
accepted. uvicorn on uvloop shows the same. The stdlib loop accepts up to the backlog per
readiness event and never waits like this.

So whenever a connection is made, the ones queued behind it are accepted here too, at most
``BATCH`` per listening socket (a busy worker must not take a whole burst from idle siblings
sharing the socket), and handed to the loop's ``connect_accepted_socket``, which sets each up
as the loop's own accept would (``TCP_NODELAY``, the TLS handshake and its timeout). When
nothing waits this costs one ``accept`` that fails with EAGAIN per new connection, the call a
loop that accepts until the queue is empty makes anyway.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable, Sequence

logger = logging.getLogger("pronghorn.error")

#: Connections accepted from one listening socket per call.
BATCH = 128


class BacklogDrain:
    """Accepts what waits on the server's listening sockets (call :meth:`drain`)."""

    __slots__ = (
        "_factory",
        "_handshake_timeout",
        "_loop",
        "_pending",
        "_sockets",
        "_ssl",
        "accepted",
        "closed",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sockets: Sequence[socket.socket],
        factory: Callable[[], asyncio.Protocol],
        ssl_context: ssl.SSLContext | None,
        handshake_timeout: float | None,
    ) -> None:
        self._loop = loop
        self._sockets = list(sockets)
        self._factory = factory
        self._ssl = ssl_context
        self._handshake_timeout = handshake_timeout if ssl_context is not None else None
        #: Hand-overs in progress, referenced so that the loop's weak task set does not lose
        #: them.
        self._pending: set[asyncio.Task[None]] = set()
        #: Connections taken off the queue here (for statistics and tests).
        self.accepted = 0
        #: Set when the server stops accepting: the sockets may be closed from then on.
        self.closed = False

    def drain(self) -> None:
        if self.closed:
            return
        for sock in self._sockets:
            for _ in range(BATCH):
                try:
                    conn, _ = sock.accept()
                except (BlockingIOError, InterruptedError):
                    break  # nothing (more) waits
                except ConnectionAbortedError:
                    continue  # reset by the peer while queued
                except OSError as exc:
                    # Out of descriptors or buffers: what waits stays queued for the loop's
                    # own accept, which backs off as it sees fit.
                    logger.debug("Accepting a queued connection failed: %s", exc)
                    break
                self.accepted += 1
                self._adopt(conn)

    def _adopt(self, conn: socket.socket) -> None:
        task = self._loop.create_task(self._connect(conn))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(
                self._factory,
                conn,
                ssl=self._ssl,
                ssl_handshake_timeout=self._handshake_timeout,
            )
        except OSError as exc:  # (TimeoutError is one too)
            # A failed or timed-out TLS handshake, a peer gone before the set-up: as for a
            # connection the loop accepted, it ends there (the transport closed the socket).
            logger.debug("Setting up a queued connection failed: %s", exc)

    def close(self) -> None:
        self.closed = True


def uses_uvloop(loop: asyncio.AbstractEventLoop) -> bool:
    return type(loop).__module__.startswith("uvloop")
