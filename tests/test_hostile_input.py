"""Issue 14's findings, each from its smallest case: valid extremes pack, hostile files are refused
in one line, nothing outside the input is read, and small files cannot declare large work."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest

from bayescompress.archive import COMPACT_VERSION, FORMAT_VERSION, decode_archive, encode_archive
from bayescompress.cli import main
from bayescompress.errors import BayesCompressError
from bayescompress.packing import pack, unpack
from bayescompress.posterior import Posterior, TensorPosterior, import_npz

from .conftest import make_posterior

SECRET = b"root:x:0:0:secret-outside-the-input\n" * 8


def run(*args) -> tuple[int, str]:
    """The command in this process: exit status and what it printed on stderr."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([str(a) for a in args])
    return code, err.getvalue()


def assert_one_line_refusal(code: int, err: str, *fragments: str) -> None:
    assert code == 1, err
    assert err.count("\n") == 1 and err.startswith("bayescompress: error: "), err
    for fragment in fragments:
        assert fragment in err, err


def rewrite_archive(path: Path, edit) -> Path:
    """Apply ``edit`` to the archive's header (a dict) and write it back with valid checksums."""
    archive = decode_archive(path.read_bytes())
    header = {k: v for k, v in archive.header.items() if k != "sections"}
    header = edit(header) or header
    sections = archive.sections
    if archive.version >= COMPACT_VERSION:
        path.write_bytes(encode_archive(header, sections, archive.version))
        return path
    index, offset = {}, 0
    for name, data in sections.items():
        index[name] = {"offset": offset, "length": len(data), "crc32": zlib.crc32(data)}
        offset += len(data)
    text = json.dumps({**header, "sections": index}).encode()  # ASCII: lone surrogates as escapes
    preamble = struct.pack("<8sHHI", b"\x89BCZ\r\n\x1a\n", archive.version, 0, len(text)) + text
    path.write_bytes(preamble + struct.pack("<I", zlib.crc32(preamble)) + b"".join(sections.values()))
    return path


# --------------------------------------------------------------------------- finding 1


def test_a_mean_within_an_ulp_of_the_median_packs_at_lambda_0_and_decodes_within_tolerance(tmp_path):
    np.savez(tmp_path / "p.npz", **{"w.mean": np.array([1.0, 1e-20]), "w.std": np.array([0.1, 0.1])})
    assert run("import", "npz", tmp_path / "p.npz", "-o", tmp_path / "p.h5")[0] == 0
    assert run("pack", tmp_path / "p.h5", "--lambda", "0", "-o", tmp_path / "p.bcz") == (0, "")
    values = unpack(tmp_path / "p.bcz").tensors["w"]
    assert np.all(np.abs(values - [1.0, 1e-20]) / 0.1 < 1e-12)


@pytest.mark.parametrize("lam", [0.0, 1e-30, 1e-3])
def test_means_spanning_seventeen_decades_pack_at_any_lambda(tmp_path, lam):
    means = np.logspace(-17, 0, 18) * np.tile([1.0, -1.0], 9)
    post = Posterior({"w": TensorPosterior(means, np.full(18, 0.1))})
    result = pack(post, tmp_path / "a.bcz", lam=lam)
    assert unpack(tmp_path / "a.bcz").tensors["w"].tobytes() == result.values["w"].tobytes()
    if lam == 0.0:
        assert np.max(np.abs(result.values["w"] - means) / 0.1) < 1e-9


def test_extreme_finite_means_and_stds_pack_without_warnings_at_lambda_0(tmp_path):
    # pytest turns warnings into errors: an overflow warning here would fail the test
    post = Posterior({"w": TensorPosterior(np.array([1e308, -1e308, 1.0]), np.array([1e300, 1e-300, 1.0]))})
    for prior in ("rms", "fit"):
        result = pack(post, tmp_path / f"{prior}.bcz", lam=0.0, prior=prior)
        assert unpack(tmp_path / f"{prior}.bcz").tensors["w"].tobytes() == result.values["w"].tobytes()


