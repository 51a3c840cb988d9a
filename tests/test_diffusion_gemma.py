"""DiffusionGemma: our encoder/decoder and uniform-state sampler against the golden records.

The golden folder (tests/golden/dgemma-tiny, a byte-identical copy of the shared set) holds a tiny
random-weight checkpoint, the reference's logits for one encoder + decoder call with and without
self-conditioning, and 12 `generate` records of transformers 5.23 (README-2026-families.md §3).
The records are stochastic, so they are checked conditionally, as the README says: the recorded
canvas of each decoder pass is fed in (`replay`), self-conditioning comes from our own previous
pass, and each pass's argmax, accepted positions and stop decision (hence the NFE), and the final
output, must equal the record's. Because the sampler makes torch's own draws in the reference's
order on the global generator, the records are also reproduced outright from their seeds
(pinned torch; a different torch may draw differently, which would only fail that test).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from unmask.engine import StepEvent
from unmask.models import architecture_for
from unmask.models.diffusion_gemma import DiffusionGemmaArgs, DiffusionGemmaModel, first_key
from unmask.models.layers import BlockCache
from unmask.sampling.noise import RowGenerators
from unmask.sampling.plan import Plan
from unmask.sampling.uniform import (
    UniformSettings,
    denoise_uniform,
    entropy_bound_accept,
    temperature,
    token_entropy,
)

GOLD = Path(__file__).parent / "golden" / "dgemma-tiny"
CONFIG = json.loads((GOLD / "config.json").read_text())
RECORDS = json.loads((GOLD / "generations.json").read_text())["records"]
RECORDS_BY_ID = {r["id"]: r for r in RECORDS}
NOISE = -1  # the region's "mask id": every region position starts from random tokens
TOL = 1e-4  # README §4: suggested logit tolerance


def load_net(config: dict = CONFIG, folder: Path = GOLD) -> DiffusionGemmaModel:
    arch = architecture_for(config["model_type"])
    net = arch.make_model(arch.make_args(config)).eval()
    state = load_file(folder / "model.safetensors")
    net.load_state_dict({k: v for k, v in state.items() if not k.startswith(net.ignored_prefixes)}, strict=True)
    return net


@pytest.fixture(scope="module")
def net() -> DiffusionGemmaModel:
    torch.set_num_threads(1)  # as the records were made (README §0)
    return load_net()


class Recording(torch.nn.Module):
    """The real model, with each encoder and decoder call written down (inputs and logits)."""

    def __init__(self, net: DiffusionGemmaModel):
        super().__init__()
        self.net, self.args, self.n_layers, self.positions = net, net.args, net.n_layers, net.positions
        self.encoded: list[tuple[int, int]] = []  # (start, length)
        self.decoded: list[dict] = []

    def encode(self, ids, positions, key_mask, cache, start):
        self.encoded.append((start, ids.shape[1]))
        return self.net.encode(ids, positions, key_mask, cache, start)

    def forward(self, ids, positions, key_mask, cache, start, self_conditioning=None):
        logits = self.net(ids, positions, key_mask, cache, start, self_conditioning=self_conditioning)
        self.decoded.append(dict(start=start, canvas_in=ids.clone(), logits=logits, first=self_conditioning is None))
        return logits


def plan(steps: int, stop_at_eos: bool = True) -> Plan:
    return Plan(
        family="diffusion-gemma",
        recipe="diffusion-gemma",
        algorithm="entropy_bound",
        choice="uniform",
        prob_dtype=torch.float32,
        schedule="linear_temperature",
        head_first=False,
        total_steps=steps,
        steps_per_block=steps,
        block_length=CONFIG["canvas_length"],
        stop_at_eos=stop_at_eos,
    )


def settings_of(record: dict) -> UniformSettings:
    """The record's kwargs over the checkpoint's defaults (generation_config.json: all null)."""
    kw = record["kwargs"]
    base = UniformSettings.from_config(CONFIG, json.loads((GOLD / "generation_config.json").read_text()))
    keys = ("max_denoising_steps", "t_min", "t_max", "stability_threshold", "confidence_threshold")
    changes = {k: kw[k] for k in keys if k in kw}
    if "sampler_config" in kw:
        changes["entropy_bound"] = kw["sampler_config"]["entropy_bound"]
    return dataclasses.replace(base, **changes, pad_id=kw["pad_token_id"])


def run_record(net, record: dict, replay: bool, generator=None):
    """(steps, canvas, recording) of our sampler on a record's prompt and settings."""
    s = settings_of(record)
    prompt = torch.tensor(record["prompt_ids"])
    B, P = prompt.shape
    new = record["kwargs"]["max_new_tokens"]
    region = math.ceil(new / s.canvas_length) * s.canvas_length
    canvas = torch.cat([prompt, torch.full((B, region), NOISE)], 1)
    key_mask = None
    if record["attention_mask"] is not None:
        key_mask = torch.cat(
            [torch.tensor(record["attention_mask"]).bool(), torch.ones(B, region, dtype=torch.bool)], 1
        )
    eos = () if record["kwargs"]["eos_token_id"] is None else (record["kwargs"]["eos_token_id"],)
    feed = [torch.tensor(p["canvas_in"]) for p in record["passes"]] if replay else None
    rec = Recording(net)
    if not replay and generator is None:
        torch.manual_seed(record["torch_manual_seed"])
    steps = list(
        denoise_uniform(
            rec, canvas, P, plan(s.max_denoising_steps), NOISE, key_mask, eos, generator, new, feed, settings=s
        )
    )
    return steps, canvas, rec


