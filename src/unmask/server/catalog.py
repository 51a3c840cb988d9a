"""Which models this server answers for, what they are, and loading them for a request.

Notable features:
- Only named models are served: the default model, `UNMASK_MODELS` when set, otherwise the
  embedded models and the hub models already in the local cache. A request can never make the
  server open an arbitrary folder; a local folder is served only when the operator names it.
- Describing a model that is not loaded reads its config and the safetensors headers only
  (parameter count without touching the weights).
- Load failures are logged in full but answered without their file paths.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from safetensors import safe_open
from starlette.concurrency import run_in_threadpool

from .. import loading
from ..engine.scheduler import Engine
from ..models import architecture_for
from ..options import GenerationOptions
from .errors import APIError
from .settings import Settings

log = logging.getLogger("unmask.server")
HUB_SCAN_SECONDS = 30.0  # how long a scan of the hub cache is reused: it walks the disk
CREATED = int(time.time())  # OpenAI's `created` for models: when this server started


def hub_models() -> list[str]:
    """Model repos in the local Hugging Face cache whose config names a supported architecture."""
    try:
        from huggingface_hub import scan_cache_dir

        repos = scan_cache_dir().repos
    except Exception:  # no cache yet, or an unreadable one: nothing to list
        return []
    found = []
    for repo in repos:
        if repo.repo_type != "model" or not repo.revisions:
            continue
        snapshot = max(repo.revisions, key=lambda r: r.last_modified).snapshot_path
        try:
            architecture_for(json.loads((Path(snapshot) / "config.json").read_text()).get("model_type"))
        except (OSError, ValueError):
            continue
        found.append(repo.repo_id)
    return sorted(found)


def not_found(name: str, served: bool = False) -> APIError:
    why = (
        (
            "is served but not present on this machine (not embedded, not a folder, not downloaded: "
            "`unmask pull` fetches hub models)"
        )
        if served
        else "is not served here; GET /v1/models lists the models"
    )
    return APIError(404, f"model: {name!r} {why}", param="model", code="model_not_found")


def split_entry(entry: str) -> tuple[str, str]:
    """'tiny=/models/tiny' -> ('tiny', '/models/tiny'); 'story' -> ('story', 'story')."""
    name, sep, ref = entry.partition("=")
    return (name.strip(), ref.strip()) if sep else (entry.strip(), entry.strip())


class Catalog:
    def __init__(self, settings: Settings, engine_ref):
        self.settings = settings
        self._engine_ref = engine_ref  # callable returning the running Engine
        self._hub: tuple[float, list[str]] | None = None
        self.default, default_ref = split_entry(settings.model)
        self.refs = {self.default: default_ref} | dict(split_entry(e) for e in settings.models or [])

    @property
    def engine(self) -> Engine:
        return self._engine_ref()

    def reference(self, name: str) -> str:
        """What to load for a served name (a folder may be served under a short name)."""
        return self.refs.get(name, name)

    def names(self) -> list[str]:
        if self.settings.models is not None:
            return list(self.refs)
        if self._hub is None or time.monotonic() - self._hub[0] > HUB_SCAN_SECONDS:
            self._hub = (time.monotonic(), hub_models())
        return list(dict.fromkeys([*self.refs, *loading.embedded_models(), *self._hub[1]]))

    def check(self, name: str | None) -> str:
        name = name or self.default
        if name not in self.names():
            raise not_found(name)
        return name

    async def load(self, name: str | None):
        """(served name, loaded model) for a request's `model` field (404 if not served or absent)."""
        name = self.check(name)
        try:
            return name, await run_in_threadpool(self.engine.model, name)
        except loading.ModelLoadError as err:
            log.error("cannot load model %r: %s", name, err)
            try:
                await run_in_threadpool(loading.resolve, self.reference(name))
            except loading.ModelLoadError:
                raise not_found(name, served=True) from None
            failed = f"model: {name!r} could not be loaded; the server log has the details"
            raise APIError(500, failed, param="model", code="model_load_failed") from None

    def describe(self, name: str) -> dict:
        """What /api/models says about one model (blocking: run it in a thread)."""
        loaded = self.engine.models.get(name)
        info: dict = {"name": name, "default": name == self.default, "loaded": loaded is not None}
        if loaded is not None:
            config, generation = loaded.config, loaded.generation_config
            info |= {
                "parameters": loaded.num_parameters,
                "context_length": loaded.context_length,
                "chat_template": bool(loaded.tokenizer and loaded.tokenizer.chat_template),
                "tokenizer": loaded.tokenizer is not None,
            }
        else:
            try:
                folder = loading.resolve(self.reference(name))
                config = loading.read_json(folder / "config.json", "config.json")
                gen_path = folder / "generation_config.json"
                generation = loading.read_json(gen_path, "generation_config.json") if gen_path.is_file() else {}
                info |= {
                    "parameters": count_parameters(folder),
                    "context_length": config.get("max_position_embeddings")
                    or config.get("max_sequence_length")
                    or 4096,
                    "chat_template": has_chat_template(folder),
                    "tokenizer": (folder / "tokenizer.json").is_file(),
                }
            except (loading.ModelLoadError, OSError, ValueError):
                return info | {"available": False}
        model_type = str(config.get("model_type", "")).lower()
        try:
            family = architecture_for(model_type).family
        except ValueError:
            family = None
        defaults = GenerationOptions().model_dump(exclude={"history"}) | {"stop_at_eos": True}
        section = (generation or {}).get("unmask") or {}
        defaults |= {k: v for k, v in section.items() if k in defaults}
        return info | {"available": True, "family": family, "model_type": model_type, "defaults": defaults}

    async def describe_all(self) -> list[dict]:
        return await run_in_threadpool(lambda: [self.describe(n) for n in self.names()])


def count_parameters(folder: Path) -> int | None:
    total = 0
    try:
        for file in loading.weight_files(folder):
            with safe_open(str(file), framework="pt", device="cpu") as f:
                for key in f:
                    n = 1
                    for dim in f.get_slice(key).get_shape():
                        n *= dim
                    total += n
    except Exception:  # unreadable weights: the count is unknown, loading will report why
        return None
    return total


def has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file():
        return True
    try:
        return bool(json.loads((folder / "tokenizer_config.json").read_text()).get("chat_template"))
    except (OSError, ValueError):
        return False
