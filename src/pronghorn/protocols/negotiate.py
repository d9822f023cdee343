"""Which core serves a connection: pure decisions, no I/O.

- Over TLS the ALPN result decides (RFC 9113 §3.2): "h2" is HTTP/2, anything else HTTP/1.1.
- On cleartext a client with prior knowledge opens with the connection preface (RFC 9113 §3.3);
  the first bytes decide, and a partial preface means "wait for more". When the PROXY protocol
  is on, its header is stripped first: these helpers look at the bytes after it.
- An HTTP/1.1 request may ask for ``Upgrade: h2c`` (RFC 7540 §3.2; dropped from RFC 9113 but
  still sent by curl and others). We accept it only on cleartext, only for a request without a
  body, and only with exactly one valid ``HTTP2-Settings`` field.
"""

from __future__ import annotations

import base64
import binascii
import enum

from pronghorn.protocols.events import RequestReceived
from pronghorn.protocols.http2_limits import PREFACE

__all__ = [
    "H2C_SWITCHING",
    "PREFACE",
    "Choice",
    "alpn_protocols",
    "from_alpn",
    "from_first_bytes",
    "h2c_settings",
]

#: The 101 answer to an accepted h2c upgrade; the server's SETTINGS follow it.
H2C_SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"


class Choice(enum.Enum):
    HTTP1 = "http/1.1"
    HTTP2 = "h2"
    #: Too few bytes to tell (a prefix of the preface); read more.
    UNDECIDED = "undecided"


def alpn_protocols(http2: bool) -> list[str]:
    """What the server offers in ALPN, most preferred first."""
    return ["h2", "http/1.1"] if http2 else ["http/1.1"]


def from_alpn(selected: str | None, *, http2: bool = True) -> Choice:
    """The core for a TLS connection, from ``SSLObject.selected_alpn_protocol()``."""
    return Choice.HTTP2 if http2 and selected == "h2" else Choice.HTTP1


def from_first_bytes(data: bytes, *, http2: bool = True) -> Choice:
    """The core for a cleartext connection, from the bytes received so far."""
    if not http2:
        return Choice.HTTP1
    if data.startswith(PREFACE):
        return Choice.HTTP2
    if PREFACE.startswith(data):  # also true of b"": nothing to judge yet
        return Choice.UNDECIDED
    return Choice.HTTP1


def _tokens(value: bytes) -> set[bytes]:
    return {token.strip().lower() for token in value.split(b",")}


def h2c_settings(
    request: RequestReceived, *, http2: bool = True, tls: bool = False
) -> bytes | None:
    """The ``HTTP2-Settings`` value when the request's h2c upgrade should be accepted, else
    None (the request is then served as plain HTTP/1.1)."""
    if not http2 or tls or request.upgrade is None or b"h2c" not in _tokens(request.upgrade):
        return None
    if request.has_body or request.http_version != "1.1":
        return None
    settings: list[bytes] = []
    connection: set[bytes] = set()
    for name, value in request.headers:
        if name == b"http2-settings":
            settings.append(value)
        elif name == b"connection":
            connection |= _tokens(value)
    if len(settings) != 1 or b"http2-settings" not in connection:
        return None
    value = settings[0].strip()
    try:
        payload = base64.urlsafe_b64decode(value + b"=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(payload) % 6:  # a SETTINGS payload is a list of 6-byte entries
        return None
    return value + b"=" * (-len(value) % 4)
