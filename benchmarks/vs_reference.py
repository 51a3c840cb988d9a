"""unmask against the official code, in one run: the same checkpoint folder, the same float32,
the same greedy recipe, interleaved (reference, unmask, reference, unmask ...), medians; prints the
ratio of seconds (reference / unmask, > 1 = unmask faster), wall and CPU (one thread, so on a
shared machine CPU seconds are the steadier figure), and whether the tokens are identical.

The official code is never shipped with unmask: fetch it yourself and point `--reference` at a
folder laid out like this (each part is optional; a missing one skips its rows):

    REF/LLaDA/generate.py                 github.com/ML-GSAI/LLaDA (its `generate`)
    REF/Fast-dLLM/llada/generate.py       github.com/NVlabs/Fast-dLLM (`generate_with_dual_cache`)
    REF/Fast-dLLM/llada/model/            Fast-dLLM's copy of the hub modeling_llada.py (the LLaDA model
                                          for both LLaDA samplers; it imports einops)
    REF/Dream-hub/modeling_dream.py       the remote code of the hub folder Dream-org/Dream-v0-Instruct-7B:
    REF/Dream-hub/configuration_dream.py  modeling_dream.py, configuration_dream.py, generation_utils.py
    REF/Dream-hub/generation_utils.py     (`diffusion_generate`)

For example, with clones:  mkdir REF && git clone https://github.com/ML-GSAI/LLaDA REF/LLaDA &&
git clone https://github.com/NVlabs/Fast-dLLM REF/Fast-dLLM, and the three .py files of the Dream hub
folder in REF/Dream-hub. transformers (4.49 as Fast-dLLM pins it, or 5.x) must be importable; unmask
itself never imports it.

    OMP_NUM_THREADS=1 python benchmarks/vs_reference.py --reference REF
    ... --models story --batches 1 --repeats 3          # a quick look
    ... --layers 6 --length 16                          # the 0.5B widths at a quarter of the depth

Checkpoints (random weights, written to a temporary folder, built from the real config files in
/work/shared/real-checkpoints when present): `llada-0.5b` (LLaDA-8B's config at Qwen2.5-0.5B's
widths, 24 layers, its 126k vocabulary), `dream-0.5b` (Dream-7B's config at Qwen2.5-0.5B's shape,
tied table), `story` (the embedded story model, LLaDA format) and `dream-story` (a random Dream of
the story model's size). Recipes: the official LLaDA `generate` (one token per pass, low
confidence), Fast-dLLM's `generate_with_dual_cache` with threshold 0.9 (batch 1 only: the
reference builds a one-row canvas), and Dream's `diffusion_generate` (entropy, temperature 0).
Both sides get the same prompt ids (equal lengths, so no padding) and run in this process.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import torch
from quantization import random_checkpoint  # benchmarks/, beside this file
from safetensors.torch import load_file

import unmask

REAL = Path("/work/shared/real-checkpoints")
STORY = Path(unmask.__file__).parent / "weights" / "story"
QWEN_05B = {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14}
QWEN_05B |= {"num_key_value_heads": 2, "tie_word_embeddings": True, "vocab_size": 151936}
LLADA_05B = {"d_model": 896, "mlp_hidden_size": 4864, "n_layers": 24, "n_heads": 14, "n_kv_heads": 14}
STORY_DREAM = {"hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 6, "num_attention_heads": 4}
STORY_DREAM |= {"num_key_value_heads": 4, "vocab_size": 3379, "mask_token_id": 1, "eos_token_id": 0}
STORY_DREAM |= {"pad_token_id": 0, "bos_token_id": 0, "tie_word_embeddings": False}
FAMILY = {"llada-0.5b": "llada", "story": "llada", "dream-0.5b": "dream", "dream-story": "dream"}
RECIPES = {"llada": ("llada", "fast-dllm"), "dream": ("dream",)}


def real_config(name: str, fallback: dict) -> dict:
    path = REAL / name / "config.json"
    return json.loads(path.read_text()) if path.exists() else dict(fallback)


def checkpoint(name: str, tmp: Path, layers: int | None) -> Path:
    if name == "story":
        return STORY
    if name == "llada-0.5b":
        config = real_config("llada-8b-instruct", {"model_type": "llada", "mask_token_id": 126336})
        config |= LLADA_05B | ({"n_layers": layers} if layers else {})
        config |= {"embedding_size": 126464, "vocab_size": 126464, "model_type": "llada"}
    elif name == "dream-0.5b":
        config = real_config("dream-v0-instruct-7b", {"model_type": "Dream", "mask_token_id": 151666})
        config |= QWEN_05B | ({"num_hidden_layers": layers} if layers else {})
    else:
        config = real_config("dream-v0-instruct-7b", {"model_type": "Dream"}) | STORY_DREAM
    config["torch_dtype"] = "float32"
    return random_checkpoint(tmp / name, config)


def package(name: str, folder: Path) -> types.ModuleType:
    """The reference folder as an importable package (hub files import each other relatively)."""
    module = types.ModuleType(name)
    module.__path__ = [str(folder)]
    sys.modules[name] = module
    return module


def reference_llada(ref: Path, folder: Path):
    """Fast-dLLM's copy of the hub LLaDA model with the folder's float32 weights."""
    sys.path.insert(0, str(ref / "Fast-dLLM" / "llada"))
    model_pkg = importlib.import_module("model")
    config = model_pkg.LLaDAConfig(**json.loads((folder / "config.json").read_text()))
    config.use_cache = False  # the file reads it (transformers 5 drops it from the config)
    net = model_pkg.LLaDAModelLM(config, init_params=False)
    state = {k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()}
    net.load_state_dict(state, strict=True)
    return net.float().eval()


def reference_dream(ref: Path, folder: Path):
    package("dream_hub_ref", ref / "Dream-hub")
    modeling = importlib.import_module("dream_hub_ref.modeling_dream")
    config = modeling.DreamConfig(**json.loads((folder / "config.json").read_text()))
    net = modeling.DreamModel(config)
    state = {k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or set(missing) - ({"lm_head.weight"} if config.tie_word_embeddings else set()):
        raise ValueError(f"Dream reference: missing {missing}, unexpected {unexpected}")
    if config.tie_word_embeddings:
        net.lm_head.weight = net.model.embed_tokens.weight
    return net.float().eval()


def reference_run(recipe: str, ref: Path, net, prompt: torch.Tensor, length: int, block: int, mask_id: int):
    """The official call; returns prompt + generated ids (B, P + length)."""
    if recipe == "llada":
        generate = importlib.import_module("llada_generate_ref").generate
        return generate(net, prompt, steps=length, gen_length=length, block_length=block, mask_id=mask_id)
    if recipe == "fast-dllm":
        dual = importlib.import_module("generate").generate_with_dual_cache
        out, _ = dual(net, prompt, steps=length, gen_length=length, block_length=block, mask_id=mask_id, threshold=0.9)
        return out
    # top_p/top_k explicitly None: otherwise transformers' GenerationConfig defaults (top_k=50) leak in
    out = net.diffusion_generate(
        prompt, max_new_tokens=length, steps=length, temperature=0.0, alg="entropy", top_p=None, top_k=None,
        return_dict_in_generate=True,
    )  # fmt: skip
    return out.sequences


def our_options(recipe: str, length: int, block: int) -> dict:
    if recipe == "llada":
        return dict(recipe="llada", algorithm="low_confidence", steps=length, block_length=block, temperature=0.0)
    if recipe == "fast-dllm":
        return dict(recipe="fast-dllm", algorithm="low_confidence", steps=length, block_length=block, threshold=0.9,
                    cache="dual", temperature=0.0)  # fmt: skip
    return dict(recipe="dream", algorithm="entropy", steps=length, temperature=0.0)


def prompts(model, batch: int, width: int, story: bool) -> torch.Tensor:
    """batch distinct rows of `width` ids: from the story prompts' text, or random ordinary ids."""
    if story and model.tokenizer is not None:  # windows of the story prompts' text: distinct rows
        sys.path.insert(0, str(Path(__file__).parent))
        from embedded_quality import STORY_PROMPTS

        text = model.tokenizer.encode(" ".join(STORY_PROMPTS * 2), add_special_tokens=False)
        return torch.tensor([text[3 * i : 3 * i + width] for i in range(batch)])
    special = {model.ids.mask, model.ids.pad, *model.ids.eos}
    vocab = model.net.args.vocab_size
    g = torch.Generator().manual_seed(1234)
    ids = torch.randint(2, min(vocab, 30000), (batch, width), generator=g)
    for s in special:
        if s is not None:
            ids[ids == s] = 3
    return ids


