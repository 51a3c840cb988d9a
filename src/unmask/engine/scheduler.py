"""`Engine`: runs generation requests on one worker thread, batching those that can share passes.

Notable features:
- Requests for the same model whose options agree (all but the seed) are denoised together as
  one left-padded batch: one model pass serves them all, and each gets exactly the tokens it
  would get alone (tests/test_engine.py). Sampled rows draw from their own generators, so a seed
  reproduces its text whether the request ran alone or batched (in float32; see `batch_key`).
- A bounded queue: `submit` raises `EngineBusy` when full (too many requests, or too much work:
  token-passes, `Request.work`), for the server to answer 429 with Retry-After, instead of
  letting work pile up.
- Batches that cannot share passes are advanced in turn, one pass each, so concurrent requests
  with different settings progress together instead of waiting for each other.
- Cancellation takes effect at the next step boundary: a cancelled row gets no more commits or
  events, its slot is freed at once, and a batch whose rows are all cancelled stops.
- Models load on first use, each in its own thread and never on the worker, so a model that
  takes minutes to load stalls only the requests that wait for it; lookups take only the short
  state lock. Models unload after `keep_alive` seconds idle.
- Events reach a caller through a thread-safe queue, or an asyncio queue fed with
  `call_soon_threadsafe` when the request was submitted from an event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

from ..options import GenerationOptions
from ..sampling import BLOCK_FAMILIES
from .events import DoneEvent, ErrorEvent, Event, StepEvent
from .model import Model

DEFAULT_MAX_QUEUE = 64  # requests waiting or running, beyond which submit() refuses
DEFAULT_MAX_BATCH = 16  # rows denoised together in one pass
DEFAULT_MAX_JOBS = 4  # batches advanced in turn, a pass each (e.g. the studio's compare columns)
DEFAULT_KEEP_ALIVE = 300.0  # seconds a model stays loaded without requests (Ollama's default)


class EngineBusy(Exception):
    """The queue is full; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int = 1):
        super().__init__("the server is busy: too many requests are queued; retry shortly")
        self.retry_after = retry_after


class EngineClosed(Exception):
    """The engine is shutting down and takes no new requests."""


@dataclass
class Request:
    model: str
    prompt_ids: list[int]
    options: GenerationOptions
    region: list[int] | None = None  # the canvas after the prompt; None = all masks

    @property
    def work(self) -> int:
        """Token-passes this request costs: every pass runs the whole canvas (twice with
        classifier-free guidance). What admission bounds, beside the request count."""
        o = self.options
        canvas = len(self.prompt_ids) + (len(self.region) if self.region is not None else o.max_new_tokens)
        return canvas * o.total_steps * (2 if o.cfg_scale > 0 else 1)


_ids = itertools.count(1)


