"""Importers of posteriors people already have: diagonal Laplace, IVON, bayesian-torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bayescompress import pack, unpack
from bayescompress.errors import BayesCompressError
from bayescompress.networks.importers import bayesian_torch_posterior, ivon_posterior
from bayescompress.networks.laplace import diagonal_ggn, evidence_precision, laplace_posterior
from bayescompress.networks.mlp import network_from_arrays
from bayescompress.networks.tabular import load_digits


@pytest.fixture(scope="module")
def digits():
    table = load_digits()
    features = torch.tensor(table.features / 16.0, dtype=torch.float32)
    return features, torch.tensor(table.targets.astype(np.int64))


def trained_network(features, labels, optimizer_of=None, steps=150):
    torch.manual_seed(0)
    network = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    optimizer = optimizer_of(network) if optimizer_of else torch.optim.Adam(network.parameters(), lr=0.01)
    for _ in range(steps):
        if optimizer_of:
            with optimizer.sampled_params(train=True):
                optimizer.zero_grad()
                nn.functional.cross_entropy(network(features), labels).backward()
        else:
            optimizer.zero_grad()
            nn.functional.cross_entropy(network(features), labels).backward()
        optimizer.step()
    return network, optimizer


def predictions_after_round_trip(posterior, tmp_path, features):
    pack(posterior, tmp_path / "a.bcz", lam=0.0, show_progress=False)
    unpacked = unpack(tmp_path / "a.bcz")
    network = network_from_arrays(unpacked.model_spec, unpacked.tensors)
    with torch.no_grad():
        return network(features).argmax(1)


def test_the_diagonal_ggn_is_the_diagonal_of_j_transpose_h_j_row_by_row():
    torch.manual_seed(1)
    network = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    rows = torch.randn(5, 3, dtype=torch.float64)
    expected = {name: torch.zeros_like(p) for name, p in network.named_parameters()}
    for row in rows:
        logits = network(row)
        p = torch.softmax(logits, 0).detach()
        hessian = torch.diag(p) - torch.outer(p, p)
        params = list(network.parameters())
        jac = [torch.autograd.grad(logits[c], params, retain_graph=True) for c in range(3)]
        for index, (name, param) in enumerate(network.named_parameters()):
            j = torch.stack([g[index].reshape(-1) for g in jac])  # classes x params
            expected[name] += torch.einsum("cp,cd,dp->p", j, hessian, j).view(param.shape)
    ggn = diagonal_ggn(network, rows, batch=2)
    for name in expected:
        assert torch.allclose(ggn[name], expected[name], rtol=1e-10, atol=1e-14)


def test_the_evidence_picks_mackays_precision_effective_parameters_over_squared_norm():
    means = np.random.default_rng(0).normal(scale=0.5, size=10000)
    assert evidence_precision(means, np.full(means.size, 1e12)) == pytest.approx(4.0, rel=0.1)
    half_determined = np.where(np.arange(means.size) % 2 == 0, 1e12, 0.0)
    assert evidence_precision(means, half_determined) == pytest.approx(2.0, rel=0.1)


def test_laplace_import_of_a_trained_network_packs_and_predicts_as_the_network_does(digits, tmp_path):
    features, labels = digits
    network, _ = trained_network(features, labels)
    posterior = laplace_posterior(network, features.numpy())
    assert posterior.kind == "network" and set(posterior.tensors) == {
        "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"}
    assert np.array_equal(posterior.tensors["layers.0.weight"].mean, network[0].weight.detach().numpy())
    stds = np.concatenate([t.std.ravel() for t in posterior.tensors.values()])
    prior_std = posterior.model_spec["prior"]["std"]
    assert np.all(stds <= prior_std * (1 + 1e-6))
    assert np.median(posterior.tensors["layers.1.weight"].std) < 0.5 * prior_std
    with torch.no_grad():
        assert torch.equal(predictions_after_round_trip(posterior, tmp_path, features),
                           network(features).argmax(1))


def test_ivon_import_takes_means_and_stds_from_the_optimizer(digits, tmp_path):
    ivon = pytest.importorskip("ivon")
    features, labels = digits
    network, optimizer = trained_network(
        features, labels, lambda net: ivon.IVON(net.parameters(), lr=0.1, ess=len(labels)), steps=100)
    posterior = ivon_posterior(network, optimizer)
    group = optimizer.param_groups[0]
    expected = 1.0 / torch.sqrt(group["ess"] * (group["hess"] + group["weight_decay"]))
    first_stds = posterior.tensors["layers.0.weight"].std.ravel()
    assert np.allclose(first_stds, expected[:64 * 16].numpy(), rtol=1e-6)
    assert np.array_equal(posterior.tensors["layers.1.bias"].mean, network[2].bias.detach().numpy())
    with torch.no_grad():
        assert torch.equal(predictions_after_round_trip(posterior, tmp_path, features),
                           network(features).argmax(1))


def test_bayesian_torch_import_takes_mu_and_softplus_of_rho():
    layers = pytest.importorskip("bayesian_torch.layers")
    torch.manual_seed(2)
    network = nn.Sequential(layers.LinearReparameterization(64, 8), nn.ReLU(),
                            layers.LinearReparameterization(8, 10))
    posterior = bayesian_torch_posterior(network)
    first = network[0]
    assert np.array_equal(posterior.tensors["layers.0.weight"].mean, first.mu_weight.detach().numpy())
    assert np.allclose(posterior.tensors["layers.0.weight"].std,
                       torch.log1p(torch.exp(first.rho_weight)).detach().numpy(), rtol=1e-6)
    assert [layer["activation"] for layer in posterior.model_spec["layers"]] == ["relu", "identity"]


@pytest.mark.parametrize("network,message", [
    (nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Linear(2, 3)), "Conv1d"),
    (nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1)), "Softmax"),
    (nn.Sequential(nn.Linear(4, 3), nn.ReLU()), "logits"),
    (nn.Sequential(nn.Linear(4, 3, bias=False)), "no bias"),
])
def test_an_unsupported_layer_is_one_clear_error(network, message):
    with pytest.raises(BayesCompressError, match=message):
        laplace_posterior(network, np.zeros((2, 4), dtype=np.float32))


def test_ivon_import_refuses_another_optimizer(digits):
    network = nn.Sequential(nn.Linear(64, 10))
    with pytest.raises(BayesCompressError, match="ivon.IVON"):
        ivon_posterior(network, torch.optim.Adam(network.parameters()))


def test_import_laplace_on_the_command_line_reads_an_npz_state_dict(digits, tmp_path):
    from bayescompress.posterior import Posterior

    from .test_cli import run

    features, labels = digits
    network, _ = trained_network(features * 16.0, labels, steps=60)
    np.savez(tmp_path / "net.npz", **{k: v.numpy() for k, v in network.state_dict().items()})
    result = run("import", "laplace", tmp_path / "net.npz", "--data", "digits", "-o", tmp_path / "p.h5")
    assert result.returncode == 0, result.stderr
    posterior = Posterior.load(tmp_path / "p.h5")
    assert np.array_equal(posterior.tensors["layers.1.weight"].mean, network[2].weight.detach().numpy())
    expected = laplace_posterior(network, features.numpy() * 16.0)
    assert np.allclose(posterior.tensors["layers.0.weight"].std, expected.tensors["layers.0.weight"].std)


def test_import_laplace_refuses_a_state_dict_that_is_not_linear_layers(tmp_path):
    from .test_cli import assert_one_line_error, run

    np.savez(tmp_path / "net.npz", **{"conv.weight": np.zeros((2, 1, 3, 3), np.float32),
                                      "conv.bias": np.zeros(2, np.float32)})
    result = run("import", "laplace", tmp_path / "net.npz", "--data", "digits", "-o", tmp_path / "p.h5")
    assert_one_line_error(result, "not a linear layer")
    assert not (tmp_path / "p.h5").exists()