def measure(name, folder, ref, batches, length, block, repeats, width) -> list[dict]:
    family = FAMILY[name]
    ours = unmask.load(folder, dtype="float32", device="cpu")
    theirs = reference_llada(ref, folder) if family == "llada" else reference_dream(ref, folder)
    rows = []
    for recipe in RECIPES[family]:
        if not available(ref, recipe):
            print(f"  {name} {recipe}: reference files missing under {ref}, skipped")
            continue
        for batch in batches:
            if recipe == "fast-dllm" and batch > 1:
                continue  # generate_with_dual_cache builds a one-row canvas
            prompt = prompts(ours, batch, width, name == "story")
            block = block or (min(8, length) if recipe == "fast-dllm" else length)
            options = our_options(recipe, length, block)
            ours.generate(prompt.tolist(), max_new_tokens=4, **(options | {"steps": 4, "block_length": 4}))  # warm-up
            with torch.no_grad():
                reference_run(recipe, ref, theirs, prompt, 4, 4, ours.ids.mask)
            wall, cpu, out = {"reference": [], "unmask": []}, {"reference": [], "unmask": []}, {}
            for _ in range(repeats):
                for side in ("reference", "unmask"):  # interleaved: a load change hits both sides alike
                    t0, c0 = time.perf_counter(), time.process_time()
                    with torch.no_grad():
                        if side == "reference":
                            mask_id = ours.ids.mask
                            out[side] = reference_run(recipe, ref, theirs, prompt, length, block, mask_id).tolist()
                        else:
                            out[side] = ours.generate(prompt.tolist(), max_new_tokens=length, **options).sequences
                    wall[side].append(time.perf_counter() - t0)
                    cpu[side].append(time.process_time() - c0)
            ref_s, our_s = statistics.median(wall["reference"]), statistics.median(wall["unmask"])
            ref_c, our_c = statistics.median(cpu["reference"]), statistics.median(cpu["unmask"])
            same = out["reference"] == out["unmask"]
            row = dict(model=name, recipe=recipe, batch=batch, reference_s=ref_s, unmask_s=our_s, ratio=ref_s / our_s)
            row |= dict(reference_cpu_s=ref_c, unmask_cpu_s=our_c, cpu_ratio=ref_c / our_c, identical=same)
            print(
                f"  {name:<11} {recipe:<10} batch {batch:>2}  wall: reference {ref_s:7.2f} s  unmask {our_s:7.2f} s"
                f"  {ref_s / our_s:5.2f}x   CPU: {ref_c:7.2f} s  {our_c:7.2f} s  {ref_c / our_c:5.2f}x"
                f"   tokens {'identical' if same else 'DIFFER'}",
                flush=True,
            )
            rows.append(row)
    del ours, theirs
    gc.collect()
    return rows


