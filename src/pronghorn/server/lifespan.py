"""Runs the app's lifespan protocol with timeouts (the message rules are asgi/lifespan.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from pronghorn.asgi.lifespan import LifespanCycle, LifespanState
from pronghorn.asgi.scope import lifespan_scope
from pronghorn.config import Config
from pronghorn.server.state import ASGIApp

logger = logging.getLogger("pronghorn.error")

Message = dict[str, Any]


class LifespanRunner:
    """``startup()`` returns False when the server must not serve (and exit with status 3)."""

    def __init__(self, app: ASGIApp, config: Config) -> None:
        self.app = app
        self.config = config
        self.mode = config.lifespan
        self.state: dict[str, Any] = {}
        self.cycle = LifespanCycle()
        self.supported = True
        self._task: asyncio.Task[None] | None = None
        #: Set when the app sent a message or ended; the server waits on it.
        self._changed: asyncio.Event | None = None
        #: Set when the server asked for shutdown; the app's receive() waits on it.
        self._requested: asyncio.Event | None = None
        self._app_error: BaseException | None = None

    async def startup(self) -> bool:
        if self.mode == "off":
            self.supported = False
            return True
        self._changed = asyncio.Event()
        self._requested = asyncio.Event()
        self.cycle.request_startup()
        self._task = asyncio.get_running_loop().create_task(self._main())
        ok = await self._wait_for(
            (LifespanState.STARTED, LifespanState.STARTUP_FAILED),
            self.config.timeout_lifespan_startup,
            "startup",
        )
        if not self.supported:
            return self.mode == "auto"
        if not ok:
            return False
        if self.cycle.state is LifespanState.STARTUP_FAILED:
            logger.error("Application startup failed: %s", self.cycle.message or "(no message)")
            return False
        logger.info("Application startup complete.")
        return True

    async def shutdown(self) -> None:
        if not self.supported or self._task is None or self._task.done():
            return
        if self.cycle.state is not LifespanState.STARTED:
            # Startup failed or timed out: there is nothing to shut down gracefully.
            await self._cancel()
            return
        self.cycle.request_shutdown()
        assert self._requested is not None
        self._requested.set()
        ok = await self._wait_for(
            (LifespanState.STOPPED, LifespanState.SHUTDOWN_FAILED),
            self.config.timeout_lifespan_shutdown,
            "shutdown",
        )
        state: LifespanState = self.cycle.state  # changed by the app while we waited
        if ok and state is LifespanState.SHUTDOWN_FAILED:
            logger.error("Application shutdown failed: %s", self.cycle.message or "(no message)")
        elif ok:
            logger.info("Application shutdown complete.")
        await self._cancel()

    async def _cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _wait_for(self, states: tuple[LifespanState, ...], limit: float, phase: str) -> bool:
        assert self._task is not None
        assert self._changed is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while self.cycle.state not in states:
            if self._task.done():
                if self._app_error is not None or self.cycle.state is not LifespanState.STOPPED:
                    self._on_app_exit(phase)
                return self.supported and self.cycle.state in states
            remaining = deadline - loop.time()
            if remaining <= 0:
                logger.error("Application %s timed out after %.1f s", phase, limit)
                return False
            self._changed.clear()
            waiter = loop.create_task(self._changed.wait())
            done, _ = await asyncio.wait(
                {waiter, self._task}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if waiter not in done:
                waiter.cancel()
        return True

    def _on_app_exit(self, phase: str) -> None:
        error = self._app_error
        if (
            phase == "startup"
            and self.mode == "auto"
            and self.cycle.state is LifespanState.STARTING
        ):
            # The app does not speak lifespan (Django, most WSGI adapters): serve without it.
            self.supported = False
            logger.debug("ASGI 'lifespan' protocol appears unsupported (%r).", error)
            return
        if error is not None:
            logger.error("Exception in 'lifespan' protocol", exc_info=error)
        elif phase == "startup":
            logger.error("Application returned during lifespan startup without completing it")

    async def _main(self) -> None:
        scope = lifespan_scope(self.state)
        try:
            await self.app(scope, self._receive, self._send)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the app's failure is reported by the waiter
            self._app_error = exc
        finally:
            assert self._changed is not None
            self._changed.set()

    async def _receive(self) -> Message:
        assert self._requested is not None
        while True:
            message = self.cycle.next_message()
            if message is not None:
                return message
            self._requested.clear()
            await self._requested.wait()

    async def _send(self, message: Mapping[str, Any]) -> None:
        self.cycle.send(dict(message))
        assert self._changed is not None
        self._changed.set()
