"""What every verb shares: one-sentence errors, model loading with a spinner, decoding options.

Errors are `CliError`s carrying a message that says what went wrong and what to do; `fail`
prints it and exits non-zero. A traceback appears only with `unmask --debug`.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer
from rich.console import Console

err_console = Console(stderr=True)
DEBUG = {"on": False}
DEFAULT_MODEL = "story"

PRESETS = ("fast", "balanced", "best")
# Fast-dLLM's threshold (arXiv:2505.22618 uses 0.9) for the fast preset.
FAST_THRESHOLD = 0.9


class CliError(Exception):
    """A user-facing failure: the message is one sentence with what to do."""


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def guard(fn):
    """Run fn(), turning known errors into one clear line (and a traceback under --debug)."""
    from pydantic import ValidationError

    from ..canvas import RequestError
    from ..loading import ModelLoadError
    from ..tokenizer import TemplateError

    try:
        return fn()
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except ValidationError as err:
        if DEBUG["on"]:
            raise
        fail(describe_validation(err))
    except (CliError, ModelLoadError, RequestError, TemplateError, ValueError, OSError) as err:
        if DEBUG["on"]:
            raise
        fail(str(err))


def describe_validation(err) -> str:
    """The first pydantic error as 'field: message' with the CLI flag spelling."""
    first = err.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or ""
    message = first.get("msg", "invalid value").removeprefix("Value error, ")
    if field:
        return f"--{field.replace('_', '-')}: {message}"
    return message


def load_model(ref: str, dtype: str = "auto", device: str = "auto", quiet: bool = False):
    """Load with a spinner on a terminal; errors become CliError."""
    from ..loading import load

    if quiet or not err_console.is_terminal:
        return load(ref, dtype=dtype, device=device)
    with err_console.status(f"loading {ref}…", spinner="dots"):
        return load(ref, dtype=dtype, device=device)


def round_steps(steps: int, blocks: int) -> int:
    """The nearest positive multiple of the block count (samplers need whole steps per block)."""
    return max(blocks, round(steps / blocks) * blocks)


def preset_settings(preset: str, max_new_tokens: int, block_length: int | None) -> dict:
    """fast: a quarter of the steps with Fast-dLLM threshold decoding (and the dual cache when
    there are blocks); balanced: half the steps; best: one step per token."""
    blocks = max_new_tokens // (block_length or max_new_tokens)
    if preset == "fast":
        out = {"steps": round_steps(max_new_tokens // 4, blocks), "threshold": FAST_THRESHOLD}
        if block_length:
            out["cache"] = "dual"
        return out
    if preset == "balanced":
        return {"steps": round_steps(max_new_tokens // 2, blocks)}
    return {"steps": max_new_tokens}


def build_options(model, flags: dict, preset: str | None = None, **fixed):
    """GenerationOptions from the model's shipped defaults, then a preset, then explicit flags.

    flags holds the CLI values (None = not given). When only the length changes, the shipped
    steps-per-token ratio is kept, and a shipped block length that no longer divides is dropped.
    """
    from ..options import GenerationOptions, yield_to_requested

    settings = model.defaults | {k: v for k, v in fixed.items() if v is not None}
    explicit = {k: v for k, v in flags.items() if v is not None}
    if preset is not None and preset not in PRESETS:
        raise CliError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    shipped_len = settings.get("max_new_tokens", 128)
    length = explicit.get("max_new_tokens", shipped_len)
    block = explicit.get("block_length", settings.get("block_length"))
    if block and length % block:
        if "block_length" in explicit:
            raise CliError(f"--block-length {block} must divide --max-new-tokens {length}")
        block = None
    settings.pop("block_length", None)
    if block:
        settings["block_length"] = block
    settings["max_new_tokens"] = length
    blocks = length // (block or length)
    if "steps" in settings:
        settings["steps"] = round_steps(max(1, settings["steps"] * length // shipped_len), blocks)
    if preset is not None:
        explicit = preset_settings(preset, length, block) | explicit
    settings = yield_to_requested(settings, explicit) | explicit
    return GenerationOptions(**settings)


def stdin_text() -> str | None:
    """Piped standard input, if any."""
    if sys.stdin is None or sys.stdin.isatty():
        return None
    return sys.stdin.read()


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
