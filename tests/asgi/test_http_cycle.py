"""HTTPCycle by ASGI dicts: every legal path and every illegal transition. No loop."""

from __future__ import annotations

import sys
from types import MappingProxyType
from typing import Any

import pytest

from pronghorn.asgi.http import _TRANSITIONS, HTTPCycle, SendState
from pronghorn.errors import AppProtocolError
from pronghorn.protocols.events import (
    Body,
    InformationalResponse,
    OutboundEvent,
    PushPromise,
    RequestReceived,
    ResetStream,
    Response,
    Trailers,
)
from pronghorn.protocols.http1 import HTTP1Connection

MESSAGES: dict[str, dict[str, Any]] = {
    "http.response.start": {"type": "http.response.start", "status": 200},
    "http.response.body": {"type": "http.response.body", "body": b"x", "more_body": True},
    "http.response.trailers": {"type": "http.response.trailers", "headers": []},
    "http.response.early_hint": {"type": "http.response.early_hint", "links": [b"</a>"]},
    "http.response.push": {"type": "http.response.push", "path": "/a", "headers": []},
    "http.response.pathsend": {"type": "http.response.pathsend", "path": "/tmp/x"},
    "http.response.bogus": {"type": "http.response.bogus"},
}


def make(**kwargs: Any) -> tuple[HTTPCycle, list[OutboundEvent]]:
    events: list[OutboundEvent] = []
    kwargs.setdefault("has_body", False)
    return HTTPCycle(1, events.append, **kwargs), events


def in_state(state: SendState) -> tuple[HTTPCycle, list[OutboundEvent]]:
    cycle, events = make()
    if state is SendState.START:
        return cycle, events
    cycle.send({"type": "http.response.start", "status": 200, "trailers": True})
    if state is SendState.BODY:
        return cycle, events
    cycle.send({"type": "http.response.body", "body": b""})
    if state is SendState.TRAILERS:
        return cycle, events
    cycle.send({"type": "http.response.trailers", "headers": []})
    assert cycle.send_state is SendState.DONE
    return cycle, events


@pytest.mark.parametrize("state", list(SendState))
@pytest.mark.parametrize("kind", list(MESSAGES))
def test_transition_table_is_enforced(state: SendState, kind: str) -> None:
    cycle, _ = in_state(state)
    if (state, kind) in _TRANSITIONS:
        cycle.send(MESSAGES[kind])
    else:
        with pytest.raises(AppProtocolError):
            cycle.send(MESSAGES[kind])


