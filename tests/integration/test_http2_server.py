"""HTTP/2 end to end on cleartext: prior knowledge (httpx, curl, h2load), h2c upgrade (curl),
flow control, push, trailers, early hints, extended CONNECT, abuse limits and shutdown.

Every wait is bounded: socket deadlines, ``asyncio.wait_for``, subprocess timeouts.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from typing import Any

import h2.events
import h2.settings
import httpx
import pytest
from h2.errors import ErrorCodes

from pronghorn.errors import ClientDisconnected
from tests.integration.h2_servers import H2Client, echo_body, hello, run, serve

S = h2.settings.SettingCodes
CURL = shutil.which("curl")
H2LOAD = shutil.which("h2load")


def curl_has_http2() -> bool:
    if CURL is None:
        return False
    out = subprocess.run([CURL, "-V"], capture_output=True, text=True, timeout=10).stdout
    return "HTTP2" in out


needs_curl = pytest.mark.skipif(not curl_has_http2(), reason="curl with HTTP/2 not installed")


# --------------------------------------------------------------------------- clients
def test_httpx_prior_knowledge_concurrent_streams() -> None:
    with serve(hello) as server:

        async def go() -> list[httpx.Response]:
            async with httpx.AsyncClient(http1=False, http2=True) as client:
                return await asyncio.gather(
                    *(client.get(f"{server.url}/s/{i}?n={i}") for i in range(50))
                )

        responses = run(go())
        assert {r.http_version for r in responses} == {"HTTP/2"}
        assert sorted(r.text for r in responses) == sorted(
            f"2 http GET /s/{i} n={i}" for i in range(50)
        )
        assert all(r.headers["server"] == "pronghorn" for r in responses)


def test_http1_still_served_next_to_http2() -> None:
    with serve(hello) as server:
        response = httpx.get(server.url + "/one", timeout=5)
        assert response.http_version == "HTTP/1.1"
        assert response.text == "1.1 http GET /one "


def test_no_http2_flag_serves_only_http1() -> None:
    with serve(hello, http2=False) as server, H2Client(server.port) as client:
        client.read_until(lambda events: False, timeout=1)
        assert client.closed or not client.of(h2.events.RemoteSettingsChanged)


def test_large_bodies_both_ways() -> None:
    with serve(echo_body, http2_initial_window_size=65535) as server:

        async def go() -> httpx.Response:
            async with httpx.AsyncClient(http1=False, http2=True, timeout=10) as client:
                return await client.post(server.url, content=b"0123456789" * 300_000)

        response = run(go())
        assert response.content == b"0123456789" * 300_000


def test_inbound_window_waits_for_the_app() -> None:
    """DATA is acknowledged only as the app's receive() takes it."""
    release = asyncio.Event()
    loop_box: list[asyncio.AbstractEventLoop] = []

    async def slow_reader(scope: dict[str, Any], receive: Any, send: Any) -> None:
        loop_box.append(asyncio.get_running_loop())
        await release.wait()
        await echo_body(scope, receive, send)

    with (
        serve(slow_reader, http2_initial_window_size=65535) as server,
        H2Client(server.port) as client,
    ):
        stream_id = client.request("/", "POST", end=False)
        sent = 0
        for _ in range(20):
            window = client.conn.local_flow_control_window(stream_id)
            if window == 0:
                break
            chunk = min(window, 16384)
            client.conn.send_data(stream_id, b"x" * chunk)
            client.flush()
            sent += chunk
            client.read_until(lambda events: False, timeout=0.05)
        client.read_until(lambda events: False, timeout=0.3)
        assert sent == 65535
        assert client.conn.local_flow_control_window(stream_id) == 0  # nothing acknowledged
        server.loop.call_soon_threadsafe(release.set)
        client.read_until(lambda events: bool(client.of(h2.events.WindowUpdated, stream_id)))
        client.conn.end_stream(stream_id)
        client.flush()
        client.read_until(client.ended(stream_id))
        assert client.body(stream_id) == b"x" * 65535


