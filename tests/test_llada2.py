"""LLaDA2.x: the model against the golden forward logits, and the sampler against the 13 records of
diffusers' LLaDA2Pipeline + BlockRefinementScheduler (tests/golden/llada2-tiny, README section 2)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from unmask.engine import Model
from unmask.models import architecture_for
from unmask.models.layers import BlockCache, block_causal_mask
from unmask.models.llada2_moe import LLaDA2Args, LLaDA2Model
from unmask.sampling.logits import block_choice
from unmask.sampling.noise import RowGenerators
from unmask.sampling.plan import Plan
from unmask.sampling.refine import denoise_llada2, pipeline_mask, refine

from .conftest import GOLDEN

TINY = GOLDEN / "llada2-tiny"
MASK, EOS = 250, 243
ATOL = 1e-4  # README section 4
RECORDS = json.loads((TINY / "generations.json").read_text())["records"]


@pytest.fixture(scope="module")
def net() -> LLaDA2Model:
    config = json.loads((TINY / "config.json").read_text())
    arch = architecture_for(config["model_type"])
    model = arch.make_model(arch.make_args(config))
    model.load_state_dict(load_file(str(TINY / "model.safetensors")), strict=True)  # expert_bias included
    return model.eval()


@pytest.fixture(scope="module")
def forward():
    return load_file(str(TINY / "forward.safetensors"))


def plan(**settings) -> Plan:
    base = dict(
        family="llada2",
        recipe="llada2",
        algorithm="low_confidence",
        choice="block",
        prob_dtype=torch.float32,
        schedule="dynamic_threshold",
        head_first=False,
        total_steps=8,
        steps_per_block=8,
        block_length=8,
        threshold=0.7,
        edit_threshold=0.5,
        stop_at_eos=True,
    )
    return Plan(**(base | settings))


def record_plan(record: dict) -> Plan:
    k = record["kwargs"]
    return plan(
        total_steps=k["num_inference_steps"],
        steps_per_block=k["num_inference_steps"],
        block_length=k["block_length"],
        temperature=k["temperature"],
        top_k=k.get("top_k"),
        top_p=k.get("top_p"),
        threshold=k["threshold"],
        edit_threshold=k["editing_threshold"],
        max_post_steps=k["max_post_steps"],
        min_commit=k["minimal_topk"],
        stop_at_eos=k["eos_early_stop"],
    )


def record_canvas(record: dict) -> tuple[torch.Tensor, torch.Tensor | None, int, int]:
    """The block-aligned canvas the engine passes (prompt, then masks), its key mask, P and gen."""
    prompt = torch.tensor(record["prompt_ids"])
    (B, P), gen, L = prompt.shape, record["kwargs"]["gen_length"], record["kwargs"]["block_length"]
    canvas = torch.full((B, -(-(P + gen) // L) * L), MASK)
    canvas[:, :P] = prompt
    key_mask = None
    if record["attention_mask"] is not None:
        key_mask = torch.ones(canvas.shape, dtype=torch.bool)
        key_mask[:, :P] = torch.tensor(record["attention_mask"]).bool()
    return canvas, key_mask, P, gen


def eos_of(record: dict) -> tuple[int, ...]:
    return () if record["kwargs"]["eos_token_id"] is None else (record["kwargs"]["eos_token_id"],)


# --- forward ---------------------------------------------------------------------------------------


def test_forward_2d_mask_is_causal_with_padding(net, forward):
    ids, am = forward["input_ids"], forward["attention_mask"].bool()
    mask = pipeline_mask(am)
    assert mask is not None  # row 1 is padded: the whole batch turns token-causal
    with torch.no_grad():
        out = net(ids, forward["position_ids"], attn_mask=mask)
    want = forward["logits_2d_mask"]
    assert torch.allclose(out[am], want[am], atol=ATOL, rtol=0)
    assert torch.isfinite(out).all()  # the fully masked pad queries of row 1 stay finite


def test_forward_without_mask_is_bidirectional(net, forward):
    ids, pos = forward["input_ids"][:1], forward["position_ids"][:1]
    ones = torch.ones_like(ids, dtype=torch.bool)
    assert pipeline_mask(ones) is None  # all ones: transformers drops the mask altogether
    with torch.no_grad():
        plain = net(ids, pos)
        with_ones = net(ids, pos, ones)
    assert torch.allclose(plain, forward["logits_row0_no_mask"], atol=ATOL, rtol=0)
    assert torch.allclose(with_ones, forward["logits_row0_2d_all_ones"], atol=ATOL, rtol=0)


def test_forward_4d_block_mask_and_block_cache(net, forward):
    ids, pos = forward["input_ids"], forward["position_ids"]
    block = forward["block_mask_b8"].bool()
    assert torch.equal(block, block_causal_mask(24, 8))
    want = forward["logits_4d_block8_bool"]
    with torch.no_grad():
        assert torch.allclose(net(ids, pos, attn_mask=block[None, None]), want, atol=ATOL, rtol=0)
        cache, parts = BlockCache(net.n_layers), []
        for s in range(0, 24, 8):
            peek = net(ids[:, s : s + 8], pos[:, s : s + 8], cache=cache, start=s, store=False)
            parts.append(net(ids[:, s : s + 8], pos[:, s : s + 8], cache=cache, start=s))
            assert torch.equal(peek, parts[-1])  # store=False reads the cache without writing it
    assert torch.allclose(torch.cat(parts, 1), want, atol=ATOL, rtol=0)


def test_tiny_config_shapes_batch_and_bidirectionality(net):
    ids = torch.randint(0, 240, (3, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = net(ids)
        assert out.shape == (3, 12, 256) and out.dtype == torch.float32
        assert torch.allclose(net(ids[1:2]), out[1:2], atol=1e-5, rtol=0)  # a row does not see the others
        changed = ids.clone()
        changed[:, -1] = (changed[:, -1] + 1) % 240
        assert not torch.allclose(net(changed)[:, 0], out[:, 0])  # a later token moves an earlier logit
        assert torch.allclose(net(ids, keep=(4, 7)), out[:, 4:7], atol=1e-5, rtol=0)


def test_real_config_loads():
    config = json.loads((GOLDEN.parent / "real" / "llada2.0-mini" / "config.json").read_text())
    assert config["model_type"] == "llada2_moe_veomni"  # dFactory's training copy
    arch = architecture_for(config["model_type"])
    args = arch.make_args(config)
    assert arch.family == "llada2" and isinstance(args, LLaDA2Args)
    assert (args.head_dim, args.rope_dim, args.use_qk_norm, args.num_shared_experts) == (128, 64, True, 1)
    assert [args.sparse(i) for i in (0, 1, 19)] == [False, True, True]
    with pytest.raises(ValueError, match="n_group"):
        LLaDA2Args.from_config(config | {"n_group": 3})
    with pytest.raises(ValueError, match="num_experts_per_tok"):
        LLaDA2Args.from_config(config | {"topk_group": 1, "num_experts_per_tok": 64})


# --- the pipeline's records ---------------------------------------------------------------------------


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_record(net, record):
    """Token-exact history per pass, NFE, and the scheduler's commits and edits. The multinomial
    record is replayed on its recorded sampled tokens and probabilities; the others check that our
    own greedy choice gives the recorded ones."""
    canvas, key_mask, P, gen = record_canvas(record)
    recorded = record["scheduler_steps"]
    sampled = record["kwargs"]["temperature"] > 0

    def proposals(index: int, logits: torch.Tensor):
        tokens = torch.tensor(recorded[index]["sampled_tokens"])
        probs = torch.tensor(recorded[index]["sampled_probs"])
        if sampled:
            return tokens, probs
        ours, ours_p = block_choice(logits.reshape(-1, logits.shape[-1]), 0.0, None, None, None)
        assert torch.equal(ours.view(tokens.shape), tokens)
        assert torch.allclose(ours_p.view(probs.shape), probs, atol=1e-5, rtol=0)
        return ours.view(tokens.shape), ours_p.view(probs.shape)

    run = denoise_llada2(
        net, canvas, P, record_plan(record), MASK, key_mask, eos_of(record), None, gen, proposals=proposals
    )
    steps = []
    for k, step in enumerate(run):
        assert step.canvas[:, : P + gen].tolist() == record["history"][k]
        assert (step.canvas[:, P + gen :] == MASK).all()  # the aligned tail is scratch, never shown
        steps.append(step)
    assert len(steps) == record["nfe"] == steps[-1].nfe
    finished_before = [False] * canvas.shape[0]
    for k, step in enumerate(steps):
        e = record["window_lengths"][k]
        for b in range(canvas.shape[0]):
            for mine, key in ((step.committed[b], "transfer_index"), (step.edited[b], "editing_transfer_index")):
                row = recorded[k][key][b]
                theirs = [e - len(row) + j for j, v in enumerate(row) if v]
                want = [] if finished_before[b] else [i for i in theirs if i < P + gen]
                assert mine == want, (k, b, key)
        finished_before = step.finished
    assert canvas[:, : P + gen].tolist() == record["output_ids"]
    assert canvas[:, P : P + gen].tolist() == record["sequences"]


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_record_window_attention(record):
    """The attention each window got under transformers: bidirectional iff its 2-D mask is all ones."""
    canvas, key_mask, P, gen = record_canvas(record)
    real = torch.zeros(canvas.shape, dtype=torch.bool)
    real[:, : P + gen] = True if key_mask is None else key_mask[:, : P + gen]
    for e, kind in zip(record["window_lengths"], record["window_attention"], strict=True):
        assert (pipeline_mask(real[:, :e]) is None) == kind.startswith("bidirectional")


def test_multinomial_record_from_its_seed(net):
    """torch 2.13 CPU's multinomial(p, 1) is argmax(p / Exp(1)) from the same generator (README
    section 0), so the seeded generator alone reproduces the stochastic record."""
    record = next(r for r in RECORDS if r["generator_seed"] is not None)
    canvas, key_mask, P, gen = record_canvas(record)
    generator = torch.Generator().manual_seed(record["generator_seed"])
    steps = [
        s.canvas[:, : P + gen].tolist()
        for s in denoise_llada2(net, canvas, P, record_plan(record), MASK, key_mask, eos_of(record), generator, gen)
    ]
    assert steps == record["history"]


def test_settled_prefix_never_changes(net):
    """`settled`: nothing before it changes later, with editing on (the defaults record)."""
    record = RECORDS[0]
    canvas, key_mask, P, gen = record_canvas(record)
    steps = [
        (s.canvas.clone(), list(s.settled))
        for s in denoise_llada2(net, canvas, P, record_plan(record), MASK, key_mask, eos_of(record), None, gen)
    ]
    final = canvas
    for snapshot, settled in steps:
        for b, pos in enumerate(settled):
            assert torch.equal(snapshot[b, :pos], final[b, :pos])
    assert [s for _, s in steps][-1] == [P + gen]
    assert all(a <= b for (_, x), (_, y) in zip(steps, steps[1:]) for a, b in zip(x, y))


# --- batches and the fast path -----------------------------------------------------------------------

PROMPTS = [[17, 30, 5, 99, 140, 2, 61, 8], [77, 120, 3, 45, 9], [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]]


def padded(prompts: list[list[int]], gen: int, block: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Left-padded prompts (pad = eos, as the pipeline's tokenizer pads) and a block-aligned canvas."""
    P = max(map(len, prompts))
    canvas = torch.full((len(prompts), -(-(P + gen) // block) * block), MASK)
    key_mask = torch.ones(canvas.shape, dtype=torch.bool)
    for b, prompt in enumerate(prompts):
        canvas[b, : P - len(prompt)] = EOS
        canvas[b, P - len(prompt) : P] = torch.tensor(prompt)
        key_mask[b, : P - len(prompt)] = False
    return canvas, key_mask, P


def trace(net, canvas, key_mask, P, p, gen, generator=None, attention="cached"):
    return [
        (s.canvas[:, : P + gen].tolist(), s.committed, s.edited, s.settled, s.finished, s.remaining)
        for s in refine(net, canvas, P, p, MASK, key_mask, (EOS,), generator, gen, attention=attention)
    ]


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"edit_threshold": None},
        {"block_length": 4, "steps_per_block": 4, "threshold": 0.9},
        {"temperature": 0.9, "top_k": 20},
    ],
    ids=["edit", "noedit", "block4", "sampled"],
)
def test_cached_equals_uncached_block_causal(net, settings):
    """The fast path (BlockCache, only the current block per pass) gives the passes of the same
    block-causal loop recomputing the whole window every pass: canvas, commits, edits, NFE."""
    p = plan(cache="prefix", **settings)
    runs = []
    for attention in ("block_causal", "cached"):
        canvas, key_mask, P = padded(PROMPTS, 19, p.block_length)  # 19: an unaligned tail
        runs.append(trace(net, canvas, key_mask, P, p, 19, torch.Generator().manual_seed(3), attention))
    assert runs[0] == runs[1]
    assert len(runs[0]) > 2 * -(-19 // p.block_length)


@pytest.mark.parametrize("settings", [{}, {"temperature": 0.9, "top_p": 0.95}], ids=["greedy_edit", "sampled_edit"])
def test_fast_batch_equals_single_rows(net, settings):
    """With per-row loop control, each row of a padded batch decodes as it does alone (with its
    padding), editing included; sampled rows with their own generators draw what they draw alone."""
    p = plan(cache="prefix", **settings)
    canvas, key_mask, P = padded(PROMPTS, 16, 8)
    seeds = [11, 12, 13]
    list(
        denoise_llada2(
            net,
            canvas,
            P,
            p,
            MASK,
            key_mask,
            (EOS,),
            RowGenerators(torch.Generator().manual_seed(s) for s in seeds),
            16,
        )
    )
    for b, seed in enumerate(seeds):
        alone, mask_b, _ = padded(PROMPTS, 16, 8)
        alone, mask_b = alone[b : b + 1], mask_b[b : b + 1]
        list(
            denoise_llada2(
                net, alone, P, p, MASK, mask_b, (EOS,), RowGenerators([torch.Generator().manual_seed(seed)]), 16
            )
        )
        assert alone[0].tolist() == canvas[b].tolist()


def test_reference_batch_equals_single_rows_without_editing(net):
    """The pipeline couples a batch's rows (one step counter; padding makes every row causal), but
    with editing off and no padding each row still gets what it gets alone."""
    p = plan(edit_threshold=None)
    prompts = [PROMPTS[0], PROMPTS[2][:8]]
    canvas, key_mask, P = padded(prompts, 16, 8)
    list(denoise_llada2(net, canvas, P, p, MASK, key_mask, (EOS,), None, 16))
    for b in range(2):
        alone, _, _ = padded(prompts[b : b + 1], 16, 8)
        list(denoise_llada2(net, alone, P, p, MASK, None, (EOS,), None, 16))
        assert alone[0].tolist() == canvas[b].tolist()


def test_min_commit_caps_the_steps_and_errors_name_fields(net):
    canvas, key_mask, P = padded(PROMPTS[:1], 8, 8)
    steps = list(
        denoise_llada2(net, canvas, P, plan(min_commit=4, edit_threshold=None, threshold=2.0), MASK, None, (), None, 8)
    )
    # min(8, 8 // 4) = 2 steps of 4; the budget is spent on the pass that fills the block, so no check pass
    assert [len(s.committed[0]) for s in steps] == [4, 4]
    with pytest.raises(ValueError, match="min_commit"):
        list(denoise_llada2(net, canvas.clone(), P, plan(min_commit=9), MASK, None, (), None, 8))
    with pytest.raises(ValueError, match="gen_length"):
        list(denoise_llada2(net, canvas.clone(), P, plan(), MASK, None, (), None, 64))


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_record_through_model_generate(record):
    """The public token-level API with the records' arguments under README 2.7's mapping gives the
    pipeline's `sequences`, every pass's canvas and the NFE (the multinomial record from its
    generator seed, where torch's stream is the golden environment's)."""
    k = record["kwargs"]
    if k["temperature"] > 0 and not torch.__version__.startswith("2.13"):
        pytest.skip("torch's RNG stream of the golden environment")
    model = Model.load(TINY, dtype="float32")
    result = model.generate(
        record["prompt_ids"],
        attention_mask=record["attention_mask"],
        max_new_tokens=k["gen_length"],
        block_length=k["block_length"],
        steps_per_block=k["num_inference_steps"],
        threshold=k["threshold"],
        edit_threshold=k["editing_threshold"],
        max_post_steps=k["max_post_steps"],
        min_commit=k["minimal_topk"],
        stop_at_eos=k["eos_early_stop"],
        temperature=k["temperature"],
        top_k=k.get("top_k"),
        top_p=k.get("top_p"),
        seed=record.get("generator_seed"),
        mask_token_id=MASK,
        eos_token_id=k["eos_token_id"] if k["eos_token_id"] is not None else [],
        history=True,
    )
    P = len(record["prompt_ids"][0])
    assert [row[P:] for row in result.sequences] == record["sequences"]
    assert result.nfe == record["nfe"]
    assert [[row[: P + k["gen_length"]] for row in h] for h in result.history] == record["history"]


def test_a_checkpoint_without_mask_id_asks_for_one():
    model = Model.load(TINY, dtype="float32")
    assert model.ids.mask is None
    with pytest.raises(ValueError, match="^mask_token_id: this checkpoint names no mask token"):
        model.generate([[5, 6, 7]], max_new_tokens=8)
    with pytest.raises(ValueError, match="^mask_token_id: must be a token id below"):
        model.generate([[5, 6, 7]], max_new_tokens=8, mask_token_id=9999)


def test_the_unmask_recipe_never_edits_the_text_an_infill_fixes(net):
    """The pipeline edits every position after the prompt; the surfaces' recipe keeps the tokens
    the caller fixed in the region (an infill template's text) while it edits the others."""
    P, gen = 8, 16
    canvas = torch.full((1, P + gen), MASK)
    canvas[0, :P] = torch.tensor(PROMPTS[0])
    fixed = {P + 3: 17, P + 4: 30, P + 11: 99}
    for pos, tok in fixed.items():
        canvas[0, pos] = tok
    p = plan(recipe="unmask", cache="prefix", edit_threshold=0.001, threshold=0.5, max_post_steps=4)
    edited = [q for step in denoise_llada2(net, canvas, P, p, MASK, None, (), None, gen) for q in step.edited[0]]
    assert edited and not set(edited) & set(fixed)
    assert all(int(canvas[0, pos]) == tok for pos, tok in fixed.items())
