"""Posterior std figures: per frequency band, against word counts, and the untrained share."""

from __future__ import annotations

import numpy as np
import pyro
import pytest
import torch

from bayescompress.errors import BayesCompressError
from bayescompress.evaluate.stds import format_std_report, std_report
from bayescompress.fit.corpus import CorpusOptions, count_corpus
from bayescompress.fit.skipgram import SkipGramSettings, fit_skipgram
from bayescompress.posterior import Posterior, TensorPosterior, Vocabulary

from .topic_corpus import write_topic_corpus


def embedding(stds: np.ndarray, means: np.ndarray, counts: np.ndarray, init_scale: float = 0.1) -> Posterior:
    words = [f"w{i}" for i in range(len(counts))]
    tensors = {"U": TensorPosterior(means.astype(np.float32), stds.astype(np.float32))}
    return Posterior(tensors, kind="embedding", vocab=Vocabulary(words, counts),
                     metadata={"settings": {"init_scale": init_scale}})


def test_bands_follow_frequency_ranks_not_row_order():
    rows = 1500
    counts = np.arange(rows, 0, -1)[::-1].copy()  # row 1499 is the most frequent word
    stds = np.where(np.arange(rows) >= 500, 0.2, 0.4)[:, None] * np.ones((rows, 4))  # ranks 1-1000: 0.2
    means = np.full((rows, 4), 2.0)
    report = std_report(embedding(stds, means, counts), "U")
    first, second = report.bands
    assert (first.first_rank, first.last_rank, first.rows) == (1, 1000, 1000)
    assert (second.first_rank, second.last_rank, second.rows) == (1001, 1500, 500)
    assert first.median_std_over_rms_mean == pytest.approx(0.1)
    assert second.median_std_over_rms_mean == pytest.approx(0.2)
    assert report.median_std_over_rms_mean == pytest.approx(0.1)  # every row: 1000 of 1500 stds are 0.2
    assert report.spearman_log_count_log_std < -0.8
    assert report.share_at_initial_std == 0.0


def test_latents_left_at_the_initial_std_are_counted():
    stds = np.full((10, 5), 0.3)
    stds[:2] = 0.1  # two words never trained
    report = std_report(embedding(stds, np.ones((10, 5)), np.arange(10, 0, -1)), "U")
    assert report.share_at_initial_std == pytest.approx(0.2)
    assert "20.00%" in format_std_report(report)


def test_a_tensor_without_word_counts_is_an_error():
    posterior = Posterior({"U": TensorPosterior(np.zeros((3, 2)), np.ones((3, 2)))}, kind="embedding")
    with pytest.raises(BayesCompressError, match="not an embedding with word counts"):
        std_report(posterior, "U")


def test_a_fit_of_the_topic_corpus_has_stds_that_shrink_with_counts_and_none_untrained(tmp_path):
    corpus = write_topic_corpus(tmp_path / "topics.txt")
    counts = count_corpus(corpus, CorpusOptions(vocab_size=24, min_count=1, window=3), use_cache=False)
    pyro.clear_param_store()
    threads = torch.get_num_threads()
    fit = fit_skipgram(counts, SkipGramSettings(dim=8, batch=64, noise_contexts=8, steps=300, threads=1,
                                                    estimator="pairs"))
    assert torch.get_num_threads() == threads  # the fit's thread count is restored
    report = std_report(fit.posterior, "U")
    assert report.initial_std == 0.3 and report.share_at_initial_std == 0.0  # the pairs' default init_scale
    assert report.spearman_log_count_log_std < -0.5
    assert len(report.bands) == 1 and report.bands[0].rows == 24
