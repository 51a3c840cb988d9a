"""Ollama's `POST /api/pull`, mapped to unmask's pull: `unmask.pulling`, the path `unmask pull` takes.

Notable features:
- Ollama's request (`model`, or its older spelling `name`; `insecure`, accepted and unused: the
  hub is reached as HF_ENDPOINT says; `stream`, default true) and its NDJSON statuses: "pulling
  manifest", then the plan line (bytes to download, memory the model needs), then per file
  "pulling <file>" with `digest` (the file name), `total` and `completed` (bytes), then
  "verifying sha256 digest" (each fetched file hashed against the hub's ETag), "writing
  manifest" (the ref, recorded last) and "success". `stream: false` answers
  `{"status": "success"}` once done. `org/name:tag` pulls the hub revision `tag` (`latest`: main).
- What can be refused is refused before the first line, with a real status in Ollama's error
  shape, `{"error": "message"}`: a bad body or name and a config unmask cannot run (400, before
  any weight is requested), gated or private (403), no such repo or revision (404),
  HF_HUB_OFFLINE with the model not downloaded (409), too many pulls at once (429), the hub
  unreachable (502). A failure after the first line is a last `{"error": ...}` line.
- The download runs in its own thread, never on the event loop; progress reaches the loop through
  `call_soon_threadsafe`, a few lines a second. A client that leaves stops the download at its
  next chunk: huggingface_hub deletes the partial file and the ref is not written.
- What is served afterwards: when the server serves the embedded and downloaded models, the pulled
  model at once (the hub scan is refreshed before "success"). When the operator fixed the served
  models (UNMASK_MODELS), only those can be pulled (`name=org/repo` pulls the repo); any other
  name is a 403, so clients cannot fill the disk with models the server would not serve. A
  served model that needs no download (embedded, named, a folder) answers success at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from .. import checkpoints, pulling
from ..engine import ModelLoadError
from ..pulling import Pulled, PullError, PullProgress
from .errors import APIError, invalid
from .limits import MAX_MODEL_NAME
from .schemas import TextChecked
from .state import server

log = logging.getLogger("unmask.server")
router = APIRouter(tags=["ollama"])
NDJSON = "application/x-ndjson"
MAX_PULLS = 2  # downloads at once: each holds a thread and the disk's bandwidth for minutes
LINE_SECONDS = 0.1  # at most ten progress lines a second per pull
DISCONNECT_POLL = 0.5  # how often a pull that has not answered yet checks that its client is still there
CODES = {400: "pull_refused", 403: "hub_forbidden", 404: "model_not_found", 409: "hub_offline", 502: "hub_failed"}


class PullBody(TextChecked):
    model: str | None = Field(None, min_length=1, max_length=MAX_MODEL_NAME, description="Hub id or alias.")
    name: str | None = Field(None, min_length=1, max_length=MAX_MODEL_NAME, description="Ollama's older spelling.")
    insecure: bool = Field(False, description="Accepted; the hub is reached as HF_ENDPOINT says.")
    stream: bool = True


class Stopped(Exception):
    """Raised in the download thread once its client has gone: huggingface_hub drops the partial file."""


class Relay(PullProgress):
    """A pull's progress as Ollama's status lines, handed to the event loop thread-safely."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop, self.queue = loop, asyncio.Queue()
        self.stopped = threading.Event()  # set on the loop when the client leaves
        self.last = 0.0
        super().__init__()

    def put(self, item) -> None:
        if self.stopped.is_set():
            raise Stopped
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the event loop is closed: the server stopped
            self.stopped.set()
            raise Stopped from None

    def line(self, completed: int, total: int | None) -> dict:
        line = {"status": f"pulling {self.name}", "digest": self.name, "completed": completed}
        return line | ({"total": total} if total is not None else {})

    def plan(self, line: str, names: list[str]) -> None:
        self.put({"status": "pulling manifest"})
        self.put({"status": line})

    def start_file(self, name: str, size: int | None) -> None:
        super().start_file(name, size)
        if name:
            self.put(self.line(0, size))

    def advance(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self.last < LINE_SECONDS and done != total:
            if self.stopped.is_set():
                raise Stopped
            return
        self.last = now
        self.put(self.line(min(done, total) if total is not None else done, total))

    def finish_file(self) -> None:
        total = self.size if self.size is not None else self.shown
        self.put(self.line(total, total))

    def verifying(self) -> None:
        self.put({"status": "verifying sha256 digest"})

    def recording(self) -> None:
        self.put({"status": "writing manifest"})


class Pulls:
    """The download threads running in this app and their relays (one winding down still counts)."""

    def __init__(self) -> None:
        self.lock, self.running = threading.Lock(), {}

    def start(self, relay: Relay, repo_id: str, revision: str, quantize: str | None = None) -> threading.Thread:
        thread = threading.Thread(
            target=self.work, args=(relay, repo_id, revision, quantize), name=f"pull {repo_id}", daemon=True
        )
        with self.lock:
            if len(self.running) >= MAX_PULLS:
                raise APIError(
                    429,
                    f"{MAX_PULLS} pulls are running on this server; retry when one is done",
                    code="too_many_pulls",
                    headers={"Retry-After": "10"},
                )
            self.running[thread] = relay
        thread.start()
        return thread

    def work(self, relay: Relay, repo_id: str, revision: str, quantize: str | None) -> None:
        try:
            # This server will load what it pulls: a model it cannot hold (in its --quantize mode)
            # is refused before any weight is fetched, as `unmask pull` refuses it.
            outcome = pulling.pull(repo_id, revision, relay, verify=True, fit=True, quantize=quantize)
        except Stopped:
            return
        except PullError as err:
            outcome = err
        except Exception:
            log.exception("pulling %s failed", repo_id)
            outcome = PullError("the pull failed; the server log has the details", 500)
        finally:
            with self.lock:
                self.running.pop(threading.current_thread(), None)
        try:
            relay.loop.call_soon_threadsafe(relay.queue.put_nowait, outcome)
        except RuntimeError:
            pass


def pulls_of(request: Request) -> Pulls:
    state = request.app.state
    if getattr(state, "pulls", None) is None:
        state.pulls = Pulls()
    return state.pulls


def api_error(err: PullError) -> APIError:
    return APIError(err.status, err.message, code=CODES.get(err.status))


def split_tag(model: str) -> tuple[str, str]:
    """'org/name:tag' -> ('org/name', 'tag'), ':latest' meaning main; any other name is itself at main."""
    base, sep, tag = model.rpartition(":")
    if sep and tag and "/" not in tag and (base.count("/") == 1 or base in checkpoints.ALIASES):
        return base, "main" if tag == "latest" else tag
    return model, "main"


def target(srv, wanted: str) -> tuple[str, str | None, str]:
    """(revision, hub id or None when nothing needs downloading, why not) for a
    request's model (blocking: it lists the served models)."""
    fixed = srv.settings.models is not None
    name, revision = (wanted, "main") if wanted in srv.catalog.refs else split_tag(wanted)
    if fixed and name not in srv.catalog.refs:
        raise APIError(
            403,
            f"model: {wanted!r} is not served here, so it is not pulled: this server serves only the models "
            "it was started with (UNMASK_MODELS); start it naming the model",
            param="model",
            code="not_served",
        )
    ref = srv.catalog.reference(name)
    here = f"{name} is served from this machine; nothing to download"
    if name in srv.catalog.refs and Path(ref).expanduser().is_dir():  # a folder the operator named
        return revision, None, here
    try:
        return revision, pulling.hub_repo_id(ref, "pull", folders=False), ""
    except PullError as err:
        refused = invalid("model", err.message)
        if name not in srv.catalog.names():
            raise refused from None
        try:
            checkpoints.folder_of(ref)
        except ModelLoadError:
            raise refused from None
        return revision, None, here  # embedded or named


def finished(srv, pulled: Pulled) -> list[dict]:
    """The lines after a pull: the served list is refreshed first, so the model is listed at once."""
    srv.catalog.rescan()
    if not pulled.checked:
        note = f"{pulled.repo_id} is already downloaded (HF_HUB_OFFLINE is set, so it was not checked for updates)"
        return [{"status": note}, {"status": "success"}]
    return [{"status": "success"}]


async def answer(request: Request, relay: Relay):
    """The next item of the pull (a status line, Pulled or PullError); None once the client left."""
    while True:
        try:
            return await asyncio.wait_for(relay.queue.get(), DISCONNECT_POLL)
        except asyncio.TimeoutError:
            if await request.is_disconnected():
                relay.stopped.set()
                return None


def ndjson(line: dict) -> str:
    return json.dumps(line, ensure_ascii=False) + "\n"


class PullStream(StreamingResponse):
    """An NDJSON response that stops its download however it ends (even before the first line)."""

    def __init__(self, lines, relay: Relay):
        super().__init__(lines, media_type=NDJSON, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.relay = relay

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.relay.stopped.set()


@router.post("/api/pull")
async def pull(body: PullBody, request: Request):
    """Ollama's pull: download a hub model into the cache, progress streamed as NDJSON."""
    srv = server(request)
    wanted = body.model if body.model is not None else body.name
    if wanted is None:
        raise invalid("model", "name the model to pull: a hub id such as org/name, or an alias")
    revision, repo_id, here = await run_in_threadpool(target, srv, wanted)
    if repo_id is None:
        lines = [{"status": here}, {"status": "success"}]
        if not body.stream:
            return JSONResponse(lines[-1])
        return StreamingResponse(iter(map(ndjson, lines)), media_type=NDJSON)

    relay = Relay(asyncio.get_running_loop())
    pulls_of(request).start(relay, repo_id, revision, srv.settings.quantize)
    first = await answer(request, relay)
    if isinstance(first, PullError):
        raise api_error(first)  # nothing was sent yet: a real status
    if first is None:
        raise APIError(400, "the client disconnected before the pull answered", code="client_disconnected")
    if not body.stream:
        item = first
        while not isinstance(item, (Pulled, PullError)):
            item = await answer(request, relay)
            if item is None:
                raise APIError(400, "the client disconnected before the pull finished", code="client_disconnected")
        if isinstance(item, PullError):
            raise api_error(item)
        return JSONResponse(finished(srv, item)[-1])

    async def lines():
        item = first
        try:
            while True:
                if isinstance(item, PullError):
                    yield ndjson({"error": item.message})
                    return
                if isinstance(item, Pulled):
                    for line in finished(srv, item):
                        yield ndjson(line)
                    return
                yield ndjson(item)
                item = await relay.queue.get()
        finally:
            relay.stopped.set()

    return PullStream(lines(), relay)
