"""What every verb shares: one-sentence errors, model loading with a spinner, decoding options.

Decoding options come from the engine's one resolver (`unmask.engine.resolve`): presets, shipped
defaults and step rounding are not restated here.

Errors are `CliError`s carrying a message that says what went wrong and what to do; `fail`
prints it and exits non-zero. A traceback appears only with `unmask --debug`.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn

import typer
from rich.console import Console

err_console = Console(stderr=True)
DEBUG = {"on": False}
DEFAULT_MODEL = "story"


class CliError(Exception):
    """A user-facing failure: the message is one sentence with what to do."""


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def guard(fn):
    """Run fn(), turning known errors into one clear line (and a traceback under --debug)."""
    from pydantic import ValidationError

    from ..engine import ModelLoadError, RequestError, TemplateError

    try:
        return fn()
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except ValidationError as err:
        if DEBUG["on"]:
            raise
        fail(describe_validation(err))
    except RequestError as err:
        if DEBUG["on"]:
            raise
        fail(describe_request_error(err))
    except (CliError, ModelLoadError, TemplateError, ValueError, OSError) as err:
        if DEBUG["on"]:
            raise
        fail(str(err))


def describe_validation(err) -> str:
    """The first pydantic error as '--flag: message' with the CLI flag spelling."""
    first = err.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ())) or ""
    message = first.get("msg", "invalid value").removeprefix("Value error, ")
    if not field:  # a cross-field rule: its message starts with the field it is about
        field, sep, rest = message.partition(": ")
        if not sep or not field.isidentifier():
            return message
        message = rest
    return f"--{field.replace('_', '-')}: {message}"


def describe_request_error(err) -> str:
    """'max_new_tokens: ...' as '--max-new-tokens: ...' when the field is a decoding flag."""
    from ..options import GenerationOptions

    message = str(err).split(": ", 1)[-1]
    if getattr(err, "field", None) in GenerationOptions.model_fields:
        return f"--{err.field.replace('_', '-')}: {message}"
    return str(err)


def load_model(ref: str, dtype: str = "auto", device: str = "auto", quiet: bool = False, quantize: str | None = None):
    """Load with a spinner on a terminal; errors become CliError. quantize: "int8" or "int4"."""
    from ..engine import load

    if quiet or not err_console.is_terminal:
        return load(ref, dtype=dtype, device=device, quantize=quantize)
    with err_console.status(f"loading {ref}…", spinner="dots"):
        return load(ref, dtype=dtype, device=device, quantize=quantize)


def build_options(model, flags: dict, preset: str | None = None, canvas=None):
    """The options for one generation: the engine's resolver over the CLI's flags (None = not
    given), so the CLI plans exactly what the server and the studio plan for the same request."""
    from ..engine import resolve

    return resolve(model, flags, preset, None, canvas)


# The one --threads flag of every verb that runs a model.
Threads = Annotated[
    str, typer.Option("--threads", "-t", help="CPU threads: auto (the free cores, 1 on a busy machine) or a number.")
]


def auto_threads() -> int:
    """The cores other processes leave free, at least one. On a busy 2-core machine, torch's
    default (every core) was measured 10-50x slower than one thread: its workers wait on each
    other while the cores are taken."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


def set_threads(value: str | None) -> int:
    """Apply `--threads` ('auto', the default, or a count) to torch; returns the count."""
    import torch

    text = (value or "auto").strip().lower()
    if text == "auto":
        count = auto_threads()
    else:
        try:
            count = int(text)
        except ValueError:
            raise CliError(f"--threads: expected auto or a number of threads, got {value!r}") from None
        if count < 1:
            raise CliError(f"--threads: at least 1, got {count}")
    torch.set_num_threads(count)
    return count


def bind_socket(host: str, port: int):
    """A socket bound to host:port for uvicorn, or a one-line error saying the port is taken."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        if err.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise CliError(
                f"port {port} on {host} is already in use (another `unmask serve`? `unmask ps` tells); "
                "choose another with --port"
            ) from None
        raise CliError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    return sock


def stdin_text() -> str | None:
    """Piped standard input, if any."""
    if sys.stdin is None or sys.stdin.isatty():
        return None
    return sys.stdin.read()
