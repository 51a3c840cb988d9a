"""Constrained denoising: the model proposes, a constraint disposes, and dead ends are taken back.

Notable features:
- Every pass the logits of tokens the constraint forbids are -inf, so no committed token ever
  breaks it; the schedule's share of the best-ranked positions is committed (the ranking sees
  the probabilities renormalized over the allowed tokens), one at a time so that two commits of
  one pass cannot clash.
- What the constraint alone then decides (constraint.py `implied`) is committed at once, without
  a model pass: the ranking would put those positions first anyway, at probability 1.
- A canvas that can no longer be completed takes back its latest guess and everything implied
  after it, and bans that guess there (chronological backtracking, as in DPLL); a ban lasts as
  long as the commits before its guess do. So the model's ranking orders a complete search:
  a solvable canvas is always solved, given passes enough. The next guess is made at once from
  the logits the taken-back guess was chosen from (they were computed on that very canvas), so
  a take-back costs no pass. Each step reports the positions it took back in `revoked`, so a
  consumer replaying the stream stays exact.
- A row that runs past `SEARCH_PASSES` passes per blank, or whose constraint cannot be met at all,
  gives up: its remaining positions are decoded in one more pass without the constraint.
- Only rows still filling are run through the model: a batch is not held back by its boards done.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from .constraint import AllDifferent
from .denoise import DenoiseStep, score_masked
from .logits import shift_right
from .plan import Plan

# Passes per position to fill before a row gives up the search. Confidence order solved 97% of 200
# one-solution 22-given Sudokus within it (46 passes on average, benchmarks/sudoku_quality.py); the
# bound keeps a board whose search goes astray to a few seconds.
SEARCH_PASSES = 4


@dataclass
class Trail:
    """One row's commits in order, each a guess (chosen by the model) or implied, and its bans.
    A guess keeps the logits it was chosen from: a take-back returns to that canvas, so the next
    guess there can be made from them without another model pass."""

    frames: list[tuple[int, int, torch.Tensor | None]] = field(default_factory=list)  # (position, token, logits)
    bans: list[tuple[int, int, int]] = field(default_factory=list)  # (depth, position, token)

    def backtrack(self) -> tuple[list[int], torch.Tensor] | None:
        """Take back the latest guess and what came after it: (positions, the logits it was chosen
        from); None when there is no guess left."""
        k = next((i for i in range(len(self.frames) - 1, -1, -1) if self.frames[i][2] is not None), None)
        if k is None:
            return None
        position, token, logits = self.frames[k]
        undone = [f[0] for f in self.frames[k:]]
        del self.frames[k:]
        # Bans made under guesses now taken back no longer hold; this one holds while frames[:k] do.
        self.bans = [b for b in self.bans if b[0] <= k] + [(k, position, token)]
        return undone, logits

    def banned(self, out: torch.Tensor) -> None:
        """Write this row's bans into out (L, V) bool."""
        out.zero_()
        for _, position, token in self.bans:
            out[position, token] = True


@torch.no_grad()
def denoise_constrained(
    net: nn.Module,
    canvas: torch.Tensor,
    gen_start: int,
    p: Plan,
    mask_id: int,
    constraint: AllDifferent,
    key_mask: torch.Tensor | None = None,
    generator=None,
) -> Iterator[DenoiseStep]:
    """Denoise `canvas` (B, L) in place from `gen_start` on under `constraint`, yielding after
    every model pass. Every pass reads the whole canvas (a take-back anywhere would make a cache
    stale); with `p.block_length`, guesses come from the leftmost block that still has masks."""
    x = canvas
    B, L = x.shape
    device = x.device
    if key_mask is not None and bool(key_mask.all()):
        key_mask = None
    s = Search(x, gen_start, p, mask_id, constraint.to(device), generator)
    positions = net.positions(key_mask, L, device).expand(B, L)
    nfe, t0 = 0, time.perf_counter()
    before = x.clone()
    while s.open().any():
        # Only rows still filling are run: in a batch, a few long searches would otherwise keep
        # every finished board in every pass.
        active = s.open().any(-1)
        keys = None if key_mask is None else key_mask[active]
        out = net(x[active], positions[active], keys).float()
        logits = out.new_zeros(B, L, out.shape[-1])
        logits[active] = out
        if net.shift_logits:
            logits = shift_right(logits)
        nfe += 1
        s.count_pass()
        retry = s.guess(logits, active)
        for _ in range(L):  # rows that took a guess back guess again from its logits, passes free
            if not retry:
                break
            stale = torch.zeros_like(logits)
            for b, old in retry.items():
                stale[b] = old
            rows = torch.zeros(B, dtype=torch.bool, device=device)
            rows[list(retry)] = True
            retry = s.guess(stale, rows)

        changed = x != before
        revoked = changed & (before != mask_id)
        committed = changed & (x != mask_id)
        before = x.clone()
        remaining = s.open().sum(-1)
        yield DenoiseStep(
            index=nfe - 1,
            block=0,
            planned_steps=p.total_steps,
            canvas=x,
            committed=[row.nonzero().flatten().tolist() for row in committed],
            tokens=[x[b, row.nonzero().flatten()].tolist() for b, row in enumerate(committed)],
            finished=(remaining == 0).tolist(),
            nfe=nfe,
            elapsed=time.perf_counter() - t0,
            remaining=remaining.tolist(),
            revoked=[row.nonzero().flatten().tolist() for row in revoked],
            # Until a row is full, a take-back may reach any of its positions.
            settled=[L if r == 0 else gen_start for r in remaining.tolist()],
            edited=[[] for _ in range(B)],
        )


