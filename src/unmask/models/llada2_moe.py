"""LLaDA2.x (inclusionAI LLaDA2.0/2.1 mini and flash): a block-diffusion mixture-of-experts transformer.

Notable features:
- `model_type` "llada2_moe" (hub) or "llada2_moe_veomni" (dFactory's training copies), with the
  hub parameter names: `model.word_embeddings`, `attention.query_key_value` (fused),
  `attention.{query,key}_layernorm`, `attention.dense`, `mlp.gate` (+ its `expert_bias` buffer),
  `mlp.experts.{i}`, `mlp.shared_experts`, `model.norm`, `lm_head`.
- q/k RMSNorm per head before RoPE; partial RoPE on the first `head_dim * partial_rotary_factor`
  dims, with inv_freq computed over that width (transformers 4.5x default RoPE on that `dim`).
- Sigmoid router with a load-balancing `expert_bias` (DeepSeek-V3 style, arXiv:2412.19437 §2.1.2):
  the bias chooses the experts only; their weights are the unbiased scores, renormalised and scaled
  by `routed_scaling_factor`. Group-limited top-k: groups ranked by the sum of their two best
  scores. A shared expert is added unweighted; layers < `first_k_dense_replace` are dense.
- No logit shift (`logits[:, i]` predicts token i) and bidirectional attention unless a mask says
  otherwise: `attn_mask` is honoured as given, so the sampler picks the pipeline's causal + padding
  windows or the block-causal mask the model was trained with; a `BlockCache` of finished blocks
  serves the block-causal fast path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from .layers import BlockCache, RMSNorm, apply_rope, attend, rope_cos_sin
from .moe import Expert, run_experts

# The reference divides by the sum of the chosen scores plus this, so that it never divides by 0.
RENORM_EPS = 1e-20
# Groups are ranked by the sum of their best scores (DeepSeek-V3's node-limited routing uses two).
GROUP_SCORE_TOP = 2


@dataclass
class LLaDA2Args:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    vocab_size: int
    num_key_value_heads: int = 0  # 0: as many as the query heads (the config class default)
    head_dim: int | None = None
    intermediate_size: int | None = None
    moe_intermediate_size: int | None = None
    num_experts: int | None = 16
    num_shared_experts: int | None = 0
    num_experts_per_tok: int = 2
    n_group: int = 8
    topk_group: int = 4
    routed_scaling_factor: float = 2.5
    first_k_dense_replace: int = 0
    partial_rotary_factor: float = 0.5
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    use_qk_norm: bool = True
    use_qkv_bias: bool = False
    use_bias: bool = True
    tie_word_embeddings: bool = False
    hidden_act: str = "silu"
    norm_head: bool = False
    rope_scaling: dict | None = None
    score_function: str = "sigmoid"
    use_sliding_window: bool = False
    max_position_embeddings: int = 16384

    @classmethod
    def from_config(cls, config: dict) -> LLaDA2Args:
        args = cls(**{f.name: config[f.name] for f in fields(cls) if f.name in config})
        args.num_key_value_heads = args.num_key_value_heads or args.num_attention_heads
        args.head_dim = args.head_dim or args.hidden_size // args.num_attention_heads
        unsupported = {
            "hidden_act": (args.hidden_act, "silu"),
            "norm_head": (args.norm_head, False),
            "rope_scaling": (args.rope_scaling, None),
            "score_function": (args.score_function, "sigmoid"),
            "use_sliding_window": (args.use_sliding_window, False),
            "tie_word_embeddings": (args.tie_word_embeddings, False),
        }
        for key, (value, wanted) in unsupported.items():
            if value != wanted:
                raise ValueError(f"{key}: only {wanted!r} is supported for LLaDA2 checkpoints, got {value!r}")
        if args.num_experts:
            if args.num_experts % args.n_group:
                raise ValueError(f"n_group: {args.n_group} must divide num_experts ({args.num_experts})")
            if not 1 <= args.topk_group <= args.n_group:
                raise ValueError(f"topk_group: must be in [1, n_group={args.n_group}], got {args.topk_group}")
            reachable = args.topk_group * args.num_experts // args.n_group
            if not 1 <= args.num_experts_per_tok <= reachable:
                raise ValueError(
                    f"num_experts_per_tok: must be in [1, {reachable}] (the experts of topk_group groups), "
                    f"got {args.num_experts_per_tok}"
                )
        return args

    @property
    def rope_dim(self) -> int:
        return int(self.head_dim * self.partial_rotary_factor)

    def sparse(self, layer: int) -> bool:
        return bool(self.num_experts) and layer >= self.first_k_dense_replace


def partial_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first cos.shape[-1] dims of x (B, H, L, D); the rest pass through unchanged."""
    r = cos.shape[-1]
    return torch.cat([apply_rope(x[..., :r], cos, sin, full_precision=False), x[..., r:]], dim=-1)


