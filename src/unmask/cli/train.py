"""`unmask train`: masked-diffusion training from a recipe or from your own text files.

Notable features:
- Says what it is doing before the first step (data generation, tokenizer, compile), and after
  the first timed steps how long the whole run will take on this machine.
- Every log line carries step, loss, the latest val loss, lr and tokens/s; loop warnings (a flat
  validation loss) are printed as their own line.
- Ctrl-C saves and exports, prints where and how to resume, and exits with status 130.
"""

from __future__ import annotations

import signal
import statistics
import sys
from pathlib import Path
from typing import Optional

import typer

from . import app
from .common import Threads, guard, set_threads

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a Ctrl-C'd command
PACE_SKIP = 2  # a session's first steps compile and warm caches; their time says nothing about the pace
PACE_STEPS = 10  # steps timed for the duration estimate; their median ignores a slow eval or save step
PLAIN_EVERY = 25  # plain-log line every this many steps (and at every evaluation)


@app.command()
def train(
    recipe: Optional[str] = typer.Option(None, "--recipe", help="Built-in recipe: story, sudoku or web."),
    data: Optional[list[Path]] = typer.Option(None, "--data", help="Your own UTF-8 text files (repeatable)."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Run folder (resumed if it holds a run). Default: runs/<recipe>."
    ),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Optimizer steps (default: the recipe's)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Sequences per step."),
    d_model: Optional[int] = typer.Option(
        None, "--d-model", min=32, help="Model width for --data runs: 32 or a multiple of 64 (default 256)."
    ),
    layers: Optional[int] = typer.Option(
        None, "--layers", min=1, help="Transformer blocks for --data runs (default 6)."
    ),
    max_minutes: Optional[float] = typer.Option(
        None, "--max-minutes", min=0.1, help="Stop and export after this long."
    ),
    stop_at: Optional[int] = typer.Option(
        None, "--stop-at", min=1, help="Stop and export at this step; the learning-rate schedule still spans --steps."
    ),
    init: Optional[str] = typer.Option(
        None,
        "--init",
        help="Start from this model's weights and tokenizer (a name or folder): fine-tune it. "
        "A recipe's model must be its own kind (e.g. --recipe story --init story).",
    ),
    lr: Optional[float] = typer.Option(
        None, "--lr", min=0.0, max=1.0, help="Peak learning rate (default: the recipe's; lower to fine-tune)."
    ),
    seed: int = typer.Option(0, "--seed", min=0),
    threads: Threads = "auto",
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    compile: Optional[bool] = typer.Option(
        None, "--compile/--no-compile", help="torch.compile the model (default: the recipe's)."
    ),
) -> None:
    """Train a masked-diffusion model; writes a checkpoint folder that `unmask run` can load.

    Ctrl-C saves the run and exports the model; the same command then resumes it."""
    if (recipe is None) == (not data):
        raise typer.BadParameter(
            "give either --recipe (story, sudoku, web) or --data FILE", param_hint="--recipe/--data"
        )
    if recipe is not None and (d_model or layers):
        raise typer.BadParameter(
            "--d-model and --layers size --data runs; the recipes' models are fixed", param_hint="--d-model/--layers"
        )
    if d_model is not None and d_model != 32 and d_model % 64:
        # text_recipe gives each head 64 dimensions (d_model // 64 heads), so other widths do not split.
        raise typer.BadParameter(
            f"{d_model} does not split into 64-wide heads; use 32 or a multiple of 64", param_hint="--d-model"
        )
    from ..train.loop import Interrupted

    out = out or Path("runs") / (recipe or "text")
    previous_handler = signal.signal(signal.SIGINT, interrupt_once)
    try:
        trainer, built = build_trainer(
            recipe, data, out, steps, batch_size, d_model, layers, seed, threads, device, max_minutes, stop_at, compile,
            init, lr,
        )  # fmt: skip
        folder = run_with_progress(trainer)
    except Interrupted as stop:
        typer.echo(
            f"interrupted at step {stop.step}: state saved in {trainer.state_dir}, model exported to {stop.folder}; "
            "run the same command again to resume"
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except KeyboardInterrupt:
        typer.echo("interrupted before the first step; nothing new to save")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    signal.signal(signal.SIGINT, previous_handler)
    typer.echo(f"model written to {folder}  (try: unmask run {folder} ...)")


def interrupt_once(signum, frame) -> None:
    """The first Ctrl-C stops training (which saves and exits); later ones are ignored, since
    they could only cut the save short or print tracebacks from torch's exit hooks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def build_trainer(
    recipe, data, out, steps, batch_size, d_model, layers, seed, threads, device, max_minutes, stop_at, compile,
    init=None, lr=None,
):  # fmt: skip
    """The recipe's data and a Trainer, resumed if `out` holds a run; says what each slow stage does."""

    from ..train import recipes
    from ..train.loop import Trainer

    guard(lambda: set_threads(threads))
    kwargs = {k: v for k, v in {"steps": steps, "batch_size": batch_size, "seed": seed}.items() if v is not None}
    start = None
    if init is not None:
        try:
            start = recipes.start_from(init)
        except ValueError as err:
            raise typer.BadParameter(str(err).removeprefix("--init: "), param_hint="--init") from None
        kwargs["start"] = start
    builders = {"story": recipes.story_recipe, "sudoku": recipes.sudoku_recipe, "web": recipes.web_recipe}
    if recipe is not None and recipe not in builders:
        raise typer.BadParameter(
            f"unknown recipe {recipe!r}; choose one of: {', '.join(builders)}", param_hint="--recipe"
        )
    try:
        if recipe is not None:
            built = builders[recipe](out, report=typer.echo, **kwargs)
        else:
            sizes = {k: v for k, v in {"d_model": d_model, "n_layers": layers}.items() if v is not None}
            built = recipes.text_recipe(out, list(data), report=typer.echo, **kwargs, **sizes)
    except ValueError as err:  # the recipes name the flag their message is about
        hint, _, message = str(err).partition(": ")
        if hint not in ("--init", "--data"):
            raise
        raise typer.BadParameter(message, param_hint=hint) from None
    if lr is not None:
        built.config.lr = lr
    if max_minutes is not None:
        built.config.max_minutes = max_minutes
    if compile is not None:
        built.config.compile = compile
    if stop_at is not None:
        built.config.stop_at = stop_at
    trainer = guard(
        lambda: Trainer(
            built.model_config, built.train, built.val, out, built.config, built.export_files, device,
            start=start.folder if start else None,
        )
    )  # fmt: skip
    if trainer.resume():
        typer.echo(f"resuming {out} at step {trainer.step}")
    elif start is not None:
        typer.echo(f"starting from {init} ({start.folder})")
    n_params = sum(p.numel() for p in trainer.net.parameters())
    typer.echo(f"training {built.name}: {n_params / 1e6:.2f}M parameters, {built.config.steps} steps -> {out}")
    if built.config.compile:
        typer.echo("compiling the model (the first steps are slow: a minute or more)...")
    return trainer, built


def duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


class RunNotes:
    """What the log shows beside each step record: the latest val loss, the loop's warnings, and
    once, after the first timed steps, how long the run will take on this machine."""

    def __init__(self, trainer):
        self.cfg, self.first_step = trainer.cfg, trainer.step
        self.end_step = min(self.cfg.steps, self.cfg.stop_at or self.cfg.steps)
        self.val: float | None = None
        self.step_times: list[float] = []
        self.last_elapsed: float | None = None

    def stats(self, record: dict) -> str:
        val = "-" if self.val is None else f"{self.val:.4f}"
        return f"loss {record['loss']:.4f} val {val} lr {record['lr']:.2e} {record['tokens_per_s']:.0f} tok/s"

    def update(self, record: dict) -> list[str]:
        """Takes in one step record; returns the lines worth printing on their own."""
        if "val_loss" in record:
            self.val = record["val_loss"]
        lines = [f"warning: {record['warning']}"] if "warning" in record else []
        if self.last_elapsed is not None and record["step"] > self.first_step + PACE_SKIP:
            self.step_times.append(record["elapsed_s"] - self.last_elapsed)
            if len(self.step_times) == PACE_STEPS and record["step"] < self.end_step:
                lines.append(self.pace(record))
        self.last_elapsed = record["elapsed_s"]
        return lines

    def pace(self, record: dict) -> str:
        per_step = statistics.median(self.step_times)
        left = per_step * (self.end_step - record["step"])
        line = f"~{duration(left)} to go at {per_step:.3g} s/step on this machine"
        if self.cfg.max_minutes is not None and 60 * self.cfg.max_minutes - record["elapsed_s"] < left:
            line += f" (--max-minutes {self.cfg.max_minutes:g} stops it sooner)"
        return line + "; --max-minutes or --stop-at stop early and export"


def run_with_progress(trainer) -> Path:
    """A live progress bar on a terminal; plain log lines otherwise (background runs)."""
    total, notes = trainer.cfg.steps, RunNotes(trainer)
    if not sys.stdout.isatty():

        def print_log(r: dict) -> None:
            lines = notes.update(r)
            if r["step"] % PLAIN_EVERY == 0 or "val_loss" in r:
                lines.insert(0, f"step {r['step']}/{total} {notes.stats(r)} {r['elapsed_s'] / 60:.1f} min")
            for line in lines:
                print(line, flush=True)

        return trainer.run(print_log)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns) as progress:
        task = progress.add_task("train", total=total, completed=trainer.step, stats="")

        def log(r: dict) -> None:
            for line in notes.update(r):
                progress.console.print(line, markup=False, highlight=False)
            progress.update(task, completed=r["step"], stats=notes.stats(r))

        return trainer.run(log)
