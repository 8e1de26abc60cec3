"""``load``: an archive as a model a user already knows: gensim KeyedVectors for embeddings, a torch
module for networks, else the arrays.  It sits above packing, so the codec never imports torch or gensim.
"""

from __future__ import annotations

import os

from .errors import BayesCompressError
from .packing import unpack


def load(path: str | os.PathLike, tensor: str | None = None):
    """A usable model from an archive: gensim KeyedVectors for embeddings, a torch nn.Module in eval
    mode for networks, else the unpacked arrays.

    ``tensor`` picks an embedding's word vectors (default U, or the only tensor).
    """
    unpacked = unpack(path)
    if unpacked.kind == "network":
        from .networks.mlp import network_from_arrays

        return network_from_arrays(unpacked.model_spec, unpacked.tensors, str(path))
    if unpacked.kind == "embedding" and unpacked.vocab is not None:
        from .export import to_keyed_vectors

        try:
            return to_keyed_vectors(unpacked, tensor)
        except BayesCompressError as exc:
            raise BayesCompressError(f"{path}: {exc}") from exc
    return unpacked
