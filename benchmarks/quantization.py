"""What int8 / int4 weights cost in quality and buy in memory and speed, as ratios from one run.

    python benchmarks/quantization.py                  # 48 stories per mode
    python benchmarks/quantization.py --samples 16     # quicker, wider intervals
    python benchmarks/quantization.py --json out.json  # also write the figures

1. story (embedded, LLaDA format): the share of generated sentences the story grammar accepts at
   the shipped defaults (64 steps, 128 tokens), tokens/s, and how far each mode's masked-token
   predictions are from float32's (KL divergence, top-1 agreement) on held-out stories. The modes
   take turns in rounds of 8 stories (the same prompts and seeds), so load noise hits them alike.
2. layer choices (story): the same fidelity figures for the alternatives models/quant.py weighs:
   the token tables in int4, the LM head in int4 or int8, other int4 group sizes.
3. 0.5B (Qwen2.5-0.5B's shape, random bfloat16 weights, its parameter names): peak RSS of a load and
   one forward pass (which reads every weight) in a subprocess, less an import-only baseline, and
   tokens/s, as ratios to bfloat16.
4. Dream-7B with 4 layers (its config.json, real widths and vocabulary): peak RSS of a load per
   mode against the loader's estimate, and the estimate for the real 28 layers against the file
   arithmetic (the hub index's size for bfloat16, the tensors `unmask quantize` writes otherwise).

int8 and int4 compute in bfloat16 (what dtype=auto picks on a CPU with native bfloat16).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import torch

import unmask
from unmask import loading
from unmask.models import architecture_for, quant
from unmask.tasks import stories

sys.path.insert(0, str(Path(__file__).parent))
from embedded_quality import story_quality, training_sentences  # noqa: E402

MODES = [("float32", "float32", None), ("bfloat16", "bfloat16", None), ("int8", "bfloat16", "int8")]
MODES += [("int4", "bfloat16", "int4")]
ROUND = 8  # stories per turn: one of each story prompt (embedded_quality.STORY_PROMPTS)
DREAM_7B = Path("/work/shared/real-checkpoints/dream-v0-instruct-7b")
QWEN_05B = {  # Qwen2.5-0.5B's config.json, in the Dream (Qwen2) layout
    "model_type": "Dream",
    "vocab_size": 151936,
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "tie_word_embeddings": True,
    "rope_theta": 1000000.0,
    "mask_token_id": 151665,
    "eos_token_id": 151643,
    "pad_token_id": 151643,
    "torch_dtype": "bfloat16",
}
MB = 2**20
GB = 1e9

RSS_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import torch
    import unmask.loading as loading

    folder, dtype, quantize = sys.argv[1], sys.argv[2], sys.argv[3]
    start = time.perf_counter()
    try:
        checkpoint = loading.load_checkpoint(folder, dtype, "cpu", None if quantize == "none" else quantize)
    except loading.ModelLoadError as err:
        print("refused", err)
        raise SystemExit(0)
    seconds = time.perf_counter() - start
    with torch.no_grad():  # one pass reads every weight: a mapped file's pages count from then on
        checkpoint.net(torch.arange(8)[None])
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print(int(line.split()[1]) * 1024, seconds)
    """
)
# The baseline a load's peak RSS is measured from: the same process with a model of a few kB
# (imports, kernel libraries), per mode.
TINY = QWEN_05B | {"vocab_size": 512, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2}
TINY |= {"num_attention_heads": 4, "num_key_value_heads": 2, "mask_token_id": 511, "eos_token_id": 0}
TINY |= {"pad_token_id": 0}


def peak_rss(folder: Path, dtype: str, quantize: str | None = None) -> tuple[float | None, float, str]:
    """(peak RSS bytes, load seconds, refusal) of a load of `folder` and one pass, in a fresh process."""
    args = [sys.executable, "-c", RSS_SCRIPT, str(folder), dtype, quantize or "none"]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    out = done.stdout.strip()
    if out.startswith("refused"):
        return None, 0.0, out.removeprefix("refused ")
    rss, seconds = out.split()
    return float(rss), float(seconds), ""


def load_rss(folder: Path, tiny: Path) -> dict:
    """label -> peak RSS over the tiny model's (None when the fit check refused), load seconds, refusal."""
    rows = {}
    for label, dtype, q in MODES:
        rss, seconds, refused = peak_rss(folder, dtype, q)
        base = peak_rss(tiny, dtype, q)[0]
        rows[label] = {"rss": None if rss is None else rss - base, "load_seconds": seconds, "refused": refused}
    return rows


