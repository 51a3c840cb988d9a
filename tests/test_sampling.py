"""Sampler behaviour beyond the golden records: infilling, randomness, every algorithm and mode."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from unmask.engine.resolve import plan_for
from unmask.options import GenerationOptions
from unmask.sampling.denoise import finish_at_eos
from unmask.sampling.ranking import factor_count

PROMPT = [[17, 3, 99, 41, 8, 120, 77, 5]]


def models(dream_tiny, llada_tiny):
    return {"dream": dream_tiny, "llada": llada_tiny}


@pytest.mark.parametrize("family", ["dream", "llada"])
def test_infill_keeps_fixed_tokens(family, dream_tiny, llada_tiny):
    model = models(dream_tiny, llada_tiny)[family]
    mask = model.ids.mask
    canvas = [11, 12, 13] + [mask] * 10 + [14, 15] + [mask] * 3
    out = model.generate(PROMPT, canvas=canvas, steps=13)
    region = out.sequences[0][len(PROMPT[0]) :]
    assert region[:3] == [11, 12, 13] and region[13:15] == [14, 15]
    assert mask not in region
    assert out.sequences[0][: len(PROMPT[0])] == PROMPT[0]


def test_stream_commits_every_position_once(llada_tiny):
    seen = []
    for step in llada_tiny.stream(PROMPT, max_new_tokens=16, steps=8, block_length=8):
        seen.extend(step.committed[0])
        assert step.tokens[0] == [int(step.canvas[0, p]) for p in step.committed[0]]
    assert sorted(seen) == list(range(8, 24))
    assert step.finished == [True] and step.remaining == [0]


@pytest.mark.parametrize("family", ["dream", "llada"])
def test_sampling_is_seeded(family, dream_tiny, llada_tiny):
    model = models(dream_tiny, llada_tiny)[family]
    kw = dict(max_new_tokens=16, steps=8, temperature=1.5)
    a = model.generate(PROMPT, seed=1, **kw).sequences
    assert a == model.generate(PROMPT, seed=1, **kw).sequences
    assert any(model.generate(PROMPT, seed=s, **kw).sequences != a for s in (2, 3, 4))


@pytest.mark.parametrize(
    "family,opts",
    [
        ("dream", dict(algorithm="origin", seed=0)),
        ("dream", dict(algorithm="maskgit_plus", alg_temp=0.5, seed=0)),
        ("dream", dict(algorithm="topk_margin", top_p=0.9, top_k=20, temperature=0.7, seed=0)),
        ("dream", dict(algorithm="entropy", block_length=8, cache="prefix")),
        ("dream", dict(algorithm="entropy", block_length=8, cache="dual")),
        ("dream", dict(recipe="llada", algorithm="low_confidence", block_length=8)),
        ("dream", dict(threshold=0.3, block_length=8, cache="dual")),
        ("llada", dict(algorithm="random", seed=0)),
        ("llada", dict(cfg_scale=1.5)),
        ("llada", dict(recipe="dream", algorithm="entropy")),
        ("llada", dict(factor=1.0, block_length=8)),
        ("llada", dict(factor=1.0, block_length=8, cache="dual", recipe="fast-dllm")),
        ("llada", dict(threshold=0.5, block_length=8, cache="prefix", temperature=0.5, seed=3)),
    ],
)
def test_every_mode_fills_the_canvas(family, opts, dream_tiny, llada_tiny):
    model = models(dream_tiny, llada_tiny)[family]
    out = model.generate(PROMPT, max_new_tokens=16, steps=8, **opts)
    assert model.ids.mask not in out.sequences[0]
    assert out.nfe >= 1


def test_cfg_changes_the_result(llada_tiny):
    plain = llada_tiny.generate(PROMPT, max_new_tokens=16, steps=16).sequences
    guided = llada_tiny.generate(PROMPT, max_new_tokens=16, steps=16, cfg_scale=3.0).sequences
    assert plain != guided


def test_threshold_uses_fewer_passes(llada_tiny):
    full = llada_tiny.generate(PROMPT, max_new_tokens=32, steps=32, block_length=8)
    fast = llada_tiny.generate(PROMPT, max_new_tokens=32, steps=32, block_length=8, threshold=0.3)
    assert fast.nfe < full.nfe == 32


def test_origin_needs_timestep_schedule():
    with pytest.raises(ValueError, match="origin"):
        plan_for("llada", GenerationOptions(algorithm="origin"))


def test_factor_rule_matches_reference_edges():
    # best always passes; a failure at index i commits i; none, or a failure at the last, commits all
    assert factor_count(torch.tensor([0.1]), 1.0) == 1
    assert factor_count(torch.tensor([0.99, 0.98, 0.97]), 1.0) == 3
    assert factor_count(torch.tensor([0.9, 0.1, 0.05, 0.01]), 1.0) == 1
    assert factor_count(torch.tensor([0.9, 0.7, 0.1, 0.01]), 1.0) == 2
    assert factor_count(torch.tensor([0.9, 0.9, 0.1]), 1.0) == 3


def test_finish_at_eos_fills_after_first_end():
    M, E = 9, 2
    x = torch.tensor([[5, 6, 7, M, E, M, M], [5, 6, M, 7, E, M, M], [5, 6, 7, 7, 7, M, M]])
    done = finish_at_eos(x, 2, M, torch.tensor([E]))
    assert done.tolist() == [False, False, False]
    x[0, 3] = 8
    done = finish_at_eos(x, 2, M, torch.tensor([E]))
    assert done.tolist() == [True, False, False]
    assert x[0].tolist() == [5, 6, 7, 8, E, E, E]
    assert x[1].tolist() == [5, 6, M, 7, E, M, M]


def test_stop_at_eos_keeps_text_and_saves_passes(dream_tiny):
    opts = dict(max_new_tokens=32, steps=32, block_length=8, algorithm="entropy")
    full = dream_tiny.generate(PROMPT, **opts).sequences[0][8:]
    # Treat a token the model writes mid-canvas as the end token (stop ids are plain config).
    end = full[13]
    cut = full.index(end)
    model = dataclasses.replace(dream_tiny, ids=dataclasses.replace(dream_tiny.ids, eos=[end]))
    early = model.generate(PROMPT, stop_at_eos=True, **opts)
    assert early.sequences[0][8:][: cut + 1] == full[: cut + 1]
    assert dream_tiny.ids.mask not in early.sequences[0]
    assert early.nfe < 32


def test_a_head_that_predicts_the_mask_still_terminates(llada_tiny):
    """An untrained head whose argmax is the mask id must not loop forever (golden README §2)."""
    import copy

    model = dataclasses.replace(llada_tiny, net=copy.deepcopy(llada_tiny.net))
    with torch.no_grad():
        model.net.model.transformer.ff_out.weight[model.ids.mask] = 50.0  # mask id always wins
    out = model.generate(PROMPT, max_new_tokens=8, steps=4)
    assert model.ids.mask not in out.sequences[0]


@pytest.mark.parametrize("family", ["dream", "llada"])
def test_subnormal_temperatures_are_greedy(family, dream_tiny, llada_tiny):
    model = models(dream_tiny, llada_tiny)[family]
    greedy = model.generate(PROMPT, max_new_tokens=8, steps=4).sequences
    assert model.generate(PROMPT, max_new_tokens=8, steps=4, temperature=1e-308, alg_temp=1e-300).sequences == greedy


def test_spread_avoids_neighbours_while_it_can():
    from unmask.sampling.ranking import select_spread

    scores = torch.tensor([[0.9, 0.8, 0.7, 0.1, 0.6, -torch.inf]])
    assert select_spread(scores, torch.tensor([2]))[0].nonzero().flatten().tolist() == [0, 2]
    # Four of five finite positions cannot all be spaced: the best of the rest fill in.
    assert select_spread(scores, torch.tensor([4]))[0].nonzero().flatten().tolist() == [0, 1, 2, 4]
    # Radius 2: position 2 is too close to 0, so 4 is next; then the best of the rest.
    assert select_spread(scores, torch.tensor([2]), radius=2)[0].nonzero().flatten().tolist() == [0, 4]
    assert select_spread(scores, torch.tensor([3]), radius=2)[0].nonzero().flatten().tolist() == [0, 1, 4]


def test_spread_option_fills_the_canvas(llada_tiny):
    for spread in (1, 2, 5):
        out = llada_tiny.generate(PROMPT, max_new_tokens=16, steps=4, spread=spread)
        assert llada_tiny.ids.mask not in out.sequences[0]


def test_remask_takes_back_only_its_own_block_and_still_fills_the_canvas(llada_tiny):
    # Random weights doubt everything, so every pass but a block's first and last revokes.
    canvas, revocations = {}, 0
    for step in llada_tiny.stream(PROMPT, max_new_tokens=16, steps=8, block_length=8, remask=0.5, seed=0):
        block = range(8 + 8 * step.block, 16 + 8 * step.block)
        first_or_last = step.index % 4 in (0, 3)
        assert not (first_or_last and step.revoked[0])
        for p in step.revoked[0]:  # revocations come before the pass's commits
            assert p in block and p in canvas, "only tokens this block committed earlier"
            del canvas[p]
        for p, t in zip(step.committed[0], step.tokens[0]):
            assert p not in canvas
            canvas[p] = t
        revocations += len(step.revoked[0])
    assert revocations > 0 and step.nfe == 8, "the passes asked for, no more"
    assert canvas == {p: int(step.canvas[0, p]) for p in range(8, 24)}


def test_remask_keeps_confident_tokens(llada_tiny):
    steps = list(llada_tiny.stream(PROMPT, max_new_tokens=16, steps=8, block_length=8, remask=1e-9, seed=0))
    assert all(not s.revoked[0] for s in steps)
    plain = llada_tiny.generate(PROMPT, max_new_tokens=16, steps=8, block_length=8, seed=0)
    assert int(steps[-1].canvas[0, 8:].ne(torch.tensor(plain.sequences[0][8:])).sum()) == 0


def test_remask_rests_at_one_token_per_pass(llada_tiny):
    steps = list(llada_tiny.stream(PROMPT, max_new_tokens=16, steps=16, block_length=8, remask=0.5, seed=0))
    assert len(steps) == 16 and all(not s.revoked[0] for s in steps)


def test_remask_cannot_run_with_threshold():
    with pytest.raises(ValueError, match="remask"):
        GenerationOptions(remask=0.2, threshold=0.9)


def test_dynamic_threshold_commits_its_share_or_everything_confident():
    """SDAR's low_confidence_dynamic: all positions above the threshold when they are at least
    the step's share of an even split, else the share's best; the steps bound the passes."""
    from unmask.sampling.schedule import DynamicThreshold

    masked = torch.ones(2, 6, dtype=torch.bool)
    schedule = DynamicThreshold(masked, steps=3, threshold=0.9)  # shares: 2, 2, 2
    scores = torch.tensor([[0.95, 0.99, 0.97, 0.2, 0.1, 0.3], [0.5, 0.95, 0.4, 0.3, 0.2, 0.6]])
    chosen = schedule.select(0, scores, masked)
    assert chosen[0].tolist() == [True, True, True, False, False, False]  # three confident: all
    assert chosen[1].tolist() == [False, True, False, False, False, True]  # one confident: the best two
