"""`Model`: a loaded checkpoint (network, tokenizer, special ids) with the token-level API.

Notable features:
- `generate` mirrors the reference entry points: it returns prompt + canvas per row, the canvas
  after every pass when asked, and the number of model passes.
- `stream` yields the sampler's `DenoiseStep`s, which the CLI, server and studio draw from.
- The options are used as given (the reference entry points' semantics, what the golden records
  check); the surfaces resolve a request's options first (`resolve`), with the model's defaults.
- Rows of different lengths are left-padded with the pad id and masked, as both references do.
- A grid (Sudoku) model's canvas is a board, decoded under the board's rule (`board_rule`): on
  every surface its digits never clash, and a search takes back guesses that lead nowhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, replace

import torch

from ..loading import Checkpoint, load_checkpoint
from ..options import GenerationOptions
from ..sampling import (
    BLOCK_FAMILIES,
    AllDifferent,
    DenoiseStep,
    RowGenerators,
    UniformSettings,
    block_sampler,
    denoise,
    denoise_constrained,
)
from .resolve import block_size, plan_for

# Block families whose reference returns the whole block-aligned canvas (SDAR's `output_ids`);
# the others return prompt + the new tokens asked for (LLaDA2Pipeline's `sequences`).
ALIGNED_OUTPUT = frozenset({"sdar", "diffusion-gemma"})
# Families whose region (not prompt + region) is a whole number of blocks: DiffusionGemma's canvases
# follow the prompt, which its encoder reads apart.
REGION_BLOCKS = frozenset({"diffusion-gemma"})


@dataclass
class GenerationResult:
    sequences: list[list[int]]  # prompt (as given, with its padding) + canvas, per row
    nfe: int
    history: list[list[list[int]]] | None = None  # canvas after every pass, when options.history
    prompt_length: int = 0
    elapsed: float = 0.0


@dataclass
class Model(Checkpoint):
    """A loaded checkpoint with the token-level generation API."""

    @classmethod
    def load(
        cls, ref: str | os.PathLike, dtype: str = "auto", device: str = "auto", quantize: str | None = None
    ) -> Model:
        """An embedded name, a local folder, or a hub id / alias already pulled; quantize: "int8" or "int4"."""
        return cls.of(load_checkpoint(ref, dtype, device, quantize))

    @classmethod
    def of(cls, checkpoint: Checkpoint) -> Model:
        model = cls(**{f.name: getattr(checkpoint, f.name) for f in fields(checkpoint)})
        if model.family == "diffusion-gemma" and model.ids.mask is None:
            # A uniform-state model has no mask token: the id just past the vocabulary marks the
            # region's positions to start from noise (it never reaches the network).
            model.ids = replace(model.ids, mask=model.net.args.vocab_size)
        return model

    @torch.no_grad()
    def logits(self, input_ids, attention_mask=None) -> torch.Tensor:
        """Raw model output (B, L, V) in float32 (no Dream shift). attention_mask: 1 = real token."""
        ids = torch.as_tensor(input_ids, device=self.device)
        if ids.ndim == 1:
            ids = ids[None]
        key_mask = None if attention_mask is None else torch.as_tensor(attention_mask, device=self.device).bool()
        if key_mask is not None and key_mask.ndim == 1:
            key_mask = key_mask[None]
        positions = self.net.positions(key_mask, ids.shape[1], self.device).expand(ids.shape)
        return self.net(ids, positions, key_mask).float()

    def batch(self, prompt_ids, attention_mask=None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Prompt rows -> (B, P) ids and key mask, left-padding rows of unequal length."""
        rows = prompt_ids.tolist() if isinstance(prompt_ids, torch.Tensor) else list(prompt_ids)
        if rows and not isinstance(rows[0], (list, tuple)):
            rows = [rows]
        if not rows:
            raise ValueError("prompt_ids: at least one row is needed")
        if attention_mask is not None:
            mask = torch.as_tensor(attention_mask, device=self.device).bool()
            mask = mask[None] if mask.ndim == 1 else mask
            ids = torch.tensor(rows, device=self.device)
            if mask.shape != ids.shape:
                raise ValueError(
                    f"attention_mask: shape {tuple(mask.shape)} does not match prompt_ids {tuple(ids.shape)}"
                )
            return ids, mask
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.ids.pad, dtype=torch.long, device=self.device)
        mask = torch.zeros((len(rows), width), dtype=torch.bool, device=self.device)
        for i, r in enumerate(rows):
            if r:
                ids[i, width - len(r) :] = torch.tensor(r, device=self.device)
                mask[i, width - len(r) :] = True
        return ids, (None if bool(mask.all()) else mask)

    def with_ids(self, mask_token_id: int | None = None, eos_token_id: int | list[int] | None = None) -> Model:
        """This model with other special ids for a call, as LLaDA2Pipeline takes `mask_token_id` and
        `eos_token_id` (its golden checkpoints name neither)."""
        if mask_token_id is None and eos_token_id is None:
            return self
        vocab = self.net.lm_head.weight.shape[0] if hasattr(self.net, "lm_head") else None
        ids = self.ids
        for name, value in (("mask_token_id", mask_token_id), ("eos_token_id", eos_token_id)):
            for v in value if isinstance(value, list) else [value]:
                if v is not None and (not isinstance(v, int) or v < 0 or (vocab and v >= vocab)):
                    raise ValueError(f"{name}: must be a token id below the vocabulary size {vocab}, got {v!r}")
        if mask_token_id is not None:
            ids = replace(ids, mask=mask_token_id)
        if eos_token_id is not None:
            ids = replace(ids, eos=eos_token_id if isinstance(eos_token_id, list) else [eos_token_id])
        return replace(self, ids=ids)

    def prepare(
        self, prompt_ids, attention_mask, options: GenerationOptions, canvas=None
    ) -> tuple[torch.Tensor, int, torch.Tensor | None]:
        """(B, P + N) canvas of prompt then region, the prompt width P, and the key mask."""
        if self.ids.mask is None:
            raise ValueError(
                "mask_token_id: this checkpoint names no mask token (config.json has no mask_token_id and the "
                "tokenizer none); pass mask_token_id to generate, or add it to config.json"
            )
        ids, key_mask = self.batch(prompt_ids, attention_mask)
        B, P = ids.shape
        region = torch.full((B, options.max_new_tokens), self.ids.mask, dtype=torch.long, device=self.device)
        if canvas is not None:
            rows = canvas if canvas and isinstance(canvas[0], (list, tuple)) else [canvas]
            given = torch.tensor([list(r) for r in rows], dtype=torch.long, device=self.device)
            if given.shape[0] == 1:
                given = given.expand(B, -1)
            if given.shape != region.shape:
                raise ValueError(f"canvas: expected {B} rows of {options.max_new_tokens} ids, got {tuple(given.shape)}")
            region = given.clone()
        if self.family in BLOCK_FAMILIES:
            # Blocks tile the canvas from position 0, so the last one may reach past the region
            # (SDAR's total_length = ceil((P + gen) / block) * block).
            block = plan_for(self.family, options, block_size(self)).block_length
            tail = -(region.shape[1] if self.family in REGION_BLOCKS else P + region.shape[1]) % block
            region = torch.cat([region, region.new_full((B, tail), self.ids.mask)], dim=1)
        x = torch.cat([ids, region], dim=1)
        if key_mask is not None:
            key_mask = torch.cat([key_mask, torch.ones_like(region, dtype=torch.bool)], dim=1)
        return x, P, key_mask

    def stream(
        self,
        prompt_ids,
        attention_mask=None,
        options: GenerationOptions | None = None,
        canvas: Sequence[Sequence[int]] | None = None,
        mask_token_id: int | None = None,
        eos_token_id: int | list[int] | None = None,
        **kwargs,
    ) -> Iterator[DenoiseStep]:
        """Denoise after the prompt, yielding after every model pass.

        canvas: optional region to denoise (one row, or one per prompt row): the mask id marks
        positions to fill, other ids are kept (infilling). Its length sets max_new_tokens.
        mask_token_id, eos_token_id: special ids for this call, where the checkpoint names none or
        others are wanted (LLaDA2Pipeline's arguments).
        """
        model = self.with_ids(mask_token_id, eos_token_id)
        options = model.options(options, canvas, kwargs)
        x, P, key_mask = model.prepare(prompt_ids, attention_mask, options, canvas)
        yield from model.denoise(x, P, key_mask, options)

    def denoise(
        self, x: torch.Tensor, P: int, key_mask, options: GenerationOptions, row_seeds: list | None = None
    ) -> Iterator[DenoiseStep]:
        """row_seeds: a seed (or None) per row, each row drawing from its own generator, so a
        seeded row gets the same tokens alone or batched (the server's scheduler); otherwise
        one generator from options.seed for the whole batch, as the reference samplers do."""
        generator = None
        if row_seeds is not None:
            generator = RowGenerators(
                None if s is None else torch.Generator(device=self.device).manual_seed(s) for s in row_seeds
            )
        elif options.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(options.seed)
        plan = plan_for(self.family, options, block_size(self))
        if self.family in BLOCK_FAMILIES:
            sampler = block_sampler(self.family)
            extra = {}
            if self.family == "diffusion-gemma":  # its schedule lives in its config; the steps are ours
                settings = UniformSettings.from_config(self.config, self.generation_config or {})
                extra["settings"] = replace(settings, max_denoising_steps=plan.steps_per_block)
            return sampler(
                self.net,
                x,
                P,
                plan,
                self.ids.mask,
                key_mask,
                self.ids.eos,
                generator,
                gen_length=options.max_new_tokens,
                **extra,
            )
        rule = board_rule(self)
        if rule is not None:  # a board: the canvas is the whole grid, no prompt, no padding
            return denoise_constrained(self.net, x, P, plan, self.ids.mask, rule, key_mask, generator)
        rows_alone = row_seeds is not None  # the scheduler's batch: each row as it would run alone
        return denoise(self.net, x, P, plan, self.ids.mask, key_mask, self.ids.eos, generator, rows_alone)

    @staticmethod
    def options(options: GenerationOptions | None, canvas, kwargs: dict) -> GenerationOptions:
        if options is not None:
            return GenerationOptions(**(options.model_dump() | kwargs)) if kwargs else options
        if canvas is not None:
            rows = canvas if canvas and isinstance(canvas[0], (list, tuple)) else [canvas]
            kwargs.setdefault("max_new_tokens", len(rows[0]))
        return GenerationOptions(**kwargs)

    def generate(
        self,
        prompt_ids,
        attention_mask=None,
        options: GenerationOptions | None = None,
        canvas: Sequence[Sequence[int]] | None = None,
        mask_token_id: int | None = None,
        eos_token_id: int | list[int] | None = None,
        **kwargs,
    ) -> GenerationResult:
        """Generate after each prompt row; see `stream` for the arguments."""
        model = self.with_ids(mask_token_id, eos_token_id)
        options = model.options(options, canvas, kwargs)
        x, P, key_mask = model.prepare(prompt_ids, attention_mask, options, canvas)
        history = [] if options.history else None
        nfe, elapsed = 0, 0.0
        for step in model.denoise(x, P, key_mask, options):
            nfe, elapsed = step.nfe, step.elapsed
            if history is not None:
                history.append(step.canvas.tolist())
        if self.family in BLOCK_FAMILIES and self.family not in ALIGNED_OUTPUT:
            x = x[:, : P + options.max_new_tokens]
        return GenerationResult(x.tolist(), nfe, history, P, elapsed)


def board_rule(model) -> AllDifferent | None:
    """The rule a grid model's canvas obeys, for the sampler: every cell a digit, no digit twice in
    a row, column or box (tasks/sudoku.py's units); None for every other model."""
    if str(model.config.get("model_type", "")).lower() != "grid" or model.tokenizer is None:
        return None
    from ..tasks.sudoku import CELLS, unit_cells

    digits = [model.tokenizer.token_id(str(d)) for d in range(1, 10)]
    if None in digits:
        return None
    vocab = int(model.config.get("embedding_size") or model.config["vocab_size"])
    return AllDifferent(unit_cells(), digits, CELLS, vocab)
