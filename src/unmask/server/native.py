"""The native diffusion endpoint, `POST /api/diffuse`, and `GET /api/models` (what the studio uses).

Notable features:
- Input is a prompt, a conversation, an infill template (`{{N}}` gaps, optionally after a prompt
  or conversation) or, for a `grid` model, a Sudoku `puzzle`; every GenerationOptions field may
  be set, and unset ones come from the model's defaults.
- The SSE stream shows the denoising itself: `start` (the initial canvas, masks included),
  one `step` per model pass (positions and tokens committed, their text, positions masked
  again by `remask`, timings), then `done`
  with the text, usage, timings and the final canvas. Errors after the headers are one
  `event: error` frame in the usual error shape.
"""

from __future__ import annotations

import time
import uuid
from contextlib import aclosing

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..engine import (
    PRESETS,
    Canvas,
    Completion,
    DoneEvent,
    RequestError,
    infill_canvas,
    puzzle_canvas,
    text_canvas,
)
from ..engine import Request as EngineRequest
from ..engine.canvas import GAP
from .compat import message_text
from .decoding import fits_context, resolve_options
from .errors import APIError, invalid
from .generation import events, guarded, sse, sse_response, submit_all
from .inputs import bound_text, chat_prompt, require_tokenizer
from .limits import MAX_GAPS
from .schemas import NATIVE_OPTION_FIELDS, DiffuseRequest, ResolveRequest, StopRequest
from .state import server

router = APIRouter(tags=["native"])
SOURCES = ("prompt", "messages", "template", "puzzle")


@router.get("/api/models")
async def api_models(request: Request) -> dict:
    """Every served model: loaded or not, family, parameters, context, chat template, defaults."""
    return {"models": await server(request).catalog.describe_all()}


def build_canvas(model, name: str, body: DiffuseRequest, max_tokens: int) -> tuple[Canvas, str, bool]:
    """The canvas, the field the prompt came from, and whether it is a Sudoku board."""
    given = [s for s in SOURCES if getattr(body, s) is not None]
    if body.puzzle is not None:
        if given != ["puzzle"]:
            raise invalid("puzzle", "send a puzzle on its own, without prompt, messages or template")
        try:
            return puzzle_canvas(model, body.puzzle), "puzzle", True
        except RequestError as err:
            raise invalid(err.field, str(err).split(": ", 1)[-1]) from None
    require_tokenizer(model, name)
    if body.prompt is not None and body.messages is not None:
        raise invalid("messages", "send either prompt or messages, not both")
    if body.messages is not None:
        start, field = Canvas(chat_prompt(model, message_text(body.messages))), "messages"
    else:
        start, field = text_canvas(model, body.prompt or ""), "prompt"
    if body.template is None:
        if not given:
            raise invalid("prompt", "send a prompt, messages, a template or a puzzle")
        return start, field, False
    gaps = len(GAP.findall(body.template))
    if gaps > MAX_GAPS:
        raise invalid("template", f"at most {MAX_GAPS} gaps per template, got {gaps}")
    try:
        canvas = infill_canvas(model, body.template, start.prompt_ids, start.leads.get(0, ""))
    except RequestError as err:
        raise invalid(err.field, str(err).split(": ", 1)[-1]) from None
    masked = sum(n for fixed, n in canvas.segments if fixed is None)
    if masked > max_tokens:
        raise invalid("template", f"its gaps hold {masked} tokens; at most {max_tokens} on this server")
    return canvas, field if body.prompt is not None or body.messages is not None else "template", False


@router.post("/api/stop")
async def stop(body: StopRequest, request: Request) -> dict:
    """Unload a model now, or once its running requests finish (`unmask stop MODEL`)."""
    srv = server(request)
    name = srv.catalog.check(body.model)
    if not srv.running_engine.unload(name):
        raise APIError(404, f"model: {name!r} is not loaded", param="model", code="model_not_loaded")
    return {"model": name, "unloaded": True}


@router.post("/api/resolve")
async def resolve_route(body: ResolveRequest, request: Request) -> dict:
    """The options a generation with these fields would run with, and each preset's (null for a
    preset these fields cannot run with). A model that is not loaded is not loaded for this:
    its shipped defaults are read from its folder, unless a template needs its tokenizer."""
    srv = server(request)
    canvas = None
    if body.template is not None:
        name, model = await srv.catalog.load(body.model)
        require_tokenizer(model, name)
        try:
            canvas = infill_canvas(model, body.template)
        except RequestError as err:
            raise invalid(err.field, str(err).split(": ", 1)[-1]) from None
    else:
        name, model = await srv.catalog.resolvable(body.model)
    requested = {k: getattr(body, k) for k in NATIVE_OPTION_FIELDS}

    def shown(preset):
        return resolve_options(model, requested, srv.limits, canvas=canvas, preset=preset)

    options = shown(body.preset)
    presets = {}
    for preset in PRESETS:
        try:
            presets[preset] = shown(preset).model_dump(exclude={"history"})
        except APIError:
            presets[preset] = None
    return {
        "model": name,
        "options": options.model_dump(exclude={"history"}),
        "presets": presets,
        "blocks": options.num_blocks,
    }


