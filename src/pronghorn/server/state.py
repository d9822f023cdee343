"""What every connection of one worker shares: settings turned into ready-to-use objects."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Final

from pronghorn import __version__
from pronghorn.asgi.proxy_headers import TrustedProxies
from pronghorn.config import Config
from pronghorn.protocols.http1 import DefaultHeaders, HTTP1Limits
from pronghorn.server.tasks import TurnBatch, turn_batch

if TYPE_CHECKING:
    import ssl

    from pronghorn.server.backlog import BacklogDrain
    from pronghorn.server.protocol import ConnectionProtocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
AccessLog = Callable[[str, bytes, bytes, str, int, int, float], None]

error_logger = logging.getLogger("pronghorn.error")


def static_headers(config: Config) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    custom = []
    for header in config.headers:
        name, _, value = header.partition(":")
        custom.append((name.strip().lower().encode("latin-1"), value.strip().encode("latin-1")))
    custom_names = {name for name, _ in custom}
    if config.server_header and b"server" not in custom_names:
        headers.append((b"server", b"pronghorn"))
    headers.extend(custom)
    return headers


class FlushScheduler:
    """Writes the responses completed during one loop iteration together, at its end.

    Apps finishing while the loop dispatches ready connections run back to back; their send
    syscalls follow in one callback. A connection whose buffer grows large flushes at once.
    """

    __slots__ = ("loop", "pending", "scheduled", "turn")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        #: The loop's count of first steps run together (server/tasks.py).
        self.turn: TurnBatch = turn_batch(loop)
        #: Connections with output due; ConnectionProtocol.schedule_flush appends (inlined
        #: there: it runs for every response).
        self.pending: list[ConnectionProtocol] = []
        self.scheduled = False

    def run(self) -> None:
        self.scheduled = False
        # Queued behind the batch of first steps whose answers it writes: that batch is over.
        self.turn.running = 0
        pending = self.pending
        self.pending = []
        for connection in pending:
            if connection.flush_deferred:
                # A pipelined response whose successor's app runs this turn: wait one more.
                connection.flush_deferred = False
                self.pending.append(connection)
            elif connection.flush_pending:
                # (Not when a response completed since: response_complete wrote it.)
                connection.flush()
        if self.pending and not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.run)


class ServerState:
    __slots__ = (
        "__weakref__",
        "access_log",
        "app",
        "backlog",
        "base_context",
        "config",
        "connections",
        "defaults",
        "draining",
        "exchanges",
        "flusher",
        "h1_limits",
        "keep_alive_timeout",
        "lifespan_state",
        "limit_concurrency",
        "loop",
        "on_request",
        "requests_total",
        "ssl_context",
        "trusted",
    )

    def __init__(
        self,
        config: Config,
        app: ASGIApp,
        loop: asyncio.AbstractEventLoop,
        *,
        lifespan_state: dict[str, Any] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self.config = config
        self.app = app
        self.loop = loop
        #: Each request's task runs in a copy of this: the context serving started in (or an
        #: empty one with --reset-contextvars), never the context of the request before it.
        self.base_context = (
            contextvars.Context() if config.reset_contextvars else contextvars.copy_context()
        )
        self.connections: set[ConnectionProtocol] = set()
        #: In-flight request/stream runners, for --limit-concurrency and the shutdown drain.
        self.exchanges: set[Any] = set()
        self.defaults = DefaultHeaders(static_headers(config))
        self.h1_limits = HTTP1Limits(
            max_request_line=config.limit_request_line,
            max_headers=config.limit_request_headers,
            max_header_size=config.h11_max_incomplete_event_size
            or config.limit_request_header_size,
            max_body=config.limit_request_body,
        )
        self.trusted = (
            TrustedProxies.parse(config.forwarded_allow_ips) if config.proxy_headers else None
        )
        self.lifespan_state = lifespan_state
        self.ssl_context = ssl_context
        self.access_log = access_log
        self.flusher = FlushScheduler(loop)
        self.limit_concurrency = config.limit_concurrency
        #: (Config is interpreted: reading it from compiled code is a lookup by name.)
        self.keep_alive_timeout = float(config.timeout_keep_alive)
        self.requests_total = 0
        self.draining = False
        #: Called once per request (the worker counts for --limit-max-requests).
        self.on_request: Callable[[], None] | None = None
        #: Accepts what waits in the listen queue when a connection is made (uvloop only).
        self.backlog: BacklogDrain | None = None

    def over_capacity(self) -> bool:
        limit = self.config.limit_concurrency
        return limit is not None and (len(self.connections) > limit or len(self.exchanges) >= limit)

    def statistics(self) -> dict[str, int]:
        return {
            "connections": len(self.connections),
            "requests_in_flight": len(self.exchanges),
            "requests_total": self.requests_total,
        }


SERVER_VERSION: Final = __version__
