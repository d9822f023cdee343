"""The raw-limit reference: a minimal uvloop ``asyncio.Protocol`` that answers canned responses.

It does not parse HTTP. For requests without a body it counts request heads by their blank line
(so pipelined requests get one answer each); for uploads it reads ``Content-Length`` and skips
that many bytes; for WebSocket it computes the handshake and echoes frames, unmasking them. No
Python server that parses, validates and runs an ASGI app can beat it on one core, so it is the
ceiling each workload is measured against (and the check on how fast our load clients are).

    python -m benchmarks.rawref --port 8000 --shape hello
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, cast

from benchmarks.readbuffer import InPlaceReader

HEAD_END = b"\r\n\r\n"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _canned(body: bytes, content_type: bytes = b"text/plain") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nserver: rawref\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n"
        % (content_type, len(body))
        + body
    )


def _canned_chunked(chunk: bytes, count: int) -> bytes:
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    return (
        b"HTTP/1.1 200 OK\r\nserver: rawref\r\ncontent-type: application/octet-stream\r\n"
        b"transfer-encoding: chunked\r\n\r\n" + framed * count + b"0\r\n\r\n"
    )


CANNED: dict[str, bytes] = {
    "hello": _canned(b"Hello, world!"),
    "body64k": _canned(b"x" * 65536, b"application/octet-stream"),
    "stream": _canned_chunked(b"y" * 16384, 64),
}


class HeadCounter:
    """Counts request heads by their blank line, across reads, without parsing them."""

    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail = b""

    def count(self, data: bytes) -> int:
        if self._tail:
            data = self._tail + data
        # Keep the last 3 bytes: a blank line may be split across two reads.
        self._tail = data[-3:] if not data.endswith(HEAD_END) else b""
        return data.count(HEAD_END)


class CannedProtocol(asyncio.Protocol):
    """Answers every request head (a blank line) with the same bytes, in one write."""

    __slots__ = ("_heads", "_response", "_transport")

    def __init__(self, response: bytes) -> None:
        self._response = response
        self._heads = HeadCounter()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        count = self._heads.count(data)
        if count and self._transport is not None:
            self._transport.write(self._response if count == 1 else self._response * count)


class UploadProtocol(asyncio.Protocol):
    """Skips each request's ``Content-Length`` bytes, then answers with their number."""

    __slots__ = ("_answer", "_buffer", "_remaining", "_transport")

    def __init__(self) -> None:
        self._answer = b""
        self._buffer = b""
        self._remaining = -1  # -1: reading a head
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        while data:
            if self._remaining >= 0:
                taken = min(self._remaining, len(data))
                self._remaining -= taken
                data = data[taken:]
                if self._remaining == 0:
                    self._remaining = -1
                    assert self._transport is not None
                    self._transport.write(self._answer)
                continue
            data = self._buffer + data
            end = data.find(HEAD_END)
            if end < 0:
                self._buffer = data
                return
            self._buffer = b""
            head = data[:end].lower()
            start = head.find(b"content-length:")
            length = 0
            if start >= 0:
                stop = head.find(b"\r\n", start)
                length = int(head[start + 15 : stop if stop >= 0 else None])
            self._answer = _canned(b"%d" % length)
            self._remaining = length
            data = data[end + 4 :]
            if length == 0:
                self._remaining = -1
                assert self._transport is not None
                self._transport.write(self._answer)