# --------------------------------------------------------------------------- finding 2: other files


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "elsewhere" / "passwd"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


def crafted_posterior(tmp_path, edit) -> Path:
    path = tmp_path / "crafted.h5"
    make_posterior().save(path)
    with h5py.File(path, "r+") as h5:
        edit(h5["tensors"]["U"], h5)
    return path


def _external_storage(group, secret):
    del group["mean"]
    group.create_dataset("mean", shape=(len(SECRET) // 4,), dtype="f4",
                         external=[(str(secret), 0, len(SECRET))])


def _external_link(group, secret):
    del group["mean"]
    group["mean"] = h5py.ExternalLink(str(secret), "/data")


def _virtual(group, secret):
    layout = h5py.VirtualLayout(shape=(10,), dtype="f4")
    layout[...] = h5py.VirtualSource(str(secret), "data", shape=(10,))
    del group["mean"]
    group.create_virtual_dataset("mean", layout)


def _dangling_soft_link(group, secret):
    del group["mean"]
    group["mean"] = h5py.SoftLink("/tensors/U/nowhere")


def _looping_soft_link(group, secret):
    del group["std"]
    group["std"] = h5py.SoftLink("/tensors/U/std")


def _user_filter(group, secret):
    values = group["mean"][()]
    del group["mean"]
    group.create_dataset("mean", data=values, compression="lzf")  # h5py's own filter, not libhdf5's


def _compact(group, secret):
    values = group["std"][()]
    del group["std"]
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    space = h5py.h5s.create_simple(values.shape)
    h5py.h5d.create(group.id, b"std", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl).write(
        h5py.h5s.ALL, h5py.h5s.ALL, values)


@pytest.mark.parametrize("edit, fragment", [
    (_external_storage, "stores its data in another file"),
    (_external_link, "is an external link"),
    (_virtual, "is virtual"),
    (_dangling_soft_link, "is a soft link"),
    (_looping_soft_link, "is a soft link"),
    (_user_filter, "user-defined filter 32000"),
    (_compact, "layout other than contiguous or chunked"),
], ids=lambda value: getattr(value, "__name__", "")[1:] or None)
def test_posterior_datasets_outside_the_file_or_behind_links_are_refused_naming_the_dataset(
        tmp_path, secret, edit, fragment):
    path = crafted_posterior(tmp_path, lambda group, h5: edit(group, secret))
    code, err = run("pack", path, "--method", "kmeans", "--k", "100000", "-o", tmp_path / "x.bcz")
    assert_one_line_refusal(code, err, fragment, "/tensors/U/")
    assert not (tmp_path / "x.bcz").exists()


def test_a_group_loop_made_of_hard_links_is_refused(tmp_path):
    path = crafted_posterior(tmp_path, lambda group, h5: group.__setitem__("loop", h5["tensors"]))
    with pytest.raises(BayesCompressError, match="linked more than once"):
        Posterior.load(path)


def test_a_huge_dataset_that_was_never_written_is_refused_before_it_is_read(tmp_path):
    def edit(group, h5):
        del group["mean"]
        group.create_dataset("mean", shape=(10**10,), dtype="f8", chunks=(4096,))

    with pytest.raises(BayesCompressError, match="declares 80000000000 bytes but the file stores 0"):
        Posterior.load(crafted_posterior(tmp_path, edit))


def test_sixteen_zeroed_bytes_in_a_global_heap_are_refused_instead_of_spinning_libhdf5(tmp_path):
    path = tmp_path / "p.h5"
    make_posterior(vocab=True).save(path)
    data = bytearray(path.read_bytes())
    heap = data.find(b"GCOL")
    data[heap + 16:heap + 32] = bytes(16)  # the first heap object's header: index 0, size 0
    path.write_bytes(bytes(data))
    with pytest.raises(BayesCompressError, match="global heap .* is malformed"):
        Posterior.load(path)


# --------------------------------------------------------------------------- finding 3: one line


@pytest.mark.parametrize("depth", [100, 100000])
def test_deeply_nested_json_is_refused_in_archive_headers_and_posterior_attributes(tmp_path, depth):
    nested = "[" * depth + "]" * depth
    pack(make_posterior(), tmp_path / "a.bcz", lam=1.0)
    rewrite_archive(tmp_path / "a.bcz", lambda h: h["config"].update(extra=json.loads(nested))
                    if depth < 500 else None)
    path = crafted_posterior(tmp_path, lambda group, h5: h5.attrs.__setitem__("metadata", nested))
    with pytest.raises(BayesCompressError, match="nested"):
        Posterior.load(path)
    if depth < 500:
        with pytest.raises(BayesCompressError, match="nested more than 64 levels"):
            unpack(tmp_path / "a.bcz")


@pytest.mark.parametrize("shape", [[True, 8], [2] * 33, [0, 8], [-1, 8], [8.0, 8]])
def test_archive_shapes_with_booleans_zeros_or_too_many_dimensions_are_refused(tmp_path, shape):
    pack(make_posterior(), tmp_path / "a.bcz", lam=1.0)
    rewrite_archive(tmp_path / "a.bcz", lambda h: h["tensors"][0].update(shape=shape))
    with pytest.raises(BayesCompressError, match="malformed tensor entry"):
        unpack(tmp_path / "a.bcz")


@pytest.mark.parametrize("max_rate", ["abc", -5, float("nan"), 54, 3.5, True])
def test_bad_max_rates_are_refused_from_the_api_and_from_an_archive_header(tmp_path, max_rate):
    with pytest.raises(BayesCompressError, match="max rate must be an integer between 1 and 53"):
        pack(make_posterior(), tmp_path / "x.bcz", lam=1.0, max_rate=max_rate)
    pack(make_posterior(), tmp_path / "a.bcz", lam=1.0)
    rewrite_archive(tmp_path / "a.bcz", lambda h: h["config"].update(max_rate=max_rate))
    with pytest.raises(BayesCompressError, match="max rate"):
        unpack(tmp_path / "a.bcz")


def test_a_stream_constriction_rejects_is_one_line_whatever_constriction_raises(tmp_path, monkeypatch):
    import bayescompress.coding as coding

    pack(make_posterior(), tmp_path / "a.bcz", lam=0.1)

    def failing(*args, **kwargs):
        raise AssertionError("constriction's internal assertion")

    monkeypatch.setattr(coding, "decode_stream", failing)
    with pytest.raises(BayesCompressError, match="stream does not decode"):
        unpack(tmp_path / "a.bcz")


@pytest.mark.parametrize("version", ["abc", "1", 2, 1.5, [1]])
def test_posterior_format_versions_that_are_not_the_integer_1_are_refused(tmp_path, version):
    path = crafted_posterior(tmp_path, lambda group, h5: h5.attrs.__setitem__("format_version", version))
    with pytest.raises(BayesCompressError, match="posterior format version .* is not supported"):
        Posterior.load(path)


@pytest.mark.parametrize("word", ["a\x00b", "\ud800", "tab\there", "bell\x07"])
def test_vocabulary_words_no_output_can_hold_are_refused_at_validation(tmp_path, word):
    post = make_posterior(rows=4, vocab=True)
    post.vocab.words[1] = word
    with pytest.raises(BayesCompressError, match="vocabulary word"):
        post.validate()
    with pytest.raises(BayesCompressError, match="vocabulary word"):
        post.save(tmp_path / "p.h5")
    assert not (tmp_path / "p.h5").exists()


# --------------------------------------------------------------------------- finding 4: bounded work


def test_an_archive_declaring_a_hundred_million_escapes_it_has_no_bits_for_is_refused(tmp_path):
    pack(make_posterior(), tmp_path / "a.bcz", lam=1e-9)
    archive = decode_archive((tmp_path / "a.bcz").read_bytes())
    header = {k: v for k, v in archive.header.items() if k != "sections"}
    header["tensors"] = [dict(header["tensors"][0], shape=[10**8])]
    escapes = 10**8  # no table symbols, all escaped with 40-bit raw codes
    table = b"\x00\x00" + _varint(escapes) + b"\x01" + _varint(40) + _varint(escapes)
    header["side"] = {"codec": None, "parts": []}  # a version-2 archive: no version-4 side data
    sections = dict(archive.sections, tables=table, side=b"", stream=archive.sections["stream"][:512])
    (tmp_path / "b.bcz").write_bytes(encode_archive(header, sections))
    assert (tmp_path / "b.bcz").stat().st_size < 2000
    with pytest.raises(BayesCompressError, match="need 39\\d+ bits but the stream holds only"):
        unpack(tmp_path / "b.bcz")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value >> 7 else 0))
        value >>= 7
        if not value:
            return bytes(out)


