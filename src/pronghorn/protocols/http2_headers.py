"""Checks of a received HTTP/2 header block (RFC 9113 §8.2 and §8.3), in one pass.

h2 can check inbound blocks itself, but as a chain of seven generators (about a tenth of the
server's time on a small request) and it makes every malformed block a connection error.
RFC 9113 §8.1.1 makes a malformed request a *stream* error: the connection and its other
streams carry on. So h2's inbound checking is off and this module does it; ``MalformedHeaders``
tells the core to reset the one stream with PROTOCOL_ERROR.

What is checked, for requests (``parse_request_head``) and trailers (``check_trailers``):
- §8.2.1 field names: not empty; no octet 0x00-0x20, 0x41-0x5a (upper case) or 0x7f-0xff; no
  colon except the one that starts a pseudo-header. Field values: no NUL, CR or LF; no leading
  or trailing space or tab.
- §8.2.2 connection-specific fields (Connection, Keep-Alive, Proxy-Connection,
  Transfer-Encoding, Upgrade) are malformed; TE may only be "trailers".
- §8.3 pseudo-headers: only the request ones, each at most once, all before the first regular
  field; :method always; :scheme and a non-empty :path unless the request is a plain CONNECT
  (which must have neither); :protocol (RFC 8441) only on CONNECT. Trailers carry none.
- §8.3.1 authority: :authority or Host present (as HTTP/1.1 requires Host), equal when both
  are, Host at most once.
- §8.2.3 cookie crumbs are joined with "; " into one field, placed last.

Content-Length is still checked by h2 (it tracks the DATA bytes against it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from pronghorn.protocols.events import Headers
from pronghorn.protocols.http2_stream import CONNECTION_SPECIFIC

__all__ = ["MalformedHeaders", "RequestHead", "check_trailers", "parse_request_head"]


class MalformedHeaders(ValueError):
    """The block breaks an RFC 9113 rule; the message says which."""


# A regular field name: visible ASCII without upper case and without a colon.
_valid_name = re.compile(rb"[!-9;-@\[-~]+").fullmatch
# NUL, CR or LF anywhere in a value. (Leading and trailing whitespace is tested with strip:
# an anchored alternative in this pattern would be tried at every offset, four times slower.)
_bad_octet = re.compile(rb"[\0\r\n]").search

# Names that pass ``_valid_name``, looked up instead of matched because nearly every request
# carries several of them.
_COMMON_NAMES: Final = frozenset(
    (
        b"accept",
        b"accept-encoding",
        b"accept-language",
        b"authorization",
        b"cache-control",
        b"content-length",
        b"content-type",
        b"if-modified-since",
        b"if-none-match",
        b"origin",
        b"pragma",
        b"priority",
        b"referer",
        b"sec-ch-ua",
        b"sec-ch-ua-mobile",
        b"sec-ch-ua-platform",
        b"sec-fetch-dest",
        b"sec-fetch-mode",
        b"sec-fetch-site",
        b"sec-fetch-user",
        b"upgrade-insecure-requests",
        b"user-agent",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-requested-with",
    )
)

_PSEUDO_NAMES: Final = frozenset((b":method", b":scheme", b":authority", b":path", b":protocol"))

# Regular names that need more than appending; everything else takes the fast path.
_CONNECTION_SPECIFIC: Final = 1
_TE: Final = 2
_COOKIE: Final = 3
_HOST: Final = 4
_EXPECT: Final = 5
_SPECIAL_NAMES: Final = {
    **dict.fromkeys(CONNECTION_SPECIFIC, _CONNECTION_SPECIFIC),
    b"te": _TE,
    b"cookie": _COOKIE,
    b"host": _HOST,
    b"expect": _EXPECT,
}


class RequestHead:
    """A request's pseudo-headers, pulled out of its checked field list."""

    __slots__ = ("authority", "expect_continue", "headers", "method", "path", "protocol", "scheme")

    def __init__(
        self,
        method: bytes,
        path: bytes | None,
        scheme: bytes | None,
        authority: bytes | None,
        protocol: bytes | None,
        headers: Headers,
        expect_continue: bool,
    ) -> None:
        self.method = method
        #: None only for a plain CONNECT.
        self.path = path
        self.scheme = scheme
        #: :authority, else Host (RFC 9113 §8.3.1 treats them as one).
        self.authority = authority
        self.protocol = protocol
        #: The regular fields, cookie crumbs joined.
        self.headers = headers
        self.expect_continue = expect_continue


