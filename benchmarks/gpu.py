"""GPU decoding speed on an 8B-shaped LLaDA: tokens/s and achieved TFLOP/s against the chip's own
bf16 matmul peak measured in the same run.

    python benchmarks/gpu.py                       # CUDA: LLaDA-8B's shape, random bf16 weights
    python benchmarks/gpu.py --device cpu --tiny   # the same code on a small model (tests, no GPU)

The checkpoint is LLaDA-8B-Instruct's config.json (/work/shared/real-checkpoints/llada-8b-instruct
when present, else the same numbers written below) with random N(0, 0.02) weights created directly
on the device in bfloat16: nothing is written to disk, nothing is downloaded. Every pass commits a
fixed number of tokens (`--per-pass`, LLaDA's even split), so runs compare at equal work. Rows:
the exact recipe (every pass over the whole canvas) and Fast-dLLM's dual cache (each block's first
pass fills the cache, later passes run only the block), at batch 1 and 8, eager and compiled
(`torch.compile` of the network; on CUDA also mode "reduce-overhead", which replays CUDA graphs).
The engine itself runs eagerly; the compiled rows wrap its network here, and a mode that fails
prints its error instead of a figure.

FLOPs are counted by torch.utils.flop_counter on one eager run of each row (every matmul and
attention the engine executes, so a smaller LM head or a cached window counts as less work), and
achieved TFLOP/s = those FLOPs / the row's median seconds. Peak: the best of repeated square bf16
matmuls (8192 on CUDA) in this process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from unmask.engine import Model
from unmask.loading import SpecialIds
from unmask.models import architecture_for

REAL = Path("/work/shared/real-checkpoints/llada-8b-instruct/config.json")
LLADA_8B = {  # GSAI-ML/LLaDA-8B-Instruct config.json, the sizes that matter here
    "model_type": "llada", "architectures": ["LLaDAModelLM"], "block_type": "llama", "d_model": 4096,
    "n_heads": 32, "n_kv_heads": 32, "n_layers": 32, "mlp_hidden_size": 12288, "vocab_size": 126464,
    "embedding_size": 126464, "rope_theta": 500000.0, "rope_full_precision": True, "rms_norm_eps": 1e-5,
    "weight_tying": False, "max_sequence_length": 4096, "mask_token_id": 126336, "eos_token_id": 126081,
    "pad_token_id": 126081,
}  # fmt: skip
TINY = {"d_model": 128, "n_heads": 4, "n_kv_heads": 4, "n_layers": 2, "mlp_hidden_size": 384}
TINY |= {"vocab_size": 512, "embedding_size": 512, "mask_token_id": 500, "eos_token_id": 1, "pad_token_id": 1}


def config_8b(tiny: bool) -> dict:
    config = json.loads(REAL.read_text()) if REAL.exists() else dict(LLADA_8B)
    return config | TINY if tiny else config


def random_model(config: dict, device: torch.device, dtype: torch.dtype, seed: int = 0) -> Model:
    """The architecture built on the meta device, then each weight created where it runs, in dtype."""
    arch = architecture_for(config)
    with torch.device("meta"):
        net = arch.make_model(arch.make_args(config))
    generator = torch.Generator(device=device).manual_seed(seed)
    for module in net.modules():
        for name, p in list(module._parameters.items()):
            if p is None:
                continue
            w = torch.empty(p.shape, dtype=dtype, device=device)
            if name == "weight" and p.ndim == 1:  # norms
                w.fill_(1.0)
            else:
                w.normal_(0.0, 0.02, generator=generator)
            module._parameters[name] = torch.nn.Parameter(w, requires_grad=False)
    net.eval()
    ids = SpecialIds(mask=config["mask_token_id"], eos=[config["eos_token_id"]], pad=config["pad_token_id"])
    return Model(net=net, config=config, family="llada", ids=ids, name="random llada-8b shape")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int, repeats: int = 10) -> float:
    """Best achieved FLOP/s of a square matmul in dtype on the device."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best


def options(recipe: str, length: int, block: int, per_pass: int) -> dict:
    steps = length // per_pass  # LLaDA's even split: per_pass tokens in every pass
    common = dict(max_new_tokens=length, steps=steps, block_length=block, temperature=0.0, algorithm="low_confidence")
    if recipe == "exact":
        return common | {"recipe": "llada"}
    return common | {"recipe": "fast-dllm", "cache": "dual", "threshold": None}


