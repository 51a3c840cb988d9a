"""`unmask pull diffusiongemma` on machines of different sizes: the loader's fit check made from
config.json alone, before any weight is requested, naming the quantization that would fit.

No DiffusionGemma-26B-A4B config.json is public here (../shared/golden/README-2026-families.md §3),
so the config is the golden tiny one's (transformers' own serialisation of DiffusionGemmaConfig:
every key the class writes) with the text sizes of Gemma 4 26B-A4B's published config, whose text
stack DiffusionGemma shares: 30 layers, 128 experts of which 8 run per token, a 262k vocabulary.
`per_layer_config` is what the config class writes for the full-attention layers (transformers
5.24 `DiffusionGemmaTextConfig(global_head_dim=512, num_global_key_value_heads=2)`). The weights the
fake hub serves are the tiny checkpoint's: the 26B files are never requested when a pull is refused.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors import safe_open

from unmask import checkpoints, loading
from unmask.cli.hub import human_size
from unmask.loading import GB

from ..conftest import GOLDEN
from .fakehub import Repo
from .test_hub import cli, repo_folder

GOLD = GOLDEN / "dgemma-tiny"
TINY = json.loads((GOLD / "config.json").read_text())
REPO = "google/diffusiongemma-26B-A4B-it"  # what the alias `diffusiongemma` names
LAYER_TYPES = ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(30)]
TEXT_26B = {
    "vocab_size": 262144,
    "hidden_size": 2816,
    "intermediate_size": 2112,
    "num_hidden_layers": 30,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 256,
    "sliding_window": 1024,
    "max_position_embeddings": 262144,
    "num_experts": 128,
    "top_k_experts": 8,
    "moe_intermediate_size": 704,
    "attention_k_eq_v": True,
    "layer_types": LAYER_TYPES,
    "per_layer_config": {
        f"{i:02d}": {"head_dim": 512, "num_key_value_heads": 2}
        for i, t in enumerate(LAYER_TYPES)
        if t == "full_attention"
    },
}
CONFIG_26B = TINY | {
    "canvas_length": 256,
    "dtype": "bfloat16",
    "boi_token_id": 255999,
    "eoi_token_id": 258882,
    "image_token_id": 258880,
    "text_config": TINY["text_config"] | TEXT_26B,
}


def stored_parameters(text: dict) -> int:
    """The text numbers a DiffusionGemma checkpoint stores, tensor by tensor as the golden tiny
    file names them (README §3.2): the decoder's embedding, layers, norm and self-conditioning MLP,
    and the encoder's own `layer_scalar`s (all else is tied); full-attention layers have no v_proj.
    Every expert is counted: all of them are in memory, whichever 8 a token uses."""
    H, inner, moe, experts = (
        text["hidden_size"],
        text["intermediate_size"],
        text["moe_intermediate_size"],
        text["num_experts"],
    )
    heads, overrides = text["num_attention_heads"], {int(k): v for k, v in text["per_layer_config"].items()}
    total = text["vocab_size"] * H + H + (H + 3 * H * inner)  # embedding, final norm, self-conditioning
    for i, kind in enumerate(text["layer_types"]):
        d = overrides.get(i, {}).get("head_dim", text["head_dim"])
        kv = overrides.get(i, {}).get("num_key_value_heads", text["num_key_value_heads"])
        attention = (
            2 * heads * d * H + (1 if kind == "full_attention" else 2) * kv * d * H + 2 * d
        )  # q, o, k(, v), norms
        routed = (
            experts * 3 * moe * H + experts * H + H + experts
        )  # gate_up, down; router proj, scale, per-expert scale
        total += attention + 3 * H * inner + routed + 7 * H + 2  # dense MLP, seven norms, two layer_scalars
    return total


def test_the_fit_estimate_counts_every_expert():
    """The count the fit check uses (the network built on the meta device) is the checkpoint's: on
    the golden tiny file, by safetensors' own reader; on 26B-A4B, 25.25B numbers (3.8B of them
    active per token), and the memory estimate takes its sizes from text_config."""
    with safe_open(str(GOLD / "model.safetensors"), "pt") as f:
        text_keys = [k for k in f.keys() if "vision" not in k]
        in_file = sum(math.prod(f.get_slice(k).get_shape()) for k in text_keys)
    assert checkpoints.config_parameters(TINY) == stored_parameters(TINY["text_config"]) == in_file

    n = checkpoints.config_parameters(CONFIG_26B)
    assert n == stored_parameters(CONFIG_26B["text_config"]) and 25.2e9 < n < 25.3e9
    t = CONFIG_26B["text_config"]
    idle = (
        t["num_hidden_layers"]
        * (t["num_experts"] - t["top_k_experts"])
        * 3
        * t["moe_intermediate_size"]
        * t["hidden_size"]
    )
    assert 3.7e9 < n - idle < 3.9e9, "the A4B: about 3.8B numbers a token runs through"

    needs = checkpoints.config_memory_needs(CONFIG_26B)
    assert needs["bfloat16"].weights == 2 * n and needs["float32"].weights == 4 * n
    assert 13 * GB < needs["int4"].weights < 15.5 * GB < needs["int8"].weights < needs["bfloat16"].weights
    # One 512-token canvas's float32 logits over the 262k vocabulary, and a KV cache for 30 layers.
    assert needs["int4"].activations > loading.FIT_CANVAS * t["vocab_size"] * 4 and needs["int4"].cache > 0


def bytes_needed(mode: str | None) -> float:
    n = checkpoints.config_parameters(CONFIG_26B)
    return loading.memory_needed(CONFIG_26B, n, torch.bfloat16, mode, loading.FIT_CANVAS).total / GB


@pytest.fixture
def gemma_hub(hub, monkeypatch):
    files = {
        "config.json": json.dumps(CONFIG_26B).encode(),
        "model.safetensors": (GOLD / "model.safetensors").read_bytes(),
    }
    monkeypatch.setitem(hub.repos, REPO, Repo(files))
    return hub


def machine(monkeypatch, free_gb: float) -> None:
    """This machine with `free_gb` of memory free (MemAvailable, or free VRAM, as the loader reads it)."""
    monkeypatch.setattr(loading, "free_memory", lambda device: int(free_gb * GB))


def refused(hub, *args) -> str:
    result = cli("pull", "diffusiongemma", *args)
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.text
    assert "Traceback" not in result.text and result.stdout == ""
    assert not [r for r in hub.requests(REPO) if r.path.endswith(".safetensors")], "a weight was requested"
    assert hub.downloaded(REPO) == ["config.json"] and not repo_folder(hub, REPO).exists()
    return " ".join(result.stderr.split())


@pytest.mark.parametrize("free_gb, fix", [(24, "int4"), (32, "int8")])
def test_pull_refuses_a_model_too_big_and_names_the_quantization_that_fits(gemma_hub, monkeypatch, free_gb, fix):
    machine(monkeypatch, free_gb)
    message = refused(gemma_hub)
    assert message == (
        f"error: {REPO}: this model in bfloat16 needs about {bytes_needed(None):.1f} GB, {free_gb:.1f} GB is free; "
        f"try --quantize {fix} (about {bytes_needed(fix):.1f} GB); nothing was downloaded"
    )

    gemma_hub.reset()
    result = cli("pull", "diffusiongemma", "--quantize", fix)
    assert result.exit_code == 0, result.text
    assert "model.safetensors" in gemma_hub.downloaded(REPO)
    assert result.stdout.strip().endswith(f"; run it with --quantize {fix}")


def test_pull_on_a_machine_too_small_even_for_int4(gemma_hub, monkeypatch):
    machine(monkeypatch, 8)
    message = refused(gemma_hub)
    assert f"even --quantize int4 needs about {bytes_needed('int4'):.1f} GB" in message
    gemma_hub.reset()
    assert "8.0 GB is free; free memory or pick a smaller model; nothing was downloaded" in refused(
        gemma_hub, "--quantize", "int4"
    )


def test_pull_on_a_machine_with_room_says_the_memory_and_downloads(gemma_hub, monkeypatch):
    machine(monkeypatch, 64)
    result = cli("pull", "diffusiongemma")
    assert result.exit_code == 0, result.text
    needs = checkpoints.config_memory_needs(CONFIG_26B)
    plan = f"needs about {human_size(needs['bfloat16'].total)} of memory in bfloat16 (int8 about "
    assert plan in " ".join(result.stderr.split())
    assert "model.safetensors" in gemma_hub.downloaded(REPO)
