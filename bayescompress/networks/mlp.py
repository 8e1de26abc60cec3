"""The ordinary PyTorch MLP that a model spec describes; fit makes it Bayesian, load fills in weights.

Its ``state_dict()`` holds one tensor per Pyro site (``layers.0.weight`` ...) plus the model spec
as JSON text under ``_extra_state`` (PyTorch's slot for non-tensor module state), so a saved
state dict is self-describing and still loads with ``torch.load(path, weights_only=True)``.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from torch import nn

from ..errors import BayesCompressError
from .model_spec import check_tensors_match_spec, validate_model_spec

_ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": lambda x: x}
SPEC_KEY = "_extra_state"


class MLP(nn.Module):
    """Standardize the inputs, apply the spec's layers; logits (classification) or the prediction
    in the target's units (regression).

    >>> from bayescompress.networks.model_spec import mlp_spec
    >>> spec = mlp_spec([2, 3, 2], task="classification", classes=["no", "yes"],
    ...                 input_mean=[0.0, 0.0], input_std=[1.0, 1.0])
    >>> MLP(spec)(torch.zeros(5, 2)).shape
    torch.Size([5, 2])
    """

    def __init__(self, spec: dict):
        super().__init__()
        self.spec = validate_model_spec(spec, "MLP")
        self.layers = nn.ModuleList(
            nn.Linear(layer["in_features"], layer["out_features"]) for layer in spec["layers"]
        )
        self.activations = [layer["activation"] for layer in spec["layers"]]
        norm = spec["normalization"]
        # not persistent: they come from the spec, so the state dict holds only the fitted tensors
        self.register_buffer("input_mean", torch.tensor(norm["input_mean"]), persistent=False)
        self.register_buffer("input_std", torch.tensor(norm["input_std"]), persistent=False)
        self.target_mean = float(norm.get("target_mean", 0.0))
        self.target_std = float(norm.get("target_std", 1.0))

    @property
    def task(self) -> str:
        return self.spec["task"]

    @property
    def classes(self) -> list | None:
        return self.spec["likelihood"].get("classes")

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = (features - self.input_mean) / self.input_std
        for layer, activation in zip(self.layers, self.activations, strict=True):
            hidden = _ACTIVATIONS[activation](layer(hidden))
        if self.task == "regression":
            return hidden.squeeze(-1) * self.target_std + self.target_mean
        return hidden

    @torch.no_grad()
    def predict(self, features) -> np.ndarray:
        """Class labels (classification) or predicted values (regression) for raw feature rows."""
        inputs = torch.as_tensor(np.asarray(features), dtype=self.input_mean.dtype,
                                 device=self.input_mean.device)
        outputs = self(inputs)
        if self.task == "regression":
            return outputs.cpu().numpy()
        return np.asarray(self.classes)[outputs.argmax(-1).cpu().numpy()]

    def get_extra_state(self) -> str:
        return json.dumps(self.spec, sort_keys=True)

    def set_extra_state(self, state) -> None:
        spec = parse_spec_text(state, "state dict")
        if spec["layers"] != self.spec["layers"]:
            raise BayesCompressError("state dict: its model spec has other layers than this network")
        self.spec = spec


def parse_spec_text(text, source: str) -> dict:
    if not isinstance(text, str):
        raise BayesCompressError(f"{source}: {SPEC_KEY} must hold the model spec as JSON text")
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise BayesCompressError(f"{source}: {SPEC_KEY} is not valid JSON") from exc
    return validate_model_spec(spec, source)


def network_from_arrays(spec: dict | None, tensors: dict[str, np.ndarray], source: str = "archive") -> MLP:
    """An MLP in eval mode whose weights are exactly ``tensors`` (same dtype, bit for bit)."""
    if spec is None:
        raise BayesCompressError(f"{source}: holds no model spec, so no network can be built from it")
    spec = validate_model_spec(spec, source)
    check_tensors_match_spec(spec, {name: values.shape for name, values in tensors.items()}, source)
    dtypes = {np.asarray(values).dtype for values in tensors.values()}
    if len(dtypes) != 1:
        raise BayesCompressError(f"{source}: tensors have mixed dtypes {sorted(map(str, dtypes))}")
    network = MLP(spec).to(torch.from_numpy(np.zeros(0, dtype=dtypes.pop())).dtype)
    state = {name: torch.from_numpy(np.array(values, copy=True)) for name, values in tensors.items()}
    network.load_state_dict(state | {SPEC_KEY: network.get_extra_state()})
    return network.eval()


def state_dict_arrays(unpacked_tensors: dict[str, np.ndarray], spec: dict | None) -> dict:
    """The dict that ``unpack --format torch`` saves: tensors by site name, plus the spec when known."""
    state: dict = {name: torch.from_numpy(np.array(values, copy=True))
                   for name, values in unpacked_tensors.items()}
    if spec is not None:
        if SPEC_KEY in state:
            raise BayesCompressError(f"tensor name {SPEC_KEY!r} clashes with the model spec entry")
        state[SPEC_KEY] = json.dumps(spec, sort_keys=True)
    return state


def read_state_dict(path: str | os.PathLike, spec: dict | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """Model spec and tensors of a saved state dict; never runs pickled code (weights_only)."""
    import pickle
    import zipfile

    source = str(path)
    if not os.path.isfile(path):
        raise BayesCompressError(f"{source}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise BayesCompressError(f"{source}: holds pickled objects other than tensors; refusing to load it "
                                 "(only plain state dicts are read)") from exc
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise BayesCompressError(f"{source}: not a readable PyTorch file ({type(exc).__name__})") from exc
    if not isinstance(state, dict):
        raise BayesCompressError(f"{source}: holds a {type(state).__name__}, not a state dict")
    if SPEC_KEY in state:
        stored = parse_spec_text(state[SPEC_KEY], source)
        spec = spec if spec is not None else stored
    elif spec is None:
        raise BayesCompressError(f"{source}: has no model spec ({SPEC_KEY}); pass --spec SPEC.json")
    tensors = {}
    for name, value in state.items():
        if name == SPEC_KEY:
            continue
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise BayesCompressError(f"{source}: entry {name!r} is not a float tensor")
        tensors[name] = value.detach().cpu().numpy()
    return validate_model_spec(spec, source), tensors