def check_output(record: dict, canvas: torch.Tensor) -> None:
    """output_ids exactly; the region the reference did not return (it stopped early) is pad."""
    n = len(record["output_ids"][0])
    assert canvas[:, :n].tolist() == record["output_ids"]
    assert bool((canvas[:, n:] == record["kwargs"]["pad_token_id"]).all())


def test_forward_logits_match_golden(net):
    f = load_file(GOLD / "forward.safetensors")
    P, L = f["input_ids"].shape[1], f["decoder_input_ids"].shape[1]
    for self_cond, name in (
        (None, "logits_no_self_conditioning"),
        (f["self_conditioning_logits_in"], "logits_with_self_conditioning"),
    ):
        cache = BlockCache(net.n_layers)
        with torch.no_grad():
            net.encode(f["input_ids"], None, None, cache, 0)
            logits = net(
                f["decoder_input_ids"], torch.arange(P, P + L)[None], None, cache, P, self_conditioning=self_cond
            )
        assert logits.dtype == torch.float32 and logits.shape == f[name].shape
        assert (logits - f[name]).abs().max() <= TOL, name
    assert cache.length == P  # the decoder read the cache and wrote nothing


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_record_replayed(net, record):
    steps, canvas, rec = run_record(net, record, replay=True)
    s = settings_of(record)
    assert len(steps) == len(rec.decoded) == record["nfe"]
    assert [n for _, n in rec.encoded] == record["encoder_input_lengths"] and len(rec.encoded) == record["nfe_encoder"]
    running = torch.ones(len(record["prompt_ids"]), dtype=torch.bool)
    for k, (step, call, want) in enumerate(zip(steps, rec.decoded, record["passes"])):
        assert (
            call["start"] == want["decoder_position_start"] and call["first"] == want["self_conditioning_logits_none"]
        )
        assert float(temperature(s, want["cur_step"])) == pytest.approx(want["temperature"], abs=1e-6)
        processed = call["logits"] / temperature(s, want["cur_step"])
        entropy = token_entropy(processed)
        assert processed.argmax(-1).tolist() == want["argmax"], k
        accepted = entropy_bound_accept(entropy, s.entropy_bound)
        assert accepted.long().tolist() == want["accepted_mask"], k
        assert entropy.mean(-1).tolist() == pytest.approx(want["mean_entropy"], abs=TOL)
        if call["first"]:
            running[:] = True
        for row in range(len(running)):  # rows still denoising commit what they accept; stopped rows nothing
            positions = (want["decoder_position_start"] + accepted[row].nonzero().flatten()).tolist()
            assert step.committed[row] == (positions if running[row] else [])
            if not running[row]:  # a stopped row is fed its own canvas again
                assert want["canvas_in"][row] == record["passes"][k - 1]["canvas_in"][row]
        running &= torch.tensor([r > 0 or bool(c) for r, c in zip(step.remaining, step.committed)])
        running &= ~torch.tensor([step.settled[r] > want["decoder_position_start"] for r in range(len(running))])
    check_output(record, canvas)
    assert steps[-1].finished == [True] * len(record["prompt_ids"])
    check_tokens_per_forward(record, steps, canvas)


