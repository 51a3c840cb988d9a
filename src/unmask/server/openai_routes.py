"""OpenAI-compatible routes: /v1/models, /v1/chat/completions, /v1/completions.

Notable features:
- Shapes follow OpenAI exactly (ids, `object`, `created`, choices, usage, `data: [DONE]`,
  `stream_options.include_usage`), so the official SDKs and tools built on them work unchanged.
- Streams are append-only: a chunk carries text only once it can no longer change (the
  engine's `Completion`, which also builds the non-streamed answer, so both agree); the
  per-step canvas is on the native endpoint instead.
- Answers carry llama.cpp-style `timings` (passes, planned passes, denoising time) beside
  `usage`; the SDKs ignore fields they do not know.
- `/v1/completions` takes `suffix`, which diffusion fills naturally: the canvas is the prompt, a
  gap of `max_tokens` masks, then the suffix as fixed tokens.
- `n` choices (and several prompts) are separate engine requests with seeds seed + i;
  deterministic ones are batched by the engine into shared model passes.
"""

from __future__ import annotations

import time
import uuid
from contextlib import aclosing
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..engine import Canvas, Completion, DoneEvent, default_length, suffix_canvas, text_canvas
from ..engine import Request as EngineRequest
from ..options import GenerationOptions
from .catalog import CREATED
from .compat import CHAT_RULES, COMPLETION_RULES, check_best_of, message_text, refuse_unsupported
from .decoding import fits_context, resolve_options
from .errors import APIError, invalid
from .generation import events, guarded, merge, sse, sse_response, submit_all
from .inputs import bound_text, chat_prompt, require_tokenizer, token_prompt
from .schemas import DIFFUSION_FIELDS, ChatCompletionRequest, CompletionRequest, OpenAICommon
from .state import ServerState, server

router = APIRouter(tags=["OpenAI"])


@dataclass
class Job:
    """One choice: an engine request, and the canvas whose `Completion` becomes OpenAI text."""

    prompt_index: int
    canvas: Canvas
    options: GenerationOptions
    echo: str = ""


def model_card(name: str) -> dict:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": "unmask"}


@router.get("/v1/models")
async def list_models(request: Request) -> dict:
    return {"object": "list", "data": [model_card(n) for n in server(request).catalog.names()]}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> dict:
    return model_card(server(request).catalog.check(model_id))


def length_field(body: OpenAICommon) -> tuple[str, int | None]:
    newer = getattr(body, "max_completion_tokens", None)
    return ("max_completion_tokens", newer) if newer is not None else ("max_tokens", body.max_tokens)


def requested_options(body: OpenAICommon, length: int | None) -> dict:
    fields = {name: getattr(body, name) for name in DIFFUSION_FIELDS}
    fields |= {"temperature": body.temperature, "top_p": body.top_p, "seed": body.seed, "max_new_tokens": length}
    return fields


def choice_seeds(body: OpenAICommon, n: int) -> list[int | None]:
    return [None if body.seed is None else (body.seed + i) % 2**63 for i in range(n)]


def check_choices(srv: ServerState, count: int, field: str) -> None:
    if count > srv.limits.choices:
        raise invalid(field, f"at most {srv.limits.choices} choices per request on this server, got {count}")


def stops_of(body: OpenAICommon) -> list[str]:
    return [body.stop] if isinstance(body.stop, str) else list(body.stop or [])


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request):
    srv = server(request)
    refuse_unsupported(body, CHAT_RULES)
    n = body.n or 1
    check_choices(srv, n, "n")
    messages = message_text(body.messages)
    bound_text(srv.limits, "messages", *(m["content"] for m in messages))
    name, model = await srv.catalog.load(body.model)
    require_tokenizer(model, name)
    jobs = await run_in_threadpool(chat_jobs, srv, model, body, messages, n)
    return await respond(request, srv, model, name, jobs, body, chat=True)


def chat_jobs(srv: ServerState, model, body: ChatCompletionRequest, messages: list[dict], n: int) -> list[Job]:
    """The choices of a chat request (tokenizes: run it off the event loop)."""
    prompt_ids = chat_prompt(model, messages)
    field, length = length_field(body)
    canvas = Canvas(prompt_ids)
    requested = requested_options(body, length)
    options = resolve_options(model, requested, srv.limits, {"max_new_tokens": field}, canvas, body.preset)
    fits_context(model, len(prompt_ids), options.max_new_tokens, srv.limits.context, "messages", field)
    return [Job(0, canvas, options.model_copy(update={"seed": s})) for s in choice_seeds(body, n)]


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request):
    srv = server(request)
    refuse_unsupported(body, COMPLETION_RULES)
    n = body.n or 1
    check_best_of(body.best_of, n)
    prompts = prompt_list(body.prompt)
    check_choices(srv, n * len(prompts), "n")
    bound_text(srv.limits, "prompt", body.suffix, *(p for p in prompts if isinstance(p, str)))
    name, model = await srv.catalog.load(body.model)
    require_tokenizer(model, name)
    jobs = await run_in_threadpool(completion_jobs, srv, model, body, prompts, n)
    return await respond(request, srv, model, name, jobs, body, chat=False)


