"""Request bodies: the OpenAI chat and completion requests, and the native `/api/diffuse`.

Notable features:
- The decoding fields are not restated: they are copied from `GenerationOptions` (type, bounds,
  description), made optional, so the API, the CLI and the studio share one schema. `None`
  means "the model's default" (its generation_config "unmask" section, then the schema's).
- `extra="forbid"` everywhere: a misspelt field is a 400 naming it, never silently ignored.
- OpenAI fields unmask does not implement are declared too, so clients that always send them
  keep working; `compat.py` decides which values are harmless and which are refused.
- Static bounds (stop count, message count) live in the schema, so they appear in
  /openapi.json; bounds a deployment may tighten (max_tokens, steps, n) are checked per app.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from ..options import MAX_NEW_TOKENS, MAX_TEMPERATURE, GenerationOptions
from .limits import MAX_CHOICES, MAX_GAPS, MAX_MESSAGES, MAX_MODEL_NAME, MAX_PROMPTS, MAX_STOP, MAX_STOP_CHARS

# The diffusion knobs OpenAI routes accept as extra body fields (the openai SDK's `extra_body`).
DIFFUSION_FIELDS = (
    "steps",
    "block_length",
    "algorithm",
    "threshold",
    "factor",
    "cache",
    "recipe",
    "alg_temp",
    "top_k",
    "cfg_scale",
    "eps",
    "spread",
    "remask",
)
# What the native endpoint takes from GenerationOptions (history is a Python-API feature).
NATIVE_OPTION_FIELDS = tuple(n for n in GenerationOptions.model_fields if n != "history")


def optional_option(name: str) -> tuple[Any, Any]:
    """GenerationOptions.<name> as an optional request field with the same bounds."""
    source = GenerationOptions.model_fields[name]
    bounds = {}
    for item in source.metadata:
        for key in ("ge", "gt", "le", "lt"):
            if getattr(item, key, None) is not None:
                bounds[key] = getattr(item, key)
    return Optional[source.annotation], Field(None, description=source.description, **bounds)


# extra="forbid": a misspelt field is a 400 naming it. strict: no coercion, so "8" is not 8 and
# "yes" is not true (a client with a bug is told, not guessed at).
FORBID = ConfigDict(extra="forbid", strict=True)


def lone_surrogates(value, path: str = "") -> str | None:
    """The path of the first string holding a lone UTF-16 surrogate ('a\\ud800b', which
    JavaScript clients send for text cut mid-emoji), or None; such text cannot be encoded."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "body"
        return None
    if isinstance(value, dict):
        items = ((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for where, item in items:
        found = lone_surrogates(item, where)
        if found:
            return found
    return None


class TextChecked(BaseModel):
    """A request body whose every string must be encodable text (checked before the fields)."""

    model_config = FORBID

    @model_validator(mode="before")
    @classmethod
    def _encodable(cls, data):
        where = lone_surrogates(data)
        if where:
            raise ValueError(f"{where}: contains a lone UTF-16 surrogate, which is not text; send valid UTF-8")
        return data


DiffusionFields = create_model(
    "DiffusionFields", __base__=TextChecked, **{name: optional_option(name) for name in DIFFUSION_FIELDS}
)

ModelName = Optional[str]


def _model_field():
    return Field(None, max_length=MAX_MODEL_NAME, description="Model name (see /v1/models); default: the server's.")


StopString = Annotated[str, Field(min_length=1, max_length=MAX_STOP_CHARS)]
StopField = Optional[StopString | Annotated[list[StopString], Field(max_length=MAX_STOP)]]


class StreamOptions(BaseModel):
    model_config = FORBID
    include_usage: bool | None = Field(None, description="Send a last chunk with usage (choices empty).")
    include_obfuscation: bool | None = Field(None, description="Accepted and ignored (no obfuscation padding).")


class ContentPart(BaseModel):
    """One part of a message's content; only text parts can be used."""

    model_config = FORBID
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = FORBID
    role: Literal["system", "developer", "user", "assistant"] = Field(
        ..., description="developer is treated as system; tool messages are refused (no tool calling)."
    )
    content: str | list[ContentPart] | None = None
    name: str | None = Field(None, max_length=256, description="Accepted and ignored.")
    tool_calls: list[dict] | None = Field(None, max_length=0, description="Only an empty list (no tool calling).")
    refusal: str | None = Field(None, description="Accepted and ignored.")


class OpenAICommon(DiffusionFields):
    """Fields shared by /v1/chat/completions and /v1/completions."""

    model_config = FORBID
    model: ModelName = _model_field()
    max_tokens: int | None = Field(
        None, ge=1, le=MAX_NEW_TOKENS, description="Tokens to generate (the canvas length); default: the model's."
    )
    temperature: float | None = Field(None, ge=0.0, le=MAX_TEMPERATURE)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    n: int | None = Field(None, ge=1, le=MAX_CHOICES, description="Choices; choice i uses seed + i.")
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    stop: StopField = Field(None, description=f"Up to {MAX_STOP} strings; the text is cut before the first one.")
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    preset: Literal["fast", "balanced", "best"] | None = Field(
        None, description="Decoding preset (the CLI's --fast/--balanced/--best); diffusion fields set beside it win."
    )
    # Declared so clients that always send them work; compat.py checks their values.
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0, description="Only 0: no repetition penalties.")
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0, description="Only 0: no repetition penalties.")
    logit_bias: dict[str, float] | None = Field(None, description="Only {}: not supported.")
    user: str | None = Field(None, max_length=256, description="Accepted and ignored.")


