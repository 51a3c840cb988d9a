"""Fast-dLLM v2: parity with the hub modeling.py and its generate(), and with NVlabs/Fast-dLLM v2's
batch_sample (tests/golden/fastdllm2-tiny/README.md), plus the cache and batching equivalences."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from unmask.models import architecture_for
from unmask.models.fast_dllm_v2 import FastDLLMv2Args, FastDLLMv2Model
from unmask.models.layers import BlockCache, block_causal_mask
from unmask.sampling.noise import RowGenerators
from unmask.sampling.plan import Plan
from unmask.sampling.subblocks import SubBlockCache, denoise_fast_dllm_v2, reference_gen_length

from .conftest import GOLDEN

FOLDER = GOLDEN / "fastdllm2-tiny"
REAL_CONFIG = GOLDEN.parent / "real" / "fast-dllm-v2-7b" / "config.json"
GOLDEN_FILE = json.loads((FOLDER / "generations.json").read_text())
RECORDS = {r["id"]: r for r in GOLDEN_FILE["records"]}
MASK = GOLDEN_FILE["mask_token_id"]
NOISE = load_file(str(FOLDER / "sampler_noise.safetensors"))
# batch_sample finishes a row differently from generate (README "Stopping"): tokens only
BATCH_STOP = [i for i in RECORDS if i.startswith("batch") and "stop" in i]
EXACT = [i for i in RECORDS if i not in BATCH_STOP]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """As the golden set was made (and a 64-wide model runs faster on one thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def net() -> FastDLLMv2Model:
    config = json.loads((FOLDER / "config.json").read_text())
    arch = architecture_for(config["model_type"])
    model = arch.make_model(arch.make_args(config))
    model.load_state_dict(load_file(str(FOLDER / "model.safetensors")), strict=True)
    return model.eval()


def plan(block=8, sub=4, threshold=0.9, temperature=0.0, top_p=None, cache="none", stop=False) -> Plan:
    return Plan(
        family="fast-dllm-v2",
        recipe="fast-dllm-v2",
        algorithm="low_confidence",
        choice="block",
        prob_dtype=torch.float32,
        schedule="dynamic_threshold",
        head_first=False,
        total_steps=0,
        steps_per_block=0,
        block_length=block,
        threshold=threshold,
        temperature=temperature,
        top_p=top_p,
        cache=cache,
        stop_at_eos=stop,
        sub_block_length=sub,
    )


def plan_for(kwargs: dict) -> Plan:
    """generate()/batch_sample() kwargs -> Plan: use_block_cache is cache "dual"; stop_token -1 never occurs."""
    return plan(
        kwargs["block_size"],
        kwargs["small_block_size"],
        kwargs["threshold"],
        kwargs["temperature"],
        kwargs["top_p"],
        "dual" if kwargs["use_block_cache"] else "none",
        kwargs["stop_token"] >= 0,
    )


def left_padded(prompts: list[list[int]], length: int) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """(canvas, key_mask or None, gen_start): prompts right-aligned at the longest one, masks after."""
    P = max(len(q) for q in prompts)
    x = torch.full((len(prompts), length), MASK)
    key_mask = torch.ones_like(x, dtype=torch.bool)
    for r, q in enumerate(prompts):
        x[r, P - len(q) : P] = torch.tensor(q)
        key_mask[r, : P - len(q)] = False
    return x, (None if key_mask.all() else key_mask), P


def row_view(x: torch.Tensor, prompts: list[list[int]]) -> torch.Tensor:
    """Canvas -> row coordinates (pads dropped, mask-filled on the right), as the reference's batches are laid."""
    P = max(len(q) for q in prompts)
    out = torch.full_like(x, MASK)
    for r, q in enumerate(prompts):
        pad = P - len(q)
        out[r, : x.shape[1] - pad] = x[r, pad:]
    return out


def run_record(net, record, **kwargs):
    """Decode a record as the reference was called; returns (steps, canvases in row coordinates)."""
    k, prompts = record["kwargs"], record["prompt_ids"]
    bs, length = k["block_size"], record["canvas_length"]
    pads = max(len(q) for q in prompts) - min(len(q) for q in prompts)
    x, key_mask, P = left_padded(prompts, math.ceil((length + pads) / bs) * bs)
    eos = [k["stop_token"]] if k["stop_token"] >= 0 else []
    steps, canvases = [], []
    sampler = denoise_fast_dllm_v2(net, x, P, plan_for(k), MASK, key_mask, eos, gen_length=length - P, **kwargs)
    for step in sampler:
        steps.append(step)
        canvases.append(row_view(step.canvas, prompts))
    return steps, canvases


def assert_reproduced(record, steps, canvases):
    length = record["canvas_length"]
    assert len(steps) == len(record["passes"]) == record["nfe"] == steps[-1].nfe
    history = torch.tensor(record["history"])
    if history.dim() == 2:
        history = history[:, None]
    for i, (ours, theirs) in enumerate(zip(canvases, history)):
        assert torch.equal(ours[:, :length], theirs), f"pass {i}: {record['passes'][i]}"
        assert bool((ours[:, length:] == MASK).all())
    pads = [max(len(q) for q in record["prompt_ids"]) - len(q) for q in record["prompt_ids"]]
    for step, entry in zip(steps, record["passes"]):
        if "committed" in entry:
            assert step.committed == [[c + n for c in row] for row, n in zip(entry["committed"], pads)]
    outputs = record["output_ids"]  # one row per prompt (generate's are truncated after the stop token)
    for r, out in enumerate(outputs):
        assert canvases[-1][r, : len(out)].tolist() == out
    assert all(steps[-1].finished) and steps[-1].remaining == [0] * len(outputs)


# --- model ------------------------------------------------------------------------------------------


def test_registry_and_the_real_config():
    real = FastDLLMv2Args.from_config(json.loads(REAL_CONFIG.read_text()))
    assert (real.head_dim, real.num_key_value_heads, real.bd_size, real.rope_theta) == (128, 4, 32, 1e6)
    config = json.loads((FOLDER / "config.json").read_text())
    assert config["model_type"] == "Fast_dLLM_Qwen"
    arch = architecture_for(config["model_type"])
    assert arch.family == "fast-dllm-v2"
    model = arch.make_model(arch.make_args(config))
    assert model.shift_logits and model.block_diffusion and model.n_layers == 2
    assert set(model.state_dict()) == set(load_file(str(FOLDER / "model.safetensors")))
    assert model.model.layers[0].self_attn.k_proj.bias.shape == (32,)  # Qwen2's q/k/v biases
    with pytest.raises(ValueError, match="use_sliding_window"):
        FastDLLMv2Args.from_config(config | {"use_sliding_window": True})


def forward_logits(net, name: str) -> torch.Tensor:
    ref = load_file(str(FOLDER / "forward.safetensors"))
    ids = ref["input_ids"]
    if name == "logits_blockcausal_b8":
        return net(ids, attn_mask=block_causal_mask(24, 8)[None, None])
    if name == "logits_default_b32":
        return net(ids)
    cache = BlockCache(net.n_layers)
    net(ids[:, :16], cache=cache, attn_mask=block_causal_mask(16, 8)[None, None], keep=(15, 16))
    if name == "logits_window_16_24_cached":
        return net(ids[:, 16:], cache=cache, start=16, store=False)
    if name == "logits_window_16_24_fresh_recompute":
        fresh = ids[:, 16:].clone()
        fresh[:, 4:] = ref["subblock_input_ids_20_24"]
        return net(fresh, cache=cache, start=16, store=False)
    holder = SubBlockCache(cache, net.n_layers)
    net(ids[:, 16:], cache=holder, start=16, store=False)
    holder.full = False
    return net(ref["subblock_input_ids_20_24"], cache=holder, start=20, store=False)


FORWARD = [
    "logits_blockcausal_b8",
    "logits_default_b32",
    "logits_window_16_24_cached",
    "logits_subblock_20_24_stale_block_cache",
    "logits_window_16_24_fresh_recompute",
]


@pytest.mark.parametrize("name", FORWARD)
def test_forward_logits(net, name):
    with torch.no_grad():
        ours = forward_logits(net, name)
    ref = load_file(str(FOLDER / "forward.safetensors"))[name]
    assert ours.dtype == torch.float32 and ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)


