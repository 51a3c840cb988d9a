"""What every route answers, as schemas: /openapi.json documents them and schemathesis checks
every response against them (tests/server/test_schemathesis.py).

Notable features:
- One table, `ROUTES`, says per operation: the 200 body's model, the media type of its stream
  (when `stream` may be set), its error shape (OpenAI's or Ollama's) and the statuses it can send.
  `document(schema)` writes it into the generated schema and drops FastAPI's 422, which this
  server never sends (validation errors are 400s naming the field).
- Models list the fields clients rely on and allow more (`extra="allow"`): a field added to an
  answer is not a break, a field missing or of the wrong type is.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# -- errors ------------------------------------------------------------------------------------


class ErrorDetail(Open):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(Open):
    """Every error on the OpenAI and native routes."""

    error: ErrorDetail


class OllamaError(Open):
    """Every error on Ollama's routes."""

    error: str


# -- OpenAI ------------------------------------------------------------------------------------


class Usage(Open):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Timings(Open):
    """llama.cpp-style figures per choice: passes, planned passes, denoising time."""

    elapsed: float
    nfe: int
    planned_passes: int
    tokens_per_second: float
    batch_size: int


class ModelCard(Open):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(Open):
    object: Literal["list"]
    data: list[ModelCard]


class CompletionChoice(Open):
    text: str
    index: int
    logprobs: None
    finish_reason: Literal["stop", "length"] | None


class TextCompletion(Open):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage
    timings: list[Timings]


class AssistantMessage(Open):
    role: Literal["assistant"]
    content: str
    refusal: None


class ChatChoice(Open):
    index: int
    message: AssistantMessage
    logprobs: None
    finish_reason: Literal["stop", "length"] | None


class ChatCompletion(Open):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    timings: list[Timings]


# -- native ------------------------------------------------------------------------------------


class Health(Open):
    status: Literal["ok", "stopping"]
    in_flight: int
    limits: dict[str, int]


class ServedModel(Open):
    name: str
    default: bool
    loaded: bool
    available: bool


class ServedModels(Open):
    models: list[ServedModel]


class Stopped(Open):
    model: str
    unloaded: bool


class Resolved(Open):
    model: str
    options: dict[str, Any]
    presets: dict[str, dict[str, Any] | None]
    blocks: int


class Diffused(Open):
    """/api/diffuse with `stream: false`; streamed, the same object is the `done` event's data."""

    id: str
    model: str
    text: str
    finish_reason: Literal["stop", "length"] | None
    usage: Usage
    timings: Timings
    region: list[int]


class Preview(Open):
    id: str
    url: str
    tab_url: str


# -- Ollama ------------------------------------------------------------------------------------


class OllamaDetails(Open):
    format: str
    family: str
    families: list[str]
    parameter_size: str
    quantization_level: str


class OllamaAnswer(Open):
    model: str
    created_at: str
    done: bool
    done_reason: str | None = None
    total_duration: int | None = None
    eval_count: int | None = None


class OllamaGenerated(OllamaAnswer):
    response: str


class OllamaMessage(Open):
    role: str
    content: str


class OllamaChatted(OllamaAnswer):
    message: OllamaMessage


class OllamaTag(Open):
    name: str
    model: str
    modified_at: str
    size: int
    digest: str
    details: OllamaDetails


class OllamaTags(Open):
    models: list[OllamaTag]


class OllamaShown(Open):
    modelfile: str
    parameters: str
    template: str
    details: OllamaDetails
    model_info: dict[str, Any]
    capabilities: list[str]


class OllamaVersion(Open):
    version: str


class OllamaRunning(Open):
    name: str
    model: str
    size: int
    size_vram: int
    digest: str
    details: OllamaDetails
    expires_at: str


class OllamaPs(Open):
    models: list[OllamaRunning]


class OllamaPulled(Open):
    status: str


# -- the table ---------------------------------------------------------------------------------

