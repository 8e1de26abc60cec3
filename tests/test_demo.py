"""The README's main job, on a small stand-in posterior so that the fit is skipped."""

from __future__ import annotations

import numpy as np

from bayescompress.demo import format_demo_report, run_demo
from bayescompress.evaluate.analogy import read_questions
from bayescompress.posterior import Posterior, TensorPosterior, Vocabulary


def small_embedding_posterior(rows: int = 300, dim: int = 16) -> Posterior:
    words = list(dict.fromkeys(w for question in read_questions().words[::20] for w in question))[:rows]
    rng = np.random.default_rng(0)
    means = (0.3 * rng.standard_normal((len(words), dim))).astype(np.float32)
    stds = (0.3 * np.exp(rng.uniform(np.log(0.01), 0.0, means.shape))).astype(np.float32)
    tensors = {"U": TensorPosterior(means, stds), "V": TensorPosterior(means.copy(), stds.copy())}
    return Posterior(tensors, kind="embedding", vocab=Vocabulary(words, np.arange(len(words), 0, -1)))


def test_demo_packs_unpacks_and_scores_every_lambda_and_exports_word2vec(tmp_path):
    small_embedding_posterior().save(tmp_path / "posterior.h5")
    report = run_demo(tmp_path, lambdas=(0.1, 10.0))
    assert not report.refitted
    assert [row.lam for row in report.rows] == [0.1, 10.0]
    for row in report.rows:
        archive = tmp_path / f"vbq-lambda-{row.lam:g}.bcz"
        assert row.file_bytes == archive.stat().st_size
        assert row.uniform_bytes <= row.file_bytes
        assert 0.0 <= row.hits_at_10 <= 1.0
    assert report.rows[0].file_bytes > report.rows[1].file_bytes
    assert report.word2vec_words == 300
    text = format_demo_report(report)
    assert "uncompressed" in text and "Hits@10" in text
