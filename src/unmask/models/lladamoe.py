"""LLaDA-MoE (OLMoE-style mixture of experts) bidirectional transformer, with the Hugging Face names.

Notable features:
- Checkpoints: inclusionAI/LLaDA-MoE-7B-A1B-{Base,Instruct} (arXiv:2509.24389): 16 layers, 64 experts,
  8 per token. The hub config says `model_type` "llada" (the dense LLaDA's); it is registered here as
  "lladamoe", the spelling of dllm's `LLaDAMoEConfig`, which is also what dllm tells users to set.
- A full-canvas mask predictor like LLaDA: no logit shift (`logits[:, i]` predicts position i), never
  causal, positions 0..L-1 never renumbered around pads; pad *keys* are masked, as in dllm's
  attention-mask-aware copy of the hub file (the hub file itself drops `attention_mask`).
- Attention: q/k RMSNorm over each head (`qk_layernorm`) before RoPE, optional `clip_qkv` clamp, and
  RoPE on the first `head_dim * partial_rotary_factor` dims only; cos/sin are cast to the activations'
  dtype before rotating, as the reference does.
- Router: float32 softmax over the experts, plus `expert_bias` when `moe_router_enable_expert_bias`,
  then top-k. The weights are those biased scores, never renormalised: the reference hard-codes
  `norm_topk_prob = False` and reads neither `moe_router_score_function`, `routed_scaling_factor` nor
  the router groups, so neither do we. Layer i is dense when `moe_layer_freq[i] == 0`; a shared expert
  (`shared_expert_intermediate_size`) is added unweighted to the routed output.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn

from .layers import KVStore, LeftPadding, RMSNorm, apply_rope, attend, rope_cos_sin
from .moe import Expert, run_experts


@dataclass
class LLaDAMoEArgs:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int | None = None
    dense_intermediate_size: int | None = None
    expert_intermediate_size: int | None = None
    shared_expert_intermediate_size: int | None = None
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_layer_freq: list = field(default_factory=list)
    moe_router_enable_expert_bias: bool | None = None
    qk_layernorm: bool | None = None
    clip_qkv: float | None = None
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    partial_rotary_factor: float = 1.0
    rope_scaling: dict | None = None
    attention_bias: bool = False
    hidden_act: str = "silu"
    tie_word_embeddings: bool = False
    max_position_embeddings: int = 4096

    @classmethod
    def from_config(cls, config: dict) -> LLaDAMoEArgs:
        args = cls(**{f.name: config[f.name] for f in fields(cls) if config.get(f.name) is not None})
        args.num_key_value_heads = args.num_key_value_heads or args.num_attention_heads
        if args.hidden_act != "silu":
            raise ValueError(f"hidden_act: only 'silu' is supported, got {args.hidden_act!r}")
        if args.rope_scaling not in (None, {}) and args.rope_scaling.get(
            "rope_type", args.rope_scaling.get("type")
        ) not in ("default", None):
            raise ValueError(f"rope_scaling: only default RoPE is supported, got {args.rope_scaling!r}")
        if args.hidden_size % args.num_attention_heads:
            raise ValueError(
                f"hidden_size: {args.hidden_size} is not divisible by num_attention_heads {args.num_attention_heads}"
            )
        if not 0 < args.partial_rotary_factor <= 1 or args.rotary_dim % 2:
            raise ValueError(
                f"partial_rotary_factor: must give an even rotary width in (0, head_dim], got "
                f"{args.partial_rotary_factor!r} (width {args.rotary_dim})"
            )
        freq = args.moe_layer_freq
        if not isinstance(freq, list) or len(freq) != args.num_hidden_layers:
            raise ValueError(
                f"moe_layer_freq: expected one 0/1 entry per layer ({args.num_hidden_layers}), got {freq!r}"
            )
        if any(freq) and not 0 < args.num_experts_per_tok <= args.num_experts:
            raise ValueError(
                f"num_experts_per_tok: must be in 1..num_experts ({args.num_experts}), got {args.num_experts_per_tok}"
            )
        for key, needed in (("expert_intermediate_size", any(freq)), ("dense_intermediate_size", not all(freq))):
            if needed and not (getattr(args, key) or 0) > 0:
                raise ValueError(f"{key}: a positive size is needed by moe_layer_freq {freq!r}")
        return args

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def rotary_dim(self) -> int:
        # transformers' default RoPE init: int(head_dim * partial_rotary_factor) dims get rotated.
        return int(self.head_dim * self.partial_rotary_factor)

    def sparse(self, layer: int) -> bool:
        return self.moe_layer_freq[layer] != 0


def partial_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first cos.shape[-1] dims of x (B, H, L, D); the rest pass through unrotated."""
    rot = cos.shape[-1]
    if rot == x.shape[-1]:
        return apply_rope(x, cos, sin, False)
    return torch.cat([apply_rope(x[..., :rot], cos, sin, False), x[..., rot:]], dim=-1)


