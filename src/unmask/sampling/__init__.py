"""Samplers for masked diffusion language models, as orthogonal parts (see denoise.py).

This layer knows only torch and the network: settings arrive as a frozen `Plan`."""

from .denoise import DenoiseStep, denoise
from .noise import RowGenerators
from .plan import DEFAULT_ALGORITHM, THRESHOLD_ALGORITHM, THRESHOLD_ALGORITHMS, Plan, make_plan

__all__ = [
    "DEFAULT_ALGORITHM",
    "THRESHOLD_ALGORITHM",
    "THRESHOLD_ALGORITHMS",
    "DenoiseStep",
    "Plan",
    "RowGenerators",
    "denoise",
    "make_plan",
]
