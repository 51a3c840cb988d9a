"""From a model reference to a loaded `Checkpoint`: resolve, read config, check and load weights.

Notable features:
- A reference is an embedded name (`story`, `sudoku`), a local folder, or a Hugging Face repo id
  (or alias) already in the local hub cache; `unmask pull` puts it there.
- Safetensors only. Pickle checkpoints (`*.bin`, `*.pt`, `*.pth`) are refused, since unpickling
  runs code, and nothing from a model folder is ever imported (`auto_map` is ignored).
- Weights are memory-mapped and assigned into a model built on the meta device, so a 7B model
  loads without a second copy; every name and shape is checked first, and a mismatch names the
  parameter.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from .formats import ALIASES, PICKLE_SUFFIXES
from .models import architecture_for

WEIGHTS_DIR = Path(__file__).parent / "weights"
# Above this size a CPU load defaults to bfloat16: float32 would not fit most laptops.
CPU_FLOAT32_MAX_PARAMS = 2_000_000_000

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class SpecialIds:
    mask: int
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
        return sum(p.numel() for p in self.net.parameters())

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


def resolve(ref: str | os.PathLike) -> Path:
    """An embedded name, a folder, or a cached hub id -> the checkpoint folder."""
    text = str(ref)
    if text in embedded_models():
        return WEIGHTS_DIR / text
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
    return torch.device(device)


def pick_dtype(dtype: str, config: dict, device: torch.device, n_params: int) -> torch.dtype:
    if dtype != "auto":
        if dtype not in DTYPES:
            raise ModelLoadError(f"dtype: expected auto, {', '.join(DTYPES)}, got {dtype!r}")
        return DTYPES[dtype]
    if device.type == "cpu":
        return torch.float32 if n_params <= CPU_FLOAT32_MAX_PARAMS else torch.bfloat16
    return DTYPES.get(str(config.get("torch_dtype")), torch.bfloat16)


def load_weights(net: torch.nn.Module, files: list[Path], dtype: torch.dtype, device: torch.device) -> None:
    expected = {name: tuple(p.shape) for name, p in net.state_dict().items()}
    tied = {"lm_head.weight"} if getattr(net.args, "tie_word_embeddings", False) else set()
    state: dict[str, torch.Tensor] = {}
    for file in files:
        try:
            with safe_open(str(file), framework="pt", device="cpu") as f:
                for name in f.keys():
                    if name not in expected:
                        raise ModelLoadError(f"{file.name}: unexpected parameter {name!r} for this architecture")
                    shape = tuple(f.get_slice(name).get_shape())
                    if shape != expected[name]:
                        raise ModelLoadError(
                            f"{file.name}: parameter {name!r} has shape {list(shape)}, "
                            f"the config implies {list(expected[name])}"
                        )
                    state[name] = f.get_tensor(name).to(device=device, dtype=dtype)
        except SafetensorError as err:
            raise ModelLoadError(f"{file}: not a readable safetensors file (truncated or corrupt?): {err}") from None
        except OSError as err:
            raise ModelLoadError(f"{file}: cannot read ({err.strerror or err})") from None
    missing = sorted(set(expected) - set(state) - tied)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ModelLoadError(f"missing parameter(s) in the checkpoint: {shown}")
    net.load_state_dict(state, strict=False, assign=True)
    if tied:
        net.lm_head.weight = net.model.embed_tokens.weight


def special_ids(config: dict, generation_config: dict, tokenizer) -> SpecialIds:
    def first(*values):
        for v in values:
            if v is not None:
                return v
        return None

    mask = first(config.get("mask_token_id"), generation_config.get("mask_token_id"))
    if mask is None and tokenizer is not None:
        mask = tokenizer.mask_id
    if mask is None:
        raise ModelLoadError("config.json: no mask_token_id, and the tokenizer has no mask token")
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
    return SpecialIds(mask=int(mask), eos=eos, pad=int(pad), bos=first(config.get("bos_token_id")))


def load_checkpoint(ref: str | os.PathLike, dtype: str = "auto", device: str = "auto") -> Checkpoint:
    """Load a checkpoint. ref: embedded name, local folder, or hub id / alias already pulled."""
    folder = resolve(ref)
    config = read_json(folder / "config.json", "config.json")
    try:
        arch = architecture_for(config.get("model_type"))
        args = arch.make_args(config)
    except (ValueError, TypeError, KeyError) as err:
        raise ModelLoadError(f"{folder / 'config.json'}: {err}") from None
    files = weight_files(folder)
    dev = pick_device(device)
    with torch.device("meta"):
        net = arch.make_model(args)
    n_params = sum(p.numel() for p in net.parameters())
    load_weights(net, files, pick_dtype(dtype, config, dev, n_params), dev)
    net.eval().requires_grad_(False)
    gen_path = folder / "generation_config.json"
    generation_config = read_json(gen_path, "generation_config.json") if gen_path.is_file() else {}
    tokenizer = None
    if (folder / "tokenizer.json").is_file():
        from .tokenizer import Tokenizer

        tokenizer = Tokenizer.from_folder(folder)
    ids = special_ids(config, generation_config, tokenizer)
    name = str(ref)
    return Checkpoint(net, config, arch.family, ids, tokenizer, name, folder, generation_config)
