"""The access log of a real server: one line per request, in order, none lost at shutdown."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import recv_response, run_server


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def access_records() -> Iterator[Collect]:
    logger = logging.getLogger("pronghorn.access")
    saved = (logger.level, logger.handlers[:], logger.propagate)
    collect = Collect()
    logger.handlers[:] = [collect]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield collect
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]
    logger.propagate = saved[2]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    status = 404 if scope["path"] == "/missing" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_each_request_is_logged_in_order_soon_after_it_ends(
    access_records: Collect, loop: str
) -> None:
    with run_server(app, loop=loop, access_log=True) as running:
        sock = running.connect()
        port = sock.getsockname()[1]
        started = time.time()
        for path in (b"/a", b"/missing", b"/b?x=1"):
            sock.sendall(b"GET " + path + b" HTTP/1.1\r\nhost: x\r\n\r\n")
            assert recv_response(sock).startswith(b"HTTP/1.1 ")
        # Lines reach logging one loop turn after their request: no shutdown needed.
        deadline = time.monotonic() + 5
        while len(access_records.records) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        records = list(access_records.records)
    assert [r.args[2] for r in records] == ["/a", "/missing", "/b?x=1"]  # type: ignore[index]
    assert [r.args[4] for r in records] == [200, 404, 200]  # type: ignore[index]
    assert all(r.args[5] == 5 for r in records)  # type: ignore[index]
    assert all(started - 1 <= r.created <= time.time() for r in records)
    assert records[0].getMessage().startswith(f'127.0.0.1:{port} - "GET /a HTTP/1.1" 200 5 ')


def test_the_last_lines_are_logged_when_the_server_stops(access_records: Collect) -> None:
    with run_server(app, access_log=True) as running:
        socks = [running.connect() for _ in range(5)]
        for sock in socks:
            sock.sendall(b"GET /last HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        for sock in socks:
            assert recv_response(sock).startswith(b"HTTP/1.1 200 ")
    assert len(access_records.records) == 5
