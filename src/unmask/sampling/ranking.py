"""Ranking: how sure the model is at each masked position, and which positions to commit.

Notable features:
- Scores, higher = commit sooner: the probability of the proposed token (MaskGIT, Chang et al.
  2022; LLaDA's `low_confidence`), the top-1 minus top-2 margin (Dream `topk_margin`), the
  negative entropy `sum p log(p + 1e-10)` (Dream `entropy`), or uniform noise (LLaDA `random`).
- Selections work on a (B, N) score table with -inf where a position may not be chosen: the top
  k per row, k positions sampled from softmax(score / alg_temp) (Dream `alg_temp`), every
  position at or above a threshold plus the best one (Fast-dLLM, arXiv:2505.22618, Sec. 3.3),
  or the factor rule (same paper, Eq. 4 / `get_transfer_index_dynamic`).
"""

from __future__ import annotations

import torch

from .noise import generator_of, rand_rows

ENTROPY_EPS = 1e-10  # Dream adds this inside the log so that p = 0 contributes 0


def max_prob(probs: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Probability of the proposed token: (N, V), (N,) -> (N,)."""
    return torch.gather(probs, -1, tokens[:, None]).squeeze(-1)


def margin(probs: torch.Tensor) -> torch.Tensor:
    """Top-1 minus top-2 probability: (N, V) -> (N,)."""
    top2 = torch.topk(probs, 2, dim=-1).values
    return top2[:, 0] - top2[:, 1]


def neg_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Negative entropy, higher when the distribution is peaked: (N, V) -> (N,)."""
    return torch.sum(probs * torch.log(probs + ENTROPY_EPS), dim=-1)


def uniform(n: int, generator: torch.Generator | None, device, rows: list[int] | None = None) -> torch.Tensor:
    """n uniform scores (random ranking); rows: how many each canvas row has (per-row generators)."""
    return rand_rows(generator, rows or [n], (), device)


def select_top(scores: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Per row, the counts[b] best positions: (B, N) float, (B,) int -> (B, N) bool."""
    chosen = torch.zeros_like(scores, dtype=torch.bool)
    for row, k in enumerate(counts.tolist()):
        if k > 0:
            chosen[row, torch.topk(scores[row], k).indices] = True
    return chosen


def select_spread(scores: torch.Tensor, counts: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """Like `select_top`, but a position within `radius` of one already chosen this step is passed
    over while others remain. Positions committed together are predicted independently (the
    factorization error of parallel decoding), and nearby positions depend on each other most:
    committing them at once gives doubled or clashing words ("stuck stuck", "a clever a boy").
    On a story-model checkpoint, radius 2 measured 65% accepted sentences against 49% for radius 1
    and 38% for plain top-k (64 steps, 128 tokens; see docs/models.md)."""
    chosen = torch.zeros_like(scores, dtype=torch.bool)
    for row, k in enumerate(counts.tolist()):
        if k <= 0:
            continue
        order = torch.argsort(scores[row], descending=True)[: int(torch.isfinite(scores[row]).sum())].tolist()
        picked: set[int] = set()
        for p in order:
            if len(picked) == k:
                break
            if all(q not in picked for q in range(p - radius, p + radius + 1)):
                picked.add(p)
        for p in order:  # not enough spaced positions: take the best of the rest
            if len(picked) == k:
                break
            picked.add(p)
        chosen[row, list(picked)] = True
    return chosen


def select_sampled(
    scores: torch.Tensor, counts: torch.Tensor, alg_temp: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Per row, counts[b] positions drawn without replacement from softmax(scores / alg_temp)."""
    chosen = torch.zeros_like(scores, dtype=torch.bool)
    weights = torch.softmax(scores / alg_temp, dim=-1)
    for row, k in enumerate(counts.tolist()):
        if k > 0:
            chosen[row, torch.multinomial(weights[row], k, generator=generator_of(generator, row))] = True
    return chosen


def select_threshold(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Per row with any finite score: the best position, and every position scoring >= threshold."""
    chosen = scores >= threshold
    has_any = torch.isfinite(scores).any(-1)
    best = scores.argmax(-1)
    chosen[has_any, best[has_any]] = True
    return chosen


def factor_count(sorted_scores: torch.Tensor, factor: float) -> int:
    """How many of n descending scores Fast-dLLM's factor rule commits.

    The i-th best (1-based) must reach 1 - factor / (i + 1); the best always passes. The count is
    the index of the first failure, with the reference's edge rule: a failure at the last
    candidate (or none at all) commits every candidate.
    """
    n = sorted_scores.numel()
    bars = [1 - factor / (i + 1) for i in range(1, n + 1)]
    bars[0] = -1.0
    count = n - 1
    for i in range(n):
        if float(sorted_scores[i]) < bars[i]:
            count = i
            break
    return count + 1 if count in (0, n - 1) else count


def select_factor(scores: torch.Tensor, factor: float) -> torch.Tensor:
    """Per row, the top `factor_count` positions among the finite scores."""
    counts = []
    for row in scores:
        finite = row[torch.isfinite(row)]
        counts.append(factor_count(torch.sort(finite, descending=True).values, factor) if finite.numel() else 0)
    return select_top(scores, torch.tensor(counts))
