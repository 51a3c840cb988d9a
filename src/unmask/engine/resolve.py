"""One resolver: what a request's decoding fields mean for one model, decided once for every surface.

Notable features:
- Precedence, lowest first: the schema's defaults, the family's (which algorithm ranks), the
  checkpoint's shipped defaults (the "unmask" section of generation_config.json), a preset
  (fast / balanced / best, defined here only), then what the caller set. The CLI, the OpenAI and
  native routes, the studio (through the server) and the benchmarks all call `resolve`, so the
  same request gives the same options, passes and text everywhere (tests/test_parity.py).
- The algorithm that will really run is filled in before validation. Threshold decoding needs a
  confidence score: when a threshold or factor is set and the algorithm was not, the family's
  confidence ranking runs (Dream's `entropy` can never reach 0.9, so it would commit one token
  a pass). A shipped `remask` gives way to a threshold or factor for the same reason.
- Steps follow the shipped steps-per-token ratio when only the length changes (128 tokens in 64
  steps -> 33 tokens in 17), measured against the positions to fill, rounded *up* to whole steps
  per block; a shipped block length that does not divide the length, or a canvas that fixes its
  own length (infill, a puzzle), gives one block.
- Errors are `RequestError`s (or pydantic's) whose message starts with the options field name;
  each surface renames the field to its own spelling once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol

from ..options import GenerationOptions
from ..sampling import (
    BLOCK_FAMILIES,
    DEFAULT_ALGORITHM,
    THRESHOLD_ALGORITHM,
    THRESHOLD_ALGORITHMS,
    Plan,
    make_block_plan,
    make_plan,
)
from .canvas import Canvas, RequestError

PRESETS = ("fast", "balanced", "best")
PRESET_HELP = {
    "fast": "at most a quarter of the steps: each commits its share, or every token above 90% confidence",
    "balanced": "half the steps: two tokens per step",
    "best": "one step per token",
}
FAST_THRESHOLD = 0.9  # Fast-dLLM's confidence threshold (arXiv:2505.22618, Sec. 4)
STEP_FRACTION = {"fast": 0.25, "balanced": 0.5, "best": 1.0}
FAMILY_BLOCK = {"llada2": 32}  # block length of families whose config names none
# The cache each block family's reference uses: SDAR and Fast-dLLM v2 keep finished blocks' keys
# and values; LLaDA2Pipeline re-runs the whole window every pass.
BLOCK_CACHE = {"sdar": "prefix", "llada2": "none", "fast-dllm-v2": "prefix", "diffusion-gemma": "prefix"}
OPTION_FIELDS = frozenset(GenerationOptions.model_fields)
SCHEMA_LENGTH = GenerationOptions.model_fields["max_new_tokens"].default


class Limits(Protocol):
    """The bounds a deployment sets (the server's `Limits`); None on the CLI and in Python."""

    max_tokens: int
    steps: int


def steps_for(positions: int, fraction: float, blocks: int) -> int:
    """`fraction` of a step per position to fill, rounded up to a whole number of steps per block."""
    wanted = max(1, math.ceil(positions * fraction))
    return max(blocks, math.ceil(wanted / blocks) * blocks)


def preset_settings(preset: str, positions: int, blocks: int) -> dict:
    """The options a preset sets for `positions` to fill in `blocks` blocks."""
    out: dict = {"steps": steps_for(positions, STEP_FRACTION[preset], blocks)}
    if preset == "fast":
        # Outside the fast-dllm recipe a threshold commits each step's share or everything above
        # it, whichever is more (SDAR's dynamic rule): the preset's steps bound its passes.
        out["threshold"] = FAST_THRESHOLD
        if blocks > 1:
            out["cache"] = "dual"  # Fast-dLLM's dual cache needs blocks to cache around
    return out


def resolve(
    model,
    requested: Mapping,
    preset: str | None = None,
    limits: Limits | None = None,
    canvas: Canvas | None = None,
) -> GenerationOptions:
    """Validated options for one generation on `model`.

    requested: the fields the caller set, by options name (None = not set).
    canvas: what is denoised; it fixes the length for infill and puzzles, and sets the end-token
    default (a plain continuation stops at its end token; several gaps or a board do not).
    """
    asked = {k: v for k, v in requested.items() if v is not None}
    unknown = sorted(set(asked) - OPTION_FIELDS)
    if unknown:
        raise RequestError(unknown[0], "unknown decoding option")
    if preset is not None and preset not in PRESETS:
        raise RequestError("preset", f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if model.family == "diffusion-gemma" and canvas is not None and canvas.region is not None:
        # Uniform-state: every pass may rewrite every position, so text fixed in the region is not kept.
        raise RequestError(
            "template", "DiffusionGemma rewrites its whole canvas; it cannot fill gaps between fixed text"
        )
    shipped = {k: v for k, v in model.defaults.items() if k in OPTION_FIELDS and v is not None}
    length = _length(shipped, asked, limits, canvas)
    positions = canvas.masked(model.ids.mask, length) if canvas is not None else length
    fields = dict(shipped)
    block = asked.get("block_length")
    aligned = model.family in BLOCK_FAMILIES  # blocks tile the whole canvas, any length fits
    if block is None and (aligned or canvas is None or canvas.fixed_length is None):
        block = shipped.get("block_length") or (block_size(model) if aligned else None)
        if block and length % block and not aligned:
            block = None  # the shipped block does not fit this length: one block
    fields["block_length"] = block
    blocks = math.ceil(length / block) if aligned else length // (block or length) or 1
    if preset is not None:
        chosen = preset_settings(preset, positions, blocks)
        if aligned:
            chosen.pop("cache", None)  # block diffusion caches finished blocks exactly anyway
        if model.family == "diffusion-gemma":
            chosen.pop("threshold", None)  # its passes stop by themselves once stable and confident
        if "factor" in asked:
            chosen.pop("threshold", None)  # the caller's factor decides the commits instead
        fields |= chosen
    elif "steps" not in asked:
        ratio = shipped["steps"] / shipped["max_new_tokens"] if {"steps", "max_new_tokens"} <= shipped.keys() else 1
        fields["steps"] = steps_for(positions, ratio, blocks)
    if "steps" not in asked and limits is not None and fields["steps"] > limits.steps:
        fields["steps"] = max(blocks, limits.steps // blocks * blocks)
    if aligned:
        # The product decodes block families with an exact cache of finished blocks (the
        # block-causal attention they were trained with) and without SDAR's overwrite quirk.
        fields.setdefault("recipe", "unmask")
        fields.setdefault("cache", "prefix")
    if asked.get("algorithm") not in (None, *THRESHOLD_ALGORITHMS) and "threshold" not in asked:
        fields.pop("threshold", None)  # a shipped threshold gives way to an asked ranking that has no confidence
    fields |= asked
    fields["max_new_tokens"] = length
    if not aligned and isinstance(fields.get("steps"), int) and fields["steps"] > 0:
        # LLaDA's semi-autoregressive blocks take equal steps each (its generate() asserts it):
        # steps that are not whole steps per block round up, as block families round theirs.
        fields["steps"] = max(blocks, math.ceil(fields["steps"] / blocks) * blocks)
    if fields.get("threshold") is not None or fields.get("factor") is not None:
        if "remask" not in asked:
            fields.pop("remask", None)  # remask needs a step count per pass
        if "algorithm" not in asked and fields.get("algorithm") not in THRESHOLD_ALGORITHMS:
            fields["algorithm"] = THRESHOLD_ALGORITHM[model.family]
    fields.setdefault("algorithm", DEFAULT_ALGORITHM[model.family])
    if "stop_at_eos" not in asked:
        fields["stop_at_eos"] = canvas is None or not canvas.puzzle and canvas.gaps <= 1
    options = GenerationOptions(**fields)
    plan_for(model.family, options, block_size(model))
    if limits is not None and options.total_steps > limits.steps:
        raise RequestError("steps", f"at most {limits.steps} steps on this server, got {options.total_steps}")
    return options


def default_length(model, limits: Limits | None = None) -> int:
    """New tokens when a request does not say: the model's shipped length, within the limit."""
    return _length({k: v for k, v in model.defaults.items() if k in OPTION_FIELDS}, {}, limits, None)


def _length(shipped: dict, asked: dict, limits: Limits | None, canvas: Canvas | None) -> int:
    cap = limits.max_tokens if limits is not None else None
    requested = asked.get("max_new_tokens")
    if requested is not None and (not isinstance(requested, int) or requested < 1):
        raise RequestError("max_new_tokens", f"must be a whole number of tokens, at least 1; got {requested!r}")
    if requested is not None and cap is not None and requested > cap:
        raise RequestError("max_new_tokens", f"at most {cap} tokens on this server, got {requested}")
    fixed = canvas.fixed_length if canvas is not None else None
    if fixed is not None:
        if requested is not None and requested != fixed:
            what = "puzzle" if canvas.puzzle else "template"
            raise RequestError("max_new_tokens", f"the {what} fixes the length at {fixed} tokens; leave it out")
        return fixed
    if requested is not None:
        return requested
    length = shipped.get("max_new_tokens", SCHEMA_LENGTH)
    return min(length, cap) if cap is not None else length


def plan_for(family: str, options: GenerationOptions, block_size: int | None = None) -> Plan:
    """The sampler's frozen plan for validated options; block_size: the checkpoint's block (block
    diffusion families), used when the options set none."""
    if family in BLOCK_FAMILIES:
        return block_plan(family, options, block_size)
    blocks = options.num_blocks
    if options.block_length is not None and options.max_new_tokens % options.block_length:
        raise RequestError(
            "block_length", f"{options.block_length} must divide max_new_tokens ({options.max_new_tokens})"
        )
    if options.total_steps % blocks:
        raise RequestError("steps", f"{options.total_steps} must be a multiple of the number of blocks ({blocks})")
    if options.cfg_scale > 0 and options.cache not in (None, "none"):
        raise RequestError("cache", "classifier-free guidance (cfg_scale > 0) needs cache='none'")
    if options.threshold is not None and options.threshold > 1:
        raise RequestError("threshold", f"{family} takes a confidence threshold of at most 1, got {options.threshold}")
    for name in ("steps_per_block", "edit_threshold", "max_post_steps", "min_commit", "sub_block_length"):
        if getattr(options, name) is not None:
            raise RequestError(name, f"only block diffusion families use it; {family} decodes the whole canvas")
    return make_plan(
        family,
        total_steps=options.total_steps,
        num_blocks=options.num_blocks,
        algorithm=options.algorithm,
        recipe=options.recipe,
        threshold=options.threshold,
        factor=options.factor,
        cache=options.cache or "none",
        block_length=options.block_length,
        temperature=options.temperature,
        top_p=options.top_p,
        top_k=options.top_k,
        alg_temp=options.alg_temp,
        eps=options.eps,
        cfg_scale=options.cfg_scale,
        spread=options.spread,
        remask=options.remask,
        stop_at_eos=options.stop_at_eos,
    )


def block_size(model) -> int | None:
    """The block a block diffusion checkpoint was trained with: SDAR's `block_size`, Fast-dLLM v2's
    `bd_size`; LLaDA2 ships none and decodes in blocks of 32 (its pipeline's default)."""
    config = getattr(model, "config", None) or {}
    # SDAR's block_size, Fast-dLLM v2's bd_size, DiffusionGemma's canvas_length
    size = config.get("block_size") or config.get("bd_size") or config.get("canvas_length")
    return int(size) if size else FAMILY_BLOCK.get(model.family)


def block_plan(family: str, options: GenerationOptions, block_size: int | None) -> Plan:
    """Block diffusion: steps are counted per block (the references' `denoising_steps`,
    `num_inference_steps`); a total `steps` is spread over the blocks the new tokens span."""
    block = options.block_length or block_size
    if not block:
        raise RequestError("block_length", f"{family} needs a block length and the checkpoint names none")
    blocks = math.ceil(options.max_new_tokens / block)
    per_block = options.steps_per_block
    if per_block is None:
        per_block = math.ceil(options.steps / blocks) if options.steps is not None else block
    try:
        return _block_plan(family, options, block, per_block, blocks)
    except RequestError:
        raise
    except ValueError as err:  # the plan names the field first ("field: why"): keep it a RequestError
        name, _, why = str(err).partition(": ")
        raise RequestError(name, why) from None


def _block_plan(family: str, options: GenerationOptions, block: int, per_block: int, blocks: int) -> Plan:
    return make_block_plan(
        family,
        block_length=block,
        steps_per_block=per_block,
        blocks=blocks,
        algorithm=options.algorithm,
        recipe=options.recipe,
        threshold=options.threshold,
        edit_threshold=options.edit_threshold,
        max_post_steps=options.max_post_steps,
        min_commit=options.min_commit,
        sub_block_length=options.sub_block_length,
        cache=options.cache or BLOCK_CACHE[family],
        temperature=options.temperature,
        top_p=options.top_p,
        top_k=options.top_k,
        cfg_scale=options.cfg_scale,
        factor=options.factor,
        remask=options.remask,
        alg_temp=options.alg_temp,
        spread=options.spread,
        stop_at_eos=options.stop_at_eos,
    )


def check_context(
    model,
    prompt_tokens: int,
    region_tokens: int,
    context: int | None = None,
    prompt_field: str = "prompt",
    length_field: str = "max_new_tokens",
) -> None:
    """Prompt plus canvas must fit the model's context (and a deployment's, when it sets one)."""
    window = min(model.context_length, context) if context else model.context_length
    if prompt_tokens > window:
        raise RequestError(prompt_field, f"{prompt_tokens} prompt tokens exceed the context of {window} tokens")
    if prompt_tokens + region_tokens > window:
        raise RequestError(
            length_field,
            f"{prompt_tokens} prompt tokens + {region_tokens} new tokens exceed the context of {window} tokens",
        )


__all__ = [
    "FAST_THRESHOLD",
    "PRESETS",
    "PRESET_HELP",
    "Limits",
    "block_size",
    "check_context",
    "default_length",
    "plan_for",
    "preset_settings",
    "resolve",
    "steps_for",
]
