"""Building blocks shared by the model files: RMSNorm, rotary embeddings, attention, KV storage.

Notable features:
- Attention always goes through `F.scaled_dot_product_attention`, never causal: diffusion models
  see the whole canvas in both directions.
- `KVStore` holds post-RoPE keys and values for the full canvas. A forward pass over a window
  `[start, start + Lq)` writes its keys/values into the store and attends over all of it; the
  prefix and dual caches of Fast-dLLM (arXiv:2505.22618) are just different windows (see
  sampling/cache.py). The reference code caches pre-RoPE keys and rotates all of them each pass;
  rotation is element-wise, so storing rotated keys gives the same numbers with less work.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """RMSNorm computed in float32 and cast back before the weight, as Qwen2 and OLMo both do."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables in float32 for integer positions (B, L) -> (B, 1, L, head_dim).

    Kept in float32 whatever the model dtype (transformers PR #29285: bf16 positions lose
    precision past a few hundred tokens).
    """
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device).float() / head_dim))
    freqs = positions.float()[..., None] * inv_freq  # (B, L, D/2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos()[:, None], emb.sin()[:, None]


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, full_precision: bool) -> torch.Tensor:
    """Rotate (B, H, L, D) by cos/sin. `full_precision` rotates in float32 (LLaDA's
    `rope_full_precision`); otherwise the tables are cast to the activations' dtype (Qwen2/Dream)."""
    if full_precision:
        xf = x.float()
        return (xf * cos + rotate_half(xf) * sin).to(x.dtype)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + rotate_half(x) * sin


class KVStore:
    """Per-layer key/value buffers for a whole canvas: (B, H_kv, L, D) each, post-RoPE."""

    def __init__(self, n_layers: int):
        self.keys: list[torch.Tensor | None] = [None] * n_layers
        self.values: list[torch.Tensor | None] = [None] * n_layers

    @property
    def length(self) -> int:
        return 0 if self.keys[0] is None else self.keys[0].shape[2]

    def write(self, layer: int, start: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k/v for positions [start, start + Lq) and return the full buffers to attend over."""
        if self.keys[layer] is None:
            if start != 0:
                raise ValueError("the first pass through a KVStore must cover the canvas from position 0")
            self.keys[layer], self.values[layer] = k, v
            return k, v
        end = start + k.shape[2]
        self.keys[layer][:, :, start:end] = k
        self.values[layer][:, :, start:end] = v
        return self.keys[layer], self.values[layer]

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep only the given batch rows (a finished request leaves the batch)."""
        self.keys = [None if k is None else k[rows] for k in self.keys]
        self.values = [None if v is None else v[rows] for v in self.values]


class BlockCache:
    """Keys and values of finished blocks for block diffusion (SDAR, LLaDA2, Fast-dLLM v2), post-RoPE.

    Block-causal models never let a block see later ones, so the cache is exact: it grows by one
    block at a time and a pass over the current block attends to it plus itself. `store=False`
    attends without writing (SDAR's `store_kv=False` denoising passes)."""

    def __init__(self, n_layers: int):
        self.keys: list[torch.Tensor | None] = [None] * n_layers
        self.values: list[torch.Tensor | None] = [None] * n_layers

    @property
    def length(self) -> int:
        return 0 if self.keys[0] is None else self.keys[0].shape[2]

    def extend(
        self, layer: int, start: int, k: torch.Tensor, v: torch.Tensor, store: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """k/v (B, H_kv, Lq, D) for positions [start, start + Lq), which must follow the cache;
        returns the keys/values of positions [0, start + Lq), appending them when `store`."""
        cached = 0 if self.keys[layer] is None else self.keys[layer].shape[2]
        if cached != start:
            raise ValueError(f"a pass at position {start} must follow the {cached} cached positions")
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        if store:
            self.keys[layer], self.values[layer] = k, v
        return k, v

    def reorder(self, rows: torch.Tensor) -> None:
        """Keep only the given batch rows."""
        self.keys = [None if k is None else k[rows] for k in self.keys]
        self.values = [None if v is None else v[rows] for v in self.values]


def block_causal_mask(length: int, block: int, device=None, offset: int = 0) -> torch.Tensor:
    """(L, L) bool, True = may attend: bidirectional inside each block of `block` positions, causal
    across blocks (SDAR's and LLaDA2's training mask). Blocks are counted from canvas position 0;
    `offset` is the canvas position of the first row/column."""
    pos = torch.arange(offset, offset + length, device=device) // block
    return pos[:, None] >= pos[None, :]


@dataclass(frozen=True)
class LeftPadding:
    """Rows left-padded to a common length: row b's first `pads[b]` canvas positions are padding,
    and the queries start at canvas position `start`. `attend` then runs each row on its own
    tokens, the very call it makes alone: SDPA kernels block over the key length, so a row padded
    to another's length sums in another order (in bfloat16 its last bits change, and a seeded
    sample can flip), which would break "a seed gives the same text alone or batched"."""

    pads: tuple[int, ...]
    start: int = 0

    @staticmethod
    def of(key_mask: torch.Tensor | None, start: int = 0) -> LeftPadding | torch.Tensor | None:
        """The padding of key_mask (B, Lk), True for real tokens; None without padding. A mask
        that is not left padding stays a (B, 1, Lq, Lk) tensor mask of pad keys and queries."""
        if key_mask is None or bool(key_mask.all()):
            return None
        pads = (~key_mask).sum(-1)
        if bool((key_mask.long().argmax(-1) == pads).all()) and bool(key_mask.any(-1).all()):
            return LeftPadding(tuple(pads.tolist()), start)
        return key_mask[:, None, None, :]


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | LeftPadding | None,
) -> torch.Tensor:
    """Bidirectional SDPA. q (B, H, Lq, D); k, v (B, H_kv, Lk, D); mask bool, True = may attend,
    or the rows' `LeftPadding` (their pad queries get zeros: nothing reads them)."""
    if isinstance(mask, LeftPadding):
        out = q.new_zeros(q.shape)
        for b, pad in enumerate(mask.pads):
            first = max(0, pad - mask.start)  # the row's first real query in this window
            out[b : b + 1, :, first:] = attend(
                q[b : b + 1, :, first:], k[b : b + 1, :, pad:], v[b : b + 1, :, pad:], None
            )
        return out
    groups = q.shape[1] // k.shape[1]
    if groups > 1:
        # Grouped-query attention: expand instead of copying (works on every torch >= 2.4).
        B, Hkv, Lk, D = k.shape
        k = k[:, :, None].expand(B, Hkv, groups, Lk, D).reshape(B, Hkv * groups, Lk, D)
        v = v[:, :, None].expand(B, Hkv, groups, Lk, D).reshape(B, Hkv * groups, Lk, D)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=False)


def gated_mlp(x: torch.Tensor, gate: nn.Linear, up: nn.Linear, down: nn.Linear) -> torch.Tensor:
    """SwiGLU feed-forward: down(silu(gate(x)) * up(x))."""
    return down(F.silu(gate(x)) * up(x))
