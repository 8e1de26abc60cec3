"""The model spec of a Bayesian MLP: layers, activations, likelihood, normalization and data, as JSON.

It travels in the posterior file, the archive and the unpacked state dict, so that any of them can
be turned back into a network that predicts.  Plain Python; checked before anything is built from it.
"""

from __future__ import annotations

import array
import json
import math
import os
from pathlib import Path

from ..errors import BayesCompressError

SPEC_FORMAT = "bayescompress-mlp"
SPEC_VERSION = 1
ACTIVATIONS = ("relu", "tanh", "sigmoid", "identity")
LIKELIHOODS = {"classification": "categorical", "regression": "gaussian"}
TASKS = tuple(LIKELIHOODS)


def mlp_spec(
    sizes: list[int],
    *,
    task: str,
    activation: str = "relu",
    classes: list | None = None,
    noise_std: float | None = None,
    input_mean: list[float],
    input_std: list[float],
    target_mean: float | None = None,
    target_std: float | None = None,
    data: dict | None = None,
    prior_std: float = 1.0,
) -> dict:
    """The spec of an MLP with layer widths ``sizes`` (inputs first, outputs last).

    Layer i is the module ``layers.i`` with tensors ``layers.i.weight`` (out x in) and
    ``layers.i.bias``; every layer but the last is followed by ``activation``.

    >>> spec = mlp_spec([4, 8, 3], task="classification", classes=[0, 1, 2],
    ...                 input_mean=[0.0] * 4, input_std=[1.0] * 4)
    >>> spec_tensor_shapes(spec)
    {'layers.0.weight': (8, 4), 'layers.0.bias': (8,), 'layers.1.weight': (3, 8), 'layers.1.bias': (3,)}
    """
    layers = [
        {"name": f"layers.{index}", "in_features": int(fan_in), "out_features": int(fan_out),
         "activation": activation if index < len(sizes) - 2 else "identity"}
        for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))
    ]
    likelihood: dict = {"name": LIKELIHOODS.get(task, task)}
    if classes is not None:
        likelihood["classes"] = list(classes)
    if noise_std is not None:
        likelihood["noise_std"] = float(noise_std)
    # float32, as the network applies them (MLPNetwork's buffers): more digits would cost every
    # archive 4 bytes per feature and change no prediction
    normalization: dict = {"input_mean": array.array("f", input_mean).tolist(),
                           "input_std": array.array("f", input_std).tolist()}
    if target_mean is not None:
        normalization["target_mean"] = float(target_mean)
        normalization["target_std"] = float(target_std)
    spec = {
        "format": SPEC_FORMAT,
        "version": SPEC_VERSION,
        "task": task,
        "layers": layers,
        "likelihood": likelihood,
        "normalization": normalization,
        "prior": {"name": "normal", "loc": 0.0, "std": float(prior_std)},
        "data": data or {},
    }
    return validate_model_spec(spec, "model spec")