def random_checkpoint(folder: Path, config: dict, seed: int = 0) -> Path:
    """A random bfloat16 checkpoint with the architecture's real parameter names, written a tensor
    at a time (never the whole model in memory); a tied table is stored once, as the hub does."""
    folder.mkdir(parents=True, exist_ok=True)
    arch = architecture_for(config["model_type"])
    with torch.device("meta"):
        net = arch.make_model(arch.make_args(config))
    layout = {name: (torch.bfloat16, tuple(p.shape)) for name, p in net.state_dict().items()}
    if config.get("tie_word_embeddings"):
        del layout["lm_head.weight"]
    generator = torch.Generator().manual_seed(seed)

    def produce(name: str) -> torch.Tensor:
        shape = layout[name][1]
        if name.endswith("norm.weight"):
            return torch.ones(shape, dtype=torch.bfloat16)
        return torch.empty(shape, dtype=torch.bfloat16).normal_(0, 0.02, generator=generator)

    loading.write_safetensors(folder / "model.safetensors", layout, produce)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def parameter_count(config: dict) -> int:
    arch = architecture_for(config["model_type"])
    with torch.device("meta"):
        return sum(p.numel() for p in arch.make_model(arch.make_args(config)).parameters())


def stored_file_bytes(config: dict, mode: str | None) -> int:
    """Bytes of the weights `unmask quantize` would write for `config` (bfloat16 source), by arithmetic."""
    arch = architecture_for(config["model_type"])
    with torch.device("meta"):
        net = arch.make_model(arch.make_args(config))
    plan = quant.plan(net, mode) if mode else {}
    total = 0
    seen = set()
    for name, p in net.named_parameters():  # named_parameters lists a tied table once
        if id(p) in seen:
            continue
        seen.add(id(p))
        module = name.removesuffix(".weight")
        if module in plan:
            for shape, dtype in quant.stored_shapes(tuple(p.shape), plan[module]).values():
                total += math.prod(shape) * dtype.itemsize
        else:
            total += p.numel() * 2
    return total


def masked_fidelity(reference_net, net, ids: torch.Tensor, masked: torch.Tensor, mask_id: int) -> dict:
    """KL(float32 || net) and top-1 agreement of the predictions at masked positions."""
    inputs = ids.masked_fill(masked, mask_id)
    with torch.no_grad():
        ref = torch.log_softmax(reference_net(inputs).float(), -1)[masked]
        out = torch.log_softmax(net(inputs).float(), -1)[masked]
    return {
        "kl": float((ref.exp() * (ref - out)).sum(-1).mean()),
        "top1": float((out.argmax(-1) == ref.argmax(-1)).float().mean()),
    }


def held_out_batch(tokenizer, n: int = 32, length: int = 160, seed: int = 12345):
    """Stories the story model never saw (another corpus seed), half their tokens masked."""
    rows = [tokenizer.encode(t, add_special_tokens=False)[:length] for t in stories.generate_corpus(4 * n, seed=seed)]
    ids = torch.tensor([r for r in rows if len(r) == length][:n])
    masked = torch.rand(ids.shape, generator=torch.Generator().manual_seed(0)) < 0.5
    return ids, masked


def fake_quantize_(weight: torch.Tensor, mode: str, group: int | None = None) -> None:
    """Round a weight through `mode` in place: what a kernel on the stored tensors computes, for
    tensors the model reads directly (LLaDA's head)."""
    with torch.no_grad():
        weight.copy_(quant.dequantize(quant.quantize_weight(weight, mode, group), mode, weight.dtype))


def story_section(samples: int, corpus_size: int) -> dict:
    models = {label: unmask.load("story", dtype=dtype, quantize=q) for label, dtype, q in MODES}
    reference = models["float32"]
    shipped = reference.defaults
    corpus = training_sentences(corpus_size)
    totals = {label: {"accepted": 0.0, "sentences": 0, "tokens": 0.0, "seconds": 0.0} for label in models}
    for start in range(0, samples, ROUND):
        n = min(ROUND, samples - start)
        for label, model in models.items():  # each mode in turn, the same prompts and seeds
            row = story_quality(
                model,
                [shipped["steps"]],
                n,
                shipped["temperature"],
                corpus,
                shipped["block_length"],
                seed=start,
                algorithm=shipped["algorithm"],
                spread=shipped.get("spread", 0),
                remask=shipped.get("remask"),
            )[0]
            t = totals[label]
            t["accepted"] += row["accepted"] * row["sentences"]
            t["sentences"] += row["sentences"]
            tokens = row["length"] * n
            t["tokens"] += tokens
            t["seconds"] += tokens / row["tokens_per_second"]
    ids, masked = held_out_batch(reference.tokenizer)
    rows = {}
    for label, model in models.items():
        t = totals[label]
        p = t["accepted"] / t["sentences"]
        rows[label] = {
            "accepted": p,
            "interval": 1.96 * math.sqrt(p * (1 - p) / t["sentences"]),
            "sentences": t["sentences"],
            "tokens_per_second": t["tokens"] / t["seconds"],
        } | masked_fidelity(reference.net, model.net, ids, masked, reference.ids.mask)
    base = rows["bfloat16"]["tokens_per_second"]
    for row in rows.values():
        row["speed_vs_bf16"] = row["tokens_per_second"] / base
    return {"samples": samples, "steps": shipped["steps"], "rows": rows}


