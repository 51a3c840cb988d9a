"""What int8 / int4 weights cost in quality and buy in memory and speed, as ratios from one run.

    python benchmarks/quantization.py                       # 400 stories per mode, 160 per variant
    python benchmarks/quantization.py --samples 160 --choice-samples 80 --skip-7b   # quicker, wider ±
    python benchmarks/quantization.py --json out.json       # also write the figures

1. story (embedded, LLaDA format): the share of generated sentences the story grammar accepts at
   the shipped defaults (64 steps, 128 tokens), with its standard error over stories (a story's
   sentences are not independent, so the error is that of a ratio of sums over stories), tokens/s,
   and how far each mode's masked-token predictions are from float32's (KL divergence, top-1
   agreement) on held-out stories. The modes take turns in rounds of 8 stories with the same
   prompts and seeds, so differences are paired: their error is that of the per-story difference.
2. layer choices (story): the same figures for the alternatives models/quant.py weighs, each the
   shipped int4 with one thing changed: the scale search before (9 grids, no refinement), min/max
   rounding, the LM head int8 (LLaDA reads its head as a tensor, so it is rounded in place: what a
   Dream-layout head gets), and both tables int4 at one group size (what a tied table gets); paired
   with the story section's bfloat16 and int4. Then
   the block weights' round-trip and group-mean error for each rounding against min/max's, and
   its seconds per million weights (the least of 20 runs).
3. 0.5B (Qwen2.5-0.5B's shape, random bfloat16 weights, its parameter names, a tied table): peak
   RSS of a load and one forward pass (which reads every weight; its float32 logits are 5 MB) in a
   subprocess, less that of a tiny model's, and the bytes of the loaded model's tensors, load
   seconds (wall and CPU) and tokens/s, as ratios to bfloat16; also int4 as loaded before (tied
   table int8, 9-grid search), with the tied table int8 (the search of now), and with the tied
   table in groups of 64.
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
from unmask.engine import Canvas, complete, resolve
from unmask.models import architecture_for, quant
from unmask.tasks import stories

sys.path.insert(0, str(Path(__file__).parent))
from embedded_quality import STORY_PROMPTS  # noqa: E402

MODES = [("float32", "float32", None), ("bfloat16", "bfloat16", None), ("int8", "bfloat16", "int8")]
MODES += [("int4", "bfloat16", "int4")]
ROUND = len(STORY_PROMPTS)  # stories per turn: one of each story prompt
HEAD = "model.transformer.ff_out"  # the story model's (LLaDA) head, read as a tensor
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
# 0.5B rows beside the modes: the int4 load before this search and tied table, the tied table as
# before with the search of now, and the tied table in groups of 64.
ALTERNATIVES_05B = [
    ("int4 before", "bfloat16", "int4", {"tied": ["int8", None], "search": [9, 0]}),
    ("int4, tied table int8", "bfloat16", "int4", {"tied": ["int8", None]}),
    ("int4, tied group 64", "bfloat16", "int4", {"tied": ["int4", 64]}),
]

RSS_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import torch
    import unmask.loading as loading
    from unmask.models import quant

    folder, dtype, quantize, changes = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    torch.set_num_threads(int(sys.argv[5]))
    if "tied" in changes:  # another choice for a tied table, e.g. ["int8", null]
        quant.TABLES[quantize] = quant.TABLES[quantize] | {"tied": tuple(changes["tied"])}
    if "search" in changes:  # (grids, refinements) of the int4 scale search
        quant.SEARCH_GRIDS, quant.SEARCH_LLOYD = changes["search"]
    loading.QUANTIZE_BLOCK_BYTES = changes.get("block", loading.QUANTIZE_BLOCK_BYTES)
    start, cpu = time.perf_counter(), time.process_time()
    try:
        checkpoint = loading.load_checkpoint(folder, dtype, "cpu", None if quantize == "none" else quantize)
    except loading.ModelLoadError as err:
        print("refused", err)
        raise SystemExit(0)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    with torch.no_grad():  # one pass reads every weight: a mapped file's pages count from then on
        checkpoint.net(torch.arange(8)[None])
    tensors = [*checkpoint.net.parameters(), *checkpoint.net.buffers()]
    held = {t.data_ptr(): t.numel() * t.element_size() for t in tensors}  # a tied table once
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print(int(line.split()[1]) * 1024, seconds, cpu, sum(held.values()))
    """
)
# The baseline a load's peak RSS is measured from: the same process with a model of a few kB
# (imports, kernel libraries), per mode.
TINY = QWEN_05B | {"vocab_size": 512, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2}
TINY |= {"num_attention_heads": 4, "num_key_value_heads": 2, "mask_token_id": 511, "eos_token_id": 0}
TINY |= {"pad_token_id": 0}


