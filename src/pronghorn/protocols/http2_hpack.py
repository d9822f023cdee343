"""HPACK coders that reuse a block's result while the dynamic table stays as it was.

A client repeats the same request head (after its first request every field is an index into
the dynamic table, so the block's bytes repeat too), and a server answers with the same
response head. Coding such a block neither reads a literal nor changes the table, so its
result is a function of the block and the table alone: these subclasses of hpack's coders
remember it, and forget everything the moment the table (or a limit) changes. Any block that
adds to, evicts from or resizes the table goes through hpack's own coder as before, so the
wire format and the table are exactly what hpack alone would produce.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from hpack import Decoder, Encoder

#: Remembered results per coder; one connection rarely sees more distinct heads than this.
MAX_REMEMBERED: Final = 32
#: Longer blocks are not remembered: they are rarely repeated and would hold memory.
MAX_BLOCK: Final = 1024


class _Memo:
    """Results remembered for one dynamic table state.

    Entries are only ever added at the table's front (a new tuple object) and evicted at its
    back, so the table is unchanged exactly when its length, its first entry (by identity: the
    reference held here keeps that object alive, so its address cannot be reused) and its size
    limit are.
    """

    __slots__ = ("first", "length", "maxsize", "results")

    def __init__(self) -> None:
        self.results: dict[Any, Any] = {}
        self.length = -1  # matches no table: nothing is remembered yet
        self.first: object = None
        self.maxsize = -1

    def recall(self, table: Any, key: Any) -> Any:
        """The result remembered for ``key`` if the table is still the one it was coded in."""
        if not self._unchanged(table):
            self.results.clear()
            self._mark(table)
            return None
        return self.results.get(key)

    def remember(self, table: Any, key: Any, result: Any, size: int) -> None:
        """Keep ``result`` if coding it left the table as ``recall`` last saw it."""
        if self._unchanged(table):
            if len(self.results) >= MAX_REMEMBERED:
                self.results.clear()
            if size <= MAX_BLOCK:
                self.results[key] = result
        else:  # the block changed the table: start over from the new state
            self.results.clear()
            self._mark(table)

    def _unchanged(self, table: Any) -> bool:
        entries = table.dynamic_entries
        return (
            len(entries) == self.length
            and (entries[0] if entries else None) is self.first
            and table.maxsize == self.maxsize
        )

    def _mark(self, table: Any) -> None:
        entries = table.dynamic_entries
        self.length = len(entries)
        self.first = entries[0] if entries else None
        self.maxsize = table.maxsize

    def forget(self) -> None:
        self.results.clear()
        self.length = -1  # no table matches: the next recall() starts over


class ReusingEncoder(Encoder):
    """hpack's encoder, returning the same block for the same header list while it can."""

    def __init__(self) -> None:
        super().__init__()
        self._memo = _Memo()

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        table = self.header_table
        memo = self._memo
        if type(headers) is not list or table.resized:
            memo.forget()
            return super().encode(headers, huffman)
        try:
            key = (huffman, *headers)
            block: bytes | None = memo.recall(table, key)
        except TypeError:  # an unhashable value (a bytearray): code it, remember nothing
            memo.forget()
            return super().encode(headers, huffman)
        if block is None:
            block = super().encode(headers, huffman)
            memo.remember(table, key, block, len(block))
        return block


class ReusingDecoder(Decoder):
    """hpack's decoder, returning the same header list for the same block while it can."""

    def __init__(self, max_header_list_size: int) -> None:
        super().__init__(max_header_list_size)
        self._memo = _Memo()
        self._limits = (-1, -1)

    def decode(self, data: bytes, raw: bool = False) -> Iterable[Any]:
        table = self.header_table
        memo = self._memo
        limits = (self.max_header_list_size, self.max_allowed_table_size)
        if limits != self._limits:  # a result checked against other limits is not reused
            self._limits = limits
            memo.forget()
        key = (bytes(data), raw)
        headers: list[Any] | None = memo.recall(table, key)
        if headers is None:
            headers = list(super().decode(data, raw))  # a bad block raises: nothing kept
            memo.remember(table, key, headers, len(key[0]))
        return list(headers)  # h2 may keep the list it is given
