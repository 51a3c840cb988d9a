"""Fast-dLLM v2: Qwen2.5 adapted to block diffusion, with the Hugging Face parameter names.

Notable features:
- Checkpoints: Efficient-Large-Model/Fast_dLLM_v2_7B and _1.5B (`model_type` "Fast_dLLM_Qwen").
  The network is Qwen2 unchanged: q/k/v projections with biases, RMSNorm, RoPE, SwiGLU
  (arXiv:2509.26328, Sec. 3).
- Adapted from an autoregressive model with a token shift: `logits[:, i]` predicts token i+1, as in
  Dream (`shift_logits = True`); the sampler shifts them. `forward` returns raw logits.
- Block diffusion (`block_diffusion = True`): trained with a mask that is bidirectional inside a
  block of `bd_size` tokens and causal across blocks, so the keys and values of finished blocks never
  change and a `BlockCache` holds them exactly. The caller passes the mask (`attn_mask`); the
  reference decodes a block attending to all of the cache and all of the block.
- `cache` may be any object with `BlockCache.extend`'s signature: the sampler's sub-block cache of
  Fast-dLLM v2 (sampling/subblocks.py) reuses a block's keys and values that way.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from .layers import BlockCache, RMSNorm, apply_rope, attend, gated_mlp, rope_cos_sin


@dataclass
class FastDLLMv2Args:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int | None = None
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    max_position_embeddings: int = 32768
    tie_word_embeddings: bool = False
    hidden_act: str = "silu"
    rope_scaling: dict | None = None
    use_sliding_window: bool = False
    layer_types: list | None = None
    bd_size: int = 32

    @classmethod
    def from_config(cls, config: dict) -> FastDLLMv2Args:
        args = cls(**{f.name: config[f.name] for f in fields(cls) if f.name in config})
        if args.num_key_value_heads is None:
            args.num_key_value_heads = args.num_attention_heads
        if args.hidden_act != "silu":
            raise ValueError(f"hidden_act: only 'silu' is supported, got {args.hidden_act!r}")
        if (
            args.rope_scaling not in (None, {})
            and args.rope_scaling.get("rope_type", args.rope_scaling.get("type")) != "default"
        ):
            raise ValueError(f"rope_scaling: only default RoPE is supported, got {args.rope_scaling!r}")
        if args.use_sliding_window or any(t != "full_attention" for t in args.layer_types or ()):
            raise ValueError("use_sliding_window / layer_types: only full attention is supported")
        if args.bd_size < 1:
            raise ValueError(f"bd_size: must be at least 1, got {args.bd_size}")
        return args

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


class FastDLLMv2Attention(nn.Module):
    def __init__(self, args: FastDLLMv2Args, layer: int):
        super().__init__()
        self.layer, self.args = layer, args
        H, Hkv, D = args.num_attention_heads, args.num_key_value_heads, args.head_dim
        self.q_proj = nn.Linear(args.hidden_size, H * D, bias=True)
        self.k_proj = nn.Linear(args.hidden_size, Hkv * D, bias=True)
        self.v_proj = nn.Linear(args.hidden_size, Hkv * D, bias=True)
        self.o_proj = nn.Linear(H * D, args.hidden_size, bias=False)

    def forward(self, x, cos, sin, mask, cache: BlockCache | None, start: int, store: bool) -> torch.Tensor:
        B, L, _ = x.shape
        H, Hkv, D = self.args.num_attention_heads, self.args.num_key_value_heads, self.args.head_dim
        q = self.q_proj(x).view(B, L, H, D).transpose(1, 2)  # (B, H, L, D)
        k = self.k_proj(x).view(B, L, Hkv, D).transpose(1, 2)  # (B, Hkv, L, D)
        v = self.v_proj(x).view(B, L, Hkv, D).transpose(1, 2)
        q, k = apply_rope(q, cos, sin, False), apply_rope(k, cos, sin, False)
        if cache is not None:
            k, v = cache.extend(self.layer, start, k, v, store)  # (B, Hkv, start + L, D)
        out = attend(q, k, v, mask)  # (B, H, L, D)
        return self.o_proj(out.transpose(1, 2).reshape(B, L, H * D))


class FastDLLMv2MLP(nn.Module):
    def __init__(self, args: FastDLLMv2Args):
        super().__init__()
        self.gate_proj = nn.Linear(args.hidden_size, args.intermediate_size, bias=False)
        self.up_proj = nn.Linear(args.hidden_size, args.intermediate_size, bias=False)
        self.down_proj = nn.Linear(args.intermediate_size, args.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gated_mlp(x, self.gate_proj, self.up_proj, self.down_proj)


class FastDLLMv2Layer(nn.Module):
    def __init__(self, args: FastDLLMv2Args, layer: int):
        super().__init__()
        self.input_layernorm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.self_attn = FastDLLMv2Attention(args, layer)
        self.post_attention_layernorm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.mlp = FastDLLMv2MLP(args)

    def forward(self, x, cos, sin, mask, cache, start, store) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, start, store)
        return x + self.mlp(self.post_attention_layernorm(x))


class FastDLLMv2Backbone(nn.Module):
    def __init__(self, args: FastDLLMv2Args):
        super().__init__()
        self.embed_tokens = nn.Embedding(args.vocab_size, args.hidden_size)
        self.layers = nn.ModuleList(FastDLLMv2Layer(args, i) for i in range(args.num_hidden_layers))
        self.norm = RMSNorm(args.hidden_size, args.rms_norm_eps)


class FastDLLMv2Model(nn.Module):
    """Fast-dLLM v2 with `model.*` and `lm_head.*` parameters, as in the hub checkpoints."""

    shift_logits = True
    block_diffusion = True

    def __init__(self, args: FastDLLMv2Args):
        super().__init__()
        self.args = args
        self.model = FastDLLMv2Backbone(args)
        self.lm_head = nn.Linear(args.hidden_size, args.vocab_size, bias=False)
        if args.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    @property
    def n_layers(self) -> int:
        return self.args.num_hidden_layers

    @staticmethod
    def positions(key_mask: torch.Tensor | None, length: int, device) -> torch.Tensor:
        """Position ids (B or 1, L): real tokens count from 0 after any left padding (pads sit at 0).
        The reference has no padding; its batch sampler pads on the right, where positions are natural."""
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
        """Raw logits (B, Lq', V) for tokens at canvas positions [start, start + Lq).

        attn_mask: bool (B|1, 1, Lq, Lk), True = may attend, over keys [0, start + Lq) with a cache,
        else over the window itself; None lets every query see every key. key_mask (B, >= start + Lq),
        True for real tokens, additionally hides pad keys (each query keeps its own key, so that a pad
        row never sees nothing and turns NaN). store=False attends to the cache without writing.
        keep=(a, b) returns logits only for window rows a..b-1 (the LM head is a large share of a pass).
        """
        B, Lq = input_ids.shape
        device = input_ids.device
        if positions is None:
            positions = torch.arange(start, start + Lq, device=device)[None].expand(B, Lq)
        key_start = 0 if cache is not None else start
        mask = attn_mask
        if key_mask is not None and not bool(key_mask[:, key_start : start + Lq].all()):
            keys = key_mask[:, key_start : start + Lq]  # (B, Lk)
            own = torch.arange(start, start + Lq, device=device)[:, None] == torch.arange(
                key_start, start + Lq, device=device
            )  # (Lq, Lk)
            visible = keys[:, None, None, :] | own  # (B, 1, Lq, Lk)
            mask = visible if mask is None else mask & visible
        cos, sin = rope_cos_sin(positions, self.args.head_dim, self.args.rope_theta)
        x = self.model.embed_tokens(input_ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask, cache, start, store)
        if keep is not None:
            x = x[:, keep[0] : keep[1]]
        return self.lm_head(self.model.norm(x))
