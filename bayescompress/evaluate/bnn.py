"""How well a Bayesian MLP predicts its held-out rows: accuracy and NLL (classification), RMSE and
NLL (regression), from a posterior file (its means, or the posterior predictive), an archive, or an
unpacked state dict, on the data file and split recorded in the model spec at fit time.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..archive import MAGIC
from ..errors import BayesCompressError
from ..networks.metrics import network_metrics, predictive_metrics
from ..networks.mlp import network_from_arrays, read_state_dict
from ..networks.model_spec import read_spec_file, validate_model_spec
from ..networks.tabular import Table, load_table, split_rows

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
SPLITS = ("test", "train", "all")


def target_kind(path: str | os.PathLike) -> str:
    """"posterior", "archive" or "state dict", from the file's first bytes."""
    if not Path(path).is_file():
        raise BayesCompressError(f"{path}: no such file")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head == HDF5_SIGNATURE:
        return "posterior"
    if head == MAGIC:
        return "archive"
    if head.startswith(ZIP_SIGNATURE):
        return "state dict"
    raise BayesCompressError(
        f"{path}: not a posterior file (.h5), an archive (.bcz) or a PyTorch state dict (.pt)"
    )


def evaluate_bnn(
    target: str | os.PathLike,
    *,
    data: str | os.PathLike | None = None,
    data_target: str | None = None,
    split: str = "test",
    samples: int = 0,
    spec_path: str | os.PathLike | None = None,
    seed: int = 0,
) -> dict:
    """Metrics of the network in ``target`` on its held-out rows (or ``split`` = train / all).

    ``samples`` > 0 (posterior files only) averages the predictive distribution over that many
    weight draws from the posterior instead of using the posterior means.  NLL is in nats per row.
    """
    from ..packing import unpack
    from ..posterior import Posterior

    source = str(target)
    kind = target_kind(target)
    spec = read_spec_file(spec_path) if spec_path is not None else None
    stds = None
    if kind == "posterior":
        posterior = Posterior.load(target)
        spec = spec or posterior.model_spec
        tensors = {name: tensor.mean for name, tensor in posterior.tensors.items()}
        stds = {name: tensor.std for name, tensor in posterior.tensors.items()}
    elif kind == "archive":
        unpacked = unpack(target)
        spec, tensors = spec or unpacked.model_spec, unpacked.tensors
    else:
        spec, tensors = read_state_dict(target, spec)
    if samples and stds is None:
        raise BayesCompressError(f"{source}: --samples needs a posterior file (an {kind} holds one value "
                                 "per weight)")
    if samples < 0:
        raise BayesCompressError(f"--samples must be >= 0, got {samples}")
    if spec is None:
        raise BayesCompressError(f"{source}: holds no model spec; pass --spec SPEC.json")
    spec = validate_model_spec(spec, source)
    network = network_from_arrays(spec, tensors, source)
    table, rows = evaluation_rows(spec, data, data_target, split, source)
    if samples:
        metrics = predictive_metrics(network, tensors, stds, table, rows, spec, samples, seed)
        how = f"posterior predictive ({samples} samples)"
    else:
        metrics = network_metrics(network, table, rows, spec)
        how = {"posterior": "posterior means", "archive": "archive values", "state dict": "state dict"}[kind]
    return {"target": source, "weights": how, "task": spec["task"], "data": table.source, "split": split,
            "rows": int(len(rows)), **metrics}


def evaluation_rows(spec: dict, data, data_target, split: str, source: str) -> tuple[Table, np.ndarray]:
    """The data (recorded at fit time unless ``data`` is given) and the rows of ``split``."""
    if split not in SPLITS:
        raise BayesCompressError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    record = spec.get("data", {})
    path = data if data is not None else record.get("path")
    if path is None:
        raise BayesCompressError(f"{source}: the model spec records no data file; pass --data FILE")
    column = data_target if data_target is not None else record.get("target")
    if data is not None and str(data).lower().endswith(".npz") and data_target is None:
        column = None
    table = load_table(path, column)
    inputs = spec["layers"][0]["in_features"]
    if table.features.shape[1] != inputs:
        raise BayesCompressError(f"{table.source}: has {table.features.shape[1]} feature columns but the "
                                 f"network takes {inputs}")
    if record.get("checksum") not in (None, table.checksum()):
        warnings.warn(f"{table.source}: differs from the data the network was fitted on; "
                      "the held-out rows may not be the ones held out at fit time", stacklevel=2)
    if split == "all":
        return table, np.arange(table.n_rows)
    if "test_fraction" not in record or "seed" not in record:
        raise BayesCompressError(f"{source}: the model spec records no split; use --split all")
    rows = split_rows(table.n_rows, float(record["test_fraction"]), int(record["seed"]), table.source)
    return table, rows.test if split == "test" else rows.train


@dataclass
class NetworkScore:
    """What ``evaluate_network`` measured: accuracy (classification) or RMSE (regression), and NLL."""

    nll: float
    rows: int
    accuracy: float | None = None
    rmse: float | None = None


def evaluate_network(values: dict[str, np.ndarray], model_spec: dict | None, *, data=None,
                     split: str = "test") -> NetworkScore:
    """Metrics of the network with weights ``values`` on the rows the spec records (the sweep's
    network quality: ``bayescompress.quality.network_quality``)."""
    if model_spec is None:
        raise BayesCompressError("network quality needs a model spec, and the posterior has none")
    spec = validate_model_spec(model_spec, "posterior")
    network = network_from_arrays(spec, dict(values), "posterior")
    table, rows = evaluation_rows(spec, data, None, split, "posterior")
    return NetworkScore(rows=int(len(rows)), **network_metrics(network, table, rows, spec))
