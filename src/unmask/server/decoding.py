"""The server's side of resolving a request: the engine's resolver, errors in the request's names.

Every decoding decision (defaults, presets, steps, blocks, which algorithm runs) is made once in
`unmask.engine.resolve`; this module only maps its errors to 400s that name the field the way
the route spells it (`max_tokens` on OpenAI routes where the options say `max_new_tokens`).
"""

from __future__ import annotations

from pydantic import ValidationError

from ..engine import Canvas, RequestError, check_context, resolve
from ..options import GenerationOptions
from .errors import from_options_error, invalid
from .limits import Limits


def resolve_options(
    model,
    requested: dict,
    limits: Limits,
    renames: dict[str, str] | None = None,
    canvas: Canvas | None = None,
    preset: str | None = None,
) -> GenerationOptions:
    """Validated options for `model`; requested holds the fields the client set, by options name."""
    try:
        return resolve(model, requested, preset, limits, canvas)
    except (ValidationError, ValueError) as err:
        raise from_options_error(err, renames) from None


def fits_context(model, prompt_tokens: int, region_tokens: int, context: int, prompt_field: str, length_field: str):
    """Prompt plus canvas must fit the model's context and `context` (the server's limit)."""
    try:
        check_context(model, prompt_tokens, region_tokens, context, prompt_field, length_field)
    except RequestError as err:
        raise invalid(err.field, str(err).split(": ", 1)[-1], code="context_length_exceeded") from None
