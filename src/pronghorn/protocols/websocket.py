"""WebSocket (RFC 6455) with permessage-deflate (RFC 7692), sans-IO.

Two independent parts, so HTTP/1.1 Upgrade and HTTP/2 extended CONNECT (RFC 8441) share both:

- the opening handshake: :func:`negotiate` turns a request head into a :class:`Handshake` or a
  :class:`Rejection` (400, 426), and :func:`accept_headers` builds the 101 (HTTP/1.1) or 200
  (HTTP/2) response once the app has chosen its subprotocol;
- :class:`WebSocketCodec`: frame bytes in -> events out; messages in -> frame bytes out.

The frame layer is the sans-IO ``Protocol`` of the ``websockets`` library: measured on a
codec-level echo it costs a third of wsproto's time per small message and a tenth per 64 KiB
message (its unmasking is in C), and it stops inflating a compressed message at the size limit
(``decompressobj.decompress(data, max_length)``) instead of inflating it whole first. What it
leaves to its callers is done here: assembling fragments into messages and validating UTF-8
incrementally (1007), so a bad byte early in a long fragmented text fails at once.

Peer misbehaviour never raises: the close frame (1002/1007/1009) is queued, a
``ProtocolViolation`` is emitted and ``should_close`` is set once the TCP side may close.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import struct
from dataclasses import dataclass
from typing import Any, Final, cast

from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN, SERVER, Protocol

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

from pronghorn.errors import LocalProtocolError
from pronghorn.protocols.events import (
    CloseWebSocket,
    Headers,
    ProtocolViolation,
    WebSocketCloseReceived,
    WebSocketMessage,
)
from pronghorn.protocols.output import joined, joined_unless_large

_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: Our LZ77 window and zlib memory level when compressing. A 15-bit window at memLevel 8 costs
#: about 320 KiB of zlib state per connection; 12 bits at memLevel 5 about 30 KiB, for a small
#: loss of ratio on typical JSON messages. Many idle connections matter more here.
SERVER_WINDOW_BITS: Final = 12
COMPRESS_MEMORY_LEVEL: Final = 5

#: Response headers that the handshake owns; an app may not set them in websocket.accept.
RESERVED_ACCEPT_HEADERS: Final = frozenset(
    (
        b"sec-websocket-protocol",
        b"sec-websocket-accept",
        b"sec-websocket-extensions",
        b"upgrade",
        b"connection",
        b"content-length",
        b"transfer-encoding",
    )
)


# --------------------------------------------------------------------------- handshake
@dataclass(frozen=True, slots=True)
class DeflateParams:
    """Negotiated permessage-deflate parameters (RFC 7692 section 7)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = SERVER_WINDOW_BITS
    #: Whether the response must state server_max_window_bits (it differs from 15 or was asked).
    state_server_bits: bool = True

    def response_value(self) -> bytes:
        parts = [b"permessage-deflate"]
        if self.server_no_context_takeover:
            parts.append(b"server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append(b"client_no_context_takeover")
        if self.state_server_bits:
            parts.append(b"server_max_window_bits=%d" % self.server_max_window_bits)
        return b"; ".join(parts)


@dataclass(frozen=True, slots=True)
class Handshake:
    """A valid opening handshake, waiting for the app to accept or deny it."""

    #: The Sec-WebSocket-Accept value (HTTP/1.1); None over HTTP/2, which has no key.
    accept_key: bytes | None
    subprotocols: list[str]
    deflate: DeflateParams | None


@dataclass(frozen=True, slots=True)
class Rejection:
    """The answer to an invalid opening handshake; the app is never called."""

    status: int
    headers: Headers
    body: bytes


def _reject(status: int, reason: str, extra: Headers | None = None) -> Rejection:
    body = reason.encode() + b"\n"
    headers: Headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        *(extra or ()),
    ]
    return Rejection(status, headers, body)


def _tokens(headers: Headers, name: bytes) -> list[bytes]:
    """The comma-separated tokens of every ``name`` field, lower-cased (RFC 9110 5.6.1)."""
    found: list[bytes] = []
    for key, value in headers:
        if key == name:
            found.extend(t.strip().lower() for t in value.split(b",") if t.strip())
    return found


