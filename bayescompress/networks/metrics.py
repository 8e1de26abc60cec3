"""How well one network predicts rows of a table: accuracy or RMSE, and NLL in nats per row, for
one value per weight or averaged over weight draws from a mean-field posterior (torch).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .mlp import MLP
from .tabular import Table, class_indices, regression_targets


def _inputs_and_targets(network: MLP, table: Table, rows: np.ndarray, spec: dict):
    features = torch.as_tensor(table.features[rows], dtype=network.input_mean.dtype)
    if spec["task"] == "classification":
        labels = class_indices(table.targets[rows], spec["likelihood"]["classes"], table.source)
        return features, torch.as_tensor(labels)
    values = regression_targets(table.targets[rows], table.source)
    return features, torch.as_tensor(values, dtype=torch.float64)


@torch.no_grad()
def network_metrics(network: MLP, table: Table, rows: np.ndarray, spec: dict) -> dict:
    """Metrics of one network (one value per weight) on ``rows`` of ``table``."""
    features, targets = _inputs_and_targets(network, table, rows, spec)
    outputs = network(features).double()
    log_probs = _row_log_likelihoods(outputs, targets, spec)
    if spec["task"] == "classification":
        accuracy = (outputs.argmax(-1) == targets).double().mean()
        return {"accuracy": float(accuracy), "nll": float(-log_probs.mean())}
    return {"rmse": float(torch.sqrt(torch.mean((outputs - targets) ** 2))), "nll": float(-log_probs.mean())}


@torch.no_grad()
def predictive_metrics(network: MLP, means: dict, stds: dict, table: Table, rows: np.ndarray, spec: dict,
                       samples: int, seed: int) -> dict:
    """Metrics of the posterior predictive: the likelihood averaged over ``samples`` weight draws."""
    features, targets = _inputs_and_targets(network, table, rows, spec)
    generator = torch.Generator().manual_seed(seed)
    parameters = dict(network.named_parameters())
    log_probs, predictions = [], []
    for _ in range(samples):
        for name, param in parameters.items():
            mean = torch.as_tensor(means[name], dtype=param.dtype)
            std = torch.as_tensor(stds[name], dtype=param.dtype)
            param.copy_(mean + std * torch.randn(mean.shape, generator=generator, dtype=param.dtype))
        outputs = network(features).double()
        log_probs.append(_row_log_likelihoods(outputs, targets, spec))
        predictions.append(outputs.softmax(-1) if spec["task"] == "classification" else outputs)
    for name, param in parameters.items():  # leave the network at the means
        param.copy_(torch.as_tensor(means[name], dtype=param.dtype))
    predictive = torch.logsumexp(torch.stack(log_probs), dim=0) - math.log(samples)
    average = torch.stack(predictions).mean(0)
    if spec["task"] == "classification":
        return {"accuracy": float((average.argmax(-1) == targets).double().mean()),
                "nll": float(-predictive.mean())}
    return {"rmse": float(torch.sqrt(torch.mean((average - targets) ** 2))), "nll": float(-predictive.mean())}


def _row_log_likelihoods(outputs: torch.Tensor, targets: torch.Tensor, spec: dict) -> torch.Tensor:
    """log p(target | outputs) per row, in float64."""
    if spec["task"] == "classification":
        return outputs.log_softmax(-1).gather(-1, targets[:, None]).squeeze(-1)
    noise = spec["likelihood"]["noise_std"]
    return -0.5 * ((targets - outputs) / noise) ** 2 - math.log(noise) - 0.5 * math.log(2 * math.pi)
