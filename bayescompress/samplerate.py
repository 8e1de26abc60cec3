"""Rate control for posteriors too large to hold: search the knob on a sample of the latents,
then pack the whole model with it and check the real archive's size (correcting and retrying
a few times when the sample's rate is off).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import BayesCompressError
from .files import check_output_path
from .packing import PackResult, StreamOptions, pack
from .posterior import Posterior, TensorPosterior
from .tensorsource import PosteriorSource, open_posterior_source

SAMPLE_LATENTS = 1 << 22  # posteriors above this are rate-controlled on a sample of this size
_RUNS = 64  # contiguous runs per tensor that make up its sample: spread over the whole tensor
_FULL_PACKS = 3  # packs of the whole model at most


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


def pack_large_to_target(path, out, *, method: str, coder: str, tensors, bits_per_dim, max_bytes,
                         tolerance: float, overwrite: bool, streaming: StreamOptions | None, **options):
    """``ratecontrol.pack_to_target`` for a posterior file read piece by piece."""
    from .ratecontrol import RateControlResult, pack_to_target, target_range

    out = check_output_path(out, overwrite=overwrite, inputs=(path,))
    with open_posterior_source(path, tensors) as source:
        n = source.n_latents
        low, high = target_range(n, bits_per_dim, max_bytes, tolerance)
        sample = sample_posterior(source)
    aim = (low + high) / 2 if max_bytes is None else high * (1 - tolerance / 2)
    sample_bits = 8 * aim / n
    trials: list[tuple[float, float]] = []
    results: dict[float, PackResult] = {}
    with tempfile.TemporaryDirectory(prefix=".ratecontrol-", dir=out.parent) as work:
        for attempt in range(_FULL_PACKS):
            control = pack_to_target(sample, Path(work) / "sample.bcz", method=method, coder=coder,
                                     bits_per_dim=sample_bits, tolerance=tolerance / 4, overwrite=True,
                                     **options)
            value = control.value
            if value in results:
                break
            result = pack(path, Path(work) / f"trial-{attempt}.bcz", method=method, coder=coder,
                          tensors=tensors, streaming=streaming, show_progress=False,
                          **{control.option: value}, **options)
            results[value] = result
            trials.append((value, float(result.total_bytes)))
            if low <= result.total_bytes <= high:
                break
            sample_bits *= aim / result.total_bytes  # the sample's rate was off by this factor
        pool = [t for t in trials if max_bytes is None or t[1] <= high] or trials
        value, size = min(pool, key=lambda t: (abs(t[1] - aim), t[1]))
        if max_bytes is not None and size > high:
            raise BayesCompressError(
                f"maximum size {max_bytes} bytes: the smallest archive found on the whole model is "
                f"{size:.0f} bytes")
        os.replace(results[value].path, out)
    met = low <= size <= high
    note = "" if met else (f"searched lambda on a {SAMPLE_LATENTS}-latent sample; the whole model's "
                           f"archive is {size:.0f} bytes, outside [{low:.0f}, {high:.0f}]")
    final = results[value]
    final.path = out
    return RateControlResult(final, control.option, value, aim, met, note, trials)
