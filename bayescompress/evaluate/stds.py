"""Whether an embedding posterior's stds mean something: per frequency band, against word counts.

A fitted std should shrink as a word's count grows; a std still at its initial value was never
trained. These figures say so for one tensor of a posterior file (``bayescompress evaluate stds``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import spearmanr

from ..errors import BayesCompressError
from ..posterior import Posterior

BANDS = ((1, 1000), (1001, 10000), (10001, 30000), (30001, 100000))  # frequency ranks, 1 = most frequent
INITIAL_STD_TOLERANCE = 1e-6  # relative: float32 rounding of the initial value, no more


@dataclass
class BandStds:
    """One band of frequency ranks: its rows' median std relative to the rms of their means."""

    first_rank: int
    last_rank: int
    rows: int
    median_std: float
    rms_mean: float
    median_std_over_rms_mean: float


@dataclass
class StdReport:
    """Per-band figures, the rank correlation of log count with log median row std, untrained share."""

    tensor: str
    bands: list[BandStds]
    spearman_log_count_log_std: float
    initial_std: float | None
    share_at_initial_std: float | None
    # over every row: the statistic docs/results.md relates to VBQ's gain over a uniform grid
    median_std_over_rms_mean: float = float("nan")

    def to_dict(self) -> dict:
        return asdict(self)


def std_report(posterior: Posterior, tensor: str = "U", initial_std: float | None = None) -> StdReport:
    """Figures for ``tensor``; ``initial_std`` defaults to the fit's ``init_scale`` in the metadata."""
    if tensor not in posterior.tensors:
        names = ", ".join(posterior.tensors)
        raise BayesCompressError(f"no tensor {tensor!r} in the posterior (it has {names})")
    counts = posterior.vocab.counts if posterior.vocab is not None else None
    entry = posterior.tensors[tensor]
    if counts is None or entry.mean.ndim != 2 or len(counts) != entry.mean.shape[0]:
        raise BayesCompressError(f"tensor {tensor!r} is not an embedding with word counts (one row per word)")
    if initial_std is None:
        initial_std = (posterior.metadata or {}).get("settings", {}).get("init_scale")
    order = np.argsort(-np.asarray(counts), kind="stable")  # rank r is row order[r - 1]
    means, stds = entry.mean.astype(np.float64), entry.std.astype(np.float64)
    bands = []
    for first, last in BANDS:
        rows = order[first - 1:last]
        if rows.size == 0:
            break
        spread = _spread(stds[rows], means[rows])
        bands.append(BandStds(first, first + rows.size - 1, int(rows.size), *spread))
    row_stds = np.median(stds, axis=1)
    correlation = float(spearmanr(np.log(np.maximum(counts, 1)), np.log(row_stds)).statistic)
    share = None
    if initial_std is not None:
        share = float(np.mean(np.abs(stds - initial_std) <= INITIAL_STD_TOLERANCE * initial_std))
    overall = _spread(stds, means)[2]
    return StdReport(tensor, bands, correlation, initial_std, share, overall)


def _spread(stds: np.ndarray, means: np.ndarray) -> tuple[float, float, float]:
    """(median std, rms of the means, their ratio) of a set of latents; the ratio is inf for zero means."""
    median_std = float(np.median(stds))
    rms_mean = float(np.sqrt(np.mean(means ** 2)))
    return median_std, rms_mean, median_std / rms_mean if rms_mean > 0 else float("inf")


def format_std_report(report: StdReport) -> str:
    """A small table for the terminal."""
    lines = [f"tensor {report.tensor}: median std / rms of means, per band of frequency ranks",
             f"{'ranks':>14} {'rows':>7} {'median std':>11} {'rms mean':>9} {'ratio':>7}"]
    for band in report.bands:
        lines.append(f"{band.first_rank:>6}-{band.last_rank:<7} {band.rows:>7} {band.median_std:>11.4g} "
                     f"{band.rms_mean:>9.4g} {band.median_std_over_rms_mean:>7.3f}")
    lines.append(f"{'all':>14} {sum(band.rows for band in report.bands):>7} {'':>11} {'':>9} "
                 f"{report.median_std_over_rms_mean:>7.3f}  (median std / rms of means, every row)")
    lines.append(f"Spearman(log count, log median row std): {report.spearman_log_count_log_std:.3f}")
    if report.share_at_initial_std is not None:
        lines.append(f"latents still at the initial std {report.initial_std:g}: "
                     f"{100 * report.share_at_initial_std:.2f}%")
    return "\n".join(lines)
