"""The core install (numpy, scipy, h5py, constriction, tqdm; no extras) packs, inspects and unpacks,
and a command that needs an extra says which, in one line.

Every command here runs with torch, pyro, gensim, matplotlib and scikit-learn made unimportable
(``sys.modules[name] = None``), so these tests mean the same in the full environment as in the
core-only one that .ci/run builds and runs them in.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from bayescompress.packing import unpack

from .conftest import make_posterior

OPTIONAL = ("torch", "pyro", "gensim", "matplotlib", "sklearn")
WITHOUT_EXTRAS = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # import NAME now raises ModuleNotFoundError, as if not installed
from bayescompress.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_without_extras(*args, missing=OPTIONAL):
    """The installed command (run outside the source tree, so the installed package is imported)."""
    return subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS, ",".join(missing), *map(str, args)],
                          capture_output=True, text=True, cwd=Path(tempfile.gettempdir()))


def assert_ok(result):
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """An embedding posterior imported from npz and packed, both by the core's command line."""
    folder = tmp_path_factory.mktemp("core")
    post = make_posterior(rows=120, dim=6, vocab=True)
    arrays = {f"{name}.{part}": getattr(tensor, part)
              for name, tensor in post.tensors.items() for part in ("mean", "std")}
    np.savez(folder / "fitted.npz", vocab=np.array(post.vocab.words), counts=post.vocab.counts, **arrays)
    assert_ok(run_without_extras("import", "npz", folder / "fitted.npz", "-o", folder / "post.h5"))
    assert_ok(run_without_extras("pack", folder / "post.h5", "--lambda", "0.5", "-o", folder / "a.bcz"))
    return folder / "a.bcz"


def test_the_core_packs_inspects_and_unpacks_to_npz_and_hdf5_with_the_values_pack_chose(tmp_path, archive):
    info = json.loads(assert_ok(run_without_extras("info", archive, "--json")).stdout)
    assert info["total_bytes"] == archive.stat().st_size and info["kind"] == "embedding"
    assert_ok(run_without_extras("unpack", archive, "-o", tmp_path / "a.npz"))
    assert_ok(run_without_extras("unpack", archive, "-o", tmp_path / "a.h5"))
    chosen = unpack(archive).tensors
    with np.load(tmp_path / "a.npz") as npz:
        for name, values in chosen.items():
            assert npz[name].tobytes() == values.tobytes()
    with h5py.File(tmp_path / "a.h5", "r") as h5:
        for name, values in chosen.items():
            assert h5["tensors"][name][()].tobytes() == values.tobytes()


@pytest.mark.parametrize("options", [
    ["--method", "uniform", "--coder", "lzma", "--spacing", "0.05"],
    ["--method", "kmeans", "--k", "9"],
    ["--bits-per-dim", "8"],
])
def test_the_core_runs_baselines_and_rate_control_too(tmp_path, archive, options):
    out = tmp_path / "b.bcz"
    assert_ok(run_without_extras("pack", archive.parent / "post.h5", *options, "-o", out))
    assert_ok(run_without_extras("unpack", out, "-o", tmp_path / "b.npz"))
    with np.load(tmp_path / "b.npz") as npz:
        assert npz["U"].tobytes() == unpack(out).tensors["U"].tobytes()


def test_the_word2vec_export_needs_no_extra(tmp_path, archive):
    """The word2vec writer formats rows itself (as gensim does), so the core unpacks to it."""
    assert_ok(run_without_extras("unpack", archive, "-o", tmp_path / "w.txt", "--format", "word2vec"))
    header = (tmp_path / "w.txt").read_text().split("\n", 1)[0]
    assert header.split()[1] == str(unpack(archive).tensors["U"].shape[1])


@pytest.mark.parametrize(("command", "extra", "library"), [
    (["unpack", "{archive}", "-o", "{tmp}/w.pt"], "networks", "torch"),
    (["evaluate", "analogy", "{archive}"], "embeddings", "gensim"),
    (["fit", "bnn", "{tmp}/table.npz", "-o", "{tmp}/net.h5"], "fit", "torch"),
    (["fit", "skipgram", "{tmp}/corpus.txt", "-o", "{tmp}/emb.h5"], "fit", "pyro"),
    (["sweep", "{tmp}/generic.h5", "-o", "{tmp}/sweep", "--methods", "uniform", "--points", "2"], "plots",
     "matplotlib"),
])
def test_a_command_that_needs_a_missing_extra_names_it_in_one_line(tmp_path, archive, command, extra,
                                                                   library):
    np.savez(tmp_path / "table.npz", X=np.zeros((10, 2)), y=np.arange(10) % 2)
    (tmp_path / "corpus.txt").write_text("a b c\n")
    make_posterior().save(tmp_path / "generic.h5")
    before = {p.name for p in tmp_path.iterdir()}
    result = run_without_extras(*[part.format(archive=archive, tmp=tmp_path) for part in command])
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"bayescompress: error: {' '.join(command[:2]) if command[0] in ('fit', 'evaluate') else command[0]} "
        f"needs the '{extra}' extra ({library} is not installed): pip install 'bayescompress[{extra}]'"]
    new = {p.name for p in tmp_path.iterdir()} - before
    assert new <= {"sweep"} and not any((tmp_path / "sweep").glob("*.png"))
