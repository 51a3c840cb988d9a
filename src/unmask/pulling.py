"""Pulling a model from the Hugging Face Hub into the standard cache: the one path behind
`unmask pull` and the server's `POST /api/pull`. Views (the terminal's bars, Ollama's NDJSON
lines) subclass `PullProgress`; nothing here prints.

Notable features:
- config.json is read before anything else and a checkpoint unmask cannot run is refused (an
  unknown architecture, or any value it does not run: `checkpoints.config_problem`, the loader's
  own check) before a single weight byte is requested; the check uses a throwaway cache, so a
  refused pull leaves the cache untouched. A config that passes gets one plan line first: the
  bytes to download and the memory the model will need (per dtype and quantization, as the fit
  check estimates it from the config alone).
- Only what the loader reads is fetched (config, generation config, tokenizer, chat template,
  safetensors and their index; never pickles or code), through huggingface_hub and into the
  standard cache, so HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, HF_TOKEN and HF_ENDPOINT mean what
  they mean for every other tool.
- huggingface_hub reports bytes to a tqdm-shaped adapter (`PullProgress.bar_class`); a file's
  count never moves backwards, even when the library restarts the file.
- Resuming: a dropped connection is picked up by the library with a byte `Range` request; after
  an interruption the finished files stay in the cache and the next pull fetches only the rest
  (the unfinished file starts over: huggingface_hub >= 2 deletes partial files, see
  https://github.com/huggingface/huggingface_hub/pull/4228).
- `verify=True` (the server's "verifying sha256 digest") hashes every file this pull fetched
  against the hub's ETag: SHA-256 for LFS files, git's blob SHA-1 for the others.
- The ref (`main`) is recorded only once every file is in, so a half-finished pull never
  replaces a complete snapshot that `unmask run` was using.
- The hub's exceptions become one `PullError`: a sentence that says what to do, and the HTTP
  status a server answers with: 400 a name or a checkpoint unmask cannot use, 403 gated or
  private, 404 no such repo or revision, 409 HF_HUB_OFFLINE set and the model not downloaded,
  502 the hub unreachable or failing (or a download that does not match its digest).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import checkpoints
from .checkpoints import ALIASES

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
# HTTP statuses of the ways a pull fails (PullError.status).
REFUSED, FORBIDDEN, NOT_FOUND, OFFLINE, HUB_FAILED = 400, 403, 404, 409, 502
HEX = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
HASH_CHUNK = 8 * 1024 * 1024  # bytes read per hash update while verifying


class PullError(Exception):
    """A pull that cannot go on: `message` says what to do; `status` is the HTTP status for it."""

    def __init__(self, message: str, status: int = REFUSED):
        super().__init__(message)
        self.message, self.status = message, status


def human_size(n: Optional[int]) -> str:
    """Decimal units, as ollama and the hub show them."""
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


# ---------------------------------------------------------------------------------------------
# names


def hub_repo_id(model: str, verb: str = "pull", folders: bool = True) -> str:
    """The hub id a pull/rm argument names; embedded names, named models and local folders are refused.

    folders=False, for a name from the network: never looked up on disk, and held to the hub's
    own id rules (letters, digits, '-', '_', '.'; at most 96 characters).
    """
    if model in checkpoints.embedded_names():
        what = "needs no download" if verb == "pull" else "cannot be removed"
        raise PullError(f"{model} is embedded in unmask and {what}")
    if checkpoints.named_home(model) is not None:
        raise PullError(f"{model} is a named model (unmask create); it needs no download")
    if folders and Path(model).expanduser().is_dir():
        if verb == "pull":
            raise PullError(f"{model} is a local folder; unmask loads it directly, without pulling")
        raise PullError(
            f"{model} is a local folder, not a downloaded model; unmask rm only removes models from the hub cache"
        )
    repo_id = ALIASES.get(model, model)
    if repo_id.count("/") != 1:
        named = "a named model, " if verb == "rm" else ""
        raise PullError(
            f"unknown model {model!r}: give {named}a hub id such as org/name, or an alias ({', '.join(ALIASES)})"
        )
    if not folders:
        from huggingface_hub.errors import HFValidationError
        from huggingface_hub.utils import validate_repo_id

        try:
            validate_repo_id(repo_id)
        except HFValidationError:
            raise PullError(
                f"{model!r} is not a hub id: org/name of letters, digits, '-', '_' and '.', at most 96 characters"
            ) from None
    return repo_id


# ---------------------------------------------------------------------------------------------
# progress


class PullProgress:
    """What a pull reports as it goes; this base shows nothing, views override the hooks.

    Order: `plan(line, names)` once the config passed (before any weight byte); then per file
    `start_file(name, size)`, `advance(done, total)` as its bytes arrive (only when it needs a
    transfer; `done` never below what it was), `finish_file()`; then `verifying()` (with verify)
    and `recording()` (the ref). Overrides of start_file and show_bytes call the base's, which
    keeps `shown` (the most bytes reported for the file) and `fetched` (whether any moved).
    """

    def __init__(self) -> None:
        self.start_file("", None)

    def plan(self, line: str, names: list[str]) -> None: ...

    def start_file(self, name: str, size: Optional[int]) -> None:
        self.name, self.size, self.shown, self.fetched = name, size, 0, False

    def show_bytes(self, done: int, total: Optional[int]) -> None:
        """What the adapter calls: `done` bytes of the current file, held at the highest count."""
        self.fetched = True
        if done < self.shown:
            return  # the library took bytes back (a server ignored a Range): hold
        self.shown = done
        self.advance(done, self.size or total)

    def advance(self, done: int, total: Optional[int]) -> None: ...

    def finish_file(self) -> None: ...

    def verifying(self) -> None: ...

    def recording(self) -> None: ...

    def bar_class(self) -> type:
        """The tqdm-shaped class huggingface_hub builds a bar from (files come one at a time,
        so every bar belongs to the current file)."""
        progress = self

        class FileBar:
            """The subset of tqdm that huggingface_hub drives (http_get, xet_get)."""

            def __init__(self, *args, total=None, initial=0, **kwargs):
                self.total, self.n = total, initial or 0
                progress.show_bytes(self.n, total)

            def update(self, n=1) -> None:
                self.n += n or 0
                progress.show_bytes(self.n, self.total)

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


# ---------------------------------------------------------------------------------------------
# errors


def cannot_reach(reason: str) -> PullError:
    from huggingface_hub import constants

    return PullError(
        f"cannot reach the hub at {constants.ENDPOINT} ({reason}); check your connection (or HF_ENDPOINT), "
        "or use a model that is already downloaded (`unmask list`)",
        HUB_FAILED,
    )


def offline_error(repo_id: str) -> PullError:
    return PullError(
        f"cannot reach the hub: HF_HUB_OFFLINE is set and {repo_id} is not downloaded; unset HF_HUB_OFFLINE to pull it",
        OFFLINE,
    )


@contextmanager
def hub_errors(repo_id: str):
    """huggingface_hub's exceptions -> one PullError that says what to do."""
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
        raise PullError(
            f"{repo_id} is gated: accept its terms at {constants.ENDPOINT}/{repo_id}, "
            "then set HF_TOKEN to an access token of that account",
            FORBIDDEN,
        ) from None
    except RepositoryNotFoundError as err:
        if err.response is not None and err.response.status_code == 401:
            raise PullError(
                f"the hub refused {repo_id} (401): it does not exist or is private; "
                "check the id, or set HF_TOKEN to a token that can read it",
                FORBIDDEN,
            ) from None
        raise PullError(f"{repo_id} was not found on the hub ({constants.ENDPOINT}); check the id", NOT_FOUND) from None
    except RevisionNotFoundError:
        raise PullError(f"{repo_id} has no such revision; check --revision", NOT_FOUND) from None
    except RemoteEntryNotFoundError as err:
        raise PullError(
            f"{repo_id} lacks a file it lists ({err.response.url.path.rsplit('/', 1)[-1]}); try again later",
            HUB_FAILED,
        ) from None
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else "?"
        refused = status in (401, 403)
        hint = "set HF_TOKEN to a token that can read it" if refused else "try again later"
        raise PullError(
            f"the hub answered {status} for {repo_id}; {hint}", FORBIDDEN if refused else HUB_FAILED
        ) from None
    except (httpx2.TransportError, LocalEntryNotFoundError) as err:
        cause = err.__cause__ if isinstance(err, LocalEntryNotFoundError) and err.__cause__ else err
        raise cannot_reach(str(cause).splitlines()[0][:120] or type(cause).__name__) from None


