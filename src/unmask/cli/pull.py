"""`unmask pull`: download a model from the Hugging Face Hub into the standard cache.

What is fetched, the config check before any weight, the plan line, resuming, the ref written last
and the hub's errors as one sentence are `unmask.pulling` (the path the server's /api/pull takes
too); this module is the terminal's view of it.

Notable features:
- One progress bar per file: rich on a terminal, a line per tenth of a file otherwise. The bar
  shows the most bytes seen so far, so it never moves backwards, even when the library restarts
  a file.
- huggingface_hub's warnings (e.g. "trying to resume download") print above the bars.
- Ctrl-C keeps the finished files and says how to continue (exit 130).
- A model this machine cannot run is refused before any weight is requested (the loader's fit
  check from config.json), naming the quantization that would fit; `--quantize int4` then checks
  that mode, the one `run --quantize int4` runs in.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Optional

import typer

from ..checkpoints import ALIASES
from ..pulling import PullError, PullProgress, human_size
from ..pulling import pull as pull_repo
from . import app
from .common import CliError, err_console, fail, guard
from .hub import hub_repo_id

INTERRUPTED_EXIT = 130  # the shell's code for "stopped by Ctrl-C"


# ---------------------------------------------------------------------------------------------
# unmask pull: progress


class PullView(PullProgress):
    """Download bars, one per file: rich on a terminal, a line per tenth of a file otherwise.

    The bars start once the files are known: at construction when `names` is given, else at the
    plan line.
    """

    def __init__(self, console, names: list[str] = (), enabled: bool = True):
        self.console = console
        self.enabled = enabled
        self.live = enabled and console.is_terminal
        self.width = max((len(n) for n in names), default=0)
        self.progress = None
        super().__init__()

    def __enter__(self) -> PullView:
        if self.width:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()

    def start(self) -> None:
        if not self.live or self.progress is not None:
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.progress.start()

    def plan(self, line: str, names: list[str]) -> None:
        self.note(line)
        self.width = max((len(n) for n in names), default=self.width)
        self.start()

    def start_file(self, name: str, size: Optional[int]) -> None:
        super().start_file(name, size)
        self.task, self.tenth = None, 0

    def advance(self, done: int, total: Optional[int]) -> None:
        """Draw `done` bytes of the current file (the base holds the highest count)."""
        if self.progress is not None:
            if self.task is None:
                self.task = self.progress.add_task(self.name.ljust(self.width), total=total, completed=done)
            else:
                self.progress.update(self.task, completed=done)
        elif self.enabled and total:
            tenth = min(10, done * 10 // total)
            if tenth > self.tenth:
                self.tenth = tenth
                self.note(f"{self.name.ljust(self.width)}  {tenth * 10:3d}%  {human_size(done)}/{human_size(total)}")

    def finish_file(self) -> None:
        """Complete the current file's bar (a file already in the cache gets a full one)."""
        size = self.size or 0
        if self.progress is not None:
            if self.task is None:
                self.progress.add_task(f"{self.name.ljust(self.width)}", total=max(size, 1), completed=max(size, 1))
            else:
                self.progress.update(self.task, completed=max(self.shown, size))
        elif self.enabled and not self.fetched:
            self.note(f"{self.name.ljust(self.width)}  cached")
        elif self.enabled and self.tenth < 10:
            self.note(f"{self.name.ljust(self.width)}  100%  {human_size(size)}")

    def note(self, text: str) -> None:
        from rich.markup import escape

        self.console.print(escape(text), highlight=False, soft_wrap=True)


class ConsoleLogHandler(logging.Handler):
    """Prints huggingface_hub's warnings (e.g. "trying to resume download") above the bars."""

    def __init__(self, console):
        super().__init__(logging.WARNING)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        from rich.markup import escape

        self.console.print(f"[yellow]{escape(' '.join(record.getMessage().split()))}[/]", highlight=False)


@contextmanager
def hub_warnings_to(console):
    hub_logger = logging.getLogger("huggingface_hub")
    saved = hub_logger.handlers[:]
    hub_logger.handlers = [ConsoleLogHandler(console)]
    try:
        yield
    finally:
        hub_logger.handlers = saved


# ---------------------------------------------------------------------------------------------
# unmask pull


@app.command()
def pull(
    model: str = typer.Argument(..., help=f"Hub id (org/name) or alias: {', '.join(ALIASES)}."),
    revision: str = typer.Option("main", "--revision", help="Branch, tag or commit to download."),
    quantize: Optional[str] = typer.Option(
        None, "--quantize", help="int8 or int4: the mode you will run it in, for the memory check."
    ),
) -> None:
    """Download a model from the Hugging Face Hub into the standard cache (resumable; its config checked first,
    and whether this machine has the memory to run it)."""

    def go() -> None:
        from huggingface_hub.utils import are_progress_bars_disabled

        repo_id = hub_repo_id(model, "pull")
        try:
            with hub_warnings_to(err_console), PullView(err_console, enabled=not are_progress_bars_disabled()) as view:
                pulled = pull_repo(repo_id, revision, view, fit=True, quantize=quantize)
        except PullError as err:
            raise CliError(err.message) from None
        if not pulled.checked:
            typer.echo(
                f"{repo_id} is already downloaded at {pulled.folder} "
                "(HF_HUB_OFFLINE is set, so it was not checked for updates)"
            )
            return
        verb = "pulled" if pulled.fetched else "already up to date:"
        run = f"; run it with --quantize {quantize}" if quantize else ""
        typer.echo(f"{verb} {repo_id} ({human_size(pulled.size)}, {pulled.files} files) -> {pulled.folder}{run}")

    try:
        guard(go)
    except KeyboardInterrupt:
        fail(f"interrupted; run `unmask pull {model}` again to continue (finished files are kept)", INTERRUPTED_EXIT)
