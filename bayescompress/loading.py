"""``load``: an archive as a model a user already knows: gensim KeyedVectors for embeddings, a torch
module for networks, else the arrays.  It sits above packing, so the codec never imports torch or gensim.
"""

from __future__ import annotations

import os
import warnings

from .errors import BayesCompressError
from .packing import unpack


def load(path: str | os.PathLike, tensor: str | None = None, zero_rows: str | None = None):
    """A usable model from an archive: gensim KeyedVectors for embeddings, a torch nn.Module in eval
    mode for networks, else the unpacked arrays.

    ``tensor`` picks an embedding's word vectors (default U, or the only tensor). ``zero_rows``:
    "drop" leaves out words whose vector VBQ sent to all zeros (gensim cannot normalise them),
    "keep" keeps them as archived; by default they are dropped with a ``ZeroRowsWarning`` that
    says how many.
    """
    unpacked = unpack(path)
    if unpacked.kind == "network":
        from .networks.mlp import network_from_arrays

        return network_from_arrays(unpacked.model_spec, unpacked.tensors, str(path))
    if unpacked.kind == "embedding" and unpacked.vocab is not None:
        from .export import ZeroRowsWarning, to_keyed_vectors, zero_word_vectors

        try:
            vectors = to_keyed_vectors(unpacked, tensor, zero_rows or "drop")
            zeros, rows = zero_word_vectors(unpacked, tensor)
        except BayesCompressError as exc:
            raise BayesCompressError(f"{path}: {exc}") from exc
        if zero_rows is None and zeros:
            warnings.warn(f"{path}: left out {zeros} of {rows} word vectors that are all zero "
                          "(load(..., zero_rows='keep') keeps them, 'drop' drops them quietly)",
                          ZeroRowsWarning, stacklevel=2)
        return vectors
    return unpacked