class TestSend:
    def test_start_and_single_body(self) -> None:
        cycle, events = make()
        cycle.send({"type": "http.response.start", "status": 201, "headers": [(b"a", b"b")]})
        cycle.send({"type": "http.response.body", "body": b"hi"})
        assert events == [Response(1, 201, [(b"a", b"b")], False), Body(1, b"hi", True)]
        assert cycle.response_complete
        assert cycle.status == 201
        assert cycle.bytes_sent == 2

    def test_streaming(self) -> None:
        cycle, events = make()
        cycle.send({"type": "http.response.start", "status": 200})
        cycle.send({"type": "http.response.body", "body": b"a", "more_body": True})
        cycle.send({"type": "http.response.body", "body": bytearray(b"b")})
        assert events[1:] == [Body(1, b"a", False), Body(1, b"b", True)]

    def test_trailers_end_the_response(self) -> None:
        cycle, events = make()
        cycle.send({"type": "http.response.start", "status": 200, "trailers": True})
        cycle.send({"type": "http.response.body", "body": b"a"})
        assert cycle.send_state is SendState.TRAILERS
        cycle.send(
            {"type": "http.response.trailers", "headers": [(b"x", b"1")], "more_trailers": True}
        )
        cycle.send({"type": "http.response.trailers", "headers": [(b"y", b"2")]})
        assert events[-1] == Trailers(1, [(b"x", b"1"), (b"y", b"2")])
        assert cycle.response_complete

    def test_early_hint_and_push(self) -> None:
        cycle, events = make(supports_push=True)
        cycle.send(MESSAGES["http.response.early_hint"])
        cycle.send(MESSAGES["http.response.push"])
        assert events == [
            InformationalResponse(1, 103, [(b"link", b"</a>")]),
            PushPromise(1, b"/a", []),
        ]

    def test_push_is_ignored_without_support(self) -> None:
        cycle, events = make(supports_push=False)
        cycle.send(MESSAGES["http.response.push"])
        assert events == []

    def test_pathsend_returns_the_path(self) -> None:
        cycle, events = make()
        cycle.send({"type": "http.response.start", "status": 200})
        assert cycle.send({"type": "http.response.pathsend", "path": "/f"}) == "/f"
        cycle.pathsend_done()
        assert events[-1] == Body(1, b"", True)

    @pytest.mark.parametrize(
        "message",
        [
            {"type": "http.response.start", "status": "200"},
            {"type": "http.response.start", "status": 101},
            {"type": "http.response.start", "status": 99},
            {"type": "http.response.start", "status": 600},
            # Lists are checked by the core's encoder; any other iterable is checked here.
            {"type": "http.response.start", "status": 200, "headers": (("a", "b"),)},
            {"type": "http.response.start", "status": 200, "headers": ((b"a",),)},
            {"type": "http.response.start", "status": 200, "headers": b"a: b"},
            {"status": 200},
            {"type": b"http.response.start", "status": 200},
            {"type": ["http.response.start"], "status": 200},
            "not a dict",
            None,
            [("type", "http.response.start"), ("status", 200)],
        ],
    )
    def test_invalid_start(self, message: Any) -> None:
        cycle, _ = make()
        with pytest.raises(AppProtocolError):
            cycle.send(message)

    @pytest.mark.parametrize(
        "message",
        [
            {"type": "http.response.body", "body": "text"},
            {"type": "http.response.body", "body": 1},
        ],
    )
    def test_invalid_body(self, message: Any) -> None:
        cycle, _ = make()
        cycle.send({"type": "http.response.start", "status": 200})
        with pytest.raises(AppProtocolError):
            cycle.send(message)

    def test_a_mapping_that_is_no_dict_is_a_message(self) -> None:
        cycle, events = make()
        cycle.send(MappingProxyType({"type": "http.response.start", "status": 201}))
        cycle.send(MappingProxyType({"type": "http.response.body", "body": b"ok"}))
        assert cycle.send_state is SendState.DONE
        assert [type(event) for event in events] == [Response, Body]
        assert isinstance(events[0], Response)
        assert events[0].status == 201

    def test_invalid_hints_push_and_pathsend(self) -> None:
        cycle, _ = make()
        with pytest.raises(AppProtocolError):
            cycle.send({"type": "http.response.early_hint", "links": ["</a>"]})
        with pytest.raises(AppProtocolError):
            cycle.send({"type": "http.response.push", "path": "relative"})
        cycle.send({"type": "http.response.start", "status": 200})
        with pytest.raises(AppProtocolError):
            cycle.send({"type": "http.response.pathsend", "path": b"/bytes"})


class TestAppFinished:
    def test_no_response_gives_500(self) -> None:
        cycle, events = make()
        assert cycle.app_finished(failed=True)
        response = events[0]
        assert isinstance(response, Response)
        assert response.status == 500
        assert events[1] == Body(1, b"Internal Server Error", True)
        assert cycle.status == 500

    def test_started_response_is_reset(self) -> None:
        cycle, events = make()
        cycle.send({"type": "http.response.start", "status": 200})
        cycle.send({"type": "http.response.body", "body": b"a", "more_body": True})
        cycle.app_finished(failed=True)
        assert events[-1] == ResetStream(1)

    def test_complete_response_needs_nothing(self) -> None:
        cycle, events = in_state(SendState.DONE)
        count = len(events)
        assert not cycle.app_finished(failed=False)
        assert len(events) == count

    def test_disconnected_client_gets_no_500(self) -> None:
        cycle, events = make()
        cycle.disconnected()
        cycle.app_finished(failed=True)
        assert events == [ResetStream(1)]


