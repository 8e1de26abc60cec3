"""Reading word vectors from a posterior file, an archive, unpacked values or a word2vec file."""

from __future__ import annotations

import numpy as np
import pytest

from bayescompress.errors import BayesCompressError
from bayescompress.evaluate.word_vectors import load_word_vectors
from bayescompress.export import write_hdf5, write_word2vec
from bayescompress.packing import pack, unpack

from .conftest import make_posterior


@pytest.fixture
def embedding(tmp_path):
    posterior = make_posterior(rows=40, dim=5, vocab=True, seed=2)
    posterior.save(tmp_path / "post.h5")
    pack(posterior, tmp_path / "emb.bcz", lam=0.3)
    return posterior, tmp_path / "post.h5", tmp_path / "emb.bcz"


def test_posterior_file_gives_the_means_of_u_by_default_and_of_v_on_request(embedding):
    posterior, post_path, _ = embedding
    loaded = load_word_vectors(post_path)
    assert (loaded.kind, loaded.tensor, loaded.words) == ("posterior", "U", posterior.vocab.words)
    np.testing.assert_array_equal(loaded.vectors, posterior.tensors["U"].mean)
    np.testing.assert_array_equal(load_word_vectors(post_path, "V").vectors, posterior.tensors["V"].mean)


def test_archive_gives_the_decoded_values(embedding):
    _, _, archive = embedding
    loaded = load_word_vectors(archive)
    assert (loaded.kind, loaded.tensor) == ("archive", "U")
    np.testing.assert_array_equal(loaded.vectors, unpack(archive).tensors["U"])


@pytest.mark.parametrize("name", ["vectors.txt", "vectors.bin", "vectors.vec"])
def test_word2vec_files_give_the_same_words_and_vectors_as_the_archive(tmp_path, embedding, name):
    _, _, archive = embedding
    unpacked = unpack(archive)
    write_word2vec(unpacked, tmp_path / name)
    loaded = load_word_vectors(tmp_path / name)
    assert loaded.kind == "word2vec" and loaded.words == unpacked.vocab.words
    np.testing.assert_array_equal(loaded.vectors, unpacked.tensors["U"])


def test_unpacked_hdf5_values_are_read_too(tmp_path, embedding):
    _, _, archive = embedding
    write_hdf5(unpack(archive), tmp_path / "values.h5")
    loaded = load_word_vectors(tmp_path / "values.h5", "V")
    np.testing.assert_array_equal(loaded.vectors, unpack(archive).tensors["V"])


def test_names_joined_by_plus_give_the_sum_of_their_values_from_every_kind_of_file(tmp_path, embedding):
    posterior, post_path, archive = embedding
    write_hdf5(unpack(archive), tmp_path / "values.h5")
    from_posterior = load_word_vectors(post_path, "U+V")
    assert from_posterior.tensor == "U+V"
    np.testing.assert_array_equal(from_posterior.vectors,
                                  posterior.tensors["U"].mean + posterior.tensors["V"].mean)
    decoded = unpack(archive).tensors
    for target in (archive, tmp_path / "values.h5"):
        np.testing.assert_array_equal(load_word_vectors(target, "U+V").vectors, decoded["U"] + decoded["V"])


# ------------------------------------------------------------------------- bad input


def test_a_sum_of_tensors_of_different_shapes_or_an_empty_name_is_refused(tmp_path):
    from bayescompress.posterior import Posterior, TensorPosterior, Vocabulary

    wide, narrow = np.ones((3, 4), np.float32), np.ones((3, 2), np.float32)
    post = Posterior({"U": TensorPosterior(wide, wide), "W": TensorPosterior(narrow, narrow)},
                     kind="embedding", vocab=Vocabulary(["a", "b", "c"]))
    post.save(tmp_path / "post.h5")
    with pytest.raises(BayesCompressError, match="different shapes"):
        load_word_vectors(tmp_path / "post.h5", "U+W")
    with pytest.raises(BayesCompressError, match="is not NAME or NAME"):
        load_word_vectors(tmp_path / "post.h5", "U+")


def test_a_tensor_that_is_not_there_is_named_with_the_ones_that_are(embedding):
    _, post_path, archive = embedding
    for path in (post_path, archive):
        with pytest.raises(BayesCompressError, match=r"no tensor named 'W' \(tensors: 'U', 'V'\)"):
            load_word_vectors(path, "W")


def test_tensor_option_on_a_word2vec_file_is_refused_not_ignored(tmp_path, embedding):
    write_word2vec(unpack(embedding[2]), tmp_path / "v.txt")
    with pytest.raises(BayesCompressError, match="--tensor applies to posterior files and archives"):
        load_word_vectors(tmp_path / "v.txt", "V")


def test_a_model_without_vocabulary_is_not_a_word_embedding(tmp_path, posterior):
    posterior.save(tmp_path / "generic.h5")
    pack(posterior, tmp_path / "generic.bcz", lam=0.1)
    with pytest.raises(BayesCompressError, match="no vocabulary"):
        load_word_vectors(tmp_path / "generic.h5")
    with pytest.raises(BayesCompressError, match="no vocabulary"):
        load_word_vectors(tmp_path / "generic.bcz")


def test_a_truncated_archive_is_a_one_line_error(tmp_path, embedding):
    data = embedding[2].read_bytes()
    (tmp_path / "cut.bcz").write_bytes(data[: len(data) - 20])
    with pytest.raises(BayesCompressError, match="cut.bcz"):
        load_word_vectors(tmp_path / "cut.bcz")


def test_a_corrupt_hdf5_posterior_is_a_one_line_error(tmp_path, embedding):
    data = bytearray(embedding[1].read_bytes())
    (tmp_path / "cut.h5").write_bytes(bytes(data[:600]))
    with pytest.raises(BayesCompressError, match="cut.h5: not a readable HDF5 file"):
        load_word_vectors(tmp_path / "cut.h5")


@pytest.mark.parametrize(("content", "message"), [
    (b"hello world\nthis is prose\n", "not a word2vec file"),
    (b"\x00\x01\x02\x03 binary junk\xff\xfe", "not a word2vec file"),
    (b"3 2\na 0.1 0.2\nb 0.3\n", "not a readable word2vec text file"),
    (b"2 2\na 0.1 0.2\nb 0.3 x\n", "not a readable word2vec text file"),
    (b"1000000000 300\na 0.1\n", r"more than the file's 21 bytes can hold"),
    (b"0 5\n", "declares 0 words"),
])
def test_files_that_are_not_word2vec_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "vectors.txt"
    path.write_bytes(content)
    with pytest.raises(BayesCompressError, match=message):
        load_word_vectors(path)


def test_a_truncated_binary_word2vec_file_is_a_one_line_error(tmp_path, embedding):
    write_word2vec(unpack(embedding[2]), tmp_path / "v.bin")
    data = (tmp_path / "v.bin").read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(BayesCompressError, match="cut.bin"):
        load_word_vectors(tmp_path / "cut.bin")


def test_a_missing_target_is_a_one_line_error(tmp_path):
    with pytest.raises(BayesCompressError, match="absent.bcz: no such file"):
        load_word_vectors(tmp_path / "absent.bcz")
