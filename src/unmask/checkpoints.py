"""What a checkpoint folder holds, read from its files: for `unmask list` and `show`, and the server's model list.

Notable features:
- No weight is read: parameter counts and dtypes come from the safetensors headers (a JSON block
  at the start of each file), parsed here rather than through `safe_open`, so the count does not
  depend on the safetensors version.
- Importing this module imports no torch (the CLI imports it for `--help`); the loader and the
  model registry are imported inside the functions that need them.
- One alias table (`formats.ALIASES`), shared by the loader, `pull`, `rm` and `show`.
- Whether unmask can run a config is one function, `config_problem`: the architecture's own check
  of every value, so `list` marks a folder unsupported (with why) that the loader would refuse,
  and `pull` refuses it from config.json alone, before a weight is requested.
- Hub models are read from the cache as huggingface_hub lays it out, at the revision `main`
  points at (what the loader resolves), so a half-finished pull does not hide a complete one.
- Named models (`unmask create`) are described as their base checkpoint with their own name,
  folder, parameters and system prompt; models `unmask train` wrote under `./runs/*/model` are
  listed as "trained", named by their path from the current directory.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

from .formats import ALIASES, PICKLE_SUFFIXES  # noqa: F401  (re-exported for the CLI)

# The safetensors format caps its JSON header at 100 MB; anything larger is not a safetensors file.
MAX_HEADER_BYTES = 100_000_000
SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "BF16": "bfloat16", "F16": "float16"}
# Context length a checkpoint gets when its config names none (as `Model.context_length`).
DEFAULT_CONTEXT = 4096
# Where `unmask train` puts the model of each run by default (runs/<recipe>/model).
TRAINED_GLOB = "runs/*/model"


@dataclass
class FolderInfo:
    """What a checkpoint folder on disk holds, read from its files without loading it."""

    name: str
    source: str  # "embedded" | "hub" | "folder" | "named" | "trained"
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
    tokenizer: bool  # tokenizer.json, or vocab.json + merges.txt, is there
    chat_template: bool
    defaults: dict  # generation_config.json's "unmask" section: the decoding settings it ships
    # Named models only: their own folder, the FROM they were made from, their PARAMETERs (already
    # merged into `defaults`), SYSTEM and TEMPLATE; `folder` is the base checkpoint's.
    home: Optional[Path] = None
    base: Optional[str] = None
    options: dict = field(default_factory=dict)
    system: Optional[str] = None
    template: Optional[str] = None
    config: dict = field(default_factory=dict)  # config.json (the resolver reads a block family's block size)

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
        args = architecture_for(config).make_args(config)
    except (ValueError, TypeError, KeyError):
        return config.get("max_position_embeddings") or config.get("max_sequence_length")
    return (
        getattr(args, "max_position_embeddings", None) or getattr(args, "max_sequence_length", None) or DEFAULT_CONTEXT
    )


def config_problem(config: dict) -> Optional[str]:
    """Why unmask cannot run a config.json, None when it can: no or an unknown model_type, a value
    the architecture does not run (its `Args.from_config` names the key: another RoPE scaling or
    activation, another LLaDA block type) or a quantization the loader does not read. Reads the dict
    only, so `pull` asks it before a weight is requested and `list` for every folder."""
    from . import loading
    from .models import architecture_for

    model_type = config.get("model_type")
    if model_type is None:
        return "config.json names no model_type"
    try:
        arch = architecture_for(config)
    except ValueError:
        return f"unmask cannot run {model_type!r} models (supported: {', '.join(supported_types())})"
    try:
        arch.make_args(config)
        loading.pick_quantization(None, config, Path())
    except (loading.ModelLoadError, ValueError, TypeError, KeyError, AttributeError) as err:
        # AttributeError: a value of the wrong kind (a string where the architecture reads a dict).
        why = str(err).removeprefix("config.json: ") or type(err).__name__
        return f"unmask cannot run this {model_type} config ({why})"
    return None


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
    from .models import architecture_for

    folder = Path(folder)
    config = read_json_object(folder / "config.json")
    has_config = config is not None
    config = config or {}
    model_type = config.get("model_type")
    reason = config_problem(config) if has_config else "config.json is missing or is not a JSON object"
    family = architecture_for(config).family if reason is None else None
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
        supported=reason is None,
        reason=reason,
        parameters=parameters,
        dtype=dtype,
        context_length=context_length(config) if has_config else None,
        tokenizer=has_tokenizer_files(folder),
        chat_template=has_chat_template(folder),
        defaults=defaults if isinstance(defaults, dict) else {},
        config=config,
    )


def has_tokenizer_files(folder: Path) -> bool:
    """tokenizer.json, or the slow vocab.json + merges.txt (as `Tokenizer.has_files`, without
    importing tokenizers)."""
    return (folder / "tokenizer.json").is_file() or all((folder / n).is_file() for n in ("vocab.json", "merges.txt"))


def special_tokens(folder: Path) -> tuple[Optional[int], list[int]]:
    """(mask id, end-of-sequence ids) as the loader finds them; (None, []) when it would find no mask."""
    from . import loading

    tokenizer = None
    if has_tokenizer_files(folder):
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


def named_models_dir() -> Path:
    """Where named models live ($UNMASK_HOME/models, ~/.unmask/models by default)."""
    from . import loading

    return loading.named_models_dir()


def valid_name(name: str) -> bool:
    """Whether `name` is spelled as a named model may be (lowercase letters, digits, - _ . :)."""
    from . import loading

    return bool(loading.NAME_PATTERN.fullmatch(name))


def named_model(name: str) -> Optional[dict]:
    """A named model's model.json, None when there is no such named model; raises
    `ModelLoadError` for a broken model.json."""
    from . import loading

    return loading.named_model(name)


def named_home(name: str) -> Optional[Path]:
    """The folder of the named model `name` when there is one (readable or not)."""
    if not valid_name(name) or name in embedded_names():
        return None
    home = named_models_dir() / name
    return home if home.is_dir() else None


def named_names() -> list[str]:
    """The names of the named models, sorted (the folders that hold a model.json)."""
    from . import loading

    root = named_models_dir()
    if not root.is_dir():
        return []
    embedded = set(embedded_names())
    return sorted(
        p.name
        for p in root.iterdir()
        if valid_name(p.name) and p.name not in embedded and (p / loading.NAMED_MODEL_FILE).is_file()
    )


def named_checkpoint(name: str) -> Optional[FolderInfo]:
    """A named model described as its base checkpoint with its own name, folder and settings;
    None when `name` is not a named model. A model whose base is gone is unsupported, saying so."""
    from . import loading

    home = named_home(name)
    if home is None or not (home / loading.NAMED_MODEL_FILE).is_file():
        return None
    size = folder_size(home)
    try:
        spec = loading.named_model(name) or {}
        folder = loading.resolve(name)
    except loading.ModelLoadError as err:
        return replace(describe(home, name, "named", size), home=home, reason=str(err))
    info = describe(folder, name, "named", size)
    options = spec.get("parameters") or {}
    template = spec.get("template") or None
    return replace(
        info,
        home=home,
        base=spec.get("from") or spec.get("base"),
        options=options,
        system=spec.get("system") or None,
        template=template,
        defaults=info.defaults | options,
        chat_template=info.chat_template or bool(template and info.tokenizer),
    )


def named_checkpoints() -> list[FolderInfo]:
    """The named models (`unmask create`), by name."""
    return [info for info in map(named_checkpoint, named_names()) if info is not None]


def trained_checkpoints(root: Path = Path(".")) -> list[FolderInfo]:
    """The models `unmask train` wrote under root/runs/*/model, named by their path from root (what
    `unmask run` takes when run from root)."""
    return [
        describe(folder.resolve(), folder.relative_to(root).as_posix(), "trained")
        for folder in sorted(root.glob(TRAINED_GLOB))
        if (folder / "config.json").is_file()
    ]


def describe_model(ref: str, name: Optional[str] = None) -> FolderInfo:
    """What a reference names, described without loading it: a named model with its settings
    applied, else the folder it resolves to; raises `ModelLoadError` when there is none."""
    named = named_checkpoint(ref)
    if named is not None:
        return named if name is None else replace(named, name=name)
    return describe(folder_of(ref), name)


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


def quantize_folder(ref: str, dst: Path, mode: str, group_size: Optional[int] = None) -> Path:
    """Write a quantized copy of a checkpoint into the new folder `dst` (`unmask quantize`); raises
    `ModelLoadError` saying why not."""
    from . import loading

    return loading.save_quantized(ref, dst, mode, group_size)


def memory_needs(folder: Path, canvas: Optional[int] = None) -> dict:
    """What a checkpoint folder needs in memory to run one canvas (default: the loader's fit-check
    canvas), by way of loading it: "float32", "bfloat16", "int8" and "int4" (the last two computing
    in bfloat16), or only its own mode for a folder `unmask quantize` wrote. Values are
    `loading.MemoryNeed` (weights, cache, activations, runtime; `.total`), computed as the fit check
    computes them, from config.json and the safetensors headers: no weight is read. {} when the
    folder has no readable config or weights."""
    from . import loading

    config = read_json_object(Path(folder) / "config.json")
    if config is None:
        return {}
    headers: dict = {}
    try:
        for file in loading.weight_files(Path(folder)):
            headers.update(safetensors_header(file))
    except (loading.ModelLoadError, OSError, ValueError):
        return {}
    n_params = 0
    for name, entry in headers.items():
        module, _, key = name.rpartition(".")
        if key in ("scales", "zeros") and f"{module}.weight" in headers:
            continue  # a quantized weight's scales are not parameters
        count = math.prod(entry.get("shape", []))
        n_params += 2 * count if entry.get("dtype") == "U8" and f"{module}.zeros" in headers else count  # int4 pairs
    return memory_by_mode(config, n_params, canvas)


def memory_by_mode(config: dict, n_params: int, canvas: Optional[int] = None) -> dict:
    """`memory_needs` from a config and a parameter count: "float32", "bfloat16", "int8", "int4"
    (`loading.MemoryNeed`s), or only the mode of a config `unmask quantize` wrote; {} when the
    config lacks the sizes."""
    from . import loading

    canvas = canvas or loading.FIT_CANVAS
    section = config.get("quantization_config")
    try:
        if isinstance(section, dict):
            mode = f"int{section.get('bits')}"
            return {mode: loading.memory_needed(config, n_params, "bfloat16", mode, canvas, section.get("group_size"))}
        needs = {
            dtype: loading.memory_needed(config, n_params, dtype, None, canvas) for dtype in ("float32", "bfloat16")
        }
        return needs | {m: loading.memory_needed(config, n_params, "bfloat16", m, canvas) for m in ("int8", "int4")}
    except (loading.ModelLoadError, ValueError, TypeError):
        return {}


def config_parameters(config: dict) -> int:
    """The parameter count of the network a config.json describes, counted as the loader's fit check
    counts it: the model built on torch's meta device (no memory, no file; about a second for 7B).
    Raises ValueError, TypeError, KeyError or AttributeError for a config unmask cannot run
    (`config_problem` says which value)."""
    import torch

    from .models import architecture_for

    arch = architecture_for(config)
    args = arch.make_args(config)
    with torch.device("meta"):
        net = arch.make_model(args)
    return sum(p.numel() for p in net.parameters())


def config_memory_needs(config: dict, canvas: Optional[int] = None) -> dict:
    """`memory_needs` for a checkpoint that is not on disk yet (`unmask pull` says it before
    downloading): from its config.json alone; {} when unmask cannot run the config."""
    try:
        n_params = config_parameters(config)
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError):  # RuntimeError: torch refused a size
        return {}
    return memory_by_mode(config, n_params, canvas)


def fit_problem(config: dict, quantize: Optional[str] = None) -> Optional[str]:
    """Why this machine cannot run the checkpoint a config.json describes, as the loader's fit check
    would refuse it (on the device and in the dtype a load picks, in `quantize` or the checkpoint's
    own mode), naming the quantization that would fit; None when it fits or cannot be sized. What
    `unmask pull` asks before a weight is requested."""
    from . import loading

    try:
        n_params = config_parameters(config)  # every expert of a MoE: all of them are in memory
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError):
        return None
    try:
        device = loading.pick_device("auto")
        quantization = loading.pick_quantization(quantize, config, Path("."))
        dtype = loading.pick_dtype("auto", config, device, n_params)
        mode = quantization.mode if quantization else None
        loading.check_fits(config, n_params, dtype, mode, loading.FIT_CANVAS, loading.free_memory(device))
    except loading.ModelLoadError as err:
        return str(err)
    return None
