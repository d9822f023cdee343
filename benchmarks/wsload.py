"""A WebSocket echo load client, faster than the servers it measures.

Each connection sends one message, waits for the identical echo, and sends the next (so
``connections`` messages are in flight). The frame to send is built once: its masking key is
four zero bytes, which RFC 6455 allows and which makes masking free for the client while every
server still runs its full unmasking path. Replies are checked byte for byte. It runs on
uvloop's buffered-protocol API: reads land in one preallocated buffer, parsed in place.

    python -m benchmarks.wsload --port 8000 --connections 64 --size 13 --duration 5

Prints one JSON object: messages, seconds, rate (messages/s), the client's own CPU share
(``client_cpu``: near 1.0 means the client, not the server, was the limit), the server's CPU
seconds per message when ``--server-pgid`` is given, and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import sys
import time
from typing import cast

from benchmarks.procstat import group_cpu_seconds
from benchmarks.readbuffer import InPlaceReader

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEY = base64.b64encode(b"pronghorn-bench!")
ACCEPT = base64.b64encode(hashlib.sha1(KEY + WS_GUID).digest())


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked frame with the all-zero masking key."""
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


class Counter:
    __slots__ = ("errors", "messages", "reasons")

    def __init__(self) -> None:
        self.messages = 0
        self.errors = 0
        self.reasons: list[str] = []

    def fail(self, reason: str) -> None:
        self.errors += 1
        if len(self.reasons) < 5:
            self.reasons.append(reason)


#: Free space offered to each socket read.
READ_SIZE = 65536


class EchoClient(InPlaceReader):
    """One connection: handshake, then ping-pong the same message until closed.

    Reads go straight into one preallocated buffer (``get_buffer``), parsed in place between
    ``_start`` and ``_end``: no bytes object per read, no copy per echo.
    """

    __slots__ = (
        "_counter",
        "_expected",
        "_frame",
        "_host",
        "_limit",
        "_opcode",
        "_open",
        "_parts",
        "_path",
        "_transport",
        "done",
        "ready",
    )

    def __init__(
        self, host: str, path: str, opcode: int, payload: bytes, counter: Counter, limit: int
    ) -> None:
        self._host = host
        self._path = path
        self._opcode = opcode
        self._expected = payload
        self._frame = client_frame(opcode, payload)
        self._counter = counter
        self._limit = limit  # stop after this many echoes (0: never)
        super().__init__(READ_SIZE, len(self._frame) + 2 * READ_SIZE)
        self._parts: list[bytes] = []
        self._open = False
        self._transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        #: Set once the handshake succeeded; the first message waits for ``start()``.
        self.ready: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self._transport.write(
            b"GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (self._path.encode(), self._host.encode(), KEY)
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_result(None)
        if not self.done.done():
            if self._limit == 0 and self._open:
                self.done.set_result(None)  # closed by us at the end of the run
            else:
                self._counter.fail(f"connection lost: {exc!r}")
                self.done.set_result(None)

    def start(self) -> None:
        if self._open and self._transport is not None:
            self._transport.write(self._frame)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, reason: str) -> None:
        self._counter.fail(reason)
        self._open = False
        for future in (self.ready, self.done):
            if not future.done():
                future.set_result(None)
        assert self._transport is not None
        self._transport.abort()

    def buffer_updated(self, nbytes: int) -> None:
        self._end += nbytes
        buffer = self._buffer
        start, end = self._start, self._end
        transport = self._transport
        assert transport is not None
        if not self._open:
            stop = buffer.find(b"\r\n\r\n", start, end)
            if stop < 0:
                return
            head = bytes(buffer[start:stop])
            self._start = start = stop + 4
            if not head.startswith(b"HTTP/1.1 101") or ACCEPT not in head:
                self._fail(f"bad handshake: {head[:80]!r}")
                return
            self._open = True
            self.ready.set_result(None)
        while end - start >= 2:
            first = buffer[start]
            size = buffer[start + 1] & 0x7F
            offset = start + 2
            if size == 126:
                if end - start < 4:
                    return
                size = int.from_bytes(buffer[start + 2 : start + 4], "big")
                offset = start + 4
            elif size == 127:
                if end - start < 10:
                    return
                size = int.from_bytes(buffer[start + 2 : start + 10], "big")
                offset = start + 10
            stop = offset + size
            if stop > end:
                return
            self._start = start = stop
            opcode = first & 0x0F
            if opcode == self._opcode and first & 0x80 and not self._parts:
                # The common case, a whole message in one frame: compared in place.
                expected = self._expected
                if size != len(expected) or not buffer.startswith(expected, offset, stop):
                    self._fail(f"echo mismatch: {size} bytes")
                    return
            else:
                payload = bytes(buffer[offset:stop])
                if opcode == 0x9:  # ping: answer, keep going
                    transport.write(client_frame(0xA, payload))
                    continue
                if opcode == 0x8:
                    self._fail(f"server closed: {payload[:2].hex()} {payload[2:40]!r}")
                    return
                if opcode == 0xA:
                    continue
                if opcode not in (0x0, self._opcode):
                    self._fail(f"unexpected opcode {opcode}")
                    return
                self._parts.append(payload)
                if not first & 0x80:
                    continue  # fragmented: wait for the final frame
                message = b"".join(self._parts)
                self._parts = []
                if message != self._expected:
                    self._fail(f"echo mismatch: {len(message)} bytes")
                    return
            counter = self._counter
            counter.messages += 1
            if self._limit and counter.messages >= self._limit:
                if not self.done.done():
                    self.done.set_result(None)
                return
            transport.write(self._frame)


