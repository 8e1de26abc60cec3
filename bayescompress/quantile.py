"""The standard-normal quantile from IEEE-754 basic operations only, identical on every machine.

Wichura's AS241 (PPND16, relative error about 1e-16) with its one logarithm computed here too:
only +, -, *, / (correctly rounded, in a fixed order) and the exact frexp, and no library's
log, exp or ndtri, so a code point's value cannot change with numpy, scipy, libm or processor.
"""

from __future__ import annotations

import numpy as np

NAME = "as241-basic-ops"  # recorded in VBQ archives' config as "quantile"

# Wichura (1988), Algorithm AS241 PPND16: numerator and denominator coefficients, lowest first
_A = (3.3871328727963666080e0, 1.3314166789178437745e2, 1.9715909503065514427e3,
      1.3731693765509461125e4, 4.5921953931549871457e4, 6.7265770927008700853e4,
      3.3430575583588128105e4, 2.5090809287301226727e3)
_B = (1.0, 4.2313330701600911252e1, 6.8718700749205790830e2, 5.3941960214247511077e3,
      2.1213794301586595867e4, 3.9307895800092710610e4, 2.8729085735721942674e4,
      5.2264952788528545610e3)
_C = (1.42343711074968357734e0, 4.63033784615654529590e0, 5.76949722146069140550e0,
      3.64784832476320460504e0, 1.27045825245236838258e0, 2.41780725177450611770e-1,
      2.27238449892691845833e-2, 7.74545014278341407640e-4)
_D = (1.0, 2.05319162663775882187e0, 1.67638483018380384940e0, 6.89767334985100004550e-1,
      1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4,
      1.05075007164441684324e-9)
_E = (6.65790464350110377720e0, 5.46378491116411436990e0, 1.78482653991729133580e0,
      2.96560571828504891230e-1, 2.65321895265761230930e-2, 1.24266094738807843860e-3,
      2.71155556874348757815e-5, 2.01033439929228813265e-7)
_F = (1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2,
      7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7,
      2.04426310338993978564e-15)
# ln 2 split as in fdlibm: the high part has 32 significant bits, so e * _LN2_HI is exact
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_SQRT_HALF = 0.70710678118654752440


def _horner(coefficients: tuple[float, ...], x: np.ndarray) -> np.ndarray:
    result = np.full(x.shape, coefficients[-1])
    for coefficient in coefficients[-2::-1]:
        result = result * x + coefficient
    return result


def basic_log(x: np.ndarray) -> np.ndarray:
    """Natural log of positive finite floats: exact frexp, then log f = 2 atanh((f-1)/(f+1)).

    With f in [sqrt(1/2), sqrt(2)) the series' argument is below 0.172, so twelve terms reach
    the last bit; the result is within about 1 ulp of the true log.

    >>> float(basic_log(np.array([np.e]))[0]), float(basic_log(np.array([0.5]))[0])
    (1.0, -0.6931471805599453)
    """
    fraction, exponent = np.frexp(np.asarray(x, dtype=np.float64))
    small = fraction < _SQRT_HALF
    fraction = np.where(small, fraction * 2.0, fraction)  # exact: a power-of-two scaling
    exponent = (exponent - small).astype(np.float64)
    s = (fraction - 1.0) / (fraction + 1.0)
    z = s * s
    series = np.full(z.shape, 1.0 / 23.0)
    for k in range(21, 0, -2):
        series = series * z + 1.0 / k
    return exponent * _LN2_HI + (exponent * _LN2_LO + 2.0 * s * series)


def lower_normal_quantile(p: np.ndarray) -> np.ndarray:
    """Standard-normal quantile of probabilities in (0, 1/2] (the lower half; mirror the rest).

    >>> lower_normal_quantile(np.array([0.5, 0.25, 2.0**-53])).round(6).tolist()
    [0.0, -0.67449, -8.209536]
    """
    p = np.asarray(p, dtype=np.float64)
    q = p - 0.5
    central = q >= -0.425
    values = np.empty(p.shape)
    qc = q[central]
    r = 0.180625 - qc * qc
    values[central] = qc * _horner(_A, r) / _horner(_B, r)
    tail = ~central
    r = np.sqrt(-basic_log(p[tail]))
    near = r <= 5.0
    values[tail] = np.where(near, _horner(_C, r - 1.6) / _horner(_D, r - 1.6),
                            _horner(_E, r - 5.0) / _horner(_F, r - 5.0)) * -1.0
    return values
