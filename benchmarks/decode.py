"""Decoding speed for each mode, as ratios against the plain recipe measured in the same run.

    python benchmarks/decode.py                         # the embedded story model (LLaDA format)
    python benchmarks/decode.py --model path/or/name    # any checkpoint
    python benchmarks/decode.py --random dream          # a random Dream-format model of the same size

Modes: the exact reference recipe with one step per token and with fewer steps, LLaDA blocks,
Fast-dLLM confidence-threshold decoding, the prefix and dual KV caches, and threshold + dual cache
(see unmask/cli/bench.py). tokens/s counts every canvas position, so the ratios are what the
modes cost, not how much text they write. Random weights make the threshold modes pessimistic:
an untrained model is rarely confident.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from rich.console import Console

import unmask
from unmask.cli.bench import measure, table


def random_checkpoint(family: str, folder: Path) -> Path:
    """A random-weight checkpoint with the story model's sizes, in Dream or LLaDA format."""
    import json

    from safetensors.torch import save_file

    from unmask.models import architecture_for
    from unmask.train.recipes import llada_config

    config = llada_config(3379, d_model=256, n_layers=6, n_heads=4, mlp=768, max_len=1024)
    if family == "dream":
        config = {
            "model_type": "Dream",
            "vocab_size": 3379,
            "hidden_size": 256,
            "intermediate_size": 768,
            "num_hidden_layers": 6,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "mask_token_id": 1,
            "eos_token_id": 0,
            "pad_token_id": 0,
            "rope_theta": 10000.0,
        }
    arch = architecture_for(config["model_type"])
    torch.manual_seed(0)
    net = arch.make_model(arch.make_args(config))
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="checkpoint (default: story)")
    parser.add_argument("--random", choices=["dream", "llada"], help="use random weights of the story model's size")
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        ref = random_checkpoint(args.random, Path(tmp)) if args.random else (args.model or "story")
        model = unmask.load(ref)
        prompt = (
            model.tokenizer.encode("Once upon a time,", add_special_tokens=False) if model.tokenizer else [5, 6, 7, 8]
        )
        model.generate([prompt], max_new_tokens=8, steps=2)  # warm-up
        results = measure(model, [prompt] * args.batch, args.length, args.block, args.repeats)
        name = f"random {args.random}" if args.random else str(ref)
        title = (
            f"{name} ({model.num_parameters / 1e6:.1f}M) · {args.length} tokens · block {args.block} · "
            f"batch {args.batch} · {model.device.type} {torch.get_num_threads()} threads"
        )
        Console().print(table(results, title))


if __name__ == "__main__":
    main()