def check_tokens_per_forward(record, steps, canvas) -> None:
    """tokens_per_forward: non-pad new tokens / passes the row was running (committing) in."""
    P, n = len(record["prompt_ids"][0]), len(record["output_ids"][0])
    for row, want in enumerate(record["tokens_per_forward"]):
        passes = sum(1 for step in steps if step.committed[row])
        new = int((canvas[row, P:n] != record["kwargs"]["pad_token_id"]).sum())
        assert new / passes == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_record_reproduced_from_seed(net, record):
    """No replay: torch.manual_seed(seed), then the reference's draws in its order."""
    steps, canvas, _ = run_record(net, record, replay=False)
    check_output(record, canvas)
    assert len(steps) == record["nfe"]


def test_batch_record_rows_stop_alone(net):
    """Row 0 stops its first block after 4 passes and keeps its canvas while row 1 runs to 6;
    row 0's eos in block 1 turns what follows it into pad."""
    record = next(r for r in RECORDS if r["id"].startswith("batch2"))
    steps, canvas, _ = run_record(net, record, replay=True)
    block0 = [st for st in steps if st.block == 0]
    assert [bool(st.committed[0]) for st in block0] == [True] * 4 + [False] * 2
    assert all(st.committed[1] for st in block0)
    assert block0[3].settled == [16, 8] and block0[-1].settled == [16, 16]
    assert canvas[0, -3:].tolist() == [1, 0, 0]  # eos 1, then pad
    assert steps[-1].finished == [True, True] and steps[-1].settled == [24, 24]


def test_steps_describe_the_canvas(net):
    """committed/tokens/edited/settled agree with the canvas they come with, pass by pass."""
    record = next(r for r in RECORDS if r["id"] == "steps6_t0.2_0.6_new20")
    s = settings_of(record)
    P = len(record["prompt_ids"][0])
    canvas = torch.cat([torch.tensor(record["prompt_ids"]), torch.full((1, 24), NOISE)], 1)
    torch.manual_seed(0)
    previous, settled = canvas.clone(), [0]
    for step in denoise_uniform(net, canvas, P, plan(6), NOISE, None, (1,), None, 20, settings=s):
        assert step.tokens[0] == step.canvas[0, step.committed[0]].tolist()
        changed = (step.canvas[0] != previous[0]).nonzero().flatten().tolist()
        assert changed == step.edited[0] and all(c >= P for c in changed)
        assert step.settled[0] >= settled[0] and step.revoked == [[]]
        previous, settled = step.canvas.clone(), step.settled
    assert step.nfe <= 3 * 6 and step.finished == [True] and step.settled == [P + 24]
    assert bool((canvas[:, P:] != NOISE).all())


