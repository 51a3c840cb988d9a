"""Ollama's API: `/api/generate`, `/api/chat`, `/api/tags`, `/api/show`, `/api/ps`, `/api/version`
(and `/api/pull`, in pull.py), so the official `ollama` client and the tools built on it work
unchanged.

Notable features:
- Ollama's documented request and response schemas, NDJSON streaming (one JSON object per line,
  the last with `done: true`, `done_reason` and the `*_duration` counters in nanoseconds) and its
  error shape, `{"error": "message"}` (errors.py picks it for these paths).
- Requests go through the same pipeline as every other surface: the engine's canvas, one
  `resolve` (Ollama's `options` carry `num_predict`, `temperature`, `top_p`, `top_k`, `seed`,
  `stop`, `num_ctx`, and every diffusion knob: `steps`, `algorithm`, `block_length`, `threshold`,
  `preset`, ...), and one `Completion`, whose settled text is what a stream sends.
- `/api/generate` applies the model's chat template to `prompt` (and `system`) unless `raw`, as
  Ollama does; `suffix` fills between prompt and suffix (the `insert` capability).
- Options Ollama clients send for llama.cpp's runtime (threads, GPU layers, batch, mmap) change
  nothing here and are accepted; sampling options unmask does not implement are accepted only
  at their neutral value, so a client never believes it got a repetition penalty it did not get.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from contextlib import aclosing
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator
from starlette.concurrency import run_in_threadpool

from .. import __version__, checkpoints
from ..engine import (
    Canvas,
    Completion,
    DoneEvent,
    RequestError,
    chat_or_prompt_ids,
    default_length,
    resolve,
    suffix_canvas,
    text_canvas,
)
from ..engine import Request as EngineRequest
from .compat import message_text
from .decoding import fits_context, resolve_options
from .errors import APIError, invalid
from .generation import events, guarded, submit_all
from .inputs import bound_text, require_tokenizer
from .limits import MAX_MESSAGES, MAX_MODEL_NAME, MAX_STOP, MAX_STOP_CHARS
from .schemas import DIFFUSION_FIELDS, ChatMessage, TextChecked, optional_option
from .state import server

router = APIRouter(tags=["ollama"])
NDJSON = "application/x-ndjson"
FORBID = ConfigDict(extra="forbid", strict=True)
# llama.cpp runtime settings Ollama clients pass through: nothing to do with diffusion decoding.
RUNTIME_OPTIONS = (
    "numa", "num_batch", "num_gpu", "main_gpu", "low_vram", "vocab_only", "use_mmap", "use_mlock",
    "num_thread", "num_keep", "f16_kv", "logits_all", "embedding_only",
)  # fmt: skip
# Sampling options unmask does not implement, with the value that means "off".
NEUTRAL = {
    "min_p": 0.0,
    "typical_p": 1.0,
    "repeat_last_n": None,
    "repeat_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "penalize_newline": None,
    "mirostat": 0,
    "mirostat_tau": None,
    "mirostat_eta": None,
    "tfs_z": 1.0,
}
DURATION = re.compile(r"^(-?\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)?$")
UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class OptionsBase(BaseModel):
    """Ollama's `options`; the diffusion knobs are added beside them below. Strict, as Ollama's own
    decoding is: `true` is not a token count."""

    model_config = FORBID
    num_predict: int | None = Field(None, ge=-2, description="New tokens; -1 or -2: the model's default length.")
    num_ctx: int | None = Field(None, ge=1, description="Context limit for prompt + canvas.")
    temperature: float | None = Field(None, ge=0.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0, description="0 = off, as Ollama.")
    seed: int | None = Field(None, ge=0)
    stop: list[str] | None = Field(None, max_length=MAX_STOP)
    preset: Literal["fast", "balanced", "best"] | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, value):
        if value is not None and any(not s or len(s) > MAX_STOP_CHARS for s in value):
            raise ValueError(f"stop strings hold 1 to {MAX_STOP_CHARS} characters")
        return value


Options = create_model(
    "OllamaOptions",
    __base__=OptionsBase,
    **{name: (Any, None) for name in (*RUNTIME_OPTIONS, *NEUTRAL)},
    **{name: optional_option(name) for name in DIFFUSION_FIELDS if name != "top_k"},
)


class Common(TextChecked):
    model_config = FORBID
    model: str = Field(..., min_length=1, max_length=MAX_MODEL_NAME)
    options: Options | None = None
    stream: bool = True
    keep_alive: int | float | str | None = Field(None, description="Seconds, or a duration like '5m'; 0 unloads.")
    format: str | dict | None = Field(None, description="Only empty: no JSON mode.")
    think: bool | str | None = Field(None, description="Only false: no thinking models.")


class GenerateBody(Common):
    prompt: str | None = None
    suffix: str | None = None
    system: str | None = None
    template: str | None = Field(None, description="Only empty: the model's own template is used.")
    raw: bool = False
    images: list[str] | None = Field(None, max_length=0, description="Only empty: text models.")
    context: list[int] | None = Field(None, max_length=0, description="Only empty: deprecated in Ollama.")


class OllamaMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str = ""
    images: list[str] | None = Field(None, max_length=0)
    tool_calls: list[dict] | None = Field(None, max_length=0)
    thinking: str | None = None


class ChatBody(Common):
    messages: list[OllamaMessage] = Field(default_factory=list, max_length=MAX_MESSAGES)
    tools: list[dict] | None = Field(None, max_length=0, description="Only empty: no tool calling.")


class ShowBody(TextChecked):
    model_config = FORBID
    model: str | None = Field(None, max_length=MAX_MODEL_NAME)
    name: str | None = Field(None, max_length=MAX_MODEL_NAME, description="Ollama's older spelling of model.")
    verbose: bool | None = None


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def loaded_frame(name: str, content: dict, reason: str) -> dict:
    """The answer to an empty request, which only loads (or, with keep_alive 0, unloads)."""
    return {"model": name, "created_at": now_iso(), **content, "done": True, "done_reason": reason}


def only_load(srv, name: str, body) -> str:
    """A request with nothing to generate: apply its keep_alive; the done_reason."""
    seconds = keep_alive_seconds(body.keep_alive)
    if seconds is not None:
        srv.running_engine.keep(name, seconds)
    return "unload" if seconds == 0 else "load"


def keep_alive_seconds(value) -> float | None:
    """Ollama's keep_alive: seconds, or a Go duration ('5m', '1h'); negative = forever."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise invalid("keep_alive", "a number of seconds or a duration like '5m'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        found = DURATION.match(value.strip())
        if not found:
            raise invalid("keep_alive", f"a number of seconds or a duration like '5m', got {value!r}")
        seconds = float(found.group(1)) * UNITS[found.group(2)]
    return float("inf") if seconds < 0 else seconds