def test_the_stale_sub_block_cache_is_not_a_recompute():
    ref = load_file(str(FOLDER / "forward.safetensors"))
    stale, fresh = ref["logits_subblock_20_24_stale_block_cache"], ref["logits_window_16_24_fresh_recompute"][:, 4:]
    assert (stale - fresh).abs().max() > 0.1  # the reference's approximation, reproduced above


def test_attention_is_bidirectional_in_a_block_and_causal_across(net):
    ids = torch.randint(0, 240, (2, 16), generator=torch.Generator().manual_seed(0))
    other = ids.clone()
    other[:, 6] = (other[:, 6] + 1) % 240
    mask = block_causal_mask(16, 8)[None, None]
    with torch.no_grad():
        a, b = net(ids, attn_mask=mask), net(other, attn_mask=mask)
        assert not torch.allclose(a[:, 2], b[:, 2])  # a later token of the same block is seen
        other[:, 12] = (other[:, 12] + 1) % 240
        c = net(other, attn_mask=mask)
    torch.testing.assert_close(b[:, :8], c[:, :8], atol=0, rtol=0)  # a later block is not


def test_left_padding_hides_pads_and_renumbers(net):
    ids = torch.randint(0, 240, (1, 10), generator=torch.Generator().manual_seed(1))
    padded = torch.cat([torch.full((1, 3), 243), ids], 1)
    key_mask = torch.cat([torch.zeros(1, 3, dtype=torch.bool), torch.ones(1, 10, dtype=torch.bool)], 1)
    with torch.no_grad():
        alone = net(ids)
        batch = net(padded, net.positions(key_mask, 13, "cpu"), key_mask)
    assert not batch.isnan().any()
    torch.testing.assert_close(batch[:, 3:], alone, atol=1e-4, rtol=0)


