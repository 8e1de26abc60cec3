"""VBQ without the posterior, a benchmark baseline: Algorithm 1 with every std set to one number
(the RMS of all the model's means), so that what the posterior's stds add can be measured apart
from what VBQ's code points and rate penalty do on their own."""

from __future__ import annotations

import numpy as np

from bayescompress.quantizers import Option, QuantizedTensor, exact_float
from bayescompress.vbq import VBQQuantizer


class BlindVBQQuantizer(VBQQuantizer):
    """VBQ's empirical prior and eq. 9 with sigma = ``model_rms`` for every latent."""

    name = "vbq-blind-benchmark"
    about = "benchmark baseline: VBQ with one std for every weight (the posterior's stds ignored)"
    options = (*VBQQuantizer.options, Option("model_rms", None, "the std given to every latent"))
    in_sweep = False
    blockwise = False  # quantize() is where the stds are replaced

    def __init__(self, lam: float, model_rms: float, prior: str = "rms"):
        super().__init__(lam, prior=prior)
        self.model_rms = float(model_rms)

    def config(self) -> dict:
        return super().config() | {"model_rms": exact_float(self.model_rms)}

    def quantize(self, means: np.ndarray, stds: np.ndarray, progress=None) -> QuantizedTensor:
        return super().quantize(means, np.full(np.shape(means), self.model_rms), progress)
