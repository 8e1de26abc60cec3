"""Streaming pack and unpack: bounded pieces, any chunk size and worker count, the same bytes."""

from __future__ import annotations

import zipfile

import h5py
import numpy as np
import pytest

from bayescompress.cli import main
from bayescompress.errors import BayesCompressError
from bayescompress.export import write_npz
from bayescompress.packing import StreamOptions, archive_info, open_unpacked, pack, unpack
from bayescompress.posterior import Posterior, TensorPosterior
from bayescompress.ratecontrol import pack_to_target
from bayescompress.vbq import PRIOR_BLOCK, GaussianPrior

from .conftest import make_posterior

TINY = 64  # latents per segment in these tests: U (1600 latents) spans 25 segments


def many_tensors() -> Posterior:
    """One big tensor and several tiny ones, so that one segment holds many tensors."""
    post = make_posterior(rows=200, dim=8)
    rng = np.random.default_rng(1)
    for i in range(6):
        size = int(rng.integers(1, 9))
        post.tensors[f"t{i}"] = TensorPosterior(rng.standard_normal(size).astype(np.float32),
                                                np.full(size, 0.1, dtype=np.float32))
    return post


@pytest.mark.parametrize("chunk, workers", [(1, 1), (TINY, 2), (3 * TINY + 5, 3), (1 << 20, 2)])
def test_the_archive_is_byte_identical_for_any_chunk_size_and_worker_count(tmp_path, chunk, workers):
    posterior = many_tensors()
    posterior.save(tmp_path / "p.h5")
    pack(tmp_path / "p.h5", tmp_path / "ref.bcz", lam=0.1,
         streaming=StreamOptions(chunk_latents=1 << 20, workers=1, segment_latents=TINY))
    pack(tmp_path / "p.h5", tmp_path / "a.bcz", lam=0.1,
         streaming=StreamOptions(chunk_latents=chunk, workers=workers, segment_latents=TINY))
    pack(posterior, tmp_path / "m.bcz", lam=0.1,
         streaming=StreamOptions(chunk_latents=chunk, workers=workers, segment_latents=TINY))
    reference = (tmp_path / "ref.bcz").read_bytes()
    assert (tmp_path / "a.bcz").read_bytes() == reference
    assert (tmp_path / "m.bcz").read_bytes() == reference


def test_tiny_segments_and_chunks_unpack_exactly_what_pack_chose(tmp_path):
    posterior = many_tensors()
    result = pack(posterior, tmp_path / "a.bcz", lam=0.05, streaming=StreamOptions(segment_latents=TINY))
    assert archive_info(tmp_path / "a.bcz")["n_latents"] == posterior.n_latents
    for chunk, workers in [(1, 1), (TINY + 1, 2), (1 << 20, 3)]:
        unpacked = unpack(tmp_path / "a.bcz", chunk_latents=chunk, workers=workers)
        for name, values in result.values.items():
            assert unpacked.tensors[name].tobytes() == values.tobytes()


def test_one_tensor_is_decoded_without_the_others(tmp_path):
    posterior = many_tensors()
    result = pack(posterior, tmp_path / "a.bcz", lam=0.05, streaming=StreamOptions(segment_latents=TINY))
    pieces = list(open_unpacked(tmp_path / "a.bcz").pieces({"t3"}))
    assert {entry["name"] for entry, _, _ in pieces} == {"t3"}
    assert np.concatenate([v for _, _, v in pieces]).tobytes() == result.values["t3"].tobytes()


def test_the_prior_does_not_depend_on_how_the_tensor_is_cut():
    means = np.random.default_rng(2).standard_normal(3 * PRIOR_BLOCK + 17)
    whole = GaussianPrior.empirical(means, fit_loc=True)
    cuts = [0, PRIOR_BLOCK, 3 * PRIOR_BLOCK, means.size]
    blocks = lambda: (means[a:b] for a, b in zip(cuts, cuts[1:], strict=False))  # noqa: E731
    pieces = GaussianPrior.from_blocks(blocks, fit_loc=True)
    assert whole == pieces


def test_a_bad_value_in_a_late_chunk_is_one_error_and_leaves_no_file(tmp_path):
    make_posterior(rows=200, dim=8).save(tmp_path / "p.h5")
    with h5py.File(tmp_path / "p.h5", "r+") as h5:  # damaged after saving, which validates
        h5["tensors/U/std"][-1, -1] = 0.0
    with pytest.raises(BayesCompressError, match="'U': 1 std value\\(s\\) are not > 0"):
        pack(tmp_path / "p.h5", tmp_path / "a.bcz", lam=0.1,
             streaming=StreamOptions(chunk_latents=TINY, segment_latents=TINY))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5"]