class TestReceive:
    def test_no_body_request(self) -> None:
        cycle, _ = make(has_body=False)
        assert cycle.next_message() == {"type": "http.request", "body": b"", "more_body": False}
        assert cycle.next_message() is None  # wait for a disconnect

    def test_body_chunks_are_joined(self) -> None:
        cycle, _ = make(has_body=True)
        assert cycle.next_message() is None
        cycle.body_received(b"ab")
        cycle.body_received(b"cd")
        assert cycle.buffered == 4
        assert cycle.next_message() == {"type": "http.request", "body": b"abcd", "more_body": True}
        cycle.request_ended()
        assert cycle.next_message() == {"type": "http.request", "body": b"", "more_body": False}

    def test_last_chunk_carries_more_body_false(self) -> None:
        cycle, _ = make(has_body=True)
        cycle.body_received(b"ab")
        cycle.request_ended()
        assert cycle.next_message() == {"type": "http.request", "body": b"ab", "more_body": False}

    def test_disconnect_wins(self) -> None:
        cycle, _ = make(has_body=True)
        cycle.body_received(b"ab")
        cycle.disconnected()
        assert cycle.next_message() == {"type": "http.disconnect"}

    def test_disconnect_after_the_response(self) -> None:
        cycle, _ = make(has_body=False)
        cycle.next_message()
        cycle.send({"type": "http.response.start", "status": 200})
        cycle.send({"type": "http.response.body"})
        assert cycle.next_message() == {"type": "http.disconnect"}

    def test_continue_is_due_once_and_only_before_the_body(self) -> None:
        cycle, _ = make(has_body=True, expect_continue=True)
        assert cycle.take_continue()
        assert not cycle.take_continue()
        cycle, _ = make(has_body=True, expect_continue=True)
        cycle.body_received(b"early")
        assert not cycle.take_continue()
        cycle, _ = make(has_body=False, expect_continue=True)
        assert not cycle.take_continue()


class TestDirectCore:
    """The HTTP/1.1 core takes heads and bodies by direct calls instead of events."""

    @staticmethod
    def core() -> HTTP1Connection:
        core = HTTP1Connection()
        core.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        request = core.next_events()[0]
        assert isinstance(request, RequestReceived)
        core.start_request(request)
        return core

    def test_response_and_body_go_to_the_direct_core(self) -> None:
        direct = self.core()
        cycle, events = make(direct=direct)
        cycle.send({"type": "http.response.start", "status": 201, "headers": [(b"a", b"b")]})
        cycle.send({"type": "http.response.body", "body": b"x", "more_body": True})
        cycle.send({"type": "http.response.body", "body": bytearray(b"y")})  # the slow path
        out = direct.data_to_send()
        assert out.startswith(b"HTTP/1.1 201 Created\r\n")
        assert b"\r\na: b\r\n" in out
        assert out.endswith(b"\r\n\r\n1\r\nx\r\n1\r\ny\r\n0\r\n\r\n")
        assert events == []
        assert cycle.send_state is SendState.DONE

    def test_other_events_go_to_the_direct_core_too(self) -> None:
        direct = self.core()
        cycle = HTTPCycle(1, None, False, direct=direct)
        cycle.send({"type": "http.response.start", "status": 200, "trailers": True})
        cycle.send({"type": "http.response.body", "body": b"x"})
        cycle.send({"type": "http.response.trailers", "headers": [(b"a", b"b")]})
        assert cycle.send_state is SendState.DONE
        assert direct.data_to_send().endswith(b"\r\n1\r\nx\r\n0\r\na: b\r\n\r\n")
        failed = self.core()
        cycle = HTTPCycle(1, None, False, direct=failed)
        cycle.app_finished(failed=True)
        assert failed.data_to_send().startswith(b"HTTP/1.1 500 Internal Server Error\r\n")

    def test_without_emit_a_direct_core_is_required(self) -> None:
        with pytest.raises(TypeError):
            HTTPCycle(1, None, False)


def test_a_cycle_refers_to_nothing_that_refers_back() -> None:
    # A cycle per request would leave every finished request to the garbage collector
    # (the HTTP/2 path once stored bound methods of itself).
    cycle, _events = make()
    assert sys.getrefcount(cycle) == 2  # the local name and getrefcount's argument
    cycle.body_received(b"x")
    cycle.send({"type": "http.response.start", "status": 200, "trailers": True})
    cycle.send({"type": "http.response.body", "body": b"x"})
    cycle.send({"type": "http.response.trailers", "headers": [(b"a", b"b")]})
    assert sys.getrefcount(cycle) == 2
