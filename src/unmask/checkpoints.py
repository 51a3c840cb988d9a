"""What a checkpoint folder holds, read from its files: for `unmask list` and `show`, and the server's model list.

Notable features:
- No weight is read: parameter counts and dtypes come from the safetensors headers (a JSON block
  at the start of each file), parsed here rather than through `safe_open`, so the count does not
  depend on the safetensors version.
- Importing this module imports no torch (the CLI imports it for `--help`); the loader and the
  model registry are imported inside the functions that need them.
- One alias table (`formats.ALIASES`), shared by the loader, `pull`, `rm` and `show`.
- Hub models are read from the cache as huggingface_hub lays it out, at the revision `main`
  points at (what the loader resolves), so a half-finished pull does not hide a complete one.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .formats import ALIASES, PICKLE_SUFFIXES  # noqa: F401  (re-exported for the CLI)

# The safetensors format caps its JSON header at 100 MB; anything larger is not a safetensors file.
MAX_HEADER_BYTES = 100_000_000
SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "BF16": "bfloat16", "F16": "float16"}
# Context length a checkpoint gets when its config names none (as `Model.context_length`).
DEFAULT_CONTEXT = 4096


@dataclass
class FolderInfo:
    """What a checkpoint folder on disk holds, read from its files without loading it."""

    name: str
    source: str  # "embedded" | "hub" | "folder"
    folder: Path
    size: int  # bytes on disk (hub models: every cached revision, what `unmask rm` frees)
    has_config: bool  # config.json exists and is a JSON object
    model_type: Optional[str]  # config.json's, as spelled there
    family: Optional[str]  # "dream" | "llada" for a supported architecture
    supported: bool
    reason: Optional[str]  # why unmask cannot run it; None when supported
    parameters: Optional[int]  # None: no readable safetensors weights
    dtype: Optional[str]  # the dtype most parameters are stored in
    context_length: Optional[int]
    tokenizer: bool  # tokenizer.json is there
    chat_template: bool
    defaults: dict  # generation_config.json's "unmask" section: the decoding settings it ships

    @property
    def complete(self) -> bool:
        """Has readable weights (a pull that stopped early has none)."""
        return self.parameters is not None


def safetensors_header(path: Path) -> dict:
    """name -> {"dtype", "shape", "data_offsets"}: the JSON header of a safetensors file."""
    with path.open("rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path.name}: too short to be a safetensors file")
        (length,) = struct.unpack("<Q", prefix)  # little-endian u64, per the format spec
        if length > MAX_HEADER_BYTES:
            raise ValueError(f"{path.name}: header of {length} bytes; not a safetensors file")
        header = json.loads(f.read(length))
    header.pop("__metadata__", None)
    return header


def weight_stats(folder: Path) -> tuple[Optional[int], Optional[str]]:
    """(parameter count, dominant dtype) from the headers of the folder's weight files, or Nones."""
    from .loading import ModelLoadError, weight_files

    counts: Counter[str] = Counter()
    try:
        for file in weight_files(folder):
            for entry in safetensors_header(file).values():
                counts[entry["dtype"]] += math.prod(entry["shape"])
    except (ModelLoadError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, None
    if not counts:
        return None, None
    dtype = counts.most_common(1)[0][0]
    return sum(counts.values()), SAFETENSORS_DTYPES.get(dtype, dtype.lower())


def count_parameters(folder: Path) -> Optional[int]:
    """The number of parameters in the folder's safetensors files, None if there are none readable."""
    return weight_stats(folder)[0]


def read_json_object(path: Path) -> Optional[dict]:
    """The JSON object in a file; None when the file is missing, unreadable or holds something else."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_json_or_empty(path: Path) -> dict:
    data = read_json_object(path)
    return {} if data is None else data


def folder_size(folder: Path) -> int:
    """Bytes of the folder's top-level files (a hub snapshot's links count as their blobs)."""
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def has_chat_template(folder: Path) -> bool:
    """A template in tokenizer_config.json or chat_template.jinja, where `Tokenizer.from_folder` looks."""
    if (folder / "chat_template.jinja").is_file():
        return True
    template = read_json_or_empty(folder / "tokenizer_config.json").get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": "default", "template": ...}, ...]
        return any(isinstance(t, dict) and t.get("template") for t in template)
    return bool(template)


def context_length(config: dict) -> Optional[int]:
    """The context length as `Model.context_length` computes it (from config.json's own fields for an
    architecture unmask cannot run)."""
    from .models import architecture_for

    try:
        args = architecture_for(config.get("model_type")).make_args(config)
    except (ValueError, TypeError, KeyError):
        return config.get("max_position_embeddings") or config.get("max_sequence_length")
    return (
        getattr(args, "max_position_embeddings", None) or getattr(args, "max_sequence_length", None) or DEFAULT_CONTEXT
    )


def source_of(folder: Path) -> str:
    """Where a checkpoint folder lives: "embedded" (in unmask), "hub" (the Hugging Face cache) or "folder"."""
    from huggingface_hub import constants

    from . import loading

    folder = folder.resolve()
    if folder.parent == loading.WEIGHTS_DIR.resolve():
        return "embedded"
    if Path(constants.HF_HUB_CACHE).resolve() in folder.parents:
        return "hub"
    return "folder"


def describe(
    folder: Path, name: Optional[str] = None, source: Optional[str] = None, size: Optional[int] = None
) -> FolderInfo:
    """What a checkpoint folder is, from its config, tokenizer files and weight headers; never raises for
    a bad file (a missing or broken config makes an unsupported checkpoint, with the reason)."""
    from .models import architecture_for, supported_types

    folder = Path(folder)
    config = read_json_object(folder / "config.json")
    has_config = config is not None
    config = config or {}
    model_type = config.get("model_type")
    try:
        family, reason = architecture_for(model_type).family, None
    except ValueError:
        family = None
        if not has_config:
            reason = "config.json is missing or is not a JSON object"
        elif model_type is None:
            reason = "config.json names no model_type"
        else:
            reason = f"unmask cannot run {model_type!r} models (supported: {', '.join(supported_types())})"
    parameters, dtype = weight_stats(folder)
    generation = read_json_or_empty(folder / "generation_config.json")
    defaults = generation.get("unmask")
    return FolderInfo(
        name=str(folder) if name is None else name,
        source=source_of(folder) if source is None else source,
        folder=folder,
        size=folder_size(folder) if size is None else size,
        has_config=has_config,
        model_type=model_type,
        family=family,
        supported=family is not None,
        reason=reason,
        parameters=parameters,
        dtype=dtype,
        context_length=context_length(config) if has_config else None,
        tokenizer=(folder / "tokenizer.json").is_file(),
        chat_template=has_chat_template(folder),
        defaults=defaults if isinstance(defaults, dict) else {},
    )


def special_tokens(folder: Path) -> tuple[Optional[int], list[int]]:
    """(mask id, end-of-sequence ids) as the loader finds them; (None, []) when it would find no mask."""
    from . import loading

    tokenizer = None
    if (folder / "tokenizer.json").is_file():
        from .tokenizer import Tokenizer

        try:
            tokenizer = Tokenizer.from_folder(folder)
        except Exception:  # a broken tokenizer is worth a report, not a failure: the ids come from the config
            tokenizer = None
    config = read_json_or_empty(folder / "config.json")
    generation = read_json_or_empty(folder / "generation_config.json")
    try:
        ids = loading.special_ids(config, generation, tokenizer)
    except (loading.ModelLoadError, ValueError, TypeError):
        return None, []
    return ids.mask, ids.eos


def read_config(folder: Path) -> dict:
    """config.json as a dict; raises `ModelLoadError` saying what is wrong with it."""
    from . import loading

    return loading.read_json(folder / "config.json", "config.json")


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files the loader would read; raises `ModelLoadError` when there are none."""
    from . import loading

    return loading.weight_files(folder)


