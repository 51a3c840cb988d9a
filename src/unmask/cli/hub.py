"""`unmask list`, `show` and `rm`: the models on this machine: embedded, named, from the hub, trained.

What a checkpoint is comes from `unmask.checkpoints` (no weight is read); this module prints it,
removes named models and removes hub models from the cache. `unmask pull` is in pull.py,
`unmask create` and `cp` in create.py.

Notable features:
- `list` and `show` print a table or `key value` lines on a terminal and in pipes alike, and one
  JSON document with `--json`.
- `rm` removes a named model's folder (never its base), or every cached revision of a repo (what
  `list` counts as its size), after asking.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer

from .. import checkpoints, pulling
from ..checkpoints import ALIASES, FolderInfo
from ..pulling import PullError, human_size
from . import app
from .common import CliError, err_console, guard


def human_count(n: Optional[int]) -> str:
    if n is None:
        return "-"
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def architecture_label(c: FolderInfo) -> str:
    label = c.model_type or "?"
    return label if c.supported else f"{label} (unsupported)"


def summary(c: FolderInfo) -> dict:
    """One `list --json` entry (also the first keys of `show --json`). A named model's path is its
    own folder; its base, base_path (the checkpoint it runs), options and system prompt follow."""
    entry = {
        "name": c.name,
        "source": c.source,
        "path": str(c.home or c.folder),
        "architecture": c.model_type,
        "supported": c.supported,
        "reason": c.reason,
        "complete": c.complete,
        "parameters": c.parameters,
        "dtype": c.dtype,
        "size": c.size,
    }
    if c.source == "named":
        entry |= {
            "base": c.base,
            "base_path": None if c.folder == c.home else str(c.folder),
            "options": c.options,
            "system": c.system,
            "template": c.template is not None,
        }
    return entry


def location(c: FolderInfo) -> str:
    return f"{c.home} (from {c.base or '?'})" if c.home is not None else str(c.folder)


# ---------------------------------------------------------------------------------------------
# unmask list


def print_table(rows: list[FolderInfo]) -> None:
    from rich.console import Console

    console = Console()
    header = ("NAME", "ARCH", "PARAMS", "SIZE", "LOCATION")
    cells = [
        (
            c.name if c.complete else f"{c.name} (incomplete)",
            architecture_label(c),
            human_count(c.parameters),
            human_size(c.size),
            location(c),
        )
        for c in rows
    ]
    if console.is_terminal:
        from rich.table import Table

        table = Table(box=None, header_style="bold", pad_edge=False)
        for title in header:
            table.add_column(
                title, no_wrap=title != "LOCATION", justify="right" if title in ("PARAMS", "SIZE") else "left"
            )
        for row in cells:
            table.add_row(*row)
        console.print(table)
    else:
        widths = [max(len(r[i]) for r in [header, *cells]) for i in range(len(header))]
        for row in [header, *cells]:
            typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
    # Why each unsupported model is, under the table, where a long reason does not widen every row.
    unsupported = [c for c in rows if not c.supported]
    if unsupported:
        typer.echo()
    for c in unsupported:
        typer.echo(f"{c.name} is not supported: {c.reason or 'no reason recorded'}")


@app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json", help="Print a JSON array instead of a table.")) -> None:
    """List embedded and named models, the models in the Hugging Face cache, and the models trained
    under ./runs."""

    def go() -> None:
        rows = (
            checkpoints.embedded_checkpoints()
            + checkpoints.named_checkpoints()
            + checkpoints.cached_checkpoints()
            + checkpoints.trained_checkpoints()
        )
        if as_json:
            typer.echo(json.dumps([summary(c) for c in rows], indent=2))
        elif rows:
            print_table(rows)
        else:
            err_console.print("no models yet; download one with `unmask pull dream` (or any hub id)", highlight=False)

    guard(go)


app.command("ls", hidden=True)(list_models)


# ---------------------------------------------------------------------------------------------
# unmask show


def model_details(ref: str, folder: Path) -> dict:
    """Everything `show` prints, read from the folder's files (no weights are loaded)."""
    checkpoints.read_config(folder)  # a missing or broken config is an error here
    checkpoint = checkpoints.named_checkpoint(ref)
    if checkpoint is None:
        source = checkpoints.source_of(folder)
        name = ALIASES.get(ref, ref) if source == "hub" else ref
        checkpoint = checkpoints.describe(folder, name, source)
    mask, eos = checkpoints.special_tokens(folder)
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
    needs = checkpoints.memory_needs(folder)
    memory = {mode: asdict(need) | {"total": need.total} for mode, need in needs.items()}
    return summary(checkpoint) | {
        "memory": memory,
        "context_length": checkpoint.context_length,
        "mask_token_id": mask,
        "eos_token_ids": eos,
        "tokenizer": checkpoint.tokenizer,
        "chat_template": checkpoint.chat_template,
        "defaults": checkpoint.defaults,
        "files": files,
    }


SOURCE_LABELS = {
    "hub": "hub cache",
    "embedded": "embedded in unmask",
    "folder": "local folder",
    "named": "named model (unmask create)",
    "trained": "trained here (unmask train)",
}


