"""unmask.load: folders in the real formats, and a clear error for every way they go wrong."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

import unmask
from unmask import ModelLoadError

from .conftest import GOLDEN, TINY_DREAM, TINY_LLADA, write_checkpoint


def copy_golden(tmp_path, name="dream-tiny"):
    folder = tmp_path / name
    shutil.copytree(GOLDEN / name, folder)
    for f in folder.iterdir():
        f.chmod(0o644)
    return folder


def test_loads_golden_with_special_ids(dream_tiny, llada_tiny):
    assert dream_tiny.family == "dream" and dream_tiny.ids.mask == 252 and 243 in dream_tiny.ids.eos
    assert llada_tiny.family == "llada" and llada_tiny.ids.mask == 250 and llada_tiny.ids.eos == [245]
    assert dream_tiny.dtype == torch.float32 and dream_tiny.device.type == "cpu"


def test_unknown_config_keys_are_ignored(tmp_path):
    model = unmask.load(write_checkpoint(tmp_path / "m", TINY_DREAM), device="cpu")
    assert model.net.args.hidden_size == 32


def test_sharded_checkpoint(tmp_path):
    folder = copy_golden(tmp_path)
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    names = sorted(state)
    halves = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    weight_map = {}
    for shard, keys in halves.items():
        save_file({k: state[k] for k in keys}, str(folder / shard))
        weight_map.update({k: shard for k in keys})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    sharded = unmask.load(folder)
    x = torch.tensor([[1, 2, 3, 4]])
    torch.testing.assert_close(sharded.logits(x), unmask.load(GOLDEN / "dream-tiny").logits(x))


def test_missing_config(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="config.json"):
        unmask.load(tmp_path / "empty")


def test_missing_weights(tmp_path):
    folder = copy_golden(tmp_path)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no model.safetensors"):
        unmask.load(folder)


def test_pickle_weights_refused(tmp_path):
    folder = copy_golden(tmp_path)
    (folder / "model.safetensors").unlink()
    torch.save({"x": torch.zeros(1)}, folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="pickle.*safetensors only"):
        unmask.load(folder)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_safetensors(tmp_path, damage):
    folder = copy_golden(tmp_path)
    path = folder / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 10)
    with pytest.raises(ModelLoadError, match="truncated or corrupt"):
        unmask.load(folder)


def test_unknown_model_type_lists_supported(tmp_path):
    folder = copy_golden(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"model_type": "gpt2"}))
    with pytest.raises(
        ModelLoadError, match=r"'gpt2' is not supported; supported model types: .*dream, .*llada, .*sdar"
    ):
        unmask.load(folder)


def test_shape_mismatch_names_parameter(tmp_path):
    folder = copy_golden(tmp_path, "llada-tiny")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"mlp_hidden_size": 96}))
    with pytest.raises(
        ModelLoadError,
        match=r"parameter .model.transformer.blocks.0.ff_(out|proj).weight. has shape \[\d+, \d+\], the config implies",
    ):
        unmask.load(folder)


def test_missing_parameter_named(tmp_path):
    folder = copy_golden(tmp_path)
    state = load_file(str(folder / "model.safetensors"))
    del state["model.norm.weight"]
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(ModelLoadError, match="model.norm.weight"):
        unmask.load(folder)


def test_auto_map_code_is_never_imported(tmp_path):
    folder = copy_golden(tmp_path)
    (folder / "modeling_dream.py").write_text("raise SystemExit('model folder code was executed')\n")
    (folder / "configuration_dream.py").write_text("raise SystemExit('model folder code was executed')\n")
    assert unmask.load(folder).family == "dream"


def test_unknown_reference(tmp_path):
    with pytest.raises(ModelLoadError, match="unknown model"):
        unmask.load("no-such-model-anywhere")


def test_hub_id_not_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="unmask pull"):
        unmask.load("GSAI-ML/LLaDA-8B-Instruct")


def test_bad_dtype_and_device(tmp_path):
    with pytest.raises(ModelLoadError, match="dtype"):
        unmask.load(GOLDEN / "dream-tiny", dtype="float8")
    with pytest.raises(ModelLoadError, match="device"):
        unmask.load(GOLDEN / "dream-tiny", device="tpu")


def test_auto_dtype_on_cpu_is_bfloat16_where_the_cpu_computes_it_natively(tmp_path):
    from unmask import loading

    folder = write_checkpoint(tmp_path / "bf16", TINY_LLADA, dtype=torch.bfloat16)
    model = unmask.load(folder)
    assert model.dtype == (torch.bfloat16 if loading.cpu_has_native_bf16() else torch.float32)
    assert unmask.load(folder, dtype="float32").dtype == torch.float32
    assert unmask.load(folder, dtype="float16").dtype == torch.float16
