"""Diagonal Laplace approximation of an ordinary trained classifier: the exact diagonal of the
generalized Gauss-Newton matrix (the Fisher of the softmax likelihood) plus a Gaussian prior whose
precision maximizes the Laplace evidence.  Posterior std = 1 / sqrt(GGN diagonal + prior precision).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..errors import BayesCompressError
from ..posterior import Posterior, open_npz
from .importers import _bias_of, _numpy, _posterior, linear_layers

_BATCH = 64
_PRECISIONS = np.logspace(-4, 6, 201)  # prior precisions the evidence is evaluated at


def diagonal_ggn(network: nn.Module, features: torch.Tensor, batch: int = _BATCH) -> dict[str, torch.Tensor]:
    """sum over rows of diag(J^T H J), H = diag(p) - p p^T the softmax Hessian of the logits.

    With the factor H = L L^T, L[:, c] = sqrt(p_c) (e_c - p), the diagonal is the sum over rows and
    classes of the squared gradient of sqrt(p_c) (logit_c - p . logits), p held fixed.
    """
    from torch.func import functional_call, jacrev, vmap

    params = {name: param.detach() for name, param in network.named_parameters()}

    def logits_of(values, row):
        return functional_call(network, values, (row.unsqueeze(0),)).squeeze(0)

    jacobian = vmap(jacrev(logits_of), in_dims=(None, 0))
    total = {name: torch.zeros_like(param) for name, param in params.items()}
    with torch.no_grad():
        for start in range(0, features.shape[0], batch):
            rows = features[start:start + batch]
            probs = torch.softmax(functional_call(network, params, (rows,)), dim=-1)
            jac = jacobian(params, rows)  # name -> rows x classes x *shape
            for name, block in jac.items():
                flat = block.reshape(block.shape[0], block.shape[1], -1)
                mixed = flat - torch.einsum("nk,nkp->np", probs, flat).unsqueeze(1)
                total[name] += torch.einsum("nc,ncp->p", probs, mixed.square()).view(params[name].shape)
    return total


def evidence_precision(means: np.ndarray, curvature: np.ndarray) -> float:
    """The prior precision delta maximizing the diagonal Laplace evidence (terms that vary with it):
    -delta |theta|^2 / 2 + P log(delta) / 2 - sum log(h + delta) / 2, over a log grid."""
    squared = float(np.dot(means, means))
    best, best_value = 1.0, -math.inf
    for delta in _PRECISIONS:
        value = -0.5 * delta * squared + 0.5 * means.size * math.log(delta) - 0.5 * float(
            np.sum(np.log(curvature + delta)))
        if value > best_value:
            best, best_value = float(delta), value
    return best


def laplace_posterior(network: nn.Module, features, labels=None, *, prior_precision: float | None = None,
                      **spec_options) -> Posterior:
    """Diagonal Laplace posterior of a trained classifier around its weights, from training ``features``.

    ``prior_precision`` None picks it by the evidence; ``labels`` are not needed (the GGN uses the
    model's own predictive).  The network must be linear layers with ReLU/Tanh/Sigmoid between.
    """
    source = "Laplace"
    layers = linear_layers(network, lambda m: isinstance(m, nn.Linear), source)
    features = torch.as_tensor(np.asarray(features), dtype=next(network.parameters()).dtype)
    if features.ndim != 2 or features.shape[0] == 0:
        raise BayesCompressError(f"{source}: features must be a non-empty rows x columns array")
    if features.shape[1] != layers[0].module.in_features:
        raise BayesCompressError(f"{source}: the network takes {layers[0].module.in_features} inputs, "
                                 f"the features have {features.shape[1]} columns")
    training = network.training
    network.eval()
    try:
        ggn = diagonal_ggn(network, features)
    finally:
        network.train(training)
    names = {id(param): name for name, param in network.named_parameters()}
    used = [(layer.module.weight, _bias_of(layer, source)) for layer in layers]
    curvature = {id(p): _numpy(ggn[names[id(p)]]) for pair in used for p in pair}
    means = {id(p): _numpy(p) for pair in used for p in pair}
    if prior_precision is None:
        all_means = np.concatenate([m.ravel() for m in means.values()])
        all_curvature = np.concatenate([curvature[key].ravel() for key in means])
        prior_precision = evidence_precision(all_means, all_curvature)
    if not (isinstance(prior_precision, (int, float)) and 0 < prior_precision < math.inf):
        raise BayesCompressError(f"{source}: prior precision must be a number > 0, got {prior_precision!r}")

    def std(param):
        return 1.0 / np.sqrt(curvature[id(param)] + prior_precision)

    arrays = [(means[id(w)], std(w), means[id(b)], std(b)) for w, b in used]
    return _posterior(layers, arrays, source, spec_options | {"prior_std": 1.0 / math.sqrt(prior_precision)},
                      {"laplace": {"curvature": "exact diagonal GGN", "rows": int(features.shape[0]),
                                   "prior_precision": float(prior_precision)}})


_ACTIVATION_LAYERS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def sequential_from_npz(path, activation: str = "relu") -> nn.Sequential:
    """An nn.Sequential of Linear layers from a state dict saved as .npz (``PREFIX.weight`` and
    ``PREFIX.bias`` per layer, in the order saved), with ``activation`` between the layers.

    Save one with ``np.savez(PATH, **{k: v.numpy() for k, v in model.state_dict().items()})``.
    """
    source = str(path)
    if activation not in _ACTIVATION_LAYERS:
        raise BayesCompressError(f"--activation must be one of {', '.join(_ACTIVATION_LAYERS)}, "
                                 f"got {activation!r}")
    with open_npz(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    prefixes = list(dict.fromkeys(name.rpartition(".")[0] for name in arrays))
    layers: list[nn.Linear] = []
    for prefix in prefixes:
        weight, bias = arrays.get(f"{prefix}.weight"), arrays.get(f"{prefix}.bias")
        extra = sorted(set(n for n in arrays if n.rpartition(".")[0] == prefix) - {f"{prefix}.weight",
                                                                                    f"{prefix}.bias"})
        if weight is None or bias is None or extra or weight.ndim != 2 or bias.shape != (weight.shape[0],):
            raise BayesCompressError(f"{source}: layer {prefix!r} is not a linear layer with a bias "
                                     "(expected exactly PREFIX.weight, out x in, and PREFIX.bias, out)")
        if weight.dtype.kind != "f":
            raise BayesCompressError(f"{source}: layer {prefix!r} does not hold floats")
        linear = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weight.astype(np.float32)))
            linear.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
        if layers and layers[-1].out_features != weight.shape[1]:
            raise BayesCompressError(f"{source}: layer {prefix!r} takes {weight.shape[1]} inputs, the layer "
                                     f"before gives {layers[-1].out_features}")
        layers.append(linear)
    if not layers:
        raise BayesCompressError(f"{source}: holds no layers")
    between = [module for linear in layers for module in (_ACTIVATION_LAYERS[activation](), linear)]
    return nn.Sequential(*between[1:])
