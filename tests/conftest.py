"""Shared fixtures: the golden checkpoints and tiny models/tokenizers built on the fly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import unmask

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="session")
def dream_tiny():
    return unmask.load(GOLDEN / "dream-tiny")


@pytest.fixture(scope="session")
def llada_tiny():
    return unmask.load(GOLDEN / "llada-tiny")


def write_checkpoint(folder: Path, config: dict, seed: int = 0, dtype=torch.float32) -> Path:
    """A random-weight checkpoint folder for `config`, in the real file layout."""
    from unmask.models import architecture_for

    folder.mkdir(parents=True, exist_ok=True)
    arch = architecture_for(config["model_type"])
    torch.manual_seed(seed)
    net = arch.make_model(arch.make_args(config))
    state = {k: v.detach().to(dtype).contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(config))
    return folder


TINY_DREAM = {
    "model_type": "Dream",
    "vocab_size": 64,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "rope_theta": 10000.0,
    "mask_token_id": 63,
    "eos_token_id": 1,
    "pad_token_id": 1,
    "bos_token_id": 1,
    "some_unknown_key": "ignored",
}

TINY_LLADA = {
    "model_type": "llada",
    "d_model": 32,
    "n_heads": 4,
    "n_kv_heads": 4,
    "n_layers": 2,
    "mlp_hidden_size": 64,
    "vocab_size": 64,
    "embedding_size": 64,
    "rope_theta": 10000.0,
    "mask_token_id": 63,
    "eos_token_id": 1,
    "pad_token_id": 1,
    "block_type": "llama",
}
