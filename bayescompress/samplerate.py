"""Samples of posteriors too large to hold: evenly spaced runs of each tensor, on which rate
control and sweep search their knobs before packing the whole model (ratecontrol.py).
"""

from __future__ import annotations

import numpy as np

from .posterior import Posterior, TensorPosterior
from .tensorsource import PosteriorSource

SAMPLE_LATENTS = 1 << 22  # posteriors above this are rate-controlled on a sample of this size
_RUNS = 64  # contiguous runs per tensor that make up its sample: spread over the whole tensor


def sample_posterior(source: PosteriorSource, latents: int = SAMPLE_LATENTS) -> Posterior:
    """A posterior of about ``latents`` latents: evenly spaced runs of each tensor, in proportion
    to its size (small tensors whole), flattened; no side data."""
    total = source.n_latents
    tensors = {}
    for tensor in source.tensors:
        share = min(tensor.size, max(1024, tensor.size * latents // total))
        runs = min(_RUNS, share)
        length = share // runs
        starts = np.linspace(0, tensor.size - length, runs).astype(np.int64)
        pieces = [tensor.read(int(a), int(a) + length, source.source) for a in starts]
        means = np.concatenate([m for m, _ in pieces])
        stds = np.concatenate([s for _, s in pieces])
        tensors[tensor.name] = TensorPosterior(means, stds)
    return Posterior(tensors, kind="generic")
