"""The HTTP/2 core, frame by frame, grouped by RFC 9113 (and RFC 8441) section.

The client peer is h2 itself, in-process: bytes in, events out, no loop and no mocks.
"""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from h2.errors import ErrorCodes
from hyperframe.frame import SettingsFrame

from pronghorn.errors import LocalProtocolError, ResponseLengthError

try:  # tests/ may be a package or a plain directory of modules
    from tests.protocols.test_http2_peer import Peer
except ImportError:  # pragma: no cover
    from test_http2_peer import Peer  # type: ignore[no-redef]

from pronghorn.protocols.events import (
    AcceptWebSocket,
    Body,
    BodyReceived,
    InformationalResponse,
    ProtocolViolation,
    PushPromise,
    RequestEnded,
    RequestReceived,
    ResetStream,
    Response,
    StreamReset,
    Trailers,
    WebSocketMessage,
    WindowOpened,
)
from pronghorn.protocols.http1 import DefaultHeaders
from pronghorn.protocols.http2 import HTTP2Connection, HTTP2Limits
from pronghorn.protocols.negotiate import PREFACE

S = h2.settings.SettingCodes


def respond(peer: Peer, stream_id: int, body: bytes = b"ok", status: int = 200) -> None:
    peer.server.send(Response(stream_id, status, [(b"content-type", b"text/plain")]))
    peer.server.send(Body(stream_id, body, end=True))
    peer.server.app_finished(stream_id)
    peer.exchange()


def send_body(peer: Peer, stream_id: int, data: bytes, *, end: bool = False) -> None:
    for start in range(0, len(data), 16384):
        last = end and start + 16384 >= len(data)
        peer.client.send_data(stream_id, data[start : start + 16384], end_stream=last)
        peer.exchange()


# --------------------------------------------------------------------------- §3 starting
class TestStarting:
    def test_preface_answered_with_our_settings(self) -> None:
        limits = HTTP2Limits(max_concurrent_streams=7, initial_window_size=70000)
        peer = Peer(limits)
        changed = peer.of(h2.events.RemoteSettingsChanged)[0].changed_settings
        assert changed[S.MAX_CONCURRENT_STREAMS].new_value == 7
        assert changed[S.INITIAL_WINDOW_SIZE].new_value == 70000
        assert changed[S.ENABLE_CONNECT_PROTOCOL].new_value == 1
        # The connection window is opened beyond the default 65 535 right away.
        assert peer.client.outbound_flow_control_window == limits.receive_window

    def test_bad_preface_is_a_violation_not_an_exception(self) -> None:
        server = HTTP2Connection()
        server.data_to_send()
        server.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        events = server.next_events()
        assert [type(e) for e in events] == [ProtocolViolation]
        assert server.should_close
        assert server.data_to_send()  # the GOAWAY
        server.receive_data(b"more")  # ignored after the failure
        assert server.next_events() == []

    def test_h2c_upgrade_makes_the_request_stream_1(self) -> None:
        client = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        settings = client.initiate_upgrade_connection()
        assert settings is not None
        request = RequestReceived(
            1,
            b"GET",
            b"/up?x=1",
            "1.1",
            [
                (b"host", b"example.com"),
                (b"connection", b"Upgrade, HTTP2-Settings"),
                (b"upgrade", b"h2c"),
                (b"http2-settings", settings),
                (b"accept", b"*/*"),
            ],
            upgrade=b"h2c",
        )
        server = HTTP2Connection.from_upgrade(settings, request)
        events = server.next_events()
        assert isinstance(events[0], RequestReceived)
        assert events[0].stream_id == 1
        assert events[0].http_version == "2"
        assert events[0].target == b"/up?x=1"
        assert events[0].authority == b"example.com"
        assert events[0].headers == [(b"accept", b"*/*")]
        assert isinstance(events[1], RequestEnded)
        peer = Peer(server=server, client=client)
        respond(peer, 1, b"upgraded")
        assert peer.body(1) == b"upgraded"
        assert peer.of(h2.events.StreamEnded, 1)

    def test_h2c_upgrade_with_garbage_settings_fails_cleanly(self) -> None:
        request = RequestReceived(1, b"GET", b"/", "1.1", [], upgrade=b"h2c")
        # SETTINGS_ENABLE_PUSH = 5 is invalid (§6.5.2).
        server = HTTP2Connection.from_upgrade(b"AAIAAAAF", request)
        assert server.should_close
        assert any(isinstance(e, ProtocolViolation) for e in server.next_events())


