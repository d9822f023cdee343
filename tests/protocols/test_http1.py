"""HTTP/1.1 core by bytes, grouped by RFC 9112 section. No loop, no sockets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pronghorn.errors import LocalProtocolError, ResponseLengthError
from pronghorn.protocols.events import (
    Body,
    BodyReceived,
    InboundEvent,
    InformationalResponse,
    ProtocolViolation,
    RequestEnded,
    RequestReceived,
    ResetStream,
    Response,
    StreamReset,
    Trailers,
)
from pronghorn.protocols.http1 import (
    DISCARD_LIMIT,
    HEAD_CACHE_SIZE,
    IDLE_PARSERS_MAX,
    PARSER_POOL,
    DefaultHeaders,
    HTTP1Connection,
    HTTP1Limits,
)
from pronghorn.protocols.output import COPY_LIMIT


def conn(**limits: int | None) -> HTTP1Connection:
    return HTTP1Connection(HTTP1Limits(**limits), DefaultHeaders([(b"server", b"test")]))  # type: ignore[arg-type]


def feed(c: HTTP1Connection, data: bytes) -> list[InboundEvent]:
    c.receive_data(data)
    return c.next_events()


def respond(c: HTTP1Connection, body: bytes = b"ok", headers: list | None = None) -> bytes:
    c.send(Response(1, 200, headers or []))
    c.send(Body(1, body, True))
    return c.data_to_send()


def violation(events: list[InboundEvent]) -> ProtocolViolation:
    found = [e for e in events if isinstance(e, ProtocolViolation)]
    assert found, events
    return found[0]


def served(c: HTTP1Connection, raw: bytes) -> tuple[list[InboundEvent], RequestReceived]:
    events = feed(c, raw)
    request = events[0]
    assert isinstance(request, RequestReceived)
    c.start_request(request)
    return events, request


# --------------------------------------------------------------------------- 2. message format
class TestMessageFormat:
    def test_simple_get(self) -> None:
        c = conn()
        events, request = served(c, b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n")
        assert request.method == b"GET"
        assert request.target == b"/a?b=1"
        assert request.http_version == "1.1"
        assert request.headers == [(b"host", b"x"), (b"x-a", b"1")]
        # No body: the head is the whole request (has_body=False), no RequestEnded follows.
        assert not request.has_body
        assert events == [request]

    def test_request_split_in_every_byte(self) -> None:
        c = conn()
        raw = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        events: list[InboundEvent] = []
        for i in range(len(raw)):
            events += feed(c, raw[i : i + 1])
        body = b"".join(e.data for e in events if isinstance(e, BodyReceived))
        assert body == b"hello"
        assert isinstance(events[-1], RequestEnded)

    def test_bare_lf_is_rejected(self) -> None:
        c = conn()
        assert violation(feed(c, b"GET / HTTP/1.1\nHost: x\n\n")).status == 400
        assert c.data_to_send().startswith(b"HTTP/1.1 400 ")
        assert c.should_close

    def test_garbage_is_400(self) -> None:
        c = conn()
        assert violation(feed(c, b"GARBAGE\r\n\r\n")).status == 400

    def test_http_0_9_and_unknown_versions(self) -> None:
        assert violation(feed(conn(), b"GET /\r\n\r\n")).status in (400, 505)
        assert violation(feed(conn(), b"GET / HTTP/1.2\r\nHost: x\r\n\r\n")).status == 505
        assert violation(feed(conn(), b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")).status in (400, 505)


# --------------------------------------------------------------------------- 3. request line
class TestRequestLine:
    def test_uri_too_long_is_414(self) -> None:
        c = conn(max_request_line=100)
        v = violation(feed(c, b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: x\r\n\r\n"))
        assert v.status == 414
        assert c.data_to_send().startswith(b"HTTP/1.1 414 ")

    def test_uri_too_long_without_end_is_414(self) -> None:
        c = conn(max_request_line=100, max_header_size=100)
        assert violation(feed(c, b"GET /" + b"a" * 500)).status == 414

    def test_missing_host_is_400(self) -> None:
        assert violation(feed(conn(), b"GET / HTTP/1.1\r\n\r\n")).status == 400

    def test_duplicate_host_is_400(self) -> None:
        raw = b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
        assert violation(feed(conn(), raw)).status == 400

    def test_http10_without_host_is_fine(self) -> None:
        events = feed(conn(), b"GET / HTTP/1.0\r\n\r\n")
        assert isinstance(events[0], RequestReceived)
        assert events[0].keep_alive is False

    @pytest.mark.parametrize(
        ("head", "version", "keep_alive"),
        [
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "1.1", True),
            (b"GET / HTTP/1.0\r\n\r\n", "1.0", False),
            # an empty line first: the parser's answer
            (b"\r\nGET / HTTP/1.0\r\n\r\n", "1.0", False),
            (b"GET /x%20HTTP/1.0 HTTP/1.1\r\nHost: x\r\n\r\n", "1.1", True),
            # Connection tokens change what keep-alive says; the version stays the line's.
            (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "1.1", False),
            (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", "1.1", True),
            (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", "1.0", True),
            (b"GET / HTTP/1.0\r\nConnection: x, keep-alive\r\n\r\n", "1.0", True),
            (b"GET / HTTP/1.0\r\nConnection: close\r\n\r\n", "1.0", False),
        ],
    )
    def test_the_request_gets_its_version(
        self, head: bytes, version: str, keep_alive: bool
    ) -> None:
        _, request = served(conn(), head)
        assert request.http_version == version
        assert request.keep_alive is keep_alive

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"GET / HTTP/1.0\r\n\r\n"),
            (
                b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            ),
        ],
    )
    def test_each_request_keeps_its_own_version(self, first: bytes, second: bytes) -> None:
        versions = [line.split(b"\r\n")[0][-3:].decode() for line in (first, second)]
        # Pipelined in one read: the second's version is the parser's.
        c = conn()
        _, request = served(c, first + second)
        respond(c)
        later = c.next_events()[0]
        assert isinstance(later, RequestReceived)
        assert [request.http_version, later.http_version] == versions
        # One read each, the connection at rest between them.
        c = conn()
        _, request = served(c, first)
        respond(c)
        c.rest()
        _, later = served(c, second)
        assert [request.http_version, later.http_version] == versions

    def test_a_version_the_line_names_is_still_checked(self) -> None:
        assert violation(feed(conn(), b"GET / HTTP/1.2\r\nHost: x\r\n\r\n")).status == 505
        assert violation(feed(conn(), b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")).status == 505
        # A keep-alive token makes llhttp keep any version alive: still checked.
        for version in (b"2.0", b"0.9"):
            raw = b"GET / HTTP/" + version + b"\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
            assert violation(feed(conn(), raw)).status == 505

    def test_absolute_form_target_passes(self) -> None:
        events = feed(conn(), b"GET http://x/y?z HTTP/1.1\r\nHost: x\r\n\r\n")
        assert isinstance(events[0], RequestReceived)
        assert events[0].target == b"http://x/y?z"


# --------------------------------------------------------------------------- 5. field syntax
class TestFields:
    def test_obs_fold_is_rejected(self) -> None:
        raw = b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n"
        assert violation(feed(conn(), raw)).status == 400

    @pytest.mark.parametrize("bad", [b"a\x00b", b"a\rb"])
    def test_nul_and_cr_in_values_are_rejected(self, bad: bytes) -> None:
        raw = b"GET / HTTP/1.1\r\nHost: x\r\nX: " + bad + b"\r\n\r\n"
        assert violation(feed(conn(), raw)).status == 400

    def test_space_before_colon_is_rejected(self) -> None:
        raw = b"GET / HTTP/1.1\r\nHost: x\r\nX : a\r\n\r\n"
        assert violation(feed(conn(), raw)).status == 400

    def test_too_many_headers_is_431(self) -> None:
        c = conn(max_headers=10)
        raw = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X%d: v\r\n" % i for i in range(20))
        assert violation(feed(c, raw + b"\r\n")).status == 431
        assert c.data_to_send().startswith(b"HTTP/1.1 431 ")

    def test_header_block_too_large_is_431(self) -> None:
        c = conn(max_header_size=1024)
        raw = b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 5000 + b"\r\n\r\n"
        assert violation(feed(c, raw)).status == 431

    def test_header_block_too_large_without_end_is_431(self) -> None:
        c = conn(max_header_size=1024, max_request_line=1024)
        events = feed(c, b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 5000)
        assert violation(events).status == 431


# --------------------------------------------------------------------------- 6. message body
class TestBody:
    def test_content_length_body(self) -> None:
        events = feed(conn(), b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        assert [type(e) for e in events] == [RequestReceived, BodyReceived, RequestEnded]
        assert isinstance(events[0], RequestReceived)
        assert events[0].has_body

    def test_chunked_body_and_trailers(self) -> None:
        raw = (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n"
        )
        events = feed(conn(), raw)
        body = b"".join(e.data for e in events if isinstance(e, BodyReceived))
        assert body == b"abcde"
        end = events[-1]
        assert isinstance(end, RequestEnded)
        assert end.trailers == [(b"x-sum", b"5")]

    def test_content_length_and_transfer_encoding_conflict(self) -> None:
        raw = (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        assert violation(feed(conn(), raw)).status == 400

    def test_duplicate_content_length(self) -> None:
        raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na"
        assert violation(feed(conn(), raw)).status == 400

    @pytest.mark.parametrize("coding", [b"gzip", b"gzip, chunked", b"identity"])
    def test_unsupported_transfer_encoding_is_501(self, coding: bytes) -> None:
        c = conn()
        raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + coding + b"\r\n\r\n0\r\n\r\n"
        events = feed(c, raw)
        assert violation(events).status == 501
        assert not any(isinstance(e, RequestReceived) for e in events)

    def test_body_over_limit_by_content_length_is_413_before_the_app(self) -> None:
        c = conn(max_body=10)
        events = feed(c, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n")
        assert violation(events).status == 413
        assert not any(isinstance(e, RequestReceived) for e in events)
        assert c.data_to_send().startswith(b"HTTP/1.1 413 ")

    def test_chunked_body_over_limit_is_413(self) -> None:
        c = conn(max_body=10)
        raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + b"a" * 32
        events = feed(c, raw)
        assert violation(events).status == 413
        assert c.should_close

    def test_smuggled_request_is_not_a_second_request(self) -> None:
        raw = (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Length: 4\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        c = conn()
        events = feed(c, raw)
        assert not [e for e in events if isinstance(e, RequestReceived)]
        assert c.should_close


# --------------------------------------------------------------------------- 9. connections
class TestConnection:
    def test_keep_alive_serves_two_requests(self) -> None:
        c = conn()
        served(c, b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"content-length: 2" in respond(c)
        assert not c.should_close
        _events, request = served(c, b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert request.target == b"/2"

    def test_pipelined_request_waits_for_the_first_response(self) -> None:
        c = conn()
        events = feed(c, b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert [e.target for e in events if isinstance(e, RequestReceived)] == [b"/1"]
        assert c.next_events() == []
        assert isinstance(events[0], RequestReceived)
        c.start_request(events[0])
        respond(c)
        second = c.next_events()
        assert isinstance(second[0], RequestReceived)
        assert second[0].target == b"/2"

    def test_pipelined_backlog_stops_reading(self) -> None:
        c = conn()
        c.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 1000)
        assert not c.wants_read

    def test_connection_close_request(self) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = respond(c)
        assert b"connection: close" in out
        assert c.should_close

    def test_http10_closes_unless_keep_alive(self) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.0\r\n\r\n")
        respond(c)
        assert c.should_close
        c = conn()
        served(c, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        out = respond(c)
        assert b"connection: keep-alive" in out.lower()
        assert not c.should_close

    def test_error_after_pipelined_request_waits_its_turn(self) -> None:
        c = conn()
        events = feed(c, b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nBROKEN\r\n\r\n")
        assert isinstance(events[0], RequestReceived)
        assert not any(isinstance(e, ProtocolViolation) for e in events)
        assert c.data_to_send() == b""
        c.start_request(events[0])
        out = respond(c)
        # The garbage is known before the first head is written: that response closes.
        assert out.startswith(b"HTTP/1.1 200 ")
        assert b"connection: close" in out
        assert c.should_close

    def test_eof_mid_body_resets_the_stream(self) -> None:
        c = conn()
        _events, _ = served(c, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        c.receive_eof()
        assert any(isinstance(e, StreamReset) for e in c.next_events())

    def test_eof_after_complete_request_still_answers(self) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        c.receive_eof()
        assert not c.should_close
        respond(c)
        assert c.should_close

    def test_graceful_shutdown_closes_after_the_response(self) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        c.start_shutdown()
        out = respond(c)
        assert b"connection: close" in out
        assert c.should_close

    def test_idle_keep_alive_connection_shutdown_closes_now(self) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        respond(c)
        assert not c.should_close
        c.start_shutdown()
        assert c.should_close

    def test_fresh_connection_shutdown_still_answers_its_first_request(self) -> None:
        c = conn()
        c.start_shutdown()
        assert not c.should_close
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        out = respond(c)
        assert b"connection: close" in out
        assert c.should_close
        assert c.next_events() == []  # the pipelined second request is not served


class TestUpgrade:
    def test_websocket_upgrade_stops_parsing_and_keeps_the_rest(self) -> None:
        c = conn()
        raw = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        events = feed(c, raw + b"\x81\x00")
        assert isinstance(events[0], RequestReceived)
        assert events[0].upgrade == b"websocket"
        assert c.trailing_data == b"\x81\x00"

    @pytest.mark.parametrize(
        ("framing", "body"),
        [
            (b"Content-Length: 5\r\n", b"hello"),
            (b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
        ],
    )
    def test_upgrade_with_a_body_is_served_as_http11(self, framing: bytes, body: bytes) -> None:
        c = conn()
        raw = (
            b"POST /p HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n"
            b"Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
            + framing
            + b"\r\n"
            + body
        )
        events = feed(c, raw + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        request = events[0]
        assert isinstance(request, RequestReceived)
        assert request.upgrade is None
        assert request.target == b"/p"
        assert b"".join(e.data for e in events if isinstance(e, BodyReceived)) == b"hello"
        assert isinstance(events[-1], RequestEnded)
        respond(c)
        following = c.next_events()
        assert isinstance(following[0], RequestReceived)
        assert following[0].target == b"/next"


# --------------------------------------------------------------------------- 6/7. responses
class TestResponses:
    def test_single_body_gets_content_length(self) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        out = respond(c, b"hello")
        assert out.startswith(b"HTTP/1.1 200 OK\r\nserver: test\r\n")
        assert out.endswith(b"content-length: 5\r\n\r\nhello")

    def test_streamed_body_is_chunked(self) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        c.send(Response(1, 200, []))
        c.send(Body(1, b"ab", False))
        c.send(Body(1, b"c", True))
        out = c.data_to_send()
        assert b"transfer-encoding: chunked\r\n" in out
        assert out.endswith(b"\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n")

    def test_small_output_is_taken_as_one_bytes_object(self) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        c.send(Response(1, 200, []))
        c.send(Body(1, b"hello", True))
        out = c.take_output()
        assert type(out) is bytes
        assert out.endswith(b"content-length: 5\r\n\r\nhello")
        assert c.take_output() == b""

    def test_large_output_is_taken_as_its_parts_uncopied(self) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        body = b"x" * COPY_LIMIT
        c.send(Response(1, 200, [(b"content-length", str(COPY_LIMIT).encode())]))
        c.send(Body(1, body, True))
        parts = c.take_output()
        assert isinstance(parts, list)
        assert parts[-1] is body  # the app's bytes object itself, not a copy
        assert b"".join(parts).startswith(b"HTTP/1.1 200 OK\r\n")
        assert c.take_output() == b""
        assert c.data_to_send() == b""

    def test_large_chunks_are_framed_around_not_copied(self) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        big = b"y" * (COPY_LIMIT + 1)
        c.send(Response(1, 200, []))
        c.send(Body(1, b"ab", False))
        c.send(Body(1, big, False))
        c.send(Body(1, b"", True))
        parts = c.take_output()
        assert isinstance(parts, list)
        assert any(part is big for part in parts)
        joined = b"".join(parts)
        assert joined.endswith(b"\r\n\r\n2\r\nab\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(big), big))
        # data_to_send() frames the same bytes, joined.
        c2 = conn()
        served(c2, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        c2.send(Response(1, 200, []))
        c2.send(Body(1, b"ab", False))
        c2.send(Body(1, big, False))
        c2.send(Body(1, b"", True))
        assert c2.data_to_send() == joined

    def test_http10_streamed_body_is_close_delimited(self) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        c.send(Response(1, 200, []))
        c.send(Body(1, b"ab", False))
        c.send(Body(1, b"c", True))
        out = c.data_to_send()
        assert b"chunked" not in out
        assert out.endswith(b"abc")
        assert c.should_close

    @pytest.mark.parametrize("status", [204, 304])
    def test_no_body_statuses(self, status: int) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        c.send(Response(1, status, []))
        c.send(Body(1, b"", True))
        out = c.data_to_send()
        assert b"content-length" not in out
        assert b"chunked" not in out
        assert out.endswith(b"\r\n\r\n")

    def test_head_keeps_content_length_and_drops_body(self) -> None:
        c = conn()
        served(c, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        out = respond(c, b"hello", [(b"content-length", b"5")])
        assert b"content-length: 5\r\n" in out
        assert out.endswith(b"\r\n\r\n")

    def test_body_longer_than_content_length(self) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        c.send(Response(1, 200, [(b"content-length", b"2")]))
        with pytest.raises(ResponseLengthError):
            c.send(Body(1, b"abc", True))
        assert c.should_close

    def test_body_shorter_than_content_length(self) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        c.send(Response(1, 200, [(b"content-length", b"5")]))
        c.send(Body(1, b"ab", False))
        with pytest.raises(ResponseLengthError):
            c.send(Body(1, b"", True))
        assert c.should_close

    def test_header_injection_is_refused(self) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        c.send(Response(1, 200, [(b"x", b"a\r\nset-cookie: evil")]))
        with pytest.raises(ValueError, match="Invalid response header"):
            c.send(Body(1, b"", True))

    def test_a_repeated_header_list_is_encoded_once_and_framed_per_request(self) -> None:
        defaults = DefaultHeaders([(b"server", b"test")])
        headers = [(b"content-type", b"text/plain"), (b"connection", b"close")]
        for raw, expected_tail in (
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"content-length: 2\r\nconnection: close"),
            (b"GET / HTTP/1.0\r\n\r\n", b"content-length: 2\r\nconnection: close"),
        ):
            c = HTTP1Connection(HTTP1Limits(), defaults)
            served(c, raw)
            out = respond(c, b"ok", list(headers))
            assert out.count(b"connection:") == 1
            assert b"content-type: text/plain\r\n" + expected_tail in out
            assert c.should_close
        assert list(defaults.heads) == [tuple(headers)]
        # Keep-alive is the request's, not the cached list's.
        c = HTTP1Connection(HTTP1Limits(), defaults)
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        respond(c, b"ok", [(b"content-type", b"text/plain")])
        assert not c.should_close

    def test_an_invalid_header_list_is_refused_every_time(self) -> None:
        defaults = DefaultHeaders([])
        for _ in range(2):
            c = HTTP1Connection(HTTP1Limits(), defaults)
            served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            c.send(Response(1, 200, [(b"x", b"a\nb")]))
            with pytest.raises(ValueError, match="Invalid response header"):
                c.send(Body(1, b"", True))
        assert defaults.heads == {}

    def test_unhashable_and_varying_header_lists_stay_bounded(self) -> None:
        defaults = DefaultHeaders([])
        for i in range(HEAD_CACHE_SIZE + 10):
            c = HTTP1Connection(HTTP1Limits(), defaults)
            served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            value = b"%d" % i
            out = respond(c, b"", [[b"x-n", value]] if i % 2 else [(b"x-n", value)])  # type: ignore[list-item]
            assert b"x-n: " + value + b"\r\n" in out
            assert len(defaults.heads) <= HEAD_CACHE_SIZE

    def test_app_server_header_overrides_the_default(self) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        out = respond(c, b"", [(b"Server", b"mine")])
        assert out.count(b"erver:") == 1
        assert b"Server: mine" in out

    def test_trailers(self) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n")
        c.send(Response(1, 200, [], trailers_expected=True))
        c.send(Body(1, b"abc", False))
        c.send(Trailers(1, [(b"x-checksum", b"1")]))
        out = c.data_to_send()
        assert out.endswith(b"3\r\nabc\r\n0\r\nx-checksum: 1\r\n\r\n")

    def test_100_continue_and_103(self) -> None:
        c = conn()
        served(
            c, b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
        )
        c.send(InformationalResponse(1, 100))
        c.send(InformationalResponse(1, 103, [(b"link", b"</a>; rel=preload")]))
        assert c.data_to_send() == (
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\nlink: </a>; rel=preload\r\n\r\n"
        )

    def test_uninvited_body_closes_after_the_response(self) -> None:
        c = conn()
        served(
            c, b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        assert b"connection: close\r\n" in respond(c)
        assert c.should_close

    def test_reset_closes(self) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        c.send(Response(1, 200, []))
        c.send(Body(1, b"partial", False))
        c.send(ResetStream(1))
        assert c.should_close

    def test_misuse_raises_local_protocol_error(self) -> None:
        c = conn()
        with pytest.raises(LocalProtocolError):
            c.send(Body(1, b"", True))

    @pytest.mark.parametrize(
        ("rest", "reason"),
        [
            (b"zz\r\nhello\r\n0\r\n\r\n", "Invalid character in chunk size"),
            (b"0\r\nX-T: " + b"a" * 2000 + b"\r\n\r\n", "Request header block too large"),
            (b"5\r\nhello\r\n0\r\nBad Trailer\r\n\r\n", "Invalid header"),
        ],
        ids=["bad-chunk-size", "trailers-too-large", "bad-trailer"],
    )
    def test_bad_body_of_an_answered_request_closes_without_a_second_answer(
        self, rest: bytes, reason: str
    ) -> None:
        # The app answered before reading the body; what is left is discarded. An error in
        # it must not be answered: the client would take that answer for its next request's.
        c = conn(max_header_size=1024)
        served(c, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        answer = respond(c)
        assert answer.startswith(b"HTTP/1.1 200 ")
        events = feed(c, rest + b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert [type(e) for e in events] == [ProtocolViolation]
        assert reason.lower() in violation(events).reason.lower()
        assert c.should_close
        assert c.data_to_send() == b""  # no second answer

    def test_bad_body_of_the_request_being_answered_still_gets_an_answer(self) -> None:
        c = conn()
        served(c, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        events = feed(c, b"zz\r\n")
        assert violation(events).status == 400
        assert c.data_to_send().startswith(b"HTTP/1.1 400 ")

    def test_a_large_unread_body_closes_after_the_answer(self) -> None:
        # Reading 10 MB only to drop it costs more than the client's next connection.
        c = conn()
        served(c, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\nabc")
        answer = respond(c)
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert b"connection: close\r\n" in answer  # said, so no client reuses it
        assert c.should_close

    def test_an_unread_body_within_the_discard_limit_keeps_the_connection(self) -> None:
        c = conn()
        size = DISCARD_LIMIT + 3
        served(c, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\nabc" % size)
        assert b"connection: close" not in respond(c)
        assert not c.should_close
        events = feed(c, bytes(DISCARD_LIMIT) + b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert [type(e) for e in events] == [RequestReceived]

    def test_an_unread_chunked_body_is_cut_off_at_the_discard_limit(self) -> None:
        c = conn()
        served(c, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        respond(c)
        assert not c.should_close  # the rest may be short
        chunk = b"%x\r\n%s\r\n" % (65536, bytes(65536))
        events = feed(c, chunk * 3)
        assert events == []
        assert not c.should_close
        events = feed(c, chunk * 2)
        assert [type(e) for e in events] == [ProtocolViolation]
        assert c.should_close
        assert c.data_to_send() == b""  # closes after the app's answer, with no other

    def test_late_body_of_answered_request_is_discarded(self) -> None:
        c = conn()
        served(c, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc")
        respond(c)
        events = feed(c, b"defGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert [type(e) for e in events] == [RequestReceived]


# --------------------------------------------------------------------------- robustness
@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=20))
def test_no_input_makes_the_core_raise_or_grow(chunks: list[bytes]) -> None:
    c = conn(max_header_size=4096, max_request_line=1024)
    for chunk in chunks:
        c.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n" + chunk if chunk[:1] == b"!" else chunk)
        c.next_events()
        assert len(c.data_to_send()) < 100_000
    assert c.statistics()["backlog_bytes"] < 200_000


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=300))
def test_garbage_after_a_valid_head(tail: bytes) -> None:
    c = conn()
    c.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + tail)
    c.next_events()
    c.receive_eof()
    c.next_events()


# --------------------------------------------------------------------------- the parser pool
def held(c: HTTP1Connection) -> int:
    return c.statistics()["parser_held"]


class TestParserPool:
    """A connection at rest gives its parser back; whatever arrives next parses the same."""

    def test_the_pool_holds_every_busy_connections_parser_and_trims_unused_ones(self) -> None:
        PARSER_POOL.idle.clear()
        PARSER_POOL.trim()
        conns = [conn() for _ in range(300)]  # more than were ever pooled before (256)
        for c in conns:
            served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        for c in conns:
            respond(c)
            c.rest()
        pooled = {id(slot) for slot in PARSER_POOL.idle}
        assert len(pooled) == 300
        for c in conns:
            served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            respond(c)
        # Every request took a pooled parser: none was built.
        assert {id(c._slot) for c in conns} == pooled
        for c in conns[:100]:
            c.rest()
        assert PARSER_POOL.trim() == 0  # the pool ran dry since the last trim: all were needed
        assert PARSER_POOL.trim() == 100  # a whole interval unused: freed
        assert PARSER_POOL.idle == []
        assert IDLE_PARSERS_MAX >= 1000

    def test_an_answered_connection_gives_its_parser_back(self) -> None:
        c = conn()
        served(c, b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
        respond(c)
        assert held(c) == 1
        c.rest()
        assert held(c) == 0
        _, request = served(c, b"GET /2 HTTP/1.1\r\nHost: y\r\nX-A: 1\r\n\r\n")
        assert held(c) == 1
        assert (request.target, request.headers) == (b"/2", [(b"host", b"y"), (b"x-a", b"1")])

    def test_a_parser_moves_between_connections_without_state(self) -> None:
        first, second = conn(), conn()
        served(first, b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
        respond(first)
        first.rest()  # its parser goes to the pool ...
        served(second, b"POST /b HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\n")
        # ... and the second connection, mid-body, may hold that same parser now.
        events = feed(first, b"GET /c HTTP/1.1\r\nHost: c\r\n\r\n")
        assert isinstance(events[0], RequestReceived)
        assert (events[0].target, events[0].headers) == (b"/c", [(b"host", b"c")])
        assert [type(e) for e in feed(second, b"xyz")] == [BodyReceived, RequestEnded]

    @pytest.mark.parametrize(
        ("after_answer", "rest_then"),
        [
            # the first bytes of a method: llhttp has started the next message
            (b"GE", b"T /n HTTP/1.1\r\nHost: x\r\n\r\n"),
            # part of the next head
            (b"GET /n HTTP/1.1\r\nHo", b"st: x\r\n\r\n"),
        ],
    )
    def test_a_partly_received_request_keeps_its_parser(
        self, after_answer: bytes, rest_then: bytes
    ) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        respond(c)
        assert feed(c, after_answer) == []
        c.rest()
        assert held(c) == 1
        events = feed(c, rest_then)
        assert isinstance(events[0], RequestReceived)
        assert events[0].target == b"/n"

    def test_an_unread_body_keeps_its_parser(self) -> None:
        c = conn()
        served(c, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc")
        respond(c)  # answered before the body ended
        c.rest()
        assert held(c) == 1
        events = feed(c, b"defGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert [type(e) for e in events] == [RequestReceived]

    def test_a_pipelined_request_keeps_its_parser(self) -> None:
        c = conn()
        served(c, b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
        respond(c)
        c.rest()
        assert held(c) == 1
        request = c.next_events()[0]
        assert isinstance(request, RequestReceived)
        assert request.target == b"/2"

    @pytest.mark.parametrize(
        "raw",
        [
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
        ],
    )
    def test_a_closing_connection_keeps_its_parser(self, raw: bytes) -> None:
        # llhttp refuses input after a message that ends the connection: no other may get it.
        c = conn()
        served(c, raw)
        respond(c)
        c.rest()
        assert held(c) == 1

    def test_a_stopped_parser_is_never_pooled(self) -> None:
        c = conn()
        served(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        respond(c)
        feed(c, b"\x00garbage")  # a violation stops this parser for good
        c.rest()
        assert held(c) == 1
        eof = conn()
        served(eof, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        eof.receive_eof()
        respond(eof)
        eof.rest()
        assert held(eof) == 1


_POOL_REQUESTS = [
    b"GET /plain HTTP/1.1\r\nHost: x\r\nX-Long: " + b"v" * 300 + b"\r\n\r\n",
    b"POST /len HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n",
    b"\r\nGET /after-crlf?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
]


def _drive(core: HTTP1Connection, chunk: bytes, rests: bool) -> list[tuple[object, ...]]:
    """Feed a chunk, answer every request at once, rest when allowed; the events seen."""
    seen: list[tuple[object, ...]] = []
    core.receive_data(chunk)
    while events := core.next_events():
        for event in events:
            if isinstance(event, RequestReceived):
                seen.append(("request", event.target, tuple(event.headers), event.has_body))
                respond(core)
            elif isinstance(event, BodyReceived):
                seen.append(("body", event.data))
            elif isinstance(event, RequestEnded):
                seen.append(("end", tuple(event.trailers or ())))
            else:
                seen.append((type(event).__name__,))
        if rests:
            core.rest()
    if rests:
        core.rest()
    return seen


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_POOL_REQUESTS), min_size=1, max_size=6),
    st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=12),
)
def test_resting_between_reads_changes_no_event(requests: list[bytes], cuts: list[int]) -> None:
    """Two resting connections fed alternately (so parsers move between them) see exactly
    what a connection that never rests sees, however the bytes are cut."""
    stream = b"".join(requests)
    chunks, start = [], 0
    for size in cuts:
        chunks.append(stream[start : start + size])
        start += size
    chunks.append(stream[start:])
    chunks = [chunk for chunk in chunks if chunk]
    reference, left, right = conn(), conn(), conn()
    expected = [event for chunk in chunks for event in _drive(reference, chunk, rests=False)]
    seen_left: list[tuple[object, ...]] = []
    seen_right: list[tuple[object, ...]] = []
    for chunk in chunks:
        seen_left += _drive(left, chunk, rests=True)
        seen_right += _drive(right, chunk, rests=True)
    assert seen_left == expected
    assert seen_right == expected
    assert [e for e in expected if e[0] == "request"] == [e for e in seen_left if e[0] == "request"]
    assert len([e for e in expected if e[0] == "request"]) == len(requests)
