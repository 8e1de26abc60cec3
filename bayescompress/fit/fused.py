"""The sampled-pair step's element-wise work: the gradients (which torch.compile fuses) and lazy Adam.

Eager torch runs each operation as its own pass over the B x d rows; compiled, the gradients are a
few fused loops around the matrix products (docs/skipgram.md, "Speed"). The same code runs eagerly
where compiling is not possible (no C++ compiler, or it fails), so nothing depends on it.
"""

from __future__ import annotations

import math
import os
import shutil
import warnings

import torch
import torch.nn.functional as F

COMPILE_ENV = "BAYESCOMPRESS_COMPILE"  # "0": never compile (tests of tiny fits set it)


def occurrence_gradients(locs_u: torch.Tensor, raw_u: torch.Tensor, locs_v: torch.Tensor, raw_v: torch.Tensor,
                         words: torch.Tensor, contexts: torch.Tensor, word_normals: torch.Tensor,
                         context_normals: torch.Tensor, positive_weights: torch.Tensor,
                         negative_weights: torch.Tensor, word_kl_weights: torch.Tensor,
                         context_kl_weights: torch.Tensor, prior_std: float, value_noise_contexts: int = 0):
    """Per-occurrence gradients of the loss (KL - log-likelihood) and the two estimates, one batch.

    Returns word_grads (B x 2d: locs then raw scales), context_grads ((B + M) x 2d), the
    log-likelihood estimate and the KL estimate (docs/skipgram.md, "The sampled-pair estimator").
    The gradients use all M noise contexts; the log-likelihood's negative term is read from the
    first ``value_noise_contexts`` of them (0: all), scaled by M / that: the contexts are drawn
    independently, so the value stays unbiased, and its softplus was a tenth of the step.
    """
    precision = 1.0 / (prior_std * prior_std)
    positives = words.shape[0]
    word_locs, word_raw = locs_u.index_select(0, words), raw_u.index_select(0, words)
    context_locs, context_raw = locs_v.index_select(0, contexts), raw_v.index_select(0, contexts)
    word_scales, context_scales = F.softplus(word_raw), F.softplus(context_raw)
    word_vectors = torch.addcmul(word_locs, word_scales, word_normals)  # one sample per occurrence
    context_vectors = torch.addcmul(context_locs, context_scales, context_normals)
    positive_contexts, noise_vectors = context_vectors[:positives], context_vectors[positives:]
    positive_scores = (word_vectors * positive_contexts).sum(-1)
    negative_scores = word_vectors @ noise_vectors.T  # B x M: the noise contexts are shared
    # d/dx of w log s(x) is w s(-x); of w log s(-x) it is -w s(x)
    positive_slopes = positive_weights * torch.sigmoid(-positive_scores)
    negative_slopes = torch.sigmoid(negative_scores) * negative_weights[:, None]
    noise = negative_scores.shape[1]
    read = value_noise_contexts if 0 < value_noise_contexts < noise else noise
    log_likelihood = (positive_weights @ F.logsigmoid(positive_scores)
                      - (noise / read) * (negative_weights @ F.softplus(negative_scores[:, :read]).sum(-1)))
    # gradients of the loss with respect to each sampled vector
    word_sample_grads = negative_slopes @ noise_vectors - positive_slopes[:, None] * positive_contexts
    context_sample_grads = torch.cat([-positive_slopes[:, None] * word_vectors,
                                      negative_slopes.T @ word_vectors])
    word_grads, word_kl = _row_gradients(word_locs, word_raw, word_scales, word_normals, word_sample_grads,
                                         word_kl_weights, precision)
    context_grads, context_kl = _row_gradients(context_locs, context_raw, context_scales, context_normals,
                                               context_sample_grads, context_kl_weights, precision)
    dim = word_locs.shape[1]
    kl_constant = dim * (math.log(prior_std) - 0.5)
    kl = word_kl + context_kl + (word_kl_weights.sum() + context_kl_weights.sum()) * kl_constant
    return word_grads, context_grads, log_likelihood, kl


def _row_gradients(locs, raw, scales, normals, sample_grads, kl_weights, precision: float):
    """(locs grad | raw-scale grad) of each occurrence, and its weighted KL without the constant."""
    weights = kl_weights[:, None]
    locs_grad = sample_grads + weights * locs * precision
    scales_grad = sample_grads * normals + weights * (scales * precision - 1.0 / scales)
    raw_grad = scales_grad * torch.sigmoid(raw)  # softplus' = sigmoid
    kl_terms = ((scales * scales + locs * locs) * (0.5 * precision) - torch.log(scales)).sum(-1)
    return torch.cat([locs_grad, raw_grad], 1), kl_weights @ kl_terms


def adam_rows_(param: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor, rows: torch.Tensor,
               grad: torch.Tensor, step_size: float, beta1: float, beta2: float, eps: float) -> None:
    """SparseAdam's update of the distinct ``rows`` (bias correction folded into ``step_size``), in place.

    The step is scaled before ``index_add_``: its ``alpha`` argument made the scatter 3x slower here.
    """
    first = exp_avg.index_select(0, rows).lerp_(grad, 1 - beta1)
    second = exp_avg_sq.index_select(0, rows).mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    exp_avg.index_copy_(0, rows, first)
    exp_avg_sq.index_copy_(0, rows, second)
    param.index_add_(0, rows, first.div_(second.sqrt_().add_(eps)).mul_(-step_size))


class StepKernels:
    """occurrence_gradients, compiled on first use where possible, else eager.

    A compile that fails (no C++ compiler, an unsupported platform) warns once and runs the same
    function eagerly; the numbers then differ from the compiled ones only by float rounding.
    adam_rows_ is not compiled: its rows change every step, and the shape-generic kernel Inductor
    wrote for it took twice the eager time with two threads (docs/skipgram.md, eleventh pass).
    """

    def __init__(self, compile: bool):
        self.compiled = compile and compiler_available()
        self.occurrence_gradients = occurrence_gradients
        if self.compiled:
            # a fit's batch shapes never change, so the gradients compile for exactly them (vectorized
            # better than shape-generic code)
            self.occurrence_gradients = self._or_eager(
                torch.compile(occurrence_gradients, dynamic=False, fullgraph=True), occurrence_gradients)

    def _or_eager(self, compiled, eager):
        def call(*args):
            if not self.compiled:
                return eager(*args)
            try:
                with warnings.catch_warnings():  # torch's own deprecations while it compiles
                    warnings.simplefilter("ignore")
                    return compiled(*args)
            except Exception as exc:  # torch raises many kinds for a compile that cannot work here
                # a kernel that cannot compile means this machine cannot: it runs eagerly from now on
                self.compiled = False
                warnings.warn(f"torch.compile failed ({type(exc).__name__}); the fit runs eagerly",
                              RuntimeWarning, stacklevel=2)
                return eager(*args)
        return call


def compiler_available() -> bool:
    """Whether torch.compile can build CPU kernels here: a C++ compiler, and not switched off."""
    if os.environ.get(COMPILE_ENV, "1") == "0":
        return False
    return any(shutil.which(name) for name in (os.environ.get("CXX", "g++"), "g++", "c++", "clang++"))