class LLaDAMoEAttention(nn.Module):
    def __init__(self, args: LLaDAMoEArgs, layer: int):
        super().__init__()
        self.layer, self.args = layer, args
        H, Hkv, D = args.num_attention_heads, args.num_key_value_heads, args.head_dim
        bias = args.attention_bias
        self.q_proj = nn.Linear(args.hidden_size, H * D, bias=bias)
        self.k_proj = nn.Linear(args.hidden_size, Hkv * D, bias=bias)
        self.v_proj = nn.Linear(args.hidden_size, Hkv * D, bias=bias)
        self.o_proj = nn.Linear(args.hidden_size, args.hidden_size, bias=bias)
        if args.qk_layernorm:
            self.q_norm = RMSNorm(D, args.rms_norm_eps)
            self.k_norm = RMSNorm(D, args.rms_norm_eps)

    def forward(self, x, cos, sin, mask, cache: KVStore | None, start: int) -> torch.Tensor:
        B, L, _ = x.shape
        H, Hkv, D = self.args.num_attention_heads, self.args.num_key_value_heads, self.args.head_dim
        q = self.q_proj(x).view(B, L, H, D)
        k = self.k_proj(x).view(B, L, Hkv, D)
        v = self.v_proj(x).view(B, L, Hkv, D)
        if self.args.qk_layernorm:
            q, k = self.q_norm(q), self.k_norm(k)  # per head, before RoPE (OLMoE)
        if self.args.clip_qkv is not None:
            c = self.args.clip_qkv
            q, k, v = q.clamp(-c, c), k.clamp(-c, c), v.clamp(-c, c)
        q = partial_rope(q.transpose(1, 2), cos, sin)  # (B, H, L, D)
        k = partial_rope(k.transpose(1, 2), cos, sin)  # (B, Hkv, L, D)
        v = v.transpose(1, 2)
        if cache is not None:
            k, v = cache.write(self.layer, start, k, v)
        out = attend(q, k, v, mask)  # (B, H, L, D)
        return self.o_proj(out.transpose(1, 2).reshape(B, L, H * D))


class LLaDAMoESparseMoe(nn.Module):
    """Softmax router (`gate`), its optional `expert_bias` buffer, and `experts.{j}`."""

    def __init__(self, args: LLaDAMoEArgs):
        super().__init__()
        self.top_k = args.num_experts_per_tok
        self.gate = nn.Linear(args.hidden_size, args.num_experts, bias=False)
        self.experts = nn.ModuleList(
            Expert(args.hidden_size, args.expert_intermediate_size) for _ in range(args.num_experts)
        )
        self.expert_bias: torch.Tensor | None
        if args.moe_router_enable_expert_bias:
            self.register_buffer("expert_bias", torch.zeros(args.num_experts))
        else:
            self.expert_bias = None

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, D) -> the chosen experts (N, k) and their weights (N, k) in x's dtype."""
        scores = F.softmax(self.gate(x), dim=-1, dtype=torch.float32)  # (N, E)
        if self.expert_bias is not None:
            # The bias picks the experts *and* stays in their weights (the reference adds it in place).
            scores = scores + self.expert_bias.float()
        weight, index = torch.topk(scores, self.top_k, dim=-1)
        return index, weight.to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        flat = x.reshape(B * L, D)
        index, weight = self.route(flat)
        return run_experts(flat, self.experts, index, weight).view(B, L, D)


class LLaDAMoELayer(nn.Module):
    def __init__(self, args: LLaDAMoEArgs, layer: int):
        super().__init__()
        self.input_layernorm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.self_attn = LLaDAMoEAttention(args, layer)
        self.post_attention_layernorm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        sparse = args.sparse(layer)
        self.mlp = LLaDAMoESparseMoe(args) if sparse else Expert(args.hidden_size, args.dense_intermediate_size)
        if sparse and args.shared_expert_intermediate_size:
            self.shared_expert = Expert(args.hidden_size, args.shared_expert_intermediate_size)
        else:
            self.shared_expert = None

    def forward(self, x, cos, sin, mask, cache, start) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, start)
        h = self.post_attention_layernorm(x)
        out = self.mlp(h)
        if self.shared_expert is not None:
            out = out + self.shared_expert(h)
        return x + out


class LLaDAMoEBackbone(nn.Module):
    def __init__(self, args: LLaDAMoEArgs):
        super().__init__()
        self.embed_tokens = nn.Embedding(args.vocab_size, args.hidden_size)
        self.layers = nn.ModuleList(LLaDAMoELayer(args, i) for i in range(args.num_hidden_layers))
        self.norm = RMSNorm(args.hidden_size, args.rms_norm_eps)


class LLaDAMoEModel(nn.Module):
    """LLaDA-MoE with `model.*` and `lm_head.*` parameters, as in the hub checkpoints."""

    shift_logits = False

    def __init__(self, args: LLaDAMoEArgs):
        super().__init__()
        self.args = args
        self.model = LLaDAMoEBackbone(args)
        self.lm_head = nn.Linear(args.hidden_size, args.vocab_size, bias=False)
        if args.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    @property
    def n_layers(self) -> int:
        return self.args.num_hidden_layers

    @staticmethod
    def positions(key_mask: torch.Tensor | None, length: int, device) -> torch.Tensor:
        """Position ids (1, L): like LLaDA, pads keep their positions."""
        return torch.arange(length, device=device)[None]

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        cache: KVStore | None = None,
        start: int = 0,
        keep: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Raw logits (B, Lq, V) for tokens at canvas positions [start, start + Lq).

        key_mask (B, Lk) is True for real tokens over the whole canvas (Lk = canvas length).
        keep=(a, b) returns logits only for window rows a..b-1 (the LM head is costly).
        """
        B, Lq = input_ids.shape
        if positions is None:
            positions = torch.arange(start, start + Lq, device=input_ids.device)[None]
        mask = LeftPadding.of(key_mask, start)  # pad keys hidden: each row attends to its own tokens
        cos, sin = rope_cos_sin(positions, self.args.rotary_dim, self.args.rope_theta)  # (B|1, 1, L, rot)
        x = self.model.embed_tokens(input_ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask, cache, start)
        if keep is not None:
            x = x[:, keep[0] : keep[1]]
        return self.lm_head(self.model.norm(x))
