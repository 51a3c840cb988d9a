"""LLaDA (LLaMA/OLMo-style) bidirectional transformer, with the Hugging Face parameter names.

Notable features:
- Checkpoints: GSAI-ML/LLaDA-8B-{Base,Instruct}, LLaDA-1.5 (`model_type` "llada", `block_type`
  "llama"), and unmask's own embedded models.
- Trained as a mask predictor from scratch, so there is no logit shift: `logits[:, i]` is the
  prediction for position i.
- Padding follows the attention-mask-aware hub file (Oct 2025): pad *keys* are masked, pad queries
  are not, and positions are not renumbered (pads occupy RoPE positions 0..n_pad-1).
- RoPE is applied in float32 when `rope_full_precision` is set, as the reference does.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from .layers import KVStore, LeftPadding, RMSNorm, apply_rope, attend, gated_mlp, rope_cos_sin


@dataclass
class LLaDAArgs:
    d_model: int
    n_heads: int
    n_layers: int
    vocab_size: int
    n_kv_heads: int | None = None
    mlp_hidden_size: int | None = None
    mlp_ratio: int = 4
    embedding_size: int | None = None
    rope_theta: float = 10000.0
    rope_full_precision: bool = True
    rms_norm_eps: float = 1e-5
    include_bias: bool = False
    include_qkv_bias: bool = False
    weight_tying: bool = False
    max_sequence_length: int = 4096
    block_type: str = "llama"
    layer_norm_type: str = "rms"
    activation_type: str = "silu"
    rope: bool = True
    alibi: bool = False
    scale_logits: bool = False
    input_emb_norm: bool = False

    @classmethod
    def from_config(cls, config: dict) -> LLaDAArgs:
        args = cls(**{f.name: config[f.name] for f in fields(cls) if f.name in config})
        args.n_kv_heads = args.n_kv_heads or args.n_heads
        args.mlp_hidden_size = args.mlp_hidden_size or args.mlp_ratio * args.d_model
        args.embedding_size = args.embedding_size or args.vocab_size
        unsupported = {
            "block_type": (args.block_type, "llama"),
            "layer_norm_type": (args.layer_norm_type, "rms"),
            "activation_type": (args.activation_type, "silu"),
            "rope": (args.rope, True),
            "alibi": (args.alibi, False),
            "scale_logits": (args.scale_logits, False),
            "input_emb_norm": (args.input_emb_norm, False),
        }
        for key, (value, wanted) in unsupported.items():
            if value != wanted:
                raise ValueError(f"{key}: only {wanted!r} is supported for LLaDA checkpoints, got {value!r}")
        return args

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


class LLaDABlock(nn.Module):
    """One `LLaDALlamaBlock`: attention and SwiGLU MLP, each pre-normed with a residual."""

    def __init__(self, args: LLaDAArgs, layer: int):
        super().__init__()
        self.layer, self.args = layer, args
        H, Hkv, D = args.n_heads, args.n_kv_heads, args.head_dim
        qkv_bias = args.include_bias or args.include_qkv_bias
        self.attn_norm = RMSNorm(args.d_model, args.rms_norm_eps)
        self.q_proj = nn.Linear(args.d_model, H * D, bias=qkv_bias)
        self.k_proj = nn.Linear(args.d_model, Hkv * D, bias=qkv_bias)
        self.v_proj = nn.Linear(args.d_model, Hkv * D, bias=qkv_bias)
        self.attn_out = nn.Linear(H * D, args.d_model, bias=args.include_bias)
        self.ff_norm = RMSNorm(args.d_model, args.rms_norm_eps)
        self.ff_proj = nn.Linear(args.d_model, args.mlp_hidden_size, bias=args.include_bias)
        self.up_proj = nn.Linear(args.d_model, args.mlp_hidden_size, bias=args.include_bias)
        self.ff_out = nn.Linear(args.mlp_hidden_size, args.d_model, bias=args.include_bias)

    def forward(self, x, cos, sin, mask, cache: KVStore | None, start: int) -> torch.Tensor:
        B, L, _ = x.shape
        H, Hkv, D = self.args.n_heads, self.args.n_kv_heads, self.args.head_dim
        h = self.attn_norm(x)
        q = self.q_proj(h).view(B, L, H, D).transpose(1, 2)  # (B, H, L, D)
        k = self.k_proj(h).view(B, L, Hkv, D).transpose(1, 2)  # (B, Hkv, L, D)
        v = self.v_proj(h).view(B, L, Hkv, D).transpose(1, 2)
        full = self.args.rope_full_precision
        q, k = apply_rope(q, cos, sin, full), apply_rope(k, cos, sin, full)
        if cache is not None:
            k, v = cache.write(self.layer, start, k, v)
        att = attend(q, k, v, mask).transpose(1, 2).reshape(B, L, H * D)
        x = x + self.attn_out(att)
        return x + gated_mlp(self.ff_norm(x), self.ff_proj, self.up_proj, self.ff_out)


class LLaDATransformer(nn.Module):
    def __init__(self, args: LLaDAArgs):
        super().__init__()
        self.wte = nn.Embedding(args.embedding_size, args.d_model)
        self.blocks = nn.ModuleList(LLaDABlock(args, i) for i in range(args.n_layers))
        self.ln_f = RMSNorm(args.d_model, args.rms_norm_eps)
        if not args.weight_tying:
            self.ff_out = nn.Linear(args.d_model, args.embedding_size, bias=False)


class _Wrapper(nn.Module):
    def __init__(self, args: LLaDAArgs):
        super().__init__()
        self.transformer = LLaDATransformer(args)


class LLaDAModel(nn.Module):
    """LLaDA with `model.transformer.*` parameters, as in the hub checkpoints."""

    shift_logits = False

    def __init__(self, args: LLaDAArgs):
        super().__init__()
        self.args = args
        self.model = _Wrapper(args)

    @property
    def n_layers(self) -> int:
        return self.args.n_layers

    @staticmethod
    def positions(key_mask: torch.Tensor | None, length: int, device) -> torch.Tensor:
        """Position ids (1, L): LLaDA never renumbers around pads."""
        return torch.arange(length, device=device)[None]

    def embed(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.model.transformer.wte(input_ids)

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        cache: KVStore | None = None,
        start: int = 0,
        keep: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Logits (B, Lq, V) for tokens at canvas positions [start, start + Lq).

        key_mask (B, Lk) is True for real tokens over the whole canvas (Lk = canvas length).
        keep=(a, b) returns logits only for window rows a..b-1 (the LM head is costly).
        """
        B, Lq = input_ids.shape
        if positions is None:
            positions = torch.arange(start, start + Lq, device=input_ids.device)[None]
        mask = LeftPadding.of(key_mask, start)  # pad keys hidden: each row attends to its own tokens
        cos, sin = rope_cos_sin(positions, self.args.head_dim, self.args.rope_theta)
        t = self.model.transformer
        x = self.embed(input_ids, positions)
        for block in t.blocks:
            x = block(x, cos, sin, mask, cache, start)
        if keep is not None:
            x = x[:, keep[0] : keep[1]]
        x = t.ln_f(x)
        head = t.wte.weight if self.args.weight_tying else t.ff_out.weight
        return torch.nn.functional.linear(x, head)
