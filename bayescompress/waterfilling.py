"""The Shannon reference of a sweep: reverse water-filling over independent Gaussian sources.

Latent i is a source of variance v_i = s0^2 / (2 sigma_i^2) (prior variance, squared error weighted
as in eq. 7); R(D) = sum max(0, 1/2 log2(v_i / theta)), sum min(theta, v_i) = D (Cover & Thomas 10.3.3).
"""

from __future__ import annotations

import numpy as np

from .posterior import Posterior
from .vbq import GaussianPrior


class GaussianRateDistortion:
    """R(D) of independent Gaussian sources with the given variances; theta is solved exactly.

    sum min(theta, v_i) is piecewise linear in theta with kinks at the sorted variances, so theta
    is found on the right piece in closed form (no bisection tolerance).

    >>> rd = GaussianRateDistortion(np.full(4, 2.0))
    >>> rd.bits(4 * 0.5)  # 4 sources, each at D/K = v/4: 1 bit each
    4.0
    """

    def __init__(self, variances: np.ndarray):
        self.variances = np.sort(np.asarray(variances, dtype=np.float64).ravel())
        self.prefix = np.concatenate(([0.0], np.cumsum(self.variances)))

    @property
    def count(self) -> int:
        return self.variances.size

    def water_level(self, distortion: float) -> float:
        """theta with sum min(theta, v_i) = distortion (inf when distortion >= sum v_i)."""
        if distortion >= self.prefix[-1]:
            return np.inf
        if distortion <= 0:
            return 0.0
        below = np.arange(self.count)  # theta on piece k: the k smallest variances lie under it
        thetas = (distortion - self.prefix[:-1]) / (self.count - below)
        lower = np.concatenate(([0.0], self.variances[:-1]))
        piece = int(np.flatnonzero((thetas >= lower) & (thetas <= self.variances))[0])
        return float(thetas[piece])

    def bits(self, distortion: float) -> float:
        """Least total bits for total distortion ``distortion``."""
        theta = self.water_level(distortion)
        if theta == 0.0:
            return np.inf
        above = self.variances[self.variances > theta]
        return float(0.5 * np.sum(np.log2(above / theta)))


def posterior_sources(posterior: Posterior, tensors: list[str] | None = None) -> GaussianRateDistortion:
    """Sources v_i = s0^2 / (2 sigma_i^2), s0 the paper's empirical prior scale of each tensor."""
    variances = []
    for name in tensors or list(posterior.tensors):
        tensor = posterior.tensors[name]
        scale = GaussianPrior.empirical(tensor.mean).scale
        variances.append(scale**2 / (2.0 * np.square(tensor.std.astype(np.float64))).ravel())
    return GaussianRateDistortion(np.concatenate(variances))