def completion_jobs(srv: ServerState, model, body: CompletionRequest, prompts: list, n: int) -> list[Job]:
    """The choices of a completion request (tokenizes: run it off the event loop)."""
    tok = model.tokenizer
    field, length = length_field(body)
    gap = length if length is not None else default_length(model, srv.limits)
    if gap > srv.limits.max_tokens:
        raise invalid(field, f"at most {srv.limits.max_tokens} tokens on this server, got {gap}")
    jobs = []
    for p, prompt in enumerate(prompts):
        field_name = "prompt" if len(prompts) == 1 else f"prompt[{p}]"
        if isinstance(prompt, str):
            base, echo = text_canvas(model, prompt), prompt
        else:
            base = Canvas(token_prompt(model, prompt, field_name))
            echo = tok.decode(base.prompt_ids)
        ids = base.prompt_ids
        canvas = suffix_canvas(model, base, gap, body.suffix) if body.suffix else base
        requested = requested_options(body, None if body.suffix else gap)
        options = resolve_options(model, requested, srv.limits, {"max_new_tokens": field}, canvas, body.preset)
        fits_context(model, len(ids), options.max_new_tokens, srv.limits.context, field_name, field)
        for s in choice_seeds(body, n):
            jobs.append(Job(p, canvas, options.model_copy(update={"seed": s}), echo if body.echo else ""))
    return jobs


def prompt_list(prompt) -> list:
    """OpenAI's four prompt forms -> a list of prompts, each text or token ids (the schema
    already refused empty lists and more than MAX_PROMPTS prompts)."""
    if isinstance(prompt, str) or isinstance(prompt[0], int):
        return [prompt]
    return list(prompt)


async def choice_deltas(index: int, handle, completion: Completion, http: Request):
    """(index, newly final text, finish_reason once known) for one choice."""
    async with aclosing(events(handle, http)) as stream:
        async for event in stream:
            if isinstance(event, DoneEvent):
                if event.cancelled and not completion.done:
                    raise APIError(503, "the request was cancelled: the server is shutting down", code="shutting_down")
                completion.batch_size = event.batch_size
                delta = completion.finish(event.region, event.nfe, event.elapsed)
            else:
                delta = completion.step(event)
            if delta or completion.done:
                yield index, delta, completion.finish_reason
            if completion.done:
                return


async def respond(http: Request, srv: ServerState, model, name: str, jobs: list[Job], body, chat: bool):
    engine = srv.running_engine
    requests = [EngineRequest(name, j.canvas.prompt_ids, j.options, j.canvas.region) for j in jobs]
    handles = submit_all(engine, requests, srv.limits, length_field(body)[0])
    # With a suffix the answer is the gap alone, as OpenAI's suffix is not part of the text.
    completions = [Completion(model, j.canvas, j.options, stops_of(body), fixed_text=False) for j in jobs]
    streams = [choice_deltas(i, h, c, http) for i, (h, c) in enumerate(zip(handles, completions))]
    prompt_lengths: dict[int, int] = {}
    for j in jobs:  # a prompt counts once, however many choices it has (as OpenAI counts)
        prompt_lengths.setdefault(j.prompt_index, len(j.canvas.prompt_ids))
    prompt_tokens = sum(prompt_lengths.values())
    ident = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
    created = int(time.time())

    def usage() -> dict:
        completion = sum(c.completion_tokens for c in completions)
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        }

    def timings() -> list[dict]:
        return [c.timings() for c in completions]

    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        frames = stream_frames(streams, jobs, ident, created, name, chat, include_usage, usage, completions)
        return sse_response(guarded(frames, lambda err: sse(err.body())), handles)
    texts = [j.echo for j in jobs]
    reasons: list[str | None] = [None] * len(jobs)
    try:
        async with aclosing(merge(streams)) as merged:
            async for index, delta, reason in merged:
                texts[index] += delta
                reasons[index] = reason or reasons[index]
    finally:
        for h in handles:
            h.cancel()
    if chat:
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": t, "refusal": None},
                "logprobs": None,
                "finish_reason": r,
            }
            for i, (t, r) in enumerate(zip(texts, reasons))
        ]
    else:
        choices = [
            {"text": t, "index": i, "logprobs": None, "finish_reason": r}
            for i, (t, r) in enumerate(zip(texts, reasons))
        ]
    return JSONResponse(
        {
            "id": ident,
            "object": "chat.completion" if chat else "text_completion",
            "created": created,
            "model": name,
            "choices": choices,
            "usage": usage(),
            "timings": timings(),
        }
    )


async def stream_frames(streams, jobs, ident, created, name, chat, include_usage, usage, completions):
    kind = "chat.completion.chunk" if chat else "text_completion"

    def chunk(choices: list[dict], timings: dict | None = None) -> str:
        data = {"id": ident, "object": kind, "created": created, "model": name, "choices": choices}
        if include_usage:
            data["usage"] = None
        if timings is not None:
            data["timings"] = timings  # llama.cpp's server sends them on its last chunk too
        return sse(data)

    def choice(i: int, text: str | None, reason: str | None = None, role: bool = False) -> dict:
        if not chat:
            return {"text": text or "", "index": i, "logprobs": None, "finish_reason": reason}
        delta = {"role": "assistant", "content": text or ""} if role else ({"content": text} if text else {})
        return {"index": i, "delta": delta, "logprobs": None, "finish_reason": reason}

    for i, job in enumerate(jobs):
        if chat or job.echo:
            yield chunk([choice(i, job.echo, role=chat)])
    async with aclosing(merge(streams)) as merged:
        async for i, delta, reason in merged:
            if delta:
                yield chunk([choice(i, delta)])
            if reason:
                yield chunk([choice(i, None, reason)], timings=completions[i].timings())
    if include_usage:
        yield sse({"id": ident, "object": kind, "created": created, "model": name, "choices": [], "usage": usage()})
    yield sse("[DONE]")