async def run(
    host: str,
    port: int,
    path: str,
    connections: int,
    payload: bytes,
    opcode: int,
    warmup: float,
    duration: float,
    check: bool,
    server_pgid: int | None = None,
) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    counter = Counter()
    limit = connections if check else 0
    clients: list[EchoClient] = []
    for _ in range(connections):
        try:
            _, client = await loop.create_connection(
                lambda: EchoClient(host, path, opcode, payload, counter, limit), host, port
            )
        except OSError as exc:
            counter.fail(f"connect: {exc!r}")
            continue
        clients.append(client)
    # Every handshake first: a server busy echoing may accept late connections slowly, and the
    # measurement is of echoes on all connections at once.
    try:
        await asyncio.wait_for(asyncio.gather(*(c.ready for c in clients)), 30)
    except TimeoutError:
        counter.fail("handshakes timed out")
    for client in clients:
        client.start()
    if check:
        try:
            await asyncio.wait_for(asyncio.gather(*(c.done for c in clients)), 30)
        except TimeoutError:
            counter.fail("check timed out")
        for client in clients:
            client.close()
        return {"messages": counter.messages, "errors": counter.errors, "reasons": counter.reasons}
    await asyncio.sleep(warmup)
    start_count, start, cpu = counter.messages, time.perf_counter(), time.process_time()
    server_cpu = group_cpu_seconds(server_pgid) if server_pgid else 0.0
    await asyncio.sleep(duration)
    messages, seconds = counter.messages - start_count, time.perf_counter() - start
    cpu = time.process_time() - cpu
    server_cpu = group_cpu_seconds(server_pgid) - server_cpu if server_pgid else 0.0
    for client in clients:
        client.close()
    await asyncio.sleep(0)
    return {
        "messages": messages,
        "seconds": round(seconds, 3),
        "rate": messages / seconds,
        "client_cpu": round(cpu / seconds, 3),
        "server_us": server_cpu / messages * 1e6 if server_pgid and messages else None,
        "errors": counter.errors,
        "reasons": counter.reasons,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="WebSocket echo load client")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/ws")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--size", type=int, default=13, help="message size in bytes")
    parser.add_argument("--binary", action="store_true", help="binary frames (default: text)")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--check", action="store_true", help="one echo per connection, verified")
    parser.add_argument("--server-pgid", type=int, help="process group whose CPU time to sample")
    args = parser.parse_args(argv)
    if args.binary:
        payload, opcode = bytes(range(256)) * (args.size // 256) + bytes(args.size % 256), 0x2
    else:
        payload, opcode = (b"Hello, world!" * (args.size // 13 + 1))[: args.size], 0x1
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    result = runner(
        run(
            args.host,
            args.port,
            args.path,
            args.connections,
            payload,
            opcode,
            args.warmup,
            args.duration,
            args.check,
            args.server_pgid,
        )
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    if result["errors"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
