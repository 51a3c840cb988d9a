"""Weight-only int8 / int4 quantization by swapping modules (gpt-fast's `quantize.py` habit).

Notable features:
- int8: symmetric, one scale per output channel (row): `w ≈ q · s`, q in [-127, 127].
- int4: asymmetric, one scale and zero per group of `group_size` inputs along each row, in the
  tinygemm convention the packed kernels read: `w ≈ (q - 8) · s + z`, q in [0, 15], with s and z
  rounded to bfloat16. Each group's scale and zero come from a search (llama.cpp's k-quants habit,
  `make_qkx2_quants`): a few grids of 14.5-16 steps over the group's [min, max] assign levels, a
  least-squares fit of s and z to them follows, the fit with the least squared error wins, and a
  Lloyd step (levels nearest that line, the line refitted) refines it. It keeps each group's mean
  (group-mean error 0.39x min/max's) where min/max spends its endpoints on the two extremes;
  on the story model min/max rounding cost 5.6 points of accepted stories, the search none
  measurable (docs/models.md, Quantization). Four grids and one refinement match the nine grids
  used before on round-trip error and beat them on group-mean error, in 0.6x the time.
- Matmuls go through PyTorch's packed kernels where this build has them and they are fast:
  `_weight_int4pack_mm_for_cpu` on CPU and `_weight_int4pack_mm` (tinygemm) on CUDA for bfloat16
  activations; `_weight_int8pack_mm` on CPU for bfloat16 and fewer than INT8_KERNEL_MAX_ROWS rows.
  Otherwise the weight is dequantized a block of rows at a time and multiplied (for int8 as
  gpt-fast does, `linear(x, q) · s`): float32 and float16 activations, where the CPU kernels were
  measured 20-60x slower than a float matmul, shapes a kernel refuses, int8 on CUDA, and int8 on
  diffusion-sized canvases, where the bfloat16 matmul on dequantized blocks beat the int8 kernel
  1.6-3.3x (48-160 rows). `tests/test_quantization.py` proves every path equal to the dequantized reference.
- What stays in high precision is measured on the story model by accepted stories
  (docs/models.md, Quantization): norms, biases and MoE routers always; the token tables as
  `TABLES` says. Under int4 the embedding is int4 in groups of 32 (a lookup dequantizes only the
  rows it gathers); an untied LM head int8 (no measurable loss; int4 in groups of 64 lost 1.7 ±
  1.7 points against it); a tied table int4 in groups of 32, both tables so rounded losing 0.2 ±
  1.5 points against bfloat16 where groups of 64 lost 6.4 ± 1.6: at int8 a tied 0.5B model
  loaded in 0.35x of its bfloat16 size, at int4 in 0.30x (its weights 0.29x). A tied table's
  head reads the CPU kernel's packed layout and the embedding gathers its rows from that same
  layout (`cpu_pack_positions`): one copy. LLaDA multiplies by its head's tensor, and
  DiffusionGemma by its embedding's (head and self-conditioning), so those tables stay in the
  run dtype.
- DiffusionGemma's experts are fused 3-D weights (E, N, K): each is quantized as its E * N rows
  (per expert, as the row scales and groups never cross a row) and run by `QuantizedExperts`, one
  quantized linear per expert over views of the one stored tensor.
- Stored layout (what `unmask quantize` writes, and what `build` takes): int8 `weight` int8
  (N, K) and `scales` float32 (N,); int4 `weight` uint8 (N, K/2) with the even column in the high
  nibble (the layout CUDA's `_convert_weight_to_int4pack` takes), `scales` and `zeros` bfloat16
  (N, K/group_size); a fused expert weight `P` as `P.weight`, `P.scales`, `P.zeros`, E leading.
  The device layouts are made from it when a module is built, in place when the caller hands its
  tensors over (`in_place`), so a load never holds both.
- A quantized module is built for one device and one compute dtype; moving it is not supported.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from .gemma_layers import GemmaExperts

MODES = {"int8": 8, "int4": 4}
# 64 columns per int4 group for the block weights: 4.5 bits a weight (bfloat16 scale and zero);
# 32 (5 bits, 11% more memory) measured no better on accepted stories with the scale search (78.4
# against 80.1% on the same 160 stories).
DEFAULT_GROUP_SIZE = 64
KERNEL_GROUP_SIZES = (32, 64, 128, 256)  # what the int4 packed kernels accept
# The heads and token embeddings of Dream and LLaDA (Hugging Face names). Dream calls its head as
# a module, so it can be swapped; LLaDA multiplies by the head's tensor, so its head (and, when
# tied, its embedding table) stays in high precision.
MODULE_HEADS = ("lm_head",)
TENSOR_HEADS = ("model.transformer.ff_out",)
TOKEN_EMBEDDINGS = ("model.embed_tokens", "model.transformer.wte")
TIED_FLAGS = ("tie_word_embeddings", "weight_tying")  # Dream's and LLaDA's config names
# Fused expert weights (E, N, K) of a `GemmaExperts` (DiffusionGemma), quantized expert by expert:
# their planned names are the parameters' own ("...experts.gate_up_proj").
FUSED_EXPERTS = ("gate_up_proj", "down_proj")
# MoE routers stay in the run dtype: a few kB a layer, and a rounded router sends tokens to other
# experts (DiffusionGemma's `router.proj`, LLaDA-MoE's `mlp.gate`; LLaDA2's is a plain parameter).
ROUTERS = (".router.proj", ".mlp.gate")
# (mode, group size) of the token tables per mode; None keeps a table in the run dtype. Measured on
# the story model (docs/models.md, Quantization; accepted stories, 160 paired with bfloat16's
# 80.4%): int4 body, embedding int4 in groups of 32: -1.4 ± 1.6 points; + head int8 -0.9 ± 1.6,
# + head int4 group 64 -2.6 ± 1.6; both tables int4 (a tied table) in groups of 32 -0.2 ± 1.5, of
# 64 -6.4 ± 1.6.
TABLES = {
    "int8": {"embedding": ("int8", None), "head": ("int8", None), "tied": ("int8", None)},
    "int4": {"embedding": ("int4", 32), "head": ("int8", None), "tied": ("int4", 32)},
}
INT8_MAX = 127
INT4_LEVELS = 15
INT4_OFFSET = 8  # tinygemm stores q and subtracts 8: w = (q - 8) * s + z
SCALE_FLOOR = 1e-8  # an all-zero row or group still gets a finite scale
# The int4 scale search: SEARCH_GRIDS grids of INT4_LEVELS + d steps over [min, max], d evenly over
# SEARCH_SPAN (make_qkx2_quants tries 21 from d = -1; d = 0 is min/max's levels), then SEARCH_LLOYD
# refinements of the best. On the story model's block weights against the 9 grids of the search
# before: 1.001x its round-trip error, 0.93x its group-mean error, in 0.6x the time per weight
# (5 grids and one refinement: 0.996x and 0.83x in 0.66x; 4 grids and two: 0.995x and 0.67x in 0.7x).
SEARCH_SPAN = (-0.5, 1.0)
SEARCH_GRIDS = 4
SEARCH_LLOYD = 1
KERNEL_ALIGN = 64  # `_weight_int8pack_mm` crashes on int8 weights that are not 16-byte aligned
# Below this many rows of activations the CPU int8 kernel is faster; from it on, dequantizing to
# bfloat16 and using the bfloat16 matmul is (1.2-1.4x the bfloat16 time at 48-160 rows against the
# kernel's 2.3-4x, on AVX512-BF16). Diffusion canvases are nearly always past it.
INT8_KERNEL_MAX_ROWS = 16
# The CPU int4 kernel lays out blocks of 64 output rows on its own (32 on AVX2), so packing in row
# blocks of a multiple of it gives the same bytes (tests/test_quantization.py packs a weight of
# several blocks), and a tied embedding finds a row's values at the same places in every block.
CPU_PACK_ROWS = 64
# The dequantize path makes this many weights at a time, so its transient copy stays small even for
# a 150k-row LM head.
DEQUANT_BLOCK = 8 << 20
PACK_BLOCK = 1 << 18  # weights packed for the CPU kernel at a time (their int32 copy: 1 MB)

Choice = tuple[str, int | None]  # (mode, int4 group size or None)


def group_size_for(mode: str, group_size: int | None) -> int | None:
    """The group size a mode uses (None for int8, which has one scale per row); checks the mode."""
    if mode not in MODES:
        raise ValueError(f"quantize: expected one of {', '.join(MODES)}, got {mode!r}")
    if mode == "int8":
        return None
    group = DEFAULT_GROUP_SIZE if group_size is None else int(group_size)
    if group < 2 or group % 2:
        raise ValueError(f"group_size: expected an even number of columns, got {group}")
    return group


def tied(net: nn.Module) -> bool:
    args = getattr(net, "args", None)
    return any(getattr(args, flag, False) for flag in TIED_FLAGS)


def plan(
    net: nn.Module, mode: str, group_size: int | None = None, tables: dict[str, Choice | None] | None = None
) -> dict[str, Choice]:
    """name -> (mode, group size) of what `quantize_` swaps: every `nn.Linear` but the routers in
    `mode` and `group_size`, each fused expert weight likewise (named as the parameter), the token
    embedding and a head called as a module as `TABLES[mode]` says (one table when tied; `tables`
    overrides entries, None keeping a table in high precision). A weight whose width its groups do
    not divide gets int8. Norms and biases stay as they are."""
    group = group_size_for(mode, group_size)
    table = TABLES[mode] | (tables or {})
    has_module_head = any(isinstance(m, nn.Linear) for n, m in net.named_modules() if n in MODULE_HEADS)
    out = {}
    for name, module in net.named_modules():
        weights = {name: module.weight} if isinstance(module, (nn.Linear, nn.Embedding)) else {}
        if isinstance(module, nn.Linear) and name not in TENSOR_HEADS and not name.endswith(ROUTERS):
            chosen = (mode, group)
            if name in MODULE_HEADS:
                chosen = None if tied(net) else table["head"]  # tied: the embedding's table serves as the head
        elif isinstance(module, nn.Embedding) and name in TOKEN_EMBEDDINGS:
            if not tied(net):
                chosen = table["embedding"]
            else:  # one table for both, unless the head reads it as a tensor (LLaDA)
                chosen = table["tied"] if has_module_head else None
        elif isinstance(module, GemmaExperts):
            chosen, weights = (mode, group), {f"{name}.{key}": getattr(module, key) for key in FUSED_EXPERTS}
        else:
            continue
        if chosen is None:
            continue
        for key, weight in weights.items():
            choice = (chosen[0], group_size_for(*chosen))
            if choice[0] == "int4" and weight.shape[-1] % choice[1]:
                choice = ("int8", None)
            out[key] = choice
    return out


def weight_key(net: nn.Module, name: str) -> str | None:
    """The state-dict name of the float weight a planned (or stored quantized) name stands for:
    `name.weight` of a linear or embedding, `name` itself for a fused expert weight, else None."""
    parent, _, leaf = name.rpartition(".")
    try:
        module = net.get_submodule(name)
    except AttributeError:  # a parameter, not a module
        experts = net.get_submodule(parent) if leaf in FUSED_EXPERTS else None
        return name if isinstance(experts, (GemmaExperts, QuantizedExperts)) else None
    return f"{name}.weight" if isinstance(module, (nn.Linear, nn.Embedding)) else None


def quantize_weight(weight: torch.Tensor, mode: str, group_size: int | None = None) -> dict[str, torch.Tensor]:
    """A (N, K) float weight -> its stored tensors ("weight", "scales" and for int4 "zeros")."""
    group = group_size_for(mode, group_size)
    w = weight.float()
    # In-place steps where a copy is ours: the loader quantizes row blocks and counts their temporaries.
    if mode == "int8":
        scales = (w.abs().amax(dim=1) / INT8_MAX).clamp(min=SCALE_FLOOR)  # (N,)
        q = (w / scales[:, None]).round_().clamp_(-INT8_MAX, INT8_MAX).to(torch.int8)
        return {"weight": q, "scales": scales}
    N, K = w.shape
    g = w.reshape(N, K // group, group)  # (N, G, group)
    scales, zeros = int4_scales(g)
    # q from the rounded scale and zero, so that dequantizing reproduces the nearest level.
    q = (g - zeros.float()[..., None]).div_(scales.float()[..., None]).round_().add_(INT4_OFFSET)
    q = q.clamp_(0, INT4_LEVELS).to(torch.uint8).reshape(N, K)
    return {"weight": pack_nibbles(q), "scales": scales, "zeros": zeros}


def int4_scales(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, G, S) float32 groups -> bfloat16 scales and zeros (N, G), by the least-squares search:
    for each of SEARCH_GRIDS grids, q = round((x - min) / step) clamped to [0, 15], then the s, b
    minimising sum (s q + b - x)^2 (closed form; error sum xc^2 - cov^2 / var over the centred x);
    the best fit then takes SEARCH_LLOYD Lloyd steps (levels nearest its line, the line refitted
    to them), each kept where it lowers the error. The grid d = 0 fit is never worse than min/max's
    s and b on the same levels. The grids reuse buffers of the block's size (a (grids, ...) tensor
    for all at once was slower: it left the L2 cache, and a load faulted in its pages afresh), and
    the choice among them is made once, from their sums (small ops cost as much as large ones)."""
    size = g.shape[-1]
    low = g.amin(-1, keepdim=True)
    span = (g.amax(-1, keepdim=True) - low).clamp_(min=SCALE_FLOOR)  # (N, G, 1)
    mean = g.mean(-1, keepdim=True)
    centred = g - mean
    q = centred.square()
    total = q.sum(-1)  # (N, G): the error of a constant fit
    unit = (g - low).div_(span)  # in [0, 1]
    tmp = torch.empty_like(g)
    first, last = SEARCH_SPAN
    steps = [INT4_LEVELS + first + (last - first) * i / (SEARCH_GRIDS - 1) for i in range(SEARCH_GRIDS)]
    sums = g.new_empty((SEARCH_GRIDS, 3, *g.shape[:-1]))  # per grid: sum q, sum q xc, sum q^2

    def level_sums(out: tuple[torch.Tensor, ...]) -> None:  # of the levels in q (overwritten)
        torch.sum(q, -1, out=out[0])
        torch.sum(torch.mul(q, centred, out=tmp), -1, out=out[1])
        torch.sum(q.square_(), -1, out=out[2])

    for n, out in zip(steps, sums.unbind(0)):
        torch.mul(unit, n, out=q).round_()
        if n >= INT4_LEVELS + 0.5:  # below, round(unit * n) <= 15 already
            q.clamp_max_(INT4_LEVELS)
        level_sums(out.unbind(0))
    fallback = span[..., 0] / torch.tensor(steps)[:, None, None]  # all in one level: min/max's step
    slope, level, err = line_fits(sums, total, size, fallback)
    err, best = err.min(0)  # the first of equals: the fewest steps (min, not argmin: 20x faster over dim 0)
    slope, level = slope.gather(0, best[None])[0], level.gather(0, best[None])[0]
    for _ in range(SEARCH_LLOYD):
        zero = mean - (level * slope)[..., None]  # the line x = s q + zero
        torch.sub(g, zero, out=q).div_(slope[..., None]).round_().clamp_(0, INT4_LEVELS)
        level_sums(sums[0].unbind(0))
        new_slope, new_level, new_err = line_fits(sums[:1], total, size, slope[None])
        better = new_err[0] < err  # any levels' least-squares error is exact: keep the better fit
        slope, level, err = (
            new_slope[0].where(better, slope),
            new_level[0].where(better, level),
            new_err[0].where(better, err),
        )
    scales = slope.clamp_(min=SCALE_FLOOR).to(torch.bfloat16)
    # The fit passes through (mean level, mean x): w = (q - 8) s + z there.
    zeros = (mean[..., 0] - (level - INT4_OFFSET) * scales.float()).to(torch.bfloat16)
    return scales, zeros