def accept_key(key: bytes) -> bytes:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2, step 5.4)."""
    return base64.b64encode(hashlib.sha1(key + _GUID, usedforsecurity=False).digest())


def negotiate(
    method: bytes,
    headers: Headers,
    http_version: str,
    *,
    extended_connect: bool,
    per_message_deflate: bool,
) -> Handshake | Rejection:
    """Check an opening handshake (RFC 6455 section 4.2.1, RFC 8441 section 5).

    ``headers`` are (lower-cased name, value) pairs as the cores produce them.
    """
    if extended_connect:
        # RFC 8441 section 5: CONNECT with :protocol websocket replaces Upgrade/Connection/Key.
        if method != b"CONNECT":
            return _reject(400, "Extended CONNECT must use the CONNECT method")
    else:
        if method != b"GET":
            return _reject(400, "A WebSocket handshake must be a GET request")
        if http_version not in ("1.1",):
            return _reject(400, "A WebSocket handshake needs HTTP/1.1")
        if b"websocket" not in _tokens(headers, b"upgrade"):
            return _reject(400, "Missing 'Upgrade: websocket'")
        if b"upgrade" not in _tokens(headers, b"connection"):
            return _reject(400, "Missing 'Connection: Upgrade'")
    versions = [value.strip() for name, value in headers if name == b"sec-websocket-version"]
    if versions != [b"13"]:
        return _reject(426, "Unsupported WebSocket version", [(b"sec-websocket-version", b"13")])
    key: bytes | None = None
    if not extended_connect:
        keys = [value.strip() for name, value in headers if name == b"sec-websocket-key"]
        if len(keys) != 1:
            return _reject(400, "Missing or repeated Sec-WebSocket-Key")
        try:
            raw = base64.b64decode(keys[0], validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 16:
            return _reject(400, "Sec-WebSocket-Key must be 16 bytes in base64")
        key = accept_key(keys[0])
    subprotocols = [
        token.strip().decode("latin-1")
        for name, value in headers
        if name == b"sec-websocket-protocol"
        for token in value.split(b",")
        if token.strip()
    ]
    deflate = None
    if per_message_deflate:
        deflate = negotiate_deflate(
            [value for name, value in headers if name == b"sec-websocket-extensions"]
        )
    return Handshake(key, subprotocols, deflate)


def accept_headers(
    handshake: Handshake, subprotocol: str | None, extra: Headers
) -> tuple[int, Headers]:
    """Status and headers of the successful handshake response: 101 over HTTP/1.1 (with the
    accept key), 200 over HTTP/2. ``extra`` are the app's websocket.accept headers."""
    headers: Headers
    if handshake.accept_key is not None:
        status = 101
        headers = [
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-accept", handshake.accept_key),
        ]
    else:
        status = 200
        headers = []
    if subprotocol is not None:
        headers.append((b"sec-websocket-protocol", subprotocol.encode("latin-1")))
    if handshake.deflate is not None:
        headers.append((b"sec-websocket-extensions", handshake.deflate.response_value()))
    headers.extend(extra)
    return status, headers


# -- Sec-WebSocket-Extensions (RFC 6455 section 9.1 grammar)
def _split_outside_quotes(value: bytes, separator: int) -> list[bytes]:
    parts: list[bytes] = []
    start = 0
    quoted = False
    for index, byte in enumerate(value):
        if byte == 0x22:  # '"'
            quoted = not quoted
        elif byte == separator and not quoted:
            parts.append(value[start:index])
            start = index + 1
    parts.append(value[start:])
    return parts


def parse_extensions(values: list[bytes]) -> list[tuple[bytes, list[tuple[bytes, bytes | None]]]]:
    """Each offered extension as (name, [(param, value or None)]), in the client's order."""
    offers: list[tuple[bytes, list[tuple[bytes, bytes | None]]]] = []
    for value in values:
        for item in _split_outside_quotes(value, 0x2C):  # ','
            pieces = _split_outside_quotes(item, 0x3B)  # ';'
            name = pieces[0].strip().lower()
            if not name:
                continue
            params: list[tuple[bytes, bytes | None]] = []
            for piece in pieces[1:]:
                key, sep, raw = piece.partition(b"=")
                param_value = raw.strip().strip(b'"') if sep else None
                params.append((key.strip().lower(), param_value))
            offers.append((name, params))
    return offers