def test_outbound_respects_a_small_client_window() -> None:
    async def big(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(10):
            await send({"type": "http.response.body", "body": b"y" * 10000, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    with (
        serve(big) as server,
        H2Client(server.port, settings={S.INITIAL_WINDOW_SIZE: 5000}) as client,
    ):
        stream_id = client.request("/")
        acknowledged = 0
        for _ in range(300):
            client.read_until(lambda events: False, timeout=0.02)
            received = len(client.body(stream_id))
            # Never more than the window we granted: 5000 plus what we acknowledged.
            assert received <= 5000 + acknowledged
            if client.ended(stream_id)(client.events):
                break
            if received > acknowledged:
                client.conn.acknowledge_received_data(received - acknowledged, stream_id)
                acknowledged = received
                client.flush()
        assert client.body(stream_id) == b"y" * 100000


def test_zero_window_stall_resets_the_stream() -> None:
    outcome: list[str] = []

    async def writer(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await send({"type": "http.response.body", "body": b"z" * 1000, "more_body": True})
            await send({"type": "http.response.body", "body": b"z" * 1000, "more_body": True})
        except ClientDisconnected:
            outcome.append("disconnected")
            raise

    with (
        serve(writer, timeout_send=0.5) as server,
        H2Client(server.port, settings={S.INITIAL_WINDOW_SIZE: 0}) as client,
    ):
        stream_id = client.request("/")
        client.read_until(client.ended(stream_id), timeout=5)
        (reset,) = client.of(h2.events.StreamReset, stream_id)
        assert reset.error_code == ErrorCodes.CANCEL
    assert outcome == ["disconnected"]


def test_final_chunk_waiting_for_window_outlives_the_keep_alive_timer() -> None:
    async def one_shot(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"q" * 60000})

    with (
        serve(one_shot, timeout_keep_alive=0.3) as server,
        H2Client(server.port, settings={S.INITIAL_WINDOW_SIZE: 10000}) as client,
    ):
        stream_id = client.request("/")
        acknowledged = 0
        for _ in range(40):  # a slow reader: 10 000 bytes every 0.1 s
            client.read_until(lambda events: False, timeout=0.1)
            received = len(client.body(stream_id))
            if client.ended(stream_id)(client.events):
                break
            if received > acknowledged:
                client.conn.acknowledge_received_data(received - acknowledged, stream_id)
                acknowledged = received
                client.flush()
        assert client.body(stream_id) == b"q" * 60000
        assert client.of(h2.events.StreamEnded, stream_id)


def test_final_chunk_in_a_window_that_never_opens_is_reset() -> None:
    async def one_shot(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"q" * 1000})

    with (
        serve(one_shot, timeout_send=0.3) as server,
        H2Client(server.port, settings={S.INITIAL_WINDOW_SIZE: 0}) as client,
    ):
        first = client.request("/")
        client.read_until(client.ended(first))
        assert client.of(h2.events.StreamReset, first)[0].error_code == ErrorCodes.CANCEL
        # The connection itself is fine: with a window, the next request is answered.
        client.conn.update_settings({S.INITIAL_WINDOW_SIZE: 65535})
        second = client.request("/")
        client.read_until(client.ended(second))
        assert client.body(second) == b"q" * 1000


class _CountingTransport:
    """The connection's real transport, with each write's size noted on the way through."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.writes: list[int] = []

    def write(self, data: bytes) -> None:
        self.writes.append(len(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def test_streams_answered_in_one_loop_turn_share_one_write() -> None:
    """Ten streams whose apps finish in the same loop turn leave in one write, not ten
    (each write to a loopback peer costs a send and a wakeup of its own)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.sleep(0)  # answer on a later loop turn, outside data_received
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with serve(app) as running, H2Client(running.port) as client:
        first = client.request()
        client.read_until(client.ended(first))  # SETTINGS and their ACKs are done with
        (connection,) = running.connections()
        counting = _CountingTransport(connection.transport)

        async def count_writes() -> None:
            connection.transport = counting

        asyncio.run_coroutine_threadsafe(count_writes(), running.loop).result(timeout=5)
        # Queued, then sent in one write: every request arrives in one data_received.
        stream_ids = [client.request(flush=False) for _ in range(10)]
        client.flush()
        client.read_until(lambda events: all(client.ended(s)(events) for s in stream_ids))
        assert [client.body(s) for s in stream_ids] == [b"ok"] * 10
        assert len(counting.writes) == 1, counting.writes


# --------------------------------------------------------------------------- ASGI extensions
def test_trailers_early_hints_and_push() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/style.css":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"body{}"})
            return
        assert "http.response.push" in scope["extensions"]
        await send({"type": "http.response.early_hint", "links": [b"</style.css>; rel=preload"]})
        await send({"type": "http.response.push", "path": "/style.css", "headers": []})
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        await send({"type": "http.response.body", "body": b"<html>"})
        await send({"type": "http.response.trailers", "headers": [(b"x-digest", b"abc")]})

    with serve(app) as server, H2Client(server.port) as client:
        stream_id = client.request("/")
        client.read_until(client.ended(stream_id))
        (promise,) = client.of(h2.events.PushedStreamReceived)
        client.read_until(client.ended(promise.pushed_stream_id))
        hints = client.of(h2.events.InformationalResponseReceived, stream_id)
        assert dict(hints[0].headers)[b":status"] == b"103"
        assert client.body(stream_id) == b"<html>"
        (trailers,) = client.of(h2.events.TrailersReceived, stream_id)
        assert list(trailers.headers) == [(b"x-digest", b"abc")]
        assert client.body(promise.pushed_stream_id) == b"body{}"


def test_pathsend_over_http2(tmp_path: Any) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(bytes(range(256)) * 2000)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(path)})

    with serve(app) as server:

        async def go() -> httpx.Response:
            async with httpx.AsyncClient(http1=False, http2=True, timeout=10) as client:
                return await client.get(server.url)

        assert run(go()).content == path.read_bytes()