@dataclass
class Handle:
    request: Request
    id: int = field(default_factory=lambda: next(_ids))
    cancelled: threading.Event = field(default_factory=threading.Event)
    _sync: queue.Queue = field(default_factory=queue.Queue)
    _loop: asyncio.AbstractEventLoop | None = None
    _async: asyncio.Queue | None = None
    finished: bool = False

    def push(self, event: Event) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._async.put_nowait, event)
        else:
            self._sync.put(event)

    def cancel(self) -> None:
        self.cancelled.set()

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Blocking iterator over events, ending after the DoneEvent or ErrorEvent."""
        while True:
            event = self._sync.get(timeout=timeout)
            yield event
            if not isinstance(event, StepEvent):
                return

    async def aevents(self):
        while True:
            event = await self._async.get()
            yield event
            if not isinstance(event, StepEvent):
                return


def batch_key(request: Request, model: Model | None = None) -> tuple | None:
    """Requests with equal keys share passes: the same model and options but for the seed (each
    row draws from its own generator). Infill rows may differ in where their masks are: every
    schedule counts masks per row. None: the request runs alone.

    A seed is a promise of the same text every time, and batching keeps it: every row attends to
    its own tokens only, with the attention call it makes alone (`models.layers.LeftPadding`), and
    this CPU's matmuls give a row the same numbers whatever else is in the batch, in float32 and
    bfloat16 alike (tests/test_engine.py). GPU libraries pick matmul kernels by batch size, and it
    is not measured there, so on a GPU a seeded request runs alone. Unseeded requests promise
    nothing and always batch."""
    o = request.options
    if o.seed is not None and model is not None and model.device.type != "cpu":
        return None
    key = (request.model, tuple(sorted(o.model_dump(exclude={"seed", "history"}).items())))
    if model is not None and model.family in BLOCK_FAMILIES:
        # Block diffusion tiles the canvas from position 0: a row left-padded to another's prompt
        # length would see other block boundaries than alone. Equal prompt lengths batch.
        key += (len(request.prompt_ids),)
    return key


class Engine:
    def __init__(
        self,
        loader: Callable[[str], Model],
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_batch: int = DEFAULT_MAX_BATCH,
        keep_alive: float = DEFAULT_KEEP_ALIVE,
        max_jobs: int = DEFAULT_MAX_JOBS,
        max_work: int | None = None,
    ):
        self.loader, self.max_queue, self.max_batch, self.keep_alive = loader, max_queue, max_batch, keep_alive
        self.max_jobs = max_jobs
        self.max_work = max_work  # token-passes queued or running, beyond which submit() refuses
        self.models: dict[str, Model] = {}
        self.last_used: dict[str, float] = {}
        self.pending: list[Handle] = []
        self.active: list[Handle] = []
        self.lock = threading.Condition()  # guards the state above; held only briefly
        self._loads: dict[str, Future] = {}  # models being loaded, by name
        self._queued_loads: set[str] = set()  # names a background load was started for
        self._unload_asked: set[str] = set()  # unload once their requests finish
        self._keep: dict[str, float] = {}  # per-model keep_alive, when a request set one
        self.closing = False
        self.batches_run = 0
        self.worker = threading.Thread(target=self._work, name="unmask-engine", daemon=True)
        self.worker.start()

    # -- public -------------------------------------------------------------------------------

    def submit(self, request: Request, loop: asyncio.AbstractEventLoop | None = None) -> Handle:
        handle = Handle(request)
        if loop is not None:
            handle._loop, handle._async = loop, asyncio.Queue()
        with self.lock:
            if self.closing:
                raise EngineClosed("the server is shutting down")
            if self._in_flight() >= self.max_queue:
                raise EngineBusy(retry_after=1)
            if self.max_work is not None and self.pending_work() + request.work > self.max_work:
                raise EngineBusy(retry_after=1)
            self.pending.append(handle)
            load = request.model not in self.models and request.model not in self._queued_loads
            if load:
                self._queued_loads.add(request.model)
            self.lock.notify_all()
        if load:
            threading.Thread(
                target=self._load_for_queue, args=(request.model,), name=f"unmask-load-{request.model}", daemon=True
            ).start()
        return handle

    def model(self, name: str) -> Model:
        """The loaded model, loading it in the calling thread if needed (one load per name at a
        time; callers of other names, and the worker, are never held up by it)."""
        with self.lock:
            found = self.models.get(name)
            if found is not None:
                self.last_used[name] = time.monotonic()
                return found
            pending = self._loads.get(name)
            owner = pending is None
            if owner:
                pending = self._loads[name] = Future()
        if not owner:
            return pending.result()
        try:
            loaded = self.loader(name)
        except BaseException as err:
            with self.lock:
                self._loads.pop(name, None)
            pending.set_exception(err)
            raise
        with self.lock:
            self.models[name] = loaded
            self.last_used[name] = time.monotonic()
            self._loads.pop(name, None)
            self.lock.notify_all()
        pending.set_result(loaded)
        return loaded

    def loaded(self) -> list[tuple[str, Model, float]]:
        """(name, model, seconds until it unloads when idle) for every loaded model."""
        with self.lock:
            now = time.monotonic()
            expires = {n: self.last_used.get(n, now) + self._keep_for(n) for n in self.models}
            return [(n, m, max(0.0, expires[n] - now)) for n, m in self.models.items()]

    def keep(self, name: str, seconds: float) -> None:
        """Keep a model loaded this long once idle (Ollama's keep_alive; 0 unloads it once its
        requests finish, inf never)."""
        with self.lock:
            if seconds <= 0:
                self._unload_asked.add(name)
            else:
                self._keep[name] = seconds
                self._unload_asked.discard(name)
            self._unload_idle()

    def unload(self, name: str) -> bool:
        """Unload a model now, or as soon as the requests using it finish (`unmask stop`, Ollama's
        keep_alive 0); False when it is not loaded."""
        with self.lock:
            if name not in self.models:
                return False
            self._unload_asked.add(name)
            self._unload_idle()
            self.lock.notify_all()
            return True

    def _load_for_queue(self, name: str) -> None:
        """Load a model requests are waiting for; a failure is every such request's error."""
        try:
            self.model(name)
        except BaseException as err:
            with self.lock:
                self._queued_loads.discard(name)
                waiting = [h for h in self.pending if h.request.model == name]
                self.pending = [h for h in self.pending if h.request.model != name]
                self.lock.notify_all()
            for h in waiting:
                h.finished = True
                h.push(ErrorEvent(err))
            return
        with self.lock:
            self._queued_loads.discard(name)

    def pending_work(self) -> int:
        """Token-passes queued or running, not yet finished or cancelled (caller holds the lock)."""
        live = [h for h in self.pending + self.active if not h.finished and not h.cancelled.is_set()]
        return sum(h.request.work for h in live)

    def _in_flight(self) -> int:
        """Queued requests plus running ones not yet finished or cancelled (caller holds the lock)."""
        waiting = sum(1 for h in self.pending if not h.cancelled.is_set())
        return waiting + sum(1 for h in self.active if not h.finished and not h.cancelled.is_set())

    @property
    def in_flight(self) -> int:
        with self.lock:
            return self._in_flight()

    def close(self, drain: bool = True, timeout: float = 30.0) -> None:
        """Stop taking requests; finish (drain) or cancel what is queued and running. A drain
        that outlasts `timeout` cancels what is left, so each caller gets its cancelled DoneEvent."""
        with self.lock:
            self.closing = True
            if not drain:
                for h in self.pending + self.active:
                    h.cancel()
            self.lock.notify_all()
        self.worker.join(timeout)
        if self.worker.is_alive():
            with self.lock:
                for h in self.pending + self.active:
                    h.cancel()
                self.lock.notify_all()
            self.worker.join(timeout)

    # -- worker -------------------------------------------------------------------------------

    def _ready(self) -> Handle | None:
        """The oldest pending request whose model is loaded (lock held)."""
        return next((h for h in self.pending if h.request.model in self.models), None)

    def _take_batch(self, first: Handle) -> list[Handle]:
        """`first` and every queued request that may share its passes (lock held)."""
        self.pending.remove(first)
        batch = [first]
        model = self.models.get(first.request.model)
        key = batch_key(first.request, model)
        if key is None:
            return batch
        for h in list(self.pending):
            if len(batch) >= self.max_batch:
                break
            if batch_key(h.request, model) == key:
                self.pending.remove(h)
                batch.append(h)
        return batch

    def _keep_for(self, name: str) -> float:
        return self._keep.get(name, self.keep_alive)

    def _unload_idle(self) -> None:
        """Drop models idle for keep_alive seconds that no request waits for (lock held)."""
        now = time.monotonic()
        busy = {h.request.model for h in self.pending + self.active if not h.finished}
        idle = [n for n, t in self.last_used.items() if now - t > self._keep_for(n) or n in self._unload_asked]
        for name in idle:
            if name not in busy:
                self.models.pop(name, None)
                self.last_used.pop(name, None)
                self._unload_asked.discard(name)

    def _admit(self, jobs: list[Job]) -> bool:
        """Wait for work; move pending batches whose model is loaded into jobs. False once closed
        and idle."""
        with self.lock:
            while not jobs and self._ready() is None:
                if self.closing and not self.pending:
                    return False
                self.lock.wait(timeout=1.0)
                self._unload_idle()
            while len(jobs) < self.max_jobs and (first := self._ready()) is not None:
                batch = self._take_batch(first)
                jobs.append(Job(self, batch, self.models[first.request.model]))
            self.active = [h for job in jobs for h in job.batch]
            return True

    def _work(self) -> None:
        """Advance every running job by one model pass in turn, so concurrent requests that cannot
        share passes (different step counts, models) still progress together."""
        jobs: list[Job] = []
        while self._admit(jobs):
            for job in list(jobs):
                try:
                    finished = job.advance()
                except BaseException as err:  # report to every caller, keep serving
                    job.fail(err)
                    finished = True
                if finished:
                    jobs.remove(job)
                    with self.lock:
                        self.batches_run += 1
                        self.active = [h for j in jobs for h in j.batch]
                        if self._unload_asked:
                            self._unload_idle()


