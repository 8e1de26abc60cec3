"""Figure 3 tables (recipes/rd_analysis.py): ratios on any quality column and levels, folded over seeds."""

from __future__ import annotations

import csv
import importlib.util
import math
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "rd_analysis.py"


@pytest.fixture(scope="module")
def rd_analysis():
    spec = importlib.util.spec_from_file_location("rd_analysis", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_sweep(folder: Path, vbq_bits: float, top30k_uncompressed: float) -> Path:
    """A sweep.csv whose curves are straight lines: quality = bits / 4 (VBQ) or bits / 8 (uniform)."""
    folder.mkdir(parents=True)
    rows = [{"method": "uncompressed", "bits_per_dim_without_side": 32, "bits_per_dim": 32,
             "quality": 1.0, "hits_at_10_top30k": top30k_uncompressed}]
    for bits in (1.0, 2.0, 3.0, 4.0):
        rows.append({"method": "vbq", "bits_per_dim_without_side": bits * vbq_bits,
                     "bits_per_dim": bits * vbq_bits + 0.3, "quality": bits / 4,
                     "hits_at_10_top30k": top30k_uncompressed * bits / 4})
    for bits in (2.0, 4.0, 6.0, 8.0):
        rows.append({"method": "uniform", "bits_per_dim_without_side": bits, "bits_per_dim": bits + 0.3,
                     "quality": bits / 8, "hits_at_10_top30k": top30k_uncompressed * bits / 8})
    with open(folder / "sweep.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_ratios_read_the_chosen_quality_column_at_the_chosen_levels(rd_analysis, tmp_path):
    sweep = write_sweep(tmp_path / "seed0" / "sweep", vbq_bits=1.0, top30k_uncompressed=0.5)
    rows = rd_analysis.study_ratios([str(sweep)], None, "file", levels=(0.52, 0.96),
                                    quality="hits_at_10_top30k")
    (row,) = rows
    assert row["sweep"] == "seed0" and row["quality"] == "hits_at_10_top30k"
    assert row["uncompressed_hits_at_10"] == 0.5
    # at any level VBQ needs half the uniform grid's bits on these lines
    assert row["ratio_52"] == pytest.approx(0.5) and row["ratio_96"] == pytest.approx(0.5)
    assert row["vbq_bits_52"] == pytest.approx(4 * 0.52)


def test_a_quality_column_the_sweep_lacks_is_refused(rd_analysis, tmp_path):
    sweep = write_sweep(tmp_path / "s" / "sweep", vbq_bits=1.0, top30k_uncompressed=0.5)
    with pytest.raises(SystemExit, match="no 'hits_at_10_top20k' column"):
        rd_analysis.study_ratios([str(sweep)], None, "file", quality="hits_at_10_top20k")


def test_seeds_fold_into_mean_min_and_max_and_a_missed_cell_is_counted(rd_analysis, tmp_path):
    sweeps = [str(write_sweep(tmp_path / f"seed{n}" / "sweep", vbq_bits=b, top30k_uncompressed=0.5))
              for n, b in ((0, 1.0), (1, 1.5))]
    rows = rd_analysis.study_ratios(sweeps, None, "file", levels=(0.5, 1.0))
    (folded,) = rd_analysis.across_seeds(rows)
    assert folded["sweeps"] == 2 and "sweep" not in folded
    assert folded["ratio_50_min"] == pytest.approx(0.5) and folded["ratio_50_max"] == pytest.approx(0.75)
    assert folded["ratio_50_mean"] == pytest.approx(0.625)
    rows[1]["ratio_100"] = math.nan  # a level one seed's sweep did not reach: left out of the mean
    (folded,) = rd_analysis.across_seeds(rows)
    assert folded["ratio_100_mean"] == pytest.approx(0.5) and folded["sweeps_missing"] == 1