class ChatCompletionRequest(OpenAICommon):
    model_config = FORBID
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=MAX_MESSAGES)
    max_completion_tokens: int | None = Field(
        None, ge=1, le=MAX_NEW_TOKENS, description="Same as max_tokens (OpenAI's newer name)."
    )
    logprobs: bool | None = Field(None, description="Only false: log probabilities are not returned.")
    top_logprobs: int | None = Field(None, ge=0, le=20, description="Only 0.")
    response_format: dict[str, Any] | None = Field(None, description='Only {"type": "text"}.')
    tools: list[dict[str, Any]] | None = Field(None, description="Only []: no tool calling.")
    tool_choice: str | dict[str, Any] | None = Field(None, description='Only "none" or "auto" (no tools).')
    parallel_tool_calls: bool | None = Field(None, description="Accepted and ignored.")
    functions: list[dict[str, Any]] | None = Field(None, description="Only []: no function calling.")
    function_call: str | dict[str, Any] | None = Field(None, description='Only "none" or "auto".')
    modalities: list[str] | None = Field(None, description='Only ["text"].')
    audio: dict[str, Any] | None = Field(None, description="Only null: no audio output.")
    prediction: dict[str, Any] | None = Field(None, description="Only null: no predicted outputs.")
    web_search_options: dict[str, Any] | None = Field(None, description="Only null: no web search.")
    reasoning_effort: str | None = Field(None, max_length=32, description="Accepted and ignored.")
    verbosity: str | None = Field(None, max_length=32, description="Accepted and ignored.")
    store: bool | None = Field(None, description="Accepted and ignored: nothing is stored.")
    metadata: dict[str, str] | None = Field(None, description="Accepted and ignored.")
    service_tier: str | None = Field(None, max_length=32, description="Accepted and ignored.")
    safety_identifier: str | None = Field(None, max_length=256, description="Accepted and ignored.")
    prompt_cache_key: str | None = Field(None, max_length=256, description="Accepted and ignored.")


TokenId = Annotated[int, Field(ge=0)]
PromptField = (
    str
    | Annotated[list[str], Field(min_length=1, max_length=MAX_PROMPTS)]
    | Annotated[list[TokenId], Field(min_length=1)]
    | Annotated[list[Annotated[list[TokenId], Field(min_length=1)]], Field(min_length=1, max_length=MAX_PROMPTS)]
)


class CompletionRequest(OpenAICommon):
    model_config = FORBID
    prompt: PromptField = Field(
        ..., description=f"Text, token ids, or a list of up to {MAX_PROMPTS} of either (one choice set each)."
    )
    suffix: str | None = Field(None, description="Text after the completion: infilling, a gap of max_tokens tokens.")
    echo: bool | None = Field(None, description="Prepend the prompt to the text.")
    logprobs: int | None = Field(None, ge=0, le=5, description="Only 0: log probabilities are not returned.")
    best_of: int | None = Field(None, ge=1, le=MAX_CHOICES, description="Only equal to n: candidates are not ranked.")


GenerateOptionFields = create_model(
    "GenerateOptionFields", __base__=TextChecked, **{name: optional_option(name) for name in NATIVE_OPTION_FIELDS}
)


class DiffuseRequest(GenerateOptionFields):
    """POST /api/diffuse: one of prompt, messages, template (optionally after prompt or messages),
    or puzzle, and any GenerationOptions field."""

    model_config = FORBID
    model: ModelName = _model_field()
    prompt: str | None = Field(None, description="Plain text to continue.")
    messages: list[ChatMessage] | None = Field(None, min_length=1, max_length=MAX_MESSAGES)
    template: str | None = Field(
        None, description=f"Infill template: fixed text with up to {MAX_GAPS} gaps written {{{{N}}}} (N masked tokens)."
    )
    puzzle: str | None = Field(None, max_length=1024, description="Sudoku (81 cells, 0 or . blank) for a grid model.")
    preset: Literal["fast", "balanced", "best"] | None = Field(
        None, description="Decoding preset (the CLI's --fast/--balanced/--best); fields set beside it win."
    )
    stream: bool = Field(True, description="SSE with start, step and done events; false: one JSON.")


class ResolveRequest(GenerateOptionFields):
    """POST /api/resolve: what these decoding fields resolve to on a model (nothing generated)."""

    model_config = FORBID
    model: ModelName = _model_field()
    preset: Literal["fast", "balanced", "best"] | None = Field(None, description="Decoding preset.")
    template: str | None = Field(None, description="An infill template, when the length is the template's.")


class StopRequest(BaseModel):
    """POST /api/stop: unload a model."""

    model_config = FORBID
    model: ModelName = _model_field()