def planned(srv, model, name: str, body: DiffuseRequest):
    """(canvas, options) for a native request (tokenizes: run it off the event loop)."""
    canvas, prompt_field, _ = build_canvas(model, name, body, srv.limits.max_tokens)
    requested = {k: getattr(body, k) for k in NATIVE_OPTION_FIELDS}
    options = resolve_options(model, requested, srv.limits, canvas=canvas, preset=body.preset)
    prompt_tokens = len(canvas.prompt_ids)
    fits_context(model, prompt_tokens, options.max_new_tokens, srv.limits.context, prompt_field, "max_new_tokens")
    return canvas, options


@router.post("/api/diffuse")
async def generate(body: DiffuseRequest, request: Request):
    """Denoise and stream every step (SSE), or answer once with the done payload (stream: false)."""
    t0 = time.perf_counter()
    srv = server(request)
    texts = [m.content for m in body.messages or [] if isinstance(m.content, str)]
    bound_text(srv.limits, "prompt", body.prompt, body.template, body.puzzle, *texts)
    name, model = await srv.catalog.load(body.model)
    canvas, options = await run_in_threadpool(planned, srv, model, name, body)
    engine = srv.running_engine
    [handle] = submit_all(engine, [EngineRequest(name, canvas.prompt_ids, options, canvas.region)], srv.limits)
    run = Run(model, name, canvas, options, t0)
    frames = run.frames(handle, request)
    if body.stream:
        return sse_response(guarded(frames, lambda err: sse(err.body(), event="error")), [handle])
    try:
        async with aclosing(frames) as all_frames:
            async for _ in all_frames:
                pass
    finally:
        handle.cancel()
    if run.done is None:  # the client left; nobody reads this
        raise APIError(400, "the client disconnected before the generation finished", code="client_disconnected")
    return JSONResponse(run.done)


class Run:
    """One native generation: turns engine events into start / step / done payloads."""

    def __init__(self, model, name: str, canvas: Canvas, options, t0: float):
        self.model, self.name, self.canvas, self.options, self.t0 = model, name, canvas, options, t0
        self.id = f"gen-{uuid.uuid4().hex[:24]}"
        self.completion = Completion(model, canvas, options)
        self.region = list(self.completion.region)
        self.done: dict | None = None

    def piece(self, token: int) -> str | None:
        if token == self.model.ids.mask:
            return None
        return self.model.tokenizer.piece(token)

    def start(self) -> dict:
        return {
            "id": self.id,
            "model": self.name,
            "prompt_tokens": len(self.canvas.prompt_ids),
            "region": self.region,
            "mask_id": self.model.ids.mask,
            "end_ids": list(self.model.ids.eos),
            "pieces": [self.piece(t) for t in self.region],
            "total_steps": self.options.total_steps,
            "block_length": self.options.block_length or self.options.max_new_tokens,
            "options": self.options.model_dump(exclude={"history"}),
            "queued": round(time.perf_counter() - self.t0, 6),
        }

    async def frames(self, handle, http: Request):
        yield sse(self.start(), event="start")
        completion = self.completion
        async with aclosing(events(handle, http)) as stream:
            async for event in stream:
                if isinstance(event, DoneEvent):
                    if event.cancelled:
                        raise APIError(
                            503, "the request was cancelled: the server is shutting down", code="shutting_down"
                        )
                    completion.batch_size = event.batch_size
                    completion.finish(event.region, event.nfe, event.elapsed)
                    self.done = self.finish(event)
                    yield sse(self.done, event="done")
                    return
                completion.step(event)
                yield sse(
                    {
                        "step": event.index + 1,
                        "total_steps": event.planned_steps,
                        "block": event.block,
                        "positions": event.positions,
                        "tokens": event.tokens,
                        "texts": [self.model.tokenizer.piece(t) for t in event.tokens],
                        "revoked": event.revoked,
                        "edited": event.edited,
                        "edit_tokens": event.edit_tokens,
                        "edit_texts": [self.model.tokenizer.piece(t) for t in event.edit_tokens],
                        "settled": event.settled,
                        "settledness": round(event.settledness, 4),
                        "elapsed": round(event.elapsed, 6),
                        "nfe": event.nfe,
                        "tokens_per_second": round(completion.decided / max(event.elapsed, 1e-9), 3),
                    },
                    event="step",
                )

    def finish(self, event: DoneEvent) -> dict:
        c = self.completion
        return {
            "id": self.id,
            "model": self.name,
            "text": c.text,
            "finish_reason": c.finish_reason,
            "usage": c.usage(),
            "timings": c.timings(),
            "region": event.region,
        }
