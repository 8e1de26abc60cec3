"""Bayesian skip-gram fit: round trip, what the fit learns, analytic truths, checkpoints, CLI."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyro
import pytest
import scipy.sparse as sp
import torch

from bayescompress.errors import BayesCompressError
from bayescompress.fit.corpus import CoOccurrences, CorpusOptions, count_corpus
from bayescompress.fit.skipgram import (
    SkipGram,
    SkipGramSettings,
    draw_block,
    fit_skipgram,
    load_checkpoint,
    log_likelihood_per_pair,
)
from bayescompress.posterior import Posterior

from .topic_corpus import write_topic_corpus

# lr decaying to 5% for both: the pairs' default (2%) is tuned for runs of tens of thousands of steps
SMALL = {"dim": 8, "batch": 12, "lr": 0.05, "lr_decay": 0.05}
# per estimator: 12 x 12 blocks, or 64 positive pairs against 8 shared negatives
TOPIC_SETTINGS = {"dense": {**SMALL, "estimator": "dense"},
                  "pairs": {**SMALL, "estimator": "pairs", "batch": 64, "noise_contexts": 8}}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def topic_counts(tmp_path_factory) -> CoOccurrences:
    corpus = write_topic_corpus(tmp_path_factory.mktemp("corpus") / "topics.txt")
    return count_corpus(corpus, CorpusOptions(vocab_size=24, min_count=1, window=3), use_cache=False)


@pytest.fixture(scope="module", params=["pairs", "dense"])
def topic_fit(topic_counts, request):
    pyro.clear_param_store()
    return fit_skipgram(topic_counts, SkipGramSettings(steps=300, **TOPIC_SETTINGS[request.param]))


def topic_of(words: list[str]) -> np.ndarray:
    return np.array([word[0] for word in words])


def test_posterior_file_round_trip_keeps_means_stds_vocabulary_and_metadata(topic_fit, tmp_path):
    posterior = topic_fit.posterior
    posterior.save(tmp_path / "fit.h5")
    again = Posterior.load(tmp_path / "fit.h5")
    assert again.kind == "embedding" and list(again.tensors) == ["U", "V"]
    for name in ("U", "V"):
        assert again.tensors[name].mean.dtype == np.float32
        assert np.array_equal(again.tensors[name].mean, posterior.tensors[name].mean)
        assert np.array_equal(again.tensors[name].std, posterior.tensors[name].std)
    assert again.vocab.words == posterior.vocab.words
    assert np.array_equal(again.vocab.counts, posterior.vocab.counts)
    assert again.metadata["settings"]["dim"] == 8 and again.metadata["corpus"]["window"] == 3
    assert again.metadata["final_elbo"] == pytest.approx(topic_fit.final_elbo)


def test_words_that_share_lines_score_higher_than_words_that_never_meet(topic_fit, topic_counts):
    means_u = topic_fit.posterior.tensors["U"].mean
    means_v = topic_fit.posterior.tensors["V"].mean
    scores = means_u @ means_v.T
    topics = topic_of(topic_counts.words)
    same = topics[:, None] == topics[None, :]
    for word in range(topic_counts.vocab_size):
        assert scores[word, same[word]].min() > scores[word, ~same[word]].max() + 1.0


def test_a_subsampled_fit_still_separates_the_topics_and_records_its_threshold(topic_counts):
    pyro.clear_param_store()
    fit = fit_skipgram(topic_counts, SkipGramSettings(steps=300, subsample=0.05, **TOPIC_SETTINGS["pairs"]))
    scores = fit.posterior.tensors["U"].mean @ fit.posterior.tensors["V"].mean.T
    topics = topic_of(topic_counts.words)
    same = topics[:, None] == topics[None, :]
    assert all(scores[w, same[w]].mean() > scores[w, ~same[w]].mean() for w in range(topic_counts.vocab_size))
    assert fit.posterior.metadata["settings"]["subsample"] == 0.05
    assert fit.posterior.metadata["corpus"]["positive_pairs"] < int(topic_counts.positive.sum())


def test_subsampling_pairs_of_counts_whose_tokens_were_already_subsampled_is_refused(topic_counts):
    counted = dataclasses.replace(topic_counts, options=dataclasses.replace(topic_counts.options,
                                                                            subsample_tokens=1e-3))
    with pytest.raises(BayesCompressError, match="--subsample-tokens"):
        fit_skipgram(counted, SkipGramSettings(steps=2, subsample=0.05, **TOPIC_SETTINGS["pairs"]))


@pytest.mark.parametrize("threshold", [-1e-3, 1.0])
def test_a_subsample_threshold_outside_zero_to_one_is_refused(threshold):
    with pytest.raises(BayesCompressError, match="--subsample"):
        SkipGramSettings(subsample=threshold)


def test_fit_explains_the_counts_far_better_than_vectors_that_ignore_them(topic_fit, topic_counts):
    means_u = topic_fit.posterior.tensors["U"].mean
    means_v = topic_fit.posterior.tensors["V"].mean
    fitted = log_likelihood_per_pair(topic_counts, means_u, means_v, negatives=5)
    assert fitted > np.log(0.5) + 0.25  # u.v = 0 everywhere gives log(1/2) per pair
    assert topic_fit.posterior.metadata["final_elbo_per_pair"] > np.log(0.5)


def test_words_seen_more_often_have_smaller_posterior_stds(topic_fit, topic_counts):
    stds = topic_fit.posterior.tensors["U"].std.mean(axis=1)
    order = np.argsort(-topic_counts.word_counts)
    assert stds[order[:4]].mean() < stds[order[-4:]].mean()


@pytest.mark.parametrize("estimator", ["pairs", "dense"])
def test_with_no_counts_the_posterior_is_the_prior(estimator):
    words = [f"w{chr(97 + i)}" for i in range(6)]
    empty = CoOccurrences(words, np.ones(6, dtype=np.int64), sp.csr_matrix((6, 6), dtype=np.int64),
                          n_tokens=6, n_documents=1, options=CorpusOptions(vocab_size=6, min_count=1))
    fit = fit_skipgram(empty, SkipGramSettings(dim=3, batch=6, steps=250, lr=0.1, prior_std=0.5,
                                               estimator=estimator))
    for name in ("U", "V"):
        assert np.abs(fit.posterior.tensors[name].mean).max() < 1e-3  # initial means spread 0.1
        assert np.allclose(fit.posterior.tensors[name].std, 0.5, rtol=1e-3)  # initial stds 0.01


def kl_to_prior(locs: np.ndarray, scales: np.ndarray, prior_std: float) -> float:
    return float(np.sum(np.log(prior_std / scales) + (scales**2 + locs**2) / (2 * prior_std**2) - 0.5))


def log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


@pytest.mark.parametrize("world_size, rank", [(1, 0), (2, 0), (2, 1), (3, 2)])
def test_block_loss_is_the_blocks_likelihood_and_kl_scaled_up_to_the_whole_vocabulary(
        topic_counts, world_size, rank):
    """Uniform blocks scaled this way estimate the full ELBO without bias; shards of N ranks
    count N times, so the average over ranks does."""
    settings = SkipGramSettings(dim=4, init_std=0.5, init_scale=1e-6, prior_std=0.7)
    pyro.clear_param_store()
    skipgram = SkipGram(topic_counts.vocab_size, settings.dim, settings.prior_std)
    skipgram.initialize(settings, torch.device("cpu"))
    negative_rows, noise = topic_counts.negative_factors(5)
    shard = np.arange(rank, topic_counts.vocab_size, world_size)
    block = draw_block(topic_counts, negative_rows, noise, shard, world_size, 5, np.random.default_rng(rank),
                       torch.device("cpu"))
    with torch.no_grad(), pyro.validation_enabled(False):
        elbo = pyro.infer.TraceMeanField_ELBO()
        loss = float(elbo.differentiable_loss(skipgram.model, skipgram.guide, block))

    rows, cols = block.rows.numpy(), block.cols.numpy()
    assert set(rows) <= set(shard) and len(rows) == len(cols) == 5
    params = {name: pyro.param(name).detach().numpy().astype(np.float64)
              for name in ("locs.U", "scales.U", "locs.V", "scales.V")}
    scores = params["locs.U"][rows] @ params["locs.V"][cols].T
    positive = topic_counts.positive[rows][:, cols].toarray()
    negative = np.outer(negative_rows[rows], noise[cols])
    log_likelihood = np.sum(positive * log_sigmoid(scores) + negative * log_sigmoid(-scores))
    row_scale = world_size * len(shard) / 5
    col_scale = topic_counts.vocab_size / 5
    expected = (-row_scale * col_scale * log_likelihood
                + row_scale * kl_to_prior(params["locs.U"][rows], params["scales.U"][rows], 0.7)
                + col_scale * kl_to_prior(params["locs.V"][cols], params["scales.V"][cols], 0.7))
    assert loss == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("estimator", ["pairs", "dense"])
def test_a_fit_killed_after_a_checkpoint_resumes_to_exactly_the_uninterrupted_result(
        topic_counts, tmp_path, monkeypatch, estimator):
    from bayescompress.fit import skipgram as skipgram_module
    from bayescompress.fit.pairs import PairSampler

    settings = {"steps": 40, "seed": 3, **TOPIC_SETTINGS[estimator]}
    straight = fit_skipgram(topic_counts, SkipGramSettings(**settings)).posterior
    checkpoint = str(tmp_path / "fit.ckpt")
    owner, name = (PairSampler, "draw") if estimator == "pairs" else (skipgram_module, "draw_block")
    real_draw, calls = getattr(owner, name), []

    def killed_at_step_25(*args, **kwargs):
        calls.append(1)
        if len(calls) > 25:
            raise KeyboardInterrupt
        return real_draw(*args, **kwargs)

    monkeypatch.setattr(owner, name, killed_at_step_25)
    with pytest.raises(KeyboardInterrupt):
        fit_skipgram(topic_counts, SkipGramSettings(checkpoint=checkpoint, checkpoint_every=10, **settings))
    monkeypatch.setattr(owner, name, real_draw)
    assert torch.load(checkpoint, weights_only=True)["step"] == 20
    resumed = fit_skipgram(topic_counts, SkipGramSettings(checkpoint=checkpoint, resume=True, **settings))
    for name in ("U", "V"):
        assert np.array_equal(resumed.posterior.tensors[name].mean, straight.tensors[name].mean)
        assert np.array_equal(resumed.posterior.tensors[name].std, straight.tensors[name].std)
    assert torch.load(checkpoint, weights_only=True)["step"] == 40
    assert len(resumed.elbos) == 40


def test_a_checkpoint_of_another_model_is_refused(topic_counts, tmp_path):
    checkpoint = str(tmp_path / "fit.ckpt")
    fit_skipgram(topic_counts, SkipGramSettings(steps=2, checkpoint=checkpoint, **SMALL))
    other = dict(SMALL, dim=4)
    with pytest.raises(BayesCompressError, match="fit.ckpt: checkpoint was made with dim=8"):
        fit_skipgram(topic_counts, SkipGramSettings(steps=4, checkpoint=checkpoint, resume=True, **other))


def test_a_checkpoint_of_flat_counts_does_not_resume_a_fit_of_linear_window_weights(tmp_path):
    corpus = write_topic_corpus(tmp_path / "topics.txt")
    flat, linear = (count_corpus(corpus, CorpusOptions(vocab_size=24, min_count=1, window=3,
                                                       window_weights=weights), use_cache=False)
                    for weights in ("flat", "linear"))
    checkpoint = str(tmp_path / "fit.ckpt")
    fit_skipgram(flat, SkipGramSettings(steps=2, checkpoint=checkpoint, **SMALL))
    with pytest.raises(BayesCompressError, match="fit.ckpt: checkpoint was made with"):
        fit_skipgram(linear, SkipGramSettings(steps=4, checkpoint=checkpoint, resume=True, **SMALL))


def test_a_fit_of_linear_window_weights_separates_the_topics_and_records_the_weighting(tmp_path):
    corpus = write_topic_corpus(tmp_path / "topics.txt")
    done = run_command(*FIT, corpus, "-o", "fit.h5", "--window", "3", "--window-weights", "linear",
                       "--estimator", "pairs", "--batch", "64", "--noise-contexts", "8", "--steps", "300",
                       cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    posterior = Posterior.load(tmp_path / "fit.h5")
    assert posterior.metadata["corpus"]["window_weights"] == "linear"
    scores = posterior.tensors["U"].mean @ posterior.tensors["V"].mean.T
    topics = topic_of(posterior.vocab.words)
    same = topics[:, None] == topics[None, :]
    assert all(scores[w, same[w]].mean() > scores[w, ~same[w]].mean() + 1.0 for w in range(len(topics)))


def test_a_checkpoint_holding_pickled_objects_is_refused_unread(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"format": "bayescompress-skipgram-checkpoint", "payload": Path("x")}, path)
    with pytest.raises(BayesCompressError, match="evil.ckpt: not a readable checkpoint"):
        load_checkpoint(path, {})


def test_resume_without_a_checkpoint_file_is_an_error(topic_counts, tmp_path):
    settings = SkipGramSettings(steps=4, checkpoint=str(tmp_path / "none.ckpt"), resume=True, **SMALL)
    with pytest.raises(BayesCompressError, match="none.ckpt: no checkpoint to resume from"):
        fit_skipgram(topic_counts, settings)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_cuda_without_a_gpu_is_an_error(topic_counts, tmp_path):
    from bayescompress.fit.skipgram import fit_skipgram_corpus

    corpus = write_topic_corpus(tmp_path / "t.txt")
    with pytest.raises(BayesCompressError, match="--device cuda: no CUDA device is available"):
        fit_skipgram_corpus(corpus, tmp_path / "out.h5", CorpusOptions(vocab_size=24, min_count=1),
                            SkipGramSettings(device="cuda", **SMALL), use_cache=False)
    assert not (tmp_path / "out.h5").exists()


# ------------------------------------------------------------------------- command line


def run_command(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = Path(sys.executable).parent / "bayescompress"
    env = dict(os.environ, OMP_NUM_THREADS="1", BAYESCOMPRESS_CACHE=str(cwd / "cache"))
    return subprocess.run([str(command), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


FIT = ("fit", "skipgram", "--vocab-size", "24", "--min-count", "1", "--window", "3", "--dim", "8",
       "--batch", "12", "--steps", "20")


@pytest.mark.slow
def test_fit_skipgram_command_writes_a_posterior_and_reuses_the_counts(tmp_path):
    corpus = write_topic_corpus(tmp_path / "topics.txt")
    first = run_command(*FIT, corpus, "-o", "fit.h5", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("wrote fit.h5: U and V 24 x 8")
    posterior = Posterior.load(tmp_path / "fit.h5")
    assert posterior.kind == "embedding" and len(posterior.vocab) == 24
    assert posterior.metadata["corpus"]["counts_from_cache"] is False
    second = run_command(*FIT, corpus, "-o", "fit.h5", "--force", "--seed", "1", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    again = Posterior.load(tmp_path / "fit.h5")
    assert again.metadata["corpus"]["counts_from_cache"] is True
    assert again.metadata["settings"]["seed"] == 1


def write_bad_corpus(kind: str, folder: Path) -> Path:
    if kind == "empty":
        (folder / "empty.txt").write_text("", encoding="utf-8")
        return folder / "empty.txt"
    if kind == "too few words":
        return write_topic_corpus(folder / "few.txt", lines=1)  # one topic, 40 tokens: 10 distinct words
    if kind == "truncated gzip":
        import gzip

        data = gzip.compress(b"words and more words\n" * 5000)
        (folder / "cut.txt.gz").write_bytes(data[:200])
        return folder / "cut.txt.gz"
    if kind == "binary":  # e.g. an image or a model file passed by mistake: NUL bytes
        (folder / "weights.txt").write_bytes(np.random.default_rng(0).bytes(100_000))
        return folder / "weights.txt"
    if kind == "compressed binary":  # no NUL bytes, but hardly any valid UTF-8
        import gzip

        data = bytes(np.random.default_rng(1).integers(128, 256, 100_000, dtype=np.uint8))
        (folder / "noise.txt.gz").write_bytes(gzip.compress(data))
        return folder / "noise.txt.gz"
    return folder / "missing.txt"


@pytest.mark.parametrize("kind, message", [
    ("empty", "empty.txt: no words found"),
    ("too few words", "few.txt: the corpus has only 10 distinct words, fewer than --vocab-size 24"),
    ("truncated gzip", "cut.txt.gz: not a readable gzip file"),
    ("missing", "missing.txt: no such file"),
    ("binary", "weights.txt: not a text file (NUL bytes in its first 65536 bytes)"),
    ("compressed binary", "noise.txt.gz: not a text file ("),
])
def test_bad_corpus_is_one_line_on_stderr_a_failure_status_and_no_output(tmp_path, capsys, kind, message):
    from bayescompress.cli import main

    corpus = write_bad_corpus(kind, tmp_path)
    output = tmp_path / "fit.h5"
    status = main([*FIT, str(corpus), "-o", str(output), "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1 and message in err
    assert not output.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".fit.h5")]


def test_counts_held_dense_on_the_device_give_the_same_fit_as_sparse_blocks(topic_counts):
    # the GPU path (ResidentCounts) gathers blocks from a dense matrix; forced here on the CPU
    settings = SkipGramSettings(steps=40, **TOPIC_SETTINGS["dense"])
    pyro.clear_param_store()
    sparse = fit_skipgram(topic_counts, settings, resident=False)
    pyro.clear_param_store()
    dense = fit_skipgram(topic_counts, settings, resident=True)
    assert sparse.elbos == dense.elbos
    for name in ("U", "V"):
        np.testing.assert_array_equal(sparse.posterior.tensors[name].mean, dense.posterior.tensors[name].mean)
        np.testing.assert_array_equal(sparse.posterior.tensors[name].std, dense.posterior.tensors[name].std)


def test_dense_counts_stay_on_the_cpu_path_without_a_gpu():
    from bayescompress.fit.skipgram import resident_counts_fit

    assert not resident_counts_fit(100, torch.device("cpu"))


@pytest.mark.parametrize("setting, message", [
    ({"threads": 0}, "--threads must be at least 1, got 0"),
    ({"estimator": "blocks"}, "--estimator must be one of auto, pairs, dense, got 'blocks'"),
    ({"pair_power": 1.5}, "--pair-power must be between 0 and 1, got 1.5"),
    ({"noise_contexts": 0}, "--noise-contexts must be at least 1, got 0"),
])
def test_settings_out_of_range_are_one_line_errors(setting, message):
    with pytest.raises(BayesCompressError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SkipGramSettings(**setting)


def test_each_estimator_has_its_own_default_batch_and_steps_and_auto_picks_by_vocabulary_size():
    pairs, dense = SkipGramSettings(estimator="pairs"), SkipGramSettings(estimator="dense")
    assert (pairs.batch, pairs.steps) != (dense.batch, dense.steps)
    assert (dense.batch, dense.steps) == (1000, 2000)
    assert (pairs.init_scale, dense.init_scale) == (0.3, 0.1)  # docs/skipgram.md: the stds at V = 100k
    assert SkipGramSettings().resolved(30000) == dense
    assert SkipGramSettings().resolved(30001) == pairs
    assert SkipGramSettings(steps=7).resolved(50000).steps == 7
