"""The Student-t(2) prior: code points from sqrt alone, Algorithm 1 still exact, no weight clipped."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bayescompress.errors import BayesCompressError
from bayescompress.priors import StudentT2Prior, lower_t2_cdf, lower_t2_quantile
from bayescompress.vbq import (
    MAX_RATE,
    GaussianPrior,
    VBQQuantizer,
    choose_code_points,
    code_point_values,
    code_points,
    prior_and_symbols,
    stored_precision,
    symbol_rates,
)
from tests.test_vbq import brute_force_code_points


def t2_quantile_in_python(p: float) -> float:
    """The closed form with Python floats, one correctly rounded operation at a time."""
    if p > 0.5:
        return -t2_quantile_in_python(1.0 - p)
    return (2.0 * p - 1.0) / math.sqrt(2.0 * p * (1.0 - p))


def test_t2_code_points_are_the_closed_form_quantile_bit_for_bit():
    rng = np.random.default_rng(0)
    symbols = np.concatenate([np.arange(1, 4096), rng.integers(1, 1 << MAX_RATE, 4000, dtype=np.int64)])
    prior = StudentT2Prior(0.0, 1.0)
    values = code_point_values(symbols, prior)
    expected = [t2_quantile_in_python(float(x)) for x in code_points(symbols)]
    assert values.tolist() == expected


def test_t2_code_points_mirror_exactly_and_reach_beyond_ten_million_scales():
    rates = np.arange(1, MAX_RATE + 1)
    lowest, highest = np.int64(1) << (rates - 1), (np.int64(1) << rates) - 1
    prior = StudentT2Prior(0.0, 2.0)
    assert np.array_equal(code_point_values(lowest, prior), -code_point_values(highest, prior))
    assert code_point_values(highest[-1:], StudentT2Prior(0.25, 2.0))[0] > 0.25 + 2.0 * 1e7


def test_t2_cdf_inverts_the_quantile_on_the_near_side():
    p = np.ldexp(np.arange(1, 1 << 12, 2, dtype=np.float64), -13)
    assert np.allclose(lower_t2_cdf(-lower_t2_quantile(p)), p, rtol=1e-13, atol=0)


def test_t2_fit_recovers_the_location_and_scale_of_t2_samples():
    rng = np.random.default_rng(1)
    samples = 0.3 + 0.05 * rng.standard_t(2, size=200_000)
    prior = StudentT2Prior.empirical(samples)
    assert prior.loc == pytest.approx(0.3, abs=1e-3)
    assert prior.scale == pytest.approx(0.05, rel=0.02)


def test_t2_prior_of_a_constant_tensor_reconstructs_it_exactly():
    means = np.full(10, -0.75)
    quantizer = VBQQuantizer(lam=1.0, prior="t2")
    out = quantizer.quantize(means, np.full(10, 0.1))
    assert np.array_equal(VBQQuantizer.dequantize(out.symbols, out.params, quantizer.config()), means)


def test_algorithm_1_with_the_t2_prior_agrees_with_brute_force_on_heavy_tails_up_to_14_bits():
    rng = np.random.default_rng(2)
    means = rng.standard_t(1, size=600) * rng.choice([1e-4, 1.0, 1e3], 600)
    stds = np.exp(rng.uniform(-20, 5, 600))
    prior = StudentT2Prior.empirical(means)
    for lam in (1e-6, 1e-2, 1.0, 1e2, 1e6):
        assert np.array_equal(choose_code_points(means, stds, lam, prior, max_rate=14),
                              brute_force_code_points(means, stds, lam, prior, 14))


def heavy_tailed_tensors():
    rng = np.random.default_rng(3)
    for df in (1, 2, 3):
        yield f"student-t {df} df", 0.05 * rng.standard_t(df, size=5000)
    for size in (100, 1153, 20000):
        gaussian = rng.normal(size=size) * 0.1
        rms = math.sqrt(float(np.mean(gaussian**2)))
        gaussian[rng.integers(size)] = rng.choice([-1.0, 1.0]) * 1e3 * rms
        yield f"gaussian with one outlier at 1e3 rms, {size} weights", gaussian


@pytest.mark.parametrize("name,means", list(heavy_tailed_tensors()))
def test_vanishing_lambda_decodes_every_heavy_tailed_latent_within_a_millionth_of_its_mean(name, means):
    stds = np.full(means.size, 1e-3) * np.exp(np.random.default_rng(4).uniform(-2, 2, means.size))
    for lam in (0.0, 1e-30):
        quantizer = VBQQuantizer(lam=lam)
        out = quantizer.quantize(means, stds)
        values = VBQQuantizer.dequantize(out.symbols, out.params, quantizer.config())
        assert out.params["family"] == "t2"
        assert np.max(np.abs(values - means) / np.abs(means)) < 1e-6, name


@pytest.mark.parametrize("scale", [1e-310, 1e-300, 1e-160, 1e-90, 1e90, 1e160, 1e300])
def test_vanishing_lambda_decodes_every_latent_within_a_millionth_at_any_scale_of_float64(scale):
    # squared distances of 1e-160-sized means underflow: without working in the prior's units
    # every latent tied with the median and decoded as 0
    rng = np.random.default_rng(5)
    means = rng.standard_t(2, size=3000) * scale
    stds = np.abs(means) * 1e-3 + scale * 1e-3
    for prior in ("tails", "t2"):
        quantizer = VBQQuantizer(lam=0.0, prior=prior)
        out = quantizer.quantize(means, stds)
        values = VBQQuantizer.dequantize(out.symbols, out.params, quantizer.config())
        assert np.max(np.abs(values - means) / np.abs(means)) < 1e-6, prior


def test_the_gaussian_prior_clips_what_the_t2_prior_reaches():
    means = np.random.default_rng(5).normal(size=1000)
    means[0] = 100.0
    gaussian = GaussianPrior.empirical(means)
    clipped = code_point_values(choose_code_points(means, np.full(1000, 1e-6), 0.0, gaussian), gaussian)
    assert clipped[0] < 8.3 * gaussian.scale < 0.3 * means[0]
    prior, symbols = prior_and_symbols(means, np.full(1000, 1e-6), 0.0, "auto")
    assert isinstance(prior, StudentT2Prior)
    assert code_point_values(symbols, prior)[0] == pytest.approx(100.0, rel=1e-12)


def eq9_cost_in_bits(symbols, prior, means, stds, lam):
    _, counts = np.unique(symbols, return_counts=True)
    bits = -np.sum(counts * np.log2(counts / symbols.size))
    return bits + np.sum(np.square((code_point_values(symbols, prior) - means) / stds)) / (2 * lam)


def test_auto_takes_whichever_prior_costs_less_and_keeps_the_gaussian_where_it_does():
    means = np.random.default_rng(6).normal(size=20000)
    chosen = set()
    for std, lam in ((0.03, 0.01), (0.03, 1.0), (0.3, 10.0), (0.03, 10.0)):
        stds = np.full(means.size, std)
        costs = {}
        for prior in (GaussianPrior.empirical(means), StudentT2Prior.empirical(means)):
            symbols = choose_code_points(means, stds, lam, prior)
            costs[type(prior)] = (eq9_cost_in_bits(symbols, prior, means, stds, lam), symbols)
        prior, symbols = prior_and_symbols(means, stds, lam, "auto")
        assert costs[type(prior)][0] == min(cost for cost, _ in costs.values())
        assert np.array_equal(symbols, costs[type(prior)][1])
        chosen.add(type(prior))
    assert chosen == {GaussianPrior, StudentT2Prior}


def test_auto_on_a_large_tensor_compares_on_a_sample_and_runs_algorithm_1_once_with_the_winner():
    rng = np.random.default_rng(9)
    means, stds = rng.normal(size=300_000), np.full(300_000, 0.3)
    prior, symbols = prior_and_symbols(means, stds, 10.0, "auto")
    assert np.array_equal(symbols, choose_code_points(means, stds, 10.0, prior))
    means[123_457] = 40.0  # off the sample's stride, beyond the Gaussian's last code point
    prior, symbols = prior_and_symbols(means, stds, 0.0, "auto")
    assert isinstance(prior, StudentT2Prior)
    assert code_point_values(symbols[123_457:123_458], prior)[0] == pytest.approx(40.0, rel=1e-12)


def test_auto_chooses_t2_on_heavy_tailed_weights_at_every_lambda():
    rng = np.random.default_rng(7)
    means, stds = 0.05 * rng.standard_t(2, size=20000), np.full(20000, 0.01)
    for lam in (1e-4, 1e-2, 1.0):
        assert isinstance(prior_and_symbols(means, stds, lam, "auto")[0], StudentT2Prior)


def test_the_t2_family_travels_in_the_tensor_header():
    means = np.random.default_rng(8).standard_t(1, size=100)
    quantizer = VBQQuantizer(lam=0.1, prior="t2")
    out = quantizer.quantize(means, np.full(100, 0.1))
    assert out.params["family"] == "t2" and set(out.params) == {"family", "loc", "scale"}
    values = VBQQuantizer.dequantize(out.symbols, out.params, quantizer.config())
    prior = stored_precision(StudentT2Prior.empirical(means))
    assert np.array_equal(values, code_point_values(out.symbols, prior))
    assert symbol_rates(out.symbols).max() <= MAX_RATE


@pytest.mark.parametrize("params,message", [
    ({"family": "cauchy", "loc": "0x0.0p+0", "scale": "0x1.0p+0"}, "unknown prior family"),
    ({"family": "t2", "loc": "0x0.0p+0", "scale": "-0x1.0p+0"}, "scale must be > 0"),
])
def test_a_bad_prior_in_the_header_is_one_clear_error(params, message):
    with pytest.raises(BayesCompressError, match=message):
        VBQQuantizer.dequantize(np.array([1]), params, VBQQuantizer(lam=1.0).config())


def test_a_t2_prior_is_refused_in_a_first_version_archive():
    params = {"family": "t2", "loc": "0x0.0p+0", "scale": "0x1.0p+0"}
    with pytest.raises(BayesCompressError, match="first version"):
        VBQQuantizer.dequantize(np.array([1]), params, {"max_rate": 53})


def test_the_default_prior_is_the_papers_gaussian_unless_it_would_clip_a_mean():
    rng = np.random.default_rng(10)
    means, stds = 0.05 * rng.standard_t(2, size=20000), np.full(20000, 0.01)
    assert VBQQuantizer(lam=1.0).prior == "tails"
    inside = np.clip(means, -0.3, 0.3)  # heavy-ish, but within the Gaussian's reach
    assert isinstance(prior_and_symbols(inside, stds, 1.0, "tails")[0], GaussianPrior)
    beyond = inside.copy()
    beyond[17] = 1e3 * np.sqrt(np.mean(np.square(inside)))
    prior, symbols = prior_and_symbols(beyond, np.full(20000, 1e-6), 0.0, "tails")
    assert isinstance(prior, StudentT2Prior)
    assert code_point_values(symbols[17:18], prior)[0] == pytest.approx(beyond[17], rel=1e-6)
