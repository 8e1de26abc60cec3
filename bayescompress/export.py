"""Writers for unpacked models: npz, HDF5, and word2vec files that gensim loads without glue.

Every writer goes through a temporary file and a rename, so a failed export leaves nothing.
"""

from __future__ import annotations

import os

import numpy as np

from .errors import BayesCompressError
from .files import atomic_output
from .streamexport import write_hdf5_stream, write_npz_stream, write_word2vec_stream

FORMATS = ("npz", "hdf5", "word2vec", "torch")
_SUFFIXES = {".npz": "npz", ".h5": "hdf5", ".hdf5": "hdf5", ".txt": "word2vec", ".bin": "word2vec",
             ".vec": "word2vec", ".w2v": "word2vec", ".pt": "torch", ".pth": "torch"}


def format_for(path: str | os.PathLike, requested: str | None) -> str:
    """The export format: as requested, else guessed from the file suffix."""
    if requested is not None:
        if requested not in FORMATS:
            raise BayesCompressError(f"unknown format {requested!r} (formats: {', '.join(FORMATS)})")
        return requested
    suffix = os.path.splitext(str(path))[1].lower()
    if suffix not in _SUFFIXES:
        raise BayesCompressError(f"{path}: cannot tell the format from the suffix; pass --format")
    return _SUFFIXES[suffix]


class WholeTensors:
    """An in-memory Unpacked seen as a stream of pieces (each tensor one piece), so that one
    writer per format serves both (streamexport)."""

    def __init__(self, unpacked):
        self.kind, self.vocab, self.metadata = unpacked.kind, unpacked.vocab, unpacked.metadata
        self.model_spec, self.header, self.tensors = unpacked.model_spec, unpacked.header, unpacked.tensors
        self.entries = [{"name": name, "shape": list(values.shape), "dtype": values.dtype.name}
                        for name, values in unpacked.tensors.items()]

    def pieces(self, names: set[str] | None = None):
        for entry in self.entries:
            if names is None or entry["name"] in names:
                yield entry, 0, self.tensors[entry["name"]].reshape(-1)


def write_npz(unpacked, path: str | os.PathLike) -> None:
    """One array per tensor under its name; ``vocab`` and ``counts`` beside them when present."""
    write_npz_stream(WholeTensors(unpacked), path)


def write_hdf5(unpacked, path: str | os.PathLike) -> None:
    """/tensors/NAME datasets of values, /vocab like the posterior file, JSON attributes."""
    write_hdf5_stream(WholeTensors(unpacked), path)


def embedding_matrix(unpacked, tensor: str | None = None) -> tuple[str, np.ndarray]:
    """The word-vector tensor of an embedding archive: ``tensor``, else U, else the only one."""
    if unpacked.vocab is None:
        raise BayesCompressError("archive has no vocabulary; it is not a word embedding")
    names = list(unpacked.tensors)
    if tensor is None:
        tensor = "U" if "U" in unpacked.tensors else (names[0] if len(names) == 1 else None)
        if tensor is None:
            raise BayesCompressError(f"archive has several tensors ({', '.join(map(repr, names))}); pick one")
    if tensor not in unpacked.tensors:
        raise BayesCompressError(f"archive has no tensor {tensor!r} (tensors: {', '.join(map(repr, names))})")
    matrix = unpacked.tensors[tensor]
    if matrix.ndim != 2 or matrix.shape[0] != len(unpacked.vocab):
        raise BayesCompressError(
            f"tensor {tensor!r} has shape {matrix.shape}, not (vocabulary size, dimension)"
        )
    return tensor, matrix


def to_keyed_vectors(unpacked, tensor: str | None = None):
    """gensim KeyedVectors holding the archive's word vectors (and corpus counts, if stored)."""
    _, matrix = embedding_matrix(unpacked, tensor)
    from gensim.models import KeyedVectors

    # no preallocation (count=) and no extras= : gensim 4.3-4.4 add_vectors would keep the
    # preallocated empty rows and cannot unpack an extras dict
    vectors = KeyedVectors(vector_size=matrix.shape[1])
    vectors.add_vectors(list(unpacked.vocab.words), matrix.astype(np.float32))
    if unpacked.vocab.counts is not None:
        vectors.allocate_vecattrs(["count"], [np.int64])
        vectors.expandos["count"][:] = np.asarray(unpacked.vocab.counts, dtype=np.int64)
    return vectors


def write_word2vec(unpacked, path: str | os.PathLike, tensor: str | None = None) -> None:
    """word2vec format, binary when the name ends in .bin, that load_word2vec_format reads."""
    write_word2vec_stream(WholeTensors(unpacked), path, tensor)


def write_torch(unpacked, path: str | os.PathLike) -> None:
    """A PyTorch state dict (torch.save of a plain dict): tensors by name, and for a network the
    model spec as JSON text under ``_extra_state``; ``torch.load(path, weights_only=True)`` reads it."""
    import torch

    from .networks.mlp import state_dict_arrays

    spec = unpacked.model_spec if unpacked.kind == "network" else None
    state = state_dict_arrays(unpacked.tensors, spec)
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


def write_streamed(stream, path: str | os.PathLike, fmt: str, tensor: str | None = None) -> None:
    """Write an archive opened with packing.open_unpacked, piece by piece (torch: whole)."""
    if fmt == "npz":
        write_npz_stream(stream, path)
    elif fmt == "hdf5":
        write_hdf5_stream(stream, path)
    elif fmt == "word2vec":
        write_word2vec_stream(stream, path, tensor)
    else:
        raise BayesCompressError(f"unknown format {fmt!r} for a streamed export")


def write_unpacked(unpacked, path: str | os.PathLike, fmt: str, tensor: str | None = None) -> None:
    if fmt == "torch":
        write_torch(unpacked, path)
    elif fmt in ("npz", "hdf5", "word2vec"):
        write_streamed(WholeTensors(unpacked), path, fmt, tensor)
    else:
        raise BayesCompressError(f"unknown format {fmt!r}")
