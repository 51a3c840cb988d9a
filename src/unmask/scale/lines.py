"""Batch jobs: JSONL lines become engine requests, and answers become JSONL lines, resumably.

Notable features:
- A line answers exactly what `unmask run --json` (a prompt) or `unmask infill --json` (a
  template) answers for the same prompt, options and seed: the canvas comes from `engine.canvas`
  as those verbs build it (a chat model takes the prompt as a user turn), the options from
  `engine.resolve`, the text, usage and timings from `engine.Completion` (tests/test_batch.py).
- Lines run on the engine's scheduler (`engine.Engine`), one job at a time, so lines with the same
  options share passes (up to `max_batch` rows) while the next lines queue; a seeded line gets the
  text it gets alone (the scheduler's promise, `engine.scheduler.batch_key`).
- Input: one JSON object a line, `{"id"?, "prompt" | "messages" | "template", options by their
  GenerationOptions names, "preset"?}`; the id is the line number (from 1) when absent. Blank
  lines are skipped. A bad line (invalid JSON, an unknown field, a bad value) becomes
  `{"id", "error": {"line", "field", "message"}}` and the job goes on.
- Output keeps the input's order and ids. Resuming: ids already in the output are skipped, new
  lines are appended, each written whole and flushed; only an incomplete last line (a run killed
  mid-write) is cut off before appending, so no line is ever rewritten or doubled.
- Nothing here imports Ray: each Ray Data actor runs these same functions (`ray_batch.py`).
"""

from __future__ import annotations

import json
import math
import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..engine import (
    PRESETS,
    Canvas,
    Completion,
    DoneEvent,
    Engine,
    ErrorEvent,
    GenerationOptions,
    Request,
    RequestError,
    TemplateError,
    chat_or_prompt_ids,
    check_context,
    infill_canvas,
    resolve,
    text_canvas,
)

SOURCES = ("prompt", "messages", "template")
OPTION_FIELDS = tuple(n for n in GenerationOptions.model_fields if n != "history")
LINE_FIELDS = frozenset({"id", "preset", *SOURCES, *OPTION_FIELDS})
DEFAULT_WINDOW = 64  # lines queued on the engine ahead of the one being written
MODEL_NAME = "batch"  # the engine's name for the job's one model


@dataclass(frozen=True)
class JobSettings:
    """What every line of a job shares: decoding options (the CLI's flags; a line's own fields
    win), a preset, and a context limit (`--ctx`)."""

    defaults: dict = field(default_factory=dict)
    preset: str | None = None
    ctx: int | None = None


@dataclass
class Line:
    number: int  # 1-based line in the input file
    id: Any  # the input's id, or the line number
    body: dict = field(default_factory=dict)  # the line's fields, id left out
    error: dict | None = None  # set when the line cannot run: {"line", "field", "message"}

    @property
    def key(self) -> str:
        return id_key(self.id)


def id_key(value: Any) -> str:
    """The id as resuming compares it: "7" and 7 are different ids."""
    return json.dumps(value, sort_keys=True)


def line_error(number: int, field_name: str | None, message: str) -> dict:
    return {"line": number, "field": field_name, "message": message}


def parse_line(number: int, raw: str) -> Line:
    """One input line (not blank) as a Line; a line that cannot run carries its error."""
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as err:
        return Line(number, number, error=line_error(number, None, f"invalid JSON: {err.msg} (column {err.colno})"))
    if not isinstance(body, dict):
        return Line(number, number, error=line_error(number, None, "expected a JSON object"))
    ident = body.pop("id", number)
    if isinstance(ident, bool) or not isinstance(ident, (str, int)):
        return Line(number, number, body, line_error(number, "id", "must be a string or an integer"))
    unknown = sorted(set(body) - LINE_FIELDS)
    if unknown:
        return Line(number, ident, body, line_error(number, unknown[0], "unknown field"))
    given = [s for s in SOURCES if s in body]
    if len(given) != 1:
        message = "give one of prompt, messages or template" if not given else f"give only one of {', '.join(given)}"
        return Line(number, ident, body, line_error(number, given[-1] if given else "prompt", message))
    return Line(number, ident, body)


def read_lines(raw_lines: Iterable[str], done: set[str] | None = None) -> Iterator[Line]:
    """Parsed input lines, skipping blank ones and ids in `done`; a repeated id is an error."""
    seen: dict[str, int] = {}
    for number, raw in enumerate(raw_lines, 1):
        if not raw.strip():
            continue
        line = parse_line(number, raw)
        if line.key in seen:
            if line.error is None:
                line.error = line_error(number, "id", f"repeats the id of line {seen[line.key]}")
        else:
            seen[line.key] = number
        if done and line.key in done:
            continue
        yield line


@dataclass
class Planned:
    line: Line
    canvas: Canvas
    options: GenerationOptions


