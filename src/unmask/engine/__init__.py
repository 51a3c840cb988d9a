"""The engine: the public API the CLI, the server, the benchmarks and Python users go through.

- `load` / `Model`: a loaded checkpoint with token-level `generate`, `stream` and `logits`.
- `canvas`: requests become canvases (prompt, chat, infill template, suffix, Sudoku board).
- `resolve`: a request's decoding fields become options for one model, once (presets too).
- `Completion`: a generation's step events become its text, usage and timings, once.
- `Engine` (scheduler): concurrent requests on one worker, batched where they can share passes.
"""

from ..loading import ModelLoadError, SpecialIds
from ..options import GenerationOptions
from ..sampling import BLOCK_FAMILIES, DenoiseStep
from ..tokenizer import TemplateError
from .canvas import (
    Canvas,
    RequestError,
    chat_or_prompt_ids,
    infill_canvas,
    puzzle_canvas,
    suffix_canvas,
    text_canvas,
)
from .completion import Completion, complete
from .events import DoneEvent, ErrorEvent, Event, StepEvent
from .model import GenerationResult, Model
from .resolve import (
    FAST_THRESHOLD,
    PRESET_HELP,
    PRESETS,
    block_size,
    check_context,
    default_length,
    preset_settings,
    resolve,
    steps_for,
)
from .scheduler import Engine, EngineBusy, EngineClosed, Handle, Request


def load(ref, dtype: str = "auto", device: str = "auto", quantize: str | None = None) -> Model:
    """Load a model: an embedded name (`story`, `sudoku`), a local folder, or a pulled hub id.
    quantize: "int8" or "int4" weights, quantized as they are read."""
    return Model.load(ref, dtype, device, quantize)


__all__ = [
    "BLOCK_FAMILIES",
    "FAST_THRESHOLD",
    "PRESETS",
    "PRESET_HELP",
    "Canvas",
    "Completion",
    "DenoiseStep",
    "DoneEvent",
    "Engine",
    "EngineBusy",
    "EngineClosed",
    "ErrorEvent",
    "Event",
    "GenerationOptions",
    "GenerationResult",
    "Handle",
    "Model",
    "ModelLoadError",
    "Request",
    "RequestError",
    "SpecialIds",
    "StepEvent",
    "TemplateError",
    "chat_or_prompt_ids",
    "complete",
    "block_size",
    "check_context",
    "default_length",
    "infill_canvas",
    "load",
    "preset_settings",
    "puzzle_canvas",
    "resolve",
    "steps_for",
    "suffix_canvas",
    "text_canvas",
]
