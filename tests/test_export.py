"""Exports of unpacked archives: word2vec files that gensim reads, KeyedVectors from load()."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors

import bayescompress
from bayescompress.errors import BayesCompressError
from bayescompress.export import to_keyed_vectors, write_word2vec
from bayescompress.packing import pack, unpack
from bayescompress.posterior import Posterior, TensorPosterior, Vocabulary

from .conftest import make_posterior

COMMAND = str(Path(sys.executable).parent / "bayescompress")


@pytest.fixture
def embedding_archive(tmp_path):
    posterior = make_posterior(rows=60, dim=6, vocab=True, seed=1)
    posterior.vocab.words[7] = "café"  # non-ASCII words survive both word2vec formats
    path = tmp_path / "emb.bcz"
    pack(posterior, path, lam=0.5)
    return path


def run_cli(*args):
    return subprocess.run([COMMAND, *map(str, args)], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("suffix", [".txt", ".bin"])
def test_unpacked_word2vec_file_loads_in_gensim_with_exactly_the_archived_vectors(
        tmp_path, embedding_archive, suffix):
    out = tmp_path / f"vectors{suffix}"
    done = run_cli("unpack", embedding_archive, "--format", "word2vec", "-o", out)
    assert done.returncode == 0, done.stderr
    loaded = KeyedVectors.load_word2vec_format(str(out), binary=suffix == ".bin")
    unpacked = unpack(embedding_archive)
    assert loaded.index_to_key == unpacked.vocab.words  # counts are sorted, so the order is kept
    np.testing.assert_array_equal(loaded.vectors, unpacked.tensors["U"])


def test_word2vec_file_of_tensor_v_holds_the_context_vectors(tmp_path, embedding_archive):
    unpacked = unpack(embedding_archive)
    write_word2vec(unpacked, tmp_path / "context.txt", tensor="V")
    loaded = KeyedVectors.load_word2vec_format(str(tmp_path / "context.txt"))
    np.testing.assert_array_equal(loaded.vectors, unpacked.tensors["V"])


def test_load_returns_keyed_vectors_with_one_row_per_word_and_the_corpus_counts(embedding_archive):
    vectors = bayescompress.load(embedding_archive)
    unpacked = unpack(embedding_archive)
    assert isinstance(vectors, KeyedVectors)
    assert vectors.vectors.shape == unpacked.tensors["U"].shape
    assert vectors.index_to_key == unpacked.vocab.words
    np.testing.assert_array_equal(vectors["café"], unpacked.tensors["U"][7])
    assert vectors.get_vecattr("w0", "count") == unpacked.vocab.counts[0]
    np.testing.assert_array_equal(bayescompress.load(embedding_archive, tensor="V").vectors,
                                  unpacked.tensors["V"])


def test_word2vec_file_lists_words_by_descending_count_and_keeps_each_words_vector(tmp_path):
    means = np.arange(12, dtype=np.float32).reshape(4, 3)
    counts = np.array([1, 9, 5, 7])
    posterior = Posterior({"U": TensorPosterior(means, np.ones_like(means))}, kind="embedding",
                          vocab=Vocabulary(["a", "b", "c", "d"], counts))
    pack(posterior, tmp_path / "e.bcz", lam=0.0)
    write_word2vec(unpack(tmp_path / "e.bcz"), tmp_path / "e.txt")
    loaded = KeyedVectors.load_word2vec_format(str(tmp_path / "e.txt"))
    assert loaded.index_to_key == ["b", "d", "c", "a"]
    for row, word in enumerate("abcd"):
        np.testing.assert_allclose(loaded[word], means[row], atol=0.5)


def test_keyed_vectors_of_a_vocabulary_without_counts_have_no_count_attribute(tmp_path):
    means = np.eye(3, dtype=np.float32)
    posterior = Posterior({"U": TensorPosterior(means, np.ones_like(means))}, kind="embedding",
                          vocab=Vocabulary(["x", "y", "z"]))
    pack(posterior, tmp_path / "e.bcz", lam=0.0)
    vectors = to_keyed_vectors(unpack(tmp_path / "e.bcz"))
    assert len(vectors) == 3 and "count" not in vectors.expandos


def test_load_of_a_model_without_vocabulary_returns_the_unpacked_arrays(tmp_path, posterior):
    pack(posterior, tmp_path / "g.bcz", lam=0.1)
    loaded = bayescompress.load(tmp_path / "g.bcz")
    assert set(loaded.tensors) == {"U", "b"}


def test_word2vec_export_of_a_missing_tensor_names_the_tensors(tmp_path, embedding_archive):
    with pytest.raises(BayesCompressError, match=r"no tensor 'W' \(tensors: 'U', 'V'\)"):
        bayescompress.load(embedding_archive, tensor="W")
    done = run_cli("unpack", embedding_archive, "-o", tmp_path / "v.txt", "--tensor", "W")
    assert done.returncode == 1 and "no tensor 'W'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "v.txt").exists()


def test_word2vec_export_of_a_model_without_vocabulary_is_refused(tmp_path, posterior):
    pack(posterior, tmp_path / "g.bcz", lam=0.1)
    done = run_cli("unpack", tmp_path / "g.bcz", "-o", tmp_path / "v.bin")
    assert done.returncode == 1 and "no vocabulary" in done.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "g.bcz"]


# --------------------------------------------------------------------- all-zero rows


@pytest.fixture
def archive_with_zero_rows(tmp_path):
    """Half the words uncertain and near zero: VBQ at lambda 10 sends whole rows to zero."""
    rng = np.random.default_rng(3)
    rows, dim = 80, 6
    means = rng.normal(0, 1, (rows, dim)).astype(np.float32)
    stds = np.full((rows, dim), 0.01, np.float32)
    means[::2] *= 0.01
    stds[::2] = 1.0
    words = [f"w{i}" for i in range(rows)]
    posterior = Posterior({"U": TensorPosterior(means, stds)}, kind="embedding",
                          vocab=Vocabulary(words, np.arange(rows, 0, -1, dtype=np.int64)))
    path = tmp_path / "zeros.bcz"
    pack(posterior, path, lam=10.0)
    zero = ~np.any(unpack(path).tensors["U"], axis=1)
    assert 0 < zero.sum() < rows
    return path, zero


def every_similarity(vectors: KeyedVectors) -> np.ndarray:
    return np.array([[score for _, score in vectors.most_similar(word, topn=5)]
                     for word in vectors.index_to_key])


def test_word2vec_export_leaves_out_all_zero_rows_and_says_how_many(tmp_path, archive_with_zero_rows):
    archive, zero = archive_with_zero_rows
    done = run_cli("unpack", archive, "--format", "word2vec", "-o", tmp_path / "v.txt")
    assert done.returncode == 0, done.stderr
    assert f"left out {zero.sum()} of {zero.size} words whose vector is all zero" in done.stdout
    loaded = KeyedVectors.load_word2vec_format(str(tmp_path / "v.txt"))
    assert loaded.index_to_key == [f"w{i}" for i in np.flatnonzero(~zero)]
    assert np.all(np.isfinite(every_similarity(loaded)))  # and no RuntimeWarning (filterwarnings=error)


def test_word2vec_export_keeps_all_zero_rows_exactly_when_asked(tmp_path, archive_with_zero_rows):
    archive, zero = archive_with_zero_rows
    done = run_cli("unpack", archive, "--format", "word2vec", "--zero-rows", "keep", "-o", tmp_path / "v.bin")
    assert done.returncode == 0, done.stderr
    assert f"kept {zero.sum()} of {zero.size} all-zero vectors" in done.stdout
    loaded = KeyedVectors.load_word2vec_format(str(tmp_path / "v.bin"), binary=True)
    assert loaded.vectors.tobytes() == unpack(archive).tensors["U"].tobytes()


def test_zero_rows_is_an_option_of_word2vec_output_only(tmp_path, archive_with_zero_rows):
    done = run_cli("unpack", archive_with_zero_rows[0], "--zero-rows", "keep", "-o", tmp_path / "v.npz")
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        "bayescompress: error: --zero-rows applies to word2vec output, not npz"]
    assert not (tmp_path / "v.npz").exists()


def test_load_drops_all_zero_rows_by_default_with_a_warning_that_counts_them(archive_with_zero_rows):
    archive, zero = archive_with_zero_rows
    with pytest.warns(bayescompress.export.ZeroRowsWarning, match=f"left out {zero.sum()} of {zero.size}"):
        vectors = bayescompress.load(archive)
    assert len(vectors) == zero.size - zero.sum()
    assert vectors.get_vecattr("w1", "count") == 79
    assert np.all(np.isfinite(every_similarity(vectors)))


def test_load_keeps_or_drops_all_zero_rows_quietly_when_told(archive_with_zero_rows):
    archive, zero = archive_with_zero_rows
    kept = bayescompress.load(archive, zero_rows="keep")
    assert kept.vectors.tobytes() == unpack(archive).tensors["U"].tobytes()
    assert len(bayescompress.load(archive, zero_rows="drop")) == zero.size - zero.sum()
    with pytest.raises(BayesCompressError, match="'drop' or 'keep'"):
        bayescompress.load(archive, zero_rows="jitter")


def test_an_archive_whose_word_vectors_are_all_zero_is_refused_unless_kept(tmp_path):
    posterior = make_posterior(rows=10, dim=3, vocab=True)
    pack(posterior, tmp_path / "z.bcz", method="uniform", spacing=1e6)
    with pytest.raises(BayesCompressError, match="every word vector is all zero"):
        write_word2vec(unpack(tmp_path / "z.bcz"), tmp_path / "z.txt")
    assert not (tmp_path / "z.txt").exists()
    write_word2vec(unpack(tmp_path / "z.bcz"), tmp_path / "z.txt", zero_rows="keep")
    assert not np.any(KeyedVectors.load_word2vec_format(str(tmp_path / "z.txt")).vectors)