class LLaDA2Attention(nn.Module):
    def __init__(self, args: LLaDA2Args, layer: int):
        super().__init__()
        self.layer, self.args = layer, args
        H, Hkv, D = args.num_attention_heads, args.num_key_value_heads, args.head_dim
        self.query_key_value = nn.Linear(args.hidden_size, (H + 2 * Hkv) * D, bias=args.use_qkv_bias)
        if args.use_qk_norm:
            self.query_layernorm = RMSNorm(D, args.rms_norm_eps)
            self.key_layernorm = RMSNorm(D, args.rms_norm_eps)
        self.dense = nn.Linear(H * D, args.hidden_size, bias=args.use_bias)

    def forward(self, x, cos, sin, mask, cache: BlockCache | None, start: int, store: bool) -> torch.Tensor:
        B, L, _ = x.shape
        H, Hkv, D = self.args.num_attention_heads, self.args.num_key_value_heads, self.args.head_dim
        qkv = self.query_key_value(x).view(B, L, H + 2 * Hkv, D)
        q, k, v = (t.transpose(1, 2) for t in qkv.split([H, Hkv, Hkv], dim=2))  # (B, H|Hkv, L, D)
        if self.args.use_qk_norm:
            q, k = self.query_layernorm(q), self.key_layernorm(k)
        q, k = partial_rope(q, cos, sin), partial_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.extend(self.layer, start, k, v, store)
        return self.dense(attend(q, k, v, mask).transpose(1, 2).reshape(B, L, H * D))


