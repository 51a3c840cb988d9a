"""SDAR (Qwen3-style) block-diffusion transformer, dense and MoE, with the Hugging Face parameter names.

Notable features:
- Checkpoints: JetLM/SDAR-{1.7B,4B,8B}-Chat and SDAR-30B-A3B-Chat (`model_type` "sdar"; the MoE
  copy says "sdar_moe"), reference `JetAstra/SDAR` training/model/SDAR-4B-Chat/modeling_sdar.py.
- Block diffusion (arXiv:2510.06303): attention is bidirectional inside a block and causal across
  blocks. The sampler passes that mask (`attn_mask`) and a `BlockCache` of finished blocks; a
  denoising pass attends to cache + block without writing it (the reference's `store_kv=False`).
- Qwen3 details: an explicit `head_dim` (128 where hidden/heads is 80 in the 1.7B/4B), per-head
  RMSNorm on queries and keys before RoPE, no biases, untied LM head. No logit shift:
  `logits[:, i]` predicts token i, although SDAR was adapted from an autoregressive Qwen3.
- RMSNorm is flash_attn's `rms_norm_fn`, which the reference always calls: the weight is applied
  in float32 before the cast back (Qwen's torch RMSNorm casts first).
- MoE layers (SDAR-30B-A3B) route as Qwen3-MoE: softmax over `num_experts` in float32, top
  `num_experts_per_tok`, renormalised when `norm_topk_prob`; `decoder_sparse_step` and
  `mlp_only_layers` say which layers are sparse.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import nn

from .layers import BlockCache, apply_rope, attend, gated_mlp, rope_cos_sin
from .moe import Expert, run_experts


@dataclass
class SDARArgs:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int | None = None
    head_dim: int | None = None  # None: hidden_size // num_attention_heads
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1000000.0
    max_position_embeddings: int = 32768
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    hidden_act: str = "silu"
    rope_scaling: dict | None = None
    use_sliding_window: bool = False
    block_size: int = 4  # the block length the checkpoint was trained with
    # MoE (0 experts: dense)
    num_experts: int = 0
    num_experts_per_tok: int = 1
    moe_intermediate_size: int | None = None
    norm_topk_prob: bool = True
    decoder_sparse_step: int = 1
    mlp_only_layers: list[int] = field(default_factory=list)

    @classmethod
    def from_config(cls, config: dict) -> SDARArgs:
        args = cls(**{f.name: config[f.name] for f in fields(cls) if config.get(f.name) is not None})
        if args.num_key_value_heads is None:
            args.num_key_value_heads = args.num_attention_heads
        if args.head_dim is None:
            args.head_dim = args.hidden_size // args.num_attention_heads
        if args.hidden_act != "silu":
            raise ValueError(f"hidden_act: only 'silu' is supported, got {args.hidden_act!r}")
        if args.rope_scaling not in (None, {}) and args.rope_scaling.get(
            "rope_type", args.rope_scaling.get("type")
        ) not in (None, "default"):
            raise ValueError(f"rope_scaling: only default RoPE is supported, got {args.rope_scaling!r}")
        if args.use_sliding_window:
            raise ValueError("use_sliding_window: sliding-window attention is not supported, set it to false")
        if args.num_experts and not 1 <= args.num_experts_per_tok <= args.num_experts:
            raise ValueError(
                f"num_experts_per_tok: must be in 1..{args.num_experts} (num_experts), got {args.num_experts_per_tok}"
            )
        if args.num_experts and args.moe_intermediate_size is None:
            raise ValueError("moe_intermediate_size: required when num_experts > 0")
        return args

    def sparse(self, layer: int) -> bool:
        """Qwen3-MoE's rule for which layers have experts."""
        return (
            self.num_experts > 0
            and layer not in self.mlp_only_layers
            and (layer + 1) % max(self.decoder_sparse_step, 1) == 0
        )


class SDARRMSNorm(nn.Module):
    """x * rsqrt(mean(x^2) + eps) * w, all in float32, then cast back (flash_attn's rms_norm_fn)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (xf * self.weight.float()).to(x.dtype)


class SDARAttention(nn.Module):
    def __init__(self, args: SDARArgs, layer: int):
        super().__init__()
        self.layer, self.args = layer, args
        H, Hkv, D, bias = args.num_attention_heads, args.num_key_value_heads, args.head_dim, args.attention_bias
        self.q_proj = nn.Linear(args.hidden_size, H * D, bias=bias)
        self.k_proj = nn.Linear(args.hidden_size, Hkv * D, bias=bias)
        self.v_proj = nn.Linear(args.hidden_size, Hkv * D, bias=bias)
        self.o_proj = nn.Linear(H * D, args.hidden_size, bias=bias)
        self.q_norm = SDARRMSNorm(D, args.rms_norm_eps)  # per head, over head_dim only
        self.k_norm = SDARRMSNorm(D, args.rms_norm_eps)

    def forward(self, x, cos, sin, mask, cache: BlockCache | None, start: int, store: bool) -> torch.Tensor:
        B, L, _ = x.shape
        H, Hkv, D = self.args.num_attention_heads, self.args.num_key_value_heads, self.args.head_dim
        q = self.q_norm(self.q_proj(x).view(B, L, H, D)).transpose(1, 2)  # (B, H, L, D)
        k = self.k_norm(self.k_proj(x).view(B, L, Hkv, D)).transpose(1, 2)  # (B, Hkv, L, D)
        v = self.v_proj(x).view(B, L, Hkv, D).transpose(1, 2)
        q, k = apply_rope(q, cos, sin, False), apply_rope(k, cos, sin, False)
        if cache is not None:
            k, v = cache.extend(self.layer, start, k, v, store)  # (B, Hkv, start + L, D)
        out = attend(q, k, v, mask)  # (B, H, L, D); SDPA's default scale is head_dim ** -0.5
        return self.o_proj(out.transpose(1, 2).reshape(B, L, H * D))


class SDARMLP(nn.Module):
    def __init__(self, args: SDARArgs):
        super().__init__()
        self.gate_proj = nn.Linear(args.hidden_size, args.intermediate_size, bias=False)
        self.up_proj = nn.Linear(args.hidden_size, args.intermediate_size, bias=False)
        self.down_proj = nn.Linear(args.intermediate_size, args.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gated_mlp(x, self.gate_proj, self.up_proj, self.down_proj)


class SDARSparseMoe(nn.Module):
    """Qwen3-MoE feed-forward: `mlp.gate` [E, D] router and `mlp.experts.{i}.{gate,up,down}_proj`."""

    def __init__(self, args: SDARArgs):
        super().__init__()
        self.top_k, self.renormalize = args.num_experts_per_tok, args.norm_topk_prob
        self.gate = nn.Linear(args.hidden_size, args.num_experts, bias=False)
        self.experts = nn.ModuleList(
            Expert(args.hidden_size, args.moe_intermediate_size) for _ in range(args.num_experts)
        )

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, D) -> each token's experts (N, k) and weights (N, k), softmax taken in float32."""
        scores = torch.softmax(self.gate(x).float(), dim=-1)  # (N, E)
        weight, index = torch.topk(scores, self.top_k, dim=-1)
        if self.renormalize:
            weight = weight / weight.sum(-1, keepdim=True)
        return index, weight.to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        flat = x.reshape(B * L, D)
        index, weight = self.route(flat)
        return run_experts(flat, self.experts, index, weight).view(B, L, D)