def _window_bits(value: bytes | None) -> int | None:
    """8..15 as RFC 7692 section 7.1.2 allows (no leading zero), else None."""
    if value is None or not value.isdigit() or value.startswith(b"0"):
        return None
    bits = int(value)
    return bits if 8 <= bits <= 15 else None


def negotiate_deflate(values: list[bytes]) -> DeflateParams | None:
    """Accept the first permessage-deflate offer we can honour (RFC 7692 section 5.1).

    An offer with an unknown, repeated or invalid parameter is declined, as section 7 asks.
    """
    for name, params in parse_extensions(values):
        if name != b"permessage-deflate":
            continue
        seen: set[bytes] = set()
        server_nct = client_nct = False
        server_bits: int | None = None
        valid = True
        for key, value in params:
            if key in seen:
                valid = False
                break
            seen.add(key)
            if key == b"server_no_context_takeover" and value is None:
                server_nct = True
            elif key == b"client_no_context_takeover" and value is None:
                client_nct = True
            elif key == b"server_max_window_bits":
                server_bits = _window_bits(value)
                valid = server_bits is not None
            elif key == b"client_max_window_bits":
                # We always inflate with a 15-bit window, which reads any smaller one, so the
                # client's window is never limited and the parameter needs no answer.
                valid = value is None or _window_bits(value) is not None
            else:
                valid = False
            if not valid:
                break
        if not valid:
            continue
        if server_bits == 8:
            continue  # zlib cannot deflate with an 8-bit window; try the next offer
        bits = min(server_bits or 15, SERVER_WINDOW_BITS)
        return DeflateParams(server_nct, client_nct, bits, state_server_bits=bits != 15)
    return None


# --------------------------------------------------------------------------- frames
class _Quiet:
    """A logger for the frame layer that stays silent: protocol cores do no logging, and the
    shell reports violations from the events this module emits."""

    __slots__ = ()

    def isEnabledFor(self, level: int) -> bool:
        return False

    def debug(self, *args: Any, **kwargs: Any) -> None:
        pass

    # Separate methods, not aliases of ``debug``: compiled (mypyc) class bodies take no
    # multiple assignment.
    def info(self, *args: Any, **kwargs: Any) -> None:
        pass

    def warning(self, *args: Any, **kwargs: Any) -> None:
        pass

    def error(self, *args: Any, **kwargs: Any) -> None:
        pass


_QUIET: Final[Any] = _Quiet()


# Opcodes as module constants: on CPython 3.11 every ``Opcode.X`` is a lookup through
# EnumType.__getattr__'s slow attribute path (see asgi/http.py).
_OP_TEXT: Final = Opcode.TEXT
_OP_BINARY: Final = Opcode.BINARY
_OP_CONT: Final = Opcode.CONT
_OP_PONG: Final = Opcode.PONG
_OP_CLOSE: Final = Opcode.CLOSE


class _ServerProtocol(Protocol):
    """The frame layer, answering a close that interrupts a fragmented message normally.

    RFC 6455 section 5.4 allows control frames between the fragments of a message, and a close
    frame is one: the unfinished message is dropped and the close echoed (Autobahn case
    7.1.5), where the library would fail the connection with 1002.
    """

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is _OP_CLOSE and self.current_size is not None:
            self.current_size = None
        super().recv_frame(frame)


#: A data message is its payload (str for TEXT, bytes for BINARY): no event object per message.
WebSocketEvent = bytes | str | WebSocketCloseReceived | ProtocolViolation

#: Close codes the frame layer reports for failures it detected itself.
_VIOLATION_CODES: Final = frozenset((1002, 1007, 1009, 1011))


