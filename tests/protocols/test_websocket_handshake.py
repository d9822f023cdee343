"""The WebSocket opening handshake, by RFC section: RFC 6455 section 4, RFC 8441 section 5 and
RFC 7692 (permessage-deflate negotiation)."""

from __future__ import annotations

import pytest

from pronghorn.protocols.websocket import (
    DeflateParams,
    Handshake,
    Rejection,
    accept_headers,
    negotiate,
    negotiate_deflate,
)

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # the RFC 6455 section 1.3 example


def h1_headers(**overrides: bytes | None) -> list[tuple[bytes, bytes]]:
    base = {
        b"host": b"example.com",
        b"upgrade": b"websocket",
        b"connection": b"Upgrade",
        b"sec-websocket-key": KEY,
        b"sec-websocket-version": b"13",
    }
    for name, value in overrides.items():
        key = name.replace("_", "-").encode()
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return list(base.items())


def h1(
    headers: list[tuple[bytes, bytes]],
    method: bytes = b"GET",
    version: str = "1.1",
    deflate: bool = True,
) -> Handshake | Rejection:
    return negotiate(method, headers, version, extended_connect=False, per_message_deflate=deflate)


# --------------------------------------------------------------------------- RFC 6455 4.2.1
class TestClientHandshakeRequirements:
    def test_valid_request_is_accepted(self) -> None:
        result = h1(h1_headers())
        assert isinstance(result, Handshake)
        assert result.subprotocols == []
        assert result.deflate is None

    def test_accept_key_is_the_rfc_example(self) -> None:
        result = h1(h1_headers())
        assert isinstance(result, Handshake)
        assert result.accept_key == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    @pytest.mark.parametrize("method", [b"POST", b"PUT", b"CONNECT"])
    def test_not_get_is_400(self, method: bytes) -> None:
        result = h1(h1_headers(), method=method)
        assert isinstance(result, Rejection)
        assert result.status == 400

    def test_http_1_0_is_400(self) -> None:
        result = h1(h1_headers(), version="1.0")
        assert isinstance(result, Rejection)
        assert result.status == 400

    @pytest.mark.parametrize(
        "overrides",
        [
            {"upgrade": None},
            {"upgrade": b"h2c"},
            {"connection": None},
            {"connection": b"keep-alive"},
            {"sec_websocket_key": None},
            {"sec_websocket_key": b"not base64!"},
            {"sec_websocket_key": b"c2hvcnQ="},  # decodes to 5 bytes, not 16
        ],
    )
    def test_bad_or_missing_upgrade_connection_or_key_is_400(
        self, overrides: dict[str, bytes | None]
    ) -> None:
        result = h1(h1_headers(**overrides))
        assert isinstance(result, Rejection)
        assert result.status == 400
        assert (b"content-length", b"%d" % len(result.body)) in result.headers

    def test_repeated_key_is_400(self) -> None:
        result = h1([*h1_headers(), (b"sec-websocket-key", KEY)])
        assert isinstance(result, Rejection)
        assert result.status == 400

    def test_tokens_are_case_insensitive_lists(self) -> None:
        headers = h1_headers(upgrade=b"WebSocket", connection=b"keep-alive, UPGRADE")
        assert isinstance(h1(headers), Handshake)

    @pytest.mark.parametrize("version", [b"8", b"12", b"14", None])
    def test_other_version_is_426_with_supported_version(self, version: bytes | None) -> None:
        result = h1(h1_headers(sec_websocket_version=version))
        assert isinstance(result, Rejection)
        assert result.status == 426
        assert (b"sec-websocket-version", b"13") in result.headers

    def test_subprotocols_from_every_field_in_order(self) -> None:
        headers = [
            *h1_headers(),
            (b"sec-websocket-protocol", b"chat, superchat"),
            (b"sec-websocket-protocol", b"v3"),
        ]
        result = h1(headers)
        assert isinstance(result, Handshake)
        assert result.subprotocols == ["chat", "superchat", "v3"]