def peak_rss(folder: Path, dtype: str, quantize: str | None = None, changes: dict | None = None) -> tuple:
    """(peak RSS bytes, load seconds, load CPU seconds, bytes of the model's tensors, refusal) of a
    load of `folder` and one pass, in a fresh process;
    `changes` to the shipped choices as RSS_SCRIPT reads them."""
    args = [sys.executable, "-c", RSS_SCRIPT, str(folder), dtype, quantize or "none", json.dumps(changes or {})]
    args.append(str(torch.get_num_threads()))  # the benchmark's --threads
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    out = done.stdout.strip()
    if out.startswith("refused"):
        return None, 0.0, 0.0, 0, out.removeprefix("refused ")
    rss, seconds, cpu, held = out.split()
    return float(rss), float(seconds), float(cpu), int(held), ""


def load_rss(folder: Path, tiny: Path, modes=MODES) -> dict:
    """label -> peak RSS over the tiny model's (None when the fit check refused), load seconds (wall
    and CPU: the machine may be shared), refusal."""
    rows = {}
    for label, dtype, q, *changes in modes:
        rss, seconds, cpu, held, refused = peak_rss(folder, dtype, q, *changes)
        base = peak_rss(tiny, dtype, q, *changes)[0]
        rows[label] = {"rss": None if rss is None else rss - base, "load_seconds": seconds, "load_cpu_seconds": cpu}
        rows[label] |= {"tensor_bytes": held, "refused": refused}
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
            for shape, dtype in quant.stored_shapes(tuple(p.shape), *plan[module]).values():
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


def one_story(model, i: int) -> tuple[int, int, int, float]:
    """(accepted sentences, sentences, tokens, seconds) of story i: prompt i % 8, seed i, the
    shipped defaults, resolved and answered as `unmask run` does."""
    shipped = model.defaults
    prompt = STORY_PROMPTS[i % len(STORY_PROMPTS)]
    canvas = Canvas(model.tokenizer.encode(prompt, add_special_tokens=False))
    asked = {key: shipped.get(key) for key in ("steps", "block_length", "temperature", "algorithm", "spread")}
    asked |= {"max_new_tokens": 128, "remask": shipped.get("remask") or 0.0, "seed": i}
    c = complete(model, canvas, resolve(model, asked, canvas=canvas))
    sentences = stories.split_sentences(prompt + c.text)
    return sum(map(stories.sentence_accepted, sentences)), len(sentences), c.completion_tokens, c.elapsed


def acceptance(rows: list[tuple[int, int]]) -> tuple[float, float]:
    """(accepted share, its standard error) from (accepted, sentences) per story: the linearised
    error of a ratio of sums, with stories as the independent units."""
    accepted, total, m = sum(r[0] for r in rows), sum(r[1] for r in rows), len(rows)
    p = accepted / total
    residuals = sum((a - p * n) ** 2 for a, n in rows)
    return p, math.sqrt(residuals * m / max(1, m - 1)) / total


def story_rows(models: dict, samples: int) -> dict[str, list]:
    """label -> per-story results, the models taking turns every ROUND stories (same prompts, seeds)."""
    rows: dict[str, list] = {label: [] for label in models}
    for start in range(0, samples, ROUND):
        for label, model in models.items():
            rows[label] += [one_story(model, i) for i in range(start, min(samples, start + ROUND))]
    return rows


def paired_difference(rows: list, base: list) -> tuple[float, float]:
    """(accepted share of `rows` minus that of `base` on the same stories, its standard error): the
    stories are paired (same prompt and seed), so the error is that of the per-story difference of
    the two ratios' linearised terms, smaller than two independent errors combined."""
    m = min(len(rows), len(base))
    a, b = [(r[0], r[1]) for r in rows[:m]], [(r[0], r[1]) for r in base[:m]]
    (p, _), (q, _) = acceptance(a), acceptance(b)
    n_a, n_b = sum(r[1] for r in a), sum(r[1] for r in b)
    terms = [(x - p * n) / n_a - (y - q * k) / n_b for (x, n), (y, k) in zip(a, b)]
    return p - q, math.sqrt(sum(t * t for t in terms) * m / max(1, m - 1))


