"""A heavy-tailed prior for VBQ: the Student-t with 2 degrees of freedom, located and scaled.

Its quantile and CDF have closed forms that need only +, -, *, / and sqrt, all correctly
rounded in IEEE-754, so its code points are the same numbers on every machine.  Its code points
reach about 6.7e7 scales at rate 53 (the Gaussian's stop at 8.2), so no weight is clipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

T2_QUANTILE = "student-t2-sqrt"  # recorded per tensor as the family's quantile function
_MEDIAN_ABS_T2 = 0.816496580927726  # median of |T| for T ~ t2: q(3/4) = sqrt(2/3)
_FIT_SAMPLE = 1 << 17  # means used to fit the prior, evenly strided: the fit is encoder-side only
_FIT_STEPS = 60


def lower_t2_quantile(p: np.ndarray) -> np.ndarray:
    """Quantile of the standard t2 at probabilities in (0, 1/2]: (2p - 1) / sqrt(2p(1 - p)).

    >>> lower_t2_quantile(np.array([0.5, 0.25, 2.0**-53])).round(4).tolist()
    [0.0, -0.8165, -67108864.0]
    """
    p = np.asarray(p, dtype=np.float64)
    return (2.0 * p - 1.0) / np.sqrt(2.0 * p * (1.0 - p))


def lower_t2_cdf(distance: np.ndarray) -> np.ndarray:
    """P(T <= -a) for a >= 0, computed from the near side without cancellation.

    With s = sqrt(2 + a^2) it is 1 / (s (s + a)) = 1 / (2 + a^2 + a s); beyond a = 1e150 the
    square would overflow, and 1 / (2 a^2) is exact to the last bit there.

    >>> lower_t2_cdf(np.array([0.0, 1.0, 1e200])).tolist()
    [0.5, 0.21132486540518713, 0.0]
    """
    a = np.asarray(distance, dtype=np.float64)
    far = a > 1e150
    near = np.where(far, 0.0, a)
    s = np.sqrt(2.0 + near * near)
    mass = 1.0 / ((2.0 + near * near) + near * s)
    if np.any(far):
        with np.errstate(under="ignore"):
            mass = np.where(far, (0.5 / np.where(far, a, 1.0)) / np.where(far, a, 1.0), mass)
    return mass


@dataclass(frozen=True)
class StudentT2Prior:
    """loc + scale x T with T ~ Student-t(2): a prior whose code points reach every weight."""

    loc: float
    scale: float
    quantile = T2_QUANTILE
    family = "t2"

    @classmethod
    def empirical(cls, means: np.ndarray) -> StudentT2Prior:
        """Maximum-likelihood loc and scale of the means (EM for the t with 2 degrees of freedom).

        The fit starts at the median and the scale that matches the median absolute deviation,
        and its scale never drops below 1e-2 x the means' RMS (a tensor that is mostly one value
        would otherwise collapse it).  A constant tensor gets loc = that value and scale 1.

        >>> StudentT2Prior.empirical(np.array([-1.0, 0.0, 1.0]))
        StudentT2Prior(loc=0.0, scale=0.7071067811865476)
        """
        values = np.asarray(means, dtype=np.float64).ravel()
        if values.size > _FIT_SAMPLE:
            values = values[:: values.size // _FIT_SAMPLE]
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return cls(0.0, 1.0)
        peak = float(np.max(np.abs(finite)))
        if peak == 0.0:
            return cls(0.0, 1.0)
        unit = finite / peak  # fit on values of at most 1 in size: no square overflows or underflows
        loc = float(np.median(unit))
        spread = float(np.median(np.abs(unit - loc))) / _MEDIAN_ABS_T2
        floor = 1e-2 * math.sqrt(float(np.mean(unit * unit)))
        if floor == 0.0 or np.all(unit == unit[0]):
            return cls(float(finite[0]) + 0.0, 1.0)
        scale = max(spread, floor)
        for _ in range(_FIT_STEPS):
            z = (unit - loc) / scale
            weights = 3.0 / (2.0 + z * z)
            loc = float(np.dot(weights, unit) / weights.sum())
            centred = unit - loc
            scale = max(math.sqrt(float(np.dot(weights, centred * centred)) / unit.size), floor)
        return cls(loc * peak + 0.0, scale * peak)

    def near_mass(self, distance: np.ndarray) -> np.ndarray:
        """Prior mass beyond ``distance`` standardized units on one side."""
        return lower_t2_cdf(distance)
