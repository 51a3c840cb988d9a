"""`unmask chat`: a multi-turn conversation with slash commands, as `ollama run` offers."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console

from . import app
from .common import (
    DEFAULT_MODEL,
    CliError,
    build_options,
    describe_request_error,
    describe_validation,
    guard,
    load_model,
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


def chat_loop(model, name: str, flags: dict, preset: str | None, console: Console) -> None:
    """Read turns until /bye or end of input; each answer is drawn live."""
    from pydantic import ValidationError

    from ..engine import Canvas, chat_or_prompt_ids
    from .run import finish

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
        if chat:
            prompt_ids = chat_or_prompt_ids(model, messages=messages)
            shown = ""
        else:
            text = " ".join(m["content"] for m in messages)
            prompt_ids, shown = chat_or_prompt_ids(model, prompt=text), line
        result = finish(model, Canvas(prompt_ids), options, console.is_terminal, console, shown)
        if not console.is_terminal:
            console.print(result["text"], highlight=False)
        messages.append({"role": "assistant", "content": result["text"]})


@app.command()
def chat(
    model: Annotated[str, typer.Argument(help="Model name, folder or hub id.")] = DEFAULT_MODEL,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Denoising steps per answer.")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option("--max-new-tokens", "-n", help="Tokens per answer.")] = None,
    temperature: Annotated[Optional[float], typer.Option("--temperature")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed")] = None,
    dtype: Annotated[str, typer.Option("--dtype")] = "auto",
    device: Annotated[str, typer.Option("--device")] = "auto",
) -> None:
    """Chat with a model, keeping the conversation (/clear, /steps N, /set KEY VALUE, /bye)."""

    def body() -> None:
        console = Console()
        m = load_model(model, dtype, device)
        flags = dict(steps=steps, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
        chat_loop(m, model, flags, None, console)

    guard(body)
