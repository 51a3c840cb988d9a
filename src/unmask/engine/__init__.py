"""The engine: a loaded `Model` (token-level generation) and, for servers, the batching scheduler."""

from .model import GenerationResult, Model, SpecialIds

__all__ = ["GenerationResult", "Model", "SpecialIds"]
