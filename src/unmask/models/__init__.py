"""Model registry: Hugging Face `model_type` -> our model file.

Each architecture is one module with an `Args.from_config(config.json dict)` and a module whose
parameter names equal the checkpoint's. Matching is case-insensitive because Dream spells its
type "Dream" and LLaDA "llada".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from .diffusion_gemma import DiffusionGemmaArgs, DiffusionGemmaModel
from .dream import DreamArgs, DreamModel
from .fast_dllm_v2 import FastDLLMv2Args, FastDLLMv2Model
from .grid import GridArgs, GridModel
from .layers import KVStore
from .llada import LLaDAArgs, LLaDAModel
from .llada2_moe import LLaDA2Args, LLaDA2Model
from .lladamoe import LLaDAMoEArgs, LLaDAMoEModel
from .sdar import SDARArgs, SDARModel


@dataclass(frozen=True)
class Architecture:
    family: str  # "dream" or "llada": which reference recipe and quirks are native to it
    make_args: Callable[[dict], object]
    make_model: Callable[[object], nn.Module]


REGISTRY: dict[str, Architecture] = {
    "dream": Architecture("dream", DreamArgs.from_config, DreamModel),
    "llada": Architecture("llada", LLaDAArgs.from_config, LLaDAModel),
    "lladamoe": Architecture("llada", LLaDAMoEArgs.from_config, LLaDAMoEModel),
    # MMaDA (Gen-Verse/MMaDA) is LLaDA's network with a larger vocabulary; its text side loads as LLaDA.
    "mmada": Architecture("llada", LLaDAArgs.from_config, LLaDAModel),
    "grid": Architecture("llada", GridArgs.from_config, GridModel),
    "llada2_moe": Architecture("llada2", LLaDA2Args.from_config, LLaDA2Model),
    "llada2_moe_veomni": Architecture("llada2", LLaDA2Args.from_config, LLaDA2Model),  # dFactory training copies
    "sdar": Architecture("sdar", SDARArgs.from_config, SDARModel),
    "sdar_moe": Architecture("sdar", SDARArgs.from_config, SDARModel),  # SDAR-30B-A3B
    "fast_dllm_qwen": Architecture("fast-dllm-v2", FastDLLMv2Args.from_config, FastDLLMv2Model),
    "diffusion_gemma": Architecture("diffusion-gemma", DiffusionGemmaArgs.from_config, DiffusionGemmaModel),
}


def supported_types() -> list[str]:
    return sorted(REGISTRY)


# Checkpoints whose `model_type` is another family's: LLaDA-MoE's hub config says "llada" and is
# told apart from dense LLaDA only by its `architectures` class name.
BY_CLASS = {"LLaDAMoEModelLM": "lladamoe"}


def architecture_for(config: dict | str | None) -> Architecture:
    """The registered architecture for a config.json (or its `model_type`), or a ValueError listing them."""
    if isinstance(config, dict):
        named = next((BY_CLASS[c] for c in config.get("architectures") or [] if c in BY_CLASS), None)
        model_type = named or config.get("model_type")
    else:
        model_type = config
    arch = REGISTRY.get(str(model_type).lower())
    if arch is None:
        raise ValueError(
            f"model_type {model_type!r} is not supported; supported model types: {', '.join(supported_types())}"
        )
    return arch


__all__ = ["Architecture", "KVStore", "REGISTRY", "architecture_for", "supported_types"]
