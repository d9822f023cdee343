"""LifespanCycle: the lifespan protocol's message rules, sans-IO.

What may change state: :meth:`request_startup` / :meth:`request_shutdown` (the server), and
:meth:`send` (the app's lifespan.*.complete / .failed). ``server/lifespan.py`` does the waiting.
"""

from __future__ import annotations

import enum
from typing import Any

from pronghorn.errors import AppProtocolError

Message = dict[str, Any]


class LifespanState(enum.Enum):
    IDLE = "idle"
    STARTING = "starting"
    STARTED = "started"
    STARTUP_FAILED = "startup_failed"
    STOPPING = "stopping"
    STOPPED = "stopped"
    SHUTDOWN_FAILED = "shutdown_failed"


_TRANSITIONS: dict[tuple[LifespanState, str], LifespanState] = {
    (LifespanState.STARTING, "lifespan.startup.complete"): LifespanState.STARTED,
    (LifespanState.STARTING, "lifespan.startup.failed"): LifespanState.STARTUP_FAILED,
    (LifespanState.STOPPING, "lifespan.shutdown.complete"): LifespanState.STOPPED,
    (LifespanState.STOPPING, "lifespan.shutdown.failed"): LifespanState.SHUTDOWN_FAILED,
}


class LifespanCycle:
    __slots__ = ("_delivered", "message", "state")

    def __init__(self) -> None:
        self.state = LifespanState.IDLE
        #: The failure text an app gave with lifespan.*.failed.
        self.message = ""
        self._delivered: list[str] = []

    def request_startup(self) -> None:
        self.state = LifespanState.STARTING

    def request_shutdown(self) -> None:
        self.state = LifespanState.STOPPING

    def next_message(self) -> Message | None:
        """What the app's receive() returns now, or None to wait."""
        if self.state is LifespanState.STARTING and "startup" not in self._delivered:
            self._delivered.append("startup")
            return {"type": "lifespan.startup"}
        if self.state is LifespanState.STOPPING and "shutdown" not in self._delivered:
            self._delivered.append("shutdown")
            return {"type": "lifespan.shutdown"}
        return None

    def send(self, message: Message) -> LifespanState:
        try:
            kind = message["type"]
        except (KeyError, TypeError):
            raise AppProtocolError(f"lifespan message without a 'type': {message!r}") from None
        new_state = _TRANSITIONS.get((self.state, kind))
        if new_state is None:
            raise AppProtocolError(f"Unexpected {kind!r} in lifespan state {self.state.value!r}")
        self.state = new_state
        if kind.endswith(".failed"):
            self.message = str(message.get("message", ""))
        return new_state
