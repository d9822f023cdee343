"""WebSocketCycle: one WebSocket connection as ASGI messages (spec 2.5), for every protocol.

What may change state, and nowhere else:
- the app's messages, through ``_TRANSITIONS`` inside :meth:`WebSocketCycle.send`;
- the peer, through :meth:`closed` (close frame received, connection failed or lost);
- the app's exit, through :meth:`app_finished`.
:meth:`message_received` and :meth:`next_message` only move messages through the inbound queue.

The cycle is sans-IO: each valid app message becomes one outbound event handed to ``emit``
(``AcceptWebSocket``, ``WebSocketMessage``, ``CloseWebSocket``, or ``Response``/``Body`` for a
denial); inbound events become the app's ``websocket.*`` messages. Waiting, timers and the
frame codec are the shell's (``server/websocket.py``).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from typing import Final

from pronghorn.asgi.headers import app_headers
from pronghorn.asgi.messages import AppMessage, Message, read_message
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
from pronghorn.protocols.websocket import RESERVED_ACCEPT_HEADERS


class State(enum.Enum):
    HANDSHAKE = "handshake"  # websocket.connect pending or delivered; no answer yet
    OPEN = "open"  # accepted: messages flow both ways
    APP_CLOSED = "app_closed"  # the app sent websocket.close; the peer's close is awaited
    RESPONDING = "responding"  # denial response started (websocket.http.response extension)
    DENIED = "denied"  # handshake refused: 403 or the app's complete response
    CLOSED = "closed"  # the connection is gone (closing handshake done, failed or lost)


# The members as module constants for the per-request code: on CPython 3.11 every
# ``State.X`` is a lookup through EnumType.__getattr__'s slow attribute path (about
# 900 instructions against some 60 for a global; 3.12 dropped that hook).
STATE_HANDSHAKE: Final = State.HANDSHAKE
STATE_OPEN: Final = State.OPEN
STATE_APP_CLOSED: Final = State.APP_CLOSED
STATE_RESPONDING: Final = State.RESPONDING
STATE_DENIED: Final = State.DENIED
STATE_CLOSED: Final = State.CLOSED


#: (state, app message type) -> handler name. A pair not listed is an AppProtocolError, except
#: in CLOSED, where the peer being gone is reported as ClientDisconnected (spec 2.4).
_TRANSITIONS: Final[dict[tuple[State, str], str]] = {
    (STATE_HANDSHAKE, "websocket.accept"): "_on_accept",
    (STATE_HANDSHAKE, "websocket.close"): "_on_deny",
    (STATE_HANDSHAKE, "websocket.http.response.start"): "_on_response_start",
    (STATE_OPEN, "websocket.send"): "_on_send",
    (STATE_OPEN, "websocket.close"): "_on_close",
    (STATE_RESPONDING, "websocket.http.response.body"): "_on_response_body",
}

#: Close codes an endpoint may send (RFC 6455 section 7.4): 1000-1003, 1007-1014 and the
#: registered/private ranges 3000-4999. 1004-1006 and 1015 are reserved for local use.
_SENDABLE_CODES: Final = frozenset((1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)))
_MAX_REASON_BYTES: Final = 123  # a close frame's payload is at most 125 bytes, 2 of them the code

_CONNECT: Final[Message] = {"type": "websocket.connect"}
_DENY_BODY: Final = b"Forbidden: the application refused the WebSocket connection\n"


#: RFC 9110 5.6.2 token characters besides letters and digits (subprotocols are tokens).
_TOKEN_EXTRA: Final = frozenset("!#$%&'*+-.^_`|~")


def _is_token(value: str) -> bool:
    return bool(value) and all(c.isascii() and (c.isalnum() or c in _TOKEN_EXTRA) for c in value)


def _truncate_reason(reason: str) -> str:
    """Cut a close reason to what fits a close frame, on a character boundary."""
    data = reason.encode()
    if len(data) <= _MAX_REASON_BYTES:
        return reason
    return data[:_MAX_REASON_BYTES].decode("utf-8", "ignore")


class WebSocketCycle:
    """The ASGI side of one WebSocket: validates the app's messages, queues the peer's."""

    __slots__ = (
        "_close_code",
        "_close_reason",
        "_connect_delivered",
        "_emit",
        "_inbound",
        "_response_extension",
        "_send_message",
        "queued",
        "state",
        "stream_id",
    )

    def __init__(
        self,
        stream_id: int,
        emit: Callable[[OutboundEvent], None],
        *,
        response_extension: bool = True,
        send_message: Callable[[bytes | str], None] | None = None,
    ) -> None:
        self.stream_id = stream_id
        self._emit = emit
        #: Takes each message's payload by a direct call; without one, ``emit`` gets a
        #: WebSocketMessage event (the shell gives one: an event per message is an object
        #: and a type dispatch it does not need).
        self._send_message = send_message
        self.state = STATE_HANDSHAKE
        self._inbound: deque[Message] = deque()
        #: Messages received and not yet taken by the app (the shell pauses reading past its
        #: ``ws_max_queue``). Kept as a count, not a property: the shell reads it per message.
        self.queued = 0
        self._connect_delivered = False
        self._response_extension = response_extension
        self._close_code = 1006
        self._close_reason = ""

    # ------------------------------------------------------------------ receive side
    def message_received(self, data: bytes | str) -> None:
        if self.state is not STATE_OPEN:
            return  # after the app's close frame, RFC 6455 lets us discard data frames
        if type(data) is str:
            self._inbound.append({"type": "websocket.receive", "text": data})
        else:
            self._inbound.append({"type": "websocket.receive", "bytes": data})
        self.queued += 1

    def closed(self, code: int, reason: str = "") -> None:
        """The connection ended with close ``code``: the peer's close frame, our own failure
        (1002/1007/1009/1011), a lost connection (1006) or a shutdown (1012)."""
        if self.state is STATE_CLOSED:
            return
        self._close_code = code
        self._close_reason = reason
        self.state = STATE_CLOSED

    def next_message(self) -> Message | None:
        """The app's next receive() message, or None when it must wait."""
        if not self._connect_delivered:
            self._connect_delivered = True
            return _CONNECT
        inbound = self._inbound
        if inbound:
            self.queued -= 1
            return inbound.popleft()
        if self.state is STATE_CLOSED or self.state is STATE_DENIED:
            return {
                "type": "websocket.disconnect",
                "code": self._close_code,
                "reason": self._close_reason,
            }
        return None

    # ------------------------------------------------------------------ send side
    def send(self, message: AppMessage) -> None:
        """Validate one app message and emit its event.

        Raises AppProtocolError when the message is illegal now, ClientDisconnected when the
        connection is already gone.
        """
        fields, kind = read_message(message)
        state = self.state
        if kind == "websocket.send" and state is STATE_OPEN:
            self._on_send(fields)  # the hot path skips the table lookup
            return
        handler = _TRANSITIONS.get((state, kind))
        if handler is None:
            if state is STATE_CLOSED and kind.startswith("websocket."):
                if kind == "websocket.close":
                    return  # closing what is already closed is harmless; frameworks do it
                raise ClientDisconnected(f"WebSocket closed with code {self._close_code}")
            raise AppProtocolError(f"Unexpected ASGI message {kind!r} in state {state.value!r}")
        getattr(self, handler)(fields)

    def _on_accept(self, message: Message) -> None:
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and not isinstance(subprotocol, str):
            raise AppProtocolError(f"websocket.accept 'subprotocol' must be str: {subprotocol!r}")
        if subprotocol is not None and not _is_token(subprotocol):
            raise AppProtocolError(
                f"websocket.accept 'subprotocol' is not a token: {subprotocol!r}"
            )
        headers = app_headers(message.get("headers"), "websocket.accept headers")
        for name, _ in headers:
            if name.lower() in RESERVED_ACCEPT_HEADERS:
                raise AppProtocolError(
                    f"websocket.accept headers may not set {name!r}; the server owns it"
                    + (" (use 'subprotocol')" if name.lower() == b"sec-websocket-protocol" else "")
                )
        self.state = STATE_OPEN
        self._emit(AcceptWebSocket(self.stream_id, subprotocol, headers))

    def _on_send(self, message: Message) -> None:
        data = message.get("bytes")
        text = message.get("text")
        payload: bytes | str
        if data is not None:
            if text is not None:
                raise AppProtocolError("websocket.send needs exactly one of 'bytes' and 'text'")
            if type(data) is not bytes:
                if not isinstance(data, (bytearray, memoryview)):
                    raise AppProtocolError(f"websocket.send 'bytes' must be bytes: {type(data)}")
                data = bytes(data)
            payload = data
        elif text is not None:
            if type(text) is not str:
                raise AppProtocolError(f"websocket.send 'text' must be str: {type(text)}")
            payload = text
        else:
            raise AppProtocolError("websocket.send needs exactly one of 'bytes' and 'text'")
        send_message = self._send_message
        if send_message is not None:
            send_message(payload)
        else:
            self._emit(WebSocketMessage(self.stream_id, payload))

    def _close_args(self, message: Message) -> tuple[int, str]:
        code = message.get("code", 1000)
        if code is None:
            code = 1000
        if type(code) is not int or code not in _SENDABLE_CODES:
            raise AppProtocolError(f"websocket.close 'code' is not a sendable close code: {code!r}")
        reason = message.get("reason") or ""
        if not isinstance(reason, str):
            raise AppProtocolError(f"websocket.close 'reason' must be str: {reason!r}")
        return code, _truncate_reason(reason)

    def _on_close(self, message: Message) -> None:
        code, reason = self._close_args(message)
        self.state = STATE_APP_CLOSED
        self._close_code = code
        self._close_reason = reason
        self._inbound.clear()
        self.queued = 0
        self._emit(CloseWebSocket(self.stream_id, code, reason))

    def _on_deny(self, message: Message) -> None:
        # ASGI: a close before accept refuses the handshake with 403. Code and reason are never
        # sent, so they are not checked: FastAPI passes its validation errors (a list) as the
        # reason here.
        self.state = STATE_DENIED
        self._emit(self._deny_response())
        self._emit(Body(self.stream_id, _DENY_BODY, True))

    def _deny_response(self) -> Response:
        return Response(
            self.stream_id,
            403,
            [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"%d" % len(_DENY_BODY)),
            ],
        )

    def _on_response_start(self, message: Message) -> None:
        if not self._response_extension:
            raise AppProtocolError("websocket.http.response.start needs the extension in scope")
        status = message.get("status")
        if type(status) is not int or not 100 <= status <= 599 or status == 101:
            raise AppProtocolError(
                f"websocket.http.response.start needs an int status (not 101): {status!r}"
            )
        headers = app_headers(message.get("headers"), "websocket.http.response.start headers")
        self.state = STATE_RESPONDING
        self._emit(Response(self.stream_id, status, headers))

    def _on_response_body(self, message: Message) -> None:
        body = message.get("body", b"")
        if type(body) is not bytes:
            if not isinstance(body, (bytearray, memoryview)):
                raise AppProtocolError(f"websocket.http.response.body must be bytes: {type(body)}")
            body = bytes(body)
        more = bool(message.get("more_body", False))
        if not more:
            self.state = STATE_DENIED
        self._emit(Body(self.stream_id, body, not more))

    # ------------------------------------------------------------------ app exit
    def app_finished(self, failed: bool) -> None:
        """The app returned or raised; emit what the connection still needs.

        Before any answer the handshake is refused (403 when the app returned, 500 when it
        raised); an open WebSocket is closed with 1000 (1011 after an error); a denial
        response left unfinished is reset.
        """
        state = self.state
        if state is STATE_HANDSHAKE:
            self.state = STATE_DENIED
            if failed:
                body = b"Internal Server Error\n"
                self._emit(
                    Response(
                        self.stream_id,
                        500,
                        [
                            (b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", b"%d" % len(body)),
                        ],
                    )
                )
                self._emit(Body(self.stream_id, body, True))
            else:
                self._emit(self._deny_response())
                self._emit(Body(self.stream_id, _DENY_BODY, True))
        elif state is STATE_OPEN:
            code = 1011 if failed else 1000
            self.state = STATE_APP_CLOSED
            self._close_code = code
            self._emit(CloseWebSocket(self.stream_id, code, ""))
        elif state is STATE_RESPONDING:
            # Ending the body here would pass a truncated response off as a whole one.
            self.state = STATE_DENIED
            self._emit(ResetStream(self.stream_id))
        # APP_CLOSED, DENIED, CLOSED: nothing is owed.
