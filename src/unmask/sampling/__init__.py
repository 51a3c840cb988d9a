"""Samplers for masked diffusion language models, as orthogonal parts (see denoise.py).

This layer knows only torch and the network: settings arrive as a frozen `Plan`."""

from .constraint import AllDifferent
from .denoise import DenoiseStep, denoise
from .noise import RowGenerators
from .plan import (
    BLOCK_FAMILIES,
    DEFAULT_ALGORITHM,
    THRESHOLD_ALGORITHM,
    THRESHOLD_ALGORITHMS,
    Plan,
    make_block_plan,
    make_plan,
)
from .search import denoise_constrained
from .uniform import UniformSettings


def block_sampler(family: str):
    """The denoising loop of a block diffusion family (same arguments as `denoise`, plus gen_length)."""
    if family == "sdar":
        from .blocks import denoise_sdar

        return denoise_sdar
    if family == "llada2":
        from .refine import denoise_llada2

        return denoise_llada2
    if family == "fast-dllm-v2":
        from .subblocks import denoise_fast_dllm_v2

        return denoise_fast_dllm_v2
    if family == "diffusion-gemma":
        from .uniform import denoise_uniform

        return denoise_uniform
    raise ValueError(f"{family} is not a block diffusion family")


__all__ = [
    "AllDifferent",
    "UniformSettings",
    "block_sampler",
    "BLOCK_FAMILIES",
    "DEFAULT_ALGORITHM",
    "THRESHOLD_ALGORITHM",
    "THRESHOLD_ALGORITHMS",
    "DenoiseStep",
    "Plan",
    "RowGenerators",
    "denoise",
    "denoise_constrained",
    "make_block_plan",
    "make_plan",
]
