"""Dream (Qwen2-style) bidirectional transformer, with the Hugging Face parameter names.

Notable features:
- Checkpoints: Dream-org/Dream-v0-{Base,Instruct}-7B, Dream-Coder, DiffuCoder (`model_type` "Dream").
- Dream was adapted from an autoregressive Qwen2.5, so `logits[:, i]` predicts token i+1; the
  sampler shifts them (`shift_logits = True`). `forward` returns the raw, unshifted logits.
- Padding follows the hub sampler `DreamGenerationMixin._sample`: pad positions neither attend nor
  are attended to, and real tokens are numbered from 0 after the pads (pads get position 1).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from .layers import KVStore, LeftPadding, RMSNorm, apply_rope, attend, gated_mlp, rope_cos_sin


@dataclass
class DreamArgs:
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

    @classmethod
    def from_config(cls, config: dict) -> DreamArgs:
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
        return args

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


class DreamAttention(nn.Module):
    def __init__(self, args: DreamArgs, layer: int):
        super().__init__()
        self.layer, self.args = layer, args
        H, Hkv, D = args.num_attention_heads, args.num_key_value_heads, args.head_dim
        self.q_proj = nn.Linear(args.hidden_size, H * D, bias=True)
        self.k_proj = nn.Linear(args.hidden_size, Hkv * D, bias=True)
        self.v_proj = nn.Linear(args.hidden_size, Hkv * D, bias=True)
        self.o_proj = nn.Linear(H * D, args.hidden_size, bias=False)

    def forward(self, x, cos, sin, mask, cache: KVStore | None, start: int) -> torch.Tensor:
        B, L, _ = x.shape
        H, Hkv, D = self.args.num_attention_heads, self.args.num_key_value_heads, self.args.head_dim
        q = self.q_proj(x).view(B, L, H, D).transpose(1, 2)  # (B, H, L, D)
        k = self.k_proj(x).view(B, L, Hkv, D).transpose(1, 2)  # (B, Hkv, L, D)
        v = self.v_proj(x).view(B, L, Hkv, D).transpose(1, 2)
        q, k = apply_rope(q, cos, sin, False), apply_rope(k, cos, sin, False)
        if cache is not None:
            k, v = cache.write(self.layer, start, k, v)
        out = attend(q, k, v, mask)  # (B, H, L, D)
        return self.o_proj(out.transpose(1, 2).reshape(B, L, H * D))


class DreamMLP(nn.Module):
    def __init__(self, args: DreamArgs):
        super().__init__()
        self.gate_proj = nn.Linear(args.hidden_size, args.intermediate_size, bias=False)
        self.up_proj = nn.Linear(args.hidden_size, args.intermediate_size, bias=False)
        self.down_proj = nn.Linear(args.intermediate_size, args.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gated_mlp(x, self.gate_proj, self.up_proj, self.down_proj)


class DreamLayer(nn.Module):
    def __init__(self, args: DreamArgs, layer: int):
        super().__init__()
        self.input_layernorm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.self_attn = DreamAttention(args, layer)
        self.post_attention_layernorm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.mlp = DreamMLP(args)

    def forward(self, x, cos, sin, mask, cache, start) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, start)
        return x + self.mlp(self.post_attention_layernorm(x))


class DreamBackbone(nn.Module):
    def __init__(self, args: DreamArgs):
        super().__init__()
        self.embed_tokens = nn.Embedding(args.vocab_size, args.hidden_size)
        self.layers = nn.ModuleList(DreamLayer(args, i) for i in range(args.num_hidden_layers))
        self.norm = RMSNorm(args.hidden_size, args.rms_norm_eps)


class DreamModel(nn.Module):
    """Dream with `model.*` and `lm_head.*` parameters, as in the hub checkpoints."""

    shift_logits = True

    def __init__(self, args: DreamArgs):
        super().__init__()
        self.args = args
        self.model = DreamBackbone(args)
        self.lm_head = nn.Linear(args.hidden_size, args.vocab_size, bias=False)
        if args.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    @property
    def n_layers(self) -> int:
        return self.args.num_hidden_layers

    @staticmethod
    def positions(key_mask: torch.Tensor | None, length: int, device) -> torch.Tensor:
        """Position ids (B or 1, L): real tokens count from 0 after the pads, pads sit at 1."""
        if key_mask is None or bool(key_mask.all()):
            return torch.arange(length, device=device)[None]
        pos = key_mask.long().cumsum(-1) - 1
        return pos.masked_fill(~key_mask, 1)

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
        keep=(a, b) returns logits only for window rows a..b-1: the LM head is a large share of a
        pass at real vocabulary sizes, and the sampler reads one block.
        """
        B, Lq = input_ids.shape
        if positions is None:
            positions = torch.arange(start, start + Lq, device=input_ids.device)[None].expand(B, Lq)
        mask = LeftPadding.of(key_mask, start)  # each row attends to its own tokens only
        cos, sin = rope_cos_sin(positions, self.args.head_dim, self.args.rope_theta)
        x = self.model.embed_tokens(input_ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask, cache, start)
        if keep is not None:
            x = x[:, keep[0] : keep[1]]
        return self.lm_head(self.model.norm(x))
