"""`Plan`: everything the denoising loop needs, as plain frozen values.

The sampler never sees the request schema (`unmask.options`, pydantic): the engine resolves a
request into options once, and `make_plan` turns those into the combination of parts the Dream
hub sampler, the official LLaDA `generate` or Fast-dLLM uses for a model family, so their outputs
are reproduced token for token (tests/golden).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Block diffusion families: blocks left to right over the whole canvas (prompt included), an exact
# cache of finished blocks, and the family's own sampler (sampling/blocks.py, refine.py, subblocks.py).
BLOCK_FAMILIES = ("sdar", "llada2", "fast-dllm-v2", "diffusion-gemma")
# What each block family's reference sampler can rank by (SDAR: remasking_strategy sequential /
# low_confidence_*; LLaDA2 and Fast-dLLM v2 rank by confidence only).
BLOCK_ALGORITHMS = {
    "sdar": ("low_confidence", "sequential"),
    "llada2": ("low_confidence",),
    "fast-dllm-v2": ("low_confidence",),
    "diffusion-gemma": ("entropy",),  # uniform-state: entropy-bound acceptance (sampling/uniform.py)
}
DEFAULT_ALGORITHM = {"dream": "entropy", "llada": "low_confidence"} | {
    f: BLOCK_ALGORITHMS[f][0] for f in BLOCK_FAMILIES
}
# With a threshold or factor the ranking must score confidence: Dream's entropy default cannot
# reach 0.9 and would commit one token a pass. Fast-dLLM's Dream sampler ranks by top-1 probability.
THRESHOLD_ALGORITHM = {"dream": "maskgit_plus", "llada": "low_confidence"} | {
    f: BLOCK_ALGORITHMS[f][0] for f in BLOCK_FAMILIES
}
# Thresholds compare a probability-like score in [0, 1]; entropy and random scores are not.
THRESHOLD_ALGORITHMS = ("maskgit_plus", "low_confidence", "topk_margin")


@dataclass(frozen=True)
class Plan:
    """What a set of decoding settings means for a model family."""

    family: str  # "dream" | "llada"
    recipe: str  # "dream" | "llada" | "fast-dllm"
    algorithm: str
    choice: str  # "dream" (sample_tokens) | "llada" (Gumbel-max)
    prob_dtype: torch.dtype
    schedule: str  # "timestep" | "even" | "threshold" | "quota_threshold" | "dynamic_threshold" | "factor"
    head_first: bool  # Fast-dLLM Dream block sampler: full pass commits the block's first position
    total_steps: int
    steps_per_block: int
    block_length: int | None = None  # None: one block over the whole region
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    alg_temp: float = 0.0
    eps: float = 1e-3
    cfg_scale: float = 0.0
    threshold: float | None = None
    factor: float | None = None
    cache: str = "none"
    spread: int = 0
    remask: float | None = None
    stop_at_eos: bool = False
    # Block diffusion (SDAR, LLaDA2): a committed token is replaced when another is more likely
    # than this (LLaDA2.1 token editing; None = off), with at most max_post_steps passes after a
    # block's last mask; every pass commits at least min_commit tokens (LLaDA2 `minimal_topk`).
    edit_threshold: float | None = None
    max_post_steps: int = 16
    min_commit: int = 1
    sub_block_length: int | None = None  # Fast-dLLM v2: sub-blocks decoded in turn inside a block (None: 8)

    @property
    def fast_dllm_dream(self) -> bool:
        return self.recipe == "fast-dllm" and self.family == "dream"


def make_plan(
    family: str,
    *,
    total_steps: int,
    num_blocks: int = 1,
    algorithm: str | None = None,
    recipe: str | None = None,
    threshold: float | None = None,
    factor: float | None = None,
    cache: str = "none",
    **settings,
) -> Plan:
    """The sampler's plan for `family`; `settings` are the remaining Plan fields (temperature, ...).

    Raises ValueError naming the field when the combination has no meaning."""
    recipe = recipe or family
    parallel = threshold is not None or factor is not None
    algorithm = algorithm or (THRESHOLD_ALGORITHM if parallel else DEFAULT_ALGORITHM)[family]
    fast_dream = recipe == "fast-dllm" and family == "dream"
    choice = "dream" if recipe == "dream" or fast_dream else "llada"
    # Fast-dLLM's LLaDA sampler takes its softmax in float64; the official LLaDA one in float32.
    prob_dtype = torch.float64 if recipe == "fast-dllm" and choice == "llada" else torch.float32
    if threshold is not None and recipe != "fast-dllm":
        schedule = "dynamic_threshold"  # ours and SDAR's: the steps stay a bound on the passes
    elif threshold is not None:
        schedule = "quota_threshold" if fast_dream and cache == "none" else "threshold"
    elif factor is not None:
        schedule = "factor"
    elif recipe == "llada" or (recipe == "fast-dllm" and family == "llada"):
        schedule = "even"
    else:
        schedule = "timestep"
    if algorithm == "origin" and schedule != "timestep":
        raise ValueError(f"algorithm: 'origin' follows Dream's timestep schedule; it cannot run with recipe {recipe!r}")
    if parallel and algorithm not in THRESHOLD_ALGORITHMS:
        raise ValueError(
            f"algorithm: {algorithm!r} cannot be used with threshold or factor; "
            f"use one of {', '.join(THRESHOLD_ALGORITHMS)}"
        )
    return Plan(
        family,
        recipe,
        algorithm,
        choice,
        prob_dtype,
        schedule,
        fast_dream and cache != "none",
        total_steps,
        total_steps // num_blocks,
        threshold=threshold,
        factor=factor,
        cache=cache,
        **settings,
    )


def make_block_plan(
    family: str,
    *,
    block_length: int,
    steps_per_block: int,
    blocks: int,
    algorithm: str | None = None,
    recipe: str | None = None,
    threshold: float | None = None,
    edit_threshold: float | None = None,
    max_post_steps: int | None = None,
    min_commit: int | None = None,
    sub_block_length: int | None = None,
    cache: str = "none",
    **settings,
) -> Plan:
    """The plan for a block diffusion family. `blocks` is how many blocks the new tokens span
    (for the planned step count the live views show). Raises ValueError naming the field when a
    setting has no meaning for the family."""
    algorithm = algorithm or DEFAULT_ALGORITHM[family]
    if algorithm not in BLOCK_ALGORITHMS[family]:
        raise ValueError(f"algorithm: {family} decodes with {' or '.join(BLOCK_ALGORITHMS[family])}, got {algorithm!r}")
    if edit_threshold and family != "llada2":
        raise ValueError(f"edit_threshold: token editing is LLaDA2.1's; {family} cannot edit committed tokens")
    if threshold is not None and family == "diffusion-gemma":
        raise ValueError("threshold: DiffusionGemma accepts tokens by an entropy bound, not a confidence threshold")
    if sub_block_length is not None and family != "fast-dllm-v2":
        raise ValueError(f"sub_block_length: sub-blocks are Fast-dLLM v2's; {family} decodes whole blocks")
    for name in ("cfg_scale", "factor", "remask", "alg_temp", "spread"):
        if settings.get(name):
            raise ValueError(f"{name}: not used by block diffusion ({family}); leave it out")
        settings.pop(name, None)
    settings.pop("eps", None)
    return Plan(
        family,
        recipe or family,
        algorithm,
        "block",
        torch.float32,
        "dynamic_threshold" if threshold is not None else "even",
        False,
        steps_per_block * blocks,
        steps_per_block,
        block_length=block_length,
        threshold=threshold,
        cache=cache,
        edit_threshold=edit_threshold,
        max_post_steps=16 if max_post_steps is None else max_post_steps,
        min_commit=min_commit or 1,
        sub_block_length=sub_block_length,
        **settings,
    )
