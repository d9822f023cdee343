"""The WebSocket frame codec by bytes, grouped by RFC 6455 / RFC 7692 section."""

from __future__ import annotations

import itertools
import os
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pronghorn.errors import LocalProtocolError
from pronghorn.protocols.events import (
    CloseWebSocket,
    ProtocolViolation,
    WebSocketCloseReceived,
    WebSocketMessage,
)
from pronghorn.protocols.websocket import DeflateParams, WebSocketCodec

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
RSV1, RSV2, RSV3 = 0x40, 0x20, 0x10


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    length: int | None = None,
) -> bytes:
    """A client frame: masked with a random key unless ``masked`` is False."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def parse_server_frames(data: bytes) -> list[tuple[int, int, bytes]]:
    """(first byte, opcode, payload) of each unmasked server frame in ``data``."""
    frames = []
    while data:
        first, second = data[0], data[1]
        assert not second & 0x80, "server frames are never masked"
        n = second & 0x7F
        offset = 2
        if n == 126:
            (n,) = struct.unpack("!H", data[2:4])
            offset = 4
        elif n == 127:
            (n,) = struct.unpack("!Q", data[2:10])
            offset = 10
        frames.append((first, first & 0x0F, data[offset : offset + n]))
        data = data[offset + n :]
    return frames


def feed(codec: WebSocketCodec, data: bytes) -> list[object]:
    codec.receive_data(data)
    return list(codec.next_events())


def assert_failed(codec: WebSocketCodec, events: list[object], code: int) -> None:
    assert any(isinstance(e, ProtocolViolation) and e.status == code for e in events), events
    out = parse_server_frames(codec.data_to_send())
    assert out[-1][1] == CLOSE
    assert struct.unpack("!H", out[-1][2][:2])[0] == code
    assert codec.close_code == code
    assert codec.should_close
    assert not codec.open


@pytest.fixture
def codec() -> WebSocketCodec:
    return WebSocketCodec(1, max_size=1024)


# --------------------------------------------------------------------------- 5.1-5.3 framing
class TestBaseFraming:
    def test_text_and_binary_messages(self, codec: WebSocketCodec) -> None:
        events = feed(codec, frame(TEXT, "héllo".encode()) + frame(BINARY, b"\x00\xff"))
        # A data message is its payload: str for TEXT, bytes (not a view) for BINARY.
        assert events == ["héllo", b"\x00\xff"]
        assert type(events[0]) is str
        assert type(events[1]) is bytes

    def test_byte_at_a_time(self, codec: WebSocketCodec) -> None:
        events: list[object] = []
        for byte in frame(TEXT, b"x" * 300):
            events += feed(codec, bytes([byte]))
        assert events == ["x" * 300]

    def test_unmasked_client_frame_is_1002(self, codec: WebSocketCodec) -> None:
        assert_failed(codec, feed(codec, frame(TEXT, b"hi", masked=False)), 1002)

    @pytest.mark.parametrize("rsv", [RSV1, RSV2, RSV3])
    def test_reserved_bits_without_extension_are_1002(
        self, codec: WebSocketCodec, rsv: int
    ) -> None:
        assert_failed(codec, feed(codec, frame(TEXT, b"hi", rsv=rsv)), 1002)

    @pytest.mark.parametrize("opcode", [0x3, 0x7, 0xB, 0xF])
    def test_reserved_opcodes_are_1002(self, codec: WebSocketCodec, opcode: int) -> None:
        assert_failed(codec, feed(codec, frame(opcode, b"")), 1002)

    def test_server_frames_are_unmasked_with_minimal_lengths(self, codec: WebSocketCodec) -> None:
        for size in (0, 125, 126, 65535, 65536):
            codec.send(WebSocketMessage(1, b"a" * size))
            ((first, _opcode, payload),) = parse_server_frames(codec.data_to_send())
            assert first == 0x80 | BINARY
            assert payload == b"a" * size
        codec.send(WebSocketMessage(1, "é"))
        assert codec.data_to_send() == b"\x81\x02\xc3\xa9"

    def test_nothing_processed_after_a_failure(self, codec: WebSocketCodec) -> None:
        events = feed(codec, frame(TEXT, b"a", masked=False) + frame(TEXT, b"b"))
        assert not any(isinstance(e, bytes | str) for e in events)
        assert feed(codec, frame(TEXT, b"c")) == []


# --------------------------------------------------------------------------- 5.4 fragmentation
class TestFragmentation:
    def test_fragmented_text_and_binary(self, codec: WebSocketCodec) -> None:
        data = (
            frame(TEXT, b"he", fin=False)
            + frame(CONT, b"ll", fin=False)
            + frame(CONT, b"o")
            + frame(BINARY, b"a", fin=False)
            + frame(CONT, b"b")
        )
        assert feed(codec, data) == [
            "hello",
            b"ab",
        ]

    def test_control_frames_between_fragments(self, codec: WebSocketCodec) -> None:
        data = frame(TEXT, b"he", fin=False) + frame(PING, b"p1") + frame(CONT, b"llo")
        assert feed(codec, data) == ["hello"]
        assert parse_server_frames(codec.data_to_send()) == [(0x80 | PONG, PONG, b"p1")]

    def test_utf8_sequence_split_across_fragments(self, codec: WebSocketCodec) -> None:
        euro = "€".encode()
        data = frame(TEXT, euro[:1], fin=False) + frame(CONT, euro[1:])
        assert feed(codec, data) == ["€"]

    def test_continuation_without_start_is_1002(self, codec: WebSocketCodec) -> None:
        assert_failed(codec, feed(codec, frame(CONT, b"x")), 1002)

    def test_new_message_inside_fragmented_one_is_1002(self, codec: WebSocketCodec) -> None:
        assert_failed(codec, feed(codec, frame(TEXT, b"a", fin=False) + frame(TEXT, b"b")), 1002)

    def test_fragmented_control_frame_is_1002(self, codec: WebSocketCodec) -> None:
        assert_failed(codec, feed(codec, frame(PING, b"a", fin=False)), 1002)


# --------------------------------------------------------------------------- 5.5 control frames
class TestControlFrames:
    def test_ping_answered_with_same_payload(self, codec: WebSocketCodec) -> None:
        assert feed(codec, frame(PING, b"payload")) == []
        assert parse_server_frames(codec.data_to_send()) == [(0x80 | PONG, PONG, b"payload")]

    def test_has_output_tells_whether_bytes_wait(self, codec: WebSocketCodec) -> None:
        # The shell writes only when this says so: a message decoded on the direct path
        # leaves nothing to write, a ping leaves its pong, a send its frame.
        assert feed(codec, frame(TEXT, b"hi")) == ["hi"]
        assert not codec.has_output
        feed(codec, frame(PING, b"p"))
        assert codec.has_output
        codec.take_output()
        assert not codec.has_output
        codec.send(WebSocketMessage(1, "x"))
        assert codec.has_output
        assert codec.data_to_send() == b"\x81\x01x"
        assert not codec.has_output

    def test_pong_counted_not_answered(self, codec: WebSocketCodec) -> None:
        feed(codec, frame(PONG, b"x") + frame(PONG, b""))
        assert codec.pongs_received == 2
        assert codec.data_to_send() == b""

    def test_control_payload_over_125_is_1002(self, codec: WebSocketCodec) -> None:
        assert_failed(codec, feed(codec, frame(PING, b"x" * 126)), 1002)

    def test_send_ping(self, codec: WebSocketCodec) -> None:
        codec.send_ping(b"ka")
        assert parse_server_frames(codec.data_to_send()) == [(0x80 | PING, PING, b"ka")]


# --------------------------------------------------------------------------- 5.5.1 / 7 closing
class TestClosing:
    def test_peer_close_is_echoed_then_tcp_may_close(self, codec: WebSocketCodec) -> None:
        events = feed(codec, frame(CLOSE, close_payload(1000, b"bye")))
        assert events == [WebSocketCloseReceived(1, 1000, "bye")]
        assert parse_server_frames(codec.data_to_send()) == [
            (0x80 | CLOSE, CLOSE, close_payload(1000, b"bye"))
        ]
        assert codec.should_close
        assert not codec.open
        assert codec.close_code == 1000

    def test_close_between_fragments_is_answered_normally(self, codec: WebSocketCodec) -> None:
        events = feed(codec, frame(TEXT, b"frag", fin=False) + frame(CLOSE, close_payload(1000)))
        assert events == [WebSocketCloseReceived(1, 1000, "")]
        assert parse_server_frames(codec.data_to_send()) == [
            (0x80 | CLOSE, CLOSE, close_payload(1000))
        ]

    def test_empty_close_is_1005_and_echoed_empty(self, codec: WebSocketCodec) -> None:
        assert feed(codec, frame(CLOSE)) == [WebSocketCloseReceived(1, 1005, "")]
        assert codec.data_to_send() == b"\x88\x00"

    def test_data_after_close_is_discarded(self, codec: WebSocketCodec) -> None:
        events = feed(codec, frame(CLOSE, close_payload(1001)) + frame(TEXT, b"late"))
        assert events == [WebSocketCloseReceived(1, 1001, "")]
        assert feed(codec, frame(TEXT, b"later")) == []

    @pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000])
    def test_invalid_close_code_is_1002(self, codec: WebSocketCodec, code: int) -> None:
        assert_failed(codec, feed(codec, frame(CLOSE, close_payload(code))), 1002)

    def test_one_byte_close_payload_is_1002(self, codec: WebSocketCodec) -> None:
        assert_failed(codec, feed(codec, frame(CLOSE, b"\x03")), 1002)

    def test_close_reason_invalid_utf8_is_1007(self, codec: WebSocketCodec) -> None:
        assert_failed(codec, feed(codec, frame(CLOSE, close_payload(1000, b"\xff"))), 1007)

    def test_server_initiated_close(self, codec: WebSocketCodec) -> None:
        codec.send(CloseWebSocket(1, 1000, "done"))
        assert parse_server_frames(codec.data_to_send()) == [
            (0x80 | CLOSE, CLOSE, close_payload(1000, b"done"))
        ]
        assert not codec.open
        assert not codec.should_close  # the peer's close frame is awaited
        events = feed(codec, frame(CLOSE, close_payload(1000)))
        assert events == [WebSocketCloseReceived(1, 1000, "")]
        assert codec.data_to_send() == b""  # no second close frame
        assert codec.should_close

    def test_going_away_for_shutdown_is_1012(self, codec: WebSocketCodec) -> None:
        codec.send(CloseWebSocket(1, 1012, "Service restart"))
        assert parse_server_frames(codec.data_to_send())[0][2][:2] == struct.pack("!H", 1012)
        assert codec.close_code == 1012

    def test_send_after_close_is_our_bug(self, codec: WebSocketCodec) -> None:
        codec.send(CloseWebSocket(1, 1000, ""))
        with pytest.raises(LocalProtocolError):
            codec.send(WebSocketMessage(1, "late"))

    def test_eof_without_close_is_1006(self, codec: WebSocketCodec) -> None:
        codec.receive_eof()
        assert list(codec.next_events()) == [WebSocketCloseReceived(1, 1006, "")]
        assert codec.data_to_send() == b""  # no close frame to a closed stream
        assert codec.should_close
        assert codec.close_code == 1006

    def test_eof_mid_frame_is_1006(self, codec: WebSocketCodec) -> None:
        feed(codec, frame(TEXT, b"abcdef")[:5])
        codec.receive_eof()
        assert list(codec.next_events()) == [WebSocketCloseReceived(1, 1006, "")]

    def test_fail_closes_at_once(self, codec: WebSocketCodec) -> None:
        codec.fail(1011, "keepalive ping timeout")
        assert parse_server_frames(codec.data_to_send())[0][2][:2] == struct.pack("!H", 1011)
        assert codec.should_close
        assert codec.close_code == 1011


# --------------------------------------------------------------------------- 8.1 UTF-8
class TestUTF8:
    def test_invalid_utf8_text_is_1007(self, codec: WebSocketCodec) -> None:
        assert_failed(codec, feed(codec, frame(TEXT, b"ok\xc3\x28")), 1007)

    def test_invalid_utf8_fails_fast_inside_a_fragmented_message(
        self, codec: WebSocketCodec
    ) -> None:
        # The first fragment is already invalid: fail before the message is complete.
        assert_failed(
            codec,
            feed(
                codec,
                frame(TEXT, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", fin=False),
            ),
            1007,
        )

    def test_truncated_utf8_at_message_end_is_1007(self, codec: WebSocketCodec) -> None:
        assert_failed(
            codec, feed(codec, frame(TEXT, b"a\xe2\x82", fin=False) + frame(CONT, b"")), 1007
        )

    def test_binary_is_not_validated(self, codec: WebSocketCodec) -> None:
        assert feed(codec, frame(BINARY, b"\xff")) == [b"\xff"]


# --------------------------------------------------------------------------- 10.4 size limits
class TestMessageSize:
    def test_frame_over_limit_is_1009_from_its_header(self, codec: WebSocketCodec) -> None:
        # Only the header arrived: the declared length alone is enough to refuse it.
        header = frame(BINARY, b"", length=10**9)
        assert_failed(codec, feed(codec, header), 1009)

    def test_message_at_limit_is_accepted(self, codec: WebSocketCodec) -> None:
        assert feed(codec, frame(BINARY, b"x" * 1024)) == [b"x" * 1024]

    def test_fragmented_message_over_limit_is_1009(self, codec: WebSocketCodec) -> None:
        data = frame(TEXT, b"x" * 600, fin=False) + frame(CONT, b"x" * 600)
        assert_failed(codec, feed(codec, data), 1009)


# --------------------------------------------------------------------------- RFC 7692
def deflate_message(data: bytes, compressor: zlib._Compress | None = None) -> bytes:
    compressor = compressor or zlib.compressobj(wbits=-15)
    compressed = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert compressed.endswith(b"\x00\x00\xff\xff")
    return compressed[:-4]


def inflate_server(payload: bytes, decompressor: zlib._Decompress | None = None) -> bytes:
    decompressor = decompressor or zlib.decompressobj(wbits=-15)
    return decompressor.decompress(payload + b"\x00\x00\xff\xff")


@pytest.fixture
def deflating() -> WebSocketCodec:
    return WebSocketCodec(1, max_size=1024, deflate=DeflateParams())


class TestPerMessageDeflate:
    def test_compressed_message_inflated(self, deflating: WebSocketCodec) -> None:
        data = frame(TEXT, deflate_message(b"hello hello hello"), rsv=RSV1)
        assert feed(deflating, data) == ["hello hello hello"]

    def test_uncompressed_message_still_accepted(self, deflating: WebSocketCodec) -> None:
        assert feed(deflating, frame(TEXT, b"plain")) == ["plain"]

    def test_fragmented_compressed_message(self, deflating: WebSocketCodec) -> None:
        body = deflate_message(b"abc" * 50)
        data = frame(BINARY, body[:5], fin=False, rsv=RSV1) + frame(CONT, body[5:])
        assert feed(deflating, data) == [b"abc" * 50]

    def test_context_takeover_across_messages(self, deflating: WebSocketCodec) -> None:
        compressor = zlib.compressobj(wbits=-15)
        first = frame(TEXT, deflate_message(b"repeat me", compressor), rsv=RSV1)
        second = frame(TEXT, deflate_message(b"repeat me", compressor), rsv=RSV1)
        assert feed(deflating, first + second) == ["repeat me"] * 2

    def test_server_messages_are_compressed(self, deflating: WebSocketCodec) -> None:
        deflating.send(WebSocketMessage(1, "x" * 500))
        ((first, _opcode, payload),) = parse_server_frames(deflating.data_to_send())
        assert first == 0x80 | RSV1 | TEXT
        assert len(payload) < 50
        assert inflate_server(payload) == b"x" * 500

    def test_server_window_is_the_negotiated_one(self) -> None:
        codec = WebSocketCodec(1, max_size=1024, deflate=DeflateParams(server_max_window_bits=9))
        codec.send(WebSocketMessage(1, bytes(range(256)) * 3))
        ((_, _, payload),) = parse_server_frames(codec.data_to_send())
        assert inflate_server(payload, zlib.decompressobj(wbits=-9)) == bytes(range(256)) * 3

    def test_rsv1_on_control_frame_is_1002(self, deflating: WebSocketCodec) -> None:
        assert_failed(deflating, feed(deflating, frame(PING, b"", rsv=RSV1)), 1002)

    def test_rsv1_on_continuation_is_1002(self, deflating: WebSocketCodec) -> None:
        data = frame(TEXT, deflate_message(b"ab"), fin=False, rsv=RSV1) + frame(CONT, b"", rsv=RSV1)
        assert_failed(deflating, feed(deflating, data), 1002)

    def test_corrupt_deflate_stream_is_refused(self, deflating: WebSocketCodec) -> None:
        events = feed(deflating, frame(BINARY, b"\xff\xff\xff\xff", rsv=RSV1))
        assert any(isinstance(e, ProtocolViolation) for e in events)
        assert deflating.should_close

    def test_bomb_is_stopped_while_inflating(self) -> None:
        # 10 MiB of zeros deflate to ~10 KiB: a frame far below the limit whose inflated size
        # is far above it. The codec must refuse it with 1009 without inflating it whole.
        codec = WebSocketCodec(1, max_size=64 * 1024, deflate=DeflateParams())
        bomb = deflate_message(b"\x00" * (10 * 1024 * 1024))
        assert len(bomb) < 64 * 1024
        import tracemalloc

        tracemalloc.start()
        try:
            events = feed(codec, frame(BINARY, bomb, rsv=RSV1))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert_failed(codec, events, 1009)
        assert peak < 2 * 1024 * 1024, f"inflated {peak} bytes: the bomb was not stopped early"

    def test_no_context_takeover_from_client(self) -> None:
        codec = WebSocketCodec(
            1, max_size=1024, deflate=DeflateParams(client_no_context_takeover=True)
        )
        # Each message compressed by a fresh compressor, as the client promised.
        data = b"".join(frame(TEXT, deflate_message(b"same"), rsv=RSV1) for _ in range(3))
        assert feed(codec, data) == ["same"] * 3

    def test_no_context_takeover_from_server(self) -> None:
        codec = WebSocketCodec(
            1, max_size=1024, deflate=DeflateParams(server_no_context_takeover=True)
        )
        for _ in range(2):
            codec.send(WebSocketMessage(1, "same same same"))
            ((_, _, payload),) = parse_server_frames(codec.data_to_send())
            assert inflate_server(payload) == b"same same same"  # a fresh inflater works


# --------------------------------------------------------------------------- the direct path
def summary(events: list[object]) -> list[tuple[str, object]]:
    """Events as comparable tuples (message data, close code, violation status)."""
    out: list[tuple[str, object]] = []
    for event in events:
        if isinstance(event, bytes | str):
            out.append(("message", event))
        elif isinstance(event, WebSocketCloseReceived):
            out.append(("close", event.code))
        elif isinstance(event, ProtocolViolation):
            out.append(("violation", event.status))
    return out


def run_codec(
    chunks: list[bytes], *, direct: bool, eof: bool = False
) -> tuple[list[tuple[str, object]], bytes]:
    codec = WebSocketCodec(1, max_size=70000)
    if not direct:
        codec._direct = False  # the frame layer alone: the reference behaviour
    events: list[object] = []
    for chunk in chunks:
        events += feed(codec, chunk)
    if eof:
        codec.receive_eof()
        events += list(codec.next_events())
    return summary(events), codec.data_to_send()


_FRAMES = st.one_of(
    st.binary(max_size=300).map(lambda p: frame(BINARY, p)),
    st.text(max_size=100).map(lambda t: frame(TEXT, t.encode())),
    st.sampled_from([b"x" * 125, b"y" * 126, b"z" * 65535, b"w" * 65536]).map(
        lambda p: frame(BINARY, p)
    ),
    st.binary(max_size=20).map(lambda p: frame(PING, p)),
    st.binary(max_size=20).map(lambda p: frame(PONG, p)),
    st.just(frame(TEXT, b"ab", fin=False) + frame(CONT, b"cd")),
    st.just(frame(TEXT, b"\xff")),  # invalid UTF-8: 1007
    st.just(frame(BINARY, b"r", rsv=RSV1)),  # reserved bit: 1002
    st.just(frame(BINARY, b"u", masked=False)),  # unmasked: 1002
    st.just(frame(BINARY, length=70001)),  # over the limit (the head alone): 1009
    st.just(frame(BINARY, b"o" * 70001)),  # over the limit, all of it here: 1009
    st.just(frame(TEXT, "\u00e9t\u00e9 ".encode() * 13000)),  # large text (65000+ bytes)
    st.just(frame(TEXT, b"v" * 65536 + b"\xff")),  # large, invalid UTF-8 at its end: 1007
    st.just(frame(CLOSE, close_payload(1000))),
)


class TestDirectPath:
    """Whole data frames skip the frame layer; nothing else may change."""

    @settings(max_examples=500, deadline=None)
    @given(
        frames=st.lists(_FRAMES, max_size=8),
        cuts=st.lists(st.floats(0, 1)),
        eof=st.booleans(),
    )
    def test_same_events_and_bytes_as_the_frame_layer_alone(
        self, frames: list[bytes], cuts: list[float], eof: bool
    ) -> None:
        stream = b"".join(frames)
        points = sorted({0, len(stream), *(int(c * len(stream)) for c in cuts)})
        chunks = [stream[a:b] for a, b in itertools.pairwise(points)]
        expected = run_codec(chunks, direct=False, eof=eof)
        assert run_codec(chunks, direct=True, eof=eof) == expected

    def test_a_large_frame_over_several_reads_then_the_next(self) -> None:
        big = bytes(range(256)) * 1024  # 256 KiB, arriving in three reads
        stream = frame(BINARY, big) + frame(TEXT, b"next")
        third = len(stream) // 3
        chunks = [stream[:third], stream[third : 2 * third], stream[2 * third :]]
        codec = WebSocketCodec(1, max_size=1 << 20)
        assert feed(codec, chunks[0]) == []
        assert feed(codec, chunks[1]) == []
        assert summary(feed(codec, chunks[2])) == [("message", big), ("message", "next")]

    def test_eof_inside_a_large_frame_is_1006(self) -> None:
        codec = WebSocketCodec(1, max_size=1 << 20)
        feed(codec, frame(BINARY, b"a" * 100000)[:70000])
        codec.receive_eof()
        assert list(codec.next_events()) == [WebSocketCloseReceived(1, 1006, "")]

    def test_our_close_while_a_large_frame_arrives(self) -> None:
        stream = frame(BINARY, b"b" * 100000)
        results = []
        for direct in (True, False):
            codec = WebSocketCodec(1, max_size=1 << 20)
            codec._direct = direct
            events = feed(codec, stream[:50000])
            codec.send(CloseWebSocket(1, 1000))
            events += feed(codec, stream[50000:])
            results.append((summary(events), codec.data_to_send()))
        assert results[0] == results[1]

    def test_messages_before_and_after_a_control_frame_keep_their_order(
        self, codec: WebSocketCodec
    ) -> None:
        data = frame(TEXT, b"one") + frame(PING, b"p") + frame(BINARY, b"two")
        assert summary(feed(codec, data + frame(TEXT, b"thr")[:3])) == [
            ("message", "one"),
            ("message", b"two"),
        ]
        assert parse_server_frames(codec.data_to_send()) == [(0x8A, PONG, b"p")]

    def test_a_read_ending_inside_a_frame_header(self) -> None:
        """Found by the test above: a read that ends inside a frame's masking key, whose
        bytes (0x82 0x9c...) would read as a frame header if taken for one."""
        stream = (
            b"\x82\x80\x82\x9cR0"  # empty BINARY, masking key 82 9c 52 30
            + b"\x88\x82@\xc4\x86\xeeC,"  # CLOSE 1000
            + b'\x82\x85\x81\x84\xcd\xf0U\xb4G"\xc8'
            + b"\x82\x80y+\xc9\x7f"
            + b"\x82\x80FB\x06_"
        )
        for cut in range(1, len(stream)):
            chunks = [stream[:cut], stream[cut:]]
            assert run_codec(chunks, direct=True) == run_codec(chunks, direct=False)
            assert run_codec(chunks, direct=True)[0] == [("message", b""), ("close", 1000)]

    def test_a_frame_split_across_reads_completes_in_order(self, codec: WebSocketCodec) -> None:
        whole = frame(TEXT, b"first") + frame(TEXT, b"second")
        cut = len(whole) - 3
        assert summary(feed(codec, whole[:cut])) == [("message", "first")]
        assert summary(feed(codec, whole[cut:])) == [("message", "second")]
        assert summary(feed(codec, frame(TEXT, b"third"))) == [("message", "third")]

    def test_a_reply_follows_a_pong_already_queued(self, codec: WebSocketCodec) -> None:
        codec.receive_data(frame(PING, b"p"))
        codec.send(WebSocketMessage(1, "reply"))
        codec.next_events()
        frames = parse_server_frames(codec.data_to_send())
        assert [(opcode, payload) for _, opcode, payload in frames] == [
            (PONG, b"p"),
            (TEXT, b"reply"),
        ]