class Job:
    """One batch being denoised: its canvas, its step generator, and the handles it serves."""

    def __init__(self, engine: Engine, batch: list[Handle], model: Model):
        self.engine, self.batch, self.model = engine, batch, model
        self.steps = None  # started on the first advance(), in the worker thread
        self.last = None

    def start(self) -> None:
        for h in self.batch:
            if h.cancelled.is_set():
                h.finished = True
                h.push(DoneEvent([], 0, 0.0, len(h.request.prompt_ids), 0, cancelled=True))
        first = self.batch[0].request
        model = self.model
        regions = None
        if any(h.request.region is not None for h in self.batch):
            regions = [h.request.region or [model.ids.mask] * first.options.max_new_tokens for h in self.batch]
        prompts = [h.request.prompt_ids for h in self.batch]
        self.x, self.P, key_mask = model.prepare(prompts, None, first.options, regions)
        self.prompt_lens = [len(p) for p in prompts]
        for row, h in enumerate(self.batch):
            if h.finished:
                self.retire(row)
        seeds = [h.request.options.seed for h in self.batch]
        self.steps = model.denoise(self.x, self.P, key_mask, first.options, row_seeds=seeds)

    def advance(self) -> bool:
        """One model pass and its events; True when every row is done."""
        if self.steps is None:
            self.start()
        self.drop_cancelled()  # rows cancelled while the last pass ran leave before the next one
        if all(h.finished for h in self.batch):
            self.steps.close()
            return True
        step = next(self.steps, None)
        if step is None:  # nothing left to denoise
            self.finish_rest()
            return True
        self.last = step
        self.drop_cancelled()
        for row, h in enumerate(self.batch):
            if h.finished:
                continue
            event = StepEvent.of(step, row, self.P, h.request.options.max_new_tokens)
            if event.positions or event.revoked or event.edited:
                h.push(event)
            if step.finished[row]:  # nothing left to change (editing families keep going past the last mask)
                h.finished = True
                h.push(self.done(row))
        with self.engine.lock:
            self.engine.last_used[self.batch[0].request.model] = time.monotonic()
        if all(h.finished for h in self.batch):
            self.steps.close()
            return True
        return False

    def drop_cancelled(self) -> None:
        for row, h in enumerate(self.batch):
            if h.cancelled.is_set() and not h.finished:
                h.finished = True
                self.retire(row)
                h.push(self.done(row, cancelled=True))

    def done(self, row: int, cancelled: bool = False) -> DoneEvent:
        nfe, elapsed = (self.last.nfe, self.last.elapsed) if self.last else (0, 0.0)
        return DoneEvent(
            self.x[row, self.P :].tolist(), nfe, elapsed, self.prompt_lens[row], len(self.batch), cancelled
        )

    def finish_rest(self) -> None:
        for row, h in enumerate(self.batch):
            if not h.finished:
                h.finished = True
                h.push(self.done(row))

    def fail(self, err: BaseException) -> None:
        for h in self.batch:
            if not h.finished:
                h.finished = True
                h.push(ErrorEvent(err))

    def retire(self, row: int) -> None:
        """A cancelled row: fill its masks so the sampler commits nothing more to it."""
        region = self.x[row, self.P :]
        region[region == self.model.ids.mask] = self.model.ids.pad