def line_fits(sums: torch.Tensor, total: torch.Tensor, size: int, fallback: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(T, 3, N, G) level sums -> the least-squares slope, mean level and squared error (T, N, G)
    of each; where every value got one level, the constant fit (slope `fallback`)."""
    q_sum, cov, square = sums.unbind(1)
    var = square - q_sum * q_sum / size  # exact in float32 up to groups of 256
    fits = var > 0
    slope = torch.where(fits, cov / var.where(fits, 1.0), fallback)
    err = torch.where(fits, total - cov * slope, total)
    return slope, q_sum / size, err


def pack_nibbles(q: torch.Tensor) -> torch.Tensor:
    """(N, K) values in [0, 15] -> (N, K/2) uint8, even column in the high nibble."""
    q = q.to(torch.uint8)
    return (q[:, ::2] << 4) | q[:, 1::2]


def unpack_nibbles(packed: torch.Tensor) -> torch.Tensor:
    """(N, K/2) uint8 -> (N, K) uint8 values in [0, 15]."""
    return torch.stack((packed >> 4, packed & 0xF), dim=-1).reshape(packed.shape[0], -1)


def dequantize(stored: dict[str, torch.Tensor], mode: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The reference: the (N, K) weight the stored tensors stand for, in `dtype`."""
    scales = stored["scales"].float()
    if mode == "int8":
        return (stored["weight"].float() * scales[:, None]).to(dtype)
    return from_levels(unpack_nibbles(stored["weight"]), scales, stored["zeros"], dtype)


def from_levels(q: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(N, K) int4 levels and (N, G) scales and zeros -> the (N, K) weight in `dtype`."""
    N, K = q.shape
    g = q.float().reshape(N, scales.shape[1], -1)  # (N, G, group)
    w = (g - INT4_OFFSET) * scales.float()[..., None] + zeros.float()[..., None]
    return w.reshape(N, K).to(dtype)


def stored_shapes(shape: tuple[int, ...], mode: str, group_size: int | None = None) -> dict[str, tuple]:
    """name -> (shape, dtype) of the stored tensors of a (..., N, K) weight (fused experts lead with E)."""
    group = group_size_for(mode, group_size)
    *rows, K = shape
    if mode == "int8":
        return {"weight": ((*rows, K), torch.int8), "scales": (tuple(rows), torch.float32)}
    return {
        "weight": ((*rows, K // 2), torch.uint8),
        "scales": ((*rows, K // group), torch.bfloat16),
        "zeros": ((*rows, K // group), torch.bfloat16),
    }


def stored_bytes(n_weights: int, mode: str, group_size: int | None = None, scale_bytes: int = 2) -> float:
    """Bytes a quantized weight of n_weights numbers takes (int4: a scale and a zero of
    `scale_bytes` per group); rows of int8 are assumed to be 4096 wide for the per-row scale (a
    rounding error either way)."""
    group = group_size_for(mode, group_size)
    if mode == "int8":
        return n_weights * (1 + 4 / 4096)
    return n_weights * (0.5 + 2 * scale_bytes / group)


def parameter_count(net: nn.Module) -> int:
    """The numbers a network stands for: its parameters and the original weights and biases of its
    quantized modules (a tied head once, with its table), not their packed bytes."""
    total = sum(p.numel() for p in net.parameters())
    for module in net.modules():
        if isinstance(module, (Int8Linear, Int4Linear, QuantizedEmbedding)) and not module.tied:
            total += module.out_features * module.in_features
        bias = getattr(module, "bias", None)
        if isinstance(module, (Int8Linear, Int4Linear)) and bias is not None:
            total += bias.numel()
    return total


class Int8Linear(nn.Module):
    """`nn.Linear` with int8 weights and one scale per output channel."""

    def __init__(self, weight: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.tied = False  # True for a head that is a view of the embedding's table
        # The CPU kernel is fast for bfloat16 only (float32 measured 20x slower than dequantizing).
        self.kernel = weight.device.type == "cpu" and dtype == torch.bfloat16
        if self.kernel and weight.data_ptr() % KERNEL_ALIGN:
            weight = weight.clone()  # a view of a file laid out by others: the kernel needs alignment
        self.register_buffer("weight", weight)  # (N, K) int8
        self.register_buffer("scales", scales.to(dtype))  # (N,)
        self.register_buffer("bias", None if bias is None else bias.to(dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // self.in_features
        if self.kernel and x.dtype == torch.bfloat16 and rows < INT8_KERNEL_MAX_ROWS:
            y = torch.ops.aten._weight_int8pack_mm(x.reshape(rows, self.in_features), self.weight, self.scales)
            y = y.reshape(*x.shape[:-1], self.out_features)
        else:  # gpt-fast's form: the scales multiply the output, not the weight
            y = blocked_linear(x, self.out_features, lambda a, b: self.weight[a:b].to(x.dtype))
            y = y * self.scales.to(x.dtype)
        return y if self.bias is None else y + self.bias.to(y.dtype)


class Int4Linear(nn.Module):
    """`nn.Linear` with int4 weights, a scale and a zero per group of `group_size` inputs.

    in_place: the stored weight is the caller's to overwrite with the CPU kernel's layout.
    use_kernel=False keeps the stored tensors as they are (dequantized at each call)."""

    def __init__(
        self,
        weight: torch.Tensor,
        scales: torch.Tensor,
        zeros: torch.Tensor,
        bias: torch.Tensor | None,
        dtype: torch.dtype,
        in_place: bool = False,
        use_kernel: bool = True,
    ):
        super().__init__()
        self.out_features, half = weight.shape
        self.in_features = 2 * half
        self.group_size = self.in_features // scales.shape[1]
        self.tied = False  # True for a head that shares the embedding's table
        self.register_buffer("bias", None if bias is None else bias.to(dtype))
        kernel = int4_kernel(weight.device, dtype, self.out_features, self.in_features, self.group_size)
        self.kernel = kernel if use_kernel else None
        if self.kernel is None:
            self.register_buffer("weight", weight)  # (N, K/2) uint8, dequantized at each call
            self.register_buffer("scales", scales.to(dtype))  # (N, K/group)
            self.register_buffer("zeros", zeros.to(dtype))
            return
        if self.kernel == "cpu":
            packed = pack_for_cpu(weight, in_place)
        else:
            packed = torch.ops.aten._convert_weight_to_int4pack(weight.contiguous(), self.kernel)
        self.register_buffer("weight", packed)
        # (K/group, N, 2): each group's scale and zero side by side, as the kernels load them (filled
        # in place: a stacked copy and its conversion were two more transients of a 150k-row table).
        both = torch.empty((scales.shape[1], self.out_features, 2), dtype=dtype, device=weight.device)
        both[..., 0], both[..., 1] = scales.T, zeros.T
        self.register_buffer("scales_and_zeros", both)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel is None:
            y = blocked_linear(x, self.out_features, lambda a, b: self.dequantized(a, b, x.dtype))
        else:
            x2 = x.reshape(-1, self.in_features).to(self.scales_and_zeros.dtype)
            if self.kernel == "cpu":
                y = torch.ops.aten._weight_int4pack_mm_for_cpu(x2, self.weight, self.group_size, self.scales_and_zeros)
            else:
                y = torch.ops.aten._weight_int4pack_mm(x2, self.weight, self.group_size, self.scales_and_zeros)
            y = y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)
        return y if self.bias is None else y + self.bias.to(y.dtype)

    def dequantized(self, start: int, stop: int, dtype: torch.dtype) -> torch.Tensor:
        rows = {"weight": self.weight[start:stop], "scales": self.scales[start:stop], "zeros": self.zeros[start:stop]}
        return dequantize(rows, "int4", dtype)


def pack_for_cpu(weight: torch.Tensor, in_place: bool = False) -> torch.Tensor:
    """The CPU int4 kernel's layout of a stored (N, K/2) weight (the same shape and dtype), packed
    CPU_PACK_ROWS rows at a time, into the weight itself when `in_place`: the kernel takes its input
    as int32, and whole-weight int32 copies fragmented the heap (a 0.5B load peaked at 4x its int4
    weights); a second (N, K/2) buffer, freed after, still left 90 MB of holes in one."""
    n, half = weight.shape
    packed = weight if in_place else torch.empty((n, half), dtype=torch.uint8)
    step = max(CPU_PACK_ROWS, PACK_BLOCK // (2 * half) // CPU_PACK_ROWS * CPU_PACK_ROWS)
    for a in range(0, n, step):
        rows = unpack_nibbles(weight[a : a + step]).to(torch.int32)  # a copy: safe to overwrite after
        packed[a : a + step] = torch.ops.aten._convert_weight_to_int4pack_for_cpu(rows, 1)
    return packed


@functools.cache
def cpu_pack_positions(k: int) -> torch.Tensor | None:
    """(CPU_PACK_ROWS, k) int64: where the CPU kernel's packing of a block of CPU_PACK_ROWS rows of
    width k puts each value, as a nibble index into the block's bytes (byte i // 2, the high nibble
    when i is odd). Learnt from the packing itself, since it differs by CPU (AVX512, AVX2, none):
    the packed bytes of k-wide blocks whose values are the base-16 digits of each value's index.
    None when the packing is not blockwise so (checked on a weight of three blocks) or is missing."""
    if not hasattr(torch.ops.aten, "_convert_weight_to_int4pack_for_cpu"):
        return None
    rows, n = CPU_PACK_ROWS, CPU_PACK_ROWS * k
    index = torch.arange(n).reshape(rows, k)
    source = torch.zeros(n, dtype=torch.int64)
    try:
        for digit in range(math.ceil(math.log2(n) / 4)):
            values = ((index >> (4 * digit)) & 0xF).to(torch.int32)
            packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(values, 1)
            nibbles = torch.stack((packed & 0xF, packed >> 4), dim=-1).reshape(-1)
            source |= nibbles.long() << (4 * digit)
        if not torch.equal(source.sort().values, torch.arange(n)):
            return None
        positions = torch.empty(n, dtype=torch.int64)
        positions[source] = torch.arange(n)
        positions = positions.reshape(rows, k)
        q = torch.randint(0, 16, (3 * rows, k), generator=torch.Generator().manual_seed(0), dtype=torch.int32)
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1)
    except RuntimeError:  # a width the kernel refuses
        return None
    blockwise = torch.equal(packed_levels(packed, positions, torch.arange(3 * rows)), q.to(torch.uint8))
    return positions if blockwise else None


def packed_levels(packed: torch.Tensor, positions: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The (R, K) int4 levels of weight rows `rows` from the CPU kernel's layout `packed` (N, K/2)."""
    k = positions.shape[1]
    block, row = rows // CPU_PACK_ROWS, rows % CPU_PACK_ROWS
    nibble = positions[row] + (block * (CPU_PACK_ROWS * k))[:, None]  # (R, K)
    byte = packed.reshape(-1)[nibble // 2]
    return torch.where(nibble % 2 == 1, byte >> 4, byte & 0xF)


def blocked_linear(x: torch.Tensor, n_out: int, weight_rows) -> torch.Tensor:
    """x @ W.T where weight_rows(a, b) makes rows a..b-1 of W in x's dtype, DEQUANT_BLOCK weights
    at a time."""
    step = max(1, DEQUANT_BLOCK // x.shape[-1])
    if step >= n_out:
        return F.linear(x, weight_rows(0, n_out))
    out = x.new_empty(*x.shape[:-1], n_out)
    for a in range(0, n_out, step):
        b = min(n_out, a + step)
        out[..., a:b] = F.linear(x, weight_rows(a, b))
    return out


def int4_kernel(device: torch.device, dtype: torch.dtype, n: int, k: int, group: int) -> str | int | None:
    """Which packed int4 kernel takes this weight: "cpu", CUDA's inner-k-tiles count, or None."""
    if dtype != torch.bfloat16 or group not in KERNEL_GROUP_SIZES or k % group:
        return None
    if device.type == "cpu" and hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu") and n % 16 == 0:
        return "cpu"
    if device.type == "cuda" and n % 8 == 0:
        # tinygemm tiles K by 16 * inner_k_tiles (2, 4 or 8); more tiles is faster.
        return next((tiles for tiles in (8, 4, 2) if k % (16 * tiles) == 0), None)
    return None


class QuantizedEmbedding(nn.Module):
    """A token embedding stored as int8 or int4 rows; a lookup dequantizes the rows it gathers,
    from the stored layout or (a table tied to a CPU int4 head, `read_packed`) the head's."""

    def __init__(self, stored: dict[str, torch.Tensor], mode: str, dtype: torch.dtype):
        super().__init__()
        self.mode, self.dtype = mode, dtype
        self.out_features = stored["weight"].shape[0]  # rows, named as the linears' for parameter_count
        self.in_features = stored["weight"].shape[1] * (2 if mode == "int4" else 1)
        self.tied = False
        self.register_buffer("weight", stored["weight"])
        self.register_buffer("scales", stored["scales"].to(dtype))
        self.register_buffer("zeros", stored["zeros"].to(dtype) if "zeros" in stored else None)
        self.register_buffer("positions", None, persistent=False)  # set by read_packed

    def read_packed(self, head: Int4Linear, positions: torch.Tensor) -> None:
        """Gather rows from a tied head's CPU-packed weight and scales, which replace this table's."""
        self.weight, self.scales, self.zeros = head.weight, None, None
        self.register_buffer("scales_and_zeros", head.scales_and_zeros)  # (G, N, 2)
        self.positions = positions

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        flat = ids.reshape(-1)
        if self.positions is not None:
            both = self.scales_and_zeros[:, flat].transpose(0, 1)  # (L, G, 2)
            levels = packed_levels(self.weight, self.positions, flat)
            return from_levels(levels, both[..., 0], both[..., 1], self.dtype).reshape(*ids.shape, -1)
        rows = {"weight": self.weight[flat], "scales": self.scales[flat]}
        if self.zeros is not None:
            rows["zeros"] = self.zeros[flat]
        return dequantize(rows, self.mode, self.dtype).reshape(*ids.shape, -1)


def build(
    module: nn.Module,
    stored: dict[str, torch.Tensor],
    mode: str,
    bias: torch.Tensor | None,
    dtype: torch.dtype,
    in_place: bool = False,
) -> nn.Module:
    """The quantized replacement of `module` (an nn.Linear or nn.Embedding, real or on the meta
    device) from its stored tensors, on their device, computing in `dtype`; `in_place`: the stored
    tensors are handed over (a device layout may be made in them)."""
    if isinstance(module, nn.Embedding):
        return QuantizedEmbedding(stored, mode, dtype)
    if mode == "int8":
        return Int8Linear(stored["weight"], stored["scales"], bias, dtype)
    return Int4Linear(stored["weight"], stored["scales"], stored["zeros"], bias, dtype, in_place)


class QuantizedExperts(nn.Module):
    """`GemmaExperts` whose fused weights are quantized expert by expert: `gate_up_proj` and
    `down_proj` become lists of E quantized linears (views of one stored tensor each), routed as
    `gemma_layers.run_fused_experts` routes (tokens grouped per expert, summed in expert order)."""

    def __init__(self, experts: GemmaExperts):
        super().__init__()
        self.act = experts.act
        self.count = experts.gate_up_proj.shape[0]
        self.gate_up_proj, self.down_proj = experts.gate_up_proj, experts.down_proj  # until installed

    def forward(self, x: torch.Tensor, weight: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """x (N, D); index, weight (N, k) -> (N, D)."""
        k = index.shape[1]
        flat = index.reshape(-1)
        order = flat.argsort(stable=True)
        out = torch.zeros_like(x)
        begin = 0
        for e, n in enumerate(torch.bincount(flat, minlength=self.count).tolist()):
            if n == 0:
                continue
            pairs = order[begin : begin + n]
            rows = pairs // k
            gate, up = self.gate_up_proj[e](x[rows]).chunk(2, dim=-1)
            h = self.down_proj[e](self.act(gate) * up) * weight.reshape(-1)[pairs, None]
            out.index_add_(0, rows, h.to(out.dtype))
            begin += n
        return out


def install(
    net: nn.Module,
    name: str,
    stored: dict[str, torch.Tensor],
    mode: str,
    bias: torch.Tensor | None,
    dtype: torch.dtype,
    in_place: bool = False,
) -> None:
    """Put the quantized version of planned `name` into `net` (see `build`): a module's replacement,
    or for a fused expert weight, one quantized linear per expert in its `QuantizedExperts`."""
    parent, _, leaf = name.rpartition(".")
    experts = net.get_submodule(parent) if leaf in FUSED_EXPERTS else None
    if not isinstance(experts, (GemmaExperts, QuantizedExperts)):
        net.set_submodule(name, build(net.get_submodule(name), stored, mode, bias, dtype, in_place))
        return
    if isinstance(experts, GemmaExperts):
        experts = QuantizedExperts(experts)
        net.set_submodule(parent, experts)
    linear = nn.Linear(1, 1, device="meta")  # what `build` replaces: a linear
    count = stored["weight"].shape[0]
    per_expert = [
        build(linear, {key: t[e] for key, t in stored.items()}, mode, None, dtype, in_place) for e in range(count)
    ]
    delattr(experts, leaf)  # the float (or meta) parameter
    setattr(experts, leaf, nn.ModuleList(per_expert))


def tie_head(embedding: QuantizedEmbedding) -> Int8Linear | Int4Linear:
    """The LM head of a tied model whose embedding table is quantized: the same tensors, no copy.
    int4 on CPU: the table is repacked in place for the kernel, and the embedding reads that layout
    (where `cpu_pack_positions` knows it); elsewhere the head dequantizes the stored table."""
    if embedding.mode == "int8":
        head = Int8Linear(embedding.weight, embedding.scales, None, embedding.dtype)
    else:
        n, half = embedding.weight.shape
        group = 2 * half // embedding.scales.shape[1]
        kernel = int4_kernel(embedding.weight.device, embedding.dtype, n, 2 * half, group)
        positions = cpu_pack_positions(2 * half) if kernel == "cpu" and n % CPU_PACK_ROWS == 0 else None
        tables = (embedding.weight, embedding.scales, embedding.zeros, None, embedding.dtype)
        head = Int4Linear(*tables, in_place=True, use_kernel=positions is not None)
        if positions is not None:
            embedding.read_packed(head, positions)
    head.tied = True
    return head


@torch.no_grad()
def quantize_(
    net: nn.Module, mode: str, group_size: int | None = None, tables: dict[str, Choice | None] | None = None
) -> nn.Module:
    """Swap the planned modules of a loaded network for quantized ones, in place; returns net."""
    planned = plan(net, mode, group_size, tables)
    keys = {name: weight_key(net, name) for name in planned}
    for name, (chosen, group) in planned.items():
        weight = net.get_parameter(keys[name])
        *rows, width = weight.shape
        stored = quantize_weight(weight.reshape(-1, width), chosen, group)  # fused experts: E * N rows
        stored = {key: t.reshape(*rows, *t.shape[1:]) for key, t in stored.items()}
        bias = getattr(net.get_submodule(name), "bias", None) if keys[name] != name else None
        install(net, name, stored, chosen, bias, weight.dtype, in_place=True)
    retie(net)
    return net


def retie(net: nn.Module) -> None:
    """After quantizing a tied model: its module head becomes a view of the quantized table."""
    for embedding_name in TOKEN_EMBEDDINGS:
        for head_name in MODULE_HEADS:
            try:
                embedding, head = net.get_submodule(embedding_name), net.get_submodule(head_name)
            except AttributeError:
                continue
            if tied(net) and isinstance(embedding, QuantizedEmbedding) and isinstance(head, nn.Linear):
                net.set_submodule(head_name, tie_head(embedding))
