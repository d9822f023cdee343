"""The server's per-request access-log call: one loop turn's lines reach logging together.

A request's line is kept as its values (a tuple and a list append); a callback the turn's
first line queues hands them all to :meth:`AccessLogger.log_entries`, so the logging checks
(level, handler shape) run once per turn rather than once per request. Lines reach logging at
most one loop turn late, stamped with the time their request ended.
"""

from __future__ import annotations

import asyncio
from time import time

from pronghorn.logging import AccessEntry, AccessLogger


class AccessLogBatch:
    __slots__ = ("_entries", "_logger", "_loop", "_scheduled")

    def __init__(self, logger: AccessLogger, loop: asyncio.AbstractEventLoop) -> None:
        self._logger = logger
        self._loop = loop
        self._entries: list[AccessEntry] = []
        self._scheduled = False

    def __call__(
        self,
        client: str,
        method: bytes,
        target: bytes,
        http_version: str,
        status: int,
        bytes_sent: int,
        duration_s: float,
    ) -> None:
        self._entries.append(
            (time(), client, method, target, http_version, status, bytes_sent, duration_s)
        )
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Hand the lines so far to logging (also called when the server stops)."""
        self._scheduled = False
        entries = self._entries
        if entries:
            self._entries = []
            self._logger.log_entries(entries)