def layer_choices_section() -> dict:
    reference = unmask.load("story", dtype="float32")
    ids, masked = held_out_batch(reference.tokenizer)
    head = "model.transformer.ff_out"

    def variant(mode, group=None, tables=quant.TABLE_MODE, head_mode=None):
        model = unmask.load("story", dtype="bfloat16")
        if head_mode:  # LLaDA reads its head as a tensor: round it in place
            fake_quantize_(model.net.get_submodule(head).weight, head_mode, group)
        quant.quantize_(model.net, mode, group, tables)
        return masked_fidelity(reference.net, model.net, ids, masked, reference.ids.mask)

    rows = {
        "int8 as shipped (tables int8, head bf16)": variant("int8"),
        "int8 + head int8": variant("int8", head_mode="int8"),
        "int4 as shipped (g64, tables int8, head bf16)": variant("int4"),
        "int4, embedding int4": variant("int4", tables="int4"),
        "int4 + head int8": variant("int4", head_mode="int8"),
        "int4 + head int4": variant("int4", head_mode="int4"),
        "int4 g32": variant("int4", 32),
        "int4 g128": variant("int4", 128),
        "int4 symmetric (g64, rounded in place)": symmetric_variant(reference, ids, masked),
    }
    # Asymmetric against symmetric int4: round-trip error on the block weights.
    net = reference.net
    errors = {"asymmetric": 0.0, "symmetric": 0.0}
    for name, mode in quant.plan(net, "int4").items():
        if mode == "int4":
            w = net.get_submodule(name).weight.float()
            errors["asymmetric"] += float((quant.dequantize(quant.quantize_weight(w, "int4"), "int4") - w).pow(2).sum())
            errors["symmetric"] += float((symmetric_int4(w) - w).pow(2).sum())
    ratio = math.sqrt(errors["asymmetric"] / errors["symmetric"])
    return {"rows": rows, "asymmetric_error_vs_symmetric": ratio}


def symmetric_int4(w: torch.Tensor, group: int = quant.DEFAULT_GROUP_SIZE) -> torch.Tensor:
    """w rounded to symmetric int4 per group (levels -8..7, scale absmax / 7), the alternative."""
    g = w.float().reshape(w.shape[0], -1, group)
    s = (g.abs().amax(-1, keepdim=True) / 7).clamp(min=quant.SCALE_FLOOR)
    return (torch.round(g / s).clamp(-8, 7) * s).reshape(w.shape).to(w.dtype)


def symmetric_variant(reference, ids, masked) -> dict:
    """The shipped plan with symmetric int4 for the body, every weight rounded in place."""
    model = unmask.load("story", dtype="bfloat16")
    with torch.no_grad():
        for name, mode in quant.plan(model.net, "int4").items():
            weight = model.net.get_submodule(name).weight
            if mode == "int4":
                weight.copy_(symmetric_int4(weight))
            else:
                fake_quantize_(weight, mode)
    return masked_fidelity(reference.net, model.net, ids, masked, reference.ids.mask)


def small_model_section(tmp: Path, threads: int) -> dict:
    folder = random_checkpoint(tmp / "qwen-0.5b", QWEN_05B)
    rows = load_rss(folder, random_checkpoint(tmp / "tiny", TINY))
    models = {
        label: unmask.load(folder, dtype=dtype, quantize=q) for label, dtype, q in MODES if not rows[label]["refused"]
    }
    prompt = [list(range(100, 116))]
    times: dict[str, list[float]] = {label: [] for label in models}
    for model in models.values():
        model.generate(prompt, max_new_tokens=8, steps=2)  # warm-up
    for _ in range(3):
        for label, model in models.items():  # interleaved
            start = time.perf_counter()
            model.generate(prompt, max_new_tokens=32, steps=8, seed=0)
            times[label].append(time.perf_counter() - start)
    for label, spent in times.items():
        rows[label]["tokens_per_second"] = 32 / statistics.median(spent)
    base = rows["bfloat16"]
    for row in rows.values():
        row["rss_vs_bf16"] = row["rss"] / base["rss"] if row["rss"] else None
        row["speed_vs_bf16"] = row.get("tokens_per_second", 0) / base["tokens_per_second"]
    n = parameter_count(QWEN_05B)
    return {"parameters": n, "threads": threads, "rows": rows}


