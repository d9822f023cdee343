"""Micro benchmarks of the fast path: microseconds of CPU per request in each layer, no sockets.

    python -m benchmarks.micro            # all layers
    python -m benchmarks.micro --quick    # fewer iterations

Layers, each including the ones below it (the difference is the layer's own cost):
  h1 core      HTTP1Connection: feed a request's bytes, take its events, send Response + Body,
               take data_to_send()
  ASGI bridge  + the scope (asgi/scope.py) and HTTPCycle (asgi/http.py): receive() message,
               the app's two send() messages validated and turned into events
  connection   ConnectionProtocol.data_received to transport.write, with a fake transport, the
               hello app and a real event loop (uvloop), 64 connections per loop turn so the
               end-of-iteration write batching works as it does under load
  ws echo      on its own: one echoed 13-byte text message, data_received of the frame to the
               echo's write (tunnel core, codec, cycle, the echo app's task), 16 connections

Each figure is the median of several timed batches; the spread (min-max) is shown beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.apps.hello import app as hello_app

#: The request wrk sends (benchmarks/run.py's hello workload).
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
START = {"type": "http.response.start", "status": 200, "headers": HEADERS}
BODY = {"type": "http.response.body", "body": b"Hello, world!"}
EXPECTED_TAIL = b"\r\n\r\nHello, world!"


def _timed(batch: Callable[[int], None], iterations: int, repeats: int) -> list[float]:
    """µs per iteration for each of ``repeats`` batches (after one untimed warm-up batch)."""
    batch(max(iterations // 10, 100))
    results = []
    for _ in range(repeats):
        start = time.perf_counter()
        batch(iterations)
        results.append((time.perf_counter() - start) / iterations * 1e6)
    return results


def h1_core(iterations: int) -> None:
    from pronghorn.protocols.events import Body, RequestReceived, Response
    from pronghorn.protocols.http1 import HTTP1Connection

    core = HTTP1Connection()
    for _ in range(iterations):
        core.receive_data(REQUEST)
        events = core.next_events()
        request = events[0]
        assert type(request) is RequestReceived
        core.start_request(request)
        core.send(Response(1, 200, HEADERS))
        core.send(Body(1, b"Hello, world!", True))
        out = core.data_to_send()
    assert out.endswith(EXPECTED_TAIL), out


def asgi_bridge(iterations: int) -> None:
    from pronghorn.asgi.http import HTTPCycle
    from pronghorn.asgi.scope import ConnectionInfo, http_scope
    from pronghorn.protocols.events import RequestReceived
    from pronghorn.protocols.http1 import HTTP1Connection

    core = HTTP1Connection()
    conn = ConnectionInfo(("127.0.0.1", 50000), ("127.0.0.1", 8000))
    for _ in range(iterations):
        core.receive_data(REQUEST)
        events = core.next_events()
        request = events[0]
        assert type(request) is RequestReceived
        core.start_request(request)
        http_scope(request, conn, None)
        cycle = HTTPCycle(1, core.send, has_body=request.has_body)
        for event in events[1:]:
            if type(event).__name__ == "RequestEnded":
                cycle.request_ended()
        cycle.next_message()
        cycle.send(START)
        cycle.send(BODY)
        out = core.data_to_send()
    assert out.endswith(EXPECTED_TAIL), out


class FakeTransport:
    """Just enough of a transport for ConnectionProtocol: counts what is written."""

    __slots__ = ("closed", "last", "writes")

    def __init__(self) -> None:
        self.writes = 0
        self.last = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.last = data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


CONNECTIONS = 64


def _run_on_a_loop(
    drive: Callable[[asyncio.AbstractEventLoop, int], Coroutine[Any, Any, None]], iterations: int
) -> None:
    """Run ``drive(loop, iterations)`` on a fresh uvloop loop (asyncio's without uvloop)."""
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(drive(loop, iterations))
    finally:
        loop.close()


def _connections(
    loop: asyncio.AbstractEventLoop, app: Any, count: int, transport_type: type[FakeTransport]
) -> tuple[Any, list[tuple[Any, Any]]]:
    """A server state for ``app`` and ``count`` connections made on fake transports."""
    from pronghorn.config import Config
    from pronghorn.server.protocol import ConnectionProtocol
    from pronghorn.server.state import ServerState

    state = ServerState(Config(), app, loop)
    pairs = []
    for _ in range(count):
        protocol = ConnectionProtocol(state)
        transport = transport_type()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        pairs.append((protocol, transport))
    return state, pairs


async def _turn_until(done: Callable[[], bool], failure: str, turns: int = 20) -> None:
    """Let the loop turn until ``done()``; RuntimeError(failure) if it takes over ``turns``."""
    for _spin in range(turns):
        await asyncio.sleep(0)
        if done():
            return
    raise RuntimeError(f"{failure} within {turns} loop turns")


def connection(iterations: int) -> None:
    _run_on_a_loop(_drive_connections, iterations)


async def _drive_connections(loop: asyncio.AbstractEventLoop, iterations: int) -> None:
    _state, pairs = _connections(loop, hello_app, CONNECTIONS, FakeTransport)
    rounds = max(iterations // CONNECTIONS, 1)

    def feed() -> None:
        for protocol, _transport in pairs:
            protocol.data_received(REQUEST)

    for _ in range(rounds):
        # From a loop callback, as a socket's bytes arrive: no task is current then.
        loop.call_soon(feed)
        # The app may finish inside data_received (eager start) or in the next turns; the
        # batched flush runs at the end of a turn. Turn until every connection has written.
        target = pairs[-1][1].writes + 1
        await _turn_until(
            lambda target=target: all(transport.writes >= target for _p, transport in pairs),
            "responses were not written",
        )
    for protocol, transport in pairs:
        assert transport.last.endswith(EXPECTED_TAIL), transport.last
        protocol.connection_lost(None)


def _connection_batch(iterations: int) -> None:
    connection(iterations)


#: The WebSocket upgrade the echo layer opens each connection with.
WS_HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)
WS_PAYLOAD = b"Hello, world!"
#: A masked TEXT frame (the all-zero key, as benchmarks/wsload.py sends) and its echo.
WS_FRAME = bytes((0x81, 0x80 | len(WS_PAYLOAD))) + bytes(4) + WS_PAYLOAD
WS_ECHO = bytes((0x81, len(WS_PAYLOAD))) + WS_PAYLOAD
WS_CONNECTIONS = 16


class _EchoTransport(FakeTransport):
    """Also counts the echoes written (the frames may leave joined or as parts)."""

    __slots__ = ("echoes",)

    def __init__(self) -> None:
        super().__init__()
        self.echoes = 0

    def write(self, data: bytes) -> None:
        super().write(data)
        self.echoes += bytes(data).count(WS_ECHO)

    def writelines(self, parts: list[bytes]) -> None:
        self.write(b"".join(parts))


def websocket_echo(iterations: int) -> None:
    """Echoed 13-byte text messages: ConnectionProtocol.data_received of a frame to the
    echo's write, through the tunnel core, the codec, the cycle and the app's task."""
    _run_on_a_loop(_drive_websockets, iterations)


async def _drive_websockets(loop: asyncio.AbstractEventLoop, iterations: int) -> None:
    from benchmarks.apps.ws_echo import app as echo_app

    state, pairs = _connections(loop, echo_app, WS_CONNECTIONS, _EchoTransport)
    for protocol, _transport in pairs:
        protocol.data_received(WS_HANDSHAKE)
    await _turn_until(
        lambda: all(transport.last.startswith(b"HTTP/1.1 101 ") for _p, transport in pairs),
        "the WebSocket handshakes were not answered",
    )

    def feed() -> None:
        for protocol, _transport in pairs:
            protocol.data_received(WS_FRAME)

    try:
        for sent in range(1, max(iterations // WS_CONNECTIONS, 1) + 1):
            loop.call_soon(feed)
            await _turn_until(
                lambda sent=sent: all(transport.echoes >= sent for _p, transport in pairs),
                "messages were not echoed",
            )
    finally:
        for protocol, _transport in pairs:
            protocol.connection_lost(None)
        # The apps hear the disconnect and return: let their tasks end before the loop does.
        for _spin in range(20):
            if not state.exchanges:
                break
            await asyncio.sleep(0)


LAYERS: tuple[tuple[str, Callable[[int], None]], ...] = (
    ("h1 core", h1_core),
    ("ASGI bridge", asgi_bridge),
    ("connection", _connection_batch),
    # Its own path, not a layer above the ones before: its "own cost" is its whole cost.
    ("ws echo", websocket_echo),
)
#: Layers whose figure is not a layer above the previous one's.
STANDALONE = frozenset(("ws echo",))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="µs per request in each layer of the fast path")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (noisier)")
    args = parser.parse_args(argv)
    iterations, repeats = (20_000, 5) if args.quick else (100_000, 7)
    print(
        f"{'layer':<13} {'us/request':>10}  {'own cost':>8}  spread (min-max), median of {repeats}"
    )
    below: float | None = None
    for name, layer in LAYERS:
        if name in STANDALONE:
            below = None
        try:
            figures = _timed(layer, iterations, repeats)
        except Exception as exc:  # a layer not written yet, or broken: say so, go on
            print(f"{name:<13} {'skipped':>10}  {type(exc).__name__}: {str(exc)[:70]}")
            below = None
            continue
        median = statistics.median(figures)
        own = f"{median - below:8.2f}" if below is not None else f"{median:8.2f}"
        print(
            f"{name:<13} {median:10.2f}  {own}  ({min(figures):.2f}-{max(figures):.2f})",
            flush=True,
        )
        below = median
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
