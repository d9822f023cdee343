"""Scope building, proxy headers and the lifespan cycle, by plain data. No loop."""

from __future__ import annotations

import pytest

from pronghorn.asgi.lifespan import LifespanCycle, LifespanState
from pronghorn.asgi.proxy_headers import VERDICTS_REMEMBERED, TrustedProxies, apply_proxy_headers
from pronghorn.asgi.scope import (
    ConnectionInfo,
    decode_path,
    http_scope,
    lifespan_scope,
    split_target,
    websocket_scope,
)
from pronghorn.errors import AppProtocolError, ConfigError
from pronghorn.protocols.events import RequestReceived


def request(target: bytes = b"/", **kwargs: object) -> RequestReceived:
    return RequestReceived(1, b"GET", target, "1.1", [(b"host", b"example")], **kwargs)  # type: ignore[arg-type]


CONN = ConnectionInfo(("1.2.3.4", 5), ("127.0.0.1", 8000), "http")


class TestTargets:
    @pytest.mark.parametrize(
        ("target", "raw_path", "query"),
        [
            (b"/a/b?x=1", b"/a/b", b"x=1"),
            (b"/a?", b"/a", b""),
            (b"/a?x=1?y", b"/a", b"x=1?y"),
            (b"http://h/p?q", b"/p", b"q"),
            (b"https://h:8443", b"/", b""),
            (b"http://h?q=1", b"/", b"?q=1"[1:]),
            (b"*", b"*", b""),
            (b"/a#frag", b"/a", b""),
            (b"/a?q#frag", b"/a", b"q"),
            (b"/a#frag?q", b"/a", b""),
        ],
    )
    def test_split(self, target: bytes, raw_path: bytes, query: bytes) -> None:
        assert split_target(target) == (raw_path, query)

    def test_decode(self) -> None:
        assert decode_path(b"/caf%C3%A9/%2F") == "/café//"
        assert decode_path(b"/plain") == "/plain"
        # Not UTF-8: replaced, as every peer does (raw_path keeps the bytes).
        assert decode_path(b"/caf%E9") == "/caf\ufffd"
        assert decode_path(b"/caf\xe9") == "/caf\ufffd"
        assert decode_path(b"/\xc3\xa9") == "/\u00e9"


