"""Requests in and out of the shared `Engine`: admission, events, cancellation, SSE framing.

Notable features:
- Every route submits through `submit_all`: a full queue is a 429 and a closing engine a 503,
  both with Retry-After, and a request with n choices is admitted whole or not at all.
- `events` is the one place a request's work is stopped: when the client disconnects (checked
  between steps, and by Starlette cancelling a stream whose socket closed) or when the consumer
  stops early (a stop string), the handle is cancelled in a `finally`, so the engine drops the
  row at its next step boundary.
- A request whose sampler stops making progress (it keeps committing the mask token) is
  cancelled after more passes than any schedule needs, so it cannot hold the engine forever.
- `merge` interleaves the event streams of several choices as they arrive.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing

from fastapi import Request as HTTPRequest
from fastapi.responses import StreamingResponse

from ..engine import Engine, EngineBusy, EngineClosed, ErrorEvent, Handle, Request, StepEvent
from .errors import APIError, from_options_error, internal_error
from .limits import RETRY_AFTER_BUSY, RETRY_AFTER_CLOSING

log = logging.getLogger("unmask.server")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering


def check_work(limits, requests: list[Request], length_field: str = "max_new_tokens") -> None:
    """A request must cost at most the server's work limit (token-passes); the error names the
    field that is easiest to lower."""
    work = sum(r.work for r in requests)
    if work <= limits.work:
        return
    o = requests[0].options
    field = "n" if len(requests) > 1 and requests[0].work <= limits.work else "steps"
    if field == "steps" and o.total_steps * 2 < o.max_new_tokens:
        field = length_field
    cfg = " × 2 for cfg_scale" if o.cfg_scale > 0 else ""
    raise APIError(
        400,
        f"{field}: this request costs {work:,} token-passes (canvas × {o.total_steps} passes{cfg} × "
        f"{len(requests)} choice(s)); at most {limits.work:,} on this server: lower max tokens, steps or n",
        param=field,
        code="too_much_work",
    )


def submit_all(engine: Engine, requests: list[Request], limits=None, length_field: str = "max_new_tokens"):
    """Admit a request's choices whole or not at all (their work checked first when limits given)."""
    if limits is not None:
        check_work(limits, requests, length_field)
    handles: list[Handle] = []
    loop = asyncio.get_running_loop()
    try:
        for request in requests:
            handles.append(engine.submit(request, loop=loop))
    except EngineBusy as err:
        for h in handles:
            h.cancel()
        retry = max(RETRY_AFTER_BUSY, err.retry_after)
        raise APIError(
            429,
            "the server is busy: its request queue is full; retry shortly",
            code="queue_full",
            headers={"Retry-After": str(retry)},
        ) from None
    except EngineClosed:
        for h in handles:
            h.cancel()
        raise APIError(
            503,
            "the server is shutting down; retry shortly",
            code="shutting_down",
            headers={"Retry-After": str(RETRY_AFTER_CLOSING)},
        ) from None
    return handles


def engine_error(err: BaseException) -> APIError:
    """An error the engine reported for a request that passed validation."""
    if isinstance(err, APIError):
        return err
    if isinstance(err, ValueError):
        return from_options_error(err)
    log.error("generation failed", exc_info=err)
    return internal_error()


def step_budget(options) -> int:
    """More model passes than any schedule needs: each pass commits at least one position."""
    return options.total_steps + options.max_new_tokens


async def events(handle: Handle, http: HTTPRequest) -> AsyncIterator:
    """The engine's events for one handle, raising ErrorEvents as APIError; cancels on exit."""
    budget = step_budget(handle.request.options)
    try:
        async for event in handle.aevents():
            if isinstance(event, ErrorEvent):
                raise engine_error(event.error)
            if isinstance(event, StepEvent) and event.index >= budget:
                # A sampler that keeps committing the mask token never finishes; free the slot.
                log.error("request %s exceeded %d model passes without finishing; cancelled", handle.id, budget)
                raise APIError(500, "the generation stopped making progress and was cancelled", code="sampler_stalled")
            if await http.is_disconnected():
                return
            yield event
    finally:
        handle.cancel()  # a no-op once finished; otherwise the engine drops the row next step


async def merge(streams: list[AsyncIterator]) -> AsyncIterator:
    """Items of several async iterators as they come; the first error ends everything."""
    if len(streams) == 1:
        async with aclosing(streams[0]) as only:
            async for item in only:
                yield item
        return
    queue: asyncio.Queue = asyncio.Queue()
    finished = object()

    async def pump(stream: AsyncIterator) -> None:
        try:
            async for item in stream:
                await queue.put((None, item))
            await queue.put((None, finished))
        except Exception as err:
            await queue.put((err, None))

    tasks = [asyncio.create_task(pump(s)) for s in streams]
    try:
        running = len(tasks)
        while running:
            err, item = await queue.get()
            if err is not None:
                raise err
            if item is finished:
                running -= 1
            else:
                yield item
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def sse(data, event: str | None = None) -> str:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (f"event: {event}\n" if event else "") + f"data: {text}\n\n"


class EngineStream(StreamingResponse):
    """An SSE response that cancels its engine requests however it ends, even when the client
    left before the first frame (the frame generator then never ran its own cleanup)."""

    def __init__(self, frames: AsyncIterator[str], handles: list[Handle]):
        super().__init__(frames, media_type="text/event-stream", headers=SSE_HEADERS)
        self.handles = handles

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            for h in self.handles:
                h.cancel()


def sse_response(frames: AsyncIterator[str], handles: list[Handle]) -> StreamingResponse:
    return EngineStream(frames, handles)


async def guarded(frames: AsyncIterator[str], error_frame) -> AsyncIterator[str]:
    """Frames of a stream; an error after the headers went out becomes one last error frame."""
    try:
        async for frame in frames:
            yield frame
    except APIError as err:
        yield error_frame(err)
    except Exception:
        log.exception("stream failed")
        yield error_frame(internal_error())
