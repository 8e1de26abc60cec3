"""Segments: all tensors' latents, in order, cut into runs of S latents that are coded alone.

A segment holds one frequency table per tensor piece it covers, then one range-coded stream of
those pieces.  The index lists each segment's table and stream byte lengths, so segments are
coded in parallel, and any one of them (any tensor) is decoded without the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from . import coding
from .coding import FrequencyTable, decode_varints, encode_stream, encode_varints
from .errors import BayesCompressError

SEGMENT_LATENTS = 1 << 20  # default S: tables cost ~0.1% of a segment's stream at 1 bit/dim


@dataclass(frozen=True)
class Piece:
    """Latents [start, stop) of tensor number ``tensor`` (flat, row-major)."""

    tensor: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def segment_count(sizes: list[int], segment_latents: int) -> int:
    return -(-sum(sizes) // segment_latents)


def segment_pieces(sizes: list[int], segment_latents: int) -> Iterator[list[Piece]]:
    """The pieces of each segment in turn; a tensor may span many segments, a segment many tensors.

    >>> [[(p.tensor, p.start, p.stop) for p in s] for s in segment_pieces([3, 1, 4], 3)]
    [[(0, 0, 3)], [(1, 0, 1), (2, 0, 2)], [(2, 2, 4)]]
    """
    pieces, room = [], segment_latents
    for tensor, size in enumerate(sizes):
        start = 0
        while start < size:
            stop = min(size, start + room)
            pieces.append(Piece(tensor, start, stop))
            room -= stop - start
            start = stop
            if room == 0:
                yield pieces
                pieces, room = [], segment_latents
    if pieces:
        yield pieces


def encode_segment(
    symbol_pieces: list[np.ndarray], counted: list[tuple[np.ndarray, np.ndarray]], compact: bool = True
) -> tuple[bytes, int]:
    """A segment's bytes (tables, then stream) and the length of its tables.

    ``counted`` holds each piece's distinct symbols and counts (``coding.symbol_counts``);
    ``compact``: tables in the form of format version 4 (else version 3).
    """
    tables = [FrequencyTable.from_counts(unique, counts, compact) for unique, counts in counted]
    table_bytes = b"".join(table.to_bytes(compact) for table in tables)
    stream = encode_stream(list(zip(symbol_pieces, tables, strict=True)))
    return table_bytes + stream, len(table_bytes)


def decode_segment(data: bytes, table_length: int, counts: list[int],
                   compact: bool = True) -> list[np.ndarray]:
    """Symbols of each piece of a segment, given its bytes, table length and piece sizes."""
    tables, offset = [], 0
    view = memoryview(data)[:table_length]
    for count in counts:
        table, offset = FrequencyTable.from_bytes(view, offset, count if compact else None)
        tables.append(table)
    if offset != table_length:
        raise BayesCompressError("segment tables do not end where the index says")
    blocks = list(zip(counts, tables, strict=True))
    # coding's functions are looked up at call time, so that tests can stand in for them
    coding.check_stream_can_hold(data[table_length:], blocks)  # a small segment never declares a long decode
    return coding.decode_stream(data[table_length:], blocks)


def encode_index(lengths: list[tuple[int, int]]) -> bytes:
    """Varints: each segment's table bytes and stream bytes, in order."""
    return encode_varints(np.array(lengths, dtype=np.uint64).ravel())


def decode_index(data: bytes, count: int) -> np.ndarray:
    """(count, 2) array of table and stream byte lengths; refuses trailing bytes."""
    if 2 * count > len(data):  # every varint takes a byte: a count the section cannot hold is a lie
        raise BayesCompressError("segment index is shorter than its segment count")
    values, offset = decode_varints(data, 2 * count)
    if offset != len(data):
        raise BayesCompressError("segment index has trailing bytes")
    if values.size and values.max() >= np.uint64(1 << 48):
        raise BayesCompressError("segment index holds an impossible length")
    return values.astype(np.int64).reshape(count, 2)
