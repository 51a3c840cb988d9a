"""Which models this server answers for, what they are, and loading them for a request.

Notable features:
- Only named models are served: the default model, `UNMASK_MODELS` when set, otherwise the
  embedded models, the models `unmask create` named and the hub models already in the local
  cache. A request can never make the server open an arbitrary folder; a local folder is served
  only when the operator names it.
- Describing a model that is not loaded reads its config and the safetensors headers only
  (`unmask.checkpoints`: the parameter count without touching the weights).
- Load failures are logged in full but answered without their file paths.
"""

from __future__ import annotations

import logging
import time

from starlette.concurrency import run_in_threadpool

from .. import checkpoints
from ..engine import Engine, ModelLoadError, resolve
from .errors import APIError
from .settings import Settings

log = logging.getLogger("unmask.server")
HUB_SCAN_SECONDS = 30.0  # how long a scan of the hub cache is reused: it walks the disk
CREATED = int(time.time())  # OpenAI's `created` for models: when this server started


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
            self._hub = (time.monotonic(), checkpoints.served_hub_models())
        named = checkpoints.named_names()  # one directory listing: cheap enough for every request
        return list(dict.fromkeys([*self.refs, *checkpoints.embedded_names(), *named, *self._hub[1]]))

    def rescan(self) -> None:
        """Forget the hub scan (after a pull), so the next listing reads the cache again."""
        self._hub = None

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
        except ModelLoadError as err:
            log.error("cannot load model %r: %s", name, err)
            try:
                await run_in_threadpool(checkpoints.folder_of, self.reference(name))
            except ModelLoadError:
                raise not_found(name, served=True) from None
            failed = f"model: {name!r} could not be loaded; the server log has the details"
            raise APIError(500, failed, param="model", code="model_load_failed") from None

    async def resolvable(self, name: str | None):
        """(served name, something `resolve` takes): the loaded model, else its folder's
        description, so asking what a request would run with never loads a model."""
        name = self.check(name)
        loaded = self.engine.models.get(name)
        if loaded is not None:
            return name, loaded

        def describe():
            try:
                return checkpoints.describe_model(self.reference(name), name)
            except (ModelLoadError, OSError, ValueError):
                return None

        described = await run_in_threadpool(describe)
        if described is None or described.family is None:
            return await self.load(name)  # the load reports why it cannot
        return name, described

    def describe(self, name: str) -> dict:
        """What /api/models says about one model (blocking: run it in a thread)."""
        loaded = self.engine.models.get(name)
        info: dict = {"name": name, "default": name == self.default, "loaded": loaded is not None}
        if loaded is not None:
            model_type, described = str(loaded.config.get("model_type", "")), loaded
            info |= {
                "parameters": loaded.num_parameters,
                "context_length": loaded.context_length,
                "chat_template": loaded.chat,
                "tokenizer": loaded.tokenizer is not None,
            }
        else:
            try:
                described = checkpoints.describe_model(self.reference(name), name)
            except (ModelLoadError, OSError, ValueError):
                return info | {"available": False}
            if not described.has_config:
                return info | {"available": False}
            model_type = str(described.model_type or "")
            info |= {
                "parameters": described.parameters,
                "context_length": described.context_length,
                # as for a loaded model: a template is only usable through a tokenizer
                "chat_template": described.tokenizer and described.chat_template,
                "tokenizer": described.tokenizer,
            }
        family = described.family
        # "output": what the model writes, as its generation_config's "unmask" section declares it
        # ("svg", "html", "js": code the studio shows as code and previews); null for prose.
        output = described.defaults.get("output")
        info |= {"available": True, "family": family, "model_type": model_type.lower(), "output": output}
        if family is None:
            return info | {"defaults": None}
        # What a request with no decoding fields runs with: the engine's resolver decides.
        defaults = resolve(described, {}).model_dump(exclude={"history"})
        return info | {"defaults": defaults}

    async def describe_all(self) -> list[dict]:
        return await run_in_threadpool(lambda: [self.describe(n) for n in self.names()])