# --------------------------------------------------------------------------- RFC 6455 4.2.2
class TestServerHandshakeResponse:
    def test_101_with_accept_key(self) -> None:
        result = h1(h1_headers())
        assert isinstance(result, Handshake)
        status, headers = accept_headers(result, None, [])
        assert status == 101
        assert headers == [
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-accept", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ]

    def test_subprotocol_and_extra_headers_passed_through(self) -> None:
        result = h1([*h1_headers(), (b"sec-websocket-protocol", b"chat")])
        assert isinstance(result, Handshake)
        status, headers = accept_headers(result, "chat", [(b"x-extra", b"1")])
        assert status == 101
        assert (b"sec-websocket-protocol", b"chat") in headers
        assert headers[-1] == (b"x-extra", b"1")

    def test_negotiated_extension_is_announced(self) -> None:
        result = h1([*h1_headers(), (b"sec-websocket-extensions", b"permessage-deflate")])
        assert isinstance(result, Handshake)
        _, headers = accept_headers(result, None, [])
        assert (
            b"sec-websocket-extensions",
            b"permessage-deflate; server_max_window_bits=12",
        ) in headers


# --------------------------------------------------------------------------- RFC 8441 5
class TestExtendedConnect:
    def test_connect_needs_no_key_and_answers_200(self) -> None:
        headers = [(b"sec-websocket-version", b"13"), (b"sec-websocket-protocol", b"chat")]
        result = negotiate(
            b"CONNECT", headers, "2", extended_connect=True, per_message_deflate=True
        )
        assert isinstance(result, Handshake)
        assert result.accept_key is None
        status, response = accept_headers(result, "chat", [])
        assert status == 200
        assert response == [(b"sec-websocket-protocol", b"chat")]

    def test_connect_still_needs_version_13(self) -> None:
        result = negotiate(
            b"CONNECT",
            [(b"sec-websocket-version", b"8")],
            "2",
            extended_connect=True,
            per_message_deflate=True,
        )
        assert isinstance(result, Rejection)
        assert result.status == 426

    def test_extended_connect_must_be_connect(self) -> None:
        result = negotiate(
            b"GET",
            [(b"sec-websocket-version", b"13")],
            "2",
            extended_connect=True,
            per_message_deflate=True,
        )
        assert isinstance(result, Rejection)
        assert result.status == 400


# --------------------------------------------------------------------------- RFC 7692
class TestPerMessageDeflateNegotiation:
    def test_disabled_by_setting(self) -> None:
        result = h1(
            [*h1_headers(), (b"sec-websocket-extensions", b"permessage-deflate")], deflate=False
        )
        assert isinstance(result, Handshake)
        assert result.deflate is None

    def test_plain_offer(self) -> None:
        params = negotiate_deflate([b"permessage-deflate"])
        assert params == DeflateParams(server_max_window_bits=12)

    def test_browser_offer(self) -> None:  # what Chrome and Firefox send
        params = negotiate_deflate([b"permessage-deflate; client_max_window_bits"])
        assert params is not None
        assert params.response_value() == b"permessage-deflate; server_max_window_bits=12"

    def test_context_takeover_parameters_echoed(self) -> None:
        params = negotiate_deflate(
            [b"permessage-deflate; server_no_context_takeover; client_no_context_takeover"]
        )
        assert params is not None
        assert params.response_value() == (
            b"permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            b"server_max_window_bits=12"
        )

    def test_smaller_server_window_honoured(self) -> None:
        params = negotiate_deflate([b'permessage-deflate; server_max_window_bits="10"'])
        assert params is not None
        assert params.server_max_window_bits == 10

    @pytest.mark.parametrize(
        "offer",
        [
            b"permessage-deflate; unknown_param",
            b"permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            b"permessage-deflate; server_max_window_bits",
            b"permessage-deflate; server_max_window_bits=16",
            b"permessage-deflate; server_max_window_bits=010",
            b"permessage-deflate; client_max_window_bits=7",
            b"permessage-deflate; server_no_context_takeover=1",
            b"permessage-deflate; server_max_window_bits=8",  # zlib cannot deflate with 8
            b"x-webkit-deflate-frame",
        ],
    )
    def test_invalid_offer_declined(self, offer: bytes) -> None:
        assert negotiate_deflate([offer]) is None

    def test_next_offer_tried_after_a_declined_one(self) -> None:
        params = negotiate_deflate(
            [b"permessage-deflate; server_max_window_bits=8, permessage-deflate"]
        )
        assert params == DeflateParams(server_max_window_bits=12)

    def test_offers_across_header_fields(self) -> None:
        params = negotiate_deflate([b"x-other", b"permessage-deflate; server_max_window_bits=9"])
        assert params is not None
        assert params.server_max_window_bits == 9
