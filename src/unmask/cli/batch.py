"""`unmask batch`: a model over a JSONL file, line by line, batched, resumable; locally or on Ray."""

from __future__ import annotations

import time
from typing import Annotated, Optional

import typer

from . import app
from .common import CliError, Threads, err_console, guard, load_model, set_threads
from .run import (
    Algorithm,
    Balanced,
    Best,
    BlockLength,
    Ctx,
    Device,
    Dtype,
    Fast,
    MaxNew,
    Quantize,
    Seed,
    Steps,
    Temperature,
    Threshold,
    TopK,
    TopP,
    decoding_flags,
    pick_preset,
)
from .scale import NumCpus, NumGpus, RayAddress, RayFlag, Replicas, need_ray, replica_threads


@app.command()
def batch(
    model: Annotated[str, typer.Argument(help="Embedded name (story), checkpoint folder, or hub id/alias.")],
    input_path: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help='JSONL, a line per request: {"id"?, "prompt" | "messages" | "template", options..., "preset"?}. '
            "With --ray also any URI Ray Data reads (s3://, gs://, ...).",
        ),
    ],
    output: Annotated[
        str, typer.Option("--output", "-o", help="JSONL answers, in input order; rerun to resume (append).")
    ],
    steps: Steps = None,
    max_new_tokens: MaxNew = None,
    block_length: BlockLength = None,
    algorithm: Algorithm = None,
    temperature: Temperature = None,
    top_p: TopP = None,
    top_k: TopK = None,
    threshold: Threshold = None,
    seed: Seed = None,
    fast: Fast = False,
    balanced: Balanced = False,
    best: Best = False,
    limit: Annotated[
        Optional[int], typer.Option("--limit", min=1, help="Answer at most N new lines, then stop (rerun resumes).")
    ] = None,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Lines denoised together in one pass.")] = 16,
    ray: RayFlag = False,
    ray_address: RayAddress = None,
    replicas: Replicas = 1,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="--ray: lines per actor call.")] = 32,
    num_cpus: NumCpus = 1,
    num_gpus: NumGpus = 0,
    ctx: Ctx = None,
    threads: Threads = "auto",
    dtype: Dtype = "auto",
    device: Device = "auto",
    quantize: Quantize = None,
) -> None:
    """Answer every line of a JSONL file; each output line carries the input's id, the text, the
    finish reason, usage and timings, exactly as `unmask run --json` answers the same prompt.

    Lines with the same options share model passes. Ids already in OUTPUT are skipped, so an
    interrupted job resumes where it stopped. A bad line is reported with its line number (and in
    OUTPUT as {"id", "error"}) and the job goes on; the exit status is 1 if any line failed.
    """
    flags = decoding_flags(locals())
    use_ray = ray or ray_address is not None

    def body() -> int:
        from ..scale.lines import JobSettings, read_lines, resume

        preset = pick_preset(fast, balanced, best)
        settings = JobSettings(flags, preset, ctx)
        if use_ray:
            need_ray()
        raw = read_input(input_path)
        state = resume(output)
        if state.cut:
            err_console.print(f"[yellow]{output}: cut off an incomplete last line ({state.cut} bytes)[/]")
        lines = list(read_lines(raw, state.done))
        if limit is not None:
            lines = lines[:limit]
        set_threads(threads)
        if use_ray:
            from ..scale.ray_batch import answer_on_ray, connect

            connect(ray_address)
            load = {"dtype": dtype, "device": device, "quantize": quantize}
            answers = answer_on_ray(
                model,
                lines,
                settings,
                load=load,
                replicas=replicas,
                batch_size=batch_size,
                num_cpus=num_cpus,
                num_gpus=num_gpus,
                max_batch=max_batch,
                threads=replica_threads(threads, num_cpus),
            )
            return write_all(answers, lines, output, state)
        from ..scale.lines import answer_lines, job_engine

        m = load_model(model, dtype, device, quantize=quantize)
        engine = job_engine(m, max_batch)
        try:
            return write_all(answer_lines(m, lines, engine, settings), lines, output, state)
        finally:
            engine.close(drain=False)

    failures = guard(body)
    if failures:
        raise typer.Exit(1)


def read_input(path: str) -> list[str]:
    """The input's lines: a local file, or (with pyarrow, which Ray installs) a URI."""
    from ..scale.ray_batch import read_text

    try:
        return read_text(path)
    except ImportError:
        raise CliError(f"{path}: reading a URI needs pyarrow: pip install 'unmask[ray]'") from None
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except UnicodeDecodeError as err:
        raise CliError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def write_all(answers, lines, output: str, state) -> int:
    """Write answers as they come, in order, with a progress bar; returns the lines that failed
    (this run's and those already in the output)."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..scale.lines import OutputFile

    columns = [TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    failed, started = 0, time.perf_counter()
    with OutputFile(output) as out, Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("lines", total=len(lines))
        for record in answers:
            out.write(record)
            if "error" in record:
                failed += 1
                e = record["error"]
                where = f" {e['field']}:" if e.get("field") else ""
                bar.console.print(f"[red]line {e['line']}:[/]{escape(where)} {escape(e['message'])}", highlight=False)
            bar.advance(task)
    seconds = time.perf_counter() - started
    done = len(lines) - failed
    rate = f", {done / seconds:.1f} lines/s" if seconds > 0 and done else ""
    skipped = f"; {len(state.done)} already in {output}" if state.done else ""
    err_console.print(f"answered {done} of {len(lines)} lines in {seconds:.1f} s{rate}{skipped}", highlight=False)
    if failed + state.errors:
        err_console.print(f"[red]{failed + state.errors} lines failed[/] (see their error in {output})")
    return failed + state.errors
