"""The coroutine every request's and WebSocket's task runs: it awaits the app.

A task cancelled while its app waits (``asyncio.timeout``, anyio's cancel scopes, the
shutdown deadline) throws the CancelledError into this coroutine, which passes it on to the
app. Interpreted code passes it in throw()'s one-argument form; mypyc-compiled code in the
three-argument form, which CPython 3.12 deprecates (mypyc issue 1214): compiled, this await
would need a ``server/awaits.Delegate`` on 3.12+. So the build compiles this module on 3.11
only (``compiled.MODULES``); on 3.12+ it runs interpreted, which costs less than the
Delegate did (callgrind, micro connection layer, 3.12: 51.6k -> 46.9k instructions per hello
request). Everything around the await is compiled on every version: the runner builds the
scope in ``begin()`` and settles the outcome in ``end()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pronghorn.server.http import HTTPExchange
    from pronghorn.server.state import ASGIApp
    from pronghorn.server.websocket import WebSocketExchange


async def run_app(app: ASGIApp, runner: HTTPExchange | WebSocketExchange) -> None:
    try:
        await app(runner.begin(), runner.receive, runner.send)
    except BaseException as error:
        if runner.end(error):
            raise
    else:
        runner.end(None)