# --------------------------------------------------------------------------- §5 streams
class TestStreams:
    def test_concurrent_streams_each_get_a_request(self) -> None:
        peer = Peer()
        first = peer.request(b"/a?q=1", headers=[(b"cookie", b"a=1"), (b"cookie", b"b=2")])
        second = peer.request(b"/b", method=b"POST", body=b"data", end=False)
        events = peer.exchange()
        requests = [e for e in events if isinstance(e, RequestReceived)]
        assert [r.stream_id for r in requests] == [first, second]
        one, two = requests
        assert one.target == b"/a?q=1"
        assert one.http_version == "2"
        assert one.authority == b"example.com"
        assert one.scheme == "https"
        assert not one.has_body
        assert (b"cookie", b"a=1; b=2") in one.headers  # §8.2.3: crumbs joined
        assert all(not name.startswith(b":") for name, _ in one.headers)
        assert two.method == b"POST"
        assert two.has_body
        assert BodyReceived(second, b"data") in events
        # Answer in the opposite order: streams are independent.
        respond(peer, second, b"two")
        respond(peer, first, b"one")
        assert peer.body(first) == b"one"
        assert peer.body(second) == b"two"
        assert peer.server.statistics()["active_streams"] == 0

    def test_streams_past_the_limit_are_refused(self) -> None:
        peer = Peer(HTTP2Limits(max_concurrent_streams=2))
        ids = [peer.request() for _ in range(2)]
        peer.exchange()
        # The client resets both, but their apps are still running: they still count.
        for stream_id in ids:
            peer.client.reset_stream(stream_id, ErrorCodes.CANCEL)
        events = peer.exchange()
        assert [type(e) for e in events] == [StreamReset, StreamReset]
        third = peer.request()
        assert peer.exchange() == []
        (reset,) = peer.of(h2.events.StreamReset, third)
        assert reset.error_code == ErrorCodes.REFUSED_STREAM
        for stream_id in ids:
            peer.server.app_finished(stream_id)
        fourth = peer.request()
        assert [type(e) for e in peer.exchange()] == [RequestReceived, RequestEnded]
        respond(peer, fourth)

    def test_peer_reset_reaches_the_app_and_later_sends_are_dropped(self) -> None:
        peer = Peer()
        stream_id = peer.request(body=b"x", end=False)
        peer.exchange()
        peer.client.reset_stream(stream_id, ErrorCodes.CANCEL)
        assert StreamReset(stream_id, ErrorCodes.CANCEL) in peer.exchange()
        peer.server.send(Response(stream_id, 200, []))
        peer.server.send(Body(stream_id, b"late", end=True))
        assert peer.server.data_to_send() == b""
        assert peer.server.stream_closed(stream_id)

    def test_app_finishing_without_a_response_resets_the_stream(self) -> None:
        peer = Peer()
        stream_id = peer.request()
        peer.exchange()
        peer.server.app_finished(stream_id)
        peer.exchange()
        (reset,) = peer.of(h2.events.StreamReset, stream_id)
        assert reset.error_code == ErrorCodes.INTERNAL_ERROR

    def test_app_reset_sends_rst_stream(self) -> None:
        peer = Peer()
        stream_id = peer.request()
        peer.exchange()
        peer.server.send(ResetStream(stream_id, ErrorCodes.CANCEL))
        peer.exchange()
        assert peer.of(h2.events.StreamReset, stream_id)[0].error_code == ErrorCodes.CANCEL

    def test_eof_resets_open_streams(self) -> None:
        peer = Peer()
        stream_id = peer.request(body=b"x", end=False)
        peer.exchange()
        peer.server.receive_eof()
        assert peer.server.next_events() == [StreamReset(stream_id)]
        assert peer.server.should_close


