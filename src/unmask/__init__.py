"""unmask: a local engine, studio and server for diffusion language models."""

from .engine import GenerationResult, Model
from .loading import ModelLoadError, load
from .options import GenerationOptions
from .sampling import DenoiseStep

__version__ = "0.1.0"

__all__ = ["DenoiseStep", "GenerationOptions", "GenerationResult", "Model", "ModelLoadError", "load", "__version__"]