def dream_7b_section(tmp: Path) -> dict:
    real = json.loads((DREAM_7B / "config.json").read_text())
    short = real | {"num_hidden_layers": 4}
    folder = random_checkpoint(tmp / "dream-7b-4-layers", short)
    measured = load_rss(folder, random_checkpoint(tmp / "tiny", TINY))
    n_short, n_real = parameter_count(short), parameter_count(real)
    index = json.loads((DREAM_7B / "model.safetensors.index.json").read_text())
    rows = {}
    for label, dtype, q in MODES:
        estimate = loading.memory_needed(short, n_short, dtype, q).weights
        real_estimate = loading.memory_needed(real, n_real, dtype, q).weights
        hub = index["metadata"]["total_size"]  # the bfloat16 files on the hub
        file_bytes = {"float32": 2 * hub, "bfloat16": hub}.get(label) or stored_file_bytes(real, q)
        rows[label] = measured[label] | {
            "estimate_4_layers": estimate,
            "estimate_28_layers": real_estimate,
            "file_arithmetic_28_layers": file_bytes,
            "estimate_vs_file": real_estimate / file_bytes,
        }
    return {"parameters_4_layers": n_short, "parameters_28_layers": n_real, "rows": rows}


def print_tables(results: dict) -> None:
    s = results["story"]
    print(f"\nstory: {s['samples']} stories per mode at {s['steps']} steps (shipped defaults), modes in turn")
    print(
        f"{'mode':<10} {'accepted':>16} {'sentences':>10} {'tokens/s':>9} {'vs bf16':>8} {'KL to f32':>10} {'top-1':>7}"
    )
    for label, r in s["rows"].items():
        accepted = f"{r['accepted']:.1%} ± {r['interval']:.1%}"
        print(
            f"{label:<10} {accepted:>16} {r['sentences']:>10} {r['tokens_per_second']:>9.0f} "
            f"{r['speed_vs_bf16']:>7.2f}x {r['kl']:>10.5f} {r['top1']:>6.1%}"
        )
    print("  ± is the binomial 95% interval over sentences: a lower bound (a story's sentences are not independent).")
    c = results["layer_choices"]
    print("\nlayer choices (story, bfloat16 compute): masked-token predictions against float32")
    print(f"{'variant':<48} {'KL':>9} {'top-1':>7}")
    for label, r in c["rows"].items():
        print(f"{label:<48} {r['kl']:>9.5f} {r['top1']:>6.1%}")
    print(f"  int4 round-trip error, asymmetric / symmetric at group 64: {c['asymmetric_error_vs_symmetric']:.2f}")
    m = results["small"]
    print(f"\n0.5B (Qwen2.5-0.5B shape, {m['parameters'] / 1e6:.0f}M parameters, tied table), {m['threads']} thread(s)")
    print(f"{'mode':<10} {'peak RSS':>10} {'vs bf16':>8} {'load s':>7} {'tokens/s':>9} {'vs bf16':>8}")
    for label, r in m["rows"].items():
        if r["refused"]:
            print(f"{label:<10} refused: {r['refused']}")
            continue
        print(
            f"{label:<10} {r['rss'] / MB:>7.0f} MB {r['rss_vs_bf16']:>7.2f}x {r['load_seconds']:>7.1f} "
            f"{r['tokens_per_second']:>9.1f} {r['speed_vs_bf16']:>7.2f}x"
        )
    d = results.get("dream_7b")
    if d is None:
        return
    print(
        f"\nDream-7B config, 4 layers ({d['parameters_4_layers'] / 1e9:.2f}B parameters; 28 layers: "
        f"{d['parameters_28_layers'] / 1e9:.2f}B)"
    )
    print(
        f"{'mode':<10} {'peak RSS':>10} {'estimate':>10} {'load s':>7} "
        f"{'28 layers: estimate':>20} {'file':>9} {'ratio':>6}"
    )
    for label, r in d["rows"].items():
        rss = "refused" if r["refused"] else f"{r['rss'] / GB:.2f} GB"
        print(
            f"{label:<10} {rss:>10} {r['estimate_4_layers'] / GB:>7.2f} GB {r['load_seconds']:>7.1f} "
            f"{r['estimate_28_layers'] / GB:>17.2f} GB {r['file_arithmetic_28_layers'] / GB:>6.2f} GB "
            f"{r['estimate_vs_file']:>6.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=48, help="stories per mode (rounds of 8)")
    parser.add_argument("--corpus", type=int, default=100_000, help="training stories for the novelty check")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    parser.add_argument("--skip-7b", action="store_true", help="leave out the Dream-7B section (writes ~4 GB)")
    parser.add_argument("--json", dest="json_path", help="write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {"story": story_section(args.samples, args.corpus), "layer_choices": layer_choices_section()}
    with tempfile.TemporaryDirectory() as tmp:
        results["small"] = small_model_section(Path(tmp), args.threads)
    if not args.skip_7b and DREAM_7B.is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            results["dream_7b"] = dream_7b_section(Path(tmp))
    print_tables(results)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