def spec_tensor_shapes(spec: dict) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape for every weight and bias the spec declares, in layer order."""
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in spec["layers"]:
        shapes[f"{layer['name']}.weight"] = (layer["out_features"], layer["in_features"])
        shapes[f"{layer['name']}.bias"] = (layer["out_features"],)
    return shapes


def validate_model_spec(spec, source: str) -> dict:
    """Return ``spec`` if it describes an MLP this version can build; else one line naming the problem."""
    where = f"{source}: model spec"
    if not isinstance(spec, dict):
        raise BayesCompressError(f"{where} is not a JSON object")
    if spec.get("format") != SPEC_FORMAT:
        raise BayesCompressError(f"{where} has format {spec.get('format')!r}, expected {SPEC_FORMAT!r}")
    if spec.get("version") != SPEC_VERSION:
        raise BayesCompressError(f"{where} version {spec.get('version')!r} is not supported "
                                 f"(this bayescompress reads version {SPEC_VERSION})")
    task = spec.get("task")
    if task not in LIKELIHOODS:
        raise BayesCompressError(f"{where}: task {task!r} is not one of {', '.join(LIKELIHOODS)}")
    layers = spec.get("layers")
    if not isinstance(layers, list) or not layers:
        raise BayesCompressError(f"{where} lists no layers")
    for index, layer in enumerate(layers):
        if (
            not isinstance(layer, dict)
            or layer.get("name") != f"layers.{index}"
            or not _positive_int(layer.get("in_features"))
            or not _positive_int(layer.get("out_features"))
            or layer.get("activation") not in ACTIVATIONS
        ):
            raise BayesCompressError(
                f"{where}: layer {index} must be {{name: 'layers.{index}', in_features, out_features, "
                f"activation in {', '.join(ACTIVATIONS)}}}"
            )
        if index and layer["in_features"] != layers[index - 1]["out_features"]:
            raise BayesCompressError(f"{where}: layer {index} takes {layer['in_features']} inputs but "
                                     f"layer {index - 1} gives {layers[index - 1]['out_features']}")
    _validate_likelihood(spec, task, layers[-1]["out_features"], where)
    _validate_normalization(spec, task, layers[0]["in_features"], where)
    prior = spec.get("prior", {})
    if not isinstance(prior, dict) or not _positive_float(prior.get("std", 1.0)):
        raise BayesCompressError(f"{where}: prior std must be a number > 0")
    if not isinstance(spec.get("data", {}), dict):
        raise BayesCompressError(f"{where}: data must be a JSON object")
    return spec


def _validate_likelihood(spec: dict, task: str, outputs: int, where: str) -> None:
    likelihood = spec.get("likelihood")
    if not isinstance(likelihood, dict) or likelihood.get("name") != LIKELIHOODS[task]:
        raise BayesCompressError(f"{where}: a {task} network needs likelihood {LIKELIHOODS[task]!r}")
    if task == "classification":
        classes = likelihood.get("classes")
        if (
            not isinstance(classes, list)
            or len(classes) < 2
            or not (all(type(c) is int for c in classes) or all(isinstance(c, str) for c in classes))
            or len(set(classes)) != len(classes)
        ):
            raise BayesCompressError(f"{where}: likelihood needs at least two distinct classes "
                                     "(all integers or all strings)")
        if len(classes) != outputs:
            raise BayesCompressError(f"{where}: the last layer has {outputs} outputs but there are "
                                     f"{len(classes)} classes")
    else:
        if outputs != 1:
            raise BayesCompressError(f"{where}: a regression network needs 1 output, the last layer has "
                                     f"{outputs}")
        if not _positive_float(likelihood.get("noise_std")):
            raise BayesCompressError(f"{where}: gaussian likelihood needs noise_std > 0")


def _validate_normalization(spec: dict, task: str, inputs: int, where: str) -> None:
    norm = spec.get("normalization")
    if not isinstance(norm, dict):
        raise BayesCompressError(f"{where} has no normalization")
    for key in ("input_mean", "input_std"):
        values = norm.get(key)
        if not isinstance(values, list) or len(values) != inputs or not all(_finite(v) for v in values):
            raise BayesCompressError(f"{where}: normalization {key} must list {inputs} finite numbers")
    if not all(v > 0 for v in norm["input_std"]):
        raise BayesCompressError(f"{where}: normalization input_std must be > 0")
    target_ok = _finite(norm.get("target_mean")) and _positive_float(norm.get("target_std"))
    if task == "regression" and not target_ok:
        raise BayesCompressError(f"{where}: regression needs normalization target_mean and target_std > 0")


def check_tensors_match_spec(spec: dict, shapes: dict[str, tuple[int, ...]], source: str) -> None:
    """The tensors must be exactly the spec's weights and biases, with the spec's shapes."""
    expected = spec_tensor_shapes(spec)
    missing = [name for name in expected if name not in shapes]
    if missing:
        raise BayesCompressError(f"{source}: the model spec needs tensor {missing[0]!r}, which is missing "
                                 f"(tensors: {', '.join(shapes)})")
    extra = [name for name in shapes if name not in expected]
    if extra:
        raise BayesCompressError(f"{source}: tensor {extra[0]!r} is not part of the model spec")
    for name, shape in expected.items():
        if tuple(shapes[name]) != shape:
            raise BayesCompressError(f"{source}: tensor {name!r} has shape {tuple(shapes[name])} but the "
                                     f"model spec says {shape}")


def read_spec_file(path: str | os.PathLike) -> dict:
    """A model spec from a JSON file, validated."""
    if not Path(path).is_file():
        raise BayesCompressError(f"{path}: no such file")
    try:
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BayesCompressError(f"{path}: not a JSON file") from exc
    return validate_model_spec(spec, str(path))


def _positive_int(value) -> bool:
    return type(value) is int and value > 0


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive_float(value) -> bool:
    return _finite(value) and value > 0
