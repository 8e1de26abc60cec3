"""SVI of the network fit against a posterior known in closed form: Bayesian linear regression."""

from __future__ import annotations

import numpy as np
import pyro
import pytest
import torch
from pyro.infer import SVI, TraceMeanField_ELBO
from pyro.infer.autoguide import AutoNormal

from bayescompress.fit.bnn import kl_weighted_guide, likelihood_model, make_bayesian
from bayescompress.fit.pyro_store import autonormal_posterior, param_store_from_state
from bayescompress.networks.mlp import MLP
from bayescompress.networks.model_spec import mlp_spec

ROWS, NOISE, PRIOR_STD = 40, 0.5, 0.15
STEPS, AVERAGED = 1200, 600


def correlated_regression_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three features, the first two correlated (0.8), and targets from a known line plus noise."""
    rng = np.random.default_rng(seed)
    features = rng.multivariate_normal(np.zeros(3), [[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]], ROWS)
    targets = features @ np.array([0.8, -0.5, 0.3]) + 0.2 + NOISE * rng.standard_normal(ROWS)
    return features, targets


def mean_field_optimum(features: np.ndarray, targets: np.ndarray,
                       kl_weight: float = 1.0) -> tuple[np.ndarray, ...]:
    """Exact posterior mean, mean-field stds and exact marginal stds of (weights, bias); a KL weight
    beta makes it the posterior of the likelihood raised to 1 / beta."""
    design = np.hstack([features, np.ones((len(features), 1))])
    precision = design.T @ design / (kl_weight * NOISE**2) + np.eye(design.shape[1]) / PRIOR_STD**2
    mean = np.linalg.solve(precision, design.T @ targets / (kl_weight * NOISE**2))
    return mean, 1.0 / np.sqrt(np.diag(precision)), np.sqrt(np.diag(np.linalg.inv(precision)))


@pytest.mark.parametrize("kl_weight", [1.0, 0.1])
def test_svi_of_a_network_without_hidden_layer_finds_the_mean_field_optimum_of_linear_regression(kl_weight):
    """A network with no hidden layer, a Gaussian likelihood of known noise sigma and a Normal(0, tau^2)
    prior on every weight is Bayesian linear regression: the posterior is exactly Gaussian,
    N(mu, A^-1) with precision A = X'X / sigma^2 + I / tau^2 (X with a column of ones for the bias)
    and mu = A^-1 X'y / sigma^2.  The fit's guide (AutoNormal) is mean-field, and for a Gaussian
    posterior the ELBO is log p(y) - KL(q || posterior), where for q = prod N(m_i, s_i^2)
    KL = 1/2 [sum A_ii s_i^2 + (m - mu)' A (m - mu) - sum log s_i^2] + const; so the best q has
    means m = mu and stds s_i = 1 / sqrt(A_ii), not the marginal stds sqrt((A^-1)_ii), which the
    correlated features make differ.  SVI's estimates are averaged over its last steps (the
    gradient is noisy) and read back with the reader that fit uses.  With a KL weight beta the loss
    E_q[-log p(y | w)] + beta KL(q || prior) is beta times the ELBO of the likelihood to the power
    1 / beta, so the optimum is the same formula with X'X / (beta sigma^2).
    """
    features, targets = correlated_regression_data()
    mean, mean_field_std, marginal_std = mean_field_optimum(features, targets, kl_weight)
    assert np.max(marginal_std / mean_field_std) > 1.3  # the test can tell the two apart
    spec = mlp_spec([3, 1], task="regression", noise_std=NOISE, input_mean=[0.0] * 3, input_std=[1.0] * 3,
                    target_mean=0.0, target_std=1.0, prior_std=PRIOR_STD)
    pyro.set_rng_seed(0)
    network = make_bayesian(MLP(spec).double(), PRIOR_STD)
    model = likelihood_model(network, "regression", ROWS, noise_std=NOISE, kl_weight=kl_weight)
    inputs, outputs = torch.as_tensor(features), torch.as_tensor(targets)
    with pyro.get_param_store().scope():
        guide = AutoNormal(model, init_scale=0.1)
        decay = (0.002 / 0.05) ** (1 / STEPS)
        optimizer = pyro.optim.ClippedAdam({"lr": 0.05, "lrd": decay})
        svi = SVI(model, kl_weighted_guide(guide, kl_weight), optimizer, TraceMeanField_ELBO())
        averages: dict[str, torch.Tensor] = {}
        for step in range(STEPS):
            svi.step(inputs, outputs)
            if step >= STEPS - AVERAGED:
                for name, value in pyro.get_param_store().items():
                    averages[name] = averages.get(name, 0.0) + value.detach() / AVERAGED
        for name, value in averages.items():
            pyro.get_param_store()[name] = value
        store = param_store_from_state(pyro.get_param_store().get_state(), "svi")
    posterior, _ = autonormal_posterior(store, "svi")
    weight, bias = posterior.tensors["layers.0.weight"], posterior.tensors["layers.0.bias"]
    svi_mean = np.concatenate([weight.mean.ravel(), bias.mean.ravel()])
    svi_std = np.concatenate([weight.std.ravel(), bias.std.ravel()])
    np.testing.assert_array_less(np.abs(svi_mean - mean) / mean_field_std, 0.15)
    np.testing.assert_allclose(svi_std / mean_field_std, 1.0, atol=0.1)
