"""Posterior files: HDF5 round trip, validation naming the bad tensor, npz import."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from bayescompress.errors import BayesCompressError
from bayescompress.posterior import Posterior, TensorPosterior, Vocabulary, import_npz

from .conftest import make_posterior


def test_posterior_round_trips_through_hdf5(tmp_path):
    post = make_posterior(vocab=True)
    post.model_spec = {"layers": [3, 4]}
    post.save(tmp_path / "p.h5")
    back = Posterior.load(tmp_path / "p.h5")
    assert list(back.tensors) == list(post.tensors)
    for name, tensor in post.tensors.items():
        assert np.array_equal(back.tensors[name].mean, tensor.mean)
        assert np.array_equal(back.tensors[name].std, tensor.std)
        assert back.tensors[name].mean.dtype == tensor.mean.dtype
    assert back.vocab.words == post.vocab.words
    assert np.array_equal(back.vocab.counts, post.vocab.counts)
    assert back.kind == "embedding" and back.model_spec == {"layers": [3, 4]}


def test_large_tensors_are_stored_in_chunks(tmp_path):
    post = make_posterior(rows=5000, dim=100)
    post.save(tmp_path / "p.h5")
    with h5py.File(tmp_path / "p.h5") as h5:
        assert h5["tensors/U/mean"].chunks is not None


def test_selected_tensors_only_are_read(tmp_path):
    make_posterior().save(tmp_path / "p.h5")
    assert list(Posterior.load(tmp_path / "p.h5", tensors=["b"]).tensors) == ["b"]


@pytest.mark.parametrize(
    ("mean", "std", "message"),
    [
        (np.zeros(3), np.zeros(3), "'w': 3 std value"),
        (np.array([0.0, np.nan, 1.0]), np.ones(3), "'w': 1 mean value\\(s\\) are not finite"),
        (np.zeros(3), np.array([1.0, np.inf, 1.0]), "'w': 1 std value\\(s\\) are not finite"),
        (np.zeros(3), np.ones(4), "'w': mean has shape \\(3,\\) but std has shape \\(4,\\)"),
        (np.zeros(3, dtype=np.int64), np.ones(3), "'w': mean must be a float array"),
        (np.zeros(0), np.zeros(0), "'w': tensor is empty"),
    ],
)
def test_malformed_tensors_are_named_with_the_problem(tmp_path, mean, std, message):
    with pytest.raises(BayesCompressError, match=message):
        Posterior({"w": TensorPosterior(mean, std)}).save(tmp_path / "p.h5")
    assert not (tmp_path / "p.h5").exists()


def test_vocabulary_rows_must_match_embedding_tensors():
    post = make_posterior(vocab=True)
    post.vocab = Vocabulary(post.vocab.words[:-1], None)
    with pytest.raises(BayesCompressError, match="rows must match"):
        post.validate()


def test_vocabulary_words_with_whitespace_are_rejected():
    post = make_posterior(vocab=True)
    post.vocab.words[3] = "two words"
    with pytest.raises(BayesCompressError, match="whitespace"):
        post.validate()


def test_a_file_that_is_not_hdf5_is_reported(tmp_path):
    (tmp_path / "p.h5").write_text("hello")
    with pytest.raises(BayesCompressError, match="not a readable HDF5"):
        Posterior.load(tmp_path / "p.h5")


def test_an_hdf5_file_of_another_kind_is_reported(tmp_path):
    with h5py.File(tmp_path / "p.h5", "w") as h5:
        h5["x"] = np.zeros(3)
    with pytest.raises(BayesCompressError, match="not a bayescompress posterior"):
        Posterior.load(tmp_path / "p.h5")


def test_npz_import_reads_means_stds_vocab_and_counts(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "p.npz", **{
        "U.mean": rng.normal(size=(4, 2)), "U.std": np.full((4, 2), 0.1),
        "layer.0.weight.mean": rng.normal(size=3), "layer.0.weight.std": np.ones(3),
        "vocab": np.array(["a", "b", "c", "d"]), "counts": np.array([9, 5, 2, 1]),
    })
    post = import_npz(tmp_path / "p.npz", kind="generic")
    assert sorted(post.tensors) == ["U", "layer.0.weight"]
    assert post.vocab.words == ["a", "b", "c", "d"] and post.vocab.counts.tolist() == [9, 5, 2, 1]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"U.mean": np.zeros(2)}, "'U' has no std"),
        ({"U.mean": np.zeros(2), "U.std": np.ones(2), "junk": np.ones(1)}, "unexpected key 'junk'"),
        ({"U.mean": np.zeros(2), "U.std": np.ones(2), "vocab": np.array([1, 2])}, "unicode string"),
        ({}, "no NAME.mean"),
    ],
)
def test_malformed_npz_files_are_explained(tmp_path, arrays, message):
    np.savez(tmp_path / "p.npz", **arrays)
    with pytest.raises(BayesCompressError, match=message):
        import_npz(tmp_path / "p.npz")


def test_npz_with_pickled_objects_is_refused_without_unpickling(tmp_path):
    np.savez(tmp_path / "p.npz", **{"U.mean": np.zeros(2), "U.std": np.ones(2),
                                    "vocab": np.array(["a", None], dtype=object)})
    with pytest.raises(BayesCompressError, match="object array"):
        import_npz(tmp_path / "p.npz")
