"""`unmask chat`: a multi-turn conversation with slash commands, as `ollama run` offers."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console

from . import app
from .common import (
    DEFAULT_MODEL,
    CliError,
    Threads,
    build_options,
    describe_request_error,
    describe_validation,
    guard,
    load_model,
    set_threads,
)
from .run import (
    Algorithm,
    AlgTemp,
    Balanced,
    Best,
    BlockLength,
    Cache,
    CfgScale,
    Ctx,
    Device,
    Dtype,
    EditThreshold,
    Eps,
    Factor,
    Fast,
    MaxPostSteps,
    MinCommit,
    Quantize,
    Recipe,
    Remask,
    Seed,
    Spread,
    Steps,
    StepsPerBlock,
    SubBlock,
    Temperature,
    Threshold,
    TopK,
    TopP,
    decoding_flags,
    pick_preset,
)

HELP = """commands:
  /clear            forget the conversation
  /steps N          denoising steps per answer
  /set KEY VALUE    any decoding option, e.g. /set temperature 0.7, /set block_length 32
  /show             the current settings
  /bye              leave (or Ctrl-D)"""


def parse_value(raw: str):
    lowered = raw.lower()
    if lowered in ("none", "null", "default"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def transcript(model, messages: list[dict]):
    """The canvas for a conversation: through the chat template, or, for a completion model,
    the turns' text continued."""
    from ..engine import Canvas, chat_or_prompt_ids, text_canvas

    if model.chat:
        return Canvas(chat_or_prompt_ids(model, messages=messages))
    text = " ".join(m["content"] for m in messages if m["role"] != "system")
    system = next((m["content"] for m in messages if m["role"] == "system"), model.system_prompt)
    return text_canvas(model, f"{system}\n{text}" if system else text)


def fit_transcript(model, messages: list[dict], new_tokens: int, ctx: int | None):
    """The canvas for the conversation, dropping its oldest turns (never a system message or the
    last turn) until prompt + answer fit the context; returns (canvas, turns dropped)."""
    window = min(model.context_length, ctx) if ctx else model.context_length
    dropped = 0
    while True:
        canvas = transcript(model, messages)
        turns = [i for i, m in enumerate(messages) if m["role"] != "system"]
        if len(canvas.prompt_ids) + new_tokens <= window or len(turns) <= 1:
            return canvas, dropped
        del messages[turns[0]]
        dropped += 1


def chat_loop(model, name: str, flags: dict, preset: str | None, console: Console, ctx: int | None = None) -> None:
    """Read turns until /bye or end of input; each answer is drawn live."""
    from pydantic import ValidationError

    from .run import check_fits, finish

    overrides = {k: v for k, v in flags.items() if v is not None}
    options = build_options(model, overrides, preset)
    chat = model.chat
    messages: list[dict] = []
    kind = "chat" if chat else "completion (each line continues the text)"
    console.print(f"[dim]{name} · {kind} · /help for commands, /bye to leave[/]")
    while True:
        try:
            line = console.input("[bold]>>> [/]")
        except EOFError:
            console.print()
            return
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            cmd, _, rest = line.partition(" ")
            try:
                if cmd in ("/bye", "/exit", "/quit"):
                    return
                if cmd == "/clear":
                    messages.clear()
                    console.print("[dim]conversation cleared[/]")
                elif cmd == "/help":
                    console.print(HELP, highlight=False)
                elif cmd == "/show":
                    console.print(options.model_dump(exclude_defaults=True) or "(defaults)")
                elif cmd in ("/steps", "/set"):
                    key, value = ("steps", rest) if cmd == "/steps" else tuple((rest.split(None, 1) + [""])[:2])
                    if not key or not value:
                        raise CliError(f"usage: {cmd} {'N' if cmd == '/steps' else 'KEY VALUE'}")
                    overrides[key.replace("-", "_")] = parse_value(value.strip())
                    options = build_options(model, overrides, preset)
                    console.print(f"[dim]{key} = {value.strip()}[/]")
                else:
                    raise CliError(f"unknown command {cmd}; /help lists them")
            except ValueError as err:  # pydantic's, the resolver's or the sampler plan's
                overrides.pop(key.replace("-", "_"), None)
                options = build_options(model, overrides, preset)
                shown = describe_validation(err) if isinstance(err, ValidationError) else describe_request_error(err)
                console.print(f"[red]{shown}[/]")
            except CliError as err:
                console.print(f"[red]{err}[/]")
            continue
        messages.append({"role": "user", "content": line})
        canvas, dropped = fit_transcript(model, messages, options.max_new_tokens, ctx)
        if dropped:
            console.print(f"[dim]({dropped} earlier turn{'s' if dropped > 1 else ''} left out to fit the context)[/]")
        try:
            check_fits(model, canvas, options, ctx)
        except ValueError as err:
            messages.pop()
            console.print(f"[red]{describe_request_error(err)}[/]")
            continue
        shown = "" if model.chat else line
        result = finish(model, canvas, options, console.is_terminal, console, shown)
        if not console.is_terminal:
            console.print(result["text"], highlight=False)
        messages.append({"role": "assistant", "content": result["text"]})


@app.command()
def chat(
    model: Annotated[str, typer.Argument(help="Model name, folder or hub id.")] = DEFAULT_MODEL,
    steps: Steps = None,
    max_new_tokens: Annotated[Optional[int], typer.Option("--max-new-tokens", "-n", help="Tokens per answer.")] = None,
    block_length: BlockLength = None,
    algorithm: Algorithm = None,
    temperature: Temperature = None,
    top_p: TopP = None,
    top_k: TopK = None,
    threshold: Threshold = None,
    factor: Factor = None,
    spread: Spread = None,
    remask: Remask = None,
    steps_per_block: StepsPerBlock = None,
    edit_threshold: EditThreshold = None,
    max_post_steps: MaxPostSteps = None,
    min_commit: MinCommit = None,
    sub_block_length: SubBlock = None,
    cache: Cache = None,
    alg_temp: AlgTemp = None,
    eps: Eps = None,
    cfg_scale: CfgScale = None,
    recipe: Recipe = None,
    seed: Seed = None,
    fast: Fast = False,
    balanced: Balanced = False,
    best: Best = False,
    ctx: Ctx = None,
    threads: Threads = "auto",
    dtype: Dtype = "auto",
    device: Device = "auto",
    quantize: Quantize = None,
) -> None:
    """Chat with a model, keeping the conversation (/clear, /steps N, /set KEY VALUE, /bye).

    Old turns are left out, with a note, when the conversation outgrows the context.
    """
    flags = decoding_flags(locals())

    def body() -> None:
        console = Console()
        preset = pick_preset(fast, balanced, best)
        set_threads(threads)
        m = load_model(model, dtype, device, quantize=quantize)
        chat_loop(m, model, flags, preset, console, ctx)

    guard(body)
