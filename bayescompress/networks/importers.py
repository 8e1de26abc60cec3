"""Posteriors people already have, as posterior files: a diagonal Laplace approximation of an
ordinary trained network, the IVON optimizer's posterior, bayesian-torch's mean/rho layers.

Each importer walks the user's module in registration order: every linear layer becomes
``layers.i`` of a model spec (so ``evaluate bnn`` and the state-dict export rebuild it), and
the activation module after it (ReLU, Tanh, Sigmoid, or none before the output) its activation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import BayesCompressError
from ..posterior import Posterior, TensorPosterior
from .model_spec import mlp_spec

_ACTIVATION_MODULES = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.Identity: "identity",
                       nn.Dropout: None, nn.Flatten: None}
_BAYESIAN_TORCH_LINEAR = "LinearReparameterization"


@dataclass
class Layer:
    """One linear layer of the user's module: its path, the module, and the activation after it."""

    path: str
    module: nn.Module
    activation: str = "identity"


def linear_layers(network: nn.Module, is_linear, what: str) -> list[Layer]:
    """The module's linear layers and activations in order; anything else is one clear error."""
    layers: list[Layer] = []
    for path, module in network.named_modules():
        if is_linear(module):
            layers.append(Layer(path, module))
            continue
        if any(True for _ in module.children()):
            continue  # a container: its leaves are visited on their own
        kind = next((name for cls, name in _ACTIVATION_MODULES.items() if type(module) is cls), False)
        if kind is False:
            raise BayesCompressError(f"{what}: layer {path or type(module).__name__!r} "
                                     f"({type(module).__name__}) is not supported; import takes "
                                     "linear layers with ReLU, Tanh or Sigmoid between them")
        if kind is not None and layers:
            layers[-1].activation = kind
    if not layers:
        raise BayesCompressError(f"{what}: the module has no linear layer")
    if layers[-1].activation != "identity":
        raise BayesCompressError(f"{what}: the output layer must give logits (no activation after it)")
    return layers


def network_spec(layers: list[Layer], sizes: list[int], *, task: str = "classification",
                 classes: list | None = None, input_mean=None, input_std=None, data: dict | None = None,
                 prior_std: float = 1.0) -> dict:
    """The model spec of the imported layers (inputs unscaled unless ``input_mean``/``input_std``)."""
    if task == "classification" and classes is None:
        classes = list(range(sizes[-1]))
    spec = mlp_spec(sizes, task=task, classes=classes, activation="relu",
                    noise_std=1.0 if task == "regression" else None,
                    input_mean=list(input_mean) if input_mean is not None else [0.0] * sizes[0],
                    input_std=list(input_std) if input_std is not None else [1.0] * sizes[0],
                    target_mean=0.0 if task == "regression" else None,
                    target_std=1.0 if task == "regression" else None, data=data, prior_std=prior_std)
    for entry, layer in zip(spec["layers"], layers, strict=True):
        entry["activation"] = layer.activation
    return spec


def _posterior(layers: list[Layer], arrays: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
               source: str, spec_options: dict, metadata: dict) -> Posterior:
    """Posterior named ``layers.i.weight``/``.bias`` from (weight mean, weight std, bias mean, bias std)."""
    tensors, sizes = {}, []
    for index, (weight, weight_std, bias, bias_std) in enumerate(arrays):
        if weight.ndim != 2 or bias.shape != (weight.shape[0],):
            raise BayesCompressError(f"{source}: layer {layers[index].path!r} needs a 2-d weight and a bias")
        if sizes and sizes[-1] != weight.shape[1]:
            raise BayesCompressError(f"{source}: layer {layers[index].path!r} takes {weight.shape[1]} inputs "
                                     f"but the layer before gives {sizes[-1]}")
        sizes = sizes or [int(weight.shape[1])]
        sizes.append(int(weight.shape[0]))
        for part, mean, std in (("weight", weight, weight_std), ("bias", bias, bias_std)):
            tensors[f"layers.{index}.{part}"] = TensorPosterior(np.float32(mean), np.float32(std))
    spec = network_spec(layers, sizes, **spec_options)
    posterior = Posterior(tensors, kind="network", model_spec=spec,
                          metadata={"imported_from": source} | metadata)
    posterior.validate(source)
    return posterior


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float64).numpy()


def _bias_of(layer: Layer, source: str) -> torch.Tensor:
    if getattr(layer.module, "bias", None) is None:
        raise BayesCompressError(f"{source}: layer {layer.path!r} has no bias; import takes layers with one")
    return layer.module.bias


# ------------------------------------------------------------------ IVON (ivon-opt)


def ivon_posterior(network: nn.Module, optimizer, **spec_options) -> Posterior:
    """Means (the network's parameters) and stds 1 / sqrt(ess (hess + weight_decay)) of an IVON optimizer.

    Call it outside ``optimizer.sampled_params()``, when the parameters hold the means.
    """
    source = "IVON"
    if type(optimizer).__name__ != "IVON" or not hasattr(optimizer, "param_groups"):
        raise BayesCompressError(f"{source}: expected an ivon.IVON optimizer, got {type(optimizer).__name__}")
    stds: dict[int, torch.Tensor] = {}
    for group in optimizer.param_groups:
        if "hess" not in group:
            raise BayesCompressError(f"{source}: the optimizer holds no Hessian estimate; train a step first")
        std = 1.0 / torch.sqrt(group["ess"] * (group["hess"] + group["weight_decay"]))
        offset = 0
        for param in group["params"]:
            stds[id(param)] = std[offset:offset + param.numel()].view(param.shape)
            offset += param.numel()
    layers = linear_layers(network, lambda m: isinstance(m, nn.Linear), source)
    arrays = []
    for layer in layers:
        bias = _bias_of(layer, source)
        missing = [p for p in (layer.module.weight, bias) if id(p) not in stds]
        if missing:
            raise BayesCompressError(f"{source}: layer {layer.path!r} is not trained by this optimizer")
        arrays.append((_numpy(layer.module.weight), _numpy(stds[id(layer.module.weight)]),
                       _numpy(bias), _numpy(stds[id(bias)])))
    group = optimizer.param_groups[0]
    return _posterior(layers, arrays, source, spec_options,
                      {"ivon": {"ess": float(group["ess"]), "weight_decay": float(group["weight_decay"])}})


# ------------------------------------------------------------------ bayesian-torch


def _is_reparameterization_linear(module: nn.Module) -> bool:
    return type(module).__name__ == _BAYESIAN_TORCH_LINEAR and hasattr(module, "rho_weight")


def bayesian_torch_posterior(network: nn.Module, **spec_options) -> Posterior:
    """mu and std = log(1 + exp(rho)) of bayesian-torch's LinearReparameterization layers."""
    source = "bayesian-torch"
    layers = linear_layers(network, _is_reparameterization_linear, source)
    arrays = []
    for layer in layers:
        module = layer.module
        if getattr(module, "mu_bias", None) is None:
            raise BayesCompressError(f"{source}: layer {layer.path!r} has no bias; import needs one")
        arrays.append((_numpy(module.mu_weight), _numpy(nn.functional.softplus(module.rho_weight.double())),
                       _numpy(module.mu_bias), _numpy(nn.functional.softplus(module.rho_bias.double()))))
    return _posterior(layers, arrays, source, spec_options, {})
