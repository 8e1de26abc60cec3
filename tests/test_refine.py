"""VBQ refined with code lengths: round trip, agreement with brute force, and what it must never do."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayescompress.errors import BayesCompressError
from bayescompress.packing import pack, unpack
from bayescompress.refine import CodeLengths, RefinedVBQQuantizer, choose_with_code_lengths, refined_loss
from bayescompress.vbq import GaussianPrior, VBQQuantizer, choose_code_points, code_point_values


def brute_force_refined(means, stds, lam, prior, lengths, max_rate):
    symbols = np.arange(1, 1 << max_rate, dtype=np.int64)
    values = code_point_values(symbols, prior)
    penalty = 2.0 * lam * np.square(stds)
    loss = np.square(values[None, :] - means[:, None]) + penalty[:, None] * lengths.of(symbols)[None, :]
    return loss.min(axis=1)


def _lengths_from(rng, max_rate, n=3000):
    """A cost model from a realistic previous pass: VBQ symbols of random latents."""
    means, stds = rng.normal(size=n), np.exp(rng.uniform(-5, 0, n))
    prior = GaussianPrior.empirical(means)
    return CodeLengths.from_symbols(choose_code_points(means, stds, rng.choice([0.01, 0.3, 3.0]), prior,
                                                       max_rate))


def test_refined_archives_unpack_to_exactly_the_values_chosen(tmp_path, posterior):
    result = pack(posterior, tmp_path / "a.bcz", method="vbq-refined", lam=0.3, passes=2)
    for name, values in unpack(tmp_path / "a.bcz").tensors.items():
        assert values.tobytes() == result.values[name].tobytes()


def test_code_lengths_are_the_tables_information_content_and_escapes_cost_more():
    symbols = np.repeat([1, 2, 3, 5], [500, 250, 200, 50])
    lengths = CodeLengths.from_symbols(symbols)
    assert lengths.of(np.array([1, 2, 3, 5])) == pytest.approx(np.log2(1000 / np.array([500, 250, 200, 50])))
    unseen = lengths.of(np.array([4, 100]))
    assert unseen.tolist() == pytest.approx([np.log2(1001) + 3, np.log2(1001) + 7])


@pytest.mark.parametrize("seed", range(6))
def test_refined_choice_agrees_with_brute_force_over_every_code_point(seed):
    rng = np.random.default_rng(seed)
    max_rate = int(rng.integers(4, 12))
    lengths = _lengths_from(rng, max_rate)
    n = 400
    means = rng.normal(size=n) * rng.choice([0.1, 1.0, 3.0], n)
    stds = np.exp(rng.uniform(-6, 1, n))
    prior = GaussianPrior.empirical(rng.normal(size=100))
    for lam in (0.0, 1e-3, 0.1, 1.0, 30.0, 1e4):
        fast = choose_with_code_lengths(means, stds, lam, prior, lengths, max_rate)
        best = brute_force_refined(means, stds, lam, prior, lengths, max_rate)
        got = refined_loss(fast, means, stds, lam, prior, lengths)
        assert np.all(fast < (1 << max_rate))
        assert np.allclose(got, best, rtol=1e-12, atol=0), np.max(got - best)


@settings(max_examples=150, deadline=None)
@given(
    means=st.lists(st.floats(-4, 4), min_size=1, max_size=30),
    log_stds=st.lists(st.floats(-12, 3), min_size=1, max_size=30),
    log10_lam=st.floats(-5, 5),
    table=st.lists(st.integers(1, 255), min_size=0, max_size=25),
    counts=st.lists(st.integers(1, 500), min_size=25, max_size=25),
    escapes=st.integers(0, 50),
)
def test_refined_choice_agrees_with_brute_force_for_any_table(means, log_stds, log10_lam, table, counts,
                                                                escapes):
    n = min(len(means), len(log_stds))
    means, stds = np.array(means[:n]), np.exp(np.array(log_stds[:n]))
    symbols = np.unique(np.array(table, dtype=np.int64))
    bits = np.log2((sum(counts[: symbols.size]) + escapes) / np.array(counts[: symbols.size], dtype=float))
    lengths = CodeLengths(symbols, bits, float(np.log2(1 + escapes + sum(counts[: symbols.size]))))
    prior, lam = GaussianPrior(0.0, 1.3), 10.0**log10_lam
    fast = choose_with_code_lengths(means, stds, lam, prior, lengths, 8)
    best = brute_force_refined(means, stds, lam, prior, lengths, 8)
    assert np.allclose(refined_loss(fast, means, stds, lam, prior, lengths), best, rtol=1e-12, atol=0)


def test_zero_passes_is_plain_vbq_and_each_pass_lowers_its_own_objective():
    rng = np.random.default_rng(7)
    means, stds = 0.3 * rng.normal(size=20000), 0.3 * np.exp(rng.uniform(np.log(0.01), 0, 20000))
    plain = VBQQuantizer(lam=1.0).quantize(means, stds).symbols
    assert np.array_equal(RefinedVBQQuantizer(lam=1.0, passes=0).quantize(means, stds).symbols, plain)
    prior = GaussianPrior.empirical(means)
    lengths = CodeLengths.from_symbols(plain)
    refined = choose_with_code_lengths(means, stds, 1.0, prior, lengths)
    # under the previous pass's code lengths, the refined choice is no worse for any latent
    before = refined_loss(plain, means, stds, 1.0, prior, lengths)
    after = refined_loss(refined, means, stds, 1.0, prior, lengths)
    assert np.all(after <= before) and np.sum(after) < np.sum(before)


def test_refinement_only_uses_symbols_the_previous_pass_made_cheap_or_algorithm_1s_choice():
    rng = np.random.default_rng(8)
    means, stds = rng.normal(size=5000), np.exp(rng.uniform(-4, 0, 5000))
    prior = GaussianPrior.empirical(means)
    first = choose_code_points(means, stds, 0.5, prior)
    lengths = CodeLengths.from_symbols(first)
    refined = choose_with_code_lengths(means, stds, 0.5, prior, lengths, fallback=first)
    assert np.all(np.isin(refined, lengths.symbols) | (refined == first))


def test_bad_refinement_passes_are_rejected():
    with pytest.raises(BayesCompressError, match="passes"):
        RefinedVBQQuantizer(lam=1.0, passes=-1)
    with pytest.raises(BayesCompressError, match="lambda"):
        RefinedVBQQuantizer(lam=float("nan"))
