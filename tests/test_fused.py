"""The pair step's kernels: compiled equals eager, a failed compile falls back (Adam: tests/test_pairs.py)."""

from __future__ import annotations

import warnings

import pytest
import torch

from bayescompress.fit import fused
from bayescompress.fit.fused import StepKernels, occurrence_gradients

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def step_arguments(seed: int = 0, vocab: int = 40, dim: int = 6, batch: int = 16, noise: int = 4):
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape):
        return torch.randn(*shape, generator=generator)

    def uniform(*shape):
        return torch.rand(*shape, generator=generator) + 0.1

    tables = [0.3 * normal(vocab, dim), normal(vocab, dim) - 1.5]
    tables += [0.3 * normal(vocab, dim), normal(vocab, dim) - 1.5]
    words = torch.randint(0, vocab, (batch,), generator=generator)
    contexts = torch.randint(0, vocab, (batch + noise,), generator=generator)
    return (*tables, words, contexts, normal(batch, dim), normal(batch + noise, dim), 50 * uniform(batch),
            20 * uniform(batch), 3 * uniform(batch), 2 * uniform(batch + noise), 0.5)


def test_compiled_kernels_give_the_eager_numbers(monkeypatch):
    monkeypatch.setenv(fused.COMPILE_ENV, "1")
    if not fused.compiler_available():
        pytest.skip("no C++ compiler for torch.compile")
    kernels = StepKernels(compile=True)
    arguments = step_arguments()
    expected = occurrence_gradients(*arguments)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a compiler that is present but cannot build
        got = kernels.occurrence_gradients(*arguments)
    if not kernels.compiled:
        pytest.skip("torch.compile cannot build kernels on this machine (the fallback is tested below)")
    for value, reference in zip(got, expected, strict=True):
        torch.testing.assert_close(value, reference, rtol=1e-4, atol=1e-4)


def test_a_compile_that_fails_warns_once_and_then_runs_eagerly(monkeypatch):
    def broken_compile(function, **options):
        def call(*args):
            raise RuntimeError("no compiler here")
        return call

    monkeypatch.setattr(fused, "compiler_available", lambda: True)
    monkeypatch.setattr(torch, "compile", broken_compile)
    kernels = StepKernels(compile=True)
    arguments = step_arguments()
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        got = kernels.occurrence_gradients(*arguments)
    assert not kernels.compiled
    for value, reference in zip(got, occurrence_gradients(*arguments), strict=True):
        assert torch.equal(value, reference)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # eager from now on: no second warning
        again = kernels.occurrence_gradients(*arguments)
    for value, reference in zip(again, got, strict=True):
        assert torch.equal(value, reference)


def test_compiling_is_off_when_the_environment_says_so(monkeypatch):
    monkeypatch.setenv(fused.COMPILE_ENV, "0")
    assert not StepKernels(compile=True).compiled