def test_side_data_that_would_inflate_past_its_cap_is_refused_before_inflating(tmp_path):
    import lzma

    pack(make_posterior(rows=4, vocab=True), tmp_path / "a.bcz", lam=1.0)
    raw = b"\n".join(b"w%d" % i for i in range(4)) + b"x" * (64 << 20)
    blob = lzma.compress(raw, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 1}])
    archive = decode_archive((tmp_path / "a.bcz").read_bytes())
    header = {k: v for k, v in archive.header.items() if k != "sections"}
    header["side"] = {"codec": "lzma2-raw-preset9e", "raw_length": len(raw),
                      "parts": [{"name": "vocab_words", "length": len(raw)}], "vocab_size": 4}
    sections = dict(archive.sections, side=blob)
    (tmp_path / "b.bcz").write_bytes(encode_archive(header, sections, archive.version))
    assert (tmp_path / "b.bcz").stat().st_size < 20000
    with pytest.raises(BayesCompressError, match="side data claims 67108875 bytes"):
        unpack(tmp_path / "b.bcz")


def test_more_tensors_than_the_cap_are_refused_from_the_header_alone(tmp_path):
    pack(make_posterior(), tmp_path / "a.bcz", lam=1.0)
    entry = decode_archive((tmp_path / "a.bcz").read_bytes()).header["tensors"][1]
    rewrite_archive(tmp_path / "a.bcz", lambda h: h.update(
        tensors=[dict(entry, name=f"t{i}", shape=[1]) for i in range(100000)]))
    # version 4's binary header of near-identical entries deflates past the inflation cap first
    with pytest.raises(BayesCompressError, match="more than 65536 tensors|inflates past"):
        unpack(tmp_path / "a.bcz")


