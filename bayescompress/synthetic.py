"""Generated posteriors for benchmarks and examples: seeded, with stds spread over two decades."""

from __future__ import annotations

import numpy as np

from .posterior import Posterior, TensorPosterior


def generated_posterior(rows: int = 20000, dim: int = 50, seed: int = 0) -> Posterior:
    """Means N(0, 0.3^2); stds log-uniform over [0.003, 0.3], i.e. two orders of magnitude.

    >>> generated_posterior(rows=4, dim=3).tensors["W"].shape
    (4, 3)
    """
    rng = np.random.default_rng(seed)
    means = (0.3 * rng.standard_normal((rows, dim))).astype(np.float32)
    stds = (0.3 * np.exp(rng.uniform(np.log(0.01), 0.0, (rows, dim)))).astype(np.float32)
    return Posterior({"W": TensorPosterior(means, stds)}, kind="generic",
                     metadata={"source": "generated", "seed": seed})