def _unmask_python(payload: bytes | memoryview, mask: bytes) -> bytes:
    size = len(payload)
    key = int.from_bytes(mask * (size // 4 + 1), "little") & ((1 << (8 * size)) - 1)
    return (int.from_bytes(payload, "little") ^ key).to_bytes(size, "little")


def _load_apply_mask() -> Callable[[bytes | memoryview, bytes], bytes]:
    """The C routine websockets ships (uvicorn's default WebSocket stack uses it)."""
    try:
        from websockets.speedups import apply_mask
    except ImportError:  # websockets is a test and bench dependency; stay runnable without
        return _unmask_python
    return apply_mask


_unmask = _load_apply_mask()


def _frame_head(opcode: int, size: int) -> bytes:
    """The header of a final, unmasked server frame; the payload is written after it as is."""
    if size < 126:
        return bytes((0x80 | opcode, size))
    if size < 65536:
        return bytes((0x80 | opcode, 126)) + size.to_bytes(2, "big")
    return bytes((0x80 | opcode, 127)) + size.to_bytes(8, "big")


READ_SIZE = 262144


class WebSocketEchoProtocol(InPlaceReader):
    """Accepts any WebSocket handshake and echoes whole frames (no fragmentation, no deflate).

    Reads land in one buffer per connection, parsed in place between ``_start`` and ``_end``;
    it is replaced by a larger one only when a frame does not fit, so the cost per message does
    not depend on how the allocator treats a growing bytearray.
    """

    __slots__ = ("_open", "_transport")

    def __init__(self) -> None:
        super().__init__(READ_SIZE, 2 * READ_SIZE)
        self._open = False
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def buffer_updated(self, nbytes: int) -> None:
        self._end += nbytes
        buffer = self._buffer
        start, end = self._start, self._end
        transport = self._transport
        assert transport is not None
        if not self._open:
            stop = buffer.find(HEAD_END, start, end)
            if stop < 0:
                return
            head = bytes(buffer[start:stop])
            self._start = start = stop + 4
            at = head.lower().find(b"sec-websocket-key:")
            if at < 0:
                transport.close()
                return
            line_end = head.find(b"\r\n", at)
            key = head[at + 18 : line_end if line_end >= 0 else None].strip()
            accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
            transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                b"connection: Upgrade\r\nsec-websocket-accept: %s\r\n\r\n" % accept
            )
            self._open = True
        out: list[bytes] = []
        while end - start >= 6:
            opcode = buffer[start] & 0x0F
            size = buffer[start + 1] & 0x7F
            offset = start + 2
            if size == 126:
                size = int.from_bytes(buffer[start + 2 : start + 4], "big")
                offset = start + 4
            elif size == 127:
                if end - start < 10:
                    break
                size = int.from_bytes(buffer[start + 2 : start + 10], "big")
                offset = start + 10
            stop = offset + 4 + size
            if stop > end:
                break
            mask = bytes(buffer[offset : offset + 4])
            with memoryview(buffer) as view:  # unmask straight from the buffer: no copy
                payload = _unmask(view[offset + 4 : stop], mask)
            self._start = start = stop
            if opcode == 0x8:
                out += (_frame_head(0x8, 2), payload[:2])
                transport.writelines(out)
                transport.close()
                return
            if opcode == 0x9:
                out += (_frame_head(0xA, len(payload)), payload)
            elif opcode in (0x1, 0x2):
                out += (_frame_head(opcode, len(payload)), payload)
        if out:
            transport.writelines(out)  # header and payload without joining them


SHAPES = (*CANNED, "upload", "ws")


def _factory(shape: str) -> Callable[[], asyncio.BaseProtocol]:
    if shape == "upload":
        return UploadProtocol
    if shape == "ws":
        return WebSocketEchoProtocol
    response = CANNED[shape]
    return lambda: CannedProtocol(response)


def stop_on_signals(loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
    """A future that SIGTERM or SIGINT completes: how the runner stops a reference server."""
    stop: asyncio.Future[None] = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    loop.add_signal_handler(signal.SIGINT, stop.set_result, None)
    return stop


def run_on_uvloop(name: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Runs ``main()`` on uvloop, or exits with status 2 saying uvloop is missing."""
    try:
        import uvloop
    except ImportError:
        print(f"{name}: uvloop is not installed", file=sys.stderr)
        raise SystemExit(2) from None
    uvloop.run(main())


async def serve(host: str, port: int, shape: str) -> None:
    loop = asyncio.get_running_loop()
    stop = stop_on_signals(loop)
    factory = _factory(shape)
    server = await loop.create_server(factory, host, port, backlog=4096)
    await stop
    server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--shape", choices=SHAPES, default="hello")
    args = parser.parse_args(argv)
    run_on_uvloop("rawref", lambda: serve(args.host, args.port, args.shape))


if __name__ == "__main__":
    main()