def available(ref: Path, recipe: str) -> bool:
    if recipe == "llada":
        path = ref / "LLaDA" / "generate.py"
        if path.exists() and "llada_generate_ref" not in sys.modules:
            spec = importlib.util.spec_from_file_location("llada_generate_ref", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules["llada_generate_ref"] = module
            spec.loader.exec_module(module)
        return path.exists()
    if recipe == "fast-dllm":
        return (ref / "Fast-dLLM" / "llada" / "generate.py").exists()
    return (ref / "Dream-hub" / "generation_utils.py").exists()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="folder of the official code (see above)")
    parser.add_argument("--models", default="story,dream-story,llada-0.5b,dream-0.5b", help="comma-separated")
    parser.add_argument("--batches", default="1,16", help="comma-separated batch sizes")
    parser.add_argument("--length", type=int, default=32, help="new tokens (= steps: one per pass)")
    parser.add_argument("--block", type=int, default=None, help="block length (default: --length, 8 for fast-dllm)")
    parser.add_argument("--prompt", type=int, default=16, help="prompt ids for the random checkpoints")
    parser.add_argument("--layers", type=int, default=None, help="depth of the 0.5B-shaped checkpoints (default 24)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.reference.is_dir():
        parser.error(f"--reference: {args.reference} is not a folder")
    if not (args.reference / "Fast-dLLM" / "llada" / "model").is_dir():
        print("no REF/Fast-dLLM/llada/model: the LLaDA rows need its modeling_llada.py")
    print(
        f"{torch.get_num_threads()} thread(s), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
        f"load average {os.getloadavg()[0]:.2f}, {args.length} tokens, {args.repeats} repeats",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            folder = checkpoint(name, Path(tmp), args.layers)
            rows += measure(
                name, folder, args.reference, [int(b) for b in args.batches.split(",")], args.length, args.block,
                args.repeats, args.prompt,
            )  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
