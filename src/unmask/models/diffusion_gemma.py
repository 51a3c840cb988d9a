"""DiffusionGemma: a Gemma-4 MoE text encoder that fills a KV cache and a diffusion decoder that reads it.

Notable features:
- Checkpoints: `model_type` "diffusion_gemma" (`DiffusionGemmaForBlockDiffusion`), reference
  transformers 5.23 `models/diffusion_gemma/modeling_diffusion_gemma.py`. Only the text stack is
  built: the vision tower's weights in the file are skipped (`ignored_prefixes`).
- One set of text weights serves both halves, as the checkpoint ties them: the encoder has only its
  own `layer_scalar`s (`model.encoder.language_model.layers.{i}.layer_scalar`); embeddings, layers
  and norms are the decoder's, and the LM head is the decoder's embedding matrix.
- `encode` runs causal text attention over a window and appends its keys/values to a `BlockCache`
  (the prompt first, then each finished canvas). `forward` is the decoder: the canvas attends
  bidirectionally to itself and to the cache without writing it; sliding layers see only the last
  `sliding_window - 1` cached positions, all that transformers' `DynamicSlidingWindowLayer` keeps.
- Gemma 4 layers: sliding and full attention with their own head_dim (`per_layer_config`), q/k
  RMSNorm and a scale-free value norm, attention scale 1; full layers have no `v_proj` (V = K
  before its norm and RoPE) and partial "proportional" RoPE. Each layer adds a dense MLP and a
  routed MoE (router with `scale`, `per_expert_scale`), each with its own norms (seven in all),
  and ends multiplied by `layer_scalar`.
- Self-conditioning (decoder only): the previous pass's processed logits become a soft embedding
  `softmax(logits) @ E * sqrt(hidden)`, go through pre_norm and a gated MLP, are added to the
  token embeddings, and a weightless post_norm follows; None (a block's first pass) means zeros.
- Logits are softcapped in float32: `tanh(logits / 30) * 30`.
- Positions are plain `arange` over the canvas, left pads included (the reference does not shift).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .gemma_layers import (
    GemmaExperts,
    GemmaMLP,
    GemmaRMSNorm,
    GemmaRouter,
    grouped_attention,
    inverse_frequencies,
    rope_tables,
)
from .layers import BlockCache, apply_rope

SLIDING, FULL = "sliding_attention", "full_attention"
SOFTCAP = 30.0  # DiffusionGemmaTextConfig.final_logit_softcapping (a class attribute, not in config.json)
GLOBAL_HEAD_DIM = 512  # the config's default head_dim of full layers when per_layer_config is absent
# DiffusionGemmaTextConfig's RoPE when config.json has none: Gemma 4's partial RoPE on full layers.
PROPORTIONAL_DEFAULT = {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0}


@dataclass
class DiffusionGemmaArgs:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    layer_types: list[str]
    head_dims: list[int]  # per layer (per_layer_config)
    kv_heads: list[int]  # per layer
    num_experts: int
    top_k_experts: int
    moe_intermediate_size: int
    rope_parameters: dict  # layer type -> {"rope_type", "rope_theta", ...}
    sliding_window: int = 512
    rms_norm_eps: float = 1e-6
    hidden_activation: str = "gelu_pytorch_tanh"
    attention_bias: bool = False
    final_logit_softcapping: float = SOFTCAP
    max_position_embeddings: int = 131072
    canvas_length: int = 256
    pad_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 1
    bos_token_id: int | None = 2

    @classmethod
    def from_config(cls, config: dict) -> DiffusionGemmaArgs:
        """From config.json: the text settings live in `text_config`, canvas_length at the top."""
        text = config.get("text_config") or config
        if text.get("use_bidirectional_attention") == "all":
            raise ValueError("text_config.use_bidirectional_attention: 'all' is not supported (only null or 'vision')")
        n = text["num_hidden_layers"]
        types = list(text.get("layer_types") or [FULL if (i + 1) % 6 == 0 else SLIDING for i in range(n)])
        types[-1] = FULL  # the reference forces the last layer to full attention
        overrides = {int(k): v for k, v in (text.get("per_layer_config") or {}).items()}
        if "per_layer_config" not in text:
            full = {"head_dim": text.get("global_head_dim", GLOBAL_HEAD_DIM)}
            if text.get("num_global_key_value_heads") is not None:
                full["num_key_value_heads"] = text["num_global_key_value_heads"]
            overrides = {i: full for i, t in enumerate(types) if t == FULL}
        head_dim, kv = text.get("head_dim", 256), text.get("num_key_value_heads", text["num_attention_heads"])
        return cls(
            vocab_size=text["vocab_size"],
            hidden_size=text["hidden_size"],
            intermediate_size=text["intermediate_size"],
            num_hidden_layers=n,
            num_attention_heads=text["num_attention_heads"],
            layer_types=types,
            head_dims=[overrides.get(i, {}).get("head_dim", head_dim) for i in range(n)],
            kv_heads=[overrides.get(i, {}).get("num_key_value_heads", kv) for i in range(n)],
            num_experts=text["num_experts"],
            top_k_experts=text["top_k_experts"],
            moe_intermediate_size=text["moe_intermediate_size"],
            rope_parameters=text.get("rope_parameters")
            or {SLIDING: {"rope_type": "default", "rope_theta": 10000.0}, FULL: PROPORTIONAL_DEFAULT},
            sliding_window=text.get("sliding_window", 512),
            rms_norm_eps=text.get("rms_norm_eps", 1e-6),
            hidden_activation=text.get("hidden_activation", "gelu_pytorch_tanh"),
            attention_bias=bool(text.get("attention_bias", False)),
            final_logit_softcapping=text.get("final_logit_softcapping") or SOFTCAP,
            max_position_embeddings=text.get("max_position_embeddings", 131072),
            canvas_length=config.get("canvas_length") or 256,
            pad_token_id=text.get("pad_token_id", 0),
            eos_token_id=text.get("eos_token_id", 1),
            bos_token_id=text.get("bos_token_id", 2),
        )


class GemmaAttention(nn.Module):
    def __init__(self, args: DiffusionGemmaArgs, layer: int):
        super().__init__()
        D, H, Hkv = args.head_dims[layer], args.num_attention_heads, args.kv_heads[layer]
        self.layer, self.head_dim = layer, D
        bias = args.attention_bias
        self.q_proj = nn.Linear(args.hidden_size, H * D, bias=bias)
        self.k_proj = nn.Linear(args.hidden_size, Hkv * D, bias=bias)
        # Full layers store no v_proj: their values are the keys (Gemma 4's attention_k_eq_v).
        self.v_proj = nn.Linear(args.hidden_size, Hkv * D, bias=bias) if args.layer_types[layer] == SLIDING else None
        self.o_proj = nn.Linear(H * D, args.hidden_size, bias=bias)
        self.q_norm = GemmaRMSNorm(D, args.rms_norm_eps)
        self.k_norm = GemmaRMSNorm(D, args.rms_norm_eps)
        self.v_norm = GemmaRMSNorm(D, args.rms_norm_eps, with_scale=False)

    def forward(self, x, cos, sin, mask, cache: BlockCache | None, start: int, k0: int, store: bool) -> torch.Tensor:
        B, L, _ = x.shape
        shape = (B, L, -1, self.head_dim)
        q = apply_rope(self.q_norm(self.q_proj(x).view(shape)).transpose(1, 2), cos, sin, False)  # (B, H, L, D)
        k_raw = self.k_proj(x).view(shape)
        v = self.v_norm(self.v_proj(x).view(shape) if self.v_proj is not None else k_raw).transpose(1, 2)
        k = apply_rope(self.k_norm(k_raw).transpose(1, 2), cos, sin, False)  # (B, Hkv, L, D)
        if cache is not None:
            k, v = cache.extend(self.layer, start, k, v, store)
            k, v = k[:, :, k0:], v[:, :, k0:]  # keys at canvas positions [k0, start + L)
        out = grouped_attention(q, k, v, mask)  # (B, H, L, D)
        return self.o_proj(out.transpose(1, 2).reshape(B, L, -1))


class GemmaLayer(nn.Module):
    """Attention, then a dense MLP and a routed MoE side by side, both fed the same residual."""

    def __init__(self, args: DiffusionGemmaArgs, layer: int):
        super().__init__()
        D, eps = args.hidden_size, args.rms_norm_eps
        self.self_attn = GemmaAttention(args, layer)
        self.mlp = GemmaMLP(D, args.intermediate_size, args.hidden_activation)
        self.router = GemmaRouter(D, args.num_experts, args.top_k_experts, eps)
        self.experts = GemmaExperts(args.num_experts, D, args.moe_intermediate_size, args.hidden_activation)
        for name in (
            "input_layernorm",
            "post_attention_layernorm",
            "pre_feedforward_layernorm",
            "post_feedforward_layernorm",
            "post_feedforward_layernorm_1",
            "pre_feedforward_layernorm_2",
            "post_feedforward_layernorm_2",
        ):
            setattr(self, name, GemmaRMSNorm(D, eps))
        self.layer_scalar = nn.Parameter(torch.ones(1))  # the decoder's; the encoder has its own

    def forward(self, x, cos, sin, mask, cache, start, k0, store, scalar) -> torch.Tensor:
        h = self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, start, k0, store)
        x = x + self.post_attention_layernorm(h)
        dense = self.post_feedforward_layernorm_1(self.mlp(self.pre_feedforward_layernorm(x)))
        flat = x.reshape(-1, x.shape[-1])  # (N, D): the router reads the residual itself
        weight, index = self.router(flat)
        routed = self.experts(self.pre_feedforward_layernorm_2(flat), weight, index).reshape(x.shape)
        x = x + self.post_feedforward_layernorm(dense + self.post_feedforward_layernorm_2(routed))
        return x * scalar


class SelfConditioning(GemmaMLP):
    """The gated MLP over the soft embedding, between a pre_norm and a weightless post_norm."""

    def __init__(self, args: DiffusionGemmaArgs):
        super().__init__(args.hidden_size, args.intermediate_size, args.hidden_activation)
        self.pre_norm = GemmaRMSNorm(args.hidden_size, args.rms_norm_eps)
        self.post_norm = GemmaRMSNorm(args.hidden_size, args.rms_norm_eps, with_scale=False)

    def forward(self, embeds: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
        return self.post_norm(embeds + super().forward(self.pre_norm(soft)))


class DiffusionGemmaDecoder(nn.Module):
    """`model.decoder.*`: every text weight of the checkpoint lives here."""

    def __init__(self, args: DiffusionGemmaArgs):
        super().__init__()
        self.embed_tokens = nn.Embedding(args.vocab_size, args.hidden_size)
        self.layers = nn.ModuleList(GemmaLayer(args, i) for i in range(args.num_hidden_layers))
        self.norm = GemmaRMSNorm(args.hidden_size, args.rms_norm_eps)
        self.self_conditioning = SelfConditioning(args)


class LayerScalar(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer_scalar = nn.Parameter(torch.ones(1))


def holder(**children: nn.Module) -> nn.Module:
    """An empty module holding `children`, to keep the checkpoint's nesting of names."""
    module = nn.Module()
    for name, child in children.items():
        module.add_module(name, child)
    return module


