"""import pyro: a saved Pyro param store of an AutoNormal guide becomes a posterior file, safely."""

from __future__ import annotations

import json
import pickle
from operator import attrgetter

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.distributions import constraints
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoNormal

import bayescompress
from bayescompress.errors import BayesCompressError
from bayescompress.fit.bnn import make_bayesian
from bayescompress.fit.pyro_store import import_pyro, read_param_store
from bayescompress.networks.model_spec import mlp_spec
from bayescompress.packing import pack, unpack
from bayescompress.posterior import Posterior

from .test_cli import assert_one_line_error, run


class Regressor(torch.nn.Module):
    """An ordinary module with nested names, as a user would write it."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh())
        self.head = torch.nn.Linear(4, 1)

    def forward(self, features):
        return self.head(self.body(features)).squeeze(-1)


def train_guide(network, steps: int = 40, noise_param: bool = False):
    """A few SVI steps of an AutoNormal guide on generated regression data."""
    pyro.set_rng_seed(0)
    features = torch.randn(64, 3)
    targets = features @ torch.tensor([1.0, -2.0, 0.5]) + 0.3

    def model(features, targets=None):
        mean = network(features).reshape(-1)
        noise = 0.1
        if noise_param:
            noise = pyro.param("noise", torch.tensor(0.5), constraint=constraints.positive)
        with pyro.plate("data", features.shape[0]):
            pyro.sample("obs", dist.Normal(mean, noise), obs=targets)

    guide = AutoNormal(model, init_scale=0.05)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.05}), Trace_ELBO())
    for _ in range(steps):
        svi.step(features, targets)
    return guide


def test_imported_posterior_holds_the_guides_locs_and_constrained_scales(tmp_path):
    guide = train_guide(make_bayesian(Regressor(), prior_std=1.0))
    pyro.get_param_store().save(tmp_path / "params.pt")
    posterior = import_pyro(tmp_path / "params.pt")
    assert list(posterior.tensors) == ["body.0.weight", "body.0.bias", "head.weight", "head.bias"]
    for name, tensor in posterior.tensors.items():
        loc = attrgetter(name)(guide.locs).detach().numpy()
        scale = attrgetter(name)(guide.scales).detach().numpy()  # softplus of the stored value
        assert tensor.mean.tobytes() == loc.tobytes()
        assert tensor.std.dtype == np.float32
        np.testing.assert_allclose(tensor.std, scale, rtol=1e-6)
    # the store keeps scales unconstrained: reading them raw would be wrong
    raw = pyro.get_param_store()._params["AutoNormal.scales.head.weight"].detach().numpy()
    assert not np.allclose(raw, posterior.tensors["head.weight"].std)
    assert posterior.kind == "generic" and posterior.metadata["guide_prefix"] == "AutoNormal."


def test_pyros_saved_store_needs_our_loader_because_plain_weights_only_refuses_it(tmp_path):
    train_guide(make_bayesian(torch.nn.Linear(3, 1), prior_std=1.0), steps=2)
    pyro.get_param_store().save(tmp_path / "params.pt")
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "params.pt", weights_only=True)
    store = read_param_store(tmp_path / "params.pt")
    assert store.constraints["AutoNormal.scales.weight"] == "pyro.distributions.constraints._SoftplusPositive"
    assert store.constraints["AutoNormal.locs.weight"] == "torch.distributions.constraints._Real"


def test_params_outside_the_guide_are_left_out_and_listed(tmp_path):
    train_guide(make_bayesian(torch.nn.Linear(3, 1), prior_std=1.0), steps=2, noise_param=True)
    pyro.get_param_store().save(tmp_path / "params.pt")
    result = run("import", "pyro", tmp_path / "params.pt", "-o", tmp_path / "p.h5")
    assert result.returncode == 0, result.stderr
    assert "left out non-guide params: noise" in result.stdout
    posterior = Posterior.load(tmp_path / "p.h5")
    assert sorted(posterior.tensors) == ["bias", "weight"]
    assert posterior.metadata["pyro_params_left_out"] == ["noise"]


def test_imported_network_with_spec_packs_and_loads_as_a_module(tmp_path):
    spec = mlp_spec([3, 4, 1], task="regression", noise_std=0.1, input_mean=[0.0] * 3,
                    input_std=[1.0] * 3, target_mean=0.0, target_std=1.0)
    network = make_bayesian(bayescompress.networks.mlp.MLP(spec), prior_std=1.0)
    train_guide(network)
    pyro.get_param_store().save(tmp_path / "params.pt")
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    result = run("import", "pyro", tmp_path / "params.pt", "-o", tmp_path / "p.h5",
                 "--spec", tmp_path / "spec.json")
    assert result.returncode == 0, result.stderr
    assert Posterior.load(tmp_path / "p.h5").kind == "network"
    pack(tmp_path / "p.h5", tmp_path / "a.bcz", lam=0.01)
    module = bayescompress.load(tmp_path / "a.bcz")
    values = unpack(tmp_path / "a.bcz").tensors
    for name, param in module.named_parameters():
        assert param.detach().numpy().tobytes() == values[name].tobytes()
    features = torch.randn(20, 3)
    fitted = features @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    assert torch.sqrt(torch.mean((module(features).detach() - fitted) ** 2)) < fitted.std()


def test_a_spec_that_does_not_fit_the_sites_is_one_line(tmp_path):
    train_guide(make_bayesian(Regressor(), prior_std=1.0), steps=2)
    pyro.get_param_store().save(tmp_path / "params.pt")
    spec = mlp_spec([3, 4, 1], task="regression", noise_std=0.1, input_mean=[0.0] * 3,
                    input_std=[1.0] * 3, target_mean=0.0, target_std=1.0)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    assert_one_line_error(run("import", "pyro", tmp_path / "params.pt", "-o", tmp_path / "p.h5",
                              "--spec", tmp_path / "spec.json"), "needs tensor 'layers.0.weight'")
    (tmp_path / "other.json").write_text(json.dumps({"format": "keras"}))
    assert_one_line_error(run("import", "pyro", tmp_path / "params.pt", "-o", tmp_path / "p.h5",
                              "--spec", tmp_path / "other.json"), "has format 'keras'")
    assert not (tmp_path / "p.h5").exists()


def test_exp_constrained_scales_of_older_guides_are_converted_with_exp(tmp_path):
    loc, raw_scale = torch.tensor([0.5, -1.0]), torch.tensor([-2.0, 0.3])
    state = {"params": {"guide.locs.w": loc, "guide.scales.w": raw_scale},
             "constraints": {"guide.locs.w": constraints.real, "guide.scales.w": constraints.positive}}
    torch.save(state, tmp_path / "params.pt")
    posterior = import_pyro(tmp_path / "params.pt")
    np.testing.assert_allclose(posterior.tensors["w"].std, np.exp(raw_scale.numpy()), rtol=1e-6)


def test_a_store_with_several_guides_needs_a_choice(tmp_path):
    params = {f"{g}.{part}.w": torch.ones(2) for g in ("g1", "g2") for part in ("locs", "scales")}
    kinds = {name: constraints.real if ".locs." in name else constraints.softplus_positive for name in params}
    torch.save({"params": params, "constraints": kinds}, tmp_path / "params.pt")
    assert_one_line_error(run("import", "pyro", tmp_path / "params.pt", "-o", tmp_path / "p.h5"),
                          "holds several guides ('g1.', 'g2.'); pick one with --guide")
    chosen = run("import", "pyro", tmp_path / "params.pt", "-o", tmp_path / "p.h5", "--guide", "g2")
    assert chosen.returncode == 0, chosen.stderr
    assert Posterior.load(tmp_path / "p.h5").metadata["guide_prefix"] == "g2."


def test_pickled_code_in_a_param_store_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    state = {"params": {"locs.w": torch.zeros(2), "scales.w": torch.zeros(2)},
             "constraints": {"locs.w": Payload(), "scales.w": constraints.positive}}
    torch.save(state, tmp_path / "params.pt")
    assert_one_line_error(run("import", "pyro", tmp_path / "params.pt", "-o", tmp_path / "p.h5"),
                          "refusing to load it")
    assert not marker.exists() and not (tmp_path / "p.h5").exists()


def test_files_that_are_not_param_stores_are_one_line(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "flat.pt")
    assert_one_line_error(run("import", "pyro", tmp_path / "flat.pt", "-o", tmp_path / "p.h5"),
                          "not a Pyro param store")
    (tmp_path / "text.pt").write_text("hello")
    assert_one_line_error(run("import", "pyro", tmp_path / "text.pt", "-o", tmp_path / "p.h5"),
                          "not a PyTorch zip file")
    torch.save({"params": {"locs.w": torch.zeros(2)}, "constraints": {"locs.w": constraints.real}},
               tmp_path / "nolocs.pt")
    with pytest.raises(BayesCompressError, match="has locs.w but no scales.w"):
        import_pyro(tmp_path / "nolocs.pt")


class Classifier(torch.nn.Module):
    """A user's own module names: fc1 and out, not the spec's layers.0 and layers.1."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(3, 4)
        self.out = torch.nn.Linear(4, 1)

    def forward(self, features):
        return self.out(torch.tanh(self.fc1(features))).squeeze(-1)