def networks(model: Model, device: torch.device, modes: list[str]) -> dict:
    """Mode name -> the Model whose network runs that way."""
    out = {}
    for mode in modes:
        if mode == "eager":
            out[mode] = model
        elif mode == "compile":
            out[mode] = replace(model, net=torch.compile(model.net, dynamic=True))
        elif mode == "cuda-graphs":
            if device.type != "cuda":
                continue
            out[mode] = replace(model, net=torch.compile(model.net, mode="reduce-overhead", dynamic=False))
    return out


def run_once(model: Model, prompt: torch.Tensor, opts: dict, device: torch.device) -> tuple[float, int, list]:
    sync(device)
    t0 = time.perf_counter()
    result = model.generate(prompt, **opts)
    sync(device)
    return time.perf_counter() - t0, result.nfe, result.sequences


def measure(args) -> list[dict]:
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    config = config_8b(args.tiny)
    model = random_model(config, device, dtype)
    n_params = sum(p.numel() for p in model.net.parameters())
    peak = matmul_peak(device, dtype, args.peak_size)
    print(
        f"{device} {torch.cuda.get_device_name(device) if device.type == 'cuda' else ''} · {n_params / 1e9:.2f}B "
        f"parameters ({'tiny' if args.tiny else 'LLaDA-8B shape'}), {args.dtype} · prompt {args.prompt}, "
        f"{args.length} new tokens, block {args.block}, {args.per_pass} per pass · "
        f"{args.dtype} matmul peak {peak / 1e12:.1f} TFLOP/s",
        flush=True,
    )
    rows = []
    vocab = config["vocab_size"]
    for batch in args.batches:
        g = torch.Generator().manual_seed(batch)
        prompt = torch.randint(2, min(vocab, 30000), (batch, args.prompt), generator=g).to(device)
        prompt[prompt == model.ids.mask] = 2
        for recipe in args.recipes:
            opts = options(recipe, args.length, args.block, args.per_pass)
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                _, nfe, reference = run_once(model, prompt, opts, device)
            flops = counter.get_total_flops()
            for mode, m in networks(model, device, args.modes).items():
                try:
                    for _ in range(args.warmup):  # compiles and captures every shape the run meets
                        run_once(m, prompt, opts, device)
                    times, same = [], True
                    for _ in range(args.repeats):
                        seconds, _, seqs = run_once(m, prompt, opts, device)
                        times.append(seconds)
                        same &= seqs == reference
                except Exception as error:  # a compile mode the installed torch cannot run here
                    print(f"  batch {batch} {recipe:<6} {mode:<12} failed: {type(error).__name__}: {error}"[:300])
                    continue
                s = statistics.median(times)
                row = dict(batch=batch, recipe=recipe, mode=mode, seconds=s, nfe=nfe, flops=flops)
                row |= dict(tokens_per_s=batch * args.length / s, tflops=flops / s / 1e12, peak_tflops=peak / 1e12)
                row |= dict(same_tokens_as_eager=same)
                rows.append(row)
                print(
                    f"  batch {batch} {recipe:<6} {mode:<12} {s:8.3f} s  {nfe:4d} passes  "
                    f"{row['tokens_per_s']:9.1f} tokens/s  {row['tflops']:8.3f} TFLOP/s  "
                    f"({100 * flops / s / peak:5.1f}% of peak)  tokens {'= eager' if same else 'differ from eager'}",
                    flush=True,
                )
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --tiny, for tests)")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer model of the same layout instead of 8B")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--batches", type=lambda s: [int(b) for b in s.split(",")], default=[1, 8])
    parser.add_argument("--recipes", type=lambda s: s.split(","), default=["exact", "dual"])
    parser.add_argument("--modes", type=lambda s: s.split(","), default=["eager", "compile", "cuda-graphs"])
    parser.add_argument("--prompt", type=int, default=64)
    parser.add_argument("--length", type=int, default=128, help="new tokens")
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--per-pass", type=int, default=2, help="tokens committed by every pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--peak-size", type=int, default=None, help="matmul size for the peak (8192; 512 on CPU)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(
            "benchmarks/gpu.py: no CUDA device is visible to torch "
            f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); run it on a GPU machine, "
            "or use --device cpu --tiny to check the script itself"
        )
    if args.device == "cpu" and not args.tiny:
        print("note: an 8B model in bf16 on CPU needs about 16 GB and minutes per pass; --tiny is the CPU check")
    if args.length % args.block or args.block % args.per_pass:
        parser.error("--length must be a multiple of --block, and --block of --per-pass")
    args.peak_size = args.peak_size or (8192 if args.device.startswith("cuda") else 512)
    torch.manual_seed(0)
    rows = measure(args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