# ---------------------------------------------------------------------------------------------
# what to fetch


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
            raise PullError(f"the shard index lists files the repo does not have ({', '.join(missing[:3])})")
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
            raise PullError(f"{repo_id}: config.json is not valid JSON, so it is not a checkpoint unmask can load")
        return config

    cached = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    if isinstance(cached, str):
        return parse(cached)
    with tempfile.TemporaryDirectory(prefix="unmask-pull-") as tmp:
        return parse(hf_hub_download(repo_id, "config.json", revision=revision, cache_dir=tmp, tqdm_class=bar))


def check_config(repo_id: str, config: dict) -> None:
    """Refuse a config unmask cannot run, naming the value: the check `unmask list` and the loader make."""
    problem = checkpoints.config_problem(config)
    if problem is not None:
        raise PullError(f"{repo_id}: {problem}; nothing was downloaded")


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
    needs = checkpoints.config_memory_needs(config)
    if not needs:
        return ""
    if len(needs) == 1:  # a checkpoint `unmask quantize` wrote runs in its own mode only
        ((mode, need),) = needs.items()
        return f"needs about {human_size(need.total)} of memory ({mode})"
    dtype = str(config.get("torch_dtype") or config.get("dtype"))
    dtype = dtype if dtype in ("float32", "bfloat16") else "bfloat16"
    quantized = ", ".join(f"{m} about {human_size(needs[m].total)}" for m in ("int8", "int4"))
    return f"needs about {human_size(needs[dtype].total)} of memory in {dtype} ({quantized})"


