"""Samplers for masked diffusion language models, as orthogonal parts (see denoise.py)."""

from .denoise import DenoiseStep, Plan, denoise, plan

__all__ = ["DenoiseStep", "Plan", "denoise", "plan"]