def _check_name(name: bytes) -> None:
    if not _valid_name(name):
        if not name:
            raise MalformedHeaders("empty field name")
        raise MalformedHeaders(f"invalid field name {name!r}")


def _check_value(name: bytes, value: bytes) -> None:
    if value and (_bad_octet(value) or value.strip(b" \t") != value):
        raise MalformedHeaders(f"invalid value of {name!r}: {value!r}")


def parse_request_head(block: Iterable[tuple[bytes, bytes]]) -> RequestHead:
    """Check a request's header block and split it; raise ``MalformedHeaders`` if malformed."""
    pseudo: dict[bytes, bytes] = {}
    headers: Headers = []
    cookies: list[bytes] | None = None
    host: bytes | None = None
    expect_continue = False
    for name, value in block:
        if value and (_bad_octet(value) or value.strip(b" \t") != value):
            _check_value(name, value)
        if name[:1] == b":":
            if headers or cookies is not None:
                raise MalformedHeaders(f"pseudo-header {name!r} after a regular field")
            if name not in _PSEUDO_NAMES:
                raise MalformedHeaders(f"pseudo-header {name!r} is not a request's")
            if name in pseudo:
                raise MalformedHeaders(f"duplicate pseudo-header {name!r}")
            pseudo[name] = value
            continue
        if name not in _COMMON_NAMES and not _valid_name(name):
            _check_name(name)
        special = _SPECIAL_NAMES.get(name)
        if special is None:
            headers.append((name, value))
        elif special == _COOKIE:
            if cookies is None:
                cookies = []
            cookies.append(value)
        elif special == _HOST:
            if host is not None:
                raise MalformedHeaders("more than one host field")
            host = value
            headers.append((name, value))
        elif special == _EXPECT:
            expect_continue = value.lower() == b"100-continue"
            headers.append((name, value))
        elif special == _TE:
            if value.lower() != b"trailers":
                raise MalformedHeaders(f"te other than trailers: {value!r}")
            headers.append((name, value))
        else:
            raise MalformedHeaders(f"connection-specific field {name!r}")
    if cookies is not None:
        headers.append((b"cookie", b"; ".join(cookies)))
    return _request_head(pseudo, headers, host, expect_continue)


def _request_head(
    pseudo: dict[bytes, bytes], headers: Headers, host: bytes | None, expect_continue: bool
) -> RequestHead:
    method = pseudo.get(b":method")
    if method is None:
        raise MalformedHeaders("no :method")
    path = pseudo.get(b":path")
    scheme = pseudo.get(b":scheme")
    protocol = pseudo.get(b":protocol")
    if method == b"CONNECT" and protocol is None:
        if path is not None or scheme is not None:
            raise MalformedHeaders("a CONNECT request without :protocol has :path or :scheme")
    else:
        if protocol is not None and method != b"CONNECT":
            raise MalformedHeaders(":protocol on a request other than CONNECT")
        if scheme is None:
            raise MalformedHeaders("no :scheme")
        if not path:
            raise MalformedHeaders("no :path" if path is None else "empty :path")
    authority = pseudo.get(b":authority")
    if authority is None:
        if host is None:
            raise MalformedHeaders("neither :authority nor host")
        authority = host
    elif host is not None and host != authority:
        raise MalformedHeaders(f"host {host!r} differs from :authority {authority!r}")
    return RequestHead(method, path, scheme, authority, protocol, headers, expect_continue)


def check_trailers(block: Iterable[tuple[bytes, bytes]]) -> Headers:
    """Check a trailer block; raise ``MalformedHeaders`` if malformed."""
    trailers: Headers = []
    for name, value in block:
        if name[:1] == b":":
            raise MalformedHeaders(f"pseudo-header {name!r} in trailers")
        _check_name(name)
        _check_value(name, value)
        special = _SPECIAL_NAMES.get(name)
        if special == _CONNECTION_SPECIFIC:
            raise MalformedHeaders(f"connection-specific field {name!r}")
        if special == _TE and value.lower() != b"trailers":
            raise MalformedHeaders(f"te other than trailers: {value!r}")
        trailers.append((name, value))
    return trailers
