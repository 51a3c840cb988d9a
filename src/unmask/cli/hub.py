"""`unmask pull`, `list`, `show` and `rm`: the models on this machine, embedded or from the hub.

Notable features:
- `pull` reads config.json before anything else and refuses an architecture unmask cannot run
  before a single weight byte is requested; the check uses a throwaway cache, so a refused pull
  leaves the user's cache untouched.
- It fetches only what the loader reads (config, generation config, tokenizer, chat template,
  safetensors and their index; never pickles or code), through huggingface_hub and into the
  standard cache, so HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, HF_TOKEN and HF_ENDPOINT mean what
  they mean for every other tool.
- One progress bar per file, driven by huggingface_hub through a tqdm-shaped adapter. The bar shows
  the most bytes seen so far, so it never moves backwards, even when the library restarts a file.
- Resuming: a dropped connection is picked up by the library with a byte `Range` request; after
  Ctrl-C the finished files stay in the cache and the next pull fetches only the rest (the
  unfinished file starts over: huggingface_hub >= 2 deletes partial files, see
  https://github.com/huggingface/huggingface_hub/pull/4228).
- The ref (`main`) is recorded only once every file is in, so a half-finished pull never replaces
  a complete snapshot that `unmask run` was using.
- Parameter counts and dtypes come from safetensors headers (a JSON block at the start of each
  file); no tensor is read.
"""

from __future__ import annotations

import json
import logging
import math
import struct
import tempfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import typer

from . import app
from .common import CliError, err_console, fail, guard, offline

# Top-level files the loader and tokenizer read besides the weights (loading.py, tokenizer.py).
METADATA_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json")
SHARD_INDEX = "model.safetensors.index.json"
# The safetensors format caps its JSON header at 100 MB; anything larger is not a safetensors file.
MAX_HEADER_BYTES = 100_000_000
SAFETENSORS_DTYPES = {"F64": "float64", "F32": "float32", "BF16": "bfloat16", "F16": "float16"}
# Context length a checkpoint gets when its config names none (as `Model.context_length`).
DEFAULT_CONTEXT = 4096
INTERRUPTED_EXIT = 130  # the shell's code for "stopped by Ctrl-C"
# loading.ALIASES, spelled out so `unmask pull --help` need not import torch (a test keeps them equal).
ALIAS_NAMES = ("dream", "dream-base", "dream-coder", "diffucoder", "llada", "llada-base", "llada-1.5")


# ---------------------------------------------------------------------------------------------
# Describing a checkpoint folder (list, show)


@dataclass
class Checkpoint:
    name: str
    source: str  # "embedded" | "hub" | "folder"
    path: str
    architecture: Optional[str]  # config.json's model_type
    supported: bool
    complete: bool  # has readable weights
    parameters: Optional[int]
    dtype: Optional[str]
    size: int  # bytes on disk (for hub models: every cached revision, what `rm` frees)


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
    from ..loading import ModelLoadError, weight_files

    counts: Counter[str] = Counter()
    try:
        for file in weight_files(folder):
            for entry in safetensors_header(file).values():
                counts[entry["dtype"]] += math.prod(entry["shape"])
    except (ModelLoadError, OSError, ValueError, KeyError, TypeError):
        return None, None
    if not counts:
        return None, None
    dtype = counts.most_common(1)[0][0]
    return sum(counts.values()), SAFETENSORS_DTYPES.get(dtype, dtype.lower())


