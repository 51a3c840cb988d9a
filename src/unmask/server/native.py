"""The native diffusion endpoint, `POST /api/generate`, and `GET /api/models` (what the studio uses).

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

from ..canvas import GAP, Canvas, RequestError, cut_at_end, infill_canvas, region_text
from ..engine.scheduler import DoneEvent
from ..engine.scheduler import Request as EngineRequest
from ..train.sudoku import BLANK, parse_puzzle
from .compat import message_text
from .decoding import check_context, resolve_options
from .errors import APIError, invalid
from .generation import events, guarded, sse, sse_response, submit_all
from .inputs import chat_prompt, require_tokenizer, text_prompt
from .limits import MAX_GAPS
from .schemas import NATIVE_OPTION_FIELDS, GenerateRequest
from .state import server

router = APIRouter(tags=["native"])
SOURCES = ("prompt", "messages", "template", "puzzle")


@router.get("/api/models")
async def api_models(request: Request) -> dict:
    """Every served model: loaded or not, family, parameters, context, chat template, defaults."""
    return {"models": await server(request).catalog.describe_all()}


def build_canvas(model, name: str, body: GenerateRequest, max_tokens: int) -> tuple[Canvas, str, bool]:
    """The canvas, the field the prompt came from, and whether it is a Sudoku board."""
    given = [s for s in SOURCES if getattr(body, s) is not None]
    if body.puzzle is not None:
        if given != ["puzzle"]:
            raise invalid("puzzle", "send a puzzle on its own, without prompt, messages or template")
        return puzzle_canvas(model, body.puzzle), "puzzle", True
    require_tokenizer(model, name)
    if body.prompt is not None and body.messages is not None:
        raise invalid("messages", "send either prompt or messages, not both")
    if body.messages is not None:
        prefix, field = chat_prompt(model, message_text(body.messages)), "messages"
    else:
        prefix, field = text_prompt(model, body.prompt or ""), "prompt"
    if body.template is None:
        if not given:
            raise invalid("prompt", "send a prompt, messages, a template or a puzzle")
        return Canvas(prefix), field, False
    gaps = len(GAP.findall(body.template))
    if gaps > MAX_GAPS:
        raise invalid("template", f"at most {MAX_GAPS} gaps per template, got {gaps}")
    try:
        canvas = infill_canvas(model, body.template, prefix)
    except RequestError as err:
        raise invalid(err.field, str(err).split(": ", 1)[-1]) from None
    masked = sum(n for fixed, n in canvas.segments if fixed is None)
    if masked > max_tokens:
        raise invalid("template", f"its gaps hold {masked} tokens; at most {max_tokens} on this server")
    return canvas, field if body.prompt is not None or body.messages is not None else "template", False


def puzzle_canvas(model, puzzle: str) -> Canvas:
    if str(model.config.get("model_type", "")).lower() != "grid":
        raise invalid("puzzle", "puzzles need a grid (Sudoku) model; this model is not one")
    try:
        grid = parse_puzzle(puzzle)
    except ValueError as err:
        raise invalid("puzzle", str(err)) from None
    tok = model.tokenizer
    if tok is None:
        raise invalid("model", "this grid model has no tokenizer.json to map digits to tokens")
    digits = {d: tok.token_id(d) for d in "123456789"}
    if None in digits.values():
        raise invalid("model", "this grid model's tokenizer has no tokens for the digits 1-9")
    return Canvas([], [model.ids.mask if ch == BLANK else digits[ch] for ch in grid])


def finished_text(model, canvas: Canvas, region: list[int], puzzle: bool) -> tuple[str, str, int]:
    """(text, finish_reason, completion tokens) of a finished region."""
    tok = model.tokenizer
    if puzzle:
        cells = [tok.piece(t) for t in region]
        text = "".join(c if len(c) == 1 and c.isdigit() else BLANK for c in cells)
        return text, "stop", sum(1 for t in canvas.region if t == model.ids.mask)
    if canvas.is_infill:
        text, reason = region_text(model, canvas, region)
        generated, pos = 0, 0
        for fixed, n in canvas.segments:
            if fixed is None:
                generated += len(cut_at_end(region[pos : pos + n], model.ids.eos)[0])
            pos += n
        return text, reason, generated
    ids, reason = cut_at_end(region, model.ids.eos)
    return tok.decode(ids), reason, len(ids)


@router.post("/api/generate")
async def generate(body: GenerateRequest, request: Request):
    """Denoise and stream every step (SSE), or answer once with the done payload (stream: false)."""
    t0 = time.perf_counter()
    srv = server(request)
    name, model = await srv.catalog.load(body.model)
    canvas, prompt_field, puzzle = build_canvas(model, name, body, srv.limits.max_tokens)
    requested = {k: getattr(body, k) for k in NATIVE_OPTION_FIELDS}
    region_length = len(canvas.region) if canvas.region is not None else None
    if region_length is not None:
        if body.max_new_tokens is not None and body.max_new_tokens != region_length:
            raise invalid(
                "max_new_tokens", f"the {prompt_field} fixes the length at {region_length} tokens; leave it out"
            )
        single_gap = canvas.is_infill and sum(1 for t, _ in canvas.segments if t is None) == 1
        if requested["stop_at_eos"] is None:
            # An end token inside one gap must not blank the others (or a Sudoku cell).
            requested["stop_at_eos"] = single_gap
    elif requested["stop_at_eos"] is None:
        requested["stop_at_eos"] = True
    options = resolve_options(model, requested, srv.limits, region_length=region_length)
    check_context(model, len(canvas.prompt_ids), options.max_new_tokens, srv.limits, prompt_field, "max_new_tokens")
    engine = srv.running_engine
    [handle] = submit_all(engine, [EngineRequest(name, canvas.prompt_ids, options, canvas.region)])
    run = Run(model, name, canvas, puzzle, options, t0)
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

    def __init__(self, model, name: str, canvas: Canvas, puzzle: bool, options, t0: float):
        self.model, self.name, self.canvas, self.puzzle = model, name, canvas, puzzle
        self.options, self.t0 = options, t0
        self.id = f"gen-{uuid.uuid4().hex[:24]}"
        self.region = list(canvas.region) if canvas.region is not None else [model.ids.mask] * options.max_new_tokens
        self.first_step: float | None = None
        self.committed = 0
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
        }

    async def frames(self, handle, http: Request):
        yield sse(self.start(), event="start")
        async with aclosing(events(handle, http)) as stream:
            async for event in stream:
                now = time.perf_counter() - self.t0
                if isinstance(event, DoneEvent):
                    if event.cancelled:
                        raise APIError(
                            503, "the request was cancelled: the server is shutting down", code="shutting_down"
                        )
                    self.done = self.finish(event, now)
                    yield sse(self.done, event="done")
                    return
                if self.first_step is None:
                    self.first_step = now
                self.committed += len(event.positions)
                yield sse(
                    {
                        "step": event.index + 1,
                        "total_steps": event.planned_steps,
                        "block": event.block,
                        "positions": event.positions,
                        "tokens": event.tokens,
                        "texts": [self.model.tokenizer.piece(t) for t in event.tokens],
                        "revoked": event.revoked,
                        "elapsed": round(now, 6),
                        "nfe": event.nfe,
                        "tokens_per_second": round(self.committed / max(now, 1e-9), 3),
                    },
                    event="step",
                )

    def finish(self, event: DoneEvent, now: float) -> dict:
        text, reason, generated = finished_text(self.model, self.canvas, event.region, self.puzzle)
        prompt = len(self.canvas.prompt_ids)
        return {
            "id": self.id,
            "model": self.name,
            "text": text,
            "finish_reason": reason,
            "usage": {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated},
            "timings": {
                "elapsed": round(now, 6),
                "first_step": round(self.first_step or now, 6),
                "nfe": event.nfe,
                "tokens_per_second": round(self.committed / max(now, 1e-9), 3),
                "batch_size": event.batch_size,
            },
            "region": event.region,
        }