class TestHTTPScope:
    def test_fields(self) -> None:
        scope = http_scope(request(b"/a%20b?q=1"), CONN, {"k": 1})
        assert scope == {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.5"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8000),
            "client": ("1.2.3.4", 5),
            "scheme": "http",
            "method": "GET",
            "root_path": "",
            "path": "/a b",
            "raw_path": b"/a%20b",
            "query_string": b"q=1",
            "headers": [(b"host", b"example")],
            "extensions": {},
            "state": {"k": 1},
        }

    def test_each_request_gets_its_own_scope(self) -> None:
        # Built from the connection's shared base: what one app changes, the next never sees.
        conn = ConnectionInfo(("1.2.3.4", 5), ("127.0.0.1", 8000), "http")
        first = http_scope(request(b"/one"), conn, None)
        first["asgi"]["version"] = "2.0"
        first["extensions"]["mine"] = {}
        first["path"] = "/changed"
        first["custom"] = 1
        second = http_scope(request(b"/two?x"), conn, None)
        assert second["asgi"] == {"version": "3.0", "spec_version": "2.5"}
        assert second["extensions"] == {}
        assert (second["path"], second["query_string"]) == ("/two", b"x")
        assert list(second) == [
            "type",
            "asgi",
            "http_version",
            "server",
            "client",
            "scheme",
            "method",
            "root_path",
            "path",
            "raw_path",
            "query_string",
            "headers",
            "extensions",
        ]

    def test_connections_share_one_base_and_keep_their_own_client(self) -> None:
        # An idle keep-alive connection holds no dict of its own (idle memory per connection).
        one = ConnectionInfo(("1.2.3.4", 5), ("127.0.0.1", 8000), "http")
        two = ConnectionInfo(("5.6.7.8", 9), ("127.0.0.1", 8000), "http")
        tls = ConnectionInfo(("5.6.7.8", 9), ("127.0.0.1", 8000), "https")
        scopes = [http_scope(request(), conn, None) for conn in (one, two, tls)]
        assert [(scope["client"], scope["scheme"]) for scope in scopes] == [
            (("1.2.3.4", 5), "http"),
            (("5.6.7.8", 9), "http"),
            (("5.6.7.8", 9), "https"),
        ]
        assert one.http_base is two.http_base
        assert tls.http_base is not one.http_base
        assert one.http_base is not None
        assert one.http_base["client"] is None  # the base itself is never a request's scope

    @pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "PURGE", "M-SEARCH"])
    def test_method_is_a_str(self, method: str) -> None:
        event = RequestReceived(1, method.encode(), b"/", "1.1", [(b"host", b"x")])
        assert http_scope(event, CONN, None)["method"] == method

    @pytest.mark.parametrize(
        ("target", "path", "query"),
        [
            (b"/", "/", b""),
            (b"/a/b", "/a/b", b""),
            (b"/a?", "/a", b""),
            (b"/a?b=%20", "/a", b"b=%20"),
            (b"/a%3Fb", "/a?b", b""),
            (b"/a#f?x", "/a", b""),
            (b"*", "*", b""),
            (b"http://h/p?q", "/p", b"q"),
        ],
    )
    def test_path_and_query(self, target: bytes, path: str, query: bytes) -> None:
        scope = http_scope(request(target), CONN, None)
        assert (scope["path"], scope["query_string"]) == (path, query)

    def test_state_is_a_copy(self) -> None:
        state = {"k": 1}
        scope = http_scope(request(), CONN, state)
        scope["state"]["k"] = 2
        assert state == {"k": 1}

    def test_root_path_is_prefixed_once(self) -> None:
        conn = ConnectionInfo(None, None, "http", root_path="/api")
        assert http_scope(request(b"/x"), conn, None)["path"] == "/api/x"
        scope = http_scope(request(b"/api/x"), conn, None)
        assert scope["path"] == "/api/x"
        assert scope["raw_path"] == b"/api/x"

    def test_http2_authority_becomes_host(self) -> None:
        event = RequestReceived(
            3, b"GET", b"/", "2", [(b"accept", b"*/*")], authority=b"h:1", scheme="https"
        )
        scope = http_scope(event, CONN, None)
        assert scope["headers"][0] == (b"host", b"h:1")
        assert scope["scheme"] == "http"  # the connection's, not the client's :scheme claim
        assert scope["http_version"] == "2"

    def test_websocket_scope(self) -> None:
        conn = ConnectionInfo(None, None, "https")
        scope = websocket_scope(request(b"/ws?a"), conn, {}, ["chat"])
        assert scope["type"] == "websocket"
        assert scope["scheme"] == "wss"
        assert scope["subprotocols"] == ["chat"]
        assert scope["query_string"] == b"a"
        assert "websocket.http.response" in scope["extensions"]

    def test_lifespan_scope(self) -> None:
        state: dict[str, object] = {}
        scope = lifespan_scope(state)
        assert scope["type"] == "lifespan"
        assert scope["state"] is state


