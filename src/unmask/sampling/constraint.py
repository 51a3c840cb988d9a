"""Constraints on the canvas: which tokens each position may still take, given the committed ones.

Notable features:
- `AllDifferent`: canvas positions in groups (a Sudoku's rows, columns and boxes), each holding
  one of a set of tokens, no token twice in a group; `exact` adds that every group holds every
  token (a group as large as the token set: Latin squares, Sudoku). It knows only token ids and
  positions: the engine builds one from tasks/sudoku.py for grid models.
- `allowed` is what the sampler masks the logits with; `violated` says a canvas can no longer be
  completed (a token twice in a group, a masked position with nothing allowed, with `exact` a
  token with no place left in its group), which is when the search in search.py takes back its
  latest guess; `implied` gives the positions left a single token, which the masked logits put
  at probability 1.
"""

from __future__ import annotations

import torch


class AllDifferent:
    """Positions in groups, each holding one of `tokens`, no token twice in a group."""

    def __init__(self, groups: list[list[int]], tokens: list[int], length: int, vocab: int, exact: bool = True):
        """groups: canvas positions of each group; tokens: the ids a grouped position may hold;
        length, vocab: the canvas length and the logits' width; exact: every group holds every token."""
        if exact and any(len(g) != len(tokens) for g in groups):
            raise ValueError(f"groups: an exact constraint needs groups of {len(tokens)} positions, one per token")
        self.member = torch.zeros(len(groups), length)  # (G, L) 1 where a position is in a group
        for k, group in enumerate(groups):
            self.member[k, group] = 1.0
        self.peers = (self.member.T @ self.member > 0) & ~torch.eye(length, dtype=torch.bool)  # (L, L)
        self.grouped = self.member.sum(0) > 0  # (L,) positions the constraint speaks about
        self.tokens = torch.zeros(vocab, dtype=torch.bool)  # (V,)
        self.tokens[tokens] = True
        self.exact = exact
        self.vocab = vocab

    def to(self, device) -> AllDifferent:
        for name in ("member", "peers", "grouped", "tokens"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def holding(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, V) 1.0 where a grouped position holds one of the tokens."""
        held = torch.nn.functional.one_hot(x.clamp(0, self.vocab - 1), self.vocab).float()
        return held * (self.tokens & (x[..., None] < self.vocab)) * self.grouped[:, None]

    def allowed(self, x: torch.Tensor, banned: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) ids -> (B, L, V) bool: the tokens each position may take. A grouped position may
        take a token no peer holds (and not banned); other positions anything."""
        taken = torch.einsum("ij,bjv->biv", self.peers.float(), self.holding(x)) > 0
        free = self.tokens & ~taken
        if banned is not None:
            free &= ~banned
        return torch.where(self.grouped[:, None], free, True)

    def violated(self, x: torch.Tensor, allowed: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """(B,) bool: rows that can no longer be completed."""
        per_group = torch.einsum("gl,blv->bgv", self.member, self.holding(x))  # (B, G, V) copies
        twice = (per_group > 1).flatten(1).any(-1)
        stuck = (masked & self.grouped & ~(allowed & self.tokens).any(-1)).any(-1)
        if not self.exact:
            return twice | stuck
        places = torch.einsum("gl,blv->bgv", self.member, (allowed & masked[..., None]).float())
        homeless = ((per_group == 0) & (places == 0) & self.tokens).flatten(1).any(-1)
        return twice | stuck | homeless

    def implied(self, x: torch.Tensor, allowed: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """(B, L) long: for each masked position left a single allowed token, that token; else -1.
        These are the positions whose logits, masked by `allowed`, give probability exactly 1.
        (A token with one place left in a group is not: it is a dead end's sign in `violated`,
        but committing it would be the constraint solving the canvas instead of the model.)"""
        options = allowed & self.tokens & (masked & self.grouped)[..., None]  # (B, L, V)
        return torch.where(options.sum(-1) == 1, options.float().argmax(-1), -1)