def check_options(options: Options | None) -> dict:
    """The decoding fields an Ollama request sets, by GenerationOptions name."""
    if options is None:
        return {}
    for name, neutral in NEUTRAL.items():
        value = getattr(options, name)
        if value is not None and neutral is not None and value != neutral:
            raise invalid(f"options.{name}", f"not implemented for diffusion decoding; send {neutral} or leave it out")
    fields = {name: getattr(options, name) for name in DIFFUSION_FIELDS if name != "top_k"}
    fields |= {"temperature": options.temperature, "top_p": options.top_p, "seed": options.seed}
    fields["top_k"] = options.top_k or None
    if options.num_predict is not None and options.num_predict > 0:
        fields["max_new_tokens"] = options.num_predict
    elif options.num_predict == 0:
        raise invalid("options.num_predict", "at least 1 (or -1 for the model's default length)")
    return fields


def refuse_unsupported(body: Common) -> None:
    if body.format not in (None, ""):
        raise invalid("format", "JSON mode and schemas are not supported; leave format out")
    if body.think not in (None, False):
        raise invalid("think", "these models do not think aloud; leave think out")
    if isinstance(body, GenerateBody) and body.template:
        raise invalid("template", "a request cannot replace the model's template; leave template out")


def engine_model_name(srv, name: str) -> str:
    try:
        return srv.catalog.check(name)
    except APIError as err:
        raise APIError(404, f"model {name!r} not found, try `unmask pull {name}`", code="model_not_found") from err