def summarise(rows: list, fidelity: dict) -> dict:
    p, se = acceptance([(r[0], r[1]) for r in rows])
    return {
        "accepted": p,
        "se": se,
        "stories": len(rows),
        "sentences": sum(r[1] for r in rows),
        "tokens_per_second": sum(r[2] for r in rows) / sum(r[3] for r in rows),
    } | fidelity


def story_section(samples: int) -> dict:
    models = {label: unmask.load("story", dtype=dtype, quantize=q) for label, dtype, q in MODES}
    reference = models["float32"]
    ids, masked = held_out_batch(reference.tokenizer)
    per_story = story_rows(models, samples)
    rows = {
        label: summarise(per_story[label], masked_fidelity(reference.net, model.net, ids, masked, reference.ids.mask))
        for label, model in models.items()
    }
    base = rows["bfloat16"]
    for label, row in rows.items():
        row["speed_vs_bf16"] = row["tokens_per_second"] / base["tokens_per_second"]
        row["vs_bf16"], row["vs_bf16_se"] = paired_difference(per_story[label], per_story["bfloat16"])
    return {"samples": samples, "steps": reference.defaults["steps"], "rows": rows, "per_story": per_story}


def round_in_place(weight: torch.Tensor, mode: str, group: int | None = None, rounding=None) -> None:
    """Round a weight through `mode` in place: what a kernel on the stored tensors computes, for
    tensors the model reads directly (LLaDA's head); `rounding` replaces quant's int4 rounding."""
    with torch.no_grad():
        if rounding is not None:
            weight.copy_(rounding(weight.float(), group or quant.DEFAULT_GROUP_SIZE).to(weight.dtype))
        else:
            weight.copy_(quant.dequantize(quant.quantize_weight(weight, mode, group), mode, weight.dtype))


def min_max_int4(w: torch.Tensor, group: int) -> torch.Tensor:
    """w rounded to int4 with the 16 levels spanning each group's [min, max] (the rounding before
    the scale search), bfloat16 scale and zero as the kernels store them."""
    g = w.reshape(w.shape[0], -1, group)
    low = g.amin(-1)
    scales = ((g.amax(-1) - low) / quant.INT4_LEVELS).clamp(min=quant.SCALE_FLOOR).to(torch.bfloat16).float()
    zeros = (low + quant.INT4_OFFSET * scales).to(torch.bfloat16).float()
    q = ((g - zeros[..., None]) / scales[..., None]).round().add(quant.INT4_OFFSET).clamp(0, quant.INT4_LEVELS)
    return ((q - quant.INT4_OFFSET) * scales[..., None] + zeros[..., None]).reshape(w.shape)


def variant(group: int | None = None, embedding="shipped", head=None, rounding=None, search=None):
    """The story model in bfloat16 with the int4 plan and one change, every weight rounded in place;
    `search` = (grids, refinements) of the int4 scale search instead of quant's."""
    model = unmask.load("story", dtype="bfloat16")
    tables = {} if embedding == "shipped" else {"embedding": embedding}
    shipped = quant.SEARCH_GRIDS, quant.SEARCH_LLOYD
    quant.SEARCH_GRIDS, quant.SEARCH_LLOYD = search or shipped
    try:
        for name, (mode, g) in quant.plan(model.net, "int4", group, tables).items():
            is_body = mode == "int4" and name not in quant.TOKEN_EMBEDDINGS
            round_in_place(model.net.get_submodule(name).weight, mode, g, rounding if is_body else None)
        if head is not None:
            round_in_place(model.net.get_submodule(HEAD).weight, *head)
    finally:
        quant.SEARCH_GRIDS, quant.SEARCH_LLOYD = shipped
    return model


# label -> the shipped int4 with one change (see variant). The story model is untied and LLaDA
# reads its head as a tensor, so shipped int4 keeps its head in bfloat16: the head rows add what a
# Dream-layout head would get, and both tables at one group size stand in for a tied table.
CHOICES = {
    "the search before (9 grids, no refinement)": dict(search=(9, 0)),
    "min/max rounding (no scale search)": dict(rounding=min_max_int4),
    "+ head int8 (untied: shipped)": dict(head=("int8", None)),
    "tables int4, group 32 (tied: shipped)": dict(embedding=("int4", 32), head=("int4", 32)),
    "tables int4, group 64": dict(embedding=("int4", 64), head=("int4", 64)),
}


