"""bayescompress: compress trained Bayesian models with Variational Bayesian Quantization.

Public API: ``Posterior`` (the HDF5 posterior file), ``pack`` (posterior -> archive),
``unpack`` (archive -> arrays and side data), ``archive_info`` and ``load`` (archive -> model).
"""

from ._version import __version__
from .errors import BayesCompressError
from .posterior import Posterior, TensorPosterior, Vocabulary

__all__ = [
    "BayesCompressError",
    "Posterior",
    "TensorPosterior",
    "Vocabulary",
    "__version__",
    "archive_info",
    "load",
    "pack",
    "unpack",
]


def __getattr__(name):
    # the pipeline functions import their stages lazily so that `import bayescompress` is cheap
    if name in ("pack", "unpack", "archive_info"):
        from . import packing

        return getattr(packing, name)
    if name == "load":
        from .loading import load

        return load
    raise AttributeError(f"module 'bayescompress' has no attribute {name!r}")
