"""GenerationOptions: the one schema for decoding settings, shared by the Python API, CLI, server
and studio (unknown fields are errors, never silently ignored).

Every numeric field is bounded; the bounds are named constants so the server's limits and the
CLI's help text quote the same numbers. Cross-field rules (block and step divisibility) raise
errors that begin with the field's name. What options mean for a model family (which algorithm
runs, whether it can take a threshold) is checked where the model is known: when the engine
resolves a request (`unmask.engine.resolve`), or when the sampler plans it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_NEW_TOKENS = 8192
MAX_STEPS = 8192
MAX_TEMPERATURE = 10.0
MAX_CFG_SCALE = 100.0
MAX_TOP_K = 1_000_000
MAX_SPREAD = 64

Algorithm = Literal["origin", "maskgit_plus", "topk_margin", "entropy", "low_confidence", "random", "sequential"]
# "unmask": a block family's reference schedule without its quirks (SDAR's top-k can overwrite
# committed and prompt tokens); the surfaces resolve to it, `Model.generate` keeps the reference.
Recipe = Literal["dream", "llada", "fast-dllm", "sdar", "llada2", "fast-dllm-v2", "unmask"]
MAX_POST_STEPS = 1024
MAX_THRESHOLD = 10.0  # a probability threshold above 1 is never met: LLaDA2's records use 1.5 for pure top-k
Cache = Literal["none", "prefix", "dual"]


class GenerationOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_new_tokens: int = Field(128, ge=1, le=MAX_NEW_TOKENS, description="Length of the canvas to denoise.")
    steps: int | None = Field(
        None, ge=1, le=MAX_STEPS, description="Model passes (denoising steps); default: one per new token."
    )
    algorithm: Algorithm | None = Field(
        None, description="How masked positions are ranked; default: entropy (Dream), low_confidence (LLaDA)."
    )
    block_length: int | None = Field(
        None, ge=1, le=MAX_NEW_TOKENS, description="Semi-autoregressive block size; default: one block."
    )
    temperature: float = Field(0.0, ge=0.0, le=MAX_TEMPERATURE, description="0 = greedy.")
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=1, le=MAX_TOP_K)
    alg_temp: float = Field(0.0, ge=0.0, le=MAX_TEMPERATURE, description="Dream: sample positions by confidence.")
    eps: float = Field(1e-3, gt=0.0, lt=1.0, description="Dream: final timestep of linspace(1, eps).")
    cfg_scale: float = Field(0.0, ge=0.0, le=MAX_CFG_SCALE, description="Classifier-free guidance (LLaDA).")
    threshold: float | None = Field(
        None,
        gt=0.0,
        le=MAX_THRESHOLD,
        description="Fast-dLLM: commit every position at least this confident; block diffusion: above 1, only "
        "each pass's share (LLaDA2's way to force top-k).",
    )
    factor: float | None = Field(None, gt=0.0, le=100.0, description="Fast-dLLM factor-based parallel decoding.")
    cache: Cache | None = Field(
        None,
        description="KV cache: none, prefix or dual (Fast-dLLM); block diffusion: prefix = the exact cache of "
        "finished blocks, none = recompute them. Default: the recipe's own (none; SDAR and Fast-dLLM v2: prefix).",
    )
    recipe: Recipe | None = Field(None, description="Whose schedule and quirks to follow; default: the model's own.")
    history: bool = Field(False, description="Keep the canvas after every model pass.")
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    stop_at_eos: bool = Field(False, description="Finish a row once an end token follows only committed tokens.")
    spread: int = Field(
        0,
        ge=0,
        le=MAX_SPREAD,
        description="Keep positions committed in one step more than this many apart while the block allows "
        "(fewer doubled words); 0 = off.",
    )
    remask: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="When passes commit several tokens each, mask again the tokens of the block committed "
        "earlier that the model now gives less than this probability, and decode them anew; 0 = off.",
    )

    steps_per_block: int | None = Field(
        None, ge=1, le=MAX_STEPS, description="Block diffusion: denoising passes per block; default: from steps."
    )
    edit_threshold: float | None = Field(
        None,
        ge=0.0,
        le=MAX_THRESHOLD,
        description="Block diffusion (LLaDA2.1 token editing): replace a committed token when another is more "
        "likely than this; 0 or unset: off.",
    )
    max_post_steps: int | None = Field(
        None, ge=0, le=MAX_POST_STEPS, description="Token editing: passes allowed after a block's last mask."
    )
    sub_block_length: int | None = Field(
        None, ge=1, le=MAX_NEW_TOKENS, description="Fast-dLLM v2: sub-blocks decoded in turn inside a block (8)."
    )
    min_commit: int | None = Field(
        None, ge=1, le=MAX_NEW_TOKENS, description="Block diffusion: tokens every pass commits at least (LLaDA2)."
    )

    @model_validator(mode="after")
    def _cross_field(self) -> GenerationOptions:
        # Block and step divisibility depend on the family (block diffusion aligns blocks to the
        # whole canvas, the 2025 families to the region): `engine.plan_for` checks them.
        if self.threshold is not None and self.factor is not None:
            raise ValueError("threshold: set either threshold or factor, not both")
        if self.remask and (self.threshold is not None or self.factor is not None):
            raise ValueError("remask: works with a step count per pass; it cannot run with threshold or factor")
        return self

    @property
    def num_blocks(self) -> int:
        return self.max_new_tokens // (self.block_length or self.max_new_tokens) or 1

    @property
    def total_steps(self) -> int:
        return self.steps if self.steps is not None else self.max_new_tokens
