"""Baseline quantizers: round trips through real archives first, then analytic truths, then bad input."""

from __future__ import annotations

import numpy as np
import pytest

from bayescompress.baselines import (
    GlobalStdVBQQuantizer,
    KMeansQuantizer,
    LloydQuantizer,
    UniformQuantizer,
    ecsq_codebook,
    kmeans_codebook,
    parabola_envelope,
)
from bayescompress.coding import empirical_entropy_bits
from bayescompress.errors import BayesCompressError
from bayescompress.packing import StreamOptions, archive_info, pack, unpack
from bayescompress.posterior import Posterior, TensorPosterior
from bayescompress.quantizers import make_quantizer
from bayescompress.vbq import VBQQuantizer

from .conftest import make_posterior

METHODS = [
    ("uniform", {"spacing": 0.05}, "range"),
    ("uniform", {"spacing": 0.05, "offset": "half"}, "range"),
    ("uniform", {"spacing": 0.01}, "gzip"),
    ("uniform", {"spacing": 0.001}, "bzip2"),
    ("uniform", {"spacing": 0.02}, "lzma"),
    ("kmeans", {"k": 12}, "range"),
    ("lloyd", {"lam": 1e-3}, "range"),
    ("vbq-nostd", {"lam": 0.01}, "range"),
    ("uniform-pruned", {"spacing": 0.05, "keep_share": 0.3}, "range"),
    ("vbq-pruned", {"lam": 0.01, "keep_share": 0.3}, "range"),
]


@pytest.mark.parametrize(("method", "options", "coder"), METHODS, ids=lambda x: str(x))
def test_unpack_returns_exactly_the_values_each_baseline_chose(tmp_path, posterior, method, options, coder):
    result = pack(posterior, tmp_path / "a.bcz", method=method, coder=coder, **options)
    unpacked = unpack(tmp_path / "a.bcz")
    for name, values in unpacked.tensors.items():
        assert values.dtype == posterior.tensors[name].mean.dtype
        assert values.tobytes() == result.values[name].tobytes()
    info = archive_info(tmp_path / "a.bcz")
    assert info["method"] == method and info["total_bytes"] == (tmp_path / "a.bcz").stat().st_size


def _means(n=20000, seed=0):
    return 0.3 * np.random.default_rng(seed).standard_normal(n)


def _reconstruct(quantizer, means):
    out = quantizer.quantize(means, np.ones_like(means))
    return out.symbols, quantizer.dequantize(out.symbols, out.params, quantizer.config())


# ------------------------------------------------------------------------------ uniform


def test_uniform_grid_with_tiny_spacing_returns_the_means_within_half_a_step():
    means = _means()
    for offset in ("zero", "half", 0.3):
        _, values = _reconstruct(UniformQuantizer(1e-6, offset), means)
        assert np.max(np.abs(values - means)) <= 0.5e-6 * (1 + 1e-9)


def test_uniform_grid_puts_zero_on_the_grid_or_between_two_cells():
    _, zero = _reconstruct(UniformQuantizer(1.0, "zero"), np.array([0.1, -0.2, 0.7]))
    _, half = _reconstruct(UniformQuantizer(1.0, "half"), np.array([0.1, -0.2, 0.7]))
    assert zero.tolist() == [0.0, 0.0, 1.0]
    assert half.tolist() == [0.5, -0.5, 0.5]


def test_uniform_grid_gives_the_reference_notebooks_symbols_except_where_it_clips():
    # mandt-lab/vbq compress-trained-word-embeddings.ipynb: scale = (q + 0.5) / max|mu|,
    # symbols = round(clip(scale * mu, -q, q)); our grid at spacing 1 / scale is the same grid
    means = _means()
    for q_max in (1, 7, 127, 1023):
        scale = (q_max + 0.5) / np.abs(means).max()
        reference = np.round(np.clip(scale * means, -q_max, q_max))
        symbols, _ = _reconstruct(UniformQuantizer(1.0 / scale), means)
        clipped = np.abs(scale * means) >= q_max + 0.5  # only the extreme mean can round past q_max
        assert np.array_equal(symbols[~clipped], reference[~clipped]) and clipped.sum() <= 2
        assert np.all(np.abs(symbols - scale * means)[clipped] <= np.abs(reference - scale * means)[clipped])


def test_uniform_symbols_fit_int8_for_the_paper_grids(tmp_path):
    post = make_posterior()
    spacing = max(np.abs(t.mean).max() for t in post.tensors.values()) / 127.5
    pack(post, tmp_path / "a.bcz", method="uniform", coder="gzip", spacing=spacing)
    assert archive_info(tmp_path / "a.bcz")["coder"]["width_bits"] == 8


# ------------------------------------------------------------------------------ k-means