def layer_choices_section(samples: int, story: dict) -> dict:
    """Each of CHOICES on `samples` stories, paired with the story section's bfloat16 and int4 rows."""
    reference = unmask.load("story", dtype="float32")
    ids, masked = held_out_batch(reference.tokenizer)
    rows = {}
    for label, change in CHOICES.items():
        model = variant(**change)
        per_story = story_rows({label: model}, samples)[label]
        rows[label] = summarise(per_story, masked_fidelity(reference.net, model.net, ids, masked, reference.ids.mask))
        for mode, key in (("bfloat16", "vs_bf16"), ("int4", "vs_int4")):
            rows[label][key], rows[label][key + "_se"] = paired_difference(per_story, story["per_story"][mode])
    return {"samples": samples, "rows": rows, "rounding": rounding_errors(reference.net)}


def rounding_errors(net) -> dict:
    """Round-trip and group-mean error of the block weights' int4 rounding, as ratios to min/max's
    (the story model), and the seconds each takes per million weights of a 0.5B-shaped block."""
    searches = {"search": (quant.SEARCH_GRIDS, quant.SEARCH_LLOYD), "search before": (9, 0)}
    sums = {key: [0.0, 0.0] for key in (*searches, "min/max")}
    shipped = quant.SEARCH_GRIDS, quant.SEARCH_LLOYD
    block = torch.randn(292, 896, generator=torch.Generator().manual_seed(0)).mul_(0.02).to(torch.bfloat16)
    seconds = {}
    try:
        for key, search in searches.items():
            quant.SEARCH_GRIDS, quant.SEARCH_LLOYD = search
            for name, (mode, group) in quant.plan(net, "int4").items():
                if mode != "int4" or name in quant.TOKEN_EMBEDDINGS:
                    continue
                w = net.get_submodule(name).weight.float()
                found = quant.dequantize(quant.quantize_weight(w, "int4", group), "int4")
                for k, rounded in ((key, found), ("min/max", min_max_int4(w, group))):
                    if k == "min/max" and key != "search":
                        continue
                    e = (rounded - w).reshape(w.shape[0], -1, group)
                    sums[k][0] += float(e.pow(2).sum())
                    sums[k][1] += float(e.mean(-1).pow(2).sum())
            spent = []
            for _ in range(20):  # the least of several: the machine is shared
                start = time.process_time()
                quant.quantize_weight(block, "int4", quant.DEFAULT_GROUP_SIZE)
                spent.append(time.process_time() - start)
            seconds[key] = min(spent) / block.numel() * 1e6
    finally:
        quant.SEARCH_GRIDS, quant.SEARCH_LLOYD = shipped
    base = sums["min/max"]
    return {
        key: {
            "error_vs_min_max": math.sqrt(sq / base[0]),
            "group_mean_error_vs_min_max": math.sqrt(mean_sq / base[1]),
            "seconds_per_million": seconds.get(key),
        }
        for key, (sq, mean_sq) in sums.items()
    }


def small_model_section(tmp: Path, threads: int) -> dict:
    folder = random_checkpoint(tmp / "qwen-0.5b", QWEN_05B)
    tiny = random_checkpoint(tmp / "tiny", TINY)
    rows = load_rss(folder, tiny, MODES + ALTERNATIVES_05B)
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
        row["tensors_vs_bf16"] = row["tensor_bytes"] / base["tensor_bytes"] if row["rss"] else None
        if "tokens_per_second" in row:
            row["speed_vs_bf16"] = row["tokens_per_second"] / base["tokens_per_second"]
    counted = {label: model.num_parameters for label, model in models.items()}
    return {"parameters": parameter_count(QWEN_05B), "counted": counted, "threads": threads, "rows": rows}


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


def print_story_rows(rows: dict, width: int) -> None:
    paired = any("vs_int4" in r for r in rows.values())
    extra = f" {'vs int4':>13}" if paired else ""
    print(
        f"{'':<{width}} {'accepted':>15} {'vs bf16':>13}{extra} {'stories':>7} {'tokens/s':>9} "
        f"{'KL to f32':>10} {'top-1':>7}"
    )
    for label, r in rows.items():
        accepted = f"{r['accepted']:.1%} ± {r['se']:.1%}"
        delta = f"{100 * r['vs_bf16']:+.1f} ± {100 * r['vs_bf16_se']:.1f}"
        if paired:
            against_int4 = f"{100 * r['vs_int4']:+.1f} ± {100 * r['vs_int4_se']:.1f}"
            delta = f"{delta:>13} {against_int4:>13}"
        print(
            f"{label:<{width}} {accepted:>15} {delta:>13} {r['stories']:>7} {r['tokens_per_second']:>9.0f} "
            f"{r['kl']:>10.5f} {r['top1']:>6.1%}"
        )