def cached_snapshot(repo_id: str) -> Path | None:
    """The complete snapshot of a hub repo in the local cache, without network; None if absent."""
    from . import loading

    return loading.cached_snapshot(repo_id)


def supported_types() -> list[str]:
    from .models import supported_types

    return supported_types()


def embedded_names() -> list[str]:
    """The names of the models shipped in the package."""
    from . import loading

    return loading.embedded_models()


def folder_of(ref: str) -> Path:
    """The checkpoint folder a reference names (embedded, folder, cached hub id); raises
    `ModelLoadError` saying why when there is none."""
    from . import loading

    return loading.resolve(ref)


def embedded_checkpoints() -> list[FolderInfo]:
    """The models shipped inside the unmask package."""
    from . import loading

    return [describe(loading.WEIGHTS_DIR / n, n, "embedded") for n in loading.embedded_models()]


def scan_cache():
    """huggingface_hub's view of the cache (`HFCacheInfo`), or None when the cache folder does not exist yet."""
    from huggingface_hub import constants, scan_cache_dir
    from huggingface_hub.utils import CacheNotFound

    try:
        # Pass the folder explicitly: scan_cache_dir's own default is fixed when it is imported.
        return scan_cache_dir(constants.HF_HUB_CACHE)
    except CacheNotFound:
        return None


def current_revision(repo):
    """The revision `main` points at, else the newest one."""
    revisions = sorted(repo.revisions, key=lambda r: r.last_modified)
    on_main = [r for r in revisions if "main" in r.refs]
    return (on_main or revisions)[-1]


def hub_snapshots() -> list[tuple[str, Path, int]]:
    """(repo id, snapshot folder, bytes of every revision) of the cached model repos that have a
    config.json, by repo id; datasets, spaces and repos without a config are skipped."""
    cache = scan_cache()
    out = []
    for repo in sorted(cache.repos if cache else (), key=lambda r: r.repo_id.lower()):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        snapshot = Path(current_revision(repo).snapshot_path)
        if (snapshot / "config.json").is_file():
            out.append((repo.repo_id, snapshot, repo.size_on_disk))
    return out


def cached_checkpoints() -> list[FolderInfo]:
    """The hub models in the cache, supported or not."""
    return [describe(snapshot, repo_id, "hub", size) for repo_id, snapshot, size in hub_snapshots()]


def served_hub_models() -> list[str]:
    """Repo ids of the cached hub models whose config names an architecture unmask runs (reads configs only)."""
    from .models import REGISTRY

    try:
        snapshots = hub_snapshots()
    except Exception:  # an unreadable cache leaves nothing to serve from it, and must not stop the server
        return []
    return [
        repo_id
        for repo_id, snapshot, _ in snapshots
        if str(read_json_or_empty(snapshot / "config.json").get("model_type")).lower() in REGISTRY
    ]
