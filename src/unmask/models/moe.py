"""Mixture-of-experts feed-forward, shared by the MoE families (LLaDA2, LLaDA-MoE, SDAR-MoE).

Routing differs per family (softmax or sigmoid scores, expert bias, group-limited top-k) and
lives in each model file; what they share is running the chosen experts. `run_experts` groups
the tokens by expert and runs each expert once on its tokens (a loop over experts, never over
tokens), as Megablocks-style "dropless" MoE does; `run_experts_per_token` is the plain
reference it is tested against.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import gated_mlp


class Expert(nn.Module):
    """One SwiGLU expert with the `{gate,up,down}_proj` names every family uses."""

    def __init__(self, hidden: int, intermediate: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gated_mlp(x, self.gate_proj, self.up_proj, self.down_proj)


def run_experts(x: torch.Tensor, experts: nn.ModuleList, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x (N, D); index, weight (N, k): each token's chosen experts and their weights -> (N, D).

    The N·k (token, expert) pairs are sorted by expert; each expert runs once on its slice and the
    weighted outputs are summed back per token with index_add_."""
    N, k = index.shape
    flat = index.reshape(-1)
    order = flat.argsort(stable=True)
    tokens = order // k
    counts = torch.bincount(flat, minlength=len(experts)).tolist()
    out = torch.zeros_like(x)
    begin = 0
    for e, n in enumerate(counts):
        if n == 0:
            continue
        rows = tokens[begin : begin + n]
        w = weight.reshape(-1)[order[begin : begin + n]]
        out.index_add_(0, rows, experts[e](x[rows]) * w[:, None].to(x.dtype))
        begin += n
    return out


def run_experts_per_token(
    x: torch.Tensor, experts: nn.ModuleList, index: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """The reference: every token through each of its experts, one at a time."""
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        for j in range(index.shape[1]):
            out[t] += experts[int(index[t, j])](x[t : t + 1])[0] * weight[t, j].to(x.dtype)
    return out
