"""From a model reference to a loaded `Checkpoint`: resolve, read config, check and load weights.

Notable features:
- A reference is an embedded name (`story`, `sudoku`), a named model (`unmask create`), a local
  folder, or a Hugging Face repo id (or alias) already in the local hub cache; `unmask pull` puts
  it there.
- A named model is a `model.json` under `$UNMASK_HOME/models/NAME/` naming a base checkpoint; it
  loads as that checkpoint with its parameters as the shipped decoding defaults, its template as
  the chat template and its system prompt on the `Checkpoint`. No weight is copied.
- Safetensors only. Pickle checkpoints (`*.bin`, `*.pt`, `*.pth`) are refused, since unpickling
  runs code, and nothing from a model folder is ever imported (`auto_map` is ignored).
- Weights are memory-mapped and assigned into a model built on the meta device, so a 7B model
  loads without a second copy; a weight converted on the way (dtype, device, quantization) streams
  from the file through a small buffer instead. Every name and shape is checked first, and a
  mismatch names the parameter.
- `quantize="int8"|"int4"` quantizes layer by layer as weights are read (models/quant.py); a
  checkpoint `unmask quantize` wrote (`save_quantized`) loads quantized by itself.
- A fit check refuses, before any weight is read, a model whose estimated memory exceeds what is
  free, naming the quantization that would fit (`memory_needed`, `check_fits`).
"""

from __future__ import annotations

import ctypes
import functools
import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from .formats import ALIASES, PICKLE_SUFFIXES
from .models import architecture_for, quant

WEIGHTS_DIR = Path(__file__).parent / "weights"
# On a CPU without native bfloat16, above this size a load still defaults to bfloat16: float32
# would not fit most laptops.
CPU_FLOAT32_MAX_PARAMS = 2_000_000_000
# CPU flags of native bfloat16 arithmetic (x86 AVX512-BF16 / AMX, Arm BF16): with them a bfloat16
# matmul was measured 3.7x faster than float32 (212 vs 58 GFLOP/s on one core).
NATIVE_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
QUANTIZE_MODES = tuple(quant.MODES)  # "int8", "int4"
QUANT_METHOD = "unmask"  # config.json's quantization_config.quant_method for `unmask quantize` output
SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
# Tensors converted while read (another dtype, a device, quantization) stream through a buffer of
# this size, so a load never holds the file's copy beside the converted one.
READ_CHUNK_BYTES = 8 << 20
# Weights are quantized in blocks of rows of this many float32 bytes (and a few temporaries of it:
# the int4 scale search holds five). 1 MB blocks made the search 1.3x faster per weight alone, but
# not a 0.5B int4 load (within its run-to-run spread), and put 4 MB more on its peak.
QUANTIZE_BLOCK_BYTES = 1 << 18
# Tensors `unmask quantize` writes start at multiples of this in the file, so that int8 weights can
# be used as views of the mapped file: the CPU int8 kernel crashes on a weight not 16-byte aligned.
FILE_ALIGN = 64
# The fit check: the canvas it plans for when no request is known yet (prompt + the usual 256 new
# tokens), and what the process itself takes besides the model (torch, the tokenizer: ~0.3 GB).
FIT_CANVAS = 512
RUNTIME_BYTES = 400 << 20
GB = 1e9
# Files of a checkpoint folder that `unmask quantize` does not copy (the weights it rewrites).
WEIGHT_FILE_PATTERNS = ("model*.safetensors", "model.safetensors.index.json")

# Named models (`unmask create`) live in $UNMASK_HOME/models/NAME/model.json; UNMASK_HOME defaults to ~/.unmask.
HOME_ENV = "UNMASK_HOME"
DEFAULT_HOME = "~/.unmask"
NAMED_MODEL_FILE = "model.json"
# Lowercase, as Ollama's names; no "/" (hub ids and paths have one), and no leading "." or "-".
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._:-]{0,127}")


@dataclass
class SpecialIds:
    mask: int | None  # None: the checkpoint names none; generation then needs `mask_token_id`
    eos: list[int]  # every id that ends a generation (eos, end of turn)
    pad: int
    bos: int | None = None