def test_an_npy_header_declaring_a_huge_array_over_few_bytes_is_refused(tmp_path):
    import zipfile

    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }".ljust(117) + "\n"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(64)
    with zipfile.ZipFile(tmp_path / "p.npz", "w") as archive:
        archive.writestr("w.mean.npy", npy)
        archive.writestr("w.std.npy", npy)
    with pytest.raises(BayesCompressError, match="declares shape \\(1000000000000,\\)"):
        import_npz(tmp_path / "p.npz")


# --------------------------------------------------------------------------- finding 5


def test_tensor_names_with_newlines_are_refused_with_the_newline_escaped(tmp_path):
    np.savez(tmp_path / "p.npz", **{"a\nb.mean": np.zeros(2), "a\nb.std": np.ones(2)})
    code, err = run("import", "npz", tmp_path / "p.npz", "-o", tmp_path / "p.h5")
    assert_one_line_refusal(code, err, "'a\\nb'")


@pytest.mark.parametrize("name", ["../../x", "\ud800", "a\nb", "..", "x" * 1025])
def test_archive_tensor_names_that_could_escape_a_folder_or_a_line_are_refused(tmp_path, name):
    pack(make_posterior(), tmp_path / "a.bcz", lam=1.0)
    rewrite_archive(tmp_path / "a.bcz", lambda h: h["tensors"][0].update(name=name))
    code, err = run("unpack", tmp_path / "a.bcz", "--format", "word2vec", "-o", tmp_path / "out.txt")
    assert_one_line_refusal(code, err, "tensor name")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bcz"]


