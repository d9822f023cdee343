"""Lifespan over a real loop: modes, failures, timeouts and state."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from pronghorn.config import Config
from pronghorn.server.lifespan import LifespanRunner
from pronghorn.server.server import EXIT_STARTUP_FAILED, Server


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


def lifespan_app(
    *, fail_startup: bool = False, fail_shutdown: bool = False, events: list[str] | None = None
) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        assert scope["asgi"]["version"] == "3.0"
        message = await receive()
        assert message["type"] == "lifespan.startup"
        scope["state"]["ready"] = True
        if events is not None:
            events.append("startup")
        if fail_startup:
            await send({"type": "lifespan.startup.failed", "message": "no database"})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        if events is not None:
            events.append("shutdown")
        if fail_shutdown:
            await send({"type": "lifespan.shutdown.failed", "message": "flush failed"})
        else:
            await send({"type": "lifespan.shutdown.complete"})

    return app


def test_startup_and_shutdown_complete() -> None:
    events: list[str] = []

    async def main() -> dict[str, Any]:
        runner = LifespanRunner(lifespan_app(events=events), Config(lifespan="on"))
        assert await runner.startup()
        await runner.shutdown()
        return runner.state

    assert run(main()) == {"ready": True}
    assert events == ["startup", "shutdown"]


def test_startup_failed(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> bool:
        return await LifespanRunner(lifespan_app(fail_startup=True), Config()).startup()

    with caplog.at_level(logging.ERROR, "pronghorn.error"):
        assert run(main()) is False
    assert "no database" in caplog.text


def test_shutdown_failed_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        runner = LifespanRunner(lifespan_app(fail_shutdown=True), Config())
        assert await runner.startup()
        await runner.shutdown()

    with caplog.at_level(logging.ERROR, "pronghorn.error"):
        run(main())
    assert "flush failed" in caplog.text


async def no_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        raise ValueError("Django can only handle ASGI/HTTP connections, not lifespan.")


def test_auto_mode_serves_apps_without_lifespan_quietly(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> tuple[bool, bool]:
        runner = LifespanRunner(no_lifespan, Config(lifespan="auto"))
        ok = await runner.startup()
        await runner.shutdown()
        return ok, runner.supported

    with caplog.at_level(logging.INFO, "pronghorn.error"):
        assert run(main()) == (True, False)
    assert "ERROR" not in caplog.text


def test_on_mode_fails_for_apps_without_lifespan() -> None:
    async def main() -> bool:
        return await LifespanRunner(no_lifespan, Config(lifespan="on")).startup()

    assert run(main()) is False


def test_off_mode_never_calls_the_app() -> None:
    calls: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope["type"])

    async def main() -> bool:
        runner = LifespanRunner(app, Config(lifespan="off"))
        ok = await runner.startup()
        await runner.shutdown()
        return ok

    assert run(main()) is True
    assert calls == []


def test_startup_timeout(caplog: pytest.LogCaptureFixture) -> None:
    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await asyncio.sleep(30)

    async def main() -> bool:
        runner = LifespanRunner(slow, Config(timeout_lifespan_startup=0.2))
        ok = await runner.startup()
        await runner.shutdown()
        return ok

    with caplog.at_level(logging.ERROR, "pronghorn.error"):
        assert run(main()) is False
    assert "timed out" in caplog.text


def test_shutdown_timeout_does_not_hang() -> None:
    async def stuck(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await asyncio.sleep(30)

    async def main() -> None:
        runner = LifespanRunner(stuck, Config(timeout_lifespan_shutdown=0.2))
        assert await runner.startup()
        await runner.shutdown()

    run(main())


def test_app_returning_during_startup_in_on_mode_fails() -> None:
    async def quits(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()

    async def main() -> bool:
        return await LifespanRunner(quits, Config(lifespan="on")).startup()

    assert run(main()) is False


def test_server_exits_with_status_3_when_startup_fails() -> None:
    server = Server(Config(port=0, lifespan="on"), lifespan_app(fail_startup=True))
    assert server.run() == EXIT_STARTUP_FAILED
    assert not server.started