@dataclass
class Checkpoint:
    """A loaded checkpoint: the network, its tokenizer and special ids, and what its files say."""

    net: nn.Module
    config: dict
    family: str  # "dream" | "llada": whose recipe and quirks are native to it
    ids: SpecialIds
    tokenizer: object | None = None  # unmask.tokenizer.Tokenizer
    name: str = ""
    path: Path | None = None
    generation_config: dict = field(default_factory=dict)
    system_prompt: str | None = None  # a named model's SYSTEM: the system turn of chats that have none

    @property
    def defaults(self) -> dict:
        """Decoding defaults shipped with the checkpoint: the "unmask" section of its
        generation_config.json (our own models write one), without unset values; else {}."""
        section = (self.generation_config or {}).get("unmask") or {}
        return {k: v for k, v in section.items() if v is not None}

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.net.parameters()).dtype

    @property
    def num_parameters(self) -> int:
        """The model's weights as trained, however stored (a quantized weight counts its numbers)."""
        return quant.parameter_count(self.net)

    @property
    def context_length(self) -> int:
        args = self.net.args
        return getattr(args, "max_position_embeddings", None) or getattr(args, "max_sequence_length", 4096)

    @property
    def chat(self) -> bool:
        """Whether prompts go through a chat template."""
        return bool(self.tokenizer is not None and self.tokenizer.chat_template)


class ModelLoadError(Exception):
    """A model reference could not be turned into a model; the message says why and what to do."""


def embedded_models() -> list[str]:
    if not WEIGHTS_DIR.is_dir():
        return []
    return sorted(p.name for p in WEIGHTS_DIR.iterdir() if (p / "config.json").is_file())


def named_models_dir() -> Path:
    """Where named models live: $UNMASK_HOME/models (~/.unmask/models by default)."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser() / "models"


def named_model(name: str) -> dict | None:
    """The model.json of the named model `name` (an embedded name wins over it), or None."""
    if not NAME_PATTERN.fullmatch(name) or name in embedded_models():
        return None
    path = named_models_dir() / name / NAMED_MODEL_FILE
    if not path.is_file():
        return None
    spec = read_json(path, NAMED_MODEL_FILE)
    if not isinstance(spec, dict):
        raise ModelLoadError(f"{path}: not a JSON object")
    return spec


def named_base(name: str, spec: dict) -> Path:
    """The checkpoint folder a named model is made from (stored at `unmask create` time)."""
    base = str(spec.get("base", ""))
    folder = WEIGHTS_DIR / base if spec.get("base_source") == "embedded" else Path(base)
    if not base or not (folder / "config.json").is_file():
        raise ModelLoadError(
            f"named model {name!r} is made from {spec.get('from') or base!r}, whose folder {folder} is gone; "
            f"pull it again or recreate the model with `unmask create {name}`"
        )
    return folder


def resolve(ref: str | os.PathLike) -> Path:
    """An embedded name, a named model, a folder, or a cached hub id -> the checkpoint folder."""
    text = str(ref)
    if text in embedded_models():
        return WEIGHTS_DIR / text
    named = named_model(text)
    if named is not None:
        return named_base(text, named)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    repo_id = ALIASES.get(text, text)
    if repo_id.count("/") == 1 and not path.exists():
        cached = cached_snapshot(repo_id)
        if cached is not None:
            return cached
        raise ModelLoadError(f"{repo_id} is not downloaded yet; run `unmask pull {text}` first")
    names = ", ".join(embedded_models() + sorted(ALIASES))
    raise ModelLoadError(f"unknown model {text!r}: not a folder, an embedded model or a hub id (known: {names})")


def cached_snapshot(repo_id: str) -> Path | None:
    """The newest complete snapshot of repo_id in the local hub cache, without network."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached (huggingface_hub raises several types for this)
        return None


def read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: missing {what}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"{path}: not valid JSON ({err})") from None


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a checkpoint, single or sharded; refuses pickle-only folders."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(read_json(index, "shard index").get("weight_map", {}).values()))
        if not shards:
            raise ModelLoadError(f"{index}: weight_map is empty")
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise ModelLoadError(f"{folder}: shard(s) listed in the index are missing: {', '.join(missing)}")
        return [folder / s for s in shards]
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    others = sorted(folder.glob("model*.safetensors"))
    if others:
        return others
    pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise ModelLoadError(
            f"{folder}: only pickle weights found ({', '.join(pickles)}); unmask loads safetensors only, "
            "because unpickling can run arbitrary code. Convert the checkpoint to safetensors first."
        )
    raise ModelLoadError(f"{folder}: no model.safetensors (or sharded model-*.safetensors) found")


