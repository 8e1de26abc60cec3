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


ZERO_ROWS = ("drop", "keep")


class ZeroRowsWarning(UserWarning):
    """All-zero word vectors were left out of KeyedVectors that ``load`` built by default."""


def zero_word_vectors(unpacked, tensor: str | None = None) -> tuple[int, int]:
    """How many rows of the word-vector tensor are all zero, and how many rows it has.

    VBQ sends a whole row to zero when every coordinate is cheaper at the prior's median than
    anywhere else; cosine similarity is undefined for such a vector (gensim divides by its norm).
    """
    _, matrix = embedding_matrix(unpacked, tensor)
    return int(np.count_nonzero(~np.any(matrix, axis=1))), matrix.shape[0]


def to_keyed_vectors(unpacked, tensor: str | None = None, zero_rows: str = "drop"):
    """gensim KeyedVectors holding the archive's word vectors (and corpus counts, if stored).

    ``zero_rows``: "drop" leaves out words whose vector is all zero, so that gensim's
    ``most_similar`` and normalisation see no zero norm (no NaN, no RuntimeWarning); "keep"
    keeps every word with exactly the archived values.
    """
    if zero_rows not in ZERO_ROWS:
        raise BayesCompressError(f"zero rows must be 'drop' or 'keep', got {zero_rows!r}")
    _, matrix = embedding_matrix(unpacked, tensor)
    keep = np.any(matrix, axis=1) if zero_rows == "drop" else np.ones(matrix.shape[0], dtype=bool)
    if not keep.any():
        raise BayesCompressError("every word vector is all zero; nothing is left to write "
                                 "(keep them with --zero-rows keep / zero_rows='keep')")
    from gensim.models import KeyedVectors

    # no preallocation (count=) and no extras= : gensim 4.3-4.4 add_vectors would keep the
    # preallocated empty rows and cannot unpack an extras dict
    vectors = KeyedVectors(vector_size=matrix.shape[1])
    words = [word for word, kept in zip(unpacked.vocab.words, keep, strict=True) if kept]
    vectors.add_vectors(words, matrix[keep].astype(np.float32))
    if unpacked.vocab.counts is not None:
        vectors.allocate_vecattrs(["count"], [np.int64])
        vectors.expandos["count"][:] = np.asarray(unpacked.vocab.counts, dtype=np.int64)[keep]
    return vectors


def write_word2vec(unpacked, path: str | os.PathLike, tensor: str | None = None,
                   zero_rows: str = "drop") -> None:
    """word2vec format, binary when the name ends in .bin, that load_word2vec_format reads
    (``zero_rows`` as in ``to_keyed_vectors``)."""
    write_word2vec_stream(WholeTensors(unpacked), path, tensor, zero_rows)


def write_torch(unpacked, path: str | os.PathLike) -> None:
    """A PyTorch state dict (torch.save of a plain dict): tensors by name, and for a network the
    model spec as JSON text under ``_extra_state``; ``torch.load(path, weights_only=True)`` reads it."""
    import torch

    from .networks.mlp import state_dict_arrays

    spec = unpacked.model_spec if unpacked.kind == "network" else None
    state = state_dict_arrays(unpacked.tensors, spec)
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


def write_streamed(stream, path: str | os.PathLike, fmt: str, tensor: str | None = None,
                   zero_rows: str = "drop") -> tuple[int, int] | None:
    """Write an archive opened with packing.open_unpacked piece by piece; for word2vec, return how
    many word vectors are all zero, and of how many (``zero_rows`` as in ``to_keyed_vectors``)."""
    if fmt == "npz":
        write_npz_stream(stream, path)
    elif fmt == "hdf5":
        write_hdf5_stream(stream, path)
    elif fmt == "word2vec":
        return write_word2vec_stream(stream, path, tensor, zero_rows)
    else:
        raise BayesCompressError(f"unknown format {fmt!r} for a streamed export")
    return None


def write_unpacked(unpacked, path: str | os.PathLike, fmt: str, tensor: str | None = None,
                   zero_rows: str = "drop") -> None:
    if fmt == "torch":
        write_torch(unpacked, path)
    elif fmt in ("npz", "hdf5", "word2vec"):
        write_streamed(WholeTensors(unpacked), path, fmt, tensor, zero_rows)
    else:
        raise BayesCompressError(f"unknown format {fmt!r}")
