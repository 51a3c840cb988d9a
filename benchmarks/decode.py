"""Decoding speed for each mode, as ratios against the plain recipe measured in the same run.

    python benchmarks/decode.py                         # the embedded story model (LLaDA format)
    python benchmarks/decode.py --model path/or/name    # any checkpoint
    python benchmarks/decode.py --random dream          # a random Dream-format model of the same size
    python benchmarks/decode.py --random sdar           # block diffusion (sdar, llada2, fast-dllm-v2)
    python benchmarks/decode.py --model tests/golden/dgemma-tiny   # DiffusionGemma: passes per canvas

Modes: the exact reference recipe with one step per token and with fewer steps, LLaDA blocks,
Fast-dLLM confidence-threshold decoding, the prefix and dual KV caches, and threshold + dual cache
(see unmask/cli/bench.py). tokens/s counts every canvas position, so the ratios are what the
modes cost, not how much text they write. Random weights make the threshold modes pessimistic:
an untrained model is rarely confident. For the block diffusion families the dial is their own:
the exact cache of finished blocks against recomputing them, steps per block and the threshold,
with tokens per model pass beside tokens/s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from rich.console import Console

import unmask
from unmask.cli.bench import measure, table
from unmask.engine import BLOCK_FAMILIES, block_size

REAL = Path(__file__).parent.parent / "tests" / "real"
BLOCK_CONFIGS = {"sdar": "sdar-1.7b-chat", "llada2": "llada2.0-mini", "fast-dllm-v2": "fast-dllm-v2-7b"}


def random_checkpoint(family: str, folder: Path) -> Path:
    """A random-weight checkpoint with the story model's sizes, in Dream or LLaDA format, or a
    block diffusion family's real config at that size."""
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
    if family in BLOCK_CONFIGS:
        # The real config (tests/real) at the story model's size: 6 layers of width 256, its vocabulary.
        real = json.loads((REAL / BLOCK_CONFIGS[family] / "config.json").read_text())
        config = real | {
            "hidden_size": 256,
            "intermediate_size": 768,
            "num_hidden_layers": 6,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "head_dim": 64,
            "vocab_size": 3379,
            "mask_token_id": 1,
            "eos_token_id": 0,
            "pad_token_id": 0,
        }
        if family == "llada2":
            config |= {"model_type": "llada2_moe", "moe_intermediate_size": 128, "num_experts": 16}
            config |= {"num_experts_per_tok": 4, "n_group": 4, "topk_group": 2, "rotary_dim": 32}
        if "layer_types" in config:
            config["layer_types"] = config["layer_types"][:6]
    arch = architecture_for(config)
    torch.manual_seed(0)
    net = arch.make_model(arch.make_args(config))
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="checkpoint (default: story)")
    parser.add_argument(
        "--random", choices=["dream", "llada", *BLOCK_CONFIGS], help="use random weights of the story model's size"
    )
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--block", type=int, default=None, help="block length (default 32, or the model's block)")
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
        block = args.block or (block_size(model) if model.family in BLOCK_FAMILIES else None) or 32
        results = measure(model, [prompt] * args.batch, args.length, block, args.repeats)
        name = f"random {args.random}" if args.random else str(ref)
        title = (
            f"{name} ({model.num_parameters / 1e6:.1f}M) · {args.length} tokens · block {block} · "
            f"batch {args.batch} · {model.device.type} {torch.get_num_threads()} threads"
        )
        Console().print(table(results, title))


if __name__ == "__main__":
    main()