@pytest.mark.parametrize("fmt", ["npz", "h5", "txt", "bin"])
def test_streamed_exports_equal_the_in_memory_ones(tmp_path, fmt):
    posterior = make_posterior(rows=150, dim=7, vocab=True)
    pack(posterior, tmp_path / "a.bcz", lam=0.1, streaming=StreamOptions(segment_latents=TINY))
    assert main(["unpack", str(tmp_path / "a.bcz"), "-o", str(tmp_path / f"s.{fmt}"), "--chunk", "50",
                 "--workers", "2"]) == 0
    unpacked = unpack(tmp_path / "a.bcz")
    if fmt == "npz":
        write_npz(unpacked, tmp_path / "m.npz")
        with np.load(tmp_path / "s.npz") as streamed, np.load(tmp_path / "m.npz") as whole:
            assert sorted(streamed.files) == sorted(whole.files)
            for key in whole.files:
                assert np.array_equal(streamed[key], whole[key])
        assert zipfile.ZipFile(tmp_path / "s.npz").testzip() is None
    elif fmt == "h5":
        with h5py.File(tmp_path / "s.h5", "r") as h5:
            for name, values in unpacked.tensors.items():
                assert h5["tensors"][name][()].tobytes() == values.tobytes()
    else:
        from gensim.models import KeyedVectors

        loaded = KeyedVectors.load_word2vec_format(str(tmp_path / f"s.{fmt}"), binary=fmt == "bin")
        for row, word in enumerate(unpacked.vocab.words):
            assert loaded[word].tobytes() == unpacked.tensors["U"][row].astype(np.float32).tobytes()


def test_rate_control_on_a_sample_meets_the_target_on_the_real_archive(tmp_path, monkeypatch):
    import bayescompress.samplerate as samplerate

    monkeypatch.setattr(samplerate, "SAMPLE_LATENTS", 2000)
    posterior = make_posterior(rows=1000, dim=20)
    posterior.save(tmp_path / "p.h5")
    control = pack_to_target(tmp_path / "p.h5", tmp_path / "a.bcz", bits_per_dim=2.0)
    size = (tmp_path / "a.bcz").stat().st_size
    assert control.met and 0.99 <= 8 * size / posterior.n_latents / 2.0 <= 1.01
    assert 1 <= len(control.trials) <= 3 and control.pack.total_bytes == size


def test_a_damaged_segmented_archive_is_one_error_and_writes_nothing(tmp_path):
    import json

    from bayescompress.archive import decode_archive, encode_archive

    pack(many_tensors(), tmp_path / "a.bcz", lam=0.05, streaming=StreamOptions(segment_latents=TINY))
    blob = bytearray((tmp_path / "a.bcz").read_bytes())
    blob[-5] ^= 0x40  # inside the last segment
    (tmp_path / "b.bcz").write_bytes(bytes(blob))
    with pytest.raises(BayesCompressError, match="checksum mismatch in stream"):
        list(open_unpacked(tmp_path / "b.bcz").pieces())
    archive = decode_archive((tmp_path / "a.bcz").read_bytes())
    changes = ({"latents": TINY * 2, "count": 27}, {"latents": 0, "count": 0}, {"latents": TINY, "count": 3})
    for change in changes:
        header = json.loads(json.dumps(archive.header))
        header["segments"] = change
        (tmp_path / "c.bcz").write_bytes(encode_archive(header, archive.sections, archive.version))
        with pytest.raises(BayesCompressError):
            unpack(tmp_path / "c.bcz")
    assert main(["unpack", str(tmp_path / "b.bcz"), "-o", str(tmp_path / "out.npz")]) == 1
    assert not (tmp_path / "out.npz").exists()


def test_strided_samples_hold_no_more_than_one_block_in_memory_at_a_time():
    import gc
    import weakref

    from bayescompress.tensorsource import TensorSource

    handed_out: list[weakref.ref] = []
    most_alive = 0

    def read_range(label, start, stop):
        nonlocal most_alive
        gc.collect()
        most_alive = max(most_alive, sum(ref() is not None for ref in handed_out))
        block = np.arange(start, stop, dtype=np.float32)
        handed_out.append(weakref.ref(block))
        return block

    source = TensorSource("U", (64, 100), np.dtype(np.float32), read_range)
    means, _ = source.strided(7, block=100)
    assert np.array_equal(means, np.arange(0, 6400, 7, dtype=np.float32))
    assert most_alive <= 1  # a strided view kept in the result list would keep every block alive