# --------------------------------------------------------------------------- §5.4 errors
class TestErrorHandling:
    def test_garbage_frame_gets_goaway(self) -> None:
        peer = Peer()
        # A DATA frame on stream 0 is a connection error (§6.1).
        events = peer.feed(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")
        assert [type(e) for e in events] == [ProtocolViolation]
        goaway = peer.goaway()
        assert goaway is not None
        assert goaway.error_code == ErrorCodes.PROTOCOL_ERROR
        assert peer.server.should_close

    def test_malformed_request_is_a_stream_error(self) -> None:
        # RFC 9113 §8.1.1: RST_STREAM PROTOCOL_ERROR for that stream; the connection lives on.
        peer = Peer()
        bad = peer.client.get_next_available_stream_id()
        peer.client.config.validate_outbound_headers = False
        peer.client.config.normalize_outbound_headers = False
        peer.client.send_headers(bad, [(b":method", b"GET")], end_stream=True)
        assert peer.exchange() == []
        (reset,) = peer.of(h2.events.StreamReset, bad)
        assert reset.error_code == ErrorCodes.PROTOCOL_ERROR
        assert not peer.server.should_close
        good = peer.request()
        (request,) = [e for e in peer.exchange() if isinstance(e, RequestReceived)]
        assert request.stream_id == good
        respond(peer, good, b"still here")
        assert peer.body(good) == b"still here"

    def test_malformed_request_with_a_body_gets_its_window_back(self) -> None:
        # The DATA that follows the refused head must not use up the connection window.
        peer = Peer(HTTP2Limits(initial_window_size=65535, connection_window_size=65535))
        peer.client.config.validate_outbound_headers = False
        peer.client.config.normalize_outbound_headers = False
        bad = peer.request(headers=[(b"connection", b"close")], end=False)
        for _ in range(3):
            peer.client.send_data(bad, b"x" * 16384)
        peer.exchange()
        assert peer.of(h2.events.StreamReset, bad)[0].error_code == ErrorCodes.PROTOCOL_ERROR
        # Kept, 3 * 16384 would leave 16383; h2 returns the window in steps of half of it.
        assert peer.client.outbound_flow_control_window == 65535 - 16384

    def test_malformed_trailers_reset_the_stream(self) -> None:
        peer = Peer()
        stream_id = peer.request(body=b"x", end=False)
        peer.exchange()
        peer.client.config.validate_outbound_headers = False
        peer.client.config.normalize_outbound_headers = False
        peer.client.send_headers(stream_id, [(b"X-Upper", b"1")], end_stream=True)
        events = peer.exchange()
        assert StreamReset(stream_id, ErrorCodes.PROTOCOL_ERROR) in events
        assert peer.of(h2.events.StreamReset, stream_id)[0].error_code == ErrorCodes.PROTOCOL_ERROR
        assert not any(isinstance(e, RequestEnded) for e in events)
        assert not peer.server.should_close

    def test_trailers_reach_the_app(self) -> None:
        peer = Peer()
        stream_id = peer.request(body=b"x", end=False)
        peer.exchange()
        peer.client.send_headers(stream_id, [(b"x-sum", b"1")], end_stream=True)
        events = peer.exchange()
        assert RequestEnded(stream_id, [(b"x-sum", b"1")]) in events

    def test_a_flood_of_malformed_requests_ends_the_connection(self) -> None:
        peer = Peer(HTTP2Limits(max_resets=5))
        peer.client.config.validate_outbound_headers = False
        peer.client.config.normalize_outbound_headers = False
        for _ in range(6):
            stream_id = peer.client.get_next_available_stream_id()
            peer.client.send_headers(stream_id, [(b":method", b"GET")], end_stream=True)
        events = peer.exchange()
        assert [type(e) for e in events] == [ProtocolViolation]
        goaway = peer.goaway()
        assert goaway is not None
        assert goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM

    def test_violation_resets_streams_in_flight(self) -> None:
        peer = Peer()
        stream_id = peer.request(body=b"x", end=False)
        peer.exchange()
        events = peer.feed(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")
        assert StreamReset(stream_id) in events


# --------------------------------------------------------------------------- §5.2 flow control
class TestFlowControl:
    def test_inbound_data_is_acknowledged_only_when_consumed(self) -> None:
        limits = HTTP2Limits(initial_window_size=65535, connection_window_size=1 << 20)
        peer = Peer(limits)
        stream_id = peer.request(end=False)
        send_body(peer, stream_id, b"a" * 65535)
        assert peer.client.local_flow_control_window(stream_id) == 0
        assert peer.of(h2.events.WindowUpdated, stream_id) == []
        assert peer.server.statistics()["unacknowledged_in"] == 65535
        peer.server.acknowledge(stream_id, 40000)
        peer.exchange()
        assert peer.client.local_flow_control_window(stream_id) == 40000
        # Acknowledging more than was delivered is harmless (h2 batches small increments).
        peer.server.acknowledge(stream_id, 10**9)
        peer.exchange()
        assert peer.server.statistics()["unacknowledged_in"] == 0

    def test_connection_window_bounds_unread_bodies(self) -> None:
        limits = HTTP2Limits(initial_window_size=65535, connection_window_size=100000)
        peer = Peer(limits)
        one = peer.request(end=False)
        send_body(peer, one, b"a" * 65535)
        two = peer.request(method=b"POST", end=False)
        sent = 0
        while (window := peer.client.local_flow_control_window(two)) > 0 and sent < 10**6:
            peer.client.send_data(two, b"b" * min(window, 16384))
            sent += min(window, 16384)
            peer.exchange()
        assert peer.server.statistics()["unacknowledged_in"] == 100000
        # Ending the stream (app done, response sent) gives the unread bytes back.
        respond(peer, one)
        assert peer.client.outbound_flow_control_window > 0

    def test_padding_is_acknowledged_at_once(self) -> None:
        peer = Peer(HTTP2Limits(initial_window_size=65535))
        stream_id = peer.request(end=False)
        peer.client.send_data(stream_id, b"x" * 100, pad_length=200)
        peer.exchange()
        assert peer.server.statistics()["unacknowledged_in"] == 100

    def test_outbound_waits_for_the_window_then_opens(self) -> None:
        peer = Peer(settings={S.INITIAL_WINDOW_SIZE: 10})
        stream_id = peer.request()
        peer.exchange()
        peer.server.send(Response(stream_id, 200, []))
        peer.server.send(Body(stream_id, b"0123456789abcdef", end=True))
        peer.exchange()
        assert peer.body(stream_id) == b"0123456789"
        assert peer.server.is_blocked(stream_id)
        assert peer.server.statistics()["buffered_out"] == 6
        peer.client.increment_flow_control_window(100, stream_id)
        events = peer.exchange()
        assert events == [WindowOpened(stream_id)]
        assert peer.body(stream_id) == b"0123456789abcdef"
        assert peer.of(h2.events.StreamEnded, stream_id)
        assert not peer.server.is_blocked(stream_id)

    def test_settings_change_reopens_blocked_streams(self) -> None:
        peer = Peer(settings={S.INITIAL_WINDOW_SIZE: 0})
        stream_id = peer.request()
        peer.exchange()
        peer.server.send(Response(stream_id, 200, []))
        peer.server.send(Body(stream_id, b"hello", end=False))
        peer.exchange()
        assert peer.server.is_blocked(stream_id)
        assert peer.server.outbound_window(stream_id) == 0
        peer.client.update_settings({S.INITIAL_WINDOW_SIZE: 65535})
        assert WindowOpened(stream_id) in peer.exchange()
        assert peer.body(stream_id) == b"hello"

    def test_large_body_is_split_into_frames(self) -> None:
        peer = Peer()
        stream_id = peer.request()
        peer.exchange()
        peer.server.send(Response(stream_id, 200, []))
        peer.server.send(Body(stream_id, b"z" * 200000, end=True))
        peer.server.app_finished(stream_id)
        for _ in range(20):
            peer.exchange()
            if peer.of(h2.events.StreamEnded, stream_id):
                break
            # A client that reads acknowledges what it received.
            received = sum(len(e.data) for e in peer.of(h2.events.DataReceived, stream_id))
            peer.client.acknowledge_received_data(received, stream_id)
        assert peer.body(stream_id) == b"z" * 200000
        assert peer.server.statistics()["active_streams"] == 0


# --------------------------------------------------------------------------- §6.5 / §6.7 / §6.8
class TestControlFrames:
    def test_settings_and_ping_are_acknowledged(self) -> None:
        peer = Peer()
        peer.client.update_settings({S.HEADER_TABLE_SIZE: 1000})
        peer.client.ping(b"12345678")
        peer.exchange()
        assert peer.of(h2.events.SettingsAcknowledged)
        assert peer.of(h2.events.PingAckReceived)[0].ping_data == b"12345678"

    def test_keepalive_ping(self) -> None:
        peer = Peer()
        peer.server.send_ping()
        assert peer.server.ping_outstanding
        peer.exchange()
        assert peer.of(h2.events.PingReceived)
        assert not peer.server.ping_outstanding

    def test_graceful_shutdown_lets_open_streams_finish(self) -> None:
        peer = Peer()
        open_stream = peer.request(body=b"part", end=False)
        peer.exchange()
        peer.server.start_shutdown()
        peer.exchange()
        goaway = peer.goaway()
        assert goaway is not None
        assert goaway.error_code == ErrorCodes.NO_ERROR
        assert goaway.last_stream_id == open_stream
        assert not peer.server.should_close
        # The open stream still receives and answers (h2 clients stop sending after a GOAWAY;
        # the RFC lets them finish streams up to last_stream_id).
        peer.client.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        peer.client.send_data(open_stream, b"-rest", end_stream=True)
        events = peer.exchange()
        assert BodyReceived(open_stream, b"-rest") in events
        respond(peer, open_stream, b"done")
        assert peer.body(open_stream) == b"done"
        assert peer.server.should_close

    def test_streams_after_our_goaway_are_refused(self) -> None:
        peer = Peer()
        first = peer.request(end=False)
        peer.exchange()
        peer.server.start_shutdown()
        peer.server.start_shutdown()  # idempotent
        peer.exchange()
        # A client that had not yet seen the GOAWAY: force h2 to allow a new stream.
        late = peer.client.get_next_available_stream_id()
        peer.client.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        peer.client.send_headers(
            late,
            [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"x")],
            end_stream=True,
        )
        assert peer.exchange() == []
        assert peer.of(h2.events.StreamReset, late)[0].error_code == ErrorCodes.REFUSED_STREAM
        respond(peer, first)

    def test_peer_goaway_lets_our_responses_finish(self) -> None:
        peer = Peer()
        stream_id = peer.request()
        peer.exchange()
        peer.client.close_connection()
        peer.exchange()
        assert not peer.server.should_close
        peer.client.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        respond(peer, stream_id, b"after goaway")
        assert peer.body(stream_id) == b"after goaway"
        assert peer.server.should_close

    def test_error_goaway_from_peer_aborts(self) -> None:
        peer = Peer()
        stream_id = peer.request()
        peer.exchange()
        peer.client.close_connection(ErrorCodes.INTERNAL_ERROR)
        assert StreamReset(stream_id) in peer.exchange()
        assert peer.server.should_close


# --------------------------------------------------------------------------- §8 messages
class TestMessages:
    def test_default_headers_and_lowercasing(self) -> None:
        defaults = DefaultHeaders([(b"Server", b"pronghorn")])
        peer = Peer(server=HTTP2Connection(defaults=defaults))
        stream_id = peer.request()
        peer.exchange()
        peer.server.send(
            Response(
                stream_id,
                201,
                [(b"X-Thing", b"1"), (b"Connection", b"close"), (b"transfer-encoding", b"chunked")],
            )
        )
        peer.server.send(Body(stream_id, b"", end=True))
        peer.exchange()
        (response,) = peer.of(h2.events.ResponseReceived, stream_id)
        headers = list(response.headers)
        assert headers[0] == (b":status", b"201")
        assert (b"server", b"pronghorn") in headers
        assert (b"x-thing", b"1") in headers
        assert not any(n in (b"connection", b"transfer-encoding") for n, _ in headers)
        # An empty final body ends the stream on the HEADERS frame itself.
        assert response.stream_ended is not None

    def test_app_header_overrides_default(self) -> None:
        defaults = DefaultHeaders([(b"server", b"pronghorn")])
        peer = Peer(server=HTTP2Connection(defaults=defaults))
        stream_id = peer.request()
        peer.exchange()
        peer.server.send(Response(stream_id, 200, [(b"server", b"mine")]))
        peer.server.send(Body(stream_id, b"", end=True))
        peer.exchange()
        headers = list(peer.of(h2.events.ResponseReceived)[0].headers)
        assert [v for n, v in headers if n == b"server"] == [b"mine"]

    def test_bad_header_value_is_the_apps_error(self) -> None:
        peer = Peer()
        stream_id = peer.request()
        peer.exchange()
        peer.server.send(Response(stream_id, 200, [(b"x", b"a\r\nb")]))
        with pytest.raises(ValueError, match="Invalid response header"):
            peer.server.send(Body(stream_id, b"", end=True))

    def test_a_repeated_head_is_checked_and_counted_every_time(self) -> None:
        # App heads are remembered once checked (heads.remember); what each response owes
        # (its Content-Length, a bad field's error, the overridden defaults) still holds.
        defaults = DefaultHeaders([(b"Server", b"pronghorn")])
        peer = Peer(server=HTTP2Connection(defaults=defaults))
        head = [(b"Server", b"mine"), (b"content-length", b"2")]
        for _ in range(2):
            stream_id = peer.request()
            peer.exchange()
            peer.server.send(Response(stream_id, 200, head))
            peer.server.send(Body(stream_id, b"ok", end=True))
            peer.server.app_finished(stream_id)
            peer.exchange()
            headers = list(peer.of(h2.events.ResponseReceived, stream_id)[0].headers)
            assert headers[1:] == [(b"server", b"mine"), (b"content-length", b"2")]
            stream_id = peer.request()
            peer.exchange()
            peer.server.send(Response(stream_id, 200, head))
            with pytest.raises(ResponseLengthError):
                peer.server.send(Body(stream_id, b"toolong", end=True))
            peer.server.app_finished(stream_id)
            stream_id = peer.request()
            peer.exchange()
            peer.server.send(Response(stream_id, 200, [(b"x", b"a\nb")]))
            with pytest.raises(ValueError, match="Invalid response header"):
                peer.server.send(Body(stream_id, b"", end=True))
            peer.server.app_finished(stream_id)
            peer.exchange()

    def test_unhashable_head_values_are_sent(self) -> None:
        peer = Peer()
        stream_id = peer.request()
        peer.exchange()
        peer.server.send(Response(stream_id, 200, [(b"x-list", bytearray(b"v"))]))  # type: ignore[list-item]
        peer.server.send(Body(stream_id, b"", end=True))
        peer.exchange()
        headers = list(peer.of(h2.events.ResponseReceived, stream_id)[0].headers)
        assert (b"x-list", b"v") in headers

    def test_head_response_has_no_body(self) -> None:
        peer = Peer()
        stream_id = peer.request(method=b"HEAD")
        peer.exchange()
        peer.server.send(Response(stream_id, 200, [(b"content-length", b"5")]))
        peer.server.send(Body(stream_id, b"hello", end=True))
        peer.exchange()
        assert peer.body(stream_id) == b""
        assert peer.of(h2.events.StreamEnded, stream_id)

    def test_content_length_mismatch_resets_and_raises(self) -> None:
        peer = Peer()
        stream_id = peer.request()
        peer.exchange()
        peer.server.send(Response(stream_id, 200, [(b"content-length", b"3")]))
        with pytest.raises(ResponseLengthError):
            peer.server.send(Body(stream_id, b"toolong", end=True))
        peer.exchange()
        assert peer.of(h2.events.StreamReset, stream_id)

    def test_trailers_both_ways(self) -> None:
        peer = Peer()
        stream_id = peer.request(method=b"POST", body=b"x", end=False)
        peer.client.send_headers(stream_id, [(b"x-checksum", b"abc")], end_stream=True)
        events = peer.exchange()
        assert RequestEnded(stream_id, [(b"x-checksum", b"abc")]) in events
        peer.server.send(Response(stream_id, 200, [], trailers_expected=True))
        peer.server.send(Body(stream_id, b"body", end=False))
        peer.server.send(Trailers(stream_id, [(b"X-Status", b"done")]))
        peer.exchange()
        assert peer.body(stream_id) == b"body"
        (trailers,) = peer.of(h2.events.TrailersReceived, stream_id)
        assert list(trailers.headers) == [(b"x-status", b"done")]

    def test_early_hints_and_continue(self) -> None:
        peer = Peer()
        stream_id = peer.request(method=b"POST", headers=[(b"expect", b"100-continue")], end=False)
        (request, *_) = peer.exchange()
        assert isinstance(request, RequestReceived)
        assert request.expect_continue
        peer.server.send(InformationalResponse(stream_id, 100))
        peer.server.send(InformationalResponse(stream_id, 100))  # sent once only
        peer.server.send(InformationalResponse(stream_id, 103, [(b"link", b"</s.css>")]))
        peer.exchange()
        informational = peer.of(h2.events.InformationalResponseReceived, stream_id)
        assert [dict(e.headers)[b":status"] for e in informational] == [b"100", b"103"]
        assert (b"link", b"</s.css>") in list(informational[1].headers)

    def test_response_after_response_is_our_bug(self) -> None:
        peer = Peer()
        stream_id = peer.request()
        peer.exchange()
        peer.server.send(Response(stream_id, 200, []))
        with pytest.raises(LocalProtocolError):
            peer.server.send(Response(stream_id, 200, []))

    def test_long_path_and_many_fields_are_refused_like_http1(self) -> None:
        peer = Peer(HTTP2Limits(max_path=50, max_headers=3))
        long_path = peer.request(b"/" + b"a" * 60)
        many = peer.request(headers=[(b"x-%d" % i, b"v") for i in range(4)])
        fine = peer.request(b"/ok", headers=[(b"x-1", b"v")])
        events = peer.exchange()
        assert [e.stream_id for e in events if isinstance(e, RequestReceived)] == [fine]
        statuses = {
            e.stream_id: dict(e.headers)[b":status"] for e in peer.of(h2.events.ResponseReceived)
        }
        assert statuses == {long_path: b"414", many: b"431"}

    def test_body_past_the_limit_gets_413(self) -> None:
        peer = Peer(HTTP2Limits(max_body=10))
        stream_id = peer.request(method=b"POST", body=b"x" * 8, end=False)
        peer.exchange()
        peer.client.send_data(stream_id, b"y" * 8, end_stream=True)
        events = peer.exchange()
        assert StreamReset(stream_id, ErrorCodes.CANCEL) in events
        (response,) = peer.of(h2.events.ResponseReceived, stream_id)
        assert dict(response.headers)[b":status"] == b"413"
        peer.server.app_finished(stream_id)
        assert peer.server.statistics()["active_streams"] == 0

    def test_body_after_the_response_is_discarded_but_acknowledged(self) -> None:
        peer = Peer(HTTP2Limits(initial_window_size=65535))
        stream_id = peer.request(method=b"POST", body=b"x" * 1000, end=False)
        peer.exchange()
        respond(peer, stream_id)
        send_body(peer, stream_id, b"y" * 60000, end=True)
        assert peer.server.next_events() == []
        assert peer.client.outbound_flow_control_window > 60000


# --------------------------------------------------------------------------- §8.4 push
class TestServerPush:
    def test_push_promise_opens_a_request_stream(self) -> None:
        peer = Peer()
        stream_id = peer.request(b"/page")
        peer.exchange()
        peer.server.send(PushPromise(stream_id, b"/style.css", [(b"accept", b"text/css")]))
        events = peer.exchange()
        pushed = events[0]
        assert isinstance(pushed, RequestReceived)
        assert pushed.target == b"/style.css"
        assert pushed.authority == b"example.com"
        assert pushed.stream_id % 2 == 0
        assert events[1] == RequestEnded(pushed.stream_id)
        (promise,) = peer.of(h2.events.PushedStreamReceived)
        assert dict(promise.headers)[b":path"] == b"/style.css"
        respond(peer, pushed.stream_id, b"body{}")
        respond(peer, stream_id, b"<html>")
        assert peer.body(pushed.stream_id) == b"body{}"

    def test_push_is_ignored_when_the_client_disables_it(self) -> None:
        peer = Peer(settings={S.ENABLE_PUSH: 0})
        stream_id = peer.request()
        peer.exchange()
        peer.server.send(PushPromise(stream_id, b"/x", []))
        assert peer.exchange() == []
        assert peer.of(h2.events.PushedStreamReceived) == []


# --------------------------------------------------------------------------- RFC 8441
class TestExtendedConnect:
    def connect(self, peer: Peer, protocol: bytes = b"websocket") -> int:
        stream_id: int = peer.client.get_next_available_stream_id()
        peer.client.send_headers(
            stream_id,
            [
                (b":method", b"CONNECT"),
                (b":protocol", protocol),
                (b":scheme", b"https"),
                (b":path", b"/chat"),
                (b":authority", b"example.com"),
                (b"sec-websocket-version", b"13"),
            ],
        )
        return stream_id

    def test_websocket_connect_becomes_a_tunnel(self) -> None:
        peer = Peer()
        stream_id = self.connect(peer)
        (request,) = peer.exchange()
        assert isinstance(request, RequestReceived)
        assert request.method == b"CONNECT"
        assert request.upgrade == b"websocket"
        assert request.target == b"/chat"
        peer.server.send(AcceptWebSocket(stream_id, subprotocol="chat"))
        peer.exchange()
        (response,) = peer.of(h2.events.ResponseReceived, stream_id)
        headers = dict(response.headers)
        assert headers[b":status"] == b"200"
        assert headers[b"sec-websocket-protocol"] == b"chat"
        peer.client.send_data(stream_id, b"\x81\x02hi")
        assert peer.exchange() == [BodyReceived(stream_id, b"\x81\x02hi")]
        peer.server.send(Body(stream_id, b"\x81\x02yo"))
        peer.exchange()
        assert peer.body(stream_id) == b"\x81\x02yo"
        with pytest.raises(LocalProtocolError):
            peer.server.send(WebSocketMessage(stream_id, "text"))

    def test_websocket_off_means_no_extended_connect(self) -> None:
        peer = Peer(HTTP2Limits(enable_connect_protocol=False))
        changed = peer.of(h2.events.RemoteSettingsChanged)[0].changed_settings
        assert changed[S.ENABLE_CONNECT_PROTOCOL].new_value == 0

    def test_unknown_protocol_gets_501(self) -> None:
        peer = Peer()
        stream_id = self.connect(peer, b"smtp")
        assert peer.exchange() == []
        (response,) = peer.of(h2.events.ResponseReceived, stream_id)
        assert dict(response.headers)[b":status"] == b"501"


def test_preface_constant_matches_h2() -> None:
    client = h2.connection.H2Connection()
    client.initiate_connection()
    assert client.data_to_send().startswith(PREFACE)
    assert SettingsFrame  # the import documents where frame builders come from