class TestProxyHeaders:
    def test_parse(self) -> None:
        trusted = TrustedProxies.parse("127.0.0.1, 10.0.0.0/8, ::1, unix-peer")
        assert "10.1.2.3" in trusted
        assert "::1" in trusted
        assert "11.0.0.1" not in trusted
        assert "unix-peer" in trusted
        assert "anything" in TrustedProxies.parse("*")

    def test_verdicts_are_remembered_and_stay_correct(self) -> None:
        trusted = TrustedProxies.parse("127.0.0.1, 10.0.0.0/8, unix-peer")
        for _ in range(3):  # the first round decides, the others recall
            assert "10.9.8.7" in trusted
            assert "11.0.0.1" not in trusted
            assert "unix-peer" in trusted
            assert "not-an-address" not in trusted
        assert trusted == TrustedProxies.parse("127.0.0.1, 10.0.0.0/8, unix-peer")

    def test_the_verdict_memo_is_bounded(self) -> None:
        trusted = TrustedProxies.parse("10.0.0.0/8")
        for n in range(VERDICTS_REMEMBERED + 10):
            host = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
            assert host in trusted
            assert f"11.0.{n >> 8 & 255}.{n & 255}" not in trusted
        assert len(trusted._verdicts) <= VERDICTS_REMEMBERED

    def test_bad_cidr(self) -> None:
        with pytest.raises(ConfigError):
            TrustedProxies.parse("10.0.0.0/99")

    def test_rightmost_untrusted_hop_is_the_client(self) -> None:
        trusted = TrustedProxies.parse("127.0.0.1, 10.0.0.0/8")
        headers = [(b"x-forwarded-for", b"6.6.6.6, 1.1.1.1, 10.0.0.2")]
        client, scheme = apply_proxy_headers(headers, ("127.0.0.1", 1), "http", trusted)
        assert client == ("1.1.1.1", 0)
        assert scheme == "http"

    def test_all_hops_trusted_takes_the_leftmost(self) -> None:
        trusted = TrustedProxies.parse("*")
        headers = [(b"x-forwarded-for", b"1.1.1.1, 2.2.2.2"), (b"x-forwarded-proto", b"wss")]
        client, scheme = apply_proxy_headers(headers, ("127.0.0.1", 1), "http", trusted)
        assert client == ("1.1.1.1", 0)
        assert scheme == "https"

    def test_untrusted_peer_changes_nothing(self) -> None:
        trusted = TrustedProxies.parse("10.0.0.1")
        headers = [(b"x-forwarded-for", b"1.1.1.1"), (b"x-forwarded-proto", b"https")]
        assert apply_proxy_headers(headers, ("9.9.9.9", 1), "http", trusted) == (
            ("9.9.9.9", 1),
            "http",
        )

    def test_repeated_headers_read_as_one_list(self) -> None:
        trusted = TrustedProxies.parse("127.0.0.1, 10.0.0.0/8")
        headers = [
            (b"x-forwarded-proto", b"http, wss"),
            (b"x-forwarded-for", b"6.6.6.6, 1.1.1.1"),
            (b"x-forwarded-for", b"10.0.0.3"),
            (b"x-forwarded-proto", b"HTTPS "),
        ]
        client, scheme = apply_proxy_headers(headers, ("127.0.0.1", 1), "http", trusted)
        assert (client, scheme) == (("1.1.1.1", 0), "https")
        headers[-1] = (b"x-forwarded-proto", b"https,")  # the last value is empty: ignored
        assert apply_proxy_headers(headers, ("127.0.0.1", 1), "http", trusted)[1] == "http"

    def test_bogus_proto_is_ignored_and_ports_stripped(self) -> None:
        trusted = TrustedProxies.parse("*")
        headers = [(b"x-forwarded-for", b"[::2]:80"), (b"x-forwarded-proto", b"gopher")]
        assert apply_proxy_headers(headers, ("127.0.0.1", 1), "http", trusted) == (
            ("::2", 0),
            "http",
        )


class TestLifespanCycle:
    def test_happy_path(self) -> None:
        cycle = LifespanCycle()
        assert cycle.next_message() is None
        cycle.request_startup()
        assert cycle.next_message() == {"type": "lifespan.startup"}
        assert cycle.next_message() is None
        assert cycle.send({"type": "lifespan.startup.complete"}) is LifespanState.STARTED
        cycle.request_shutdown()
        assert cycle.next_message() == {"type": "lifespan.shutdown"}
        assert cycle.send({"type": "lifespan.shutdown.complete"}) is LifespanState.STOPPED

    def test_failure_message(self) -> None:
        cycle = LifespanCycle()
        cycle.request_startup()
        cycle.send({"type": "lifespan.startup.failed", "message": "no db"})
        assert cycle.state is LifespanState.STARTUP_FAILED
        assert cycle.message == "no db"

    @pytest.mark.parametrize(
        "message",
        [
            {"type": "lifespan.shutdown.complete"},
            {"type": "http.response.start"},
            {"no": "type"},
        ],
    )
    def test_illegal_messages(self, message: dict[str, str]) -> None:
        cycle = LifespanCycle()
        cycle.request_startup()
        with pytest.raises(AppProtocolError):
            cycle.send(message)