def named_lines(d: dict) -> list[tuple[str, str]]:
    """The lines only a named model has: what it is made from and what it sets."""
    if d["source"] != "named":
        return []
    options = "  ".join(f"{k}={v}" for k, v in d["options"].items()) or "none"
    system = d["system"] if d["system"] is None else " ".join(d["system"].split())
    return [
        ("base", f"{d['base']} ({d['base_path']})"),
        ("parameters set", options),
        ("system prompt", system or "none"),
        ("template", "its own" if d["template"] else "the base's"),
    ]


def memory_lines(memory: dict) -> list[tuple[str, str]]:
    """One line per dtype or quantization: the total, then its parts (a 512-token canvas)."""
    return [
        (
            f"memory {mode}",
            f"{human_size(m['total'])} (weights {human_size(m['weights'])}, cache {human_size(m['cache'])}, "
            f"activations {human_size(m['activations'])}, runtime {human_size(m['runtime'])})",
        )
        for mode, m in memory.items()
    ] or [("memory", "-")]


def print_details(d: dict) -> None:
    defaults = "  ".join(f"{k}={v}" for k, v in d["defaults"].items() if v is not None)
    params = "-" if d["parameters"] is None else f"{human_count(d['parameters'])} ({d['parameters']:,})"
    lines = [
        ("name", d["name"]),
        ("source", SOURCE_LABELS[d["source"]]),
        *named_lines(d),
        (
            "architecture",
            (d["architecture"] or "?") if d["supported"] else f"{d['architecture']}, not supported: {d['reason']}",
        ),
        ("parameters", params if d["complete"] else "- (no weights found: incomplete download?)"),
        ("dtype", d["dtype"] or "-"),
        *memory_lines(d["memory"]),
        ("context length", str(d["context_length"] or "-")),
        ("mask id", "-" if d["mask_token_id"] is None else str(d["mask_token_id"])),
        ("eos ids", ", ".join(map(str, d["eos_token_ids"])) or "-"),
        ("tokenizer", "yes" if d["tokenizer"] else "no"),
        ("chat template", "yes" if d["chat_template"] else "no"),
        ("decoding", defaults or "none shipped (unmask's defaults apply)"),
        ("location", d["path"]),
        ("size", human_size(d["size"])),
    ]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        typer.echo(f"{key:<{width}}  {value}")
    typer.echo("files")
    names = max((len(n) for n in d["files"]), default=0)
    for name, size in d["files"].items():
        typer.echo(f"  {name:<{names}}  {human_size(size):>8}")


@app.command()
def show(
    model: str = typer.Argument(
        ..., help="Embedded or named model, checkpoint folder, alias or hub id (already pulled)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show a model's architecture, size, memory needed per dtype and quantization, special tokens,
    chat template and default decoding settings."""

    def go() -> None:
        details = model_details(model, checkpoints.folder_of(model))
        if as_json:
            typer.echo(json.dumps(details, indent=2))
        else:
            print_details(details)

    guard(go)


# ---------------------------------------------------------------------------------------------
# unmask rm


def hub_repo_id(model: str, verb: str) -> str:
    """The hub id a pull/rm argument names (`pulling.hub_repo_id`); its refusals as CliErrors."""
    try:
        return pulling.hub_repo_id(model, verb)
    except PullError as err:
        raise CliError(err.message) from None


def confirmed(question: str) -> bool:
    try:
        return typer.confirm(question, default=False, err=True)
    except typer.Abort:  # no answer (end of input)
        err_console.print()
        return False


def remove_named(name: str, home: Path, yes: bool) -> None:
    """Remove a named model's folder (its model.json); the checkpoint it is made from stays."""
    if not yes and not confirmed(f"remove the named model {name} ({home})?"):
        raise CliError(f"kept {name}; nothing was removed")
    shutil.rmtree(home)
    typer.echo(f"removed {name} (a named model; the model it was made from is kept)")


@app.command()
def rm(
    model: str = typer.Argument(..., help="A named model, or the alias or hub id of a pulled model."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Remove a named model, or a pulled model (every cached revision) from the Hugging Face cache."""

    def go() -> None:
        from huggingface_hub import constants

        home = checkpoints.named_home(model)
        if home is not None:
            remove_named(model, home, yes)
            return
        repo_id = hub_repo_id(model, "rm")
        cache = checkpoints.scan_cache()
        repo = (
            next((r for r in cache.repos if r.repo_type == "model" and r.repo_id == repo_id), None) if cache else None
        )
        if repo is None:
            raise CliError(f"{repo_id} is not in the hub cache ({constants.HF_HUB_CACHE}); `unmask list` shows what is")
        size = human_size(repo.size_on_disk)
        question = f"remove {repo_id} ({size}, {len(repo.revisions)} revision(s)) from {repo.repo_path}?"
        if not yes and not confirmed(question):
            raise CliError(f"kept {repo_id}; nothing was removed")
        cache.delete_revisions(*(r.commit_hash for r in repo.revisions)).execute()
        typer.echo(f"removed {repo_id} ({human_size(repo.size_on_disk)} freed)")

    guard(go)