class Search:
    """The state of the search over a batch: the canvas, each row's trail and bans, and which
    rows still search (a row gives up past its pass budget or when its rule cannot be met)."""

    def __init__(self, x, gen_start: int, p: Plan, mask_id: int, constraint: AllDifferent, generator) -> None:
        self.x, self.p, self.mask_id, self.rule, self.generator = x, p, mask_id, constraint, generator
        B, L = x.shape
        self.gen_start = gen_start
        self.region = torch.arange(L, device=x.device) >= gen_start
        blanks = self.open().sum(-1)
        # The commits per pass the steps ask for: one per pass when steps = blanks (the default).
        self.per_pass = max(1, math.ceil(int(blanks.max()) / max(1, p.total_steps)))
        self.budget = (SEARCH_PASSES * blanks).tolist()
        self.passes = [0] * B
        self.trails = [Trail() for _ in range(B)]
        self.banned = torch.zeros(B, L, constraint.vocab, dtype=torch.bool, device=x.device)
        # A row already beyond completion (clashing fixed tokens) has no guess to take back: no search.
        self.searching = (~constraint.violated(x, constraint.allowed(x), self.open())).tolist()

    def open(self) -> torch.Tensor:
        return (self.x == self.mask_id) & self.region

    def count_pass(self) -> None:
        masked = self.open().any(-1).tolist()
        for b, left in enumerate(masked):
            self.passes[b] += left
            if self.searching[b] and self.passes[b] > self.budget[b]:
                self.searching[b] = False

    def guess(self, logits: torch.Tensor, rows: torch.Tensor) -> dict[int, torch.Tensor]:
        """Commit the best-ranked allowed tokens of `rows` from `logits` (B, L, V), then what they
        imply; returns, per row that had to take a guess back, the logits to guess from again."""
        x, p = self.x, self.p
        masked = self.open()
        on = torch.tensor(self.searching, device=x.device)
        allowed = self.rule.allowed(x, self.banned) | ~on[:, None, None]
        guessable = masked & current_block(masked, self.gen_start, p.block_length) & rows[:, None]
        counts = guessable.sum(-1).tolist()
        tokens, scores = score_masked(
            p, logits.masked_fill(~allowed, -torch.inf)[guessable], self.generator, self.mask_id, counts
        )
        table = torch.full(masked.shape, -torch.inf, device=x.device)
        table[guessable] = scores
        proposal = torch.full_like(x, self.mask_id)
        proposal[guessable] = tokens
        for b in range(x.shape[0]):
            if not counts[b]:
                continue
            if not self.searching[b]:  # given up: everything left, unconstrained, at once
                x[b, masked[b]] = proposal[b, masked[b]]
                continue
            order = torch.topk(table[b], counts[b]).indices.tolist()
            take = min(self.per_pass, counts[b])
            picks = order[:take]
            if p.threshold is not None:
                picks += [i for i in order[take:] if table[b, i] >= p.threshold]
            for i in picks:
                t = int(proposal[b, i])
                if not bool((self.rule.peers[i] & (x[b] == t)).any()):  # no clash with this pass's picks
                    x[b, i] = t
                    self.trails[b].frames.append((i, t, logits[b]))
        return self.settle([b for b in range(x.shape[0]) if counts[b]])

    def settle(self, rows: list[int]) -> dict[int, torch.Tensor]:
        """Commit what the rule implies in `rows`, taking back guesses while a row cannot be
        completed. Returns, per row that took a guess back, the logits that guess was chosen from."""
        x, rule = self.x, self.rule
        retry: dict[int, torch.Tensor] = {}
        live = [b for b in rows if self.searching[b]]
        while live:
            sub = x[live]
            masked = (sub == self.mask_id) & self.region
            allowed = rule.allowed(sub, self.banned[live])
            bad = rule.violated(sub, allowed, masked).tolist()
            implied = rule.implied(sub, allowed, masked)
            again = []
            for k, b in enumerate(live):
                if bad[k]:
                    back = self.trails[b].backtrack()
                    if back is None:  # the rule cannot be met at all: this row is decoded without it
                        self.searching[b] = False
                        retry.pop(b, None)
                        continue
                    x[b, back[0]] = self.mask_id
                    retry[b] = back[1]
                    self.trails[b].banned(self.banned[b])
                    again.append(b)
                    continue
                cells = (implied[k] >= 0).nonzero().flatten().tolist()
                for i in cells:
                    x[b, i] = implied[k, i]
                    self.trails[b].frames.append((i, int(implied[k, i]), None))
                if cells:
                    again.append(b)
            live = again
        return retry


def current_block(masked: torch.Tensor, gen_start: int, block_length: int | None) -> torch.Tensor:
    """(B, L) bool: the positions of each row's leftmost block that still has masks."""
    if not block_length:
        return torch.ones_like(masked)
    L = masked.shape[1]
    first = torch.where(masked.any(-1), masked.int().argmax(-1), L)
    start = gen_start + (first - gen_start).clamp(min=0) // block_length * block_length
    pos = torch.arange(L, device=masked.device)[None]
    return (pos >= start[:, None]) & (pos < start[:, None] + block_length)