def plan(model, line: Line, settings: JobSettings) -> Planned:
    """The canvas and options of a line, as `unmask run` / `unmask infill` build them."""
    body = line.body
    if "prompt" in body:
        text = body["prompt"]
        if not isinstance(text, str) or not text.strip():
            raise RequestError("prompt", "must be a non-empty string")
        if model.chat:  # `unmask run` on a chat model: the prompt is a user turn
            canvas = Canvas(chat_or_prompt_ids(model, messages=[{"role": "user", "content": text}]))
        else:
            canvas = text_canvas(model, text)
    elif "messages" in body:
        canvas = Canvas(chat_or_prompt_ids(model, messages=check_messages(body["messages"])))
    else:
        if not isinstance(body["template"], str):
            raise RequestError("template", "must be a string with gaps written {{N}}")
        canvas = infill_canvas(model, body["template"])
    own = {k: body[k] for k in OPTION_FIELDS if k in body}
    GenerationOptions.model_validate(own, strict=True)  # JSON types as given: "8" is not a step count
    preset = body.get("preset", settings.preset)
    if preset is not None and preset not in PRESETS:
        raise RequestError("preset", f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    shared = settings.defaults
    if canvas.is_infill:  # a template fixes its own length (`unmask infill` has no --max-new-tokens)
        shared = {k: v for k, v in shared.items() if k != "max_new_tokens"}
    options = resolve(model, shared | own, preset, None, canvas)
    length_field = "template" if canvas.is_infill else "max_new_tokens"
    prompt_field = "messages" if "messages" in body else "prompt"
    check_context(model, len(canvas.prompt_ids), options.max_new_tokens, settings.ctx, prompt_field, length_field)
    return Planned(line, canvas, options)


def check_messages(messages: Any) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages", "must be a non-empty list of {role, content} objects")
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise RequestError("messages", "each message needs a string role and a string content")
    return messages


def describe(err: BaseException) -> tuple[str | None, str]:
    """(field, message) of a planning or generation error."""
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        message = first.get("msg", "invalid value").removeprefix("Value error, ")
        if not loc:  # a cross-field rule names its field first
            name, sep, rest = message.partition(": ")
            return (name, rest) if sep and name.isidentifier() else (None, message)
        return loc, message
    if isinstance(err, RequestError):
        return err.field, str(err).split(": ", 1)[-1]
    if isinstance(err, TemplateError):
        return "messages", str(err)
    return None, str(err) or type(err).__name__


def answer(planned: Planned, completion: Completion) -> dict:
    """The output line: what `unmask run --json` reports, as the native API names it."""
    text = completion.text
    if planned.canvas.is_infill:
        text = planned.canvas.prefix_text + text  # `unmask infill`: the whole filled template
    return {
        "id": planned.line.id,
        "text": text,
        "finish_reason": completion.finish_reason,
        "usage": completion.usage(),
        "timings": completion.timings(),
        "options": planned.options.model_dump(exclude_defaults=True),
    }


def failed(line: Line, error: dict) -> dict:
    return {"id": line.id, "error": error}


def job_engine(model, max_batch: int, window: int = DEFAULT_WINDOW) -> Engine:
    """An engine serving one loaded model, one batch at a time (`max_jobs=1`): the lines that
    queue while a batch runs form the next one, instead of starting apart in small batches."""
    return Engine(lambda _name: model, max_queue=window, max_batch=max_batch, keep_alive=math.inf, max_jobs=1)


def answer_lines(
    model, lines: Iterable[Line], engine: Engine, settings: JobSettings, window: int = DEFAULT_WINDOW
) -> Iterator[dict]:
    """Every line's output, in input order, `window` lines queued on the engine ahead."""
    queued: deque = deque()
    for line in lines:
        queued.append(_start(model, line, engine, settings))
        if len(queued) >= window:
            yield _finish(queued.popleft())
    while queued:
        yield _finish(queued.popleft())


def _start(model, line: Line, engine: Engine, settings: JobSettings):
    if line.error is not None:
        return failed(line, line.error)
    try:
        planned = plan(model, line, settings)
    except (ValidationError, ValueError) as err:  # RequestError and TemplateError are ValueErrors
        return failed(line, line_error(line.number, *describe(err)))
    request = Request(MODEL_NAME, planned.canvas.prompt_ids, planned.options, planned.canvas.region)
    return planned, Completion(model, planned.canvas, planned.options), engine.submit(request)


def _finish(started) -> dict:
    if isinstance(started, dict):
        return started
    planned, completion, handle = started
    for event in handle.events():
        if isinstance(event, ErrorEvent):
            return failed(planned.line, line_error(planned.line.number, *describe(event.error)))
        if isinstance(event, DoneEvent):
            completion.batch_size = event.batch_size
            completion.finish(event.region, event.nfe, event.elapsed)
        else:
            completion.step(event)
    return answer(planned, completion)


# -- the output file ----------------------------------------------------------------------------


@dataclass
class Resume:
    done: set[str]  # ids (id_key) the output already holds
    errors: int  # of them, lines that hold an error
    cut: int  # bytes of an incomplete last line cut off


def resume(path: str | os.PathLike) -> Resume:
    """What an existing output file holds. An incomplete last line (no newline: the run was
    killed mid-write) is cut off, so the next line appended starts on a line of its own."""
    done: set[str] = set()
    errors = cut = 0
    if not os.path.exists(path):
        return Resume(done, errors, cut)
    with open(path, "rb+") as f:
        data = f.read()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            cut = len(data) - end
            f.truncate(end)
    for raw in data[:end].decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(raw)
        except json.JSONDecodeError:
            continue  # not ours; kept as it is
        if isinstance(record, dict) and "id" in record:
            done.add(id_key(record["id"]))
            errors += "error" in record
    return Resume(done, errors, cut)


class OutputFile:
    """Appends output lines, each written whole and flushed before the next."""

    def __init__(self, path: str | os.PathLike):
        self.file = open(path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