def test_block_cache_equals_recomputing_the_prefix(net):
    """Blocks stored one at a time (prefill, then store passes) give the logits of one uncached pass."""
    ids = torch.randint(0, 240, (2, 32), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        whole = net(ids, attn_mask=block_causal_mask(32, 8)[None, None])
        cache = BlockCache(net.n_layers)
        net(ids[:, :8], cache=cache, attn_mask=block_causal_mask(8, 8)[None, None])
        for s in (8, 16):
            net(ids[:, s : s + 8], cache=cache, start=s)
        window = net(ids[:, 24:], cache=cache, start=24, store=False)
    assert cache.length == 24
    torch.testing.assert_close(window, whole[:, 24:], atol=1e-5, rtol=0)


def test_bfloat16_runs(net):
    ids = torch.randint(0, 240, (2, 8), generator=torch.Generator().manual_seed(3))
    half = FastDLLMv2Model(net.args)
    half.load_state_dict(net.state_dict())
    with torch.no_grad():
        logits = half.to(torch.bfloat16)(ids)
    assert logits.dtype == torch.bfloat16 and logits.shape == (2, 8, 256)


# --- generation records ------------------------------------------------------------------------------


def test_golden_copy_has_every_record():
    assert len(RECORDS) == GOLDEN_FILE["n_records"] == 17
    assert sum(r["impl"] == "nvlabs_v2_batch_sample" for r in RECORDS.values()) == 5


@pytest.mark.parametrize("rid", EXACT)
def test_record(net, rid):
    """Every pass's canvas, its commits and the NFE, exactly; sampled records given the recorded Exp(1) draws."""
    record = RECORDS[rid]
    noise = NOISE.get(rid)
    assert (noise is not None) == ("noise_tensor" in record) == rid.startswith("sample_")
    steps, canvases = run_record(net, record, noise=noise)
    assert_reproduced(record, steps, canvases)


@pytest.mark.skipif(not torch.__version__.startswith("2.13"), reason="torch's RNG stream of the golden environment")
@pytest.mark.parametrize("rid", [i for i in RECORDS if i.startswith("sample_")])
def test_sampled_record_from_the_global_seed(net, rid):
    """torch's CPU multinomial(p) is argmax(p / Exp(1)) on the same stream: the seed alone reproduces it."""
    record = RECORDS[rid]
    torch.manual_seed(record["torch_manual_seed"])
    steps, canvases = run_record(net, record)
    assert_reproduced(record, steps, canvases)


@pytest.mark.parametrize("rid", BATCH_STOP)
def test_batch_record_with_stopping(net, rid):
    """batch_sample completes a stopped row's block and pads it; generate stops at once. Tokens up to the
    stop agree, and a row that never stops agrees whole; only the passes spent on the stopped row differ."""
    record = RECORDS[rid]
    stop = record["kwargs"]["stop_token"]
    steps, canvases = run_record(net, record)
    for r, (out, prompt) in enumerate(zip(record["output_ids"], record["prompt_ids"])):
        gen = out[len(prompt) :]
        keep = len(prompt) + gen.index(stop) + 1 if stop in gen else len(out)
        assert canvases[-1][r, :keep].tolist() == out[:keep]
    assert record["stopped"] == [True, False]
    assert steps[-1].nfe < record["nfe"]


def test_reference_gen_length_matches_the_records():
    for record in RECORDS.values():
        P = max(len(q) for q in record["prompt_ids"])
        k = record["kwargs"]
        assert reference_gen_length(P, k["max_new_tokens"], k["block_size"]) == record["canvas_length"] - P


# --- equivalences -----------------------------------------------------------------------------------


class Recompute(nn.Module):
    """The model without a cache: each cached pass is recomputed over every stored token plus the window."""

    shift_logits = True
    block_diffusion = True

    def __init__(self, net, block: int):
        super().__init__()
        self.net, self.block, self.stored = net, block, None

    @property
    def n_layers(self):
        return self.net.n_layers

    def forward(
        self, ids, positions=None, key_mask=None, cache=None, start=0, keep=None, *, attn_mask=None, store=True
    ):
        assert isinstance(cache, BlockCache)
        tokens = ids if start == 0 else torch.cat([self.stored[:, :start], ids], 1)
        n = tokens.shape[1]
        mask = block_causal_mask(n, self.block).clone()
        mask[start:] = True if attn_mask is None else attn_mask[0, 0]
        if store:
            self.stored = tokens
        span = (0, ids.shape[1]) if keep is None else keep
        return self.net(tokens, attn_mask=mask[None, None], keep=(start + span[0], start + span[1]))


def test_block_cache_path_equals_recomputing_the_window(net):
    record = RECORDS["greedy_thr0.9_sub4_b8_p10_new24"]
    cached_steps, cached = run_record(net, record)
    steps, recomputed = run_record(Recompute(net, 8), record)
    assert len(steps) == len(cached_steps)
    assert all(torch.equal(a, b) for a, b in zip(cached, recomputed))


def decode(net, prompts, p, eos=(), gen_length=16, generator=None):
    bs = p.block_length
    P = max(len(q) for q in prompts)
    x, key_mask, P = left_padded(prompts, math.ceil((P + gen_length + 1) / bs) * bs + bs)
    steps = list(denoise_fast_dllm_v2(net, x, P, p, MASK, key_mask, eos, generator, gen_length))
    return x, steps


def test_batched_equals_single(net):
    """Rows of different lengths decode in their own block frames, as each would alone, stopping included."""
    prompts = [RECORDS["batch2_ragged_thr0.9_sub4_b8_p7_p13_new16"]["prompt_ids"][r] for r in (0, 1)]
    prompts.append(RECORDS["greedy_thr0.5_sub2_b8_p5_new24"]["prompt_ids"][0])
    P = max(len(q) for q in prompts)

    def alone(p, eos=()):
        return [decode(net, [q], p, eos)[0][0, len(q) : len(q) + 16].tolist() for q in prompts]

    free = alone(plan())
    x, steps = decode(net, prompts, plan())
    assert [x[r, P : P + 16].tolist() for r in range(3)] == free
    # an end id that row 0 produces in its second block and the other rows never do
    eos = [next(t for t in free[0][8:] if t not in free[1] + free[2])]
    stopped = alone(plan(stop=True), eos)
    assert eos[0] in stopped[0] and MASK in stopped[0] and stopped[1:] == free[1:]
    x, steps = decode(net, prompts, plan(stop=True), eos)
    assert [x[r, P : P + 16].tolist() for r in range(3)] == stopped
    assert steps[-1].finished == [True, True, True]


def test_batched_equals_single_when_sampling_with_row_generators(net):
    prompts = [RECORDS["batch2_ragged_thr0.9_sub4_b8_p7_p13_new16"]["prompt_ids"][r] for r in (0, 1)]
    p = plan(temperature=0.8, top_p=0.9)
    alone = [
        decode(net, [q], p, generator=RowGenerators([torch.Generator().manual_seed(10 + r)]))[0][0, len(q) :][:16]
        for r, q in enumerate(prompts)
    ]
    seeds = RowGenerators(torch.Generator().manual_seed(10 + r) for r in range(2))
    x, _ = decode(net, prompts, p, generator=seeds)
    for r, row in enumerate(alone):
        assert x[r, 13:29].tolist() == row.tolist()


# --- the stream --------------------------------------------------------------------------------------


def test_steps_describe_the_canvas(net):
    record = RECORDS["greedy_stop160_thr0.8_sub4_b8_p11_new32"]
    steps, _ = run_record(net, record)
    assert [s.index for s in steps] == list(range(len(steps))) and steps[-1].nfe == len(steps)
    settled = [s.settled[0] for s in steps]
    assert settled == sorted(settled) and settled[-1] == steps[-1].canvas.shape[1]
    for s in steps:
        assert s.tokens[0] == [int(s.canvas[0, c]) for c in s.committed[0]]
        assert s.revoked == [[]] and s.edited == [[]]
    assert not any(s.finished[0] for s in steps[:-1]) and steps[-1].finished == [True]
    assert steps[-1].remaining == [0]
    out = record["output_ids"][0]
    assert out[-1] == 160 and steps[-1].canvas[0, : len(out)].tolist() == out


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(sub=3), "sub_block_length"),
        (dict(block=None), "block_length"),
    ],
)
def test_settings_errors_name_the_field(net, change, field):
    x = torch.full((1, 24), MASK)
    x[0, :5] = 7
    with pytest.raises(ValueError, match=field):
        next(denoise_fast_dllm_v2(net, x, 5, plan(**change), MASK))


