"""The `unmask` command line. Each verb lives in its own module and registers itself on `app`.

Heavy imports (torch, the engine) happen inside the commands, so `unmask --help` stays instant.
"""

from __future__ import annotations

import typer


def _flags_take_no_value() -> None:
    """typer's rich help prints every option's type, so a flag reads `--fast <bool>` as if it took
    a value; a flag has no type column (as in click's and Ollama's help)."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None:
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag and self.metavar is None else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich


_flags_take_no_value()

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


from . import batch, bench, chat, create, hub, ps, pull, quantize, run, serve, studio, train  # noqa: E402,F401  (register the verbs)
