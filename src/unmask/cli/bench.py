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
from .common import DEFAULT_MODEL, guard, load_model, round_steps


@dataclass
class ModeResult:
    name: str
    settings: dict
    seconds: float
    nfe: int
    tokens: int

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def modes(length: int, block: int) -> list[tuple[str, dict]]:
    """(name, options) for each decoding mode at a given length and block size."""
    blocks = length // block
    return [
        ("exact, 1 step/token", {"steps": length}),
        ("exact, 1/2 steps", {"steps": round_steps(length // 2, 1)}),
        ("exact, 1/4 steps", {"steps": round_steps(length // 4, 1)}),
        ("blocks, 1 step/token", {"steps": length, "block_length": block}),
        ("threshold 0.9", {"steps": length, "block_length": block, "threshold": 0.9, "recipe": "fast-dllm"}),
        ("prefix cache", {"steps": length, "block_length": block, "cache": "prefix", "recipe": "fast-dllm"}),
        ("dual cache", {"steps": length, "block_length": block, "cache": "dual", "recipe": "fast-dllm"}),
        (
            "threshold + dual cache",
            {
                "steps": round_steps(length // 4, blocks),
                "block_length": block,
                "threshold": 0.9,
                "cache": "dual",
                "recipe": "fast-dllm",
            },
        ),
    ]


def measure(model, prompts: list[list[int]], length: int, block: int, repeats: int = 2) -> list[ModeResult]:
    from ..options import GenerationOptions

    results = []
    for name, settings in modes(length, block):
        options = GenerationOptions(max_new_tokens=length, **settings)
        best, nfe = float("inf"), 0
        for _ in range(repeats):
            start = time.perf_counter()
            out = model.generate(prompts, options=options)
            best = min(best, time.perf_counter() - start)
            nfe = out.nfe
        results.append(ModeResult(name, settings, best, nfe, length * len(prompts)))
    return results


def table(results: list[ModeResult], title: str) -> Table:
    base = results[0]
    t = Table(title=title)
    for col in ("mode", "tokens/s", "speed-up", "passes (NFE)", "seconds"):
        t.add_column(col, justify="left" if col == "mode" else "right")
    for r in results:
        t.add_row(
            r.name,
            f"{r.tokens_per_second:,.0f}",
            f"{r.tokens_per_second / base.tokens_per_second:.2f}x",
            str(r.nfe),
            f"{r.seconds:.3f}",
        )
    return t


@app.command()
def bench(
    model: Annotated[str, typer.Argument(help="Model name, folder or hub id.")] = DEFAULT_MODEL,
    prompt: Annotated[str, typer.Option("--prompt", help="Prompt text.")] = "Once upon a time",
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "-n", min=8, help="Tokens per generation.")] = 128,
    block_length: Annotated[int, typer.Option("--block-length", min=1, help="Block size for block modes.")] = 32,
    batch: Annotated[int, typer.Option("--batch", min=1, max=64, help="Prompts decoded together.")] = 1,
    repeats: Annotated[int, typer.Option("--repeats", min=1, max=20, help="Timed runs per mode (best kept).")] = 2,
    dtype: Annotated[str, typer.Option("--dtype")] = "auto",
    device: Annotated[str, typer.Option("--device")] = "auto",
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads.")] = None,
) -> None:
    """A short table of tokens/s and model passes for each decoding mode."""

    def body() -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        if max_new_tokens % block_length:
            raise ValueError(f"--block-length {block_length} must divide --max-new-tokens {max_new_tokens}")
        m = load_model(model, dtype, device)
        ids = m.tokenizer.encode(prompt, add_special_tokens=False) if m.tokenizer else [1, 2, 3]
        m.generate([ids], max_new_tokens=8, steps=2)  # warm-up
        results = measure(m, [ids] * batch, max_new_tokens, block_length, repeats)
        title = (
            f"{model} · {max_new_tokens} tokens · batch {batch} · {m.device.type} {str(m.dtype).removeprefix('torch.')}"
        )
        Console().print(table(results, title))

    guard(body)