def test_canvas_errors(net):
    x = torch.full((2, 24), MASK)
    with pytest.raises(ValueError, match="prompt"):
        next(denoise_fast_dllm_v2(net, x, 0, plan(), MASK))
    right_padded = torch.ones(2, 24, dtype=torch.bool)
    right_padded[1, 4:6] = False
    with pytest.raises(ValueError, match="key_mask"):
        next(denoise_fast_dllm_v2(net, x, 6, plan(), MASK, right_padded))


def test_the_steps_dial_under_the_unmask_recipe():
    """The reference has no step count (one token a pass plus those above the threshold); the
    surfaces' recipe commits each pass's share, so fewer steps per block take fewer passes."""
    from unmask.engine import Model

    model = Model.load(GOLDEN / "fastdllm2-tiny", dtype="float32")
    prompt = [[5, 17, 33, 2, 90]]
    passes = {}
    for steps in (8, 4, 2):
        result = model.generate(
            prompt, max_new_tokens=16, block_length=8, steps_per_block=steps, recipe="unmask", mask_token_id=MASK
        )
        assert MASK not in result.sequences[0][5:21]
        passes[steps] = result.nfe
    reference = model.generate(prompt, max_new_tokens=16, block_length=8, steps_per_block=2, mask_token_id=MASK)
    assert passes[2] < passes[4] < passes[8] == reference.nfe