def test_a_failed_export_leaves_no_output_behind(tmp_path):
    pack(make_posterior(), tmp_path / "a.bcz", lam=1.0)  # generic: no vocabulary for word2vec
    code, err = run("unpack", tmp_path / "a.bcz", "--format", "word2vec", "-o", tmp_path / "out.txt")
    assert code == 1 and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bcz"]


def test_duplicate_tensor_names_are_refused_instead_of_dropping_a_tensor(tmp_path):
    pack(make_posterior(), tmp_path / "a.bcz", lam=1.0)
    rewrite_archive(tmp_path / "a.bcz", lambda h: h["tensors"][1].update(name=h["tensors"][0]["name"]))
    with pytest.raises(BayesCompressError, match="lists tensor 'U' twice"):
        unpack(tmp_path / "a.bcz")


def test_the_values_checksum_covers_the_shape_so_a_permuted_shape_is_refused(tmp_path):
    post = Posterior({"w": TensorPosterior(np.arange(6.0).reshape(2, 3), np.full((2, 3), 0.01))})
    pack(post, tmp_path / "a.bcz", lam=1e-6)
    assert struct.unpack_from("<H", (tmp_path / "a.bcz").read_bytes(), 8)[0] == FORMAT_VERSION == 4
    rewrite_archive(tmp_path / "a.bcz", lambda h: h["tensors"][0].update(shape=[3, 2]))
    with pytest.raises(BayesCompressError, match="differ from what pack chose"):
        unpack(tmp_path / "a.bcz")


def test_version_1_values_checksums_cover_the_values_only():
    fixture = Path(__file__).parent / "fixtures" / "v1-vbq.bcz"
    archive = decode_archive(fixture.read_bytes())
    assert archive.version == 1
    entry = archive.header["tensors"][0]
    values = unpack(fixture).tensors[entry["name"]]
    assert zlib.crc32(values.astype(values.dtype.newbyteorder("<")).tobytes()) == entry["values_crc32"]


# --------------------------------------------------------------------------- Pyro stores


def _store(tmp_path, **changes) -> Path:
    import torch
    from pyro.distributions import constraints

    params = {"AutoNormal.locs.w": torch.randn(4, 3), "AutoNormal.scales.w": torch.full((4, 3), -2.0)}
    params.update(changes)
    path = tmp_path / "store.pt"
    torch.save({"params": params, "constraints": {"AutoNormal.locs.w": constraints.real,
                                                  "AutoNormal.scales.w": constraints.softplus_positive}},
               path)
    return path


@pytest.mark.parametrize("change, fragment", [
    (lambda t: t.to(__import__("torch").bfloat16), "dtype torch.bfloat16"),
    (lambda t: t.to(__import__("torch").float8_e4m3fn), "dtype torch.float8_e4m3fn"),
    (lambda t: t.to_sparse(), "only dense tensors"),
    (lambda t: __import__("torch").zeros(1).expand(10**9), "overlapping or zero strides"),
], ids=["bfloat16", "float8", "sparse", "zero-stride"])
def test_pyro_store_tensors_other_than_dense_float16_32_64_are_refused(tmp_path, change, fragment):
    import torch

    from bayescompress.fit.pyro_store import import_pyro

    path = _store(tmp_path, **{"AutoNormal.locs.w": change(torch.randn(4, 3))})
    with pytest.raises(BayesCompressError, match=fragment):
        import_pyro(path)


