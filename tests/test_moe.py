"""Mixture of experts: the grouped expert runner against the per-token reference, and LLaDA2's
sigmoid router with expert bias and group-limited top-k against a plain per-token reading."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unmask.models.llada2_moe import LLaDA2Args, LLaDA2Gate, group_limited_topk
from unmask.models.moe import Expert, run_experts, run_experts_per_token


@pytest.mark.parametrize(
    "N,E,k,D,inner", [(1, 4, 1, 8, 16), (7, 8, 2, 16, 8), (64, 16, 4, 32, 24), (33, 64, 8, 16, 8), (5, 32, 3, 8, 8)]
)
def test_run_experts_equals_per_token(N, E, k, D, inner):
    torch.manual_seed(N * 100 + E)
    experts = nn.ModuleList(Expert(D, inner) for _ in range(E))
    x = torch.randn(N, D)
    index = torch.rand(N, E).topk(k, -1).indices  # distinct experts per token; many experts get none
    weight = torch.rand(N, k)
    with torch.no_grad():
        got = run_experts(x, experts, index, weight)
        want = run_experts_per_token(x, experts, index, weight)
    assert torch.allclose(got, want, atol=1e-5, rtol=0)


def test_run_experts_with_one_expert_for_all():
    experts = nn.ModuleList(Expert(8, 8) for _ in range(3))
    x = torch.randn(10, 8)
    index = torch.ones(10, 1, dtype=torch.long)
    with torch.no_grad():
        assert torch.allclose(run_experts(x, experts, index, torch.full((10, 1), 2.0)), 2 * experts[1](x), atol=1e-6)


def routed_per_token(scores: torch.Tensor, n_group: int, topk_group: int, top_k: int) -> list[set[int]]:
    """The routing rule read literally, one token at a time, in plain Python."""
    out = []
    for row in scores.tolist():
        size = len(row) // n_group
        groups = [sorted(row[g * size : (g + 1) * size], reverse=True) for g in range(n_group)]
        group_score = [sum(g[:2]) for g in groups]
        kept = sorted(range(n_group), key=lambda g: -group_score[g])[:topk_group]
        allowed = [e for g in kept for e in range(g * size, (g + 1) * size)]
        out.append(set(sorted(allowed, key=lambda e: -row[e])[:top_k]))
    return out


@pytest.mark.parametrize(
    "E,n_group,topk_group,top_k",
    [
        (8, 4, 2, 2),  # the golden checkpoint's routing
        (16, 8, 4, 8),  # LLaDA2-mini's proportions (256 / 8 groups / 4 kept / top-8), shrunk
        (8, 4, 4, 3),  # every group kept: plain top-k
        (8, 1, 1, 2),  # one group
        (6, 3, 1, 2),  # one group kept: top_k = all of its experts
        (12, 4, 2, 6),  # top_k takes every expert of the kept groups
    ],
)
def test_group_limited_topk_equals_per_token_reading(E, n_group, topk_group, top_k):
    scores = torch.rand(50, E, generator=torch.Generator().manual_seed(E + top_k))  # no ties
    chosen = group_limited_topk(scores, n_group, topk_group, top_k)
    assert chosen.shape == (50, top_k)
    assert [set(row) for row in chosen.tolist()] == routed_per_token(scores, n_group, topk_group, top_k)


def test_a_group_is_ranked_by_its_two_best_scores():
    # Group 0 holds the single best expert but its runner-up is poor; group 1 wins on the sum of two.
    scores = torch.tensor([[0.99, 0.01, 0.6, 0.59, 0.1, 0.05]])
    assert group_limited_topk(scores, 3, 1, 1).tolist() == [[2]]
    assert set(group_limited_topk(scores, 3, 2, 2).flatten().tolist()) == {0, 2}


def tiny_args(**changes) -> LLaDA2Args:
    config = dict(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        vocab_size=32,
        num_experts=8,
        num_experts_per_tok=3,
        n_group=4,
        topk_group=2,
        moe_intermediate_size=8,
        routed_scaling_factor=2.5,
    )
    return LLaDA2Args.from_config(config | changes)


def test_gate_bias_chooses_but_does_not_weigh():
    torch.manual_seed(0)
    gate = LLaDA2Gate(tiny_args())
    x = torch.randn(20, 16)
    with torch.no_grad():
        gate.expert_bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0, 5.0]))  # group 3 always wins
        index, weight = gate(x)
    scores = torch.sigmoid(x @ gate.weight.T)
    assert ((index == 6) | (index == 7)).sum(-1).eq(2).all()
    assert torch.allclose(weight.sum(-1), torch.full((20,), 2.5))  # renormalised, then scaled
    unbiased = scores.gather(1, index)
    assert torch.allclose(weight, 2.5 * unbiased / unbiased.sum(-1, keepdim=True), atol=1e-6)
    assert weight.dtype == torch.float32


def test_gate_with_one_expert_per_token_is_not_renormalised():
    torch.manual_seed(1)
    gate = LLaDA2Gate(tiny_args(num_experts_per_tok=1))
    x = torch.randn(5, 16)
    index, weight = gate(x)
    assert torch.allclose(weight[:, 0], 2.5 * torch.sigmoid(x @ gate.weight.T).gather(1, index)[:, 0], atol=1e-6)
