"""`unmask bench`: tokens/s and model passes for each decoding mode, as ratios in one run.

The modes are the speed dial of a diffusion model: the exact reference recipe with one step per
token, fewer steps, Fast-dLLM's confidence-threshold parallel decoding, and its prefix and dual
KV caches (arXiv:2505.22618). Every mode decodes the same prompts on the same loaded model, and
each is timed as the best of a few repeats, so the ratios compare like with like.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from . import app
from .common import DEFAULT_MODEL, Threads, err_console, guard, load_model, set_threads


@dataclass
class ModeResult:
    name: str
    settings: dict
    seconds: float
    nfe: int
    tokens: int  # completion tokens of every row: the text, not end padding

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def reference_modes(length: int, block: int) -> list[tuple[str, dict]]:
    """(name, options) for the reference recipes' speed dial, exactly as given (no model defaults)."""
    from ..engine import steps_for

    blocks = length // block
    fast_dllm = {"block_length": block, "recipe": "fast-dllm"}
    return [
        ("exact, 1 step/token", {"steps": length}),
        ("exact, 1/2 steps", {"steps": steps_for(length, 0.5, 1)}),
        ("exact, 1/4 steps", {"steps": steps_for(length, 0.25, 1)}),
        ("blocks, 1 step/token", {"steps": length, "block_length": block}),
        ("threshold 0.9", {"steps": length, "threshold": 0.9} | fast_dllm),
        ("prefix cache", {"steps": length, "cache": "prefix"} | fast_dllm),
        ("dual cache", {"steps": length, "cache": "dual"} | fast_dllm),
        (
            "threshold + dual cache",
            {"steps": steps_for(length, 0.25, blocks), "threshold": 0.9, "cache": "dual"} | fast_dllm,
        ),
    ]


