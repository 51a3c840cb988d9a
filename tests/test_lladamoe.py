"""LLaDA-MoE: parity with the reference model file and LLaDA `generate` (tests/golden/lladamoe-tiny/README.md),
and the tiny-config checks every architecture gets."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import load_file

from unmask.engine import Model
from unmask.models import architecture_for
from unmask.models.layers import KVStore
from unmask.models.lladamoe import LLaDAMoEArgs, LLaDAMoEModel, LLaDAMoESparseMoe
from unmask.models.moe import run_experts_per_token
from unmask.sampling.logits import llada_choice
from unmask.sampling.ranking import max_prob, select_top
from unmask.sampling.schedule import even_split

from .conftest import GOLDEN

FOLDER = GOLDEN / "lladamoe-tiny"
DOC = json.loads((FOLDER / "generations.json").read_text())
RECORDS = DOC["records"]
EXACT = [r for r in RECORDS if r["deterministic"]]
SAMPLED = [r for r in RECORDS if not r["deterministic"]]


@pytest.fixture(scope="module")
def lladamoe_tiny():
    return Model.load(FOLDER, dtype="float32")  # the golden records are float32


def options_for(record: dict) -> dict:
    k = record["kwargs"]
    opts = dict(
        recipe="llada",
        steps=k["steps"],
        max_new_tokens=k["gen_length"],
        block_length=k["block_length"],
        cfg_scale=k["cfg_scale"],
        temperature=k["temperature"],
        algorithm="low_confidence" if k["remasking"] == "low_confidence" else "random",
    )
    return opts | ({"seed": record["torch_manual_seed"]} if record["torch_manual_seed"] is not None else {})


def test_golden_set_is_whole():
    assert len(RECORDS) == 10 and len(EXACT) == 7 and DOC["mask_token_id"] == 250


def test_loads_as_llada_family(lladamoe_tiny):
    assert lladamoe_tiny.family == "llada"
    assert isinstance(lladamoe_tiny.net, LLaDAMoEModel)
    assert (lladamoe_tiny.ids.mask, lladamoe_tiny.ids.pad, lladamoe_tiny.ids.eos) == (250, 243, [243])
    moe = lladamoe_tiny.net.model.layers[1].mlp
    assert isinstance(moe, LLaDAMoESparseMoe) and moe.expert_bias.abs().sum() > 0  # the bias was loaded


def test_forward_logits(lladamoe_tiny):
    ref = load_file(str(FOLDER / "forward.safetensors"))
    real = ref["attention_mask"].bool()
    logits = lladamoe_tiny.logits(ref["input_ids"], ref["attention_mask"])
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits[real], ref["logits"][real], atol=1e-4, rtol=1e-5)
    # Without a mask the pads are attended, as in the hub file (which ignores attention_mask).
    torch.testing.assert_close(
        lladamoe_tiny.logits(ref["input_ids"]), ref["logits_no_attention_mask"], atol=1e-4, rtol=1e-5
    )
    assert not torch.allclose(logits[1][real[1]], ref["logits_no_attention_mask"][1][real[1]], atol=1e-3)


@pytest.mark.parametrize("record", EXACT, ids=[r["id"] for r in EXACT])
def test_deterministic_record(record, lladamoe_tiny):
    result = lladamoe_tiny.generate(record["prompt_ids"], record["attention_mask"], history=True, **options_for(record))
    assert result.sequences == record["output_ids"]
    assert result.history == record["history"]
    assert result.nfe == record["nfe"]


@pytest.mark.parametrize("record", SAMPLED, ids=[r["id"] for r in SAMPLED])
def test_sampled_record_conditionally(record, lladamoe_tiny):
    """LLaDA draws its noise for the whole (B, L, V) canvas from the global generator; the engine
    draws per masked position of the block, so a seed cannot replay it. Given the reference's sampled
    tokens (Gumbel-max) or random scores of each pass, our logits, confidences, schedule and top-k
    must commit exactly the recorded positions, pass after pass, to the recorded output."""
    k = record["kwargs"]
    P, block = record["prompt_length"], k["block_length"]
    steps = k["steps"] // (k["gen_length"] // block)
    canvas = [row + [DOC["mask_token_id"]] * k["gen_length"] for row in record["prompt_ids"]]
    for n, step in enumerate(record["passes"]):
        before = torch.tensor(canvas)
        logits = lladamoe_tiny.logits(before, None)[0]  # batch 1 records
        pos = torch.tensor(step["positions"][0])
        tokens = torch.tensor(step["tokens"][0])
        greedy, probs = llada_choice(logits[pos], 0.0, None, None, torch.float32, None)
        if k["remasking"] == "random":
            assert torch.equal(greedy, tokens)  # temperature 0: the argmax, only the ranking is random
            scores = torch.tensor(step["confidence"][0])
        else:
            scores = max_prob(probs, tokens)
            torch.testing.assert_close(scores, torch.tensor(step["confidence"][0]), atol=1e-5, rtol=1e-4)
        s = P + step["block"] * block
        if step["step"] == 0:
            counts = even_split((before[:, s : s + block] == DOC["mask_token_id"]).sum(-1), steps)
        chosen = select_top(scores[None], counts[:, step["step"]])[0]
        assert sorted(pos[chosen].tolist()) == step["committed"][0]
        after = before.clone()
        after[0, pos[chosen]] = tokens[chosen]
        assert after.tolist() == record["history"][n]
        canvas = after.tolist()
    assert canvas == record["output_ids"]
    # Our own seeded run takes the same number of passes and commits as many tokens per pass.
    ours = lladamoe_tiny.generate(record["prompt_ids"], record["attention_mask"], history=True, **options_for(record))
    assert ours.nfe == record["nfe"]
    previous = torch.tensor([row + [DOC["mask_token_id"]] * k["gen_length"] for row in record["prompt_ids"]])
    for n, state in enumerate(ours.history):
        now = torch.tensor(state)
        assert int((now != previous).sum()) == record["tokens_unmasked_per_forward"][n]
        previous = now


# ---- tiny config ----------------------------------------------------------------------------------

TINY = json.loads((FOLDER / "config.json").read_text()) | {"vocab_size": 48, "hidden_size": 32}


def tiny_net(**changes) -> LLaDAMoEModel:
    torch.manual_seed(0)
    arch = architecture_for("lladamoe")
    net = arch.make_model(arch.make_args(TINY | changes)).eval()
    for name, buf in net.named_buffers():
        if name.endswith("expert_bias"):
            buf.normal_(0, 0.05)
    return net


def test_tiny_shapes_batch_and_bidirectional():
    net = tiny_net()
    ids = torch.randint(0, 48, (3, 10))
    with torch.no_grad():
        out = net(ids)
        assert out.shape == (3, 10, 48) and out.dtype == torch.float32
        torch.testing.assert_close(out[1:2], net(ids[1:2]), atol=1e-5, rtol=1e-5)  # batched == alone
        changed = ids.clone()
        changed[:, -1] = (changed[:, -1] + 1) % 48
        assert not torch.allclose(net(changed)[:, 0], out[:, 0])  # a later token changes an earlier logit
        torch.testing.assert_close(net(ids, keep=(2, 5)), out[:, 2:5])


def test_tiny_left_padding_masks_pad_keys_only():
    net = tiny_net()
    ids = torch.randint(0, 48, (1, 9))
    padded = torch.cat([torch.full((1, 3), 5), ids], dim=1)
    key_mask = torch.tensor([[False] * 3 + [True] * 9])
    with torch.no_grad():
        alone, batched = net(ids), net(padded, key_mask=key_mask)
    # RoPE is relative, so the real tokens do not see that they sit 3 positions later.
    torch.testing.assert_close(batched[:, 3:], alone, atol=1e-5, rtol=1e-5)


def test_tiny_cached_window_equals_full_pass():
    net = tiny_net()
    ids = torch.randint(0, 48, (2, 12))
    cache = KVStore(net.n_layers)
    with torch.no_grad():
        full = net(ids)
        net(ids, cache=cache)
        window = net(ids[:, 4:8], torch.arange(4, 8)[None], cache=cache, start=4)
    torch.testing.assert_close(window, full[:, 4:8], atol=1e-5, rtol=1e-5)


def test_tiny_router_matches_per_token_reference():
    moe = tiny_net().model.layers[1].mlp
    x = torch.randn(20, 32)
    index, weight = moe.route(x)
    scores = torch.softmax(moe.gate(x).float(), -1) + moe.expert_bias
    assert torch.equal(index, scores.topk(2).indices)
    torch.testing.assert_close(weight, scores.topk(2).values)  # biased and never renormalised
    torch.testing.assert_close(moe(x[None])[0], run_experts_per_token(x, moe.experts, index, weight))


@pytest.mark.parametrize(
    "changes",
    [
        {"moe_router_enable_expert_bias": False, "shared_expert_intermediate_size": None},
        {"qk_layernorm": False, "partial_rotary_factor": 1.0, "num_key_value_heads": 4, "moe_layer_freq": [1, 1]},
        {"attention_bias": True, "clip_qkv": 0.5, "tie_word_embeddings": True},
    ],
)
def test_tiny_variants(changes):
    net = tiny_net(**changes)
    names = dict(net.named_parameters()) | dict(net.named_buffers())
    assert ("model.layers.1.mlp.expert_bias" in names) == changes.get("moe_router_enable_expert_bias", True)
    assert ("model.layers.1.shared_expert.up_proj.weight" in names) == bool(
        changes.get("shared_expert_intermediate_size", 32)
    )
    assert ("model.layers.0.self_attn.q_norm.weight" in names) == changes.get("qk_layernorm", True)
    assert ("model.layers.0.mlp.gate.weight" in names) == (changes.get("moe_layer_freq") == [1, 1])
    if changes.get("tie_word_embeddings"):
        assert net.lm_head.weight is net.model.embed_tokens.weight
    with torch.no_grad():
        assert torch.isfinite(net(torch.randint(0, 48, (2, 6)))).all()


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"moe_layer_freq": [1]}, "moe_layer_freq"),
        ({"partial_rotary_factor": -1}, "partial_rotary_factor"),
        ({"num_experts_per_tok": 9}, "num_experts_per_tok"),
        ({"hidden_act": "gelu"}, "hidden_act"),
        ({"rope_scaling": {"rope_type": "yarn", "factor": 2.0}}, "rope_scaling"),
        ({"expert_intermediate_size": None}, "expert_intermediate_size"),
    ],
)
def test_config_errors_name_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        LLaDAMoEArgs.from_config(copy.deepcopy(TINY) | changes)


def test_the_hub_spelling_loads_as_lladamoe(tmp_path):
    """The hub config says model_type "llada" (dense LLaDA's) with architectures LLaDAMoEModelLM:
    the class name picks the MoE network, and the logits are the golden ones."""
    import shutil

    for name in ("model.safetensors", "forward.safetensors"):
        shutil.copy(FOLDER / name, tmp_path / name)
    config = json.loads((FOLDER / "config.json").read_text()) | {"model_type": "llada"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    model = Model.load(tmp_path, dtype="float32")
    assert isinstance(model.net, LLaDAMoEModel) and model.family == "llada"
    golden = load_file(str(FOLDER / "forward.safetensors"))
    got = model.logits(golden["input_ids"])
    torch.testing.assert_close(got, golden["logits_no_attention_mask"], atol=1e-4, rtol=0)
    dense = architecture_for({"model_type": "llada", "architectures": ["LLaDAModelLM"]})
    assert dense.make_model.__name__ == "LLaDAModel"
