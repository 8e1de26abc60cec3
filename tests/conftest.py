"""Shared fixtures: small seeded posteriors, and a clean Pyro parameter store for every test."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from bayescompress.posterior import Posterior, TensorPosterior, Vocabulary

# tiny fits: compiling the pair step would cost more than it saves (test_fused.py compiles it once);
# set before any fit, so the CLI and torchrun processes the tests start inherit it
os.environ.setdefault("BAYESCOMPRESS_COMPILE", "0")


@pytest.fixture(autouse=True)
def _clear_pyro_param_store():
    if "pyro" in sys.modules:
        sys.modules["pyro"].clear_param_store()
    yield


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module of tiny fits: thread hand-offs cost more than the arithmetic."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_posterior(rows: int = 200, dim: int = 8, seed: int = 0, vocab: bool = False,
                   dtype=np.float32) -> Posterior:
    """Means N(0, 0.3^2), stds log-uniform over two orders of magnitude below that."""
    rng = np.random.default_rng(seed)
    means = (0.3 * rng.standard_normal((rows, dim))).astype(dtype)
    stds = (0.3 * np.exp(rng.uniform(np.log(0.01), 0.0, (rows, dim)))).astype(dtype)
    bias_means = rng.standard_normal(dim).astype(dtype)
    tensors = {"U": TensorPosterior(means, stds)}
    if vocab:
        words = [f"w{i}" for i in range(rows)]
        counts = np.sort(rng.integers(1, 1000, rows))[::-1].astype(np.int64)
        return Posterior(tensors | {"V": TensorPosterior(means[::-1].copy(), stds[::-1].copy())},
                         kind="embedding", vocab=Vocabulary(words, counts))
    tensors["b"] = TensorPosterior(bias_means, np.full(dim, 0.05, dtype=dtype))
    return Posterior(tensors, kind="generic", metadata={"seed": seed})


@pytest.fixture
def posterior() -> Posterior:
    return make_posterior()


@pytest.fixture
def posterior_file(tmp_path, posterior):
    path = tmp_path / "posterior.h5"
    posterior.save(path)
    return path
