"""The `unmask` command line. Each verb lives in its own module and registers itself on `app`.

Heavy imports (torch, the engine) happen inside the commands, so `unmask --help` stays instant.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="unmask",
    help="Run, chat with, serve and train diffusion language models (Dream, LLaDA, and unmask's own).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root() -> None:
    """unmask: diffusion language models on your own machine."""


def main() -> None:
    app()


from . import train  # noqa: E402,F401  (registers the verb)
