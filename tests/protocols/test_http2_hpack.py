"""The reusing HPACK coders: the same bytes and headers as hpack's own, with repeated heads
coded once while the dynamic table stays as it was."""

from __future__ import annotations

from typing import Any

import pytest
from hpack import Decoder, Encoder, HPACKDecodingError
from hypothesis import given, settings
from hypothesis import strategies as st

from pronghorn.protocols.http2_hpack import MAX_REMEMBERED, ReusingDecoder, ReusingEncoder

RESPONSE = [(b":status", b"200"), (b"content-type", b"text/plain"), (b"content-length", b"13")]
REQUEST = [
    (b":method", b"GET"),
    (b":scheme", b"http"),
    (b":authority", b"localhost"),
    (b":path", b"/"),
    (b"user-agent", b"test"),
]


def test_a_repeated_head_is_encoded_once_the_table_holds_it() -> None:
    encoder = ReusingEncoder()
    first = encoder.encode(RESPONSE)  # adds its literals to the table
    second = encoder.encode(list(RESPONSE))  # all indexed now: the table is unchanged
    third = encoder.encode(list(RESPONSE))
    assert first != second
    assert third is second  # the block was remembered, not coded again
    plain = Encoder()
    assert [plain.encode(RESPONSE) for _ in range(3)] == [first, second, third]


def test_a_head_that_changes_the_table_forgets_what_was_remembered() -> None:
    encoder, plain = ReusingEncoder(), Encoder()
    for coder in (encoder, plain):
        coder.encode(RESPONSE)
    settled = encoder.encode(RESPONSE)
    assert settled == plain.encode(RESPONSE)
    assert encoder.encode(RESPONSE) is settled
    new_entry = [(b":status", b"200"), (b"x-new", b"1")]  # goes in front: indexes move
    assert encoder.encode(new_entry) == plain.encode(new_entry)
    again = encoder.encode(RESPONSE)
    assert again == plain.encode(RESPONSE)
    assert again != settled


def test_a_table_size_change_is_signalled_even_for_a_remembered_head() -> None:
    encoder, plain = ReusingEncoder(), Encoder()
    for coder in (encoder, plain):
        coder.encode(RESPONSE)
        coder.encode(RESPONSE)
    encoder.header_table_size = 256
    plain.header_table_size = 256
    assert encoder.encode(RESPONSE) == plain.encode(RESPONSE)  # starts with a size update
    assert encoder.encode(RESPONSE) == plain.encode(RESPONSE)


def test_unhashable_values_are_encoded_as_hpack_does_and_not_remembered() -> None:
    encoder, plain = ReusingEncoder(), Encoder()
    headers: Any = [(b":status", b"200"), (b"x-buffer", bytearray(b"abc"))]
    assert encoder.encode(headers) == plain.encode(headers)
    assert encoder.encode(headers) == plain.encode(headers)
    assert not encoder._memo.results


def test_a_repeated_block_is_decoded_once_the_table_holds_it() -> None:
    client = Encoder()
    decoder = ReusingDecoder(65536)
    first, repeated = client.encode(REQUEST), client.encode(REQUEST)
    assert decoder.decode(first, raw=True) == REQUEST
    one = decoder.decode(repeated, raw=True)
    two = decoder.decode(repeated, raw=True)
    assert one == two == REQUEST
    assert one is not two  # each caller gets its own list
    assert decoder._memo.results  # and the block was remembered


def test_a_lower_header_list_limit_is_applied_to_a_remembered_block() -> None:
    client = Encoder()
    decoder = ReusingDecoder(65536)
    decoder.decode(client.encode(REQUEST), raw=True)
    repeated = client.encode(REQUEST)
    assert decoder.decode(repeated, raw=True) == REQUEST
    decoder.max_header_list_size = 10
    with pytest.raises(HPACKDecodingError):  # OversizedHeaderListError
        decoder.decode(repeated, raw=True)


def test_a_bad_block_raises_every_time() -> None:
    decoder = ReusingDecoder(65536)
    for _ in range(2):
        with pytest.raises(HPACKDecodingError):
            decoder.decode(b"\xff\xff\xff\xff\xff\xff\x7f", raw=True)  # index far past any table


def test_what_is_remembered_stays_bounded() -> None:
    encoder = ReusingEncoder()
    encoder.header_table_size = 0  # nothing is ever indexed: every head leaves the table alone
    encoder.encode(RESPONSE)
    for n in range(3 * MAX_REMEMBERED):
        encoder.encode([(b":status", b"200"), (b"x-n", b"%d" % n)])
        assert len(encoder._memo.results) <= MAX_REMEMBERED


_names = st.sampled_from([b"content-type", b"x-a", b"x-b", b"set-cookie", b"server", b"date"])
_values = st.sampled_from([b"", b"1", b"text/plain", b"a" * 40, b"b" * 200])
_heads = st.lists(st.tuples(_names, _values), max_size=6)
_steps = st.lists(st.one_of(_heads, st.sampled_from([0, 64, 256, 4096])), max_size=40)


@settings(max_examples=300, deadline=None)
@given(_steps)
def test_reusing_coders_match_hpack_byte_for_byte(steps: list[Any]) -> None:
    """Any sequence of heads and table resizes: the same blocks as hpack's encoder, and the
    reusing decoder reads back what hpack's decoder reads."""
    encoder, plain = ReusingEncoder(), Encoder()
    decoder, plain_decoder = ReusingDecoder(65536), Decoder(65536)
    for step in steps:
        if isinstance(step, int):
            encoder.header_table_size = step
            plain.header_table_size = step
            continue
        head = [(b":status", b"200"), *step]
        block = encoder.encode(list(head))
        assert block == plain.encode(list(head))
        assert _decoded(decoder, block) == _decoded(plain_decoder, block)


def _decoded(decoder: Decoder, block: bytes) -> Any:
    # hpack's encoder signals a table shrink but not a later growth, so after 0 -> 64 its
    # blocks index entries its decoder never made room for: both decoders must fail alike.
    try:
        return decoder.decode(block, raw=True)
    except HPACKDecodingError as exc:
        return type(exc)