class Answer:
    """One Ollama generation: submits, then streams NDJSON or answers once."""

    def __init__(self, srv, http: Request, name: str, model, canvas: Canvas, options, stops, chat: bool, t0, load):
        self.srv, self.http, self.name, self.model, self.canvas = srv, http, name, model, canvas
        self.options, self.chat, self.t0, self.load = options, chat, t0, load
        self.completion = Completion(model, canvas, options, stops, fixed_text=False)
        request = EngineRequest(name, canvas.prompt_ids, options, canvas.region)
        [self.handle] = submit_all(srv.running_engine, [request], srv.limits, "options.num_predict")

    def frame(self, text: str, done: bool) -> dict:
        body = {"model": self.name, "created_at": now_iso()}
        body |= {"message": {"role": "assistant", "content": text}} if self.chat else {"response": text}
        body["done"] = done
        if done:
            c = self.completion
            total = time.perf_counter() - self.t0
            body |= {
                "done_reason": c.finish_reason,
                "total_duration": int(total * 1e9),
                "load_duration": int(self.load * 1e9),
                "prompt_eval_count": c.prompt_tokens,
                "prompt_eval_duration": int((c.first_step or 0.0) * 1e9),
                "eval_count": c.completion_tokens,
                "eval_duration": int(c.elapsed * 1e9),
            }
        return body

    async def deltas(self):
        """Newly settled text, then the done frame."""
        c = self.completion
        async with aclosing(events(self.handle, self.http)) as stream:
            async for event in stream:
                if isinstance(event, DoneEvent):
                    if event.cancelled and not c.done:
                        raise APIError(503, "the server is shutting down", code="shutting_down")
                    delta = c.finish(event.region, event.nfe, event.elapsed)
                else:
                    delta = c.step(event)
                if delta:
                    yield self.frame(delta, False)
                if c.done:
                    yield self.frame("", True)
                    return

    async def respond(self, stream: bool):
        if stream:
            lines = (json.dumps(f, ensure_ascii=False) + "\n" async for f in self.deltas())
            frames = guarded(lines, lambda err: json.dumps({"error": err.message}) + "\n")
            return NDJSONStream(frames, self.handle)
        text, last = "", None
        try:
            async with aclosing(self.deltas()) as frames:
                async for frame in frames:
                    last = frame
                    text += (frame["message"]["content"] if self.chat else frame["response"]) or ""
        finally:
            self.handle.cancel()
        if last is None:
            raise APIError(400, "the client disconnected before the generation finished", code="client_disconnected")
        if self.chat:
            last["message"]["content"] = text
        else:
            last["response"] = text
        return JSONResponse(last)