def block_modes(family: str, block: int) -> list[tuple[str, dict]]:
    """Block diffusion's dial: the exact cache of finished blocks against recomputing them (for
    LLaDA2, its pipeline's bidirectional window re-run; Fast-dLLM v2 always caches finished blocks
    and adds its sub-block cache), steps per block and the confidence threshold."""
    base = {"block_length": block, "recipe": "unmask"}
    cached = {"cache": "prefix"} | base
    if family == "diffusion-gemma":  # its encoder always caches; passes per canvas are the dial
        return [
            ("48 passes/canvas (its default)", {"steps_per_block": 48} | cached),
            ("block cache, 1 step/token", {"steps_per_block": block} | cached),
            ("block cache, 1/2 steps", {"steps_per_block": max(1, block // 2)} | cached),
            ("block cache, 1/4 steps", {"steps_per_block": max(1, block // 4)} | cached),
        ]
    out = [("no block cache, 1 step/token", {"steps_per_block": block, "cache": "none"} | base)]
    if family == "fast-dllm-v2":
        out[0] = ("block cache, 1 step/token", {"steps_per_block": block} | cached)
        out.append(("+ sub-block cache", {"steps_per_block": block, "cache": "dual"} | base))
    else:
        out.append(("block cache, 1 step/token", {"steps_per_block": block} | cached))
    out += [
        ("block cache, 1/2 steps", {"steps_per_block": max(1, block // 2)} | cached),
        ("block cache, 1/4 steps", {"steps_per_block": max(1, block // 4)} | cached),
        ("threshold 0.9, no block cache", {"steps_per_block": block, "threshold": 0.9, "cache": "none"} | base),
        ("threshold 0.9 + block cache", {"steps_per_block": block, "threshold": 0.9} | cached),
    ]
    return out


def modes(model, length: int, block: int) -> list[tuple[str, object]]:
    """(name, GenerationOptions): the model's own defaults and presets (as `unmask run` resolves
    them), then the reference recipes (block diffusion's own dial for those families)."""
    from ..engine import BLOCK_FAMILIES, PRESETS, resolve
    from ..options import GenerationOptions

    asked = {"max_new_tokens": length}
    out = [("model defaults", resolve(model, asked))]
    out += [(f"--{preset}", resolve(model, asked, preset)) for preset in PRESETS]
    dial = block_modes(model.family, block) if model.family in BLOCK_FAMILIES else reference_modes(length, block)
    out += [(name, GenerationOptions(max_new_tokens=length, **settings)) for name, settings in dial]
    return out


def timed(model, prompts: list[list[int]], options) -> tuple[float, int, int]:
    """(seconds, passes, completion tokens over all rows) of one generation."""
    from ..engine import Canvas, Completion, StepEvent

    completions = [Completion(model, Canvas(p), options) for p in prompts]
    width = max(len(p) for p in prompts)
    start = time.perf_counter()
    last = None
    for step in model.stream(prompts, None, options):
        for row, c in enumerate(completions):
            c.step(StepEvent.of(step, row, width, options.max_new_tokens))
        last = step
        if all(step.finished):
            break
    seconds = time.perf_counter() - start
    for row, c in enumerate(completions):
        c.finish(last.canvas[row, width:].tolist() if last is not None else c.region)
    return seconds, last.nfe if last is not None else 0, sum(c.completion_tokens for c in completions)


def measure(
    model, prompts: list[list[int]], length: int, block: int, repeats: int = 2, progress=None
) -> list[ModeResult]:
    results = []
    for name, options in modes(model, length, block):
        if progress is not None:
            progress(name)
        best, nfe, tokens = float("inf"), 0, 0
        for _ in range(repeats):
            seconds, nfe, tokens = timed(model, prompts, options)
            best = min(best, seconds)
        results.append(ModeResult(name, options.model_dump(exclude_defaults=True), best, nfe, tokens))
    return results


def table(results: list[ModeResult], title: str) -> Table:
    # Ratios against the reference recipe at one step per token, whatever the model ships.
    names = ("exact, 1 step/token", "no block cache, 1 step/token", "block cache, 1 step/token")
    base = next((r for r in results if r.name in names), results[0])
    t = Table(title=title)
    for col in ("mode", "tokens/s", "speed-up", "passes (NFE)", "tokens/pass", "seconds"):
        t.add_column(col, justify="left" if col == "mode" else "right", no_wrap=col == "mode")
    for r in results:
        t.add_row(
            r.name,
            f"{r.tokens_per_second:,.0f}",
            f"{r.tokens_per_second / base.tokens_per_second:.2f}x" if base.tokens_per_second else "-",
            str(r.nfe),
            f"{r.tokens / r.nfe:.2f}" if r.nfe else "-",
            f"{r.seconds:.3f}",
        )
    return t


@app.command()
def bench(
    model: Annotated[str, typer.Argument(help="Model name, folder or hub id.")] = DEFAULT_MODEL,
    prompt: Annotated[str, typer.Option("--prompt", help="Prompt text.")] = "Once upon a time",
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "-n", min=8, help="Tokens per generation.")] = 128,
    block_length: Annotated[
        Optional[int],
        typer.Option("--block-length", min=1, help="Block size for block modes; default 32, or the model's block."),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, max=64, help="Prompts decoded together.")] = 1,
    repeats: Annotated[int, typer.Option("--repeats", min=1, max=20, help="Timed runs per mode (best kept).")] = 2,
    dtype: Annotated[str, typer.Option("--dtype")] = "auto",
    device: Annotated[str, typer.Option("--device")] = "auto",
    quantize: Annotated[
        Optional[str], typer.Option("--quantize", help="int8 or int4: quantize the weights as they load.")
    ] = None,
    threads: Threads = "auto",
) -> None:
    """A short table of tokens/s and model passes for each decoding mode."""

    def body() -> None:
        from ..engine import BLOCK_FAMILIES, block_size

        set_threads(threads)
        m = load_model(model, dtype, device, quantize=quantize)
        block = block_length or (block_size(m) if m.family in BLOCK_FAMILIES else None) or 32
        if max_new_tokens % block and m.family not in BLOCK_FAMILIES:
            raise ValueError(f"--block-length {block} must divide --max-new-tokens {max_new_tokens}")
        ids = m.tokenizer.encode(prompt, add_special_tokens=False) if m.tokenizer else [1, 2, 3]
        m.generate([ids], max_new_tokens=8, steps=2)  # warm-up
        with err_console.status("measuring…") as status:
            results = measure(m, [ids] * batch, max_new_tokens, block, repeats, lambda n: status.update(n))
        title = (
            f"{model} · {max_new_tokens} tokens · batch {batch} · {m.device.type} {str(m.dtype).removeprefix('torch.')}"
        )
        Console().print(table(results, title))

    guard(body)
