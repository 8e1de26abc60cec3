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
from .fused import StepKernels, adam_rows_

EAGER = StepKernels(compile=False)
POOL_FLOATS = 1 << 22  # standard normals drawn once per fit; each step reads a window of them
# the loss value's negative term reads this many of the M noise contexts (unbiased; gradients use all M)
VALUE_NOISE_CONTEXTS = 32


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
                 power: float, device: torch.device, stratified: bool = False):
        positive = counts.positive.tocsr()
        positive.sum_duplicates()
        self.indptr = positive.indptr.astype(np.int64)
        self.cols = positive.indices.astype(np.int32)
        values = positive.data.astype(np.float64)
        self.batch = batch if values.size else 0
        self.noise_contexts = noise_contexts
        self.device = device
        self.stratified = stratified
        proposal = values ** power
        self.proposal_total = float(proposal.sum())
        self.cumulative = np.cumsum(proposal)  # inverse-CDF sampling
        # guide table: guide[k] = first entry whose cumulative exceeds k Z / K, so a draw starts a
        # few entries short of its answer instead of binary-searching 10^7 entries (20x faster)
        self.guide_slots = max(len(self.cumulative), 1)
        self.guide = np.searchsorted(self.cumulative, np.arange(self.guide_slots) * (
            self.proposal_total / self.guide_slots), side="right").astype(np.int32)
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
        if self.stratified:  # one draw in each of B equal slices of the proposal: sorted, and less variance
            slice_width = self.proposal_total / max(self.batch, 1)
            uniforms = (np.arange(self.batch) + rng.random(self.batch)) * slice_width
        else:
            uniforms = np.sort(rng.random(self.batch)) * self.proposal_total
        entries = self.first_entries_above(uniforms)
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

    def first_entries_above(self, uniforms: np.ndarray) -> np.ndarray:
        """searchsorted(cumulative, uniforms, side="right") clipped to the last entry, via the guide table."""
        last = len(self.cumulative) - 1
        slots = (uniforms * (self.guide_slots / max(self.proposal_total, 1e-300))).astype(np.int64)
        # one slot early: rounding can never start a draw past its answer
        slots = np.clip(slots - 1, 0, self.guide_slots - 1)
        entries = self.guide[slots].astype(np.int64)
        np.minimum(entries, last, out=entries)
        while True:  # a few vectorized passes: each guide slot spans about one entry
            behind = (self.cumulative[entries] <= uniforms) & (entries < last)
            if not behind.any():
                return entries
            entries += behind

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
                   unreached_contexts: torch.Tensor, kernels: StepKernels | None = None,
                   value_noise_contexts: int = VALUE_NOISE_CONTEXTS) -> tuple[float, list[torch.Tensor]]:
    """pair_loss's value and its gradients in closed form, without autograd's graph.

    Returns the loss and, per parameter, a coalesced sparse gradient (one row per touched id).
    The gradients are ``pair_loss(...).backward()``'s; so is the value when the batch has at most
    ``value_noise_contexts`` noise contexts (0: all), else it is an unbiased estimate of it from
    that many. ``kernels`` (default: eager) may run the element-wise work compiled.
    """
    kernels = kernels or EAGER
    locs_u, raw_u, locs_v, raw_v = parameters
    variance = prior_std * prior_std
    with torch.no_grad():
        word_grads, context_grads, log_likelihood, kl = kernels.occurrence_gradients(
            locs_u, raw_u, locs_v, raw_v, batch.words, batch.contexts, word_normals, context_normals,
            batch.positive_weights, batch.negative_weights, batch.word_kl_weights, batch.context_kl_weights,
            prior_std, value_noise_contexts)
        kl = float(kl)
        rows = []
        for ids, grads, unreached, leaf_locs, leaf_raw in (
                (batch.words, word_grads, unreached_words, locs_u, raw_u),
                (batch.contexts, context_grads, unreached_contexts, locs_v, raw_v)):
            if unreached.numel():  # their KL in full, no data term
                extra_locs, extra_raw = leaf_locs[unreached], leaf_raw[unreached]
                extra_scales = F.softplus(extra_raw)
                kl = kl + float(kl_rows(extra_locs, extra_scales, prior_std).sum())
                ids = torch.cat([ids, unreached])
                extra_raw_grad = (extra_scales / variance - 1.0 / extra_scales) * torch.sigmoid(extra_raw)
                grads = torch.cat([grads, torch.cat([extra_locs / variance, extra_raw_grad], 1)])
            rows.append(_rows_summed(ids, grads, leaf_locs.shape))
    loss = kl - float(log_likelihood)
    (locs_u_grad, raw_u_grad), (locs_v_grad, raw_v_grad) = rows
    return loss, [locs_u_grad, raw_u_grad, locs_v_grad, raw_v_grad]


def _rows_summed(ids: torch.Tensor, grads: torch.Tensor,
                 shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-occurrence (locs | raw) gradients summed per distinct id, as two coalesced sparse tensors."""
    unique, inverse = torch.unique(ids, sorted=True, return_inverse=True)
    dim = shape[1]
    summed = grads.new_zeros(len(unique), 2 * dim)
    summed.index_add_(0, inverse, grads)
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
                step = state["step"]
                step_size = float(group["lr"]) * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
                adam_rows_(param, state["exp_avg"], state["exp_avg_sq"], rows, values, step_size, beta1,
                           beta2, group["eps"])
