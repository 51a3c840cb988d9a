"""GenerationOptions: one schema, bounded fields, errors that name the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from unmask import GenerationOptions


def error_text(**kwargs) -> str:
    with pytest.raises(ValidationError) as info:
        GenerationOptions(**kwargs)
    return str(info.value)


def test_defaults():
    o = GenerationOptions()
    assert o.max_new_tokens == 128 and o.total_steps == 128 and o.num_blocks == 1 and o.cache is None


def test_unknown_field_is_an_error():
    assert "stepz" in error_text(stepz=3)


@pytest.mark.parametrize(
    "field,value",
    [
        ("max_new_tokens", 0),
        ("max_new_tokens", 10**6),
        ("steps", 0),
        ("temperature", -1),
        ("top_p", 0),
        ("top_p", 1.5),
        ("top_k", 0),
        ("threshold", 11),
        ("eps", 1.0),
        ("algorithm", "greedy"),
        ("cache", "full"),
        ("recipe", "mdlm"),
    ],
)
def test_bounds_name_the_field(field, value):
    assert field in error_text(**{field: value})


def test_block_length_must_divide():
    """The 2025 families' blocks tile the region; block diffusion tiles the whole canvas instead,
    so the rule is the plan's, checked for the family."""
    from unmask.engine.resolve import plan_for

    options = GenerationOptions(max_new_tokens=32, block_length=12)
    with pytest.raises(ValueError, match=r"^block_length: 12 must divide max_new_tokens \(32\)"):
        plan_for("llada", options)
    assert plan_for("sdar", options).block_length == 12


def test_steps_multiple_of_blocks():
    from unmask.engine.resolve import plan_for

    options = GenerationOptions(max_new_tokens=32, block_length=8, steps=10)
    with pytest.raises(ValueError, match=r"^steps: 10 must be a multiple of the number of blocks \(4\)"):
        plan_for("dream", options)
    assert plan_for("sdar", options).steps_per_block == 3  # 10 steps over 4 blocks, rounded up


def test_block_options_are_refused_by_full_canvas_families():
    from unmask.engine.resolve import plan_for

    for name, value in [("steps_per_block", 4), ("edit_threshold", 0.5), ("max_post_steps", 2), ("min_commit", 2)]:
        with pytest.raises(ValueError, match=f"^{name}: only block diffusion"):
            plan_for("llada", GenerationOptions(**{name: value}))
    with pytest.raises(ValueError, match="^edit_threshold: token editing is LLaDA2.1's"):
        plan_for("sdar", GenerationOptions(edit_threshold=0.5, block_length=4))
    with pytest.raises(ValueError, match="^algorithm: llada2 decodes with low_confidence"):
        plan_for("llada2", GenerationOptions(algorithm="sequential"), 32)
    with pytest.raises(ValueError, match="^cfg_scale: not used by block diffusion"):
        plan_for("sdar", GenerationOptions(cfg_scale=1.0), 4)


def test_threshold_rules():
    from unmask.engine.resolve import plan_for

    assert "threshold" in error_text(threshold=0.9, factor=1.0)
    with pytest.raises(ValueError, match="^cache: classifier-free guidance"):  # the 2025 families' rule
        plan_for("llada", GenerationOptions(cfg_scale=1.0, cache="prefix", block_length=32, max_new_tokens=64))
    GenerationOptions(threshold=0.9, algorithm="topk_margin", cache="dual", block_length=32)
    # Which algorithms can take a threshold is the sampler plan's rule, checked for the family.
    with pytest.raises(ValueError, match="^algorithm: 'entropy' cannot be used with threshold"):
        plan_for("dream", GenerationOptions(threshold=0.9, algorithm="entropy"))
    assert plan_for("dream", GenerationOptions(threshold=0.9)).algorithm == "maskgit_plus"


def test_a_shipped_remask_gives_way_to_threshold_decoding():
    from types import SimpleNamespace

    from unmask.cli.common import build_options
    from unmask.server.decoding import resolve_options
    from unmask.server.limits import Limits

    # One resolver behind both surfaces (unmask.engine.resolve).
    model = SimpleNamespace(
        family="llada",
        context_length=4096,
        defaults={"max_new_tokens": 128, "steps": 64, "block_length": 32, "remask": 0.15},
    )
    assert build_options(model, {}).remask == 0.15
    assert build_options(model, {}, preset="fast").remask is None
    assert build_options(model, {"threshold": 0.8}).remask is None
    assert resolve_options(model, {}, Limits()).remask == 0.15
    assert resolve_options(model, {"factor": 1.0}, Limits()).remask is None
    with pytest.raises(Exception, match="remask"):
        resolve_options(model, {"threshold": 0.9, "remask": 0.2}, Limits())


def test_the_resolver_keeps_the_shipped_ratio_and_rounds_steps_up():
    """33 new tokens on a model shipping 64 steps for 128: 16.5 steps rounded up, one block
    (the shipped 32 does not divide 33); the same on every surface, which all call resolve."""
    from types import SimpleNamespace

    from unmask.engine import PRESETS, resolve

    model = SimpleNamespace(
        family="llada", defaults={"max_new_tokens": 128, "steps": 64, "block_length": 32, "remask": 0.15}
    )
    odd = resolve(model, {"max_new_tokens": 33})
    assert (odd.total_steps, odd.block_length) == (17, None)
    assert resolve(model, {}).total_steps == 64 and resolve(model, {}).block_length == 32
    steps = {p: resolve(model, {}, p).total_steps for p in PRESETS}
    assert steps == {"fast": 32, "balanced": 64, "best": 128}
    with pytest.raises(ValueError, match="^preset: unknown preset"):
        resolve(model, {}, "turbo")
    with pytest.raises(ValueError, match="^temprature: unknown decoding option"):
        resolve(model, {"temprature": 0.5})


def test_the_resolver_rounds_steps_up_to_whole_steps_per_block():
    """7 steps asked over 4 blocks of 16: LLaDA gives every block the same steps, so 8, on every
    surface; plan_for, given options that skipped the resolver, still refuses them."""
    from types import SimpleNamespace

    from unmask.engine import resolve

    model = SimpleNamespace(family="llada", defaults={"max_new_tokens": 64, "steps": 64, "block_length": 32})
    assert resolve(model, {"steps": 7, "block_length": 16}).total_steps == 8
    assert resolve(model, {"steps": 2, "block_length": 16}).total_steps == 4  # one per block at least
    assert resolve(model, {"steps": 9}).total_steps == 10  # the shipped 32: 2 blocks
    assert resolve(model, {"steps": 8, "block_length": 16}).total_steps == 8


def test_a_shipped_threshold_gives_way_to_an_asked_ranking_without_confidence():
    """The Sudoku model ships a threshold; `--algorithm random` still runs (without it), while an
    asked threshold with random order is refused, naming the field."""
    from types import SimpleNamespace

    from unmask.engine import resolve

    model = SimpleNamespace(
        family="llada", defaults={"max_new_tokens": 81, "algorithm": "low_confidence", "threshold": 0.7}
    )
    assert resolve(model, {}).threshold == 0.7
    assert resolve(model, {"algorithm": "random"}).threshold is None
    assert resolve(model, {"algorithm": "topk_margin"}).threshold == 0.7
    with pytest.raises(ValueError, match="^algorithm: 'random' cannot be used with threshold"):
        resolve(model, {"algorithm": "random", "threshold": 0.9})
