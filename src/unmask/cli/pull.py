"""`unmask pull`: download a model from the Hugging Face Hub into the standard cache.

Notable features:
- `pull` reads config.json before anything else and refuses what unmask cannot run (an unknown
  architecture, or any value it does not run: `checkpoints.config_problem`, the loader's own check)
  before a single weight byte is requested; the check uses a throwaway cache, so a refused pull
  leaves the user's cache untouched. A config that passes gets one line first: the bytes to
  download and the memory the model will need (per dtype and quantization, as the fit check
  estimates it from the config alone).
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
- The hub's exceptions become one sentence that says what to do (gated, private, not found, offline).
"""

from __future__ import annotations

import json
import logging
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from ..checkpoints import ALIASES
from . import app
from .common import CliError, err_console, fail, guard, offline
from .hub import hub_repo_id, human_size

# Top-level files the loader and tokenizer read besides the weights (loading.py, tokenizer.py).
# vocab.json, merges.txt, added_tokens.json and special_tokens_map.json are the slow Qwen2 form
# Dream, Dream-Coder and DiffuCoder ship instead of tokenizer.json.
METADATA_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "special_tokens_map.json",
)
SHARD_INDEX = "model.safetensors.index.json"
INTERRUPTED_EXIT = 130  # the shell's code for "stopped by Ctrl-C"


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


def fetch_config(repo_id: str, revision: str, bar: type) -> dict:
    """config.json of a repo, from the cache, else read into a throwaway cache (so a refused pull
    leaves the user's cache untouched)."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    def parse(path: str) -> dict:
        try:
            config = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = None
        if not isinstance(config, dict):
            raise CliError(f"{repo_id}: config.json is not valid JSON, so it is not a checkpoint unmask can load")
        return config

    cached = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    if isinstance(cached, str):
        return parse(cached)
    with tempfile.TemporaryDirectory(prefix="unmask-pull-") as tmp:
        return parse(hf_hub_download(repo_id, "config.json", revision=revision, cache_dir=tmp, tqdm_class=bar))


def check_config(repo_id: str, config: dict) -> None:
    """Refuse a config unmask cannot run, naming the value: the check `unmask list` and the loader make."""
    from ..checkpoints import config_problem

    problem = config_problem(config)
    if problem is not None:
        raise CliError(f"{repo_id}: {problem}; nothing was downloaded")


def file_sizes(names: list[str], sizes: dict, index: Optional[dict]) -> dict[str, int]:
    """Bytes of each file to fetch, from the repo listing; a shard the listing gives no size for gets
    its share of what the index's metadata.total_size leaves."""
    out = {n: sizes.get(n) or 0 for n in names}
    unknown = [n for n in names if n.endswith(".safetensors") and sizes.get(n) is None]
    total = ((index or {}).get("metadata") or {}).get("total_size")
    if unknown and isinstance(total, int):
        known = sum(v for n, v in out.items() if n.endswith(".safetensors"))
        out |= {n: max(0, total - known) // len(unknown) for n in unknown}
    return out


def memory_summary(config: dict) -> str:
    """The memory the model will need, as the loader's fit check estimates it: "needs about 16.7 GB
    of memory in bfloat16 (int8 about 9.1 GB, int4 about 6.3 GB)"; "" when the config lacks the sizes."""
    from ..checkpoints import config_memory_needs

    needs = config_memory_needs(config)
    if not needs:
        return ""
    if len(needs) == 1:  # a checkpoint `unmask quantize` wrote runs in its own mode only
        ((mode, need),) = needs.items()
        return f"needs about {human_size(need.total)} of memory ({mode})"
    dtype = str(config.get("torch_dtype") or config.get("dtype"))
    dtype = dtype if dtype in ("float32", "bfloat16") else "bfloat16"
    quantized = ", ".join(f"{m} about {human_size(needs[m].total)}" for m in ("int8", "int4"))
    return f"needs about {human_size(needs[dtype].total)} of memory in {dtype} ({quantized})"


def plan(repo_id: str, config: dict, sizes: dict[str, int], cached: set[str]) -> str:
    """The line `pull` prints before a weight is requested: what is left to download (files not in
    `cached`) and the memory the model will need."""
    total = sum(sizes.values())
    left = sum(v for n, v in sizes.items() if n not in cached)
    if left == total:
        line = f"{repo_id}: {human_size(total)} to download"
    elif left:
        line = f"{repo_id}: {human_size(left)} of {human_size(total)} left to download"
    else:
        line = f"{repo_id}: nothing left to download ({human_size(total)} in the cache)"
    memory = memory_summary(config)
    return f"{line}; {memory}" if memory else line


def download(repo_id: str, revision: str, view_console) -> tuple[Path, int, int, int]:
    """Fetch what unmask needs of repo_id into the cache.

    Returns (snapshot folder, bytes, files, files that needed a transfer).
    """
    from huggingface_hub import HfApi, hf_hub_download, try_to_load_from_cache
    from huggingface_hub.utils import are_progress_bars_disabled
    from rich.markup import escape

    info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
    sizes = {s.rfilename: s.size for s in info.siblings or []}
    if "config.json" not in sizes:
        raise CliError(f"{repo_id} has no config.json, so it is not a checkpoint unmask can load")
    commit = info.sha
    # What this commit already has in the cache, before this pull adds anything (files only on disk).
    cached = {n for n in sizes if "/" not in n and isinstance(try_to_load_from_cache(repo_id, n, revision=commit), str)}
    quiet = PullView(view_console, [], enabled=False).bar_class()  # for the few bytes read before the bars
    config = fetch_config(repo_id, commit, quiet)
    check_config(repo_id, config)

    index = None
    if SHARD_INDEX in sizes:
        index = json.loads(
            Path(hf_hub_download(repo_id, SHARD_INDEX, revision=commit, tqdm_class=quiet)).read_text(encoding="utf-8")
        )
    names = pick_files(list(sizes), index)
    if not any(n.endswith(".safetensors") for n in names):
        from ..checkpoints import PICKLE_SUFFIXES

        pickles = sorted(n for n in sizes if n.endswith(PICKLE_SUFFIXES))
        what = f"only pickle weights ({', '.join(pickles[:3])})" if pickles else "no safetensors weights"
        raise CliError(f"{repo_id} has {what}; unmask loads safetensors only, since unpickling can run code")

    to_fetch = file_sizes(names, sizes, index)
    view_console.print(escape(plan(repo_id, config, to_fetch, cached)), highlight=False, soft_wrap=True)
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
    return path.parent, sum(to_fetch.values()), len(names), fetched


@app.command()
def pull(
    model: str = typer.Argument(..., help=f"Hub id (org/name) or alias: {', '.join(ALIASES)}."),
    revision: str = typer.Option("main", "--revision", help="Branch, tag or commit to download."),
) -> None:
    """Download a model from the Hugging Face Hub into the standard cache (resumable; its config checked first)."""

    def go() -> None:
        from ..checkpoints import cached_snapshot, weight_files
        from ..engine import ModelLoadError

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
