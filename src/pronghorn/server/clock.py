"""The once-a-second heartbeat: the cached Date header, every connection's deadline, and the
trimming of the HTTP/1.1 parser pool.

One periodic callback replaces a timer per connection: a request only stores a float
(``deadline``), and the tick closes what is overdue. Resolution is a tick, which is plenty for
timeouts measured in seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from email.utils import formatdate
from typing import Protocol

from pronghorn.protocols.http1 import PARSER_POOL, DefaultHeaders


class HasDeadline(Protocol):
    deadline: float

    def on_deadline(self, now: float) -> None: ...


def http_date() -> bytes:
    return formatdate(usegmt=True).encode("ascii")


class Clock:
    __slots__ = ("_connections", "_defaults", "_handle", "_interval", "_loop")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        defaults: DefaultHeaders,
        connections: Iterable[HasDeadline],
        *,
        interval: float = 1.0,
        date_header: bool = True,
    ) -> None:
        self._loop = loop
        self._defaults = defaults
        self._connections = connections
        self._interval = interval
        self._handle: asyncio.TimerHandle | None = None
        if date_header:
            defaults.set_date(http_date())
        else:
            defaults.set_date(None)

    def start(self) -> None:
        self._handle = self._loop.call_later(self._interval, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        now = self._loop.time()
        if self._defaults.date is not None:
            self._defaults.set_date(http_date())
        overdue = [c for c in self._connections if 0.0 < c.deadline <= now]
        for connection in overdue:
            connection.on_deadline(now)
        PARSER_POOL.trim()
        self._handle = self._loop.call_later(self._interval, self._tick)