def first_key(args: DiffusionGemmaArgs, kind: str, start: int, cached: bool) -> int:
    """The first canvas position a window at `start` attends to: sliding layers keep only the last
    `sliding_window - 1` cached positions (transformers' `DynamicSlidingWindowLayer`)."""
    if not cached:
        return start
    return max(0, start - (args.sliding_window - 1)) if kind == SLIDING else 0


def visibility(args, kind, Lq, start, k0, encoding, key_mask, device) -> torch.Tensor | None:
    """Bool (B|1, 1, Lq, start + Lq - k0), True = may attend, queries at [start, start + Lq), keys at [k0, start + Lq).

    Encoder: causal, and within `sliding_window` on sliding layers; decoder: all of them. Pad keys
    are hidden; a pad query sees itself so that no row is empty (its output is never attended to)."""
    q = torch.arange(start, start + Lq, device=device)[:, None]
    k = torch.arange(k0, start + Lq, device=device)[None]
    mask = None
    if encoding:
        mask = (k <= q) & ((k > q - args.sliding_window) if kind == SLIDING else True)
    if key_mask is None or bool(key_mask[:, k0 : start + Lq].all()):
        return None if mask is None else mask[None, None]
    keys = key_mask[:, None, None, k0 : start + Lq]  # (B, 1, 1, Lk)
    pad_self = ((k == q) & ~key_mask[:, start : start + Lq, None])[:, None]  # (B, 1, Lq, Lk)
    return (keys if mask is None else keys & mask) | pad_self