def test_settledness_is_the_accepted_share_and_one_when_finished(net):
    """The engine's settledness of each pass (engine/events.py): the share of the new tokens asked
    for that the entropy bound accepted, canvases whose output is written counted whole; exactly
    1.0 once the row is finished. Replayed on records whose rows stop their canvases at different
    passes, one of them asking for fewer tokens than its canvases hold."""
    for record in [next(r for r in RECORDS if r["id"].startswith("batch2")), RECORDS_BY_ID["steps6_t0.2_0.6_new20"]]:
        steps, canvas, _ = run_record(net, record, replay=True)
        P, L, new = len(record["prompt_ids"][0]), CONFIG["canvas_length"], record["kwargs"]["max_new_tokens"]
        for row in range(canvas.shape[0]):
            check_settledness(steps, row, P, L, new)


def check_settledness(steps, row: int, P: int, L: int, new: int) -> None:
    asked = P + new
    shares = [StepEvent.of(step, row, P, new).settledness for step in steps]
    for step, share in zip(steps, shares):
        lo = P + step.block * L
        if step.settled[row] > lo:  # the row's canvas is written: all of it counts
            accepted = min(lo + L, asked) - lo
        else:
            accepted = sum(p < asked for p in step.committed[row])
        want = 1.0 if step.finished[row] else (lo - P + accepted) / new
        assert share == pytest.approx(want, abs=1e-12) and 0 <= share <= 1
    assert shares[0] < 0.5 and shares[-1] == 1.0 and steps[-1].finished[row]
    # Pass by pass it may fall back (nothing is frozen); canvas by canvas it only grows.
    ends = [
        share for step, nxt, share in zip(steps, [*steps[1:], None], shares) if nxt is None or nxt.block != step.block
    ]
    assert ends == sorted(ends) and len(ends) == -(-new // L)


def test_row_generators_give_each_row_what_it_gets_alone(net):
    record = next(r for r in RECORDS if r["id"].startswith("batch2"))
    prompt, mask = torch.tensor(record["prompt_ids"]), torch.tensor(record["attention_mask"]).bool()
    s = dataclasses.replace(settings_of(record), max_denoising_steps=6)

    def generate(rows, seeds):
        canvas = torch.cat([prompt[rows], torch.full((len(rows), 16), NOISE)], 1)
        km = torch.cat([mask[rows], torch.ones(len(rows), 16, dtype=torch.bool)], 1)
        gens = RowGenerators(torch.Generator().manual_seed(x) for x in seeds)
        list(denoise_uniform(net, canvas, 8, plan(6), NOISE, km, (1,), gens, 16, settings=s))
        return canvas

    both = generate([0, 1], [5, 6])
    assert both[0].tolist() == generate([0], [5])[0].tolist()
    assert both[1].tolist() == generate([1], [6])[0].tolist()


def test_seeded_region_is_fed_in(net):
    """Region tokens other than the mask id seed the first canvas (in-place edits); the rest is noise."""
    seed_ids = torch.tensor([[7, NOISE, 9, NOISE, 11, NOISE, 13, NOISE]])
    canvas = torch.cat([torch.tensor([[2, 190, 231]]), seed_ids], 1)
    rec = Recording(net)
    torch.manual_seed(0)
    s = UniformSettings(canvas_length=8, max_denoising_steps=2)
    list(denoise_uniform(rec, canvas, 3, plan(2), NOISE, None, (), None, 8, settings=s))
    first = rec.decoded[0]["canvas_in"][0]
    assert first[::2].tolist() == [7, 9, 11, 13] and bool((first[1::2] >= 0).all())


def test_settings_defaults_and_validation():
    s = UniformSettings.from_config(CONFIG, json.loads((GOLD / "generation_config.json").read_text()))
    assert (s.canvas_length, s.max_denoising_steps, s.entropy_bound, s.t_min, s.t_max) == (8, 48, 0.1, 0.4, 0.8)
    assert (s.stability_threshold, s.confidence_threshold, s.pad_id) == (1, 0.005, 0)
    assert (
        UniformSettings.from_config(CONFIG, {"sampler_config": {"entropy_bound": 0.5}, "t_min": 0.2}).entropy_bound
        == 0.5
    )
    with pytest.raises(ValueError, match="t_max"):
        UniformSettings(t_min=1.0, t_max=1.0)  # the reference rejects t_min == t_max
    for bad in (dict(entropy_bound=0.0), dict(max_denoising_steps=0), dict(stability_threshold=-1)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            UniformSettings(**bad)
    # The schedule starts at t_max and ends one step above t_min.
    s = UniformSettings(max_denoising_steps=4)
    assert float(temperature(s, 4)) == pytest.approx(0.8) and float(temperature(s, 1)) == pytest.approx(0.5)


def test_region_must_be_whole_canvases(net):
    canvas = torch.cat([torch.tensor([[2, 5]]), torch.full((1, 12), NOISE)], 1)
    with pytest.raises(ValueError, match="region must be 2 block"):
        next(
            denoise_uniform(
                net, canvas, 2, plan(2), NOISE, None, (), None, 10, settings=UniformSettings(canvas_length=8)
            )
        )


def test_entropy_bound_acceptance():
    entropy = torch.tensor([[0.5, 0.01, 0.2, 3.0]])
    # sorted 0.01, 0.2, 0.5, 3.0: sums before each = 0, 0.01, 0.21, 0.71
    assert entropy_bound_accept(entropy, 0.1).tolist() == [[False, True, True, False]]
    assert entropy_bound_accept(entropy, 0.001).tolist() == [[False, True, False, False]]  # the lowest always
    assert entropy_bound_accept(entropy, 1.0).tolist() == [[True, True, True, True]]
    logits = torch.randn(2, 3, 7)
    assert torch.allclose(token_entropy(logits), torch.distributions.Categorical(logits=logits).entropy())


# --- the architecture on tiny configs -------------------------------------------------------------


def tiny_config(**text) -> dict:
    config = json.loads(json.dumps(CONFIG))
    config["text_config"] |= text
    return config


def test_state_dict_names_are_the_checkpoints_text_names():
    net = DiffusionGemmaModel(DiffusionGemmaArgs.from_config(CONFIG))
    stored = set(load_file(GOLD / "model.safetensors"))
    text = {k for k in stored if not k.startswith(DiffusionGemmaModel.ignored_prefixes)}
    assert set(net.state_dict()) == text and len(stored - text) > 0
    assert "model.decoder.layers.1.self_attn.v_proj.weight" not in text  # full layers: V = K


def test_shapes_batch_and_bidirectional_decoder(net):
    torch.manual_seed(1)
    prompt, canvas = torch.randint(0, 256, (3, 5)), torch.randint(0, 256, (3, 8))
    cache = BlockCache(net.n_layers)
    with torch.no_grad():
        net.encode(prompt, None, None, cache, 0)
        logits = net(canvas, torch.arange(5, 13)[None], None, cache, 5)
        assert logits.shape == (3, 8, 256) and logits.dtype == torch.float32
        assert float(logits.abs().max()) < net.args.final_logit_softcapping  # softcapped
        one = net(canvas[1:2], torch.arange(5, 13)[None], None, _cache_of(net, prompt[1:2]), 5)
        assert torch.allclose(one, logits[1:2], atol=1e-5)  # batched == single
        later = canvas.clone()
        later[:, -1] = (later[:, -1] + 1) % 256
        changed = net(later, torch.arange(5, 13)[None], None, cache, 5)
    assert not torch.allclose(changed[:, 0], logits[:, 0])  # a later canvas token moves an earlier logit


def _cache_of(net, prompt, chunks=(None,)) -> BlockCache:
    cache, start = BlockCache(net.n_layers), 0
    for ids in (prompt,) if chunks == (None,) else chunks:
        net.encode(ids, None, None, cache, start)
        start += ids.shape[1]
    return cache


def test_encoder_is_causal_and_chunked_cache_is_exact(net):
    """Encoding a prompt in pieces (as blocks are encoded) gives the same cache as in one go; a later
    token never changes an earlier position's keys."""
    torch.manual_seed(2)
    ids = torch.randint(0, 256, (2, 20))
    with torch.no_grad():
        whole = _cache_of(net, ids)
        pieces = _cache_of(net, ids, chunks=(ids[:, :12], ids[:, 12:]))
        other = ids.clone()
        other[:, -1] = (other[:, -1] + 1) % 256
        moved = _cache_of(net, other)
    for layer in range(net.n_layers):
        assert torch.allclose(whole.keys[layer], pieces.keys[layer], atol=1e-5)
        assert torch.equal(whole.keys[layer][:, :, :-1], moved.keys[layer][:, :, :-1])


def test_sliding_layers_see_the_last_window_minus_one_cached_positions(net):
    W = net.args.sliding_window
    assert first_key(net.args, "sliding_attention", 20, cached=True) == 20 - (W - 1)
    assert first_key(net.args, "full_attention", 20, cached=True) == 0
    # Layer 0 (sliding) keys at a position depend on that token alone, so the decoder's layer 0
    # output moves with a prompt token inside the last W - 1 positions, never with one before them.
    torch.manual_seed(3)
    prompt, canvas = torch.randint(0, 256, (1, 12)), torch.randint(0, 256, (1, 8))
    seen, decoded = [], []  # every call through layer 0 (the encoder's too), and the decoder's
    hook = net.model.decoder.layers[0].register_forward_hook(lambda m, i, out: seen.append(out))
    try:
        for changed in (None, 12 - W, 12 - W + 1):
            ids = prompt.clone()
            if changed is not None:
                ids[:, changed] = (ids[:, changed] + 1) % 256
            with torch.no_grad():
                net(canvas, torch.arange(12, 20)[None], None, _cache_of(net, ids), 12)
            decoded.append(seen[-1])
    finally:
        hook.remove()
    assert torch.equal(decoded[0], decoded[1]) and not torch.allclose(decoded[0], decoded[2])


def test_left_pads_are_invisible(net):
    """Pad ids under key_mask False change nothing; positions are not shifted (the reference's arange)."""
    torch.manual_seed(4)
    prompt = torch.randint(3, 256, (1, 9))
    prompt[:, :3] = 0
    canvas = torch.randint(0, 256, (1, 8))
    key_mask = torch.ones(1, 17, dtype=torch.bool)
    key_mask[:, :3] = False
    outs = []
    for pad in (0, 77):
        ids = prompt.clone()
        ids[:, :3] = pad
        with torch.no_grad():
            cache = BlockCache(net.n_layers)
            net.encode(ids, None, key_mask, cache, 0)
            outs.append(net(canvas, torch.arange(9, 17)[None], key_mask, cache, 9))
    assert torch.allclose(outs[0], outs[1], atol=1e-5)  # SDPA's rounding may differ by ~1e-6
    assert torch.equal(DiffusionGemmaModel.positions(key_mask, 17, "cpu"), torch.arange(17)[None])


def test_config_defaults_for_full_layers():
    """Without per_layer_config, full layers take global_head_dim (and num_global_key_value_heads)."""
    config = tiny_config(global_head_dim=48, num_global_key_value_heads=1)
    del config["text_config"]["per_layer_config"]
    args = DiffusionGemmaArgs.from_config(config)
    assert args.head_dims == [16, 48] and args.kv_heads == [2, 1]
    net = DiffusionGemmaModel(args)
    with torch.no_grad():
        logits = net(torch.randint(0, 256, (2, 8)))
    assert logits.shape == (2, 8, 256)
    with pytest.raises(ValueError, match="use_bidirectional_attention"):
        DiffusionGemmaArgs.from_config(tiny_config(use_bidirectional_attention="all"))


# --- transformers as the oracle (pinned 5.24, which matches the 5.23 records) -----------------------


@pytest.fixture(scope="module")
def oracle():
    transformers = pytest.importorskip("transformers")
    if not hasattr(transformers, "DiffusionGemmaForBlockDiffusion"):
        pytest.skip("this transformers has no DiffusionGemma")
    return transformers.DiffusionGemmaForBlockDiffusion.from_pretrained(str(GOLD), dtype=torch.float32).eval()


@pytest.mark.slow
def test_forward_equals_transformers_with_padding_and_two_canvases(net, oracle):
    """Left padding, a prompt longer than the sliding window and a second encoder call."""
    torch.manual_seed(5)
    ids = torch.randint(3, 256, (2, 11))
    ids[1, :4] = 0
    mask = torch.ones(2, 11, dtype=torch.long)
    mask[1, :4] = 0
    first, second = torch.randint(0, 256, (2, 8)), torch.randint(0, 256, (2, 8))
    sc = torch.randn(2, 8, 256) * 3
    enc_mask = torch.cat([mask, torch.ones(2, 8, dtype=torch.long)], 1)  # prompt + first canvas
    dec_mask = torch.cat([enc_mask, torch.ones(2, 8, dtype=torch.long)], 1)
    with torch.no_grad():
        out = oracle(
            input_ids=ids,
            attention_mask=mask,
            decoder_input_ids=second,
            decoder_attention_mask=enc_mask,
            self_conditioning_logits=sc,
        )
        theirs_first, cache = out.logits, out.cache
        oracle.model.encoder(
            input_ids=first, attention_mask=enc_mask, cache=cache, position_ids=torch.arange(11, 19)[None]
        )
        theirs = oracle(
            cache=cache,
            decoder_input_ids=second,
            decoder_attention_mask=dec_mask,
            decoder_position_ids=torch.arange(19, 27)[None],
        ).logits
        key_mask = dec_mask.bool()
        ours_cache = BlockCache(net.n_layers)
        net.encode(ids, None, key_mask, ours_cache, 0)
        ours_first = net(second, torch.arange(11, 19)[None], key_mask, ours_cache, 11, self_conditioning=sc)
        net.encode(first, torch.arange(11, 19)[None], key_mask, ours_cache, 11)
        ours = net(second, torch.arange(19, 27)[None], key_mask, ours_cache, 19)
    assert (ours_first - theirs_first).abs().max() <= TOL
    assert (ours - theirs).abs().max() <= TOL


@pytest.mark.slow
@pytest.mark.parametrize("eos", [66, 217])
def test_generate_equals_transformers_when_a_row_ends_early(net, oracle, eos):
    """Batch of 2, 3 canvases, one row reaching its end id in the first: it is padded from there on
    while the other goes on (and keeps the loop running as the reference does)."""
    record = next(r for r in RECORDS if r["id"].startswith("batch2"))
    prompt, mask = torch.tensor(record["prompt_ids"]), torch.tensor(record["attention_mask"])
    torch.manual_seed(10)
    with torch.no_grad():
        want = oracle.generate(
            prompt, attention_mask=mask, max_new_tokens=24, max_denoising_steps=6, eos_token_id=eos, pad_token_id=0
        ).sequences
    canvas = torch.cat([prompt, torch.full((2, 24), NOISE)], 1)
    key_mask = torch.cat([mask.bool(), torch.ones(2, 24, dtype=torch.bool)], 1)
    torch.manual_seed(10)
    s = UniformSettings(canvas_length=8, max_denoising_steps=6, pad_id=0)
    list(denoise_uniform(net, canvas, 8, plan(6), NOISE, key_mask, (eos,), None, 24, settings=s))
    assert canvas[:, : want.shape[1]].tolist() == want.tolist()
    assert bool((want[:, 9:] == 0).all(-1).any())  # one row did end at its first new token
