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
    symbol_counts,
    unzigzag,
    zigzag,
)
from bayescompress.errors import BayesCompressError
from bayescompress.vbq import GaussianPrior, choose_code_points


def round_trip(blocks):
    tables = [FrequencyTable.from_bytes(table.to_bytes(), 0, table.total)[0] for _, table in blocks]
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


def test_rare_symbols_are_escaped_and_frequent_uneven_ones_are_kept():
    rng = np.random.default_rng(2)
    common = rng.choice([4, 5, 6], 100_000, p=[0.8, 0.15, 0.05])  # raw codes of 3 bits, far from uniform
    rare = rng.integers(2**29, 2**30, 30)  # 30-bit codes: 41 bits each as escapes, 57 as entries
    table = FrequencyTable.fit(np.concatenate([common, rare]))
    assert table.symbols.tolist() == [4, 5, 6]
    assert table.escape_count == 30


def test_symbols_as_cheap_as_escapes_are_escaped_rather_than_listed():
    # uniform within each raw code length: escapes code them as well as a table, without the table
    symbols = np.random.default_rng(2).integers(8, 16, 100_000)
    table = FrequencyTable.fit(symbols)
    assert table.symbols.size == 0 and len(table.to_bytes(compact=True)) <= 4


@pytest.mark.parametrize("seed", range(12))
def test_the_chosen_table_never_costs_more_than_all_entries_or_all_escapes(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(10, 30_000))
    kind = seed % 4
    if kind == 0:
        symbols = rng.geometric(rng.uniform(0.01, 0.9), size)
    elif kind == 1:
        symbols = np.round(rng.standard_t(2, size) * 10 ** rng.uniform(0, 4)).astype(np.int64)
    elif kind == 2:
        symbols = rng.integers(1, 2 ** int(rng.integers(2, 40)), size)
    else:
        symbols = np.concatenate([rng.integers(0, 5, size), rng.integers(-(10**12), 10**12, size // 50 + 1)])
    unique, counts = symbol_counts(symbols)
    chosen = FrequencyTable.from_counts(unique, counts)
    signed = bool(unique[0] < 0)
    for escaped in (np.zeros(unique.size, bool), np.ones(unique.size, bool)):
        other = FrequencyTable.split(unique, counts, signed, escaped)
        assert chosen.file_bits() <= other.file_bits()
        real = len(chosen.to_bytes(True)) + len(encode_stream([(symbols, chosen)]))
        assert real <= len(other.to_bytes(True)) + len(encode_stream([(symbols, other)])) + 8


@pytest.mark.parametrize("seed", range(6))
def test_compact_tables_round_trip_given_the_count_they_cover_and_leave_the_last_count_out(seed):
    rng = np.random.default_rng(seed)
    symbols = np.concatenate([rng.geometric(0.3, 5000), rng.integers(-(10**9), 10**9, 40 * (seed % 2))])
    table = FrequencyTable.fit(symbols)
    compact = table.to_bytes(compact=True)
    parsed, end = FrequencyTable.from_bytes(compact + b"\xff", 0, symbols.size)
    legacy = FrequencyTable.fit(symbols, compact=False).to_bytes(compact=False)
    assert end == len(compact) and len(compact) < len(legacy)
    assert parsed.symbols.tolist() == table.symbols.tolist()
    assert parsed.counts.tolist() == table.counts.tolist()
    assert parsed.escape_count == table.escape_count
    with pytest.raises(BayesCompressError, match="do not add up|out of range"):
        FrequencyTable.from_bytes(compact, 0, int(table.counts[:-1].sum()) if table.escape_count == 0 else 0)


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
        FrequencyTable.from_bytes(table.to_bytes()[:-60], 0, 100)


def test_stream_with_a_table_for_the_wrong_count_is_rejected():
    symbols = np.arange(10) % 3
    table = FrequencyTable.fit(symbols)
    with pytest.raises(BayesCompressError, match="covers 10 symbols"):
        decode_stream(encode_stream([(symbols, table)]), [(11, table)])


def _table_overhead_case(case: str, lam: float) -> np.ndarray:
    """VBQ symbols of benchmarks/table_overhead.py's cases: 1e5 latents."""
    from bayescompress.vbq import prior_and_symbols

    rng = np.random.default_rng(0)
    n = 100_000
    heavy = 0.05 * rng.standard_t(3, n), 0.05 * np.exp(rng.uniform(-2.3, 0, n))
    normal = rng.normal(size=n), np.exp(rng.uniform(-9, -5, n))
    return prior_and_symbols(*(heavy if case == "t3" else normal), lam, "auto")[1]


@pytest.mark.parametrize("case, lam", [("t3", 0.05), ("normal", 0.05), ("normal", 5.0)])
def test_table_plus_stream_lie_within_one_percent_of_entropy_plus_alphabet_at_1e5_vbq_latents(case, lam):
    from bayescompress.coding import alphabet_description_bits

    symbols = _table_overhead_case(case, lam)
    table = FrequencyTable.fit(symbols)
    stream = encode_stream([(symbols, table)])
    file_bits = 8 * (len(table.to_bytes()) + len(stream))
    assert file_bits <= 1.01 * (empirical_entropy_bits(symbols) + alphabet_description_bits(symbols))
    parsed, _ = FrequencyTable.from_bytes(table.to_bytes(), 0, symbols.size)
    assert np.array_equal(decode_stream(stream, [(symbols.size, parsed)])[0], symbols)


def test_escapes_whose_leading_bits_are_uneven_have_them_modeled_and_round_trip():
    rng = np.random.default_rng(5)
    # 16-bit codes crowding the middle of their range (as VBQ's do near the prior's median)
    symbols = (2**15 + np.clip(rng.normal(2**14, 2**11, 50_000), 0, 2**15 - 1)).astype(np.int64)
    table = FrequencyTable.fit(symbols)
    assert table.symbols.size == 0 and table.top_bits is not None and table.top_bits.max() >= 4
    stream = encode_stream([(symbols, table)])
    uniform = FrequencyTable.fit(symbols, compact=False)
    assert len(stream) < 0.95 * len(encode_stream([(symbols, uniform)]))
    parsed, end = FrequencyTable.from_bytes(table.to_bytes(), 0, symbols.size)
    assert end == len(table.to_bytes()) and parsed.top_bits.tolist() == table.top_bits.tolist()
    assert np.array_equal(decode_stream(stream, [(symbols.size, parsed)])[0], symbols)
    with pytest.raises(BayesCompressError, match="legacy|compact table form"):
        table.to_bytes(compact=False)


def test_escape_top_bit_histograms_that_do_not_add_up_are_refused():
    middle = np.random.default_rng(6).normal(2**14, 2**11, 5000).clip(0, 2**15 - 1)
    symbols = (2**15 + middle).astype(np.int64)
    data = bytearray(FrequencyTable.fit(symbols).to_bytes())
    with pytest.raises(BayesCompressError, match="do not add up|out of range"):
        FrequencyTable.from_bytes(bytes(data), 0, symbols.size - 1)
    data[0] = 4  # top bits without escapes
    with pytest.raises(BayesCompressError, match="unknown flags"):
        FrequencyTable.from_bytes(bytes(data), 0, symbols.size)


@pytest.mark.parametrize("symbols", [np.arange(-50, 50), np.arange(0, 130), np.repeat(np.arange(-70, 73), 1)])
def test_modeled_escape_top_bits_are_kept_only_where_they_pay_for_their_description(symbols):
    # a histogram that saves 10 bits in one length but adds a 64-bit per-length vector lost 54 bits
    unique, counts = symbol_counts(symbols)
    chosen = FrequencyTable.from_counts(unique, counts)
    plain = FrequencyTable.split(unique, counts, bool(unique[0] < 0), np.ones(unique.size, bool))
    assert chosen.file_bits() <= plain.file_bits()
