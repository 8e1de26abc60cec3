"""Word vectors from any file a user has: a posterior (means), an archive, or a word2vec file.

The evaluators take plain ``(vectors, words)``; this module is the one place that knows how each
kind of file is told apart (by its first bytes, not its name) and read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..archive import MAGIC as ARCHIVE_MAGIC
from ..errors import BayesCompressError
from ..hdf5_input import hdf5_errors, open_checked, read_attribute
from ..limits import parse_json

DEFAULT_TENSOR = "U"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".lzma")


@dataclass
class WordVectors:
    """One vector per word, rows in vocabulary order, and where they came from."""

    vectors: np.ndarray
    words: list[str]
    source: str
    kind: str
    tensor: str | None = None

    def __len__(self) -> int:
        return len(self.words)


def load_word_vectors(target: str | os.PathLike, tensor: str | None = None) -> WordVectors:
    """Read the word vectors of a posterior file (means), an archive, or a word2vec file.

    ``tensor`` picks the tensor of a posterior or archive (default ``U``, or the only tensor);
    names joined by ``+`` are summed (``U+V``: a skip-gram's word plus context vectors, as GloVe's
    W + C). word2vec files hold one matrix, so ``tensor`` must be None for them.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from bayescompress.posterior import Posterior, TensorPosterior, Vocabulary
    >>> means = np.eye(3, dtype=np.float32)
    >>> post = Posterior({"U": TensorPosterior(means, np.ones_like(means))}, kind="embedding",
    ...                  vocab=Vocabulary(["a", "b", "c"]))
    >>> path = tempfile.mkdtemp() + "/post.h5"
    >>> post.save(path)
    >>> loaded = load_word_vectors(path)
    >>> loaded.kind, loaded.tensor, loaded.words, loaded.vectors.shape
    ('posterior', 'U', ['a', 'b', 'c'], (3, 3))
    """
    path = Path(target)
    if not path.is_file():
        raise BayesCompressError(f"{target}: no such file")
    with open(path, "rb") as handle:
        start = handle.read(8)
    if start == ARCHIVE_MAGIC:
        loaded = _from_archive(path, tensor)
    elif start == _HDF5_MAGIC:
        loaded = _from_hdf5(path, tensor)
    else:
        if tensor is not None:
            raise BayesCompressError(
                f"{target}: a word2vec file holds one matrix; --tensor applies to posterior files "
                "and archives only"
            )
        loaded = _from_word2vec(path)
    _check_vectors(loaded)
    return loaded


def _pick_tensor(names: list[str], tensor: str | None, source: str) -> str:
    if tensor is None:
        if DEFAULT_TENSOR in names:
            return DEFAULT_TENSOR
        if len(names) == 1:
            return names[0]
        raise BayesCompressError(
            f"{source}: has several tensors ({', '.join(map(repr, names))}) and none named {DEFAULT_TENSOR}; "
            "pick one with --tensor"
        )
    if tensor not in names:
        known = ", ".join(map(repr, names))
        raise BayesCompressError(f"{source}: no tensor named {tensor!r} (tensors: {known})")
    return tensor


def _pick_tensors(names: list[str], tensor: str | None, source: str) -> list[str]:
    """The tensors ``tensor`` names: one, or several joined by ``+`` whose values are summed."""
    if tensor is None:
        return [_pick_tensor(names, None, source)]
    parts = tensor.split("+")
    if "" in parts:
        raise BayesCompressError(f"{source}: --tensor {tensor!r} is not NAME or NAME+NAME+...")
    return [_pick_tensor(names, part, source) for part in parts]


def _summed(arrays: list[np.ndarray], picked: list[str], source: str) -> np.ndarray:
    """One tensor's values as they are; several tensors' values added element by element."""
    if len({array.shape for array in arrays}) > 1:
        shapes = ", ".join(f"{name} {array.shape}" for name, array in zip(picked, arrays, strict=True))
        raise BayesCompressError(f"{source}: cannot add tensors of different shapes ({shapes})")
    return arrays[0] if len(arrays) == 1 else np.sum(arrays, axis=0, dtype=arrays[0].dtype)


def _from_archive(path: Path, tensor: str | None) -> WordVectors:
    from ..packing import unpack

    unpacked = unpack(path)
    source = str(path)
    if unpacked.vocab is None:
        raise BayesCompressError(f"{source}: archive has no vocabulary; it is not a word embedding")
    picked = _pick_tensors(list(unpacked.tensors), tensor, source)
    vectors = _summed([unpacked.tensors[name] for name in picked], picked, source)
    return WordVectors(vectors, list(unpacked.vocab.words), source, "archive", "+".join(picked))


def _from_hdf5(path: Path, tensor: str | None) -> WordVectors:

    source = str(path)
    with open_checked(path) as h5, hdf5_errors(source):
        fmt = read_attribute(h5, "format", source)
    from ..posterior import FORMAT_NAME, Posterior, read_posterior_header
    from ..streamexport import VALUES_FORMAT

    if fmt == FORMAT_NAME:
        names = list(read_posterior_header(path)["tensors"])
        picked = _pick_tensors(names, tensor, source)
        posterior = Posterior.load(path, list(dict.fromkeys(picked)))
        if posterior.vocab is None:
            raise BayesCompressError(f"{source}: posterior has no vocabulary; it is not a word embedding")
        vectors = _summed([posterior.tensors[name].mean for name in picked], picked, source)
        return WordVectors(vectors, list(posterior.vocab.words), source, "posterior", "+".join(picked))
    if fmt == VALUES_FORMAT:
        return _from_values_file(path, tensor)
    raise BayesCompressError(
        f"{source}: HDF5 file is neither a bayescompress posterior nor unpacked values (format={fmt!r})"
    )


def _from_values_file(path: Path, tensor: str | None) -> WordVectors:
    """An archive unpacked to HDF5 (``unpack --format hdf5``): /tensors/NAME and /vocab/words."""
    import h5py

    source = str(path)
    try:
        with open_checked(path) as h5, hdf5_errors(source):
            if "tensors" not in h5 or "vocab" not in h5 or "words" not in h5["vocab"]:
                raise BayesCompressError(f"{source}: unpacked values have no tensors or no vocabulary")
            group = h5["tensors"]
            order = read_attribute(group, "order", source)
            names = parse_json(order, f"{source}: tensor order") if order is not None else sorted(group)
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise BayesCompressError(f"{source}: tensor order attribute is malformed")
            picked = _pick_tensors(list(names), tensor, source)
            arrays = []
            for name in picked:
                dataset = group.get(name)
                if not isinstance(dataset, h5py.Dataset) or dataset.dtype.kind != "f":
                    raise BayesCompressError(f"{source}: tensor {name!r} is not a float dataset")
                arrays.append(dataset[()])
            vectors = _summed(arrays, picked, source)
            words = [str(w) for w in h5["vocab"]["words"].asstr()[()]]
    except UnicodeDecodeError as exc:
        raise BayesCompressError(f"{source}: unpacked values file is unreadable ({exc})") from exc
    return WordVectors(vectors, words, source, "values", "+".join(picked))


def _from_word2vec(path: Path) -> WordVectors:
    source = str(path)
    suffixes = [s.lower() for s in path.suffixes]
    binary = ".bin" in suffixes
    if not suffixes or suffixes[-1] not in _COMPRESSED_SUFFIXES:
        _check_word2vec_header(path, binary)
    from gensim.models import KeyedVectors

    try:
        vectors = KeyedVectors.load_word2vec_format(str(path), binary=binary)
    except (ValueError, EOFError, UnicodeError, IndexError, AssertionError, OSError) as exc:
        kind = "binary" if binary else "text"
        raise BayesCompressError(f"{source}: not a readable word2vec {kind} file ({exc})") from exc
    return WordVectors(vectors.vectors, list(vectors.index_to_key), source, "word2vec")


def _check_word2vec_header(path: Path, binary: bool) -> None:
    """Refuse a header that declares more vectors than the file can hold, before gensim
    allocates a matrix of the declared size."""
    source = str(path)
    with open(path, "rb") as handle:
        first = handle.readline(200)
    try:
        count, dim = (int(field) for field in first.decode("utf-8").split())
    except (UnicodeDecodeError, ValueError):
        raise BayesCompressError(
            f"{source}: not a word2vec file (the first line must be '<number of words> <dimension>')"
        ) from None
    if count <= 0 or dim <= 0:
        raise BayesCompressError(f"{source}: word2vec header declares {count} words of dimension {dim}")
    least_bytes = count * dim * (4 if binary else 2)  # 4-byte floats, or a digit and a space
    size = path.stat().st_size
    if least_bytes > size:
        raise BayesCompressError(
            f"{source}: word2vec header declares {count} words of dimension {dim}, more than the "
            f"file's {size} bytes can hold (is it a {'text' if binary else 'binary'} file?)"
        )


def _check_vectors(loaded: WordVectors) -> None:
    vectors = loaded.vectors
    if vectors.ndim != 2 or vectors.shape[0] != len(loaded.words):
        raise BayesCompressError(
            f"{loaded.source}: word vectors have shape {vectors.shape} but there are "
            f"{len(loaded.words)} words (expected one row per word)"
        )
    if vectors.shape[0] == 0 or vectors.shape[1] == 0:
        raise BayesCompressError(f"{loaded.source}: no word vectors")
    if not np.all(np.isfinite(vectors)):
        raise BayesCompressError(f"{loaded.source}: word vectors contain values that are not finite")
