"""HTTPCycle: one HTTP request/response as ASGI messages, for every protocol.

What may change state, and nowhere else:
- the send side moves only through ``_TRANSITIONS`` inside :meth:`HTTPCycle.send` and
  :meth:`HTTPCycle.app_finished`;
- the receive side moves only through :meth:`body_received`, :meth:`request_ended` and
  :meth:`disconnected` (called by the I/O shell for inbound events) and
  :meth:`next_message` (the app's receive()).

The cycle is sans-IO: it turns app messages into outbound events handed to ``emit`` (the core's
``send``) and turns inbound events into app messages. Waiting, files and clocks are the shell's.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Final

from pronghorn.asgi.headers import app_headers
from pronghorn.asgi.messages import AppMessage, Message, read_message
from pronghorn.errors import AppProtocolError
from pronghorn.protocols.events import (
    AppHeaders,
    Body,
    Headers,
    InformationalResponse,
    OutboundEvent,
    PushPromise,
    ResetStream,
    Response,
    Trailers,
)
from pronghorn.protocols.http1 import HTTP1Connection


class SendState(enum.Enum):
    START = "start"  # nothing sent; early hints and pushes allowed
    BODY = "body"  # head sent (or held by the core); body messages flow
    FILE = "file"  # http.response.pathsend: the shell is sending the file; nothing else may
    TRAILERS = "trailers"  # body complete, trailers announced and still due
    DONE = "done"  # response complete


# The members as module constants for the per-request code: on CPython 3.11 every
# ``SendState.X`` is a lookup through EnumType.__getattr__'s slow attribute path (about
# 900 instructions against some 60 for a global; 3.12 dropped that hook).
SEND_START: Final = SendState.START
SEND_BODY: Final = SendState.BODY
SEND_FILE: Final = SendState.FILE
SEND_TRAILERS: Final = SendState.TRAILERS
SEND_DONE: Final = SendState.DONE


#: (state, message type) -> handler name. Anything not listed is an AppProtocolError.
_TRANSITIONS: Final[dict[tuple[SendState, str], str]] = {
    (SEND_START, "http.response.start"): "_on_start",
    (SEND_START, "http.response.early_hint"): "_on_early_hint",
    (SEND_START, "http.response.push"): "_on_push",
    (SEND_BODY, "http.response.body"): "_on_body",
    (SEND_BODY, "http.response.pathsend"): "_on_pathsend",
    (SEND_BODY, "http.response.push"): "_on_push",
    (SEND_TRAILERS, "http.response.trailers"): "_on_trailers",
}


_DISCONNECT: Final[Message] = {"type": "http.disconnect"}
_INTERNAL_ERROR_BODY: Final = b"Internal Server Error"


class HTTPCycle:
    __slots__ = (
        "_body",
        "_continue_due",
        "_direct",
        "_end_delivered",
        "_input_ended",
        "_request_done",
        "_sink",
        "_trailers_buffer",
        "_trailers_expected",
        "buffered",
        "bytes_sent",
        "disconnected_flag",
        "send_state",
        "status",
        "stream_id",
        "supports_push",
    )

    def __init__(
        self,
        stream_id: int,
        # None with a direct core, which then takes every event (its send method, bound for
        # each request, would cost an object per request).
        emit: Callable[[OutboundEvent], None] | None,
        # Not keyword-only: the server builds one cycle per request, and a call to a class
        # with keyword arguments costs a dict of them (about 1.5k instructions on 3.11).
        has_body: bool,
        expect_continue: bool = False,
        supports_push: bool = False,
        # The HTTP/1.1 core, which takes the two messages of every response by direct calls
        # (send_response, send_body) without an event object each. Typed as the class, not a
        # Protocol: compiled, the calls are then direct too.
        direct: HTTP1Connection | None = None,
    ) -> None:
        if emit is None and direct is None:
            raise TypeError("HTTPCycle needs an emit callable or a direct core")
        self.stream_id = stream_id
        self._sink = emit
        #: Takes response heads and bodies by direct calls, and every other event by its
        #: send(); without one, ``emit`` gets them all.
        self._direct = direct
        self.send_state = SEND_START
        self._trailers_expected = False
        # Made on first use: most requests have no body to buffer and no trailers to send.
        self._trailers_buffer: Headers | None = None
        self._body: list[bytes] | None = None
        self.buffered = 0
        self._end_delivered = False
        self._input_ended = False
        self._request_done = not has_body
        self._continue_due = expect_continue and has_body
        self.disconnected_flag = False
        self.supports_push = supports_push
        #: What the access log reports: the response status and body bytes sent.
        self.status = 0
        self.bytes_sent = 0

    def _emit(self, event: OutboundEvent) -> None:
        direct = self._direct
        if direct is not None:
            direct.send(event)
        elif self._sink is not None:
            self._sink(event)

    def _emit_response(self, status: int, headers: AppHeaders, trailers: bool) -> None:
        direct = self._direct
        if direct is not None:
            direct.send_response(self.stream_id, status, headers, trailers)
        else:
            self._emit(Response(self.stream_id, status, headers, trailers))

    def _emit_body(self, data: bytes, end: bool) -> None:
        direct = self._direct
        if direct is not None:
            direct.send_body(self.stream_id, data, end)
        else:
            self._emit(Body(self.stream_id, data, end))

    # ------------------------------------------------------------------ receive side
    def body_received(self, data: bytes) -> None:
        if self._body is None:
            self._body = [data]
        else:
            self._body.append(data)
        self.buffered += len(data)

    def request_ended(self) -> None:
        self._request_done = True

    def disconnected(self) -> None:
        self.disconnected_flag = True

    def input_ended(self) -> None:
        """The client closed its side: once the body is read, receive() says disconnect, but
        the response may still be sent."""
        self._input_ended = True

    @property
    def request_done(self) -> bool:
        return self._request_done

    def take_continue(self) -> bool:
        """True once, when the app first asks for a body that waits on ``100 Continue``."""
        if self._continue_due:
            self._continue_due = False
            return not self._body and not self._request_done
        return False

    def next_message(self) -> Message | None:
        """The app's next receive() message, or None when it must wait."""
        if self.disconnected_flag:
            return _DISCONNECT
        body = self._body
        if body:
            data = body[0] if len(body) == 1 else b"".join(body)
            self._body = None
            self.buffered = 0
            done = self._request_done
            self._end_delivered = done
            return {"type": "http.request", "body": data, "more_body": not done}
        if not self._request_done:
            return None
        if not self._end_delivered:
            self._end_delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if self.send_state is SEND_DONE or self._input_ended:
            return _DISCONNECT
        return None  # the whole body was read: wait for a disconnect

    # ------------------------------------------------------------------ send side
    @property
    def response_started(self) -> bool:
        return self.send_state is not SEND_START

    @property
    def response_complete(self) -> bool:
        return self.send_state is SEND_DONE

    def send(self, message: AppMessage) -> str | None:
        """Validate one app message and emit its events.

        Returns a file path when the message is ``http.response.pathsend``: reading the file is
        the shell's job. Raises AppProtocolError when the message is illegal now.
        """
        fields, kind = read_message(message)
        # The two messages of every response skip the table lookup (an Enum hashes in Python).
        state = self.send_state
        if kind == "http.response.body" and state is SEND_BODY:
            body = fields.get("body", b"")
            if type(body) is not bytes or self._trailers_expected:
                self._on_body(fields)
                return None
            self.bytes_sent += len(body)
            end = not fields.get("more_body", False)
            direct = self._direct
            if direct is not None:  # (_emit_body, inlined: this runs for every body message)
                direct.send_body(self.stream_id, body, end)
            else:
                self._emit(Body(self.stream_id, body, end))
            if end:
                self.send_state = SEND_DONE
            return None
        if kind == "http.response.start" and state is SEND_START:
            self._on_start(fields)
            return None
        handler = _TRANSITIONS.get((self.send_state, kind))
        if handler is None:
            raise AppProtocolError(
                f"Unexpected ASGI message {kind!r} in state {self.send_state.value!r}"
            )
        result: str | None = getattr(self, handler)(fields)
        return result

    def _on_start(self, message: Message) -> None:
        status = message.get("status")
        if type(status) is not int or not 200 <= status <= 599:
            if type(status) is int and status == 101:
                raise AppProtocolError("Status 101 is for websocket scopes only")
            raise AppProtocolError(f"http.response.start needs an int status 200-599: {status!r}")
        headers = message.get("headers")
        if type(headers) is not list:
            # Lists go straight to the core, whose encoder checks every name and value anyway.
            headers = app_headers(headers, "http.response.start headers")
        trailers = bool(message.get("trailers", False))
        self._trailers_expected = trailers
        self.status = status
        # Emit before changing state: if the core refuses the message, the cycle still knows
        # the response did not go out (and the app's exit answers 500 or resets).
        self._emit_response(status, headers, trailers)
        self.send_state = SEND_BODY

    def _on_body(self, message: Message) -> None:
        body = message.get("body", b"")
        if type(body) is not bytes:
            if not isinstance(body, (bytearray, memoryview)):
                raise AppProtocolError(f"http.response.body 'body' must be bytes: {type(body)}")
            body = bytes(body)
        self.bytes_sent += len(body)
        more = message.get("more_body", False)
        if more:
            self._emit_body(body, False)
            return
        if self._trailers_expected:
            if body:
                self._emit_body(body, False)
            self.send_state = SEND_TRAILERS
            return
        self._emit_body(body, True)
        self.send_state = SEND_DONE

    def _on_pathsend(self, message: Message) -> str:
        path = message.get("path")
        if not isinstance(path, str):
            raise AppProtocolError("http.response.pathsend needs a str 'path'")
        # Not DONE yet: if the file cannot be sent, app_finished() must still end the response.
        self.send_state = SEND_FILE
        return path

    def pathsend_done(self) -> None:
        """The shell sent the file; end the body unless trailers follow."""
        if self._trailers_expected:
            self.send_state = SEND_TRAILERS
            return
        self.send_state = SEND_DONE
        self._emit(Body(self.stream_id, b"", True))

    def _on_trailers(self, message: Message) -> None:
        headers = app_headers(message.get("headers"), "http.response.trailers headers")
        # Trailers may come in parts; HTTP/1.1 and HTTP/2 both need them in one block.
        if self._trailers_buffer is None:
            self._trailers_buffer = []
        self._trailers_buffer.extend(headers)
        if message.get("more_trailers", False):
            return
        self._emit(Trailers(self.stream_id, self._trailers_buffer))
        self.send_state = SEND_DONE

    def _on_early_hint(self, message: Message) -> None:
        links = message.get("links")
        if not isinstance(links, list) or not all(isinstance(link, bytes) for link in links):
            raise AppProtocolError("http.response.early_hint needs 'links': a list of bytes")
        self._emit(InformationalResponse(self.stream_id, 103, [(b"link", link) for link in links]))

    def _on_push(self, message: Message) -> None:
        path = message.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise AppProtocolError("http.response.push needs a str 'path' starting with '/'")
        headers = app_headers(message.get("headers"), "http.response.push headers")
        if self.supports_push:
            self._emit(PushPromise(self.stream_id, path.encode("utf-8"), headers))

    # ------------------------------------------------------------------ app exit
    def app_finished(self, failed: bool) -> bool:
        """The app returned (or raised). Emits what the response still needs.

        Returns True when the outcome was an error response or a reset (for logging).
        """
        state = self.send_state
        if state is SEND_DONE:
            return failed
        if state is SEND_START and not self.disconnected_flag:
            self.send_state = SEND_DONE
            self.status = 500
            self.bytes_sent = len(_INTERNAL_ERROR_BODY)
            self._emit(
                Response(
                    self.stream_id,
                    500,
                    [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", b"%d" % len(_INTERNAL_ERROR_BODY)),
                        (b"connection", b"close"),
                    ],
                )
            )
            self._emit(Body(self.stream_id, _INTERNAL_ERROR_BODY, True))
            return True
        # Started but unfinished (or the client left): the peer must not take a truncated
        # body for a whole one.
        self.send_state = SEND_DONE
        self._emit(ResetStream(self.stream_id))
        return True
