"""The workloads: what each one serves, how it is loaded, and how its answers are checked."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from benchmarks import check
from benchmarks.servers import DEMO_APP, Launch

Kind = Literal["wrk", "ws", "memory", "startup", "external"]
#: An external measurement: (port, duration s, client core) -> rate, or a mapping with "rate"
#: and optionally "p99_ms" and "errors".
External = Callable[[int, int, int | None], float | Mapping[str, Any]]

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    title: str
    kind: Kind
    launch: Launch
    check: Callable[[int], None]
    #: One sentence for the README and the docs: what the figure measures.
    measures: str
    unit: str = "req/s"
    higher_is_better: bool = True
    connections: int = 64
    script: str | None = None
    script_args: tuple[str, ...] = ()
    ws_size: int = 0
    ws_binary: bool = False
    #: Only these servers (None: every server); the others are shown as not applicable.
    servers: tuple[str, ...] | None = None
    #: Show p99 latency next to throughput.
    show_p99: bool = False
    #: For kind "external": the function that loads the server and returns its rate.
    external: External | None = None


def _hello_checks(port: int) -> None:
    check.hello(port)
    check.hello_twice_keep_alive(port)


HELLO = Launch("benchmarks.apps.hello:app", "hello", floor=True)

WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "hello",
        "hello, 64 connections",
        "wrk",
        HELLO,
        _hello_checks,
        "Requests/s for a 13-byte plain ASGI response over 64 keep-alive connections.",
    ),
    Workload(
        "hello-1k",
        "hello, 1000 connections",
        "wrk",
        HELLO,
        _hello_checks,
        "The same with 1000 connections: throughput and p99 latency under many sockets.",
        connections=1000,
        show_p99=True,
    ),
    Workload(
        "pipelined",
        "hello, pipelined x16",
        "wrk",
        HELLO,
        check.pipelined,
        "16 requests per write on 64 connections (wrk Lua script): per-request parsing cost.",
        script="pipeline.lua",
        script_args=("16",),
    ),
    Workload(
        "body-64k",
        "64 KiB body",
        "wrk",
        Launch("benchmarks.apps.body64k:app", "body64k"),
        check.body_of(64 * 1024, b"x"),
        "A 64 KiB response sent in one ASGI message: write path and buffer handling.",
    ),
    Workload(
        "stream-1m",
        "1 MiB streamed (16 KiB chunks)",
        "wrk",
        Launch("benchmarks.apps.stream:app", "stream"),
        check.body_of(MIB, b"y"),
        "1 MiB in 64 `more_body` messages of 16 KiB, chunked: per-send cost and flow control.",
    ),
    Workload(
        "post-1m",
        "1 MiB POST, read fully",
        "wrk",
        Launch("benchmarks.apps.upload:app", "upload"),
        check.upload,
        "The app reads a 1 MiB request body to the end and answers its length.",
        script="post.lua",
        script_args=(str(MIB),),
    ),
    Workload(
        "starlette",
        "Starlette hello",
        "wrk",
        Launch("benchmarks.apps.starlette_hello:app", None, floor=True),
        _hello_checks,
        "A one-route Starlette app returning a PlainTextResponse.",
    ),
    Workload(
        "fastapi",
        "FastAPI hello",
        "wrk",
        Launch("benchmarks.apps.fastapi_hello:app", None, floor=True),
        _hello_checks,
        "A one-route FastAPI app returning a PlainTextResponse.",
    ),
    Workload(
        "ws-text",
        "WebSocket echo, 13 B text",
        "ws",
        Launch("benchmarks.apps.ws_echo:app", "ws"),
        functools.partial(check.websocket, size=13, binary=False),
        "Echoed messages/s, one 13-byte text message in flight per connection, 64 connections.",
        unit="msg/s",
        ws_size=13,
    ),
    Workload(
        "ws-1m",
        "WebSocket echo, 1 MiB binary",
        "ws",
        Launch("benchmarks.apps.ws_echo:app", "ws"),
        functools.partial(check.websocket, size=MIB, binary=True),
        "Echoed 1 MiB binary messages/s on 64 connections: unmasking and framing large data.",
        unit="msg/s",
        ws_size=MIB,
        ws_binary=True,
    ),
    Workload(
        "access-log",
        "hello, access log ON",
        "wrk",
        Launch("benchmarks.apps.hello:app", None, access_log=True),
        _hello_checks,
        "hello with the access log written (to a file, log level info), against uvicorn's.",
        servers=("pronghorn", "pronghorn-pure", "uvicorn"),
    ),
    Workload(
        "memory",
        "idle memory per keep-alive connection",
        "memory",
        HELLO,
        _hello_checks,
        "Server RSS growth per open keep-alive connection (2000 connections, one request each).",
        unit="KiB/conn",
        higher_is_better=False,
        connections=2000,
    ),
    Workload(
        "startup",
        "startup to first served request",
        "startup",
        Launch(DEMO_APP, "hello"),
        lambda port: None,  # the measurement itself waits for a 200
        "Milliseconds from process start to the first 200 response, serving the demo app.",
        unit="ms",
        higher_is_better=False,
    ),
)


def _optional() -> tuple[Workload, ...]:
    """HTTP/2 hello, when benchmarks/h2_hello.py (owned by the HTTP/2 work) offers ``measure``.

    Contract: ``measure(port, duration, core)`` loads ``benchmarks.apps.hello:app`` served on
    ``port`` over cleartext HTTP/2 (h2load, prior knowledge) for ``duration`` seconds from
    ``core`` and returns requests/s (or a mapping with "rate", "p99_ms", "errors"); an
    optional ``check(port)`` raises if the server does not answer correctly over HTTP/2.
    """
    if not (Path(__file__).with_name("h2_hello.py")).exists():
        return ()
    try:
        module = importlib.import_module("benchmarks.h2_hello")
    except Exception:
        return ()
    measure = getattr(module, "measure", None)
    if not callable(measure):
        return ()
    return (
        Workload(
            "h2-hello",
            "HTTP/2 hello (h2load)",
            "external",
            HELLO,
            getattr(module, "check", lambda port: None),
            "Cleartext HTTP/2 (prior knowledge) hello via h2load; from benchmarks/h2_hello.py.",
            # uvicorn and daphne speak no cleartext HTTP/2; rawref answers HTTP/1.1 only.
            servers=("pronghorn", "pronghorn-pure", "hypercorn", "granian"),
            external=measure,
        ),
    )


WORKLOADS = WORKLOADS[:8] + _optional() + WORKLOADS[8:]
BY_NAME = {workload.name: workload for workload in WORKLOADS}