def test_kmeans_with_k_at_least_the_distinct_values_is_lossless(tmp_path):
    rng = np.random.default_rng(1)
    means = rng.choice(np.array([-0.7, -0.1, 0.0, 0.25, 3.0], dtype=np.float32), size=(40, 5))
    post = Posterior({"w": TensorPosterior(means, np.full(means.shape, 0.1, np.float32))})
    result = pack(post, tmp_path / "a.bcz", method="kmeans", k=5)
    assert np.array_equal(unpack(tmp_path / "a.bcz").tensors["w"], means)
    assert result.values["w"].tobytes() == means.tobytes()


def test_kmeans_codebook_is_a_fixed_point_of_lloyds_algorithm():
    means = _means()
    codebook = kmeans_codebook(means, 16)
    assert codebook.size == 16 and np.all(np.diff(codebook) > 0)
    cells = np.searchsorted(0.5 * (codebook[1:] + codebook[:-1]), means, side="right")
    centroids = np.bincount(cells, weights=means) / np.bincount(cells)
    assert np.allclose(centroids, codebook, rtol=0, atol=1e-12)


def test_kmeans_is_deterministic_and_beats_a_uniform_grid_of_equal_size():
    means = _means()
    first, values = _reconstruct(KMeansQuantizer(8), means)
    again, _ = _reconstruct(KMeansQuantizer(8), means)
    assert np.array_equal(first, again)
    low, high = means.min(), means.max()
    grid = np.linspace(low, high, 8)
    uniform = grid[np.argmin(np.abs(means[:, None] - grid[None, :]), axis=1)]
    assert np.mean(np.square(values - means)) < 0.8 * np.mean(np.square(uniform - means))


# ------------------------------------------------------------------------------- Lloyd


def test_parabola_envelope_agrees_with_a_brute_force_argmin():
    rng = np.random.default_rng(2)
    for _ in range(50):
        centres = np.sort(rng.choice(np.linspace(-3, 3, 200), size=rng.integers(1, 30), replace=False))
        offsets = rng.exponential(1.0, centres.size) * rng.choice([0.0, 1.0, 10.0])
        points = rng.uniform(-4, 4, 500)
        winners, breaks = parabola_envelope(centres, offsets)
        fast = winners[np.searchsorted(breaks, points, side="right")]
        cost = np.square(points[:, None] - centres[None, :]) + offsets[None, :]
        assert np.allclose(cost[np.arange(points.size), fast], cost.min(axis=1), rtol=1e-12, atol=1e-12)


def test_lloyd_at_lambda_zero_has_the_distortion_of_kmeans():
    means = _means()
    for k in (4, 16):
        _, lloyd = _reconstruct(LloydQuantizer(0.0, max_levels=k), means)
        _, kmeans = _reconstruct(KMeansQuantizer(k), means)
        lloyd_mse, kmeans_mse = np.mean(np.square(lloyd - means)), np.mean(np.square(kmeans - means))
        assert lloyd_mse == pytest.approx(kmeans_mse, rel=0.02)


def test_lloyd_with_a_huge_lambda_collapses_to_one_symbol_at_the_mean():
    means = _means()
    symbols, values = _reconstruct(LloydQuantizer(1e6), means)
    assert np.all(symbols == 0)
    assert values[0] == pytest.approx(means.mean(), abs=1e-12)


def test_lloyd_lowers_its_lagrangian_below_both_uniform_grids_it_starts_from():
    means = _means()
    for lam in (1e-5, 1e-4, 1e-3, 1e-2, 3e-2):
        symbols, values = _reconstruct(LloydQuantizer(lam), means)
        lloyd = np.sum(np.square(values - means)) + lam * empirical_entropy_bits(symbols)
        step = np.sqrt(6 * lam / np.log(2))  # the high-rate optimal uniform grid
        for offset in ("zero", "half"):
            grid_symbols, grid_values = _reconstruct(UniformQuantizer(step, offset), means)
            grid = np.sum(np.square(grid_values - means)) + lam * empirical_entropy_bits(grid_symbols)
            assert lloyd < grid


def test_lloyd_rate_falls_and_distortion_rises_with_lambda():
    means = _means()
    rates, errors = [], []
    for lam in (1e-5, 1e-4, 1e-3, 1e-2):
        symbols, values = _reconstruct(LloydQuantizer(lam), means)
        rates.append(empirical_entropy_bits(symbols))
        errors.append(np.sum(np.square(values - means)))
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))
    assert all(a < b for a, b in zip(errors, errors[1:], strict=False))