def test_the_uniform_grid_streams_too_and_its_archive_does_not_depend_on_the_chunk(tmp_path, monkeypatch):
    posterior = many_tensors()
    posterior.save(tmp_path / "p.h5")
    pack(tmp_path / "p.h5", tmp_path / "ref.bcz", method="uniform", spacing=0.25,
         streaming=StreamOptions(chunk_latents=1 << 20, workers=1, segment_latents=TINY))
    from bayescompress.tensorsource import TensorSource

    reads = []
    whole_read = TensorSource.read

    def read(self, start, stop, source):
        reads.append(stop - start)
        return whole_read(self, start, stop, source)

    monkeypatch.setattr(TensorSource, "read", read)
    pack(tmp_path / "p.h5", tmp_path / "a.bcz", method="uniform", spacing=0.25,
         streaming=StreamOptions(chunk_latents=TINY, workers=2, segment_latents=TINY))
    assert (tmp_path / "a.bcz").read_bytes() == (tmp_path / "ref.bcz").read_bytes()
    assert reads and max(reads) <= TINY  # never the whole tensor at once
    values = unpack(tmp_path / "a.bcz").tensors
    for name, tensor in posterior.tensors.items():
        expected = np.rint(tensor.mean.astype(np.float64) / 0.25) * 0.25
        assert np.array_equal(values[name].astype(np.float64), expected.astype(tensor.mean.dtype))


def test_a_flat_range_of_a_dataset_reads_no_latent_outside_it(tmp_path):
    from bayescompress.tensorsource import read_flat

    values = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    with h5py.File(tmp_path / "d.h5", "w") as h5:
        h5["x"], h5["long"] = values, np.arange(2 * 1000, dtype=np.float32).reshape(2, 1000)
    with h5py.File(tmp_path / "d.h5", "r") as h5:
        flat = values.reshape(-1)
        for start in range(0, 60, 7):
            for stop in range(start, 61, 3):
                assert np.array_equal(read_flat(h5["x"], start, stop), flat[start:stop])
        piece = read_flat(h5["long"], 995, 1005)  # two partial rows of a tensor of long rows
        assert np.array_equal(piece, np.arange(995, 1005, dtype=np.float32))
        assert piece.base is None or piece.base.size == piece.size  # not a view into whole rows


@pytest.mark.parametrize("options", [{"segment_latents": 0}, {"segment_latents": -5},
                                     {"segment_latents": 1 << 41}, {"segment_latents": 64.0},
                                     {"chunk_latents": 0}, {"workers": 0}])
def test_stream_options_that_cannot_work_are_one_error(options):
    with pytest.raises(BayesCompressError, match="must be a whole number"):
        StreamOptions(**options)


def test_escape_heavy_segments_with_modeled_top_bits_are_byte_identical_across_workers_and_exact(tmp_path):
    rng = np.random.default_rng(3)
    n = 30_000  # normal means, tiny stds: nearly every symbol an escape, leading bits modeled
    post = Posterior({"w": TensorPosterior(rng.normal(size=n), np.exp(rng.uniform(-9, -5, n))),
                      "b": TensorPosterior(rng.normal(size=7), np.full(7, 1e-3))})
    post.save(tmp_path / "p.h5")
    options = {"segment_latents": 8192, "chunk_latents": 5000}
    one = pack(tmp_path / "p.h5", tmp_path / "one.bcz", lam=0.05,
               streaming=StreamOptions(workers=1, **options))
    pack(tmp_path / "p.h5", tmp_path / "three.bcz", lam=0.05, streaming=StreamOptions(workers=3, **options))
    pack(post, tmp_path / "memory.bcz", lam=0.05, streaming=StreamOptions(workers=2, **options))
    reference = (tmp_path / "one.bcz").read_bytes()
    assert (tmp_path / "three.bcz").read_bytes() == reference == (tmp_path / "memory.bcz").read_bytes()
    from bayescompress.archive import open_archive
    from bayescompress.coding import FrequencyTable
    from bayescompress.segments import decode_index

    opened = open_archive(tmp_path / "one.bcz")
    table_length = int(decode_index(opened.read_section("index"), 4)[0, 0])
    table, _ = FrequencyTable.from_bytes(opened.read_range(opened.spans["stream"][0], table_length), 0, 8192)
    assert table.escape_count > 0.9 * 8192 and table.top_bits is not None
    unpacked = unpack(tmp_path / "one.bcz", workers=2)
    for name, values in one.values.items():
        assert unpacked.tensors[name].tobytes() == values.tobytes()