def test_a_pyro_store_whose_params_are_not_a_dict_is_refused(tmp_path):
    import torch

    from bayescompress.fit.pyro_store import import_pyro

    torch.save({"params": [torch.zeros(2)], "constraints": {}}, tmp_path / "store.pt")
    with pytest.raises(BayesCompressError, match="must be dicts"):
        import_pyro(tmp_path / "store.pt")


# --------------------------------------------------------------------------- the fuzz harness's quick pass


def test_a_quick_seeded_fuzz_pass_finds_no_crash_hang_blow_up_leak_or_leftover():
    from .fuzzing import DEFECTS, run_cases

    results = run_cases(range(300), memory_bytes=4 << 30, timeout=60.0)
    defects = [r for r in results if r["outcome"] in DEFECTS]
    assert not defects, defects[:5]
    outcomes = {r["outcome"] for r in results}
    assert {"ok", "refused"} <= outcomes


def test_an_lzma_stream_declaring_a_4_gib_dictionary_is_refused_under_a_1_5_gib_memory_cap(tmp_path):
    import subprocess
    import sys

    pack(make_posterior(), tmp_path / "a.bcz", method="kmeans", coder="lzma", k=8)
    archive = decode_archive((tmp_path / "a.bcz").read_bytes())
    header = {k: v for k, v in archive.header.items() if k != "sections"}
    stream = bytearray(archive.sections["stream"])
    stream[1:5] = b"\xff\xff\xff\xff"  # the .lzma header's dictionary size
    (tmp_path / "b.bcz").write_bytes(encode_archive(header, dict(archive.sections, stream=bytes(stream))))
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))\n"
            "from bayescompress.packing import unpack\n"
            "try:\n    unpack(sys.argv[1])\nexcept ValueError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "b.bcz")], capture_output=True,
                          text=True, env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PATH": ""})
    assert done.returncode == 0 and "lzma stream does not decompress" in done.stdout, done.stderr[-500:]


def test_info_and_unpack_of_a_header_whose_side_descriptor_is_not_an_object(tmp_path):
    from bayescompress.packing import archive_info

    pack(make_posterior(), tmp_path / "a.bcz", lam=1.0)
    rewrite_archive(tmp_path / "a.bcz", lambda h: h.update(side=True))
    assert archive_info(tmp_path / "a.bcz")["vocab_size"] is None
    with pytest.raises(BayesCompressError, match="side data descriptor is malformed"):
        unpack(tmp_path / "a.bcz")


def test_a_sweep_of_a_network_refuses_a_quality_option_the_network_metric_does_not_take(tmp_path):
    from bayescompress.networks.model_spec import mlp_spec

    spec = mlp_spec([3, 2], task="classification", classes=[0, 1], input_mean=[0.0] * 3, input_std=[1.0] * 3)
    Posterior({"layers.0.weight": TensorPosterior(np.ones((2, 3)), np.full((2, 3), 0.1)),
               "layers.0.bias": TensorPosterior(np.zeros(2), np.full(2, 0.1))},
              kind="network", model_spec=spec).save(tmp_path / "net.h5")
    code, err = run("sweep", tmp_path / "net.h5", "-o", tmp_path / "sweep", "--quality", "density",
                    "--methods", "vbq", "--points", "2", "--no-plot")
    assert_one_line_refusal(code, err, "quality does not take option(s) measure")


@pytest.mark.parametrize("prior", ["tails", "auto", "t2", "rms", "fit"])
def test_means_near_the_float64_limit_pack_without_a_warning_under_every_prior(tmp_path, prior):
    # filterwarnings = error: a numpy overflow warning (an extra stderr line in the CLI) fails here
    posterior = Posterior({"w": TensorPosterior(np.array([1.7e308, 1.7e308, 1e308]), np.full(3, 1e300))})
    result = pack(posterior, tmp_path / "a.bcz", lam=0.0, prior=prior)
    assert unpack(tmp_path / "a.bcz").tensors["w"].tobytes() == result.values["w"].tobytes()