class NDJSONStream(StreamingResponse):
    """An NDJSON response that cancels its engine request however it ends."""

    def __init__(self, lines, handle):
        super().__init__(lines, media_type=NDJSON, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.handle = handle

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.handle.cancel()


async def prepared(srv, body: Common):
    """(served name, model, load seconds) after the keep_alive and model checks."""
    refuse_unsupported(body)
    name = engine_model_name(srv, body.model)
    started = time.perf_counter()
    name, model = await srv.catalog.load(name)
    return name, model, time.perf_counter() - started


def after(srv, name: str, body: Common) -> None:
    """Apply keep_alive once the request is admitted: 0 unloads when its requests finish."""
    seconds = keep_alive_seconds(body.keep_alive)
    if seconds is not None:
        srv.running_engine.keep(name, seconds)


def ollama_options(srv, model, requested: dict, canvas: Canvas, body: Common, prompt_field: str):
    options = body.options
    preset = options.preset if options is not None else None
    resolved = resolve_options(model, requested, srv.limits, {"max_new_tokens": "options.num_predict"}, canvas, preset)
    ctx = options.num_ctx if options is not None else None
    context = min(ctx, srv.limits.context) if ctx else srv.limits.context
    fits_context(model, len(canvas.prompt_ids), resolved.max_new_tokens, context, prompt_field, "options.num_predict")
    return resolved


async def answered(request: Request, srv, body: Common, loaded: tuple, plan, requested: dict, chat: bool):
    """Plan the canvas off the event loop, submit it, apply keep_alive, and answer (NDJSON or whole)."""
    name, model, load, t0 = loaded
    canvas, options = await run_in_threadpool(plan, srv, model, body, requested)
    stops = body.options.stop if body.options is not None else None
    answer = Answer(srv, request, name, model, canvas, options, stops, chat, t0, load)
    after(srv, name, body)
    return await answer.respond(body.stream)


def generate_plan(srv, model, body: GenerateBody, requested: dict):
    """(canvas, options) for Ollama's generate (tokenizes: run it off the event loop)."""
    prompt = body.prompt or ""
    try:
        if model.chat and not body.raw:
            turns = [{"role": "system", "content": body.system}] if body.system else []
            base = Canvas(chat_or_prompt_ids(model, messages=[*turns, {"role": "user", "content": prompt}]))
        else:
            base = text_canvas(model, (body.system + "\n" if body.system and body.raw else "") + prompt)
    except (RequestError, ValueError) as err:
        raise invalid("prompt", str(err).split(": ", 1)[-1]) from None
    if body.suffix:
        gap = requested.pop("max_new_tokens", None) or default_length(model, srv.limits)
        canvas = suffix_canvas(model, base, gap, body.suffix)
    else:
        canvas = base
    return canvas, ollama_options(srv, model, requested, canvas, body, "prompt")


@router.post("/api/generate")
async def generate(body: GenerateBody, request: Request):
    """Ollama's generate: a prompt through the model's template (unless raw), streamed as NDJSON."""
    t0 = time.perf_counter()
    srv = server(request)
    name, model, load = await prepared(srv, body)
    requested = check_options(body.options)
    if not body.prompt and not body.suffix:
        # Ollama's way to load (or, with keep_alive 0, unload) a model: an empty prompt.
        return JSONResponse(loaded_frame(name, {"response": ""}, only_load(srv, name, body)))
    require_tokenizer(model, name)
    bound_text(srv.limits, "prompt", body.prompt, body.suffix, body.system)
    return await answered(request, srv, body, (name, model, load, t0), generate_plan, requested, chat=False)


def chat_plan(srv, model, body: ChatBody, requested: dict):
    """(canvas, options) for Ollama's chat (tokenizes: run it off the event loop)."""
    messages = message_text([ChatMessage(role=m.role, content=m.content) for m in body.messages])
    try:
        canvas = Canvas(chat_or_prompt_ids(model, messages=messages))
    except (RequestError, ValueError) as err:
        raise invalid("messages", str(err).split(": ", 1)[-1]) from None
    return canvas, ollama_options(srv, model, requested, canvas, body, "messages")


@router.post("/api/chat")
async def chat(body: ChatBody, request: Request):
    """Ollama's chat: the conversation through the model's template, streamed as NDJSON."""
    t0 = time.perf_counter()
    srv = server(request)
    name, model, load = await prepared(srv, body)
    requested = check_options(body.options)
    if not body.messages:
        empty = {"message": {"role": "assistant", "content": ""}}
        return JSONResponse(loaded_frame(name, empty, only_load(srv, name, body)))
    require_tokenizer(model, name)
    bound_text(srv.limits, "messages", *(m.content for m in body.messages))
    return await answered(request, srv, body, (name, model, load, t0), chat_plan, requested, chat=True)


def details(family: str | None, parameters: int | None, dtype: str | None) -> dict:
    return {
        "parent_model": "",
        "format": "safetensors",
        "family": family or "",
        "families": [family] if family else [],
        "parameter_size": parameter_size(parameters or 0),
        "quantization_level": dtype or "",
    }


def described(srv, name: str):
    try:
        return checkpoints.describe(checkpoints.folder_of(srv.catalog.reference(name)), name)
    except Exception:  # absent or unreadable: not listed
        return None


@router.get("/api/tags")
async def tags(request: Request) -> dict:
    """The models this server serves that are present here, as Ollama lists its local models."""
    from starlette.concurrency import run_in_threadpool

    srv = server(request)

    def listing():
        out = []
        for name in srv.catalog.names():
            info = described(srv, name)
            if info is None or not info.supported:
                continue
            modified = dt.datetime.fromtimestamp((info.folder / "config.json").stat().st_mtime, dt.timezone.utc)
            out.append(
                {
                    "name": name,
                    "model": name,
                    "modified_at": modified.isoformat(),
                    "size": info.size,
                    "digest": "",
                    "details": details(info.family, info.parameters, info.dtype),
                }
            )
        return out

    return {"models": await run_in_threadpool(listing)}


@router.post("/api/show")
async def show(body: ShowBody, request: Request) -> dict:
    """A model's details, parameters and template, as Ollama shows them."""
    from starlette.concurrency import run_in_threadpool

    srv = server(request)
    wanted = body.model or body.name
    if not wanted:
        raise invalid("model", "name a model")
    name = engine_model_name(srv, wanted)
    info = await run_in_threadpool(described, srv, name)
    if info is None or not info.supported:
        raise APIError(404, f"model {name!r} not found", code="model_not_found")
    defaults = resolve(info, {}).model_dump(exclude={"history"}, exclude_none=True)
    parameters = "\n".join(f"{k:<16}{json.dumps(v)}" for k, v in defaults.items())
    template = ""
    config = checkpoints.read_json_or_empty(info.folder / "tokenizer_config.json")
    if isinstance(config.get("chat_template"), str):
        template = config["chat_template"]
    capabilities = ["completion", "insert"]
    return {
        "modelfile": f"# unmask: {name}\nFROM {info.folder}\n"
        + "".join(f"PARAMETER {k} {json.dumps(v)}\n" for k, v in defaults.items()),
        "parameters": parameters,
        "template": template,
        "details": details(info.family, info.parameters, info.dtype),
        "model_info": {
            "general.architecture": info.family,
            "general.parameter_count": info.parameters,
            f"{info.family}.context_length": info.context_length,
        },
        "capabilities": capabilities,
        "modified_at": now_iso(),
    }


@router.get("/api/version")
async def version() -> dict:
    return {"version": __version__}


def weight_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.net.parameters())


def parameter_size(n: int) -> str:
    """7241732096 -> '7.2B', as Ollama writes it."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(n)


@router.get("/api/ps")
async def ps(request: Request) -> dict:
    """The loaded models, most recently used first; `expires_at` is when each unloads if idle."""
    engine = server(request).running_engine
    now = dt.datetime.now(dt.timezone.utc)
    models = []
    for name, model, left in sorted(engine.loaded(), key=lambda e: -e[2]):
        size = weight_bytes(model)
        expires = now + dt.timedelta(seconds=min(left, 10 * 365 * 86400))
        models.append(
            {
                "name": name,
                "model": name,
                "size": size,
                "size_vram": size if model.device.type != "cpu" else 0,
                "digest": "",
                "details": details(model.family, model.num_parameters, str(model.dtype).removeprefix("torch.")),
                "expires_at": expires.isoformat(),
            }
        )
    return {"models": models}