class SDARLayer(nn.Module):
    def __init__(self, args: SDARArgs, layer: int):
        super().__init__()
        self.input_layernorm = SDARRMSNorm(args.hidden_size, args.rms_norm_eps)
        self.self_attn = SDARAttention(args, layer)
        self.post_attention_layernorm = SDARRMSNorm(args.hidden_size, args.rms_norm_eps)
        self.mlp = SDARSparseMoe(args) if args.sparse(layer) else SDARMLP(args)

    def forward(self, x, cos, sin, mask, cache, start, store) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, start, store)
        return x + self.mlp(self.post_attention_layernorm(x))


class SDARBackbone(nn.Module):
    def __init__(self, args: SDARArgs):
        super().__init__()
        self.embed_tokens = nn.Embedding(args.vocab_size, args.hidden_size)
        self.layers = nn.ModuleList(SDARLayer(args, i) for i in range(args.num_hidden_layers))
        self.norm = SDARRMSNorm(args.hidden_size, args.rms_norm_eps)


def visibility(
    Lq: int,
    start: int,
    cached: bool,
    key_mask: torch.Tensor | None,
    attn_mask: torch.Tensor | None,
) -> torch.Tensor | None:
    """The bool mask (B|1, 1, Lq, Lk) a pass attends with, True = may attend.

    Keys are canvas positions [0, start + Lq) with a cache, else the window [start, start + Lq).
    Pad keys (key_mask False) are hidden; a pad query sees itself, so that no row is empty."""
    if key_mask is None or bool(key_mask.all()):
        return attn_mask
    k0 = 0 if cached else start
    keys = key_mask[:, k0 : start + Lq]  # (B, Lk)
    mask = keys[:, None, None, :]
    if attn_mask is not None:
        mask = mask & attn_mask
    rows = torch.arange(start, start + Lq, device=keys.device)
    self_key = rows[:, None] == torch.arange(k0, start + Lq, device=keys.device)[None]  # (Lq, Lk)
    pad_query = ~key_mask[:, start : start + Lq]  # (B, Lq)
    return mask | (self_key[None, None] & pad_query[:, None, :, None])


class SDARModel(nn.Module):
    """SDAR with `model.*` and `lm_head.*` parameters, as in the hub checkpoints."""

    shift_logits = False
    block_diffusion = True

    def __init__(self, args: SDARArgs):
        super().__init__()
        self.args = args
        self.model = SDARBackbone(args)
        self.lm_head = nn.Linear(args.hidden_size, args.vocab_size, bias=False)
        if args.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    @property
    def n_layers(self) -> int:
        return self.args.num_hidden_layers

    @staticmethod
    def positions(key_mask: torch.Tensor | None, length: int, device) -> torch.Tensor:
        """Position ids (B or 1, L): real tokens count from 0 after the left pads (pads sit at 0),
        so a padded row sees the positions it has alone (the reference sampler has no padding)."""
        if key_mask is None or bool(key_mask.all()):
            return torch.arange(length, device=device)[None]
        return (key_mask.long().cumsum(-1) - 1).clamp(min=0)

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
        """Raw logits (B, Lq, V) for tokens at canvas positions [start, start + Lq).

        key_mask (B, L) marks real tokens over the whole canvas. attn_mask (B|1, 1, Lq, Lk) bool
        spans the cached positions and the window with a cache, else the window; None lets
        everything attend to everything. With a `BlockCache`, `store=False` reads it without
        appending this window. keep=(a, b) returns logits for window rows a..b-1 only."""
        B, Lq = input_ids.shape
        if positions is None:
            positions = torch.arange(start, start + Lq, device=input_ids.device)[None].expand(B, Lq)
        mask = visibility(Lq, start, cache is not None, key_mask, attn_mask)
        cos, sin = rope_cos_sin(positions, self.args.head_dim, self.args.rope_theta)
        x = self.model.embed_tokens(input_ids)  # (B, Lq, D)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask, cache, start, store)
        if keep is not None:
            x = x[:, keep[0] : keep[1]]
        return self.lm_head(self.model.norm(x))