class DiffusionGemmaModel(nn.Module):
    """`model.decoder.*` and `model.encoder.language_model.layers.*.layer_scalar`, as in the checkpoint."""

    shift_logits = False
    block_diffusion = True
    encoder_decoder = True  # the sampler calls `encode` to fill the cache and the model itself to decode
    # Weights of the vision tower, which is not built: the loader skips them.
    ignored_prefixes = ("model.encoder.vision_tower.", "model.encoder.embed_vision.")

    def __init__(self, args: DiffusionGemmaArgs):
        super().__init__()
        self.args = args
        scalars = nn.ModuleList(LayerScalar() for _ in range(args.num_hidden_layers))
        self.model = holder(decoder=DiffusionGemmaDecoder(args), encoder=holder(language_model=holder(layers=scalars)))
        self.inv_freq = {
            t: inverse_frequencies(self.head_dim(t), args.rope_parameters[t]) for t in set(args.layer_types)
        }

    @property
    def n_layers(self) -> int:
        return self.args.num_hidden_layers

    def head_dim(self, kind: str) -> int:
        return self.args.head_dims[self.args.layer_types.index(kind)]

    @staticmethod
    def positions(key_mask: torch.Tensor | None, length: int, device) -> torch.Tensor:
        """(1, L) position ids 0..L-1: left pads keep their places (`arange(cur_len)` in the reference)."""
        return torch.arange(length, device=device)[None]

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        weight = self.model.decoder.embed_tokens.weight
        return F.embedding(ids, weight) * self.embed_scale(weight.dtype)

    def embed_scale(self, dtype: torch.dtype) -> torch.Tensor:
        # sqrt(hidden) rounded to the weights' dtype, as the reference's buffer is (55.4256 -> 55.5 in bf16).
        return torch.tensor(self.args.hidden_size**0.5).to(dtype)

    def run_layers(self, x, positions, key_mask, cache, start, encoding: bool) -> torch.Tensor:
        B, Lq, _ = x.shape
        if positions is None:
            positions = torch.arange(start, start + Lq, device=x.device)[None]
        tables, masks, firsts = {}, {}, {}
        for kind in set(self.args.layer_types):
            tables[kind] = rope_tables(positions, self.inv_freq[kind], x.dtype)
            firsts[kind] = first_key(self.args, kind, start, cache is not None)
            masks[kind] = visibility(self.args, kind, Lq, start, firsts[kind], encoding, key_mask, x.device)
        decoder, own = self.model.decoder, self.model.encoder.language_model.layers
        for i, layer in enumerate(decoder.layers):
            kind = self.args.layer_types[i]
            scalar = own[i].layer_scalar if encoding else layer.layer_scalar
            x = layer(x, *tables[kind], masks[kind], cache, start, firsts[kind], encoding, scalar)
        return x

    def encode(self, input_ids, positions=None, key_mask=None, cache: BlockCache | None = None, start: int = 0) -> None:
        """Append the keys/values of tokens at canvas positions [start, start + Lq) to `cache` (causal)."""
        self.run_layers(self.embed(input_ids), positions, key_mask, cache, start, encoding=True)

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        cache: BlockCache | None = None,
        start: int = 0,
        keep: tuple[int, int] | None = None,
        *,
        self_conditioning: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decoder logits (B, Lq, V), float32 and softcapped, for a canvas at positions [start, start + Lq).

        The canvas reads `cache` (the encoded prefix [0, start)) without writing it; without a cache
        it attends to itself alone. self_conditioning (B, Lq, V): the previous pass's processed
        logits (None = zeros). key_mask (B, L) marks real tokens over the whole canvas."""
        x = self.embed(input_ids)  # (B, Lq, D)
        weight = self.model.decoder.embed_tokens.weight
        if self_conditioning is None:
            soft = torch.zeros_like(x)
        else:
            probs = self_conditioning.softmax(-1, dtype=torch.float32).to(weight.dtype)
            soft = (probs @ weight) * self.embed_scale(weight.dtype)
        x = self.model.decoder.self_conditioning(x, soft)
        x = self.run_layers(x, positions, key_mask, cache, start, encoding=False)
        if keep is not None:
            x = x[:, keep[0] : keep[1]]
        logits = F.linear(self.model.decoder.norm(x), weight).float()
        cap = self.args.final_logit_softcapping
        return torch.tanh(logits / cap) * cap
