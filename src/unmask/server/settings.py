"""Server settings: CLI flags and `UNMASK_*` environment variables end up in one `Settings`."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.scheduler import DEFAULT_KEEP_ALIVE, DEFAULT_MAX_BATCH, DEFAULT_MAX_QUEUE
from .limits import Limits

DEFAULT_HOST = "127.0.0.1"  # loopback: other machines cannot reach the server unless asked
# Not taken by the local-model servers people run beside us: Ollama 11434, llama.cpp 8080,
# vLLM 8000, LM Studio 1234, Gradio 7860, Jupyter 8888.
DEFAULT_PORT = 8471
DEFAULT_MODEL = "story"


def split_list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


@dataclass
class Settings:
    model: str = DEFAULT_MODEL  # the default model ("name" or "name=reference"), for requests naming none
    # Served models, each "name" or "name=reference" (a folder served under a short name);
    # None: the default, the embedded and the hub-cached models.
    models: list[str] | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = None
    allow_origins: list[str] = field(
        default_factory=list
    )  # extra browser origins (CORS); same origin is always allowed
    allowed_hosts: list[str] = field(default_factory=list)  # Host names besides loopback and the bound host
    keep_alive: float = DEFAULT_KEEP_ALIVE
    max_queue: int = DEFAULT_MAX_QUEUE
    max_batch: int = DEFAULT_MAX_BATCH
    limits: Limits = field(default_factory=Limits)
    loader: Callable | None = None  # reference -> unmask.Model; default unmask.load (safetensors only)
    quantize: str | None = None  # "int8" | "int4": the default loader quantizes every model as it loads
    dtype: str = "auto"  # the default loader's compute dtype (auto: bfloat16 on CPUs that have it)
    studio_dir: Path | None = None  # the studio's static files; default: the installed studio

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Settings from UNMASK_HOST, UNMASK_PORT, UNMASK_API_KEY, UNMASK_ORIGINS and UNMASK_MODELS;
        `overrides` (the CLI's flags) win over the environment when not None."""
        env = os.environ if environ is None else environ
        values: dict = {}
        if env.get("UNMASK_HOST"):
            values["host"] = env["UNMASK_HOST"]
        if env.get("UNMASK_PORT"):
            try:
                values["port"] = int(env["UNMASK_PORT"])
            except ValueError:
                raise ValueError(f"UNMASK_PORT: expected a port number, got {env['UNMASK_PORT']!r}") from None
        if env.get("UNMASK_API_KEY"):
            values["api_key"] = env["UNMASK_API_KEY"]
        if env.get("UNMASK_ORIGINS"):
            values["allow_origins"] = split_list(env["UNMASK_ORIGINS"])
        if env.get("UNMASK_MODELS"):
            values["models"] = split_list(env["UNMASK_MODELS"])
        values.update({k: v for k, v in overrides.items() if v is not None and v != [] and k != "api_key"})
        if overrides.get("api_key") is not None:
            values["api_key"] = overrides["api_key"]
        if "UNMASK_API_KEY" in env and not env["UNMASK_API_KEY"].strip() and overrides.get("api_key") is None:
            values["api_key"] = env["UNMASK_API_KEY"]
        settings = cls(**values)
        if settings.api_key is not None and not settings.api_key.strip():
            # An empty key would silently turn authentication off: refuse it at start.
            raise ValueError("api_key: an empty API key would turn authentication off; give a key or leave it out")
        if not 0 < settings.port < 65536:
            raise ValueError(f"port: must be 1 to 65535, got {settings.port}")
        return settings
