"""The installed command for baselines, rate control and sweeps, good input and bad."""

from __future__ import annotations

import csv

import pytest

from .conftest import make_posterior
from .test_cli import assert_one_line_error, run


@pytest.fixture
def posterior_file(tmp_path):
    make_posterior(rows=500, dim=20).save(tmp_path / "p.h5")
    return tmp_path / "p.h5"


@pytest.mark.parametrize("args", [
    ["--method", "uniform", "--spacing", "0.01"],
    ["--method", "uniform", "--spacing", "0.01", "--offset", "half", "--coder", "bzip2"],
    ["--method", "kmeans", "--k", "7"],
    ["--method", "lloyd", "--lambda", "1e-3", "--max-levels", "64"],
    ["--method", "vbq-nostd", "--lambda", "0.01", "--global-std", "0.1"],
    ["--method", "vbq-refined", "--lambda", "0.5", "--passes", "1"],
])
def test_every_method_packs_and_unpacks_from_the_command_line(tmp_path, posterior_file, args):
    packed = run("pack", posterior_file, "-o", tmp_path / "a.bcz", *args)
    assert packed.returncode == 0, packed.stderr
    assert run("unpack", tmp_path / "a.bcz", "-o", tmp_path / "a.npz").returncode == 0


def test_pack_to_a_rate_writes_a_file_within_one_percent(tmp_path, posterior_file):
    packed = run("pack", posterior_file, "-o", tmp_path / "a.bcz", "--bits-per-dim", "2.5")
    assert packed.returncode == 0, packed.stderr
    size = (tmp_path / "a.bcz").stat().st_size
    assert abs(8 * size / 10020 - 2.5) <= 0.025 and "chose lam" in packed.stdout


def test_pack_to_a_maximum_size_never_exceeds_it(tmp_path, posterior_file):
    packed = run("pack", posterior_file, "-o", tmp_path / "a.bcz", "--method", "uniform",
                 "--max-bytes", "4000")
    assert packed.returncode == 0, packed.stderr
    assert 3960 <= (tmp_path / "a.bcz").stat().st_size <= 4000


def test_pack_option_mistakes_are_one_line(tmp_path, posterior_file):
    out = tmp_path / "a.bcz"
    assert_one_line_error(run("pack", posterior_file, "-o", out, "--lambda", "1", "--bits-per-dim", "2"),
                          "not allowed with")
    assert_one_line_error(run("pack", posterior_file, "-o", out, "--method", "uniform", "--lambda", "1"),
                          "takes options spacing, offset")
    assert_one_line_error(run("pack", posterior_file, "-o", out, "--max-bytes", "40"), "below the smallest")
    assert_one_line_error(run("pack", posterior_file, "-o", out), "one of the arguments")
    assert not out.exists()


def test_sweep_prints_the_ratio_table_and_writes_its_files(tmp_path, posterior_file):
    result = run("sweep", posterior_file, "-o", tmp_path / "s", "--methods", "vbq,uniform,lzma",
                 "--points", "3")
    assert result.returncode == 0, result.stderr
    assert "uniform" in result.stdout and "lzma" in result.stdout and "97%" in result.stdout
    with open(tmp_path / "s" / "sweep.csv", newline="") as handle:
        methods = {row["method"] for row in csv.DictReader(handle)}
    assert methods == {"uncompressed", "vbq", "uniform", "lzma"}
    assert (tmp_path / "s" / "sweep.png").exists()
    assert_one_line_error(run("sweep", posterior_file, "-o", tmp_path / "s", "--methods", "vbq"),
                          "already exists")


def test_sweep_mistakes_are_one_line(tmp_path, posterior_file):
    assert_one_line_error(run("sweep", posterior_file, "-o", tmp_path / "s", "--methods", "vbq,zip"),
                          "unknown method 'zip'")
    assert_one_line_error(run("sweep", posterior_file, "-o", tmp_path / "s", "--questions", "q.txt"),
                          "does not take option")
