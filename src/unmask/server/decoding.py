"""From a request's decoding fields to validated `GenerationOptions` for one model.

Notable features:
- Defaults come from the model's generation_config "unmask" section, then the schema's own.
  When a request changes the length but not the steps, the model's tokens-per-step ratio is
  kept (128 tokens in 64 steps -> 16 tokens in 8), and a default block length that does not
  divide the new length is dropped (one block) instead of failing a request that never set it.
- A temperature too small to divide by safely is greedy decoding, its limit.
- Everything is checked before the request reaches the engine: the options schema (bounds,
  cross-field rules), the sampler plan (e.g. `origin` only with Dream's schedule), the server's
  own limits and the model's context. Errors name the request's field, so an OpenAI route
  reports `max_tokens` where the options say `max_new_tokens`.
"""

from __future__ import annotations

import math

from pydantic import ValidationError

from ..options import GenerationOptions, yield_to_requested
from ..sampling import plan
from .errors import from_options_error, invalid
from .limits import Limits

OPTION_FIELDS = frozenset(GenerationOptions.model_fields) - {"history"}
SCHEMA_MAX_NEW_TOKENS = GenerationOptions.model_fields["max_new_tokens"].default


def model_defaults(model) -> dict:
    """The model's shipped decoding defaults that are request options."""
    return {k: v for k, v in model.defaults.items() if k in OPTION_FIELDS}


def default_length(model, limits: Limits) -> int:
    """New tokens when a request does not say: the model's default, within the server's limit."""
    return min(model_defaults(model).get("max_new_tokens", SCHEMA_MAX_NEW_TOKENS), limits.max_tokens)


def resolve_options(
    model,
    requested: dict,
    limits: Limits,
    renames: dict[str, str] | None = None,
    region_length: int | None = None,
) -> GenerationOptions:
    """Validated options for `model`.

    requested: the decoding fields the client set (None values dropped), by options name.
    region_length: the canvas length when the request fixes it (infill, a puzzle).
    """
    renames = renames or {}
    requested = {k: v for k, v in requested.items() if v is not None}
    defaults = yield_to_requested(model_defaults(model), requested)
    asked = requested.get("max_new_tokens")
    if asked is not None and asked > limits.max_tokens:
        name = renames.get("max_new_tokens", "max_new_tokens")
        raise invalid(name, f"at most {limits.max_tokens} tokens on this server, got {asked}")
    if region_length is not None:
        length = region_length
    elif asked is not None:
        length = asked
    else:
        length = default_length(model, limits)
    fields = dict(defaults)
    if "steps" not in requested and fields.get("steps") and fields.get("max_new_tokens"):
        fields["steps"] = max(1, math.ceil(length * fields["steps"] / fields["max_new_tokens"]))
    block = requested.get("block_length", fields.get("block_length"))
    if "block_length" not in requested and block and length % block:
        fields.pop("block_length")
        block = None
    if "steps" not in requested:
        # A multiple of the block count, within the server's step limit.
        blocks = length // (block or length) or 1
        steps = math.ceil((fields.get("steps") or length) / blocks) * blocks
        cap = max(blocks, limits.steps // blocks * blocks)
        if fields.get("steps") or steps > cap:
            fields["steps"] = min(steps, cap)
    fields |= requested
    fields["max_new_tokens"] = length
    try:
        options = GenerationOptions(**fields)
        plan(model.family, options)
    except (ValidationError, ValueError) as err:
        raise from_options_error(err, renames) from None
    if options.total_steps > limits.steps:
        raise invalid("steps", f"at most {limits.steps} steps on this server, got {options.total_steps}")
    return options


def check_context(
    model, prompt_tokens: int, region_tokens: int, limits: Limits, prompt_field: str, length_field: str
) -> None:
    """Prompt plus canvas must fit the model's context and the server's limit."""
    context = min(model.context_length, limits.context)
    if prompt_tokens > context:
        raise invalid(
            prompt_field,
            f"{prompt_tokens} prompt tokens exceed the context of {context} tokens",
            code="context_length_exceeded",
        )
    if prompt_tokens + region_tokens > context:
        raise invalid(
            length_field,
            f"{prompt_tokens} prompt tokens + {region_tokens} new tokens exceed the context of {context} tokens",
            code="context_length_exceeded",
        )
