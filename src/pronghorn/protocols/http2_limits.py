"""HTTP/2 abuse limits: what a peer may cost us before we answer GOAWAY ENHANCE_YOUR_CALM.

h2 implements the protocol but trusts the peer with our time and memory in a few places, so the
core puts two small guards in front of it:

- ``FrameScanner`` walks the frame headers of the incoming bytes *before* h2 parses them. It caps
  a header block spread over HEADERS + CONTINUATION frames (the CONTINUATION flood: h2 buffers
  the whole block before decoding it) and counts empty DATA/CONTINUATION frames, which cost a
  server work but move no data (CVE-2019-9518).
- ``FloodGuard`` counts, per time window, what the peer makes us do for free: stream resets
  (rapid reset, CVE-2023-44487), SETTINGS and PING frames (each forces an ACK we must write,
  CVE-2019-9512/9515) and empty frames. The core reads no clock: the I/O shell passes the time in
  through ``HTTP2Connection.tick(now)``.

Decoded header lists (HPACK bombs, CVE-2016-6581) are capped by h2's own decoder limit, which
the core sets from ``max_header_list_size``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: The client connection preface (RFC 9113 §3.4); the scanner skips it.
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

_DATA: Final = 0x0
_HEADERS: Final = 0x1
_PUSH_PROMISE: Final = 0x5
_CONTINUATION: Final = 0x9
_END_STREAM: Final = 0x1
_END_HEADERS: Final = 0x4
_FRAME_HEADER: Final = 9


@dataclass(frozen=True, slots=True)
class HTTP2Limits:
    """Per-connection HTTP/2 limits; the server builds one from its ``Config``."""

    max_concurrent_streams: int = 100
    max_header_list_size: int = 65536
    initial_window_size: int = 1048576
    max_frame_size: int = 16384
    #: Connection-level receive window. Every byte the app has not consumed yet counts against
    #: it, so it bounds the request body memory of one connection. None: 4x the stream window.
    connection_window_size: int | None = None
    max_body: int | None = None
    #: The HTTP/1.1 limits, applied alike: longest :path (414) and most header fields (431).
    max_path: int = 8190
    max_headers: int = 100
    #: RFC 8441 WebSocket over HTTP/2 (SETTINGS_ENABLE_CONNECT_PROTOCOL).
    enable_connect_protocol: bool = True
    #: Stream resets the peer may cause per window (RST_STREAM sent or refused streams).
    max_resets: int = 200
    max_settings: int = 100
    max_pings: int = 500
    max_empty_frames: int = 1000
    #: Frames one header block may span (HEADERS + CONTINUATION).
    max_header_frames: int = 32
    window_seconds: float = 10.0

    @property
    def max_header_block(self) -> int:
        # A compressed block is never larger than the decoded list it stands for (each field
        # counts 32 bytes of overhead decoded), plus framing slack for padding.
        return max(self.max_header_list_size, 16384) + 1024

    @property
    def receive_window(self) -> int:
        if self.connection_window_size is not None:
            return max(self.connection_window_size, 65535)
        return min(max(4 * self.initial_window_size, 65535), 2**31 - 1)


class FrameScanner:
    """Follows frame boundaries in the raw byte stream; reports header-block and empty-frame
    abuse. It never buffers payloads: it only remembers how much of the current frame is left."""

    __slots__ = (
        "_block_frames",
        "_block_size",
        "_header",
        "_limits",
        "_preface_left",
        "_skip",
        "empty_frames",
    )

    def __init__(self, limits: HTTP2Limits, *, expect_preface: bool = True) -> None:
        self._limits = limits
        self._preface_left = len(PREFACE) if expect_preface else 0
        self._header = b""
        self._skip = 0
        self._block_size = 0
        self._block_frames = 0  # 0 = not inside a header block
        #: Empty frames seen since the caller last reset this counter.
        self.empty_frames = 0

    def scan(self, data: bytes) -> str | None:
        """Walk ``data``; return the reason for a violation, or None."""
        pos = 0
        end = len(data)
        if self._preface_left:
            taken = min(self._preface_left, end)
            self._preface_left -= taken
            pos = taken
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            need = _FRAME_HEADER - len(self._header)
            if need < _FRAME_HEADER or end - pos < _FRAME_HEADER:
                self._header += data[pos : pos + need]
                pos += min(need, end - pos)
                if len(self._header) < _FRAME_HEADER:
                    break
                header = self._header
                self._header = b""
            else:
                header = data[pos : pos + _FRAME_HEADER]
                pos += _FRAME_HEADER
            reason = self._frame(header)
            if reason is not None:
                return reason
        return None

    def _frame(self, header: bytes) -> str | None:
        length = int.from_bytes(header[0:3], "big")
        kind = header[3]
        flags = header[4]
        self._skip = length
        if kind in (_HEADERS, _PUSH_PROMISE):
            if not flags & _END_HEADERS:
                self._block_size = length
                self._block_frames = 1
        elif kind == _CONTINUATION:
            if self._block_frames:
                self._block_size += length
                self._block_frames += 1
                limits = self._limits
                if self._block_size > limits.max_header_block:
                    return "header block too large (CONTINUATION flood)"
                if self._block_frames > limits.max_header_frames:
                    return "header block in too many frames (CONTINUATION flood)"
                if flags & _END_HEADERS:
                    self._block_frames = 0
                    self._block_size = 0
            if length == 0:
                self.empty_frames += 1
        elif kind == _DATA and length == 0 and not flags & _END_STREAM:
            self.empty_frames += 1
        return None


class FloodGuard:
    """Counts peer-caused work per window of ``limits.window_seconds``."""

    __slots__ = ("_limits", "_window_start", "pings", "resets", "settings")

    def __init__(self, limits: HTTP2Limits, now: float = 0.0) -> None:
        self._limits = limits
        self._window_start = now
        self.resets = 0
        self.settings = 0
        self.pings = 0

    def tick(self, now: float) -> bool:
        """Start a new window when the current one has passed; True when it did."""
        if now - self._window_start < self._limits.window_seconds:
            return False
        self._window_start = now
        self.resets = 0
        self.settings = 0
        self.pings = 0
        return True

    def exceeded(self, empty_frames: int) -> str | None:
        limits = self._limits
        if self.resets > limits.max_resets:
            return "too many stream resets (rapid reset)"
        if self.settings > limits.max_settings:
            return "too many SETTINGS frames"
        if self.pings > limits.max_pings:
            return "too many PING frames"
        if empty_frames > limits.max_empty_frames:
            return "too many empty frames"
        return None
