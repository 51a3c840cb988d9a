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


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"unmask {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """unmask: diffusion language models on your own machine."""
    from .common import DEBUG

    DEBUG["on"] = debug


def main() -> None:
    app()


from . import bench, chat, hub, pull, run, serve, studio, train  # noqa: E402,F401  (register the verbs)