def small_spec():
    return mlp_spec([3, 4, 1], task="regression", activation="tanh", noise_std=0.1, input_mean=[0.0] * 3,
                    input_std=[1.0] * 3, target_mean=0.0, target_std=1.0)


def test_import_maps_the_users_module_names_onto_the_spec_layers(tmp_path):
    with pyro.get_param_store().scope():
        guide = train_guide(make_bayesian(Classifier(), prior_std=1.0))
        pyro.get_param_store().save(tmp_path / "store.pt")
        expected = guide.median()["out.weight"].detach().numpy()
    posterior = import_pyro(tmp_path / "store.pt", spec=small_spec(), layer_names=["fc1", "out"])
    assert set(posterior.tensors) == {"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"}
    assert np.array_equal(posterior.tensors["layers.1.weight"].mean, expected)
    with pytest.raises(BayesCompressError, match="belongs to none of the layers"):
        import_pyro(tmp_path / "store.pt", spec=small_spec(), layer_names=["fc1", "head"])


def test_import_cuts_an_autodiagonalnormal_guide_into_the_spec_tensors(tmp_path):
    from pyro.infer.autoguide import AutoDiagonalNormal

    network = make_bayesian(Classifier(), prior_std=1.0)
    features = torch.randn(32, 3)

    def model(features, targets=None):
        mean = network(features)
        with pyro.plate("data", features.shape[0]):
            pyro.sample("obs", dist.Normal(mean, 0.1), obs=targets)

    with pyro.get_param_store().scope():
        pyro.set_rng_seed(0)
        guide = AutoDiagonalNormal(model)
        svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.05}), Trace_ELBO())
        for _ in range(5):
            svi.step(features, features.sum(1))
        pyro.get_param_store().save(tmp_path / "store.pt")
        medians = {name: value.detach().numpy() for name, value in guide.median().items()}
    with pytest.raises(BayesCompressError, match="give --spec"):
        import_pyro(tmp_path / "store.pt")
    posterior = import_pyro(tmp_path / "store.pt", spec=small_spec())
    for index, user in enumerate(["fc1", "out"]):
        for part in ("weight", "bias"):
            assert np.allclose(posterior.tensors[f"layers.{index}.{part}"].mean, medians[f"{user}.{part}"])
    assert all(np.all(t.std > 0) for t in posterior.tensors.values())