def group_limited_topk(scores: torch.Tensor, n_group: int, topk_group: int, top_k: int) -> torch.Tensor:
    """(N, E) routing scores -> (N, top_k) expert ids: the best top_k among the experts of the
    topk_group groups (of E / n_group consecutive experts) with the highest sum of their two best scores."""
    N, E = scores.shape
    if topk_group < n_group:
        grouped = scores.view(N, n_group, E // n_group)
        group_scores = grouped.topk(min(GROUP_SCORE_TOP, E // n_group), dim=-1).values.sum(-1)  # (N, G)
        kept = torch.zeros_like(group_scores, dtype=torch.bool)
        kept.scatter_(1, group_scores.topk(topk_group, dim=-1).indices, True)
        scores = scores.masked_fill(~kept.repeat_interleave(E // n_group, dim=1), -torch.inf)
    return scores.topk(top_k, dim=-1).indices


class LLaDA2Gate(nn.Module):
    """The router: `weight` (E, D) and the persistent `expert_bias` (E,) buffer of the checkpoint."""

    def __init__(self, args: LLaDA2Args):
        super().__init__()
        self.args = args
        self.weight = nn.Parameter(torch.empty(args.num_experts, args.hidden_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Linear's init, as the reference's
        self.register_buffer("expert_bias", torch.zeros(args.num_experts))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, D) -> each token's experts (N, k) and their weights (N, k) in float32."""
        a = self.args
        scores = torch.sigmoid(F.linear(x.float(), self.weight.float()))  # (N, E), router in float32
        index = group_limited_topk(scores + self.expert_bias, a.n_group, a.topk_group, a.num_experts_per_tok)
        weight = scores.gather(1, index)
        if a.num_experts_per_tok > 1:
            weight = weight / (weight.sum(-1, keepdim=True) + RENORM_EPS)
        return index, weight * a.routed_scaling_factor


class LLaDA2SparseMoe(nn.Module):
    def __init__(self, args: LLaDA2Args):
        super().__init__()
        self.gate = LLaDA2Gate(args)
        self.experts = nn.ModuleList(
            Expert(args.hidden_size, args.moe_intermediate_size) for _ in range(args.num_experts)
        )
        self.shared_experts = None
        if args.num_shared_experts:
            self.shared_experts = Expert(args.hidden_size, args.moe_intermediate_size * args.num_shared_experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        flat = x.reshape(B * L, D)
        index, weight = self.gate(flat)
        out = run_experts(flat, self.experts, index, weight)
        if self.shared_experts is not None:
            out = out + self.shared_experts(flat)
        return out.view(B, L, D)


class LLaDA2Layer(nn.Module):
    def __init__(self, args: LLaDA2Args, layer: int):
        super().__init__()
        self.input_layernorm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.attention = LLaDA2Attention(args, layer)
        self.post_attention_layernorm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.mlp = LLaDA2SparseMoe(args) if args.sparse(layer) else Expert(args.hidden_size, args.intermediate_size)

    def forward(self, x, cos, sin, mask, cache, start, store) -> torch.Tensor:
        x = x + self.attention(self.input_layernorm(x), cos, sin, mask, cache, start, store)
        return x + self.mlp(self.post_attention_layernorm(x))


class LLaDA2Backbone(nn.Module):
    def __init__(self, args: LLaDA2Args):
        super().__init__()
        self.word_embeddings = nn.Embedding(args.vocab_size, args.hidden_size)
        self.layers = nn.ModuleList(LLaDA2Layer(args, i) for i in range(args.num_hidden_layers))
        self.norm = RMSNorm(args.hidden_size, args.rms_norm_eps)


def visibility(
    Lq: int, start: int, cached: bool, key_mask: torch.Tensor | None, attn_mask: torch.Tensor | None
) -> torch.Tensor | None:
    """The bool mask (B|1, 1, Lq, Lk) a pass attends with, True = may attend; keys are canvas
    positions [0, start + Lq) with a cache, else the window [start, start + Lq).

    Pad keys (key_mask False) are hidden. A query left with no key (a left pad under a causal
    mask) sees every key instead of none, so that its output stays finite (SDPA gives NaN for an
    empty row, and NaN values leak through zero weights); no real token ever reads it."""
    mask = attn_mask
    if key_mask is not None:
        keys = key_mask[:, 0 if cached else start : start + Lq]  # (B, Lk)
        if not bool(keys.all()):
            mask = keys[:, None, None, :] if mask is None else mask & keys[:, None, None, :]
    if mask is None:
        return None
    return mask | ~mask.any(-1, keepdim=True)


class LLaDA2Model(nn.Module):
    """LLaDA2 with `model.*` and `lm_head.*` parameters, as in the hub checkpoints."""

    shift_logits = False
    block_diffusion = True

    def __init__(self, args: LLaDA2Args):
        super().__init__()
        self.args = args
        self.model = LLaDA2Backbone(args)
        self.lm_head = nn.Linear(args.hidden_size, args.vocab_size, bias=False)

    @property
    def n_layers(self) -> int:
        return self.args.num_hidden_layers

    @staticmethod
    def positions(key_mask: torch.Tensor | None, length: int, device) -> torch.Tensor:
        """Position ids (1, L): the LLaDA2 pipeline numbers every row 0..L-1, pads included."""
        return torch.arange(length, device=device)[None]

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        cache: BlockCache | None = None,
        start: int = 0,
        keep: tuple[int, int] | None = None,
        *,
        attn_mask: torch.Tensor | None = None,
        store: bool = True,
    ) -> torch.Tensor:
        """Raw float32 logits (B, Lq, V) for tokens at canvas positions [start, start + Lq).

        key_mask (B, L) marks real tokens over the canvas from position 0. attn_mask (B|1, 1, Lq, Lk)
        bool spans the cached positions and the window with a cache, else the window; None lets
        everything attend to everything. With a `BlockCache`, `store=False` reads it without
        appending this window. keep=(a, b) returns logits for window rows a..b-1 only."""
        B, Lq = input_ids.shape
        if positions is None:
            positions = torch.arange(start, start + Lq, device=input_ids.device)[None]
        mask = visibility(Lq, start, cache is not None, key_mask, attn_mask)
        cos, sin = rope_cos_sin(positions, self.args.rope_dim, self.args.rope_theta)  # (B|1, 1, Lq, rope_dim)
        x = self.model.word_embeddings(input_ids)  # (B, Lq, D)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask, cache, start, store)
        if keep is not None:
            x = x[:, keep[0] : keep[1]]
        return self.lm_head(self.model.norm(x)).float()
