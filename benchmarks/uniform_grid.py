"""The uniform-grid baseline of the network benchmarks: each tensor's means rounded to a grid whose
step is a multiple of that tensor's RMS, coded by the same frequency tables and range coder as VBQ."""

from __future__ import annotations

import numpy as np

from bayescompress.quantizers import Option, QuantizedTensor, Quantizer, exact_float, parse_exact_float
from bayescompress.vbq import GaussianPrior


class UniformGridQuantizer(Quantizer):
    """Round each mean to a uniform grid, step = ``relative_step`` x the tensor's RMS, grid shifted by
    ``offset`` steps (0: mid-tread, 0 is a grid point; 0.5: mid-rise); the stds are ignored.  Symbols
    are signed grid indices."""

    name = "uniform-grid-benchmark"
    about = "benchmark baseline: a uniform grid scaled to each tensor's RMS"
    knob = Option("relative_step", None, "grid step in units of the tensor's RMS")
    options = (Option("offset", 0.0, "grid shift in steps: 0 mid-tread, 0.5 mid-rise"),)
    in_sweep = False

    def __init__(self, relative_step: float, offset: float):
        self.relative_step, self.offset = relative_step, offset

    def config(self) -> dict:
        return {"relative_step": exact_float(self.relative_step), "offset": exact_float(self.offset)}

    def quantize(self, means: np.ndarray, stds: np.ndarray, progress=None) -> QuantizedTensor:
        values = np.asarray(means, dtype=np.float64).ravel()
        step = self.relative_step * GaussianPrior.empirical(values).scale
        shift = self.offset * step
        symbols = np.round((values - shift) / step).astype(np.int64)
        if progress is not None:
            progress.update(values.size)
        return QuantizedTensor(symbols, {"step": exact_float(step), "shift": exact_float(shift)})

    @staticmethod
    def dequantize(symbols: np.ndarray, params: dict, config: dict) -> np.ndarray:
        step, shift = parse_exact_float(params["step"]), parse_exact_float(params["shift"])
        return shift + step * np.asarray(symbols, dtype=np.float64)
