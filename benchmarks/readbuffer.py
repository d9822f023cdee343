"""One reusable read buffer for the benchmarks' BufferedProtocols (the raw reference's
WebSocket echo and the WebSocket load client).

Reads land in one bytearray, parsed in place between ``_start`` (first unparsed byte) and
``_end`` (end of the bytes read): no bytes object per read. The buffer is replaced by a larger
one only when a frame does not fit, so the cost per message does not depend on how the
allocator treats a growing bytearray.
"""

from __future__ import annotations

import asyncio


class InPlaceReader(asyncio.BufferedProtocol):
    __slots__ = ("_buffer", "_end", "_read_size", "_start")

    def __init__(self, read_size: int, capacity: int) -> None:
        #: Free space offered to each socket read.
        self._read_size = read_size
        self._buffer = bytearray(capacity)
        self._start = 0
        self._end = 0

    def get_buffer(self, sizehint: int) -> memoryview:
        buffer = self._buffer
        read_size = self._read_size
        if self._start == self._end:
            self._start = self._end = 0
        if len(buffer) - self._end < read_size:
            pending = self._end - self._start
            if pending + read_size > len(buffer):  # a frame larger than planned: grow
                grown = bytearray(2 * len(buffer) + read_size)
                grown[:pending] = buffer[self._start : self._end]
                self._buffer = buffer = grown
            else:  # move the unparsed tail to the front (same size: no resize)
                buffer[:pending] = buffer[self._start : self._end]
            self._start, self._end = 0, pending
        return memoryview(buffer)[self._end :]
