"""The installed ``bayescompress`` command, used the way a user would, good input and bad."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import make_posterior

COMMAND = shutil.which("bayescompress", path=str(Path(sys.executable).parent)) or "bayescompress"


def run(*args, cwd=None):
    return subprocess.run([COMMAND, *map(str, args)], capture_output=True, text=True, cwd=cwd)


def assert_one_line_error(result, pattern: str):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert pattern in lines[0], lines[0]


def leftover_files(folder: Path, before: set[str]) -> set[str]:
    return {p.name for p in folder.iterdir()} - before


@pytest.fixture
def archive(tmp_path):
    make_posterior(vocab=True).save(tmp_path / "post.h5")
    assert run("pack", tmp_path / "post.h5", "--lambda", "0.3", "-o", tmp_path / "a.bcz").returncode == 0
    return tmp_path / "a.bcz"


def test_import_pack_info_unpack_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    means, stds = rng.normal(size=(30, 4)), np.exp(rng.uniform(-3, 0, (30, 4)))
    np.savez(tmp_path / "fit.npz", **{"W.mean": means, "W.std": stds})
    assert run("import", "npz", tmp_path / "fit.npz", "-o", tmp_path / "p.h5").returncode == 0
    packed = run("pack", tmp_path / "p.h5", "--lambda", "0.1", "-o", tmp_path / "a.bcz", "--json")
    assert packed.returncode == 0, packed.stderr
    info = json.loads(run("info", tmp_path / "a.bcz", "--json").stdout)
    size = (tmp_path / "a.bcz").stat().st_size
    assert json.loads(packed.stdout)["total_bytes"] == info["total_bytes"] == size
    assert info["n_latents"] == 120
    assert run("unpack", tmp_path / "a.bcz", "-o", tmp_path / "out.npz").returncode == 0
    assert run("unpack", tmp_path / "a.bcz", "-o", tmp_path / "out.h5").returncode == 0
    values = np.load(tmp_path / "out.npz")["W"]
    assert values.shape == (30, 4) and np.all(np.abs(values - means) < 3 * stds + 1e-9)
    text = run("info", tmp_path / "a.bcz").stdout
    assert "bits/dim" in text and "W" in text


def test_python_dash_m_runs_the_same_command():
    result = subprocess.run([sys.executable, "-m", "bayescompress", "--version"],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "bayescompress" in result.stdout


def test_pack_selects_tensors_by_name(tmp_path):
    make_posterior().save(tmp_path / "p.h5")
    assert run("pack", tmp_path / "p.h5", "--lambda", "1", "--tensors", "b", "-o",
               tmp_path / "a.bcz").returncode == 0
    info = json.loads(run("info", tmp_path / "a.bcz", "--json").stdout)
    assert [t["name"] for t in info["tensors"]] == ["b"]


@pytest.mark.parametrize("damage", ["truncated", "bitflip", "empty", "version", "text"])
def test_damaged_archives_give_one_line_and_no_output(tmp_path, archive, damage):
    blob = bytearray(archive.read_bytes())
    if damage == "truncated":
        blob = blob[: len(blob) // 2]
    elif damage == "bitflip":
        blob[-5] ^= 0x10
    elif damage == "empty":
        blob = bytearray()
    elif damage == "version":
        struct.pack_into("<H", blob, 8, 7)
    else:
        blob = bytearray(b"hello, world\n")
    archive.write_bytes(bytes(blob))
    before = {p.name for p in tmp_path.iterdir()}
    expected = {"truncated": "truncated", "bitflip": "checksum mismatch", "empty": "empty",
                "version": "version 7 is not supported", "text": "not a bayescompress archive"}
    assert_one_line_error(run("unpack", archive, "-o", tmp_path / "out.npz"), expected[damage])
    assert_one_line_error(run("info", archive), expected[damage])
    assert leftover_files(tmp_path, before) == set()


def test_malformed_posterior_gives_one_line_and_no_archive(tmp_path):
    (tmp_path / "p.h5").write_text("not hdf5")
    assert_one_line_error(run("pack", tmp_path / "p.h5", "--lambda", "1", "-o", tmp_path / "a.bcz"),
                          "not a readable HDF5")
    assert not (tmp_path / "a.bcz").exists()


def test_malformed_npz_gives_one_line_and_no_posterior(tmp_path):
    np.savez(tmp_path / "bad.npz", **{"W.mean": np.zeros(3), "W.std": np.array([1.0, -1.0, 1.0])})
    assert_one_line_error(run("import", "npz", tmp_path / "bad.npz", "-o", tmp_path / "p.h5"),
                          "std value(s) are not > 0")
    assert not (tmp_path / "p.h5").exists()
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 this is not a zip")
    assert_one_line_error(run("import", "npz", tmp_path / "junk.npz", "-o", tmp_path / "p.h5"),
                          "not a readable .npz")


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "abc"])
def test_bad_lambda_is_one_line(tmp_path, value):
    make_posterior().save(tmp_path / "p.h5")
    assert_one_line_error(run("pack", tmp_path / "p.h5", "--lambda", value, "-o", tmp_path / "a.bcz"),
                          "lambda")


def test_missing_input_and_existing_output_are_one_line_each(tmp_path, archive):
    assert_one_line_error(run("info", tmp_path / "nope.bcz"), "no such file")
    (tmp_path / "out.npz").write_text("precious")
    assert_one_line_error(run("unpack", archive, "-o", tmp_path / "out.npz"), "already exists")
    assert (tmp_path / "out.npz").read_text() == "precious"
    assert_one_line_error(run("unpack", archive, "-o", archive, "--force"), "overwrite the input")
    assert run("info", archive).returncode == 0
