"""Schedules: how many masked positions of the current block to commit at each model pass.

Each schedule is built at the start of a block and asked once per pass; it turns the pass's
scores ((B, N) over the block, -inf where nothing may be committed) into a (B, N) bool selection.

Notable features:
- `Timestep` is Dream's: `timesteps = linspace(1, eps, steps + 1)` in float32 and
  `int(masked * (1 - s / t))` positions at step i (all that remain at the last step). The
  truncation is exact float32 arithmetic, so with 16 steps for 16 tokens the first pass commits
  nothing and the last commits two, as in the reference.
- `EvenSplit` is LLaDA's `get_num_transfer_tokens`: a linear noise schedule moves the same
  expected number of tokens per step (arXiv:2502.09992, Eq. 8), the remainder going first.
- `Threshold` and `Factor` are Fast-dLLM's confidence-aware parallel decoding (arXiv:2505.22618).
- `DynamicThreshold` is SDAR's `low_confidence_dynamic` (and LLaDA2's block refinement): each
  pass commits its share of an even split, or every position above the threshold when those are
  more; so the planned steps bound the passes, and confident blocks finish sooner.
- `QuotaThreshold` is Fast-dLLM's Dream sampler without cache: each step proposes its quota plus
  what earlier steps deferred, commits the best one and those above the threshold, and adds a step
  whenever the last one still defers.
- `Remaining` spreads what is still masked evenly over the passes left (the same counts as
  `EvenSplit` when nothing is revoked); with `remask`, revoked positions join the work left.
- `HeadFirst` is Fast-dLLM's Dream block sampler: the block's full pass commits its first position
  unconditionally, and the inner schedule runs from step 1.
"""

from __future__ import annotations

import torch

from .logits import GREEDY_BELOW
from .ranking import select_factor, select_sampled, select_spread, select_threshold, select_top, uniform


def even_split(masked_per_row: torch.Tensor, steps: int) -> torch.Tensor:
    """LLaDA `get_num_transfer_tokens`: (B,) mask counts -> (B, steps) commits per step."""
    base = masked_per_row[:, None] // steps
    counts = base.repeat(1, steps)
    remainder = (masked_per_row % steps).tolist()
    for row, extra in enumerate(remainder):
        counts[row, :extra] += 1
    return counts


def dream_timesteps(steps: int, eps: float, device=None) -> torch.Tensor:
    return torch.linspace(1, eps, steps + 1, device=device)


class Schedule:
    """Base: `select(i, scores, masked)` for block-local pass i."""

    def select(self, i: int, scores: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class CountSchedule(Schedule):
    """A schedule that says how many positions per row; the ranking picks which."""

    def __init__(self, alg_temp: float = 0.0, generator: torch.Generator | None = None, spread: int = 0):
        self.alg_temp, self.generator, self.spread = alg_temp, generator, spread

    def counts(self, i: int, masked: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def select(self, i, scores, masked):
        counts = torch.minimum(self.counts(i, masked), masked.sum(-1))
        if self.alg_temp >= GREEDY_BELOW:
            return select_sampled(scores, counts, self.alg_temp, self.generator)
        return select_spread(scores, counts, self.spread) if self.spread else select_top(scores, counts)


class Timestep(CountSchedule):
    """Dream's timestep schedule over `steps` passes; `origin=True` is Dream's `origin` algorithm,
    which commits each masked position independently with probability 1 - s/t."""

    def __init__(self, steps: int, eps: float, origin: bool = False, alg_temp: float = 0.0, generator=None, spread=0):
        super().__init__(alg_temp, generator, spread)
        self.steps, self.origin = steps, origin
        self.timesteps = dream_timesteps(steps, eps)

    def counts(self, i, masked):
        n = masked.sum(-1)
        if i >= self.steps - 1:
            return n
        t, s = self.timesteps[i], self.timesteps[i + 1]
        return (n.float() * (1 - s / t)).long()  # float32, truncated: the reference's int(...)

    def select(self, i, scores, masked):
        if not self.origin:
            return super().select(i, scores, masked)
        if i >= self.steps - 1:
            return masked.clone()
        t, s = self.timesteps[i], self.timesteps[i + 1]
        B, N = masked.shape
        draws = uniform(B * N, self.generator, masked.device, [N] * B).view(B, N)
        return masked & (draws < (1 - s / t).item())


class EvenSplit(CountSchedule):
    def __init__(self, masked: torch.Tensor, steps: int, alg_temp: float = 0.0, generator=None, spread=0):
        super().__init__(alg_temp, generator, spread)
        self.plan = even_split(masked.sum(-1), steps)

    def counts(self, i, masked):
        if i >= self.plan.shape[1]:
            return masked.sum(-1)
        return self.plan[:, i].to(masked.device)


class Remaining(CountSchedule):
    def __init__(self, steps: int, alg_temp: float = 0.0, generator=None, spread=0):
        super().__init__(alg_temp, generator, spread)
        self.steps = steps

    def counts(self, i, masked):
        n = masked.sum(-1)
        left = self.steps - i
        return n if left <= 1 else (n + left - 1) // left


class Threshold(Schedule):
    def __init__(self, threshold: float):
        self.threshold = threshold

    def select(self, i, scores, masked):
        return select_threshold(scores, self.threshold)


class DynamicThreshold(EvenSplit):
    def __init__(self, masked: torch.Tensor, steps: int, threshold: float):
        super().__init__(masked, steps)
        self.threshold = threshold

    def select(self, i, scores, masked):
        counts = torch.minimum(self.counts(i, masked), masked.sum(-1))
        above = (scores >= self.threshold) & masked
        enough = above.sum(-1) >= counts
        return torch.where(enough[:, None], above, select_top(scores, counts))


class Factor(Schedule):
    def __init__(self, factor: float):
        self.factor = factor

    def select(self, i, scores, masked):
        return select_factor(scores, self.factor)


class QuotaThreshold(Schedule):
    """Fast-dLLM's Dream `confidence_threshold` without cache, per row."""

    def __init__(self, masked: torch.Tensor, steps: int, threshold: float):
        self.threshold = threshold
        self.quota = even_split(masked.sum(-1), steps).tolist()
        rows = masked.shape[0]
        self.deferred = [0] * rows
        self.steps = [steps] * rows
        self.extended = [False] * rows

    def select(self, i, scores, masked):
        chosen = torch.zeros_like(masked)
        for row in range(masked.shape[0]):
            available = int(masked[row].sum())
            if available == 0:
                continue
            quota = 0 if self.extended[row] or i >= len(self.quota[row]) else self.quota[row][i]
            wanted = quota + self.deferred[row]
            top = torch.topk(scores[row], min(wanted, available))
            keep = top.values >= self.threshold
            keep[0] = True
            chosen[row, top.indices[keep]] = True
            # The reference asks topk for `wanted` candidates; those past the masked ones score
            # -inf and count as deferred too.
            self.deferred[row] = wanted - int(keep.sum())
            if self.deferred[row] and i >= self.steps[row] - 1:
                self.steps[row] += 1
                self.extended[row] = True
        return chosen


class HeadFirst(Schedule):
    """Pass 0 commits the block's first position (if masked); later passes use `inner` from step 1."""

    def __init__(self, inner: Schedule):
        self.inner = inner

    def select(self, i, scores, masked):
        if i == 0:
            chosen = torch.zeros_like(masked)
            chosen[:, 0] = masked[:, 0]
            return chosen
        return self.inner.select(i, scores, masked)
