"""The uniform-grid baseline of the network benchmarks: the means rounded to a grid whose step is a
multiple of each tensor's RMS or of the whole model's (one step for every tensor), coded by the same
frequency tables and range coder as VBQ."""

from __future__ import annotations

import numpy as np

from bayescompress.quantizers import Option, QuantizedTensor, Quantizer, exact_float, parse_exact_float
from bayescompress.vbq import GaussianPrior


class UniformGridQuantizer(Quantizer):
    """Round each mean to a uniform grid, step = ``relative_step`` x the tensor's RMS (or x
    ``model_rms``, the RMS of all the model's means, when given: one step for every tensor), grid
    shifted by ``offset`` steps (0: mid-tread, 0 is a grid point; 0.5: mid-rise); the stds are
    ignored.  Symbols are signed grid indices."""

    name = "uniform-grid-benchmark"
    about = "benchmark baseline: a uniform grid scaled to each tensor's RMS or to the model's"
    knob = Option("relative_step", None, "grid step in units of the tensor's (or the model's) RMS")
    options = (Option("offset", 0.0, "grid shift in steps: 0 mid-tread, 0.5 mid-rise"),
               Option("model_rms", None, "RMS of all the model's means: one step for every tensor"))
    in_sweep = False

    def __init__(self, relative_step: float, offset: float, model_rms: float | None = None):
        self.relative_step, self.offset, self.model_rms = relative_step, offset, model_rms

    def config(self) -> dict:
        config = {"relative_step": exact_float(self.relative_step), "offset": exact_float(self.offset)}
        return config if self.model_rms is None else config | {"model_rms": exact_float(self.model_rms)}

    def quantize(self, means: np.ndarray, stds: np.ndarray, progress=None) -> QuantizedTensor:
        values = np.asarray(means, dtype=np.float64).ravel()
        scale = GaussianPrior.empirical(values).scale if self.model_rms is None else self.model_rms
        step = self.relative_step * scale
        shift = self.offset * step
        symbols = np.round((values - shift) / step).astype(np.int64)
        if progress is not None:
            progress.update(values.size)
        return QuantizedTensor(symbols, {"step": exact_float(step), "shift": exact_float(shift)})

    @staticmethod
    def dequantize(symbols: np.ndarray, params: dict, config: dict) -> np.ndarray:
        step, shift = parse_exact_float(params["step"]), parse_exact_float(params["shift"])
        return shift + step * np.asarray(symbols, dtype=np.float64)
