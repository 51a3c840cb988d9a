"""Fixtures for the hub verbs: a fake hub with tiny repos, a private HF cache, a fake embedded model.

huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE once, when it is imported, so
in-process tests set the environment (for subprocesses) and the library's `constants` (for this
process) together.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from ..conftest import GOLDEN, TINY_LLADA, write_checkpoint
from .fakehub import FakeHub, Repo

TOKEN = "hf_fake_token_for_tests"
SPECIALS = {"<|eot_id|>": 245, "<|mdm_mask|>": 250}  # the ids llada-tiny's config uses
CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }}<|eot_id|>{% endfor %}"
DEFAULTS = {"steps": 32, "max_new_tokens": 64, "algorithm": "low_confidence"}


def tiny_tokenizer_json() -> bytes:
    """A word-level tokenizer whose ids fit llada-tiny's 256-entry vocabulary."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = "the a fox bear bird ran slept sang to in river cave tree . ,".split()
    vocab = {"<unk>": 0} | {w: i + 1 for i, w in enumerate(words)} | SPECIALS
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(list(SPECIALS))
    return tokenizer.to_str().encode()


def llada_tiny_files() -> dict[str, bytes]:
    """llada-tiny in hub layout, plus files unmask must never fetch (pickles, code, docs)."""
    generation = json.loads((GOLDEN / "llada-tiny" / "generation_config.json").read_text()) | {"unmask": DEFAULTS}
    return {
        "config.json": (GOLDEN / "llada-tiny" / "config.json").read_bytes(),
        "generation_config.json": json.dumps(generation).encode(),
        "model.safetensors": (GOLDEN / "llada-tiny" / "model.safetensors").read_bytes(),
        "tokenizer.json": tiny_tokenizer_json(),
        "tokenizer_config.json": json.dumps({"chat_template": CHAT_TEMPLATE, "eos_token": "<|eot_id|>"}).encode(),
        "pytorch_model.bin": b"pickle bytes unmask must never download",
        "modeling_llada.py": b"raise SystemExit('code unmask must never download')\n",
        "README.md": b"# llada-tiny\n",
        "extra/model.safetensors": b"a subfolder the loader never reads",
    }


def sharded_files(tmp: Path) -> dict[str, bytes]:
    """llada-tiny split into two shards with an index, as large hub checkpoints are."""
    state = load_file(str(GOLDEN / "llada-tiny" / "model.safetensors"))
    names = sorted(state)
    halves = {
        "model-00001-of-00002.safetensors": names[: len(names) // 2],
        "model-00002-of-00002.safetensors": names[len(names) // 2 :],
    }
    files = {k: v for k, v in llada_tiny_files().items() if k not in ("model.safetensors", "extra/model.safetensors")}
    weight_map = {}
    for shard, keys in halves.items():
        save_file({k: state[k] for k in keys}, str(tmp / shard), metadata={"format": "pt"})
        files[shard] = (tmp / shard).read_bytes()
        weight_map |= {k: shard for k in keys}
    files["model.safetensors.index.json"] = json.dumps({"metadata": {}, "weight_map": weight_map}).encode()
    return files


def big_files(tmp: Path) -> dict[str, bytes]:
    """A LLaDA checkpoint of ~31 MB, more than twice huggingface_hub's 10 MB read size, so a
    download shows steps on its bar and a cut connection leaves whole chunks to resume from."""
    config = TINY_LLADA | {
        "d_model": 512,
        "n_heads": 8,
        "n_kv_heads": 8,
        "n_layers": 3,
        "mlp_hidden_size": 1024,
        "vocab_size": 256,
        "embedding_size": 256,
    }
    folder = write_checkpoint(tmp / "big", config)
    return {
        "config.json": (folder / "config.json").read_bytes(),
        "model.safetensors": (folder / "model.safetensors").read_bytes(),
    }


@pytest.fixture(scope="session")
def fake_hub(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fakehub")
    tiny = llada_tiny_files()
    gpt2 = {
        "config.json": json.dumps({"model_type": "gpt2", "n_layer": 2}).encode(),
        "model.safetensors": tiny["model.safetensors"],
        "tokenizer.json": tiny["tokenizer.json"],
    }
    with FakeHub() as hub:
        hub.repos = {
            "fake-org/llada-tiny": Repo(tiny),
            "GSAI-ML/LLaDA-8B-Instruct": Repo(dict(tiny)),  # what the alias `llada` names
            "fake-org/llada-sharded": Repo(sharded_files(tmp)),
            "fake-org/llada-big": Repo(big_files(tmp)),
            "fake-org/gpt2-tiny": Repo(gpt2),
            "fake-org/pickle-only": Repo({"config.json": tiny["config.json"], "pytorch_model.bin": b"pickle"}),
            "fake-org/gated-llada": Repo(dict(tiny), token=TOKEN),
            "fake-org/private-llada": Repo(dict(tiny), token=TOKEN, private=True),
            "fake-org/just-a-tokenizer": Repo({"tokenizer.json": tiny["tokenizer.json"]}),
        }
        yield hub


@pytest.fixture
def hub(fake_hub, tmp_path, monkeypatch):
    """The fake hub behind HF_ENDPOINT, an empty HF cache, and no token or offline flag."""
    from huggingface_hub import constants

    fake_hub.reset()
    cache = tmp_path / "hf" / "hub"
    settings = {
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_CACHE": str(cache),
        "HF_ENDPOINT": fake_hub.url,
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    for key in (
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_HUB_DISABLE_PROGRESS_BARS",
    ):
        monkeypatch.delenv(key, raising=False)
    point_at(monkeypatch, fake_hub.url)
    # `unmask list` also shows named models ($UNMASK_HOME) and trained ones (./runs/*/model).
    monkeypatch.setenv("UNMASK_HOME", str(tmp_path / "unmask-home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
    fake_hub.cache = cache
    yield fake_hub
    fake_hub.reset()


def point_at(monkeypatch, endpoint: str) -> None:
    """HF_ENDPOINT, for subprocesses and for the library already imported here."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")


def go_offline(monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def embedded(tmp_path, monkeypatch):
    """A stand-in `story` embedded model (the golden llada-tiny, whose size the tests know exactly),
    in a private WEIGHTS_DIR."""
    from unmask import loading

    weights = tmp_path / "weights"
    shutil.copytree(
        GOLDEN / "llada-tiny", weights / "story", ignore=shutil.ignore_patterns("forward.*", "generations.*")
    )
    monkeypatch.setattr(loading, "WEIGHTS_DIR", weights)
    return weights / "story"
