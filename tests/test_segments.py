"""Segments: how the model's latents are cut, and each segment coded and decoded alone."""

from __future__ import annotations

import numpy as np
import pytest

from bayescompress.coding import symbol_counts
from bayescompress.errors import BayesCompressError
from bayescompress.segments import (
    decode_index,
    decode_segment,
    encode_index,
    encode_segment,
    segment_count,
    segment_pieces,
)


def test_segments_cover_every_latent_once_in_order():
    sizes = [5, 1, 1, 12, 3]
    covered = {t: [] for t in range(len(sizes))}
    segments = list(segment_pieces(sizes, 4))
    assert len(segments) == segment_count(sizes, 4)
    for pieces in segments[:-1]:
        assert sum(p.size for p in pieces) == 4
    for pieces in segments:
        for piece in pieces:
            covered[piece.tensor].extend(range(piece.start, piece.stop))
    assert all(covered[t] == list(range(size)) for t, size in enumerate(sizes))


def test_a_segment_of_several_tensor_pieces_round_trips_with_escapes():
    rng = np.random.default_rng(0)
    pieces = [rng.integers(1, 40, 300), np.array([7]), rng.integers(-(1 << 40), 1 << 40, 50)]
    data, table_length = encode_segment(pieces, [symbol_counts(p) for p in pieces])
    decoded = decode_segment(data, table_length, [p.size for p in pieces])
    assert all(np.array_equal(a, b) for a, b in zip(pieces, decoded, strict=True))


def test_the_index_round_trips_and_refuses_trailing_bytes():
    lengths = [(10, 2000), (0, 0), (7, 1 << 33)]
    assert decode_index(encode_index(lengths), 3).tolist() == [list(x) for x in lengths]
    with pytest.raises(BayesCompressError, match="trailing"):
        decode_index(encode_index(lengths) + b"\x00", 3)


def test_an_index_that_claims_more_segments_than_its_bytes_hold_is_refused_before_decoding():
    with pytest.raises(BayesCompressError, match="shorter than its segment count"):
        decode_index(encode_index([(1, 2)]), 10**12)