def print_story(s: dict) -> None:
    print(f"\nstory: {s['samples']} stories per mode at {s['steps']} steps (shipped defaults), modes in turn")
    print_story_rows(s["rows"], 10)
    print("  ± is one standard error over stories; vs bf16: the paired difference in points (same stories).")


def print_choices(c: dict) -> None:
    print(f"\nlayer choices (story, the shipped int4 with one change, {c['samples']} stories each)")
    print_story_rows(c["rows"], 42)
    print("  vs bf16, vs int4: paired with the story section's first stories (same prompts and seeds).")
    print(f"  {'block weights, int4 rounding':<30} {'error':>8} {'group mean':>11} {'s per M weights':>16}")
    for key, r in c["rounding"].items():
        seconds = f"{r['seconds_per_million']:>16.3f}" if r["seconds_per_million"] is not None else ""
        print(f"  {key:<30} {r['error_vs_min_max']:>8.3f} {r['group_mean_error_vs_min_max']:>11.3f} {seconds}")


def print_small(m: dict) -> None:
    print(f"\n0.5B (Qwen2.5-0.5B shape, {m['parameters'] / 1e6:.0f}M parameters, tied table), {m['threads']} thread(s)")
    print(
        f"{'mode':<22} {'peak RSS':>10} {'vs bf16':>8} {'tensors':>8} {'load s':>7} {'cpu s':>6} {'tokens/s':>9} "
        f"{'vs bf16':>8} {'counted':>9}"
    )
    for label, r in m["rows"].items():
        if r["refused"]:
            print(f"{label:<22} refused: {r['refused']}")
            continue
        speed = f"{r['tokens_per_second']:>9.1f} {r['speed_vs_bf16']:>7.2f}x" if "tokens_per_second" in r else " " * 18
        counted = f"{m['counted'][label] / 1e6:.0f}M" if label in m["counted"] else ""
        print(
            f"{label:<22} {r['rss'] / MB:>7.0f} MB {r['rss_vs_bf16']:>7.3f}x {r['tensors_vs_bf16']:>7.3f}x "
            f"{r['load_seconds']:>7.1f} {r['load_cpu_seconds']:>6.1f} {speed} {counted:>9}"
        )


def print_dream_7b(d: dict) -> None:
    print(
        f"\nDream-7B config, 4 layers ({d['parameters_4_layers'] / 1e9:.2f}B parameters; 28 layers: "
        f"{d['parameters_28_layers'] / 1e9:.2f}B)"
    )
    print(
        f"{'mode':<10} {'peak RSS':>10} {'estimate':>10} {'load s':>7} {'cpu s':>6} "
        f"{'28 layers: estimate':>20} {'file':>9} {'ratio':>6}"
    )
    for label, r in d["rows"].items():
        rss = "refused" if r["refused"] else f"{r['rss'] / GB:.2f} GB"
        print(
            f"{label:<10} {rss:>10} {r['estimate_4_layers'] / GB:>7.2f} GB {r['load_seconds']:>7.1f} "
            f"{r['load_cpu_seconds']:>6.1f} "
            f"{r['estimate_28_layers'] / GB:>17.2f} GB {r['file_arithmetic_28_layers'] / GB:>6.2f} GB "
            f"{r['estimate_vs_file']:>6.3f}"
        )


PRINTERS = {"story": print_story, "layer_choices": print_choices, "small": print_small, "dream_7b": print_dream_7b}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=400, help="stories per mode (rounds of 8)")
    parser.add_argument("--choice-samples", type=int, default=160, help="stories per layer-choice variant")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    parser.add_argument("--skip-7b", action="store_true", help="leave out the Dream-7B section (writes ~4 GB)")
    parser.add_argument("--json", dest="json_path", help="write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}

    def done(section: str, figures: dict) -> None:  # each table as soon as it is measured
        results[section] = figures
        PRINTERS[section](figures)
        sys.stdout.flush()
        if args.json_path:
            Path(args.json_path).write_text(json.dumps(results, indent=2))

    done("story", story_section(args.samples))
    done("layer_choices", layer_choices_section(args.choice_samples, results["story"]))
    with tempfile.TemporaryDirectory() as tmp:
        done("small", small_model_section(Path(tmp), args.threads))
    if not args.skip_7b and DREAM_7B.is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            done("dream_7b", dream_7b_section(Path(tmp)))


if __name__ == "__main__":
    main()
