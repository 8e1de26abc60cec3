"""Sampled-pair minibatch estimator of the skip-gram ELBO: a step costs O(batch), never O(V^2).

Positives are drawn from the non-zero entries of n+ (probability proportional to n^power),
negatives from the rank-one n- (word and context from its two factors); every term is weighted so
that one step's loss is an unbiased estimate of the full-data negative ELBO (docs/skipgram.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .corpus import CoOccurrences

POOL_FLOATS = 1 << 22  # standard normals drawn once per fit; each step reads a window of them


@dataclass
class PairBatch:
    """One step's draws and the weights that make its loss unbiased for the full ELBO."""

    words: torch.Tensor  # (B,) word ids of the positive pairs; also the words of the negatives
    contexts: torch.Tensor  # (B + M,) context ids: B positive contexts, then M shared noise contexts
    positive_weights: torch.Tensor  # (B,) n_e / (B p_e)
    negative_weights: torch.Tensor  # (B,) r_i / (B M m(i)), for each of the word's M negatives
    word_kl_weights: torch.Tensor  # (B,) 1 / (B m(i))
    context_kl_weights: torch.Tensor  # (B + M,) 1 / (B m'(j) + M q(j))


class PairSampler:
    """Draws PairBatch-es from counts: B positive entries of n+ and M noise contexts per step.

    Rows that no draw can reach (a word with no pairs) have their KL charged in full every step,
    which keeps the estimate unbiased; their data term is zero.
    """

    def __init__(self, counts: CoOccurrences, negatives: int, batch: int, noise_contexts: int,
                 power: float, device: torch.device):
        positive = counts.positive.tocsr()
        positive.sum_duplicates()
        self.indptr = positive.indptr.astype(np.int64)
        self.cols = positive.indices.astype(np.int32)
        values = positive.data.astype(np.float64)
        self.batch = batch if values.size else 0
        self.noise_contexts = noise_contexts
        self.device = device
        proposal = values ** power
        self.proposal_total = float(proposal.sum())
        self.cumulative = np.cumsum(proposal)  # inverse-CDF sampling: O(B log nnz) per step
        # n_e / p_e = n_e^(1 - power) * Z, kept per entry so a draw is one gather
        self.entry_weights = (values ** (1.0 - power) * self.proposal_total).astype(np.float32)
        vocab = counts.vocab_size
        bounds = np.concatenate([[0.0], self.cumulative])
        # m(i): the probability that one positive draw has word i
        word_share = (bounds[self.indptr[1:]] - bounds[self.indptr[:-1]]) / max(self.proposal_total, 1e-300)
        context_share = (np.bincount(self.cols, weights=proposal, minlength=vocab)
                         / max(self.proposal_total, 1e-300))  # m'(j)
        negative_rows, noise = counts.negative_factors(negatives)  # r_i, q_j
        self.noise_cumulative = np.cumsum(noise)
        self.noise_cumulative /= self.noise_cumulative[-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            self.word_kl = np.where(word_share > 0, 1.0 / (self.batch * word_share), 0.0)
            self.word_negative = np.where(word_share > 0, negative_rows / (self.batch * noise_contexts
                                                                            * word_share), 0.0)
            occurrences = self.batch * context_share + noise_contexts * noise
            self.context_kl = np.where(occurrences > 0, 1.0 / occurrences, 0.0)
        self.unreached_words = torch.from_numpy(np.flatnonzero(word_share == 0)).to(device)
        self.unreached_contexts = torch.from_numpy(np.flatnonzero(occurrences == 0)).to(device)
        self.word_kl, self.word_negative, self.context_kl = (
            torch.from_numpy(a.astype(np.float32)).to(device)
            for a in (self.word_kl, self.word_negative, self.context_kl))

    def draw(self, rng: np.random.Generator) -> PairBatch:
        """One step's pairs, from ``rng`` alone (so a resumed fit replays the same draws)."""
        # sorted keys make the binary searches walk the table in order: 4x faster than random keys
        uniforms = np.sort(rng.random(self.batch)) * self.proposal_total
        entries = np.searchsorted(self.cumulative, uniforms, side="right")
        entries = np.minimum(entries, len(self.cumulative) - 1)
        words = np.searchsorted(self.indptr, entries, side="right") - 1
        noise_ids = np.searchsorted(self.noise_cumulative, rng.random(self.noise_contexts), side="right")
        noise_ids = np.minimum(noise_ids, len(self.noise_cumulative) - 1)
        device = self.device
        words_t = torch.from_numpy(words).to(device)
        context_ids = np.concatenate([self.cols[entries].astype(np.int64), noise_ids])
        contexts = torch.from_numpy(context_ids).to(device)
        positive_weights = torch.from_numpy(self.entry_weights[entries] / max(self.batch, 1)).to(device)
        return PairBatch(words=words_t, contexts=contexts, positive_weights=positive_weights,
                         negative_weights=self.word_negative[words_t], word_kl_weights=self.word_kl[words_t],
                         context_kl_weights=self.context_kl[contexts])

    def normals(self, pool: torch.Tensor, rng: np.random.Generator,
                dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Standard normals for the batch's word and context rows: a window of ``pool`` at a random offset."""
        words, contexts = self.batch * dim, (self.batch + self.noise_contexts) * dim
        offset = int(rng.integers(0, pool.numel() - words - contexts + 1))
        window = pool[offset:offset + words + contexts]
        return window[:words].view(self.batch, dim), window[words:].view(-1, dim)


def normal_pool(batch: int, noise_contexts: int, dim: int, seed: int, device: torch.device) -> torch.Tensor:
    """The fit's fixed pool of N(0, 1) floats: at least twice one step's need, same for a given seed."""
    size = max(POOL_FLOATS, 2 * (2 * batch + noise_contexts) * dim)
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(size, generator=generator).to(device)


def kl_rows(locs: torch.Tensor, scales: torch.Tensor, prior_std: float) -> torch.Tensor:
    """KL(N(locs, scales^2) || N(0, prior_std^2)) of each row, summed over its coordinates."""
    variance = 1.0 / (2.0 * prior_std * prior_std)
    terms = (scales * scales + locs * locs) * variance - torch.log(scales)
    return terms.sum(-1) + locs.shape[-1] * (np.log(prior_std) - 0.5)


def pair_loss(parameters: list[torch.Tensor], batch: PairBatch, word_normals: torch.Tensor,
              context_normals: torch.Tensor, prior_std: float, unreached_words: torch.Tensor,
              unreached_contexts: torch.Tensor) -> torch.Tensor:
    """The negative ELBO estimate of one batch: KL estimate minus log-likelihood estimate."""
    log_likelihood, kl = pair_elbo_terms(parameters, batch, word_normals, context_normals, prior_std,
                                         unreached_words, unreached_contexts)
    return kl - log_likelihood


def pair_elbo_terms(parameters: list[torch.Tensor], batch: PairBatch, word_normals: torch.Tensor,
                    context_normals: torch.Tensor, prior_std: float, unreached_words: torch.Tensor,
                    unreached_contexts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unbiased estimates of the full-data log-likelihood and of KL(q || prior), from one batch.

    ``parameters`` are locs.U, scales.U, locs.V, scales.V (scales before softplus, as Pyro stores
    them); the gathers are sparse, so gradients touch only the batch's rows.
    """
    locs_u, raw_u, locs_v, raw_v = parameters
    word_locs = F.embedding(batch.words, locs_u, sparse=True)
    word_scales = F.softplus(F.embedding(batch.words, raw_u, sparse=True))
    context_locs = F.embedding(batch.contexts, locs_v, sparse=True)
    context_scales = F.softplus(F.embedding(batch.contexts, raw_v, sparse=True))
    words = torch.addcmul(word_locs, word_scales, word_normals)  # one reparameterized sample per occurrence
    contexts = torch.addcmul(context_locs, context_scales, context_normals)
    positives = len(batch.words)
    positive_scores = (words * contexts[:positives]).sum(-1)
    negative_scores = words @ contexts[positives:].T  # B x M: shared noise contexts
    log_likelihood = (batch.positive_weights @ F.logsigmoid(positive_scores)
                      + batch.negative_weights @ F.logsigmoid(-negative_scores).sum(-1))
    kl = (batch.word_kl_weights @ kl_rows(word_locs, word_scales, prior_std)
          + batch.context_kl_weights @ kl_rows(context_locs, context_scales, prior_std))
    for ids, locs, raw in ((unreached_words, locs_u, raw_u), (unreached_contexts, locs_v, raw_v)):
        if ids.numel():
            kl = kl + kl_rows(F.embedding(ids, locs, sparse=True),
                              F.softplus(F.embedding(ids, raw, sparse=True)), prior_std).sum()
    return log_likelihood, kl


def pair_gradients(parameters: list[torch.Tensor], batch: PairBatch, word_normals: torch.Tensor,
                   context_normals: torch.Tensor, prior_std: float, unreached_words: torch.Tensor,
                   unreached_contexts: torch.Tensor) -> tuple[float, list[torch.Tensor]]:
    """pair_loss's value and its gradients in closed form, without autograd's graph.

    Returns the loss and, per parameter, a coalesced sparse gradient (one row per touched id).
    The same numbers as ``pair_loss(...).backward()``, in about half the element-wise passes.
    """
    locs_u, raw_u, locs_v, raw_v = parameters
    with torch.no_grad():
        word_locs, word_raw = locs_u[batch.words], raw_u[batch.words]
        context_locs, context_raw = locs_v[batch.contexts], raw_v[batch.contexts]
        word_scales, context_scales = F.softplus(word_raw), F.softplus(context_raw)
        words = torch.addcmul(word_locs, word_scales, word_normals)
        contexts = torch.addcmul(context_locs, context_scales, context_normals)
        positives = len(batch.words)
        positive_scores = (words * contexts[:positives]).sum(-1)
        negative_scores = words @ contexts[positives:].T
        # d/dx of w log s(x) is w s(-x); of w log s(-x) it is -w s(x)
        positive_slopes = batch.positive_weights * torch.sigmoid(-positive_scores)
        negative_slopes = torch.sigmoid(negative_scores).mul_(-batch.negative_weights[:, None])
        log_likelihood = (batch.positive_weights @ F.logsigmoid(positive_scores)
                          - batch.negative_weights @ F.softplus(negative_scores).sum(-1))
        # loss = KL - log-likelihood: gradients of the loss with respect to each sampled vector
        word_grads = torch.addmm(positive_slopes[:, None] * contexts[:positives], negative_slopes,
                                 contexts[positives:]).neg_()
        context_grads = torch.cat([positive_slopes[:, None] * words, negative_slopes.T @ words]).neg_()
        kl = 0.0
        rows = []
        for ids, locs, raw, scales, normals, sample_grads, kl_weights, unreached, leaf_locs, leaf_raw in (
                (batch.words, word_locs, word_raw, word_scales, word_normals, word_grads,
                 batch.word_kl_weights, unreached_words, locs_u, raw_u),
                (batch.contexts, context_locs, context_raw, context_scales, context_normals, context_grads,
                 batch.context_kl_weights, unreached_contexts, locs_v, raw_v)):
            kl = kl + float(kl_weights @ kl_rows(locs, scales, prior_std))
            variance = prior_std * prior_std
            weights = kl_weights[:, None]
            locs_grad = sample_grads + weights * locs / variance
            scales_grad = sample_grads * normals + weights * (scales / variance - 1.0 / scales)
            if unreached.numel():  # their KL in full, no data term
                extra_locs, extra_raw = leaf_locs[unreached], leaf_raw[unreached]
                extra_scales = F.softplus(extra_raw)
                kl = kl + float(kl_rows(extra_locs, extra_scales, prior_std).sum())
                ids = torch.cat([ids, unreached])
                raw = torch.cat([raw, extra_raw])
                locs_grad = torch.cat([locs_grad, extra_locs / variance])
                scales_grad = torch.cat([scales_grad, extra_scales / variance - 1.0 / extra_scales])
            raw_grad = scales_grad * torch.sigmoid(raw)  # softplus' = sigmoid
            rows.append(_rows_summed(ids, locs_grad, raw_grad, leaf_locs.shape))
    loss = kl - float(log_likelihood)
    (locs_u_grad, raw_u_grad), (locs_v_grad, raw_v_grad) = rows
    return loss, [locs_u_grad, raw_u_grad, locs_v_grad, raw_v_grad]


def _rows_summed(ids: torch.Tensor, locs_grad: torch.Tensor, raw_grad: torch.Tensor,
                 shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-occurrence gradients summed per distinct id, as two coalesced sparse tensors."""
    unique, inverse = torch.unique(ids, sorted=True, return_inverse=True)
    dim = locs_grad.shape[1]
    summed = locs_grad.new_zeros(len(unique), 2 * dim)
    summed.index_add_(0, inverse, torch.cat([locs_grad, raw_grad], 1))
    indices = unique[None, :]
    return tuple(torch.sparse_coo_tensor(indices, values, shape, is_coalesced=True, check_invariants=False)
                 for values in (summed[:, :dim], summed[:, dim:]))


def lazy_adam_step(optimizer: torch.optim.SparseAdam) -> None:
    """SparseAdam's update for coalesced row-sparse gradients, by row gathers instead of sparse masks.

    Same state (step, exp_avg, exp_avg_sq) and the same arithmetic as ``optimizer.step()``, so
    checkpoints hold the optimizer's ordinary state_dict.
    """
    with torch.no_grad():
        for group in optimizer.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad.coalesce()
                rows, values = grad.indices()[0], grad.values()
                if values.numel() == 0:
                    continue
                state = optimizer.state[param]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                first = state["exp_avg"].index_select(0, rows).lerp_(values, 1 - beta1)
                second = state["exp_avg_sq"].index_select(0, rows).mul_(beta2).addcmul_(values, values,
                                                                                         value=1 - beta2)
                state["exp_avg"].index_copy_(0, rows, first)
                state["exp_avg_sq"].index_copy_(0, rows, second)
                step = state["step"]
                step_size = float(group["lr"]) * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
                param.index_add_(0, rows, first.div_(second.sqrt_().add_(group["eps"])), alpha=-step_size)