def read_json_or_empty(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def describe(name: str, source: str, folder: Path, size: int) -> Checkpoint:
    from ..models import REGISTRY

    model_type = read_json_or_empty(folder / "config.json").get("model_type")
    parameters, dtype = weight_stats(folder)
    return Checkpoint(
        name=name,
        source=source,
        path=str(folder),
        architecture=model_type,
        supported=str(model_type).lower() in REGISTRY,
        complete=parameters is not None,
        parameters=parameters,
        dtype=dtype,
        size=size,
    )


def embedded_checkpoints() -> list[Checkpoint]:
    from .. import loading

    return [
        describe(n, "embedded", loading.WEIGHTS_DIR / n, folder_size(loading.WEIGHTS_DIR / n))
        for n in loading.embedded_models()
    ]


def scan_cache():
    """huggingface_hub's view of the cache, or None when the cache folder does not exist yet."""
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


def cached_checkpoints() -> list[Checkpoint]:
    """Hub models in the cache that have a config.json (datasets, spaces and others are skipped)."""
    cache = scan_cache()
    out = []
    for repo in sorted(cache.repos if cache else (), key=lambda r: r.repo_id.lower()):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        snapshot = current_revision(repo).snapshot_path
        if (snapshot / "config.json").is_file():
            out.append(describe(repo.repo_id, "hub", snapshot, repo.size_on_disk))
    return out


def human_size(n: Optional[int]) -> str:
    """Decimal units, as ollama and the hub show them."""
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def human_count(n: Optional[int]) -> str:
    if n is None:
        return "-"
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def architecture_label(c: Checkpoint) -> str:
    label = c.architecture or "?"
    return label if c.supported else f"{label} (unsupported)"


# ---------------------------------------------------------------------------------------------
# unmask list


def print_table(rows: list[Checkpoint]) -> None:
    from rich.console import Console

    console = Console()
    header = ("NAME", "ARCH", "PARAMS", "SIZE", "LOCATION")
    cells = [
        (
            c.name if c.complete else f"{c.name} (incomplete)",
            architecture_label(c),
            human_count(c.parameters),
            human_size(c.size),
            c.path,
        )
        for c in rows
    ]
    if console.is_terminal:
        from rich.table import Table

        table = Table(box=None, header_style="bold", pad_edge=False)
        for title in header:
            table.add_column(
                title, no_wrap=title != "LOCATION", justify="right" if title in ("PARAMS", "SIZE") else "left"
            )
        for row in cells:
            table.add_row(*row)
        console.print(table)
        return
    widths = [max(len(r[i]) for r in [header, *cells]) for i in range(len(header))]
    for row in [header, *cells]:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


@app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json", help="Print a JSON array instead of a table.")) -> None:
    """List embedded models and the models in the Hugging Face cache."""

    def go() -> None:
        rows = embedded_checkpoints() + cached_checkpoints()
        if as_json:
            typer.echo(json.dumps([asdict(c) for c in rows], indent=2))
        elif rows:
            print_table(rows)
        else:
            err_console.print("no models yet; download one with `unmask pull dream` (or any hub id)", highlight=False)

    guard(go)


app.command("ls", hidden=True)(list_models)


# ---------------------------------------------------------------------------------------------
# unmask show


def source_of(folder: Path) -> str:
    from huggingface_hub import constants

    from .. import loading

    folder = folder.resolve()
    if folder.parent == loading.WEIGHTS_DIR.resolve():
        return "embedded"
    if Path(constants.HF_HUB_CACHE).resolve() in folder.parents:
        return "hub"
    return "folder"


def model_details(ref: str, folder: Path) -> dict:
    """Everything `show` prints, read from the folder's files (no weights are loaded)."""
    from .. import loading
    from ..models import architecture_for

    config = loading.read_json(folder / "config.json", "config.json")
    generation = read_json_or_empty(folder / "generation_config.json")
    source = source_of(folder)
    name = loading.ALIASES.get(ref, ref) if source == "hub" else ref
    checkpoint = describe(name, source, folder, folder_size(folder))
    try:  # the context length as `Model.context_length` computes it, for what unmask can run
        args = architecture_for(config.get("model_type")).make_args(config)
        context = (
            getattr(args, "max_position_embeddings", None)
            or getattr(args, "max_sequence_length", None)
            or DEFAULT_CONTEXT
        )
    except (ValueError, TypeError, KeyError):
        context = config.get("max_position_embeddings")

    tokenizer = None
    if (folder / "tokenizer.json").is_file():
        from ..tokenizer import Tokenizer

        try:
            tokenizer = Tokenizer.from_folder(folder)
        except Exception:  # a broken tokenizer is worth reporting, not a reason to fail `show`
            tokenizer = None
    try:
        ids = loading.special_ids(config, generation, tokenizer)
        mask, eos = ids.mask, ids.eos
    except loading.ModelLoadError:
        mask, eos = None, []
    template = (
        tokenizer.chat_template
        if tokenizer is not None
        else read_json_or_empty(folder / "tokenizer_config.json").get("chat_template")
    )
    template = template or (folder / "chat_template.jinja").is_file()
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
    return asdict(checkpoint) | {
        "context_length": context,
        "mask_token_id": mask,
        "eos_token_ids": eos,
        "tokenizer": tokenizer is not None,
        "chat_template": bool(template),
        "defaults": generation.get("unmask") or {},
        "files": files,
    }


def print_details(d: dict) -> None:
    defaults = "  ".join(f"{k}={v}" for k, v in d["defaults"].items() if v is not None)
    params = "-" if d["parameters"] is None else f"{human_count(d['parameters'])} ({d['parameters']:,})"
    lines = [
        ("name", d["name"]),
        ("source", {"hub": "hub cache", "embedded": "embedded in unmask", "folder": "local folder"}[d["source"]]),
        (
            "architecture",
            (d["architecture"] or "?") if d["supported"] else f"{d['architecture']} (not supported by unmask)",
        ),
        ("parameters", params if d["complete"] else "- (no weights found: incomplete download?)"),
        ("dtype", d["dtype"] or "-"),
        ("context length", str(d["context_length"] or "-")),
        ("mask id", "-" if d["mask_token_id"] is None else str(d["mask_token_id"])),
        ("eos ids", ", ".join(map(str, d["eos_token_ids"])) or "-"),
        ("tokenizer", "yes" if d["tokenizer"] else "no"),
        ("chat template", "yes" if d["chat_template"] else "no"),
        ("decoding", defaults or "none shipped (unmask's defaults apply)"),
        ("location", d["path"]),
        ("size", human_size(d["size"])),
    ]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        typer.echo(f"{key:<{width}}  {value}")
    typer.echo("files")
    names = max((len(n) for n in d["files"]), default=0)
    for name, size in d["files"].items():
        typer.echo(f"  {name:<{names}}  {human_size(size):>8}")


@app.command()
def show(
    model: str = typer.Argument(..., help="Embedded name, checkpoint folder, alias or hub id (already pulled)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show a model's architecture, size, special tokens, chat template and default decoding settings."""

    def go() -> None:
        from ..loading import resolve

        details = model_details(model, resolve(model))
        if as_json:
            typer.echo(json.dumps(details, indent=2))
        else:
            print_details(details)

    guard(go)


# ---------------------------------------------------------------------------------------------
# unmask rm


def hub_repo_id(model: str, verb: str) -> str:
    """The hub id a pull/rm argument names; embedded names and local folders are refused."""
    from ..loading import ALIASES, embedded_models

    if model in embedded_models():
        what = "needs no download" if verb == "pull" else "cannot be removed"
        raise CliError(f"{model} is embedded in unmask and {what}")
    if Path(model).expanduser().is_dir():
        if verb == "pull":
            raise CliError(f"{model} is a local folder; unmask loads it directly, without pulling")
        raise CliError(
            f"{model} is a local folder, not a downloaded model; unmask rm only removes models from the hub cache"
        )
    repo_id = ALIASES.get(model, model)
    if repo_id.count("/") != 1:
        raise CliError(f"unknown model {model!r}: give a hub id such as org/name, or an alias ({', '.join(ALIASES)})")
    return repo_id


@app.command()
def rm(
    model: str = typer.Argument(..., help="Alias or hub id of a pulled model."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Remove a pulled model (every cached revision) from the Hugging Face cache."""

    def go() -> None:
        from huggingface_hub import constants

        repo_id = hub_repo_id(model, "rm")
        cache = scan_cache()
        repo = (
            next((r for r in cache.repos if r.repo_type == "model" and r.repo_id == repo_id), None) if cache else None
        )
        if repo is None:
            raise CliError(f"{repo_id} is not in the hub cache ({constants.HF_HUB_CACHE}); `unmask list` shows what is")
        size = human_size(repo.size_on_disk)
        question = f"remove {repo_id} ({size}, {len(repo.revisions)} revision(s)) from {repo.repo_path}?"
        if not yes:
            try:
                confirmed = typer.confirm(question, default=False, err=True)
            except typer.Abort:  # no answer (end of input)
                err_console.print()
                confirmed = False
            if not confirmed:
                raise CliError(f"kept {repo_id}; nothing was removed")
        cache.delete_revisions(*(r.commit_hash for r in repo.revisions)).execute()
        typer.echo(f"removed {repo_id} ({human_size(repo.size_on_disk)} freed)")

    guard(go)


# ---------------------------------------------------------------------------------------------
# unmask pull: progress


class PullView:
    """Download bars, one per file: rich on a terminal, a line per tenth of a file otherwise.

    huggingface_hub reports progress to a tqdm-shaped object it builds from `bar_class()`; files
    are fetched one at a time, so the view knows which file the bar belongs to.
    """

    def __init__(self, console, names: list[str], enabled: bool = True):
        self.console = console
        self.enabled = enabled
        self.live = enabled and console.is_terminal
        self.width = max((len(n) for n in names), default=0)
        self.progress = None
        self.start_file("", None)

    def __enter__(self) -> PullView:
        if self.live:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()

    def start_file(self, name: str, size: Optional[int]) -> None:
        self.name, self.size, self.shown, self.task, self.tenth, self.fetched = name, size, 0, None, 0, False

    def show_bytes(self, done: int, total: Optional[int]) -> None:
        """Draw `done` bytes of the current file, unless a higher count is already on screen."""
        self.fetched = True
        total = self.size or total
        if done < self.shown:
            return  # the library took bytes back (a server ignored a Range): hold the bar
        self.shown = done
        if self.progress is not None:
            if self.task is None:
                self.task = self.progress.add_task(self.name.ljust(self.width), total=total, completed=done)
            else:
                self.progress.update(self.task, completed=done)
        elif self.enabled and total:
            tenth = min(10, done * 10 // total)
            if tenth > self.tenth:
                self.tenth = tenth
                self.note(f"{self.name.ljust(self.width)}  {tenth * 10:3d}%  {human_size(done)}/{human_size(total)}")

    def finish_file(self) -> None:
        """Complete the current file's bar (a file already in the cache gets a full one)."""
        size = self.size or 0
        if self.progress is not None:
            if self.task is None:
                self.progress.add_task(f"{self.name.ljust(self.width)}", total=max(size, 1), completed=max(size, 1))
            else:
                self.progress.update(self.task, completed=max(self.shown, size))
        elif self.enabled and not self.fetched:
            self.note(f"{self.name.ljust(self.width)}  cached")
        elif self.enabled and self.tenth < 10:
            self.note(f"{self.name.ljust(self.width)}  100%  {human_size(size)}")

    def note(self, text: str) -> None:
        from rich.markup import escape

        self.console.print(escape(text), highlight=False, soft_wrap=True)

    def bar_class(self) -> type:
        view = self

        class FileBar:
            """The subset of tqdm that huggingface_hub drives (http_get, xet_get)."""

            def __init__(self, *args, total=None, initial=0, **kwargs):
                self.total, self.n = total, initial or 0
                view.show_bytes(self.n, total)

            def update(self, n=1) -> None:
                self.n += n or 0
                view.show_bytes(self.n, self.total)

            def update_transfer(self, n=1) -> None:
                """Network bytes (xet); the bar counts bytes written, reported through update()."""

            def set_postfix_str(self, *args, **kwargs) -> None: ...

            def set_transfer_postfix_str(self, *args, **kwargs) -> None: ...

            def set_description(self, *args, **kwargs) -> None: ...

            def refresh(self, *args, **kwargs) -> None: ...

            def close(self) -> None: ...

            @property
            def format_dict(self) -> dict:
                return {"n": self.n, "total": self.total}

            def __enter__(self):
                return self

            def __exit__(self, *exc) -> None: ...

        return FileBar


class ConsoleLogHandler(logging.Handler):
    """Prints huggingface_hub's warnings (e.g. "trying to resume download") above the bars."""

    def __init__(self, console):
        super().__init__(logging.WARNING)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        from rich.markup import escape

        self.console.print(f"[yellow]{escape(' '.join(record.getMessage().split()))}[/]", highlight=False)


@contextmanager
def hub_warnings_to(console):
    hub_logger = logging.getLogger("huggingface_hub")
    saved = hub_logger.handlers[:]
    hub_logger.handlers = [ConsoleLogHandler(console)]
    try:
        yield
    finally:
        hub_logger.handlers = saved


# ---------------------------------------------------------------------------------------------
# unmask pull: errors


def cannot_reach(reason: str) -> CliError:
    from huggingface_hub import constants

    return CliError(
        f"cannot reach the hub at {constants.ENDPOINT} ({reason}); check your connection (or HF_ENDPOINT), "
        "or use a model that is already downloaded (`unmask list`)"
    )


def offline_error(repo_id: str) -> CliError:
    return CliError(
        f"cannot reach the hub: HF_HUB_OFFLINE is set and {repo_id} is not downloaded; unset HF_HUB_OFFLINE to pull it"
    )


@contextmanager
def hub_errors(repo_id: str):
    """huggingface_hub's exceptions -> one sentence that says what to do."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        yield
    except OfflineModeIsEnabled:
        raise offline_error(repo_id) from None
    except GatedRepoError:
        raise CliError(
            f"{repo_id} is gated: accept its terms at {constants.ENDPOINT}/{repo_id}, "
            "then set HF_TOKEN to an access token of that account"
        ) from None
    except RepositoryNotFoundError as err:
        if err.response is not None and err.response.status_code == 401:
            raise CliError(
                f"the hub refused {repo_id} (401): it does not exist or is private; "
                "check the id, or set HF_TOKEN to a token that can read it"
            ) from None
        raise CliError(f"{repo_id} was not found on the hub ({constants.ENDPOINT}); check the id") from None
    except RevisionNotFoundError:
        raise CliError(f"{repo_id} has no such revision; check --revision") from None
    except RemoteEntryNotFoundError as err:
        raise CliError(
            f"{repo_id} lacks a file it lists ({err.response.url.path.rsplit('/', 1)[-1]}); try again later"
        ) from None
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else "?"
        hint = "set HF_TOKEN to a token that can read it" if status in (401, 403) else "try again later"
        raise CliError(f"the hub answered {status} for {repo_id}; {hint}") from None
    except (httpx2.TransportError, LocalEntryNotFoundError) as err:
        cause = err.__cause__ if isinstance(err, LocalEntryNotFoundError) and err.__cause__ else err
        raise cannot_reach(str(cause).splitlines()[0][:120] or type(cause).__name__) from None


# ---------------------------------------------------------------------------------------------
# unmask pull


def pick_files(names: list[str], index: Optional[dict]) -> list[str]:
    """The files of a repo listing that unmask reads, in download order (small ones first).

    Weights follow `loading.weight_files`: the shards an index names, else model.safetensors,
    else model*.safetensors. Only top-level files: the loader reads nothing from subfolders.
    """
    top = set(n for n in names if "/" not in n)
    meta = sorted(n for n in top if n in METADATA_FILES or n.endswith(".jinja"))
    if index is not None:
        weights = sorted(set(index.get("weight_map", {}).values()))
        missing = [w for w in weights if w not in top]
        if missing:
            raise CliError(f"the shard index lists files the repo does not have ({', '.join(missing[:3])})")
        meta.append(SHARD_INDEX)
    elif "model.safetensors" in top:
        weights = ["model.safetensors"]
    else:
        weights = sorted(n for n in top if n.startswith("model") and n.endswith(".safetensors"))
    return meta + weights


def check_architecture(repo_id: str, revision: str, bar: type) -> None:
    """Read config.json (from the cache, else into a throwaway cache) and refuse what unmask cannot run."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    from ..models import supported_types

    def model_type(path: str):
        try:
            return json.loads(Path(path).read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError, AttributeError):
            raise CliError(
                f"{repo_id}: config.json is not valid JSON, so it is not a checkpoint unmask can load"
            ) from None

    cached = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    if isinstance(cached, str):
        found = model_type(cached)
    else:
        with tempfile.TemporaryDirectory(prefix="unmask-pull-") as tmp:
            found = model_type(
                hf_hub_download(repo_id, "config.json", revision=revision, cache_dir=tmp, tqdm_class=bar)
            )
    if str(found).lower() not in supported_types():
        raise CliError(
            f"{repo_id} is a {found!r} model, which unmask cannot run (supported architectures: "
            f"{', '.join(supported_types())}); nothing was downloaded"
        )


def download(repo_id: str, revision: str, view_console) -> tuple[Path, int, int, int]:
    """Fetch what unmask needs of repo_id into the cache.

    Returns (snapshot folder, bytes, files, files that needed a transfer).
    """
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.utils import are_progress_bars_disabled

    info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
    sizes = {s.rfilename: s.size for s in info.siblings or []}
    if "config.json" not in sizes:
        raise CliError(f"{repo_id} has no config.json, so it is not a checkpoint unmask can load")
    commit = info.sha
    quiet = PullView(view_console, [], enabled=False).bar_class()  # for the few bytes read before the bars
    check_architecture(repo_id, commit, quiet)

    index = None
    if SHARD_INDEX in sizes:
        index = json.loads(
            Path(hf_hub_download(repo_id, SHARD_INDEX, revision=commit, tqdm_class=quiet)).read_text(encoding="utf-8")
        )
    names = pick_files(list(sizes), index)
    if not any(n.endswith(".safetensors") for n in names):
        from ..loading import PICKLE_SUFFIXES

        pickles = sorted(n for n in sizes if n.endswith(PICKLE_SUFFIXES))
        what = f"only pickle weights ({', '.join(pickles[:3])})" if pickles else "no safetensors weights"
        raise CliError(f"{repo_id} has {what}; unmask loads safetensors only, since unpickling can run code")

    fetched = 0
    with hub_warnings_to(view_console), PullView(view_console, names, enabled=not are_progress_bars_disabled()) as view:
        bar = view.bar_class()
        for name in names:
            view.start_file(name, sizes.get(name))
            path = Path(hf_hub_download(repo_id, name, revision=commit, tqdm_class=bar))
            fetched += view.fetched
            view.finish_file()
    if revision != commit:
        # Record `revision -> commit` only now that the snapshot is whole (one HEAD request).
        hf_hub_download(repo_id, "config.json", revision=revision, tqdm_class=quiet)
    return path.parent, sum(sizes.get(n) or 0 for n in names), len(names), fetched


@app.command()
def pull(
    model: str = typer.Argument(..., help=f"Hub id (org/name) or alias: {', '.join(ALIAS_NAMES)}."),
    revision: str = typer.Option("main", "--revision", help="Branch, tag or commit to download."),
) -> None:
    """Download a model from the Hugging Face Hub into the standard cache (resumable; architecture checked first)."""

    def go() -> None:
        from ..loading import ModelLoadError, cached_snapshot, weight_files

        repo_id = hub_repo_id(model, "pull")
        if offline():
            folder = cached_snapshot(repo_id)
            try:
                weights = weight_files(folder) if folder is not None else None
            except ModelLoadError:
                weights = None
            if not weights:
                raise offline_error(repo_id)
            typer.echo(
                f"{repo_id} is already downloaded at {folder} "
                "(HF_HUB_OFFLINE is set, so it was not checked for updates)"
            )
            return
        with hub_errors(repo_id):
            folder, size, files, fetched = download(repo_id, revision, err_console)
        verb = "pulled" if fetched else "already up to date:"
        typer.echo(f"{verb} {repo_id} ({human_size(size)}, {files} files) -> {folder}")

    try:
        guard(go)
    except KeyboardInterrupt:
        fail(f"interrupted; run `unmask pull {model}` again to continue (finished files are kept)", INTERRUPTED_EXIT)
