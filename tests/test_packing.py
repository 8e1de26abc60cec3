"""pack and unpack together: bit-exact values, byte-identical archives, honest sizes."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from bayescompress.archive import (
    FORMAT_VERSION,
    MAGIC,
    READABLE_VERSIONS,
    decode_archive,
    encode_archive,
    open_archive,
)
from bayescompress.errors import BayesCompressError
from bayescompress.packing import archive_info, pack, unpack
from bayescompress.vbq import VBQQuantizer, code_point_values, prior_and_symbols

from .conftest import make_posterior

FIXTURES = Path(__file__).parent / "fixtures"


def test_unpack_returns_exactly_the_values_pack_chose(tmp_path, posterior):
    result = pack(posterior, tmp_path / "a.bcz", lam=0.5)
    unpacked = unpack(tmp_path / "a.bcz")
    for name, tensor in posterior.tensors.items():
        prior, symbols = prior_and_symbols(tensor.mean, tensor.std, 0.5, "tails")  # the default prior
        expected = code_point_values(symbols, prior).astype(tensor.mean.dtype).reshape(tensor.shape)
        assert unpacked.tensors[name].dtype == tensor.mean.dtype
        assert unpacked.tensors[name].tobytes() == expected.tobytes()
        assert unpacked.tensors[name].tobytes() == result.values[name].tobytes()


def test_float64_posteriors_come_back_as_float64_bit_for_bit(tmp_path):
    post = make_posterior(dtype=np.float64)
    result = pack(post, tmp_path / "a.bcz", lam=1e-3)
    assert unpack(tmp_path / "a.bcz").tensors["U"].tobytes() == result.values["U"].tobytes()


def test_same_posterior_and_lambda_give_byte_identical_archives(tmp_path, posterior_file):
    pack(posterior_file, tmp_path / "a.bcz", lam=0.3)
    pack(posterior_file, tmp_path / "b.bcz", lam=0.3)
    assert (tmp_path / "a.bcz").read_bytes() == (tmp_path / "b.bcz").read_bytes()


def test_huge_lambda_sends_everything_to_the_median_and_the_stream_to_nothing(tmp_path, posterior):
    result = pack(posterior, tmp_path / "a.bcz", lam=1e9)
    assert result.stream_bytes == 0
    for name, values in unpack(tmp_path / "a.bcz").tensors.items():
        assert np.all(values == values.flat[0]), name


def test_smaller_lambda_gives_bigger_files_and_smaller_errors(tmp_path, posterior):
    sizes, errors = [], []
    for lam in (100.0, 1.0, 0.01):
        result = pack(posterior, tmp_path / f"{lam}.bcz", lam=lam)
        tensor = posterior.tensors["U"]
        sizes.append(result.total_bytes)
        errors.append(np.sum(np.square((result.values["U"] - tensor.mean) / tensor.std)))
    assert sizes[0] < sizes[1] < sizes[2]
    assert errors[0] > errors[1] > errors[2]


def test_reported_sizes_are_the_real_file_bytes(tmp_path, posterior):
    result = pack(posterior, tmp_path / "a.bcz", lam=0.2)
    info = archive_info(tmp_path / "a.bcz")
    size = (tmp_path / "a.bcz").stat().st_size
    assert result.total_bytes == info["total_bytes"] == size
    assert info["header_bytes"] + info["side_bytes"] + info["stream_bytes"] == size
    assert info["n_latents"] == posterior.n_latents
    assert info["bits_per_dim"] == pytest.approx(8 * size / posterior.n_latents)
    for key in ("total_bytes", "n_latents", "bits_per_dim", "header_bytes", "side_bytes", "stream_bytes"):
        assert key in info


def test_only_the_chosen_tensors_are_packed(tmp_path, posterior_file):
    pack(posterior_file, tmp_path / "a.bcz", lam=0.2, tensors=["b"])
    assert list(unpack(tmp_path / "a.bcz").tensors) == ["b"]


def test_vocabulary_and_counts_travel_as_side_data(tmp_path):
    post = make_posterior(vocab=True)
    result = pack(post, tmp_path / "a.bcz", lam=0.2)
    unpacked = unpack(tmp_path / "a.bcz")
    assert unpacked.vocab.words == post.vocab.words
    assert np.array_equal(unpacked.vocab.counts, post.vocab.counts)
    assert unpacked.kind == "embedding" and result.side_bytes > 0


def test_pack_refuses_to_overwrite_unless_asked(tmp_path, posterior):
    pack(posterior, tmp_path / "a.bcz", lam=0.2)
    with pytest.raises(BayesCompressError, match="already exists"):
        pack(posterior, tmp_path / "a.bcz", lam=0.2)
    pack(posterior, tmp_path / "a.bcz", lam=0.3, overwrite=True)


def test_unknown_tensor_is_named(tmp_path, posterior_file):
    with pytest.raises(BayesCompressError, match="no tensor named 'nope'"):
        pack(posterior_file, tmp_path / "a.bcz", lam=0.2, tensors=["nope"])


def _rewrite_header(path, change):
    archive = decode_archive(path.read_bytes())
    header = json.loads(json.dumps(archive.header))
    change(header)
    path.write_bytes(encode_archive(header, archive.sections, archive.version))


def test_values_that_decode_differently_are_reported_not_returned(tmp_path, posterior):
    pack(posterior, tmp_path / "a.bcz", lam=0.2)
    _rewrite_header(tmp_path / "a.bcz", lambda h: h["tensors"][0].update(values_crc32=1))
    with pytest.raises(BayesCompressError, match="differ from what pack chose"):
        unpack(tmp_path / "a.bcz")


def test_an_unknown_coder_is_refused(tmp_path, posterior):
    pack(posterior, tmp_path / "a.bcz", lam=0.2)
    _rewrite_header(tmp_path / "a.bcz", lambda h: h["coder"].update(precision=16))
    with pytest.raises(BayesCompressError, match="cannot decode"):
        unpack(tmp_path / "a.bcz")


def test_quantizer_options_are_recorded_exactly_in_the_header(tmp_path, posterior):
    pack(posterior, tmp_path / "a.bcz", lam=0.1, max_rate=20, prior="fit")
    config = archive_info(tmp_path / "a.bcz")["config"]
    assert float.fromhex(config["lambda"]) == 0.1
    assert config["max_rate"] == 20 and config["prior"] == "fit"
    assert VBQQuantizer(lam=0.1, max_rate=20, prior="fit").config() == config


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("v*.bcz")), ids=lambda p: p.name)
def test_archives_of_every_format_version_decode_to_their_recorded_values(fixture):
    expected = np.load(fixture.with_suffix(".npz"), allow_pickle=False)
    unpacked = unpack(fixture)
    assert sorted(unpacked.tensors) == sorted(expected.files)
    for name, values in unpacked.tensors.items():
        assert values.tobytes() == expected[name].tobytes()
        assert zlib.crc32(values.tobytes()) == zlib.crc32(expected[name].tobytes())


def test_fixture_archives_exist_for_every_version_up_to_the_current_one():
    for version in READABLE_VERSIONS:
        assert (FIXTURES / f"v{version}-vbq.bcz").exists(), version
    assert max(READABLE_VERSIONS) == FORMAT_VERSION
    assert open_archive(FIXTURES / f"v{FORMAT_VERSION}-vbq.bcz").version == FORMAT_VERSION


def test_every_readable_format_version_has_fixture_archives_that_carry_that_version():
    """A version bump without fixture archives of the new version (vN-*.bcz + .npz) fails here."""
    assert FORMAT_VERSION in READABLE_VERSIONS
    for version in READABLE_VERSIONS:
        fixtures = sorted(FIXTURES.glob(f"v{version}-*.bcz"))
        assert fixtures, f"no fixture archive of format version {version} in {FIXTURES}"
        for fixture in fixtures:
            assert struct.unpack_from("<H", fixture.read_bytes(), len(MAGIC))[0] == version, fixture.name
            assert fixture.with_suffix(".npz").exists(), fixture.name
    named = {int(path.name[1:].split("-")[0]) for path in FIXTURES.glob("v*.bcz")}
    assert named <= set(READABLE_VERSIONS)


@pytest.mark.parametrize("coder", ["gzip", "bzip2", "lzma"])
def test_baseline_byte_coders_round_trip_bit_exactly(tmp_path, posterior, coder):
    result = pack(posterior, tmp_path / "a.bcz", lam=0.2, coder=coder)
    unpacked = unpack(tmp_path / "a.bcz")
    for name, values in unpacked.tensors.items():
        assert values.tobytes() == result.values[name].tobytes()
    info = archive_info(tmp_path / "a.bcz")
    assert info["coder"]["name"] == coder and info["table_bytes"] == 0
    assert info["total_bytes"] == (tmp_path / "a.bcz").stat().st_size


def test_range_coder_beats_byte_compressors_on_independent_symbols(tmp_path, posterior):
    sizes = {coder: pack(posterior, tmp_path / f"{coder}.bcz", lam=0.05, coder=coder).stream_bytes
             for coder in ("range", "gzip", "bzip2", "lzma")}
    assert sizes["range"] < min(sizes["gzip"], sizes["bzip2"], sizes["lzma"])


# --------------------------------------------------------------------------- fixed costs of small models


def _network(sizes: list[int], seed: int = 0, fitted: bool = False):
    from bayescompress.networks.model_spec import mlp_spec
    from bayescompress.posterior import Posterior, TensorPosterior

    rng = np.random.default_rng(seed)
    tensors = {}
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        for part, shape in (("weight", (fan_out, fan_in)), ("bias", (fan_out,))):
            tensors[f"layers.{index}.{part}"] = TensorPosterior(rng.normal(size=shape).astype(np.float32),
                                                                np.full(shape, 0.5, np.float32))
    mean = rng.uniform(0, 16, sizes[0]).tolist() if fitted else [0.0] * sizes[0]
    std = rng.uniform(0.5, 6, sizes[0]).tolist() if fitted else [1.0] * sizes[0]
    spec = mlp_spec(sizes, task="classification", classes=list(range(sizes[-1])), input_mean=mean,
                    input_std=std, data={"path": "digits", "test_fraction": 0.2, "seed": 0})
    return Posterior(tensors, kind="network", model_spec=spec, metadata={"fit": {"steps": 2000}})


def test_a_thousand_weight_networks_fixed_costs_stay_under_300_bytes_and_its_spec_under_150(tmp_path):
    posterior = _network([16, 50, 10])  # 1,360 weights in 4 tensors
    result = pack(posterior, tmp_path / "a.bcz", lam=1e9)  # every weight at the median: no stream
    assert result.stream_bytes == 0 and result.n_latents == 1360
    assert result.header_bytes < 300  # format version 3: 609 bytes for this posterior
    assert result.side_bytes < 150  # version 3: 311
    assert 8 * (result.total_bytes - result.side_bytes) / result.n_latents < 1.8


def test_fixed_costs_grow_with_the_number_of_tensors_not_with_their_size(tmp_path):
    small = pack(_network([16, 50, 10]), tmp_path / "a.bcz", lam=1e9)
    large = pack(_network([784, 128, 10]), tmp_path / "b.bcz", lam=1e9)
    assert large.n_latents > 70 * small.n_latents
    assert large.header_bytes - small.header_bytes <= 8


def test_a_networks_spec_and_metadata_come_back_exactly_from_a_version_4_archive(tmp_path):
    posterior = _network([5, 3, 2], fitted=True)
    pack(posterior, tmp_path / "a.bcz", lam=0.1)
    unpacked = unpack(tmp_path / "a.bcz")
    assert json.dumps(unpacked.model_spec, sort_keys=True) == json.dumps(posterior.model_spec, sort_keys=True)
    assert unpacked.metadata == posterior.metadata
    fixture = unpack(FIXTURES / "v4-vbq-network.bcz")
    assert fixture.model_spec["layers"][0]["in_features"] == 5 and fixture.metadata["note"] == "\u00e9t\u00e9"
    assert fixture.metadata["fit"]["elbo"] == -12.345678901234567


def test_a_posterior_packs_to_the_same_bytes_in_memory_and_after_a_round_trip_through_its_file(tmp_path):
    posterior = _network([5, 3, 2], fitted=True)
    posterior.metadata = {"z": 1, "a": {"y": 2, "b": 3}}  # keys out of order, as a fit may write them
    posterior.save(tmp_path / "p.h5")  # the HDF5 file stores the spec and metadata with sorted keys
    pack(posterior, tmp_path / "a.bcz", lam=0.1)
    from bayescompress.posterior import Posterior

    pack(Posterior.load(tmp_path / "p.h5"), tmp_path / "b.bcz", lam=0.1)
    assert (tmp_path / "a.bcz").read_bytes() == (tmp_path / "b.bcz").read_bytes()


def test_spec_normalization_is_stored_as_the_float32_values_the_network_applies():
    spec = _network([4, 3, 2], fitted=True).model_spec
    values = spec["normalization"]["input_mean"] + spec["normalization"]["input_std"]
    assert all(float(np.float32(v)) == v for v in values)