def test_websocket_over_extended_connect() -> None:
    async def ws_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        assert scope["http_version"] == "2"
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": "echo:" + message["text"]})
        await send({"type": "websocket.close"})

    with serve(ws_echo) as server, H2Client(server.port) as client:
        client.read_until(lambda events: bool(client.of(h2.events.RemoteSettingsChanged)))
        stream_id = client.conn.get_next_available_stream_id()
        client.conn.send_headers(
            stream_id,
            [
                (b":method", b"CONNECT"),
                (b":protocol", b"websocket"),
                (b":scheme", b"http"),
                (b":path", b"/ws"),
                (b":authority", b"localhost"),
                (b"sec-websocket-version", b"13"),
            ],
        )
        client.flush()
        client.read_until(lambda events: bool(client.of(h2.events.ResponseReceived, stream_id)))
        (response,) = client.of(h2.events.ResponseReceived, stream_id)
        assert dict(response.headers)[b":status"] == b"200"
        # A masked text frame "hi".
        client.conn.send_data(
            stream_id, b"\x81\x82abcd" + bytes(a ^ b for a, b in zip(b"hi", b"ab", strict=True))
        )
        client.flush()
        client.read_until(lambda events: b"echo:hi" in client.body(stream_id))
        assert client.body(stream_id).startswith(b"\x81\x07echo:hi")


# --------------------------------------------------------------------------- abuse
def test_rapid_reset_gets_goaway() -> None:
    with serve(hello, http2_max_resets=50) as server, H2Client(server.port) as client:
        for _ in range(60):
            stream_id = client.request("/")
            client.conn.reset_stream(stream_id, ErrorCodes.CANCEL)
        client.flush()
        client.read_until(lambda events: bool(client.of(h2.events.ConnectionTerminated)))
        (goaway,) = client.of(h2.events.ConnectionTerminated)
        assert goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM
        client.read_until(lambda events: False, timeout=2)
        assert client.closed


def test_malformed_request_resets_only_its_stream() -> None:
    # RFC 9113 §8.1.1: a stream error; the other streams of the connection are answered.
    with serve(hello) as server, H2Client(server.port) as client:
        client.conn.config.validate_outbound_headers = False
        client.conn.config.normalize_outbound_headers = False
        before = client.request("/")
        bad = client.request("/", headers=[(b"Upper-Case", b"x")])
        after = client.request("/")
        client.read_until(
            lambda events: client.ended(before)(events) and client.ended(after)(events)
        )
        (reset,) = client.of(h2.events.StreamReset, bad)
        assert reset.error_code == ErrorCodes.PROTOCOL_ERROR
        assert client.body(before) == client.body(after) == b"2 http GET / "
        assert not client.of(h2.events.ConnectionTerminated)


def test_continuation_flood_gets_goaway() -> None:
    from hyperframe.frame import ContinuationFrame, HeadersFrame

    # Cap 16 KiB + slack: the second CONTINUATION passes it. Send no more than that, so the
    # server has read everything when it closes (unread input would make the close a RST).
    with (
        serve(hello, http2_max_header_list_size=16384) as server,
        H2Client(server.port) as client,
    ):
        flood = HeadersFrame(1, data=b"\x82").serialize()
        flood += ContinuationFrame(1, data=b"\x00" * 16000).serialize() * 2
        client.send_raw(flood)
        client.read_until(lambda events: bool(client.of(h2.events.ConnectionTerminated)))
        goaways = client.of(h2.events.ConnectionTerminated)
        assert goaways
        assert goaways[0].error_code == ErrorCodes.ENHANCE_YOUR_CALM


