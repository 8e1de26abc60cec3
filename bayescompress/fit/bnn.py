"""Fit a Bayesian MLP with Pyro: the ordinary MLP gets a Normal prior on every weight and bias
(PyroModule + PyroSample), an AutoNormal guide learns a mean-field posterior by SVI, and the guide's
``locs.SITE`` / ``scales.SITE`` become the posterior file's tensors under the site names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..errors import BayesCompressError
from ..files import check_output_path
from ..networks.metrics import network_metrics
from ..networks.mlp import MLP, network_from_arrays
from ..networks.model_spec import ACTIVATIONS, TASKS, mlp_spec
from ..networks.tabular import (
    BUILTIN_DATASETS,
    Table,
    class_indices,
    class_labels,
    load_table,
    regression_targets,
    split_rows,
)
from ..posterior import Posterior
from .pyro_store import autonormal_posterior, param_store_from_state

# Guide scales start well below the weights' spread (about 1/sqrt(fan-in)), so SVI first finds
# useful means and then widens the scales, instead of starting from noise that drowns the signal.
INIT_SCALE = 1e-3
NOISE_PARAM = "noise_std"


@dataclass
class FitResult:
    """The posterior written, where, the final ELBO per training row, and test metrics of its means."""

    path: Path
    posterior: Posterior
    final_elbo_per_row: float
    test_metrics: dict


def make_bayesian(network: nn.Module, prior_std: float) -> nn.Module:
    """Turn an ordinary module into a Bayesian one in place: each parameter becomes a Pyro sample
    site with prior Normal(0, prior_std), named by its path (``layers.0.weight``).

    >>> net = make_bayesian(nn.Sequential(nn.Linear(2, 3)), prior_std=1.0)
    >>> import pyro.poutine
    >>> sorted(pyro.poutine.trace(net).get_trace(torch.zeros(1, 2)).stochastic_nodes)
    ['0.bias', '0.weight']
    """
    import pyro.distributions as dist
    from pyro.nn.module import PyroSample, to_pyro_module_

    to_pyro_module_(network)
    for module in network.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            prior = dist.Normal(torch.zeros_like(param.detach()), prior_std).to_event(param.dim())
            setattr(module, name, PyroSample(prior))
    return network


def likelihood_model(network: MLP, task: str, n_rows: int, noise_std: float | None = None,
                     kl_weight: float = 1.0):
    """The Pyro model: the Bayesian network's outputs feed a categorical or Gaussian likelihood.

    A minibatch stands for all ``n_rows`` training rows (the plate scales its log-likelihood).
    Regression learns the noise std as a point estimate, in units of the standardized target,
    unless ``noise_std`` gives it (a known-noise likelihood).  ``kl_weight`` scales the prior's
    log-density; the guide must be scaled alike (``kl_weighted_guide``) for the ELBO's KL to be.
    """
    import pyro
    import pyro.distributions as dist
    from pyro import poutine
    from torch.distributions import constraints

    def model(features: torch.Tensor, targets: torch.Tensor | None = None):
        with poutine.scale(scale=kl_weight):
            outputs = network(features)
        if task == "regression":
            noise = noise_std if noise_std is not None else pyro.param(
                NOISE_PARAM, torch.tensor(1.0, device=features.device), constraint=constraints.positive)
            observations = dist.Normal(outputs, noise * network.target_std)
        else:
            observations = dist.Categorical(logits=outputs)
        with pyro.plate("data", n_rows, subsample=torch.arange(features.shape[0], device=features.device)):
            return pyro.sample("obs", observations, obs=targets)

    return model


def kl_weighted_guide(guide, kl_weight: float):
    """The guide with its log-density scaled by ``kl_weight``: with the model's prior scaled alike
    the loss is E_q[-log p(data | w)] + kl_weight x KL(q || prior), a tempered posterior below 1."""
    from pyro import poutine

    return guide if kl_weight == 1.0 else poutine.scale(guide, scale=kl_weight)


def resolve_device(name: str) -> torch.device:
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise BayesCompressError(f"--device {name}: no CUDA device is available to this torch "
                                     f"({torch.__version__})")
        return torch.device(name)
    raise BayesCompressError(f"--device {name}: use cpu or cuda")


def prepare_targets(table: Table, task: str) -> tuple[np.ndarray, list | None]:
    """Class indices and class labels (classification), or float targets (regression)."""
    if task == "classification":
        classes = class_labels(table.targets)
        if len(classes) < 2:
            raise BayesCompressError(f"{table.source}: classification needs at least two classes")
        if table.targets.dtype.kind == "f" and not isinstance(classes[0], int):
            raise BayesCompressError(f"{table.source}: the targets are not class labels; "
                                     "use --task regression")
        return class_indices(table.targets, classes, table.source), classes
    return regression_targets(table.targets, table.source), None


def fit_bnn(
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    hidden: tuple[int, ...] = (256, 256),
    steps: int = 2000,
    task: str = "classification",
    target: str | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    lr: float = 0.01,
    batch: int = 256,
    prior_std: float = 0.3,
    activation: str = "relu",
    device: str = "cpu",
    kl_weight: float = 1.0,
    overwrite: bool = False,
    show_progress: bool | None = None,
) -> FitResult:
    """Fit a Bayesian MLP on ``data`` and write its posterior (kind "network", with the model spec).

    ``kl_weight`` 1 is the ELBO of all training rows (the exact Bayesian objective); below 1 it
    weights the KL term less, a tempered posterior whose stds shrink below the prior's.
    """
    _check_settings(task, activation, hidden, steps, lr, batch, prior_std, kl_weight)
    inputs = () if str(data) in BUILTIN_DATASETS else (data,)
    check_output_path(out, overwrite=overwrite, inputs=inputs)
    torch_device = resolve_device(device)
    table = load_table(data, target)
    targets, classes = prepare_targets(table, task)
    split = split_rows(table.n_rows, test_fraction, seed, table.source)
    train_features = table.features[split.train]
    input_mean = train_features.mean(axis=0)
    input_std = train_features.std(axis=0)
    input_std[input_std == 0] = 1.0  # a constant column carries no information; leave it unscaled
    target_mean = target_std = None
    if task == "regression":
        target_mean = float(targets[split.train].mean())
        target_std = float(targets[split.train].std()) or 1.0
    outputs = len(classes) if task == "classification" else 1
    spec = mlp_spec(
        [table.features.shape[1], *hidden, outputs], task=task, activation=activation, classes=classes,
        noise_std=1.0 if task == "regression" else None, input_mean=input_mean.tolist(),
        input_std=input_std.tolist(), target_mean=target_mean, target_std=target_std, prior_std=prior_std,
        data=_data_record(table, data, target, test_fraction, seed),
    )

    features = torch.as_tensor(train_features, dtype=torch.float32, device=torch_device)
    labels = torch.as_tensor(targets[split.train], device=torch_device)
    labels = labels.long() if task == "classification" else labels.float()
    posterior, loss = svi_posterior(spec, features, labels, steps=steps, lr=lr, batch=batch, seed=seed,
                                    kl_weight=kl_weight, show_progress=show_progress)
    posterior.save(out)
    means = {name: tensor.mean for name, tensor in posterior.tensors.items()}
    metrics = network_metrics(network_from_arrays(spec, means, "fit"), table, split.test, spec)
    return FitResult(Path(out), posterior, -loss / len(split.train), metrics)


def svi_posterior(spec: dict, features: torch.Tensor, targets: torch.Tensor, *, steps: int, lr: float = 0.01,
                  batch: int = 256, seed: int = 0, kl_weight: float = 1.0,
                  show_progress: bool | None = None) -> tuple[Posterior, float]:
    """The mean-field posterior of the MLP ``spec`` (prior std ``spec["prior"]["std"]``) given these
    training rows (raw features: the spec's normalization is part of the network), by SVI; and the
    final loss (negative ELBO)."""
    import pyro
    from pyro.infer import SVI, Trace_ELBO
    from pyro.infer.autoguide import AutoNormal
    from pyro.infer.autoguide.initialization import init_to_value
    from tqdm.auto import tqdm

    task, prior_std, rows_total = spec["task"], spec["prior"]["std"], features.shape[0]
    torch.manual_seed(seed)
    network = MLP(spec).to(features.device)
    # the guide starts at the ordinary module's own (PyTorch default) initialization
    initial = {name: param.detach().clone() for name, param in network.named_parameters()}
    make_bayesian(network, prior_std)
    model = likelihood_model(network, task, rows_total, kl_weight=kl_weight)
    batch = min(batch, rows_total) if batch > 0 else rows_total
    order = torch.Generator().manual_seed(seed)

    with pyro.get_param_store().scope():  # a fresh store; the caller's is restored afterwards
        guide = AutoNormal(model, init_loc_fn=init_to_value(values=initial), init_scale=INIT_SCALE)
        svi = SVI(model, kl_weighted_guide(guide, kl_weight), pyro.optim.Adam({"lr": lr}), Trace_ELBO())
        loss = float("nan")
        bar = tqdm(range(steps), desc="fit bnn", unit="step", leave=False,
                   disable=None if show_progress is None else not show_progress)
        with bar:
            for step in bar:
                rows = torch.randperm(rows_total, generator=order)[:batch].to(features.device)
                loss = svi.step(features[rows], targets[rows])
                if not np.isfinite(loss):
                    raise BayesCompressError(f"fit diverged at step {step} (ELBO is not finite); "
                                             "lower --lr")
                if step % 25 == 0 or step == steps - 1:
                    bar.set_postfix(elbo=f"{-loss:.4g}")
        store = param_store_from_state(pyro.get_param_store().get_state(), "fit")
        if task == "regression":
            spec["likelihood"]["noise_std"] = (float(pyro.param(NOISE_PARAM).item())
                                               * spec["normalization"]["target_std"])

    posterior, _ = autonormal_posterior(store, "fit")
    posterior.kind, posterior.model_spec = "network", spec
    posterior.metadata = {
        "fitted_by": f"bayescompress {__version__}",
        "fit": {"steps": steps, "lr": lr, "batch": batch, "seed": seed, "prior_std": prior_std,
                "guide": "AutoNormal", "init_scale": INIT_SCALE, "kl_weight": kl_weight,
                # with kl_weight < 1 the optimized value is the tempered objective, not the ELBO
                "elbo" if kl_weight == 1 else "tempered_objective": -loss,
                "device": str(features.device)},
    }
    return posterior, loss


def _check_settings(task, activation, hidden, steps, lr, batch, prior_std, kl_weight) -> None:
    if task not in TASKS:
        raise BayesCompressError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    if activation not in ACTIVATIONS:
        raise BayesCompressError(f"--activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    if any(int(width) < 1 for width in hidden):
        raise BayesCompressError("--hidden widths must be positive integers")
    if steps < 1:
        raise BayesCompressError(f"--steps must be at least 1, got {steps}")
    if not (np.isfinite(lr) and lr > 0):
        raise BayesCompressError(f"--lr must be a number > 0, got {lr}")
    if batch < 0:
        raise BayesCompressError(f"--batch must be >= 0 (0 = all training rows), got {batch}")
    if not (np.isfinite(prior_std) and prior_std > 0):
        raise BayesCompressError(f"--prior-std must be a number > 0, got {prior_std}")
    if not (np.isfinite(kl_weight) and 0 < kl_weight <= 1):
        raise BayesCompressError(f"--kl-weight must be in (0, 1], got {kl_weight}")


def _data_record(table: Table, data, target, test_fraction: float, seed: int) -> dict:
    """What evaluate needs to rebuild the same split: where the data is, and how it was split."""
    name = str(data)
    path = name if name in BUILTIN_DATASETS else str(Path(data).resolve())
    return {"path": path, "target": target, "test_fraction": test_fraction, "seed": seed,
            "rows": table.n_rows, "features": int(table.features.shape[1]), "checksum": table.checksum()}