def _frame_bounds(data: bytes, position: int) -> tuple[int, int] | None:
    """(payload start, frame end) of the frame whose header starts at ``position``, or None
    while its header (at most 14 bytes) is not all in ``data``."""
    end = len(data)
    if end - position < 2:
        return None
    second = data[position + 1]
    length = second & 0x7F
    head = position + 2
    if length == 126:
        if end - head < 2:
            return None
        length = int.from_bytes(data[head : head + 2])
        head += 2
    elif length == 127:
        if end - head < 8:
            return None
        length = int.from_bytes(data[head : head + 8])
        head += 8
    if second & 0x80:
        head += 4  # the masking key
    if head > end:
        return None
    return head, head + length


#: Frames at least this large, spread over reads, are collected on the direct path.
PARTIAL_MIN: Final = 65536
#: Payloads at least this large are unmasked through a memoryview rather than copied out.
UNMASK_VIEW_MIN: Final = 4096

_HEAD_SHORT: Final = struct.Struct("!BB").pack
_HEAD_16: Final = struct.Struct("!BBH").pack
_HEAD_64: Final = struct.Struct("!BBQ").pack


class WebSocketCodec:
    """One open WebSocket, server side: frame bytes in -> events out; events in -> bytes out.

    Ping frames are answered automatically; a close frame is echoed. ``should_close`` turns
    True once the TCP connection (or HTTP/2 stream) should end after flushing
    ``data_to_send()``: the closing handshake completed, or the connection was failed.
    """

    __slots__ = (
        "_decoder",
        "_direct",
        "_direct_messages",
        "_eof",
        "_fragments",
        "_fragments_text",
        "_held",
        "_layer_fed",
        "_layer_open",
        "_max_size",
        "_out",
        "_owed",
        "_partial",
        "_partial_head",
        "_partial_need",
        "_protocol",
        "_reported",
        "_violation",
        "close_code",
        "close_reason",
        "has_output",
        "pongs_received",
        "should_close",
        "stream_id",
    )

    def __init__(
        self, stream_id: int = 1, *, max_size: int, deflate: DeflateParams | None = None
    ) -> None:
        self.stream_id = stream_id
        protocol = _ServerProtocol(SERVER, state=OPEN, max_size=max_size, logger=_QUIET)
        if deflate is not None:
            protocol.extensions = [
                PerMessageDeflate(
                    remote_no_context_takeover=deflate.client_no_context_takeover,
                    local_no_context_takeover=deflate.server_no_context_takeover,
                    remote_max_window_bits=15,
                    local_max_window_bits=deflate.server_max_window_bits,
                    compress_settings={"memLevel": COMPRESS_MEMORY_LEVEL},
                )
            ]
        self._protocol = protocol
        #: The frame layer was given bytes since next_events last asked it for its frames;
        #: while only the direct path decodes, it has nothing new to say (two calls saved).
        self._layer_fed = False
        #: The frame layer's state is OPEN, as of our last call into it (only those calls
        #: change it; each that may is followed by _layer_changed). Its ``state`` is a
        #: property, a Python call per read, twice per echo: every test here reads this.
        self._layer_open = True
        #: No extension negotiated: whole unfragmented data frames may take the direct path
        #: (see ``_receive_framed``); every other frame goes through the frame layer.
        self._direct = deflate is None
        self._direct_messages: list[WebSocketEvent] = []  # (payloads only)
        #: Bytes of the current frame the frame layer still needs (see ``_receive_framed``).
        self._owed = 0
        #: A frame header cut short by a read (the frame layer has it too), to find its end.
        self._held = b""
        #: A large direct-path frame spread over reads: its header, the (masked) payload
        #: parts so far, and the payload bytes still to come (see ``_receive_partial``).
        self._partial: list[bytes] | None = None
        self._partial_head = b""
        self._partial_need = 0
        self._max_size = max_size
        self._out: list[bytes] = []
        #: Bytes wait in take_output() (an attribute, not a property: the shell reads it after
        #: every read, and nearly always it is False).
        self.has_output = False
        self._eof = False
        self._fragments: list[bytes] | list[str] | None = None
        self._fragments_text = False
        self._decoder: codecs.IncrementalDecoder | None = None
        self._reported = False
        self._violation: ProtocolViolation | None = None
        self.should_close = False
        #: The close code of the connection once known: the peer's, or the one we failed with.
        self.close_code: int | None = None
        self.close_reason = ""
        #: Pong frames received so far; the shell's keepalive watches it move.
        self.pongs_received = 0

    # ------------------------------------------------------------------ receive side
    @property
    def open(self) -> bool:
        """Messages may still be sent (no close frame sent or received yet)."""
        return self._layer_open

    def receive_data(self, data: bytes) -> None:
        if self._eof or not data:
            return
        if not self._direct:
            self._to_layer(data)
            return
        position = 0
        if self._partial is not None:
            position = self._receive_partial(data)
            if position == len(data):
                return
        held = self._held
        if held:
            # The frame layer has this frame's first bytes: the rest of the frame is its too.
            whole = held + data
            bounds = _frame_bounds(whole, 0)
            if bounds is None:  # the header is still not whole
                self._to_layer(data)
                self._held = whole
                return
            self._held = b""
            self._owed = bounds[1] - len(held)
        self._receive_framed(data, position)

    def _to_layer(self, data: bytes) -> None:
        self._layer_fed = True
        self._protocol.receive_data(data)
        self._layer_changed()

    def _layer_changed(self) -> None:
        """Note the frame layer's state after a call that may have moved it."""
        self._layer_open = self._protocol.state is OPEN

    def _receive_partial(self, data: bytes) -> int:
        """Add ``data`` to the large frame being collected; returns where its frame ended.

        A frame larger than one read (a 1 MiB message arrives in several) goes to the frame
        layer's stream reader, which copies it about four times on the way (buffer appends,
        slices); here its parts are joined once and unmasked once.
        """
        parts = self._partial
        assert parts is not None
        take = min(self._partial_need, len(data))
        parts.append(data if take == len(data) else data[:take])
        self._partial_need -= take
        if self._partial_need:
            return take
        self._partial = None
        head = self._partial_head
        self._partial_head = b""
        masked = b"".join(parts)
        if self._layer_open:  # (a close we sent meanwhile: the frame layer decides)
            unmasked = apply_mask(masked, head[-4:])
            try:
                payload = unmasked.decode() if head[0] == 0x81 else unmasked
            except UnicodeDecodeError:
                pass  # the frame layer's to fail with 1007, below
            else:
                self._direct_messages.append(payload)
                return take
        self._to_layer(head + masked)
        return take

    def _receive_framed(self, data: bytes, position: int = 0) -> None:
        """Follow the frame boundaries of ``data`` (headers only) and decode whole, final,
        masked TEXT/BINARY frames without reserved bits directly: nearly every message of an
        uncompressed connection. The frame layer's generator parser costs some twenty Python
        calls per message.

        Every other frame goes to the frame layer, all of it that is here (the rest follows,
        counted in ``_owed``; a header cut short is kept in ``_held`` to find the frame's
        end), so the frame layer gets the same bytes in the same calls as it would alone and
        is at a frame boundary whenever a frame is decoded here. Its frames: control and
        fragmented frames, partial frames, frames over the size limit, invalid UTF-8,
        unmasked frames, reserved bits, anything after an event of its own (order), anything
        once the connection is not open. Every error is still the frame layer's to answer.
        """
        protocol = self._protocol
        end = len(data)
        messages = self._direct_messages
        max_size = self._max_size
        while position < end:
            owed = self._owed
            if owed:
                take = min(owed, end - position)
                self._to_layer(data[position : position + take])
                self._owed = owed - take
                position += take
                continue
            second = data[position + 1] if end - position >= 2 else 0
            if second & 0x80 and second & 0x7F < 126 and end - position >= 6:
                # A masked frame with a one-byte length, its header whole: nearly every small
                # message. (_frame_bounds, inlined.)
                head = position + 6
                stop = head + (second & 0x7F)
            else:
                bounds = _frame_bounds(data, position)
                if bounds is None:  # a header cut short: the frame layer takes it, keep a copy
                    self._to_layer(data[position:])
                    self._held = data[position:]
                    return
                head, stop = bounds
            first = data[position]
            direct = (
                (first == 0x81 or first == 0x82)  # FIN, no RSV bits, TEXT or BINARY
                and second & 0x80  # masked
                and stop - head <= max_size
                and self._layer_open
                and protocol.current_size is None
                and not protocol.events
            )
            if direct and stop > end and stop - head >= PARTIAL_MIN:
                # A large frame, the rest of it in later reads: collect it here.
                self._partial_head = data[position:head]
                self._partial = [data[head:end]]
                self._partial_need = stop - end
                return
            if direct and stop <= end:
                if stop - head < UNMASK_VIEW_MIN:
                    # A copy of a small payload costs less than a memoryview's setup.
                    unmasked = apply_mask(data[head:stop], data[head - 4 : head])
                else:
                    with memoryview(data) as view:
                        unmasked = apply_mask(view[head:stop], data[head - 4 : head])
                try:
                    # (No typing.cast here: it is a real call, and this runs per message.)
                    payload: bytes | str = unmasked.decode() if first == 0x81 else unmasked
                except UnicodeDecodeError:
                    pass  # the frame layer's to fail with 1007, below
                else:
                    messages.append(payload)
                    position = stop
                    continue
            take = min(stop, end)
            self._to_layer(data[position:take])
            self._owed = stop - take
            position = take

    def receive_eof(self) -> None:
        if self._eof:
            return
        self._eof = True
        parts = self._partial
        if parts is not None:
            # The frame is cut short: the frame layer sees what came and fails as it should.
            self._partial = None
            self._to_layer(self._partial_head + b"".join(parts))
        self._layer_fed = True
        self._protocol.receive_eof()
        self._layer_changed()

    def next_events(self) -> list[WebSocketEvent]:
        # Read before any byte the frame layer holds: they come first.
        events = self._direct_messages
        if events:
            self._direct_messages = []
        else:
            events = []  # (never the codec's own list: frame-layer events are added below)
        if not self._layer_fed:
            return events
        self._layer_fed = False
        protocol = self._protocol
        frames = protocol.events_received()
        # A server-side frame layer only ever yields frames (requests/responses are handshakes).
        for frame in frames:
            assert isinstance(frame, Frame)
            opcode = frame.opcode
            if opcode is _OP_TEXT or opcode is _OP_BINARY or opcode is _OP_CONT:
                data = frame.data
                if type(data) is not bytes:
                    data = bytes(data)
                message = self._assemble(opcode, data, frame.fin)
                if message is not None:
                    events.append(message)
                elif self._reported:
                    break  # UTF-8 failure: nothing after it is processed
            elif opcode is _OP_PONG:
                self.pongs_received += 1
            elif opcode is _OP_CLOSE:
                close = protocol.close_rcvd
                if close is not None and not self._reported:
                    self._reported = True
                    self.close_code = int(close.code)
                    self.close_reason = close.reason
                    events.append(
                        WebSocketCloseReceived(self.stream_id, int(close.code), close.reason)
                    )
            # PING: the frame layer already queued the pong.
        if self._violation is not None:
            events.append(self._violation)
            self._violation = None
        elif not self._reported and protocol.parser_exc is not None:
            self._report_failure(events)
        self._collect()
        return events

    def _assemble(self, opcode: Opcode, data: bytes, fin: bool) -> bytes | str | None:
        if opcode is not _OP_CONT:
            if fin:  # the common case: a whole message in one frame
                if opcode is _OP_BINARY:
                    return data
                try:
                    return data.decode()
                except UnicodeDecodeError as exc:
                    self._fail(1007, f"Invalid UTF-8: {exc.reason}")
                    return None
            self._fragments_text = opcode is _OP_TEXT
            self._decoder = (
                codecs.getincrementaldecoder("utf-8")() if self._fragments_text else None
            )
            self._fragments = []
        fragments = self._fragments
        if fragments is None:  # pragma: no cover - the frame layer rejects a stray CONT
            raise LocalProtocolError("continuation frame without a message")
        decoder = self._decoder
        if decoder is not None:
            try:
                cast(list[str], fragments).append(decoder.decode(data, fin))
            except UnicodeDecodeError as exc:
                self._fail(1007, f"Invalid UTF-8: {exc.reason}")
                return None
        else:
            cast(list[bytes], fragments).append(data)
        if not fin:
            return None
        self._fragments = None
        self._decoder = None
        if self._fragments_text:
            return "".join(cast(list[str], fragments))
        return b"".join(cast(list[bytes], fragments))

    def _fail(self, code: int, reason: str) -> None:
        protocol = self._protocol
        protocol.fail(code, reason)
        self._layer_changed()
        self._reported = True
        self.close_code = code
        self.close_reason = reason
        self._violation = ProtocolViolation(self.stream_id, code, reason)

    def _report_failure(self, events: list[WebSocketEvent]) -> None:
        protocol = self._protocol
        self._reported = True
        sent = protocol.close_sent
        if sent is not None and sent.code in _VIOLATION_CODES:
            self.close_code = int(sent.code)
            self.close_reason = sent.reason
            events.append(ProtocolViolation(self.stream_id, int(sent.code), sent.reason))
        else:
            # The TCP stream ended without a closing handshake (RFC 6455 section 7.1.5: 1006).
            self.close_code = 1006
            self.close_reason = ""
            events.append(WebSocketCloseReceived(self.stream_id, 1006, ""))

    # ------------------------------------------------------------------ send side
    def send(self, event: WebSocketMessage | CloseWebSocket) -> None:
        """Queue a message or our close frame. Sending on a closed codec is our own bug."""
        if type(event) is WebSocketMessage:
            self.send_message(event.data)
            return
        protocol = self._protocol
        if not self._layer_open:
            raise LocalProtocolError(f"WebSocket send in state {protocol.state.name}")
        close = cast(CloseWebSocket, event)
        protocol.send_close(close.code, close.reason)
        self._layer_changed()
        if self.close_code is None:
            self.close_code = int(close.code)
            self.close_reason = close.reason
        self._collect()

    def send_message(self, data: bytes | str) -> None:
        """Queue one data message (``send`` of a WebSocketMessage, without the event)."""
        protocol = self._protocol
        if not self._layer_open:
            raise LocalProtocolError(f"WebSocket send in state {protocol.state.name}")
        if self._direct and not protocol.writes:
            # A whole unmasked data frame needs no frame layer: two to ten header bytes.
            if isinstance(data, str):
                payload = data.encode()
                first = 0x81
            else:
                payload = data if type(data) is bytes else bytes(data)
                first = 0x82
            size = len(payload)
            self.has_output = True
            if size < 126:
                self._out.append(_HEAD_SHORT(first, size) + payload)
            elif size < 65536:
                self._out.append(_HEAD_16(first, 126, size) + payload)
            else:
                self._out += (_HEAD_64(first, 127, size), payload)  # no copy of a big one
            return
        if type(data) is str:
            protocol.send_text(data.encode())
        else:
            protocol.send_binary(cast(bytes, data))
        self._collect()

    def send_ping(self, payload: bytes) -> None:
        if self._layer_open:
            self._protocol.send_ping(payload)
            self._collect()

    def fail(self, code: int, reason: str = "") -> None:
        """Close at once with ``code`` (keepalive timeout, shutdown without waiting)."""
        if self._layer_open:
            self._protocol.fail(code, reason)
            self._layer_changed()
            if self.close_code is None:
                self.close_code = code
                self.close_reason = reason
        self._reported = True
        self.should_close = True
        self._collect()

    def _collect(self) -> None:
        writes = self._protocol.data_to_send()
        for chunk in writes:
            if chunk:
                self._out.append(chunk)
                self.has_output = True
            else:  # SEND_EOF: the server side may close the transport after this
                self.should_close = True

    def data_to_send(self) -> bytes:
        return joined(self.take_output())

    def take_output(self) -> bytes | list[bytes]:
        """The queued frames' bytes; a big message's header and payload as parts, uncopied
        (protocols/output.py)."""
        out = self._out
        if not out:
            return b""
        self._out = []
        self.has_output = False
        return joined_unless_large(out)

    def statistics(self) -> dict[str, int]:
        return {
            "buffered_out": sum(map(len, self._out)),
            "pongs_received": self.pongs_received,
        }
