"""Weight-only int8 / int4 quantization by swapping modules (gpt-fast's `quantize.py` habit).

Notable features:
- int8: symmetric, one scale per output channel (row): `w ≈ q · s`, q in [-127, 127].
- int4: asymmetric, one scale and zero per group of `group_size` inputs along each row, in the
  tinygemm convention the packed kernels read: `w ≈ (q - 8) · s + z`, q in [0, 15], with s and z
  rounded to bfloat16. Asymmetric because the kernels carry a float zero per group at no cost, so
  the 16 levels span each group's [min, max] rather than a symmetric [-absmax, absmax] that wastes
  a level: the round-trip error on the story model's weights is 0.83x the symmetric one at group
  64. On its predictions the two are equal within the measurement (KL to float32 0.0061 against
  0.0058), perhaps because the zero's bfloat16 rounding shifts a whole group.
- Matmuls go through PyTorch's packed kernels where this build has them and they are fast:
  `_weight_int4pack_mm_for_cpu` on CPU and `_weight_int4pack_mm` (tinygemm) on CUDA for bfloat16
  activations; `_weight_int8pack_mm` on CPU for bfloat16 and fewer than INT8_KERNEL_MAX_ROWS rows.
  Otherwise the weight is dequantized a block of rows at a time and multiplied (for int8 as
  gpt-fast does, `linear(x, q) · s`): float32 and float16 activations, where the CPU kernels were
  measured 20-60x slower than a float matmul, shapes a kernel refuses, int8 on CUDA, and int8 on
  diffusion-sized canvases, where the bfloat16 matmul on dequantized blocks beat the int8 kernel
  1.6-3.3x (48-160 rows). `tests/test_quantization.py` proves every path equal to the dequantized reference.
- What stays in high precision, measured on the story model by the KL divergence of masked-token
  predictions to the float32 model (docs/models.md, "Quantization"): norms and biases always. The
  token tables, embedding and LM head, are int8 at most (`TABLE_MODE`): at int4 the head nearly
  doubled the KL and cut top-1 agreement from 96.4% to 89.9%, and the embedding added 60% to the
  KL; at int8 the head changed neither, and the tables are a quarter of a 0.5B model. A lookup
  dequantizes only the rows it gathers. LLaDA multiplies by its head's tensor rather than calling
  the module, so its head (and a table tied to it) stays in the run dtype.
- Stored layout (what `unmask quantize` writes, and what `build` takes): int8 `weight` int8
  (N, K) and `scales` float32 (N,); int4 `weight` uint8 (N, K/2) with the even column in the high
  nibble (the layout CUDA's `_convert_weight_to_int4pack` takes), `scales` and `zeros` bfloat16
  (N, K/group_size). The device layouts are made from it when a module is built.
- A quantized module is built for one device and one compute dtype; moving it is not supported.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MODES = {"int8": 8, "int4": 4}
# 64 columns per int4 group: on the story model, KL to float32 0.0046 / 0.0061 / 0.0065 and top-1
# agreement 96.3 / 96.4 / 95.4% at 32 / 64 / 128, for 5 / 4.5 / 4.25 bits a weight (bfloat16
# scales and zeros); 32 buys little agreement for 11% more memory, 128 loses a point.
DEFAULT_GROUP_SIZE = 64
KERNEL_GROUP_SIZES = (32, 64, 128, 256)  # what the int4 packed kernels accept
# The heads and token embeddings of Dream and LLaDA (Hugging Face names). Dream calls its head as
# a module, so it can be swapped; LLaDA multiplies by the head's tensor, so its head (and, when
# tied, its embedding table) stays in high precision.
MODULE_HEADS = ("lm_head",)
TENSOR_HEADS = ("model.transformer.ff_out",)
TOKEN_EMBEDDINGS = ("model.embed_tokens", "model.transformer.wte")
TIED_FLAGS = ("tie_word_embeddings", "weight_tying")  # Dream's and LLaDA's config names
# The token tables (embedding, LM head) are int8 at most. On the story model, int4 for the head
# nearly doubled the KL to float32 (0.0115 against 0.0061) and cut top-1 agreement from 96.4% to
# 89.9%, int4 for the embedding added 60% to the KL; at int8 the head changed neither.
TABLE_MODE = "int8"
INT8_MAX = 127
INT4_LEVELS = 15
INT4_OFFSET = 8  # tinygemm stores q and subtracts 8: w = (q - 8) * s + z
SCALE_FLOOR = 1e-8  # an all-zero row or group still gets a finite scale
KERNEL_ALIGN = 64  # `_weight_int8pack_mm` crashes on int8 weights that are not 16-byte aligned
# Below this many rows of activations the CPU int8 kernel is faster; from it on, dequantizing to
# bfloat16 and using the bfloat16 matmul is (1.2-1.4x the bfloat16 time at 48-160 rows against the
# kernel's 2.3-4x, on AVX512-BF16). Diffusion canvases are nearly always past it.
INT8_KERNEL_MAX_ROWS = 16
# The CPU int4 kernel lays out blocks of 64 output rows on its own, so packing in row blocks of a
# multiple of it gives the same bytes (tests/test_quantization.py packs a weight of several blocks).
CPU_PACK_ROWS = 64
# The dequantize path makes this many weights at a time, so its transient copy stays small even for
# a 150k-row LM head.
DEQUANT_BLOCK = 8 << 20


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


def plan(net: nn.Module, mode: str, group_size: int | None = None, tables: str | None = TABLE_MODE) -> dict[str, str]:
    """name -> mode of the modules `quantize_` swaps: every `nn.Linear` whose width the groups
    divide, in `mode`; the token embedding and a head called as a module (one table when tied) in
    whichever of `mode` and `tables` keeps more bits (tables=None: high precision). Norms and
    biases stay as they are."""
    group = group_size_for(mode, group_size)
    if tables is not None:
        group_size_for(tables, None)  # checks the name
    table_mode = None if tables is None else max(mode, tables, key=MODES.get)
    has_module_head = any(isinstance(m, nn.Linear) for n, m in net.named_modules() if n in MODULE_HEADS)
    out = {}
    for name, module in net.named_modules():
        if isinstance(module, nn.Linear) and name not in TENSOR_HEADS:
            chosen = mode
            if name in MODULE_HEADS:
                chosen = None if tied(net) else table_mode  # tied: the embedding's table serves as the head
        elif isinstance(module, nn.Embedding) and name in TOKEN_EMBEDDINGS:
            chosen = table_mode if has_module_head or not tied(net) else None
        else:
            continue
        width = module.weight.shape[1]
        if chosen is not None and (chosen == "int8" or width % group_size_for(chosen, group) == 0):
            out[name] = chosen
    return out


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
    low, high = g.amin(dim=-1), g.amax(dim=-1)  # (N, G)
    scales = ((high - low) / INT4_LEVELS).clamp(min=SCALE_FLOOR).to(torch.bfloat16)
    zeros = (low + INT4_OFFSET * scales.float()).to(torch.bfloat16)
    # q from the rounded scale and zero, so that dequantizing reproduces the nearest level.
    q = (g - zeros.float()[..., None]).div_(scales.float()[..., None]).round_().add_(INT4_OFFSET)
    q = q.clamp_(0, INT4_LEVELS).to(torch.uint8).reshape(N, K)
    return {"weight": pack_nibbles(q), "scales": scales, "zeros": zeros}


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
    q = unpack_nibbles(stored["weight"]).float()  # (N, K)
    N, K = q.shape
    g = q.reshape(N, scales.shape[1], -1)  # (N, G, group)
    w = (g - INT4_OFFSET) * scales[..., None] + stored["zeros"].float()[..., None]
    return w.reshape(N, K).to(dtype)


def stored_shapes(shape: tuple[int, int], mode: str, group_size: int | None = None) -> dict[str, tuple]:
    """name -> (shape, dtype) of the stored tensors of a (N, K) weight."""
    group = group_size_for(mode, group_size)
    N, K = shape
    if mode == "int8":
        return {"weight": ((N, K), torch.int8), "scales": ((N,), torch.float32)}
    return {
        "weight": ((N, K // 2), torch.uint8),
        "scales": ((N, K // group), torch.bfloat16),
        "zeros": ((N, K // group), torch.bfloat16),
    }


def stored_bytes(n_weights: int, mode: str, group_size: int | None = None) -> float:
    """Bytes a quantized weight of n_weights numbers takes on disk (scales and zeros included);
    rows of int8 are assumed to be 4096 wide for the per-row scale (a rounding error either way)."""
    group = group_size_for(mode, group_size)
    if mode == "int8":
        return n_weights * (1 + 4 / 4096)
    return n_weights * (0.5 + 4 / group)


class Int8Linear(nn.Module):
    """`nn.Linear` with int8 weights and one scale per output channel."""

    def __init__(self, weight: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype):
        super().__init__()
        self.out_features, self.in_features = weight.shape
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
    """`nn.Linear` with int4 weights, a scale and a zero per group of `group_size` inputs."""

    def __init__(
        self,
        weight: torch.Tensor,
        scales: torch.Tensor,
        zeros: torch.Tensor,
        bias: torch.Tensor | None,
        dtype: torch.dtype,
    ):
        super().__init__()
        self.out_features, half = weight.shape
        self.in_features = 2 * half
        self.group_size = self.in_features // scales.shape[1]
        self.register_buffer("bias", None if bias is None else bias.to(dtype))
        self.kernel = int4_kernel(weight.device, dtype, self.out_features, self.in_features, self.group_size)
        if self.kernel is None:
            self.register_buffer("weight", weight)  # (N, K/2) uint8, dequantized at each call
            self.register_buffer("scales", scales.to(dtype))  # (N, K/group)
            self.register_buffer("zeros", zeros.to(dtype))
            return
        if self.kernel == "cpu":
            packed = pack_for_cpu(weight)
        else:
            packed = torch.ops.aten._convert_weight_to_int4pack(weight.contiguous(), self.kernel)
        self.register_buffer("weight", packed)
        # (K/group, N, 2): each group's scale and zero side by side, as the kernels load them.
        both = torch.stack((scales, zeros), dim=-1).transpose(0, 1)
        self.register_buffer("scales_and_zeros", both.to(dtype).contiguous())

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


def pack_for_cpu(weight: torch.Tensor) -> torch.Tensor:
    """The CPU int4 kernel's layout of a stored (N, K/2) weight, packed CPU_PACK_ROWS rows at a
    time: the kernel takes its input as int32, and whole-weight int32 copies fragmented the heap
    (a 0.5B load peaked at 4x its int4 weights)."""
    n, half = weight.shape
    packed = torch.empty((n, half), dtype=torch.uint8)
    step = max(CPU_PACK_ROWS, DEQUANT_BLOCK // (8 * half) // CPU_PACK_ROWS * CPU_PACK_ROWS)
    for a in range(0, n, step):
        rows = unpack_nibbles(weight[a : a + step]).to(torch.int32)
        packed[a : a + step] = torch.ops.aten._convert_weight_to_int4pack_for_cpu(rows, 1)
    return packed


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
    """A token embedding stored as int8 or int4 rows; a lookup dequantizes the rows it gathers."""

    def __init__(self, stored: dict[str, torch.Tensor], mode: str, dtype: torch.dtype):
        super().__init__()
        self.mode, self.dtype = mode, dtype
        self.register_buffer("weight", stored["weight"])
        self.register_buffer("scales", stored["scales"].to(dtype))
        self.register_buffer("zeros", stored["zeros"].to(dtype) if "zeros" in stored else None)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        flat = ids.reshape(-1)
        rows = {"weight": self.weight[flat], "scales": self.scales[flat]}
        if self.zeros is not None:
            rows["zeros"] = self.zeros[flat]
        return dequantize(rows, self.mode, self.dtype).reshape(*ids.shape, -1)


def build(
    module: nn.Module, stored: dict[str, torch.Tensor], mode: str, bias: torch.Tensor | None, dtype: torch.dtype
) -> nn.Module:
    """The quantized replacement of `module` (an nn.Linear or nn.Embedding, real or on the meta
    device) from its stored tensors, on their device, computing in `dtype`."""
    if isinstance(module, nn.Embedding):
        return QuantizedEmbedding(stored, mode, dtype)
    if mode == "int8":
        return Int8Linear(stored["weight"], stored["scales"], bias, dtype)
    return Int4Linear(stored["weight"], stored["scales"], stored["zeros"], bias, dtype)


def tie_head(embedding: QuantizedEmbedding) -> Int8Linear:
    """The LM head of a tied model whose embedding table is int8: the same tensors, no copy."""
    if embedding.mode != "int8":
        raise ValueError(f"a tied LM head needs an int8 table, got {embedding.mode}")
    return Int8Linear(embedding.weight, embedding.scales, None, embedding.dtype)


@torch.no_grad()
def quantize_(net: nn.Module, mode: str, group_size: int | None = None, tables: str | None = TABLE_MODE) -> nn.Module:
    """Swap the planned modules of a loaded network for quantized ones, in place; returns net."""
    for name, chosen in plan(net, mode, group_size, tables).items():
        module = net.get_submodule(name)
        stored = quantize_weight(module.weight, chosen, group_size)
        net.set_submodule(name, build(module, stored, chosen, getattr(module, "bias", None), module.weight.dtype))
    retie(net)
    return net


def retie(net: nn.Module) -> None:
    """After quantizing a tied model: its module head becomes a view of the int8 table."""
    for embedding_name in TOKEN_EMBEDDINGS:
        for head_name in MODULE_HEADS:
            try:
                embedding, head = net.get_submodule(embedding_name), net.get_submodule(head_name)
            except AttributeError:
                continue
            if tied(net) and isinstance(embedding, QuantizedEmbedding) and isinstance(head, nn.Linear):
                net.set_submodule(head_name, tie_head(embedding))