def pick_device(device: str) -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device not in ("cpu", "cuda", "mps") and not device.startswith(("cuda:", "mps:")):
        raise ModelLoadError(f"device: expected auto, cpu, cuda or mps, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        build = "has no CUDA support" if torch.version.cuda is None else "finds no CUDA GPU"
        raise ModelLoadError(
            f"device: cuda was asked for, but this torch ({torch.__version__}) {build}; use --device cpu"
        )
    if device.startswith("mps") and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelLoadError("device: mps was asked for, but Apple's Metal is not available here; use --device cpu")
    return torch.device(device)


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (x86 "flags", Arm "Features"); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (so bfloat16 is the fast CPU dtype)."""
    return bool(cpu_flags() & NATIVE_BF16_FLAGS)


def pick_dtype(dtype: str, config: dict, device: torch.device, n_params: int) -> torch.dtype:
    """The dtype a load runs in. auto: on CPU bfloat16 where the CPU has native bfloat16 (fast),
    else float32 up to CPU_FLOAT32_MAX_PARAMS; on CUDA/MPS the checkpoint's torch_dtype."""
    if dtype != "auto":
        if dtype not in DTYPES:
            raise ModelLoadError(f"dtype: expected auto, {', '.join(DTYPES)}, got {dtype!r}")
        return DTYPES[dtype]
    if device.type == "cpu":
        if cpu_has_native_bf16() or n_params > CPU_FLOAT32_MAX_PARAMS:
            return torch.bfloat16
        return torch.float32
    return DTYPES.get(str(config.get("torch_dtype")), torch.bfloat16)


@dataclass(frozen=True)
class Quantization:
    """How a load quantizes: the mode, the int4 group size, and whether the files already hold the
    quantized tensors (a checkpoint `unmask quantize` wrote) or they are made as weights are read."""

    mode: str  # "int8" | "int4"
    group_size: int | None = None
    stored: bool = False


def pick_quantization(quantize: str | None, config: dict, folder: Path) -> Quantization | None:
    """The quantization of a load: the checkpoint's own (its quantization_config), else `quantize`."""
    section = config.get("quantization_config")
    if section is not None:
        method = section.get("quant_method") if isinstance(section, dict) else section
        if method != QUANT_METHOD:
            raise ModelLoadError(
                f"{folder / 'config.json'}: quantization_config.quant_method {method!r} is not supported; "
                "unmask loads the checkpoints `unmask quantize` writes"
            )
        mode = f"int{section.get('bits')}"
        if mode not in QUANTIZE_MODES:
            raise ModelLoadError(
                f"{folder / 'config.json'}: quantization_config.bits: expected 8 or 4, got {section.get('bits')!r}"
            )
        if quantize not in (None, mode):
            raise ModelLoadError(
                f"quantize: {folder} is already quantized to {mode}; load it without --quantize {quantize}, "
                "or quantize the original checkpoint"
            )
        return Quantization(mode, section.get("group_size"), stored=True)
    if quantize is None:
        return None
    if quantize not in QUANTIZE_MODES:
        raise ModelLoadError(f"quantize: expected {' or '.join(QUANTIZE_MODES)}, got {quantize!r}")
    return Quantization(quantize, quant.group_size_for(quantize, None))


def read_header(file: Path) -> tuple[dict, int]:
    """(name -> {"dtype", "shape", "data_offsets"}, byte where the data starts) of a safetensors file."""
    with file.open("rb") as f:
        length = int.from_bytes(f.read(8), "little")  # u64 header length, per the format
        header = json.loads(f.read(length))
    header.pop("__metadata__", None)
    return header, 8 + length


class WeightReader:
    """The tensors of a checkpoint's safetensors files by name, each read once, never twice in memory.

    A tensor kept as stored on the CPU is a view of the memory-mapped file (safe_open's, no copy);
    one converted (another dtype, another device, quantized) streams from the file through one small
    buffer, so the file's pages are not held beside the converted copy.
    """

    def __init__(self, files: list[Path]):
        self.entries: dict[str, tuple[Path, torch.dtype, tuple[int, ...], int]] = {}
        self.mapped: dict[Path, object] = {}
        self.streams: dict[Path, object] = {}
        self.buffer = bytearray(READ_CHUNK_BYTES)
        try:
            for file in files:
                self.open(file)
        except BaseException:
            self.close()
            raise

    def open(self, file: Path) -> None:
        try:
            self.mapped[file] = safe_open(str(file), framework="pt", device="cpu")
            header, data_start = read_header(file)
            self.streams[file] = file.open("rb")
        except SafetensorError as err:
            raise ModelLoadError(f"{file}: not a readable safetensors file (truncated or corrupt?): {err}") from None
        except OSError as err:
            raise ModelLoadError(f"{file}: cannot read ({err.strerror or err})") from None
        for name, entry in header.items():
            dtype = SAFETENSORS_DTYPES.get(entry["dtype"])
            if dtype is None:
                raise ModelLoadError(
                    f"{file.name}: parameter {name!r} is stored as {entry['dtype']}, which unmask cannot read"
                )
            self.entries[name] = (file, dtype, tuple(entry["shape"]), data_start + entry["data_offsets"][0])

    def close(self) -> None:
        for handle in self.mapped.values():
            handle.__exit__(None, None, None)  # views already taken stay valid: they hold the mapping
        for stream in self.streams.values():
            stream.close()
        self.mapped, self.streams = {}, {}

    def dtype(self, name: str) -> torch.dtype:
        return self.entries[name][1]

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entries[name][2]

    def tensor(self, name: str, dtype: torch.dtype | None = None, device=None, view: bool = True) -> torch.Tensor:
        """The tensor in `dtype` (default: as stored) on `device` (default: CPU); `view=False` when
        the caller converts it further, so that no page of the mapped file stays resident for it."""
        file, stored, shape, _ = self.entries[name]
        dtype = dtype or stored
        device = torch.device(device or "cpu")
        if view and dtype == stored and device.type == "cpu":
            return self.mapped[file].get_tensor(name)
        out = torch.empty(shape, dtype=dtype, device=device)
        self.stream_into(name, out.view(-1), 0)
        return out

    def aligned(self, name: str) -> bool:
        """Whether a view of the tensor starts FILE_ALIGN-aligned (the mapping starts on a page)."""
        return self.entries[name][3] % FILE_ALIGN == 0

    def rows(self, name: str, start: int, stop: int) -> torch.Tensor:
        """Rows start..stop-1 of a tensor, as stored, in a new CPU tensor."""
        _, stored, shape, _ = self.entries[name]
        out = torch.empty((stop - start, *shape[1:]), dtype=stored)
        self.stream_into(name, out.view(-1), start * out[0].numel())
        return out

    def stream_into(self, name: str, out: torch.Tensor, first: int) -> None:
        """Fill the flat tensor `out` with the elements of `name` from index `first` on."""
        file, stored, _, offset = self.entries[name]
        item = stored.itemsize
        stream = self.streams[file]
        stream.seek(offset + first * item)
        per_chunk = len(self.buffer) // item
        done, total = 0, out.numel()
        while done < total:
            n = min(per_chunk, total - done)
            if stream.readinto(memoryview(self.buffer)[: n * item]) != n * item:
                raise ModelLoadError(f"{file}: ends inside parameter {name!r} (truncated or corrupt?)")
            out[done : done + n].copy_(torch.frombuffer(self.buffer, dtype=stored, count=n))
            done += n


def check_tensors(reader: WeightReader, expected: dict[str, tuple[int, ...]]) -> None:
    """Every stored name is one the architecture has, with the shape the config implies."""
    for name, (file, _, shape, _) in reader.entries.items():
        if name not in expected:
            raise ModelLoadError(f"{file.name}: unexpected parameter {name!r} for this architecture")
        if shape != expected[name]:
            raise ModelLoadError(
                f"{file.name}: parameter {name!r} has shape {list(shape)}, the config implies {list(expected[name])}"
            )


def quantize_rows(reader: WeightReader, name: str, mode: str, group_size: int | None) -> dict[str, torch.Tensor]:
    """The stored quantized tensors of weight `name`, quantized a block of rows at a time as the
    rows are read (only one block is ever in float32); a fused (E, N, K) weight as its E * N rows."""
    full = reader.shape(name)
    N, K = math.prod(full[:-1]), full[-1]
    layout = quant.stored_shapes(full, mode, group_size)
    stored = {key: torch.empty(shape, dtype=dtype) for key, (shape, dtype) in layout.items()}
    rows = {key: tensor.view(N, -1) for key, tensor in stored.items()}
    step = max(1, QUANTIZE_BLOCK_BYTES // (4 * K))
    for a in range(0, N, step):
        b = min(N, a + step)
        block = torch.empty((b - a, K), dtype=reader.dtype(name))
        reader.stream_into(name, block.view(-1), a * K)
        for key, part in quant.quantize_weight(block, mode, group_size).items():
            rows[key][a:b] = part.view(b - a, -1)
    return stored


STORED_MODES = {torch.int8: "int8", torch.uint8: "int4"}  # a stored quantized weight's dtype -> its mode


def quantized_modules(net: nn.Module, reader: WeightReader, quantization: Quantization) -> dict[str, quant.Choice]:
    """name -> (mode, group size) of the modules whose weights are quantized: those the files store
    with scales (the mode read from the weight's dtype, the group from the scales' width), else the
    plan for `quantization`."""
    if not quantization.stored:
        return quant.plan(net, quantization.mode, quantization.group_size)
    out = {}
    for scales in sorted(n for n in reader.entries if n.endswith(".scales")):
        name = scales.removesuffix(".scales")
        weight = f"{name}.weight"
        mode = STORED_MODES.get(reader.dtype(weight)) if weight in reader.entries else None
        source = quant.weight_key(net, name)  # the float weight it stands for (a fused expert weight: itself)
        if source is None or mode is None:
            file = reader.entries[scales][0]
            raise ModelLoadError(f"{file.name}: unexpected parameter {scales!r} for this architecture")
        width = net.get_parameter(source).shape[-1]
        groups = reader.shape(scales)[-1] if mode == "int4" and len(reader.shape(scales)) >= 2 else 0
        out[name] = (mode, width // groups if groups and width % groups == 0 else quantization.group_size)
    return out


def expected_tensors(
    net: nn.Module, modules: dict[str, quant.Choice], quantization: Quantization | None
) -> dict[str, tuple]:
    """name -> shape of every tensor the files should hold, quantized modules in their stored layout."""
    expected = {name: tuple(p.shape) for name, p in net.state_dict().items()}
    if quantization is None or not quantization.stored:
        return expected
    for name, (mode, group) in modules.items():
        shape = expected.pop(quant.weight_key(net, name))
        for key, (stored, _) in quant.stored_shapes(shape, mode, group).items():
            expected[f"{name}.{key}"] = stored
    return expected


def load_weights(
    net: torch.nn.Module,
    files: list[Path],
    dtype: torch.dtype,
    device: torch.device,
    quantization: Quantization | None = None,
) -> None:
    """Read the weights into `net` (built on the meta device) in `dtype` on `device`, every name and
    shape checked first; with `quantization`, the planned layers are quantized one at a time as
    they are read (or taken quantized from the files), never all in full precision at once."""
    tied = {"lm_head.weight"} if getattr(net.args, "tie_word_embeddings", False) else set()
    reader = WeightReader(files)
    # Weights of parts unmask does not run (DiffusionGemma's vision tower) are left in the file.
    ignored = tuple(getattr(net, "ignored_prefixes", ()))
    for name in [n for n in reader.entries if ignored and n.startswith(ignored)]:
        del reader.entries[name]
    try:
        modules = quantized_modules(net, reader, quantization) if quantization else {}
        expected = expected_tensors(net, modules, quantization)
        check_tensors(reader, expected)
        missing = sorted(set(expected) - set(reader.entries) - tied)
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise ModelLoadError(f"missing parameter(s) in the checkpoint: {shown}")
        sources = {quant.weight_key(net, name) for name in modules}  # before the modules are swapped
        for name, mode in modules.items():
            load_quantized_module(net, reader, name, mode, quantization, dtype, device)
        quantized = {f"{name}.{key}" for name in modules for key in ("weight", "scales", "zeros", "bias")}
        skipped = tied | sources | quantized
        state = {name: reader.tensor(name, dtype, device) for name in reader.entries if name not in skipped}
    finally:
        reader.close()
    net.load_state_dict(state, strict=False, assign=True)
    if tied and "model.embed_tokens" in modules:
        quant.retie(net)
    elif tied:
        net.lm_head.weight = net.model.embed_tokens.weight


def load_quantized_module(
    net: nn.Module,
    reader: WeightReader,
    name: str,
    choice: quant.Choice,
    quantization: Quantization,
    dtype: torch.dtype,
    device: torch.device,
) -> None:
    """Swap module `name` of the meta network for its quantized version (`choice`: mode and group
    size), read from the files."""
    mode, group = choice
    if quantization.stored:
        # int8 weights are used as stored (a view of the file on CPU, where `unmask quantize` aligned
        # them for the kernel); int4 ones are repacked, so they are read, not mapped.
        stored = {
            key: reader.tensor(
                tensor, device=device, view=key != "weight" or (mode == "int8" and reader.aligned(tensor))
            )
            for key in ("weight", "scales", "zeros")
            if (tensor := f"{name}.{key}") in reader.entries
        }
    else:
        made = quantize_rows(reader, quant.weight_key(net, name), mode, group)
        stored = {key: tensor.to(device) for key, tensor in made.items()}
    # Read, not mapped: a view's first touch maps 64 KB of the file around it (fault-around), 4.5 MB
    # of a 0.5B model's peak for its 72 biases.
    bias = reader.tensor(f"{name}.bias", dtype, device, view=False) if f"{name}.bias" in reader.entries else None
    # The stored tensors are ours (a mapped int8 weight is never repacked), so the device layout may take their place.
    quant.install(net, name, stored, mode, bias, dtype, in_place=True)
    if name in quant.TOKEN_EMBEDDINGS:
        quant.retie(net)  # a tied head now, while only the table is loaded (a no-op when untied)
    release_freed_memory()


@functools.cache
def malloc_trim():
    """glibc's malloc_trim, or None (another C library)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    """Hand the heap's free pages back to the system. Quantizing as read frees a block of rows and
    its temporaries at every step, and glibc keeps such memory for reuse: between the long-lived
    quantized tensors it left holes of 90 MB (a third of the int4 weights) in a 0.5B model's peak
    RSS. Packing in place removed most; trimming after every layer takes 7 MB more off it."""
    trim = malloc_trim()
    if trim is not None:
        trim(0)


def save_quantized(ref: str | os.PathLike, dst: str | os.PathLike, mode: str, group_size: int | None = None) -> Path:
    """Write a quantized copy of checkpoint `ref` into the new folder `dst` (`unmask quantize`): the
    planned layers quantized as they are read, the rest as stored, config.json with a
    quantization_config, and the folder's other files (tokenizer, generation config) copied."""
    folder = resolve(ref)
    config = read_json(folder / "config.json", "config.json")
    if config.get("quantization_config") is not None:
        raise ModelLoadError(f"{folder}: already quantized; quantize the original checkpoint instead")
    try:
        group = quant.group_size_for(mode, group_size)
        arch = architecture_for(config)
        args = arch.make_args(config)
    except (ValueError, TypeError, KeyError) as err:
        raise ModelLoadError(str(err)) from None
    out = Path(dst).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ModelLoadError(f"{out}: already exists and is not an empty folder; pick a new one")
    with torch.device("meta"):
        net = arch.make_model(args)
    reader = WeightReader(weight_files(folder))
    try:
        check_tensors(reader, {name: tuple(p.shape) for name, p in net.state_dict().items()})
        sources = {m: quant.weight_key(net, m) for m in quant.plan(net, mode, group)}
        modules = {m: how for m, how in quant.plan(net, mode, group).items() if sources[m] in reader.entries}
        layout = {name: (reader.dtype(name), reader.shape(name)) for name in reader.entries}
        if getattr(args, "tie_word_embeddings", False):
            layout.pop("lm_head.weight", None)  # the loader ties it to the embedding anyway
        for name, how in modules.items():
            del layout[sources[name]]
            for key, spec in quant.stored_shapes(reader.shape(sources[name]), *how).items():
                layout[f"{name}.{key}"] = spec[::-1]
        pending: dict[str, torch.Tensor] = {}  # the quantized tensors of a module not yet all written

        def produce(name: str) -> torch.Tensor:
            module, _, key = name.rpartition(".")
            if module not in modules or key == "bias":
                return reader.tensor(name)
            if name not in pending:  # one module at a time: quantized when its first tensor is due
                made = quantize_rows(reader, sources[module], *modules[module])
                pending.update({f"{module}.{k}": t for k, t in made.items()})
            return pending.pop(name)

        out.mkdir(parents=True, exist_ok=True)
        write_safetensors(out / "model.safetensors", layout, produce)
    finally:
        reader.close()
    bits = quant.MODES[mode]
    section = {
        "quant_method": QUANT_METHOD,
        "bits": bits,
        "group_size": group,
        "symmetric": mode == "int8",
        # What the token tables got (models/quant.py TABLES; a table not named stays as stored).
        # The loader reads each layer's mode and group size from its tensors: this only informs.
        "tables": {
            name: {"bits": quant.MODES[how[0]], "group_size": how[1]}
            for name, how in modules.items()
            if name in quant.TOKEN_EMBEDDINGS + quant.MODULE_HEADS
        },
    }
    (out / "config.json").write_text(json.dumps(config | {"quantization_config": section}, indent=2) + "\n")
    weights = {p.name for pattern in WEIGHT_FILE_PATTERNS for p in folder.glob(pattern)}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name not in weights | {"config.json"} and path.suffix not in PICKLE_SUFFIXES:
            if path.suffix != ".py":  # remote code is never run, so never copied
                shutil.copyfile(path, out / path.name)
    return out


def write_safetensors(path: Path, layout: dict[str, tuple[torch.dtype, tuple]], produce) -> None:
    """Write a safetensors file tensor by tensor: `layout` is name -> (dtype, shape), and
    produce(name) gives each tensor when its turn comes, so the file is never whole in memory.
    Tensors whose size is a multiple of FILE_ALIGN come first, from a FILE_ALIGN-aligned start."""
    codes = {dtype: code for code, dtype in SAFETENSORS_DTYPES.items()}

    def size(name: str) -> int:
        dtype, shape = layout[name]
        return math.prod(shape) * dtype.itemsize

    order = sorted(layout, key=lambda name: (size(name) % FILE_ALIGN != 0, name))
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name in order:
        dtype, shape = layout[name]
        header[name] = {"dtype": codes[dtype], "shape": list(shape), "data_offsets": [offset, offset + size(name)]}
        offset += size(name)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % FILE_ALIGN)  # spaces pad the header, as the format allows
    with path.open("wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for name in order:
            tensor = produce(name).contiguous()
            if (tensor.dtype, tuple(tensor.shape)) != (layout[name][0], tuple(layout[name][1])):
                raise ValueError(f"{name}: produced {tensor.dtype} {list(tensor.shape)}, planned {layout[name]}")
            if size(name):
                f.write((ctypes.c_char * size(name)).from_address(tensor.data_ptr()))  # the bytes, not a copy


@dataclass(frozen=True)
class MemoryNeed:
    """What running a model takes, in bytes: weights, KV cache and activations for one canvas,
    and the process around them."""

    weights: int
    cache: int
    activations: int
    runtime: int = RUNTIME_BYTES

    @property
    def total(self) -> int:
        return self.weights + self.cache + self.activations + self.runtime


def config_widths(config: dict) -> dict:
    """The sizes the memory estimate needs, from a Dream (Qwen2) or LLaDA config."""
    config = config | (config.get("text_config") or {})  # DiffusionGemma keeps its sizes in text_config

    def first(*keys, default=0):
        return next((config[k] for k in keys if config.get(k) is not None), default)

    hidden = int(first("hidden_size", "d_model"))
    heads = int(first("num_attention_heads", "n_heads", default=1))
    kv_heads = int(first("num_key_value_heads", "n_kv_heads", default=heads))
    return {
        "vocab": int(first("embedding_size", "vocab_size")),
        "hidden": hidden,
        "layers": int(first("num_hidden_layers", "n_layers")),
        "heads": heads,
        "kv_width": kv_heads * (hidden // max(1, heads)),
        "intermediate": int(first("intermediate_size", "mlp_hidden_size", default=4 * hidden)),
        "tied": bool(first("tie_word_embeddings", "weight_tying", default=False)),
    }


def dtype_bytes(dtype) -> int:
    """Bytes of one value of a run dtype (a torch dtype or its name)."""
    name = str(dtype).removeprefix("torch.")
    if name not in DTYPES:
        raise ModelLoadError(f"dtype: expected {', '.join(DTYPES)}, got {name!r}")
    return DTYPES[name].itemsize


def memory_needed(
    config: dict,
    n_params: int,
    dtype,
    quantize: str | None = None,
    canvas: int = FIT_CANVAS,
    group_size: int | None = None,
) -> MemoryNeed:
    """The memory a model needs for one canvas of `canvas` tokens, from its config and parameter
    count alone (no file is read): a pure function, so `unmask show` and the fit check agree."""
    w = config_widths(config)
    b = dtype_bytes(dtype)
    if quantize is None:
        weights = n_params * b
    else:
        group = quant.group_size_for(quantize, group_size)
        tables = quant.TABLES[quantize]

        def per_weight(choice: quant.Choice | None) -> float:  # bytes, in memory (scales in the run dtype)
            return b if choice is None else quant.stored_bytes(1, *choice, scale_bytes=b)

        # As models/quant.py plans it: the token tables as quant.TABLES says (LLaDA's head, which it
        # reads as a tensor, and a table tied to it in the run dtype; DiffusionGemma's tied table,
        # read as a tensor too), the norms in the run dtype, the rest in `quantize`.
        llada = str(config.get("model_type", "")).lower() in ("llada", "grid", "diffusion_gemma")
        if llada:
            head, embedding = b, 0 if w["tied"] else per_weight(tables["embedding"])
        elif w["tied"]:
            head, embedding = 0, per_weight(tables["tied"])
        else:
            head, embedding = per_weight(tables["head"]), per_weight(tables["embedding"])
        table, norms = w["vocab"] * w["hidden"], (2 * w["layers"] + 1) * w["hidden"]
        rest = n_params - (1 if w["tied"] else 2) * table - norms
        weights = table * (head + embedding) + norms * b + max(0, rest) * per_weight((quantize, group))
    cache = 2 * w["layers"] * w["kv_width"] * canvas * b  # keys and values, every layer
    # One pass: float32 logits and the sampler's copies of them, the MLP's three intermediates, the
    # residual stream and attention inputs, and one layer's attention scores.
    per_token = 3 * w["vocab"] * 4 + 3 * w["intermediate"] * b + 8 * w["hidden"] * b
    activations = canvas * per_token + w["heads"] * canvas * canvas * 4
    return MemoryNeed(int(weights), cache, activations)


def check_fits(config: dict, n_params: int, dtype, quantize: str | None, canvas: int, free: int | None) -> MemoryNeed:
    """The memory need of a load; raises a one-line `ModelLoadError` naming the fix (a quantization
    that fits) when it exceeds `free` bytes. free=None (unknown) never refuses."""
    need = memory_needed(config, n_params, dtype, quantize, canvas)
    if free is None or need.total <= free:
        return need
    smaller = [m for m in QUANTIZE_MODES if quantize is None or quant.MODES[m] < quant.MODES[quantize]]
    sizes = {m: memory_needed(config, n_params, dtype, m, canvas).total for m in smaller}
    fits = [m for m in smaller if sizes[m] <= free]
    if fits:
        fix = f"try --quantize {fits[0]} (about {sizes[fits[0]] / GB:.1f} GB)"
    elif smaller:
        least = smaller[-1]
        fix = f"even --quantize {least} needs about {sizes[least] / GB:.1f} GB; free memory or pick a smaller model"
    else:
        fix = "free memory or pick a smaller model"
    what = str(dtype).removeprefix("torch.") + (f" with {quantize} weights" if quantize else "")
    raise ModelLoadError(
        f"this model in {what} needs about {need.total / GB:.1f} GB, {free / GB:.1f} GB is free; {fix}"
    )


def free_memory(device: torch.device) -> int | None:
    """Bytes free for a model: MemAvailable (Linux) for the CPU, free VRAM for CUDA; None when unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the file counts kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def special_ids(config: dict, generation_config: dict, tokenizer) -> SpecialIds:
    # Multimodal configs (DiffusionGemma) keep the text model's ids in text_config.
    config = (config.get("text_config") or {}) | config

    def first(*values):
        for v in values:
            if v is not None:
                return v
        return None

    mask = first(config.get("mask_token_id"), generation_config.get("mask_token_id"))
    if mask is None and tokenizer is not None:
        mask = tokenizer.mask_id
    # None: the checkpoint names no mask token (LLaDA2's config and the pipeline's golden tiny
    # folders do not; the pipeline is given `mask_token_id`). It loads, and generating asks for one.
    eos: list[int] = []
    for source in (config.get("eos_token_id"), generation_config.get("eos_token_id")):
        for v in source if isinstance(source, list) else [source]:
            if v is not None and v not in eos:
                eos.append(int(v))
    if tokenizer is not None:
        for v in tokenizer.stop_ids:
            if v not in eos:
                eos.append(v)
    pad = first(config.get("pad_token_id"), generation_config.get("pad_token_id"), eos[0] if eos else None, 0)
    return SpecialIds(
        mask=None if mask is None else int(mask), eos=eos, pad=int(pad), bos=first(config.get("bos_token_id"))
    )


def load_checkpoint(
    ref: str | os.PathLike, dtype: str = "auto", device: str = "auto", quantize: str | None = None
) -> Checkpoint:
    """Load a checkpoint. ref: embedded name, local folder, or hub id / alias already pulled.
    quantize: "int8" or "int4" quantizes the weights as they are read (a checkpoint `unmask
    quantize` wrote loads quantized without it). Refuses, naming the fix, when it would not fit."""
    folder = resolve(ref)
    config = read_json(folder / "config.json", "config.json")
    try:
        arch = architecture_for(config)
        args = arch.make_args(config)
    except (ValueError, TypeError, KeyError) as err:
        raise ModelLoadError(f"{folder / 'config.json'}: {err}") from None
    files = weight_files(folder)
    dev = pick_device(device)
    quantization = pick_quantization(quantize, config, folder)
    with torch.device("meta"):
        net = arch.make_model(args)
    n_params = sum(p.numel() for p in net.parameters())
    run_dtype = pick_dtype(dtype, config, dev, n_params)
    check_fits(config, n_params, run_dtype, quantization and quantization.mode, FIT_CANVAS, free_memory(dev))
    load_weights(net, files, run_dtype, dev, quantization)
    net.eval().requires_grad_(False)
    gen_path = folder / "generation_config.json"
    generation_config = read_json(gen_path, "generation_config.json") if gen_path.is_file() else {}
    from .tokenizer import Tokenizer

    tokenizer = Tokenizer.from_folder(folder) if Tokenizer.has_files(folder) else None
    ids = special_ids(config, generation_config, tokenizer)
    name = str(ref)
    named = named_model(name)
    if named is None:
        return Checkpoint(net, config, arch.family, ids, tokenizer, name, folder, generation_config)
    # A named model: its PARAMETERs over the base's shipped defaults, its TEMPLATE, its SYSTEM.
    shipped = (generation_config.get("unmask") or {}) | (named.get("parameters") or {})
    generation_config = generation_config | {"unmask": shipped}
    if named.get("template") and tokenizer is not None:
        tokenizer.chat_template = named["template"]
    system = named.get("system") or None
    return Checkpoint(net, config, arch.family, ids, tokenizer, name, folder, generation_config, system)
