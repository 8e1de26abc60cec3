"""Frequency tables and the range-coded stream: round trips, exact models, compact tables."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bayescompress.coding import (
    PRECISION,
    FrequencyTable,
    decode_stream,
    decode_varints,
    empirical_entropy_bits,
    encode_stream,
    encode_varints,
    fixed_point_probabilities,
    unzigzag,
    zigzag,
)
from bayescompress.errors import BayesCompressError
from bayescompress.vbq import GaussianPrior, choose_code_points


def round_trip(blocks):
    tables = [FrequencyTable.from_bytes(table.to_bytes())[0] for _, table in blocks]
    stream = encode_stream(blocks)
    return decode_stream(stream, [(s.size, t) for (s, _), t in zip(blocks, tables, strict=True)]), stream


@settings(max_examples=200, deadline=None)
@given(arrays(np.int64, st.integers(1, 300),
              elements=st.one_of(st.integers(-3, 3), st.integers(-(2**63), 2**63 - 1))))
def test_any_int64_symbols_round_trip(symbols):
    decoded, _ = round_trip([(symbols, FrequencyTable.fit(symbols))])
    assert np.array_equal(decoded[0], symbols)


def test_several_blocks_share_one_stream_and_decode_in_order():
    rng = np.random.default_rng(0)
    blocks = [rng.geometric(0.3, 5000).astype(np.int64), np.full(7, 42),
              rng.integers(-1000, 1000, 300), rng.integers(1, 2**53, 50)]
    decoded, _ = round_trip([(s, FrequencyTable.fit(s)) for s in blocks])
    for got, want in zip(decoded, blocks, strict=True):
        assert np.array_equal(got, want)


def test_a_single_repeated_symbol_costs_no_stream_bits():
    symbols = np.ones(100_000, dtype=np.int64)
    decoded, stream = round_trip([(symbols, FrequencyTable.fit(symbols))])
    assert stream == b"" and np.array_equal(decoded[0], symbols)


def test_stream_is_within_half_a_percent_of_the_empirical_entropy():
    rng = np.random.default_rng(1)
    symbols = rng.geometric(0.2, 200_000).astype(np.int64)
    _, stream = round_trip([(symbols, FrequencyTable.fit(symbols))])
    assert 8 * len(stream) <= 1.005 * empirical_entropy_bits(symbols)


def test_rare_symbols_are_escaped_and_frequent_ones_are_kept():
    rng = np.random.default_rng(2)
    common = rng.integers(0, 4, 100_000)
    rare = rng.integers(10**6, 10**9, 30)
    table = FrequencyTable.fit(np.concatenate([common, rare]))
    assert table.symbols.tolist() == [0, 1, 2, 3]
    assert table.escape_count == 30


def test_table_is_a_small_fraction_of_a_one_bit_per_dim_vbq_archive():
    rng = np.random.default_rng(3)
    means = 0.3 * rng.standard_normal(100_000)
    stds = 0.3 * np.exp(rng.uniform(np.log(0.01), 0.0, 100_000))
    symbols = choose_code_points(means, stds, 400.0, GaussianPrior.empirical(means))
    table = FrequencyTable.fit(symbols)
    stream = encode_stream([(symbols, table)])
    assert 0.8 < 8 * len(stream) / symbols.size < 1.2
    assert len(table.to_bytes()) < 0.01 * len(stream)


def test_fixed_point_probabilities_sum_to_the_precision_and_keep_every_symbol():
    rng = np.random.default_rng(4)
    counts = np.concatenate([rng.integers(1, 10**9, 500), np.ones(500, dtype=np.int64)])
    probs = fixed_point_probabilities(counts)
    assert probs.sum() == 1 << PRECISION and probs.min() >= 1
    assert np.array_equal(probs, fixed_point_probabilities(counts.copy()))


def test_fixed_point_probabilities_follow_the_counts():
    probs = fixed_point_probabilities(np.array([1, 1, 2]), precision=8)
    assert probs.tolist() == [64, 64, 128]


def test_constriction_codes_with_exactly_our_fixed_point_model():
    # with probability exactly 2^-8 per symbol a stream of 256 symbols takes exactly 2048 bits
    symbols = np.arange(256, dtype=np.int64).repeat(64)
    table = FrequencyTable.fit(symbols)
    stream = encode_stream([(symbols, table)])
    assert 8 * len(stream) - 8 * symbols.size <= 64


@settings(max_examples=100, deadline=None)
@given(arrays(np.uint64, st.integers(0, 50)))
def test_varints_round_trip(values):
    data = encode_varints(values)
    decoded, end = decode_varints(data, values.size)
    assert np.array_equal(decoded, values) and end == len(data)


def test_zigzag_maps_small_magnitudes_to_small_codes():
    values = np.array([0, -1, 1, -2, 2, -(2**63), 2**63 - 1])
    assert zigzag(values)[:5].tolist() == [0, 1, 2, 3, 4]
    assert np.array_equal(unzigzag(zigzag(values)), values)


def test_truncated_table_is_reported():
    table = FrequencyTable.fit(np.arange(100))
    with pytest.raises(BayesCompressError, match="truncated"):
        FrequencyTable.from_bytes(table.to_bytes()[:-60])


def test_stream_with_a_table_for_the_wrong_count_is_rejected():
    symbols = np.arange(10) % 3
    table = FrequencyTable.fit(symbols)
    with pytest.raises(BayesCompressError, match="covers 10 symbols"):
        decode_stream(encode_stream([(symbols, table)]), [(11, table)])
