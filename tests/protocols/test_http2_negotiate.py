"""Choosing the core: ALPN (RFC 9113 §3.2), prior knowledge (§3.3), h2c upgrade (RFC 7540 §3.2)."""

from __future__ import annotations

import base64

import pytest

from pronghorn.protocols.events import RequestReceived
from pronghorn.protocols.negotiate import (
    PREFACE,
    Choice,
    alpn_protocols,
    from_alpn,
    from_first_bytes,
    h2c_settings,
)

SETTINGS = base64.urlsafe_b64encode(b"\x00\x03\x00\x00\x00\x64").rstrip(b"=")


def upgrade_request(**changes: object) -> RequestReceived:
    request = RequestReceived(
        1,
        b"GET",
        b"/",
        "1.1",
        [
            (b"host", b"x"),
            (b"connection", b"Upgrade, HTTP2-Settings"),
            (b"upgrade", b"h2c"),
            (b"http2-settings", SETTINGS),
        ],
        upgrade=b"h2c",
    )
    for name, value in changes.items():
        setattr(request, name, value)
    return request


@pytest.mark.parametrize(
    ("selected", "http2", "expected"),
    [
        ("h2", True, Choice.HTTP2),
        ("http/1.1", True, Choice.HTTP1),
        (None, True, Choice.HTTP1),
        ("h2", False, Choice.HTTP1),
    ],
)
def test_alpn(selected: str | None, http2: bool, expected: Choice) -> None:
    assert from_alpn(selected, http2=http2) is expected


def test_alpn_offer() -> None:
    assert alpn_protocols(True) == ["h2", "http/1.1"]
    assert alpn_protocols(False) == ["http/1.1"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PREFACE, Choice.HTTP2),
        (PREFACE + b"\x00\x00\x00\x04", Choice.HTTP2),
        (PREFACE[:5], Choice.UNDECIDED),
        (b"", Choice.UNDECIDED),
        (b"GET / HTTP/1.1\r\n", Choice.HTTP1),
        (b"PRI / HTTP/1.1\r\n", Choice.HTTP1),
        (b"P", Choice.UNDECIDED),
    ],
)
def test_prior_knowledge(data: bytes, expected: Choice) -> None:
    assert from_first_bytes(data) is expected


def test_prior_knowledge_off() -> None:
    assert from_first_bytes(PREFACE, http2=False) is Choice.HTTP1


def test_h2c_accepted_returns_padded_settings() -> None:
    settings = h2c_settings(upgrade_request())
    assert settings is not None
    assert base64.urlsafe_b64decode(settings) == b"\x00\x03\x00\x00\x00\x64"


@pytest.mark.parametrize(
    "changes",
    [
        {"has_body": True},  # we only upgrade body-less requests
        {"upgrade": b"websocket"},
        {"upgrade": None},
        {"http_version": "1.0"},
        {"headers": [(b"connection", b"Upgrade"), (b"http2-settings", SETTINGS)]},
        {"headers": [(b"connection", b"Upgrade, HTTP2-Settings")]},
        {
            "headers": [
                (b"connection", b"Upgrade, HTTP2-Settings"),
                (b"http2-settings", SETTINGS),
                (b"http2-settings", SETTINGS),
            ]
        },
        {"headers": [(b"connection", b"Upgrade, HTTP2-Settings"), (b"http2-settings", b"AAA")]},
    ],
)
def test_h2c_refused(changes: dict[str, object]) -> None:
    assert h2c_settings(upgrade_request(**changes)) is None


def test_h2c_never_over_tls_or_when_disabled() -> None:
    assert h2c_settings(upgrade_request(), tls=True) is None
    assert h2c_settings(upgrade_request(), http2=False) is None
