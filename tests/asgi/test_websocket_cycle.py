"""WebSocketCycle: ASGI WebSocket messages (spec 2.5) in, events out; every illegal transition."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from pronghorn.asgi.websocket import State, WebSocketCycle
from pronghorn.errors import AppProtocolError, ClientDisconnected
from pronghorn.protocols.events import (
    AcceptWebSocket,
    Body,
    CloseWebSocket,
    OutboundEvent,
    ResetStream,
    Response,
    WebSocketMessage,
)

ACCEPT = {"type": "websocket.accept"}
SEND_TEXT = {"type": "websocket.send", "text": "hi"}
CLOSE = {"type": "websocket.close"}
START = {"type": "websocket.http.response.start", "status": 401, "headers": []}
BODY = {"type": "websocket.http.response.body", "body": b"no"}

ALL_MESSAGES: list[dict[str, Any]] = [ACCEPT, SEND_TEXT, CLOSE, START, BODY]


class Harness:
    def __init__(self, **kwargs: Any) -> None:
        self.events: list[OutboundEvent] = []
        self.cycle = WebSocketCycle(3, self.events.append, **kwargs)

    def take(self) -> list[OutboundEvent]:
        events = list(self.events)
        self.events.clear()  # in place: the cycle holds the bound append
        return events


def in_state(state: State) -> Harness:
    h = Harness()
    assert h.cycle.next_message() == {"type": "websocket.connect"}
    if state is State.OPEN:
        h.cycle.send(ACCEPT)
    elif state is State.APP_CLOSED:
        h.cycle.send(ACCEPT)
        h.cycle.send(CLOSE)
    elif state is State.RESPONDING:
        h.cycle.send(START)
    elif state is State.DENIED:
        h.cycle.send(CLOSE)
    elif state is State.CLOSED:
        h.cycle.send(ACCEPT)
        h.cycle.closed(1001, "away")
    assert h.cycle.state is state
    h.take()
    return h


# --------------------------------------------------------------------------- receive()
class TestReceive:
    def test_connect_first_then_wait(self) -> None:
        h = Harness()
        assert h.cycle.next_message() == {"type": "websocket.connect"}
        assert h.cycle.next_message() is None

    def test_messages_in_order_then_disconnect_with_code_and_reason(self) -> None:
        h = in_state(State.OPEN)
        h.cycle.message_received("text")
        h.cycle.message_received(b"bytes")
        assert h.cycle.queued == 2
        h.cycle.closed(1000, "bye")
        assert h.cycle.next_message() == {"type": "websocket.receive", "text": "text"}
        assert h.cycle.queued == 1
        assert h.cycle.next_message() == {"type": "websocket.receive", "bytes": b"bytes"}
        assert h.cycle.queued == 0
        disconnect = {"type": "websocket.disconnect", "code": 1000, "reason": "bye"}
        assert h.cycle.next_message() == disconnect
        assert h.cycle.next_message() == disconnect  # stays answered

    def test_lost_during_handshake(self) -> None:
        h = Harness()
        h.cycle.closed(1006)
        assert h.cycle.next_message() == {"type": "websocket.connect"}
        assert h.cycle.next_message() == {
            "type": "websocket.disconnect",
            "code": 1006,
            "reason": "",
        }

    def test_app_close_drops_what_it_had_not_read(self) -> None:
        h = in_state(State.OPEN)
        h.cycle.message_received("unread")
        assert h.cycle.queued == 1
        h.cycle.send({"type": "websocket.close"})
        assert h.cycle.queued == 0
        assert h.cycle.next_message() is None

    def test_data_after_app_close_is_dropped(self) -> None:
        h = in_state(State.APP_CLOSED)
        h.cycle.message_received("late")
        assert h.cycle.next_message() is None
        h.cycle.closed(1000)
        assert h.cycle.next_message() == {
            "type": "websocket.disconnect",
            "code": 1000,
            "reason": "",
        }

    @pytest.mark.parametrize("code", [1002, 1007, 1009, 1011, 1012])
    def test_failure_codes_reach_the_app(self, code: int) -> None:
        h = in_state(State.OPEN)
        h.cycle.closed(code, "why")
        assert h.cycle.next_message() == {
            "type": "websocket.disconnect",
            "code": code,
            "reason": "why",
        }


# --------------------------------------------------------------------------- legal sends
class TestLegalSends:
    def test_accept_with_subprotocol_and_headers(self) -> None:
        h = in_state(State.HANDSHAKE)
        h.cycle.send(
            {"type": "websocket.accept", "subprotocol": "chat", "headers": [(b"x-a", b"1")]}
        )
        assert h.take() == [AcceptWebSocket(3, "chat", [(b"x-a", b"1")])]
        assert h.cycle.state is State.OPEN

    def test_a_mapping_that_is_no_dict_is_a_message(self) -> None:
        h = in_state(State.OPEN)
        h.cycle.send(MappingProxyType({"type": "websocket.send", "text": "t"}))
        assert h.take() == [WebSocketMessage(3, "t")]

    def test_send_text_and_bytes(self) -> None:
        h = in_state(State.OPEN)
        h.cycle.send({"type": "websocket.send", "text": "t"})
        h.cycle.send({"type": "websocket.send", "bytes": b"b", "text": None})
        h.cycle.send({"type": "websocket.send", "bytes": bytearray(b"ba")})
        assert h.take() == [
            WebSocketMessage(3, "t"),
            WebSocketMessage(3, b"b"),
            WebSocketMessage(3, b"ba"),
        ]

    def test_close_with_code_and_reason(self) -> None:
        h = in_state(State.OPEN)
        h.cycle.send({"type": "websocket.close", "code": 4000, "reason": "done"})
        assert h.take() == [CloseWebSocket(3, 4000, "done")]
        assert h.cycle.state is State.APP_CLOSED

    def test_close_defaults_to_1000(self) -> None:
        h = in_state(State.OPEN)
        h.cycle.send({"type": "websocket.close", "code": None, "reason": None})
        assert h.take() == [CloseWebSocket(3, 1000, "")]

    def test_long_reason_truncated_to_fit_a_close_frame(self) -> None:
        h = in_state(State.OPEN)
        h.cycle.send({"type": "websocket.close", "reason": "é" * 100})
        (event,) = h.take()
        assert isinstance(event, CloseWebSocket)
        assert len(event.reason.encode()) <= 123
        assert event.reason == "é" * 61

    def test_close_before_accept_is_403(self) -> None:
        h = in_state(State.HANDSHAKE)
        h.cycle.send(CLOSE)
        response, body = h.take()
        assert isinstance(response, Response)
        assert response.status == 403
        assert isinstance(body, Body)
        assert body.end
        assert h.cycle.state is State.DENIED

    def test_denial_response_streamed(self) -> None:
        h = in_state(State.HANDSHAKE)
        h.cycle.send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"www-authenticate", b"Bearer")],
            }
        )
        h.cycle.send({"type": "websocket.http.response.body", "body": b"a", "more_body": True})
        h.cycle.send({"type": "websocket.http.response.body", "body": b"b"})
        assert h.take() == [
            Response(3, 401, [(b"www-authenticate", b"Bearer")]),
            Body(3, b"a", False),
            Body(3, b"b", True),
        ]
        assert h.cycle.state is State.DENIED
        assert h.cycle.next_message() == {
            "type": "websocket.disconnect",
            "code": 1006,
            "reason": "",
        }

    def test_close_before_accept_ignores_code_and_reason(self) -> None:
        # FastAPI refuses with a list of validation errors as the reason; it is never sent.
        h = in_state(State.HANDSHAKE)
        h.cycle.send({"type": "websocket.close", "code": 1008, "reason": [{"loc": "query"}]})
        assert h.cycle.state is State.DENIED

    def test_close_after_disconnect_is_a_no_op(self) -> None:
        h = in_state(State.CLOSED)
        h.cycle.send(CLOSE)
        assert h.take() == []


# --------------------------------------------------------------------------- illegal sends
LEGAL = {
    (State.HANDSHAKE, "websocket.accept"),
    (State.HANDSHAKE, "websocket.close"),
    (State.HANDSHAKE, "websocket.http.response.start"),
    (State.OPEN, "websocket.send"),
    (State.OPEN, "websocket.close"),
    (State.RESPONDING, "websocket.http.response.body"),
    (State.CLOSED, "websocket.close"),
}
ILLEGAL = [
    (state, message)
    for state in State
    for message in ALL_MESSAGES
    if (state, message["type"]) not in LEGAL
]


class TestIllegalTransitions:
    @pytest.mark.parametrize(
        ("state", "message"), ILLEGAL, ids=[f"{s.value}-{m['type']}" for s, m in ILLEGAL]
    )
    def test_every_illegal_transition_raises(self, state: State, message: dict[str, Any]) -> None:
        h = in_state(state)
        expected = ClientDisconnected if state is State.CLOSED else AppProtocolError
        with pytest.raises(expected):
            h.cycle.send(message)
        assert h.cycle.state is state
        assert h.take() == []

    @pytest.mark.parametrize("state", list(State))
    def test_unknown_message_type(self, state: State) -> None:
        h = in_state(state)
        with pytest.raises(AppProtocolError):
            h.cycle.send({"type": "http.response.start", "status": 200})

    @pytest.mark.parametrize(
        "message",
        [
            {},
            None,
            {"text": "no type"},
            {"type": b"websocket.send", "text": "t"},
            [("type", "websocket.send"), ("text", "t")],
        ],
    )
    def test_message_without_type(self, message: Any) -> None:
        with pytest.raises(AppProtocolError):
            in_state(State.OPEN).cycle.send(message)

    @pytest.mark.parametrize(
        "message",
        [
            {"type": "websocket.send"},
            {"type": "websocket.send", "text": None, "bytes": None},
            {"type": "websocket.send", "text": "a", "bytes": b"b"},
            {"type": "websocket.send", "text": b"bytes as text"},
            {"type": "websocket.send", "bytes": "text as bytes"},
        ],
    )
    def test_send_needs_exactly_one_of_bytes_or_text(self, message: dict[str, Any]) -> None:
        h = in_state(State.OPEN)
        with pytest.raises(AppProtocolError):
            h.cycle.send(message)
        assert h.take() == []

    @pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 2000, 5000, "1000", 1000.0])
    def test_close_with_unsendable_code(self, code: Any) -> None:
        h = in_state(State.OPEN)
        with pytest.raises(AppProtocolError):
            h.cycle.send({"type": "websocket.close", "code": code})
        assert h.cycle.state is State.OPEN

    def test_close_with_non_str_reason(self) -> None:
        with pytest.raises(AppProtocolError):
            in_state(State.OPEN).cycle.send({"type": "websocket.close", "reason": b"bytes"})

    @pytest.mark.parametrize(
        "message",
        [
            {"type": "websocket.accept", "subprotocol": b"chat"},
            {"type": "websocket.accept", "headers": [("x", "str")]},
            {"type": "websocket.accept", "headers": b"not a list"},
            {"type": "websocket.accept", "headers": [(b"only-name",)]},
            {"type": "websocket.accept", "headers": [(b"sec-websocket-protocol", b"chat")]},
            {"type": "websocket.accept", "headers": [(b"Sec-WebSocket-Accept", b"forged")]},
            {"type": "websocket.accept", "headers": [(b"x-a", b"v\r\nx-injected: 1")]},
            {"type": "websocket.accept", "headers": [(b"x a", b"v")]},
            {"type": "websocket.accept", "subprotocol": "chat, other"},
            {"type": "websocket.accept", "subprotocol": "ch\u00e4t"},
            {"type": "websocket.accept", "subprotocol": ""},
        ],
    )
    def test_invalid_accept(self, message: dict[str, Any]) -> None:
        h = in_state(State.HANDSHAKE)
        with pytest.raises(AppProtocolError):
            h.cycle.send(message)
        assert h.cycle.state is State.HANDSHAKE

    @pytest.mark.parametrize("status", [101, 99, 600, "403", None])
    def test_invalid_denial_status(self, status: Any) -> None:
        with pytest.raises(AppProtocolError):
            in_state(State.HANDSHAKE).cycle.send(
                {"type": "websocket.http.response.start", "status": status}
            )

    def test_invalid_denial_header(self) -> None:
        h = in_state(State.HANDSHAKE)
        with pytest.raises(AppProtocolError):
            h.cycle.send(
                {
                    "type": "websocket.http.response.start",
                    "status": 401,
                    "headers": [(b"x-a", b"\r\nsplit")],
                }
            )
        assert h.cycle.state is State.HANDSHAKE

    def test_denial_body_must_be_bytes(self) -> None:
        with pytest.raises(AppProtocolError):
            in_state(State.RESPONDING).cycle.send(
                {"type": "websocket.http.response.body", "body": "text"}
            )

    def test_denial_response_needs_the_extension(self) -> None:
        h = Harness(response_extension=False)
        with pytest.raises(AppProtocolError):
            h.cycle.send(START)


# --------------------------------------------------------------------------- app exit
class TestAppFinished:
    def test_returned_without_answer_is_403(self) -> None:
        h = in_state(State.HANDSHAKE)
        h.cycle.app_finished(failed=False)
        response, _ = h.take()
        assert isinstance(response, Response)
        assert response.status == 403

    def test_raised_without_answer_is_500(self) -> None:
        h = in_state(State.HANDSHAKE)
        h.cycle.app_finished(failed=True)
        response, _ = h.take()
        assert isinstance(response, Response)
        assert response.status == 500

    @pytest.mark.parametrize(("failed", "code"), [(False, 1000), (True, 1011)])
    def test_open_socket_closed(self, failed: bool, code: int) -> None:
        h = in_state(State.OPEN)
        h.cycle.app_finished(failed=failed)
        assert h.take() == [CloseWebSocket(3, code, "")]

    def test_unfinished_denial_reset(self) -> None:
        h = in_state(State.RESPONDING)
        h.cycle.app_finished(failed=False)
        assert h.take() == [ResetStream(3)]

    @pytest.mark.parametrize("state", [State.APP_CLOSED, State.DENIED, State.CLOSED])
    def test_nothing_owed(self, state: State) -> None:
        h = in_state(state)
        h.cycle.app_finished(failed=True)
        assert h.take() == []