# --------------------------------------------------------------------------- shutdown
def test_graceful_shutdown_finishes_open_streams() -> None:
    started = asyncio.Event()

    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        started.set()
        await asyncio.sleep(0.5)
        await hello(scope, receive, send)

    with serve(slow, timeout_graceful_shutdown=5) as server, H2Client(server.port) as client:
        stream_id = client.request("/slow")
        for _ in range(100):
            if started.is_set():
                break
            client.read_until(lambda events: False, timeout=0.02)
        server.shutdown()
        client.read_until(client.ended(stream_id))
        goaway = client.of(h2.events.ConnectionTerminated)
        assert goaway
        assert goaway[0].error_code == ErrorCodes.NO_ERROR
        assert goaway[0].last_stream_id == stream_id
        assert client.body(stream_id) == b"2 http GET /slow "
        client.read_until(lambda events: False, timeout=3)
        assert client.closed


def test_idle_connection_gets_goaway_before_close() -> None:
    settings = {"timeout_keep_alive": 0.2, "timeout_request_header": 0.4}
    with serve(hello, **settings) as server, H2Client(server.port) as client:
        stream_id = client.request("/")
        client.read_until(client.ended(stream_id))
        client.read_until(lambda events: False, timeout=3)
        assert client.closed
        (goaway,) = client.of(h2.events.ConnectionTerminated)
        assert goaway.error_code == ErrorCodes.NO_ERROR
        assert goaway.last_stream_id == stream_id


def test_unanswered_keepalive_ping_closes_the_connection() -> None:
    import socket
    import time

    from hyperframe.frame import SettingsFrame

    from pronghorn.protocols.negotiate import PREFACE

    with (
        serve(hello, http2_ping_interval=0.2) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
    ):
        raw.sendall(PREFACE + SettingsFrame(0).serialize())  # then never answer a PING
        started = time.monotonic()
        received = b""
        for _ in range(100):
            chunk = raw.recv(65536)
            if not chunk:
                break
            received += chunk
        assert time.monotonic() - started < 4
        assert b"\x00\x00\x08\x06\x00" in received  # a PING frame went out first


# --------------------------------------------------------------------------- curl, h2load
@needs_curl
def test_curl_prior_knowledge_and_h2c_upgrade() -> None:
    assert CURL is not None
    with serve(hello) as server:
        prior = subprocess.run(
            [CURL, "-sS", "--max-time", "10", "--http2-prior-knowledge", "-i", server.url + "/p"],
            capture_output=True,
            timeout=20,
        )
        assert prior.stdout.startswith(b"HTTP/2 200"), prior
        assert prior.stdout.endswith(b"2 http GET /p ")
        upgrade = subprocess.run(
            [CURL, "-sS", "--max-time", "10", "--http2", "-i", server.url + "/u?x=1"],
            capture_output=True,
            timeout=20,
        )
        assert b"HTTP/1.1 101" in upgrade.stdout, upgrade
        assert b"HTTP/2 200" in upgrade.stdout
        assert upgrade.stdout.endswith(b"2 http GET /u x=1")


@needs_curl
def test_h2c_upgrade_with_a_body_stays_http1() -> None:
    assert CURL is not None
    with serve(echo_body) as server:
        result = subprocess.run(
            [CURL, "-sS", "--max-time", "10", "--http2", "-i", "--data-binary", "abc", server.url],
            capture_output=True,
            timeout=20,
        )
        assert result.stdout.startswith(b"HTTP/1.1 200"), result
        assert result.stdout.endswith(b"abc")


@pytest.mark.skipif(H2LOAD is None, reason="h2load (nghttp2-client) not installed")
def test_h2load_small_run() -> None:
    assert H2LOAD is not None
    with serve(hello) as server:
        result = subprocess.run(
            [H2LOAD, "-n", "2000", "-c", "4", "-m", "10", server.url + "/"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        match = re.search(
            r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded", result.stdout
        )
        assert match is not None, result.stdout
        assert match.group(3) == "2000", result.stdout
