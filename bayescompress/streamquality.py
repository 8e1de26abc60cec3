"""A generic posterior's quality measures with archive and posterior file both read piece by piece:
what ``sweep`` computes on posteriors too large to hold (memory follows the chunk size).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from . import samplerate
from .packing import open_unpacked
from .streampack import CHUNK_LATENTS
from .tensorsource import PosteriorSource
from .vbq import PRIOR_BLOCK, GaussianPrior
from .waterfilling import GaussianRateDistortion

PIECE_LATENTS = CHUNK_LATENTS  # latents decoded and read at a time


@dataclass
class ArchiveSums:
    """Sums over every latent of an archive's values against the posterior."""

    distortion: float  # D = sum (z_hat - mu)^2 / (2 sigma^2)
    within: int  # latents with |z_hat - mu| <= sigma
    squared_error: float  # sum (z_hat - mu)^2
    count: int

    @property
    def rmse(self) -> float:
        return float(np.sqrt(self.squared_error / self.count))


def archive_sums(archive: str | os.PathLike, posterior: PosteriorSource) -> ArchiveSums:
    """Decode ``archive`` PIECE_LATENTS at a time and read the posterior's matching latent ranges."""
    tensors = {t.name: t for t in posterior.tensors}
    distortion, squared, within, count = 0.0, 0.0, 0, 0
    stream = open_unpacked(archive, chunk_latents=PIECE_LATENTS)
    for entry, start, values in stream.pieces(set(tensors)):
        means, stds = tensors[entry["name"]].read(start, start + values.size, posterior.source)
        error = np.asarray(values, dtype=np.float64).reshape(-1) - means
        scaled = error / stds
        distortion += 0.5 * float(np.dot(scaled, scaled))
        squared += float(np.dot(error, error))
        within += int(np.count_nonzero(np.abs(error) <= stds))
        count += values.size
    return ArchiveSums(distortion, within, squared, count)


class SampledRateDistortion:
    """The Gaussian R(D) of K sources estimated on m of them: bits(D) = K/m R_m(D m / K)."""

    def __init__(self, sample: GaussianRateDistortion, total: int):
        self.sample, self.total = sample, total

    def bits(self, distortion: float) -> float:
        share = self.sample.count / self.total
        return self.sample.bits(distortion * share) / share


def streamed_sources(posterior: PosteriorSource, block: int = 16 * PRIOR_BLOCK):
    """``waterfilling.posterior_sources`` of a posterior read piece by piece.

    The prior scale of each tensor is exact (``GaussianPrior.from_blocks``).  The bound needs
    every latent's variance at once: exact up to ``samplerate.SAMPLE_LATENTS`` latents (their
    stds read whole, 8 bytes each), above that estimated on the rate control's sample.
    """
    scales = {t.name: GaussianPrior.from_blocks(t.mean_blocks(block)).scale for t in posterior.tensors}
    if posterior.n_latents <= samplerate.SAMPLE_LATENTS:
        stds = {t.name: np.concatenate([t.read(a, min(a + block, t.size), posterior.source)[1]
                                        for a in range(0, t.size, block)]) for t in posterior.tensors}
    else:
        sample = samplerate.sample_posterior(posterior, samplerate.SAMPLE_LATENTS)
        stds = {name: tensor.std for name, tensor in sample.tensors.items()}
    variances = [scales[name] ** 2 / (2.0 * np.square(std.astype(np.float64))) for name, std in stds.items()]
    sources = GaussianRateDistortion(np.concatenate(variances))
    if sources.count == posterior.n_latents:
        return sources
    return SampledRateDistortion(sources, posterior.n_latents)
