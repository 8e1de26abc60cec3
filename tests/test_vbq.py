"""VBQ (eq. 9, Algorithm 1): round trips first, then analytic truths and a brute-force oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtri

from bayescompress.errors import BayesCompressError
from bayescompress.priors import StudentT2Prior
from bayescompress.vbq import (
    MAX_RATE,
    GaussianPrior,
    VBQQuantizer,
    choose_code_points,
    code_point_values,
    code_points,
    rate_distortion_loss,
    stored_precision,
    symbol_rates,
)


def brute_force_code_points(means, stds, lam, prior, max_rate):
    """Every code point up to ``max_rate``, ordered by rate then position; first minimum wins."""
    symbols = np.arange(1, 1 << max_rate, dtype=np.int64)
    values = code_point_values(symbols, prior)
    rates = symbol_rates(symbols)
    penalty = 2.0 * lam * np.square(stds)
    loss = np.square(values[None, :] - means[:, None]) + penalty[:, None] * rates[None, :]
    return symbols[np.argmin(loss, axis=1)]


def test_quantize_then_dequantize_gives_the_code_point_values():
    rng = np.random.default_rng(1)
    means, stds = rng.normal(size=500), np.exp(rng.uniform(-4, 0, 500))
    quantizer = VBQQuantizer(lam=0.3)
    out = quantizer.quantize(means, stds)
    prior = stored_precision(GaussianPrior.empirical(means))
    assert np.array_equal(
        VBQQuantizer.dequantize(out.symbols, out.params, quantizer.config()),
        code_point_values(out.symbols, prior),
    )


def test_symbols_are_heap_indices_of_binary_code_points():
    symbols = np.array([1, 2, 3, 4, 5, 6, 7, 8, 15])
    assert code_points(symbols).tolist() == [1 / 2, 1 / 4, 3 / 4, 1 / 8, 3 / 8, 5 / 8, 7 / 8,
                                             1 / 16, 15 / 16]
    assert symbol_rates(symbols).tolist() == [1, 2, 2, 3, 3, 3, 3, 4, 4]


def test_code_point_values_are_prior_quantiles_and_mirror_exactly():
    prior = GaussianPrior(0.0, 2.0)
    rates = np.arange(1, MAX_RATE + 1)
    lowest = (np.int64(1) << (rates - 1))  # xi = 1 / 2^r
    highest = (np.int64(1) << rates) - 1  # xi = 1 - 1 / 2^r
    low, high = code_point_values(lowest, prior), code_point_values(highest, prior)
    assert np.array_equal(low, -high)
    assert np.allclose(low[:30], 2.0 * ndtri(np.ldexp(1.0, -rates[:30])))


def test_empirical_prior_is_zero_mean_rms_of_means_as_in_the_paper():
    means = np.array([1.0, -3.0, 2.0, 0.0])
    prior = GaussianPrior.empirical(means)
    assert prior.loc == 0.0
    assert prior.scale == pytest.approx(np.sqrt(np.mean(means**2)))
    fitted = GaussianPrior.empirical(means, fit_loc=True)
    assert fitted.loc == pytest.approx(0.0) and fitted.scale == pytest.approx(np.std(means))


def test_empirical_prior_of_a_constant_tensor_still_reconstructs_it_exactly():
    means = np.full(10, 0.75)
    quantizer = VBQQuantizer(lam=1.0, prior="fit")
    out = quantizer.quantize(means, np.full(10, 0.1))
    assert np.array_equal(VBQQuantizer.dequantize(out.symbols, out.params, quantizer.config()),
                          means)


def test_vanishing_lambda_returns_the_means():
    rng = np.random.default_rng(2)
    means, stds = rng.normal(size=1000), np.exp(rng.uniform(-3, 1, 1000))
    prior = GaussianPrior.empirical(means)
    values = code_point_values(choose_code_points(means, stds, 0.0, prior), prior)
    assert np.allclose(values, means, rtol=1e-12, atol=1e-14)
    values = code_point_values(choose_code_points(means, stds, 1e-9, prior), prior)
    assert np.max(np.abs(values - means) / stds) < 1e-3


def test_huge_lambda_sends_every_latent_to_the_prior_median():
    rng = np.random.default_rng(3)
    means, stds = rng.normal(size=1000), np.exp(rng.uniform(-3, 1, 1000))
    symbols = choose_code_points(means, stds, 1e12, GaussianPrior.empirical(means))
    assert np.all(symbols == 1)


def test_distortion_does_not_increase_as_lambda_decreases():
    rng = np.random.default_rng(4)
    means, stds = rng.normal(size=5000), np.exp(rng.uniform(-5, 0, 5000))
    prior = GaussianPrior.empirical(means)
    distortions = []
    for lam in np.logspace(4, -6, 30):
        values = code_point_values(choose_code_points(means, stds, lam, prior), prior)
        distortions.append(np.sum(np.square((values - means) / stds)))
    assert np.all(np.diff(distortions) <= 1e-9 * np.max(distortions))
    assert distortions[0] > 100 * distortions[-1]


def test_uncertain_latents_get_fewer_bits():
    means = np.full(2, 0.4321)
    rates = symbol_rates(choose_code_points(means, np.array([1e-3, 0.3]), 1.0,
                                            GaussianPrior(0.0, 1.0)))
    assert rates[0] > rates[1]


@settings(max_examples=500, deadline=None)
@given(
    means=st.lists(
        st.one_of(st.floats(-1e6, 1e6), st.floats(-3, 3), st.sampled_from([0.0, 1e-300, -5e-324])),
        min_size=1, max_size=40),
    log_stds=st.lists(st.floats(-25, 15), min_size=1, max_size=40),
    log10_lam=st.floats(-6, 6),
    scale=st.sampled_from([1.0, 1e-3, 37.5]),
    loc=st.sampled_from([0.0, -0.25]),
    max_rate=st.integers(1, 12),
    family=st.sampled_from([GaussianPrior, StudentT2Prior]),
)
def test_algorithm_1_agrees_with_brute_force_search_for_either_prior(means, log_stds, log10_lam, scale,
                                                                      loc, max_rate, family):
    n = min(len(means), len(log_stds))
    means = np.array(means[:n])
    stds = np.exp(np.array(log_stds[:n]))
    prior = family(loc, scale)
    lam = 10.0**log10_lam
    fast = choose_code_points(means, stds, lam, prior, max_rate=max_rate)
    slow = brute_force_code_points(means, stds, lam, prior, max_rate)
    assert np.array_equal(fast, slow), (
        fast, slow, rate_distortion_loss(fast, means, stds, lam, prior),
        rate_distortion_loss(slow, means, stds, lam, prior))


def test_algorithm_1_agrees_with_brute_force_on_many_random_latents_up_to_14_bits():
    rng = np.random.default_rng(5)
    n = 600
    means = rng.normal(size=n) * rng.choice([1e-4, 1.0, 5.0, 1e4], n)
    stds = np.exp(rng.uniform(-20, 5, n))
    for lam in (1e-6, 1e-2, 1.0, 1e2, 1e6):
        prior = GaussianPrior.empirical(means)
        assert np.array_equal(choose_code_points(means, stds, lam, prior, max_rate=14),
                              brute_force_code_points(means, stds, lam, prior, 14))


def test_rates_never_exceed_the_maximum_rate():
    rng = np.random.default_rng(6)
    means, stds = rng.normal(size=2000), np.full(2000, 1e-12)
    symbols = choose_code_points(means, stds, 1e-6, GaussianPrior(0.0, 1.0), max_rate=7)
    assert symbol_rates(symbols).max() == 7


@pytest.mark.parametrize("lam", [-1.0, float("nan"), float("inf")])
def test_bad_lambda_is_rejected(lam):
    with pytest.raises(BayesCompressError, match="lambda"):
        VBQQuantizer(lam=lam)


def test_bad_max_rate_is_rejected():
    with pytest.raises(BayesCompressError, match="max rate"):
        VBQQuantizer(lam=1.0, max_rate=54)


def test_the_prior_of_many_large_means_is_their_rms_without_overflowing_the_sum_of_squares():
    block = np.full(1 << 16, 9e149)  # 4,000 blocks: 2.6e8 latents whose squares sum past 1.8e308
    prior = GaussianPrior.from_blocks(lambda: (block for _ in range(4000)))
    assert prior.scale == pytest.approx(9e149, rel=1e-12)


def test_the_prior_is_stored_at_float32_precision_with_the_scale_rounded_up():
    from bayescompress import binaryjson
    from bayescompress.vbq import prior_params

    rng = np.random.default_rng(11)
    means = rng.normal(0.3, 0.7, 1000)
    exact = GaussianPrior.empirical(means, fit_loc=True)
    stored = stored_precision(exact)
    assert float(np.float32(stored.scale)) == stored.scale >= exact.scale
    assert stored.scale - exact.scale <= 2**-23 * exact.scale and stored.loc == float(np.float32(exact.loc))
    assert len(binaryjson.encode(prior_params(stored))) == len(binaryjson.encode(prior_params(exact))) - 8
    # magnitudes float32 cannot hold stay exact float64
    assert stored_precision(GaussianPrior(1e-300, 1e300)) == GaussianPrior(1e-300, 1e300)
