"""`unmask train`: masked-diffusion training from a recipe or from your own text files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from . import app


@app.command()
def train(
    recipe: Optional[str] = typer.Option(None, "--recipe", help="Built-in recipe: story or sudoku."),
    data: Optional[list[Path]] = typer.Option(None, "--data", help="Your own UTF-8 text files (repeatable)."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Run folder (resumed if it holds a run). Default: runs/<recipe>."
    ),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Optimizer steps (default: the recipe's)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Sequences per step."),
    max_minutes: Optional[float] = typer.Option(
        None, "--max-minutes", min=0.1, help="Stop and export after this long."
    ),
    stop_at: Optional[int] = typer.Option(
        None, "--stop-at", min=1, help="Stop and export at this step; the learning-rate schedule still spans --steps."
    ),
    seed: int = typer.Option(0, "--seed", min=0),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads (default: all cores)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    compile: Optional[bool] = typer.Option(
        None, "--compile/--no-compile", help="torch.compile the model (default: the recipe's)."
    ),
) -> None:
    """Train a masked-diffusion model; writes a checkpoint folder that `unmask run` can load."""
    import torch

    from ..train import recipes
    from ..train.loop import Trainer, print_log

    if (recipe is None) == (not data):
        raise typer.BadParameter("give either --recipe (story, sudoku) or --data FILE", param_hint="--recipe/--data")
    if threads:
        torch.set_num_threads(threads)
    kwargs = {k: v for k, v in {"steps": steps, "batch_size": batch_size, "seed": seed}.items() if v is not None}
    if recipe is not None:
        builders = {"story": recipes.story_recipe, "sudoku": recipes.sudoku_recipe}
        if recipe not in builders:
            raise typer.BadParameter(
                f"unknown recipe {recipe!r}; choose one of: {', '.join(builders)}", param_hint="--recipe"
            )
        out = out or Path("runs") / recipe
        built = builders[recipe](out, **kwargs)
    else:
        out = out or Path("runs") / "text"
        try:
            built = recipes.text_recipe(out, list(data), **kwargs)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--data") from None
    if max_minutes is not None:
        built.config.max_minutes = max_minutes
    if compile is not None:
        built.config.compile = compile
    if stop_at is not None:
        built.config.stop_at = stop_at
    trainer = Trainer(built.model_config, built.train, built.val, out, built.config, built.export_files, device)
    if trainer.resume():
        typer.echo(f"resuming {out} at step {trainer.step}")
    n_params = sum(p.numel() for p in trainer.net.parameters())
    typer.echo(f"training {built.name}: {n_params / 1e6:.2f}M parameters, {built.config.steps} steps -> {out}")
    folder = run_with_progress(trainer, built.config.steps, print_log)
    typer.echo(f"model written to {folder}  (try: unmask run {folder} ...)")


def run_with_progress(trainer, total: int, print_log) -> Path:
    """A live progress bar on a terminal; plain log lines otherwise (background runs)."""
    if not sys.stdout.isatty():
        return trainer.run(lambda r: print_log(r, total))
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
            val = f" val {r['val_loss']:.3f}" if "val_loss" in r else ""
            progress.update(task, completed=r["step"], stats=f"loss {r['loss']:.3f}{val} {r['tokens_per_s']:.0f} tok/s")

        return trainer.run(log)
