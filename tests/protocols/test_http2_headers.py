"""RFC 9113 §8.2/§8.3 checks of received header blocks (protocols/http2_headers.py).

Each malformed case names the rule it breaks; the accepted cases pin what the core hands on.
"""

from __future__ import annotations

import h2.exceptions
import h2.utilities
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pronghorn.protocols.http2_headers import (
    MalformedHeaders,
    check_trailers,
    parse_request_head,
)

Block = list[tuple[bytes, bytes]]

GET: Block = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"example.com"),
    (b":path", b"/a?b=c"),
]


class TestAccepted:
    def test_pseudo_headers_are_split_from_the_fields(self) -> None:
        head = parse_request_head([*GET, (b"accept", b"*/*"), (b"x-empty", b"")])
        assert head.method == b"GET"
        assert head.scheme == b"https"
        assert head.authority == b"example.com"
        assert head.path == b"/a?b=c"
        assert head.protocol is None
        assert head.headers == [(b"accept", b"*/*"), (b"x-empty", b"")]
        assert not head.expect_continue

    def test_cookie_crumbs_are_joined_last(self) -> None:
        # §8.2.3: a client may split Cookie; the server joins the crumbs with "; ".
        head = parse_request_head(
            [*GET, (b"cookie", b"a=1"), (b"accept", b"*/*"), (b"cookie", b"b=2")]
        )
        assert head.headers == [(b"accept", b"*/*"), (b"cookie", b"a=1; b=2")]

    def test_host_stands_in_for_a_missing_authority(self) -> None:
        block = [p for p in GET if p[0] != b":authority"]
        head = parse_request_head([*block, (b"host", b"h.example")])
        assert head.authority == b"h.example"
        assert head.headers == [(b"host", b"h.example")]

    def test_host_equal_to_authority(self) -> None:
        head = parse_request_head([*GET, (b"host", b"example.com")])
        assert head.authority == b"example.com"

    def test_te_trailers_and_expect(self) -> None:
        head = parse_request_head([*GET, (b"te", b"Trailers"), (b"expect", b"100-Continue")])
        assert head.expect_continue
        assert head.headers == [(b"te", b"Trailers"), (b"expect", b"100-Continue")]

    def test_extended_connect(self) -> None:
        # RFC 8441 §4: CONNECT with :protocol carries :scheme and :path.
        head = parse_request_head(
            [
                (b":method", b"CONNECT"),
                (b":protocol", b"websocket"),
                (b":scheme", b"https"),
                (b":path", b"/chat"),
                (b":authority", b"example.com"),
            ]
        )
        assert head.protocol == b"websocket"
        assert head.path == b"/chat"

    def test_plain_connect(self) -> None:
        head = parse_request_head([(b":method", b"CONNECT"), (b":authority", b"example.com:443")])
        assert head.path is None
        assert head.scheme is None

    def test_options_asterisk(self) -> None:
        block = [(n, b"*" if n == b":path" else v) for n, v in GET]
        assert parse_request_head(block).path == b"*"

    def test_inner_space_and_visible_octets_in_values(self) -> None:
        value = b"a b\tc\x80\xff"
        head = parse_request_head([*GET, (b"x-v", value)])
        assert head.headers == [(b"x-v", value)]

    def test_clean_trailers(self) -> None:
        assert check_trailers([(b"x-checksum", b"abc"), (b"te", b"trailers")]) == [
            (b"x-checksum", b"abc"),
            (b"te", b"trailers"),
        ]


def without(name: bytes) -> Block:
    return [p for p in GET if p[0] != name]


