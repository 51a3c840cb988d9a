"""Gemma-4-style building blocks: the scale-optional RMSNorm, per-layer-type RoPE tables, fused experts.

Notable features:
- `GemmaRMSNorm` multiplies by `pow(mean(x²) + eps, -0.5)` and by the plain weight (Gemma 4 dropped
  Gemma 2/3's `1 + weight`), in float32, and casts back last; `with_scale=False` has no weight
  (the value norm, the router norm, the self-conditioning post-norm).
- RoPE tables come from an inverse-frequency vector, so "proportional" RoPE (Gemma 4's full
  layers) is just a vector whose last entries are 0: those dimensions are left unrotated, and the
  exponents are divided by the whole head_dim, not the rotated part (transformers
  `_compute_proportional_rope_parameters`).
- The MoE half of a layer: `GemmaRouter` (softmax over experts of a scale-free norm of the
  residual times a learned `scale`; top-k renormalised, then `per_expert_scale`) and
  `GemmaExperts`, stored as two 3-D tensors, `gate_up_proj` (E, 2I, D) and `down_proj` (E, D, I).
  `run_fused_experts` groups tokens per expert (a loop over experts, never over tokens) and sums
  each token's expert outputs in expert order, as the reference's loop does.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu": F.gelu,
}


class GemmaRMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float, with_scale: bool = True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if with_scale else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        # pow(-0.5), not rsqrt: the reference's choice (kept for bit-equal float32 logits).
        out = xf * torch.pow(xf.pow(2).mean(-1, keepdim=True) + self.eps, -0.5)
        if self.weight is not None:
            out = out * self.weight.float()
        return out.to(x.dtype)


def inverse_frequencies(head_dim: int, params: dict) -> torch.Tensor:
    """(head_dim / 2,) float32 for one layer type's `rope_parameters` ("default" or "proportional").
    Made on the CPU even while the loader builds the network on the meta device (not a weight)."""
    theta = float(params.get("rope_theta", 10000.0))
    kind = params.get("rope_type", "default")
    if kind == "default":
        dim = int(head_dim * params.get("partial_rotary_factor", 1.0))
        return 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float, device="cpu") / dim))
    if kind == "proportional":
        angles = int(params.get("partial_rotary_factor", 1.0) * head_dim // 2)
        rotated = 1.0 / (theta ** (torch.arange(0, 2 * angles, 2, dtype=torch.float, device="cpu") / head_dim))
        inv = torch.cat([rotated, torch.zeros(head_dim // 2 - angles, device="cpu")])
        return inv / params.get("factor", 1.0)
    raise ValueError(f"rope_parameters.rope_type: expected 'default' or 'proportional', got {kind!r}")


def rope_tables(positions: torch.Tensor, inv_freq: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """cos/sin (B, 1, L, D) in `dtype` for integer positions (B, L)."""
    freqs = positions.float()[..., None] * inv_freq.to(positions.device)  # (B, L, D/2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype)[:, None], emb.sin().to(dtype)[:, None]


def run_fused_experts(
    x: torch.Tensor,
    gate_up: torch.Tensor,
    down: torch.Tensor,
    index: torch.Tensor,
    weight: torch.Tensor,
    act: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """x (N, D); gate_up (E, 2I, D); down (E, D, I); index, weight (N, k) -> (N, D)."""
    N, k = index.shape
    flat = index.reshape(-1)
    order = flat.argsort(stable=True)
    counts = torch.bincount(flat, minlength=gate_up.shape[0]).tolist()
    out = torch.zeros_like(x)
    begin = 0
    for e, n in enumerate(counts):
        if n == 0:
            continue
        pairs = order[begin : begin + n]
        rows = pairs // k
        gate, up = F.linear(x[rows], gate_up[e]).chunk(2, dim=-1)
        h = F.linear(act(gate) * up, down[e]) * weight.reshape(-1)[pairs, None]
        out.index_add_(0, rows, h.to(out.dtype))
        begin += n
    return out


def grouped_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """SDPA with scale 1 (Gemma 4 RMS-normalises q and k instead), never causal: the mask says it all.
    q (B, H, Lq, D); k, v (B, H_kv, Lk, D); mask bool, True = may attend."""
    groups = q.shape[1] // k.shape[1]
    if groups > 1:
        k = k.repeat_interleave(groups, dim=1)
        v = v.repeat_interleave(groups, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0)


class GemmaMLP(nn.Module):
    """down(act(gate(x)) * up(x)) with Gemma's tanh-approximated GELU."""

    def __init__(self, hidden: int, intermediate: int, act: str):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)
        if act not in ACTIVATIONS:
            raise ValueError(f"hidden_activation: expected one of {', '.join(ACTIVATIONS)}, got {act!r}")
        self.act = ACTIVATIONS[act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class GemmaRouter(nn.Module):
    """Softmax over experts of the scale-free RMSNorm'd input times `scale / sqrt(hidden)`, top-k
    renormalised to sum 1, then times each chosen expert's `per_expert_scale`."""

    def __init__(self, hidden: int, experts: int, top_k: int, eps: float):
        super().__init__()
        self.norm = GemmaRMSNorm(hidden, eps, with_scale=False)
        self.proj = nn.Linear(hidden, experts, bias=False)
        self.scale = nn.Parameter(torch.ones(hidden))
        self.per_expert_scale = nn.Parameter(torch.ones(experts))
        self.top_k, self.root = top_k, hidden**-0.5

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, D) -> weight (N, k) float32, index (N, k)."""
        scores = self.proj(self.norm(x) * self.scale * self.root)  # (N, E)
        weight, index = torch.topk(scores.softmax(-1, dtype=torch.float32), self.top_k, dim=-1)
        weight = weight / weight.sum(-1, keepdim=True)
        return weight * self.per_expert_scale[index], index


class GemmaExperts(nn.Module):
    """Experts as fused 3-D weights: gate_up_proj (E, 2I, D), down_proj (E, D, I)."""

    def __init__(self, experts: int, hidden: int, intermediate: int, act: str):
        super().__init__()
        self.gate_up_proj = nn.Parameter(torch.empty(experts, 2 * intermediate, hidden))
        self.down_proj = nn.Parameter(torch.empty(experts, hidden, intermediate))
        self.act = ACTIVATIONS[act]

    def forward(self, x: torch.Tensor, weight: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return run_fused_experts(x, self.gate_up_proj, self.down_proj, index, weight, self.act)