def test_ecsq_levels_are_their_cells_centroids():
    means = _means()
    levels, costs = ecsq_codebook(means, 1e-3)
    winners, breaks = parabola_envelope(levels, costs)
    cells = winners[np.searchsorted(breaks, means, side="right")]
    counts = np.bincount(cells, minlength=levels.size)
    centroids = np.bincount(cells, weights=means, minlength=levels.size) / counts
    assert np.allclose(centroids, levels, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------- vbq-nostd


def test_vbq_nostd_equals_vbq_when_every_std_is_the_global_one():
    means = _means()
    stds = np.full(means.shape, 0.07)
    for lam in (0.01, 1.0, 100.0):
        plain = VBQQuantizer(lam).quantize(means, stds).symbols
        blind = GlobalStdVBQQuantizer(lam, std=0.07).quantize(means, np.exp(np.linspace(-5, 0, means.size)))
        assert np.array_equal(plain, blind.symbols)


def test_vbq_nostd_global_std_only_relabels_lambda():
    means = _means()
    a = GlobalStdVBQQuantizer(2.0, std=0.5).quantize(means, np.ones_like(means)).symbols
    b = GlobalStdVBQQuantizer(0.5, std=1.0).quantize(means, np.ones_like(means)).symbols
    assert np.array_equal(a, b)


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("method", "options", "match"), [
    ("uniform", {"spacing": 0.0}, "spacing"),
    ("uniform", {"spacing": float("nan")}, "spacing"),
    ("uniform", {"spacing": 0.1, "offset": 1.0}, "offset"),
    ("uniform", {"spacing": 0.1, "offset": "middle"}, "offset"),
    ("kmeans", {"k": 0}, "k"),
    ("kmeans", {"k": 2.5}, "k"),
    ("lloyd", {"lam": -1.0}, "lambda"),
    ("lloyd", {"lam": 1.0, "max_levels": 0}, "max_levels"),
    ("vbq-nostd", {"lam": 1.0, "std": 0.0}, "std"),
    ("uniform", {"lam": 1.0}, "takes options spacing, offset"),
    ("uniform-pruned", {"spacing": 0.1, "keep_share": 0.0}, "keep share"),
    ("uniform-pruned", {"spacing": 0.1, "keep_share": 1.5}, "keep share"),
])
def test_bad_baseline_options_are_rejected_with_a_message(method, options, match):
    with pytest.raises(BayesCompressError, match=match):
        make_quantizer(method, **options)


def test_a_grid_too_fine_for_the_means_is_a_user_error():
    with pytest.raises(BayesCompressError, match="too small"):
        UniformQuantizer(1e-300).quantize(np.array([1.0]), np.ones(1))


def test_a_damaged_codebook_is_reported(tmp_path, posterior):
    import json

    from bayescompress.archive import decode_archive, encode_archive

    pack(posterior, tmp_path / "a.bcz", method="kmeans", k=4)
    archive = decode_archive((tmp_path / "a.bcz").read_bytes())
    header = json.loads(json.dumps(archive.header))
    header["tensors"][0]["params"]["codebook"] = "AAAA"  # 3 bytes: not a whole float64
    (tmp_path / "a.bcz").write_bytes(encode_archive(header, archive.sections, archive.version))
    with pytest.raises(BayesCompressError, match="codebook"):
        unpack(tmp_path / "a.bcz")


def test_the_pruning_baseline_is_the_zero_offset_grid_on_the_leading_rows_and_zero_after():
    means = _means(3000).reshape(300, 10)
    pruned = make_quantizer("uniform-pruned", spacing=0.05, keep_share=0.2)
    grid = make_quantizer("uniform", spacing=0.05)
    symbols = pruned.quantize(means.ravel(), np.ones(means.size)).symbols.reshape(300, 10)
    values = pruned.dequantize(symbols.ravel(), {}, pruned.config()).reshape(300, 10)
    kept = grid.quantize(means[:60].ravel(), np.ones(600)).symbols.reshape(60, 10)
    assert np.array_equal(symbols[:60], kept)
    assert not np.any(symbols[60:]) and not np.any(values[60:])  # 240 rows decode to exact zeros


def test_pruned_rows_cost_almost_nothing_in_a_segmented_archive(tmp_path):
    means = _means(400_000).astype(np.float32).reshape(4000, 100)
    post = Posterior({"U": TensorPosterior(means, np.full_like(means, 0.1))})
    segments = StreamOptions(segment_latents=40_000)
    full = pack(post, tmp_path / "full.bcz", method="uniform", spacing=0.05, streaming=segments)
    tenth = pack(post, tmp_path / "tenth.bcz", method="uniform-pruned", spacing=0.05, keep_share=0.1,
                 streaming=segments)
    # 90% of the rows zeroed: the nine all-zero segments cost a few bytes each, not 90% of the file
    assert tenth.total_bytes < 0.12 * full.total_bytes


def test_pruned_vbq_is_vbq_on_the_leading_rows_and_the_prior_median_zero_after():
    means = _means(3000).reshape(300, 10)
    stds = np.full_like(means, 0.05)
    pruned = make_quantizer("vbq-pruned", lam=0.01, prior="rms", keep_share=0.2)
    plain = make_quantizer("vbq", lam=0.01, prior="rms")
    out, whole = pruned.quantize(means.ravel(), stds.ravel()), plain.quantize(means.ravel(), stds.ravel())
    assert np.array_equal(out.symbols[:600], whole.symbols[:600]) and out.params == whole.params
    values = pruned.dequantize(out.symbols, out.params, pruned.config()).reshape(300, 10)
    assert not np.any(values[60:])  # the centred prior's median is exactly 0