GUARDS = (401, 403, 408, 413)  # API key, Host/Origin, stalled body, body size: every protected POST
READ_GUARDS = (401, 403)  # a GET has no body to stall or to be too large
GENERATES = (400, 404, 429, 503)  # bad fields, unknown model, queue full, shutting down
STATUS_TEXT = {
    400: "Invalid request; the error names the field",
    401: "API key missing or wrong",
    403: "Host or Origin refused",
    404: "Unknown model (or one that is not loaded, for /api/stop)",
    408: "The request body stalled",
    413: "The request body is too large",
    429: "Queue full (Retry-After)",
    502: "The hub could not be reached",
    503: "Starting or shutting down (Retry-After)",
}

# (method, path) -> (200 model, stream media type or None, Ollama's error shape, error statuses)
ROUTES: dict[tuple[str, str], tuple[type[BaseModel], str | None, bool, tuple[int, ...]]] = {
    ("get", "/health"): (Health, None, False, (403,)),  # public, but behind the Host check
    ("get", "/v1/models"): (ModelList, None, False, READ_GUARDS),
    ("get", "/v1/models/{model_id}"): (ModelCard, None, False, (*READ_GUARDS, 404)),
    ("post", "/v1/completions"): (TextCompletion, "text/event-stream", False, GUARDS + GENERATES),
    ("post", "/v1/chat/completions"): (ChatCompletion, "text/event-stream", False, GUARDS + GENERATES),
    ("get", "/api/models"): (ServedModels, None, False, READ_GUARDS),
    ("post", "/api/stop"): (Stopped, None, False, (*GUARDS, 400, 404, 503)),
    ("post", "/api/resolve"): (Resolved, None, False, GUARDS + GENERATES),
    ("post", "/api/diffuse"): (Diffused, "text/event-stream", False, GUARDS + GENERATES),
    ("post", "/api/preview"): (Preview, None, False, (*GUARDS, 400)),
    ("post", "/api/generate"): (OllamaGenerated, "application/x-ndjson", True, GUARDS + GENERATES),
    ("post", "/api/chat"): (OllamaChatted, "application/x-ndjson", True, GUARDS + GENERATES),
    ("get", "/api/tags"): (OllamaTags, None, True, READ_GUARDS),
    ("post", "/api/show"): (OllamaShown, None, True, (*GUARDS, 400, 404)),
    ("get", "/api/version"): (OllamaVersion, None, True, READ_GUARDS),
    ("get", "/api/ps"): (OllamaPs, None, True, (*READ_GUARDS, 503)),
    ("post", "/api/pull"): (OllamaPulled, "application/x-ndjson", True, (*GUARDS, 400, 403, 404, 409, 429, 502)),
}


# A stream's schema describes one item: an SSE event (its data JSON, or OpenAI's `[DONE]`), or one
# NDJSON line (an answer chunk, or an error object as the last line).
STREAM_SCHEMAS = {
    "text/event-stream": {
        "type": "object",
        "description": "with stream: server-sent events",
        "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
        "required": ["data"],
    },
    "application/x-ndjson": {
        "type": "object",
        "description": "with stream: NDJSON, an object a line",
    },
}


def ref(model: type[BaseModel], schema: dict) -> dict:
    """A $ref to `model`, adding it (and the models it uses) to the schema's components."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in generated.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault(model.__name__, generated)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def document(schema: dict) -> dict:
    """Write `ROUTES` into a generated OpenAPI schema: 200 bodies, stream media types, errors."""
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            route = ROUTES.get((method, path))
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)  # never sent: invalid fields are 400s naming the field
            if route is None:
                continue
            model, stream, ollama, statuses = route
            ok = responses.setdefault("200", {"description": "Successful Response"})
            ok["content"] = {"application/json": {"schema": ref(model, schema)}}
            if stream:
                ok["content"][stream] = {"schema": STREAM_SCHEMAS[stream]}
            error = ref(OllamaError if ollama else ErrorBody, schema)
            for status in statuses:
                responses[str(status)] = {
                    "description": STATUS_TEXT.get(status, "Error"),
                    "content": {"application/json": {"schema": error}},
                }
    return schema
