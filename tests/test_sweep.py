"""Sweeps: real archives behind every row, curves and ratios, the Shannon reference, quality adapters."""

from __future__ import annotations

import csv
import functools
import math
import sys
import types

import numpy as np
import pytest

from bayescompress import packing
from bayescompress.errors import BayesCompressError
from bayescompress.posterior import Posterior, TensorPosterior
from bayescompress.quality import embedding_quality, generic_quality, network_quality, posterior_distortion
from bayescompress.rdcurves import bits_at_quality, format_ratio_table, pareto_front, ratio_rows
from bayescompress.sweep import run_sweep
from bayescompress.waterfilling import GaussianRateDistortion, posterior_sources

from .conftest import make_posterior

METHODS = ["vbq", "uniform", "kmeans", "lloyd", "gzip", "vbq-nostd", "vbq-refined"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    post = make_posterior(rows=400, dim=10)
    result = run_sweep(post, folder / "out", methods=METHODS, points=4, max_bits=5.0, show_progress=False)
    return post, folder / "out", result


def _read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_row_is_a_real_archive_whose_size_gives_its_rate(swept):
    post, folder, result = swept
    rows = _read(folder / "sweep.csv")
    assert rows[0]["method"] == "uncompressed" and float(rows[0]["bits_per_dim"]) == 32.0
    for row in rows[1:]:
        size = (folder / "archives" / row["archive"].split("/")[-1]).stat().st_size
        assert int(row["file_bytes"]) == size
        assert float(row["bits_per_dim"]) == pytest.approx(8 * size / post.n_latents)
        assert float(row["bits_per_dim_without_side"]) == pytest.approx(
            8 * (size - int(row["side_bytes"])) / post.n_latents)
    assert len(rows) - 1 == len(list((folder / "archives").iterdir()))


def test_every_method_has_points_from_low_to_high_rate(swept):
    _, folder, _ = swept
    rows = _read(folder / "sweep.csv")[1:]
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        entropy = [float(r["entropy_bits_per_dim"]) for r in mine]
        assert len(mine) >= 3, method
        assert min(entropy) < 0.3 and max(entropy) > 3.0, (method, entropy)


def test_grid_baselines_are_swept_at_both_offsets(swept):
    _, folder, _ = swept
    rows = _read(folder / "sweep.csv")[1:]
    for method in ("uniform", "gzip"):
        offsets = [r["offset"] for r in rows if r["method"] == method]
        assert offsets.count("zero") == offsets.count("half") >= 3


def test_quality_and_distortion_in_the_csv_are_those_of_the_unpacked_values(swept):
    from bayescompress.packing import unpack

    post, folder, _ = swept
    row = _read(folder / "sweep.csv")[5]
    unpacked = unpack(folder / "archives" / row["archive"].split("/")[-1]).tensors
    distortion = posterior_distortion(unpacked, post)
    assert float(row["distortion_per_dim"]) == pytest.approx(distortion / post.n_latents)
    assert float(row["quality"]) == pytest.approx(math.exp(-distortion / post.n_latents))


def test_ratios_cover_every_baseline_and_level_and_the_plot_is_a_png(swept):
    _, folder, result = swept
    ratios = _read(folder / "ratios.csv")
    assert {r["method"] for r in ratios} == set(METHODS) - {"vbq"}
    assert sorted({float(r["level"]) for r in ratios}) == [0.5, 0.7, 0.9, 0.97]
    assert (folder / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "uniform" in result.table and "50%" in result.table


def test_the_gaussian_bound_lies_below_vbqs_real_rate_on_gaussian_means(swept):
    _, folder, _ = swept
    for row in _read(folder / "sweep.csv"):
        if row["method"] == "vbq" and row["gaussian_rd_bits_per_dim"]:
            assert float(row["gaussian_rd_bits_per_dim"]) < float(row["entropy_bits_per_dim"])


def test_sweep_refuses_to_overwrite_and_bad_settings(tmp_path, swept):
    post, folder, _ = swept
    with pytest.raises(BayesCompressError, match="already exists"):
        run_sweep(post, folder, methods=["vbq"], points=2, show_progress=False)
    with pytest.raises(BayesCompressError, match="at least 2 points"):
        run_sweep(post, tmp_path / "x", methods=["vbq"], points=1)
    with pytest.raises(BayesCompressError, match="unknown method 'nope'"):
        run_sweep(post, tmp_path / "x", methods=["vbq", "nope"])
    with pytest.raises(BayesCompressError, match="does not take option"):
        run_sweep(post, tmp_path / "x", methods=["vbq"], metric_options={"questions": "q.txt"})


# ------------------------------------------------------------------- curves and ratios


def test_bits_at_equal_quality_interpolate_linearly_between_points():
    assert bits_at_quality([1.0, 3.0], [0.2, 0.6], 0.5) == pytest.approx(2.5)
    assert bits_at_quality([1.0, 3.0], [0.2, 0.6], 0.6) == 3.0
    assert math.isnan(bits_at_quality([1.0, 3.0], [0.2, 0.6], 0.7))  # never reached
    assert math.isnan(bits_at_quality([1.0, 3.0], [0.2, 0.6], 0.1))  # below the measured range


def test_non_monotone_curves_are_replaced_by_their_pareto_front():
    bits, quality = [1.0, 2.0, 3.0, 4.0, 5.0], [0.3, 0.5, 0.4, 0.45, 0.9]
    assert pareto_front(bits, quality)[0].tolist() == [1.0, 2.0, 5.0]
    # 0.45 is first reached at 2 bits on the front, interpolated between (1, 0.3) and (2, 0.5)
    assert bits_at_quality(bits, quality, 0.45) == pytest.approx(1.75)


def test_ratios_on_hand_made_curves():
    quality = np.linspace(0.1, 1.0, 10)
    curves = {"vbq": (2 * quality, quality), "uniform": (4 * quality, quality),
              "kmeans": (quality + 1, quality)}
    rows = ratio_rows(curves, reference_quality=0.8)
    uniform = [r["ratio"] for r in rows if r["method"] == "uniform"]
    assert uniform == pytest.approx([0.5] * 4)
    kmeans = {r["level"]: r["ratio"] for r in rows if r["method"] == "kmeans"}
    assert kmeans[0.5] == pytest.approx(0.8 / 1.4)  # q = 0.4: vbq 0.8 bits, kmeans 1.4 bits
    table = format_ratio_table(rows, reference_quality=0.8)
    assert "0.500" in table and "0.571" in table


# -------------------------------------------------------------------- water-filling


def test_water_filling_on_equal_variances_is_the_closed_form():
    rd = GaussianRateDistortion(np.full(10, 3.0))
    for per_latent in (0.01, 0.5, 2.9):
        assert rd.bits(10 * per_latent) == pytest.approx(10 * 0.5 * np.log2(3.0 / per_latent))
    assert rd.bits(30.0) == 0.0 and rd.bits(100.0) == 0.0


def test_water_filling_switches_off_the_small_source_when_the_water_covers_it():
    rd = GaussianRateDistortion(np.array([1.0, 100.0]))
    assert rd.bits(0.5) == pytest.approx(0.5 * np.log2(1 / 0.25) + 0.5 * np.log2(100 / 0.25))
    assert rd.bits(11.0) == pytest.approx(0.5 * np.log2(100 / 10.0))  # theta = 10 > 1
    assert rd.water_level(11.0) == pytest.approx(10.0)


def test_posterior_sources_are_prior_variance_over_twice_the_posterior_variance():
    post = Posterior({"w": TensorPosterior(np.array([3.0, -3.0]), np.array([1.0, 0.5]))})
    assert posterior_sources(post).variances.tolist() == [4.5, 18.0]


# -------------------------------------------------------------------- quality adapters


def test_generic_quality_is_one_for_the_means_and_falls_with_distortion():
    post = make_posterior()
    means = {n: t.mean for n, t in post.tensors.items()}
    assert generic_quality(means, post).value == 1.0
    shifted = {n: t.mean + t.std for n, t in post.tensors.items()}
    assert generic_quality(shifted, post).value == pytest.approx(math.exp(-0.5), rel=1e-5)
    assert generic_quality(shifted, post, measure="within-1-std").value > 0.5


def _embedding_posterior():
    words = ["a", "b", "c"]
    post = make_posterior(rows=3, dim=4, vocab=True)
    post.vocab.words = words
    return post


def test_embedding_quality_is_hits_at_10_of_the_analogy_evaluator(monkeypatch):
    calls = {}

    def evaluate_analogies(vectors, words, questions_path=None):
        calls.update(vectors=vectors, words=words, questions=questions_path)
        return types.SimpleNamespace(hits_at_10=0.42, hits_at_10_ties_favourable=0.5, top1=0.1, mrr=0.2,
                                     coverage=0.9)

    fake = types.ModuleType("bayescompress.evaluate.analogy")
    fake.evaluate_analogies = evaluate_analogies
    monkeypatch.setitem(sys.modules, "bayescompress.evaluate.analogy", fake)
    post = _embedding_posterior()
    values = {"U": post.tensors["U"].mean + 1, "V": post.tensors["V"].mean}
    quality = embedding_quality(values, post, questions="q.txt")
    assert quality.value == 0.42 and quality.name == "hits_at_10" and quality.extras["mrr"] == 0.2
    assert np.array_equal(calls["vectors"], values["U"]) and calls["words"] == ["a", "b", "c"]
    assert calls["questions"] == "q.txt"


def test_a_large_embedding_is_also_scored_on_its_most_frequent_words_and_its_zero_rows_counted(monkeypatch):
    from bayescompress import quality as quality_module

    calls = []

    def evaluate_analogies(vectors, words, questions_path=None):
        calls.append(list(words))
        return types.SimpleNamespace(hits_at_10=0.5 if len(calls) == 1 else 0.25)

    fake = types.ModuleType("bayescompress.evaluate.analogy")
    fake.evaluate_analogies = evaluate_analogies
    monkeypatch.setitem(sys.modules, "bayescompress.evaluate.analogy", fake)
    monkeypatch.setattr(quality_module, "FREQUENT_CANDIDATES", 2)
    post = _embedding_posterior()  # words a, b, c
    post.vocab.counts = np.array([3, 9, 5])
    values = {"U": post.tensors["U"].mean.copy()}
    values["U"][0] = 0.0
    quality = embedding_quality(values, post)
    assert quality.value == 0.5 and quality.extras["hits_at_10_top2"] == 0.25
    assert calls == [["a", "b", "c"], ["b", "c"]]  # candidates: the two most frequent, in row order
    assert quality.extras["zero_rows"] == 1


def test_missing_evaluators_fail_with_a_clear_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "bayescompress.evaluate.analogy", None)
    monkeypatch.setitem(sys.modules, "bayescompress.evaluate.bnn", None)
    post = _embedding_posterior()
    with pytest.raises(BayesCompressError, match="needs bayescompress.evaluate.analogy.evaluate_analogies"):
        embedding_quality({"U": post.tensors["U"].mean}, post)
    with pytest.raises(BayesCompressError, match="needs bayescompress.evaluate.bnn.evaluate_network"):
        network_quality({"U": post.tensors["U"].mean}, post)


def test_network_quality_passes_the_values_and_model_spec_and_reads_accuracy(monkeypatch):
    fake = types.ModuleType("bayescompress.evaluate.bnn")
    fake.evaluate_network = lambda values, spec, **options: types.SimpleNamespace(
        accuracy=0.9 if spec == {"layers": [3]} and options == {"data": "d", "split": "test"} else 0.0,
        nll=1.5, rmse=None)
    monkeypatch.setitem(sys.modules, "bayescompress.evaluate.bnn", fake)
    post = make_posterior()
    post.model_spec = {"layers": [3]}
    quality = network_quality({"U": post.tensors["U"].mean}, post, data="d")
    assert quality.value == 0.9 and quality.name == "accuracy" and quality.extras == {"nll": 1.5}
    fake.evaluate_network = lambda values, spec, **options: types.SimpleNamespace(
        accuracy=None, nll=2.0, rmse=0.25)
    quality = network_quality({"U": post.tensors["U"].mean}, post)
    assert (quality.value, quality.name) == (-0.25, "negative_rmse")
    assert quality.extras == {"nll": 2.0, "rmse": 0.25}


def test_an_embedding_sweep_evaluates_the_word_vectors_through_the_adapter(tmp_path, monkeypatch):
    seen = []

    def evaluate_analogies(vectors, words, questions_path=None):
        seen.append(vectors.copy())
        return types.SimpleNamespace(hits_at_10=float(np.corrcoef(vectors.ravel(), reference.ravel())[0, 1]))

    fake = types.ModuleType("bayescompress.evaluate.analogy")
    fake.evaluate_analogies = evaluate_analogies
    monkeypatch.setitem(sys.modules, "bayescompress.evaluate.analogy", fake)
    post = make_posterior(rows=300, dim=10, vocab=True)
    reference = post.tensors["U"].mean.astype(np.float64)
    result = run_sweep(post, tmp_path / "out", methods=["vbq", "uniform"], points=3, show_progress=False)
    assert result.quality_name == "hits_at_10" and result.reference_quality == pytest.approx(1.0)
    assert len(seen) == len(result.rows)  # the uncompressed model, then every archive
    assert {r["n_latents"] for r in result.rows} == {post.tensors["U"].mean.size}  # only U is packed


def test_archives_that_decode_to_the_same_values_are_evaluated_once(tmp_path, monkeypatch):
    from bayescompress import quality

    calls = []

    def counting_quality(values, posterior, **options):
        calls.append(values)
        return generic_quality(values, posterior, **options)

    monkeypatch.setitem(quality.METRICS, "generic", counting_quality)
    post = make_posterior(rows=200, dim=10)
    result = run_sweep(post, tmp_path / "out", methods=["uniform", "gzip", "lzma"], points=3,
                       show_progress=False)
    grid = [r for r in result.rows if r["method"] == "uniform"]
    assert len(grid) == 6 and len(result.rows) == 19
    assert len(calls) == 1 + len({(r["knob_value"], r["offset"]) for r in grid})  # reference + each grid
    by_grid = {(r["knob_value"], r["offset"]): r["quality"] for r in grid}
    for row in result.rows:
        if row["method"] in ("gzip", "lzma"):
            assert row["quality"] == by_grid[(row["knob_value"], row["offset"])]
            assert row["file_bytes"] != 0


def test_a_sweep_takes_method_records_with_fixed_quantizer_options(tmp_path):
    from bayescompress.methods import Method
    from bayescompress.packing import unpack

    post = make_posterior(rows=200, dim=10)
    fitted = Method("vbq-fit-prior", "vbq", "range", (("prior", "fit"),))
    result = run_sweep(post, tmp_path / "out", methods=["vbq", fitted], points=3, show_progress=False)
    rows = [r for r in result.rows if r["method"] == "vbq-fit-prior"]
    assert len(rows) == 3
    assert {unpack(r["archive"]).header["config"]["prior"] for r in rows} == {"fit"}
    assert {r["method"] for r in result.ratios} == {"vbq-fit-prior"}


def test_an_integer_knob_gets_as_many_distinct_points_as_any_other(tmp_path):
    post = make_posterior(rows=400, dim=10)
    result = run_sweep(post, tmp_path / "out", methods=["vbq", "kmeans"], points=12, show_progress=False)
    ks = [r["knob_value"] for r in result.rows if r["method"] == "kmeans"]
    assert len(ks) == len(set(ks)) == 12


def test_the_pruning_baseline_is_swept_at_every_kept_share_and_keeps_the_best_at_each_rate(tmp_path):
    from bayescompress.methods import Method
    from bayescompress.packing import unpack
    from bayescompress.sweep import KEPT_MAX_BITS, PRUNE_KEEP_SHARES

    post = make_posterior(rows=200, dim=10)
    fixed = Method("pruned-half", "uniform-pruned", "range", (("keep_share", 0.5),))
    result = run_sweep(post, tmp_path / "out", methods=["vbq", "uniform-pruned", fixed], points=3,
                       show_progress=False)
    pruned = [r for r in result.rows if r["method"] == "uniform-pruned"]
    assert sorted({r["keep_share"] for r in pruned}) == sorted(PRUNE_KEEP_SHARES)
    for share in PRUNE_KEEP_SHARES:  # each share's points span its kept latents' useful rates
        rates = [r["entropy_bits_per_dim"] for r in pruned if r["keep_share"] == share]
        assert max(rates) <= 1.1 * share * KEPT_MAX_BITS and min(rates) <= 0.5 * share * KEPT_MAX_BITS
    assert len(pruned) >= 2 * len(PRUNE_KEEP_SHARES)  # one curve: the ratios read its Pareto front
    for row in pruned:
        kept = int(round(row["keep_share"] * 200))
        values = unpack(row["archive"]).tensors["U"]
        assert not np.any(values[kept:]) and f"keep{row['keep_share']:g}" in row["archive"]
    assert {r["keep_share"] for r in result.rows if r["method"] == "pruned-half"} == {""}  # its own option
    assert {r["method"] for r in result.ratios} == {"uniform-pruned", "pruned-half"}


STREAMED_METHODS = ["vbq", "uniform", "kmeans", "gzip"]
SAME_COLUMNS = ("method", "knob_value", "offset", "file_bytes", "side_bytes", "stream_bytes", "bits_per_dim",
                "bits_per_dim_without_side", "entropy_bits_per_dim", "quality", "quality_metric",
                "within_1_std", "distortion_per_dim", "rmse", "gaussian_rd_bits_per_dim")


def test_a_generic_posterior_file_above_the_threshold_is_swept_piece_by_piece_with_the_same_rows(
        tmp_path, monkeypatch):
    import bayescompress.streamquality as streamquality
    import bayescompress.sweep as sweep

    post = make_posterior(rows=400, dim=10)
    post.save(tmp_path / "p.h5")
    small_segments = functools.partial(packing.StreamOptions, segment_latents=256)
    monkeypatch.setattr(packing, "StreamOptions", small_segments)  # both sweeps: U spans 16 segments
    whole = run_sweep(post, tmp_path / "whole", methods=STREAMED_METHODS, points=3, plot=False,
                      show_progress=False)
    monkeypatch.setattr(sweep, "STREAM_LATENTS", 100)
    monkeypatch.setattr(streamquality, "PIECE_LATENTS", 300)
    reads = _record_reads(monkeypatch)
    streamed = run_sweep(tmp_path / "p.h5", tmp_path / "streamed", methods=STREAMED_METHODS, points=3,
                         plot=False, show_progress=False)
    assert 256 in reads and max(reads) == 4000  # pieces; the whole of U only for the knobs and the bound
    assert len(streamed.rows) == len(whole.rows) > 10
    for mine, theirs in zip(streamed.rows, whole.rows, strict=True):
        _assert_same(mine, theirs, SAME_COLUMNS)
    for mine, theirs in zip(streamed.ratios, whole.ratios, strict=True):
        _assert_same(mine, theirs, list(theirs))


def _record_reads(monkeypatch) -> list[int]:
    """The lengths of every range TensorSource.read is asked for, from now on."""
    from bayescompress.tensorsource import TensorSource

    reads = []
    original = TensorSource.read
    monkeypatch.setattr(TensorSource, "read", lambda self, a, b, source: reads.append(b - a) or original(
        self, a, b, source))
    return reads


def _assert_same(mine: dict, theirs: dict, columns) -> None:
    for column in columns:
        if isinstance(theirs.get(column), float):
            assert mine[column] == pytest.approx(theirs[column], rel=1e-12, abs=1e-300, nan_ok=True), column
        else:
            assert mine.get(column) == theirs.get(column), column


def test_the_streamed_sweep_never_loads_the_posterior_nor_decodes_an_archive_whole(tmp_path, monkeypatch):
    import bayescompress.samplerate as samplerate
    import bayescompress.streamquality as streamquality
    import bayescompress.sweep as sweep

    make_posterior(rows=400, dim=10).save(tmp_path / "p.h5")
    monkeypatch.setattr(Posterior, "load", classmethod(lambda *a, **k: pytest.fail("Posterior.load")))
    monkeypatch.setattr(sweep, "unpack", lambda *a, **k: pytest.fail("unpack"))
    small = functools.partial(packing.StreamOptions, segment_latents=256, chunk_latents=256)
    monkeypatch.setattr(packing, "StreamOptions", small)
    monkeypatch.setattr(sweep, "STREAM_LATENTS", 100)
    monkeypatch.setattr(sweep, "SAMPLE_LATENTS", 1000)  # knob values on a sample, as above 2^22 latents
    monkeypatch.setattr(samplerate, "SAMPLE_LATENTS", 1000)
    monkeypatch.setattr(streamquality, "PIECE_LATENTS", 300)
    reads = _record_reads(monkeypatch)
    # vbq packs blockwise (uniform, k-means, Lloyd fit on a whole tensor inside pack)
    result = run_sweep(tmp_path / "p.h5", tmp_path / "out", methods=["vbq"], points=4,
                       plot=False, show_progress=False)
    assert max(reads) == 256  # segments of U; its sample is read in runs of 16
    rows = result.rows[1:]
    assert result.rows[0]["quality"] == 1.0 and len(rows) >= 3
    for row in rows:
        assert row["quality"] == pytest.approx(math.exp(-row["distortion_per_dim"]), rel=1e-12)
        assert 0 < row["within_1_std"] < 1 and row["rmse"] > 0
        assert 0 < row["gaussian_rd_bits_per_dim"] < row["bits_per_dim"]  # the bound, from the sample


def test_a_sampled_gaussian_bound_scales_the_samples_bound_to_all_sources():
    from bayescompress.streamquality import SampledRateDistortion

    variances = np.tile([0.5, 1.0, 2.0, 4.0], 50)  # the sample holds the sources in the same proportions
    whole, sampled = GaussianRateDistortion(variances), SampledRateDistortion(
        GaussianRateDistortion(variances[:8]), variances.size)
    for distortion in (1.0, 30.0, 200.0):
        assert sampled.bits(distortion) == pytest.approx(whole.bits(distortion), rel=1e-12)