def plan_line(repo_id: str, config: dict, sizes: dict[str, int], cached: set[str]) -> str:
    """The line a pull shows before a weight is requested: what is left to download (files not in
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


# ---------------------------------------------------------------------------------------------
# verifying


def matches_etag(path: Path, etag: str) -> Optional[bool]:
    """Whether a file hashes to the hub's ETag: SHA-256 for LFS files (64 hex digits), git's blob
    SHA-1 (over "blob <size>\\0" + bytes) for the others (40); None for an ETag that is neither."""
    if not HEX.match(etag):
        return None
    if len(etag) == 64:
        digest = hashlib.sha256()
    else:
        digest = hashlib.sha1(usedforsecurity=False)
        digest.update(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest() == etag


def verify_file(repo_id: str, name: str, snapshot_file: Path) -> None:
    """Check a fetched file against the ETag its cache blob is named after; a mismatch removes it
    (blob and snapshot link, so the next pull fetches it again) and fails the pull."""
    blob = Path(os.path.realpath(snapshot_file))  # snapshots/<commit>/<name> -> blobs/<etag>
    if matches_etag(blob, blob.name) is False:
        blob.unlink(missing_ok=True)
        snapshot_file.unlink(missing_ok=True)
        raise PullError(
            f"{repo_id}: {name} does not match the hub's digest (a corrupted download) and was removed; pull again",
            HUB_FAILED,
        )


# ---------------------------------------------------------------------------------------------
# pulling


@dataclass(frozen=True)
class Pulled:
    repo_id: str
    folder: Path  # the snapshot
    size: int  # bytes of the files unmask reads (0 when not checked)
    files: int
    fetched: int  # files that needed a transfer
    checked: bool = True  # False: HF_HUB_OFFLINE is set, the cached copy was not checked for updates


def cached_copy(repo_id: str) -> Optional[Path]:
    """The snapshot of repo_id with weights the loader reads, without network; None if absent."""
    from .loading import ModelLoadError

    folder = checkpoints.cached_snapshot(repo_id)
    try:
        weights = checkpoints.weight_files(folder) if folder is not None else None
    except ModelLoadError:
        weights = None
    return folder if weights else None


def pull(
    repo_id: str,
    revision: str = "main",
    progress: Optional[PullProgress] = None,
    verify: bool = False,
    *,
    fit: bool = False,
    quantize: Optional[str] = None,
) -> Pulled:
    """Fetch what unmask needs of repo_id into the cache; raises PullError saying why not.

    fit: also refuse, before a weight is requested, a model this machine cannot run (in `quantize`,
    else in full precision): the loader's fit check from config.json (`checkpoints.fit_problem`),
    whose message names the quantization that would fit.

    With HF_HUB_OFFLINE set, a downloaded copy is the answer (not checked for updates).
    """
    if hub_offline():
        folder = cached_copy(repo_id)
        if folder is None:
            raise offline_error(repo_id)
        return Pulled(repo_id, folder, 0, 0, 0, checked=False)
    with hub_errors(repo_id):
        return download(repo_id, revision, progress or PullProgress(), verify, fit=fit, quantize=quantize)


def download(
    repo_id: str,
    revision: str,
    progress: PullProgress,
    verify: bool = False,
    *,
    fit: bool = False,
    quantize: Optional[str] = None,
) -> Pulled:
    from huggingface_hub import HfApi, hf_hub_download, try_to_load_from_cache

    info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
    sizes = {s.rfilename: s.size for s in info.siblings or []}
    if "config.json" not in sizes:
        raise PullError(f"{repo_id} has no config.json, so it is not a checkpoint unmask can load")
    commit = info.sha
    # What this commit already has in the cache, before this pull adds anything (files only on disk).
    cached = {n for n in sizes if "/" not in n and isinstance(try_to_load_from_cache(repo_id, n, revision=commit), str)}
    quiet = PullProgress().bar_class()  # for the few bytes read before the plan
    config = fetch_config(repo_id, commit, quiet)
    check_config(repo_id, config)
    problem = checkpoints.fit_problem(config, quantize) if fit else None
    if problem is not None:
        raise PullError(f"{repo_id}: {problem}; nothing was downloaded")

    index = None
    if SHARD_INDEX in sizes:
        index = json.loads(
            Path(hf_hub_download(repo_id, SHARD_INDEX, revision=commit, tqdm_class=quiet)).read_text(encoding="utf-8")
        )
    names = pick_files(list(sizes), index)
    if not any(n.endswith(".safetensors") for n in names):
        pickles = sorted(n for n in sizes if n.endswith(checkpoints.PICKLE_SUFFIXES))
        what = f"only pickle weights ({', '.join(pickles[:3])})" if pickles else "no safetensors weights"
        raise PullError(f"{repo_id} has {what}; unmask loads safetensors only, since unpickling can run code")

    to_fetch = file_sizes(names, sizes, index)
    progress.plan(plan_line(repo_id, config, to_fetch, cached), names)
    bar = progress.bar_class()
    fetched: dict[str, Path] = {}
    for name in names:
        progress.start_file(name, sizes.get(name))
        path = Path(hf_hub_download(repo_id, name, revision=commit, tqdm_class=bar))
        if progress.fetched:
            fetched[name] = path
        progress.finish_file()
    if verify:
        progress.verifying()
        for name, file in fetched.items():
            verify_file(repo_id, name, file)
    progress.recording()
    if revision != commit:
        # Record `revision -> commit` only now that the snapshot is whole (one HEAD request).
        hf_hub_download(repo_id, "config.json", revision=revision, tqdm_class=quiet)
    return Pulled(repo_id, path.parent, sum(to_fetch.values()), len(names), len(fetched))