MALFORMED_REQUESTS: dict[str, Block] = {
    # §8.2.1 names
    "empty name": [*GET, (b"", b"x")],
    "upper-case name": [*GET, (b"Accept", b"x")],
    "space in name": [*GET, (b"a b", b"x")],
    "control octet in name": [*GET, (b"a\x01", b"x")],
    "DEL in name": [*GET, (b"a\x7f", b"x")],
    "non-ASCII name": [*GET, (b"caf\xe9", b"x")],
    "colon inside name": [*GET, (b"a:b", b"x")],
    # §8.2.1 values
    "NUL in value": [*GET, (b"x", b"a\x00b")],
    "CR in value": [*GET, (b"x", b"a\rb")],
    "LF in value": [*GET, (b"x", b"a\nb")],
    "leading space": [*GET, (b"x", b" a")],
    "trailing tab": [*GET, (b"x", b"a\t")],
    "LF in a pseudo-header value": [(n, b"/a\n" if n == b":path" else v) for n, v in GET],
    # §8.2.2 connection-specific fields
    "connection": [*GET, (b"connection", b"keep-alive")],
    "keep-alive": [*GET, (b"keep-alive", b"5")],
    "proxy-connection": [*GET, (b"proxy-connection", b"close")],
    "transfer-encoding": [*GET, (b"transfer-encoding", b"chunked")],
    "upgrade": [*GET, (b"upgrade", b"websocket")],
    "te other than trailers": [*GET, (b"te", b"gzip")],
    # §8.3 pseudo-headers
    "pseudo-header after a field": [*without(b":path"), (b"accept", b"*/*"), (b":path", b"/")],
    "pseudo-header after a cookie": [*without(b":path"), (b"cookie", b"a=1"), (b":path", b"/")],
    "duplicate :path": [*GET, (b":path", b"/b")],
    "unknown pseudo-header": [(b":foo", b"x"), *GET],
    "response pseudo-header": [(b":status", b"200"), *GET],
    "no :method": without(b":method"),
    "no :scheme": without(b":scheme"),
    "no :path": without(b":path"),
    "empty :path": [(n, b"" if n == b":path" else v) for n, v in GET],
    ":protocol without CONNECT": [*GET[:1], (b":protocol", b"websocket"), *GET[1:]],
    "CONNECT with :path": [(b":method", b"CONNECT"), (b":authority", b"h"), (b":path", b"/")],
    "CONNECT with :scheme": [(b":method", b"CONNECT"), (b":authority", b"h"), (b":scheme", b"x")],
    "extended CONNECT without :path": [
        (b":method", b"CONNECT"),
        (b":protocol", b"websocket"),
        (b":scheme", b"https"),
        (b":authority", b"h"),
    ],
    # §8.3.1 authority
    "neither :authority nor host": without(b":authority"),
    "host differs from :authority": [*GET, (b"host", b"other.example")],
    "two host fields": [*without(b":authority"), (b"host", b"a"), (b"host", b"a")],
}


@pytest.mark.parametrize("block", MALFORMED_REQUESTS.values(), ids=MALFORMED_REQUESTS.keys())
def test_malformed_request(block: Block) -> None:
    with pytest.raises(MalformedHeaders):
        parse_request_head(block)


MALFORMED_TRAILERS: dict[str, Block] = {
    "pseudo-header": [(b":path", b"/")],
    "upper-case name": [(b"X-Sum", b"1")],
    "empty name": [(b"", b"1")],
    "CR in value": [(b"x", b"a\rb")],
    "trailing space": [(b"x", b"a ")],
    "connection-specific": [(b"transfer-encoding", b"chunked")],
    "te other than trailers": [(b"te", b"deflate")],
}


@pytest.mark.parametrize("block", MALFORMED_TRAILERS.values(), ids=MALFORMED_TRAILERS.keys())
def test_malformed_trailers(block: Block) -> None:
    with pytest.raises(MalformedHeaders):
        check_trailers(block)


# --------------------------------------------------------------------------- against h2's checks
def h2_verdict(block: Block) -> Block | None:
    """h2's own inbound checking of a request block: its fields, or None when it refuses."""
    flags = h2.utilities.HeaderValidationFlags(
        is_client=False, is_trailer=False, is_response_header=False, is_push_promise=False
    )
    try:
        checked = h2.utilities.validate_headers(block, flags)
        return list(h2.utilities.normalize_inbound_headers(checked, flags))
    except h2.exceptions.ProtocolError:
        return None


names = st.sampled_from(
    [
        b":method",
        b":path",
        b":scheme",
        b":authority",
        b":protocol",
        b":status",
        b"host",
        b"cookie",
        b"te",
        b"connection",
        b"accept",
        b"X-Up",
        b"a:b",
        b"",
    ]
)
values = st.sampled_from(
    [b"", b"GET", b"CONNECT", b"/", b"https", b"example.com", b"trailers", b" x", b"a\nb", b"v"]
)


fields = st.lists(st.tuples(names, values), max_size=8)
# Random fields alone are nearly always refused; after a valid request head, most are kept.
extras = st.lists(
    st.tuples(
        st.sampled_from([b"accept", b"cookie", b"cookie", b"host", b"te", b"X-Up", b":path"]),
        st.sampled_from([b"", b"v", b"w", b"example.com", b"trailers", b" x"]),
    ),
    max_size=4,
)
blocks = st.one_of(fields, extras.map(lambda extra: [*GET, *extra]))


@settings(max_examples=400)
@given(blocks)
def test_same_verdict_as_h2(block: Block) -> None:
    """Where h2 and RFC 9113 agree, so do we: the same blocks refused, the same fields kept."""
    expected = h2_verdict(block)
    try:
        head = parse_request_head(block)
    except MalformedHeaders:
        assert expected is None
        return
    assert expected is not None
    regular = [(n, v) for n, v in expected if n[:1] != b":"]
    assert head.headers == regular
