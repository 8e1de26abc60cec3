"""Posterior tensors read piece by piece: flat latent ranges of an HDF5 file or of arrays in memory.

Streaming pack reads a model through this, so memory follows the piece size, not the model.
Each piece is checked as it is read (finite means, finite positive stds).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from .errors import BayesCompressError
from .posterior import (
    FLOAT_DTYPES,
    KINDS,
    Posterior,
    Vocabulary,
    load_side_data,
    open_tensor_datasets,
    validate_posterior,
    validate_tensor_name,
    validate_vocabulary,
)


@dataclass
class TensorSource:
    """One tensor's shape and dtype, and a reader of flat ranges of its means and stds."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    read_range: Callable[[str, int, int], np.ndarray]  # (label, start, stop) -> flat values

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    def read(self, start: int, stop: int, source: str) -> tuple[np.ndarray, np.ndarray]:
        """Means and stds of latents [start, stop), checked."""
        means = self.read_range("mean", start, stop)
        stds = self.read_range("std", start, stop)
        check_piece(self.name, means, stds, source)
        return means, stds

    def strided(self, step: int, block: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
        """Means and stds of latents 0, step, 2 step, ... (read ``block`` latents at a time)."""
        means, stds = [], []
        for start in range(0, self.size, block):
            stop = min(start + block, self.size)
            first = -start % step
            # copies: a strided view would keep its whole block alive (8 GB at 10^9 latents)
            means.append(self.read_range("mean", start, stop)[first::step].copy())
            stds.append(self.read_range("std", start, stop)[first::step].copy())
        return np.concatenate(means), np.concatenate(stds)

    def mean_blocks(self, block: int) -> Callable[[], Iterator[np.ndarray]]:
        """A callable yielding the means in pieces of ``block`` latents (for the prior's passes)."""
        return lambda: (
            self.read_range("mean", i, min(i + block, self.size))
            for i in range(0, self.size, block)
        )


@dataclass
class PosteriorSource:
    """What pack needs of a posterior without holding its tensors: sources plus side data."""

    tensors: list[TensorSource]
    kind: str
    vocab: Vocabulary | None
    model_spec: dict | None
    metadata: dict = field(default_factory=dict)
    source: str = "posterior"

    @property
    def n_latents(self) -> int:
        return sum(t.size for t in self.tensors)


def check_piece(name: str, means: np.ndarray, stds: np.ndarray, source: str) -> None:
    where = f"{source}: tensor {name!r}"
    if not np.all(np.isfinite(means)):
        bad = int(np.count_nonzero(~np.isfinite(means)))
        raise BayesCompressError(f"{where}: {bad} mean value(s) are not finite")
    if not np.all(np.isfinite(stds)):
        bad = int(np.count_nonzero(~np.isfinite(stds)))
        raise BayesCompressError(f"{where}: {bad} std value(s) are not finite")
    if not np.all(stds > 0):
        bad = int(np.count_nonzero(~(stds > 0)))
        raise BayesCompressError(f"{where}: {bad} std value(s) are not > 0")


def from_posterior(posterior: Posterior, source: str = "posterior") -> PosteriorSource:
    """A source over a posterior already in memory (validated whole, as before)."""
    validate_posterior(posterior, source)
    tensors = []
    for name, tensor in posterior.tensors.items():
        arrays = {"mean": tensor.mean.reshape(-1), "std": tensor.std.reshape(-1)}
        tensors.append(
            TensorSource(
                name,
                tensor.shape,
                tensor.mean.dtype,
                lambda label, a, b, arrays=arrays: arrays[label][a:b],
            )
        )
    return PosteriorSource(
        tensors,
        posterior.kind,
        posterior.vocab,
        posterior.model_spec,
        dict(posterior.metadata),
        source,
    )


@contextlib.contextmanager
def open_posterior_source(
    path: str | os.PathLike, names: list[str] | None = None
) -> Iterator[PosteriorSource]:
    """A source over an HDF5 posterior file, open for the duration of the ``with`` block."""
    source = str(path)
    with open_tensor_datasets(path, names) as (h5, datasets):
        tensors = []
        for name, (mean, std) in datasets.items():
            if mean.shape != std.shape:
                raise BayesCompressError(
                    f"{source}: tensor {name!r}: mean has shape {mean.shape} but std has shape {std.shape}"
                )
            if mean.size == 0:
                raise BayesCompressError(f"{source}: tensor {name!r}: tensor is empty")
            if mean.dtype.name not in FLOAT_DTYPES or std.dtype.name not in FLOAT_DTYPES:
                raise BayesCompressError(
                    f"{source}: tensor {name!r}: mean and std must be float datasets"
                )
            pair = {"mean": mean, "std": std}
            tensors.append(
                TensorSource(
                    name,
                    tuple(mean.shape),
                    mean.dtype,
                    lambda label, a, b, pair=pair: read_flat(pair[label], a, b),
                )
            )
        kind, vocab, model_spec, metadata = load_side_data(h5, source)
        posterior = PosteriorSource(tensors, kind, vocab, model_spec, metadata, source)
        check_side_data(posterior)
        yield posterior


def check_side_data(posterior: PosteriorSource) -> None:
    """The whole-posterior checks that need no tensor values (kind, names, vocabulary rows)."""
    source = posterior.source
    if posterior.kind not in KINDS:
        raise BayesCompressError(
            f"{source}: kind {posterior.kind!r} is not one of {', '.join(KINDS)}"
        )
    if not posterior.tensors:
        raise BayesCompressError(f"{source}: posterior has no tensors")
    for tensor in posterior.tensors:
        validate_tensor_name(tensor.name, source)
    if posterior.vocab is not None:
        validate_vocabulary(posterior.vocab, source)
        for tensor in posterior.tensors:
            if posterior.kind == "embedding" and (
                not tensor.shape or tensor.shape[0] != len(posterior.vocab)
            ):
                raise BayesCompressError(
                    f"{source}: tensor {tensor.name!r} has shape {tensor.shape} but the vocabulary has "
                    f"{len(posterior.vocab)} words (rows must match)"
                )


def read_flat(dataset, start: int, stop: int, prefix: tuple = ()) -> np.ndarray:
    """Flat latents [start, stop) of an HDF5 dataset (of ``dataset[prefix]``), reading no latent
    outside them: a partial row is read inside that row, so a tensor of a few long rows costs
    no more memory than one of many short ones."""
    shape = dataset.shape[len(prefix):]
    if stop <= start:
        return np.empty(0, dtype=dataset.dtype)
    if not shape:
        return np.asarray(dataset[prefix] if prefix else dataset[()]).reshape(-1)[: stop - start]
    if len(shape) == 1:
        return np.asarray(dataset[prefix + (slice(start, stop),)]).reshape(-1)
    row = int(np.prod(shape[1:], dtype=np.int64))
    first, last_full_end = start // row, stop // row
    pieces = []
    if start % row:  # the first row is partial
        pieces.append(read_flat(dataset, start % row, min(stop, (first + 1) * row) - first * row,
                                prefix + (first,)))
        first += 1
    if last_full_end > first:  # whole rows
        pieces.append(np.asarray(dataset[prefix + (slice(first, last_full_end),)]).reshape(-1))
    if stop % row and last_full_end >= first:  # the last row is partial
        pieces.append(read_flat(dataset, 0, stop % row, prefix + (last_full_end,)))
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
